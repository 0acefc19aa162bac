// libbson: encoding with bson_append_*, decoding with bson_validate and bson_iter.
#include <bson/bson.h>

#include <bit>
#include <cstring>
#include <stdexcept>

#include "codecs.hpp"

namespace trellis_bench {

namespace bson = trellis::bson;

// ---------------------------------------------------------------- encoding

struct libbson_encoder::impl {
    encode_mode mode;
    bson_t doc;  // reuse mode: the one bson_t every document is built in
    // A bson_t* wrapped: bson_t's alignment attribute is lost (and g++ warns) as a template argument.
    struct scope_slot {
        bson_t* doc;
    };
    std::vector<scope_slot> scopes;  // reuse mode: one scratch bson_t per code_w_scope nesting level
    bool ok = true;  // false once an append failed

    explicit impl(encode_mode m) : mode(m) { bson_init(&doc); }
    ~impl() {
        bson_destroy(&doc);
        for (const scope_slot& s : scopes) bson_destroy(s.doc);
    }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void append_children(bson_t* b, const node& parent, std::size_t scope_depth) {
        if (parent.type == bson::type::array) {
            // What a libbson user writes for array keys: bson_uint32_to_string
            // (a table lookup below 1000).
            std::uint32_t index = 0;
            char buffer[16];
            for (const node& c : parent.children) {
                const char* key;
                const std::size_t key_len = bson_uint32_to_string(index++, &key, buffer, sizeof buffer);
                append_value(b, key, static_cast<int>(key_len), c, scope_depth);
            }
        } else {
            for (const node& c : parent.children)
                append_value(b, c.key.data(), static_cast<int>(c.key.size()), c, scope_depth);
        }
    }

    void append_value(bson_t* b, const char* key, int key_len, const node& c, std::size_t scope_depth) {
        switch (c.type) {
            case bson::type::double_: ok &= bson_append_double(b, key, key_len, c.number); break;
            case bson::type::string:
                ok &= bson_append_utf8(b, key, key_len, c.text.data(), static_cast<int>(c.text.size()));
                break;
            case bson::type::document: {
                bson_t child;
                ok &= bson_append_document_begin(b, key, key_len, &child);
                append_children(&child, c, scope_depth);
                ok &= bson_append_document_end(b, &child);
                break;
            }
            case bson::type::array: {
                bson_t child;
                ok &= bson_append_array_begin(b, key, key_len, &child);
                append_children(&child, c, scope_depth);
                ok &= bson_append_array_end(b, &child);
                break;
            }
            case bson::type::binary:
                ok &= bson_append_binary(b, key, key_len, static_cast<bson_subtype_t>(c.subtype),
                                         reinterpret_cast<const std::uint8_t*>(c.text.data()),
                                         static_cast<std::uint32_t>(c.text.size()));
                break;
            case bson::type::undefined: ok &= bson_append_undefined(b, key, key_len); break;
            case bson::type::oid: {
                bson_oid_t oid;
                std::memcpy(oid.bytes, c.oid.data(), 12);
                ok &= bson_append_oid(b, key, key_len, &oid);
                break;
            }
            case bson::type::boolean: ok &= bson_append_bool(b, key, key_len, c.integer != 0); break;
            case bson::type::date_time: ok &= bson_append_date_time(b, key, key_len, c.integer); break;
            case bson::type::null: ok &= bson_append_null(b, key, key_len); break;
            case bson::type::regex:
                ok &= bson_append_regex_w_len(b, key, key_len, c.text.data(), static_cast<int>(c.text.size()),
                                              c.text2.c_str());
                break;
            case bson::type::db_pointer: {
                bson_oid_t oid;
                std::memcpy(oid.bytes, c.oid.data(), 12);
                ok &= bson_append_dbpointer(b, key, key_len, c.text.c_str(), &oid);
                break;
            }
            case bson::type::code: ok &= bson_append_code(b, key, key_len, c.text.c_str()); break;
            case bson::type::symbol:
                ok &= bson_append_symbol(b, key, key_len, c.text.data(), static_cast<int>(c.text.size()));
                break;
            case bson::type::code_w_scope:
                // The scope is a document of its own: build it aside, then copy it in.
                if (mode == encode_mode::reuse) {
                    if (scopes.size() <= scope_depth) scopes.push_back({bson_new()});
                    bson_t* scope = scopes[scope_depth].doc;
                    bson_reinit(scope);
                    append_children(scope, c, scope_depth + 1);
                    ok &= bson_append_code_with_scope(b, key, key_len, c.text.c_str(), scope);
                } else {
                    bson_t scope;
                    bson_init(&scope);
                    append_children(&scope, c, scope_depth + 1);
                    ok &= bson_append_code_with_scope(b, key, key_len, c.text.c_str(), &scope);
                    bson_destroy(&scope);
                }
                break;
            case bson::type::int32:
                ok &= bson_append_int32(b, key, key_len, static_cast<std::int32_t>(c.integer));
                break;
            case bson::type::timestamp:
                ok &= bson_append_timestamp(b, key, key_len, c.ts_seconds, c.ts_increment);
                break;
            case bson::type::int64: ok &= bson_append_int64(b, key, key_len, c.integer); break;
            case bson::type::decimal128: {
                bson_decimal128_t d;
                d.high = c.dec_high;
                d.low = c.dec_low;
                ok &= bson_append_decimal128(b, key, key_len, &d);
                break;
            }
            case bson::type::min_key: ok &= bson_append_minkey(b, key, key_len); break;
            case bson::type::max_key: ok &= bson_append_maxkey(b, key, key_len); break;
        }
    }

