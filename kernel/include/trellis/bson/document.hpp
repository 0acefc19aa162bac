// Non-owning views over BSON bytes, and the owning document.
//
// A document_view is a pointer and a length; iterating it yields elements that
// point into the same bytes, and nested documents are views again: nothing is
// copied. A view trusts its bytes: make views of untrusted input with
// document_view::validated(), which checks everything once and throws
// trellis::bson_error naming the byte offset of the first problem.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "trellis/bson/types.hpp"
#include "trellis/errors.hpp"

namespace trellis::bson {

// BSON is little-endian; so are the hosts Trellis builds for (x86-64, AArch64).
static_assert(std::endian::native == std::endian::little, "Trellis assumes a little-endian host");

namespace detail {
template <class T>
inline T load_le(const std::uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
}  // namespace detail

namespace detail {
inline constexpr std::uint8_t variable_size = 0xFF;

/// The value size of each type byte whose values all have one size (0 for a byte that is no
/// type); variable_size for the others. One load instead of a switch per element.
inline constexpr auto fixed_value_sizes = [] {
    struct table {
        std::uint8_t size[256];
    } t{};
    for (const bson::type v : {bson::type::string, bson::type::code, bson::type::symbol, bson::type::document,
                               bson::type::array, bson::type::code_w_scope, bson::type::binary, bson::type::regex,
                               bson::type::db_pointer})
        t.size[static_cast<std::uint8_t>(v)] = variable_size;
    for (const bson::type v : {bson::type::double_, bson::type::date_time, bson::type::timestamp, bson::type::int64})
        t.size[static_cast<std::uint8_t>(v)] = 8;
    t.size[static_cast<std::uint8_t>(bson::type::int32)] = 4;
    t.size[static_cast<std::uint8_t>(bson::type::oid)] = 12;
    t.size[static_cast<std::uint8_t>(bson::type::boolean)] = 1;
    t.size[static_cast<std::uint8_t>(bson::type::decimal128)] = 16;
    return t;
}();

/// Size of the value part of an element of type t starting at p. Assumes valid bytes.
/// Inline: the iterator calls it for every element it steps over.
inline std::size_t value_size(std::uint8_t t, const std::uint8_t* p) noexcept {
    if (const std::uint8_t n = fixed_value_sizes.size[t]; n != variable_size) return n;
    switch (static_cast<bson::type>(t)) {
        case bson::type::string:
        case bson::type::code:
        case bson::type::symbol: return 4 + static_cast<std::size_t>(load_le<std::int32_t>(p));
        case bson::type::binary: return 5 + static_cast<std::size_t>(load_le<std::int32_t>(p));
        case bson::type::regex: {
            const std::size_t a = std::strlen(reinterpret_cast<const char*>(p)) + 1;
            return a + std::strlen(reinterpret_cast<const char*>(p + a)) + 1;
        }
        case bson::type::db_pointer: return 4 + static_cast<std::size_t>(load_le<std::int32_t>(p)) + 12;
        default: return static_cast<std::size_t>(load_le<std::int32_t>(p));  // document, array, code_w_scope
    }
}

/// Length of the NUL-terminated key at k in a document that ends at `end`: eight bytes at a time
/// while eight remain (the zero-byte test (w - 0x01..) & ~w & 0x80.., whose lowest set bit is the
/// first NUL), so a short key costs one load and no call.
inline std::size_t key_length(const std::uint8_t* k, const std::uint8_t* end) noexcept {
    const std::uint8_t* s = k;
    while (end - s >= 8) {
        std::uint64_t w;
        std::memcpy(&w, s, 8);
        if (const std::uint64_t zero = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL; zero != 0)
            return static_cast<std::size_t>(s - k) + static_cast<std::size_t>(std::countr_zero(zero) / 8);
        s += 8;
    }
    return static_cast<std::size_t>(s - k) + std::strlen(reinterpret_cast<const char*>(s));
}
}  // namespace detail

class document_view;
class array_view;
struct code_w_scope;

struct validation_options {
    /// Deepest nesting of documents and arrays accepted (the top level is depth 1).
    std::size_t max_depth = 200;
    /// Largest document accepted, in bytes.
    std::size_t max_size = 0x7FFFFFFF;
    /// Check that strings, keys and regex parts are well-formed UTF-8.
    bool check_utf8 = true;
};

struct validation_failure {
    std::size_t offset = 0;  // byte offset of the problem, from the start of the input
    std::string message;     // what was wrong
    errc code = errc::bson_invalid;
};

/// Checks BSON bytes completely (lengths, terminators, types, UTF-8, depth,
/// size, nested documents). The input must be exactly one document.
std::optional<validation_failure> find_error(std::span<const std::uint8_t> bytes,
                                             const validation_options& options = {}) noexcept;
/// As find_error(), but throws trellis::bson_error.
void validate(std::span<const std::uint8_t> bytes, const validation_options& options = {});

/// One key/value pair of a document, pointing into the document's bytes.
class element {
public:
    element() noexcept = default;
    /// raw points at the type byte; key_size excludes the NUL; value_size as detail::value_size.
    element(const std::uint8_t* raw, std::size_t key_size, std::size_t value_size) noexcept
        : raw_(raw), key_size_(static_cast<std::uint32_t>(key_size)), value_size_(static_cast<std::uint32_t>(value_size)) {}

