// Issue #14 ("lifetime and threading"): handles that outlive their client, blocking calls made
// on a thread that runs the client's executor (event handlers, coroutines), a cursor closed
// while its getMore is in flight, and the implicit session of a failed operation. Each against
// trellis-sim on loopback.
#include <QtTest/QtTest>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

using trellis_test::doc;
bson::document ping() { return bson::make_document(bson::kvp("ping", 1)); }

std::string with(std::string uri, const std::string& options) {
    const bool has_query = uri.find('?') != std::string::npos;
    const bool has_path = uri.find('/', 10) != std::string::npos;
    return uri + (has_query ? "&" : has_path ? "?" : "/?") + options;
}

/// The trellis::errc of what `f` throws; 0 when it throws nothing.
template <class F>
int code_of(F&& f) {
    try {
        f();
    } catch (const trellis::error& e) {
        return e.code().category() == trellis::error_category() ? e.code().value() : -1;
    }
    return 0;
}
int code(errc e) { return static_cast<int>(e); }

/// A deadlock cannot be failed and cleaned up after (the client's thread is stuck): stop.
template <class T>
void must_finish(std::future<T>& f, std::chrono::seconds within, const char* what) {
    if (f.wait_for(within) != std::future_status::ready) qFatal("deadlock: %s did not finish within %llds", what,
                                                                 static_cast<long long>(within.count()));
}

/// The lsids of the commands sent, by command name, in order; and the names of those that succeeded.
struct command_log {
    std::mutex m;
    std::vector<std::pair<std::string, std::string>> started;  // name, lsid (canonical JSON; "" if none)
    std::vector<std::string> succeeded;

    void attach(trellis::client_settings& s) {
        s.on_command = [this](const trellis::command_event& e) {
            std::lock_guard lock(m);
            if (const auto* st = std::get_if<trellis::command_started_event>(&e)) {
                const auto lsid = st->command.find("lsid");
                started.emplace_back(st->command_name,
                                     lsid ? bson::to_json(lsid->get_document(), bson::json_mode::canonical) : "");
            } else if (const auto* ok = std::get_if<trellis::command_succeeded_event>(&e)) {
                succeeded.push_back(ok->command_name);
            }
        };
    }
    std::string last_lsid(std::string_view name) {
        std::lock_guard lock(m);
        for (auto it = started.rbegin(); it != started.rend(); ++it)
            if (it->first == name) return it->second;
        return "";
    }
    std::size_t count(std::string_view name) {
        std::lock_guard lock(m);
        return static_cast<std::size_t>(std::count_if(started.begin(), started.end(), [&](auto& p) { return p.first == name; }));
    }
    std::size_t succeeded_count(std::string_view name) {
        std::lock_guard lock(m);
        return static_cast<std::size_t>(std::count(succeeded.begin(), succeeded.end(), name));
    }
};

}  // namespace

class LifetimeTest : public QObject {
    Q_OBJECT

private slots:
    void handles_outlive_their_client() {
        sim::deployment d(sim::sim_config{});
        d.start();
        std::optional<trellis::database> db;
        std::optional<trellis::collection> coll;
        trellis::cursor open_cursor, other_cursor;
        {
            trellis::client c(d.uri());
            db = c["life"];
            coll = (*db)["handles"];
            coll->drop();
            std::vector<bson::document> three{doc(R"({"i": 1})"), doc(R"({"i": 2})"), doc(R"({"i": 3})")};
            coll->insert_many(std::move(three));
            trellis::find_options o;
            o.batch_size = 1;
            open_cursor = coll->find({}, o);
            QVERIFY(open_cursor.next());
            QVERIFY(open_cursor.id() != 0);  // the server still holds it
            other_cursor = coll->find({}, o);
        }
        // The client (its thread and io_context) is gone: every use says so at once, blocking or
        // async, and letting the handles go is safe.
        QCOMPARE(code_of([&] { coll->find_one({}); }), code(errc::connection_failure));
        QCOMPARE(code_of([&] { db->run_command(ping()); }), code(errc::connection_failure));
        QCOMPARE(code_of([&] { open_cursor.next(); }), code(errc::connection_failure));
        QCOMPARE(code_of([&] { (void)coll->async_find_one({}, asio::use_future); }),
                 code(errc::connection_failure));
        QCOMPARE(code_of([&] { (void)other_cursor.async_next(asio::use_future); }),
                 code(errc::connection_failure));
        open_cursor.close();
        { auto moved = std::move(other_cursor); }
        coll.reset();
        db.reset();  // the last owner of the core: its strand and timers go with the io_context
        d.stop();
    }

