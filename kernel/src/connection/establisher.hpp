// Making a connection ready for use: transport connect (TCP or TLS), the initial hello, and
// authentication, all within connect_timeout. The pool gets this as its establisher; monitors
// use async_establish directly for their own connections.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>

#include "connection/connection.hpp"
#include "connection/handshake.hpp"
#include "pool/connection_pool.hpp"
#include "trellis/options.hpp"
#include "trellis/sdk/authenticator.hpp"
#include "trellis/sdk/transport.hpp"

namespace trellis::conn {

struct establish_settings {
    std::shared_ptr<sdk::transport> transport;
    sdk::connect_request connect;  // host, port, connect_timeout, TLS
    connection_settings connection;
    handshake::hello_options hello;
    /// A conversation for each new connection; empty: no authentication.
    std::function<std::unique_ptr<sdk::auth_conversation>()> authenticate;
};

/// Why a connection could not be established; message names the server and the reason.
struct establish_failure {
    std::error_code code;
    std::string message;
    /// The server's hello reply when the hello itself succeeded but the connection was refused
    /// for what it said (incompatible wire versions): a monitor still learns the server from it.
    std::optional<bson::document> hello_reply{};
    /// The CMAP spec's backpressure labels: SystemOverloadedError and RetryableError for a
    /// network error or timeout while connecting or during the hello (not for a DNS failure, a
    /// TLS refusal that is no I/O error, or anything in authentication), or the labels of a
    /// hello error reply that says SystemOverloadedError. Empty otherwise.
    std::vector<std::string> error_labels{};
    /// Load-balanced mode: the service a connection that failed after its hello belonged to
    /// (authentication); unset for failures before the handshake completed.
    std::optional<bson::oid> service_id{};
    explicit operator bool() const noexcept { return static_cast<bool>(code); }
};

/// The pool hands its waiters and SDAM only an error code, so a failure with backpressure
/// labels travels in a code of its own category; these turn it back into labels and a kind.
std::error_code pool_error_of(const establish_failure& f);
/// The labels a pool error carries (empty: none, or not an establishment error with labels).
std::vector<std::string> backpressure_labels(std::error_code ec);
/// errc::network_timeout or errc::connection_failure for a labelled code; `ec` otherwise.
std::error_code without_labels(std::error_code ec);

using establish_signature = void(establish_failure, std::unique_ptr<connection>);

/// Connect, hello, authenticate. `id` names the connection in its command events. Terminal
/// cancellation of the handler's slot closes whatever is open and fails the establishment.
void async_establish(boost::asio::any_io_executor executor, std::shared_ptr<const establish_settings> settings,
                     std::int64_t id, boost::asio::any_completion_handler<establish_signature> handler);

/// The same, as a pool's establisher. `on_failure` (may be empty) receives each failure with
/// its text, since the pool's completion carries only the error code.
pool::connection_establisher make_pool_establisher(boost::asio::any_io_executor executor,
                                                   std::shared_ptr<const establish_settings> settings,
                                                   std::function<void(const establish_failure&)> on_failure = {});

/// The transport request for one server: host, port, connect_timeout, TLS settings (tlsInsecure
/// relaxes certificate and hostname checks).
sdk::connect_request connect_request_for(const client_options& options, const server_address& server);

/// The handshake options the client options ask for: metadata (with appname), the compressors
/// the registry has (each asked-for one it lacks is a line in *warnings), saslSupportedMechs
/// when a credential names no mechanism.
handshake::hello_options hello_options_for(const client_options& options, const wire::compressor_registry& registry,
                                           std::vector<std::string>* warnings = nullptr);

}  // namespace trellis::conn
