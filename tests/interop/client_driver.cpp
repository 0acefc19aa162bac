// trellis-interop-client: trellis::client driven by JSON lines, for interop tests written in
// another language (tests/interop/test_mockupdb.py drives it against python3-mockupdb).
//
// One Extended JSON command per line on stdin, one JSON line per result on stdout (flushed):
//
//   {"op": "connect", "uri": "mongodb://..."}
//   {"op": "insert", "ns": "db.coll", "doc": {...}}
//   {"op": "find", "ns": "db.coll", "filter": {...}, "read_preference": RP, "limit": N, "batch_size": N}
//   {"op": "run", "db": "admin", "command": {...}, "read_preference": RP}
//   {"op": "topology"}          the last snapshot: type, set name, servers with their types
//   {"op": "discover"}          wait_for_discovery(), then as "topology"
//   {"op": "close"}             client.close()
//   {"op": "quit"}
//
//   RP: {"mode": "secondary", "tag_sets": [{"dc": "ny"}, {}], "max_staleness_seconds": 120}
//
// Results: {"ok": true, "result": ...} or
//          {"ok": false, "error": "<what()>", "code": "<errc name or number>",
//           "server_code": N, "labels": [...]}  (server_code and labels for operation_failure)
// Output is relaxed Extended JSON. Every call blocks; the client runs on its own thread.
#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"

namespace bson = trellis::bson;

namespace {

std::string errc_name(const std::error_code& ec) {
    if (ec.category() != trellis::error_category()) return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
    switch (static_cast<trellis::errc>(ec.value())) {
        case trellis::errc::bson_invalid: return "bson_invalid";
        case trellis::errc::bson_type_mismatch: return "bson_type_mismatch";
        case trellis::errc::bson_key_not_found: return "bson_key_not_found";
        case trellis::errc::bson_too_large: return "bson_too_large";
        case trellis::errc::json_invalid: return "json_invalid";
        case trellis::errc::protocol_error: return "protocol_error";
        case trellis::errc::message_too_large: return "message_too_large";
        case trellis::errc::compression_error: return "compression_error";
        case trellis::errc::connection_failure: return "connection_failure";
        case trellis::errc::auto_reconnect: return "auto_reconnect";
        case trellis::errc::not_primary: return "not_primary";
        case trellis::errc::server_selection_timeout: return "server_selection_timeout";
        case trellis::errc::operation_failure: return "operation_failure";
        case trellis::errc::write_error: return "write_error";
        case trellis::errc::duplicate_key: return "duplicate_key";
        case trellis::errc::configuration_error: return "configuration_error";
        case trellis::errc::invalid_name: return "invalid_name";
        case trellis::errc::plugin_error: return "plugin_error";
        case trellis::errc::pool_closed: return "pool_closed";
        case trellis::errc::pool_cleared: return "pool_cleared";
        case trellis::errc::wait_queue_timeout: return "wait_queue_timeout";
        case trellis::errc::network_timeout: return "network_timeout";
        case trellis::errc::incompatible_server: return "incompatible_server";
        case trellis::errc::authentication_failed: return "authentication_failed";
        case trellis::errc::invalid_argument: return "invalid_argument";
        case trellis::errc::operation_timeout: return "operation_timeout";
    }
    return std::to_string(ec.value());
}

/// A command's mistake (a missing field, a bad value): reported like a client error.
struct bad_request : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string string_field(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    if (!e || e->type() != bson::type::string) throw bad_request("missing string field \"" + std::string(key) + "\"");
    return std::string(e->get_string());
}

bson::document document_field(bson::document_view d, std::string_view key, bool required) {
    const auto e = d.find(key);
    if (!e) {
        if (required) throw bad_request("missing document field \"" + std::string(key) + "\"");
        return {};
    }
    if (e->type() != bson::type::document) throw bad_request("field \"" + std::string(key) + "\" is not a document");
    return bson::document(e->get_document());
}

trellis::read_preference_mode mode_of(std::string_view m) {
    using trellis::read_preference_mode;
    if (m == "primary") return read_preference_mode::primary;
    if (m == "primaryPreferred" || m == "primary_preferred") return read_preference_mode::primary_preferred;
    if (m == "secondary") return read_preference_mode::secondary;
    if (m == "secondaryPreferred" || m == "secondary_preferred") return read_preference_mode::secondary_preferred;
    if (m == "nearest") return read_preference_mode::nearest;
    throw bad_request("unknown read preference mode \"" + std::string(m) + "\"");
}

std::optional<trellis::read_preference> read_preference_field(bson::document_view d) {
    const auto e = d.find("read_preference");
    if (!e || e->is_null()) return std::nullopt;
    if (e->type() != bson::type::document) throw bad_request("read_preference is not a document");
    const auto rp_doc = e->get_document();
    trellis::read_preference rp;
    rp.mode = mode_of(string_field(rp_doc, "mode"));
    if (const auto ts = rp_doc.find("tag_sets")) {
        if (ts->type() != bson::type::array) throw bad_request("tag_sets is not an array");
        for (const auto& set : ts->get_array()) {
            trellis::tag_set tags;
            for (const auto& tag : set.get_document()) tags.emplace_back(std::string(tag.key()), std::string(tag.get_string()));
            rp.tag_sets.push_back(std::move(tags));
        }
    }
    if (const auto ms = rp_doc.find("max_staleness_seconds"); ms && ms->is_number())
        rp.max_staleness = std::chrono::seconds(ms->as_int64());
    return rp;
}

std::pair<std::string, std::string> split_namespace(const std::string& ns) {
    const auto dot = ns.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == ns.size())
        throw bad_request("namespace \"" + ns + "\" is not \"db.collection\"");
    return {ns.substr(0, dot), ns.substr(dot + 1)};
}

