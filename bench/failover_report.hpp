// trellis-bench failover: the pure parts, tested without a deployment or a child
// process (bench/tests/failover_report_test.cpp): reading the PyMongo script's summary
// line, the median, the ratio and the --json document.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace trellis_bench::failover {

/// The task name in the --json output.
inline constexpr std::string_view task_name = "failover_first_write";

/// A malformed summary, a ratio of nothing, and the like.
struct report_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The last line bench/failover/pymongo_failover.py prints.
struct pymongo_summary {
    double median_ms = 0;
    std::vector<double> samples_ms;   // one per stepdown, in order
    std::int64_t lost = 0;            // acknowledged _ids missing at the end
    std::int64_t acknowledged = 0;    // insert_one calls that returned
    std::int64_t counted = 0;         // documents on the primary at the end
    std::int64_t failed_writes = 0;   // insert_one calls that raised
    std::string pymongo_version;      // "3.11.0"
};

/// Median of a non-empty sample (the mean of the two middle values for an even count).
double median(std::vector<double> samples);

/// Parses one summary line: a JSON object with "median_ms" (number), "samples" (a non-empty
/// array of positive numbers), "lost" (integer) and optionally "acknowledged", "counted",
/// "failed_writes", "pymongo". Checks that median_ms is the median of samples (to 1 us).
/// Throws report_error naming what is wrong.
pymongo_summary parse_pymongo_summary(std::string_view line);

/// Returns the summary among the script's stdout lines (the last line holding "median_ms"),
/// or nullopt when there is none.
std::optional<pymongo_summary> find_pymongo_summary(const std::vector<std::string>& lines);

/// trellis_ms / pymongo_ms (below 1: Trellis recovers sooner). Both must be finite and > 0,
/// else report_error.
double failover_ratio(double trellis_ms, double pymongo_ms);

/// The --json document, one line with a trailing newline:
/// {"tasks":[{"name":"failover_first_write","trellis_ms":…,"pymongo_ms":…,"ratio":…}]}
/// Throws report_error as failover_ratio does.
std::string failover_json(double trellis_ms, double pymongo_ms);

}  // namespace trellis_bench::failover
