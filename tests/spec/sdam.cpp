// Suite sdam: the Server Discovery and Monitoring spec tests
// (server-discovery-and-monitoring/tests: rs, sharded, single, and the same format's errors,
// monitoring and load-balanced folders).
//
// Each file is one case: a client made from the file's "uri" (trellis::parse_uri, then
// sdam::initial_topology), then each phase's "responses" through sdam::parse_hello and
// sdam::update (an empty response is a failed check: sdam::unknown_server), and its
// "applicationErrors" through sdam::handle_application_error with a pool generation per server
// kept here (a cleared pool's generation goes up by one). After each phase the "outcome" is
// compared with the topology, or, when it lists "events", with the SDAM events
// sdam::description_events gave since the previous phase (the first phase also gets the events
// of opening the topology). Nothing here does I/O: the time is a fixed value.
#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "runner.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/events.hpp"
#include "trellis/sdam.hpp"
#include "trellis/uri.hpp"

namespace trellis::spec {
namespace {

namespace json = boost::json;
namespace sdam = trellis::sdam;
using namespace std::chrono_literals;

// Bad test data (a field of the wrong shape): fails the case with this reason.
struct bad_test : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------- reading the file

const json::object& object_at(const json::value& v, std::string_view what) {
    if (const auto* o = v.if_object()) return *o;
    throw bad_test(std::string(what) + " is not an object: " + json::serialize(v));
}

const json::array& array_at(const json::value& v, std::string_view what) {
    if (const auto* a = v.if_array()) return *a;
    throw bad_test(std::string(what) + " is not an array: " + json::serialize(v));
}

std::string string_at(const json::value& v, std::string_view what) {
    if (const auto* s = v.if_string()) return std::string(*s);
    throw bad_test(std::string(what) + " is not a string: " + json::serialize(v));
}

// An integer: a JSON number or {"$numberLong"/"$numberInt": "..."}.
std::int64_t integer_at(const json::value& v, std::string_view what) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
    if (v.is_double() && v.get_double() == static_cast<double>(static_cast<std::int64_t>(v.get_double())))
        return static_cast<std::int64_t>(v.get_double());
    if (const auto* o = v.if_object())
        for (const char* key : {"$numberLong", "$numberInt"})
            if (const auto* s = o->if_contains(key); s && s->is_string()) return std::stoll(std::string(s->get_string()));
    throw bad_test(std::string(what) + " is not an integer: " + json::serialize(v));
}

bson::oid oid_at(const json::value& v, std::string_view what) {
    if (const auto* o = v.if_object())
        if (const auto* s = o->if_contains("$oid"); s && s->is_string())
            if (auto id = bson::oid::parse(std::string_view(s->get_string()))) return *id;
    throw bad_test(std::string(what) + " is not an {\"$oid\": ...}: " + json::serialize(v));
}

sdk::topology_version topology_version_at(const json::value& v, std::string_view what) {
    const json::object& o = object_at(v, what);
    const auto* pid = o.if_contains("processId");
    const auto* counter = o.if_contains("counter");
    if (!pid || !counter) throw bad_test(std::string(what) + " lacks processId or counter");
    return {oid_at(*pid, what), integer_at(*counter, what)};
}

bson::document to_bson(const json::value& v) { return bson::from_json(json::serialize(v)); }

// ---------------------------------------------------------------- printing what was found

template <class T>
std::string show(const std::optional<T>& v) {
    if (!v) return "null";
    if constexpr (std::is_same_v<T, std::string>)
        return "\"" + *v + "\"";
    else if constexpr (std::is_same_v<T, bson::oid>)
        return v->to_hex();
    else if constexpr (std::is_same_v<T, sdk::topology_version>)
        return "{" + v->process_id.to_hex() + ", " + std::to_string(v->counter) + "}";
    else
        return std::to_string(*v);
}

// ---------------------------------------------------------------- the client under test

struct client_state {
    sdam::topology_description topology;
    std::map<std::string, std::int64_t> generation;  // pool generation per address
    std::vector<sdam_event> events;                  // since the last phase that checked events
    sdam::clock::time_point now{std::chrono::hours(1)};
};

void process_response(client_state& st, const json::value& item) {
    const json::array& pair = array_at(item, "response");
    if (pair.size() != 2) throw bad_test("a response is not [address, reply]");
    const std::string address = string_at(pair[0], "response address");
    const json::object& reply = object_at(pair[1], "response reply");
    st.now += 1s;
    sdam::server_description sd =
        reply.empty() ? sdam::unknown_server(address, "network error while checking " + address + " (simulated)")
                      : sdam::parse_hello(address, to_bson(pair[1]), std::chrono::microseconds(1000), st.now);
    sd.last_update_time = st.now;
    sdam::update_result r = sdam::update(st.topology, sd);
    for (const std::string& a : r.clear_pool) ++st.generation[a];
    auto events = sdam::description_events(st.topology, r.topology, sd);
    st.events.insert(st.events.end(), events.begin(), events.end());
    st.topology = std::move(r.topology);
}

void process_application_error(client_state& st, const json::value& item) {
    // The format's first form: [address, command error reply], an error on an established
    // connection of the current generation.
    if (const auto* pair = item.if_array()) {
        if (pair->size() != 2) throw bad_test("an applicationError pair is not [address, reply]");
        json::object e;
        e["address"] = (*pair)[0];
        e["when"] = "afterHandshakeCompletes";
        e["type"] = "command";
        e["response"] = (*pair)[1];
        return process_application_error(st, json::value(std::move(e)));
    }
    const json::object& e = object_at(item, "applicationError");
    sdam::application_error error;
    error.address = sdam::normalize_address(string_at(e.at("address"), "applicationError.address"));
    // Older files (before "when" was added) mean an error on an established connection.
    const std::string when =
        e.contains("when") ? string_at(e.at("when"), "applicationError.when") : "afterHandshakeCompletes";
    if (when == "beforeHandshakeCompletes")
        error.handshake_completed = false;
    else if (when == "afterHandshakeCompletes")
        error.handshake_completed = true;
    else
        throw bad_test("unknown applicationError.when \"" + when + "\"");
    const std::string type = string_at(e.at("type"), "applicationError.type");
    if (const auto* w = e.if_contains("maxWireVersion"))
        error.max_wire_version = static_cast<int>(integer_at(*w, "applicationError.maxWireVersion"));
    const std::int64_t pool_generation = st.generation[error.address];
    error.generation = e.contains("generation") ? integer_at(e.at("generation"), "applicationError.generation")
                                                : pool_generation;
    if (type == "network") {
        error.kind = sdam::error_kind::network;
        error.message = "connection reset (simulated)";
    } else if (type == "timeout") {
        error.kind = sdam::error_kind::network_timeout;
        error.message = "socket timeout (simulated)";
    } else if (type == "command") {
        error.kind = sdam::error_kind::command;
        const auto* response = e.if_contains("response");
        if (!response) throw bad_test("a command applicationError without \"response\"");
        error.command = sdam::command_error_of(to_bson(*response));
        if (!error.command) return;  // ok: 1 without writeConcernError: nothing for SDAM
    } else
        throw bad_test("unknown applicationError.type \"" + type + "\"");

    sdam::error_response r = sdam::handle_application_error(st.topology, error, pool_generation);
    if (r.clear_pool) ++st.generation[error.address];
    auto events = sdam::description_events(st.topology, r.topology);
    st.events.insert(st.events.end(), events.begin(), events.end());
    st.topology = std::move(r.topology);
}

// ---------------------------------------------------------------- outcome

// Appends to `why` when a present expected field differs.
class checker {
public:
    void fail(std::string reason) {
        if (!why_.empty()) why_ += "; ";
        why_ += std::move(reason);
    }
    const std::string& why() const noexcept { return why_; }

