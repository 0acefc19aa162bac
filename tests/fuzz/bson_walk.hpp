// Walks a valid document through every typed accessor, noting what canonical Extended JSON
// cannot carry exactly (used by the BSON and JSON targets).
#pragma once

#include <cmath>
#include <string>

#include "fuzz_check.hpp"
#include "trellis/bson/decimal128.hpp"
#include "trellis/bson/document.hpp"

namespace trellis::fuzz {

namespace bson = trellis::bson;


struct findings {
    bool exact = true;        // canonical Extended JSON carries the document without loss
    bool dollar_keys = false;  // some key starts with '$'
};

// Reads every element through its typed accessor (the accessors must accept what validated).
inline void walk(bson::document_view doc, findings& f) {
    bool& exact = f.exact;
    for (const bson::element& e : doc) {
        if (!e.key().empty() && e.key()[0] == '$') exact = false, f.dollar_keys = true;
        switch (e.type()) {
            case bson::type::double_:
                if (std::isnan(e.get_double())) exact = false;
                break;
            case bson::type::string: (void)e.get_string(); break;
            case bson::type::document: walk(e.get_document(), f); break;
            case bson::type::array: {
                // JSON arrays have no keys: only "0", "1", ... in order come back as they were.
                std::size_t i = 0;
                for (const bson::element& item : e.get_array())
                    if (item.key() != std::to_string(i++)) exact = false;
                walk(e.get_array(), f);
                break;
            }
            case bson::type::binary: (void)e.get_binary(); break;
            case bson::type::oid: (void)e.get_oid(); break;
            case bson::type::boolean: (void)e.get_bool(); break;
            case bson::type::date_time: (void)e.get_date_time(); break;
            case bson::type::regex: {
                const auto r = e.get_regex();
                for (std::size_t i = 1; i < r.options.size(); ++i)
                    if (r.options[i - 1] >= r.options[i]) exact = false;
                break;
            }
            case bson::type::db_pointer: (void)e.get_db_pointer(); break;
            case bson::type::code: (void)e.get_code(); break;
            case bson::type::symbol: (void)e.get_symbol(); break;
            case bson::type::code_w_scope: walk(e.get_code_w_scope().scope, f); break;
            case bson::type::int32: (void)e.get_int32(); break;
            case bson::type::timestamp: (void)e.get_timestamp(); break;
            case bson::type::int64: (void)e.get_int64(); break;
            case bson::type::decimal128: {
                const bson::decimal128 d = e.get_decimal128();
                const auto back = bson::decimal128::parse(d.to_string());
                FUZZ_CHECK(back.has_value(), "Decimal128 text \"" + d.to_string() + "\" does not parse back");
                if (!(*back == d)) exact = false;
                break;
            }
            default: break;
        }
    }
}


}  // namespace trellis::fuzz
