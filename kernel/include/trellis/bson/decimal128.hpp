// IEEE 754-2008 128-bit decimal floating point (BID encoding), BSON type 0x13.
//
// A plain value object holding the 128 raw bits. It does no arithmetic (the
// BSON Decimal128 spec forbids operators); it only converts to and from the
// canonical string form and the 16 little-endian bytes stored in BSON.
// Equality is bitwise, so 2.0 != 2.00 and NaN == NaN when the bits agree.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis::bson {

class decimal128 {
public:
    // Zero with exponent 0, i.e. exactly what from_string("0") produces.
    constexpr decimal128() noexcept = default;

    // The raw bits: high holds the sign, combination field and top 49 bits of
    // the coefficient; low holds the bottom 64 bits of the coefficient.
    constexpr decimal128(std::uint64_t high, std::uint64_t low) noexcept : high_(high), low_(low) {}

    // Parses per the BSON Decimal128 spec and the bson-corpus rules: optional
    // sign, digits with an optional point, optional exponent; or the names
    // "Inf", "Infinity", "NaN" in any case. No whitespace. Exponents out of
    // range are clamped when that is exact; inexact rounding, overflow and
    // underflow are rejected. nullopt on any invalid input.
    static std::optional<decimal128> parse(std::string_view text) noexcept;

    // Same as parse(), but throws trellis::bson_error (errc::bson_invalid)
    // naming the text and the problem.
    static decimal128 from_string(std::string_view text);

    // Canonical string per the spec's to-string algorithm. Every NaN is "NaN";
    // non-canonical coefficients print as zero.
    std::string to_string() const;

    // 16 bytes as stored in BSON: little-endian, low word first.
    static decimal128 from_bytes(const std::uint8_t* bytes16) noexcept;
    void to_bytes(std::uint8_t* out16) const noexcept;

    constexpr std::uint64_t high() const noexcept { return high_; }
    constexpr std::uint64_t low() const noexcept { return low_; }

    bool is_nan() const noexcept;
    bool is_infinite() const noexcept;
    // The sign bit, which is also set for -0, -Infinity and negative NaNs.
    bool is_negative() const noexcept;

    friend constexpr bool operator==(const decimal128&, const decimal128&) noexcept = default;

private:
    std::uint64_t high_ = 0x3040000000000000ULL;
    std::uint64_t low_ = 0;
};

}  // namespace trellis::bson
