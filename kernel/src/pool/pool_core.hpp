// The CMAP connection pool as a state machine, without I/O, threads or timers.
//
// pool_core owns the pool's state (paused/ready/closed, generation, the available connections,
// the pending ones, the wait queue) and applies the CMAP rules to it. Each input is a method
// that takes the current time; each emits its events synchronously through the handler and
// appends to `out` what the caller must do next: start or cancel an establishment, complete a
// check-out request, run the background maintenance soon. connection_pool (connection_pool.hpp)
// is the Asio shell that feeds it: one strand, timers, the establisher. Tests drive it directly.
//
// Not thread-safe: exactly one owner calls it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <variant>
#include <vector>

#include "pool/pooled_connection.hpp"
#include "trellis/events.hpp"

namespace trellis::pool {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

/// Names one check-out request; chosen by the caller, unique among live requests.
using request_id = std::uint64_t;

/// The pool's state per CMAP. A pool starts paused, becomes ready through ready(), is paused
/// again by clear(), and stays closed once closed.
enum class pool_state { paused, ready, closed };

constexpr std::string_view to_string(pool_state s) noexcept {
    switch (s) {
        case pool_state::paused: return "paused";
        case pool_state::ready: return "ready";
        case pool_state::closed: return "closed";
    }
    return "unknown";
}

namespace action {
/// Establish connection `id` (call the establisher). With a requester, the connection is
/// for that check-out request, which has left the wait queue (its wait timer stops).
struct establish {
    connection_id id;
    std::optional<request_id> requester;
};
/// Interrupt the establishment of `id`; its result, when it comes, is closed and ignored.
struct cancel_establish {
    connection_id id;
};
/// Complete check-out `request`: with a connection (now in use) or with an error.
struct complete {
    request_id request;
    std::error_code error;
    std::unique_ptr<pooled_connection> connection;
};
/// Run background_run() as soon as possible (after ready(), clear(), or an establishment
/// that left the pool below min_pool_size).
struct run_background {};
}  // namespace action

using pool_action = std::variant<action::establish, action::cancel_establish, action::complete, action::run_background>;
using pool_actions = std::vector<pool_action>;

/// The CMAP counts, plus the wait queue's length.
struct pool_counts {
    std::size_t total = 0;      ///< pending + available + in use
    std::size_t available = 0;
    std::size_t pending = 0;    ///< being established
    std::size_t in_use = 0;     ///< checked out
    std::size_t waiting = 0;    ///< requests in the wait queue
};

class pool_core {
public:
    /// Emits ConnectionPoolCreated. The options must be valid (validate_pool_options()).
    /// clear_on_establish_error: whether a failed establishment of a current-generation
    /// connection clears the pool by itself. SDAM does that in a full client (a pre-handshake
    /// network error marks the server Unknown and clears its pool); a pool without SDAM above it
    /// keeps the rule here so that it stops hammering a server that is down.
    /// load_balanced: CMAP's load balancer mode. Each connection takes the generation of its
    /// service (pooled_connection::service_id()) when it is established, and clear_service()
    /// makes one service's connections stale without pausing the pool.
    pool_core(std::string address, connection_pool_options options, cmap_event_handler on_event,
              bool clear_on_establish_error = true, bool load_balanced = false);
    pool_core(const pool_core&) = delete;
    pool_core& operator=(const pool_core&) = delete;
    /// Closes the connections it still holds, without events.
    ~pool_core();

    /// A check-out request arrives: ConnectionCheckOutStarted, then either an immediate
    /// completion (closed or paused pool, an available connection), an establishment for it,
    /// or a place at the back of the wait queue (is_waiting()).
    void check_out(request_id request, time_point now, pool_actions& out);
    /// A connection comes back. It must be one this pool handed out and not yet taken back;
    /// anything else is closed without events.
    void check_in(std::unique_ptr<pooled_connection> connection, time_point now, pool_actions& out);
    /// The establisher finished connection `id`. Results for ids the pool no longer waits for
    /// (interrupted, pool closed) are closed and ignored.
    void establish_succeeded(connection_id id, std::unique_ptr<pooled_connection> connection, time_point now,
                             pool_actions& out);
    void establish_failed(connection_id id, std::error_code error, time_point now, pool_actions& out);
    /// The request leaves the wait queue without a connection: its wait timed out or it was
    /// cancelled. ConnectionCheckOutFailed(timeout) and a completion with `error`. Nothing
    /// happens if the request is no longer waiting (it got a connection, or one is being
    /// established for it).
    void abandon(request_id request, std::error_code error, time_point now, pool_actions& out);

