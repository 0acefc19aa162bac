// Suites server-selection (server-selection/tests/server_selection) and max-staleness
// (max-staleness/tests): one format, one test per file.
//
// Per file: build the topology description and the read preference, run
// selection::suitable_servers for the operation ("read" when absent) with the file's
// heartbeatFrequencyMS (10 s when absent) and deprioritized_servers, then
// selection::in_latency_window with the default localThresholdMS, 15 ms.
// - error: true       suitable_servers (through selection::validate) must throw
//                     configuration_error; any other outcome fails;
// - suitable_servers  compared as a set of addresses, when present;
// - in_latency_window compared as a set of addresses, when present.
// A maxStalenessSeconds of -1 means none; one that is not an integer is an invalid read
// preference (the API holds whole seconds), which only an error: true file may carry.
//
// Files written for rules the specifications dropped are skipped, with the reason: a per-server
// idleWriteFrequencyMillis / idleWritePeriodMillis or a maxStalenessMS option (2016 drafts of Max
// Staleness, reverted or renamed before the spec was accepted); an available server with
// maxWireVersion below 5 (the pre-3.4 rule, removed from the specs in 2021); a replica set file
// expecting selection with 0 < maxStalenessSeconds < 90 (written before the 90-second minimum of
// 2016-11-21, which the spec now says MUST raise an error).
#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "runner.hpp"
#include "selection_format.hpp"
#include "trellis/errors.hpp"