    void check() {
        if (!ok) throw std::runtime_error("libbson refused an append");
    }
};

libbson_encoder::libbson_encoder(encode_mode mode) : impl_(new impl(mode)) {}
libbson_encoder::~libbson_encoder() = default;

std::size_t libbson_encoder::encode(const node& root) {
    if (impl_->mode == encode_mode::reuse) {
        bson_reinit(&impl_->doc);
        impl_->append_children(&impl_->doc, root, 0);
        impl_->check();
        return impl_->doc.len;
    }
    bson_t b;
    bson_init(&b);
    impl_->append_children(&b, root, 0);
    const std::size_t size = b.len;
    bson_destroy(&b);
    impl_->check();
    return size;
}

std::vector<std::uint8_t> libbson_encoder::encode_copy(const node& root) {
    if (impl_->mode == encode_mode::reuse) {
        bson_reinit(&impl_->doc);
        impl_->append_children(&impl_->doc, root, 0);
        impl_->check();
        const std::uint8_t* data = bson_get_data(&impl_->doc);
        return {data, data + impl_->doc.len};
    }
    bson_t b;
    bson_init(&b);
    impl_->append_children(&b, root, 0);
    const std::uint8_t* data = bson_get_data(&b);
    std::vector<std::uint8_t> copy(data, data + b.len);
    bson_destroy(&b);
    impl_->check();
    return copy;
}

// ---------------------------------------------------------------- decoding

namespace {

[[noreturn]] void corrupt(const char* what) { throw std::runtime_error(std::string("libbson: ") + what); }

std::uint64_t oid_sum(const std::uint8_t* p) {
    std::uint64_t a;
    std::uint32_t b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 4);
    return a + b;
}

void visit(bson_iter_t* it, std::uint64_t& sum) {
    while (bson_iter_next(it)) {
        sum += bson_iter_key_len(it);
        switch (bson_iter_type(it)) {
            case BSON_TYPE_DOUBLE: sum += std::bit_cast<std::uint64_t>(bson_iter_double(it)); break;
            case BSON_TYPE_UTF8: {
                std::uint32_t len = 0;
                bson_iter_utf8(it, &len);
                sum += len;
                break;
            }
            case BSON_TYPE_DOCUMENT:
            case BSON_TYPE_ARRAY: {
                bson_iter_t child;
                if (!bson_iter_recurse(it, &child)) corrupt("cannot recurse into a document");
                visit(&child, sum);
                break;
            }
            case BSON_TYPE_BINARY: {
                bson_subtype_t subtype;
                std::uint32_t len = 0;
                const std::uint8_t* data = nullptr;
                bson_iter_binary(it, &subtype, &len, &data);
                sum += static_cast<std::uint64_t>(subtype) + len;
                break;
            }
            case BSON_TYPE_UNDEFINED:
            case BSON_TYPE_NULL:
            case BSON_TYPE_MINKEY:
            case BSON_TYPE_MAXKEY: sum += 1; break;
            case BSON_TYPE_OID: sum += oid_sum(bson_iter_oid(it)->bytes); break;
            case BSON_TYPE_BOOL: sum += bson_iter_bool(it) ? 1 : 0; break;
            case BSON_TYPE_DATE_TIME: sum += static_cast<std::uint64_t>(bson_iter_date_time(it)); break;
            case BSON_TYPE_REGEX: {
                const char* options = nullptr;
                const char* pattern = bson_iter_regex(it, &options);
                sum += std::strlen(pattern) + std::strlen(options);
                break;
            }
            case BSON_TYPE_DBPOINTER: {
                std::uint32_t len = 0;
                const char* collection = nullptr;
                const bson_oid_t* oid = nullptr;
                bson_iter_dbpointer(it, &len, &collection, &oid);
                sum += len + oid_sum(oid->bytes);
                break;
            }
            case BSON_TYPE_CODE: {
                std::uint32_t len = 0;
                bson_iter_code(it, &len);
                sum += len;
                break;
            }
            case BSON_TYPE_SYMBOL: {
                std::uint32_t len = 0;
                bson_iter_symbol(it, &len);
                sum += len;
                break;
            }
            case BSON_TYPE_CODEWSCOPE: {
                std::uint32_t len = 0, scope_len = 0;
                const std::uint8_t* scope_data = nullptr;
                bson_iter_codewscope(it, &len, &scope_len, &scope_data);
                sum += len;
                bson_t scope;
                bson_iter_t child;
                if (!bson_init_static(&scope, scope_data, scope_len) || !bson_iter_init(&child, &scope))
                    corrupt("cannot read a code_w_scope scope");
                visit(&child, sum);
                break;
            }
            case BSON_TYPE_INT32:
                sum += static_cast<std::uint64_t>(static_cast<std::int64_t>(bson_iter_int32(it)));
                break;
            case BSON_TYPE_TIMESTAMP: {
                std::uint32_t seconds = 0, increment = 0;
                bson_iter_timestamp(it, &seconds, &increment);
                sum += std::uint64_t{seconds} + increment;
                break;
            }
            case BSON_TYPE_INT64: sum += static_cast<std::uint64_t>(bson_iter_int64(it)); break;
            case BSON_TYPE_DECIMAL128: {
                bson_decimal128_t d;
                bson_iter_decimal128(it, &d);
                sum += d.high + d.low;
                break;
            }
            case BSON_TYPE_EOD:
            default: corrupt("unexpected element type");
        }
    }
}

// bson_init_static points `b` at itself: it must stay where it was made (no copies).
void init_validated(bson_t* b, std::span<const std::uint8_t> bytes) {
    if (!bson_init_static(b, bytes.data(), bytes.size())) corrupt("bson_init_static refused the bytes");
    std::size_t offset = 0;
    if (!bson_validate(b, BSON_VALIDATE_UTF8, &offset))
        throw std::runtime_error("libbson: bson_validate failed at byte " + std::to_string(offset));
}
}  // namespace

std::uint64_t libbson_validate(std::span<const std::uint8_t> bytes) {
    bson_t b;
    init_validated(&b, bytes);
    return 1;
}

std::uint64_t libbson_decode(std::span<const std::uint8_t> bytes) {
    bson_t b;
    init_validated(&b, bytes);
    bson_iter_t it;
    if (!bson_iter_init(&it, &b)) corrupt("bson_iter_init refused the document");
    std::uint64_t sum = 0;
    visit(&it, sum);
    return sum;
}

std::string libbson_version() { return bson_get_version(); }

}  // namespace trellis_bench