    void ready(pool_actions& out);
    void clear(bool interrupt_in_use, time_point now, pool_actions& out);
    /// Load balancer mode: the connections of `service` become stale (PoolClearedEvent with its
    /// serviceId); the pool stays ready and its wait queue waits on. With `if_generation`, only
    /// when that is still the service's generation (an error on a stale connection clears
    /// nothing). No-op outside load balancer mode.
    void clear_service(const bson::oid& service, std::optional<std::uint64_t> if_generation, time_point now,
                       pool_actions& out);
    void close(time_point now, pool_actions& out);
    /// One run of the CMAP background thread: close perished available connections, then
    /// (ready pools only) start establishing connections up to min_pool_size, as far as
    /// max_connecting allows right now. Never waits for anything.
    void background_run(time_point now, pool_actions& out);
    /// Whether a background run could do anything: available connections that may perish, a
    /// ready pool below min_pool_size, or waiters. An idle pool of a monitored server needs no
    /// timer (a client watching 100 servers would otherwise wake 200 times a second for nothing).
    bool needs_background_run() const noexcept {
        return state_ != pool_state::closed &&
               (!available_.empty() || !wait_queue_.empty() ||
                (state_ == pool_state::ready && total() < options_.min_pool_size));
    }

    pool_state state() const noexcept { return state_; }
    std::uint64_t generation() const noexcept { return generation_; }
    /// Load balancer mode: the generation of `service` (0 for one the pool has no connection to).
    std::uint64_t service_generation(const bson::oid& service) const noexcept;
    /// Load balancer mode: how many connections of `service` exist (established, not closed).
    std::size_t service_connections(const bson::oid& service) const noexcept;
    pool_counts counts() const noexcept;
    bool is_waiting(request_id request) const noexcept;
    /// Whether a check_out() now hands out an available connection at once: the pool is ready,
    /// nobody waits, and an available connection has not perished.
    bool can_hand_out(time_point now) const noexcept;
    /// The generation of a connection being established, if `id` is one.
    std::optional<std::uint64_t> pending_generation(connection_id id) const noexcept;
    const std::string& address() const noexcept { return address_; }
    const connection_pool_options& options() const noexcept { return options_; }

private:
    struct waiter {
        request_id id;
        time_point started;  // ConnectionCheckOutStarted, for the durations
    };
    struct available_connection {
        std::unique_ptr<pooled_connection> connection;
        time_point since;  // when it became available, for max_idle_time
    };
    struct pending_connection {
        std::uint64_t generation;
        time_point created;
        std::optional<waiter> requester;  // none: populating the pool (min_pool_size)
    };

    // Not emit(): Qt defines that as a macro, and Qt code (the monitor) includes this header.
    void publish(cmap_event event) noexcept;
    void service_wait_queue(time_point now, pool_actions& out);
    std::unique_ptr<pooled_connection> take_available(time_point now);
    std::optional<connection_closed_reason> perished(const available_connection& a, time_point now) const noexcept;
    void create(std::optional<waiter> requester, time_point now, pool_actions& out);
    void hand_out(const waiter& w, std::unique_ptr<pooled_connection> connection, time_point now, pool_actions& out);
    void fail(const waiter& w, connection_check_out_failed_reason reason, std::error_code error, time_point now,
              pool_actions& out);
    void close_connection(std::unique_ptr<pooled_connection> connection, connection_closed_reason reason) noexcept;
    void after_establishment(time_point now, pool_actions& out);
    /// The connection's generation is behind its pool's (or its service's, load balanced).
    bool stale(const pooled_connection& c) const noexcept;
    /// A connection of a service goes: one fewer for its entry, dropped at zero (CMAP).
    void forget_service(const pooled_connection& c) noexcept;
    std::size_t total() const noexcept { return available_.size() + pending_.size() + in_use_.size(); }
    std::size_t unclaimed_pending() const noexcept;
    bool below_max_size() const noexcept {
        return options_.max_pool_size == 0 || total() < options_.max_pool_size;
    }

    std::string address_;
    connection_pool_options options_;
    cmap_event_handler on_event_;
    bool clear_on_establish_error_;
    bool load_balanced_;
    struct service_entry {
        std::uint64_t generation = 0;
        std::size_t connections = 0;
    };
    struct oid_less {
        bool operator()(const bson::oid& a, const bson::oid& b) const noexcept { return a.bytes() < b.bytes(); }
    };
    std::map<bson::oid, service_entry, oid_less> services_;  // load balancer mode, by serviceId

    pool_state state_ = pool_state::paused;
    std::uint64_t generation_ = 0;
    connection_id next_id_ = 1;
    std::vector<available_connection> available_;  // the back is the most recently checked in
    std::map<connection_id, pending_connection> pending_;
    std::unordered_map<connection_id, pooled_connection*> in_use_;  // owned by whoever checked them out
    std::deque<waiter> wait_queue_;
};

/// Throws configuration_error unless max_connecting > 0 and min_pool_size <= max_pool_size
/// (when max_pool_size is not 0) and both timeouts are not negative.
void validate_pool_options(const connection_pool_options& options);

}  // namespace trellis::pool