namespace trellis::spec {

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string lower_ascii(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return r;
}

double number(const json::value& v, std::string_view what) {
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    if (v.is_double()) return v.get_double();
    throw std::runtime_error(std::string(what) + " is not a number: " + json::serialize(v));
}

// An integer in plain JSON or as {"$numberLong": "..."}.
std::int64_t integer(const json::value& v, std::string_view what) {
    if (const auto* o = v.if_object())
        if (const auto* s = o->if_contains("$numberLong"))
            if (const auto* str = s->if_string()) return std::stoll(std::string(*str));
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
    if (v.is_double() && std::floor(v.get_double()) == v.get_double()) return static_cast<std::int64_t>(v.get_double());
    throw std::runtime_error(std::string(what) + " is not an integer: " + json::serialize(v));
}

std::string text_of(const json::value& v) {
    if (const auto* s = v.if_string()) return std::string(*s);
    return json::serialize(v);
}

sdk::server_type server_type_of(std::string_view name) {
    using sdk::server_type;
    static const std::pair<std::string_view, server_type> names[] = {
        {"Unknown", server_type::unknown},      {"Standalone", server_type::standalone},
        {"Mongos", server_type::mongos},        {"PossiblePrimary", server_type::possible_primary},
        {"RSPrimary", server_type::rs_primary}, {"RSSecondary", server_type::rs_secondary},
        {"RSArbiter", server_type::rs_arbiter}, {"RSOther", server_type::rs_other},
        {"RSGhost", server_type::rs_ghost},     {"LoadBalancer", server_type::load_balancer},
    };
    for (const auto& [n, t] : names)
        if (n == name) return t;
    throw std::runtime_error("unknown server type \"" + std::string(name) + "\"");
}

sdk::topology_type topology_type_of(std::string_view name) {
    using sdk::topology_type;
    static const std::pair<std::string_view, topology_type> names[] = {
        {"Unknown", topology_type::unknown},
        {"Single", topology_type::single},
        {"ReplicaSetNoPrimary", topology_type::replica_set_no_primary},
        {"ReplicaSetWithPrimary", topology_type::replica_set_with_primary},
        {"Sharded", topology_type::sharded},
        {"LoadBalanced", topology_type::load_balanced},
    };
    for (const auto& [n, t] : names)
        if (n == name) return t;
    throw std::runtime_error("unknown topology type \"" + std::string(name) + "\"");
}

sdk::server_description parse_server(const json::value& v) {
    const json::object& o = v.as_object();
    sdk::server_description s;
    s.address = lower_ascii(string_of(v, "address"));
    if (s.address.empty()) throw std::runtime_error("a server without an address: " + json::serialize(v));
    s.type = server_type_of(string_of(v, "type", "Unknown"));
    if (const auto* rtt = o.if_contains("avg_rtt_ms"); rtt && !rtt->is_null())
        s.round_trip_time = std::chrono::microseconds(std::llround(number(*rtt, "avg_rtt_ms") * 1000.0));
    if (const auto* tags = o.if_contains("tags"); tags && tags->is_object())
        for (const auto& [name, value] : tags->get_object()) s.tags[std::string(name)] = text_of(value);
    if (const auto* t = o.if_contains("lastUpdateTime"))
        s.last_update_time =
            std::chrono::steady_clock::time_point(std::chrono::milliseconds(integer(*t, "lastUpdateTime")));
    // lastWrite.lastWriteDate; the oldest files put lastWriteDate beside the other fields.
    const json::value* write_date = o.if_contains("lastWriteDate");
    if (const auto* lw = o.if_contains("lastWrite"); lw && lw->is_object())
        if (const auto* d = lw->get_object().if_contains("lastWriteDate")) write_date = d;
    if (write_date)
        s.last_write_date =
            std::chrono::system_clock::time_point(std::chrono::milliseconds(integer(*write_date, "lastWriteDate")));
    if (const auto* w = o.if_contains("maxWireVersion"))
        s.max_wire_version = static_cast<int>(integer(*w, "maxWireVersion"));
    return s;
}

std::vector<std::string> addresses(const json::value* list) {
    std::vector<std::string> out;
    if (!list) return out;
    for (const json::value& s : list->as_array()) out.push_back(lower_ascii(string_of(s, "address")));
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> addresses(const std::vector<const sdk::server_description*>& servers) {
    std::vector<std::string> out;
    for (const auto* s : servers) out.push_back(s->address);
    std::sort(out.begin(), out.end());
    return out;
}

std::string show(const std::vector<std::string>& list) {
    std::string out = "[";
    for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + list[i];
    return out + "]";
}

std::string show_why_not(const selection::suitability& s) {
    std::string out;
    for (const std::string& line : s.why_not) out += (out.empty() ? "" : "; ") + line;
    return out.empty() ? "(none)" : out;
}

read_preference_mode mode_of(std::string_view name) {
    const std::string n = lower_ascii(name);
    if (n == "primary") return read_preference_mode::primary;
    if (n == "primarypreferred") return read_preference_mode::primary_preferred;
    if (n == "secondary") return read_preference_mode::secondary;
    if (n == "secondarypreferred") return read_preference_mode::secondary_preferred;
    if (n == "nearest") return read_preference_mode::nearest;
    throw std::runtime_error("unknown read preference mode \"" + std::string(name) + "\"");
}

// The read preference; configuration_error for a maxStalenessSeconds the API cannot hold.
read_preference parse_read_preference(const json::value* v) {
    read_preference rp;
    if (!v || v->is_null()) return rp;
    const json::object& o = v->as_object();
    if (const auto* m = o.if_contains("mode")) rp.mode = mode_of(m->as_string());
    if (const auto* sets = o.if_contains("tag_sets"))
        for (const json::value& set : sets->as_array()) {
            tag_set tags;
            for (const auto& [name, value] : set.as_object()) tags.emplace_back(std::string(name), text_of(value));
            rp.tag_sets.push_back(std::move(tags));
        }
    if (const auto* ms = o.if_contains("maxStalenessSeconds"); ms && !ms->is_null()) {
        const double seconds = number(*ms, "maxStalenessSeconds");
        if (std::floor(seconds) != seconds)
            throw configuration_error("maxStalenessSeconds must be a whole number of seconds, got " +
                                      json::serialize(*ms));
        if (seconds != -1) rp.max_staleness = std::chrono::seconds(static_cast<std::int64_t>(seconds));
    }
    return rp;
}

// A file whose expectation the current specifications contradict (see the head comment).
std::optional<std::string> superseded_expectation(const json::value& test) {
    const json::object& t = test.as_object();
    const json::value* rp = t.if_contains("read_preference");
    if (!rp || !rp->is_object()) return std::nullopt;
    if (rp->as_object().contains("maxStalenessMS"))
        return "read preference uses maxStalenessMS, the option's name before 2016-10-24 (now maxStalenessSeconds)";
    const json::value* ms = rp->as_object().if_contains("maxStalenessSeconds");
    const json::value* error = t.if_contains("error");
    const bool expect_error = error && error->is_bool() && error->get_bool();
    const std::string type = string_of(t.at("topology_description"), "type");
    if (ms && !ms->is_null() && !expect_error && (type == "ReplicaSetWithPrimary" || type == "ReplicaSetNoPrimary")) {
        const double seconds = number(*ms, "maxStalenessSeconds");
        if (seconds > 0 && seconds < 90)
            return "expects selection in a replica set with maxStalenessSeconds " + json::serialize(*ms) +
                   ": written before the 90-second minimum (2016-11-21); the spec now requires an error";
    }
    return std::nullopt;
}

void run_file(std::string_view file, const json::value& test, reporter& out) {
    const std::string description = string_of(test, "description", "selection");
    const json::object& t = test.as_object();
    const json::value* topology_json = t.if_contains("topology_description");
    if (!topology_json) {
        out.fail(file, description, "no topology_description");
        return;
    }
    if (auto why = unsupported_server_fields(*topology_json)) {
        out.skip(file, description, *why);
        return;
    }
    if (auto why = superseded_expectation(test)) {
        out.skip(file, description, *why);
        return;
    }
    const sdk::topology_description topology = parse_topology(*topology_json);

    sdk::operation_requirements operation;
    const std::string op = string_of(test, "operation", "read");
    if (op == "write")
        operation.what = sdk::operation_requirements::kind::write;
    else if (op != "read")
        throw std::runtime_error("unknown operation \"" + op + "\"");
    if (const auto* hb = t.if_contains("heartbeatFrequencyMS"))
        operation.heartbeat_frequency = std::chrono::milliseconds(integer(*hb, "heartbeatFrequencyMS"));
    std::vector<std::string> deprioritized;
    if (const auto* d = t.if_contains("deprioritized_servers"))
        for (const json::value& s : d->as_array()) deprioritized.push_back(lower_ascii(string_of(s, "address")));

    const json::value* error = t.if_contains("error");
    const bool expect_error = error && error->is_bool() && error->get_bool();

    selection::suitability suitable;
    try {
        operation.read_preference = parse_read_preference(t.if_contains("read_preference"));
        suitable = selection::suitable_servers(topology, operation, deprioritized);
    } catch (const configuration_error& e) {
        if (expect_error)
            out.pass(file, description);
        else
            out.fail(file, description, std::string("unexpected error: ") + e.what());
        return;
    }
    if (expect_error) {
        out.fail(file, description,
                 "expected an invalid read preference error, selected " + show(addresses(suitable.servers)));
        return;
    }

    std::string problems;
    if (const auto* expected = t.if_contains("suitable_servers")) {
        const auto want = addresses(expected), got = addresses(suitable.servers);
        if (want != got)
            problems += "suitable_servers: expected " + show(want) + ", got " + show(got) +
                        " (why not: " + show_why_not(suitable) + ") ";
    }
    if (const auto* expected = t.if_contains("in_latency_window")) {
        const auto window = selection::in_latency_window(suitable.servers, selection::default_local_threshold);
        const auto want = addresses(expected), got = addresses(window);
        if (want != got) problems += "in_latency_window: expected " + show(want) + ", got " + show(got);
    }
    if (problems.empty())
        out.pass(file, description);
    else
        out.fail(file, description, problems);
}

}  // namespace

sdk::topology_description parse_topology(const json::value& description) {
    sdk::topology_description topology;
    topology.type = topology_type_of(string_of(description, "type", "Unknown"));
    if (const auto* servers = description.as_object().if_contains("servers"))
        for (const json::value& s : servers->as_array()) topology.servers.push_back(parse_server(s));
    std::sort(topology.servers.begin(), topology.servers.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
    return topology;
}

std::optional<std::string> unsupported_server_fields(const json::value& description) {
    const auto* servers = description.as_object().if_contains("servers");
    if (!servers) return std::nullopt;
    for (const json::value& s : servers->as_array()) {
        const json::object& o = s.as_object();
        for (const char* field : {"idleWriteFrequencyMillis", "idleWritePeriodMillis"})
            if (o.contains(field))
                return "servers carry " + std::string(field) +
                       ", from a 2016 draft of Max Staleness reverted before the spec was accepted (idleWritePeriodMS "
                       "is the constant 10 s)";
        const std::string type = string_of(s, "type", "Unknown");
        const bool available = type != "Unknown" && type != "PossiblePrimary";
        if (const auto* w = o.if_contains("maxWireVersion"); available && w && integer(*w, "maxWireVersion") < 5)
            return "an available server has maxWireVersion " + std::to_string(integer(*w, "maxWireVersion")) +
                   " < 5: the pre-3.4 rule this file tests was removed from the specs (2021-09-08)";
    }
    return std::nullopt;
}

extern const suite server_selection_suite;
const suite server_selection_suite{"server-selection",
                                   "suitable servers and latency window by topology type, read preference, "
                                   "deprioritized servers",
                                   &run_file};

extern const suite max_staleness_suite;
const suite max_staleness_suite{"max-staleness",
                                "maxStalenessSeconds: validation and staleness with and without a primary", &run_file};

}  // namespace trellis::spec
