// trellis-bench failover: time from a stepdown to the first successful write, for Trellis
// and for PyMongo 3.11, on the same in-process trellis-sim replica set in the same run.
// See README.md ("trellis-bench failover").
//
// The PyMongo half is bench/failover/pymongo_failover.py, run as a child process. The
// Trellis half is measure_trellis() (failover_trellis.cpp): it must follow the same
// procedure with the same settings, below, so that the two medians compare.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace trellis::sim {
class deployment;
}

namespace trellis_bench::failover {

// ---------------------------------------------------------------- shared settings
// The PyMongo script gets the same values on its command line (failover.cpp).

/// Members of the simulated replica set.
inline constexpr int members = 3;
/// trellis-sim: from losing a primary to electing the next one (sim_config::election_delay).
/// The simulator has no server-side heartbeat; this is its only election timing.
inline constexpr std::chrono::milliseconds election_delay{300};
/// The driver's heartbeatFrequencyMS (500 ms is PyMongo's minimum).
inline constexpr std::chrono::milliseconds heartbeat_frequency{500};
/// A stepped-down member cannot be re-elected for this long (simStepDown secs /
/// deployment::step_down's no_reelect).
inline constexpr std::chrono::seconds no_reelect{2};
/// Before each stepdown, writes must have been acknowledged by the current primary for this long.
inline constexpr std::chrono::milliseconds settle{300};
/// Write concern of the timed inserts: {w: "majority", wtimeout: 30000}. With w:1 the
/// simulator (whose stepdown does not wait for a secondary to catch up, unlike a real
/// replSetStepDown) can roll back an acknowledged write, and the lost-write check would
/// measure the simulator rather than the driver.
inline constexpr std::string_view write_concern_w = "majority";
/// Per stepdown: the set must settle, and a write succeed, within this.
inline constexpr std::chrono::seconds phase_timeout{30};
/// Stepdowns per driver by default; the reported figure is their median.
inline constexpr int default_stepdowns = 5;

/// measure_trellis throws this while there is no Trellis client to measure.
struct trellis_unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The Trellis half: `stepdowns` samples in milliseconds, in order.
///
/// Procedure (as pymongo_failover.py does it; one thread, so no write is in flight when
/// the stepdown is requested):
///   - a client on deployment.uri() with heartbeat_frequency, retryable writes on, and
///     server_selection_timeout = phase_timeout; collection bench.failover_trellis, dropped
///     first; tiny documents {_id: <counter>, x: 1}, write concern write_concern_w;
///   - write continuously (insert_one in a loop) until stable: deployment.primary() is set,
///     the client's topology names the same primary, every other member was last stepped
///     down at least no_reelect + 100 ms ago, and inserts have been acknowledged by that
///     primary for `settle`;
///   - t0 = steady_clock::now(); deployment.step_down(primary, no_reelect); keep inserting;
///     the sample is the time from t0 to the return of the first insert that succeeds
///     after that. It must have been acknowledged by a member other than the old primary;
///   - at the end, once stable again, every acknowledged _id must be on the primary: throw
///     if one is missing (an acknowledged write lost).
/// The deployment is left to it from a stable state; PyMongo's stepdowns came before, at
/// least no_reelect + 100 ms earlier.
///
/// Until the Trellis client exists it throws trellis_unavailable and measures nothing.
std::vector<double> measure_trellis(trellis::sim::deployment& deployment, int stepdowns);

/// `trellis-bench failover ...`; argv[0] is "failover". Returns the exit status.
int run(int argc, char** argv);

}  // namespace trellis_bench::failover