    bson::type type() const noexcept { return static_cast<bson::type>(raw_[0]); }
    std::string_view key() const noexcept { return {reinterpret_cast<const char*>(raw_ + 1), key_size_}; }
    /// The value's bytes as stored (without type byte and key).
    std::span<const std::uint8_t> raw_value() const noexcept { return {value_ptr(), value_size_}; }
    /// The whole element's bytes: type byte, key, value.
    std::span<const std::uint8_t> raw() const noexcept { return {raw_, 2u + key_size_ + value_size_}; }

    // Typed accessors: each throws bson_error(bson_type_mismatch) naming the
    // key, the type found and the type asked for.
    double get_double() const;
    std::string_view get_string() const;
    document_view get_document() const;
    array_view get_array() const;
    bson::binary get_binary() const;
    /// A binary of subtype 4 holding exactly 16 bytes; bson_type_mismatch otherwise.
    bson::uuid get_uuid() const;
    bson::oid get_oid() const;
    bool get_bool() const;
    bson::date_time get_date_time() const;
    bson::regex get_regex() const;
    bson::db_pointer get_db_pointer() const;
    bson::code get_code() const;
    bson::symbol get_symbol() const;
    bson::code_w_scope get_code_w_scope() const;
    std::int32_t get_int32() const;
    bson::timestamp get_timestamp() const;
    std::int64_t get_int64() const;
    bson::decimal128 get_decimal128() const;

    bool is_null() const noexcept { return type() == bson::type::null; }
    bool is_number() const noexcept;
    /// int32, int64 or double as double.
    double as_double() const;
    /// int32, int64, or a double with an integral value, as int64.
    std::int64_t as_int64() const;
    /// Server-style truthiness of ok-like fields: bool, or a number other than 0.
    bool as_bool() const;

    const std::uint8_t* value_ptr() const noexcept { return raw_ + 2 + key_size_; }

private:
    [[noreturn]] void mismatch(bson::type wanted) const;
    void expect(bson::type wanted) const {
        if (type() != wanted) mismatch(wanted);
    }

    const std::uint8_t* raw_ = nullptr;
    std::uint32_t key_size_ = 0;
    std::uint32_t value_size_ = 0;
};

/// A read-only view of a BSON document. Cheap to copy.
class document_view {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = element;
        using difference_type = std::ptrdiff_t;
        using pointer = const element*;
        using reference = const element&;

        iterator() noexcept = default;
        /// At the element p of a document whose bytes end at `end`.
        iterator(const std::uint8_t* p, const std::uint8_t* end) noexcept : p_(p), end_(end) { load(); }

        reference operator*() const noexcept { return current_; }
        pointer operator->() const noexcept { return &current_; }
        iterator& operator++() noexcept {
            p_ += current_.raw().size();
            load();
            return *this;
        }
        iterator operator++(int) noexcept {
            auto copy = *this;
            ++*this;
            return copy;
        }
        friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.p_ == b.p_; }

    private:
        void load() noexcept {
            if (p_ == nullptr || *p_ == 0) {
                p_ = nullptr;  // end
                return;
            }
            const std::size_t key_size = detail::key_length(p_ + 1, end_);
            const std::uint8_t* value = p_ + 2 + key_size;
            current_ = element(p_, key_size, detail::value_size(*p_, value));
        }

        const std::uint8_t* p_ = nullptr;
        const std::uint8_t* end_ = nullptr;
        element current_;
    };
    using const_iterator = iterator;

