// trellis::client against trellis-sim, one deployment per strategy: standalone CRUD and
// cursors; a replica set (discovery, read preference routing, writes riding through a stepdown
// with retryable writes, server selection timeouts that say why); two mongos with one killed;
// master-slave with a dead slave skipped. Each also checks the SDAM/CMAP/command events it
// relies on.
#include <QtTest/QtTest>

#include <QTemporaryDir>

#include <atomic>
#include <future>
#include <boost/asio.hpp>
#include <mutex>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using namespace std::chrono_literals;
using trellis::errc;

namespace {

std::string with(std::string uri, const std::string& options) {
    const bool has_query = uri.find('?') != std::string::npos;
    const bool has_path = uri.find('/', 10) != std::string::npos;
    return uri + (has_query ? "&" : has_path ? "?" : "/?") + options;
}

using trellis_test::doc;

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const trellis::error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

class ClientTest : public QObject {
    Q_OBJECT

private slots:
    void standalone_crud_and_cursors() {
        sim::deployment d(sim::sim_config{});
        d.start();
        std::vector<std::string> commands;
        std::vector<std::string> lsids;  // per command, the lsid's id as Extended JSON ("" if none)
        std::mutex m;
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e)) {
                std::lock_guard lock(m);
                commands.push_back(s->command_name);
                const auto lsid = s->command.find("lsid");
                lsids.push_back(lsid ? bson::to_json(lsid->get_document()) : "");
            }
        };
        trellis::client c(with(d.uri(), "heartbeatFrequencyMS=500"), std::move(settings));
        auto coll = c["test"]["items"];
        for (int i = 0; i < 25; ++i) coll.insert_one(bson::make_document(bson::kvp("i", i)));
        const auto inserted = coll.insert_one(doc(R"({"_id": "mine", "i": 100})"));
        QCOMPARE(inserted.inserted_id["_id"].get_string(), std::string_view("mine"));

        trellis::find_options o;
        o.batch_size = 10;
        auto cur = coll.find(doc(R"({"i": {"$lt": 25}})"), o);
        int n = 0;
        while (auto d2 = cur.next()) {
            QVERIFY((*d2)["i"].as_int64() < 25);
            ++n;
        }
        QCOMPARE(n, 25);
        {
            std::lock_guard lock(m);
            QCOMPARE(std::count(commands.begin(), commands.end(), std::string("getMore")), 2L);
            // Implicit sessions: every operation carries an lsid, and a cursor's getMores use its find's.
            std::string find_lsid;
            for (std::size_t i = 0; i < commands.size(); ++i) {
                if (commands[i] == "isMaster") continue;  // a pool connection's handshake: never a session
                QVERIFY2(!lsids[i].empty(), commands[i].c_str());
                if (commands[i] == "find") find_lsid = lsids[i];
                if (commands[i] == "getMore") QCOMPARE(lsids[i], find_lsid);
            }
        }
        // limit, and a cursor closed early is killed by the cursor-immediate plugin.
        o.limit = 5;
        o.batch_size = 2;
        auto limited = coll.find({}, o);
        int k = 0;
        while (limited.next()) ++k;
        QCOMPARE(k, 5);
        o.limit.reset();
        // Range-for over a cursor (batches of 2: getMores as it goes).
        std::int64_t sum = 0;
        for (const bson::document& d2 : coll.find(doc(R"({"i": {"$lt": 10}})"), o)) sum += d2["i"].as_int64();
        QCOMPARE(sum, std::int64_t(45));
        auto early = coll.find({}, o);
        QVERIFY(early.next().has_value());
        QVERIFY(early.id() != 0);
        early.close();
        QTRY_VERIFY_WITH_TIMEOUT(([&] {
                                     std::lock_guard lock(m);
                                     return std::count(commands.begin(), commands.end(), std::string("killCursors")) >= 1;
                                 }()),
                                 5000);

        QCOMPARE(coll.find_one(doc(R"({"_id": "mine"})")).value()["i"].as_int64(), std::int64_t(100));
        QVERIFY(!coll.find_one(doc(R"({"_id": "nobody"})")));
        QCOMPARE(coll.delete_many(doc(R"({"i": {"$gte": 20, "$lt": 25}})")).deleted_count, std::int64_t(5));

        // Errors: a duplicate key is typed; ok: 0 is an operation_failure with the server's code.
        try {
            coll.insert_one(doc(R"({"_id": "mine"})"));
            QFAIL("no error");
        } catch (const trellis::operation_failure& e) {
            QVERIFY(e.code() == errc::duplicate_key);
            QCOMPARE(e.server_code(), 11000);
        }
        try {
            c.run_command("admin", doc(R"({"noSuchCommand": 1})"));
            QFAIL("no error");
        } catch (const trellis::operation_failure& e) {
            QVERIFY(e.code() == errc::operation_failure);
            QCOMPARE(e.server_code(), 59);
        }
        // The seeds' properties.
        QVERIFY(c.is_primary());
        QVERIFY(!c.is_mongos());
        QCOMPARE(c.address(), d.members()[0]);
        QCOMPARE(c.max_wire_version(), 21);
        QCOMPARE(c.max_bson_size(), 16 * 1024 * 1024);
        QVERIFY(c.alive());
        const auto names = c.database_names();
        QVERIFY(std::find(names.begin(), names.end(), "test") != names.end());
        QVERIFY(c.server_info().find("version").has_value());
        c["scratch"]["x"].insert_one(bson::make_document(bson::kvp("a", 1)));
        c.drop_database("scratch");
        const auto after_drop = c.database_names();
        QVERIFY(std::find(after_drop.begin(), after_drop.end(), "scratch") == after_drop.end());
        // close_cursor by id, ns and address: killCursors goes to that server.
        trellis::find_options two;
        two.batch_size = 2;
        auto open_cursor = coll.find({}, two);
        QVERIFY(open_cursor.id() != 0);
        const auto kills_before = [&] {
            std::lock_guard lock(m);
            return std::count(commands.begin(), commands.end(), std::string("killCursors"));
        }();
        c.close_cursor(open_cursor.id(), open_cursor.ns(), open_cursor.address());
        QTRY_VERIFY_WITH_TIMEOUT(([&] {
                                     std::lock_guard lock(m);
                                     return std::count(commands.begin(), commands.end(), std::string("killCursors")) > kills_before;
                                 }()),
                                 5000);
        // set_cursor_manager("batched"): a closed cursor's kill waits for the manager's flush,
        // which the client runs once a second.
        c.set_cursor_manager("batched");
        auto batched_cursor = coll.find({}, two);
        QVERIFY(batched_cursor.id() != 0);
        const auto kills_now = [&] {
            std::lock_guard lock(m);
            return std::count(commands.begin(), commands.end(), std::string("killCursors"));
        };
        const auto before_batched = kills_now();
        batched_cursor.close();
        QTRY_VERIFY_WITH_TIMEOUT(kills_now() > before_batched, 5000);
        c.set_cursor_manager("immediate");
        // close(), then use again: it reopens.
        c.close();
        QCOMPARE(coll.find_one(doc(R"({"_id": "mine"})")).value()["i"].as_int64(), std::int64_t(100));
        d.stop();
    }

    void async_forms() {
        sim::deployment d(sim::sim_config{});
        d.start();
        asio::io_context io;
        trellis::client c(io.get_executor(), d.uri());
        auto coll = c["test"]["async"];
        std::optional<bson::document> found;
        std::exception_ptr failure;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                co_await coll.async_insert_one(bson::make_document(bson::kvp("_id", 1), bson::kvp("v", "a")), asio::use_awaitable);
                found = co_await coll.async_find_one(bson::make_document(bson::kvp("_id", 1)), asio::use_awaitable);
                c.close();
            },
            [&](std::exception_ptr e) { failure = e; });
        io.run_for(10s);
        QVERIFY(!failure);
        QVERIFY(found.has_value());
        QCOMPARE((*found)["v"].get_string(), std::string_view("a"));
        // A callback receives the typed exception.
        std::promise<std::exception_ptr> delivered;  // from the client's thread
        trellis::client c2(d.uri());
        c2["test"].async_run_command(doc(R"({"bogus": 1})"), [&](std::exception_ptr e, bson::document) { delivered.set_value(e); });
        auto result = delivered.get_future();
        QVERIFY(result.wait_for(5s) == std::future_status::ready);
        const std::exception_ptr got = result.get();
        QVERIFY(got != nullptr);
        try {
            std::rethrow_exception(got);
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 59);
        }
        d.stop();
    }

    // On an io_context with concurrency hint 1 the client runs without strands (its pools and
    // connections on the executor itself): many operations in flight, cursors with getMores and
    // typed errors behave as on any executor.
    void async_on_a_single_threaded_io_context() {
        sim::deployment d(sim::sim_config{});
        d.start();
        asio::io_context io{1};
        trellis::client c(io.get_executor(), d.uri());
        auto coll = c["test"]["serial"];
        constexpr int n = 16;
        int inserted = 0, found = 0, duplicates = 0, counted = 0, finished = 0;
        std::exception_ptr failure;
        const auto run_until = [&io](const std::function<bool()>& done) {
            const auto until = std::chrono::steady_clock::now() + 10s;
            while (!done() && std::chrono::steady_clock::now() < until) io.run_for(20ms);
        };
        for (int i = 0; i < n; ++i)
            asio::co_spawn(
                io,
                [&, i]() -> asio::awaitable<void> {
                    auto mine = bson::make_document(bson::kvp("_id", i), bson::kvp("v", i * 10));
                    co_await coll.async_insert_one(std::move(mine), asio::use_awaitable);
                    ++inserted;
                    auto again = bson::make_document(bson::kvp("_id", i));
                    try {
                        co_await coll.async_insert_one(std::move(again), asio::use_awaitable);
                    } catch (const trellis::bulk_write_error& e) {
                        if (e.code() == trellis::errc::duplicate_key) ++duplicates;
                    }
                    auto filter = bson::make_document(bson::kvp("_id", i));
                    const auto doc = co_await coll.async_find_one(std::move(filter), asio::use_awaitable);
                    if (doc && (*doc)["v"].as_int64() == i * 10) ++found;
                },
                [&](std::exception_ptr e) {
                    if (e) failure = e;
                    ++finished;
                });
        run_until([&] { return finished == n; });
        QVERIFY(!failure);
        QCOMPARE(inserted, n);
        QCOMPARE(duplicates, n);
        QCOMPARE(found, n);
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                trellis::find_options o;
                o.batch_size = 3;
                auto cursor = co_await coll.async_find(bson::document{}, o, asio::use_awaitable);
                while (co_await cursor.async_next(asio::use_awaitable)) ++counted;
                c.close();
            },
            [&](std::exception_ptr e) {
                failure = e;
                ++finished;
            });
        run_until([&] { return finished == n + 1; });
        QVERIFY(!failure);
        QCOMPARE(counted, n);
        d.stop();
    }

    void dead_server_times_out_with_reasons() {
        asio::io_context io;
        asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
        const auto port = probe.local_endpoint().port();
        probe.close();
        trellis::client c("mongodb://127.0.0.1:" + std::to_string(port) + "/?serverSelectionTimeoutMS=700&connectTimeoutMS=300");
        const auto t0 = std::chrono::steady_clock::now();
        const auto what = error_of([&] { c.run_command("admin", doc(R"({"ping": 1})")); });
        const auto took = std::chrono::steady_clock::now() - t0;
        QVERIFY2(what.find("no suitable server") != std::string::npos && what.find("within 700 ms") != std::string::npos &&
                     what.find("127.0.0.1:" + std::to_string(port)) != std::string::npos,
                 what.c_str());
        QVERIFY(took >= 650ms && took < 3s);
        QVERIFY(!c.alive());
    }

    void replica_set_discovery_routing_and_failover() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        cfg.election_delay = 300ms;
        cfg.members.resize(3);
        cfg.members[2].tags = {{"dc", "east"}};
        sim::deployment d(cfg);
        d.start();
        std::atomic<int> topology_changes{0}, awaited{0}, polled{0};
        trellis::client_settings settings;
        settings.on_sdam = [&](const trellis::sdam_event& e) {
            if (std::holds_alternative<trellis::topology_description_changed_event>(e)) ++topology_changes;
            if (const auto* h = std::get_if<trellis::server_heartbeat_succeeded_event>(&e)) ++(h->awaited ? awaited : polled);
        };
        // Seeded with one member only: the others are discovered.
        const auto seed = "mongodb://" + d.members()[1] + "/?replicaSet=rs0&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000";
        trellis::client c(seed, std::move(settings));
        const auto t = c.wait_for_discovery();
        QCOMPARE(t->type, trellis::sdk::topology_type::replica_set_with_primary);
        QCOMPARE(t->servers.size(), std::size_t(3));
        QVERIFY(topology_changes.load() > 0);
        QCOMPARE(c.address(), d.primary().value());
        QVERIFY(c.is_primary());
        QCOMPARE(c.nodes().size(), std::size_t(3));
        // The sim sends topologyVersion: monitors stream (awaited hellos) after their first check,
        // and the RTT monitor feeds the average.
        QTRY_VERIFY_WITH_TIMEOUT(awaited.load() > 0, 5000);
        QVERIFY(polled.load() >= 3);
        for (const auto& s : c.topology()->servers) QVERIFY(s.round_trip_time.has_value());
        {
            // serverMonitoringMode=poll: no awaited hello at all.
            std::atomic<int> poll_awaited{0}, poll_polled{0};
            trellis::client_settings ps;
            ps.on_sdam = [&](const trellis::sdam_event& e) {
                if (const auto* h = std::get_if<trellis::server_heartbeat_succeeded_event>(&e)) ++(h->awaited ? poll_awaited : poll_polled);
            };
            trellis::client poller(with(seed, "serverMonitoringMode=poll"), std::move(ps));
            poller.wait_for_discovery();
            QTRY_VERIFY_WITH_TIMEOUT(poll_polled.load() >= 6, 5000);  // a second round, 500 ms apart
            QCOMPARE(poll_awaited.load(), 0);
        }

        // Reads by read preference and tag set land where they should.
        auto coll = c["test"]["rs"];
        coll.insert_one(bson::make_document(bson::kvp("x", 1)));
        trellis::read_preference tagged;
        tagged.mode = trellis::read_preference_mode::secondary;
        tagged.tag_sets = {{{"dc", "east"}}};
        const auto hello = c["admin"].run_command(doc(R"({"hello": 1})"), tagged);
        QCOMPARE(hello["me"].get_string(), std::string_view(d.members()[2]));
        QCOMPARE(hello["secondary"].get_bool(), true);
        tagged.tag_sets = {{{"dc", "mars"}}};
        trellis::client quick(with(seed, "serverSelectionTimeoutMS=600"));
        const auto why = error_of([&] { quick["admin"].run_command(doc(R"({"hello": 1})"), tagged); });
        QVERIFY2(why.find("do not match any tag set") != std::string::npos || why.find("tag") != std::string::npos, why.c_str());

        // Writes go on through a stepdown without the caller seeing an error (retryable writes).
        // w: majority, so that an acknowledged write cannot be rolled back with the old primary.
        trellis::write_concern majority;
        majority.w = std::string("majority");
        coll.set_write_concern(majority);
        std::atomic<bool> stop{false};
        std::atomic<int> written{0};
        std::string write_error;
        std::thread writer([&] {
            try {
                for (int i = 0; !stop; ++i) {
                    coll.insert_one(bson::make_document(bson::kvp("seq", i)));
                    ++written;
                }
            } catch (const std::exception& e) {
                write_error = e.what();
            }
        });
        std::this_thread::sleep_for(500ms);
        const auto old_primary = d.primary().value();
        d.step_down(old_primary);
        const auto before = written.load();
        QTRY_VERIFY_WITH_TIMEOUT(written.load() > before + 20 && c.address() != old_primary, 10000);
        stop = true;
        writer.join();
        QVERIFY2(write_error.empty(), write_error.c_str());
        // Nothing acknowledged was lost.
        std::int64_t count = 0;
        for (auto cur = coll.find(doc(R"({"seq": {"$exists": true}})")); cur.next();) ++count;
        QCOMPARE(count, std::int64_t(written.load()));
        d.stop();
    }

    void two_mongos_one_killed() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        sim::deployment d(cfg);
        d.start();
        trellis::client c(with(d.uri(), "heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000&localThresholdMS=1000"));
        const auto t = c.wait_for_discovery();
        QCOMPARE(t->type, trellis::sdk::topology_type::sharded);
        QVERIFY(c.is_mongos());
        auto coll = c["test"]["sharded"];
        coll.insert_one(bson::make_document(bson::kvp("a", 1)));
        d.kill(d.members()[0]);
        // Operations go on through the other router (a retryable write is retried there).
        for (int i = 0; i < 20; ++i) coll.insert_one(bson::make_document(bson::kvp("b", i)));
        QCOMPARE(c.address(), d.members()[1]);
        std::int64_t n = 0;
        for (auto cur = coll.find(); cur.next();) ++n;
        QCOMPARE(n, std::int64_t(21));
        d.stop();
    }

    // Checks that change nothing but the round trip time reach the topology (coalesced, at most
    // 100 ms late) without a ServerDescriptionChangedEvent: the latency window follows them.
    void round_trip_times_reach_the_latency_window() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        sim::deployment d(cfg);
        d.start();
        std::atomic<int> described{0};
        trellis::client_settings settings;
        settings.on_sdam = [&](const trellis::sdam_event& e) {
            if (std::holds_alternative<trellis::server_description_changed_event>(e)) ++described;
        };
        trellis::client c(with(d.uri(), "serverMonitoringMode=poll&heartbeatFrequencyMS=500&localThresholdMS=5"),
                          std::move(settings));
        c.wait_for_discovery();
        const std::string slow = d.members()[0], fast = d.members()[1];
        const auto rtt_of = [&](const std::string& a) {
            for (const auto& s : c.topology()->servers)
                if (s.address == a && s.round_trip_time) return *s.round_trip_time;
            return std::chrono::microseconds::zero();
        };
        const int before = described.load();
        d.set_latency(slow, 40ms);
        QTRY_VERIFY_WITH_TIMEOUT(rtt_of(slow) > 15ms, 6000);
        // Out of the window: what matters is the gap (a loaded machine, or ASan, slows both).
        QVERIFY2(rtt_of(slow) - rtt_of(fast) > 5ms, (std::to_string(rtt_of(fast).count()) + " us fast, " +
                                                      std::to_string(rtt_of(slow).count()) + " us slow").c_str());
        QCOMPARE(described.load(), before);
        // Outside the 5 ms window: every operation goes to the fast router.
        auto admin = c["admin"];
        for (int i = 0; i < 20; ++i) {
            admin.run_command(bson::make_document(bson::kvp("ping", 1)));
            QCOMPARE(c.address(), fast);
        }
        d.stop();
    }

    void master_slave_skips_a_dead_slave() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::master_slave;
        cfg.nodes = 3;  // a master and two slaves
        sim::deployment d(cfg);
        d.start();
        const auto members = d.members();
        auto address = [](const std::string& a) {
            trellis::server_address s;
            s.host = a.substr(0, a.rfind(':'));
            s.port = static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
            return s;
        };
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, trellis::client::master_slave(address(members[0]), {}));
        trellis::client_options options;
        options.heartbeat_frequency = 500ms;
        options.server_selection_timeout = 3000ms;
        options.connect_timeout = 500ms;
        // Which member served a find: the address on its CommandStarted event.
        std::mutex m;
        std::string last_find;
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e); s && s->command_name == "find") {
                std::lock_guard lock(m);
                last_find = s->address;
            }
        };
        auto c = trellis::client::master_slave(address(members[0]), {address(members[1]), address(members[2])}, options,
                                               std::move(settings));
        auto served = [&] {
            std::lock_guard lock(m);
            return last_find;
        };
        // Every member checked once, so that the first slave is known when the first read comes.
        const auto discovered = c.wait_for_discovery();
        for (const auto& sd : discovered->servers) QVERIFY2(sd.type == trellis::sdk::server_type::standalone, sd.address.c_str());
        auto coll = c["test"]["ms"];
        coll.insert_one(bson::make_document(bson::kvp("_id", 1)));
        // Reads go to the first slave (the sim replicates to slaves) and find the write.
        QTRY_VERIFY_WITH_TIMEOUT(coll.find_one(bson::make_document(bson::kvp("_id", 1))).has_value(), 5000);
        QCOMPARE(served(), members[1]);
        d.kill(members[1]);
        // The dead slave is skipped: reads still succeed, from the other one.
        for (int i = 0; i < 5; ++i) {
            QVERIFY(coll.find_one(bson::make_document(bson::kvp("_id", 1))).has_value());
            QCOMPARE(served(), members[2]);
        }
        // Inside a request everything goes to the master.
        c.start_request();
        QVERIFY(coll.find_one(bson::make_document(bson::kvp("_id", 1))).has_value());
        QCOMPARE(served(), members[0]);
        c.end_request();

        // The same deployment described by a TOML file ([topology] master_slave).
        {
            QTemporaryDir dir;
            const QString path = dir.filePath("trellis.toml");
            QFile f(path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            const std::string toml = "[client]\nuri = \"mongodb://" + members[0] + "," + members[1] + "," + members[2] +
                                     "/?heartbeatFrequencyMS=500&serverSelectionTimeoutMS=3000&connectTimeoutMS=500\"\n\n"
                                     "[topology]\nstrategy = \"master_slave\"\nmaster = \"" + members[0] +
                                     "\"\nslaves = [\"" + members[1] + "\", \"" + members[2] + "\"]\n";
            f.write(toml.c_str());
            f.close();
            auto from_file = trellis::client::from_config_file(path.toStdString(), [&] {
                trellis::client_settings s2;
                s2.on_command = [&](const trellis::command_event& e) {
                    if (const auto* s = std::get_if<trellis::command_started_event>(&e); s && s->command_name == "find") {
                        std::lock_guard lock(m);
                        last_find = s->address;
                    }
                };
                return s2;
            }());
            QVERIFY(from_file["test"]["ms"].find_one(bson::make_document(bson::kvp("_id", 1))).has_value());
            QCOMPARE(served(), members[2]);  // members[1] is dead
            QCOMPARE(from_file.topology()->servers.front().address, members[0]);  // the master first
        }
        // All slaves dead: the error names each one's failure.
        d.kill(members[2]);
        const auto why = error_of([&] { coll.find_one({}); });
        QVERIFY2(why.find(members[1]) != std::string::npos || why.find(members[2]) != std::string::npos, why.c_str());
        d.stop();
    }
};

QTEST_GUILESS_MAIN(ClientTest)
#include "client_test.moc"
