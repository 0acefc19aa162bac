// Suite auth (auth/tests/legacy): the credential a connection string describes. Per case:
// valid says whether parse_uri and make_credential succeed (or throw configuration_error);
// credential null means no credential, otherwise username, password, source, mechanism and
// mechanism_properties are compared exactly (null: absent; properties null: none).
#include <map>
#include <stdexcept>

#include "runner.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace trellis::spec {
namespace {

namespace json = boost::json;

struct mismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Cases that cannot all hold at once. The legacy file still carries the MONGODB-AWS cases
// written when explicit AWS credentials were allowed, beside the newer cases of DRIVERS-3131
// that forbid them ("should throw an exception if username and password provided"). Trellis
// follows the newer rule, so the older cases are skipped, not failed.
const std::map<std::string, std::string, std::less<>>& skipped() {
    static const std::map<std::string, std::string, std::less<>> cases = {
        {"should use username and password if specified (MONGODB-AWS)",
         "superseded: MONGODB-AWS takes no credentials in the URI (DRIVERS-3131; contradicts \"should throw an "
         "exception if username and password provided (MONGODB-AWS)\" in the same file)"},
        {"should use username, password and session token if specified (MONGODB-AWS)",
         "superseded: MONGODB-AWS takes no credentials or AWS_SESSION_TOKEN in the URI (DRIVERS-3131; contradicts "
         "\"should throw an exception if AWS_SESSION_TOKEN provided (MONGODB-AWS)\")"},
    };
    return cases;
}

std::string show(const json::value& v) { return json::serialize(v); }

void check_string(const json::object& expected, std::string_view key, const std::optional<std::string>& actual) {
    const json::value e = expected.contains(key) ? expected.at(key) : json::value(nullptr);
    if (e.is_null() ? !actual : (e.is_string() && actual && *actual == e.get_string())) return;
    throw mismatch("credential." + std::string(key) + ": expected " + show(e) + ", got " +
                   (actual ? show(json::value(*actual)) : std::string("nothing")));
}

// Property values are compared by text: the files write CANONICALIZE_HOST_NAME as true or "true".
std::string text_of(const json::value& v) {
    if (const auto* s = v.if_string()) return std::string(*s);
    if (const auto* b = v.if_bool()) return *b ? "true" : "false";
    return show(v);
}

void check_properties(const json::object& expected, const std::map<std::string, std::string>& actual) {
    const json::value e = expected.contains("mechanism_properties") ? expected.at("mechanism_properties") : nullptr;
    json::object got;
    for (const auto& [k, v] : actual) got[k] = v;
    bool same = e.is_null() ? actual.empty() : e.is_object() && e.get_object().size() == actual.size();
    if (same && e.is_object())
        for (const auto& kv : e.get_object()) {
            const auto it = actual.find(std::string(kv.key()));
            same = same && it != actual.end() && it->second == text_of(kv.value());
        }
    if (!same) throw mismatch("credential.mechanism_properties: expected " + show(e) + ", got " + show(got));
}

void check_case(const json::object& t) {
    const json::value* uri = t.if_contains("uri");
    const json::value* valid = t.if_contains("valid");
    if (!uri || !uri->is_string() || !valid || !valid->is_bool()) throw mismatch("the case lacks uri or valid");

    std::optional<credential> c;
    try {
        c = make_credential(parse_uri(uri->get_string()).options);
    } catch (const configuration_error& e) {
        if (valid->get_bool()) throw mismatch(std::string("unexpected error: ") + e.what());
        return;
    } catch (const std::exception& e) {
        throw mismatch(std::string("an exception other than configuration_error: ") + e.what());
    }
    if (!valid->get_bool()) throw mismatch("parsed without error");

    const json::value* expected = t.if_contains("credential");
    if (!expected || expected->is_null()) {
        if (c) throw mismatch("expected no credential, got one for mechanism " +
                              std::string(c->mechanism ? to_string(*c->mechanism) : "(negotiated)"));
        return;
    }
    if (!expected->is_object()) throw mismatch("credential is neither null nor an object");
    if (!c) throw mismatch("expected a credential, got none");
    const json::object& e = expected->get_object();
    check_string(e, "username", c->username);
    check_string(e, "password", c->password);
    check_string(e, "source", c->source);
    check_string(e, "mechanism",
                 c->mechanism ? std::optional<std::string>(std::string(to_string(*c->mechanism))) : std::nullopt);
    check_properties(e, c->mechanism_properties);
}

void run_file(std::string_view file, const json::value& test, reporter& out) {
    const json::array* tests = test.is_object() && test.get_object().contains("tests")
                                   ? test.get_object().at("tests").if_array()
                                   : nullptr;
    if (!tests) {
        out.fail(file, "(file)", "no \"tests\" array");
        return;
    }
    for (const json::value& t : *tests) {
        const std::string description = string_of(t, "description", "(no description)");
        if (const auto skip = skipped().find(description); skip != skipped().end()) {
            out.skip(file, description, skip->second);
            continue;
        }
        if (!t.is_object()) {
            out.fail(file, description, "the case is not an object");
            continue;
        }
        try {
            check_case(t.get_object());
            out.pass(file, description);
        } catch (const mismatch& m) {
            out.fail(file, description, m.what());
        }
    }
}

}  // namespace

extern const suite auth_suite;
const suite auth_suite{"auth", "credentials from connection strings: mechanisms, sources, properties", &run_file};

}  // namespace trellis::spec
