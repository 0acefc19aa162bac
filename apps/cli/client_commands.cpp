// trellis ping | hello | run | find | insert: one operation against a deployment, through a
// trellis::client made from the URI (read preference, timeouts, TLS, credentials: all URI
// options). Replies and documents are printed as relaxed Extended JSON.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client_support.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/database.hpp"

namespace trellis::cli {
namespace {

using steady = std::chrono::steady_clock;

constexpr const char* uri_note =
    "URI: a mongodb:// or mongodb+srv:// connection string; every option comes from it\n"
    "(readPreference, serverSelectionTimeoutMS, tls, authSource, ...).\n"
    "Exit status: 0 ok; 1 the operation failed (no suitable server within serverSelectionTimeoutMS,\n"
    "a network error, a command error from the server); 2 a usage error, an invalid URI or JSON.\n";

void print_help(const char* usage) { std::cout << usage << uri_note; }

/// Collects the positional arguments; rejects unknown options.
std::vector<std::string_view> positionals(std::string_view command, args a) {
    std::vector<std::string_view> out;
    for (auto s : a) {
        if (s.starts_with("--")) throw usage_error{std::string(command) + ": unknown option " + std::string(s)};
        out.push_back(s);
    }
    return out;
}

/// Runs a command where the URI's read preference sends reads: the primary (as writes) unless
/// the URI names another mode, then routed by it.
bson::document run_routed(trellis::client& c, const std::string& db, bson::document command) {
    const auto& rp = c.read_preference();
    if (rp.mode == read_preference_mode::primary) return c.run_command(db, std::move(command));
    return c[db].run_command(std::move(command), rp);
}

std::string json_line(bson::document_view d) {
    std::string out;
    bson::to_json(d, out, bson::json_mode::relaxed);
    out += '\n';
    return out;
}

// ---------------------------------------------------------------- ping

constexpr const char* ping_usage =
    "usage: trellis ping URI\n"
    "Sends {ping: 1} to the server in use (the primary, or the member the URI's readPreference\n"
    "selects) and prints its address, the command's round trip, and the whole time taken\n"
    "(server selection and connecting included).\n";

struct observed_command {
    std::mutex mutex;
    std::string command_name;
    std::optional<std::string> address;
    std::chrono::nanoseconds duration{0};
};

}  // namespace

int ping_command(args a) {
    if (wants_help(a)) {
        print_help(ping_usage);
        return exit_ok;
    }
    const auto pos = positionals("ping", a);
    if (pos.size() != 1) throw usage_error{"ping: exactly one URI is required"};

    auto seen = std::make_shared<observed_command>();
    client_settings settings;
    settings.on_command = [seen](const command_event& e) {
        if (const auto* ok = std::get_if<command_succeeded_event>(&e); ok && ok->command_name == "ping") {
            std::lock_guard lock(seen->mutex);
            seen->address = ok->address;
            if (ok->service_id) *seen->address += " (serviceId " + ok->service_id->to_hex() + ")";  // load balanced
            seen->duration = ok->duration;
        }
    };
    command_client c("ping", pos[0], std::move(settings));
    const auto start = steady::now();
    c.guard([&] { return run_routed(c.get(), "admin", bson::make_document(bson::kvp("ping", 1))); });
    const auto total = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start);

    std::lock_guard lock(seen->mutex);
    if (seen->address) {
        // Loopback round trips take tens of microseconds: three decimals, not one.
        char rtt[32];
        std::snprintf(rtt, sizeof rtt, "%.3f", std::chrono::duration<double, std::milli>(seen->duration).count());
        std::cout << *seen->address << ": ok, round trip " << rtt << " ms (" << format_ms(total) << " ms in all)\n";
    } else {
        std::cout << "ok (" << format_ms(total) << " ms in all)\n";
    }
    return exit_ok;
}

// ---------------------------------------------------------------- hello

namespace {
constexpr const char* hello_usage =
    "usage: trellis hello URI\n"
    "Prints the hello reply of the server in use (the primary, or the member the URI's\n"
    "readPreference selects) as relaxed Extended JSON; servers that predate hello are asked\n"
    "isMaster instead.\n";
}  // namespace

int hello_command(args a) {
    if (wants_help(a)) {
        print_help(hello_usage);
        return exit_ok;
    }
    const auto pos = positionals("hello", a);
    if (pos.size() != 1) throw usage_error{"hello: exactly one URI is required"};
    command_client c("hello", pos[0]);
    const bson::document reply = c.guard([&] {
        try {
            return run_routed(c.get(), "admin", bson::make_document(bson::kvp("hello", 1)));
        } catch (const operation_failure& f) {
            if (f.server_code() != 59) throw;  // CommandNotFound: a server older than 4.4.2
            return run_routed(c.get(), "admin", bson::make_document(bson::kvp("isMaster", 1)));
        }
    });
    std::cout << json_line(reply);
    return exit_ok;
}

// ---------------------------------------------------------------- run

