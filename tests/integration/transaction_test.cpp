// Transactions against trellis-sim: what a transaction's commands carry, commit making its writes
// visible and abort discarding them, the state machine and its errors, with_transaction's retries
// (failCommand) and its time limit, the async faces, a standalone's refusal, mongos pinning on a
// sharded sim, a connection pinned behind a load balancer, and write conflicts.
#include <QtTest/QtTest>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio.hpp>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/session.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/transaction_timeout.hpp"
#include "client/session_knobs.hpp"
#include "command_recorder.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using trellis::errc;
using trellis::transaction_state;

namespace {

using trellis_test::doc;

using recorder = trellis_test::command_recorder;

template <class F>
void expect_invalid_argument(F&& f, std::string_view text) {
    try {
        f();
        QFAIL("expected errc::invalid_argument");
    } catch (const trellis::error& e) {
        QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
        QVERIFY2(std::string_view(e.what()).find(text) != std::string_view::npos, e.what());
    }
}

// fail_command reaches the server `c` sends run_command to (a replica set's primary, or one
// mongos through a direct client).
using trellis_test::fail_command;

std::int64_t count(trellis::collection c) { return c.count_documents({}); }

template <class F>
trellis::operation_failure expect_failure(F&& f) {
    try {
        f();
    } catch (const trellis::operation_failure& e) {
        return e;
    }
    throw std::runtime_error("expected an operation_failure");
}

// A check-in reaches the pool (and its event the handler) after the operation returned.
template <class F>
bool eventually(F&& f) {
    for (int i = 0; i < 200 && !f(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return f();
}

// Commands and CMAP events of a client behind the load balancer.
struct lb_recorder {
    std::mutex m;
    std::vector<trellis::command_started_event> started;
    std::vector<trellis::cmap_event> cmap;
    trellis::client_settings settings() {
        trellis::client_settings s;
        s.on_command = [this](const trellis::command_event& e) {
            if (const auto* x = std::get_if<trellis::command_started_event>(&e)) {
                std::lock_guard lock(m);
                started.push_back(*x);
            }
        };
        s.on_cmap = [this](const trellis::cmap_event& e) {
            std::lock_guard lock(m);
            cmap.push_back(e);
        };
        return s;
    }
    // The connections the commands of that name went over, in order.
    std::vector<std::int64_t> connections(std::string_view name) {
        std::lock_guard lock(m);
        std::vector<std::int64_t> out;
        for (const auto& e : started)
            if (e.command_name == name) out.push_back(e.connection_id);
        return out;
    }
    // Check-outs and check-ins of one connection.
    std::pair<int, int> checked(std::int64_t id) {
        std::lock_guard lock(m);
        std::pair<int, int> out{0, 0};
        for (const auto& e : cmap) {
            if (const auto* o = std::get_if<trellis::connection_checked_out_event>(&e); o && o->connection_id == id) ++out.first;
            if (const auto* i = std::get_if<trellis::connection_checked_in_event>(&e); i && i->connection_id == id) ++out.second;
        }
        return out;
    }
};

}  // namespace

class TransactionTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> rs_;
    recorder rec_;
    std::unique_ptr<trellis::client> client_;

private slots:
    void initTestCase() {
        sim::sim_config c;
        c.topology = sim::topology_kind::replica_set;
        c.nodes = 3;
        rs_ = std::make_unique<sim::deployment>(c);
        rs_->start();
        QVERIFY(rs_->wait_for_primary(std::chrono::seconds(10)));
        // Frequent checks: after a network error the primary is found again quickly.
        client_ = std::make_unique<trellis::client>(rs_->uri() + "&heartbeatFrequencyMS=500", rec_.settings());
        client_->wait_for_discovery();
    }
    void cleanupTestCase() {
        client_.reset();
        rs_->stop();
    }

    // Writes in a transaction are invisible outside it until the commit; the commands carry the
    // transaction's fields as the spec says.
    void commit_makes_writes_visible() {
        auto base = (*client_)["txn"]["commit"];
        base.drop();
        base.insert_one(doc(R"({"_id": 0})"));  // the collection exists before the transaction
        auto s = client_->start_session();
        QCOMPARE(s.transaction(), transaction_state::none);
        auto c = base.with_session(s);
        rec_.clear();
        s.start_transaction();
        QCOMPARE(s.transaction(), transaction_state::starting);
        c.insert_one(doc(R"({"_id": 1})"));
        QCOMPARE(s.transaction(), transaction_state::in_progress);
        c.insert_one(doc(R"({"_id": 2})"));
        QCOMPARE(c.count_documents({}), std::int64_t(3));  // the transaction sees its own writes
        QCOMPARE(count(base), std::int64_t(1));              // others do not
        s.commit_transaction();
        QCOMPARE(s.transaction(), transaction_state::committed);
        QCOMPARE(count(base), std::int64_t(3));

        const auto inserts = rec_.sent("insert");
        QCOMPARE(inserts.size(), std::size_t(2));
        const std::int64_t txn = inserts[0]["txnNumber"].as_int64();
        QCOMPARE(inserts[0]["startTransaction"].get_bool(), true);
        QCOMPARE(inserts[0]["autocommit"].get_bool(), false);
        QVERIFY(!inserts[0].view().find("writeConcern"));
        QVERIFY(!inserts[1].view().find("startTransaction"));
        QVERIFY(!inserts[1].view().find("readConcern"));
        QCOMPARE(inserts[1]["txnNumber"].as_int64(), txn);
        const auto aggregate = rec_.sent("aggregate").front();
        QCOMPARE(aggregate["txnNumber"].as_int64(), txn);
        QVERIFY(!aggregate.view().find("readConcern"));
        const auto commits = rec_.sent("commitTransaction");
        QCOMPARE(commits.size(), std::size_t(1));
        QCOMPARE(commits[0]["txnNumber"].as_int64(), txn);
        QCOMPARE(commits[0]["autocommit"].get_bool(), false);
        QCOMPARE(commits[0]["$db"].get_string(), std::string_view("admin"));
        QVERIFY(!commits[0].view().find("writeConcern"));

        // A second transaction: the next txnNumber; the first command carries the transaction's
        // read concern and, the session being causally consistent, afterClusterTime.
        rec_.clear();
        trellis::transaction_options o;
        o.read_concern = trellis::read_concern{"majority"};
        o.write_concern = trellis::write_concern{};
        o.write_concern->w = std::int32_t(1);
        s.start_transaction(o);
        c.find_one(doc(R"({"_id": 1})"));
        c.delete_one(doc(R"({"_id": 1})"));
        s.commit_transaction();
        const auto find = rec_.sent("find").front();
        QCOMPARE(find["txnNumber"].as_int64(), txn + 1);
        QCOMPARE(find["readConcern"].get_document()["level"].get_string(), std::string_view("majority"));
        QVERIFY(find["readConcern"].get_document().find("afterClusterTime"));
        QCOMPARE(rec_.sent("commitTransaction").front()["writeConcern"].get_document()["w"].as_int64(), std::int64_t(1));
        QCOMPARE(count(base), std::int64_t(2));

        // Committing again is a retry: w: majority and wtimeout 10 s.
        rec_.clear();
        s.commit_transaction();
        const auto retried = rec_.sent("commitTransaction");  // the view below points into it
        const auto again = retried.front()["writeConcern"].get_document();
        QCOMPARE(again["w"].get_string(), std::string_view("majority"));
        QCOMPARE(again["wtimeout"].as_int64(), std::int64_t(10000));
    }

    // Abort discards the transaction's writes, the collection it created included.
    void abort_discards() {
        auto base = (*client_)["txn"]["abort"];
        base.drop();
        auto s = client_->start_session();
        auto c = base.with_session(s);
        s.start_transaction();
        c.insert_one(doc(R"({"_id": 1})"));
        c.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"x": 1}})"));
        QCOMPARE(c.count_documents({}), std::int64_t(1));
        rec_.clear();
        s.abort_transaction();
        QCOMPARE(s.transaction(), transaction_state::aborted);
        QCOMPARE(rec_.sent("abortTransaction").size(), std::size_t(1));
        QCOMPARE(count(base), std::int64_t(0));
        const auto names = (*client_)["txn"].list_collection_names();
        QVERIFY(std::find(names.begin(), names.end(), "abort") == names.end());
        // An operation after the transaction runs outside it.
        c.insert_one(doc(R"({"_id": 2})"));
        QCOMPARE(s.transaction(), transaction_state::none);
        QVERIFY(!rec_.sent("insert").back().view().find("autocommit"));
        QCOMPARE(count(base), std::int64_t(1));
    }

    // The spec's state machine: each misuse is a typed error saying what was wrong.
    void state_errors() {
        auto s = client_->start_session();
        expect_invalid_argument([&] { s.commit_transaction(); }, "No transaction started");
        expect_invalid_argument([&] { s.abort_transaction(); }, "No transaction started");
        s.start_transaction();
        expect_invalid_argument([&] { s.start_transaction(); }, "Transaction already in progress");
        // Nothing ran: commit and abort send nothing.
        rec_.clear();
        s.commit_transaction();
        QCOMPARE(s.transaction(), transaction_state::committed);
        s.commit_transaction();  // again: still nothing to send
        QVERIFY(rec_.sent("commitTransaction").empty());
        expect_invalid_argument([&] { s.abort_transaction(); }, "Cannot call abortTransaction after calling commitTransaction");
        s.start_transaction();
        s.abort_transaction();
        QVERIFY(rec_.sent("abortTransaction").empty());
        expect_invalid_argument([&] { s.abort_transaction(); }, "Cannot call abortTransaction twice");
        expect_invalid_argument([&] { s.commit_transaction(); }, "Cannot call commitTransaction after calling abortTransaction");
        // An unacknowledged write concern, a read preference other than primary.
        trellis::transaction_options w0;
        w0.write_concern = trellis::write_concern{};
        w0.write_concern->w = std::int32_t(0);
        expect_invalid_argument([&] { s.start_transaction(w0); }, "unacknowledged");
        trellis::transaction_options secondary;
        secondary.read_preference = trellis::read_preference{};
        secondary.read_preference->mode = trellis::read_preference_mode::secondary;
        s.start_transaction(secondary);
        auto c = (*client_)["txn"]["state"].with_session(s);
        expect_invalid_argument([&] { c.find_one({}); }, "read preference in a transaction must be primary");
        QCOMPARE(s.transaction(), transaction_state::starting);  // nothing was sent
        c.insert_one(doc(R"({"x": 1})"));                        // a write runs (on the primary)
        QCOMPARE(s.transaction(), transaction_state::in_progress);
        s.abort_transaction();
        // A client-side refusal (an update without operators) leaves the transaction starting.
        s.start_transaction();
        expect_invalid_argument([&] { c.update_one(doc(R"({"_id": 1})"), doc(R"({"x": 1})")); }, "");
        QCOMPARE(s.transaction(), transaction_state::starting);
        // run_command in a transaction: the transaction's fields added, its own readConcern refused.
        auto db = (*client_)["txn"].with_session(s);
        expect_invalid_argument([&] { db.run_command(doc(R"({"find": "state", "readConcern": {"level": "local"}})")); },
                                "Cannot set read concern after starting a transaction");
        rec_.clear();
        db.run_command(doc(R"({"find": "state"})"));
        const auto find = rec_.sent("find").front();
        QCOMPARE(find["startTransaction"].get_bool(), true);
        QCOMPARE(find["autocommit"].get_bool(), false);
        QCOMPARE(s.transaction(), transaction_state::in_progress);
        s.abort_transaction();
        s.end_session();
        expect_invalid_argument([&] { s.start_transaction(); }, "has ended");
    }

    // A server error inside the transaction: not retried (even a retryable code), the server
    // aborts the transaction, and its commit answers NoSuchTransaction, a transient error.
    void errors_inside_a_transaction() {
        auto base = (*client_)["txn"]["errors"];
        base.drop();
        auto s = client_->start_session();
        auto c = base.with_session(s);
        s.start_transaction();
        c.insert_one(doc(R"({"_id": 1})"));
        fail_command(*client_, R"({"failCommands": ["insert"], "closeConnection": true})");
        rec_.clear();
        try {
            c.insert_one(doc(R"({"_id": 2})"));
            QFAIL("expected a network error");
        } catch (const trellis::operation_failure& e) {
            QVERIFY2(e.has_error_label("TransientTransactionError"), e.what());
            QVERIFY(!e.has_error_label("RetryableWriteError"));
        }
        QCOMPARE(rec_.sent("insert").size(), std::size_t(1));  // no retry in a transaction
        // A duplicate key aborts the transaction on the server.
        try {
            c.insert_one(doc(R"({"_id": 1})"));
            QFAIL("expected a duplicate key error");
        } catch (const trellis::operation_failure& e) {
            QVERIFY(!e.has_error_label("TransientTransactionError"));
        }
        try {
            s.commit_transaction();
            QFAIL("expected NoSuchTransaction");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 251);
            QVERIFY2(e.has_error_label("TransientTransactionError"), e.what());
            QVERIFY(!e.has_error_label("UnknownTransactionCommitResult"));
        }
        QCOMPARE(count(base), std::int64_t(0));
    }

    // Commit is retried once on a retryable error (w: majority); when the retry fails too the
    // error says the outcome is unknown.
    void commit_retry_and_unknown_result() {
        auto base = (*client_)["txn"]["commit_retry"];
        base.drop();
        auto s = client_->start_session();
        auto c = base.with_session(s);
        s.start_transaction();
        c.insert_one(doc(R"({"_id": 1})"));
        fail_command(*client_, R"({"failCommands": ["commitTransaction"], "errorCode": 262})", R"({"times": 2})");
        rec_.clear();
        try {
            s.commit_transaction();
            QFAIL("expected ExceededTimeLimit");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 262);
            QVERIFY2(e.has_error_label("UnknownTransactionCommitResult"), e.what());
        }
        const auto commits = rec_.sent("commitTransaction");
        QCOMPARE(commits.size(), std::size_t(2));
        QVERIFY(!commits[0].view().find("writeConcern"));
        QCOMPARE(commits[1]["writeConcern"].get_document()["w"].get_string(), std::string_view("majority"));
        QCOMPARE(s.transaction(), transaction_state::committed);
        s.commit_transaction();  // the application's retry succeeds
        QCOMPARE(count(base), std::int64_t(1));
    }

    // with_transaction runs the callback again after a transient error, and the commit again
    // after an unknown commit result.
    void with_transaction_retries() {
        auto base = (*client_)["txn"]["convenient"];
        base.drop();
        base.insert_one(doc(R"({"_id": 0})"));
        auto s = client_->start_session();
        auto c = base.with_session(s);
        fail_command(*client_, R"({"failCommands": ["insert"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]})");
        int calls = 0;
        rec_.clear();
        s.with_transaction([&](trellis::client_session&) {
            ++calls;
            c.insert_one(doc(R"({"_id": 1})"));
        });
        QCOMPARE(calls, 2);
        QCOMPARE(rec_.sent("abortTransaction").size(), std::size_t(1));
        QCOMPARE(count(base), std::int64_t(2));

        // The commit fails twice (its own retry included) with a retryable error: committed by
        // with_transaction's retry of the commit, the callback running once.
        fail_command(*client_, R"({"failCommands": ["commitTransaction"], "errorCode": 262})", R"({"times": 2})");
        calls = 0;
        rec_.clear();
        s.with_transaction([&](trellis::client_session&) {
            ++calls;
            c.insert_one(doc(R"({"_id": 2})"));
        });
        QCOMPARE(calls, 1);
        QCOMPARE(rec_.sent("commitTransaction").size(), std::size_t(3));
        QCOMPARE(count(base), std::int64_t(3));

        // Any other error: aborted and thrown, not retried.
        calls = 0;
        try {
            s.with_transaction([&](trellis::client_session&) {
                ++calls;
                c.insert_one(doc(R"({"_id": 3})"));
                throw std::runtime_error("the application changed its mind");
            });
            QFAIL("expected the callback's error");
        } catch (const std::runtime_error& e) {
            QCOMPARE(std::string(e.what()), std::string("the application changed its mind"));
        }
        QCOMPARE(calls, 1);
        QCOMPARE(s.transaction(), transaction_state::aborted);
        QCOMPARE(count(base), std::int64_t(3));
    }

    // The async faces: commit and abort with any token, with_transaction with a coroutine.
    void async_faces() {
        auto base = (*client_)["txn"]["async"];
        base.drop();
        base.insert_one(doc(R"({"_id": 0})"));
        auto s = client_->start_session();
        auto c = base.with_session(s);
        s.start_transaction();
        c.async_insert_one(doc(R"({"_id": 1})"), asio::use_future).get();
        s.async_abort_transaction(asio::use_future).get();
        QCOMPARE(count(base), std::int64_t(1));
        s.start_transaction();
        c.async_insert_one(doc(R"({"_id": 2})"), asio::use_future).get();
        std::promise<std::exception_ptr> done;
        s.async_commit_transaction([&](std::exception_ptr e) { done.set_value(e); });
        QVERIFY(!done.get_future().get());
        QCOMPARE(count(base), std::int64_t(2));

        fail_command(*client_, R"({"failCommands": ["insert"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]})");
        std::atomic<int> calls{0};
        s.async_with_transaction(
             [&](trellis::client_session&) -> asio::awaitable<void> {
                 ++calls;
                 bson::document d = doc(R"({"_id": 3})");  // named: see GCC 12 and co_await temporaries
                 co_await c.async_insert_one(std::move(d), asio::use_awaitable);
             },
             std::nullopt, asio::use_future)
            .get();
        QCOMPARE(calls.load(), 2);
        QCOMPARE(s.transaction(), transaction_state::committed);
        QCOMPARE(count(base), std::int64_t(3));
    }

    // Ending a session with a transaction in progress aborts it.
    void end_session_aborts() {
        auto base = (*client_)["txn"]["end"];
        base.drop();
        base.insert_one(doc(R"({"_id": 0})"));
        rec_.clear();
        {
            auto s = client_->start_session();
            s.start_transaction();
            base.with_session(s).insert_one(doc(R"({"_id": 1})"));
        }
        for (int i = 0; i < 100 && rec_.sent("abortTransaction").empty(); ++i) QTest::qWait(10);
        QCOMPARE(rec_.sent("abortTransaction").size(), std::size_t(1));
        QCOMPARE(count(base), std::int64_t(1));
    }

    // A standalone answers a transaction as mongod does.
    void standalone_refuses() {
        sim::deployment single{sim::sim_config{}};
        single.start();
        trellis::client c(single.uri());
        auto s = c.start_session();
        s.start_transaction();
        try {
            c["txn"]["single"].with_session(s).insert_one(doc(R"({"_id": 1})"));
            QFAIL("expected IllegalOperation");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 20);
            QVERIFY2(std::string_view(e.what()).find("Transaction numbers are only allowed on a replica set member or mongos") !=
                         std::string_view::npos,
                     e.what());
        }
        s.abort_transaction();
        single.stop();
    }

    // Sharded: the transaction's commands go to the mongos of its first command; commit and
    // abort carry the recovery token; a transient error unpins.
    void mongos_pinning() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        sim::deployment sharded(cfg);
        sharded.start();
        recorder rec;
        trellis::client c(sharded.uri() + (sharded.uri().find('?') == std::string::npos ? "?" : "&") + "localThresholdMS=1000",
                          rec.settings());
        c.wait_for_discovery();
        QCOMPARE(c.topology()->servers.size(), std::size_t(2));
        auto base = c["txn"]["pinned"];
        base.insert_one(doc(R"({"_id": 0})"));
        auto s = c.start_session();
        auto coll = base.with_session(s);
        s.start_transaction();
        QVERIFY(!s.pinned_server());
        rec.clear();
        for (int i = 1; i <= 8; ++i) coll.insert_one(bson::make_document(bson::kvp("_id", i)));
        QVERIFY(s.pinned_server());
        const std::string pinned = *s.pinned_server();
        for (const auto& a : rec.addresses("insert")) QCOMPARE(a, pinned);
        s.commit_transaction();
        QCOMPARE(rec.addresses("commitTransaction").front(), pinned);
        QVERIFY(rec.sent("commitTransaction").front()["recoveryToken"].type() == bson::type::document);
        QVERIFY(s.pinned_server());  // commit does not unpin (it may be called again)
        QCOMPARE(count(base), std::int64_t(9));

        // A network error on the pinned mongos: transient, unpinned; abort still goes out.
        s.start_transaction();
        QVERIFY(!s.pinned_server());  // a new transaction after a commit starts unpinned
        coll.insert_one(doc(R"({"_id": 10})"));
        QVERIFY(s.pinned_server());
        {
            trellis::client direct("mongodb://" + *s.pinned_server() + "/?directConnection=true");
            fail_command(direct, R"({"failCommands": ["insert"], "closeConnection": true})");
        }
        try {
            coll.insert_one(doc(R"({"_id": 11})"));
            QFAIL("expected a network error");
        } catch (const trellis::operation_failure& e) {
            QVERIFY2(e.has_error_label("TransientTransactionError"), e.what());
        }
        QVERIFY(!s.pinned_server());
        rec.clear();
        s.abort_transaction();
        QVERIFY(rec.sent("abortTransaction").front()["recoveryToken"].type() == bson::type::document);
        QCOMPARE(count(base), std::int64_t(9));
        s.end_session();
        sharded.stop();
    }

    // with_transaction's time limit (shortened here from 120 s): the error it throws names the
    // limit and carries the last error's code and labels.
    void with_transaction_time_limit() {
        auto base = (*client_)["txn"]["limit"];
        base.drop();
        base.insert_one(doc(R"({"_id": 0})"));
        auto s = client_->start_session();
        trellis::detail::set_with_transaction_limit(s, std::chrono::milliseconds(150));
        auto c = base.with_session(s);
        // Every insert fails with a transient error: the transaction runs until the limit.
        client_->run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data":
            {"failCommands": ["insert"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]}})"));
        int calls = 0;
        const auto started = std::chrono::steady_clock::now();
        try {
            s.with_transaction([&](trellis::client_session&) {
                ++calls;
                c.insert_one(doc(R"({"_id": 1})"));
            });
            QFAIL("expected transaction_timeout");
        } catch (const trellis::transaction_timeout& e) {
            QCOMPARE(e.code(), make_error_code(errc::operation_failure));
            QCOMPARE(e.server_code(), 112);
            QCOMPARE(e.code_name(), std::string("WriteConflict"));
            QVERIFY(e.has_error_label("TransientTransactionError"));
            const std::string what = e.what();
            QVERIFY2(what.find("time limit of 150 ms") != std::string::npos, e.what());
            QVERIFY2(what.find("Failing command via 'failCommand' failpoint") != std::string::npos, e.what());
            try {
                std::rethrow_exception(e.last_error());
            } catch (const trellis::operation_failure& last) {
                QCOMPARE(last.server_code(), 112);
                QCOMPARE(last.code(), make_error_code(errc::operation_failure));
            }
        }
        trellis_test::fail_command_off(*client_);
        const auto took = std::chrono::steady_clock::now() - started;
        QVERIFY2(calls > 1, qPrintable(QString::number(calls)));
        QVERIFY(took < std::chrono::seconds(5));
        QCOMPARE(s.transaction(), transaction_state::aborted);
        QCOMPARE(count(base), std::int64_t(1));

        // The async face: the same error through the completion.
        client_->run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data":
            {"failCommands": ["insert"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]}})"));
        std::atomic<int> async_calls{0};
        auto done = s.async_with_transaction(
            [&](trellis::client_session&) -> asio::awaitable<void> {
                ++async_calls;
                bson::document d = doc(R"({"_id": 1})");  // named: see GCC 12 and co_await temporaries
                co_await c.async_insert_one(std::move(d), asio::use_awaitable);
            },
            std::nullopt, asio::use_future);
        try {
            done.get();
            QFAIL("expected transaction_timeout");
        } catch (const trellis::transaction_timeout& e) {
            QCOMPARE(e.server_code(), 112);
            QVERIFY(e.has_error_label("TransientTransactionError"));
        }
        trellis_test::fail_command_off(*client_);
        QVERIFY(async_calls.load() > 1);

        // The commit fails with an unknown result each time: committed again until the limit,
        // the callback running once.
        client_->run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data":
            {"failCommands": ["commitTransaction"], "errorCode": 262}})"));
        calls = 0;
        try {
            s.with_transaction([&](trellis::client_session&) {
                ++calls;
                c.insert_one(doc(R"({"_id": 2})"));
            });
            QFAIL("expected transaction_timeout");
        } catch (const trellis::transaction_timeout& e) {
            QCOMPARE(e.server_code(), 262);
            QVERIFY2(e.has_error_label("UnknownTransactionCommitResult"), e.what());
        }
        trellis_test::fail_command_off(*client_);
        QCOMPARE(calls, 1);
        s.commit_transaction();  // the application may still commit it
        QCOMPARE(count(base), std::int64_t(2));
    }

    // Two sessions writing one document: the second transaction gets WriteConflict (112, transient)
    // and is aborted by the server, the first commits; a write after a transaction's snapshot
    // conflicts too; a write outside any transaction waits for the transaction that wrote its
    // document (up to its maxTimeMS).
    void write_conflicts() {
        auto base = (*client_)["txn"]["conflict"];
        base.drop();
        base.insert_many({doc(R"({"_id": 1, "n": 0})"), doc(R"({"_id": 2, "n": 0})")});
        auto s1 = client_->start_session();
        auto s2 = client_->start_session();
        auto c1 = base.with_session(s1);
        auto c2 = base.with_session(s2);
        s1.start_transaction();
        c1.update_one(doc(R"({"_id": 1})"), doc(R"({"$inc": {"n": 1}})"));
        s2.start_transaction();
        c2.insert_one(doc(R"({"_id": 3})"));
        auto e = expect_failure([&] { c2.update_one(doc(R"({"_id": 1})"), doc(R"({"$inc": {"n": 10}})")); });
        QCOMPARE(e.server_code(), 112);
        QCOMPARE(e.code_name(), std::string("WriteConflict"));
        QVERIFY(e.has_error_label("TransientTransactionError"));
        e = expect_failure([&] { s2.commit_transaction(); });  // aborted by the server
        QCOMPARE(e.server_code(), 251);
        s1.commit_transaction();
        QCOMPARE(base.find_one(doc(R"({"_id": 1})"))->view()["n"].as_int64(), std::int64_t(1));
        QCOMPARE(count(base), std::int64_t(2));  // s2's insert is not applied

        // Written (outside a transaction) after the transaction's snapshot.
        s2.start_transaction();
        QVERIFY(c2.find_one(doc(R"({"_id": 2})")));
        base.update_one(doc(R"({"_id": 2})"), doc(R"({"$set": {"x": 1}})"));
        e = expect_failure([&] { c2.update_one(doc(R"({"_id": 2})"), doc(R"({"$inc": {"n": 1}})")); });
        QCOMPARE(e.server_code(), 112);
        s2.abort_transaction();

        // A write outside a transaction waits for the open transaction that wrote its document.
        s1.start_transaction();
        c1.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"y": 1}})"));
        e = expect_failure([&] {
            (*client_)["txn"].run_command(doc(R"({"update": "conflict", "updates": [{"q": {"_id": 1}, "u": {"$set": {"z": 1}}}],
                                                   "maxTimeMS": 100})"));
        });
        QCOMPARE(e.server_code(), 50);
        base.update_one(doc(R"({"_id": 2})"), doc(R"({"$set": {"y": 2}})"));  // another document: not held
        auto waiting = std::async(std::launch::async, [&] { base.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"z": 2}})")); });
        QVERIFY(waiting.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
        s1.commit_transaction();
        QVERIFY(waiting.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
        waiting.get();
        const auto one = *base.find_one(doc(R"({"_id": 1})"));
        QCOMPARE(one["n"].as_int64(), std::int64_t(1));
        QCOMPARE(one["y"].as_int64(), std::int64_t(1));  // the transaction's write
        QCOMPARE(one["z"].as_int64(), std::int64_t(2));  // then the one that waited for it
    }

    // with_transaction runs a conflicting transaction again until the other one commits.
    void with_transaction_retries_a_conflict() {
        auto base = (*client_)["txn"]["conflict_retry"];
        base.drop();
        base.insert_one(doc(R"({"_id": 1, "n": 0})"));
        auto s1 = client_->start_session();
        auto s2 = client_->start_session();
        s1.start_transaction();
        base.with_session(s1).update_one(doc(R"({"_id": 1})"), doc(R"({"$inc": {"n": 1}})"));
        std::thread committer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(150));
            s1.commit_transaction();
        });
        auto c2 = base.with_session(s2);
        int calls = 0;
        rec_.clear();
        s2.with_transaction([&](trellis::client_session&) {
            ++calls;
            c2.update_one(doc(R"({"_id": 1})"), doc(R"({"$inc": {"n": 10}})"));
        });
        committer.join();
        QVERIFY2(calls > 1, qPrintable(QString::number(calls)));
        QCOMPARE(rec_.sent("abortTransaction").size(), std::size_t(calls - 1));
        QCOMPARE(base.find_one(doc(R"({"_id": 1})"))->view()["n"].as_int64(), std::int64_t(11));
    }

    // Load balanced: the transaction's commands, a cursor of it, and its commit go over the
    // connection its first command checked out, which goes back to the pool after the commit. The
    // sim's routers keep their own transaction state, so a command on another connection (another
    // router, round robin) would fail with NoSuchTransaction.
    void load_balanced_pins_a_connection() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        cfg.load_balancer = true;
        sim::deployment lb(cfg);
        lb.start();
        lb_recorder rec;
        trellis::client c(lb.uri(), rec.settings());
        auto base = c["txn"]["lb"];
        base.insert_many({doc(R"({"_id": 0})"), doc(R"({"_id": 1})"), doc(R"({"_id": 2})")});
        auto s = c.start_session();
        auto coll = base.with_session(s);
        s.start_transaction();
        coll.insert_one(doc(R"({"_id": 10})"));
        QVERIFY(s.pinned_server() == lb.load_balancer_address());
        const std::int64_t pinned = rec.connections("insert").back();
        const auto at_pin = rec.checked(pinned);  // (insert_many had it before)
        QCOMPARE(at_pin.second, at_pin.first - 1);
        // Outside the transaction meanwhile: a cursor keeps a connection of its own.
        trellis::find_options two;
        two.batch_size = 2;
        auto outside = base.find({}, two);
        QVERIFY(outside.next());
        QVERIFY(rec.connections("find").back() != pinned);
        coll.insert_one(doc(R"({"_id": 11})"));
        coll.update_one(doc(R"({"_id": 0})"), doc(R"({"$set": {"x": 1}})"));
        int seen = 0;
        for (auto cur = coll.find({}, two); cur.next();) ++seen;  // its getMores on the transaction's connection
        QCOMPARE(seen, 5);
        QVERIFY(rec.checked(pinned) == at_pin);  // checked out once for the transaction, still out
        s.commit_transaction();
        QVERIFY(!s.pinned_server());
        // Back in the pool.
        QVERIFY(eventually([&] { return rec.checked(pinned) == std::make_pair(at_pin.first, at_pin.first); }));
        const auto inserts = rec.connections("insert");
        QCOMPARE(std::vector<std::int64_t>(inserts.end() - 2, inserts.end()), std::vector<std::int64_t>({pinned, pinned}));
        QCOMPARE(rec.connections("update").back(), pinned);
        QCOMPARE(rec.connections("find").back(), pinned);
        for (auto id : rec.connections("getMore")) QCOMPARE(id, pinned);
        QCOMPARE(rec.connections("commitTransaction"), std::vector<std::int64_t>({pinned}));
        while (outside.next()) {
        }
        QCOMPARE(count(base), std::int64_t(5));

        // A transient error (a write conflict) unpins, and the connection goes back at once; a
        // non-transient one (a duplicate key) does not.
        auto other = c.start_session();
        other.start_transaction();
        base.with_session(other).update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"y": 1}})"));
        s.start_transaction();
        QVERIFY(expect_failure([&] { coll.insert_one(doc(R"({"_id": 0})")); }).server_code() == 11000);
        QVERIFY(s.pinned_server());
        const std::int64_t second = rec.connections("insert").back();
        QCOMPARE(rec.checked(second).second, rec.checked(second).first - 1);  // still out
        s.abort_transaction();
        QVERIFY(eventually([&] { return rec.checked(second).second == rec.checked(second).first; }));
        s.start_transaction();
        coll.insert_one(doc(R"({"_id": 12})"));
        const std::int64_t third = rec.connections("insert").back();
        const auto e = expect_failure([&] { coll.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"y": 2}})")); });
        QCOMPARE(e.server_code(), 112);
        QVERIFY(!s.pinned_server());
        QVERIFY(eventually([&] { return rec.checked(third).second == rec.checked(third).first; }));
        s.abort_transaction();
        other.commit_transaction();
        QCOMPARE(count(base), std::int64_t(5));

        // A network error: the connection goes back (closed) at once, although a cursor of the
        // transaction still holds it. The fail point is set on both routers, directly.
        std::vector<std::string> routers;
        const bson::document status = lb.status();  // the views below point into it
        for (const auto& m : status["members"].get_array())
            if (m.get_document()["role"].get_string() == "mongos") routers.emplace_back(m.get_document()["host"].get_string());
        QCOMPARE(routers.size(), std::size_t(2));
        for (const auto& r : routers) {
            trellis::client direct("mongodb://" + r + "/?directConnection=true");
            fail_command(direct, R"({"failCommands": ["update"], "closeConnection": true})");
        }
        s.start_transaction();
        coll.insert_one(doc(R"({"_id": 13})"));
        const std::int64_t fourth = rec.connections("insert").back();
        auto held = coll.find({}, two);
        QVERIFY(held.next());
        QCOMPARE(rec.connections("find").back(), fourth);
        const auto net = expect_failure([&] { coll.update_one(doc(R"({"_id": 13})"), doc(R"({"$set": {"y": 3}})")); });
        QVERIFY2(net.has_error_label("TransientTransactionError"), net.what());
        QVERIFY(!s.pinned_server());
        QVERIFY(eventually([&] { return rec.checked(fourth).second == rec.checked(fourth).first; }));
        QVERIFY(eventually([&] {
            std::lock_guard lock(rec.m);
            return std::any_of(rec.cmap.begin(), rec.cmap.end(), [&](const trellis::cmap_event& e) {
                const auto* closed = std::get_if<trellis::connection_closed_event>(&e);
                return closed && closed->connection_id == fourth;
            });
        }));
        // Its connection closed, the router aborted the transaction (the load balancers spec):
        // a commit on another connection finds it aborted, and nothing it wrote is kept.
        const auto gone = expect_failure([&] { s.commit_transaction(); });
        QCOMPARE(gone.server_code(), 251);
        QVERIFY2(std::string(gone.what()).find("aborted") != std::string::npos, gone.what());
        for (const auto& r : routers) {
            trellis::client direct("mongodb://" + r + "/?directConnection=true");
            trellis_test::fail_command_off(direct);
        }
        QCOMPARE(count(base), std::int64_t(5));
        lb.stop();
    }
};

QTEST_GUILESS_MAIN(TransactionTest)
#include "transaction_test.moc"
