// TopologyDescription: the initial description and "updating the TopologyDescription".
#include <algorithm>
#include <string_view>
#include <utility>

#include "trellis/errors.hpp"
#include "trellis/sdam.hpp"

namespace trellis::sdam {

namespace {

server_description* find_server(topology_description& t, const std::string& address) noexcept {
    return const_cast<server_description*>(std::as_const(t).find(address));
}

void remove_server(topology_description& t, const std::string& address) {
    std::erase_if(t.servers, [&](const server_description& s) { return s.address == address; });
}

bool address_less(const server_description& a, const server_description& b) noexcept { return a.address < b.address; }

// The members a reply lists (hosts, passives, arbiters), sorted and distinct.
std::vector<std::string_view> members_of(const server_description& from) {
    std::vector<std::string_view> out;
    out.reserve(from.hosts.size() + from.passives.size() + from.arbiters.size());
    for (const auto* list : {&from.hosts, &from.passives, &from.arbiters})
        for (const std::string& address : *list) out.emplace_back(address);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool has_primary(const topology_description& t) noexcept {
    return std::any_of(t.servers.begin(), t.servers.end(),
                       [](const server_description& s) { return s.type == server_type::rs_primary; });
}

void check_if_has_primary(topology_description& t) noexcept {
    t.type = has_primary(t) ? topology_type::replica_set_with_primary : topology_type::replica_set_no_primary;
}

// Adds an Unknown server for each member not in the topology yet, keeping servers ordered by
// address: one merge of two sorted lists, however many members the reply lists.
void add_members(topology_description& t, const server_description& from) {
    const std::vector<std::string_view> members = members_of(from);
    if (!std::is_sorted(t.servers.begin(), t.servers.end(), address_less))
        std::sort(t.servers.begin(), t.servers.end(), address_less);
    std::vector<std::string_view> missing;
    std::size_t i = 0;
    for (const std::string_view a : members) {
        while (i < t.servers.size() && t.servers[i].address < a) ++i;
        if (i == t.servers.size() || t.servers[i].address != a) missing.push_back(a);
    }
    if (missing.empty()) return;
    std::vector<server_description> merged;
    merged.reserve(t.servers.size() + missing.size());
    auto have = t.servers.begin();
    for (const std::string_view a : missing) {
        while (have != t.servers.end() && have->address < a) merged.push_back(std::move(*have++));
        server_description sd;
        sd.address = std::string(a);
        merged.push_back(std::move(sd));
    }
    while (have != t.servers.end()) merged.push_back(std::move(*have++));
    t.servers = std::move(merged);
}

void mark_possible_primary(topology_description& t, const server_description& from) {
    if (!from.primary) return;
    if (server_description* hinted = find_server(t, *from.primary))
        if (hinted->type == server_type::unknown) hinted->type = server_type::possible_primary;
}

// The spec's "description.address != description.me", for a reply that reports "me": a reply
// without it (servers before 1.6.2 and the spec's own test data) says nothing about its address.
bool me_mismatch(const server_description& sd) noexcept { return sd.me && *sd.me != sd.address; }

// null sorts before every ObjectId and every integer ("null values ... are always considered
// less than").
template <class T>
int compare_nullable(const std::optional<T>& a, const std::optional<T>& b) noexcept {
    if (!a && !b) return 0;
    if (!a) return -1;
    if (!b) return 1;
    return *a < *b ? -1 : (*b < *a ? 1 : 0);
}

void update_unknown_with_standalone(topology_description& t, const server_description& sd) {
    if (t.seed_count == 1)
        t.type = topology_type::single;
    else
        remove_server(t, sd.address);
}

void update_rs_without_primary(topology_description& t, const server_description& sd) {
    if (!t.set_name)
        t.set_name = sd.set_name;
    else if (t.set_name != sd.set_name) {
        remove_server(t, sd.address);
        return;
    }
    add_members(t, sd);
    mark_possible_primary(t, sd);
    if (me_mismatch(sd)) remove_server(t, sd.address);
}

void update_rs_with_primary_from_member(topology_description& t, const server_description& sd) {
    if (t.set_name != sd.set_name || me_mismatch(sd)) {
        remove_server(t, sd.address);
        check_if_has_primary(t);
        return;
    }
    if (!has_primary(t)) {
        t.type = topology_type::replica_set_no_primary;
        mark_possible_primary(t, sd);
    }
}

void mark_stale(topology_description& t, const server_description& sd, const char* why) {
    server_description* s = find_server(t, sd.address);
    server_description unknown = unknown_server(sd.address, std::string("primary marked stale due to ") + why);
    unknown.last_update_time = sd.last_update_time;
    *s = std::move(unknown);
    check_if_has_primary(t);
}

void update_rs_from_primary(update_result& r, const server_description& sd) {
    topology_description& t = r.topology;
    if (!t.set_name)
        t.set_name = sd.set_name;
    else if (t.set_name != sd.set_name) {
        remove_server(t, sd.address);
        check_if_has_primary(t);
        return;
    }

    if (sd.max_wire_version >= wire_version_6_0) {
        // (electionId, setVersion), in that order.
        const int election = compare_nullable(sd.election_id, t.max_election_id);
        if (election < 0) return mark_stale(t, sd, "mismatched electionId");
        if (election == 0 && compare_nullable(sd.set_version, t.max_set_version) < 0)
            return mark_stale(t, sd, "mismatched setVersion");
        t.max_election_id = sd.election_id;
        t.max_set_version = sd.set_version;
    } else {
        // Before MongoDB 6.0: (setVersion, electionId), and only when both sides have both.
        if (sd.set_version && sd.election_id) {
            if (t.max_set_version && t.max_election_id) {
                if (*t.max_set_version > *sd.set_version) return mark_stale(t, sd, "mismatched setVersion");
                if (*t.max_set_version == *sd.set_version && *t.max_election_id > *sd.election_id)
                    return mark_stale(t, sd, "mismatched electionId");
            }
            t.max_election_id = sd.election_id;
        }
        if (sd.set_version && (!t.max_set_version || *sd.set_version > *t.max_set_version))
            t.max_set_version = sd.set_version;
    }

    // Invalidate any other primary: it is stale.
    for (server_description& s : t.servers) {
        if (s.address == sd.address || s.type != server_type::rs_primary) continue;
        const bool old_server = s.max_wire_version < wire_version_4_2;
        server_description unknown =
            unknown_server(s.address, "primary marked stale due to electionId/setVersion mismatch (" + sd.address +
                                          " is the new primary)");
        r.check_now.push_back(s.address);
        if (old_server) r.clear_pool.push_back(s.address);
        s = std::move(unknown);
    }

    add_members(t, sd);
    const std::vector<std::string_view> members = members_of(sd);
    std::erase_if(t.servers, [&](const server_description& s) {
        return !std::binary_search(members.begin(), members.end(), std::string_view(s.address));
    });
    check_if_has_primary(t);
}

void update_compatibility(topology_description& t) {
    t.compatible = true;
    t.compatibility_error.reset();
    for (const server_description& s : t.servers)
        if (auto why = compatibility_error(s)) {
            t.compatible = false;
            t.compatibility_error = std::move(why);
            return;
        }
}

void update_logical_session_timeout(topology_description& t) {
    std::optional<int> smallest;
    for (const server_description& s : t.servers) {
        if (!s.is_data_bearing()) continue;
        if (!s.logical_session_timeout_minutes) {
            t.logical_session_timeout_minutes.reset();
            return;
        }
        if (!smallest || *s.logical_session_timeout_minutes < *smallest) smallest = s.logical_session_timeout_minutes;
    }
    t.logical_session_timeout_minutes = smallest;
}

}  // namespace

std::optional<std::string> compatibility_error(const server_description& s) {
    if (s.type == server_type::unknown || s.type == server_type::possible_primary ||
        s.type == server_type::load_balancer)
        return std::nullopt;
    if (s.min_wire_version > client_max_wire_version)
        return "Server at " + s.address + " requires wire version " + std::to_string(s.min_wire_version) +
               ", but this version of Trellis only supports up to " + std::to_string(client_max_wire_version) + ".";
    if (s.max_wire_version < client_min_wire_version)
        return "Server at " + s.address + " reports wire version " + std::to_string(s.max_wire_version) +
               ", but this version of Trellis requires at least " + std::to_string(client_min_wire_version) +
               " (MongoDB 3.6).";
    return std::nullopt;
}

topology_description initial_topology(const std::vector<std::string>& seeds, std::optional<std::string> set_name,
                                      bool direct_connection, bool load_balanced) {
    if (seeds.empty()) throw configuration_error("the seed list is empty: at least one server address is needed");
    std::vector<std::string> addresses;
    for (const std::string& seed : seeds) addresses.push_back(normalize_address(seed));
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    if (set_name && set_name->empty()) throw configuration_error("replicaSet must not be empty");

    topology_description t;
    t.seed_count = addresses.size();
    if (load_balanced) {
        if (direct_connection) throw configuration_error("loadBalanced=true cannot be used with directConnection=true");
        if (set_name) throw configuration_error("loadBalanced=true cannot be used with replicaSet");
        if (addresses.size() > 1) throw configuration_error("loadBalanced=true cannot be used with several hosts");
        t.type = topology_type::load_balanced;
    } else if (direct_connection) {
        if (addresses.size() > 1) throw configuration_error("directConnection=true cannot be used with several hosts");
        t.type = topology_type::single;
    } else if (set_name)
        t.type = topology_type::replica_set_no_primary;
    else
        t.type = topology_type::unknown;
    t.set_name = std::move(set_name);
    for (const std::string& a : addresses) {
        server_description sd;
        sd.address = a;
        if (load_balanced) sd.type = server_type::load_balancer;
        t.servers.push_back(std::move(sd));
    }
    return t;
}

topology_description initial_topology(const client_options& options) {
    if (options.is_srv && options.hosts.empty())
        throw configuration_error("mongodb+srv://" + options.srv_host +
                                  ": resolve the SRV records before building the topology (no hosts yet)");
    std::vector<std::string> seeds;
    for (const server_address& h : options.hosts) seeds.push_back(address_of(h));
    return initial_topology(seeds, options.replica_set, options.direct_connection.value_or(false),
                            options.load_balanced.value_or(false));
}

topology_description apply_srv_hosts(const topology_description& current, const std::vector<std::string>& hosts,
                                     std::uint32_t srv_max_hosts,
                                     const std::function<std::size_t(std::size_t)>& random_below) {
    if (current.type != topology_type::sharded && current.type != topology_type::unknown) return current;
    std::vector<std::string> wanted;
    for (const std::string& h : hosts) wanted.push_back(normalize_address(h));
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    if (wanted.empty()) return current;

    topology_description t = current;
    std::erase_if(t.servers, [&](const server_description& s) {
        return !std::binary_search(wanted.begin(), wanted.end(), s.address);
    });
    std::vector<std::string> fresh;
    for (const std::string& a : wanted)
        if (!t.find(a)) fresh.push_back(a);
    std::size_t room = fresh.size();
    if (srv_max_hosts > 0 && srv_max_hosts < wanted.size())
        room = srv_max_hosts > t.servers.size() ? std::min<std::size_t>(srv_max_hosts - t.servers.size(), fresh.size()) : 0;
    // The same partial Fisher-Yates as the initial choice (resolve_srv).
    for (std::size_t i = 0; i < room; ++i) std::swap(fresh[i], fresh[i + random_below(fresh.size() - i)]);
    fresh.resize(room);
    for (std::string& a : fresh) t.servers.push_back(unknown_server(std::move(a)));
    std::sort(t.servers.begin(), t.servers.end(), address_less);
    update_compatibility(t);
    update_logical_session_timeout(t);
    return t;
}

update_result update(const topology_description& current, server_description sd) {
    update_result r{current, false, {}, {}};
    topology_description& t = r.topology;
    if (t.type == topology_type::load_balanced) return r;  // a load balancer is never monitored
    sd.address = normalize_address(sd.address);
    server_description* old = find_server(t, sd.address);
    if (!old) return r;  // removed while it was being checked
    if (compare_topology_version(old->topology_version, sd.topology_version) > 0) return r;  // stale
    r.applied = true;

    if (t.type == topology_type::single) {
        if (t.set_name && sd.type != server_type::unknown && sd.set_name != t.set_name) {
            server_description unknown = unknown_server(
                sd.address, "replica set name mismatch: expected \"" + *t.set_name + "\", " + sd.address +
                                (sd.set_name ? " reports \"" + *sd.set_name + "\"" : std::string(" reports none")));
            unknown.last_update_time = sd.last_update_time;
            sd = std::move(unknown);
        }
        *old = std::move(sd);
    } else {
        *old = sd;
        switch (t.type) {
            case topology_type::unknown:
                switch (sd.type) {
                    case server_type::standalone: update_unknown_with_standalone(t, sd); break;
                    case server_type::mongos: t.type = topology_type::sharded; break;
                    case server_type::rs_primary:
                        t.type = topology_type::replica_set_with_primary;
                        update_rs_from_primary(r, sd);
                        break;
                    case server_type::rs_secondary:
                    case server_type::rs_arbiter:
                    case server_type::rs_other:
                        t.type = topology_type::replica_set_no_primary;
                        update_rs_without_primary(t, sd);
                        break;
                    default: break;  // Unknown, RSGhost: no-op
                }
                break;
            case topology_type::sharded:
                if (sd.type != server_type::unknown && sd.type != server_type::mongos) remove_server(t, sd.address);
                break;
            case topology_type::replica_set_no_primary:
                switch (sd.type) {
                    case server_type::standalone:
                    case server_type::mongos: remove_server(t, sd.address); break;
                    case server_type::rs_primary:
                        t.type = topology_type::replica_set_with_primary;
                        update_rs_from_primary(r, sd);
                        break;
                    case server_type::rs_secondary:
                    case server_type::rs_arbiter:
                    case server_type::rs_other: update_rs_without_primary(t, sd); break;
                    default: break;  // Unknown, RSGhost: no-op
                }
                break;
            case topology_type::replica_set_with_primary:
                switch (sd.type) {
                    case server_type::standalone:
                    case server_type::mongos:
                        remove_server(t, sd.address);
                        check_if_has_primary(t);
                        break;
                    case server_type::rs_primary: update_rs_from_primary(r, sd); break;
                    case server_type::rs_secondary:
                    case server_type::rs_arbiter:
                    case server_type::rs_other: update_rs_with_primary_from_member(t, sd); break;
                    default: check_if_has_primary(t); break;  // Unknown, RSGhost
                }
                break;
            case topology_type::single:
            case topology_type::load_balanced: break;  // handled above
        }
    }
    update_compatibility(t);
    update_logical_session_timeout(t);
    return r;
}

topology_description apply(const topology_description& current, server_description updated) {
    return update(current, std::move(updated)).topology;
}

}  // namespace trellis::sdam
