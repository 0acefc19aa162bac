// The pure rules of the Server Discovery and Monitoring (SDAM) spec: no I/O, no clocks read,
// no threads. Monitors (later) call these functions with what they measured and publish the
// results; the spec tests call them directly.
//
//   parse_hello()               a hello (or legacy hello) reply -> ServerDescription
//   unknown_server()            a failed check -> ServerDescription of type Unknown
//   initial_topology()          the seeds and options -> the initial TopologyDescription
//   update() / apply()          "updating the TopologyDescription" with one ServerDescription
//   handle_application_error()  the spec's "Error handling": what an operation's error does
//   rtt_estimator               the round-trip-time moving average and the 10-sample minimum
//   description_events()        the SDAM events one change of the TopologyDescription publishes
//
//     auto topology = trellis::sdam::initial_topology(parse_uri(uri).options);
//     auto server = trellis::sdam::parse_hello("a:27017", reply, rtt, steady_clock::now());
//     auto next = trellis::sdam::apply(topology, server);
//     for (const sdam_event& e : trellis::sdam::description_events(topology, next, id)) publish(e);
//
// The value types (server_description, topology_description) live in the plugin SDK
// (trellis/sdk/sdam.hpp) so that topology strategies can read them; they are used here under
// their spec names.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/bson/oid.hpp"
#include "trellis/events.hpp"
#include "trellis/options.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis::sdam {

using sdk::server_description;
using sdk::server_type;
using sdk::topology_description;
using sdk::topology_type;
using sdk::topology_version;
using clock = std::chrono::steady_clock;

/// clientMinWireVersion and clientMaxWireVersion: the wire protocol range Trellis speaks.
inline constexpr int client_min_wire_version = 6;  // MongoDB 3.6
inline constexpr int client_max_wire_version = 25;

/// The wire version of MongoDB 4.2: state change errors from older servers clear the pool, and
/// so does invalidating an old primary that is older.
inline constexpr int wire_version_4_2 = 8;
/// The wire version of MongoDB 6.0: from it on, primaries are ordered by (electionId, setVersion);
/// before it by (setVersion, electionId).
inline constexpr int wire_version_6_0 = 17;

// ================================================================ addresses

/// The form every address takes in descriptions: "host:port", the host lower-cased, an IPv6
/// host in brackets, the default port 27017 added when none is given. A socket path (it holds a
/// '/') is kept as it is, lower-cased. Throws configuration_error for an empty address or a port
/// that is not a number from 1 to 65535.
std::string normalize_address(std::string_view address);

/// The address of a seed from the connection string, in the same form.
std::string address_of(const server_address& seed);

// ================================================================ topologyVersion

/// The spec's compareTopologyVersion(current, incoming): -1 when `incoming` is newer (or either
/// is missing, or the processIds differ), 0 when equal, 1 when `current` is newer.
int compare_topology_version(const std::optional<topology_version>& current,
                             const std::optional<topology_version>& incoming) noexcept;

// ================================================================ RTT

/// Round-trip time of one server: the moving average the server selection spec defines
/// (alpha 0.2; the first sample is taken as it is) and the minimum of the last 10 samples the
/// server monitoring spec defines (reported as zero until 2 samples were taken). A value: copy
/// it, keep one per monitored server, reset() it when a check fails.
class rtt_estimator {
public:
    static constexpr double alpha = 0.2;
    static constexpr std::size_t window = 10;
    using duration = std::chrono::duration<double, std::micro>;

    rtt_estimator() noexcept = default;
    /// Resumes from a known average, with no sample in the minimum's window. Throws
    /// std::invalid_argument for a negative or non-finite average.
    explicit rtt_estimator(duration average);

    /// Adds one measured round trip. Throws std::invalid_argument for a negative duration
    /// (a monotonic clock never gives one: it is the caller's bug).
    void add_sample(std::chrono::nanoseconds rtt);
    /// Forgets everything: the next sample is the first again.
    void reset() noexcept;

