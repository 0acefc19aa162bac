// client::bulk_write (MongoDB 8.0's bulkWrite) and the update sort option against trellis-sim
// playing 8.0: mixed namespaces, ordered and unordered, verbose and summary results, write
// errors with partial results, a top-level error after a first batch, batches split by
// maxWriteBatchSize, the results cursor read with getMore, the blocking and async forms, and
// what is refused before anything is sent. A second deployment plays 7.0 (no bulkWrite, no sort).
#include <QtTest/QtTest>

#include <boost/asio.hpp>
#include <map>
#include <mutex>
#include <set>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/sim/deployment.hpp"
#include "command_recorder.hpp"
#include "sim_rig.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using trellis::errc;

namespace {

using trellis_test::doc;

trellis::namespace_write_model insert(std::string ns, std::string_view json) {
    return {std::move(ns), trellis::insert_one_model{doc(json)}};
}
trellis::namespace_write_model update_one(std::string ns, std::string_view filter, std::string_view update) {
    trellis::update_one_model m;
    m.filter = doc(filter);
    m.update = doc(update);
    return {std::move(ns), std::move(m)};
}
trellis::namespace_write_model delete_many(std::string ns, std::string_view filter) {
    trellis::delete_many_model m;
    m.filter = doc(filter);
    return {std::move(ns), std::move(m)};
}

std::vector<std::int64_t> ids(trellis::collection c) {
    std::vector<std::int64_t> out;
    trellis::find_options o;
    o.sort = doc(R"({"_id": 1})");
    auto cur = c.find({}, o);
    while (auto d = cur.next()) out.push_back((*d)["_id"].as_int64());
    return out;
}

}  // namespace

class ClientBulkWriteTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> sim_, old_;  // 8.0 and 7.0
    trellis_test::command_recorder rec_;  // what client_ sent
    std::unique_ptr<trellis::client> client_, old_client_;

    std::vector<bson::document> sent(std::string_view name) { return rec_.sent(name); }
    // A replica set playing 8.0: 2 models per bulkWrite, 1 result per cursor batch.
    static sim::sim_config replica_set_8_0() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.max_wire_version = 25;
        cfg.max_write_batch_size = 2;
        cfg.bulk_write_cursor_batch_size = 1;
        return cfg;
    }
    void forget() { rec_.clear(); }

