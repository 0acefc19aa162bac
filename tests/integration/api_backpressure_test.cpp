// Issue #15 against trellis-sim: the Stable API on the wire (every command, getMore and the
// handshake's hello over OP_MSG included) and the sim's answers to it; the client backpressure
// retry policy (SystemOverloadedError + RetryableError, maxAdaptiveRetries, backoff, overload
// retargeting); and the SDAM rules for errors while a pool connection is being established.
#include <QtTest/QtTest>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/collection.hpp"
#include "trellis/database.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"
#include "trellis/write_error.hpp"
#include "fail_point.hpp"

namespace sim = trellis::sim;
namespace bson = trellis::bson;
using trellis::errc;
using namespace std::chrono_literals;

namespace {

std::string with(std::string uri, const std::string& options) {
    return uri + (uri.find('?') == std::string::npos ? (uri.find('/', 10) == std::string::npos ? "/?" : "?") : "&") + options;
}

using trellis_test::doc;

// What the client did, from its events.
struct recorder {
    std::mutex m;
    std::vector<trellis::command_started_event> started;
    std::vector<trellis::command_failed_event> failed;
    std::vector<std::string> cmap;  // event names
    std::vector<std::string> unknown_servers;  // addresses a ServerDescriptionChanged made Unknown (after discovery)
    bool discovered = false;

    void attach(trellis::client_settings& s) {
        s.on_command = [this](const trellis::command_event& e) {
            std::lock_guard lock(m);
            if (const auto* st = std::get_if<trellis::command_started_event>(&e)) started.push_back(*st);
            if (const auto* f = std::get_if<trellis::command_failed_event>(&e)) failed.push_back(*f);
        };
        s.on_cmap = [this](const trellis::cmap_event& e) {
            std::lock_guard lock(m);
            cmap.emplace_back(trellis::event_name(e));
        };
        s.on_sdam = [this](const trellis::sdam_event& e) {
            const auto* c = std::get_if<trellis::server_description_changed_event>(&e);
            if (!c) return;
            std::lock_guard lock(m);
            if (c->new_description.type != trellis::sdk::server_type::unknown) discovered = true;
            else if (discovered) unknown_servers.push_back(c->address);
        };
    }
    std::vector<trellis::command_started_event> started_named(std::string_view name) {
        std::lock_guard lock(m);
        std::vector<trellis::command_started_event> out;
        for (const auto& e : started)
            if (e.command_name == name) out.push_back(e);
        return out;
    }
    long failed_named(std::string_view name) {
        std::lock_guard lock(m);
        return std::count_if(failed.begin(), failed.end(), [&](const auto& e) { return e.command_name == name; });
    }
    long cmap_count(std::string_view name) {
        std::lock_guard lock(m);
        return std::count(cmap.begin(), cmap.end(), std::string(name));
    }
    bool is_discovered() {
        std::lock_guard lock(m);
        return discovered;
    }
};

// configureFailPoint on one member, through a client of its own (directConnection).
void fail_point(const std::string& member, const bson::document& mode, const bson::document& data) {
    trellis::client admin("mongodb://" + member + "/?directConnection=true");
    bson::builder b;
    b.append("configureFailPoint", "failCommand").append("mode", mode.view()).append("data", data.view());
    admin.run_command("admin", b.extract());
}

bson::document times(int n) { return bson::make_document(bson::kvp("times", n)); }

void fail_point_off(const std::string& member) {
    trellis::client admin("mongodb://" + member + "/?directConnection=true");
    admin.run_command("admin", bson::make_document(bson::kvp("configureFailPoint", "failCommand"), bson::kvp("mode", "off")));
}

// An overload error as the ingress request rate limiter returns it.
bson::document overload_data(const char* command, bool retryable = true) {
    bson::builder b;
    b.open_array("failCommands").append(command).close_array();
    b.append("errorCode", 462);
    b.open_array("errorLabels").append("SystemOverloadedError");
    if (retryable) b.append("RetryableError");
    b.close_array();
    return b.extract();
}

// The server's code of the error f throws (0: none; -1: an error without a server code).
int code_of(const std::function<void()>& f, std::vector<std::string>* labels = nullptr) {
    try {
        f();
    } catch (const trellis::operation_failure& e) {
        if (labels) *labels = e.error_labels();
        return e.server_code() != 0 ? e.server_code() : -1;
    } catch (const trellis::error&) {
        return -1;
    }
    return 0;
}

trellis::client_options options_of(const std::string& uri) { return trellis::parse_uri(uri).options; }

}  // namespace