    void nullable_string(const json::object& o, std::string_view key, const std::optional<std::string>& actual,
                         const std::string& where) {
        const auto* v = o.if_contains(key);
        if (!v) return;
        const std::optional<std::string> expected =
            v->is_null() ? std::nullopt : std::optional<std::string>(string_at(*v, key));
        if (expected != actual) fail(where + key_of(key) + " is " + show(actual) + ", expected " + show(expected));
    }
    template <class Int>
    void nullable_int(const json::object& o, std::string_view key, const std::optional<Int>& actual,
                      const std::string& where) {
        const auto* v = o.if_contains(key);
        if (!v) return;
        const std::optional<std::int64_t> expected =
            v->is_null() ? std::nullopt : std::optional<std::int64_t>(integer_at(*v, key));
        const std::optional<std::int64_t> found = actual ? std::optional<std::int64_t>(*actual) : std::nullopt;
        if (expected != found) fail(where + key_of(key) + " is " + show(found) + ", expected " + show(expected));
    }
    void nullable_oid(const json::object& o, std::string_view key, const std::optional<bson::oid>& actual,
                      const std::string& where) {
        const auto* v = o.if_contains(key);
        if (!v) return;
        const std::optional<bson::oid> expected = v->is_null() ? std::nullopt : std::optional(oid_at(*v, key));
        if (expected != actual) fail(where + key_of(key) + " is " + show(actual) + ", expected " + show(expected));
    }
    void nullable_tv(const json::object& o, std::string_view key, const std::optional<sdk::topology_version>& actual,
                     const std::string& where) {
        const auto* v = o.if_contains(key);
        if (!v) return;
        const std::optional<sdk::topology_version> expected =
            v->is_null() ? std::nullopt : std::optional(topology_version_at(*v, key));
        if (expected != actual) fail(where + key_of(key) + " is " + show(actual) + ", expected " + show(expected));
    }

private:
    static std::string key_of(std::string_view key) { return std::string(key); }
    std::string why_;
};

void check_topology(const client_state& st, const json::object& outcome, checker& c) {
    const sdam::topology_description& t = st.topology;
    if (const auto* servers = outcome.if_contains("servers")) {
        const json::object& expected = object_at(*servers, "outcome.servers");
        std::string found;
        for (const auto& s : t.servers) found += (found.empty() ? "" : ", ") + s.address;
        if (expected.size() != t.servers.size())
            c.fail("servers are [" + found + "], expected " + std::to_string(expected.size()) + " servers");
        for (const auto& [key, value] : expected) {
            const std::string address(key);
            const sdam::server_description* s = t.find(address);
            if (!s) {
                c.fail("server " + address + " is missing (servers: [" + found + "])");
                continue;
            }
            const json::object& e = object_at(value, "outcome.servers." + address);
            const std::string where = address + ".";
            if (const auto* type = e.if_contains("type")) {
                const std::string wanted = string_at(*type, "type");
                if (wanted != sdk::to_string(s->type))
                    c.fail(where + "type is " + std::string(sdk::to_string(s->type)) + ", expected " + wanted +
                           (s->error ? " (error: " + *s->error + ")" : ""));
            }
            c.nullable_string(e, "setName", s->set_name, where);
            c.nullable_int(e, "setVersion", s->set_version, where);
            c.nullable_oid(e, "electionId", s->election_id, where);
            c.nullable_int(e, "logicalSessionTimeoutMinutes", s->logical_session_timeout_minutes, where);
            c.nullable_int(e, "minWireVersion", std::optional<int>(s->min_wire_version), where);
            c.nullable_int(e, "maxWireVersion", std::optional<int>(s->max_wire_version), where);
            c.nullable_tv(e, "topologyVersion", s->topology_version, where);
            if (const auto* pool = e.if_contains("pool"))
                if (const auto* g = object_at(*pool, "pool").if_contains("generation")) {
                    const auto it = st.generation.find(address);
                    const std::int64_t actual = it == st.generation.end() ? 0 : it->second;
                    if (actual != integer_at(*g, "pool.generation"))
                        c.fail(where + "pool.generation is " + std::to_string(actual) + ", expected " +
                               std::to_string(integer_at(*g, "pool.generation")));
                }
        }
    }
    if (const auto* type = outcome.if_contains("topologyType")) {
        const std::string wanted = string_at(*type, "topologyType");
        if (wanted != sdk::to_string(t.type))
            c.fail("topologyType is " + std::string(sdk::to_string(t.type)) + ", expected " + wanted);
    }
    c.nullable_string(outcome, "setName", t.set_name, "topology.");
    c.nullable_int(outcome, "logicalSessionTimeoutMinutes", t.logical_session_timeout_minutes, "topology.");
    c.nullable_int(outcome, "maxSetVersion", t.max_set_version, "topology.");
    c.nullable_oid(outcome, "maxElectionId", t.max_election_id, "topology.");
    if (const auto* compatible = outcome.if_contains("compatible")) {
        if (!compatible->is_bool()) throw bad_test("outcome.compatible is not a bool");
        if (compatible->get_bool() != t.compatible)
            c.fail(std::string("compatible is ") + (t.compatible ? "true" : "false") +
                   (t.compatibility_error ? " (" + *t.compatibility_error + ")" : ""));
    }
}

// ---- events

std::vector<std::string> string_list(const json::value& v, std::string_view what) {
    std::vector<std::string> out;
    for (const auto& item : array_at(v, what)) out.push_back(string_at(item, what));
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// A ServerDescription in an event: address, type, hosts/passives/arbiters (as sets), and
// primary and setName (absent means null).
bool server_matches(const json::value& expected, const sdk::server_description& s, std::string& why) {
    const json::object& e = object_at(expected, "server description");
    auto optional_string = [&](std::string_view key) -> std::optional<std::string> {
        const auto* v = e.if_contains(key);
        if (!v || v->is_null()) return std::nullopt;
        return string_at(*v, key);
    };
    if (const auto* a = e.if_contains("address"); a && string_at(*a, "address") != s.address)
        why = "address " + s.address + ", expected " + string_at(*a, "address");
    else if (const auto* t = e.if_contains("type"); t && string_at(*t, "type") != sdk::to_string(s.type))
        why = s.address + " type " + std::string(sdk::to_string(s.type)) + ", expected " + string_at(*t, "type");
    else if (const auto* h = e.if_contains("hosts"); h && string_list(*h, "hosts") != sorted(s.hosts))
        why = s.address + " hosts differ";
    else if (const auto* p = e.if_contains("passives"); p && string_list(*p, "passives") != sorted(s.passives))
        why = s.address + " passives differ";
    else if (const auto* ar = e.if_contains("arbiters"); ar && string_list(*ar, "arbiters") != sorted(s.arbiters))
        why = s.address + " arbiters differ";
    else if (optional_string("primary") != s.primary)
        why = s.address + " primary is " + show(s.primary) + ", expected " + show(optional_string("primary"));
    else if (optional_string("setName") != s.set_name)
        why = s.address + " setName is " + show(s.set_name) + ", expected " + show(optional_string("setName"));
    else
        return true;
    return false;
}

bool topology_matches(const json::value& expected, const sdk::topology_description& t, std::string& why) {
    const json::object& e = object_at(expected, "topology description");
    if (const auto* type = e.if_contains("topologyType");
        type && !type->is_null() && string_at(*type, "topologyType") != sdk::to_string(t.type)) {
        why = "topologyType " + std::string(sdk::to_string(t.type)) + ", expected " + string_at(*type, "topologyType");
        return false;
    }
    // Files differ on whether an initial description lists the configured setName: compared
    // only when given.
    const auto* set_name = e.if_contains("setName");
    const std::optional<std::string> wanted =
        set_name && !set_name->is_null() ? std::optional(string_at(*set_name, "setName")) : std::nullopt;
    if (set_name && wanted != t.set_name) {
        why = "setName " + show(t.set_name) + ", expected " + show(wanted);
        return false;
    }
    if (const auto* servers = e.if_contains("servers")) {
        const json::array& list = array_at(*servers, "servers");
        if (list.size() != t.servers.size()) {
            why = std::to_string(t.servers.size()) + " servers, expected " + std::to_string(list.size());
            return false;
        }
        for (const auto& item : list) {
            const std::string address = string_at(object_at(item, "server").at("address"), "address");
            const sdk::server_description* s = t.find(address);
            if (!s) {
                why = "no server " + address;
                return false;
            }
            if (!server_matches(item, *s, why)) return false;
        }
    }
    return true;
}

std::string describe(const sdam_event& e) {
    std::string text(event_name(e));
    if (const std::string* a = event_address(e)) text += "(" + *a + ")";
    return text;
}

std::string expected_name(const json::object& wrapper, const json::object*& body) {
    if (wrapper.size() != 1) throw bad_test("an expected event is not {name: {...}}");
    body = &object_at(wrapper.begin()->value(), "event");
    return std::string(wrapper.begin()->key());
}

void check_events(client_state& st, const json::array& expected, checker& c) {
    std::string found;
    for (const auto& e : st.events) found += (found.empty() ? "" : ", ") + describe(e);
    if (expected.size() != st.events.size()) {
        c.fail("published " + std::to_string(st.events.size()) + " events [" + found + "], expected " +
               std::to_string(expected.size()));
        return;
    }
    static const std::map<std::string, std::string_view> names = {
        {"topology_opening_event", topology_opening_event::type_name},
        {"topology_closed_event", topology_closed_event::type_name},
        {"server_opening_event", server_opening_event::type_name},
        {"server_closed_event", server_closed_event::type_name},
        {"server_description_changed_event", server_description_changed_event::type_name},
        {"topology_description_changed_event", topology_description_changed_event::type_name},
    };
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const json::object* body = nullptr;
        const std::string name = expected_name(object_at(expected[i], "event"), body);
        const auto known = names.find(name);
        if (known == names.end()) throw bad_test("unknown event \"" + name + "\"");
        const sdam_event& actual = st.events[i];
        const std::string at = "event " + std::to_string(i) + " ";
        if (event_name(actual) != known->second) {
            c.fail(at + "is " + describe(actual) + ", expected " + std::string(known->second) + " (events: [" + found +
                   "])");
            return;
        }
        if (const auto* a = body->if_contains("address"); a && event_address(actual) &&
                                                         *event_address(actual) != string_at(*a, "address")) {
            c.fail(at + "is " + describe(actual) + ", expected address " + string_at(*a, "address"));
            return;
        }
        std::string why;
        if (const auto* sdc = std::get_if<server_description_changed_event>(&actual)) {
            if (!server_matches(body->at("previousDescription"), sdc->previous_description, why) ||
                !server_matches(body->at("newDescription"), sdc->new_description, why)) {
                c.fail(at + describe(actual) + ": " + why);
                return;
            }
        } else if (const auto* tdc = std::get_if<topology_description_changed_event>(&actual)) {
            if (!topology_matches(body->at("previousDescription"), tdc->previous_description, why)) {
                c.fail(at + "TopologyDescriptionChanged previousDescription: " + why);
                return;
            }
            if (!topology_matches(body->at("newDescription"), tdc->new_description, why)) {
                c.fail(at + "TopologyDescriptionChanged newDescription: " + why);
                return;
            }
        }
    }
}

// ---------------------------------------------------------------- one file

void run_file(std::string_view file, const json::value& test, reporter& out) {
    const std::string description = string_of(test, "description", "(no description)");
    try {
        const json::object& root = object_at(test, "test");
        const std::string uri = string_at(root.at("uri"), "uri");
        client_state st;
        st.topology = sdam::initial_topology(parse_uri(uri).options);
        st.events = sdam::opening_events(st.topology);
        const json::array& phases = array_at(root.at("phases"), "phases");
        for (std::size_t i = 0; i < phases.size(); ++i) {
            const json::object& phase = object_at(phases[i], "phase");
            if (const auto* responses = phase.if_contains("responses"))
                for (const auto& r : array_at(*responses, "responses")) process_response(st, r);
            if (const auto* errors = phase.if_contains("applicationErrors"))
                for (const auto& e : array_at(*errors, "applicationErrors")) process_application_error(st, e);
            const json::object& outcome = object_at(phase.at("outcome"), "outcome");
            checker c;
            if (const auto* events = outcome.if_contains("events")) {
                check_events(st, array_at(*events, "events"), c);
                st.events.clear();
            }
            check_topology(st, outcome, c);
            if (!c.why().empty()) {
                const std::string name = string_of(phases[i], "description");
                out.fail(file, description,
                         "phase " + std::to_string(i + 1) + (name.empty() ? "" : " (" + name + ")") + ": " + c.why());
                return;
            }
        }
        out.pass(file, description);
    } catch (const bad_test& e) {
        out.fail(file, description, std::string("malformed test file: ") + e.what());
    } catch (const std::out_of_range& e) {
        out.fail(file, description, std::string("malformed test file (a required key is missing): ") + e.what());
    }
}

}  // namespace

extern const suite sdam_suite;
const suite sdam_suite{"sdam", "server discovery and monitoring: topology updates, error handling, events", run_file};

}  // namespace trellis::spec
