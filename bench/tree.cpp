#include "tree.hpp"

#include <cstring>

namespace trellis_bench {

namespace {

namespace bson = trellis::bson;

void fill_children(node& parent, bson::document_view doc);

node from_element(const bson::element& e) {
    node n;
    n.type = e.type();
    n.key = std::string(e.key());
    switch (e.type()) {
        case bson::type::double_: n.number = e.get_double(); break;
        case bson::type::string: n.text = std::string(e.get_string()); break;
        case bson::type::document: fill_children(n, e.get_document()); break;
        case bson::type::array: fill_children(n, e.get_array()); break;
        case bson::type::binary: {
            const bson::binary b = e.get_binary();
            n.subtype = b.subtype;
            n.text.assign(reinterpret_cast<const char*>(b.bytes.data()), b.bytes.size());
            break;
        }
        case bson::type::undefined:
        case bson::type::null:
        case bson::type::min_key:
        case bson::type::max_key: break;
        case bson::type::oid: n.oid = e.get_oid().bytes(); break;
        case bson::type::boolean: n.integer = e.get_bool() ? 1 : 0; break;
        case bson::type::date_time: n.integer = e.get_date_time().milliseconds; break;
        case bson::type::regex: {
            const bson::regex r = e.get_regex();
            n.text = std::string(r.pattern);
            n.text2 = std::string(r.options);
            break;
        }
        case bson::type::db_pointer: {
            const bson::db_pointer p = e.get_db_pointer();
            n.text = std::string(p.collection);
            n.oid = p.id.bytes();
            break;
        }
        case bson::type::code: n.text = std::string(e.get_code().javascript); break;
        case bson::type::symbol: n.text = std::string(e.get_symbol().value); break;
        case bson::type::code_w_scope: {
            const bson::code_w_scope c = e.get_code_w_scope();
            n.text = std::string(c.javascript);
            fill_children(n, c.scope);
            break;
        }
        case bson::type::int32: n.integer = e.get_int32(); break;
        case bson::type::timestamp: {
            const bson::timestamp t = e.get_timestamp();
            n.ts_seconds = t.seconds;
            n.ts_increment = t.increment;
            break;
        }
        case bson::type::int64: n.integer = e.get_int64(); break;
        case bson::type::decimal128: {
            const bson::decimal128 d = e.get_decimal128();
            n.dec_high = d.high();
            n.dec_low = d.low();
            break;
        }
    }
    return n;
}

void fill_children(node& parent, bson::document_view doc) {
    for (const bson::element& e : doc) parent.children.push_back(from_element(e));
}

}  // namespace

node tree_from(bson::document_view doc) {
    node root;
    root.type = bson::type::document;
    fill_children(root, doc);
    return root;
}

}  // namespace trellis_bench