class ApiBackpressureTest : public QObject {
    Q_OBJECT

private slots:
    // ------------------------------------------------------------ Stable API

    void stable_api_goes_on_every_command() {
        sim::deployment d(sim::sim_config{});
        d.start();
        recorder rec;
        trellis::client_settings settings;
        rec.attach(settings);
        auto options = options_of(with(d.uri(), "heartbeatFrequencyMS=500"));
        options.server_api.emplace().version = std::string(trellis::server_api::v1);
        trellis::client c(std::move(options), std::move(settings));
        auto coll = c["test"]["api"];
        for (int i = 0; i < 5; ++i) coll.insert_one(bson::make_document(bson::kvp("i", i)));
        trellis::find_options o;
        o.batch_size = 2;
        int n = 0;
        for (auto cur = coll.find({}, o); cur.next();) ++n;
        QCOMPARE(n, 5);
        auto early = coll.find({}, o);
        QVERIFY(early.next().has_value());
        early.close();
        c.run_command("admin", bson::make_document(bson::kvp("ping", 1)));
        QTRY_VERIFY_WITH_TIMEOUT(!rec.started_named("killCursors").empty(), 5000);

        // The handshake: hello (never legacy isMaster) over OP_MSG ($db is only in OP_MSG), with
        // the API version and backpressure: "2".
        QVERIFY(rec.started_named("isMaster").empty());
        const auto hellos = rec.started_named("hello");
        QVERIFY(!hellos.empty());
        QCOMPARE(hellos.front().command["$db"].get_string(), std::string_view("admin"));
        QCOMPARE(hellos.front().command["backpressure"].get_string(), std::string_view("2"));
        QVERIFY(hellos.front().command.find("client").has_value());
        // Every command: apiVersion "1", and no apiStrict / apiDeprecationErrors (not given).
        std::lock_guard lock(rec.m);
        QVERIFY(rec.started.size() >= 10);
        for (const auto& e : rec.started) {
            const auto v = e.command.find("apiVersion");
            QVERIFY2(v && v->get_string() == "1", (e.command_name + ": " + bson::to_json(e.command)).c_str());
            QVERIFY2(!e.command.find("apiStrict") && !e.command.find("apiDeprecationErrors"), e.command_name.c_str());
        }
        for (const char* name : {"insert", "find", "getMore", "killCursors", "ping", "hello"})
            QVERIFY2(std::any_of(rec.started.begin(), rec.started.end(), [&](const auto& e) { return e.command_name == name; }),
                     name);
    }

    void strict_api_refuses_commands_outside_version_1() {
        sim::deployment d(sim::sim_config{});
        d.start();
        recorder rec;
        trellis::client_settings settings;
        rec.attach(settings);
        auto options = options_of(d.uri());
        auto& api = options.server_api.emplace();
        api.version = "1";
        api.strict = true;
        api.deprecation_errors = false;
        trellis::client c(std::move(options), std::move(settings));
        auto coll = c["test"]["strict"];
        coll.insert_one(doc(R"({"x": 1})"));
        QCOMPARE(coll.count_documents({}), std::int64_t(1));  // aggregate: in API version 1
        // distinct is not in API version 1: the server refuses it under apiStrict.
        QCOMPARE(code_of([&] { c.run_command("test", doc(R"({"distinct": "strict", "key": "x"})")); }), 323);
        const auto distinct = rec.started_named("distinct");
        QCOMPARE(distinct.size(), std::size_t(1));
        // Given values are sent even when they are the server's default (false).
        QCOMPARE(distinct.front().command["apiStrict"].get_bool(), true);
        QCOMPARE(distinct.front().command["apiDeprecationErrors"].get_bool(), false);
        QCOMPARE(distinct.front().command["apiVersion"].get_string(), std::string_view("1"));
    }