namespace {
constexpr const char* run_usage =
    "usage: trellis run URI DB COMMAND_JSON\n"
    "Runs COMMAND_JSON (Extended JSON, e.g. '{\"count\": \"events\"}') on database DB and prints\n"
    "the reply as relaxed Extended JSON. The command goes to the primary, or, when the URI\n"
    "names another readPreference, to the member it selects. A reply with ok: 0 is an error.\n";
}  // namespace

int run_command(args a) {
    if (wants_help(a)) {
        print_help(run_usage);
        return exit_ok;
    }
    const auto pos = positionals("run", a);
    if (pos.size() != 3) throw usage_error{"run: URI, DB and COMMAND_JSON are required"};
    if (pos[1].empty()) throw usage_error{"run: DB must not be empty"};
    check_uri(pos[0]);  // an invalid URI is reported before the JSON
    bson::document command = parse_json_argument("run: COMMAND_JSON", pos[2]);
    if (command.empty()) throw input_error{"run: COMMAND_JSON is an empty document"};
    command_client c("run", pos[0]);
    const std::string db(pos[1]);
    const bson::document reply = c.guard([&] { return run_routed(c.get(), db, std::move(command)); });
    std::cout << json_line(reply);
    return exit_ok;
}

// ---------------------------------------------------------------- find

namespace {
constexpr const char* find_usage =
    "usage: trellis find URI DB.COLL [FILTER_JSON] [--limit N]\n"
    "Prints the documents of DB.COLL that match FILTER_JSON (Extended JSON; all when omitted),\n"
    "one per line as relaxed Extended JSON, from the member the URI's readPreference selects.\n"
    "  --limit N   at most N documents (0: no limit)\n";
}  // namespace

int find_command(args a) {
    if (wants_help(a)) {
        print_help(find_usage);
        return exit_ok;
    }
    std::vector<std::string_view> pos;
    find_options options;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i] == "--limit") {
            if (i + 1 >= a.size()) throw usage_error{"find: --limit needs N"};
            options.limit = parse_count("find: --limit", a[++i]);
        } else if (a[i].starts_with("--limit=")) {
            options.limit = parse_count("find: --limit", a[i].substr(8));
        } else if (a[i].starts_with("--")) {
            throw usage_error{"find: unknown option " + std::string(a[i])};
        } else {
            pos.push_back(a[i]);
        }
    }
    if (pos.size() < 2 || pos.size() > 3) throw usage_error{"find: URI and DB.COLL are required, then at most a FILTER_JSON"};
    check_uri(pos[0]);
    const auto [db, coll] = split_namespace("find", pos[1]);
    bson::document filter = pos.size() == 3 ? parse_json_argument("find: FILTER_JSON", pos[2]) : bson::document();
    command_client c("find", pos[0]);
    collection collection = c.get()[db][coll];
    c.guard([&] {
        cursor cur = collection.find(std::move(filter), options);
        std::string out;
        while (auto doc = cur.next()) {
            out += json_line(*doc);
            if (out.size() > 64 * 1024) {
                std::cout << out;
                out.clear();
            }
        }
        std::cout << out;
    });
    std::cout.flush();
    return exit_ok;
}

// ---------------------------------------------------------------- insert

namespace {
constexpr const char* insert_usage =
    "usage: trellis insert URI DB.COLL DOC_JSON...\n"
    "Inserts each DOC_JSON (one Extended JSON document per argument) into DB.COLL, in order,\n"
    "with the URI's write concern, and prints each document's {\"_id\": ...} as it is\n"
    "acknowledged. Every document is parsed before the first is sent: a bad one inserts none.\n";
}  // namespace

int insert_command(args a) {
    if (wants_help(a)) {
        print_help(insert_usage);
        return exit_ok;
    }
    const auto pos = positionals("insert", a);
    if (pos.size() < 3) throw usage_error{"insert: URI, DB.COLL and at least one DOC_JSON are required"};
    check_uri(pos[0]);
    const auto [db, coll] = split_namespace("insert", pos[1]);
    std::vector<bson::document> docs;
    for (std::size_t i = 2; i < pos.size(); ++i) {
        const std::string what =
            pos.size() == 3 ? std::string("insert: DOC_JSON") : "insert: DOC_JSON " + std::to_string(i - 1);
        docs.push_back(parse_json_argument(what, pos[i]));
    }
    command_client c("insert", pos[0]);
    collection collection = c.get()[db][coll];
    for (std::size_t i = 0; i < docs.size(); ++i) {
        try {
            const insert_one_result r = collection.insert_one(std::move(docs[i]));
            std::cout << json_line(r.inserted_id) << std::flush;
        } catch (const trellis::configuration_error&) {
            throw;
        } catch (const trellis::error& e) {
            if (docs.size() == 1) c.fail(e);
            c.fail(e, "document " + std::to_string(i + 1) + " of " + std::to_string(docs.size()));
        }
    }
    return exit_ok;
}

}  // namespace trellis::cli
