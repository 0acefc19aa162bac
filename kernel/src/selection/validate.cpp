// Read preference validation (Server Selection: tag_sets and maxStalenessSeconds; Max Staleness:
// "Smallest allowed value for maxStalenessSeconds").
#include "selection_internal.hpp"

namespace trellis::selection {

std::optional<std::string> validate(const read_preference& preference, topology_type topology,
                                    std::chrono::milliseconds heartbeat_frequency) {
    using std::chrono::milliseconds;
    if (preference.mode == read_preference_mode::primary) {
        if (detail::has_tags(preference))
            return "read preference mode primary cannot have tag sets, got " +
                   detail::tag_sets_text(preference.tag_sets);
        if (preference.max_staleness)
            return "maxStalenessSeconds cannot be used with read preference mode primary, got " +
                   std::to_string(preference.max_staleness->count());
    }
    if (!preference.max_staleness) return std::nullopt;
    const std::chrono::seconds max = *preference.max_staleness;
    if (max.count() <= 0)
        return "maxStalenessSeconds must be positive (unset means no maximum), got " + std::to_string(max.count());
    if (topology != topology_type::replica_set_with_primary && topology != topology_type::replica_set_no_primary)
        return std::nullopt;  // Single, Sharded, LoadBalanced, Unknown: passed through or unused
    if (max < smallest_max_staleness)
        return "maxStalenessSeconds " + std::to_string(max.count()) + " is less than the smallest allowed, " +
               std::to_string(smallest_max_staleness.count()) + " seconds";
    const milliseconds floor = heartbeat_frequency + idle_write_period;
    if (milliseconds(max) < floor)
        return "maxStalenessSeconds " + std::to_string(max.count()) + " (" + std::to_string(milliseconds(max).count()) +
               " ms) is less than heartbeatFrequencyMS " + std::to_string(heartbeat_frequency.count()) +
               " + idleWritePeriodMS " + std::to_string(idle_write_period.count()) + " = " +
               std::to_string(floor.count()) + " ms";
    return std::nullopt;
}

}  // namespace trellis::selection
