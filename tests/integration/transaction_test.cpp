// Transactions against trellis-sim: what a transaction's commands carry, commit making its writes
// visible and abort discarding them, the state machine and its errors, with_transaction's retries
// (failCommand), the async faces, a standalone's refusal, and mongos pinning on a sharded sim.
#include <QtTest/QtTest>

#include <atomic>
#include <future>
#include <mutex>

#include <boost/asio.hpp>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/session.hpp"
#include "trellis/sim/deployment.hpp"
#include "command_recorder.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using trellis::errc;
using trellis::transaction_state;

namespace {

bson::document doc(std::string_view json) { return bson::from_json(json); }

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

// failCommand on the server `c` sends run_command to (a replica set's primary, or one mongos
// through a direct client).
void fail_command(trellis::client& c, std::string_view data, std::string_view mode = R"({"times": 1})") {
    bson::builder b;
    b.append("configureFailPoint", "failCommand").append("mode", doc(mode).view()).append("data", doc(data).view());
    c.run_command("admin", b.extract());
}

std::int64_t count(trellis::collection c) { return c.count_documents({}); }

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
};

QTEST_GUILESS_MAIN(TransactionTest)
#include "transaction_test.moc"
