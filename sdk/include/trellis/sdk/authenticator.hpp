// Plugin kind "authenticator": one or more auth mechanisms (SCRAM-SHA-1,
// SCRAM-SHA-256, MONGODB-X509, PLAIN). An authenticator runs its conversation
// over a connection the kernel has just handshaken; the kernel gives it a way to
// run commands on that connection and nothing more.
#pragma once

#include "trellis/reply.hpp"
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/errors.hpp"
#include "trellis/options.hpp"
#include "trellis/sdk/plugin.hpp"

namespace trellis::sdk {

/// Why authentication failed: the server's code (18 AuthenticationFailed, ...) and message.
struct auth_failure {
    std::error_code code;  // empty on success
    int server_code = 0;
    std::string message;
};

/// What a reply to an authentication command says: nothing when ok is 1, otherwise the
/// failure with the server's code and errmsg (authentication_failed).
inline std::optional<auth_failure> refusal_of(bson::document_view reply) {
    if (reply_ok(reply)) return std::nullopt;
    const auto code = reply.find("code");
    const auto msg = reply.find("errmsg");
    return auth_failure{make_error_code(errc::authentication_failed),
                        code && code->is_number() ? static_cast<int>(code->as_int64()) : 0,
                        msg && msg->type() == bson::type::string ? std::string(msg->get_string())
                                                                  : "the server refused authentication"};
}

/// The connection being authenticated.
class TRELLIS_SDK_VISIBLE auth_connection {
public:
    virtual ~auth_connection() = default;
    /// Runs one command on database db; completes with the reply (ok or not) or a network error.
    virtual void async_run_command(std::string db, bson::document command,
                                   boost::asio::any_completion_handler<void(std::error_code, bson::document)> handler) = 0;
    /// The hello reply of the handshake (saslSupportedMechs, speculativeAuthenticate, maxWireVersion).
    virtual bson::document_view hello_reply() const = 0;
    /// "host:port" of the server.
    virtual std::string address() const = 0;
};

/// One authentication on one connection: it may start inside the handshake
/// (speculativeAuthenticate) and finishes on the same connection.
class TRELLIS_SDK_VISIBLE auth_conversation {
public:
    virtual ~auth_conversation() = default;
    /// The document to send as hello's speculativeAuthenticate, if the mechanism supports it.
    virtual std::optional<bson::document> speculative_request() { return std::nullopt; }
    /// Runs (or, after a speculative first step, finishes) the conversation. Completes with
    /// an empty auth_failure on success.
    virtual void async_run(auth_connection& connection,
                           boost::asio::any_completion_handler<void(auth_failure)> handler) = 0;
};

/// The mechanisms an authenticator implements are declared, not asked: the class lists them in
/// a static member that TRELLIS_PLUGIN puts into the descriptor, so the host finds the plugin
/// for a mechanism without creating any:
///   static constexpr const char* provides[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", nullptr};
class TRELLIS_SDK_VISIBLE authenticator : public plugin {
public:
    /// A conversation for one connection, before its handshake.
    virtual std::unique_ptr<auth_conversation> begin(const credential& cred) = 0;
};

}  // namespace trellis::sdk
