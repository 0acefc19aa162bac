#include "trellis/bson/document.hpp"

#include <bit>
#include <charconv>
#include <cstring>
#include <cmath>

#include "bson/hex.hpp"
#include "bson/utf8.hpp"

namespace trellis::bson {

namespace {
constexpr std::uint8_t empty_document_bytes[5] = {5, 0, 0, 0, 0};

std::string hex_byte(std::uint8_t b) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[b >> 4] + digits[b & 0xF];
}
}  // namespace

std::string_view type_name(type t) noexcept {
    switch (t) {
        case type::double_: return "double";
        case type::string: return "string";
        case type::document: return "document";
        case type::array: return "array";
        case type::binary: return "binary";
        case type::undefined: return "undefined";
        case type::oid: return "objectId";
        case type::boolean: return "bool";
        case type::date_time: return "date";
        case type::null: return "null";
        case type::regex: return "regex";
        case type::db_pointer: return "dbPointer";
        case type::code: return "javascript";
        case type::symbol: return "symbol";
        case type::code_w_scope: return "javascriptWithScope";
        case type::int32: return "int";
        case type::timestamp: return "timestamp";
        case type::int64: return "long";
        case type::decimal128: return "decimal";
        case type::min_key: return "minKey";
        case type::max_key: return "maxKey";
    }
    return "unknown";
}



// ---------------------------------------------------------------- validation

namespace {

// Error text is only built on the failure path: the checks below run for
// every element of every document read, and building messages eagerly cost a
// heap allocation per string value (measured with trellis-bench and callgrind).
struct label {
    std::string_view prefix, key, suffix;
    std::string str() const { return std::string(prefix).append(key).append(suffix); }
};

// The NUL that ends the key at k (or `last` if none comes before it), every byte before it OR-ed
// into `seen`: only a key with a non-ASCII byte needs the UTF-8 check. Keys are short (a dozen
// bytes in a tweet, where they are half of what validation reads): eight bytes at a time, with
// the zero-byte test (w - 0x01..) & ~w & 0x80.., whose lowest set bit is the first NUL.
inline const std::uint8_t* key_end(const std::uint8_t* k, const std::uint8_t* last, std::uint64_t& seen) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (last - k >= 8) {
            std::uint64_t w;
            std::memcpy(&w, k, 8);
            if (const std::uint64_t zero = (w - ones) & ~w & highs; zero != 0) {
                const int before = std::countr_zero(zero) / 8;
                if (before != 0) seen |= w & (~std::uint64_t{0} >> (64 - 8 * before));
                return k + before;
            }
            seen |= w;
            k += 8;
        }
    }
    while (k < last && *k != 0) seen |= *k++;
    return k;
}

class validator {
public:
    validator(const std::uint8_t* base, const validation_options& options) : base_(base), options_(options) {}

    std::optional<validation_failure> failure;

    // Validates the document at p whose bytes may extend at most to limit.
    // Returns false after recording the first problem.
    bool document(const std::uint8_t* p, const std::uint8_t* limit, std::size_t depth) {
        if (depth > options_.max_depth) [[unlikely]]
            return fail(p, "nesting depth exceeds the limit of " + std::to_string(options_.max_depth));
        if (limit - p < 5) [[unlikely]]
            return fail(p, "document truncated: fewer than 5 bytes remain for its header and terminator");
        const std::int32_t length = detail::load_le<std::int32_t>(p);
        if (length < 5) [[unlikely]]
            return fail(p, "document length " + std::to_string(length) + " is below the minimum of 5");
        if (length > limit - p) [[unlikely]]
            return fail(p, "document length " + std::to_string(length) + " exceeds the " + std::to_string(limit - p) +
                               " bytes available");
        const std::uint8_t* end = p + length;  // one past the terminator
        if (end[-1] != 0) [[unlikely]]
            return fail(end - 1, "document does not end with a 0x00 terminator (found " + hex_byte(end[-1]) + ")");
        const std::uint8_t* q = p + 4;
        const std::uint8_t* last = end - 1;  // where the terminator sits
        while (q < last) {
            const std::uint8_t t = *q;
            if (t == 0) [[unlikely]]
                return fail(q, "unexpected 0x00 before the end of the document (the stated length is too long)");
            if (!is_known_type(t)) [[unlikely]]
                return fail(q, "unknown element type " + hex_byte(t));
            const std::uint8_t* key = q + 1;
            std::uint64_t seen = 0;
            const std::uint8_t* k = key_end(key, last, seen);
            if (k == last) [[unlikely]]
                return fail(key, "element key is not terminated inside the document");
            const std::size_t key_size = static_cast<std::size_t>(k - key);
            if (options_.check_utf8 && (seen & 0x8080808080808080ULL) != 0 && !detail::utf8_valid(key, key_size)) [[unlikely]]
                return fail(key + detail::utf8_valid_prefix(key, key_size), "element key is not valid UTF-8");
            const std::uint8_t* after =
                value(t, k + 1, last, depth, std::string_view(reinterpret_cast<const char*>(key), key_size));
            if (after == nullptr) return false;
            q = after;
        }
        return true;
    }

private:
    [[gnu::cold, gnu::noinline]] bool fail(const std::uint8_t* at, std::string message, errc code = errc::bson_invalid) {
        failure = validation_failure{static_cast<std::size_t>(at - base_), std::move(message), code};
        return false;
    }
    [[gnu::cold, gnu::noinline]] const std::uint8_t* fail_null(const std::uint8_t* at, const std::string& message) {
        fail(at, message);
        return nullptr;
    }
    [[gnu::cold, gnu::noinline]] const std::uint8_t* fail_truncated(const std::uint8_t* v, const std::uint8_t* limit,
                                                                     std::size_t n, std::string_view key) {
        return fail_null(v, "value of \"" + std::string(key) + "\" truncated: needs " + std::to_string(n) + " bytes, " +
                                std::to_string(limit - v) + " remain");
    }