    void api_versions_are_checked_by_client_and_server() {
        // The client refuses a version it does not know, before any I/O.
        auto options = options_of("mongodb://127.0.0.1:1");
        options.server_api.emplace().version = "2";
        try {
            trellis::client c(options);
            QFAIL("a client with serverApi version 2 was made");
        } catch (const trellis::configuration_error& e) {
            QVERIFY2(std::string(e.what()).find("'2' is not a Stable API version") != std::string::npos, e.what());
        }
        options.server_api->version.clear();
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, trellis::client{options});

        // The server: a generic command is not inspected (the spec), so what the sim answers to
        // API fields it does not accept reaches the caller.
        sim::deployment d(sim::sim_config{});
        d.start();
        trellis::client c(d.uri());
        QCOMPARE(code_of([&] { c.run_command("admin", doc(R"({"ping": 1, "apiVersion": "2"})")); }), 322);
        QCOMPARE(code_of([&] { c.run_command("admin", doc(R"({"ping": 1, "apiStrict": true})")); }), 4886600);
        QCOMPARE(code_of([&] { c.run_command("admin", doc(R"({"ping": 1, "apiVersion": "1", "apiStrict": true})")); }), 0);
        QCOMPARE(code_of([&] { c.run_command("admin", doc(R"({"buildInfo": 1, "apiVersion": "1", "apiStrict": true})")); }), 323);
    }

    // ------------------------------------------------------------ client backpressure

    void overload_errors_are_retried_after_a_backoff() {
        sim::deployment d(sim::sim_config{});
        d.start();
        recorder rec;
        trellis::client_settings settings;
        rec.attach(settings);
        settings.backoff_jitter = [] { return 0.5; };  // delays: 0.5 * 200 ms, then 0.5 * 400 ms
        trellis::client c(d.uri(), std::move(settings));
        c.run_command("admin", bson::make_document(bson::kvp("ping", 1)));
        // ping is retryable under no other policy: only the overload policy retries it.
        fail_point(d.members().at(0), times(2), overload_data("ping"));
        const auto t0 = std::chrono::steady_clock::now();
        c.run_command("admin", bson::make_document(bson::kvp("ping", 1)));
        const auto took = std::chrono::steady_clock::now() - t0;
        QCOMPARE(rec.started_named("ping").size(), std::size_t(4));  // 1 before, then 3 attempts
        QCOMPARE(rec.failed_named("ping"), 2L);  // a CommandFailed for each failed attempt
        QVERIFY2(took >= 295ms && took < 3s, std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()).c_str());
    }

    void max_adaptive_retries_bounds_the_attempts() {
        sim::deployment d(sim::sim_config{});
        d.start();
        for (const int max : {0, 1, 3}) {
            recorder rec;
            trellis::client_settings settings;
            rec.attach(settings);
            settings.backoff_jitter = [] { return 0.0; };
            trellis::client c(with(d.uri(), "maxAdaptiveRetries=" + std::to_string(max)), std::move(settings));
            fail_point(d.members().at(0), bson::make_document(bson::kvp("times", 10)), overload_data("insert"));
            std::vector<std::string> labels;
            // An insert is a retryable write: one retry by that policy, maxAdaptiveRetries once
            // an overload error is seen.
            QCOMPARE(code_of([&] { c["test"]["bp"].insert_one(doc(R"({"x": 1})")); }, &labels), 462);
            QCOMPARE(rec.started_named("insert").size(), std::size_t(max + 1));
            QVERIFY(std::find(labels.begin(), labels.end(), "SystemOverloadedError") != labels.end());
            fail_point_off(d.members().at(0));
        }
    }

    void overload_retry_needs_both_labels_and_the_retry_options() {
        sim::deployment d(sim::sim_config{});
        d.start();
        const auto member = d.members().at(0);
        auto attempts = [&](const std::string& uri_options, const bson::document& data) {
            recorder rec;
            trellis::client_settings settings;
            rec.attach(settings);
            settings.backoff_jitter = [] { return 0.0; };
            trellis::client c(with(d.uri(), uri_options), std::move(settings));
            fail_point(member, times(1), data);
            code_of([&] { c.run_command("admin", bson::make_document(bson::kvp("ping", 1))); });
            fail_point_off(member);
            return rec.started_named("ping").size();
        };
        QCOMPARE(attempts("retryWrites=true", overload_data("ping")), std::size_t(2));
        // SystemOverloadedError alone: not a retryable overload error.
        QCOMPARE(attempts("retryWrites=true", overload_data("ping", false)), std::size_t(1));
        // runCommand is retried only when both retryReads and retryWrites are on.
        QCOMPARE(attempts("retryWrites=false", overload_data("ping")), std::size_t(1));
        QCOMPARE(attempts("retryReads=false", overload_data("ping")), std::size_t(1));

        // A cursor's getMore is a read: retried on its server with retryReads alone.
        recorder rec;
        trellis::client_settings settings;
        rec.attach(settings);
        settings.backoff_jitter = [] { return 0.0; };
        trellis::client c(with(d.uri(), "retryWrites=false"), std::move(settings));
        auto coll = c["test"]["gm"];
        for (int i = 0; i < 3; ++i) coll.insert_one(bson::make_document(bson::kvp("i", i)));
        trellis::find_options o;
        o.batch_size = 2;
        auto cur = coll.find({}, o);
        QVERIFY(cur.next().has_value());
        fail_point(member, times(1), overload_data("getMore"));
        int n = 1;
        while (cur.next()) ++n;
        QCOMPARE(n, 3);
        QCOMPARE(rec.started_named("getMore").size(), std::size_t(2));
        QCOMPARE(rec.failed_named("getMore"), 1L);
    }

    void overload_retargeting_moves_the_retry_to_another_server() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 2;
        sim::deployment d(cfg);
        d.start();
        const auto primary = d.wait_for_primary(10s).value();
        {
            trellis::client seed(d.uri());
            seed["test"]["rt"].insert_one(doc(R"({"x": 1})"));
        }
        fail_point(primary, bson::make_document(bson::kvp("times", 10)), overload_data("find"));
        for (const bool retarget : {false, true}) {
            recorder rec;
            trellis::client_settings settings;
            rec.attach(settings);
            settings.backoff_jitter = [] { return 0.0; };
            trellis::client c(with(d.uri(), std::string("readPreference=primaryPreferred&enableOverloadRetargeting=") +
                                                 (retarget ? "true" : "false")),
                              std::move(settings));
            // The primary must be known for the first attempt to go there (primaryPreferred picks
            // the secondary while it is not), and the secondary for the retry to go elsewhere.
            QTRY_VERIFY_WITH_TIMEOUT(([&] {
                                         const auto t = c.topology();
                                         const auto known = [&](trellis::sdk::server_type type) {
                                             return std::any_of(t->servers.begin(), t->servers.end(),
                                                                [&](const auto& s) { return s.type == type; });
                                         };
                                         return known(trellis::sdk::server_type::rs_primary) &&
                                                known(trellis::sdk::server_type::rs_secondary);
                                     }()),
                                     5000);
            const int code = code_of([&] { (void)c["test"]["rt"].find_one({}); });
            const auto finds = rec.started_named("find");
            if (!retarget) {
                // Every attempt on the primary: the overloaded server stays preferred.
                QCOMPARE(code, 462);
                QCOMPARE(finds.size(), std::size_t(3));
                for (const auto& f : finds) QCOMPARE(f.address, primary);
            } else {
                // The primary is deprioritized: the retry reads from the secondary.
                QCOMPARE(code, 0);
                QCOMPARE(finds.size(), std::size_t(2));
                QCOMPARE(finds[0].address, primary);
                QVERIFY(finds[1].address != primary);
            }
        }
    }

    // ------------------------------------------------------------ SDAM: establishment errors

    // A network error or timeout while connecting or during the hello gets the backpressure
    // labels from the pool: the server keeps its description, the pool is not cleared, and the
    // operation retries as after an overload error.
    void handshake_network_errors_leave_the_server_alone() {
        sim::deployment d(sim::sim_config{});
        d.start();
        const auto member = d.members().at(0);
        struct scenario {
            const char* name;
            bson::document data;
            std::string uri_options;
        };
        std::vector<scenario> scenarios;
        {
            bson::builder b;
            b.open_array("failCommands").append("isMaster").append("hello").close_array();
            b.append("appName", "bp").append("closeConnection", true);
            scenarios.push_back({"network error", b.extract(), ""});
        }
        {
            bson::builder b;
            b.open_array("failCommands").append("isMaster").append("hello").close_array();
            b.append("appName", "bp").append("blockConnection", true).append("blockTimeMS", 700);
            scenarios.push_back({"timeout", b.extract(), "&connectTimeoutMS=250"});
        }
        {
            // The server itself refuses the hello as overloaded.
            bson::builder b;
            b.open_array("failCommands").append("isMaster").append("hello").close_array();
            b.append("appName", "bp").append("errorCode", 462);
            b.open_array("errorLabels").append("SystemOverloadedError").append("RetryableError").close_array();
            scenarios.push_back({"overloaded hello reply", b.extract(), ""});
        }
        for (const auto& s : scenarios) {
            recorder rec;
            trellis::client_settings settings;
            rec.attach(settings);
            settings.backoff_jitter = [] { return 0.0; };
            // Polling, rarely: after discovery no monitor hello can meet the fail point.
            trellis::client c(with(d.uri(), "appname=bp&serverMonitoringMode=poll&heartbeatFrequencyMS=60000" + s.uri_options),
                              std::move(settings));
            QTRY_VERIFY_WITH_TIMEOUT(rec.is_discovered(), 5000);
            fail_point(member, times(2), s.data);
            c.run_command("admin", bson::make_document(bson::kvp("ping", 1)));
            QVERIFY2(rec.cmap_count("ConnectionCheckOutFailed") == 2, s.name);
            QVERIFY2(rec.cmap_count("ConnectionPoolCleared") == 0, s.name);
            QVERIFY2(rec.started_named("ping").size() == 1, s.name);  // no command went out on a failed connection
            std::lock_guard lock(rec.m);
            QVERIFY2(rec.unknown_servers.empty(), s.name);
        }
    }

    // An error without the label while establishing (here a hello refused for another reason)
    // still marks the server Unknown and clears its pool.
    void other_handshake_errors_mark_unknown_and_clear() {
        sim::deployment d(sim::sim_config{});
        d.start();
        recorder rec;
        trellis::client_settings settings;
        rec.attach(settings);
        trellis::client c(with(d.uri(), "appname=plain&serverMonitoringMode=poll&heartbeatFrequencyMS=60000"), std::move(settings));
        QTRY_VERIFY_WITH_TIMEOUT(rec.is_discovered(), 5000);
        bson::builder b;
        b.open_array("failCommands").append("isMaster").append("hello").close_array();
        b.append("appName", "plain").append("errorCode", 8);
        fail_point(d.members().at(0), times(1), b.extract());
        QCOMPARE(code_of([&] { c.run_command("admin", bson::make_document(bson::kvp("ping", 1))); }), -1);
        QTRY_VERIFY_WITH_TIMEOUT(rec.cmap_count("ConnectionPoolCleared") == 1, 2000);
        std::lock_guard lock(rec.m);
        QCOMPARE(rec.unknown_servers.size(), std::size_t(1));
    }
};

QTEST_GUILESS_MAIN(ApiBackpressureTest)
#include "api_backpressure_test.moc"
