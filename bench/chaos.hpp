// trellis-bench chaos: writers and readers on one shared trellis::client against an
// in-process trellis-sim replica set of 3, while a seeded controller steps down, kills,
// restarts, partitions and heals members; at the end everything is read back and checked.
// See README.md ("trellis-bench chaos").
//
// The pure parts (reconciling what was acknowledged with what was read back, the --json
// document) are here so that bench/tests/chaos_report_test.cpp tests them without a
// deployment.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace trellis_bench::chaos {

/// One insert: the writer's index and its sequence number ({w: writer, s: seq} in the document).
using write_id = std::pair<std::int32_t, std::int64_t>;

/// What the final read found, against what the writers were told.
struct reconciliation {
    std::int64_t lost = 0;            ///< acknowledged, but not found
    std::int64_t duplicated = 0;      ///< ids found more than once (each id counted once)
    std::int64_t failed_present = 0;  ///< the insert failed, yet the document is there (allowed)
    std::int64_t unknown = 0;         ///< found, but never attempted (a harness or server bug)
    std::vector<write_id> lost_ids;   ///< the first few, for the report
    std::vector<write_id> duplicated_ids;
};

/// `attempted` holds every id an insert was tried for; `acknowledged` those whose insert
/// returned; `found` every id the final read returned, repeats included.
reconciliation reconcile(const std::set<write_id>& attempted, const std::set<write_id>& acknowledged,
                         const std::vector<write_id>& found);

/// The figures of one run.
struct report {
    std::int64_t acknowledged = 0;
    std::int64_t failed = 0;
    std::map<std::string, std::int64_t> failed_by_error;  ///< "NotWritablePrimary (10107)": n
    std::int64_t lost = 0;
    std::int64_t duplicated = 0;
    std::int64_t slow = 0;  ///< operations longer than the slow limit, not the hang limit (allowed)
    std::int64_t hung = 0;  ///< operations (writes and reads) longer than the hang limit
    std::int64_t faults = 0;
    std::map<std::string, std::int64_t> faults_by_kind;  ///< "kill primary": n
    std::int64_t repairs = 0;                             ///< restarts and heals
    std::int64_t reads = 0;
    std::int64_t reads_failed = 0;
    std::map<std::string, std::int64_t> reads_failed_by_error;
    std::int64_t failed_present = 0;
    std::int64_t unknown = 0;  ///< found, never attempted
    double max_write_ms = 0;
    double max_read_ms = 0;
    std::int64_t slow_limit_ms = 0;  ///< serverSelectionTimeoutMS + socketTimeoutMS
    std::int64_t hang_limit_ms = 0;  ///< that + connectTimeoutMS
    std::int64_t seconds = 0;
    std::uint64_t seed = 0;
    std::int32_t writers = 0;
};

/// {"acknowledged", "failed", "lost", "duplicated", "hung", "faults", "seconds", "seed", and the
/// detail: "failed_by_error", "faults_by_kind", "repairs", "reads", "reads_failed",
/// "reads_failed_by_error", "failed_present", "unknown", "max_write_ms", "max_read_ms", "slow",
/// "slow_limit_ms", "hang_limit_ms", "writers"}, one line with a trailing newline.
std::string report_json(const report& r);

/// Lost, duplicated or hung (or a document nobody wrote): the run failed.
inline bool report_failed(const report& r) { return r.lost > 0 || r.duplicated > 0 || r.hung > 0 || r.unknown > 0; }

/// `trellis-bench chaos ...`; argv[0] is "chaos". Returns the exit status.
int run(int argc, char** argv);

}  // namespace trellis_bench::chaos
