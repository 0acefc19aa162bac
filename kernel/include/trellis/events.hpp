// Monitoring events: what the driver reports to subscribers while it works.
//
// Each specification that defines events gets its own section, its own std::variant of event
// structs and its own handler type, so that a subscriber to one family never has to know about
// the others:
//
//   CMAP (connection monitoring and pooling)   cmap_event,  cmap_event_handler   (below)
//   SDAM (server discovery and monitoring)     sdam_event,  sdam_event_handler   (below)
//   command monitoring                         command_event, command_event_handler (below)
//
// Names follow the specifications in C++ style: ConnectionCheckedOutEvent is
// connection_checked_out_event, connectionId is connection_id, and each struct carries the name
// the specification's tests use for it (type_name, e.g. "ConnectionCheckedOut"). Durations are
// std::chrono durations measured on a monotonic clock. Reasons are enums whose to_string() gives
// the specification's strings ("poolClosed", "connectionError", ...).
//
// Handlers are called synchronously, in the order the events happen, on the executor of the
// component that emits them (a pool's strand for CMAP). They must not block and must not throw;
// an exception from a handler is swallowed so that it cannot corrupt the emitter's state.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

#include "trellis/bson/document.hpp"
#include "trellis/bson/oid.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis {

// ================================================================ CMAP

/// The CMAP specification's ConnectionPoolOptions, as one pool uses them. It lives here because
/// ConnectionPoolCreatedEvent carries it; client_options (options.hpp) holds the same settings
/// for a whole client, and every pool of a client is made with the same values.
struct connection_pool_options {
    std::uint32_t max_pool_size = 100;  ///< zero: no maximum
    std::uint32_t min_pool_size = 0;    ///< kept filled in the background while the pool is ready
    std::uint32_t max_connecting = 2;   ///< connections established at the same time; at least 1
    std::chrono::milliseconds max_idle_time{0};       ///< zero: connections never become idle
    std::chrono::milliseconds wait_queue_timeout{0};  ///< zero: no limit on waiting for a connection

    friend bool operator==(const connection_pool_options&, const connection_pool_options&) = default;
};

/// ConnectionClosedEvent.reason.
enum class connection_closed_reason {
    stale,        ///< the pool was cleared, making the connection no longer valid
    idle,         ///< the connection was available for longer than max_idle_time
    error,        ///< the connection experienced an error (including a failed establishment)
    pool_closed,  ///< the pool was closed
};

/// ConnectionCheckOutFailedEvent.reason.
enum class connection_check_out_failed_reason {
    pool_closed,       ///< the pool was closed
    timeout,           ///< waiting for a connection took longer than wait_queue_timeout
    connection_error,  ///< the pool was paused or cleared, or establishing the connection failed
};

constexpr std::string_view to_string(connection_closed_reason r) noexcept {
    switch (r) {
        case connection_closed_reason::stale: return "stale";
        case connection_closed_reason::idle: return "idle";
        case connection_closed_reason::error: return "error";
        case connection_closed_reason::pool_closed: return "poolClosed";
    }
    return "unknown";
}

constexpr std::string_view to_string(connection_check_out_failed_reason r) noexcept {
    switch (r) {
        case connection_check_out_failed_reason::pool_closed: return "poolClosed";
        case connection_check_out_failed_reason::timeout: return "timeout";
        case connection_check_out_failed_reason::connection_error: return "connectionError";
    }
    return "unknown";
}

/// Pool events name the pool by the address of its server ("host:port").
struct pool_created_event {
    static constexpr std::string_view type_name = "ConnectionPoolCreated";
    std::string address;
    connection_pool_options options;
};

struct pool_ready_event {
    static constexpr std::string_view type_name = "ConnectionPoolReady";
    std::string address;
};

struct pool_cleared_event {
    static constexpr std::string_view type_name = "ConnectionPoolCleared";
    std::string address;
    /// Load-balanced mode only: the service whose connections were cleared.
    std::optional<bson::oid> service_id;
    bool interrupt_in_use_connections = false;
};

struct pool_closed_event {
    static constexpr std::string_view type_name = "ConnectionPoolClosed";
    std::string address;
};

/// Connection ids start at 1 in each pool and grow by 1 in order of creation.
struct connection_created_event {
    static constexpr std::string_view type_name = "ConnectionCreated";
    std::string address;
    std::int64_t connection_id = 0;
};

struct connection_ready_event {
    static constexpr std::string_view type_name = "ConnectionReady";
    std::string address;
    std::int64_t connection_id = 0;
    /// From ConnectionCreated to this event: the time establishment took.
    std::chrono::nanoseconds duration{0};
};