    // A BSON string (int32 length including the NUL, bytes, NUL) at v, bounded by limit.
    const std::uint8_t* string(const std::uint8_t* v, const std::uint8_t* limit, const label& what) {
        if (limit - v < 5) [[unlikely]]
            return fail_null(v, what.str() + " truncated");
        const std::int32_t length = detail::load_le<std::int32_t>(v);
        if (length < 1) [[unlikely]]
            return fail_null(v, what.str() + " length " + std::to_string(length) + " is below the minimum of 1");
        if (length > limit - v - 4) [[unlikely]]
            return fail_null(v, what.str() + " length " + std::to_string(length) + " exceeds the " +
                                    std::to_string(limit - v - 4) + " bytes available");
        const std::uint8_t* s = v + 4;
        if (s[length - 1] != 0) [[unlikely]]
            return fail_null(s + length - 1, what.str() + " is not terminated by 0x00");
        const std::size_t n = static_cast<std::size_t>(length) - 1;
        if (options_.check_utf8 && !detail::utf8_valid(s, n)) [[unlikely]]
            return fail_null(s + detail::utf8_valid_prefix(s, n), what.str() + " is not valid UTF-8");
        return s + length;
    }

    const std::uint8_t* cstring(const std::uint8_t* v, const std::uint8_t* limit, const label& what) {
        const std::uint8_t* e = v;
        while (e < limit && *e != 0) ++e;
        if (e == limit) [[unlikely]]
            return fail_null(v, what.str() + " is not terminated inside the document");
        const std::size_t n = static_cast<std::size_t>(e - v);
        if (options_.check_utf8 && !detail::utf8_valid(v, n)) [[unlikely]]
            return fail_null(v + detail::utf8_valid_prefix(v, n), what.str() + " is not valid UTF-8");
        return e + 1;
    }

    const std::uint8_t* fixed(const std::uint8_t* v, const std::uint8_t* limit, std::size_t n, std::string_view key) {
        if (static_cast<std::size_t>(limit - v) < n) [[unlikely]]
            return fail_truncated(v, limit, n, key);
        return v + n;
    }

    // Validates one value; returns the byte after it, or nullptr on failure.
    const std::uint8_t* value(std::uint8_t t, const std::uint8_t* v, const std::uint8_t* limit, std::size_t depth,
                              std::string_view key) {
        switch (static_cast<type>(t)) {
            case type::double_:
            case type::date_time:
            case type::timestamp:
            case type::int64: return fixed(v, limit, 8, key);
            case type::int32: return fixed(v, limit, 4, key);
            case type::decimal128: return fixed(v, limit, 16, key);
            case type::oid: return fixed(v, limit, 12, key);
            case type::undefined:
            case type::null:
            case type::min_key:
            case type::max_key: return v;
            case type::boolean:
                if (fixed(v, limit, 1, key) == nullptr) return nullptr;
                if (*v > 1) [[unlikely]]
                    return fail_null(v, "boolean \"" + std::string(key) + "\" has value " + hex_byte(*v) +
                                            ", not 0x00 or 0x01");
                return v + 1;
            case type::string:
            case type::code:
            case type::symbol: return string(v, limit, {"string \"", key, "\""});
            case type::document:
            case type::array:
                if (!document(v, limit, depth + 1)) return nullptr;
                return v + detail::load_le<std::int32_t>(v);
            case type::binary: return binary(v, limit, key);
            case type::regex: {
                const std::uint8_t* options = cstring(v, limit, {"regex pattern of \"", key, "\""});
                if (options == nullptr) return nullptr;
                return cstring(options, limit, {"regex options of \"", key, "\""});
            }
            case type::db_pointer: {
                const std::uint8_t* id = string(v, limit, {"dbPointer namespace \"", key, "\""});
                if (id == nullptr) return nullptr;
                return fixed(id, limit, 12, key);
            }
            case type::code_w_scope: return code_w_scope(v, limit, depth, key);
        }
        return fail_null(v - 1, "unknown element type " + hex_byte(t));
    }

