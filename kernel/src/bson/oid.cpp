#include "trellis/bson/oid.hpp"

#include <atomic>
#include <cstring>
#include <random>

#include "bson/hex.hpp"
#include "trellis/errors.hpp"

namespace trellis::bson {
namespace {

struct process_state {
    std::array<std::uint8_t, 5> random{};
    std::atomic<std::uint32_t> counter{0};

    process_state() {
        // Seeded once per process from the OS entropy source.
        std::random_device device;
        std::uint64_t r = (static_cast<std::uint64_t>(device()) << 32) ^ device();
        for (auto& b : random) {
            b = static_cast<std::uint8_t>(r);
            r >>= 8;
        }
        counter.store(device() & 0xFFFFFFu, std::memory_order_relaxed);
    }
};

process_state& state() {
    static process_state instance;
    return instance;
}

}  // namespace

oid::oid(const std::uint8_t* bytes12) noexcept { std::memcpy(bytes_.data(), bytes12, size); }

oid oid::generate() { return generate(std::chrono::system_clock::now()); }

oid oid::generate(std::chrono::system_clock::time_point when) {
    auto& s = state();
    const auto seconds = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count());
    // The counter wraps at 2^24; fetch_add on 32 bits and masking keeps it lock-free.
    const std::uint32_t count = s.counter.fetch_add(1, std::memory_order_relaxed) & 0xFFFFFFu;
    std::array<std::uint8_t, size> b{};
    b[0] = static_cast<std::uint8_t>(seconds >> 24);
    b[1] = static_cast<std::uint8_t>(seconds >> 16);
    b[2] = static_cast<std::uint8_t>(seconds >> 8);
    b[3] = static_cast<std::uint8_t>(seconds);
    std::memcpy(b.data() + 4, s.random.data(), 5);
    b[9] = static_cast<std::uint8_t>(count >> 16);
    b[10] = static_cast<std::uint8_t>(count >> 8);
    b[11] = static_cast<std::uint8_t>(count);
    return oid(b);
}

std::optional<oid> oid::parse(std::string_view hex) noexcept {
    if (hex.size() != 2 * size) return std::nullopt;
    std::array<std::uint8_t, size> b{};
    for (std::size_t i = 0; i < size; ++i) {
        const int hi = detail::hex_digit(hex[2 * i]);
        const int lo = detail::hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        b[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return oid(b);
}

oid oid::from_hex(std::string_view hex) {
    if (auto parsed = parse(hex)) return *parsed;
    throw bson_error(errc::bson_invalid,
                     "invalid ObjectId \"" + std::string(hex.substr(0, 64)) + "\": expected 24 hex digits");
}

void oid::to_hex(char* out) const noexcept {
    for (std::size_t i = 0; i < size; ++i) {
        out[2 * i] = detail::hex_lower[bytes_[i] >> 4];
        out[2 * i + 1] = detail::hex_lower[bytes_[i] & 0xF];
    }
}

std::string oid::to_hex() const {
    std::string s(2 * size, '\0');
    to_hex(s.data());
    return s;
}

std::chrono::system_clock::time_point oid::timestamp() const noexcept {
    const std::uint32_t seconds = static_cast<std::uint32_t>(bytes_[0]) << 24 |
                                  static_cast<std::uint32_t>(bytes_[1]) << 16 |
                                  static_cast<std::uint32_t>(bytes_[2]) << 8 | bytes_[3];
    return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

}  // namespace trellis::bson
