// Trellis: encoding with bson::builder, decoding with document_view::validated
// and the element accessors.
#include <bit>
#include <cstring>
#include <deque>

#include "codecs.hpp"
#include "trellis/bson/builder.hpp"

namespace trellis_bench {

namespace bson = trellis::bson;

// ---------------------------------------------------------------- encoding

struct trellis_encoder::impl {
    encode_mode mode;
    bson::builder doc;               // reuse mode: the one builder every document is built in
    std::deque<bson::builder> scopes;  // reuse mode: one scratch builder per code_w_scope nesting level

    // Appends value under c's key, or as the next array element.
    template <class T>
    static void put(bson::builder& b, bool in_array, const node& c, const T& value) {
        if (in_array)
            b.append(value);
        else
            b.append(c.key, value);
    }

    void append_children(bson::builder& b, const node& parent, std::size_t scope_depth) {
        const bool in_array = parent.type == bson::type::array;
        for (const node& c : parent.children) append_value(b, in_array, c, scope_depth);
    }

    void append_value(bson::builder& b, bool in_array, const node& c, std::size_t scope_depth) {
        switch (c.type) {
            case bson::type::double_: put(b, in_array, c, c.number); break;
            case bson::type::string: put(b, in_array, c, std::string_view(c.text)); break;
            case bson::type::document:
                if (in_array)
                    b.open_document();
                else
                    b.open_document(c.key);
                append_children(b, c, scope_depth);
                b.close_document();
                break;
            case bson::type::array:
                if (in_array)
                    b.open_array();
                else
                    b.open_array(c.key);
                append_children(b, c, scope_depth);
                b.close_array();
                break;
            case bson::type::binary:
                put(b, in_array, c,
                    bson::binary{c.subtype, {reinterpret_cast<const std::uint8_t*>(c.text.data()), c.text.size()}});
                break;
            case bson::type::undefined: put(b, in_array, c, bson::undefined); break;
            case bson::type::oid: put(b, in_array, c, bson::oid(c.oid)); break;
            case bson::type::boolean: put(b, in_array, c, c.integer != 0); break;
            case bson::type::date_time: put(b, in_array, c, bson::date_time(c.integer)); break;
            case bson::type::null: put(b, in_array, c, bson::null); break;
            case bson::type::regex: put(b, in_array, c, bson::regex{c.text, c.text2}); break;
            case bson::type::db_pointer: put(b, in_array, c, bson::db_pointer{c.text, bson::oid(c.oid)}); break;
            case bson::type::code: put(b, in_array, c, bson::code{c.text}); break;
            case bson::type::symbol: put(b, in_array, c, bson::symbol{c.text}); break;
            case bson::type::code_w_scope:
                // The scope is a document of its own: build it aside, then copy it in.
                if (mode == encode_mode::reuse) {
                    if (scopes.size() <= scope_depth) scopes.emplace_back();
                    bson::builder& scope = scopes[scope_depth];
                    scope.clear();
                    append_children(scope, c, scope_depth + 1);
                    put(b, in_array, c, bson::code_w_scope{c.text, scope.view()});
                } else {
                    bson::builder scope;
                    append_children(scope, c, scope_depth + 1);
                    const bson::document d = scope.extract();
                    put(b, in_array, c, bson::code_w_scope{c.text, d.view()});
                }
                break;
            case bson::type::int32: put(b, in_array, c, static_cast<std::int32_t>(c.integer)); break;
            case bson::type::timestamp: put(b, in_array, c, bson::timestamp{c.ts_seconds, c.ts_increment}); break;
            case bson::type::int64: put(b, in_array, c, c.integer); break;
            case bson::type::decimal128: put(b, in_array, c, bson::decimal128(c.dec_high, c.dec_low)); break;
            case bson::type::min_key: put(b, in_array, c, bson::min_key); break;
            case bson::type::max_key: put(b, in_array, c, bson::max_key); break;
        }
    }
};

trellis_encoder::trellis_encoder(encode_mode mode) : impl_(new impl{mode, {}, {}}) {}
trellis_encoder::~trellis_encoder() = default;

std::size_t trellis_encoder::encode(const node& root) {
    if (impl_->mode == encode_mode::reuse) {
        impl_->doc.clear();
        impl_->append_children(impl_->doc, root, 0);
        return impl_->doc.view().size();
    }
    bson::builder b;
    impl_->append_children(b, root, 0);
    const bson::document d = b.extract();
    return d.size();
}

std::vector<std::uint8_t> trellis_encoder::encode_copy(const node& root) {
    if (impl_->mode == encode_mode::reuse) {
        impl_->doc.clear();
        impl_->append_children(impl_->doc, root, 0);
        const auto bytes = impl_->doc.view().bytes();
        return {bytes.begin(), bytes.end()};
    }
    bson::builder b;
    impl_->append_children(b, root, 0);
    const bson::document d = b.extract();
    return {d.bytes().begin(), d.bytes().end()};
}

// ---------------------------------------------------------------- decoding

namespace {

std::uint64_t oid_sum(const std::uint8_t* p) {
    std::uint64_t a;
    std::uint32_t b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 4);
    return a + b;
}

void visit(bson::document_view doc, std::uint64_t& sum) {
    for (const bson::element& e : doc) {
        sum += e.key().size();
        switch (e.type()) {
            case bson::type::double_: sum += std::bit_cast<std::uint64_t>(e.get_double()); break;
            case bson::type::string: sum += e.get_string().size(); break;
            case bson::type::document: visit(e.get_document(), sum); break;
            case bson::type::array: visit(e.get_array(), sum); break;
            case bson::type::binary: {
                const bson::binary b = e.get_binary();
                sum += b.subtype + b.bytes.size();
                break;
            }
            case bson::type::undefined:
            case bson::type::null:
            case bson::type::min_key:
            case bson::type::max_key: sum += 1; break;
            case bson::type::oid: sum += oid_sum(e.get_oid().data()); break;
            case bson::type::boolean: sum += e.get_bool() ? 1 : 0; break;
            case bson::type::date_time: sum += static_cast<std::uint64_t>(e.get_date_time().milliseconds); break;
            case bson::type::regex: {
                const bson::regex r = e.get_regex();
                sum += r.pattern.size() + r.options.size();
                break;
            }
            case bson::type::db_pointer: {
                const bson::db_pointer p = e.get_db_pointer();
                sum += p.collection.size() + oid_sum(p.id.data());
                break;
            }
            case bson::type::code: sum += e.get_code().javascript.size(); break;
            case bson::type::symbol: sum += e.get_symbol().value.size(); break;
            case bson::type::code_w_scope: {
                const bson::code_w_scope c = e.get_code_w_scope();
                sum += c.javascript.size();
                visit(c.scope, sum);
                break;
            }
            case bson::type::int32: sum += static_cast<std::uint64_t>(static_cast<std::int64_t>(e.get_int32())); break;
            case bson::type::timestamp: {
                const bson::timestamp t = e.get_timestamp();
                sum += std::uint64_t{t.seconds} + t.increment;
                break;
            }
            case bson::type::int64: sum += static_cast<std::uint64_t>(e.get_int64()); break;
            case bson::type::decimal128: {
                const bson::decimal128 d = e.get_decimal128();
                sum += d.high() + d.low();
                break;
            }
        }
    }
}

}  // namespace

std::uint64_t trellis_validate(std::span<const std::uint8_t> bytes) {
    bson::validate(bytes);
    return 1;
}

std::uint64_t trellis_decode(std::span<const std::uint8_t> bytes) {
    const bson::document_view doc = bson::document_view::validated(bytes);
    std::uint64_t sum = 0;
    visit(doc, sum);
    return sum;
}

}  // namespace trellis_bench
