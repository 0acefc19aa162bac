// The CMAP connection pool: pool_core (the rules, no I/O) driven on one Asio strand.
//
//   trellis::pool::pool_config config;
//   config.address = "db1:27017";
//   config.options = trellis::pool::pool_options_from(client_options);
//   config.establisher = make_establisher(...);          // TCP/TLS, handshake, auth
//   config.on_event = [](const trellis::cmap_event& e) {...};
//   trellis::pool::connection_pool pool(io.get_executor(), std::move(config));
//   pool.ready();                                   // SDAM does this after a successful check
//   auto conn = co_await pool.async_check_out(asio::use_awaitable);
//   ... use *conn ...
//   conn.reset();                                   // or pool.check_in(std::move(conn))
//
// Threads: every method may be called from any thread. State lives on the pool's strand, where
// everything happens in the order it was requested (ready(), clear(), close(), check-ins and
// check-outs are posted there, never run inline, so a method called from an event handler or a
// completion handler cannot re-enter the pool in the middle of a change). Events are emitted
// on the strand, except ConnectionPoolCreated, which the constructor emits.
//
// Establishing connections is not the pool's business: the establisher the pool is given does
// TCP/TLS, the handshake and authentication, and hands back a pooled_connection. Background
// maintenance (min_pool_size, closing perished connections) is a timer loop on the strand; it
// keeps the execution context busy (io_context::run() does not return) until the pool is closed.
//
// Lifetime: destroy the pool before its executor's execution context. Destroying the pool
// closes it. A checked-out connection refers to its pool weakly: let go of while the pool's
// state still exists, it is checked in (and closed, the pool being closed); let go of later
// (say, after the execution context is gone), it is just closed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/strand.hpp>

#include "pool/pool_core.hpp"
#include "trellis/errors.hpp"
#include "pool/pooled_connection.hpp"
#include "trellis/events.hpp"

namespace trellis {
struct client_options;
}

namespace trellis::pool {

namespace detail {
class pool_impl;
}

/// Checks a connection back in to the pool it came from when the owner lets go of it (the C++
/// form of CMAP's "withConnection"). If that pool no longer exists, the connection is closed.
struct check_in_deleter {
    std::weak_ptr<detail::pool_impl> pool;
    void operator()(pooled_connection* connection) const noexcept;
};

/// A checked-out connection. Destroying or resetting it checks it in.
using checked_out_connection = std::unique_ptr<pooled_connection, check_in_deleter>;

/// How the establisher reports: an error, or the established connection (ownership passes to
/// the pool). The handler is an Asio completion handler: its associated executor is the pool's
/// strand and its associated cancellation slot fires (terminal) when the pool gives up on the
/// connection (clear with interrupt_in_use, close). It may be invoked from any thread, once.
using establish_signature = void(std::error_code, std::unique_ptr<pooled_connection>);
using establish_handler = boost::asio::any_completion_handler<establish_signature>;

/// Establishes connection `id`: connect, handshake, authenticate; then calls the handler. Runs on
/// the pool's strand; must not block. The cancellation slot is emitted on the strand too, so an
/// establisher running its I/O elsewhere must make its cancellation handler thread-safe.
using connection_establisher = std::function<void(connection_id id, establish_handler handler)>;

struct pool_config {
    /// "host:port" of the server; every event carries it.
    std::string address;
    connection_pool_options options;
    connection_establisher establisher;
    /// Receives every CMAP event of this pool (see events.hpp). May be empty.
    cmap_event_handler on_event;
    /// Time between the end of one background run and the start of the next. Runs also start
    /// at once after ready() and clear(), and after an establishment that leaves the pool below
    /// min_pool_size. Unset: no background runs at all (for tests that must see check-out
    /// itself close perished connections); min_pool_size is then not maintained.
    std::optional<std::chrono::milliseconds> maintenance_interval = std::chrono::milliseconds(500);
    /// The time for idle checks and event durations. Empty: std::chrono::steady_clock::now.
    /// Wait queue timeouts use Asio timers, which keep real time.
    std::function<time_point()> clock;
    /// A failed establishment of a current-generation connection. Empty: the pool clears itself
    /// (what SDAM would do for a pre-handshake network error). Set: the pool leaves that to the
    /// handler (called on the strand with the error and the connection's generation), which
    /// hands it to SDAM; SDAM then calls clear() if the generation is still current.
    std::function<void(std::error_code, std::uint64_t generation)> on_establish_error;
    /// CMAP load balancer mode (see pool_core): generations per serviceId, clear_service().
    bool load_balanced = false;
};

struct clear_options {
    /// Also interrupt connections that are checked out or being established (a monitor timed
    /// out: they are presumed dead). CMAP interruptInUseConnections.
    bool interrupt_in_use = false;
};

/// The pool options a client's options ask for. An unset wait_queue_timeout is 0 here (no limit
/// in the pool; the operation's own deadline bounds the wait).
connection_pool_options pool_options_from(const client_options& options);

class connection_pool {
public:
    using executor_type = boost::asio::any_io_executor;  // the pool's strand (strand.hpp)
    using check_out_signature = void(std::error_code, checked_out_connection);

    /// Emits ConnectionPoolCreated; the pool starts paused. Throws configuration_error for
    /// invalid options or a missing establisher.
    connection_pool(boost::asio::any_io_executor executor, pool_config config);
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    executor_type get_executor() const noexcept;
    const std::string& address() const noexcept;

    /// Checks a connection out: an available one, a new one, or the first that comes free, in
    /// the order requests arrived. Completes with a pool_errc (closed, cleared, timed out),
    /// with the establisher's error, or with a connection. Any completion token: a callback,
    /// asio::use_future, asio::use_awaitable, asio::deferred (the default). As with every
    /// Trellis completion carrying a std::error_code, use_future and use_awaitable yield a
    /// std::tuple<std::error_code, checked_out_connection> rather than throw. Per-operation cancellation is
    /// honoured while the request waits in the queue (it then fails with operation_aborted and
    /// ConnectionCheckOutFailed reason timeout, the closest reason CMAP has); once a connection
    /// is being established for it, the request runs to completion.
    template <boost::asio::completion_token_for<check_out_signature> CompletionToken = boost::asio::deferred_t>
    auto async_check_out(CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, check_out_signature>(
            [](auto handler, const std::shared_ptr<detail::pool_impl>& impl) {
                start_check_out(impl, boost::asio::any_completion_handler<check_out_signature>(std::move(handler)));
            },
            token, impl_);
    }

    /// A connection at once when the caller runs on the pool's executor and an available one can
    /// be handed out now (with CMAP's events, as any check-out); otherwise empty: use
    /// async_check_out. Spares the check-out a trip through the io_context.
    checked_out_connection try_check_out();
    /// Same as letting go of the connection.
    void check_in(checked_out_connection connection);
    /// paused -> ready; no-op otherwise.
    void ready();
    /// New generation, paused, wait queue failed; see clear_options.
    void clear(clear_options options = {});
    /// Load balancer mode: only `service`'s connections go stale, if `if_generation` (a failed
    /// connection's generation) is still its generation; the pool stays ready.
    void clear_service(bson::oid service, std::optional<std::uint64_t> if_generation = std::nullopt);
    void close();

private:
    static void start_check_out(const std::shared_ptr<detail::pool_impl>& impl,
                                boost::asio::any_completion_handler<check_out_signature> handler);

    std::shared_ptr<detail::pool_impl> impl_;
};

}  // namespace trellis::pool
