#include "bson/validator.hpp"

#include <array>
#include <bit>
#include <cstring>

#include "bson/utf8.hpp"

namespace trellis::bson {

namespace {

std::string hex_byte(std::uint8_t b) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[b >> 4] + digits[b & 0xF];
}

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
                seen |= w & (zero ^ (zero - 1));  // the bytes up to the NUL
                return k + std::countr_zero(zero) / 8;
            }
            seen |= w;
            k += 8;
        }
    }
    while (k < last && *k != 0) seen |= *k++;
    return k;
}

// What the element loop needs to know of a type byte, in one load: the value's size when it is
// fixed and needs no other check (below 0x80), `other` for the kinds value() looks into, and
// `unknown` for a byte that is no type (0x00 included). A switch per element cost an indirect,
// mostly mispredicted, jump: in full_bson, 83 of the 131 elements need no more than their size.
constexpr std::uint8_t other = 0x80, unknown = 0xFF;
constexpr std::array<std::uint8_t, 256> type_class = [] {
    std::array<std::uint8_t, 256> c{};
    for (std::size_t t = 0; t < c.size(); ++t) {
        const auto b = static_cast<std::uint8_t>(t);
        const std::uint8_t size = detail::fixed_value_sizes.size[t];
        c[t] = b == 0 || !is_known_type(b) ? unknown
               : size == detail::variable_size || b == static_cast<std::uint8_t>(type::boolean) ? other
                                                                                                  : size;
    }
    return c;
}();

// Error text is only built on the failure path: the checks below run for every element of every
// document read, and building messages eagerly cost a heap allocation per string value
// (measured with trellis-bench and callgrind).
struct label {
    std::string_view prefix, key, suffix;
    std::string str() const { return std::string(prefix).append(key).append(suffix); }
};

// The checks of a document whose bytes have all come, recursively: the fast path, which the
// validator below takes for each part received whole.
class checker {
public:
    checker(const std::uint8_t* base, const validation_options& options) : base_(base), options_(options) {}

    // Validates the document at p whose bytes may extend at most to limit.
    // Returns false after recording the first problem.
    bool document(const std::uint8_t* p, const std::uint8_t* limit, std::size_t depth) {
        const std::uint8_t* end = header(p, limit, depth, limit);
        if (end == nullptr) return false;
        const std::uint8_t* q = p + 4;
        const std::uint8_t* last = end - 1;  // where the terminator sits
        while (q < last) {
            q = next(q, last, depth);
            if (q == nullptr) return false;
        }
        return true;
    }

    // The header of the document at p: its length against limit and, if its last byte is before
    // `received`, its terminator. Returns one past its end, or nullptr.
    [[gnu::always_inline]] const std::uint8_t* header(const std::uint8_t* p, const std::uint8_t* limit, std::size_t depth,
                               const std::uint8_t* received) {
        if (depth > options_.max_depth) [[unlikely]]
            return fail_null(p, "nesting depth exceeds the limit of " + std::to_string(options_.max_depth));
        if (limit - p < 5) [[unlikely]]
            return fail_null(p, "document truncated: fewer than 5 bytes remain for its header and terminator");
        const std::int32_t length = detail::load_le<std::int32_t>(p);
        if (length < 5) [[unlikely]]
            return fail_null(p, "document length " + std::to_string(length) + " is below the minimum of 5");
        if (length > limit - p) [[unlikely]]
            return fail_null(p, "document length " + std::to_string(length) + " exceeds the " + std::to_string(limit - p) +
                                    " bytes available");
        const std::uint8_t* end = p + length;  // one past the terminator
        if (end <= received && end[-1] != 0) [[unlikely]]
            return bad_terminator(end - 1);
        return end;
    }

    // The element at q of a document at depth `depth` whose terminator is at `last`; returns the
    // byte after it, or nullptr.
    const std::uint8_t* element(const std::uint8_t* q, const std::uint8_t* last, std::size_t depth) {
        return next(q, last, depth);
    }

    // The same, inlined in document()'s loop.
    [[gnu::always_inline]] const std::uint8_t* next(const std::uint8_t* q, const std::uint8_t* last, std::size_t depth) {
        const std::uint8_t t = *q;
        if (type_class[t] == unknown) [[unlikely]]
            return bad_type(q);
        const std::uint8_t* key = q + 1;
        std::uint64_t seen = 0;
        const std::uint8_t* k = key_end(key, last, seen);
        if (k == last) [[unlikely]]
            return fail_null(key, "element key is not terminated inside the document");
        if ((seen & 0x8080808080808080ULL) != 0 && !key_valid(key, k)) [[unlikely]]
            return nullptr;
        return value(t, k + 1, last, depth,
                     std::string_view(reinterpret_cast<const char*>(key), static_cast<std::size_t>(k - key)));
    }

    // The UTF-8 check of the key [key, nul).
    bool key_valid(const std::uint8_t* key, const std::uint8_t* nul) {
        const auto size = static_cast<std::size_t>(nul - key);
        if (options_.check_utf8 && !detail::utf8_valid(key, size)) [[unlikely]]
            return fail(key + detail::utf8_valid_prefix(key, size), "element key is not valid UTF-8");
        return true;
    }