    /// The moving average, unset before the first sample.
    std::optional<duration> average() const noexcept { return average_; }
    /// The moving average rounded to whole microseconds (ServerDescription.roundTripTime).
    std::optional<std::chrono::microseconds> round_trip_time() const noexcept;
    /// The minimum of the last `window` samples; zero while fewer than 2 were taken
    /// (ServerDescription.minRoundTripTime).
    std::chrono::microseconds min_round_trip_time() const noexcept;
    /// Samples taken since construction or reset() (not capped at the window).
    std::size_t sample_count() const noexcept { return count_; }

private:
    std::optional<duration> average_;
    std::array<std::chrono::nanoseconds, window> recent_{};
    std::size_t count_ = 0;
};

// ================================================================ ServerDescription

/// A default ServerDescription of type Unknown for `address` (normalized), with an error text
/// when there is one (a failed check, a stale primary, an application error).
server_description unknown_server(std::string address, std::optional<std::string> error = std::nullopt);

/// The ServerDescription a successful hello (or legacy hello) exchange gives, per "Parsing a
/// hello or legacy hello response": the type from the reply (isWritablePrimary, else ismaster;
/// msg "isdbgrid"; isreplicaset; setName with secondary, arbiterOnly, hidden); hosts, passives,
/// arbiters, me and primary lower-cased; setName, setVersion, electionId, tags,
/// lastWrite.lastWriteDate and opTime, topologyVersion, logicalSessionTimeoutMinutes,
/// min/maxWireVersion, iscryptd, serviceId. `now` becomes lastUpdateTime, `rtt` roundTripTime.
///
/// Never throws for the reply's contents: a reply without "ok: 1" gives Unknown with the
/// server's errmsg (and code); a field of the wrong type or range gives Unknown with an error
/// naming the field, the type found and the type wanted ("malformed hello reply from a:27017:
/// field 'hosts' is string, expected array"). The reply's bytes are trusted as a
/// document_view's are: validate untrusted bytes first (document_view::validated).
server_description parse_hello(std::string address, bson::document_view reply,
                               std::optional<std::chrono::microseconds> rtt, clock::time_point now);

/// As above, with roundTripTime and minRoundTripTime taken from the server's estimator (which
/// should already hold this exchange's sample).
server_description parse_hello(std::string address, bson::document_view reply, const rtt_estimator& rtt,
                               clock::time_point now);

/// "Server Description Equality": the fields marked (=) are equal (hosts, passives and arbiters
/// compared as sets, tags as maps). Round-trip times, lastWriteDate, opTime and lastUpdateTime
/// are ignored. Addresses are compared too. PossiblePrimary counts as Unknown: the spec calls
/// the two synonymous for multi-threaded clients, so a primary hint alone publishes nothing.
bool same_description(const server_description& a, const server_description& b);

/// Whether two topology descriptions would look the same to a subscriber: type, setName,
/// maxSetVersion, maxElectionId, compatible and its error, logicalSessionTimeoutMinutes, and the
/// same servers by same_description().
bool same_topology(const topology_description& a, const topology_description& b);

// ================================================================ TopologyDescription

/// The initial TopologyDescription: one Unknown server per distinct seed (normalized, ordered
/// by address) and the initial TopologyType the spec's table gives:
///   load_balanced                      LoadBalanced (its one server of type LoadBalancer)
///   direct_connection                  Single (set_name, if any, is then verified)
///   set_name                           ReplicaSetNoPrimary
///   otherwise                          Unknown
/// Throws configuration_error for no seeds, several seeds with direct_connection or
/// load_balanced, and load_balanced with direct_connection or a set name.
topology_description initial_topology(const std::vector<std::string>& seeds, std::optional<std::string> set_name,
                                      bool direct_connection, bool load_balanced = false);

/// The same from parsed client options (hosts, replicaSet, directConnection, loadBalanced).
/// A mongodb+srv:// string must have been resolved first (its hosts filled in); without
/// directConnection and replicaSet it starts Unknown whatever the number of hosts.
topology_description initial_topology(const client_options& options);

