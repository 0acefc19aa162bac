// trellis-bench pages: what the first write to memory costs on this machine, against a second
// write to the same memory (why a client keeps the buffer of its large replies).
#pragma once

namespace trellis_bench::pages {

/// argv[0] is "pages". Returns the exit status; throws trellis_bench::failure.
int run(int argc, char** argv);

}  // namespace trellis_bench::pages
