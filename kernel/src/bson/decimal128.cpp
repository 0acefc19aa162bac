#include "trellis/bson/decimal128.hpp"

#include <algorithm>
#include <cstddef>

#include "trellis/errors.hpp"

namespace trellis::bson {
namespace {

// g++ accepts unsigned __int128 but -Wpedantic warns unless it is marked.
__extension__ typedef unsigned __int128 u128;

constexpr std::int64_t exponent_max = 6111;
constexpr std::int64_t exponent_min = -6176;
constexpr std::int64_t exponent_bias = 6176;
constexpr std::int64_t max_digits = 34;

constexpr std::uint64_t sign_bit = 1ULL << 63;
constexpr std::uint64_t infinity_bits = 0x7800000000000000ULL;  // combination 11110
constexpr std::uint64_t nan_bits = 0x7C00000000000000ULL;       // combination 11111
constexpr std::uint64_t special_mask = 0x7C00000000000000ULL;   // the five bits that tell them apart
constexpr std::uint64_t coefficient_high_mask = (1ULL << 49) - 1;

constexpr std::uint64_t pow10_u64(int n) noexcept {
    std::uint64_t r = 1;
    for (int i = 0; i < n; ++i) r *= 10;
    return r;
}

constexpr u128 pow10_u128(int n) noexcept {
    u128 r = 1;
    for (int i = 0; i < n; ++i) r *= 10;
    return r;
}

// Largest canonical coefficient, 10^34 - 1; anything above it reads as zero.
constexpr u128 max_coefficient = pow10_u128(34) - 1;

// Saturation bound for the written exponent: far beyond any exponent that can
// be clamped into range, yet small enough that later sums cannot overflow.
constexpr std::int64_t exponent_saturation = 1'000'000'000'000'000LL;

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// ASCII case-insensitive comparison against a lower-case literal.
bool equals_ignore_case(std::string_view text, std::string_view lower) noexcept {
    if (text.size() != lower.size()) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != lower[i]) return false;
    }
    return true;
}

