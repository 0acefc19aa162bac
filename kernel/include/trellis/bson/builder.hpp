// Building BSON: every append goes straight into one growing buffer; nested
// documents and arrays are opened and closed in place, so no tree is built.
//
//   auto doc = make_document(kvp("a", 1), kvp("tags", make_array("x", "y")));
//
//   builder b;                        // streaming form, for loops
//   b.append("name", "x");
//   b.open_array("items");
//   for (int i : values) b.append(i);
//   b.close_array();
//   document d = b.extract();
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "trellis/bson/document.hpp"

namespace trellis::bson {

class builder;

/// How a C++ type is appended. Specialize to teach the builder a new type:
/// provide `static constexpr type bson_type` and `static void write(builder&, const T&)`.
template <class T, class = void>
struct value_traits;

class builder {
public:
    /// What the outermost level is: a document (keys given) or an array (keys generated).
    enum class root { document, array };

    builder() { start(); }
    explicit builder(root r, std::size_t reserve = 0) : root_is_array_(r == root::array) {
        if (reserve != 0) grow(reserve);
        start();
    }
    builder(builder&&) noexcept = default;
    builder& operator=(builder&&) noexcept = default;

    /// Appends key: value to the open document.
    template <class T>
    builder& append(std::string_view key, const T& value) {
        using traits = value_traits<std::remove_cvref_t<T>>;
        begin_element(traits::bson_type, key);
        traits::write(*this, value);
        return *this;
    }
    /// Appends value to the open array, under the next index.
    template <class T>
    builder& append(const T& value) {
        using traits = value_traits<std::remove_cvref_t<T>>;
        begin_array_element(traits::bson_type);
        traits::write(*this, value);
        return *this;
    }
    /// Appends a string value to the open document (literals and char arrays).
    builder& append(std::string_view key, const char* value) { return append(key, std::string_view(value)); }
    builder& append(const char* value) { return append(std::string_view(value)); }
    /// Appends the value of an element under another key (any BSON type).
    builder& append(std::string_view key, const element& value) {
        begin_element(value.type(), key);
        write_raw(value.raw_value().data(), value.raw_value().size());
        return *this;
    }
    /// Inside an array: appends the value of an element under the next index.
    builder& append_value(const element& value) {
        begin_array_element(value.type());
        write_raw(value.raw_value().data(), value.raw_value().size());
        return *this;
    }
    /// Copies an element (key and value) as it is.
    builder& append(const element& e) {
        check_open_document("append(element)");
        write_raw(e.raw().data(), e.raw().size());
        return *this;
    }
    /// Copies every element of a document into the open document.
    builder& concat(document_view doc) {
        check_open_document("concat");
        write_raw(doc.data() + 4, doc.size() - 5);
        return *this;
    }

    builder& open_document(std::string_view key) { return open(type::document, key); }
    builder& open_array(std::string_view key) { return open(type::array, key); }
    /// Inside an array: opens a document or array as the next element.
    builder& open_document() { return open_in_array(type::document); }
    builder& open_array() { return open_in_array(type::array); }
    builder& close_document() { return close(false); }
    builder& close_array() { return close(true); }

    /// The finished document; the builder starts over empty (allocating again only when used:
    /// the raw writing functions below need an append or open first).
    document extract();
    /// The current bytes as a view; every opened document must be closed.
    document_view view();
    /// Starts over with an empty document, keeping the buffer.
    void clear() {
        size_ = 0;
        stack_.clear();
        start();
    }
    /// Open documents and arrays, the root included.
    std::size_t depth() const noexcept { return stack_.empty() ? 1 : stack_.size(); }

