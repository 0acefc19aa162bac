// Small text helpers shared by the connection string parser, the option checks and the SRV
// rules. Only ASCII letters change case: the specs lower-case "A" to "Z" and leave the rest.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bson/utf8.hpp"

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

/// Why a percent-decoded value cannot be text (a NUL character, bytes that are not UTF-8),
/// naming the byte; nullopt when it can. Every decoded part of a connection string must be text:
/// it ends up in handshakes, commands and error lines.
inline std::optional<std::string> text_problem(std::string_view decoded) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(decoded.data());
    if (const auto nul = decoded.find('\0'); nul != std::string_view::npos)
        return "holds a NUL character (decoded byte " + std::to_string(nul) + ")";
    if (const std::size_t valid = bson::detail::utf8_valid_prefix(p, decoded.size()); valid != decoded.size()) {
        static constexpr char hex[] = "0123456789ABCDEF";
        return std::string("is not valid UTF-8 (decoded byte ") + std::to_string(valid) + ", 0x" + hex[p[valid] >> 4] +
               hex[p[valid] & 0xF] + ")";
    }
    return std::nullopt;
}

/// Text for an error message: valid UTF-8 as it is, every other byte and every control
/// character percent-encoded, so that a message is never cut or garbled by what it quotes.
inline std::string printable(std::string_view raw) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const auto* p = reinterpret_cast<const std::uint8_t*>(raw.data());
    std::string out;
    for (std::size_t i = 0; i < raw.size();) {
        const std::size_t valid = bson::detail::utf8_valid_prefix(p + i, raw.size() - i);
        for (std::size_t k = i; k < i + valid; ++k) {
            if (p[k] < 0x20 || p[k] == 0x7F) {
                out += '%';
                out += hex[p[k] >> 4];
                out += hex[p[k] & 0xF];
            } else {
                out += static_cast<char>(p[k]);
            }
        }
        i += valid;
        if (i < raw.size()) {
            out += '%';
            out += hex[p[i] >> 4];
            out += hex[p[i] & 0xF];
            ++i;
        }
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