void append_topology(bson::builder& out, const trellis::sdk::topology_description& t) {
    out.open_document("result");
    out.append("type", trellis::sdk::to_string(t.type));
    if (t.set_name) out.append("set_name", *t.set_name);
    if (t.max_set_version) out.append("max_set_version", *t.max_set_version);
    if (t.max_election_id) out.append("max_election_id", *t.max_election_id);
    if (t.logical_session_timeout_minutes) out.append("logical_session_timeout_minutes", *t.logical_session_timeout_minutes);
    for (const auto& s : t.servers)
        if (s.type == trellis::sdk::server_type::rs_primary) out.append("primary", s.address);
    out.open_array("servers");
    for (const auto& s : t.servers) {
        out.open_document();
        out.append("address", s.address).append("type", trellis::sdk::to_string(s.type));
        if (s.set_name) out.append("set_name", *s.set_name);
        if (s.set_version) out.append("set_version", *s.set_version);
        if (s.election_id) out.append("election_id", *s.election_id);
        if (s.primary) out.append("primary", *s.primary);
        if (s.error) out.append("error", *s.error);
        out.append("max_wire_version", s.max_wire_version);
        out.close_document();
    }
    out.close_array();
    out.close_document();
}

class driver {
public:
    /// Runs one command; false when the program should end.
    bool handle(const bson::document& cmd, bson::builder& out) {
        const auto op = string_field(cmd, "op");
        if (op == "quit") {
            out.append("ok", true).append("result", nullptr);
            return false;
        }
        if (op == "connect") {
            const auto uri = string_field(cmd, "uri");
            client_.reset();  // the old one, closed first
            client_ = std::make_unique<trellis::client>(uri);
            out.append("ok", true).append("result", nullptr);
            return true;
        }
        auto& c = client();
        if (op == "insert") {
            const auto [db, coll] = split_namespace(string_field(cmd, "ns"));
            const auto r = c[db][coll].insert_one(document_field(cmd, "doc", true));
            out.append("ok", true).open_document("result");
            out.append("inserted_id", r.inserted_id["_id"]).append("acknowledged", r.acknowledged);
            out.close_document();
        } else if (op == "find") {
            const auto [db, coll] = split_namespace(string_field(cmd, "ns"));
            trellis::find_options o;
            o.read_preference = read_preference_field(cmd);
            if (const auto l = cmd.find("limit"); l && l->is_number()) o.limit = l->as_int64();
            if (const auto b = cmd.find("batch_size"); b && b->is_number()) o.batch_size = static_cast<std::int32_t>(b->as_int64());
            auto cur = c[db][coll].find(document_field(cmd, "filter", false), std::move(o));
            const std::string address = cur.address();
            bson::builder docs(bson::builder::root::array);
            while (auto d = cur.next()) docs.append(d->view());
            const auto arr = bson::array(docs.extract());
            out.append("ok", true).open_document("result");
            out.append("documents", arr.view()).append("address", address);
            out.close_document();
        } else if (op == "run") {
            const auto db = string_field(cmd, "db");
            auto command = document_field(cmd, "command", true);
            const auto rp = read_preference_field(cmd);
            const auto reply = rp ? c[db].run_command(std::move(command), *rp) : c[db].run_command(std::move(command));
            out.append("ok", true).append("result", reply.view());
        } else if (op == "topology") {
            out.append("ok", true);
            append_topology(out, *c.topology());
        } else if (op == "discover") {
            out.append("ok", true);
            append_topology(out, *c.wait_for_discovery());
        } else if (op == "close") {
            c.close();
            out.append("ok", true).append("result", nullptr);
        } else {
            throw bad_request("unknown op \"" + op + "\"");
        }
        return true;
    }

private:
    trellis::client& client() {
        if (!client_) throw bad_request("not connected: send {\"op\": \"connect\", \"uri\": ...} first");
        return *client_;
    }

    std::unique_ptr<trellis::client> client_;
};

void failure(bson::builder& out, const std::string& what, const std::string& code) {
    out.clear();
    out.append("ok", false).append("error", what).append("code", code);
}

}  // namespace

int main() {
    driver d;
    std::string line;
    bool go_on = true;
    while (go_on && std::getline(std::cin, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        bson::builder out;
        try {
            go_on = d.handle(bson::from_json(line), out);
        } catch (const trellis::operation_failure& e) {
            failure(out, e.what(), errc_name(e.code()));
            out.append("server_code", e.server_code());
            if (!e.code_name().empty()) out.append("code_name", e.code_name());
            out.open_array("labels");
            for (const auto& l : e.error_labels()) out.append(l);
            out.close_array();
        } catch (const trellis::error& e) {
            failure(out, e.what(), errc_name(e.code()));
        } catch (const bad_request& e) {
            failure(out, e.what(), "bad_request");
        } catch (const std::exception& e) {
            failure(out, e.what(), "exception");
        }
        std::cout << bson::to_json(out.extract(), bson::json_mode::relaxed) << std::endl;
    }
    return 0;
}
