// Strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), with an eight-bytes-at-a-time path for ASCII runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::bson::detail {

/// Returns the length of the valid prefix: n when all n bytes are valid UTF-8.
inline std::size_t utf8_valid_prefix(const std::uint8_t* s, std::size_t n) noexcept {
    std::size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            std::uint64_t word;
            std::memcpy(&word, s + i, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        const std::uint8_t c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;       // overlong
            else if (c == 0xED) hi = 0x9F;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;       // overlong
            else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else {
            return i;
        }
        if (i + len > n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (std::size_t k = 2; k < len; ++k)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

/// Whether all n bytes are below 0x80: every byte OR-ed together, eight at a time (the last
/// word overlapping the one before), and tested once; no branch per word.
inline bool ascii_only(const std::uint8_t* s, std::size_t n) noexcept {
    if (n >= 8) {
        std::uint64_t all = 0, w;
        for (std::size_t i = 0; i + 8 <= n; i += 8) {
            std::memcpy(&w, s + i, 8);
            all |= w;
        }
        std::memcpy(&w, s + n - 8, 8);
        return ((all | w) & 0x8080808080808080ULL) == 0;
    }
    if (n >= 4) {
        std::uint32_t a, b;
        std::memcpy(&a, s, 4);
        std::memcpy(&b, s + n - 4, 4);
        return ((a | b) & 0x80808080U) == 0;
    }
    std::uint8_t all = 0;
    for (std::size_t i = 0; i < n; ++i) all |= s[i];
    return (all & 0x80) == 0;
}

inline bool utf8_valid(const std::uint8_t* s, std::size_t n) noexcept {
    return ascii_only(s, n) || utf8_valid_prefix(s, n) == n;
}

/// Regex options in the order BSON stores them: sorted by code point, each UTF-8 sequence kept
/// whole (sorting bytes would split a non-ASCII option into invalid UTF-8). A byte that does not
/// start a valid sequence sorts as a unit of its own. ASCII options, the usual case, sort as bytes.
inline std::string sorted_regex_options(std::string_view options) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(options.data());
    std::vector<std::string_view> units;
    for (std::size_t i = 0; i < options.size();) {
        std::size_t len = 1;
        const std::uint8_t c = p[i];
        if (c >= 0xC2) {
            const std::size_t want = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (i + want <= options.size() && utf8_valid(p + i, want)) len = want;
        }
        units.push_back(options.substr(i, len));
        i += len;
    }
    // Byte order of whole UTF-8 sequences is code point order.
    std::stable_sort(units.begin(), units.end());
    std::string out;
    out.reserve(options.size());
    for (const std::string_view u : units) out += u;
    return out;
}

}  // namespace trellis::bson::detail
