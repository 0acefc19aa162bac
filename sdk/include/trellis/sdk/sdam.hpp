// Server and topology descriptions, as the SDAM spec defines them. They are
// immutable values: the kernel's monitors produce new ones and publish
// std::shared_ptr<const topology_description> snapshots; strategies and
// selection read them. Names follow the spec, in C++ style.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trellis/bson/oid.hpp"
#include "trellis/bson/types.hpp"

namespace trellis::sdk {

enum class server_type {
    unknown,
    standalone,
    mongos,
    possible_primary,
    rs_primary,
    rs_secondary,
    rs_arbiter,
    rs_other,
    rs_ghost,
    load_balancer,
};

enum class topology_type { unknown, single, replica_set_no_primary, replica_set_with_primary, sharded, load_balanced };

struct topology_version {
    bson::oid process_id;
    std::int64_t counter = 0;
    friend bool operator==(const topology_version&, const topology_version&) = default;
};

// Fields the spec marks (=) take part in "server description equality" (which decides whether
// a ServerDescriptionChangedEvent is published); round_trip_time, min_round_trip_time,
// last_write_date, op_time and last_update_time do not. trellis::sdam::same_description()
// implements that comparison.
struct server_description {
    std::string address;  // "host:port", host lower-cased; IPv6 as "[::1]:27017"
    server_type type = server_type::unknown;
    std::optional<std::string> error;  // why it is Unknown, when it is (=)
    std::optional<std::chrono::microseconds> round_trip_time;      // moving average, alpha 0.2
    /// The minimum of the last 10 samples; zero until at least 2 samples were taken (the
    /// server monitoring spec's rule).
    std::optional<std::chrono::microseconds> min_round_trip_time;
    std::optional<std::chrono::system_clock::time_point> last_write_date;
    std::optional<bson::timestamp> op_time;
    std::chrono::steady_clock::time_point last_update_time{};
    int min_wire_version = 0;
    int max_wire_version = 0;
    std::optional<std::string> me;
    std::vector<std::string> hosts, passives, arbiters;
    std::map<std::string, std::string> tags;
    std::optional<std::string> set_name;
    std::optional<int> set_version;
    std::optional<bson::oid> election_id;
    std::optional<std::string> primary;
    std::optional<int> logical_session_timeout_minutes;
    std::optional<sdk::topology_version> topology_version;
    std::optional<bool> is_cryptd;          // "iscryptd" in the reply (a mongocryptd)
    std::optional<bson::oid> service_id;    // behind a load balancer (MongoDB 5.0+)
    bool hidden = false;

    bool is_data_bearing() const noexcept {
        return type == server_type::standalone || type == server_type::mongos || type == server_type::rs_primary ||
               type == server_type::rs_secondary || type == server_type::load_balancer;
    }
    bool is_writable() const noexcept {
        return type == server_type::standalone || type == server_type::mongos || type == server_type::rs_primary ||
               type == server_type::load_balancer;
    }
    bool is_readable() const noexcept { return is_writable() || type == server_type::rs_secondary; }
};

struct topology_description {
    topology_type type = topology_type::unknown;
    std::optional<std::string> set_name;
    std::optional<int> max_set_version;
    std::optional<bson::oid> max_election_id;
    std::vector<server_description> servers;  // ordered by address
    bool compatible = true;
    std::optional<std::string> compatibility_error;
    std::optional<int> logical_session_timeout_minutes;
    /// How many seeds the client was configured with: with TopologyType Unknown, a Standalone
    /// makes the topology Single when there was exactly one seed, and is removed otherwise.
    std::size_t seed_count = 0;

    /// The server of that address, or nullptr. A binary search (servers are ordered by
    /// address); a strategy that keeps another order (master-slave) gets a scan when it misses.
    const server_description* find(const std::string& address) const noexcept {
        const auto at = std::lower_bound(servers.begin(), servers.end(), address,
                                         [](const server_description& s, const std::string& a) { return s.address < a; });
        if (at != servers.end() && at->address == address) return &*at;
        for (const auto& s : servers)
            if (s.address == address) return &s;
        return nullptr;
    }
};

std::string_view to_string(server_type t) noexcept;
std::string_view to_string(topology_type t) noexcept;

inline std::string_view to_string(server_type t) noexcept {
    switch (t) {
        case server_type::unknown: return "Unknown";
        case server_type::standalone: return "Standalone";
        case server_type::mongos: return "Mongos";
        case server_type::possible_primary: return "PossiblePrimary";
        case server_type::rs_primary: return "RSPrimary";
        case server_type::rs_secondary: return "RSSecondary";
        case server_type::rs_arbiter: return "RSArbiter";
        case server_type::rs_other: return "RSOther";
        case server_type::rs_ghost: return "RSGhost";
        case server_type::load_balancer: return "LoadBalancer";
    }
    return "Unknown";
}

inline std::string_view to_string(topology_type t) noexcept {
    switch (t) {
        case topology_type::unknown: return "Unknown";
        case topology_type::single: return "Single";
        case topology_type::replica_set_no_primary: return "ReplicaSetNoPrimary";
        case topology_type::replica_set_with_primary: return "ReplicaSetWithPrimary";
        case topology_type::sharded: return "Sharded";
        case topology_type::load_balanced: return "LoadBalanced";
    }
    return "Unknown";
}

}  // namespace trellis::sdk
