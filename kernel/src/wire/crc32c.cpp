#include "wire/crc32c.hpp"

#include <array>
#include <cstddef>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRELLIS_CRC32C_SSE42 1
#include <nmmintrin.h>
#endif

namespace trellis::wire {
namespace {

// Reflected Castagnoli polynomial.
constexpr std::uint32_t polynomial = 0x82F63B78u;

using table_set = std::array<std::array<std::uint32_t, 256>, 8>;

// Slice-by-8 tables: tables[0] is the classic byte-at-a-time table;
// tables[k][b] is the CRC contribution of byte b followed by k zero bytes,
// which lets one step fold 8 input bytes with 8 independent lookups.
constexpr table_set make_tables() {
    table_set t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t crc = i;
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc & 1u) ? (crc >> 1) ^ polynomial : crc >> 1;
        }
        t[0][i] = crc;
    }
    for (std::size_t k = 1; k < 8; ++k) {
        for (std::size_t i = 0; i < 256; ++i) {
            const std::uint32_t prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][prev & 0xFFu];
        }
    }
    return t;
}

constexpr table_set tables = make_tables();

// The CRC is kept inverted while running (standard pre/post conditioning);
// the seed is a finished CRC, so it is inverted on entry.
std::uint32_t portable_raw(const std::uint8_t* p, std::size_t n, std::uint32_t crc) noexcept {
    while (n >= 8) {
        // Assemble bytes explicitly: independent of host byte order and alignment.
        const std::uint32_t lo = crc ^ (static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                        static_cast<std::uint32_t>(p[2]) << 16 |
                                        static_cast<std::uint32_t>(p[3]) << 24);
        crc = tables[7][lo & 0xFFu] ^ tables[6][(lo >> 8) & 0xFFu] ^ tables[5][(lo >> 16) & 0xFFu] ^
              tables[4][lo >> 24] ^ tables[3][p[4]] ^ tables[2][p[5]] ^ tables[1][p[6]] ^ tables[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) {
        crc = (crc >> 8) ^ tables[0][(crc ^ *p++) & 0xFFu];
    }
    return crc;
}

#ifdef TRELLIS_CRC32C_SSE42
__attribute__((target("sse4.2"))) std::uint32_t hardware_raw(const std::uint8_t* p, std::size_t n,
                                                              std::uint32_t crc) noexcept {
    std::uint64_t c = crc;
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);  // x86 is little-endian, which is what crc32 expects
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    auto c32 = static_cast<std::uint32_t>(c);
    while (n-- > 0) {
        c32 = _mm_crc32_u8(c32, *p++);
    }
    return c32;
}

bool detect_sse42() noexcept {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
}
#endif

using raw_fn = std::uint32_t (*)(const std::uint8_t*, std::size_t, std::uint32_t) noexcept;

raw_fn select_implementation() noexcept {
#ifdef TRELLIS_CRC32C_SSE42
    if (detect_sse42()) return &hardware_raw;
#endif
    return &portable_raw;
}

}  // namespace

namespace detail {

std::uint32_t crc32c_portable(std::span<const std::uint8_t> data, std::uint32_t seed) noexcept {
    return ~portable_raw(data.data(), data.size(), ~seed);
}

bool crc32c_hardware_available() noexcept {
#ifdef TRELLIS_CRC32C_SSE42
    static const bool available = detect_sse42();
    return available;
#else
    return false;
#endif
}

std::uint32_t crc32c_hardware(std::span<const std::uint8_t> data, std::uint32_t seed) noexcept {
#ifdef TRELLIS_CRC32C_SSE42
    if (crc32c_hardware_available()) return ~hardware_raw(data.data(), data.size(), ~seed);
#endif
    return crc32c_portable(data, seed);
}

}  // namespace detail

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t seed) noexcept {
    // Chosen once; a function-local static is initialised thread-safely.
    static const raw_fn impl = select_implementation();
    return ~impl(data.data(), data.size(), ~seed);
}

}  // namespace trellis::wire
