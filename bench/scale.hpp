// trellis-bench scale: the SDAM update, the event diff and server selection on topologies
// of 100 to 10,000 servers, and how their time grows with the size.
#pragma once

namespace trellis_bench::scale {

/// argv[0] is "scale". Returns the exit status; throws trellis_bench::failure for usage errors.
int run(int argc, char** argv);

}  // namespace trellis_bench::scale