    [[gnu::cold, gnu::noinline]] std::nullptr_t bad_type(const std::uint8_t* q) {
        if (*q == 0) fail(q, "unexpected 0x00 before the end of the document (the stated length is too long)");
        else fail(q, "unknown element type " + hex_byte(*q));
        return nullptr;
    }

    [[gnu::cold, gnu::noinline]] std::nullptr_t bad_terminator(const std::uint8_t* at) {
        fail(at, "document does not end with a 0x00 terminator (found " + hex_byte(*at) + ")");
        return nullptr;
    }

    std::optional<validation_failure> failure;

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

    // Validates one value of a known type t; returns the byte after it, or nullptr on failure.
    // A value of a fixed size with nothing else to check is sized by type_class, without the switch.
    [[gnu::always_inline]] const std::uint8_t* value(std::uint8_t t, const std::uint8_t* v, const std::uint8_t* limit, std::size_t depth,
                              std::string_view key) {
        if (const std::uint8_t size = type_class[t]; size < other) return fixed(v, limit, size, key);
        switch (static_cast<type>(t)) {
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
            default: break;  // sized by type_class above
        }
        return fail_null(v - 1, "unknown element type " + hex_byte(t));  // next() refuses these first
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

namespace detail {

void validator::reset() noexcept {
    failure_.reset();
    pos_ = depth_ = 0;
    done_ = false;
    deep_.clear();
}

validator::status validator::advance(std::span<const std::uint8_t> received, std::size_t limit) {
    if (failure_) return status::invalid;
    if (done_) return status::valid;
    const std::uint8_t* base = received.data();
    if (depth_ == 0) {
        if (received.size() < 4 && limit >= 5) return status::incomplete;
        checker c(base, options_);
        const std::uint8_t* end = c.header(base, base + limit, 1, base + received.size());
        if (end == nullptr) {
            failure_ = std::move(c.failure);
            return status::invalid;
        }
        if (end <= base + received.size()) {  // all of it: at once
            if (!c.document(base, base + limit, 1)) {
                failure_ = std::move(c.failure);
                return status::invalid;
            }
            done_ = true;
            return status::valid;
        }
        push({static_cast<std::size_t>(end - base)});
        pos_ = 4;
    }
    if (!walk(received)) return failure_ ? status::invalid : status::incomplete;
    done_ = true;
    return status::valid;
}

// From pos_ on, as far as the bytes go: each element received whole at once; a document or an
// array that has not all come is entered (its key and header checked) and walked the same way.
// Returns true once the outermost document is closed.
bool validator::walk(std::span<const std::uint8_t> received) {
    const std::uint8_t* const base = received.data();
    const std::size_t available = received.size();
    checker c(base, options_);
    while (depth_ != 0) {
        const std::size_t end = top().end;
        const std::size_t last = end - 1;  // where the terminator sits
        const std::size_t q = pos_;
        if (q >= available) return false;
        if (q == last) {
            if (base[q] != 0) [[unlikely]] {
                c.bad_terminator(base + q);
                failure_ = std::move(c.failure);
                return false;
            }
            pop();
            pos_ = end;
            continue;
        }
        const bool whole = last < available;  // every byte up to the terminator has come
        const std::uint8_t* bound = base + (whole ? last : available);
        const std::uint8_t t = base[q];
        if (!whole && (t == static_cast<std::uint8_t>(type::document) || t == static_cast<std::uint8_t>(type::array))) {
            const std::uint8_t* key = base + q + 1;
            const auto* nul = static_cast<const std::uint8_t*>(std::memchr(key, 0, static_cast<std::size_t>(bound - key)));
            if (nul != nullptr && nul + 5 <= base + available) {
                const std::uint8_t* v = nul + 1;
                const std::int32_t length = load_le<std::int32_t>(v);
                if (length >= 5 && v + length > base + available && v + length <= base + last) {
                    if (!c.key_valid(key, nul) || c.header(v, base + last, depth_ + 1, base + available) == nullptr) {
                        failure_ = std::move(c.failure);
                        return false;
                    }
                    push({static_cast<std::size_t>(v + length - base)});
                    pos_ = static_cast<std::size_t>(v + 4 - base);
                    continue;
                }
            }
        }
        const std::uint8_t* next = c.element(base + q, bound, depth_);
        if (next == nullptr) {
            // Short of the document's end, a fault may only be the bytes still to come: the
            // element is checked again with more of them.
            if (whole) failure_ = std::move(c.failure);
            return false;
        }
        pos_ = static_cast<std::size_t>(next - base);
    }
    return true;
}

}  // namespace detail

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
        checker v(bytes.data(), options);
        if (!v.document(bytes.data(), bytes.data() + bytes.size(), 1)) return std::move(v.failure);
        return std::nullopt;
    } catch (const std::bad_alloc&) {
        return validation_failure{0, "out of memory while validating"};
    }
}

void validate(std::span<const std::uint8_t> bytes, const validation_options& options) {
    if (auto failure = find_error(bytes, options)) throw bson_error(failure->code, failure->message, failure->offset);
}

}  // namespace trellis::bson