private slots:
    void initTestCase() {
        sim::sim_config cfg;
        cfg.max_wire_version = 25;             // 8.0
        cfg.max_write_batch_size = 3;          // a few models per bulkWrite
        cfg.bulk_write_cursor_batch_size = 2;  // a few results per cursor batch: getMore
        sim_ = std::make_unique<sim::deployment>(cfg);
        sim_->start();
        client_ = std::make_unique<trellis::client>(sim_->uri(), rec_.settings());
        old_ = std::make_unique<sim::deployment>(sim::sim_config{});  // 7.0
        old_->start();
        old_client_ = std::make_unique<trellis::client>(old_->uri());
    }
    void cleanupTestCase() {
        client_.reset();
        old_client_.reset();
        sim_->stop();
        old_->stop();
    }
    void init() {
        for (const char* db : {"cbw", "cbw2"}) client_->drop_database(db);
        forget();
    }

    // Seven models on three namespaces of two databases; three per command (maxWriteBatchSize),
    // each naming only its own namespaces; verbose results read through getMore.
    void mixed_namespaces_verbose() {
        (*client_)["cbw"]["b"].insert_many({doc(R"({"_id": 1, "x": 1})"), doc(R"({"_id": 2, "x": 2})"), doc(R"({"_id": 3, "x": 3})")});
        forget();
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 10})"));
        models.push_back(insert("cbw2.c", R"({"_id": 20})"));
        models.push_back(update_one("cbw.b", R"({"_id": 1})", R"({"$inc": {"x": 10}})"));
        trellis::update_many_model many;
        many.filter = doc(R"({"_id": {"$gte": 2}})");
        many.update = doc(R"({"$set": {"seen": true}})");
        models.push_back({"cbw.b", std::move(many)});
        trellis::replace_one_model replace;
        replace.filter = doc(R"({"_id": 30})");
        replace.replacement = doc(R"({"r": 1})");
        replace.upsert = true;
        models.push_back({"cbw2.c", std::move(replace)});
        trellis::delete_one_model del;
        del.filter = doc(R"({"_id": 10})");
        models.push_back({"cbw.a", std::move(del)});
        models.push_back(insert("cbw.a", R"({"x": "generated id"})"));
        trellis::client_bulk_write_options o;
        o.verbose_results = true;
        const auto r = client_->bulk_write(std::move(models), o);
        QVERIFY(r.acknowledged);
        QVERIFY(r.has_verbose_results);
        QCOMPARE(r.inserted_count, std::int64_t(3));
        QCOMPARE(r.matched_count, std::int64_t(3));
        QCOMPARE(r.modified_count, std::int64_t(3));
        QCOMPARE(r.upserted_count, std::int64_t(1));
        QCOMPARE(r.deleted_count, std::int64_t(1));
        QCOMPARE(r.insert_results.size(), std::size_t(3));
        QCOMPARE(r.insert_results.at(1).inserted_id["_id"].as_int64(), std::int64_t(20));
        QCOMPARE(r.insert_results.at(6).inserted_id["_id"].type(), bson::type::oid);  // generated, then confirmed
        QCOMPARE(r.update_results.at(3).matched_count, std::int64_t(2));
        QVERIFY(!r.update_results.at(3).upserted_id);
        QCOMPARE((*r.update_results.at(4).upserted_id)["_id"].as_int64(), std::int64_t(30));
        QCOMPARE(r.delete_results.at(5).deleted_count, std::int64_t(1));
        // 7 models, 3 per command: 3 commands on admin; the first names two namespaces.
        const auto commands = sent("bulkWrite");
        QCOMPARE(commands.size(), std::size_t(3));
        QCOMPARE(commands[0]["ops"].get_array().size(), std::size_t(3));
        QCOMPARE(commands[0]["nsInfo"].get_array().size(), std::size_t(3));  // cbw.a, cbw2.c, cbw.b
        QCOMPARE(commands[2]["nsInfo"].get_array().size(), std::size_t(1));
        QCOMPARE(commands[0]["errorsOnly"].get_bool(), false);
        QCOMPARE(commands[0]["$db"].get_string(), std::string_view("admin"));
        QVERIFY(!sent("getMore").empty());  // 3 results, 2 per batch
        QCOMPARE(ids((*client_)["cbw2"]["c"]), (std::vector<std::int64_t>{20, 30}));
        QCOMPARE((*client_)["cbw"]["b"].count_documents(doc(R"({"seen": true})")), std::int64_t(2));
        // The wire: ops and nsInfo arrived as OP_MSG document sequences.
        const auto status = client_->run_command("admin", doc(R"({"serverStatus": 1})"));
        QVERIFY(status.view().find("trellisSim"));
        const auto seq = status["trellisSim"].get_document()["documentSequences"].get_document();
        QVERIFY(seq["ops"].get_document()["sequences"].as_int64() >= 3);
        QVERIFY(seq["nsInfo"].get_document()["sequences"].as_int64() >= 3);
    }

    // Summary results: the counts only (errorsOnly: true), in one command.
    void summary_results() {
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        models.push_back(update_one("cbw.a", R"({"_id": 1})", R"({"$set": {"y": 1}})"));
        const auto r = client_->bulk_write(std::move(models));
        QVERIFY(!r.has_verbose_results);
        QVERIFY(r.insert_results.empty() && r.update_results.empty() && r.delete_results.empty());
        QCOMPARE(r.inserted_count, std::int64_t(1));
        QCOMPARE(r.modified_count, std::int64_t(1));
        const auto commands = sent("bulkWrite");
        QCOMPARE(commands.size(), std::size_t(1));
        QCOMPARE(commands[0]["errorsOnly"].get_bool(), true);
        QCOMPARE(commands[0]["ordered"].get_bool(), true);
    }

    // Ordered: the duplicate stops it; the error has the write error by model index and what was done.
    void ordered_write_error_with_partial_result() {
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        models.push_back(insert("cbw.a", R"({"_id": 2})"));
        models.push_back(insert("cbw.a", R"({"_id": 3})"));  // a second batch, never sent
        try {
            client_->bulk_write(std::move(models));
            QFAIL("expected a client_bulk_write_error");
        } catch (const trellis::client_bulk_write_error& e) {
            QCOMPARE(e.code(), std::error_code(errc::duplicate_key));
            QCOMPARE(e.server_code(), 11000);
            QVERIFY(!e.top_level_error());
            QCOMPARE(e.write_errors().size(), std::size_t(1));
            QCOMPARE(e.write_errors().begin()->first, std::size_t(1));
            QCOMPARE(e.write_errors().begin()->second.code, 11000);
            QVERIFY(e.partial_result());
            QCOMPARE(e.partial_result()->inserted_count, std::int64_t(1));
            QVERIFY(QString(e.what()).contains("model 1"));
        }
        QCOMPARE(sent("bulkWrite").size(), std::size_t(1));
        QCOMPARE(ids((*client_)["cbw"]["a"]), (std::vector<std::int64_t>{1}));
    }

    // Unordered: every model is attempted; a failure of the first sets no partial result when
    // nothing else succeeded, and does when something did.
    void unordered_write_errors() {
        (*client_)["cbw"]["a"].insert_one(doc(R"({"_id": 1})"));
        forget();
        trellis::client_bulk_write_options o;
        o.ordered = false;
        o.verbose_results = true;
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        models.push_back(insert("cbw.a", R"({"_id": 2})"));
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        models.push_back(insert("cbw.a", R"({"_id": 3})"));
        try {
            client_->bulk_write(std::move(models), o);
            QFAIL("expected a client_bulk_write_error");
        } catch (const trellis::client_bulk_write_error& e) {
            QCOMPARE(e.write_errors().size(), std::size_t(2));
            QVERIFY(e.write_errors().contains(0) && e.write_errors().contains(2));
            QVERIFY(e.partial_result());
            QCOMPARE(e.partial_result()->inserted_count, std::int64_t(2));
            QCOMPARE(e.partial_result()->insert_results.size(), std::size_t(2));
            QVERIFY(e.partial_result()->insert_results.contains(3));
        }
        std::vector<trellis::namespace_write_model> only_failures;
        only_failures.push_back(insert("cbw.a", R"({"_id": 1})"));
        only_failures.push_back(insert("cbw.a", R"({"_id": 2})"));
        try {
            client_->bulk_write(std::move(only_failures), o);
            QFAIL("expected a client_bulk_write_error");
        } catch (const trellis::client_bulk_write_error& e) {
            QCOMPARE(e.write_errors().size(), std::size_t(2));
            QVERIFY(!e.partial_result());
        }
    }

    // A command error on the second batch: the error holds it (with the server's reply) and
    // the first batch's result.
    void top_level_error_after_a_batch() {
        trellis_test::fail_command(*client_, R"({"failCommands": ["bulkWrite"], "errorCode": 8})", R"({"skip": 1})");
        std::vector<trellis::namespace_write_model> models;
        for (int i = 1; i <= 5; ++i) models.push_back(insert("cbw.a", R"({"_id": )" + std::to_string(i) + "}"));
        try {
            client_->bulk_write(std::move(models));
            QFAIL("expected a client_bulk_write_error");
        } catch (const trellis::client_bulk_write_error& e) {
            QVERIFY(e.top_level_error());
            QCOMPARE(e.server_code(), 8);
            QVERIFY(e.write_errors().empty());
            QVERIFY(e.partial_result());
            QCOMPARE(e.partial_result()->inserted_count, std::int64_t(3));
            try {
                std::rethrow_exception(e.top_level_error());
            } catch (const trellis::command_failure& top) {
                QCOMPARE(top.reply()["code"].as_int64(), std::int64_t(8));
            }
        }
        trellis_test::fail_command_off(*client_);
        QCOMPARE(ids((*client_)["cbw"]["a"]), (std::vector<std::int64_t>{1, 2, 3}));
    }

    // The async form: use_future and use_awaitable.
    void async_forms() {
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        models.push_back(delete_many("cbw.a", R"({})"));
        auto f = client_->async_bulk_write(std::move(models), {}, asio::use_future);
        const auto r = f.get();
        QCOMPARE(r.inserted_count, std::int64_t(1));
        QCOMPARE(r.deleted_count, std::int64_t(1));

        asio::io_context io;
        trellis::client_bulk_write_result awaited;
        std::exception_ptr failed;
        trellis::client& c = *client_;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                std::vector<trellis::namespace_write_model> more;
                more.push_back(insert("cbw2.c", R"({"_id": 7})"));
                trellis::client_bulk_write_options o;
                o.verbose_results = true;
                awaited = co_await c.async_bulk_write(std::move(more), o, asio::use_awaitable);
                std::vector<trellis::namespace_write_model> dup;
                dup.push_back(insert("cbw2.c", R"({"_id": 7})"));
                try {
                    co_await c.async_bulk_write(std::move(dup), {}, asio::use_awaitable);
                } catch (...) {
                    failed = std::current_exception();
                }
            },
            asio::detached);
        io.run();
        QCOMPARE(awaited.insert_results.at(0).inserted_id["_id"].as_int64(), std::int64_t(7));
        QVERIFY(failed);
        try {
            std::rethrow_exception(failed);
        } catch (const trellis::client_bulk_write_error& e) {
            QCOMPARE(e.write_errors().at(0).code, 11000);
        }
    }

    // w: 0 (unordered, summary): sent without waiting; nothing known of the result.
    void unacknowledged() {
        trellis::client_bulk_write_options o;
        o.ordered = false;
        o.write_concern = trellis::write_concern{0, std::nullopt, std::nullopt, std::nullopt};
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        const auto r = client_->bulk_write(std::move(models), o);
        QVERIFY(!r.acknowledged);
        QCOMPARE(r.inserted_count, std::int64_t(0));
        QTRY_COMPARE((*client_)["cbw"]["a"].count_documents(), std::int64_t(1));
    }

    // What the spec refuses is refused before sending, naming why.
    void refused_before_sending() {
        auto refused = [&](std::vector<trellis::namespace_write_model> models, trellis::client_bulk_write_options o,
                           errc code, const char* words) {
            try {
                client_->bulk_write(std::move(models), std::move(o));
                QFAIL("expected a refusal");
            } catch (const trellis::error& e) {
                QCOMPARE(e.code(), std::error_code(code));
                QVERIFY2(QString(e.what()).contains(words), e.what());
            }
        };
        refused({}, {}, errc::invalid_argument, "no write models");
        trellis::client_bulk_write_options w0;
        w0.write_concern = trellis::write_concern{0, std::nullopt, std::nullopt, std::nullopt};
        std::vector<trellis::namespace_write_model> one;
        one.push_back(insert("cbw.a", R"({"_id": 1})"));
        refused(one, w0, errc::invalid_argument, "Cannot request unacknowledged write concern and ordered writes");
        w0.ordered = false;
        w0.verbose_results = true;
        refused(one, w0, errc::invalid_argument, "Cannot request unacknowledged write concern and verbose results");
        std::vector<trellis::namespace_write_model> bad_update;
        bad_update.push_back(update_one("cbw.a", "{}", R"({"x": 1})"));
        refused(bad_update, {}, errc::invalid_argument, "model 0");
        std::vector<trellis::namespace_write_model> bad_ns;
        bad_ns.push_back(insert("cbw.a", "{}"));
        bad_ns.push_back(insert("nodot", "{}"));
        refused(bad_ns, {}, errc::invalid_name, "model 1: the namespace \"nodot\"");
        trellis::update_many_model many;
        many.filter = doc("{}");
        many.update = doc(R"({"$set": {"a": 1}})");
        many.sort = doc(R"({"a": 1})");
        std::vector<trellis::namespace_write_model> sorted_many;
        sorted_many.push_back({"cbw.a", many});
        refused(sorted_many, {}, errc::invalid_argument, "not update_many");
        // A document over maxBsonObjectSize (16 MiB).
        bson::builder big;
        big.append("_id", 1).append("s", std::string(16 * 1024 * 1024, 'x'));
        std::vector<trellis::namespace_write_model> too_large;
        too_large.push_back({"cbw.a", trellis::insert_one_model{big.extract()}});
        refused(too_large, {}, errc::invalid_argument, "maxBsonObjectSize");
        QVERIFY(sent("bulkWrite").empty());
        // A 7.0 server has no bulkWrite: refused before sending, naming the version needed.
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.a", R"({"_id": 1})"));
        try {
            old_client_->bulk_write(std::move(models));
            QFAIL("expected a refusal");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), std::error_code(errc::invalid_argument));
            QVERIFY2(QString(e.what()).contains("MongoDB 8.0"), e.what());
        }
        // And the 7.0 simulator answers the command as mongod 7.0 would.
        try {
            old_client_->run_command("admin", doc(R"({"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}], "nsInfo": [{"ns": "cbw.a"}]})"));
            QFAIL("expected CommandNotFound");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 59);
        }
    }

    // sort (8.0): update_one, replace_one and a collection bulk_write's update_one_model change
    // the first match in that order; 7.0 refuses the field; update_many refuses it client-side.
    // raw_data: left out for 8.0 (which would refuse it, 40415), sent to 8.2.
    void raw_data_by_version() {
        std::vector<trellis::namespace_write_model> models;
        models.push_back(insert("cbw.raw", R"({"_id": 1})"));
        trellis::client_bulk_write_options o;
        o.raw_data = true;
        QCOMPARE(client_->bulk_write(models, o).inserted_count, std::int64_t(1));
        QVERIFY(!sent("bulkWrite").back().view().find("rawData"));
        sim::sim_config cfg;
        cfg.max_wire_version = 27;  // 8.2
        sim::deployment v82(cfg);
        v82.start();
        std::mutex m;
        std::vector<bson::document> commands;
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e); s && s->command_name == "bulkWrite") {
                std::lock_guard lock(m);
                commands.push_back(s->command);
            }
        };
        {
            trellis::client c82(v82.uri(), std::move(settings));
            QCOMPARE(c82.bulk_write(models, o).inserted_count, std::int64_t(1));
        }
        QCOMPARE(commands.size(), std::size_t(1));
        const auto raw = commands.front().view().find("rawData");
        QVERIFY(raw && raw->get_bool());
        v82.stop();
    }

    void update_sort() {
        auto c = (*client_)["cbw"]["s"];
        c.insert_many({doc(R"({"_id": 1, "x": 1})"), doc(R"({"_id": 2, "x": 1})"), doc(R"({"_id": 3, "x": 1})")});
        trellis::update_options o;
        o.sort = doc(R"({"_id": -1})");
        QCOMPARE(c.update_one(doc(R"({"x": 1})"), doc(R"({"$set": {"x": 2}})"), o).modified_count, std::int64_t(1));
        QCOMPARE(c.find_one(doc(R"({"x": 2})"))->view()["_id"].as_int64(), std::int64_t(3));
        const auto update_sent = sent("update").back();
        const auto statement = (*update_sent["updates"].get_array().begin()).get_document();
        QCOMPARE(statement["sort"].get_document()["_id"].as_int64(), std::int64_t(-1));
        o.sort = doc(R"({"_id": 1})");
        c.replace_one(doc(R"({"x": 1})"), doc(R"({"x": 5})"), o);
        QCOMPARE(c.find_one(doc(R"({"x": 5})"))->view()["_id"].as_int64(), std::int64_t(1));
        trellis::update_one_model m;
        m.filter = doc(R"({"x": {"$gte": 1}})");
        m.update = doc(R"({"$set": {"x": 9}})");
        m.sort = doc(R"({"x": -1})");  // x: 5 (_id 1) comes first
        c.bulk_write({m});
        QCOMPARE(c.find_one(doc(R"({"x": 9})"))->view()["_id"].as_int64(), std::int64_t(1));
        // Through client::bulk_write too.
        std::vector<trellis::namespace_write_model> models;
        trellis::update_one_model cm;
        cm.filter = doc(R"({"x": {"$lt": 9}})");
        cm.update = doc(R"({"$set": {"x": 0}})");
        cm.sort = doc(R"({"_id": -1})");
        models.push_back({"cbw.s", cm});
        client_->bulk_write(std::move(models));
        QCOMPARE(c.find_one(doc(R"({"x": 0})"))->view()["_id"].as_int64(), std::int64_t(3));
        try {
            c.update_many(doc("{}"), doc(R"({"$set": {"y": 1}})"), o);
            QFAIL("expected a refusal");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), std::error_code(errc::invalid_argument));
        }
        auto old = (*old_client_)["cbw"]["s"];
        old.drop();
        old.insert_one(doc(R"({"_id": 1, "x": 1})"));
        try {
            old.update_one(doc(R"({"x": 1})"), doc(R"({"$set": {"x": 2}})"), o);
            QFAIL("expected the server's refusal");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 40415);
            QVERIFY2(QString(e.what()).contains("update.updates.sort"), e.what());
        }
    }

    // bulk_write in an explicit session, on a replica set playing 8.0 (2 models per command, 1
    // result per cursor batch): the session's lsid on every bulkWrite and getMore, a txnNumber
    // on each bulkWrite (retryable, one per command), the replies advance the session's times,
    // and the next causally consistent read carries afterClusterTime.
    void explicit_session_on_every_command() {
        trellis_test::sim_rig rs(replica_set_8_0());
        auto session = rs.client->start_session();
        const auto lsid = session.id();
        std::vector<trellis::namespace_write_model> models;
        for (int i = 0; i < 3; ++i) models.push_back(insert("sess.a", R"({"x": 1})"));
        trellis::client_bulk_write_options o;
        o.verbose_results = true;
        const auto r = rs.client->bulk_write(session, std::move(models), o);
        QCOMPARE(r.inserted_count, std::int64_t(3));
        const auto bulk = rs.sent("bulkWrite");
        QCOMPARE(bulk.size(), std::size_t(2));
        QVERIFY(bulk[0]["txnNumber"].as_int64() != bulk[1]["txnNumber"].as_int64());
        for (const auto& b : bulk) QCOMPARE(b["lsid"].get_document(), lsid.view());
        const auto more = rs.sent("getMore");
        QVERIFY(!more.empty());  // the first batch's second result
        for (const auto& g : more) QCOMPARE(g["lsid"].get_document(), lsid.view());
        QVERIFY(session.cluster_time());
        QVERIFY(session.operation_time());
        const auto after = *session.operation_time();
        (void)(*rs.client)["sess"]["a"].with_session(session).find_one(doc("{}"));
        const auto find = rs.sent("find").back();
        QCOMPARE(find["lsid"].get_document(), lsid.view());
        QVERIFY(find["readConcern"].get_document()["afterClusterTime"].get_timestamp() == after);

        // The async form, with any token: the same session's lsid.
        rs.forget();
        std::vector<trellis::namespace_write_model> one;
        one.push_back(insert("sess.a", R"({"x": 2})"));
        QCOMPARE(rs.client->async_bulk_write(session, std::move(one), {}, asio::use_future).get().inserted_count, std::int64_t(1));
        QCOMPARE(rs.sent("bulkWrite").back()["lsid"].get_document(), lsid.view());
    }

    // In a transaction (the transactions spec): every bulkWrite of it carries the transaction's
    // txnNumber and autocommit: false, the first startTransaction, none a writeConcern; the
    // writes appear at commit.
    void explicit_session_in_a_transaction() {
        trellis_test::sim_rig rs(replica_set_8_0());
        auto session = rs.client->start_session();
        session.start_transaction();
        std::vector<trellis::namespace_write_model> models;
        for (int i = 0; i < 3; ++i) models.push_back(insert("txn.a", "{\"_id\": " + std::to_string(i) + "}"));
        QCOMPARE(rs.client->bulk_write(session, std::move(models)).inserted_count, std::int64_t(3));
        QCOMPARE(ids((*rs.client)["txn"]["a"]), (std::vector<std::int64_t>{}));  // not committed yet
        session.commit_transaction();
        QCOMPARE(ids((*rs.client)["txn"]["a"]), (std::vector<std::int64_t>{0, 1, 2}));
        const auto bulk = rs.sent("bulkWrite");
        QCOMPARE(bulk.size(), std::size_t(2));
        for (std::size_t i = 0; i < bulk.size(); ++i) {
            const auto v = bulk[i].view();
            QCOMPARE(v["lsid"].get_document(), session.id().view());
            QCOMPARE(v["txnNumber"].as_int64(), bulk[0]["txnNumber"].as_int64());
            QCOMPARE(v["autocommit"].get_bool(), false);
            QCOMPARE(bool(v.find("startTransaction")), i == 0);
            QVERIFY(!v.find("writeConcern"));
        }
        QCOMPARE(rs.sent("commitTransaction").size(), std::size_t(1));
    }

    // Another client's or an ended session: invalid_argument, blocking or through the token,
    // and nothing sent.
    void bad_sessions_are_refused() {
        auto foreign = old_client_->start_session();
        auto ended = client_->start_session();
        ended.end_session();
        for (const auto* s : {&foreign, &ended}) {
            const std::string why = s == &foreign ? "different client" : "has ended";
            std::vector<trellis::namespace_write_model> models;
            models.push_back(insert("cbw.a", R"({"x": 1})"));
            try {
                (void)client_->bulk_write(*s, models);
                QFAIL("a bad session was accepted");
            } catch (const trellis::error& e) {
                QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
                QVERIFY2(std::string_view(e.what()).find(why) != std::string_view::npos, e.what());
            }
            try {
                (void)client_->async_bulk_write(*s, models, {}, asio::use_future).get();
                QFAIL("a bad session was accepted (async)");
            } catch (const trellis::error& e) {
                QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            }
        }
        QCOMPARE(sent("bulkWrite").size(), std::size_t(0));
    }

    // Sharded, two mongoses playing 8.0 with maxWriteBatchSize 2 and 3: each bulkWrite holds as
    // many ops as the router it went to allows (the batch is cut for the connection that sends it).
    void batches_follow_the_limits_of_the_router_that_gets_them() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.max_wire_version = 25;
        cfg.routers.resize(2);
        cfg.routers[0].max_write_batch_size = 2;
        cfg.routers[1].max_write_batch_size = 3;
        trellis_test::sim_rig rs(cfg);
        const auto routers = rs.deployment->members();
        const std::map<std::string, std::size_t> limit{{routers.at(0), 2}, {routers.at(1), 3}};
        constexpr int rounds = 8, per_round = 7;
        for (int round = 0; round < rounds; ++round) {
            std::vector<trellis::namespace_write_model> models;
            for (int i = 0; i < per_round; ++i) models.push_back(insert(i % 2 ? "cbw.r1" : "cbw.r2", "{}"));
            QCOMPARE(rs.client->bulk_write(std::move(models)).inserted_count, std::int64_t(per_round));
        }
        const auto commands = rs.sent("bulkWrite");
        const auto addresses = rs.rec.addresses("bulkWrite");
        QCOMPARE(commands.size(), addresses.size());
        std::set<std::string> used;
        std::size_t total = 0, left = per_round;
        for (std::size_t i = 0; i < commands.size(); ++i) {
            const std::size_t n = commands[i]["ops"].get_array().size();
            QCOMPARE(n, std::min(limit.at(addresses[i]), left));
            used.insert(addresses[i]);
            total += n;
            left -= n;
            if (left == 0) left = per_round;
        }
        QCOMPARE(total, std::size_t(rounds * per_round));
        QCOMPARE(used.size(), std::size_t(2));
    }
};

QTEST_GUILESS_MAIN(ClientBulkWriteTest)
#include "client_bulk_write_test.moc"
