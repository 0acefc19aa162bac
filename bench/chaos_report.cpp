// trellis-bench chaos: the pure parts (chaos.hpp): reconciliation and the --json document.
#include <boost/json.hpp>

#include "chaos.hpp"

namespace trellis_bench::chaos {

namespace {
constexpr std::size_t ids_kept = 10;

boost::json::object counts(const std::map<std::string, std::int64_t>& m) {
    boost::json::object o;
    for (const auto& [k, v] : m) o[k] = v;
    return o;
}
}  // namespace

reconciliation reconcile(const std::set<write_id>& attempted, const std::set<write_id>& acknowledged,
                         const std::vector<write_id>& found) {
    reconciliation r;
    std::map<write_id, int> seen;
    for (const write_id& id : found) ++seen[id];
    for (const auto& [id, n] : seen) {
        if (n > 1) {
            ++r.duplicated;
            if (r.duplicated_ids.size() < ids_kept) r.duplicated_ids.push_back(id);
        }
        if (!attempted.contains(id)) ++r.unknown;
        else if (!acknowledged.contains(id)) ++r.failed_present;
    }
    for (const write_id& id : acknowledged)
        if (!seen.contains(id)) {
            ++r.lost;
            if (r.lost_ids.size() < ids_kept) r.lost_ids.push_back(id);
        }
    return r;
}

std::string report_json(const report& r) {
    const boost::json::object root{
        {"acknowledged", r.acknowledged},
        {"failed", r.failed},
        {"lost", r.lost},
        {"duplicated", r.duplicated},
        {"hung", r.hung},
        {"faults", r.faults},
        {"seconds", r.seconds},
        {"seed", r.seed},
        {"failed_by_error", counts(r.failed_by_error)},
        {"faults_by_kind", counts(r.faults_by_kind)},
        {"repairs", r.repairs},
        {"reads", r.reads},
        {"reads_failed", r.reads_failed},
        {"reads_failed_by_error", counts(r.reads_failed_by_error)},
        {"failed_present", r.failed_present},
        {"unknown", r.unknown},
        {"max_write_ms", r.max_write_ms},
        {"max_read_ms", r.max_read_ms},
        {"slow", r.slow},
        {"slow_limit_ms", r.slow_limit_ms},
        {"hang_limit_ms", r.hang_limit_ms},
        {"writers", r.writers},
    };
    return boost::json::serialize(root) + "\n";
}

}  // namespace trellis_bench::chaos
