// trellis-bench driver: the driver benchmark spec's single- and multi-document tasks on
// Trellis (blocking, async, concurrent), libmongoc, PyMongo and a raw socket, against one
// trellis-sim process, interleaved, median of R rounds.
#pragma once

namespace trellis_bench::driver {

/// argv[0] is "driver". Returns the exit status; throws trellis_bench::failure.
int run(int argc, char** argv);

}  // namespace trellis_bench::driver