struct connection_closed_event {
    static constexpr std::string_view type_name = "ConnectionClosed";
    std::string address;
    std::int64_t connection_id = 0;
    connection_closed_reason reason = connection_closed_reason::error;
};

struct connection_check_out_started_event {
    static constexpr std::string_view type_name = "ConnectionCheckOutStarted";
    std::string address;
};

struct connection_check_out_failed_event {
    static constexpr std::string_view type_name = "ConnectionCheckOutFailed";
    std::string address;
    connection_check_out_failed_reason reason = connection_check_out_failed_reason::connection_error;
    /// From ConnectionCheckOutStarted to this event.
    std::chrono::nanoseconds duration{0};
};

struct connection_checked_out_event {
    static constexpr std::string_view type_name = "ConnectionCheckedOut";
    std::string address;
    std::int64_t connection_id = 0;
    /// From ConnectionCheckOutStarted to this event (establishment included, if there was one).
    std::chrono::nanoseconds duration{0};
};

struct connection_checked_in_event {
    static constexpr std::string_view type_name = "ConnectionCheckedIn";
    std::string address;
    std::int64_t connection_id = 0;
};

using cmap_event = std::variant<pool_created_event, pool_ready_event, pool_cleared_event, pool_closed_event,
                                connection_created_event, connection_ready_event, connection_closed_event,
                                connection_check_out_started_event, connection_check_out_failed_event,
                                connection_checked_out_event, connection_checked_in_event>;

/// The specification's name of the event's type ("ConnectionPoolCreated", "ConnectionCheckedOut", ...).
inline std::string_view event_name(const cmap_event& e) noexcept {
    return std::visit([](const auto& ev) noexcept { return std::decay_t<decltype(ev)>::type_name; }, e);
}

/// The address every CMAP event carries.
inline const std::string& event_address(const cmap_event& e) noexcept {
    return std::visit([](const auto& ev) noexcept -> const std::string& { return ev.address; }, e);
}

/// Receives every event of a pool, in order (see the top of this file).
using cmap_event_handler = std::function<void(const cmap_event&)>;

// ---------------------------------------------------------------- command monitoring
// The Command Logging and Monitoring spec's events. For the sensitive commands (authenticate,
// saslStart, saslContinue, getnonce, createUser, updateUser, copydbgetnonce, copydbsaslstart,
// copydb, and hello/isMaster carrying speculativeAuthenticate) the command and the reply are
// empty documents and a failure's message is left out.

struct command_started_event {
    static constexpr std::string_view type_name = "CommandStarted";
    std::string address;                  // "host:port"
    std::int64_t connection_id = 0;       // the pool's id of the connection
    std::optional<std::int64_t> server_connection_id;
    std::optional<bson::oid> service_id;  // load-balanced mode: the connection's serviceId
    std::int32_t request_id = 0;
    std::string database_name;
    std::string command_name;
    bson::document command;               // with $db, as sent
};

struct command_succeeded_event {
    static constexpr std::string_view type_name = "CommandSucceeded";
    std::string address;
    std::int64_t connection_id = 0;
    std::optional<std::int64_t> server_connection_id;
    std::optional<bson::oid> service_id;  // load-balanced mode: the connection's serviceId
    std::int32_t request_id = 0;
    std::string database_name;
    std::string command_name;
    std::chrono::nanoseconds duration{0};  // from before the write to after the reply was decoded
    bson::document reply;
};

struct command_failed_event {
    static constexpr std::string_view type_name = "CommandFailed";
    std::string address;
    std::int64_t connection_id = 0;
    std::optional<std::int64_t> server_connection_id;
    std::optional<bson::oid> service_id;  // load-balanced mode: the connection's serviceId
    std::int32_t request_id = 0;
    std::string database_name;
    std::string command_name;
    std::chrono::nanoseconds duration{0};
    std::error_code code;        // operation_failure for ok: 0, else the network or protocol error
    int server_code = 0;         // the reply's code, for ok: 0
    std::string failure;         // errmsg, or the network error's text (empty when redacted)
    bson::document reply;        // the ok: 0 reply (empty for network errors and when redacted)
};

using command_event = std::variant<command_started_event, command_succeeded_event, command_failed_event>;
using command_event_handler = std::function<void(const command_event&)>;

inline std::string_view event_name(const command_event& e) noexcept {
    return std::visit([](const auto& ev) noexcept { return std::decay_t<decltype(ev)>::type_name; }, e);
}


// ================================================================ SDAM

// The SDAM logging and monitoring spec's events. Every event names the topology it belongs to
// (topology_id: unique per topology, fixed from its creation to its closing). Descriptions are
// carried by value: an event stays valid whatever happens to the topology afterwards, and a
// monitoring UI can show both sides of a change. trellis::sdam::description_events()
// (trellis/sdam.hpp) computes the description events from two topology descriptions.

