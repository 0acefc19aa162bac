// Client-side operations timeout (timeoutMS) against a trellis-sim replica set: a session's
// default_timeout (defaultTimeoutMS) for commit and abort, with_transaction handing its remaining
// time to its callback and its commits, maxTimeMS inside a transaction, no deprecated wtimeout
// while timeoutMS is set, and change streams that stay resumable after a timeout. Timeouts are
// short (150-400 ms) and the checks leave wide margins.
#include <QtTest/QtTest>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/change_stream.hpp"
#include "trellis/client.hpp"
#include "trellis/collection.hpp"
#include "trellis/errors.hpp"
#include "trellis/session.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/transaction_timeout.hpp"
#include "trellis/uri.hpp"
#include "command_recorder.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace sim = trellis::sim;
namespace bson = trellis::bson;
using trellis::errc;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
using trellis_test::doc;
using recorder = trellis_test::command_recorder;

namespace {

// The maxTimeMS of a started command; -1 when it has none.
std::int64_t max_time_of(const bson::document& command) {
    const auto v = command.find("maxTimeMS");
    return v ? v->as_int64() : -1;
}

ms since(steady::time_point t) { return std::chrono::duration_cast<ms>(steady::now() - t); }

std::string range_text(const char* what, std::int64_t v) { return std::string(what) + ": " + std::to_string(v); }

// failCommand on `command` once (or `times`), blocking for `block`.
void block(trellis::client& admin, const char* command, ms block, int times = 1) {
    trellis_test::fail_command(admin,
                               std::string(R"({"failCommands": [")") + command +
                                   R"("], "blockConnection": true, "blockTimeMS": )" + std::to_string(block.count()) + "}",
                               R"({"times": )" + std::to_string(times) + "}");
}

// Runs f, expecting trellis::operation_timeout; false (with a warning) otherwise.
bool times_out(const std::function<void()>& f, ms& took) {
    const auto t0 = steady::now();
    try {
        f();
    } catch (const trellis::operation_timeout& e) {
        took = since(t0);
        return e.code() == errc::operation_timeout;
    } catch (const std::exception& e) {
        took = since(t0);
        qWarning("not a timeout error: %s", e.what());
        return false;
    }
    took = since(t0);
    qWarning("no error");
    return false;
}

bool refused(const std::function<void()>& f, const char* part) {
    try {
        f();
    } catch (const trellis::error& e) {
        if (e.code() == errc::invalid_argument && std::string(e.what()).find(part) != std::string::npos) return true;
        qWarning("other error: %s", e.what());
        return false;
    }
    qWarning("no error");
    return false;
}

}  // namespace

class CsotRsTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> rs_;
    std::unique_ptr<trellis::client> admin_;

    // A client of the replica set with `options` (URI) and a recorder; test.csot holds {_id: 0}.
    trellis::client client_of(recorder& rec, const std::string& options) {
        trellis::client_settings settings;
        rec.attach(settings);
        trellis::client c(trellis::parse_uri(rs_->uri() + "&heartbeatFrequencyMS=500" + (options.empty() ? "" : "&" + options)).options,
                          std::move(settings));
        c.wait_for_discovery();
        return c;
    }

