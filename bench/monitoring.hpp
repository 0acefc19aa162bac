// trellis-bench monitoring: what monitoring many servers costs a client, in CPU and memory.
#pragma once

namespace trellis_bench::monitoring {

/// argv[0] is "monitoring". Returns the exit status; throws trellis_bench::failure.
int run(int argc, char** argv);

}  // namespace trellis_bench::monitoring
