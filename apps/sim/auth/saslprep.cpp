#include "auth/saslprep.hpp"

#include <utf8proc.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include "auth/stringprep_tables.hpp"

namespace trellis::sim::auth {

namespace {

std::string code_point_name(char32_t c) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
    return buf;
}

auth_error saslprep_error(std::string what) { return bad_value("SASLprep: " + std::move(what)); }

// Decodes UTF-8; nullopt on anything utf8proc calls invalid (overlong forms, surrogates, > U+10FFFF).
std::optional<std::vector<char32_t>> decode(std::string_view s) {
    std::vector<char32_t> out;
    out.reserve(s.size());
    auto p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    auto left = static_cast<utf8proc_ssize_t>(s.size());
    while (left > 0) {
        utf8proc_int32_t c = 0;
        const utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
        if (n <= 0 || c < 0) return std::nullopt;
        out.push_back(static_cast<char32_t>(c));
        p += n;
        left -= n;
    }
    return out;
}

std::string encode(const std::vector<char32_t>& cps) {
    std::string out;
    out.reserve(cps.size() * 2);
    for (char32_t c : cps) {
        utf8proc_uint8_t buf[4];
        const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    }
    return out;
}

bool printable_ascii(std::string_view s) noexcept {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c > 0x7E) return false;
    }
    return true;
}

}  // namespace

result<std::string> saslprep(std::string_view utf8, const saslprep_options& options) {
    // Printable ASCII is untouched by every step: nothing to map, NFKC leaves it alone, nothing in it is
    // prohibited, and it holds no RandALCat character. Most passwords take this path.
    if (printable_ascii(utf8)) return std::string(utf8);

    auto input = decode(utf8);
    if (!input) return saslprep_error("invalid UTF-8");

    // 1. Mapping (RFC 4013 section 2.1). B.1 and C.1.2 share U+200B ZERO WIDTH SPACE; removal wins, as in
    //    PyMongo's implementation, so the client and this server agree.
    std::vector<char32_t> mapped;
    mapped.reserve(input->size());
    for (char32_t c : *input) {
        if (stringprep::in_table(stringprep::table_b1, c)) continue;
        if (!options.allow_unassigned && stringprep::in_table(stringprep::table_a1, c))
            // Checked before normalization: utf8proc's newer Unicode could otherwise decompose a character
            // that did not exist in 3.2 into ones that did, and hide it.
            return saslprep_error("unassigned code point " + code_point_name(c));
        mapped.push_back(stringprep::in_table(stringprep::table_c12, c) ? U' ' : c);
    }

    // 2. Normalization: NFKC.
    const std::string mapped_utf8 = encode(mapped);
    utf8proc_uint8_t* raw = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(mapped_utf8.data()),
                     static_cast<utf8proc_ssize_t>(mapped_utf8.size()), &raw,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(raw, &std::free);
    if (n < 0) return saslprep_error(std::string("normalization failed: ") + utf8proc_errmsg(n));
    std::string normalized(reinterpret_cast<const char*>(raw), static_cast<std::size_t>(n));
    const auto output = decode(normalized);
    if (!output) return saslprep_error("normalization produced invalid UTF-8");

    // 3. Prohibited output.
    bool has_randal = false;
    bool has_l = false;
    for (char32_t c : *output) {
        if (stringprep::in_table(stringprep::table_prohibited, c))
            return saslprep_error("prohibited character " + code_point_name(c));
        if (!options.allow_unassigned && stringprep::in_table(stringprep::table_a1, c))
            return saslprep_error("unassigned code point " + code_point_name(c));
        has_randal = has_randal || stringprep::in_table(stringprep::table_d1, c);
        has_l = has_l || stringprep::in_table(stringprep::table_d2, c);
    }

    // 4. Bidirectional characters (RFC 3454 section 6).
    if (has_randal) {
        if (has_l) return saslprep_error("a string with right-to-left characters may not hold left-to-right ones");
        if (!stringprep::in_table(stringprep::table_d1, output->front()) ||
            !stringprep::in_table(stringprep::table_d1, output->back()))
            return saslprep_error("a string with right-to-left characters must start and end with one");
    }
    return normalized;
}

}  // namespace trellis::sim::auth
