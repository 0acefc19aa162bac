// Suite bson-corpus: the BSON corpus (bson-corpus/tests), per the corpus spec's
// assertions for a codec without an intermediate representation, plus a round
// trip through C++ values (every element read with its typed accessor and
// appended again through the builder).
#include <cmath>
#include <cstdlib>
#include <limits>

#include "runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"

namespace trellis::spec {
namespace {

namespace bson = trellis::bson;
namespace json = boost::json;

// ---------------------------------------------------------------- C++ value round trip

void rebuild_into(bson::document_view doc, bson::builder& b, bool is_array);

template <class T>
void put(bson::builder& b, bool in_array, std::string_view key, const T& v) {
    if (in_array) b.append(v);
    else b.append(key, v);
}

void rebuild_element(const bson::element& e, bson::builder& b, bool in_array) {
    const std::string_view k = e.key();
    switch (e.type()) {
        case bson::type::double_: put(b, in_array, k, e.get_double()); break;
        case bson::type::string: put(b, in_array, k, e.get_string()); break;
        case bson::type::document:
            in_array ? b.open_document() : b.open_document(k);
            rebuild_into(e.get_document(), b, false);
            b.close_document();
            break;
        case bson::type::array:
            in_array ? b.open_array() : b.open_array(k);
            rebuild_into(e.get_array(), b, true);
            b.close_array();
            break;
        case bson::type::binary: put(b, in_array, k, e.get_binary()); break;
        case bson::type::undefined: put(b, in_array, k, bson::undefined); break;
        case bson::type::oid: put(b, in_array, k, e.get_oid()); break;
        case bson::type::boolean: put(b, in_array, k, e.get_bool()); break;
        case bson::type::date_time: put(b, in_array, k, e.get_date_time()); break;
        case bson::type::null: put(b, in_array, k, bson::null); break;
        case bson::type::regex: put(b, in_array, k, e.get_regex()); break;
        case bson::type::db_pointer: put(b, in_array, k, e.get_db_pointer()); break;
        case bson::type::code: put(b, in_array, k, e.get_code()); break;
        case bson::type::symbol: put(b, in_array, k, e.get_symbol()); break;
        case bson::type::code_w_scope: {
            // Rebuild the scope too, so that its elements go through the accessors.
            const bson::code_w_scope c = e.get_code_w_scope();
            bson::builder sb;
            rebuild_into(c.scope, sb, false);
            const bson::document scope = sb.extract();
            put(b, in_array, k, bson::code_w_scope{c.javascript, scope.view()});
            break;
        }
        case bson::type::int32: put(b, in_array, k, e.get_int32()); break;
        case bson::type::timestamp: put(b, in_array, k, e.get_timestamp()); break;
        case bson::type::int64: put(b, in_array, k, e.get_int64()); break;
        case bson::type::decimal128: put(b, in_array, k, e.get_decimal128()); break;
        case bson::type::min_key: put(b, in_array, k, bson::min_key); break;
        case bson::type::max_key: put(b, in_array, k, bson::max_key); break;
    }
}

void rebuild_into(bson::document_view doc, bson::builder& b, bool is_array) {
    for (const bson::element& e : doc) rebuild_element(e, b, is_array);
}

bson::document rebuild(bson::document_view doc) {
    bson::builder b;
    rebuild_into(doc, b, false);
    return b.extract();
}

// ---------------------------------------------------------------- JSON comparison

// Whitespace, escapes and number spelling may differ (the corpus spec asks for
// normalized comparison); key order, types and values may not. Numbers: both
// integers and equal, or both non-integers with the same double value. The
// text of $numberDouble is compared by value, since double spelling is free.
bool same_double_text(std::string_view a, std::string_view b) {
    if (a == b) return true;
    auto special = [](std::string_view s) { return s == "NaN" || s == "Infinity" || s == "-Infinity"; };
    if (special(a) || special(b)) return false;
    char* end_a;
    char* end_b;
    const std::string sa(a), sb(b);
    const double da = std::strtod(sa.c_str(), &end_a), db = std::strtod(sb.c_str(), &end_b);
    return *end_a == 0 && *end_b == 0 && da == db && std::signbit(da) == std::signbit(db);
}

bool same_json(const json::value& a, const json::value& b, std::string_view parent_key, std::string& where) {
    if (a.is_number() && b.is_number()) {
        const bool fa = a.is_double(), fb = b.is_double();
        if (fa != fb) {
            where = "number kinds differ (integer vs floating point)";
            return false;
        }
        if (fa) {
            const double da = a.get_double(), db = b.get_double();
            if (da == db && std::signbit(da) == std::signbit(db)) return true;
        } else {
            if (a.is_uint64() || b.is_uint64()) {
                if (a.to_number<std::uint64_t>() == b.to_number<std::uint64_t>()) return true;
            } else if (a.as_int64() == b.as_int64()) {
                return true;
            }
        }
        where = "numbers differ";
        return false;
    }
    if (a.kind() != b.kind()) {
        where = "kinds differ";
        return false;
    }
    switch (a.kind()) {
        case json::kind::string:
            if (parent_key == "$numberDouble" ? same_double_text(a.get_string(), b.get_string())
                                              : a.get_string() == b.get_string())
                return true;
            where = "strings differ: \"" + std::string(a.get_string()) + "\" vs \"" + std::string(b.get_string()) + "\"";
            return false;
        case json::kind::array: {
            const auto &x = a.get_array(), &y = b.get_array();
            if (x.size() != y.size()) {
                where = "array sizes differ";
                return false;
            }
            for (std::size_t i = 0; i < x.size(); ++i)
                if (!same_json(x[i], y[i], "", where)) return false;
            return true;
        }
        case json::kind::object: {
            const auto &x = a.get_object(), &y = b.get_object();
            if (x.size() != y.size()) {
                where = "object sizes differ";
                return false;
            }
            for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
                if (i->key() != j->key()) {
                    where = "keys differ: \"" + std::string(i->key()) + "\" vs \"" + std::string(j->key()) + "\"";
                    return false;
                }
                if (!same_json(i->value(), j->value(), i->key(), where)) return false;
            }
            return true;
        }
        default: return a == b || (where = "values differ", false);
    }
}

// Throws with a reason when the texts differ.
void expect_json(const std::string& got, const std::string& expected, std::string_view what) {
    boost::system::error_code ec;
    const json::value g = json::parse(got, ec);
    if (ec) throw std::runtime_error(std::string(what) + ": output is not valid JSON: " + got);
    const json::value e = json::parse(expected);
    std::string where;
    if (!same_json(g, e, "", where))
        throw std::runtime_error(std::string(what) + ": " + where + "; got " + got + " expected " + expected);
}

std::string hex(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string s;
    for (auto b : bytes) {
        s += digits[b >> 4];
        s += digits[b & 0xF];
    }
    return s;
}

void expect_bytes(std::span<const std::uint8_t> got, std::span<const std::uint8_t> expected, std::string_view what) {
    if (!std::equal(got.begin(), got.end(), expected.begin(), expected.end()))
        throw std::runtime_error(std::string(what) + ": got " + hex(got) + " expected " + hex(expected));
}

// ---------------------------------------------------------------- the cases

void run_valid(const json::object& c) {
    const auto cb = hex_decode(string_of(c, "canonical_bson"));
    const std::string cej = string_of(c, "canonical_extjson");
    const bool lossy = c.contains("lossy") && c.at("lossy").as_bool();
    using bson::json_mode;

    const bson::document_view cbv = bson::document_view::validated(cb);
    expect_bytes(rebuild(cbv).bytes(), cb, "native_to_bson(bson_to_native(cB))");
    expect_json(bson::to_json(cbv, json_mode::canonical), cej, "canonical JSON of cB");
    if (c.contains("relaxed_extjson")) {
        const std::string rej = string_of(c, "relaxed_extjson");
        expect_json(bson::to_json(cbv, json_mode::relaxed), rej, "relaxed JSON of cB");
        const bson::document from_rej = bson::from_json(rej);
        expect_json(bson::to_json(from_rej, json_mode::relaxed), rej, "relaxed JSON of json_to_bson(rEJ)");
    }
    const bson::document from_cej = bson::from_json(cej);
    expect_json(bson::to_json(from_cej, json_mode::canonical), cej, "canonical JSON of json_to_bson(cEJ)");
    if (!lossy) expect_bytes(from_cej.bytes(), cb, "json_to_bson(cEJ)");

    if (c.contains("degenerate_bson")) {
        const auto db = hex_decode(string_of(c, "degenerate_bson"));
        const bson::document_view dbv = bson::document_view::validated(db);
        expect_json(bson::to_json(dbv, json_mode::canonical), cej, "canonical JSON of dB");
        if (c.contains("relaxed_extjson"))
            expect_json(bson::to_json(dbv, json_mode::relaxed), string_of(c, "relaxed_extjson"), "relaxed JSON of dB");
        expect_bytes(rebuild(dbv).bytes(), cb, "native_to_bson(bson_to_native(dB))");
    }
    if (c.contains("degenerate_extjson")) {
        const bson::document from_dej = bson::from_json(string_of(c, "degenerate_extjson"));
        expect_json(bson::to_json(from_dej, json_mode::canonical), cej, "canonical JSON of json_to_bson(dEJ)");
        if (!lossy) expect_bytes(from_dej.bytes(), cb, "json_to_bson(dEJ)");
    }
}

void run_file(std::string_view file, const json::value& test, reporter& out) {
    const json::object& top = test.as_object();
    const std::string type = string_of(test, "bson_type");

    if (const auto* valid = top.if_contains("valid")) {
        for (const auto& v : valid->as_array()) {
            const std::string description = string_of(v, "description");
            try {
                run_valid(v.as_object());
                out.pass(file, description);
            } catch (const std::exception& e) {
                out.fail(file, description, e.what());
            }
        }
    }
    if (const auto* errors = top.if_contains("decodeErrors")) {
        for (const auto& v : errors->as_array()) {
            const std::string description = string_of(v, "description");
            try {
                const auto bytes = hex_decode(string_of(v, "bson"));
                const auto failure = bson::find_error(bytes);
                if (failure) out.pass(file, description);
                else out.fail(file, description, "decoded without error: " + string_of(v, "bson"));
            } catch (const std::exception& e) {
                out.fail(file, description, e.what());
            }
        }
    }
    if (const auto* errors = top.if_contains("parseErrors")) {
        for (const auto& v : errors->as_array()) {
            const std::string description = string_of(v, "description");
            const std::string input = string_of(v, "string");
            if (type == "0x13") {
                if (!bson::decimal128::parse(input)) out.pass(file, description);
                else out.fail(file, description, "Decimal128 parsed \"" + input + "\" without error");
                continue;
            }
            // The input must be plain JSON (so the error is Extended JSON-specific) ...
            boost::system::error_code ec;
            json::parse(input, ec);
            if (ec) {
                out.fail(file, description, "input is not valid plain JSON, so the case tests nothing: " + ec.message());
                continue;
            }
            // ... that the Extended JSON parser rejects with a JSON error.
            try {
                bson::from_json(input);
                out.fail(file, description, "parsed without error: " + input);
            } catch (const trellis::bson_error& e) {
                if (e.code() == trellis::errc::json_invalid) out.pass(file, description);
                else out.fail(file, description, std::string("wrong error kind: ") + e.what());
            }
        }
    }
}

}  // namespace

extern const suite bson_corpus_suite;
const suite bson_corpus_suite{"bson-corpus", "BSON corpus: valid, decodeErrors, parseErrors", &run_file};

}  // namespace trellis::spec
