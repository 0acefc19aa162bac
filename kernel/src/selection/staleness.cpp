// Staleness estimates (Max Staleness spec, "Client"). lastUpdateTime is read on the steady
// clock and lastWriteDate on the system clock; each formula only subtracts like from like.
#include "selection_internal.hpp"

namespace trellis::selection {

namespace {

using std::chrono::milliseconds;

milliseconds to_ms(auto d) { return std::chrono::duration_cast<milliseconds>(d); }

}  // namespace

std::optional<milliseconds> staleness_with_primary(const server_description& secondary,
                                                   const server_description& primary,
                                                   milliseconds heartbeat_frequency) {
    if (!secondary.last_write_date || !primary.last_write_date) return std::nullopt;
    // (S.lastUpdateTime - S.lastWriteDate) - (P.lastUpdateTime - P.lastWriteDate) + heartbeat
    //   = (S.lastUpdateTime - P.lastUpdateTime) - (S.lastWriteDate - P.lastWriteDate) + heartbeat
    const auto update_delta = secondary.last_update_time - primary.last_update_time;
    const auto write_delta = *secondary.last_write_date - *primary.last_write_date;
    return to_ms(update_delta) - to_ms(write_delta) + heartbeat_frequency;
}

std::optional<milliseconds> staleness_without_primary(const server_description& secondary,
                                                      const server_description& freshest_secondary,
                                                      milliseconds heartbeat_frequency) {
    if (!secondary.last_write_date || !freshest_secondary.last_write_date) return std::nullopt;
    return to_ms(*freshest_secondary.last_write_date - *secondary.last_write_date) + heartbeat_frequency;
}

std::optional<milliseconds> staleness(const topology_description& topology, const server_description& server,
                                      milliseconds heartbeat_frequency) {
    if (server.type != server_type::rs_secondary) return milliseconds(0);
    if (topology.type == topology_type::replica_set_with_primary) {
        for (const server_description& p : topology.servers)
            if (p.type == server_type::rs_primary) return staleness_with_primary(server, p, heartbeat_frequency);
        return std::nullopt;  // the description says there is a primary but holds none
    }
    if (topology.type == topology_type::replica_set_no_primary) {
        const server_description* freshest = nullptr;
        for (const server_description& s : topology.servers)
            if (s.type == server_type::rs_secondary && s.last_write_date &&
                (!freshest || *s.last_write_date > *freshest->last_write_date))
                freshest = &s;
        if (!freshest) return std::nullopt;
        return staleness_without_primary(server, *freshest, heartbeat_frequency);
    }
    return std::nullopt;
}

}  // namespace trellis::selection
