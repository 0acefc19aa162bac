// One connection to a server: a transport stream, the wire codec and the handshake's results.
//
//   conn.async_run_command({"admin", ping}, [](std::error_code ec, command_reply reply) {...});
//
// Commands go out as OP_MSG (OP_QUERY for the first, legacy hello), compressed with the
// negotiated compressor unless the compression spec keeps them plain. A reply is matched to its
// request by responseTo. An exhaust reply (moreToCome) leaves the connection expecting more:
// async_read_more() reads the next one. Every read and write is bounded by the socket timeout
// (or the request's own): on expiry the stream is closed and the operation fails with
// errc::network_timeout. Any network or protocol error closes the stream and leaves the
// connection perished; an `ok: 0` reply is not an error here (it is the caller's to judge), but
// it is a CommandFailed event.
//
// Threads: one operation at a time. The operations may be started from any thread; they run on
// the stream's executor and complete through the handler's associated executor. interrupt()
// and close() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>

#include "connection/deferred_io.hpp"
#include "connection/handshake.hpp"
#include "pool/pooled_connection.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/events.hpp"
#include "trellis/sdk/transport.hpp"
#include "wire/codec.hpp"

namespace trellis::wire {
class buffer_cache;  // wire/frame_decoder.hpp
}

namespace trellis::conn {

using steady_time = std::chrono::steady_clock::time_point;

struct command_request {
    std::string database;
    bson::document command;  // without $db, unless has_db
    /// The command already ends with {$db: database} (the operation layer builds it in, saving
    /// the connection a copy of the command).
    bool has_db = false;
    /// OP_MSG kind-1 sections (e.g. "documents" of an insert); the spans must stay valid until
    /// the operation completes.
    std::vector<wire::document_sequence> sequences;
    /// Ask for an exhaust stream (the server may answer with moreToCome).
    bool exhaust_allowed = false;
    /// Unacknowledged (w: 0): sent with moreToCome; completes once written, with no reply.
    bool more_to_come = false;
    /// Overrides the connection's socket timeout for this operation (zero: none).
    std::optional<std::chrono::milliseconds> timeout;
    /// Send as OP_QUERY on admin.$cmd (the initial legacy hello only).
    bool op_query = false;
    /// The blocking caller this command runs for, which does its socket I/O when the stream
    /// allows (deferred_io.hpp); null: none. It outlives the command.
    io_parking* parking = nullptr;
};

struct command_reply {
    wire::message message;     // owns the bytes
    bson::document_view body;  // the reply document; empty for an unacknowledged write
    /// More replies follow on this connection (exhaust): read them with async_read_more.
    bool more_to_come = false;
    std::chrono::nanoseconds duration{0};

    bool ok() const noexcept;
};

struct connection_settings {
    std::string address;                                     // "host:port"
    std::optional<std::chrono::milliseconds> socket_timeout;  // unset or zero: none
    std::shared_ptr<const wire::compressor_registry> compressors;
    /// Where large replies' buffers are kept for the next one (shared by a client's connections); may be null.
    std::shared_ptr<wire::buffer_cache> buffers;
    command_event_handler on_command;                          // may be empty
    /// The Stable API's apiVersion (apiStrict, apiDeprecationErrors), added to every OP_MSG
    /// command, the handshake's hello included; empty: no API declared, nothing added.
    bson::document server_api;
};

namespace detail {
struct connection_state;
}

class connection final : public pool::pooled_connection {
public:
    using command_signature = void(std::error_code, command_reply);

    connection(std::unique_ptr<sdk::stream> stream, connection_settings settings);
    ~connection() override;

    const std::string& address() const noexcept;
    /// What the handshake found; set by the establisher once hello has answered.
    const handshake::connection_description& description() const noexcept;
    void set_description(handshake::connection_description d);
    /// The pool's id, for events (the pool stamps id() only when it takes the connection over).
    void set_event_id(std::int64_t id) noexcept;
    /// The stream, e.g. for the peer certificate (X.509 authentication).
    const sdk::stream& stream() const noexcept;

    /// Runs one command and completes with its reply or a network/protocol error. Any completion
    /// token; use_future and use_awaitable yield a tuple (error_code, command_reply).
    template <boost::asio::completion_token_for<command_signature> CompletionToken = boost::asio::deferred_t>
    auto async_run_command(command_request request, CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, command_signature>(
            [this](auto handler, command_request req) {
                start_command(std::move(req), boost::asio::any_completion_handler<command_signature>(std::move(handler)));
            },
            token, std::move(request));
    }

    /// The next reply of an exhaust stream (after a reply with more_to_come). `timeout` bounds
    /// the wait (a streaming hello waits up to maxAwaitTimeMS plus the connect timeout).
    template <boost::asio::completion_token_for<command_signature> CompletionToken = boost::asio::deferred_t>
    auto async_read_more(std::optional<std::chrono::milliseconds> timeout, CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, command_signature>(
            [this](auto handler, std::optional<std::chrono::milliseconds> t) {
                start_read_more(t, boost::asio::any_completion_handler<command_signature>(std::move(handler)));
            },
            token, timeout);
    }

    /// The text of the last failure (names the server and the reason); empty if none.
    std::string last_error() const;
    steady_time last_used() const noexcept;

    bool is_perished() const noexcept override;
    void close() noexcept override;
    void interrupt() noexcept override;
    std::optional<bson::oid> service_id() const noexcept override { return description().service_id; }

private:
    void start_command(command_request request, boost::asio::any_completion_handler<command_signature> handler);
    void start_read_more(std::optional<std::chrono::milliseconds> timeout,
                         boost::asio::any_completion_handler<command_signature> handler);

    std::shared_ptr<detail::connection_state> state_;
};

/// True for the commands the monitoring spec redacts (name compared without case), and for
/// hello/isMaster carrying speculativeAuthenticate.
bool is_sensitive_command(std::string_view name, bson::document_view command) noexcept;

}  // namespace trellis::conn
