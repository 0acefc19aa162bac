// The CRUD and collection-management surface against trellis-sim, each operation in its
// blocking and its async form (use_future / use_awaitable): results, typed errors and what
// the server received.
#include <QtTest/QtTest>

#include <boost/asio.hpp>
#include <algorithm>
#include <array>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <thread>

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
bson::array arr(std::string_view json) { return bson::array(bson::from_json(json)); }
std::vector<bson::document> docs(std::initializer_list<std::string_view> jsons) {
    std::vector<bson::document> out;
    for (auto j : jsons) out.push_back(doc(j));
    return out;
}
std::vector<bson::document> all(trellis::cursor c) {
    std::vector<bson::document> out;
    while (auto d = c.next()) out.push_back(std::move(*d));
    return out;
}

}  // namespace

class CrudTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> sim_;
    trellis_test::command_recorder rec_;  // what client_ sent
    std::unique_ptr<trellis::client> client_;

    std::vector<bson::document> sent(std::string_view name) { return rec_.sent(name); }

private slots:
    void initTestCase() {
        sim_ = std::make_unique<sim::deployment>(sim::sim_config{});
        sim_->start();
        client_ = std::make_unique<trellis::client>(sim_->uri(), rec_.settings());
    }
    void cleanupTestCase() {
        client_.reset();
        sim_->stop();
    }

    void insert_many_ordered_and_unordered() {
        auto c = (*client_)["crud"]["many"];
        c.drop();
        auto r = c.insert_many(docs({R"({"_id": 1})", R"({"a": 2})", R"({"a": 3})"}));
        QCOMPARE(r.inserted_ids.size(), std::size_t(3));
        QCOMPARE(r.inserted_ids[0]["_id"].as_int64(), std::int64_t(1));
        QCOMPARE(c.count_documents(), std::int64_t(3));
        // Ordered: stops at the duplicate; unordered: inserts the rest, and the error lists each refusal.
        try {
            c.insert_many(docs({R"({"_id": 10})", R"({"_id": 1})", R"({"_id": 11})"}));
            QFAIL("a duplicate _id must fail");
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.code(), make_error_code(errc::duplicate_key));
            QCOMPARE(e.write_errors().size(), std::size_t(1));
            QCOMPARE(e.write_errors()[0].index, std::int64_t(1));
            QCOMPARE(e.write_errors()[0].code, 11000);
        }
        QCOMPARE(c.count_documents(doc(R"({"_id": 11})")), std::int64_t(0));
        trellis::insert_many_options unordered;
        unordered.ordered = false;
        try {
            c.insert_many(docs({R"({"_id": 1})", R"({"_id": 20})", R"({"_id": 10})", R"({"_id": 21})"}), unordered);
            QFAIL("duplicates must fail");
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.write_errors().size(), std::size_t(2));
            QCOMPARE(e.write_errors()[0].index, std::int64_t(0));
            QCOMPARE(e.write_errors()[1].index, std::int64_t(2));
        }
        QCOMPARE(c.count_documents(doc(R"({"_id": {"$in": [20, 21]}})")), std::int64_t(2));
        // Async.
        auto f = c.async_insert_many(docs({R"({"x": 1})", R"({"x": 2})"}), {}, asio::use_future);
        QCOMPARE(f.get().inserted_ids.size(), std::size_t(2));
        QCOMPARE(c.count_documents(doc(R"({"x": {"$exists": true}})")), std::int64_t(2));
    }

    // async_next with use_awaitable, on the embedder's own io_context: the documents of the batch
    // in hand come without a post, the getMores through the client's strand, in order.
    void async_next_awaitable_across_batches() {
        auto c = (*client_)["crud"]["awaitable"];
        c.drop();
        std::vector<bson::document> many;
        for (int i = 0; i < 250; ++i) many.push_back(bson::make_document(bson::kvp("_id", i)));
        c.insert_many(std::move(many));
        const auto get_mores = sent("getMore").size();
        asio::io_context mine;
        auto work = [c]() mutable -> asio::awaitable<std::vector<std::int64_t>> {
            trellis::find_options o;
            o.batch_size = 100;
            o.sort = bson::make_document(bson::kvp("_id", 1));
            auto cur = co_await c.async_find(bson::document{}, o, asio::use_awaitable);
            std::vector<std::int64_t> ids;
            while (auto d = co_await cur.async_next(asio::use_awaitable)) ids.push_back((*d)["_id"].as_int64());
            co_return ids;
        };
        auto result = asio::co_spawn(mine, work(), asio::use_future);
        mine.run();
        const auto ids = result.get();
        QCOMPARE(ids.size(), std::size_t(250));
        for (std::size_t i = 0; i < ids.size(); ++i) QCOMPARE(ids[i], std::int64_t(i));
        QCOMPARE(sent("getMore").size() - get_mores, std::size_t(2));
    }

    void updates_replace_and_upsert() {
        auto c = (*client_)["crud"]["upd"];
        c.drop();
        c.insert_many(docs({R"({"_id": 1, "n": 1, "tags": [1, 5, 9]})", R"({"_id": 2, "n": 1})", R"({"_id": 3, "n": 2})"}));
        auto one = c.update_one(doc(R"({"n": 1})"), doc(R"({"$inc": {"n": 10}})"));
        QCOMPARE(one.matched_count, std::int64_t(1));
        QCOMPARE(one.modified_count, std::int64_t(1));
        QVERIFY(!one.upserted_id);
        auto many = c.update_many(doc(R"({"n": {"$lt": 5}})"), doc(R"({"$set": {"small": true}})"));
        QCOMPARE(many.matched_count, std::int64_t(2));
        trellis::update_options up;
        up.upsert = true;
        auto ins = c.update_one(doc(R"({"_id": 9})"), doc(R"({"$set": {"n": 9}})"), up);
        QCOMPARE(ins.matched_count, std::int64_t(0));
        QVERIFY(ins.upserted_id);
        QCOMPARE((*ins.upserted_id)["_id"].as_int64(), std::int64_t(9));
        auto rep = c.replace_one(doc(R"({"_id": 3})"), doc(R"({"replaced": true})"));
        QCOMPARE(rep.modified_count, std::int64_t(1));
        const auto got = c.find_one(doc(R"({"_id": 3})"));
        QVERIFY(got && got->contains("replaced") && !got->contains("n"));
        // arrayFilters reach the server (trellis-sim does not apply them yet: its refusal comes
        // back as a typed write error with the server's code and message).
        trellis::update_options af;
        af.array_filters = arr(R"({"0": {"e": {"$gt": 4}}})");
        try {
            c.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"tags.$[e]": 0}})"), af);
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.write_errors().at(0).code, 2);
            QVERIFY2(e.write_errors()[0].message.find("array filter") != std::string::npos, e.what());
        }
        QVERIFY(sent("update").back()["updates"].get_array()[0].get_document().contains("arrayFilters"));
        // Refused before sending: operators in a replacement, none in an update.
        try {
            c.replace_one(doc("{}"), doc(R"({"$set": {"a": 1}})"));
            QFAIL("a replacement with operators must be refused");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
        }
        QVERIFY_THROWS_EXCEPTION(trellis::error, c.update_many(doc("{}"), doc(R"({"a": 1})")));
        // update_one is a retryable write (txnNumber), update_many is not (on a replica set: the
        // sim standalone has no txnNumber either way; checked in the replica set test below).
        // Async with use_awaitable on the client's executor.
        asio::io_context io;
        std::optional<trellis::update_result> ar;
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            ar = co_await c.async_update_many(doc(R"({"small": true})"), doc(R"({"$unset": {"small": ""}})"), {},
                                              asio::use_awaitable);
        }, asio::detached);
        io.run();
        QVERIFY(ar);
        QCOMPARE(ar->modified_count, std::int64_t(1));
        QCOMPARE(c.async_replace_one(doc(R"({"_id": 2})"), doc(R"({"n": 2})"), {}, asio::use_future).get().matched_count,
                 std::int64_t(1));
        QCOMPARE(c.async_update_one(doc(R"({"_id": 2})"), doc(R"({"$inc": {"n": 1}})"), {}, asio::use_future).get().modified_count,
                 std::int64_t(1));
    }

    void deletes_counts_distinct() {
        auto c = (*client_)["crud"]["del"];
        c.drop();
        c.insert_many(docs({R"({"k": "a", "v": 1})", R"({"k": "b", "v": 2})", R"({"k": "a", "v": 3})", R"({"k": "c", "v": 4})"}));
        QCOMPARE(c.estimated_document_count(), std::int64_t(4));
        QCOMPARE(c.async_estimated_document_count(asio::use_future).get(), std::int64_t(4));
        trellis::count_options skip1;
        skip1.skip = 1;
        QCOMPARE(c.count_documents(doc(R"({"k": "a"})"), skip1), std::int64_t(1));
        QCOMPARE(c.async_count_documents(doc(R"({"v": {"$gt": 1}})"), {}, asio::use_future).get(), std::int64_t(3));
        const auto keys = c.distinct("k");
        QCOMPARE(keys.size(), std::size_t(3));
        QCOMPARE(c.async_distinct("k", doc(R"({"v": {"$gt": 2}})"), asio::use_future).get().size(), std::size_t(2));
        QCOMPARE(c.delete_one(doc(R"({"k": "a"})")).deleted_count, std::int64_t(1));
        QCOMPARE(sent("delete").back()["deletes"].get_array()[0].get_document()["limit"].as_int64(), std::int64_t(1));
        QCOMPARE(c.async_delete_one(doc(R"({"k": "zzz"})"), {}, asio::use_future).get().deleted_count, std::int64_t(0));
        QCOMPARE(c.count_documents(), std::int64_t(3));
    }

    void aggregate_cursor_and_out() {
        auto c = (*client_)["crud"]["agg"];
        c.drop();
        std::vector<bson::document> many;
        for (int i = 0; i < 30; ++i) many.push_back(bson::make_document(bson::kvp("i", i), bson::kvp("even", i % 2 == 0)));
        c.insert_many(std::move(many));
        trellis::aggregate_options o;
        o.batch_size = 4;
        auto evens = all(c.aggregate(arr(R"({"0": {"$match": {"even": true}}, "1": {"$sort": {"i": 1}}})"), o));
        QCOMPARE(evens.size(), std::size_t(15));
        QCOMPARE(evens.back()["i"].as_int64(), std::int64_t(28));
        QVERIFY(sent("getMore").size() >= 3);  // batches of 4
        auto grouped = all(c.async_aggregate(arr(R"({"0": {"$group": {"_id": "$even", "n": {"$sum": 1}}}})"), {},
                                             asio::use_future)
                               .get());
        QCOMPARE(grouped.size(), std::size_t(2));
        // $out is a write: sent without a cursor batchSize; it replaces the target's documents
        // and answers with an empty cursor.
        o.batch_size = 2;
        QVERIFY(all(c.aggregate(arr(R"({"0": {"$match": {"i": {"$lt": 5}}}, "1": {"$out": "agg_out"}})"), o)).empty());
        QVERIFY(sent("aggregate").back()["cursor"].get_document().empty());
        auto out = (*client_)["crud"]["agg_out"];
        QCOMPARE(out.count_documents(), std::int64_t(5));
        QVERIFY(all(c.async_aggregate(arr(R"({"0": {"$match": {"i": {"$gte": 28}}}, "1": {"$out": "agg_out"}})"), o,
                                      asio::use_future)
                        .get())
                    .empty());
        QCOMPARE(out.count_documents(), std::int64_t(2));  // replaced, not added to
    }

    void aggregate_merge_and_its_errors() {
        auto src = (*client_)["crud"]["merge_src"];
        auto dst = (*client_)["crud"]["merge_dst"];
        src.drop();
        dst.drop();
        src.insert_many(docs({R"({"_id": 1, "a": 1})", R"({"_id": 2, "a": 2})"}));
        dst.insert_one(doc(R"({"_id": 1, "b": 9})"));
        // Default: whenMatched merge (fields added), whenNotMatched insert.
        all(src.aggregate(arr(R"({"0": {"$merge": {"into": "merge_dst"}}})")));
        QCOMPARE(bson::to_json(*dst.find_one(doc(R"({"_id": 1})"))), std::string(R"({"_id": 1, "b": 9, "a": 1})"));
        QCOMPARE(dst.count_documents(), std::int64_t(2));
        // whenMatched fail: mongod's duplicate key error, its reply kept on the exception.
        try {
            all(src.async_aggregate(arr(R"({"0": {"$merge": {"into": "merge_dst", "whenMatched": "fail"}}})"), {},
                                    asio::use_future)
                    .get());
            QFAIL("whenMatched fail must fail on a match");
        } catch (const trellis::command_failure& e) {
            QCOMPARE(e.server_code(), 11000);
            QCOMPARE(bson::to_json(e.reply()["keyPattern"].get_document()), std::string(R"({"_id": 1})"));
            QCOMPARE(bson::to_json(e.reply()["keyValue"].get_document()), std::string(R"({"_id": 1})"));
        }
        // whenNotMatched fail: 13113 MergeStageNoMatchingDocument.
        try {
            all(src.aggregate(arr(R"({"0": {"$addFields": {"_id": 7}}, "1": {"$merge": {"into": "merge_dst", "whenNotMatched": "fail"}}})")));
            QFAIL("whenNotMatched fail must fail without a match");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.code_name(), std::string("MergeStageNoMatchingDocument"));
        }
        // $merge not last: 40601.
        try {
            all(src.aggregate(arr(R"({"0": {"$merge": {"into": "merge_dst"}}, "1": {"$match": {}}})")));
            QFAIL("$merge must be last");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 40601);
        }
    }

    void deprecated_count_and_collation() {
        auto c = (*client_)["crud"]["count"];
        c.drop();
        c.insert_many(docs({R"({"x": "ping"})", R"({"x": "PING"})", R"({"x": "pong"})", R"({"x": "Pïng"})"}));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        QCOMPARE(c.count(), std::int64_t(4));
        trellis::count_options o;
        o.skip = 1;
        o.limit = 2;
        QCOMPARE(c.async_count(doc("{}"), o, asio::use_future).get(), std::int64_t(2));
        const auto sent_count = sent("count").back();
        QCOMPARE(sent_count["skip"].as_int64(), std::int64_t(1));
        QCOMPARE(sent_count["limit"].as_int64(), std::int64_t(2));
        QVERIFY(sent_count["query"].get_document().empty());
        // Collation: strength 2 ignores case; strength 1 diacritics too; "simple" neither.
        trellis::count_options by_case;
        by_case.collation = doc(R"({"locale": "en_US", "strength": 2})");
        QCOMPARE(c.count(doc(R"({"x": "ping"})"), by_case), std::int64_t(2));
        trellis::count_options by_letter;
        by_letter.collation = doc(R"({"locale": "fr", "strength": 1})");
        QCOMPARE(c.async_count(doc(R"({"x": "ping"})"), by_letter, asio::use_future).get(), std::int64_t(3));
        trellis::count_options bad;
        bad.collation = doc(R"({"strength": 2})");
        try {
            c.count(doc("{}"), bad);
            QFAIL("a collation without locale must be refused");
        } catch (const trellis::command_failure& e) {
            QCOMPARE(e.server_code(), 40414);
            QCOMPARE(e.reply()["codeName"].get_string(), std::string_view("Location40414"));
        }
#pragma GCC diagnostic pop
        trellis::find_options f;
        f.collation = doc(R"({"locale": "en_US", "strength": 2})");
        QCOMPARE(all(c.find(doc(R"({"x": "PING"})"), f)).size(), std::size_t(2));
        trellis::distinct_options d;
        d.collation = doc(R"({"locale": "en_US", "strength": 2})");
        QCOMPARE(c.distinct("x", doc("{}"), d).size(), std::size_t(3));  // ping/PING are one value
        trellis::update_options u;
        u.collation = doc(R"({"locale": "en_US", "strength": 2})");
        QCOMPARE(c.update_many(doc(R"({"x": "PiNg"})"), doc(R"({"$set": {"y": 1}})"), u).modified_count, std::int64_t(2));
    }

    void errors_keep_the_server_reply() {
        auto db = (*client_)["crud"];
        try {
            db.run_command(doc(R"({"noSuchCommand": 1})"));
            QFAIL("an unknown command must fail");
        } catch (const trellis::command_failure& e) {
            QCOMPARE(e.reply()["code"].as_int64(), std::int64_t(59));
            QCOMPARE(e.reply()["ok"].as_double(), 0.0);
        }
        try {
            db.async_run_command(doc(R"({"noSuchCommand": 2})"), asio::use_future).get();
            QFAIL("an unknown command must fail");
        } catch (const trellis::command_failure& e) {
            QCOMPARE(e.reply()["codeName"].get_string(), std::string_view("CommandNotFound"));
        }
        auto c = db["reply"];
        c.drop();
        c.insert_one(doc(R"({"_id": 1})"));
        try {
            c.insert_one(doc(R"({"_id": 1})"));
            QFAIL("a duplicate must fail");
        } catch (const trellis::command_failure& e) {
            const auto we = e.reply()["writeErrors"].get_array()[0].get_document();
            QCOMPARE(bson::to_json(we["keyValue"].get_document()), std::string(R"({"_id": 1})"));
        }
    }

    void capped_collections_and_tailable_cursors() {
        using namespace std::chrono_literals;
        auto db = (*client_)["crud"];
        db["capped"].drop();
        auto c = db.create_collection("capped", doc(R"({"capped": true, "size": 1, "max": 3})"));
        for (int i = 0; i < 5; ++i) c.insert_one(bson::make_document(bson::kvp("_id", i)));
        // The oldest are evicted past max: 2, 3, 4 remain, in insertion order; size rounds up to 4096.
        const auto left = all(c.find(doc("{}")));
        QCOMPARE(left.size(), std::size_t(3));
        QCOMPARE(left.front()["_id"].as_int64(), std::int64_t(2));
        const auto stats = db.run_command(doc(R"({"collStats": "capped"})"));
        QVERIFY(stats["capped"].get_bool());
        QCOMPARE(stats["maxSize"].as_int64(), std::int64_t(4096));
        QCOMPARE(stats["max"].as_int64(), std::int64_t(3));
        // Tailable: a drained cursor stays open and later sees what was inserted since.
        trellis::find_options t;
        t.cursor_type = trellis::cursor_type::tailable;
        auto cur = c.find(doc("{}"), t);
        for (int i = 0; i < 3; ++i) QVERIFY(cur.next().has_value());
        QVERIFY(!cur.next().has_value());
        QVERIFY(cur.alive());
        QCOMPARE(sent("find").back()["tailable"].get_bool(), true);
        c.insert_one(bson::make_document(bson::kvp("_id", 5)));
        auto fifth = cur.next();
        QVERIFY(fifth.has_value());
        QCOMPARE((*fifth)["_id"].as_int64(), std::int64_t(5));
        // Tailable + awaitData, async: the getMore waits for an insert made while it waits.
        trellis::find_options a;
        a.cursor_type = trellis::cursor_type::tailable_await;
        a.max_await_time = 3000ms;
        auto waiting = c.async_find(doc(R"({"_id": {"$gte": 6}})"), a, asio::use_future).get();
        QVERIFY(waiting.alive());  // nothing matched yet, but the collection is not empty
        auto pending = waiting.async_next(asio::use_future);
        std::this_thread::sleep_for(200ms);
        const auto before = std::chrono::steady_clock::now();
        c.insert_one(bson::make_document(bson::kvp("_id", 6)));
        auto sixth = pending.get();
        QVERIFY(sixth.has_value());
        QCOMPARE((*sixth)["_id"].as_int64(), std::int64_t(6));
        QVERIFY(std::chrono::steady_clock::now() - before < 2s);  // woken by the insert, not the timeout
        QCOMPARE(sent("getMore").back()["maxTimeMS"].as_int64(), std::int64_t(3000));
        // Nothing new: the awaitData getMore ends after its maxTimeMS with no document.
        a.max_await_time = 100ms;
        auto idle = c.find(doc(R"({"_id": {"$gte": 100}})"), a);
        const auto start = std::chrono::steady_clock::now();
        QVERIFY(!idle.next().has_value());
        QVERIFY(std::chrono::steady_clock::now() - start >= 90ms);
        QVERIFY(idle.alive());
        // Not capped: mongod's 2 BadValue.
        db["plain"].insert_one(doc("{}"));
        try {
            all(db["plain"].find(doc("{}"), t));
            QFAIL("a tailable cursor on a collection that is not capped must be refused");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 2);
        }
    }

    void document_validation_and_coll_mod() {
        auto db = (*client_)["crud"];
        db["valid"].drop();
        auto c = db.create_collection("valid", doc(R"({"validator": {"x": {"$type": "string"}}})"));
        c.insert_one(doc(R"({"_id": 1, "x": "a"})"));
        try {
            c.insert_one(doc(R"({"_id": 2, "x": 1})"));
            QFAIL("an invalid document must be refused");
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.server_code(), 121);
            QCOMPARE(e.write_errors().front().details["failingDocumentId"].as_int64(), std::int64_t(2));
        }
        trellis::insert_one_options bypass;
        bypass.bypass_document_validation = true;
        c.insert_one(doc(R"({"_id": 3, "x": 3})"), bypass);
        db.run_command(doc(R"({"collMod": "valid", "validationLevel": "off"})"));
        c.insert_one(doc(R"({"_id": 4, "x": 4})"));
        db.run_command(doc(R"({"collMod": "valid", "validationLevel": "strict"})"));
        try {
            c.async_find_one_and_update(doc(R"({"_id": 1})"), doc(R"({"$set": {"x": 1}})"), {}, asio::use_future).get();
            QFAIL("an update to an invalid document must be refused");
        } catch (const trellis::command_failure& e) {
            QCOMPARE(e.server_code(), 121);
            QCOMPARE(e.reply()["errInfo"].get_document()["failingDocumentId"].as_int64(), std::int64_t(1));
        }
        QCOMPARE(c.count_documents(), std::int64_t(3));
        try {
            db.run_command(doc(R"({"collMod": "valid", "validationLevel": "sometimes"})"));
            QFAIL("an unknown validationLevel must be refused");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 2);
        }
        try {
            db.run_command(doc(R"({"collMod": "nope", "validator": {}})"));
            QFAIL("collMod of a missing collection must fail");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 26);
        }
    }

    void indexes_drop_and_errors() {
        auto c = (*client_)["crud"]["idx"];
        c.drop();
        c.drop();  // dropping a collection that is not there is not an error
        const auto name = c.create_index(doc(R"({"email": 1})"), doc(R"({"unique": true})"));
        QCOMPARE(name, std::string("email_1"));
        std::vector<trellis::index_model> more;
        more.push_back({doc(R"({"a": 1, "b": -1})"), {}});
        QCOMPARE(c.async_create_indexes(std::move(more), asio::use_future).get(), (std::vector<std::string>{"a_1_b_-1"}));
        std::vector<std::string> names;
        for (const auto& i : all(c.list_indexes())) names.emplace_back(i["name"].get_string());
        std::sort(names.begin(), names.end());
        QCOMPARE(names, (std::vector<std::string>{"_id_", "a_1_b_-1", "email_1"}));
        c.insert_one(doc(R"({"email": "x@y"})"));
        try {
            c.insert_one(doc(R"({"email": "x@y"})"));
            QFAIL("the unique index must refuse a duplicate");
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.code(), make_error_code(errc::duplicate_key));
            QVERIFY2(std::string(e.what()).find("E11000") != std::string::npos, e.what());
        }
        c.drop_index("a_1_b_-1");
        QCOMPARE(all(c.async_list_indexes(asio::use_future).get()).size(), std::size_t(2));
        c.async_drop_index("email_1", asio::use_future).get();
        QCOMPARE(all(c.list_indexes()).size(), std::size_t(1));
        QCOMPARE(c.async_create_index(doc(R"({"z": -1})"), doc(R"({"name": "by_z"})"), asio::use_future).get(),
                 std::string("by_z"));
        QCOMPARE(c.async_create_index(doc(R"({"y": 1})"), {}, asio::use_future).get(), std::string("y_1"));
        QCOMPARE(all(c.list_indexes()).size(), std::size_t(3));
        c.async_drop_indexes({}, asio::use_future).get();
        QCOMPARE(all(c.list_indexes()).size(), std::size_t(1));
        c.create_index(doc(R"({"w": 1})"));
        c.drop_indexes();
        QCOMPARE(all(c.list_indexes()).size(), std::size_t(1));
        try {
            c.async_create_index(doc(R"({"v": 0})"), {}, asio::use_future).get();
            QFAIL("a key pattern of 0 must be refused");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 67);  // CannotCreateIndex, as mongod
        }
        c.async_drop(asio::use_future).get();
        QCOMPARE(c.estimated_document_count(), std::int64_t(0));
    }

    void bulk_write_mixed_models() {
        auto c = (*client_)["crud"]["bulk"];
        c.drop();
        std::vector<trellis::write_model> models;
        models.emplace_back(trellis::insert_one_model{doc(R"({"_id": 1, "x": 1})")});
        models.emplace_back(trellis::insert_one_model{doc(R"({"_id": 2, "x": 2})")});
        models.emplace_back(trellis::update_one_model{doc(R"({"_id": 1})"), doc(R"({"$inc": {"x": 10}})"), false, {}, {}, {}, {}});
        models.emplace_back(trellis::update_many_model{doc(R"({"x": {"$gt": 0}})"), doc(R"({"$set": {"seen": true}})"), false, {}, {}, {}, {}});
        models.emplace_back(trellis::replace_one_model{doc(R"({"_id": 3})"), doc(R"({"x": 3})"), true, {}, {}, {}});
        models.emplace_back(trellis::delete_one_model{doc(R"({"_id": 2})"), {}, {}});
        const auto r = c.bulk_write(models);
        QCOMPARE(r.inserted_count, std::int64_t(2));
        QCOMPARE(r.matched_count, std::int64_t(3));  // 1 + 2
        QCOMPARE(r.modified_count, std::int64_t(3));
        QCOMPARE(r.upserted_count, std::int64_t(1));
        QCOMPARE(r.upserted_ids.at(4)["_id"].as_int64(), std::int64_t(3));
        QCOMPARE(r.deleted_count, std::int64_t(1));
        QCOMPARE(r.inserted_ids.size(), std::size_t(2));
        QCOMPARE(c.count_documents(), std::int64_t(2));
        // Ordered: one command per run of a kind (insert, update x2, update, delete).
        QCOMPARE(sent("update").back()["updates"].get_array().size(), std::size_t(3));

        // Unordered, async: inserts first (one command), the duplicate is reported with its model index,
        // and the partial result says what was done besides.
        std::vector<trellis::write_model> dup;
        dup.emplace_back(trellis::delete_many_model{doc(R"({"x": 999})"), {}, {}});
        dup.emplace_back(trellis::insert_one_model{doc(R"({"_id": 1})")});
        dup.emplace_back(trellis::insert_one_model{doc(R"({"_id": 50})")});
        trellis::bulk_write_options unordered;
        unordered.ordered = false;
        try {
            c.async_bulk_write(dup, unordered, asio::use_future).get();
            QFAIL("a duplicate _id must fail");
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.code(), make_error_code(errc::duplicate_key));
            QCOMPARE(e.write_errors().size(), std::size_t(1));
            QCOMPARE(e.write_errors()[0].index, std::int64_t(1));
            QVERIFY(e.partial_result().has_value());
            QCOMPARE(e.partial_result()->inserted_count, std::int64_t(1));
            QVERIFY(e.partial_result()->inserted_ids.contains(2));
            QVERIFY(!e.partial_result()->inserted_ids.contains(1));
        }
        QCOMPARE(c.count_documents(doc(R"({"_id": 50})")), std::int64_t(1));
        // Refused before sending: no models, an update without operators (named by index).
        QVERIFY_THROWS_EXCEPTION(trellis::error, c.bulk_write({}));
        std::vector<trellis::write_model> bad;
        bad.emplace_back(trellis::update_one_model{doc("{}"), doc(R"({"x": 1})"), false, {}, {}, {}, {}});
        try {
            c.bulk_write(bad);
            QFAIL("an update without operators must be refused");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("model 0") != std::string::npos, e.what());
        }
    }

    void find_one_and_modify() {
        auto c = (*client_)["crud"]["fam"];
        c.drop();
        c.insert_many(docs({R"({"_id": 1, "n": 1})", R"({"_id": 2, "n": 2})"}));
        trellis::find_one_and_update_options o;
        o.sort = doc(R"({"n": -1})");
        auto before = c.find_one_and_update(doc("{}"), doc(R"({"$inc": {"n": 10}})"), o);
        QVERIFY(before);
        QCOMPARE((*before)["n"].as_int64(), std::int64_t(2));
        o.return_document = trellis::return_document::after;
        o.projection = doc(R"({"_id": 0})");
        auto after = c.async_find_one_and_update(doc(R"({"_id": 1})"), doc(R"({"$set": {"m": true}})"), o, asio::use_future).get();
        QCOMPARE(bson::to_json(after->view(), bson::json_mode::relaxed), std::string(R"({"n": 1, "m": true})"));
        trellis::find_one_and_replace_options up;
        up.upsert = true;
        up.return_document = trellis::return_document::after;
        auto replaced = c.find_one_and_replace(doc(R"({"_id": 3})"), doc(R"({"r": 1})"), up);
        QCOMPARE((*replaced)["_id"].as_int64(), std::int64_t(3));
        asio::io_context io;
        std::optional<bson::document> deleted;
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            deleted = co_await c.async_find_one_and_delete(doc(R"({"_id": 3})"), {}, asio::use_awaitable);
        }, asio::detached);
        io.run();
        QCOMPARE((*deleted)["r"].as_int64(), std::int64_t(1));
        QVERIFY(!c.find_one_and_delete(doc(R"({"_id": 99})")));
        QCOMPARE(sent("findAndModify").back()["remove"].get_bool(), true);
        // Typed refusals before sending.
        QVERIFY_THROWS_EXCEPTION(trellis::error, c.find_one_and_update(doc("{}"), doc(R"({"n": 1})")));
        QVERIFY_THROWS_EXCEPTION(trellis::error, c.find_one_and_replace(doc("{}"), doc(R"({"$set": {"n": 1}})")));
        trellis::find_one_and_delete_options bad;
        bad.upsert = true;
        QVERIFY_THROWS_EXCEPTION(trellis::error, c.find_one_and_delete(doc("{}"), bad));
    }

    void collections_databases_and_handles() {
        auto db = (*client_)["crud_admin"];
        db.drop();
        auto made = db.create_collection("capless", doc(R"({"validator": {"x": {"$exists": true}}})"));
        QCOMPARE(made.full_name(), std::string("crud_admin.capless"));
        try {
            db.create_collection("capless");
            QFAIL("creating an existing collection must fail");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 48);
        }
        db.async_create_collection("second", {}, asio::use_future).get();
        auto names = db.list_collection_names();
        std::sort(names.begin(), names.end());
        QCOMPARE(names, (std::vector<std::string>{"capless", "second"}));
        QCOMPARE(db.async_list_collection_names(doc(R"({"name": "second"})"), asio::use_future).get(),
                 std::vector<std::string>{"second"});
        auto described = all(db.list_collections());
        QCOMPARE(described.size(), std::size_t(2));
        QVERIFY(!sent("listCollections").back().find("nameOnly"));
        auto dbs = client_->list_databases();
        QVERIFY(std::any_of(dbs.begin(), dbs.end(), [](const bson::document& d) { return d["name"].get_string() == "crud_admin"; }));

        // Handles: read concern and write concern inherited database -> collection, overridable.
        auto majority = db.with_options({.read_preference = std::nullopt,
                                         .read_concern = trellis::read_concern{"majority"},
                                         .write_concern = std::nullopt,
                                         .timeout = std::nullopt});
        auto coll = majority["second"];
        QCOMPARE(coll.read_concern().level.value_or(""), std::string("majority"));
        coll.find_one();
        QCOMPARE(sent("find").back()["readConcern"].get_document()["level"].get_string(), std::string_view("majority"));
        trellis::write_concern w1;
        w1.w = 1;
        w1.journal = true;
        auto journaled = coll.with_options({.read_preference = std::nullopt, .read_concern = std::nullopt, .write_concern = w1,
                                            .timeout = std::nullopt});
        journaled.insert_one(doc(R"({"x": 1})"));
        QCOMPARE(sent("insert").back()["writeConcern"].get_document()["j"].get_bool(), true);
        QCOMPARE(journaled.read_concern().level.value_or(""), std::string("majority"));  // kept
        coll.count_documents();
        QVERIFY(sent("aggregate").back().find("readConcern").has_value());
        db.async_drop(asio::use_future).get();
        QVERIFY(db.list_collection_names().empty());
    }

    void admin_surface() {
        // fsync with lock, is_locked, unlock.
        client_->fsync();
        QVERIFY(!client_->is_locked());
        client_->fsync(true);
        QVERIFY(client_->is_locked());
        client_->unlock();
        QVERIFY(!client_->is_locked());
        QVERIFY_THROWS_EXCEPTION(trellis::operation_failure, client_->unlock());
        // copy_database: refused by version on a 4.2+ server, sent to an older one.
        try {
            client_->copy_database("crud", "crud_copy");
            QFAIL("copydb must be refused on wire version 21");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), make_error_code(errc::incompatible_server));
            QVERIFY2(std::string(e.what()).find("wire version 21") != std::string::npos, e.what());
        }
        sim::sim_config old;
        old.max_wire_version = 7;
        sim::deployment legacy(old);
        legacy.start();
        {
            trellis::client lc(legacy.uri());
            lc["src"]["c"].insert_many(docs({R"({"_id": 1})", R"({"_id": 2})"}));
            lc.copy_database("src", "dst");
            QCOMPARE(lc["dst"]["c"].count_documents(), std::int64_t(2));
        }
        legacy.stop();
        // kill_cursors: a cursor left open on the server, killed by id.
        auto c = (*client_)["crud"]["kill"];
        c.drop();
        std::vector<bson::document> many;
        for (int i = 0; i < 10; ++i) many.push_back(bson::make_document(bson::kvp("i", i)));
        c.insert_many(std::move(many));
        trellis::find_options fo;
        fo.batch_size = 2;
        auto cur = c.find({}, fo);
        QVERIFY(cur.next());
        const auto id = cur.id();
        QVERIFY(id != 0);
        const auto reply = client_->kill_cursors({id}, cur.ns(), cur.address());
        QCOMPARE(reply["cursorsKilled"].get_array().size(), std::size_t(1));
        QVERIFY_THROWS_EXCEPTION(trellis::error, client_->kill_cursors({id}, "nodot", cur.address()));
    }

    void admin_surface_async() {
        using asio::use_future;
        auto& cl = *client_;
        QCOMPARE(cl.async_fsync(false, use_future).get()["ok"].as_double(), 1.0);
        QVERIFY(!cl.async_is_locked(use_future).get());
        cl.async_fsync(true, use_future).get();
        QCOMPARE(sent("fsync").back()["lock"].get_bool(), true);
        QVERIFY(cl.async_is_locked(use_future).get());
        cl.async_unlock(use_future).get();
        QVERIFY(!cl.async_is_locked(use_future).get());
        QVERIFY_THROWS_EXCEPTION(trellis::operation_failure, cl.async_unlock(use_future).get());
        QVERIFY(cl.async_server_info(use_future).get().find("version"));
        QCOMPARE(cl.async_run_command("admin", doc(R"({"ping": 1})"), use_future).get()["ok"].as_double(), 1.0);

        // Databases: listed, named, dropped.
        (*client_)["crud_async_admin"]["c"].insert_one(doc(R"({"x": 1})"));
        const auto listed = cl.async_list_databases(use_future).get();
        QVERIFY(std::any_of(listed.begin(), listed.end(), [](const bson::document& d) { return d["name"].get_string() == "crud_async_admin"; }));
        const auto filtered = cl.async_list_databases(doc(R"({"name": "crud_async_admin"})"), use_future).get();
        QCOMPARE(filtered.size(), std::size_t(1));
        QCOMPARE(sent("listDatabases").back()["filter"].get_document()["name"].get_string(), std::string_view("crud_async_admin"));
        auto names = cl.async_database_names(use_future).get();
        QVERIFY(std::find(names.begin(), names.end(), "crud_async_admin") != names.end());
        QCOMPARE(sent("listDatabases").back()["nameOnly"].get_bool(), true);
        cl.async_drop_database("crud_async_admin", use_future).get();
        names = cl.async_database_names(use_future).get();
        QVERIFY(std::find(names.begin(), names.end(), "crud_async_admin") == names.end());

        // copy_database: refused by version here (typed, through the token), sent to an older server.
        try {
            cl.async_copy_database("crud", "crud_copy", use_future).get();
            QFAIL("copydb must be refused on wire version 21");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), make_error_code(errc::incompatible_server));
        }
        sim::sim_config old;
        old.max_wire_version = 7;
        sim::deployment legacy(old);
        legacy.start();
        {
            trellis::client lc(legacy.uri());
            lc["src"]["c"].insert_many(docs({R"({"_id": 1})", R"({"_id": 2})", R"({"_id": 3})"}));
            lc.async_copy_database("src", "dst", std::nullopt, use_future).get();
            QCOMPARE(lc["dst"]["c"].count_documents(), std::int64_t(3));
        }
        legacy.stop();

        // kill_cursors, with a callback: the reply, and a typed error for a bad namespace.
        auto c = (*client_)["crud"]["kill_async"];
        c.drop();
        std::vector<bson::document> many;
        for (int i = 0; i < 6; ++i) many.push_back(bson::make_document(bson::kvp("i", i)));
        c.insert_many(many);
        trellis::find_options fo;
        fo.batch_size = 2;
        auto cur = c.find({}, fo);
        QVERIFY(cur.next());
        std::promise<bson::document> killed;
        cl.async_kill_cursors({cur.id()}, cur.ns(), cur.address(), [&](std::exception_ptr e, bson::document reply) {
            if (e) killed.set_exception(e);
            else killed.set_value(std::move(reply));
        });
        QCOMPARE(killed.get_future().get()["cursorsKilled"].get_array().size(), std::size_t(1));
        try {
            cl.async_kill_cursors({1}, "nodot", cur.address(), use_future).get();
            QFAIL("a namespace without a dot must be refused");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("\"nodot\" is not a namespace") != std::string::npos, e.what());
        }
    }

    // w: 0 goes out with moreToCome: nothing is read back, so nothing the server might say
    // fails the write, and the succeeded event's reply is {ok: 1}. A hint with w: 0 on a server
    // that would ignore it (delete before 4.4, update before 4.2) is refused before sending.
    void unacknowledged_writes() {
        for (const int wire : {21, 8}) {
            sim::sim_config cfg;
            cfg.max_wire_version = wire;
            sim::deployment d(cfg);
            d.start();
            std::mutex m;
            std::vector<std::string> started;
            std::vector<bson::document> replies;
            trellis::client_settings settings;
            settings.on_command = [&](const trellis::command_event& e) {
                std::lock_guard lock(m);
                if (const auto* st = std::get_if<trellis::command_started_event>(&e)) started.emplace_back(st->command_name);
                if (const auto* ok = std::get_if<trellis::command_succeeded_event>(&e); ok && ok->command_name == "insert")
                    replies.push_back(ok->reply);
            };
            trellis::client c(d.uri(), std::move(settings));
            auto coll = c["crud"]["w0"];
            coll.insert_one(doc(R"({"_id": 1})"));
            trellis::handle_options h{std::nullopt, std::nullopt, trellis::write_concern{}};  // positional: no warning
            h.write_concern->w = 0;
            auto w0 = coll.with_options(h);
            QVERIFY(!w0.insert_one(doc(R"({"_id": 1})")).acknowledged);  // a duplicate: the server's error is not read
            QVERIFY(!w0.async_insert_one(doc(R"({"_id": 2})"), {}, asio::use_future).get().acknowledged);
            QTRY_COMPARE(coll.count_documents(), std::int64_t(2));
            {
                std::lock_guard lock(m);
                QCOMPARE(replies.size(), std::size_t(3));
                QCOMPARE(bson::to_json(replies[1]), bson::to_json(doc(R"({"ok": 1})")));
            }
            trellis::delete_options hinted;
            hinted.hint = std::string("_id_");
            if (wire < 9) {
                const auto before = [&] { std::lock_guard lock(m); return started.size(); }();
                try {
                    w0.delete_one(doc(R"({"_id": 1})"), hinted);
                    QFAIL("an unacknowledged hinted delete must be refused by a 4.2 server");
                } catch (const trellis::error& e) {
                    QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
                    QVERIFY2(std::string_view(e.what()).find("needs MongoDB 4.4") != std::string_view::npos, e.what());
                }
                std::lock_guard lock(m);
                QCOMPARE(started.size(), before);  // nothing was sent
            } else {
                w0.delete_one(doc(R"({"_id": 1})"), hinted);
                QTRY_COMPARE(coll.count_documents(), std::int64_t(1));
            }
            d.stop();
        }
    }

    void unimplemented_options_are_refused() {
        for (const char* uri : {"mongodb://127.0.0.1:9/?proxyHost=p", "mongodb://127.0.0.1:9/?waitQueueMultiple=2"}) {
            try {
                trellis::client c(uri);
                QFAIL(uri);
            } catch (const trellis::configuration_error& e) {
                QVERIFY2(std::string(e.what()).find("not implemented") != std::string::npos, e.what());
            }
        }
        // timeoutMS is implemented (csot_test): accepted, zero (no limit) and positive.
        trellis::client zero("mongodb://127.0.0.1:9/?timeoutMS=0");
        trellis::client positive("mongodb://127.0.0.1:9/?timeoutMS=100");
    }

    void find_options_reach_the_server() {
        auto c = (*client_)["crud"]["findopts"];
        c.drop();
        c.insert_many(docs({R"({"_id": 1, "a": 1})", R"({"_id": 2, "a": 2})", R"({"_id": 3, "a": 3})"}));
        trellis::find_options o;
        o.batch_size = 1;
        o.comment = std::string("why");
        o.max_time = std::chrono::milliseconds(5000);
        o.sort = doc(R"({"a": -1})");
        auto got = all(c.find({}, o));
        QCOMPARE(got.size(), std::size_t(3));
        QCOMPARE(got.front()["a"].as_int64(), std::int64_t(3));
        const auto f = sent("find").back();
        QCOMPARE(f["comment"].get_string(), std::string_view("why"));
        QCOMPARE(f["maxTimeMS"].as_int64(), std::int64_t(5000));
        QCOMPARE(sent("getMore").back()["comment"].get_string(), std::string_view("why"));
        auto one = c.async_find_one(doc(R"({"a": {"$gt": 1}})"), o, asio::use_future).get();
        QVERIFY(one);
        QCOMPARE(sent("find").back()["singleBatch"].get_bool(), true);
        o.limit = -1;
        QVERIFY_THROWS_EXCEPTION(trellis::error, c.find({}, o));
        // Update pipelines are sent as arrays.
        try {
            c.update_one(doc(R"({"_id": 1})"), arr(R"({"0": {"$set": {"p": 1}}})"));
        } catch (const trellis::error&) {
            // trellis-sim may not evaluate pipelines yet; what matters here is what was sent.
        }
        QVERIFY(sent("update").back()["updates"].get_array()[0].get_document()["u"].type() == bson::type::array);
    }

    void a_cursors_session_is_not_shared() {
        // A live cursor keeps its implicit session for its getMores; no other operation may use
        // that lsid meanwhile (a shared lsid would make the server take a write for a retry).
        auto c = (*client_)["crud"]["sessions"];
        c.drop();
        c.insert_many(docs({R"({"i": 1})", R"({"i": 2})", R"({"i": 3})"}));
        trellis::find_options o;
        o.batch_size = 1;
        auto cur = c.find({}, o);
        QVERIFY(cur.next());
        QVERIFY(cur.id() != 0);
        const auto find_lsid = bson::to_json(sent("find").back()["lsid"].get_document(), bson::json_mode::canonical);
        for (int i = 0; i < 3; ++i) {
            c.insert_one(doc(R"({"x": 1})"));
            QVERIFY(bson::to_json(sent("insert").back()["lsid"].get_document(), bson::json_mode::canonical) != find_lsid);
        }
        while (cur.next()) {
        }
        QCOMPARE(bson::to_json(sent("getMore").back()["lsid"].get_document(), bson::json_mode::canonical), find_lsid);
    }

    void seeds_answer_from_the_topology_and_close_ends_sessions() {
        std::vector<bson::document> seen;
        std::mutex m;
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e)) {
                std::lock_guard lock(m);
                seen.push_back(s->command);
            }
        };
        trellis::client c(sim_->uri(), std::move(settings));
        c["crud"]["seeds"].insert_one(doc(R"({"x": 1})"));
        // The seeds' properties: from the last hello, no command sent.
        const auto before = seen.size();
        QCOMPARE(c.max_bson_size(), 16 * 1024 * 1024);
        QVERIFY(c.max_wire_version() >= 6);
        QVERIFY(!c.address().empty());
        QVERIFY(c.is_primary());
        QCOMPARE(seen.size(), before);
        // close(): endSessions with the session the insert used.
        const auto lsid = bson::to_json(seen.back()["lsid"].get_document(), bson::json_mode::canonical);
        c.close();
        std::lock_guard lock(m);
        QVERIFY(!seen.empty());
        const auto& last = seen.back();
        QCOMPARE((*last.view().begin()).key(), std::string_view("endSessions"));
        QVERIFY(!last.find("lsid"));  // not itself in a session
        QCOMPARE(bson::to_json(last["endSessions"].get_array()[0].get_document(), bson::json_mode::canonical), lsid);
    }

    void a_retryable_write_cut_short_by_the_primary_is_retried() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 1;
        sim::deployment rs(cfg);
        rs.start();
        // A polling monitor rediscovers the primary at once after each closed connection.
        const std::string uri = rs.uri();
        trellis::client c(uri + (uri.find('?') != std::string::npos ? "&" : uri.find('/', 10) != std::string::npos ? "?" : "/?") +
                          "serverMonitoringMode=poll&heartbeatFrequencyMS=500");
        auto coll = c["crud"]["cut"];
        auto admin = c["admin"];
        // The first statement commits, then the connection closes: the retry replays it and runs the second.
        admin.run_command(doc(R"({"configureFailPoint": "onPrimaryTransactionalWrite", "mode": {"times": 1}})"));
        QCOMPARE(coll.insert_many(docs({R"({"_id": 1})", R"({"_id": 2})"})).inserted_ids.size(), std::size_t(2));
        QCOMPARE(coll.count_documents(), std::int64_t(2));
        // Before commit, twice: neither attempt writes and the network error reaches the caller.
        admin.run_command(doc(R"({"configureFailPoint": "onPrimaryTransactionalWrite", "mode": {"times": 2},
                                  "data": {"failBeforeCommitExceptionCode": 1}})"));
        try {
            coll.async_insert_one(doc(R"({"_id": 3})"), {}, asio::use_future).get();
            QFAIL("a write never committed must fail");
        } catch (const trellis::error& e) {
            QVERIFY(e.code() != errc::write_error);
        }
        QCOMPARE(coll.count_documents(), std::int64_t(2));
        // Not committed once: the retry commits it, once.
        admin.run_command(doc(R"({"configureFailPoint": "onPrimaryTransactionalWrite", "mode": {"times": 1},
                                  "data": {"failBeforeCommitExceptionCode": 1}})"));
        coll.update_one(doc(R"({"_id": 1})"), doc(R"({"$inc": {"n": 1}})"));
        QCOMPARE((*coll.find_one(doc(R"({"_id": 1})")))["n"].as_int64(), std::int64_t(1));
        // closeConnection false: the statement fails with the code, as a write error.
        admin.run_command(doc(R"({"configureFailPoint": "onPrimaryTransactionalWrite", "mode": {"times": 1},
                                  "data": {"closeConnection": false, "failBeforeCommitExceptionCode": 112}})"));
        try {
            coll.insert_one(doc(R"({"_id": 4})"));
            QFAIL("the fail point's code must fail the write");
        } catch (const trellis::bulk_write_error& e) {
            QCOMPARE(e.server_code(), 112);
        }
        rs.stop();
    }

    // Batches follow the selected server's hello (maxWriteBatchSize 10 here), and each goes out
    // as an OP_MSG document sequence: the sim counts the kind-1 sections it received.
    void batches_follow_the_servers_limits_and_use_document_sequences() {
        sim::sim_config cfg;
        cfg.max_write_batch_size = 10;
        sim::deployment small(cfg);
        small.start();
        std::mutex m;
        std::vector<std::int64_t> batch_sizes;  // statements per write command sent
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* st = std::get_if<trellis::command_started_event>(&e)) {
                for (const char* field : {"documents", "updates", "deletes"})
                    if (auto a = st->command.find(field); a && a->type() == bson::type::array) {
                        std::lock_guard lock(m);
                        batch_sizes.push_back(static_cast<std::int64_t>(a->get_array().size()));
                    }
            }
        };
        trellis::client c(small.uri(), std::move(settings));
        auto coll = c["crud"]["limits"];
        std::vector<bson::document> many;
        for (int i = 0; i < 25; ++i) many.push_back(bson::make_document(bson::kvp("_id", i)));
        QCOMPARE(coll.insert_many(std::move(many)).inserted_ids.size(), std::size_t(25));
        std::vector<trellis::write_model> models;
        for (int i = 0; i < 12; ++i) {
            trellis::update_one_model u;
            u.filter = bson::make_document(bson::kvp("_id", i));
            u.update = doc(R"({"$set": {"u": 1}})");
            models.emplace_back(std::move(u));
        }
        QCOMPARE(coll.bulk_write(std::move(models)).modified_count, std::int64_t(12));
        {
            std::lock_guard lock(m);
            QCOMPARE(batch_sizes, (std::vector<std::int64_t>{10, 10, 5, 10, 2}));
        }
        // Beyond the limit the server refuses: the client never sent such a batch.
        try {
            c["crud"].run_command(doc(R"({"insert": "x", "documents": [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]})"));
            QFAIL("an insert of 11 documents must be refused by a server whose maxWriteBatchSize is 10");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 16);
            QVERIFY2(std::string_view(e.what()).find("between 1 and 10. Got 11") != std::string_view::npos, e.what());
        }
        const bson::document status = c["admin"].run_command(doc(R"({"serverStatus": 1})"));
        const auto seqs = status["trellisSim"].get_document()["documentSequences"].get_document();
        const auto count = [&](const char* id, const char* what) { return seqs[id].get_document()[what].as_int64(); };
        QCOMPARE(count("documents", "sequences"), std::int64_t(3));
        QCOMPARE(count("documents", "documents"), std::int64_t(25));
        QCOMPARE(count("updates", "sequences"), std::int64_t(2));
        QCOMPARE(count("updates", "documents"), std::int64_t(12));
        small.stop();
    }

    // A server with small maxBsonObjectSize and maxMessageSizeBytes (the sim's knobs): the
    // client cuts its batches by them and refuses a document over the limit; the server
    // enforces both (a write error, a closed connection) and cuts its reply batches.
    void batches_follow_the_servers_size_limits() {
        for (const auto& [bson_size, message_size, what] :
             std::vector<std::tuple<int, int, std::string>>{{1023, 48'000'000, "max_bson_object_size must be at least 1024, got 1023"},
                                                            {4096, 20479, "max_message_size_bytes must be at least max_bson_object_size + 16384 (20480), got 20479"}}) {
            sim::sim_config bad;
            bad.max_bson_object_size = bson_size;
            bad.max_message_size_bytes = message_size;
            try {
                sim::deployment refused(bad);
                QFAIL("a sim with those limits must be refused");
            } catch (const trellis::configuration_error& e) {
                QVERIFY2(std::string_view(e.what()).find(what) != std::string_view::npos, e.what());
            }
        }
        sim::sim_config cfg;
        cfg.max_bson_object_size = 4096;
        cfg.max_message_size_bytes = 4096 + 16 * 1024;
        sim::deployment small(cfg);
        small.start();
        trellis_test::command_recorder rec;
        trellis::client c(small.uri(), rec.settings());
        QCOMPARE(c.max_bson_size(), 4096);
        QCOMPARE(c.max_message_size(), 4096 + 16 * 1024);
        auto coll = c["crud"]["sizes"];
        const auto sized = [](int id, std::size_t n) {
            return bson::make_document(bson::kvp("_id", id), bson::kvp("pad", std::string(n, 'p')));
        };
        // 60 documents of about 1 KB: more than fit in one message of 20 KiB.
        std::vector<bson::document> many;
        for (int i = 0; i < 60; ++i) many.push_back(sized(i, 1000));
        QCOMPARE(coll.insert_many(many).inserted_ids.size(), std::size_t(60));
        const auto inserts = rec.sent("insert");
        QVERIFY2(inserts.size() >= 3, std::to_string(inserts.size()).c_str());
        // (A message over the limit would have closed the connection: see the end.)
        std::size_t total = 0;
        for (const auto& cmd : inserts) total += cmd["documents"].get_array().size();
        QCOMPARE(total, std::size_t(60));
        QCOMPARE(coll.count_documents({}), std::int64_t(60));

        // The server's reply batches hold at most maxBsonObjectSize bytes: four documents of 1024.
        rec.clear();
        std::size_t seen = 0;
        for (auto cur = coll.find({}); cur.next();) ++seen;
        QCOMPARE(seen, std::size_t(60));
        QCOMPARE(rec.sent("getMore").size(), std::size_t(14));

        // A document over the limit: refused by the client, nothing sent.
        rec.clear();
        try {
            coll.insert_one(sized(100, 5000));
            QFAIL("a document over the server's maxBsonObjectSize must be refused");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), trellis::make_error_code(trellis::errc::invalid_argument));
            QVERIFY2(std::string_view(e.what()).find("4096") != std::string_view::npos, e.what());
        }
        QVERIFY(rec.sent("insert").empty());
        // "code: message" of the one write error f gets from the server; empty when none.
        const auto write_error_of = [](const std::function<void()>& f) -> std::string {
            try {
                f();
            } catch (const trellis::bulk_write_error& e) {
                if (e.write_errors().size() != 1) return "";
                return std::to_string(e.write_errors().front().code) + ": " + e.write_errors().front().message;
            }
            return "";
        };
        // Sent anyway (run_command checks only the message): the server's own write error.
        bson::builder insert;
        insert.append("insert", "sizes").open_array("documents").append(sized(100, 5000).view()).close_array();
        const std::string insert_error = write_error_of([&] { c["crud"].run_command(insert.extract()); });
        QVERIFY2(insert_error.starts_with("10334: ") &&
                     insert_error.find("object to insert too large, max size: 4096 (size in bytes: 5024)") != std::string::npos,
                 insert_error.c_str());
        // An update that grows a document past the limit: the same error, as mongod gives it.
        const std::string update_error = write_error_of([&] {
            coll.update_one(doc(R"({"_id": 1})"), bson::make_document(bson::kvp(
                                                      "$set", bson::make_document(bson::kvp("pad", std::string(5000, 'q'))))));
        });
        QVERIFY2(update_error.starts_with("10334: ") &&
                     update_error.find("Resulting document after update is larger than 4096") != std::string::npos,
                 update_error.c_str());
        QCOMPARE(coll.find_one(doc(R"({"_id": 1})"))->view()["pad"].get_string().size(), std::size_t(1000));

        // A message over maxMessageSizeBytes: the server closes the connection, as mongod does.
        boost::asio::io_context io;
        boost::asio::ip::tcp::socket raw(io);
        const std::string address = small.members().front();
        const auto colon = address.rfind(':');
        raw.connect({boost::asio::ip::make_address(address.substr(0, colon)),
                     static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)))});
        const std::int32_t too_long = 4096 + 16 * 1024 + 1;
        std::array<std::uint8_t, 16> header{};
        for (int i = 0; i < 4; ++i) header[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(too_long >> (8 * i));
        header[12] = 0xDD;  // opCode 2013, OP_MSG
        header[13] = 0x07;
        boost::asio::write(raw, boost::asio::buffer(header));
        std::array<std::uint8_t, 16> back{};
        boost::system::error_code ec;
        raw.read_some(boost::asio::buffer(back), ec);
        QCOMPARE(ec, boost::system::error_code(boost::asio::error::eof));
        small.stop();
    }

    void out_follows_the_read_preference_on_5_0_and_later() {
        for (const int wire : {13, 9}) {
            sim::sim_config cfg;
            cfg.topology = sim::topology_kind::replica_set;
            cfg.nodes = 2;
            cfg.max_wire_version = wire;
            sim::deployment rs(cfg);
            rs.start();
            std::mutex m;
            std::vector<bson::document> seen;
            trellis::client_settings settings;
            settings.on_command = [&](const trellis::command_event& e) {
                if (const auto* s = std::get_if<trellis::command_started_event>(&e)) {
                    std::lock_guard lock(m);
                    seen.push_back(s->command);
                }
            };
            trellis::client c(rs.uri(), std::move(settings));
            auto src = c["crud"]["rp_src"];
            trellis::write_concern all_members;
            all_members.w = std::int32_t(2);
            trellis::handle_options majority;
            majority.write_concern = all_members;
            src.with_options(majority).insert_many(docs({R"({"_id": 1})", R"({"_id": 2})"}));
            trellis::aggregate_options o;
            trellis::read_preference secondary;
            secondary.mode = trellis::read_preference_mode::secondary;
            o.read_preference = secondary;
            o.write_concern = all_members;
            all(src.aggregate(arr(R"({"0": {"$out": "rp_out"}})"), o));
            {
                std::lock_guard lock(m);
                const auto agg = std::find_if(seen.rbegin(), seen.rend(), [](const bson::document& d) {
                    return (*d.view().begin()).key() == "aggregate";
                });
                QVERIFY(agg != seen.rend());
                // 5.0+: the read preference is sent (a secondary runs it); before: the primary, without it.
                QCOMPARE(agg->view().contains("$readPreference"), wire >= 13);
                QVERIFY(agg->view().contains("writeConcern"));
            }
            QCOMPARE(c["crud"]["rp_out"].count_documents(), std::int64_t(2));
            rs.stop();
        }
    }

    void writes_on_a_replica_set_are_retryable_where_the_spec_says() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        sim::deployment rs(cfg);
        rs.start();
        std::mutex m;
        std::vector<bson::document> seen;
        trellis::client_settings settings;
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e)) {
                std::lock_guard lock(m);
                seen.push_back(s->command);
            }
        };
        trellis::client c(rs.uri(), std::move(settings));
        auto coll = c["crud"]["rs"];
        coll.insert_many(docs({R"({"_id": 1})", R"({"_id": 2})"}));
        coll.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"a": 1}})"));
        coll.update_many(doc("{}"), doc(R"({"$set": {"b": 1}})"));
        coll.delete_one(doc(R"({"_id": 2})"));
        std::lock_guard lock(m);
        std::map<std::string, bool> txn;
        for (const auto& s : seen) {
            const std::string name((*s.view().begin()).key());
            if (name == "insert" || name == "update" || name == "delete") {
                const bool multi = name == "update" && s["updates"].get_array()[0].get_document().contains("multi");
                txn[name + (multi ? "-multi" : "")] = s.contains("txnNumber");
            }
        }
        QVERIFY(txn.at("insert"));
        QVERIFY(txn.at("update"));
        QVERIFY(!txn.at("update-multi"));
        QVERIFY(txn.at("delete"));
        rs.stop();
    }

    // rawData on createIndexes, listIndexes and dropIndexes (the index management spec): sent to
    // a server of wire version 27 (8.2), left out for 7.0 (which refuses the field as unknown, so
    // a success there proves it was left out), blocking and async.
    void index_commands_send_raw_data_to_8_2_only() {
        for (const int wire : {27, 21}) {
            sim::sim_config cfg;
            cfg.max_wire_version = wire;
            trellis_test::sim_rig r(cfg);
            const bool sends = wire >= 27;
            const auto checked = [&](std::string_view command, std::size_t n) {
                const auto all_sent = r.sent(command);
                QCOMPARE(all_sent.size(), n);
                for (const auto& c : all_sent) {
                    const auto f = c.view().find("rawData");
                    QVERIFY2(sends ? f && f->get_bool() : !f, (std::string(command) + " to wire " + std::to_string(wire)).c_str());
                }
            };
            auto coll = (*r.client)["raw"]["idx"];
            trellis::create_indexes_options co;
            co.raw_data = true;
            std::vector<trellis::index_model> one;
            one.push_back(trellis::index_model{doc(R"({"a": 1})"), {}});
            QCOMPARE(coll.create_indexes(std::move(one), co), (std::vector<std::string>{"a_1"}));
            std::vector<trellis::index_model> two;
            two.push_back(trellis::index_model{doc(R"({"b": 1})"), {}});
            QCOMPARE(coll.async_create_indexes(std::move(two), co, asio::use_future).get(), (std::vector<std::string>{"b_1"}));
            checked("createIndexes", 2);
            trellis::list_indexes_options lo;
            lo.raw_data = true;
            QCOMPARE(all(coll.list_indexes(lo)).size(), std::size_t(3));  // _id_, a_1, b_1
            QCOMPARE(all(coll.async_list_indexes(lo, asio::use_future).get()).size(), std::size_t(3));
            checked("listIndexes", 2);
            trellis::drop_index_options dopt;
            dopt.raw_data = true;
            coll.drop_index("a_1", dopt);
            coll.async_drop_index("b_1", dopt, asio::use_future).get();
            checked("dropIndexes", 2);
            QCOMPARE(all(coll.list_indexes()).size(), std::size_t(1));
            QVERIFY(!r.sent("listIndexes").back().view().find("rawData"));  // unset: never sent
        }
    }

    // Sharded, two mongoses of different maxWriteBatchSize (2 and 5): each insert or update
    // command holds as many statements as the mongos it went to allows, since the batch is cut
    // for the connection that sends it (cut by one router's limits and sent to the other, a
    // batch of 5 would be refused by the router of 2 with InvalidLength).
    void batches_follow_the_limits_of_the_router_that_gets_them() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        cfg.routers.resize(2);
        cfg.routers[0].max_write_batch_size = 2;
        cfg.routers[1].max_write_batch_size = 5;
        trellis_test::sim_rig r(cfg);
        const auto routers = r.deployment->members();
        const std::map<std::string, std::size_t> limit{{routers.at(0), 2}, {routers.at(1), 5}};
        auto coll = (*r.client)["crud"]["routers"];
        constexpr int rounds = 8, per_round = 11;
        for (int round = 0; round < rounds; ++round) {
            std::vector<bson::document> many;
            for (int i = 0; i < per_round; ++i) many.push_back(bson::make_document(bson::kvp("_id", round * 100 + i)));
            QCOMPARE(coll.insert_many(std::move(many)).inserted_ids.size(), std::size_t(per_round));
        }
        std::vector<trellis::write_model> models;
        for (int i = 0; i < per_round; ++i) {
            trellis::update_one_model u;
            u.filter = bson::make_document(bson::kvp("_id", i));
            u.update = doc(R"({"$set": {"u": 1}})");
            models.emplace_back(std::move(u));
        }
        QCOMPARE(coll.bulk_write(std::move(models)).modified_count, std::int64_t(per_round));
        std::set<std::string> used;
        for (const auto& [command, field, expected_total] :
             {std::tuple<const char*, const char*, std::size_t>{"insert", "documents", rounds * per_round},
              std::tuple<const char*, const char*, std::size_t>{"update", "updates", per_round}}) {
            const auto commands = r.rec.sent(command);
            const auto addresses = r.rec.addresses(command);
            QCOMPARE(commands.size(), addresses.size());
            std::size_t total = 0, left = per_round;
            for (std::size_t i = 0; i < commands.size(); ++i) {
                const std::size_t n = commands[i][field].get_array().size();
                const std::size_t allowed = limit.at(addresses[i]);
                // Full batches: as many as the receiving router allows, or what was left.
                QCOMPARE(n, std::min(allowed, left));
                used.insert(addresses[i]);
                total += n;
                left -= n;
                if (left == 0) left = per_round;
            }
            QCOMPARE(total, expected_total);
        }
        QCOMPARE(used.size(), std::size_t(2));  // both routers got batches (selection is random in the window)
    }
};

QTEST_GUILESS_MAIN(CrudTest)
#include "crud_test.moc"