    /// The empty document {}.
    document_view() noexcept;
    /// Trusted bytes: data points at a complete, valid document of `size` bytes.
    document_view(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
    /// Trusted bytes starting with a document's int32 length.
    explicit document_view(const std::uint8_t* data) noexcept
        : data_(data), size_(static_cast<std::size_t>(detail::load_le<std::int32_t>(data))) {}

    /// Validates the bytes (which must be exactly one document) and views them.
    static document_view validated(std::span<const std::uint8_t> bytes, const validation_options& options = {}) {
        validate(bytes, options);
        return {bytes.data(), bytes.size()};
    }

    iterator begin() const noexcept { return iterator(data_ + 4, data_ + size_); }
    iterator end() const noexcept { return {}; }

    /// The first element with this key, if any.
    std::optional<element> find(std::string_view key) const noexcept;
    bool contains(std::string_view key) const noexcept { return find(key).has_value(); }
    /// The first element with this key; throws bson_error(bson_key_not_found).
    element operator[](std::string_view key) const;

    bool empty() const noexcept { return size_ <= 5; }
    /// Number of elements (walks the document).
    std::size_t count() const noexcept;
    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::span<const std::uint8_t> bytes() const noexcept { return {data_, size_}; }

    /// Byte-wise equality.
    friend bool operator==(const document_view& a, const document_view& b) noexcept {
        return a.size_ == b.size_ && std::memcmp(a.data_, b.data_, a.size_) == 0;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
};

/// A view of a BSON array: a document whose keys are "0", "1", ...
class array_view : public document_view {
public:
    using document_view::document_view;
    explicit array_view(document_view v) noexcept : document_view(v) {}

    /// The element at this position (walks the array); throws bson_error(bson_key_not_found).
    element operator[](std::size_t index) const;
    std::size_t size() const noexcept { return count(); }
    std::size_t byte_size() const noexcept { return document_view::size(); }
};

struct code_w_scope {
    std::string_view javascript;
    document_view scope;
};

namespace detail {
inline constexpr std::uint8_t empty_document_bytes[5] = {5, 0, 0, 0, 0};
}

class document;
namespace detail {
document borrow(document_view view) noexcept;
}

/// An owning BSON document: a buffer of bytes holding one valid document.
class document {
public:
    /// The empty document {} (no allocation: its bytes are static until something replaces them).
    document() noexcept = default;
    /// Copies the bytes of a view.
    explicit document(document_view view);
    /// Takes ownership of a buffer holding a valid document of `size` bytes.
    document(std::unique_ptr<std::uint8_t[]> data, std::size_t size) noexcept
        : data_(data.release()), size_(static_cast<std::uint32_t>(size)), owned_(true) {}
    ~document() { reset(); }

    /// A copy owns its bytes, whatever the original does.
    document(const document& other) : document(other.view()) {}
    /// The moved-from document is {}.
    document(document&& other) noexcept
        : data_(std::exchange(other.data_, detail::empty_document_bytes)), size_(std::exchange(other.size_, 5)),
          owned_(std::exchange(other.owned_, false)) {}
    document& operator=(const document& other) {
        if (this != &other) *this = document(other.view());
        return *this;
    }
    document& operator=(document&& other) noexcept {
        if (this != &other) {
            reset();
            data_ = std::exchange(other.data_, detail::empty_document_bytes);
            size_ = std::exchange(other.size_, 5);
            owned_ = std::exchange(other.owned_, false);
        }
        return *this;
    }

    /// Validates the bytes and copies them; throws bson_error.
    static document from_bytes(std::span<const std::uint8_t> bytes, const validation_options& options = {}) {
        return document(document_view::validated(bytes, options));
    }

    document_view view() const noexcept { return {data_, size_}; }
    operator document_view() const noexcept { return view(); }

    document_view::iterator begin() const noexcept { return view().begin(); }
    document_view::iterator end() const noexcept { return view().end(); }
    std::optional<element> find(std::string_view key) const noexcept { return view().find(key); }
    bool contains(std::string_view key) const noexcept { return view().contains(key); }
    element operator[](std::string_view key) const { return view()[key]; }
    bool empty() const noexcept { return view().empty(); }
    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::span<const std::uint8_t> bytes() const noexcept { return view().bytes(); }

    /// Gives the buffer (size() bytes) away; the document is left {}.
    std::unique_ptr<std::uint8_t[]> release() {
        std::unique_ptr<std::uint8_t[]> out;
        if (owned_) {
            out.reset(const_cast<std::uint8_t*>(data_));
        } else {  // {} or borrowed bytes: a copy
            out.reset(new std::uint8_t[size_]);
            std::memcpy(out.get(), data_, size_);
        }
        data_ = detail::empty_document_bytes;
        size_ = 5;
        owned_ = false;
        return out;
    }

    friend bool operator==(const document& a, const document& b) noexcept { return a.view() == b.view(); }

private:
    friend document detail::borrow(document_view view) noexcept;
    void reset() noexcept {
        if (owned_) delete[] data_;
    }

    // Owned (new[]), detail::empty_document_bytes, or, inside the library only, bytes borrowed
    // for the length of a blocking call (detail::borrow).
    const std::uint8_t* data_ = detail::empty_document_bytes;
    std::uint32_t size_ = 5;  // a BSON document is at most 2^31 - 1 bytes
    bool owned_ = false;
};

namespace detail {
/// Internal: a document over `view`'s bytes that does not own them. The library's blocking
/// calls use it to pass a caller's view through the operation path without a copy; it must
/// not outlive the bytes (copies of it own their bytes; a move carries the borrow along).
inline document borrow(document_view view) noexcept {
    document d;
    d.data_ = view.data();
    d.size_ = static_cast<std::uint32_t>(view.size());
    return d;
}
}  // namespace detail

/// An owning BSON array.
class array {
public:
    array() : doc_() {}
    explicit array(document doc) noexcept : doc_(std::move(doc)) {}

    array_view view() const noexcept { return array_view(doc_.view()); }
    operator array_view() const noexcept { return view(); }
    document_view::iterator begin() const noexcept { return doc_.begin(); }
    document_view::iterator end() const noexcept { return doc_.end(); }
    element operator[](std::size_t index) const { return view()[index]; }
    std::size_t size() const noexcept { return view().size(); }
    bool empty() const noexcept { return doc_.empty(); }
    std::span<const std::uint8_t> bytes() const noexcept { return doc_.bytes(); }

private:
    document doc_;
};

// The typed accessors, inline: a loop over a document's elements compiles to a few loads per
// element instead of a call each.
inline double element::get_double() const {
    expect(type::double_);
    return detail::load_le<double>(value_ptr());
}

inline std::string_view element::get_string() const {
    expect(type::string);
    return {reinterpret_cast<const char*>(value_ptr() + 4), value_size_ - 5};
}

inline document_view element::get_document() const {
    expect(type::document);
    return {value_ptr(), value_size_};
}

inline array_view element::get_array() const {
    expect(type::array);
    return {value_ptr(), value_size_};
}

inline binary element::get_binary() const {
    expect(type::binary);
    const std::uint8_t* v = value_ptr();
    // The old subtype 0x02 repeats the length inside the data; the value is what follows it.
    if (v[4] == binary_subtype::binary_old) return {v[4], {v + 9, value_size_ - 9}};
    return {v[4], {v + 5, value_size_ - 5}};
}

inline oid element::get_oid() const {
    expect(type::oid);
    return oid(value_ptr());
}

inline bool element::get_bool() const {
    expect(type::boolean);
    return *value_ptr() != 0;
}

inline date_time element::get_date_time() const {
    expect(type::date_time);
    return date_time(detail::load_le<std::int64_t>(value_ptr()));
}

inline regex element::get_regex() const {
    expect(type::regex);
    const char* p = reinterpret_cast<const char*>(value_ptr());
    const std::string_view pattern(p);
    return {pattern, std::string_view(p + pattern.size() + 1)};
}

inline db_pointer element::get_db_pointer() const {
    expect(type::db_pointer);
    const std::uint8_t* v = value_ptr();
    const auto n = static_cast<std::size_t>(detail::load_le<std::int32_t>(v));
    return {std::string_view(reinterpret_cast<const char*>(v + 4), n - 1), oid(v + 4 + n)};
}

inline code element::get_code() const {
    expect(type::code);
    return {std::string_view(reinterpret_cast<const char*>(value_ptr() + 4), value_size_ - 5)};
}

inline symbol element::get_symbol() const {
    expect(type::symbol);
    return {std::string_view(reinterpret_cast<const char*>(value_ptr() + 4), value_size_ - 5)};
}

inline code_w_scope element::get_code_w_scope() const {
    expect(type::code_w_scope);
    const std::uint8_t* v = value_ptr();
    const auto n = static_cast<std::size_t>(detail::load_le<std::int32_t>(v + 4));
    return {std::string_view(reinterpret_cast<const char*>(v + 8), n - 1), document_view(v + 8 + n)};
}

inline std::int32_t element::get_int32() const {
    expect(type::int32);
    return detail::load_le<std::int32_t>(value_ptr());
}

inline timestamp element::get_timestamp() const {
    expect(type::timestamp);
    const std::uint8_t* v = value_ptr();
    return {detail::load_le<std::uint32_t>(v + 4), detail::load_le<std::uint32_t>(v)};
}

inline std::int64_t element::get_int64() const {
    expect(type::int64);
    return detail::load_le<std::int64_t>(value_ptr());
}

}  // namespace trellis::bson
