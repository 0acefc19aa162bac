// The SDAM events a change of the TopologyDescription publishes.
#include "trellis/sdam.hpp"

namespace trellis::sdam {

namespace {

std::vector<sdam_event> diff(const topology_description& previous, const topology_description& next,
                             const server_description* processed, const bson::oid& topology_id) {
    std::vector<sdam_event> out;
    for (const server_description& before : previous.servers) {
        const server_description* after = next.find(before.address);
        // A server its own description removed (a wrong setName, a Standalone among replica set
        // members) was still replaced first: that change is published before its closing.
        if (!after && processed && processed->address == before.address) after = processed;
        if (after && !same_description(before, *after))
            out.emplace_back(server_description_changed_event{topology_id, before.address, before, *after});
    }
    for (const server_description& before : previous.servers)
        if (!next.find(before.address)) out.emplace_back(server_closed_event{topology_id, before.address});
    if (!same_topology(previous, next))
        out.emplace_back(topology_description_changed_event{topology_id, previous, next});
    for (const server_description& after : next.servers)
        if (!previous.find(after.address)) out.emplace_back(server_opening_event{topology_id, after.address});
    return out;
}

}  // namespace

std::vector<sdam_event> description_events(const topology_description& previous, const topology_description& next,
                                           const bson::oid& topology_id) {
    return diff(previous, next, nullptr, topology_id);
}

std::vector<sdam_event> description_events(const topology_description& previous, const topology_description& next,
                                           const server_description& processed, const bson::oid& topology_id) {
    return diff(previous, next, &processed, topology_id);
}

std::vector<sdam_event> opening_events(const topology_description& initial, const bson::oid& topology_id) {
    std::vector<sdam_event> out;
    out.emplace_back(topology_opening_event{topology_id});
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