// Parses into out; returns nullptr on success, else a description of the problem.
// Kept allocation-free: the digits are scanned in place, twice at most.
const char* parse_into(std::string_view s, decimal128& out) noexcept {
    if (s.empty()) return "empty string";

    std::size_t i = 0;
    const bool negative = s[0] == '-';
    if (s[0] == '+' || s[0] == '-') i = 1;
    const std::uint64_t sign = negative ? sign_bit : 0;
    if (i == s.size()) return "sign without a value";

    if (!is_digit(s[i]) && s[i] != '.') {
        const std::string_view name = s.substr(i);
        if (equals_ignore_case(name, "inf") || equals_ignore_case(name, "infinity")) {
            out = decimal128(sign | infinity_bits, 0);
            return nullptr;
        }
        // The sign of a NaN is kept in the bits (so "-NaN" round-trips to the
        // corpus's negative NaN) even though every NaN prints as "NaN".
        if (equals_ignore_case(name, "nan")) {
            out = decimal128(sign | nan_bits, 0);
            return nullptr;
        }
        return "not a number, Infinity or NaN";
    }

    // Significand: digits with at most one point. Track where the significant
    // digits start and end (as string positions and as digit indexes).
    constexpr std::size_t none = static_cast<std::size_t>(-1);
    std::size_t digit_count = 0;
    std::size_t fraction_digits = 0;
    bool seen_point = false;
    std::size_t first_nonzero_pos = none, last_nonzero_pos = none;
    std::size_t first_nonzero_index = 0, last_nonzero_index = 0;
    for (; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '.') {
            if (seen_point) return "more than one decimal point";
            seen_point = true;
            continue;
        }
        if (!is_digit(c)) break;
        if (c != '0') {
            if (first_nonzero_pos == none) {
                first_nonzero_pos = i;
                first_nonzero_index = digit_count;
            }
            last_nonzero_pos = i;
            last_nonzero_index = digit_count;
        }
        ++digit_count;
        if (seen_point) ++fraction_digits;
    }
    if (digit_count == 0) return "no digits";

    std::int64_t written_exponent = 0;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        bool exponent_negative = false;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
            exponent_negative = s[i] == '-';
            ++i;
        }
        if (i == s.size() || !is_digit(s[i])) return "exponent without digits";
        for (; i < s.size() && is_digit(s[i]); ++i) {
            if (written_exponent < exponent_saturation) written_exponent = written_exponent * 10 + (s[i] - '0');
        }
        if (exponent_negative) written_exponent = -written_exponent;
    }
    if (i != s.size()) return "unexpected character";

    // Value = significand digits x 10^exponent; exponent is the preferred one.
    const std::int64_t exponent = written_exponent - static_cast<std::int64_t>(fraction_digits);

    if (first_nonzero_pos == none) {
        // Zero: any exponent is exact, so clamping into range is all it takes.
        const std::int64_t e = std::clamp(exponent, exponent_min, exponent_max);
        out = decimal128(sign | (static_cast<std::uint64_t>(e + exponent_bias) << 49), 0);
        return nullptr;
    }

    // The core runs from the first to the last non-zero digit; trailing zeros
    // can be traded against the exponent, other digits cannot be dropped.
    const auto core_digits = static_cast<std::int64_t>(last_nonzero_index - first_nonzero_index + 1);
    const auto trailing_zeros = static_cast<std::int64_t>(digit_count - 1 - last_nonzero_index);
    if (core_digits > max_digits) return "inexact rounding: more than 34 significant digits";

    // Exponents that represent the value exactly with at most 34 digits run
    // from core_exponent - (34 - core_digits) up to core_exponent; pick the one
    // closest to the preferred exponent that is also in range.
    const std::int64_t core_exponent = exponent + trailing_zeros;
    const std::int64_t lowest = std::max(core_exponent - (max_digits - core_digits), exponent_min);
    const std::int64_t highest = std::min(core_exponent, exponent_max);
    if (lowest > highest) {
        return core_exponent < exponent_min ? "inexact rounding: value too small for Decimal128 (underflow)"
                                            : "overflow: value too large for Decimal128";
    }
    const std::int64_t e = std::clamp(exponent, lowest, highest);

    // Accumulate the core (at most 34 digits) in two 64-bit halves, which is
    // cheaper than a 128-bit multiply per digit.
    std::uint64_t head = 0, tail = 0;
    int head_digits = 0, tail_digits = 0;
    for (std::size_t p = first_nonzero_pos; p <= last_nonzero_pos; ++p) {
        const char c = s[p];
        if (c == '.') continue;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (head_digits < 17) {
            head = head * 10 + d;
            ++head_digits;
        } else {
            tail = tail * 10 + d;
            ++tail_digits;
        }
    }
    u128 coefficient = static_cast<u128>(head) * pow10_u64(tail_digits) + tail;
    coefficient *= pow10_u128(static_cast<int>(core_exponent - e));

    out = decimal128(sign | (static_cast<std::uint64_t>(e + exponent_bias) << 49) |
                         static_cast<std::uint64_t>(coefficient >> 64),
                     static_cast<std::uint64_t>(coefficient));
    return nullptr;
}

}  // namespace

std::optional<decimal128> decimal128::parse(std::string_view text) noexcept {
    decimal128 value;
    if (parse_into(text, value) != nullptr) return std::nullopt;
    return value;
}

decimal128 decimal128::from_string(std::string_view text) {
    decimal128 value;
    if (const char* problem = parse_into(text, value)) {
        // Cap the quoted text so a huge input does not make a huge message.
        constexpr std::size_t quote_limit = 64;
        std::string message = "invalid Decimal128 string \"";
        message.append(text.substr(0, quote_limit));
        if (text.size() > quote_limit) message += "...";
        message += "\": ";
        message += problem;
        throw bson_error(errc::bson_invalid, message);
    }
    return value;
}