/// SRV polling (polling-srv-records-for-mongos-discovery): the description with the servers
/// that are not in `hosts` (the verified SRV targets, "host:port") removed and those that are new
/// added as Unknown; servers that stay are left as they are. With srv_max_hosts positive and
/// below the number of hosts, new hosts are drawn at random (random_below(n): an index in
/// [0, n)) only until the topology holds srv_max_hosts servers. Only Sharded and Unknown
/// topologies change; an empty `hosts` changes nothing (the spec keeps the old list then).
topology_description apply_srv_hosts(const topology_description& current, const std::vector<std::string>& hosts,
                                     std::uint32_t srv_max_hosts,
                                     const std::function<std::size_t(std::size_t)>& random_below);

/// What processing one ServerDescription did, besides the new TopologyDescription.
struct update_result {
    topology_description topology;
    /// False when the description was dropped: its server is not (or no longer) in the
    /// topology, the topology is LoadBalanced, or its topologyVersion is older than the current
    /// one's. `topology` is then the input, unchanged.
    bool applied = false;
    /// Old primaries this update marked Unknown as stale ("primary marked stale due to
    /// electionId/setVersion mismatch"): a monitor must check them at once.
    std::vector<std::string> check_now;
    /// Those of them that ran MongoDB 4.0 or older (maxWireVersion < 8): their pools must be
    /// cleared too, since such a primary closes its connections when it steps down.
    std::vector<std::string> clear_pool;
};

/// "Updating the TopologyDescription" with a new ServerDescription: the Single rules (with the
/// setName check), the TopologyType table for the other types (updateUnknownWithStandalone,
/// updateRSWithoutPrimary, updateRSWithPrimaryFromMember, updateRSFromPrimary with the
/// (electionId, setVersion) order for maxWireVersion >= 17 and the (setVersion, electionId) order
/// before it, checkIfHasPrimary, remove), then wire version compatibility and
/// logicalSessionTimeoutMinutes. The input is not modified. A reply without "me" is never
/// removed for a "me" mismatch. Throws configuration_error only for a malformed address.
update_result update(const topology_description& current, server_description updated);

/// update(current, updated).topology.
topology_description apply(const topology_description& current, server_description updated);

/// The wire compatibility of one server: nullopt when compatible (or Unknown, or
/// PossiblePrimary, which has not been checked), else the spec's error message.
std::optional<std::string> compatibility_error(const server_description& server);

// ================================================================ errors

/// The kinds of application error the spec tells apart.
enum class error_kind {
    network,          ///< a network error other than a timeout
    network_timeout,  ///< a network timeout
    command,          ///< a command error reply (ok: 0) or a writeConcernError
    authentication,   ///< the authentication handshake failed (any cause)
};

std::string_view to_string(error_kind k) noexcept;

/// The parts of a command error SDAM reads.
struct command_error {
    std::optional<std::int32_t> code;
    std::string message;  ///< errmsg (or $err)
    std::optional<sdk::topology_version> topology_version;
};

/// The error SDAM looks at in a command reply: the reply's own when "ok" is not 1 (code,
/// errmsg or $err, topologyVersion), else its writeConcernError's (code, errmsg, with the
/// reply's topologyVersion); nullopt when it has neither. writeErrors are never looked at.
/// Fields of the wrong type are left out rather than trusted (a code that is not a number is no
/// code: the message then decides).
std::optional<command_error> command_error_of(bson::document_view reply);

/// "node is recovering": codes 11600, 11602, 13436, 189, 91; without a code, the message holds
/// "node is recovering" or "not master or secondary".
bool is_recovering(const command_error& e) noexcept;
/// "not writable primary": codes 10107, 13435, 10058; without a code, the message holds
/// "not master" and is not a recovering message.
bool is_not_writable_primary(const command_error& e) noexcept;
/// "node is shutting down": codes 11600 and 91 (never by message).
bool is_shutdown(const command_error& e) noexcept;
/// A State Change Error: recovering or not writable primary.
bool is_state_change(const command_error& e) noexcept;

