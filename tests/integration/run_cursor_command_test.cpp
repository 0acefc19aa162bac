// database::run_cursor_command (the run-command spec's runCursorCommand), the rawData option by
// wire version and distinct's hint, against trellis-sim playing 7.0, 7.1 and 8.2: what the
// server received (command monitoring), results, typed errors, blocking and async.
#include <QtTest/QtTest>

#include <boost/asio.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/sim/deployment.hpp"
#include "sim_rig.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using trellis::errc;
using namespace std::chrono_literals;

namespace {

using trellis_test::doc;
bson::array arr(std::string_view json) { return bson::array(bson::from_json(json)); }
std::string json(bson::document_view d) { return bson::to_json(d, bson::json_mode::canonical); }

using rig = trellis_test::sim_rig;

sim::sim_config standalone(int wire) {
    sim::sim_config cfg;
    cfg.max_wire_version = wire;
    return cfg;
}

void fill(trellis::collection c, int n) {
    c.drop();
    std::vector<bson::document> docs;
    for (int i = 1; i <= n; ++i) docs.push_back(bson::make_document(bson::kvp("_id", i), bson::kvp("x", i * 11)));
    c.insert_many(std::move(docs));
}

}  // namespace

class RunCursorCommandTest : public QObject {
    Q_OBJECT

    std::unique_ptr<rig> v70_;  // wire 21, the sim's default

private slots:
    void initTestCase() { v70_ = std::make_unique<rig>(standalone(21)); }
    void cleanupTestCase() { v70_.reset(); }