std::string decimal128::to_string() const {
    if (is_nan()) return "NaN";
    const bool negative = is_negative();
    if (is_infinite()) return negative ? "-Infinity" : "Infinity";

    std::int64_t biased;
    u128 coefficient;
    if (((high_ >> 61) & 3) == 3) {
        // Combination 11xxx (not 1111x): the implied coefficient 0b100... is
        // always above 10^34 - 1, hence non-canonical and read as zero.
        biased = static_cast<std::int64_t>((high_ >> 47) & 0x3FFF);
        coefficient = 0;
    } else {
        biased = static_cast<std::int64_t>((high_ >> 49) & 0x3FFF);
        coefficient = (static_cast<u128>(high_ & coefficient_high_mask) << 64) | low_;
        if (coefficient > max_coefficient) coefficient = 0;
    }
    const std::int64_t exponent = biased - exponent_bias;

    // Coefficient digits, most significant first; two 64-bit halves avoid a
    // 128-bit division per digit.
    char digits[40];
    int length = 0;
    {
        constexpr std::uint64_t split = pow10_u64(19);
        auto upper = static_cast<std::uint64_t>(coefficient / split);
        auto lower = static_cast<std::uint64_t>(coefficient % split);
        char reversed[40];
        int n = 0;
        if (upper == 0) {
            do {
                reversed[n++] = static_cast<char>('0' + lower % 10);
                lower /= 10;
            } while (lower != 0);
        } else {
            for (int k = 0; k < 19; ++k) {
                reversed[n++] = static_cast<char>('0' + lower % 10);
                lower /= 10;
            }
            do {
                reversed[n++] = static_cast<char>('0' + upper % 10);
                upper /= 10;
            } while (upper != 0);
        }
        while (n > 0) digits[length++] = reversed[--n];
    }

    // Longest output: "-0.000000" plus 34 digits, or sign, 34 digits, point,
    // "E", sign and five exponent digits; 64 bytes covers both.
    char buffer[64];
    int out = 0;
    if (negative) buffer[out++] = '-';

    const std::int64_t adjusted = exponent + (length - 1);
    if (exponent > 0 || adjusted < -6) {
        buffer[out++] = digits[0];
        if (length > 1) {
            buffer[out++] = '.';
            for (int k = 1; k < length; ++k) buffer[out++] = digits[k];
        }
        buffer[out++] = 'E';
        buffer[out++] = adjusted < 0 ? '-' : '+';
        std::uint64_t magnitude = static_cast<std::uint64_t>(adjusted < 0 ? -adjusted : adjusted);
        char reversed[8];
        int n = 0;
        do {
            reversed[n++] = static_cast<char>('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude != 0);
        while (n > 0) buffer[out++] = reversed[--n];
    } else if (exponent == 0) {
        for (int k = 0; k < length; ++k) buffer[out++] = digits[k];
    } else {
        // -exponent digits go after the point; pad with zeros on the left when
        // the coefficient is shorter than that (adjusted >= -6 bounds the pad).
        const int after_point = static_cast<int>(-exponent);
        if (length > after_point) {
            const int before_point = length - after_point;
            for (int k = 0; k < before_point; ++k) buffer[out++] = digits[k];
            buffer[out++] = '.';
            for (int k = before_point; k < length; ++k) buffer[out++] = digits[k];
        } else {
            buffer[out++] = '0';
            buffer[out++] = '.';
            for (int k = 0; k < after_point - length; ++k) buffer[out++] = '0';
            for (int k = 0; k < length; ++k) buffer[out++] = digits[k];
        }
    }
    return std::string(buffer, static_cast<std::size_t>(out));
}

decimal128 decimal128::from_bytes(const std::uint8_t* bytes16) noexcept {
    std::uint64_t low = 0, high = 0;
    for (int k = 7; k >= 0; --k) {
        low = (low << 8) | bytes16[k];
        high = (high << 8) | bytes16[8 + k];
    }
    return decimal128(high, low);
}

void decimal128::to_bytes(std::uint8_t* out16) const noexcept {
    for (int k = 0; k < 8; ++k) {
        out16[k] = static_cast<std::uint8_t>(low_ >> (8 * k));
        out16[8 + k] = static_cast<std::uint8_t>(high_ >> (8 * k));
    }
}

bool decimal128::is_nan() const noexcept { return (high_ & special_mask) == nan_bits; }

bool decimal128::is_infinite() const noexcept { return (high_ & special_mask) == infinity_bits; }

bool decimal128::is_negative() const noexcept { return (high_ & sign_bit) != 0; }

}  // namespace trellis::bson
