// Snapshot sessions (the snapshot reads spec) against trellis-sim: the first find, aggregate or
// distinct records atClusterTime, later ones read at it (a later write of another client unseen,
// getMores too), every command carries readConcern level snapshot (writes are refused by the
// server), snapshot_time, SnapshotTooOld, secondaries, mongos, a standalone's and a 4.4 server's
// refusals, the client-side refusals; sync and async faces.
#include <QtTest/QtTest>

#include <algorithm>
#include <boost/asio.hpp>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/session.hpp"
#include "trellis/sim/deployment.hpp"
#include "command_recorder.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using trellis::errc;

namespace {

using trellis_test::doc;

using recorder = trellis_test::command_recorder;

// The x of each document, in _id order.
std::vector<std::int64_t> xs(trellis::cursor c) {
    std::vector<std::pair<std::int64_t, std::int64_t>> all;
    for (const auto& d : c) all.emplace_back(d.view()["_id"].as_int64(), d.view()["x"].as_int64());
    std::sort(all.begin(), all.end());
    std::vector<std::int64_t> out;
    for (const auto& [id, x] : all) out.push_back(x);
    return out;
}

std::vector<std::int64_t> values(const bson::array& a) {
    std::vector<std::int64_t> out;
    for (const auto& e : a) out.push_back(e.as_int64());
    std::sort(out.begin(), out.end());
    return out;
}

using v = std::vector<std::int64_t>;

// A pipeline from its stages as a JSON document {"0": ..., "1": ...}.
bson::array pipeline(std::string_view json) { return bson::array(bson::from_json(json)); }

trellis::read_preference secondary() {
    trellis::read_preference rp;
    rp.mode = trellis::read_preference_mode::secondary;
    return rp;
}

// readConcern of a command: {level: "snapshot"} without atClusterTime, or with `at`.
void expect_snapshot_rc(const bson::document& cmd, std::optional<bson::timestamp> at) {
    const auto rc = cmd.view().find("readConcern");
    QVERIFY2(rc && rc->type() == bson::type::document, bson::to_json(cmd.view()).c_str());
    QCOMPARE(std::string(rc->get_document()["level"].get_string()), std::string("snapshot"));
    const auto t = rc->get_document().find("atClusterTime");
    QCOMPARE(t.has_value(), at.has_value());
    if (at) QCOMPARE(t->get_timestamp(), *at);
    QVERIFY(!rc->get_document().find("afterClusterTime"));
}

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

// The server's refusal: an operation_failure with its code.
template <class F>
void expect_server_code(F&& f, int code, std::string_view text) {
    try {
        f();
        QFAIL("expected an operation_failure");
    } catch (const trellis::operation_failure& e) {
        QVERIFY2(e.server_code() == code, e.what());
        QVERIFY2(std::string_view(e.what()).find(text) != std::string_view::npos, e.what());
    }
}

trellis::session_options snapshot_options(std::optional<bson::timestamp> at = std::nullopt) {
    trellis::session_options o;
    o.snapshot = true;
    o.snapshot_time = at;
    return o;
}

}  // namespace

class SnapshotSessionTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> rs_;
    recorder rec_;
    std::unique_ptr<trellis::client> client_, other_;

    // Fresh documents {_id: 1..3, x: 10, 20, 30} in `name`, written by the other client (w: 3).
    trellis::collection fresh(std::string_view name) {
        auto c = (*other_)["snap"][std::string(name)];
        c.drop();
        c.insert_many({doc(R"({"_id": 1, "x": 10})"), doc(R"({"_id": 2, "x": 20})"), doc(R"({"_id": 3, "x": 30})")});
        return (*client_)["snap"][std::string(name)];
    }
    // The other client's later write: x of _id 1 becomes 11, a document {_id: 4, x: 40} appears.
    void later_write(std::string_view name) {
        auto c = (*other_)["snap"][std::string(name)];
        c.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"x": 11}})"));
        c.insert_one(doc(R"({"_id": 4, "x": 40})"));
    }