    const std::uint8_t* binary(const std::uint8_t* v, const std::uint8_t* limit, std::string_view key) {
        if (limit - v < 5) [[unlikely]]
            return fail_null(v, "binary \"" + std::string(key) + "\" truncated");
        const std::int32_t length = detail::load_le<std::int32_t>(v);
        if (length < 0) [[unlikely]]
            return fail_null(v, "binary \"" + std::string(key) + "\" has negative length " + std::to_string(length));
        if (length > limit - v - 5) [[unlikely]]
            return fail_null(v, "binary \"" + std::string(key) + "\" length " + std::to_string(length) + " exceeds the " +
                                    std::to_string(limit - v - 5) + " bytes available");
        if (v[4] == binary_subtype::binary_old) {
            // The old binary subtype repeats the length inside the data.
            if (length < 4) [[unlikely]]
                return fail_null(v, "binary subtype 0x02 \"" + std::string(key) + "\" is shorter than its inner length");
            const std::int32_t inner = detail::load_le<std::int32_t>(v + 5);
            if (inner != length - 4) [[unlikely]]
                return fail_null(v + 5, "binary subtype 0x02 \"" + std::string(key) + "\" inner length " +
                                            std::to_string(inner) + " does not match outer length " +
                                            std::to_string(length) + " - 4");
        }
        return v + 5 + length;
    }

    const std::uint8_t* code_w_scope(const std::uint8_t* v, const std::uint8_t* limit, std::size_t depth,
                                     std::string_view key) {
        if (limit - v < 4) [[unlikely]]
            return fail_null(v, "code with scope \"" + std::string(key) + "\" truncated");
        const std::int32_t total = detail::load_le<std::int32_t>(v);
        // int32 total, string (int32 + at least the NUL), document (at least 5).
        if (total < 14) [[unlikely]]
            return fail_null(v, "code with scope \"" + std::string(key) + "\" length " + std::to_string(total) +
                                    " is below the minimum of 14");
        if (total > limit - v) [[unlikely]]
            return fail_null(v, "code with scope \"" + std::string(key) + "\" length " + std::to_string(total) +
                                    " exceeds the " + std::to_string(limit - v) + " bytes available");
        const std::uint8_t* end = v + total;
        const std::uint8_t* scope = string(v + 4, end, {"code with scope \"", key, "\" code"});
        if (scope == nullptr) return nullptr;
        if (!document(scope, end, depth + 1)) return nullptr;
        if (scope + detail::load_le<std::int32_t>(scope) != end) [[unlikely]]
            return fail_null(scope, "code with scope \"" + std::string(key) + "\" scope does not end where the stated length says");
        return end;
    }

    const std::uint8_t* base_;
    const validation_options& options_;
};

}  // namespace

std::optional<validation_failure> find_error(std::span<const std::uint8_t> bytes,
                                             const validation_options& options) noexcept {
    try {
        if (bytes.size() < 5)
            return validation_failure{0, "input of " + std::to_string(bytes.size()) + " bytes is too short for a document (minimum 5)"};
        const std::int32_t length = detail::load_le<std::int32_t>(bytes.data());
        if (length < 0 || static_cast<std::size_t>(length) != bytes.size())
            return validation_failure{0, "document length " + std::to_string(length) + " does not match the input size " +
                                             std::to_string(bytes.size())};
        if (bytes.size() > options.max_size)
            return validation_failure{0, "document of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                                             std::to_string(options.max_size),
                                      errc::bson_too_large};
        validator v(bytes.data(), options);
        if (!v.document(bytes.data(), bytes.data() + bytes.size(), 1)) return std::move(v.failure);
        return std::nullopt;
    } catch (const std::bad_alloc&) {
        return validation_failure{0, "out of memory while validating"};
    }
}

