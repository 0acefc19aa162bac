// The Trellis half of `trellis-bench failover`. See failover.hpp for the procedure it
// must follow.
//
// There is no Trellis client yet (trellis::client is being written), so this measures
// nothing: it throws, and `trellis-bench failover` reports the Trellis side as missing and
// exits with status 1. Do not replace this with estimated or simulated numbers.
#include "failover.hpp"

namespace trellis_bench::failover {

std::vector<double> measure_trellis(trellis::sim::deployment& /*deployment*/, int /*stepdowns*/) {
    throw trellis_unavailable("Trellis client not available yet");
}

}  // namespace trellis_bench::failover