private slots:
    void initTestCase() {
        sim::sim_config c;
        c.topology = sim::topology_kind::replica_set;
        c.nodes = 3;
        rs_ = std::make_unique<sim::deployment>(c);
        rs_->start();
        QVERIFY(rs_->wait_for_primary(std::chrono::seconds(10)));
        client_ = std::make_unique<trellis::client>(rs_->uri(), rec_.settings());
        client_->wait_for_discovery();
        other_ = std::make_unique<trellis::client>(rs_->uri() + "&w=3");  // its writes are on every member
        other_->wait_for_discovery();
    }
    void cleanupTestCase() {
        client_.reset();
        other_.reset();
        rs_->stop();
    }

    // find first: {level: snapshot}, then the cursor's atClusterTime is the session's snapshot,
    // which every later read sends; another client's later write is unseen by find, aggregate,
    // distinct and count_documents in the session (getMores included), seen by a new session.
    void reads_share_the_first_reads_snapshot() {
        auto base = fresh("find");
        auto s = client_->start_session(snapshot_options());
        QVERIFY(!s.snapshot_time());
        QVERIFY(!s.causal_consistency());
        auto c = base.with_session(s);
        rec_.clear();
        QCOMPARE(xs(c.find({})), (v{10, 20, 30}));
        expect_snapshot_rc(rec_.last("find"), std::nullopt);
        QVERIFY(s.snapshot_time().has_value());
        const bson::timestamp t = *s.snapshot_time();
        later_write("find");
        QCOMPARE(xs((*other_)["snap"]["find"].find({})), (v{11, 20, 30, 40}));  // the write is there
        trellis::find_options one;
        one.batch_size = 1;
        QCOMPARE(xs(c.find({}, one)), (v{10, 20, 30}));
        QCOMPARE(rec_.sent("getMore").size(), std::size_t(2));
        for (const auto& g : rec_.sent("getMore")) QVERIFY(!g.view().find("readConcern"));  // getMore takes none
        QCOMPARE(xs(c.aggregate(pipeline(R"({"0": {"$match": {}}})"))), (v{10, 20, 30}));
        QCOMPARE(values(c.distinct("x")), (v{10, 20, 30}));
        QCOMPARE(c.count_documents(), std::int64_t(3));
        for (const auto* name : {"aggregate", "distinct"}) expect_snapshot_rc(rec_.last(name), t);
        for (const auto& f : rec_.sent("find")) QCOMPARE(f.view().find("readConcern").has_value(), true);
        expect_snapshot_rc(rec_.last("find"), t);
        QCOMPARE(*s.snapshot_time(), t);  // unchanged
        // A new snapshot session reads the data as it is now.
        auto s2 = client_->start_session(snapshot_options());
        QCOMPARE(xs(base.with_session(s2).find({})), (v{11, 20, 30, 40}));
        QVERIFY(t < *s2.snapshot_time());
    }

    // The snapshot comes from whichever of find, aggregate, distinct runs first: atClusterTime in
    // the cursor (aggregate) or at the top level (distinct).
    void first_read_aggregate_or_distinct() {
        for (const bool distinct : {false, true}) {
            auto base = fresh("first");
            auto s = client_->start_session(snapshot_options());
            auto c = base.with_session(s);
            rec_.clear();
            if (distinct) QCOMPARE(values(c.distinct("x")), (v{10, 20, 30}));
            else QCOMPARE(xs(c.aggregate(pipeline("{}"))), (v{10, 20, 30}));
            expect_snapshot_rc(rec_.last(distinct ? "distinct" : "aggregate"), std::nullopt);
            QVERIFY2(s.snapshot_time().has_value(), distinct ? "distinct" : "aggregate");
            later_write("first");
            QCOMPARE(xs(c.find({})), (v{10, 20, 30}));
            expect_snapshot_rc(rec_.last("find"), *s.snapshot_time());
        }
    }

    // Every command of the session carries the snapshot read concern: the server refuses writes
    // and commands that cannot read at a snapshot (InvalidOptions), and nothing is written.
    void writes_refused_by_the_server() {
        auto base = fresh("writes");
        auto s = client_->start_session(snapshot_options());
        auto c = base.with_session(s);
        rec_.clear();
        expect_server_code([&] { c.insert_one(doc(R"({"_id": 9, "x": 90})")); }, 72, "does not support");
        expect_snapshot_rc(rec_.last("insert"), std::nullopt);
        QVERIFY(!s.snapshot_time());  // a refusal gives no snapshot
        QCOMPARE(xs(c.find({})), (v{10, 20, 30}));
        const auto t = *s.snapshot_time();
        expect_server_code([&] { c.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"x": 0}})")); }, 72, "does not support");
        expect_snapshot_rc(rec_.last("update"), t);
        expect_server_code([&] { c.delete_one(doc(R"({"_id": 1})")); }, 72, "does not support");
        expect_server_code([&] { c.find_one_and_update(doc(R"({"_id": 1})"), doc(R"({"$set": {"x": 0}})")); }, 72, "does not support");
        expect_server_code([&] { (void)c.estimated_document_count(); }, 72, "does not support");  // count
        expect_server_code([&] { (*client_)["snap"].with_session(s).run_command(doc(R"({"insert": "writes", "documents": [{}]})")); },
                           72, "does not support");
        expect_snapshot_rc(rec_.last("insert"), t);
        expect_server_code([&] { (void)c.aggregate(pipeline(R"({"0": {"$out": "elsewhere"}})")); }, 72, "$out");
        QCOMPARE(xs((*other_)["snap"]["writes"].find({})), (v{10, 20, 30}));  // nothing written
    }

    void client_side_refusals() {
        auto s = client_->start_session(snapshot_options());
        expect_invalid_argument([&] { s.start_transaction(); }, "Transactions are not supported in snapshot sessions");
        QCOMPARE(s.transaction(), trellis::transaction_state::none);
        expect_invalid_argument([&] { s.with_transaction([](trellis::client_session&) {}); },
                                "Transactions are not supported in snapshot sessions");
        auto both = snapshot_options();
        both.causal_consistency = true;
        expect_invalid_argument([&] { client_->start_session(both); }, "mutually exclusive");
        both.causal_consistency = false;
        QVERIFY(!client_->start_session(both).causal_consistency());
        trellis::session_options not_snapshot;
        not_snapshot.snapshot_time = bson::timestamp{1, 1};
        expect_invalid_argument([&] { client_->start_session(not_snapshot); }, "snapshot_time is only valid with snapshot");
    }

    // snapshot_time: the first read already sends atClusterTime and reads at that time, here the
    // snapshot of another session taken before a write.
    void snapshot_time_option_reads_at_that_time() {
        auto base = fresh("at");
        auto first = client_->start_session(snapshot_options());
        QCOMPARE(xs(base.with_session(first).find({})), (v{10, 20, 30}));
        const auto t = *first.snapshot_time();
        later_write("at");
        auto s = client_->start_session(snapshot_options(t));
        QCOMPARE(*s.snapshot_time(), t);
        rec_.clear();
        QCOMPARE(values(base.with_session(s).distinct("x")), (v{10, 20, 30}));
        expect_snapshot_rc(rec_.last("distinct"), t);
        QCOMPARE(xs(base.with_session(s).find({})), (v{10, 20, 30}));
        QCOMPARE(*s.snapshot_time(), t);
    }

    // A time the member no longer has: SnapshotTooOld (239); one past the cluster time: the sim
    // refuses it as mongod does (InvalidOptions), rather than wait.
    void snapshot_too_old_and_future() {
        auto base = fresh("old");
        auto s = client_->start_session(snapshot_options(bson::timestamp{1, 0}));
        expect_server_code([&] { (void)xs(base.with_session(s).find({})); }, 239, "older than the oldest available timestamp");
        try {
            (void)base.with_session(s).find_one({});
            QFAIL("expected SnapshotTooOld");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.code_name(), std::string("SnapshotTooOld"));
        }
        auto now = client_->start_session(snapshot_options());
        (void)xs(base.with_session(now).find({}));
        const auto t = *now.snapshot_time();
        auto future = client_->start_session(snapshot_options(bson::timestamp{t.seconds + 1000, 1}));
        expect_server_code([&] { (void)xs(base.with_session(future).find({})); }, 72,
                           "must not be greater than the current clusterTime");
    }

    // The server's checks of readConcern, sent by hand (no session): atClusterTime with
    // afterClusterTime, or without level snapshot (InvalidOptions); count at a snapshot.
    void server_read_concern_checks() {
        (void)fresh("checks");
        auto db = (*client_)["snap"];
        auto s = client_->start_session(snapshot_options());
        (void)xs(db["checks"].with_session(s).find({}));
        const auto t = *s.snapshot_time();
        const auto with_rc = [&](std::string_view command, bson::document rc) {
            bson::builder b;
            b.concat(doc(command).view());
            b.append("readConcern", rc.view());
            return b.extract();
        };
        bson::builder both;
        both.append("level", "snapshot").append("atClusterTime", t).append("afterClusterTime", t);
        expect_server_code([&] { db.run_command(with_rc(R"({"find": "checks"})", both.extract())); }, 72,
                           "Can not specify both afterClusterTime and atClusterTime");
        bson::builder majority;
        majority.append("level", "majority").append("atClusterTime", t);
        expect_server_code([&] { db.run_command(with_rc(R"({"find": "checks"})", majority.extract())); }, 72,
                           "atClusterTime field can be set only if level is equal to snapshot");
        expect_server_code([&] { db.run_command(with_rc(R"({"count": "checks"})", doc(R"({"level": "snapshot"})"))); }, 72,
                           "Command count does not support");
        // At the snapshot by hand: the cursor says its time.
        bson::builder at;
        at.append("level", "snapshot").append("atClusterTime", t);
        const auto reply = db.run_command(with_rc(R"({"find": "checks"})", at.extract()));
        QCOMPARE(reply.view()["cursor"].get_document()["atClusterTime"].get_timestamp(), t);
        const auto distinct = db.run_command(with_rc(R"({"distinct": "checks", "key": "x"})", doc(R"({"level": "snapshot"})")));
        QVERIFY(distinct.view()["atClusterTime"].get_timestamp() >= t);
    }

    // Read preference secondary: the snapshot is of that member's data, its time that member's;
    // a write after it is unseen there too.
    void reads_from_a_secondary() {
        auto base = fresh("secondary");
        trellis::handle_options sec;
        sec.read_preference = secondary();
        auto s = client_->start_session(snapshot_options());
        auto c = base.with_options(sec).with_session(s);
        rec_.clear();
        QCOMPARE(xs(c.find({})), (v{10, 20, 30}));
        const auto primaries = *rs_->primary();
        const auto where = rec_.addresses("find");
        QCOMPARE(where.size(), std::size_t(1));
        QVERIFY(where[0] != primaries);
        later_write("secondary");  // on both secondaries (w: 3)
        QCOMPARE(values(c.distinct("x")), (v{10, 20, 30}));
        QCOMPARE(xs(c.aggregate(pipeline("{}"))), (v{10, 20, 30}));
        expect_snapshot_rc(rec_.last("aggregate"), *s.snapshot_time());
        QVERIFY(rec_.addresses("aggregate")[0] != primaries);
    }

    // A lagging secondary: its snapshot is of what it has applied (not the primary's latest), and
    // a time it has not applied yet is waited for.
    void lagging_secondary() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 2;
        cfg.members = {sim::member_config{}, sim::member_config{}};
        cfg.members[1].priority = 0;
        cfg.members[1].lag = std::chrono::milliseconds(1500);
        sim::deployment d(cfg);
        d.start();
        QVERIFY(d.wait_for_primary(std::chrono::seconds(10)));
        trellis::client c(d.uri());
        c.wait_for_discovery();
        trellis::handle_options sec;
        sec.read_preference = secondary();
        auto coll = c["snap"]["lag"];
        coll.insert_one(doc(R"({"_id": 1, "x": 10})"));
        std::this_thread::sleep_for(std::chrono::milliseconds(1700));  // replicated
        coll.insert_one(doc(R"({"_id": 2, "x": 20})"));              // not yet on the secondary
        auto s = c.start_session(snapshot_options());
        QCOMPARE(xs(coll.with_options(sec).with_session(s).find({})), (v{10}));
        std::this_thread::sleep_for(std::chrono::milliseconds(1700));
        QCOMPARE(xs(coll.with_options(sec).with_session(s).find({})), (v{10}));  // still its snapshot
        // The primary's snapshot after a third write, read on the secondary: it waits until it
        // has applied that time, then answers with the data of that time.
        const auto written = std::chrono::steady_clock::now();
        coll.insert_one(doc(R"({"_id": 3, "x": 30})"));
        auto p = c.start_session(snapshot_options());
        QCOMPARE(xs(coll.with_session(p).find({})), (v{10, 20, 30}));
        auto late = c.start_session(snapshot_options(*p.snapshot_time()));
        QCOMPARE(xs(coll.with_options(sec).with_session(late).find({})), (v{10, 20, 30}));
        // The secondary could not have the write before its lag.
        QVERIFY(std::chrono::steady_clock::now() - written >= std::chrono::milliseconds(1490));
        d.stop();
    }

    void async_faces() {
        auto base = fresh("async");
        auto s = client_->start_session(snapshot_options());
        auto c = base.with_session(s);
        rec_.clear();
        auto work = [c]() mutable -> asio::awaitable<std::int64_t> {
            trellis::find_options fo;
            fo.batch_size = 1;
            auto cur = co_await c.async_find(bson::document{}, fo, asio::use_awaitable);
            std::int64_t sum = 0;
            while (auto d = co_await cur.async_next(asio::use_awaitable)) sum += d->view()["x"].as_int64();
            co_return sum;
        };
        QCOMPARE(asio::co_spawn(client_->get_executor(), work(), asio::use_future).get(), std::int64_t(60));
        const auto t = s.snapshot_time();
        QVERIFY(t.has_value());
        later_write("async");
        QCOMPARE(asio::co_spawn(client_->get_executor(), work(), asio::use_future).get(), std::int64_t(60));
        const auto values_now = c.async_distinct("x", bson::document{}, trellis::distinct_options{}, asio::use_future).get();
        QCOMPARE(values(values_now), (v{10, 20, 30}));
        expect_snapshot_rc(rec_.last("distinct"), t);
        try {
            c.async_insert_one(doc(R"({"_id": 5, "x": 50})"), asio::use_future).get();
            QFAIL("expected InvalidOptions");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 72);
        }
    }

    // Through mongos to a replica set shard: the router's reply carries atClusterTime.
    void through_mongos() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.shard_is_replica_set = true;
        sim::deployment d(cfg);
        d.start();
        recorder rec;
        trellis::client c(d.uri(), rec.settings());
        c.wait_for_discovery();
        auto coll = c["snap"]["mongos"];
        coll.insert_many({doc(R"({"_id": 1, "x": 10})"), doc(R"({"_id": 2, "x": 20})")});
        auto s = c.start_session(snapshot_options());
        QCOMPARE(xs(coll.with_session(s).find({})), (v{10, 20}));
        QVERIFY(s.snapshot_time().has_value());
        coll.insert_one(doc(R"({"_id": 3, "x": 30})"));
        QCOMPARE(values(coll.with_session(s).distinct("x")), (v{10, 20}));
        expect_snapshot_rc(rec.last("distinct"), s.snapshot_time());
        d.stop();
    }

    // A standalone refuses snapshot reads (NotAReplicaSet, as mongod); a server before 5.0 is
    // refused by the driver before anything is sent.
    void standalone_and_old_servers() {
        sim::deployment standalone(sim::sim_config{});
        standalone.start();
        {
            recorder rec;
            trellis::client c(standalone.uri(), rec.settings());
            auto s = c.start_session(snapshot_options());
            expect_server_code([&] { (void)c["snap"]["x"].with_session(s).find_one({}); }, 123, "replica set member");
            expect_snapshot_rc(rec.last("find"), std::nullopt);
        }
        standalone.stop();
        sim::sim_config old;
        old.topology = sim::topology_kind::replica_set;
        old.nodes = 1;
        old.max_wire_version = 12;  // 4.4
        sim::deployment rs44(old);
        rs44.start();
        QVERIFY(rs44.wait_for_primary(std::chrono::seconds(10)));
        {
            recorder rec;
            trellis::client c(rs44.uri(), rec.settings());
            auto s = c.start_session(snapshot_options());
            expect_invalid_argument([&] { (void)c["snap"]["x"].with_session(s).find_one({}); },
                                    "Snapshot reads require MongoDB 5.0 or later");
            QVERIFY(rec.sent("find").empty());
        }
        rs44.stop();
    }
};

QTEST_GUILESS_MAIN(SnapshotSessionTest)
#include "snapshot_session_test.moc"