void validate(std::span<const std::uint8_t> bytes, const validation_options& options) {
    if (auto failure = find_error(bytes, options)) throw bson_error(failure->code, failure->message, failure->offset);
}

// ---------------------------------------------------------------- element

void element::mismatch(bson::type wanted) const {
    throw bson_error(errc::bson_type_mismatch, "field \"" + std::string(key()) + "\" is " + std::string(type_name(type())) +
                                                   ", not " + std::string(type_name(wanted)));
}






uuid element::get_uuid() const {
    const binary bin = get_binary();
    if (bin.subtype != binary_subtype::uuid || bin.bytes.size() != 16)
        throw bson_error(errc::bson_type_mismatch, "field \"" + std::string(key()) + "\" is binary subtype " +
                                                       std::to_string(bin.subtype) + " of " + std::to_string(bin.bytes.size()) +
                                                       " bytes, not a UUID (subtype 4, 16 bytes)");
    uuid u;
    std::memcpy(u.bytes.data(), bin.bytes.data(), 16);
    return u;
}

std::optional<uuid> uuid::parse(std::string_view t) noexcept {
    if (t.size() != 36) return std::nullopt;
    uuid u;
    std::size_t n = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (t[i] != '-') return std::nullopt;
            continue;
        }
        const int hi = detail::hex_digit(t[i]), lo = detail::hex_digit(t[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        u.bytes[n++] = static_cast<std::uint8_t>(hi << 4 | lo);
        ++i;
    }
    return u;
}

std::string uuid::to_string() const {
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += detail::hex_lower[bytes[i] >> 4];
        s += detail::hex_lower[bytes[i] & 0xF];
    }
    return s;
}












decimal128 element::get_decimal128() const {
    expect(type::decimal128);
    return decimal128::from_bytes(value_ptr());
}

bool element::is_number() const noexcept {
    const auto t = type();
    return t == type::int32 || t == type::int64 || t == type::double_;
}

double element::as_double() const {
    switch (type()) {
        case type::int32: return get_int32();
        case type::int64: return static_cast<double>(get_int64());
        case type::double_: return get_double();
        default:
            throw bson_error(errc::bson_type_mismatch,
                             "field \"" + std::string(key()) + "\" is " + std::string(type_name(type())) + ", not a number");
    }
}

std::int64_t element::as_int64() const {
    switch (type()) {
        case type::int32: return get_int32();
        case type::int64: return get_int64();
        case type::double_: {
            const double d = get_double();
            // 2^63 is exactly representable; anything at or above it does not fit.
            if (std::trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
                return static_cast<std::int64_t>(d);
            throw bson_error(errc::bson_type_mismatch,
                             "field \"" + std::string(key()) + "\" holds the double " + std::to_string(d) +
                                 ", which is not an integer in the int64 range");
        }
        default:
            throw bson_error(errc::bson_type_mismatch, "field \"" + std::string(key()) + "\" is " +
                                                           std::string(type_name(type())) + ", not an integer");
    }
}

bool element::as_bool() const {
    if (type() == type::boolean) return get_bool();
    if (is_number()) return as_double() != 0.0;
    throw bson_error(errc::bson_type_mismatch,
                     "field \"" + std::string(key()) + "\" is " + std::string(type_name(type())) + ", not a bool or number");
}

// ---------------------------------------------------------------- views

document_view::document_view() noexcept : data_(empty_document_bytes), size_(5) {}

std::optional<element> document_view::find(std::string_view key) const noexcept {
    for (const element& e : *this)
        if (e.key() == key) return e;
    return std::nullopt;
}

element document_view::operator[](std::string_view key) const {
    if (auto e = find(key)) return *e;
    throw bson_error(errc::bson_key_not_found, "document has no field \"" + std::string(key) + "\"");
}

std::size_t document_view::count() const noexcept {
    std::size_t n = 0;
    for (auto it = begin(); it != end(); ++it) ++n;
    return n;
}

element array_view::operator[](std::size_t index) const {
    std::size_t i = 0;
    for (const element& e : *this)
        if (i++ == index) return e;
    throw bson_error(errc::bson_key_not_found,
                     "array index " + std::to_string(index) + " is out of range (size " + std::to_string(i) + ")");
}

document::document(document_view view) : size_(static_cast<std::uint32_t>(view.size())), owned_(true) {
    auto* bytes = new std::uint8_t[size_];
    std::memcpy(bytes, view.data(), size_);
    data_ = bytes;
}

}  // namespace trellis::bson
