// Suite unified: values and the format's matching rules ("Evaluating Matches").
#include <algorithm>
#include <cctype>
#include <cmath>

#include "../runner.hpp"
#include "trellis/bson/json.hpp"
#include "unified.hpp"

namespace trellis::spec::unified {

// ---------------------------------------------------------------- values

json::value from_bson(bson::document_view doc) { return json::parse(bson::to_json(doc, bson::json_mode::canonical)); }

json::value canonical(const json::value& v) {
    json::object wrapper;
    wrapper["v"] = v;
    json::value round = from_bson(to_bson(wrapper));
    return round.as_object()["v"];
}

bson::document to_bson(const json::value& object) {
    if (!object.is_object()) fail("expected a document, got " + show(object));
    return bson::from_json(json::serialize(object));
}

std::string show(const json::value& v) {
    std::string s = json::serialize(v);
    if (s.size() > 400) s = s.substr(0, 400) + "...";
    return s;
}

const json::value& null_value() {
    static const json::value v;
    return v;
}
const json::value& empty_array() {
    static const json::value v = json::array();
    return v;
}
const json::value& empty_string() {
    static const json::value v = "";
    return v;
}

const json::object& object_of(const json::value& v, std::string_view what) {
    if (const auto* o = v.if_object()) return *o;
    fail(std::string(what) + " is not a document: " + show(v));
}

const json::array& array_of(const json::value& v, std::string_view what) {
    if (const auto* a = v.if_array()) return *a;
    fail(std::string(what) + " is not an array: " + show(v));
}

std::string string_of(const json::value& v, std::string_view what) {
    if (const auto* s = v.if_string()) return std::string(*s);
    fail(std::string(what) + " is not a string: " + show(v));
}

std::int64_t integer_of(const json::value& v, std::string_view what) {
    if (auto n = number_of(v); n && n->integral) return n->i;
    if (auto n = number_of(v); n && std::trunc(n->d) == n->d) return static_cast<std::int64_t>(n->d);
    fail(std::string(what) + " is not an integer: " + show(v));
}

namespace {

const json::value* single_key(const json::object& o, std::string_view key) {
    if (o.size() != 1) return nullptr;
    return o.if_contains(key);
}

}  // namespace

std::optional<number> number_of(const json::value& v) {
    number n;
    if (v.is_int64()) {
        n.i = v.get_int64();
        n.d = static_cast<double>(n.i);
        n.integral = true;
        return n;
    }
    if (v.is_uint64()) {
        n.i = static_cast<std::int64_t>(v.get_uint64());
        n.d = static_cast<double>(n.i);
        n.integral = true;
        return n;
    }
    if (v.is_double()) {
        n.d = v.get_double();
        return n;
    }
    const auto* o = v.if_object();
    if (!o || o->size() != 1) return std::nullopt;
    try {
        for (const char* key : {"$numberInt", "$numberLong"})
            if (const auto* s = single_key(*o, key); s && s->is_string()) {
                n.i = std::stoll(std::string(s->get_string()));
                n.d = static_cast<double>(n.i);
                n.integral = true;
                return n;
            }
        if (const auto* s = single_key(*o, "$numberDouble"); s && s->is_string()) {
            const std::string t(s->get_string());
            if (t == "Infinity") n.d = HUGE_VAL;
            else if (t == "-Infinity") n.d = -HUGE_VAL;
            else if (t == "NaN") n.d = std::nan("");
            else n.d = std::stod(t);
            return n;
        }
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

std::string type_of(const json::value& v) {
    switch (v.kind()) {
        case json::kind::string: return "string";
        case json::kind::bool_: return "bool";
        case json::kind::null: return "null";
        case json::kind::array: return "array";
        case json::kind::double_: return "double";
        case json::kind::int64:
        case json::kind::uint64: return "int";
        case json::kind::object: break;
    }
    const json::object& o = v.get_object();
    static const std::pair<const char*, const char*> wrappers[] = {
        {"$numberInt", "int"},       {"$numberLong", "long"},     {"$numberDouble", "double"},
        {"$numberDecimal", "decimal"}, {"$oid", "objectId"},      {"$date", "date"},
        {"$binary", "binData"},      {"$timestamp", "timestamp"}, {"$regularExpression", "regex"},
        {"$dbPointer", "dbPointer"}, {"$symbol", "symbol"},       {"$undefined", "undefined"},
        {"$minKey", "minKey"},       {"$maxKey", "maxKey"}};
    if (o.size() == 1)
        for (const auto& [key, name] : wrappers)
            if (o.contains(key)) return name;
    if (o.contains("$code")) return o.contains("$scope") ? "javascriptWithScope" : "javascript";
    return "object";
}

// ---------------------------------------------------------------- matching

namespace {

std::string where(const std::string& path) { return path.empty() ? "the value" : path; }

std::vector<std::uint8_t> base64_decode(std::string_view s) {
    std::vector<std::uint8_t> out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else continue;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

bool scalar_equal(const json::value& e, const json::value& a) {
    const auto ne = number_of(e), na = number_of(a);
    if (ne || na) {
        if (!ne || !na) return false;
        if (ne->integral && na->integral) return ne->i == na->i;
        if (std::isnan(ne->d) && std::isnan(na->d)) return true;
        return ne->d == na->d;
    }
    return e == a;
}

void match_operator(std::string_view op, const json::value& arg, const json::value* actual, bool root,
                    entity_map& entities, const std::string& path) {
    if (op == "$$exists") {
        if (!arg.is_bool()) fail(where(path) + ": $$exists takes a boolean, got " + show(arg));
        const bool want = arg.get_bool();
        if (want && !actual) fail(where(path) + " is absent, expected it to exist");
        if (!want && actual) fail(where(path) + " exists (" + show(*actual) + "), expected it absent");
        return;
    }
    if (op == "$$unsetOrMatches") {
        if (actual) match(arg, actual, root, entities, path);
        return;
    }
    if (op == "$$type") {
        if (!actual) fail(where(path) + " is absent, expected a value of type " + show(arg));
        const std::string t = type_of(*actual);
        auto one = [&](const json::value& name) {
            const std::string n = string_of(name, "$$type");
            if (n == t) return true;
            if (n == "number") return t == "int" || t == "long" || t == "double" || t == "decimal";
            return false;
        };
        bool ok = false;
        if (const auto* list = arg.if_array()) {
            for (const auto& n : *list) ok = ok || one(n);
        } else {
            ok = one(arg);
        }
        if (!ok) fail(where(path) + " has type " + t + " (" + show(*actual) + "), expected " + show(arg));
        return;
    }
    if (op == "$$matchesEntity") {
        entity& e = entities.get(string_of(arg, "$$matchesEntity"), entity::kind::value);
        match(e.value, actual, root, entities, path);
        return;
    }
    if (op == "$$matchesHexBytes") {
        const std::vector<std::uint8_t> want = hex_decode(string_of(arg, "$$matchesHexBytes"));
        if (!actual) fail(where(path) + " is absent, expected bytes " + show(arg));
        std::vector<std::uint8_t> got;
        if (const auto* s = actual->if_string()) {
            got.assign(s->begin(), s->end());
        } else if (type_of(*actual) == "binData") {
            got = base64_decode(string_of(actual->at("$binary").at("base64"), "$binary.base64"));
        } else {
            fail(where(path) + " is " + show(*actual) + ", expected bytes " + show(arg));
        }
        if (got != want) fail(where(path) + " holds other bytes than " + show(arg));
        return;
    }
    if (op == "$$sessionLsid") {
        const entity& s = entities.get(string_of(arg, "$$sessionLsid"), entity::kind::session);
        const json::value lsid = from_bson(s.session->id());
        match(lsid, actual, false, entities, path);
        return;
    }
    if (op == "$$lte") {
        if (!actual) fail(where(path) + " is absent, expected a number <= " + show(arg));
        const auto ne = number_of(arg), na = number_of(*actual);
        if (!ne) fail("$$lte takes a number, got " + show(arg));
        if (!na) fail(where(path) + " is " + show(*actual) + ", expected a number <= " + show(arg));
        const bool ok = (ne->integral && na->integral) ? na->i <= ne->i : na->d <= ne->d;
        if (!ok) fail(where(path) + " is " + show(*actual) + ", expected <= " + show(arg));
        return;
    }
    if (op == "$$matchAsDocument") {
        if (!actual || !actual->is_string())
            fail(where(path) + " is " + (actual ? show(*actual) : "absent") + ", expected an Extended JSON string");
        json::value parsed;
        try {
            parsed = from_bson(bson::from_json(std::string_view(actual->get_string())));
        } catch (const std::exception& e) {
            fail(where(path) + " is not an Extended JSON document: " + e.what());
        }
        match(arg, &parsed, false, entities, path);
        return;
    }
    if (op == "$$matchAsRoot") {
        if (!actual || !actual->is_object())
            fail(where(path) + " is " + (actual ? show(*actual) : "absent") + ", expected a document");
        match(arg, actual, true, entities, path);
        return;
    }
    fail("unknown special operator " + std::string(op));
}

}  // namespace

void match(const json::value& expected, const json::value* actual, bool root, entity_map& entities,
           const std::string& path) {
    if (const auto* eo = expected.if_object()) {
        if (eo->size() == 1 && eo->begin()->key().starts_with("$$")) {
            match_operator(eo->begin()->key(), eo->begin()->value(), actual, root, entities, path);
            return;
        }
        if (!actual) fail(where(path) + " is absent, expected " + show(expected));
        // An Extended JSON wrapper ({"$oid": ...}) is a scalar, not a document to match key by key.
        const std::string et = type_of(expected);
        if (et != "object") {
            if (!scalar_equal(expected, *actual))
                fail(where(path) + " is " + show(*actual) + ", expected " + show(expected));
            return;
        }
        const auto* ao = actual->if_object();
        if (!ao || type_of(*actual) != "object")
            fail(where(path) + " is " + show(*actual) + ", expected a document " + show(expected));
        for (const auto& [key, value] : *eo)
            match(value, ao->if_contains(key), false, entities, path.empty() ? std::string(key) : path + "." + std::string(key));
        if (!root)
            for (const auto& [key, value] : *ao)
                if (!eo->contains(key))
                    fail(where(path) + " has an unexpected field " + std::string(key) + ": " + show(value));
        return;
    }
    if (!actual) fail(where(path) + " is absent, expected " + show(expected));
    if (const auto* ea = expected.if_array()) {
        const auto* aa = actual->if_array();
        if (!aa) fail(where(path) + " is " + show(*actual) + ", expected an array " + show(expected));
        if (aa->size() != ea->size())
            fail(where(path) + " has " + std::to_string(aa->size()) + " elements, expected " + std::to_string(ea->size()) +
                 ": " + show(*actual) + " vs " + show(expected));
        for (std::size_t i = 0; i < ea->size(); ++i)
            match((*ea)[i], &(*aa)[i], false, entities, path + "[" + std::to_string(i) + "]");
        return;
    }
    if (!scalar_equal(expected, *actual)) fail(where(path) + " is " + show(*actual) + ", expected " + show(expected));
}

void match_documents(const json::value& expected, const json::value& actual, entity_map& entities,
                     const std::string& path) {
    const auto* ea = expected.if_array();
    const auto* aa = actual.if_array();
    if (!ea || !aa) return match(expected, &actual, true, entities, path);
    if (aa->size() != ea->size())
        fail(where(path) + " has " + std::to_string(aa->size()) + " documents, expected " + std::to_string(ea->size()) + ": " +
             show(actual) + " vs " + show(expected));
    for (std::size_t i = 0; i < ea->size(); ++i)
        match((*ea)[i], &(*aa)[i], true, entities, path + "[" + std::to_string(i) + "]");
}

void match_exact(const json::value& expected, const json::value& actual, const std::string& path) {
    if (const auto* eo = expected.if_object(); eo && type_of(expected) == "object") {
        const auto* ao = actual.if_object();
        if (!ao || type_of(actual) != "object" || ao->size() != eo->size())
            fail(where(path) + " is " + show(actual) + ", expected " + show(expected));
        for (const auto& [key, value] : *eo) {
            const auto* a = ao->if_contains(key);
            if (!a) fail(where(path) + " is " + show(actual) + ", expected " + show(expected));
            match_exact(value, *a, path + "." + std::string(key));
        }
        return;
    }
    if (const auto* ea = expected.if_array()) {
        const auto* aa = actual.if_array();
        if (!aa || aa->size() != ea->size()) fail(where(path) + " is " + show(actual) + ", expected " + show(expected));
        for (std::size_t i = 0; i < ea->size(); ++i) match_exact((*ea)[i], (*aa)[i], path + "[" + std::to_string(i) + "]");
        return;
    }
    if (!scalar_equal(expected, actual)) fail(where(path) + " is " + show(actual) + ", expected " + show(expected));
}

}  // namespace trellis::spec::unified