    void blocking_calls_in_event_handlers_fail_at_once() {
        sim::deployment d(sim::sim_config{});
        d.start();
        std::atomic<trellis::client*> self{nullptr};
        std::mutex m;
        std::vector<std::string> errors;  // what each handler's blocking call threw
        std::atomic<bool> cmap_tried{false}, sdam_tried{false};
        auto attempt = [&](std::atomic<bool>& tried, auto&& call) {
            auto* c = self.load();
            if (!c || tried.exchange(true)) return;
            std::string what = "(nothing thrown)";
            try {
                call(*c);
            } catch (const trellis::configuration_error& e) {
                what = e.what();
            } catch (const std::exception& e) {
                what = std::string("another error: ") + e.what();
            }
            std::lock_guard lock(m);
            errors.push_back(what);
        };
        trellis::client_settings settings;
        // CMAP events run on a pool's strand, not the client's: the same single thread.
        settings.on_cmap = [&](const trellis::cmap_event& e) {
            if (std::holds_alternative<trellis::connection_checked_out_event>(e))
                attempt(cmap_tried, [](trellis::client& c) { c.run_command("admin", ping()); });
        };
        settings.on_sdam = [&](const trellis::sdam_event& e) {
            if (std::holds_alternative<trellis::server_description_changed_event>(e))
                attempt(sdam_tried, [](trellis::client& c) { c.wait_for_discovery(); });
        };
        // The handlers need the client, which exists only once its constructor returns; the
        // monitor's first check could finish before that and its event would find no client. So
        // the server holds that check's handshake (the first of this application) for 300 ms.
        {
            trellis::client setup(d.uri());
            setup.run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": {"times": 1},
                                               "data": {"failCommands": ["hello", "isMaster", "ismaster"], "appName": "handlers",
                                                        "blockConnection": true, "blockTimeMS": 300}})"));
        }
        trellis::client c(with(d.uri(), "appname=handlers"), std::move(settings));
        self = &c;
        const auto started = std::chrono::steady_clock::now();
        auto op = std::async(std::launch::async, [&] { return c.run_command("admin", ping()); });
        must_finish(op, 20s, "an operation whose CMAP handler makes a blocking call");
        QVERIFY(op.get()["ok"].as_double() == 1.0);
        // A server description change comes with the first check, before or after the operation.
        QTRY_VERIFY_WITH_TIMEOUT(sdam_tried.load(), 5000);
        QVERIFY(std::chrono::steady_clock::now() - started < 5s);
        std::lock_guard lock(m);
        QCOMPARE(errors.size(), std::size_t(2));
        for (const auto& e : errors)
            QVERIFY2(e.find("a blocking Trellis call was made on a thread that runs the client's executor") != std::string::npos,
                     e.c_str());
        self = nullptr;
    }

    void wait_for_discovery_on_the_strand_fails_at_once() {
        sim::deployment d(sim::sim_config{});
        d.start();
        trellis::client c(with(d.uri(), "serverSelectionTimeoutMS=5000"));
        // From a coroutine on the client's executor it used to sleep there until the timeout,
        // holding up the very checks it waited for.
        std::promise<std::string> result;
        auto got = result.get_future();
        const auto started = std::chrono::steady_clock::now();
        asio::post(c.get_executor(), [&] {
            try {
                c.wait_for_discovery();
                result.set_value("(nothing thrown)");
            } catch (const trellis::configuration_error& e) {
                result.set_value(std::string("configuration_error: ") + e.what());
            }
        });
        must_finish(got, 20s, "wait_for_discovery on the client's strand");
        const auto what = got.get();
        QVERIFY2(what.find("configuration_error: wait_for_discovery: a blocking Trellis call") == 0, what.c_str());
        QVERIFY(std::chrono::steady_clock::now() - started < 1s);
        // Off the client's threads it still works.
        const auto t = c.wait_for_discovery();
        QCOMPARE(t->servers.size(), std::size_t(1));
        QVERIFY(t->servers[0].type == trellis::sdk::server_type::standalone);
    }

    void closing_a_cursor_during_its_get_more_keeps_the_session() {
        sim::deployment d(sim::sim_config{});
        d.start();
        command_log log;
        trellis::client_settings settings;
        log.attach(settings);
        trellis::client c(d.uri(), std::move(settings));
        auto coll = c["life"]["getmore"];
        coll.drop();
        std::vector<bson::document> three{doc(R"({"i": 1})"), doc(R"({"i": 2})"), doc(R"({"i": 3})")};
        coll.insert_many(std::move(three));
        trellis::find_options o;
        o.batch_size = 1;
        auto cur = coll.find({}, o);
        QVERIFY(cur.next());
        const auto find_lsid = log.last_lsid("find");
        QVERIFY(!find_lsid.empty());
        // The server holds the next getMore for 500 ms.
        c.run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": {"times": 1},
                                       "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 500}})"));
        auto next = cur.async_next(asio::use_future);
        QTRY_VERIFY_WITH_TIMEOUT(log.count("getMore") == 1, 5000);
        cur.close();
        // While the getMore still uses the find's session, no other operation may get it.
        coll.insert_one(doc(R"({"i": 4})"));
        QVERIFY(log.succeeded_count("getMore") == 0);  // still blocked: the insert really overlapped it
        QVERIFY2(log.last_lsid("insert") != find_lsid, "the insert used the session of the getMore in flight");
        must_finish(next, 10s, "the getMore of a closed cursor");
        QVERIFY(!next.get().has_value());  // closed meanwhile: the end
        // Then the close completes: killCursors for the server's cursor, and the session is free.
        QTRY_VERIFY_WITH_TIMEOUT(log.succeeded_count("killCursors") == 1, 5000);
        coll.insert_one(doc(R"({"i": 5})"));
        QCOMPARE(log.last_lsid("insert"), find_lsid);
    }

    // A client's own runtime lets a blocking caller run its io_context (client/runtime.hpp): the
    // command is sent from the calling thread, with no hand-off to the client's thread and back.
    // Monitoring goes on meanwhile and after.
    void blocking_calls_run_on_the_calling_thread() {
        sim::deployment d(sim::sim_config{});
        d.start();
        std::mutex m;
        std::size_t pings_here = 0, pings_elsewhere = 0;
        std::atomic<int> heartbeats{0};
        const auto me = std::this_thread::get_id();
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* st = std::get_if<trellis::command_started_event>(&e); st && st->command_name == "ping") {
                std::lock_guard lock(m);
                ++(std::this_thread::get_id() == me ? pings_here : pings_elsewhere);
            }
        };
        settings.on_sdam = [&](const trellis::sdam_event& e) {
            if (std::holds_alternative<trellis::server_heartbeat_succeeded_event>(e)) ++heartbeats;
        };
        trellis::client c(with(d.uri(), "heartbeatFrequencyMS=500"), std::move(settings));
        c.run_command("admin", ping());
        const auto before = heartbeats.load();
        const auto until = std::chrono::steady_clock::now() + 1500ms;
        int pings = 0;
        while (std::chrono::steady_clock::now() < until) {
            QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);
            ++pings;
        }
        const auto during = heartbeats.load() - before;
        {
            std::lock_guard lock(m);
            // Back to back, the caller keeps the io_context; the client's thread takes it back
            // only when a caller was away for longer than the linger (a preempted test thread).
            QVERIFY2(pings_here * 2 > pings_elsewhere + pings_here,
                     qPrintable(QString("%1 pings sent from the caller, %2 from another thread").arg(pings_here).arg(pings_elsewhere)));
        }
        QVERIFY2(during >= 1, qPrintable(QString("%1 heartbeats in 1.5 s of back-to-back blocking calls (%2)").arg(during).arg(pings)));
        // Left alone, the client's own thread runs the monitors again.
        const auto idle = heartbeats.load();
        QTRY_VERIFY_WITH_TIMEOUT(heartbeats.load() > idle, 3000);
    }

    // Blocking calls from several threads at once share the io_context: whoever holds it runs
    // the others' operations, and hands it over when its own is done.
    void blocking_calls_from_many_threads() {
        sim::deployment d(sim::sim_config{});
        d.start();
        trellis::client c(d.uri());
        auto coll = c["life"]["threads"];
        coll.drop();
        constexpr int threads = 8, each = 150;
        std::atomic<int> failures{0};
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t)
            workers.emplace_back([&, t] {
                try {
                    for (int i = 0; i < each; ++i) {
                        coll.insert_one(bson::make_document(bson::kvp("_id", t * each + i)));
                        auto got = coll.find_one(bson::make_document(bson::kvp("_id", t * each + i)));
                        if (!got || (*got)["_id"].as_int64() != t * each + i) ++failures;
                    }
                } catch (...) {
                    ++failures;
                }
            });
        // An async operation from yet another thread completes meanwhile.
        auto async_count = c["life"]["threads"].async_count_documents({}, trellis::count_options{}, asio::use_future);
        must_finish(async_count, 20s, "an async operation beside blocking callers");
        for (auto& w : workers) w.join();
        QCOMPARE(failures.load(), 0);
        QCOMPARE(coll.count_documents({}), std::int64_t(threads * each));
    }

    // Blocking callers that wait for their replies on their own sockets (the I/O a blocking call
    // does on its thread) keep their operations' deadlines: each times out on time while the
    // server holds its reply, and the client goes on serving the others.
    void callers_waiting_on_their_sockets_time_out_on_time() {
        sim::deployment d(sim::sim_config{});
        d.start();
        trellis::client c(with(d.uri(), "timeoutMS=500"));
        c.run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": {"times": 4},
                                      "data": {"failCommands": ["count"], "blockConnection": true, "blockTimeMS": 3000}})"));
        std::atomic<int> timed_out{0}, pings{0};
        std::vector<std::chrono::milliseconds> took(4);
        std::vector<std::thread> workers;
        const auto t0 = std::chrono::steady_clock::now();
        for (int t = 0; t < 4; ++t)
            workers.emplace_back([&, t] {
                try {
                    c.run_command("life", doc(R"({"count": "x"})"));
                } catch (const trellis::error& e) {
                    if (e.code() == errc::operation_timeout) ++timed_out;
                    else qWarning("%s", e.what());
                }
                took[static_cast<std::size_t>(t)] =
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
            });
        std::thread other([&] {  // meanwhile, other blocking calls go through
            while (std::chrono::steady_clock::now() - t0 < 400ms)
                if (c.run_command("admin", ping())["ok"].as_double() == 1.0) ++pings;
        });
        for (auto& w : workers) w.join();
        other.join();
        QCOMPARE(timed_out.load(), 4);
        for (const auto ms : took) QVERIFY2(ms >= 450ms && ms < 1500ms, std::to_string(ms.count()).c_str());
        QVERIFY2(pings.load() > 10, std::to_string(pings.load()).c_str());
    }

    // A completion handler that throws on the client's own io_context is the application's bug:
    // it goes to on_callback_failure, on the client's thread and on a blocking caller's alike,
    // and no blocking call gets another's exception.
    void a_throwing_completion_handler_reaches_no_blocking_call() {
        sim::deployment d(sim::sim_config{});
        d.start();
        std::mutex m;
        std::vector<trellis::callback_failure> failures;
        trellis::client_settings settings;
        settings.on_callback_failure = [&](const trellis::callback_failure& f) {
            std::lock_guard lock(m);
            failures.push_back(f);
        };
        trellis::client c(d.uri(), std::move(settings));
        thread_local bool on_caller = false;
        std::atomic<int> handled{0}, handled_by_callers{0};
        const auto throw_from_handlers = [&](int n) {
            const int target = handled.load() + n;
            for (int i = 0; i < n; ++i) {
                c.async_run_command("admin", ping(), [&, i](std::exception_ptr e, trellis::bson::document) {
                    ++handled;
                    if (on_caller) ++handled_by_callers;
                    if (e) std::rethrow_exception(e);
                    throw std::runtime_error("handler " + std::to_string(i) + " threw");
                });
                std::this_thread::sleep_for(1ms);
            }
            const auto deadline = std::chrono::steady_clock::now() + 10s;
            while (handled.load() < target && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        };
        throw_from_handlers(20);  // nobody else: the client's thread runs them
        QCOMPARE(handled.load(), 20);
        std::atomic<bool> stop{false};
        std::atomic<int> pings{0}, caller_failures{0};
        std::vector<std::thread> callers;
        for (int t = 0; t < 3; ++t)
            callers.emplace_back([&] {
                on_caller = true;
                try {
                    while (!stop)
                        if (c.run_command("admin", ping())["ok"].as_double() == 1.0) ++pings;
                } catch (const std::exception& e) {
                    ++caller_failures;
                    qWarning("a blocking call failed: %s", e.what());
                }
            });
        throw_from_handlers(100);  // callers hold the baton most of the time: they run most of them
        stop = true;
        for (auto& t : callers) t.join();
        QCOMPARE(handled.load(), 120);
        qInfo("%d of 100 handlers ran on a blocking caller; %d pings", handled_by_callers.load(), pings.load());
        QVERIFY2(handled_by_callers.load() > 0, "no handler ran on a blocking caller");
        QCOMPARE(caller_failures.load(), 0);
        QVERIFY2(pings.load() >= 3, std::to_string(pings.load()).c_str());
        std::lock_guard lock(m);
        QCOMPARE(failures.size(), std::size_t{120});
        for (const auto& f : failures) {
            QVERIFY2(f.where.find("completion handler") != std::string::npos, f.where.c_str());
            QVERIFY2(f.what.find(" threw") != std::string::npos, f.what.c_str());
        }
        QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);  // the client carries on
    }

    void a_failed_operation_returns_its_session() {
        sim::deployment d(sim::sim_config{});
        d.start();
        command_log log;
        trellis::client_settings settings;
        log.attach(settings);
        trellis::client c(d.uri(), std::move(settings));
        auto coll = c["life"]["failures"];
        coll.drop();
        // A command error, then a write error: each operation's implicit session goes back to the
        // pool, so the next operation takes the same lsid (the pool is LIFO).
        QCOMPARE(code_of([&] { c.run_command("test", doc(R"({"bogus": 1})")); }), code(errc::operation_failure));
        const auto first = log.last_lsid("bogus");
        QVERIFY(!first.empty());
        coll.insert_one(doc(R"({"_id": 1})"));
        QCOMPARE(log.last_lsid("insert"), first);
        QCOMPARE(code_of([&] { coll.insert_one(doc(R"({"_id": 1})")); }), code(errc::duplicate_key));
        QCOMPARE(log.last_lsid("insert"), first);
        c.run_command("test", ping());
        QCOMPARE(log.last_lsid("ping"), first);
    }
};

QTEST_GUILESS_MAIN(LifetimeTest)
#include "lifetime_test.moc"
