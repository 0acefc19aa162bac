// The SDAM events a change of the TopologyDescription publishes.
#include <algorithm>
#include <utility>

#include "sdam/internal.hpp"
#include "trellis/sdam.hpp"

namespace trellis::sdam {

detail::topology_diff detail::diff(const topology_description& previous, const topology_description& next,
                                   const server_description* processed) {
    // One merge walk over both server lists ordered by address: O(n) comparisons of unchanged
    // servers; each change is kept with its server's position, to list them in the order of the
    // descriptions (already so when their servers are ordered by address).
    const auto before = by_address(previous), after = by_address(next);
    const auto position = [](const topology_description& t, const server_description* s) {
        return static_cast<std::size_t>(s - t.servers.data());
    };
    std::vector<std::pair<std::size_t, topology_diff::change>> changed;
    std::vector<std::pair<std::size_t, const server_description*>> closed, opened;
    std::size_t i = 0, j = 0;
    while (i < before.size() || j < after.size()) {
        const int order = i == before.size()  ? 1
                          : j == after.size() ? -1
                                              : before[i]->address.compare(after[j]->address);
        if (order < 0) {  // removed
            const server_description* b = before[i++];
            // A server its own description removed (a wrong setName, a Standalone among replica
            // set members) was still replaced first: that change is published before its closing.
            if (processed && processed->address == b->address && !same_description(*b, *processed))
                changed.push_back({position(previous, b), {b, processed}});
            closed.emplace_back(position(previous, b), b);
        } else if (order > 0) {  // added
            const server_description* a = after[j++];
            opened.emplace_back(position(next, a), a);
        } else {
            const server_description* b = before[i++];
            const server_description* a = after[j++];
            if (!same_description(*b, *a)) changed.push_back({position(previous, b), {b, a}});
        }
    }
    const auto in_order = [](auto& list, auto& out) {
        const auto by_position = [](const auto& x, const auto& y) { return x.first < y.first; };
        if (!std::is_sorted(list.begin(), list.end(), by_position))
            std::stable_sort(list.begin(), list.end(), by_position);
        out.reserve(list.size());
        for (const auto& entry : list) out.push_back(entry.second);
    };
    topology_diff d;
    in_order(changed, d.changed);
    in_order(closed, d.closed);
    in_order(opened, d.opened);
    d.topology_changed =
        !d.changed.empty() || !d.closed.empty() || !d.opened.empty() || !same_topology_fields(previous, next);
    return d;
}

std::vector<sdam_event> detail::events_of(const topology_diff& d, const topology_description& previous,
                                          const topology_description& next, const bson::oid& topology_id) {
    std::vector<sdam_event> out;
    out.reserve(d.changed.size() + d.closed.size() + d.opened.size() + 1);
    for (const auto& c : d.changed)
        out.emplace_back(server_description_changed_event{topology_id, c.before->address, *c.before, *c.after});
    for (const server_description* s : d.closed) out.emplace_back(server_closed_event{topology_id, s->address});
    if (d.topology_changed) out.emplace_back(topology_description_changed_event{topology_id, previous, next});
    for (const server_description* s : d.opened) out.emplace_back(server_opening_event{topology_id, s->address});
    return out;
}


std::vector<sdam_event> description_events(const topology_description& previous, const topology_description& next,
                                           const bson::oid& topology_id) {
    return detail::events_of(detail::diff(previous, next, nullptr), previous, next, topology_id);
}

std::vector<sdam_event> description_events(const topology_description& previous, const topology_description& next,
                                           const server_description& processed, const bson::oid& topology_id) {
    return detail::events_of(detail::diff(previous, next, &processed), previous, next, topology_id);
}

std::vector<sdam_event> opening_events(const topology_description& initial, const bson::oid& topology_id) {
    std::vector<sdam_event> out;
    out.emplace_back(topology_opening_event{topology_id});
    if (initial.type == topology_type::load_balanced) {
        // The load balancers spec: no monitor ever checks it, yet its server goes from Unknown to
        // LoadBalancer as if one had.
        topology_description unknown = initial;
        for (server_description& s : unknown.servers) {
            const std::string address = s.address;
            s = server_description{};
            s.address = address;
        }
        out.emplace_back(topology_description_changed_event{topology_id, topology_description{}, unknown});
        for (std::size_t i = 0; i < initial.servers.size(); ++i) {
            out.emplace_back(server_opening_event{topology_id, initial.servers[i].address});
            out.emplace_back(server_description_changed_event{topology_id, initial.servers[i].address,
                                                              unknown.servers[i], initial.servers[i]});
        }
        out.emplace_back(topology_description_changed_event{topology_id, unknown, initial});
        return out;
    }
    out.emplace_back(topology_description_changed_event{topology_id, topology_description{}, initial});
    for (const server_description& s : initial.servers) out.emplace_back(server_opening_event{topology_id, s.address});
    return out;
}

std::vector<sdam_event> closing_events(const topology_description& last, const bson::oid& topology_id) {
    std::vector<sdam_event> out;
    for (const server_description& s : last.servers) out.emplace_back(server_closed_event{topology_id, s.address});
    topology_description closed;
    closed.seed_count = last.seed_count;
    if (!same_topology(last, closed)) out.emplace_back(topology_description_changed_event{topology_id, last, closed});
    out.emplace_back(topology_closed_event{topology_id});
    return out;
}

}  // namespace trellis::sdam
