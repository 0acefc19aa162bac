// A libFuzzer stand-in for the normal (g++) build: runs a target's LLVMFuzzerTestOneInput on
// every seed file given, then on simple mutations of them (bit flips, byte changes, inserts,
// deletions, truncations, splices) for a few seconds, from a fixed random seed so that a run
// repeats exactly. Not coverage-guided: it keeps the targets' properties checked in every CTest
// run (and under ASan in the asan preset); the real fuzzing is build-fuzz/bin/fuzz_<name>.
//
//   fuzz-replay-<name> [--seconds S] [--seed N] [--max-len L] PATH...
//
// PATH is a file or a directory of files (not recursive; a missing path is skipped with a
// note). On a crash the input being run is written to fuzz-replay-crash-<pid>.bin in the
// current directory, which libFuzzer's binary can replay too.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" void __sanitizer_set_death_callback(void (*)()) __attribute__((weak));

namespace {

using bytes = std::vector<std::uint8_t>;

const bytes* current = nullptr;  // the input being run, for the crash handler
char crash_path[64];

void save_current() {
    if (current == nullptr) return;
    const int fd = ::open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    std::size_t done = 0;
    while (done < current->size()) {
        const ssize_t n = ::write(fd, current->data() + done, current->size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    static const char note[] = "fuzz-replay: the failing input was written to ";
    [[maybe_unused]] auto a = ::write(2, note, sizeof note - 1);
    [[maybe_unused]] auto b = ::write(2, crash_path, std::strlen(crash_path));
    [[maybe_unused]] auto c = ::write(2, "\n", 1);
    current = nullptr;
}

void on_signal(int sig) {
    save_current();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void run(const bytes& input) {
    current = &input;
    LLVMFuzzerTestOneInput(input.data(), input.size());
    current = nullptr;
}

bytes read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Values that tend to sit on boundaries: lengths, terminators, sign bits.
constexpr std::uint8_t interesting[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x20, 0x40, '"', '\\', '$', '{', '}', '%', '='};

void mutate(bytes& d, const std::vector<bytes>& corpus, std::mt19937_64& rng, std::size_t max_len) {
    auto below = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
    const std::size_t rounds = 1 + below(4);
    for (std::size_t r = 0; r < rounds; ++r) {
        switch (below(8)) {
            case 0:  // flip a bit
                if (!d.empty()) d[below(d.size())] ^= static_cast<std::uint8_t>(1u << below(8));
                break;
            case 1:  // set a byte to a random or a boundary value
                if (!d.empty()) d[below(d.size())] = below(2) ? static_cast<std::uint8_t>(rng()) : interesting[below(sizeof interesting)];
                break;
            case 2: {  // insert a few bytes
                const std::size_t at = below(d.size() + 1), n = 1 + below(8);
                bytes add(n);
                for (auto& b : add) b = below(2) ? static_cast<std::uint8_t>(rng()) : interesting[below(sizeof interesting)];
                d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), add.begin(), add.end());
                break;
            }
            case 3:  // delete a range
                if (!d.empty()) {
                    const std::size_t at = below(d.size()), n = 1 + below(std::min<std::size_t>(16, d.size() - at));
                    d.erase(d.begin() + static_cast<std::ptrdiff_t>(at), d.begin() + static_cast<std::ptrdiff_t>(at + n));
                }
                break;
            case 4:  // truncate
                d.resize(below(d.size() + 1));
                break;
            case 5: {  // splice: a piece of another input at a random place
                const bytes& other = corpus[below(corpus.size())];
                if (other.empty()) break;
                const std::size_t from = below(other.size()), n = 1 + below(other.size() - from);
                const std::size_t at = below(d.size() + 1);
                d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), other.begin() + static_cast<std::ptrdiff_t>(from),
                         other.begin() + static_cast<std::ptrdiff_t>(from + n));
                break;
            }
            case 6:  // duplicate a chunk in place
                if (!d.empty()) {
                    const std::size_t at = below(d.size()), n = 1 + below(std::min<std::size_t>(32, d.size() - at));
                    const bytes chunk(d.begin() + static_cast<std::ptrdiff_t>(at), d.begin() + static_cast<std::ptrdiff_t>(at + n));
                    d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), chunk.begin(), chunk.end());
                }
                break;
            default:  // add or subtract a little from a byte (lengths and counts)
                if (!d.empty()) {
                    auto& b = d[below(d.size())];
                    b = static_cast<std::uint8_t>(b + (below(2) ? 1 : -1) * static_cast<int>(1 + below(4)));
                }
                break;
        }
    }
    if (d.size() > max_len) d.resize(max_len);
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 3;
    std::uint64_t seed = 1;
    std::size_t max_len = 4096;
    std::vector<std::filesystem::path> paths;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "fuzz-replay: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (a == "--seconds") seconds = std::stod(value());
            else if (a == "--seed") seed = std::stoull(value());
            else if (a == "--max-len") max_len = std::stoull(value());
            else paths.emplace_back(a);
        } catch (const std::exception&) {
            std::fprintf(stderr, "fuzz-replay: bad value for %s\n", a.c_str());
            return 2;
        }
    }
    std::snprintf(crash_path, sizeof crash_path, "fuzz-replay-crash-%d.bin", static_cast<int>(::getpid()));
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, on_signal);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_current);

    std::vector<bytes> corpus;
    for (const auto& p : paths) {
        std::error_code ec;
        if (std::filesystem::is_directory(p, ec)) {
            std::vector<std::filesystem::path> files;
            for (const auto& e : std::filesystem::directory_iterator(p, ec))
                if (e.is_regular_file()) files.push_back(e.path());
            std::sort(files.begin(), files.end());  // directory order varies; runs must not
            for (const auto& f : files) corpus.push_back(read_file(f));
        } else if (std::filesystem::is_regular_file(p, ec)) {
            corpus.push_back(read_file(p));
        } else {
            std::fprintf(stderr, "fuzz-replay: %s not found, skipped\n", p.c_str());
        }
    }
    for (const auto& input : corpus) run(input);
    const std::size_t seeds = corpus.size();
    if (corpus.empty()) corpus.emplace_back();

    std::mt19937_64 rng(seed);
    const auto stop = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::size_t mutated = 0;
    bytes input;
    while (std::chrono::steady_clock::now() < stop) {
        input = corpus[static_cast<std::size_t>(rng() % corpus.size())];
        mutate(input, corpus, rng, max_len);
        run(input);
        ++mutated;
    }
    std::printf("fuzz-replay: %zu seed inputs and %zu mutated inputs (seed %llu, %.1f s): no property broken\n", seeds,
                mutated, static_cast<unsigned long long>(seed), seconds);
    return 0;
}