private slots:
    void initTestCase() {
        sim::sim_config c;
        c.topology = sim::topology_kind::replica_set;
        rs_ = std::make_unique<sim::deployment>(c);
        rs_->start();
        QVERIFY(rs_->wait_for_primary(std::chrono::seconds(10)));
        admin_ = std::make_unique<trellis::client>(rs_->uri());
        admin_->wait_for_discovery();
        auto coll = (*admin_)["test"]["csot"];
        coll.drop();
        coll.insert_one(doc(R"({"_id": 0})"));
    }
    void cleanupTestCase() {
        admin_.reset();
        rs_->stop();
    }
    void cleanup() { trellis_test::fail_command_off(*admin_); }

    // default_timeout (defaultTimeoutMS) bounds commit and abort; the operations in between keep
    // their own timeoutMS (here none: no maxTimeMS). Negative is refused.
    void session_default_timeout_bounds_commit_and_abort() {
        recorder rec;
        auto c = client_of(rec, "");
        trellis::session_options so;
        so.default_timeout = ms(150);
        auto s = c.start_session(so);
        auto coll = c["test"]["csot"].with_session(s);
        s.start_transaction();
        coll.insert_one(doc(R"({"_id": 101})"));
        block(*admin_, "commitTransaction", ms(700));
        ms took{};
        QVERIFY(times_out([&] { s.commit_transaction(); }, took));
        QVERIFY2(took >= ms(140) && took < ms(600), std::to_string(took.count()).c_str());
        const auto commit = rec.last("commitTransaction");
        QVERIFY2(max_time_of(commit) > 0 && max_time_of(commit) <= 150, range_text("commit", max_time_of(commit)).c_str());
        QCOMPARE(max_time_of(rec.last("insert")), std::int64_t(-1));

        s.start_transaction();
        coll.insert_one(doc(R"({"_id": 102})"));
        block(*admin_, "abortTransaction", ms(700));
        const auto t0 = steady::now();
        s.abort_transaction();  // its errors (here the timeout) are ignored
        QVERIFY2(since(t0) < ms(600), std::to_string(since(t0).count()).c_str());
        const auto abort = rec.last("abortTransaction");
        QVERIFY2(max_time_of(abort) > 0 && max_time_of(abort) <= 150, range_text("abort", max_time_of(abort)).c_str());

        trellis::session_options bad;
        bad.default_timeout = ms(-1);
        QVERIFY(refused([&] { c.start_session(bad); }, "default_timeout"));
    }

    // Unset, the session inherits the client's timeoutMS; zero means no limit (no maxTimeMS).
    // Asynchronously as well.
    void session_inherits_client_timeout_async() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=8000");
        {
            auto s = c.start_session();
            s.start_transaction();
            c["test"]["csot"].with_session(s).insert_one(doc(R"({"_id": 111})"));
            s.async_commit_transaction(asio::use_future).get();
            const auto t = max_time_of(rec.last("commitTransaction"));
            QVERIFY2(t > 6000 && t <= 8000, range_text("commit", t).c_str());
        }
        {
            trellis::session_options so;
            so.default_timeout = ms(0);
            auto s = c.start_session(so);
            s.start_transaction();
            c["test"]["csot"].with_session(s).insert_one(doc(R"({"_id": 112})"));
            s.async_commit_transaction(asio::use_future).get();
            QCOMPARE(max_time_of(rec.last("commitTransaction")), std::int64_t(-1));
        }
        {
            trellis::session_options so;
            so.default_timeout = ms(150);
            auto s = c.start_session(so);
            s.start_transaction();
            c["test"]["csot"].with_session(s).insert_one(doc(R"({"_id": 113})"));
            block(*admin_, "commitTransaction", ms(700));
            ms took{};
            QVERIFY(times_out([&] { s.async_commit_transaction(asio::use_future).get(); }, took));
            QVERIFY2(took >= ms(140) && took < ms(600), std::to_string(took.count()).c_str());
        }
    }

    // Inside with_transaction the callback's operations in its session get what remains of its
    // timeoutMS (a handle's own timeout gives way), and so does the commit.
    void with_transaction_passes_remaining_time() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=400");
        trellis::handle_options long_wait;
        long_wait.timeout = ms(5000);
        auto s = c.start_session();
        auto coll = c["test"]["csot"].with_options(long_wait).with_session(s);
        int id = 120;
        s.with_transaction([&](trellis::client_session&) {
            std::this_thread::sleep_for(200ms);
            coll.insert_one(bson::make_document(bson::kvp("_id", ++id)));
        });
        const auto insert = max_time_of(rec.last("insert"));
        QVERIFY2(insert > 0 && insert <= 200, range_text("insert", insert).c_str());
        const auto commit = max_time_of(rec.last("commitTransaction"));
        QVERIFY2(commit > 0 && commit <= insert, range_text("commit", commit).c_str());
        // Outside with_transaction the handle's own timeout is back.
        coll.find_one({});
        QVERIFY2(max_time_of(rec.last("find")) > 4000, range_text("find", max_time_of(rec.last("find"))).c_str());

        // Asynchronously: the same.
        rec.clear();
        s.async_with_transaction(
             [&](trellis::client_session&) -> asio::awaitable<void> {
                 asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
                 co_await t.async_wait(asio::use_awaitable);
                 auto d = bson::make_document(bson::kvp("_id", ++id));
                 co_await coll.async_insert_one(std::move(d), asio::use_awaitable);
             },
             std::nullopt, asio::use_future)
            .get();
        const auto async_insert = max_time_of(rec.last("insert"));
        QVERIFY2(async_insert > 0 && async_insert <= 200, range_text("async insert", async_insert).c_str());
    }

    // A timeoutMS of the operation's own inside with_transaction is refused before anything is
    // sent; the session's default_timeout overrides the client's for with_transaction.
    void with_transaction_refuses_operation_timeout() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=100");
        trellis::session_options so;
        so.default_timeout = ms(2000);
        auto s = c.start_session(so);
        auto coll = c["test"]["csot"].with_session(s);
        trellis::insert_one_options own;
        own.timeout = ms(50);
        QVERIFY(refused([&] { s.with_transaction([&](trellis::client_session&) { coll.insert_one(doc(R"({"_id": 130})"), own); }); },
                        "with_transaction"));
        QVERIFY(rec.sent("insert").empty());
        // The session's 2000 ms, not the client's 100: an insert blocked for 250 ms succeeds.
        block(*admin_, "insert", ms(250));
        s.with_transaction([&](trellis::client_session&) { coll.insert_one(doc(R"({"_id": 131})")); });
        QCOMPARE(rec.sent("insert").size(), std::size_t(1));
        const auto t = max_time_of(rec.last("insert"));
        QVERIFY2(t > 1000 && t <= 2000, range_text("insert", t).c_str());
    }

    // A callback's operation that runs out of time: with_transaction throws the timeout error in
    // about timeoutMS; abortTransaction is sent with a fresh timeout.
    void with_transaction_times_out_in_callback() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=300");
        auto s = c.start_session();
        auto coll = c["test"]["csot"].with_session(s);
        block(*admin_, "insert", ms(900));
        ms took{};
        QVERIFY(times_out([&] { s.with_transaction([&](trellis::client_session&) { coll.insert_one(doc(R"({"_id": 140})")); }); },
                          took));
        QVERIFY2(took >= ms(290) && took < ms(1500), std::to_string(took.count()).c_str());
        QVERIFY(rec.wait_for("abortTransaction"));
        const auto abort = max_time_of(rec.last("abortTransaction"));
        QVERIFY2(abort > 200 && abort <= 300, range_text("abort", abort).c_str());
        QCOMPARE(s.transaction(), trellis::transaction_state::aborted);
    }

    // Commit retries (a retryable error every time) go on until the deadline, then the timeout
    // error (not transaction_timeout) ends with_transaction.
    void with_transaction_commit_retries_stop_at_deadline() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=400");
        auto s = c.start_session();
        auto coll = c["test"]["csot"].with_session(s);
        int id = 150;
        bson::builder fp;
        fp.append("configureFailPoint", "failCommand").append("mode", "alwaysOn");
        fp.append("data", doc(R"({"failCommands": ["commitTransaction"], "errorCode": 6})").view());
        admin_->run_command("admin", fp.extract());
        ms took{};
        QVERIFY(times_out(
            [&] {
                s.with_transaction(
                    [&](trellis::client_session&) { coll.insert_one(bson::make_document(bson::kvp("_id", ++id))); });
            },
            took));
        trellis_test::fail_command_off(*admin_);
        QVERIFY2(took >= ms(390) && took < ms(2000), std::to_string(took.count()).c_str());
        const auto commits = rec.sent("commitTransaction").size();
        QVERIFY2(commits >= 3, std::to_string(commits).c_str());
        for (const auto& commit : rec.sent("commitTransaction")) QVERIFY(max_time_of(commit) <= 400);
    }

    // Inside a transaction every command carries a maxTimeMS from timeoutMS (the CSOT spec's
    // tests: the callback's insert, commit, abort); the deprecated maxCommitTimeMS gives way to
    // it. Without timeoutMS: none in between, and commit carries maxCommitTimeMS.
    void transaction_commands_carry_max_time() {
        for (const bool csot : {true, false}) {
            recorder rec;
            auto c = client_of(rec, csot ? "timeoutMS=8000" : "");
            auto s = c.start_session();
            auto coll = c["test"]["csot"].with_session(s);
            trellis::transaction_options to;
            to.max_commit_time = ms(1000);
            s.start_transaction(to);
            coll.insert_one(doc(csot ? R"({"_id": 161})" : R"({"_id": 162})"));
            coll.find_one({});
            s.commit_transaction();
            for (const char* name : {"insert", "find"}) {
                const auto t = max_time_of(rec.last(name));
                QVERIFY2(csot ? t > 6000 && t <= 8000 : t == -1, range_text(name, t).c_str());
            }
            const auto commit = max_time_of(rec.last("commitTransaction"));
            QVERIFY2(csot ? commit > 6000 && commit <= 8000 : commit == 1000, range_text("commit", commit).c_str());
            s.start_transaction();
            coll.find_one({});
            s.abort_transaction();
            const auto abort = max_time_of(rec.last("abortTransaction"));
            QVERIFY2(csot ? abort > 6000 && abort <= 8000 : abort == -1, range_text("abort", abort).c_str());
        }
    }

    // wtimeout is a deprecated option: not sent while timeoutMS is set (even zero), by writes,
    // drop, dropIndexes, create, nor by a retried commit (whose 10 s default it would be).
    void no_wtimeout_with_timeout() {
        for (const char* options : {"timeoutMS=8000&w=majority&wtimeoutMS=1000", "timeoutMS=0&w=majority&wtimeoutMS=1000",
                                    "w=majority&wtimeoutMS=1000"}) {
            const bool csot = std::string(options).find("timeoutMS=") == 0;
            recorder rec;
            auto c = client_of(rec, options);
            auto db = c["csot_wc"];
            auto coll = db.create_collection("wc");
            coll.create_index(doc(R"({"a": 1})"));
            coll.insert_one(doc(R"({"_id": 1})"));
            coll.drop_indexes();
            coll.drop();
            for (const char* name : {"create", "insert", "dropIndexes", "drop"}) {
                const auto sent = rec.last(name);
                const auto wc = sent.find("writeConcern");
                QVERIFY2(wc, name);
                QCOMPARE(std::string(wc->get_document()["w"].get_string()), std::string("majority"));
                const bool has_wtimeout = static_cast<bool>(wc->get_document().find("wtimeout"));
                QVERIFY2(has_wtimeout != csot, (std::string(name) + " " + options).c_str());
            }
            // A commit called again is a retry: w: majority, and wtimeout only without timeoutMS.
            auto s = c.start_session();
            s.start_transaction();
            c["test"]["csot"].with_session(s).find_one({});
            s.commit_transaction();
            s.commit_transaction();
            const auto again = rec.last("commitTransaction");
            QVERIFY2(static_cast<bool>(again["writeConcern"].get_document().find("wtimeout")) != csot, options);
        }
    }
    // A next() that times out leaves the stream valid: the next call resumes with a new aggregate
    // from the resume token (a resume that times out too is thrown, and the call after retries).
    void change_stream_resumes_after_timeout() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=300");
        auto coll = c["test"]["csot_cs"];
        trellis::change_stream_options o;
        o.max_await_time = ms(50);
        auto s = coll.watch({}, o);
        coll.insert_one(doc(R"({"_id": 1})"));
        const auto first = s.next();
        QVERIFY(first.has_value());
        const auto token = s.resume_token();
        QVERIFY(token.has_value());
        block(*admin_, "getMore", ms(900));
        rec.clear();
        ms took{};
        QVERIFY(times_out([&] { s.next(); }, took));
        QVERIFY2(took >= ms(290) && took < ms(900), std::to_string(took.count()).c_str());
        QVERIFY(s.alive());
        QVERIFY(rec.sent("aggregate").empty());
        // The resume's aggregate times out as well: thrown, the stream still valid.
        block(*admin_, "aggregate", ms(900));
        QVERIFY(times_out([&] { s.try_next(); }, took));
        QVERIFY2(took < ms(900), std::to_string(took.count()).c_str());
        QVERIFY(s.alive());
        QCOMPARE(rec.sent("aggregate").size(), std::size_t(1));
        coll.insert_one(doc(R"({"_id": 2})"));
        const auto second = s.async_next(asio::use_future).get();
        QVERIFY(second.has_value());
        QCOMPARE((*second)["documentKey"].get_document()["_id"].as_int64(), std::int64_t(2));
        const auto aggregates = rec.sent("aggregate");
        QCOMPARE(aggregates.size(), std::size_t(2));
        for (const auto& a : aggregates) {
            const auto stage = (*a["pipeline"].get_array().begin()).get_document()["$changeStream"].get_document();
            QVERIFY(stage.find("resumeAfter"));
            QVERIFY(bson::document(stage["resumeAfter"].get_document()) == *token);
            QCOMPARE(max_time_of(a), std::int64_t(-1));  // iteration mode
        }
    }

    // maxAwaitTimeMS must be below timeoutMS (the handle's or the client's).
    void change_stream_refuses_max_await_not_below_timeout() {
        recorder rec;
        auto c = client_of(rec, "timeoutMS=300");
        trellis::change_stream_options o;
        o.max_await_time = ms(300);
        QVERIFY(refused([&] { c["test"]["csot_cs"].watch({}, o); }, "must be less than timeoutMS"));
        trellis::handle_options h;
        h.timeout = ms(1000);
        auto s = c["test"].with_options(h)["csot_cs"].watch({}, o);  // 300 < the handle's 1000
        QVERIFY(s.alive());
    }
};

QTEST_GUILESS_MAIN(CsotRsTest)
#include "csot_rs_test.moc"
