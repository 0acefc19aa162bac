#include "trellis/bson/document.hpp"

#include <charconv>
#include <cmath>

#include "bson/hex.hpp"

namespace trellis::bson {

namespace {
constexpr std::uint8_t empty_document_bytes[5] = {5, 0, 0, 0, 0};
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