/// One error an application operation met on a server.
struct application_error {
    std::string address;
    error_kind kind = error_kind::network;
    /// False while the connection was being established (handshake and authentication).
    bool handshake_completed = true;
    /// The connection's generation; for an error before the handshake completed, the pool's
    /// generation when the attempt started.
    std::int64_t generation = 0;
    /// The maxWireVersion of the connection (0 when unknown, as before a handshake).
    int max_wire_version = 0;
    /// For error_kind::command (and an authentication failure the server reported).
    std::optional<command_error> command;
    /// Text for a network error, a timeout or an authentication failure.
    std::string message;
    /// Load-balanced mode: the service the connection belonged to.
    std::optional<bson::oid> service_id;
    /// The error's labels. A network error or timeout with SystemOverloadedError (the pool adds
    /// it to those of connecting and the hello) leaves the server and its pool alone.
    std::vector<std::string> error_labels;
};

/// What the topology and the pool must do about an application error.
struct error_response {
    topology_description topology;  ///< the input unchanged unless marked_unknown
    bool marked_unknown = false;    ///< the server was replaced by an Unknown description
    bool clear_pool = false;        ///< clear the server's pool (under the topology's lock)
    /// Load-balanced mode: clear only this service's connections.
    std::optional<bson::oid> clear_service_id;
    bool request_check = false;  ///< request an immediate check of the server
    bool cancel_check = false;   ///< cancel the monitor's in-progress check
    /// Why, in one sentence ("stale: connection generation 0 < pool generation 1", ...).
    std::string reason;
};

/// The spec's handleError for an application error, given the server's current pool
/// generation. Stale errors (an older generation, or a State Change Error whose topologyVersion
/// is not newer than the server's) change nothing. A State Change Error marks the server Unknown
/// (keeping the error's topologyVersion), requests an immediate check, and clears the pool when
/// it is "node is shutting down" or came from a server older than 4.2. A network error (or a
/// timeout or authentication failure before the handshake completed) marks the server Unknown,
/// clears the pool and cancels the monitor's check; a timeout after the handshake changes
/// nothing. Other command errors change nothing. In LoadBalanced mode nothing is marked Unknown
/// and pools are cleared per service. An address not in the topology changes nothing.
error_response handle_application_error(const topology_description& current, const application_error& error,
                                        std::int64_t pool_generation);

// ================================================================ events

/// The events one change of the TopologyDescription publishes, in this order:
/// ServerDescriptionChanged for each server present before and after that is not
/// same_description() (by address), ServerClosed for each removed server,
/// TopologyDescriptionChanged when !same_topology(), ServerOpening for each added server.
std::vector<sdam_event> description_events(const topology_description& previous, const topology_description& next,
                                           const bson::oid& topology_id = {});

/// As above, knowing the ServerDescription that made `next` from `previous` (update()'s input):
/// when that description got its own server removed (a primary with the wrong setName, a
/// Standalone in a replica set), its replacement is published too, as ServerDescriptionChanged
/// before ServerClosed, as a driver that replaces the description and then removes the server
/// publishes them.
std::vector<sdam_event> description_events(const topology_description& previous, const topology_description& next,
                                           const server_description& processed, const bson::oid& topology_id = {});

/// What opening a topology publishes: TopologyOpening, TopologyDescriptionChanged from an
/// empty Unknown description to `initial`, ServerOpening for each of its servers. LoadBalanced
/// (the load balancers spec): TopologyOpening, TopologyDescriptionChanged to LoadBalanced with an
/// Unknown server, ServerOpening, ServerDescriptionChanged Unknown -> LoadBalancer,
/// TopologyDescriptionChanged to `initial`.
std::vector<sdam_event> opening_events(const topology_description& initial, const bson::oid& topology_id = {});

/// What closing a topology publishes (the logging and monitoring spec: the description becomes
/// Unknown with no servers): ServerClosed for each server, TopologyDescriptionChanged to the
/// empty Unknown description, TopologyClosed.
std::vector<sdam_event> closing_events(const topology_description& last, const bson::oid& topology_id = {});

}  // namespace trellis::sdam
