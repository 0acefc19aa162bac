#include "pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "failover_report.hpp"  // median

namespace trellis_bench::pages {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

constexpr std::string_view usage_text =
    "usage: trellis-bench pages [--mb N] [--runs R]\n"
    "\n"
    "Maps N MB of fresh anonymous memory (default 16, a large cursor batch), writes every byte,\n"
    "writes it all again, and unmaps it; R times (default 5). Prints the median of each write:\n"
    "the first pays a page fault per page (the kernel finds, zeroes and maps a page), the\n"
    "second is the memory's own speed. A receive buffer taken fresh for each large reply pays\n"
    "the first; one that is kept (wire::buffer_cache) pays the second.\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

struct options {
    std::size_t mb = 16;
    std::size_t runs = 5;
};

std::optional<options> parse_arguments(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    options o;
    arg_walker w(args, 0);
    while (w.next()) {
        const std::string_view name = w.name();
        if (name == "-h" || name == "--help") return std::nullopt;
        if (name == "--mb") o.mb = parse_count(name, w.take_value(), 1);
        else if (name == "--runs") o.runs = parse_count(name, w.take_value(), 1);
        else throw failure{exit_usage_error, "unknown argument \"" + std::string(name) + "\" (see --help)"};
    }
    if (o.mb > 4096) throw failure{exit_usage_error, "--mb is at most 4096, got " + std::to_string(o.mb)};
    return o;
}

// Milliseconds that writing every byte of [p, p + n) took.
double write_ms(unsigned char* p, std::size_t n, int value) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memset(p, value, n);
    const auto t1 = std::chrono::steady_clock::now();
    // Read a byte back through a volatile, so the write is not optimized away.
    const volatile unsigned char* check = p + n - 1;
    if (*check != static_cast<unsigned char>(value)) throw failure{exit_failure, "the memory did not keep what was written"};
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

}  // namespace

int run(int argc, char** argv) {
    const auto o = parse_arguments(argc, argv);
    if (!o) {
        std::cout << usage_text;
        return exit_ok;
    }
    const std::size_t bytes = o->mb << 20;
    const long page = ::sysconf(_SC_PAGESIZE);
    const std::size_t pages = bytes / static_cast<std::size_t>(page > 0 ? page : 4096);
    std::vector<double> first, second;
    for (std::size_t r = 0; r < o->runs; ++r) {
        void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) throw failure{exit_failure, "mmap of " + std::to_string(o->mb) + " MB failed: " + std::strerror(errno)};
        auto* p = static_cast<unsigned char*>(m);
        first.push_back(write_ms(p, bytes, 1));
        second.push_back(write_ms(p, bytes, 2));
        ::munmap(m, bytes);
    }
    const double f = failover::median(first), s = failover::median(second);
    std::printf("%zu MB (%zu pages of %ld bytes), median of %zu runs:\n", o->mb, pages, page, o->runs);
    std::printf("  first write (fresh pages):  %8.2f ms  (%.2f us a page)\n", f, f * 1000 / static_cast<double>(pages));
    std::printf("  second write (same memory): %8.2f ms  (%.2f us a page)\n", s, s * 1000 / static_cast<double>(pages));
    std::printf("  ratio first / second:       %8.1f\n", s > 0 ? f / s : 0.0);
    return exit_ok;
}

}  // namespace trellis_bench::pages