    // Raw writing, for value_traits specializations.
    void write_raw(const void* p, std::size_t n) {
        if (n == 0) return;  // p may be null for empty data; memcpy must not see it
        if (cap_ - size_ < n) grow(size_ + n);
        std::memcpy(data_.get() + size_, p, n);
        size_ += n;
    }
    void write_byte(std::uint8_t b) {
        if (cap_ == size_) grow(size_ + 1);
        data_[size_++] = b;
    }
    template <class T>
    void write_le(T v) {
        write_raw(&v, sizeof v);
    }
    /// int32 length, bytes, NUL.
    void write_string(std::string_view s);
    /// bytes, NUL; throws bson_error when s holds a NUL (what names the field).
    void write_cstring(std::string_view s, std::string_view what);
    /// Reserves an int32 length to patch later with patch_length(at).
    std::size_t reserve_length() {
        const std::size_t at = size_;
        write_le<std::int32_t>(0);
        return at;
    }
    void patch_length(std::size_t at);
    std::size_t size() const noexcept { return size_; }

private:
    struct frame {
        std::size_t start;
        std::uint32_t next_index;
        bool is_array;
    };

    void start() {
        stack_.push_back({size_, 0, root_is_array_});
        write_le<std::int32_t>(0);
    }
    void ensure_started() {
        if (stack_.empty()) start();
    }
    void grow(std::size_t need);
    void begin_element(type t, std::string_view key);
    void begin_array_element(type t);
    void check_open_document(const char* what);
    builder& open(type t, std::string_view key);
    builder& open_in_array(type t);
    builder& close(bool is_array);

    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
    boost::container::small_vector<frame, 8> stack_;  // open levels; the root first
    bool root_is_array_ = false;
};

// ---------------------------------------------------------------- value traits

template <>
struct value_traits<double> {
    static constexpr type bson_type = type::double_;
    static void write(builder& b, double v) { b.write_le(v); }
};
template <>
struct value_traits<float> {
    static constexpr type bson_type = type::double_;
    static void write(builder& b, float v) { b.write_le(static_cast<double>(v)); }
};
template <>
struct value_traits<bool> {
    static constexpr type bson_type = type::boolean;
    static void write(builder& b, bool v) { b.write_byte(v ? 1 : 0); }
};
// Signed integers of up to 32 bits are int32; 64-bit ones (long, long long) int64.
template <class T>
struct value_traits<T, std::enable_if_t<std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) <= 4>> {
    static constexpr type bson_type = type::int32;
    static void write(builder& b, T v) { b.write_le(static_cast<std::int32_t>(v)); }
};
template <class T>
struct value_traits<T, std::enable_if_t<std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 8>> {
    static constexpr type bson_type = type::int64;
    static void write(builder& b, T v) { b.write_le(static_cast<std::int64_t>(v)); }
};
// Unsigned integers that always fit in int64 are stored as int64; wider ones are refused at compile time.
template <class T>
struct value_traits<T, std::enable_if_t<std::is_integral_v<T> && std::is_unsigned_v<T> && !std::is_same_v<T, bool> &&
                                        (sizeof(T) < 8)>> {
    static constexpr type bson_type = type::int64;
    static void write(builder& b, T v) { b.write_le(static_cast<std::int64_t>(v)); }
};
template <>
struct value_traits<std::string_view> {
    static constexpr type bson_type = type::string;
    static void write(builder& b, std::string_view v) { b.write_string(v); }
};
template <>
struct value_traits<std::string> {
    static constexpr type bson_type = type::string;
    static void write(builder& b, const std::string& v) { b.write_string(v); }
};
template <>
struct value_traits<const char*> {
    static constexpr type bson_type = type::string;
    static void write(builder& b, const char* v) { b.write_string(v); }
};
template <std::size_t N>
struct value_traits<char[N]> {
    static constexpr type bson_type = type::string;
    static void write(builder& b, const char (&v)[N]) { b.write_string(std::string_view(v)); }
};
template <>
struct value_traits<oid> {
    static constexpr type bson_type = type::oid;
    static void write(builder& b, const oid& v) { b.write_raw(v.data(), oid::size); }
};
template <>
struct value_traits<decimal128> {
    static constexpr type bson_type = type::decimal128;
    static void write(builder& b, const decimal128& v) {
        std::uint8_t bytes[16];
        v.to_bytes(bytes);
        b.write_raw(bytes, 16);
    }
};
template <>
struct value_traits<date_time> {
    static constexpr type bson_type = type::date_time;
    static void write(builder& b, date_time v) { b.write_le(v.milliseconds); }
};
template <class Duration>
struct value_traits<std::chrono::time_point<std::chrono::system_clock, Duration>> {
    static constexpr type bson_type = type::date_time;
    static void write(builder& b, std::chrono::time_point<std::chrono::system_clock, Duration> v) {
        b.write_le(date_time(v).milliseconds);
    }
};
template <>
struct value_traits<timestamp> {
    static constexpr type bson_type = type::timestamp;
    static void write(builder& b, timestamp v) {
        b.write_le(v.increment);
        b.write_le(v.seconds);
    }
};
template <>
struct value_traits<binary> {
    static constexpr type bson_type = type::binary;
    static void write(builder& b, const binary& v);
};
template <>
struct value_traits<uuid> {
    static constexpr type bson_type = type::binary;
    static void write(builder& b, const uuid& v) { value_traits<binary>::write(b, binary{binary_subtype::uuid, v.bytes}); }
};
template <>
struct value_traits<regex> {
    static constexpr type bson_type = type::regex;
    /// Options are written in alphabetical order, as the BSON spec asks of encoders.
    static void write(builder& b, const regex& v);
};
template <>
struct value_traits<db_pointer> {
    static constexpr type bson_type = type::db_pointer;
    static void write(builder& b, const db_pointer& v) {
        b.write_string(v.collection);
        b.write_raw(v.id.data(), oid::size);
    }
};
template <>
struct value_traits<code> {
    static constexpr type bson_type = type::code;
    static void write(builder& b, const code& v) { b.write_string(v.javascript); }
};
template <>
struct value_traits<symbol> {
    static constexpr type bson_type = type::symbol;
    static void write(builder& b, const symbol& v) { b.write_string(v.value); }
};
template <>
struct value_traits<code_w_scope> {
    static constexpr type bson_type = type::code_w_scope;
    static void write(builder& b, const code_w_scope& v) {
        const std::size_t at = b.reserve_length();
        b.write_string(v.javascript);
        b.write_raw(v.scope.data(), v.scope.size());
        b.patch_length(at);
    }
};
template <>
struct value_traits<document_view> {
    static constexpr type bson_type = type::document;
    static void write(builder& b, const document_view& v) { b.write_raw(v.data(), v.size()); }
};
template <>
struct value_traits<document> {
    static constexpr type bson_type = type::document;
    static void write(builder& b, const document& v) { b.write_raw(v.data(), v.size()); }
};
template <>
struct value_traits<array_view> {
    static constexpr type bson_type = type::array;
    static void write(builder& b, const array_view& v) { b.write_raw(v.data(), v.byte_size()); }
};
template <>
struct value_traits<array> {
    static constexpr type bson_type = type::array;
    static void write(builder& b, const array& v) { b.write_raw(v.bytes().data(), v.bytes().size()); }
};
template <>
struct value_traits<null_t> {
    static constexpr type bson_type = type::null;
    static void write(builder&, null_t) {}
};
template <>
struct value_traits<std::nullptr_t> {
    static constexpr type bson_type = type::null;
    static void write(builder&, std::nullptr_t) {}
};
template <>
struct value_traits<undefined_t> {
    static constexpr type bson_type = type::undefined;
    static void write(builder&, undefined_t) {}
};
template <>
struct value_traits<min_key_t> {
    static constexpr type bson_type = type::min_key;
    static void write(builder&, min_key_t) {}
};
template <>
struct value_traits<max_key_t> {
    static constexpr type bson_type = type::max_key;
    static void write(builder&, max_key_t) {}
};

// ---------------------------------------------------------------- one-expression form

template <class V>
struct key_value {
    std::string_view key;
    const V& value;
};

/// A key/value pair for make_document. Holds a reference: use it within the expression.
template <class V>
key_value<V> kvp(std::string_view key, const V& value) {
    return {key, value};
}

template <class... V>
document make_document(const key_value<V>&... pairs) {
    builder b;
    (b.append(pairs.key, pairs.value), ...);
    return b.extract();
}

template <class... V>
array make_array(const V&... values) {
    builder b(builder::root::array);
    (b.append(values), ...);
    return array(b.extract());
}

}  // namespace trellis::bson
