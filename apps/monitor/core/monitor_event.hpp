// What the monitor keeps of one event the client reported: a value that copies cheaply (the
// descriptions and documents are shared, immutable), made on the client's strand and handed to
// the GUI thread. Times are taken when the event is converted: t_ms on the steady clock (for
// phases and durations), utc on the system clock (for logs and exports).
#pragma once

#include <QDateTime>
#include <QString>

#include <cstdint>
#include <memory>
#include <optional>

#include "trellis/bson/document.hpp"
#include "trellis/events.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis::monitor {

enum class event_family {
    sdam,      ///< an SDAM event
    cmap,      ///< a CMAP event (pool counts only; not logged)
    command,   ///< a command event (failed ones are logged)
    rtt,       ///< "RttSample": the driver's RTT average for a streaming member, polled
    workload,  ///< "CanaryWrite": the monitor's own optional w:majority write
    action,    ///< "Action": something the user (or a script) did to a simulated deployment
    alert,     ///< "AlertRaised" / "AlertCleared"
};

std::string_view to_string(event_family f) noexcept;

struct mon_event {
    std::int64_t t_ms = 0;  ///< steady clock, milliseconds
    QDateTime utc;          ///< system clock, UTC
    event_family family = event_family::sdam;
    QString type;           ///< the spec's name ("ServerHeartbeatFailed", "CommandFailed", ...)
    QString address;        ///< the member ("host:port"); empty for topology events

    std::optional<double> duration_ms;  ///< heartbeats and commands; RttSample: the average
    bool awaited = false;               ///< heartbeats: a streaming (awaitable) hello
    bool failed = false;                ///< heartbeat, command or canary failure
    QString error;                      ///< the failure's text
    /// Heartbeat succeeded: whether the reply says the server takes writes (primary, mongos,
    /// standalone).
    std::optional<bool> writable;

    QString command_name;      ///< commands
    int server_code = 0;       ///< CommandFailed: the reply's code
    bool state_change = false; ///< CommandFailed: a State Change Error (NotWritablePrimary, recovering)
    bool network_error = false;///< CommandFailed: not a server reply (network error or timeout)
    bool is_write = false;     ///< insert, update, delete, findAndModify, or a canary write

    std::shared_ptr<const sdk::server_description> previous_server, server;  ///< ServerDescriptionChanged
    std::shared_ptr<const sdk::topology_description> previous_topology, topology;  ///< TopologyDescriptionChanged
    /// The event's fields (and a heartbeat's reply) as BSON; detail_json() renders it.
    std::shared_ptr<const bson::document> detail;

    /// The detail as relaxed Extended JSON ("{}" when there is none).
    QString detail_json() const;
};

/// The steady clock's now in milliseconds.
std::int64_t steady_now_ms();

mon_event from_sdam(const sdam_event& e);
mon_event from_cmap(const cmap_event& e);
mon_event from_command(const command_event& e);

/// Display names: PRIMARY, SECONDARY, ARBITER, mongos, STANDALONE, OTHER, GHOST,
/// PossiblePrimary, LoadBalancer, Unknown.
QString display_type(sdk::server_type t);

/// The term servers since 4.0 put in an electionId (0x7fffffff, then the term big-endian);
/// nullopt for an electionId of another form.
std::optional<std::int64_t> term_of(const bson::oid& election_id);

/// UTC, ISO 8601 with milliseconds: "2026-12-05T22:51:01.123Z".
QString iso_utc(const QDateTime& t);

}  // namespace trellis::monitor