    void a_cursor_over_several_batches_blocking() {
        auto db = (*v70_->client)["rcc"];
        fill(db["seven"], 7);
        trellis::run_cursor_command_options o;
        o.batch_size = 3;
        o.comment = std::string("more");
        auto cur = db.run_cursor_command(doc(R"({"find": "seven", "filter": {}, "sort": {"_id": 1}, "batchSize": 2})"), o);
        QVERIFY(cur.id() != 0);
        QCOMPARE(cur.ns(), std::string("rcc.seven"));
        std::vector<std::int64_t> ids;
        while (auto d = cur.next()) ids.push_back((*d)["_id"].as_int64());
        QCOMPARE(ids, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7}));
        QVERIFY(!cur.alive());
        // The command went as given; the getMores (2 then 3 and 2 documents) took the options.
        const auto find = v70_->sent("find").back();
        QCOMPARE(find["batchSize"].as_int64(), std::int64_t(2));
        QVERIFY(!find.view().find("comment"));
        const auto more = v70_->sent("getMore");
        QCOMPARE(more.size(), std::size_t(2));
        for (const auto& g : more) {
            QCOMPARE(g["collection"].get_string(), std::string_view("seven"));
            QCOMPARE(g["batchSize"].as_int64(), std::int64_t(3));
            QCOMPARE(g["comment"].get_string(), std::string_view("more"));
            QVERIFY(!g.view().find("maxTimeMS"));
            QCOMPARE(json(g["lsid"].get_document()), json(find["lsid"].get_document()));  // the same implicit session
        }
        // A reply whose first batch is all: no getMore, cursor id 0.
        const auto before = v70_->sent("getMore").size();
        auto small = db.run_cursor_command(doc(R"({"aggregate": "seven", "pipeline": [{"$match": {"_id": {"$lt": 3}}}], "cursor": {}})"));
        QCOMPARE(small.id(), std::int64_t(0));
        int n = 0;
        while (small.next()) ++n;
        QCOMPARE(n, 2);
        QCOMPARE(v70_->sent("getMore").size(), before);
        // listIndexes, another cursor command, whose ns is not a collection's own name alone.
        auto indexes = db.run_cursor_command(doc(R"({"listIndexes": "seven"})"));
        auto first = indexes.next();
        QVERIFY(first);
        QCOMPARE((*first)["name"].get_string(), std::string_view("_id_"));
    }

    void a_cursor_over_several_batches_async() {
        auto db = (*v70_->client)["rcc"];
        fill(db["five"], 5);
        trellis::run_cursor_command_options o;
        o.batch_size = 2;
        // use_future, then async_next with use_future.
        auto cur = db.async_run_cursor_command(doc(R"({"find": "five", "filter": {}, "batchSize": 1})"), o, asio::use_future).get();
        int n = 0;
        while (cur.async_next(asio::use_future).get()) ++n;
        QCOMPARE(n, 5);
        QCOMPARE(v70_->sent("getMore").back()["batchSize"].as_int64(), std::int64_t(2));
        // use_awaitable on another executor, no options.
        asio::io_context io;
        std::vector<std::int64_t> ids;
        std::exception_ptr failure;
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            auto c = co_await db.async_run_cursor_command(doc(R"({"find": "five", "filter": {"_id": {"$gt": 2}}, "batchSize": 1})"),
                                                          asio::use_awaitable);
            while (auto d = co_await c.async_next(asio::use_awaitable)) ids.push_back((*d)["_id"].as_int64());
        }, [&](std::exception_ptr e) { failure = e; });
        io.run();
        QVERIFY(!failure);
        QCOMPARE(ids, (std::vector<std::int64_t>{3, 4, 5}));
        // A callback token receives the typed error.
        std::promise<std::exception_ptr> got;
        db.async_run_cursor_command(doc(R"({"ping": 1})"), [&](std::exception_ptr e, trellis::cursor) { got.set_value(e); });
        auto e = got.get_future().get();
        QVERIFY(e);
        try {
            std::rethrow_exception(e);
        } catch (const trellis::error& x) {
            QCOMPARE(x.code(), make_error_code(errc::invalid_argument));
        }
    }

    void close_sends_kill_cursors() {
        auto db = (*v70_->client)["rcc"];
        fill(db["kill"], 6);
        auto cur = db.run_cursor_command(doc(R"({"find": "kill", "filter": {}, "batchSize": 2})"));
        QVERIFY(cur.next());
        const std::int64_t id = cur.id();
        QVERIFY(id != 0);
        const auto kills_before = v70_->sent("killCursors").size();
        cur.close();
        QVERIFY(!cur.alive());
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (v70_->sent("killCursors").size() == kills_before && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
        const auto kill = v70_->sent("killCursors").back();
        QCOMPARE(kill["killCursors"].get_string(), std::string_view("kill"));
        QCOMPARE(kill["cursors"].get_array()[0].as_int64(), id);
        // The server's cursor is gone: a getMore of it is CursorNotFound (43).
        try {
            db.run_command(bson::make_document(bson::kvp("getMore", id), bson::kvp("collection", "kill")));
            QFAIL("the cursor must be gone");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 43);
        }
        // An exhausted cursor sends no killCursors when closed.
        auto done = db.run_cursor_command(doc(R"({"find": "kill", "filter": {}})"));
        QCOMPARE(done.id(), std::int64_t(0));
        const auto kills = v70_->sent("killCursors").size();
        done.close();
        std::this_thread::sleep_for(50ms);
        QCOMPARE(v70_->sent("killCursors").size(), kills);
    }

    void bad_commands_and_options_are_typed_errors() {
        auto db = (*v70_->client)["rcc"];
        // A command without a cursor in its reply.
        try {
            db.run_cursor_command(doc(R"({"ping": 1})"));
            QFAIL("ping returns no cursor");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("\"ping\" has no cursor") != std::string::npos, e.what());
        }
        // The server's own refusals keep their code.
        try {
            db.run_cursor_command(doc(R"({"noSuchCommand": 1})"));
            QFAIL("an unknown command must fail");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 59);
        }
        try {
            db.run_cursor_command(doc(R"({"find": 3, "filter": {}})"));
            QFAIL("a collection name that is not a string must fail");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 73);  // InvalidNamespace
        }
        // Refused before anything is sent.
        const auto sent_before = v70_->count();
        const auto refused = [&](bson::document command, trellis::run_cursor_command_options o, std::string_view what) {
            try {
                db.run_cursor_command(std::move(command), std::move(o));
                QFAIL("must be refused");
            } catch (const trellis::error& e) {
                QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
                QVERIFY2(std::string(e.what()).find(what) != std::string::npos, e.what());
            }
        };
        refused(bson::document(), {}, "empty");
        trellis::run_cursor_command_options zero;
        zero.batch_size = 0;
        refused(doc(R"({"find": "x"})"), zero, "batch_size");
        trellis::run_cursor_command_options negative;
        negative.max_time = -1ms;
        refused(doc(R"({"find": "x"})"), negative, "max_time");
        QCOMPARE(v70_->count(), sent_before);
    }

    void get_more_max_time_and_tailable_cursors() {
        auto db = (*v70_->client)["rcc"];
        db["capped"].drop();
        auto c = db.create_collection("capped", doc(R"({"capped": true, "size": 4096})"));
        c.insert_one(doc(R"({"_id": 1})"));
        // tailableAwait: an empty getMore waits max_time, answers nullopt, the cursor stays open.
        trellis::run_cursor_command_options await;
        await.cursor_type = trellis::cursor_type::tailable_await;
        await.max_time = 150ms;
        auto cur = db.run_cursor_command(doc(R"({"find": "capped", "filter": {}, "tailable": true, "awaitData": true})"), await);
        QVERIFY(cur.next());
        const auto start = std::chrono::steady_clock::now();
        QVERIFY(!cur.next());
        QVERIFY(std::chrono::steady_clock::now() - start >= 120ms);
        QVERIFY(cur.alive());
        QCOMPARE(v70_->sent("getMore").back()["maxTimeMS"].as_int64(), std::int64_t(150));
        c.insert_one(doc(R"({"_id": 2})"));
        auto next = cur.next();
        QVERIFY(next);
        QCOMPARE((*next)["_id"].as_int64(), std::int64_t(2));
        cur.close();
        // tailable (no await): nothing new is nullopt at once, and a later next() looks again.
        trellis::run_cursor_command_options tail;
        tail.cursor_type = trellis::cursor_type::tailable;
        auto t = db.run_cursor_command(doc(R"({"find": "capped", "filter": {}, "tailable": true})"), tail);
        QVERIFY(t.next() && t.next());
        QVERIFY(!t.next());
        QVERIFY(t.alive());
        c.insert_one(doc(R"({"_id": 3})"));
        QVERIFY(t.next());
        t.close();
        // maxTimeMS on a getMore of a cursor that does not await data: the server refuses it
        // (mongod's 2 BadValue), and the error reaches next().
        fill(db["plain"], 3);
        trellis::run_cursor_command_options max;
        max.max_time = 300ms;
        auto p = db.run_cursor_command(doc(R"({"find": "plain", "filter": {}, "batchSize": 1})"), max);
        QVERIFY(p.next());
        try {
            p.next();
            QFAIL("maxTimeMS on a getMore of a non-awaitData cursor must fail");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 2);
        }
        QCOMPARE(v70_->sent("getMore").back()["maxTimeMS"].as_int64(), std::int64_t(300));
    }

    void explicit_session_and_read_preference() {
        // An explicit session: the command and its getMores carry its lsid.
        auto db = (*v70_->client)["rcc"];
        fill(db["sess"], 4);
        auto session = v70_->client->start_session();
        auto cur = db.with_session(session).run_cursor_command(doc(R"({"find": "sess", "filter": {}, "batchSize": 1})"));
        int n = 0;
        while (cur.next()) ++n;
        QCOMPARE(n, 4);
        const auto lsid = json(session.id());
        QCOMPARE(json(v70_->sent("find").back()["lsid"].get_document()), lsid);
        QCOMPARE(json(v70_->sent("getMore").back()["lsid"].get_document()), lsid);

        // A replica set: a secondary read, and its getMores on the same secondary.
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        cfg.election_delay = 50ms;
        rig rs(cfg);
        QVERIFY(rs.deployment->wait_for_primary(10s));
        auto rdb = (*rs.client)["rcc"];
        trellis::write_concern all;
        all.w = 3;
        auto coll = rdb["rs"].with_options({std::nullopt, std::nullopt, all, std::nullopt});
        std::vector<bson::document> docs;
        for (int i = 0; i < 5; ++i) docs.push_back(bson::make_document(bson::kvp("_id", i)));
        coll.insert_many(std::move(docs));
        trellis::run_cursor_command_options o;
        trellis::read_preference secondary;
        secondary.mode = trellis::read_preference_mode::secondary;
        o.read_preference = secondary;
        auto sc = rdb.run_cursor_command(doc(R"({"find": "rs", "filter": {}, "batchSize": 2})"), o);
        QVERIFY(sc.address() != *rs.deployment->primary());
        int m = 0;
        while (sc.next()) ++m;
        QCOMPARE(m, 5);
        QCOMPARE(rs.sent("find").back()["$readPreference"].get_document()["mode"].get_string(), std::string_view("secondary"));
        QVERIFY(!rs.sent("getMore").empty());
        // Without a read preference: the primary, whatever the handle's.
        auto pc = rdb.with_options({secondary, std::nullopt, std::nullopt, std::nullopt})
                      .run_cursor_command(doc(R"({"find": "rs", "filter": {}, "batchSize": 2})"));
        QCOMPARE(pc.address(), *rs.deployment->primary());
    }

    void raw_data_is_sent_to_8_2_only() {
        rig v82(standalone(27));
        for (rig* r : {&v82, v70_.get()}) {
            const bool sends = r == &v82;
            auto db = (*r->client)["raw"];
            auto c = db["coll"];
            c.drop();
            const auto checked = [&](std::string_view command) {
                const auto all = r->sent(command);
                QVERIFY2(!all.empty(), std::string(command).c_str());
                const auto f = all.back().view().find("rawData");
                QVERIFY2(sends ? f && f->get_bool() : !f, (std::string(command) + ": " + json(all.back().view())).c_str());
            };
            // Every operation of the CRUD spec that has rawData (the 7.0 sim refuses the field,
            // so a success there proves it was left out as well).
            trellis::insert_one_options io;
            io.raw_data = true;
            c.insert_one(doc(R"({"_id": 1, "x": 1})"), io);
            checked("insert");
            trellis::insert_many_options im;
            im.raw_data = true;
            std::vector<bson::document> two;
            two.push_back(doc(R"({"_id": 2, "x": 2})"));
            two.push_back(doc(R"({"_id": 3, "x": 2})"));
            QCOMPARE(c.insert_many(std::move(two), im).inserted_ids.size(), std::size_t(2));
            checked("insert");
            trellis::update_options uo;
            uo.raw_data = true;
            QCOMPARE(c.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"y": 1}})"), uo).modified_count, std::int64_t(1));
            checked("update");
            QCOMPARE(c.replace_one(doc(R"({"_id": 1})"), doc(R"({"x": 1})"), uo).matched_count, std::int64_t(1));
            checked("update");
            trellis::bulk_write_options bo;
            bo.raw_data = true;
            std::vector<trellis::write_model> models;
            models.emplace_back(trellis::delete_one_model{doc(R"({"_id": 3})"), std::nullopt, std::nullopt});
            QCOMPARE(c.bulk_write(std::move(models), bo).deleted_count, std::int64_t(1));
            checked("delete");
            trellis::find_one_and_modify_options fo;
            fo.raw_data = true;
            QVERIFY(c.find_one_and_update(doc(R"({"_id": 2})"), doc(R"({"$set": {"z": 1}})"), fo));
            checked("findAndModify");
            trellis::find_options f;
            f.raw_data = true;
            QCOMPARE(c.find(doc("{}"), f).next().has_value(), true);
            checked("find");
            QVERIFY(c.find_one(doc(R"({"_id": 2})"), f));
            checked("find");
            trellis::count_options co;
            co.raw_data = true;
            QCOMPARE(c.count_documents(doc("{}"), co), std::int64_t(2));
            checked("aggregate");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            QCOMPARE(c.count(doc("{}"), co), std::int64_t(2));
