// Shared by the fuzz targets: how a broken property is reported. libFuzzer (and the replay
// driver) see an abort with the reason on stderr, and keep the input that caused it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

namespace trellis::fuzz {

[[noreturn]] inline void broken(const char* file, int line, std::string_view what) {
    std::fprintf(stderr, "\n%s:%d: property broken: %.*s\n", file, line, static_cast<int>(what.size()), what.data());
    std::fflush(stderr);
    std::abort();
}

inline std::string hex(std::span<const std::uint8_t> bytes, std::size_t max = 512) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
        s += digits[bytes[i] >> 4];
        s += digits[bytes[i] & 0xF];
    }
    if (bytes.size() > max) s += "...";
    return s;
}

}  // namespace trellis::fuzz

/// Aborts with the condition's text and a message when cond is false.
#define FUZZ_CHECK(cond, msg)                                                                        \
    do {                                                                                             \
        if (!(cond)) ::trellis::fuzz::broken(__FILE__, __LINE__, std::string(#cond) + ": " + (msg)); \
    } while (0)
