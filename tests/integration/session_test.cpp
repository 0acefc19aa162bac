// Explicit sessions against trellis-sim: the lsid of a session on every operation and on its
// cursors' getMores, causal consistency (operationTime, readConcern.afterClusterTime, $clusterTime
// gossip), dirty sessions, endSessions at close, and the errors of misuse; sync and async faces.
#include <QtTest/QtTest>

#include <algorithm>

#include <boost/asio.hpp>
#include <mutex>

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

std::string lsid_of(bson::document_view command) {
    const auto l = command.find("lsid");
    if (!l) return "<none>";
    return bson::to_json(l->get_document());
}
std::string json(bson::document_view d) { return bson::to_json(d); }
bson::timestamp ts_at(const bson::document& d, std::string_view a, std::string_view b) {
    return d.view()[a].get_document()[b].get_timestamp();
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

}  // namespace

class SessionTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> rs_, standalone_;
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
        standalone_ = std::make_unique<sim::deployment>(sim::sim_config{});
        standalone_->start();
        // Frequent checks: the dirty-session test's retry waits for the primary to be found again.
        client_ = std::make_unique<trellis::client>(rs_->uri() + "&heartbeatFrequencyMS=500", rec_.settings());
        client_->wait_for_discovery();
    }
    void cleanupTestCase() {
        client_.reset();
        rs_->stop();
        standalone_->stop();
    }

    // One lsid for every operation of the session, the getMores of its cursors included; other
    // operations meanwhile use other (implicit) sessions.
    void lsid_across_operations_and_getmores() {
        auto base = (*client_)["sess"]["lsid"];
        base.drop();
        auto s = client_->start_session();
        QVERIFY(s.causal_consistency());
        QVERIFY(!s.operation_time());
        const std::string id = json(s.id());
        auto c = base.with_session(s);
        rec_.clear();
        std::vector<bson::document> five;
        for (int i = 0; i < 5; ++i) five.push_back(bson::make_document(bson::kvp("_id", i)));
        c.insert_many(std::move(five));
        c.update_one(doc(R"({"_id": 0})"), doc(R"({"$set": {"x": 1}})"));
        trellis::find_options fo;
        fo.batch_size = 2;
        int n = 0;
        for (auto cur = c.find({}, fo); cur.next();) ++n;
        QCOMPARE(n, 5);
        QCOMPARE(c.count_documents(), std::int64_t(5));
        QCOMPARE(c.distinct("_id").size(), std::size_t(5));
        base.find_one({});  // implicit: not the explicit session's lsid
        (*client_)["sess"].with_session(s).run_command(doc(R"({"ping": 1})"));
        c.delete_one(doc(R"({"_id": 4})"));
        const auto gets = rec_.sent("getMore");
        QCOMPARE(gets.size(), std::size_t(2));  // 2 + 2 + 1
        for (const auto* name : {"insert", "update", "getMore", "aggregate", "distinct", "ping", "delete"})
            for (const auto& cmd : rec_.sent(name)) QCOMPARE(lsid_of(cmd), id);
        const auto finds = rec_.sent("find");
        QCOMPARE(finds.size(), std::size_t(2));
        QCOMPARE(lsid_of(finds[0]), id);
        QVERIFY(lsid_of(finds[1]) != id && lsid_of(finds[1]) != "<none>");
        // A handle bound to a database hands the session to its collections.
        rec_.clear();
        (*client_)["sess"].with_session(s)["lsid"].find_one({});
        QCOMPARE(lsid_of(rec_.last("find")), id);
        // without_session: implicit again.
        c.without_session().find_one({});
        QVERIFY(lsid_of(rec_.last("find")) != id);
    }

    // The client-level helpers take a session too.
    void client_helpers_in_a_session() {
        (*client_)["sess_client"]["c"].insert_one(doc(R"({"x": 1})"));
        auto s = client_->start_session();
        const std::string id = json(s.id());
        rec_.clear();
        const auto dbs = client_->list_databases(s);
        QVERIFY(std::any_of(dbs.begin(), dbs.end(), [](const bson::document& d) { return d["name"].get_string() == "sess_client"; }));
        const auto names = client_->database_names(s);
        QVERIFY(std::find(names.begin(), names.end(), "sess_client") != names.end());
        client_->run_command(s, "admin", doc(R"({"ping": 1})"));
        client_->drop_database(s, "sess_client");
        const auto listed = rec_.sent("listDatabases");
        QCOMPARE(listed.size(), std::size_t(2));
        for (const auto& cmd : listed) QCOMPARE(lsid_of(cmd), id);
        QCOMPARE(lsid_of(rec_.last("ping")), id);
        QCOMPARE(lsid_of(rec_.last("dropDatabase")), id);
        QVERIFY(s.operation_time());  // causal: the replies' operationTime was recorded
        trellis::client other(rs_->uri());
        expect_invalid_argument([&] { other.list_databases(s); }, "client::list_databases: the session was started by a different client");
        s.end_session();
        expect_invalid_argument([&] { client_->database_names(s); }, "has ended");
        expect_invalid_argument([&] { client_->drop_database(s, "x"); }, "has ended");
    }

    void causal_reads_carry_after_cluster_time() {
        auto base = (*client_)["sess"]["causal"];
        base.drop();
        auto s = client_->start_session();
        auto c = base.with_session(s);
        rec_.clear();
        // The first read: no operationTime yet, so no afterClusterTime (no readConcern at all).
        c.find_one({});
        QVERIFY(!rec_.last("find").view().find("readConcern"));
        QVERIFY(s.operation_time().has_value());
        QVERIFY(s.cluster_time().has_value());
        const auto after_read = *s.operation_time();
        c.insert_one(doc(R"({"_id": 1})"));
        const auto after_insert = *s.operation_time();
        QVERIFY(after_read < after_insert);
        // The write took the read's time as afterClusterTime (writes listed by the read-write-concern spec).
        QCOMPARE(ts_at(rec_.last("insert"), "readConcern", "afterClusterTime"), after_read);
        c.count_documents();
        const auto agg = rec_.last("aggregate");
        const auto rc = agg["readConcern"].get_document();
        QCOMPARE(rc["afterClusterTime"].get_timestamp(), after_insert);
        QVERIFY(!rc.find("level"));
        // The handle's read concern level merged with afterClusterTime.
        trellis::handle_options majority;
        majority.read_concern = trellis::read_concern{"majority"};
        const auto before = *s.operation_time();
        QVERIFY(!(before < after_insert));
        c.with_options(majority).find_one({});
        const auto fnd = rec_.last("find");
        const auto rc2 = fnd["readConcern"].get_document();
        QCOMPARE(std::string(rc2["level"].get_string()), std::string("majority"));
        QCOMPARE(rc2["afterClusterTime"].get_timestamp(), before);
        // $clusterTime gossiped on every command once known.
        QVERIFY(rec_.last("find").view().find("$clusterTime"));
        // run_command in the session: no readConcern added.
        (*client_)["sess"].with_session(s).run_command(doc(R"({"count": "causal"})"));
        QVERIFY(!rec_.last("count").view().find("readConcern"));
        // Not causally consistent: never afterClusterTime.
        trellis::session_options plain;
        plain.causal_consistency = false;
        auto p = client_->start_session(plain);
        QVERIFY(!p.causal_consistency());
        base.with_session(p).find_one({});
        base.with_session(p).find_one({});
        QVERIFY(p.operation_time().has_value());  // recorded all the same
        QVERIFY(!rec_.last("find").view().find("readConcern"));
        // advance_operation_time: the next read waits for that time.
        auto q = client_->start_session();
        const bson::timestamp t{*s.operation_time()};
        q.advance_operation_time(t);
        base.with_session(q).distinct("_id");
        QCOMPARE(ts_at(rec_.last("distinct"), "readConcern", "afterClusterTime"), t);
    }

    // The session's cluster time goes out with its operations only; the client's is what servers sent.
    void cluster_time_gossip() {
        auto base = (*client_)["sess"]["gossip"];
        auto s = client_->start_session();
        base.with_session(s).find_one({});
        const auto seen = *s.cluster_time();
        const auto t = seen["clusterTime"].get_timestamp();
        bson::builder later;
        later.append("clusterTime", bson::timestamp{t.seconds + 1000, 1});
        later.open_document("signature").append("hash", bson::binary{0, std::vector<std::uint8_t>(20, 0)})
            .append("keyId", std::int64_t(0)).close_document();
        const auto later_doc = later.extract();
        s.advance_cluster_time(later_doc.view());
        QCOMPARE(s.cluster_time()->view()["clusterTime"].get_timestamp(), (bson::timestamp{t.seconds + 1000, 1}));
        s.advance_cluster_time(seen.view());  // older: ignored
        QCOMPARE(s.cluster_time()->view()["clusterTime"].get_timestamp(), (bson::timestamp{t.seconds + 1000, 1}));
        rec_.clear();
        base.with_session(s).find_one({});
        QCOMPARE(ts_at(rec_.last("find"), "$clusterTime", "clusterTime"), (bson::timestamp{t.seconds + 1000, 1}));
        base.find_one({});  // implicit: the client's cluster time, not the session's
        QVERIFY(ts_at(rec_.last("find"), "$clusterTime", "clusterTime") < (bson::timestamp{t.seconds + 1000, 1}));
        expect_invalid_argument([&] { s.advance_cluster_time(doc(R"({"clusterTime": 5})").view()); }, "clusterTime");
    }

    void async_faces() {
        auto base = (*client_)["sess"]["async"];
        base.drop();
        auto s = client_->start_session();
        const std::string id = json(s.id());
        auto c = base.with_session(s);
        rec_.clear();
        c.async_insert_one(doc(R"({"_id": 1})"), asio::use_future).get();
        c.async_insert_one(doc(R"({"_id": 2})"), asio::use_future).get();
        c.async_insert_one(doc(R"({"_id": 3})"), asio::use_future).get();
        auto work = [c]() mutable -> asio::awaitable<int> {
            trellis::find_options fo;
            fo.batch_size = 1;
            auto cur = co_await c.async_find(bson::document{}, fo, asio::use_awaitable);
            int n = 0;
            while (co_await cur.async_next(asio::use_awaitable)) ++n;
            co_return n;
        };
        QCOMPARE(asio::co_spawn(client_->get_executor(), work(), asio::use_future).get(), 3);
        const auto before = *s.operation_time();
        QCOMPARE(c.async_count_documents(bson::document{}, trellis::count_options{}, asio::use_future).get(), std::int64_t(3));
        QCOMPARE(rec_.sent("getMore").size(), std::size_t(2));  // the second returns the last document and id 0
        for (const auto* name : {"insert", "find", "getMore", "aggregate"})
            for (const auto& cmd : rec_.sent(name)) QCOMPARE(lsid_of(cmd), id);
        QCOMPARE(ts_at(rec_.last("aggregate"), "readConcern", "afterClusterTime"), before);
    }

    // An ended session's server session goes back to the pool (the next implicit operation takes
    // it, LIFO); a dirty one (a network error during its operation) is discarded.
    void dirty_session_discarded() {
        auto base = (*client_)["sess"]["dirty"];
        base.drop();
        {
            auto clean = client_->start_session();
            const auto id = json(clean.id());
            base.with_session(clean).insert_one(doc(R"({"_id": 1})"));
            clean.end_session();
            QVERIFY(clean.has_ended());
            rec_.clear();
            base.find_one({});
            QCOMPARE(lsid_of(rec_.last("find")), id);
        }
        auto s = client_->start_session();
        const auto id = json(s.id());
        (*client_)["admin"].run_command(doc(R"({"configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "closeConnection": true}})"));
        QVERIFY(!s.dirty());
        rec_.clear();
        base.with_session(s).insert_one(doc(R"({"_id": 2})"));  // retried on a new connection
        QCOMPARE(rec_.sent("insert").size(), std::size_t(2));
        for (const auto& cmd : rec_.sent("insert")) QCOMPARE(lsid_of(cmd), id);
        QVERIFY(s.dirty());
        base.with_session(s).insert_one(doc(R"({"_id": 3})"));
        QVERIFY(s.dirty());  // dirty for the rest of its life
        s.end_session();
        base.find_one({});
        QVERIFY(lsid_of(rec_.last("find")) != id);
        QCOMPARE(base.count_documents(), std::int64_t(3));
    }

    // endSessions at close lists the pooled sessions, explicit ones that ended among them (not
    // the dirty one).
    void end_sessions_on_close() {
        recorder rec;
        trellis::client c(rs_->uri(), rec.settings());
        auto coll = c["sess"]["close"];
        auto a = c.start_session();
        auto b = c.start_session();
        const auto ida = json(a.id()), idb = json(b.id());
        QVERIFY(ida != idb);
        coll.with_session(a).find_one({});
        a.end_session();
        b.end_session();  // never used: returned all the same
        c.close();
        const auto ends = rec.sent("endSessions");
        QCOMPARE(ends.size(), std::size_t(1));
        std::vector<std::string> ids;
        for (const auto& e : ends[0]["endSessions"].get_array()) ids.push_back(json(e.get_document()));
        QVERIFY2(std::find(ids.begin(), ids.end(), ida) != ids.end(), json(ends[0].view()).c_str());
        QVERIFY2(std::find(ids.begin(), ids.end(), idb) != ids.end(), json(ends[0].view()).c_str());
    }

    void misuse_errors() {
        auto s = client_->start_session();
        QCOMPARE(&s.client(), client_.get());
        trellis::client other(rs_->uri());
        expect_invalid_argument([&] { other["sess"]["x"].with_session(s); }, "different client");
        expect_invalid_argument([&] { other["sess"].with_session(s); }, "different client");
        auto bound = (*client_)["sess"]["x"].with_session(s);
        s.end_session();
        s.end_session();  // idempotent
        expect_invalid_argument([&] { bound.find_one({}); }, "the session has ended");
        expect_invalid_argument([&] { bound.async_insert_one(doc("{}"), asio::use_future).get(); }, "the session has ended");
        expect_invalid_argument([&] { (*client_)["sess"]["x"].with_session(s); }, "has ended");
        // w: 0 is refused in an explicit session (no operationTime would come back).
        auto t = client_->start_session();
        trellis::handle_options w0;
        w0.write_concern = trellis::write_concern{};
        w0.write_concern->w = 0;
        expect_invalid_argument([&] { (*client_)["sess"]["x"].with_options(w0).with_session(t).insert_one(doc("{}")); },
                                "unacknowledged");
        QVERIFY(!t.operation_time());
        trellis::session_options snap;
        snap.snapshot = true;
        QVERIFY(!client_->start_session(snap).causal_consistency());  // accepted: not causal
        snap.causal_consistency = true;
        expect_invalid_argument([&] { client_->start_session(snap); }, "mutually exclusive");
        // Moves carry the session; the moved-from one is inert.
        auto moved = std::move(t);
        QVERIFY(!moved.has_ended());
        QVERIFY(t.has_ended());
        expect_invalid_argument([&] { (void)t.id(); }, "moved-from");
    }

    // A standalone keeps no cluster time: no $clusterTime, no afterClusterTime, no operationTime.
    void standalone_has_no_cluster_time() {
        recorder rec;
        trellis::client c(standalone_->uri(), rec.settings());
        auto s = c.start_session();
        auto coll = c["sess"]["standalone"].with_session(s);
        coll.insert_one(doc(R"({"_id": 1})"));
        coll.find_one({});
        QVERIFY(!s.operation_time());
        QVERIFY(!s.cluster_time());
        QCOMPARE(lsid_of(rec.last("find")), json(s.id()));
        QVERIFY(!rec.last("find").view().find("readConcern"));
        QVERIFY(!rec.last("find").view().find("$clusterTime"));
    }
};

QTEST_GUILESS_MAIN(SessionTest)
#include "session_test.moc"
