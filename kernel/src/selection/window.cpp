// The latency window and the choice within it (Server Selection: "Filtering suitable servers
// based on the latency window", steps 6-7 "power of two random choices").
#include <algorithm>
#include <stdexcept>

#include "selection_internal.hpp"

namespace trellis::selection {

std::vector<const server_description*> in_latency_window(std::span<const server_description* const> servers,
                                                         std::chrono::milliseconds local_threshold) {
    std::optional<std::chrono::microseconds> fastest;
    for (const server_description* s : servers)
        if (s && s->round_trip_time && (!fastest || *s->round_trip_time < *fastest)) fastest = s->round_trip_time;

    std::vector<const server_description*> out;
    for (const server_description* s : servers) {
        if (!s) continue;
        if (!fastest)
            out.push_back(s);  // nobody measured (a load balancer): all are in
        else if (s->round_trip_time && *s->round_trip_time <= *fastest + local_threshold)
            out.push_back(s);
    }
    return out;
}

namespace detail {

const server_description* choose(std::span<const server_description* const> servers,
                                 const operation_count_lookup& operation_count, const random_index& random_below) {
    if (servers.empty()) return nullptr;
    if (servers.size() == 1) return servers.front();
    if (!operation_count) throw std::invalid_argument("selection::choose: no operation count lookup given");
    if (!random_below) throw std::invalid_argument("selection::choose: no random source given");
    const std::size_t n = servers.size();
    const std::size_t first = random_below(n);
    std::size_t second = random_below(n - 1);  // among the other n - 1: two distinct servers
    if (first >= n || second >= n - 1)
        throw std::invalid_argument("selection::choose: the random source returned an index out of range");
    if (second >= first) ++second;
    const server_description* a = servers[first];
    const server_description* b = servers[second];
    return operation_count(*b) < operation_count(*a) ? b : a;
}

}  // namespace detail
}  // namespace trellis::selection
