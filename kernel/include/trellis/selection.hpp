// Server selection as pure functions: the Server Selection and Max Staleness specifications.
//
// Everything here works on values (a topology description, a read preference, durations)
// and performs no I/O. The random source and the operation counts are parameters, so tests
// and the kernel's selection loop get the same, deterministic behaviour. Topology-strategy
// plugins link libtrellis and call these from their suitable_servers().
//
// The steps of one selection, as the spec's multi-threaded algorithm orders them:
//
//   if (auto e = validate(rp, topology.type, heartbeat_frequency)) -> error (configuration_error)
//   auto s = suitable_servers(topology, operation, deprioritized);   // step 3, with why-not lines
//   auto w = in_latency_window(s.servers, local_threshold);          // step 5
//   const server_description* chosen = choose(w, operation_count, random);  // steps 6-7
//
// select() runs the last three in one call.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/options.hpp"
#include "trellis/sdk/sdam.hpp"
#include "trellis/sdk/topology_strategy.hpp"

namespace trellis::selection {

using sdk::server_description;
using sdk::server_type;
using sdk::topology_description;
using sdk::topology_type;

/// idleWritePeriodMS: an idle primary writes a no-op to the oplog this often (Max Staleness).
inline constexpr std::chrono::milliseconds idle_write_period{10'000};
/// smallestMaxStalenessSeconds.
inline constexpr std::chrono::seconds smallest_max_staleness{90};
/// localThresholdMS's default.
inline constexpr std::chrono::milliseconds default_local_threshold{15};

// ---------------------------------------------------------------- validation

/// Why the read preference cannot be used with this topology type, or nullopt when it can:
/// - a non-empty tag set with mode primary (an empty one, `{}`, is allowed);
/// - maxStalenessSeconds with mode primary, or not positive;
/// - with ReplicaSetWithPrimary or ReplicaSetNoPrimary: maxStalenessSeconds below
///   smallest_max_staleness (90 s) or below heartbeat_frequency + idle_write_period.
/// Other topology types pass maxStalenessSeconds through (a mongos checks it itself).
/// The text names the option, the value and the rule, e.g.
/// "maxStalenessSeconds 60 is less than the smallest allowed, 90 seconds".
std::optional<std::string> validate(const read_preference& preference, topology_type topology,
                                    std::chrono::milliseconds heartbeat_frequency);

// ---------------------------------------------------------------- staleness

/// A secondary's estimated staleness against the primary P (Max Staleness spec):
///   (S.lastUpdateTime - S.lastWriteDate) - (P.lastUpdateTime - P.lastWriteDate) + heartbeatFrequency
/// The two clocks are never mixed: the lastUpdateTime difference is taken on the steady clock,
/// the lastWriteDate difference on the system clock. May be negative for a moment.
/// nullopt when S or P has no lastWriteDate.
std::optional<std::chrono::milliseconds> staleness_with_primary(const server_description& secondary,
                                                                const server_description& primary,
                                                                std::chrono::milliseconds heartbeat_frequency);

/// A secondary's estimated staleness when there is no primary, against SMax, the secondary
/// with the greatest lastWriteDate:  SMax.lastWriteDate - S.lastWriteDate + heartbeatFrequency.
/// nullopt when S or SMax has no lastWriteDate.
std::optional<std::chrono::milliseconds> staleness_without_primary(const server_description& secondary,
                                                                   const server_description& freshest_secondary,
                                                                   std::chrono::milliseconds heartbeat_frequency);

/// The staleness of one server of the topology, by the formula its topology type calls for:
/// zero for anything but an RSSecondary (a primary, a mongos, a standalone are never stale);
/// for a secondary, against the primary in ReplicaSetWithPrimary and against the freshest
/// secondary in ReplicaSetNoPrimary. nullopt when it cannot be estimated: a lastWriteDate is
/// missing, or a secondary in a topology of another type.
std::optional<std::chrono::milliseconds> staleness(const topology_description& topology,
                                                   const server_description& server,
                                                   std::chrono::milliseconds heartbeat_frequency);

// ---------------------------------------------------------------- suitable servers

/// The servers suitable for an operation, and for every other server of the topology one line
/// saying why it is not, for the error a caller raises when selection times out, e.g.
/// "127.0.0.1:27018: RSSecondary, tags {dc: ny} do not match any tag set".
struct suitability {
    std::vector<const server_description*> servers;  ///< in the topology's order; point into it
    std::vector<std::string> why_not;                ///< one line per unsuitable server, same order
    /// True when every non-deprioritized server was unsuitable and the deprioritized ones were
    /// considered again (the spec's second pass).
    bool deprioritized_used = false;
};

/// Step 3 of the spec's algorithm. Reads (kind read and kind command: the generic command
/// method selects like a read) follow the read preference:
/// - Unknown: no server; Single: the one server if it is available (not Unknown or
///   PossiblePrimary), whatever the read preference; Sharded: every Mongos; LoadBalanced:
///   the load balancer;
/// - ReplicaSetWithPrimary / ReplicaSetNoPrimary by mode: primary, primaryPreferred (the
///   primary if known, else as secondary), secondary, secondaryPreferred (as secondary, else
///   the primary), nearest; candidates filtered by maxStalenessSeconds, then by the first tag
///   set that matches a candidate (an empty tag set matches any server, an empty list too).
/// Writes (and in_request operations, which go where writes go) need a writable server: the
/// primary of a replica set, any Mongos, the single server, the load balancer.
///
/// `deprioritized` lists addresses to avoid (servers that failed an operation now retried):
/// they are left out, and considered again only when nothing else suits. Staleness is still
/// estimated against the whole topology (a deprioritized primary still dates the secondaries).
///
/// Throws configuration_error with validate()'s text when the read preference is invalid for
/// the topology type. Does not check topology.compatible (the caller's step 2).
suitability suitable_servers(const topology_description& topology, const sdk::operation_requirements& operation,
                             std::span<const std::string> deprioritized = {});

// ---------------------------------------------------------------- latency window

/// Step 5: the servers whose average round-trip time is within local_threshold of the
/// fastest (A <= RTT <= A + local_threshold), in their given order. A server without an
/// average RTT is outside the window, unless none has one (a load balancer is not
/// monitored): then all are inside.
std::vector<const server_description*> in_latency_window(std::span<const server_description* const> servers,
                                                         std::chrono::milliseconds local_threshold);

// ---------------------------------------------------------------- choosing one

/// A server's operationCount: the operations it is executing now.
using operation_count_lookup = std::function<std::size_t(const server_description&)>;
/// random_below(n): a uniformly drawn index in [0, n).
using random_index = std::function<std::size_t(std::size_t)>;

namespace detail {
const server_description* choose(std::span<const server_description* const> servers,
                                 const operation_count_lookup& operation_count, const random_index& random_below);
}  // namespace detail

/// Steps 6-7, "power of two random choices": two distinct servers drawn at random, the one
/// with the lower operationCount wins (a tie goes to the first drawn). One server: that one.
/// nullptr when `servers` is empty. Throws std::invalid_argument when random_below returns
/// an index out of range.
template <std::uniform_random_bit_generator Random>
const server_description* choose(std::span<const server_description* const> servers,
                                 const operation_count_lookup& operation_count, Random& random) {
    return detail::choose(servers, operation_count, [&random](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
    });
}

/// suitable_servers, in_latency_window and choose in one call: the chosen server (nullptr
/// when none suits), plus the suitability for the caller's why-not lines.
struct selection_outcome {
    const server_description* server = nullptr;
    suitability suitable;
};

template <std::uniform_random_bit_generator Random>
selection_outcome select(const topology_description& topology, const sdk::operation_requirements& operation,
                         std::span<const std::string> deprioritized, std::chrono::milliseconds local_threshold,
                         const operation_count_lookup& operation_count, Random& random) {
    selection_outcome out;
    out.suitable = suitable_servers(topology, operation, deprioritized);
    const auto window = in_latency_window(out.suitable.servers, local_threshold);
    out.server = choose(std::span<const server_description* const>(window), operation_count, random);
    return out;
}

// ---------------------------------------------------------------- passing the read preference

/// The `$readPreference` document (Document structure): `mode` in camel case; for other modes
/// than primary, `tags` when a tag set is non-empty (the whole list, in order, `{}` included)
/// and `maxStalenessSeconds` when set. For mode primary, only `{mode: "primary"}`.
bson::document read_preference_document(const read_preference& preference);

enum class wire_protocol { op_msg, op_query };

/// What a read sends for its read preference to the server it was given.
struct read_preference_to_send {
    std::optional<bson::document> read_preference;  ///< the $readPreference value, when one is sent
    bool secondary_ok = false;                      ///< OP_QUERY's SecondaryOk flag
};

/// The rules of "Passing read preference to mongos and load balancers" and of the topology
/// types for a read sent to `server` in a topology of type `topology`:
/// - Mongos or LoadBalancer (any topology type): OP_MSG: $readPreference unless the mode is
///   primary; OP_QUERY: SecondaryOk unless primary, and $readPreference for every mode but
///   primary and secondaryPreferred without tags and maxStalenessSeconds;
/// - Single, Standalone: nothing (no read preference to a standalone);
/// - Single, any other type: OP_QUERY: SecondaryOk always; OP_MSG: $readPreference, with mode
///   primary turned into {mode: "primaryPreferred"} so that any member can answer;
/// - replica sets: for every mode but primary, $readPreference (OP_MSG) or SecondaryOk (OP_QUERY).
/// Writes send no read preference; this is for reads only.
read_preference_to_send read_preference_for(const read_preference& preference, topology_type topology,
                                            server_type server, wire_protocol protocol);

// ---------------------------------------------------------------- text

/// "{dc: ny, rack: 2}"; "{}" for an empty set.
std::string to_string(const tag_set& tags);
/// For error messages: "primary", "secondary, tag sets [{dc: ny}, {}], maxStalenessSeconds 120".
std::string to_string(const read_preference& preference);

}  // namespace trellis::selection
