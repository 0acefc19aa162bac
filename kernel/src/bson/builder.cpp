#include "trellis/bson/builder.hpp"

#include "bson/utf8.hpp"

#include <algorithm>
#include <charconv>

namespace trellis::bson {

void builder::grow(std::size_t need) {
    std::size_t cap = cap_ == 0 ? 256 : cap_;
    while (cap < need) cap *= 2;
    std::unique_ptr<std::uint8_t[]> bigger(new std::uint8_t[cap]);
    if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    cap_ = cap;
}

void builder::write_string(std::string_view s) {
    if (s.size() > 0x7FFFFFFE)
        throw bson_error(errc::bson_too_large, "string of " + std::to_string(s.size()) + " bytes is too long for BSON");
    write_le(static_cast<std::int32_t>(s.size() + 1));
    write_raw(s.data(), s.size());
    write_byte(0);
}

void builder::write_cstring(std::string_view s, std::string_view what) {
    if (std::memchr(s.data(), 0, s.size()) != nullptr)
        throw bson_error(errc::bson_invalid, std::string(what) + " \"" + std::string(s.substr(0, s.find('\0'))) +
                                                 "\\0...\" contains a NUL byte, which BSON cannot store there");
    write_raw(s.data(), s.size());
    write_byte(0);
}

void builder::patch_length(std::size_t at) {
    const std::size_t length = size_ - at;
    if (length > 0x7FFFFFFF)
        throw bson_error(errc::bson_too_large, "value of " + std::to_string(length) + " bytes is too large for BSON");
    std::int32_t v = static_cast<std::int32_t>(length);
    std::memcpy(data_.get() + at, &v, 4);
}

void builder::check_open_document(const char* what) {
    ensure_started();
    if (stack_.back().is_array)
        throw bson_error(errc::bson_invalid, std::string(what) + " needs an open document, but an array is open");
}

void builder::begin_element(type t, std::string_view key) {
    ensure_started();
    if (stack_.back().is_array)
        throw bson_error(errc::bson_invalid, "append(\"" + std::string(key) +
                                                 "\", value) inside an array: use append(value), arrays take no keys");
    write_byte(static_cast<std::uint8_t>(t));
    write_cstring(key, "field name");
}

void builder::begin_array_element(type t) {
    ensure_started();
    frame& f = stack_.back();
    if (!f.is_array)
        throw bson_error(errc::bson_invalid, "append(value) without a key inside a document: use append(key, value)");
    char digits[16];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, f.next_index++);
    (void)ec;
    write_byte(static_cast<std::uint8_t>(t));
    write_raw(digits, static_cast<std::size_t>(end - digits));
    write_byte(0);
}

builder& builder::open(type t, std::string_view key) {
    begin_element(t, key);
    stack_.push_back({size_, 0, t == type::array});
    write_le<std::int32_t>(0);
    return *this;
}

builder& builder::open_in_array(type t) {
    begin_array_element(t);
    stack_.push_back({size_, 0, t == type::array});
    write_le<std::int32_t>(0);
    return *this;
}

builder& builder::close(bool is_array) {
    if (stack_.size() <= 1)
        throw bson_error(errc::bson_invalid, std::string("close_") + (is_array ? "array" : "document") +
                                                 "() with nothing open");
    if (stack_.back().is_array != is_array)
        throw bson_error(errc::bson_invalid, std::string("close_") + (is_array ? "array" : "document") + "() but an " +
                                                 (stack_.back().is_array ? "array" : "document") + " is open");
    write_byte(0);
    patch_length(stack_.back().start);
    stack_.pop_back();
    return *this;
}

document builder::extract() {
    ensure_started();
    if (stack_.size() != 1)
        throw bson_error(errc::bson_invalid, "extract() with " + std::to_string(stack_.size() - 1) +
                                                 " nested document(s) or array(s) still open");
    write_byte(0);
    patch_length(0);
    document result(std::move(data_), size_);
    size_ = 0;
    cap_ = 0;
    stack_.clear();
    return result;
}

document_view builder::view() {
    ensure_started();
    if (stack_.size() != 1)
        throw bson_error(errc::bson_invalid, "view() with " + std::to_string(stack_.size() - 1) +
                                                 " nested document(s) or array(s) still open");
    // Write the terminator, patch the length, then take the terminator back
    // off the logical size so appending can go on.
    write_byte(0);
    patch_length(0);
    --size_;
    return {data_.get(), size_ + 1};
}

void value_traits<binary>::write(builder& b, const binary& v) {
    if (v.bytes.size() > 0x7FFFFFF0)
        throw bson_error(errc::bson_too_large, "binary of " + std::to_string(v.bytes.size()) + " bytes is too large for BSON");
    const auto n = static_cast<std::int32_t>(v.bytes.size());
    if (v.subtype == binary_subtype::binary_old) {
        // The old subtype 0x02 stores the length a second time, inside the data.
        b.write_le<std::int32_t>(n + 4);
        b.write_byte(v.subtype);
        b.write_le<std::int32_t>(n);
    } else {
        b.write_le<std::int32_t>(n);
        b.write_byte(v.subtype);
    }
    b.write_raw(v.bytes.data(), v.bytes.size());
}

void value_traits<regex>::write(builder& b, const regex& v) {
    b.write_cstring(v.pattern, "regex pattern");
    if (std::is_sorted(v.options.begin(), v.options.end()))  // sorted bytes are sorted code points
        b.write_cstring(v.options, "regex options");
    else
        b.write_cstring(detail::sorted_regex_options(v.options), "regex options");
}

}  // namespace trellis::bson