/// The first SDAM event of a topology.
struct topology_opening_event {
    static constexpr std::string_view type_name = "TopologyOpening";
    bson::oid topology_id;
};

/// The last SDAM event of a topology.
struct topology_closed_event {
    static constexpr std::string_view type_name = "TopologyClosed";
    bson::oid topology_id;
};

/// A server was added to the topology (its description is the default Unknown one), before its
/// monitor starts.
struct server_opening_event {
    static constexpr std::string_view type_name = "ServerOpening";
    bson::oid topology_id;
    std::string address;
};

/// A server was removed from the topology and its monitor stopped.
struct server_closed_event {
    static constexpr std::string_view type_name = "ServerClosed";
    bson::oid topology_id;
    std::string address;
};

/// A server's description changed by the spec's "server description equality" (a change of
/// round-trip time alone publishes nothing).
struct server_description_changed_event {
    static constexpr std::string_view type_name = "ServerDescriptionChanged";
    bson::oid topology_id;
    std::string address;
    sdk::server_description previous_description;
    sdk::server_description new_description;
};

/// The topology description changed. The first one a topology publishes starts from an Unknown
/// description with no servers.
struct topology_description_changed_event {
    static constexpr std::string_view type_name = "TopologyDescriptionChanged";
    bson::oid topology_id;
    sdk::topology_description previous_description;
    sdk::topology_description new_description;
};

/// A monitor is about to send hello (or, for a new monitoring connection, to open the socket).
struct server_heartbeat_started_event {
    static constexpr std::string_view type_name = "ServerHeartbeatStarted";
    bson::oid topology_id;
    std::string address;  ///< the spec's connectionId: the monitored server's "host:port"
    /// An awaitable (streaming) hello: its duration includes the server's wait.
    bool awaited = false;
};

/// A monitor's hello succeeded.
struct server_heartbeat_succeeded_event {
    static constexpr std::string_view type_name = "ServerHeartbeatSucceeded";
    bson::oid topology_id;
    std::string address;
    /// Sending the command to reading its reply. When !awaited, the same measurement that fed the
    /// RTT average.
    std::chrono::nanoseconds duration{0};
    bson::document reply;
    bool awaited = false;
};

/// A monitor's hello failed: a network error or timeout, or an ok: 0 reply.
struct server_heartbeat_failed_event {
    static constexpr std::string_view type_name = "ServerHeartbeatFailed";
    bson::oid topology_id;
    std::string address;
    std::chrono::nanoseconds duration{0};
    std::string failure;        ///< what went wrong, one sentence
    std::error_code error;      ///< the same as a code (a trellis::errc when it is Trellis's own)
    std::optional<bson::document> reply;  ///< the ok: 0 reply, when there was one
    bool awaited = false;
};

using sdam_event = std::variant<topology_opening_event, topology_closed_event, server_opening_event,
                                server_closed_event, server_description_changed_event,
                                topology_description_changed_event, server_heartbeat_started_event,
                                server_heartbeat_succeeded_event, server_heartbeat_failed_event>;

/// The specification's name of the event's type ("ServerOpening", "TopologyDescriptionChanged", ...).
inline std::string_view event_name(const sdam_event& e) noexcept {
    return std::visit([](const auto& ev) noexcept { return std::decay_t<decltype(ev)>::type_name; }, e);
}

/// The topology every SDAM event belongs to.
inline const bson::oid& event_topology_id(const sdam_event& e) noexcept {
    return std::visit([](const auto& ev) noexcept -> const bson::oid& { return ev.topology_id; }, e);
}

/// The server an SDAM event is about; nullptr for the topology events.
inline const std::string* event_address(const sdam_event& e) noexcept {
    return std::visit(
        [](const auto& ev) noexcept -> const std::string* {
            if constexpr (requires { ev.address; })
                return &ev.address;
            else
                return nullptr;
        },
        e);
}

/// Receives every SDAM event of a topology, in order (see the top of this file).
using sdam_event_handler = std::function<void(const sdam_event&)>;

/// A plugin, an event handler, or a completion handler run on the client's own io_context threw
/// into the client. The client carried on: the call was abandoned (an event not delivered, a
/// topology update not applied, a cursor killed at once instead of as the manager wanted, the
/// rest of a completion handler) and this report says where and why.
struct callback_failure {
    std::string where;  // e.g. "SDAM event handler", "cursor_manager \"deferred\": on_cursor_closed"
    std::string what;   // the exception's message
};

/// Receives callback failures (on the thread that made the call; keep it short and do not
/// throw). When none is set, each failure is written to standard error as one line.
using callback_failure_handler = std::function<void(const callback_failure&)>;

}  // namespace trellis