#pragma GCC diagnostic pop
            checked("count");
            trellis::estimated_count_options eo;
            eo.raw_data = true;
            QCOMPARE(c.estimated_document_count(eo), std::int64_t(2));
            checked("count");
            trellis::distinct_options dopt;
            dopt.raw_data = true;
            QCOMPARE(c.distinct("x", doc("{}"), dopt).view().count(), std::size_t(2));
            checked("distinct");
            trellis::aggregate_options ao;
            ao.raw_data = true;
            QVERIFY(c.aggregate(arr(R"({"0": {"$match": {}}})"), ao).next());
            checked("aggregate");
            QVERIFY(db.aggregate(arr(R"({"0": {"$documents": [{"a": 1}]}})"), ao).next().has_value());
            checked("aggregate");
            trellis::delete_options del;
            del.raw_data = true;
            QCOMPARE(c.delete_many(doc("{}"), del).deleted_count, std::int64_t(2));
            checked("delete");
            // Unset: never sent.
            c.insert_one(doc(R"({"_id": 9})"));
            QVERIFY(!r->sent("insert").back().view().find("rawData"));
        }
        // What the sims play: 7.0 refuses the field (40415), 8.2 checks its type.
        try {
            (*v70_->client)["raw"].run_command(doc(R"({"find": "coll", "rawData": true})"));
            QFAIL("7.0 must refuse rawData");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 40415);
            QVERIFY2(std::string(e.what()).find("find.rawData") != std::string::npos, e.what());
        }
        try {
            (*v82.client)["raw"].run_command(doc(R"({"find": "coll", "rawData": "yes"})"));
            QFAIL("rawData must be a bool");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 14);
        }
        QCOMPARE((*v82.client).server_info()["version"].get_string(), std::string_view("8.2.0"));
    }

    void distinct_hint_from_7_1() {
        rig v71(standalone(22));
        for (rig* r : {&v71, v70_.get()}) {
            auto c = (*r->client)["hint"]["coll"];
            fill(c, 3);
            c.create_index(doc(R"({"x": 1})"));
            trellis::distinct_options by_name;
            by_name.hint = std::string("_id_");
            trellis::distinct_options by_keys;
            by_keys.hint = doc(R"({"x": 1})");
            if (r == &v71) {
                QCOMPARE(c.distinct("x", doc(R"({"_id": 1})"), by_name).view().count(), std::size_t(1));
                QCOMPARE(r->sent("distinct").back()["hint"].get_string(), std::string_view("_id_"));
                auto async = c.async_distinct("x", doc("{}"), by_keys, asio::use_future).get();
                QCOMPARE(async.view().count(), std::size_t(3));
                QCOMPARE(json(r->sent("distinct").back()["hint"].get_document()), json(doc(R"({"x": 1})")));
                trellis::distinct_options missing;
                missing.hint = std::string("nope_1");
                try {
                    c.distinct("x", doc("{}"), missing);
                    QFAIL("a hint naming no index must fail");
                } catch (const trellis::operation_failure& e) {
                    QCOMPARE(e.server_code(), 2);
                }
            } else {
                // Before 7.1 the server refuses the field, as mongod does: sent, and refused.
                try {
                    c.distinct("x", doc("{}"), by_name);
                    QFAIL("7.0 must refuse distinct's hint");
                } catch (const trellis::operation_failure& e) {
                    QCOMPARE(e.server_code(), 40415);
                    QVERIFY2(std::string(e.what()).find("distinct.hint") != std::string::npos, e.what());
                }
                QCOMPARE(r->sent("distinct").back()["hint"].get_string(), std::string_view("_id_"));
            }
        }
    }
};

QTEST_GUILESS_MAIN(RunCursorCommandTest)
#include "run_cursor_command_test.moc"
