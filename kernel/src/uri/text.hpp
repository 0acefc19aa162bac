// Small text helpers shared by the connection string parser, the option checks and the SRV
// rules. Only ASCII letters change case: the specs lower-case "A" to "Z" and leave the rest.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis::uri_detail {

inline char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
inline char ascii_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

inline std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_upper(c);
    return out;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// RFC 3986 percent-decoding ('+' stays '+'); nullopt when a '%' is not followed by two hex digits.
inline std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
        i += 2;
    }
    return out;
}

/// A whole decimal integer with an optional '-' (no '+', no spaces); nullopt otherwise or on overflow.
inline std::optional<std::int64_t> parse_integer(std::string_view s) noexcept {
    if (s.empty()) return std::nullopt;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

/// An SRV service name per RFC 6335 section 5.1 (letters, digits and single hyphens inside,
/// at least one letter), with the seedlist spec's relaxed length: up to 62 characters, since
/// "_name" must fit in a 63-byte DNS label.
inline bool valid_srv_service_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 62 || name.front() == '-' || name.back() == '-') return false;
    bool letter = false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (c == '-') {
            if (name[i - 1] == '-') return false;
        } else if (!alpha && !(c >= '0' && c <= '9')) {
            return false;
        }
        letter = letter || alpha;
    }
    return letter;
}

}  // namespace trellis::uri_detail
