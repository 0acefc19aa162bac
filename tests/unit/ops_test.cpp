// The operation layer without a network: each op's command, its batching, its reply parsing and
// its typed errors.
#include <QtTest/QtTest>

#include "ops/bulk_write.hpp"
#include "ops/client_bulk_write.hpp"
#include "ops/find_and_modify.hpp"
#include "ops/ops.hpp"
#include "trellis/bson/json.hpp"
#include "fail_point.hpp"

using namespace trellis;
namespace bson = trellis::bson;

namespace {
using trellis_test::doc;
std::string_view errc_name(const error& e) {
    if (e.code() == errc::invalid_argument) return "invalid_argument";
    if (e.code() == errc::operation_failure) return "operation_failure";
    return "other";
}
std::string json(bson::document_view d) { return bson::to_json(d, bson::json_mode::relaxed); }
bson::array arr(std::string_view json) { return bson::array(bson::from_json(json)); }
}  // namespace

class OpsTest : public QObject {
    Q_OBJECT

private slots:
    // client::bulk_write's batching: in order, by maxWriteBatchSize and by maxMessageSizeBytes
    // less 1000 bytes and the command; nsInfo per batch; retryable without multi models.
    void client_bulk_write_batches() {
        std::vector<namespace_write_model> models;
        for (int i = 0; i < 4; ++i)
            models.push_back({i % 2 ? "db1.b" : "db0.a", insert_one_model{bson::make_document(bson::kvp("_id", i),
                                                                                              bson::kvp("s", std::string(300, 'x')))}});
        delete_many_model dm;
        dm.filter = doc("{}");
        models.push_back({"db0.a", dm});
        auto op = ops::client_bulk_write_op::make(std::move(models), {}, write_concern{});
        ops::connection_limits limits;
        limits.max_write_batch_size = 3;
        auto b = op.batches(limits);
        QCOMPARE(b.size(), std::size_t(2));
        QCOMPARE(b[0].first, std::size_t(0));
        QCOMPARE(b[0].count, std::size_t(3));
        QVERIFY(b[0].retryable);
        QCOMPARE(b[1].count, std::size_t(2));
        QVERIFY(!b[1].retryable);  // delete_many
        const auto cmd = op.command(b[1]);
        QCOMPARE(cmd["bulkWrite"].as_int64(), std::int64_t(1));
        QCOMPARE(cmd["errorsOnly"].get_bool(), true);  // summary results unless verbose_results
        QCOMPARE(cmd["ordered"].get_bool(), true);
        QCOMPARE(cmd["nsInfo"].get_array().size(), std::size_t(2));
        QCOMPARE(json((*cmd["nsInfo"].get_array().begin()).get_document()), std::string(R"({"ns": "db1.b"})"));
        const auto last = (*std::next(cmd["ops"].get_array().begin())).get_document();
        QCOMPARE(json(last), std::string(R"({"delete": 1, "filter": {}, "multi": true})"));
        // By size: 800 bytes for ops and nsInfo hold two ~350-byte inserts (and their two
        // nsInfo entries), then two more and the small delete.
        limits.max_write_batch_size = 100;
        limits.max_message_size_bytes = 1000 + static_cast<std::int32_t>(op.base_command().view().size()) + 800;
        b = op.batches(limits);
        QCOMPARE(b.size(), std::size_t(2));
        QCOMPARE(b[0].count, std::size_t(2));
        QCOMPARE(b[1].count, std::size_t(3));
        limits.max_message_size_bytes -= 100;  // 700: one insert per message, the last with the delete
        QCOMPARE(op.batches(limits).size(), std::size_t(4));
        limits.max_message_size_bytes = 1000 + static_cast<std::int32_t>(op.base_command().view().size()) + 100;
        try {
            (void)op.batches(limits);
            QFAIL("an op larger than a message must be refused");
        } catch (const error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("model 0 is") != std::string::npos, e.what());
        }
    }

    // The results of a batch: counts from the reply, verbose results and errors from the cursor's
    // documents by the models' indexes, and when a partial result is set.
    void client_bulk_write_results() {
        std::vector<namespace_write_model> models;
        models.push_back({"d.c", insert_one_model{doc(R"({"_id": 1})")}});
        update_one_model u;
        u.filter = doc("{}");
        u.update = doc(R"({"$set": {"a": 1}})");
        u.upsert = true;
        models.push_back({"d.c", u});
        models.push_back({"d.c", insert_one_model{doc(R"({"_id": 1})")}});
        client_bulk_write_options o;
        o.verbose_results = true;
        const auto op = ops::client_bulk_write_op::make(std::move(models), o, write_concern{});
        ops::client_bulk_write_results results(op);
        const ops::client_bulk_write_op::batch all{0, 3, true};
        results.reply(all, doc(R"({"ok": 1, "nErrors": 1, "nInserted": 1, "nUpserted": 1, "nMatched": 0, "nModified": 0, "nDeleted": 0,
            "writeConcernError": {"code": 64, "errmsg": "waiting"}})"));
        results.result(all, doc(R"({"ok": 1, "idx": 0, "n": 1})"));
        results.result(all, doc(R"({"ok": 1, "idx": 1, "n": 1, "nModified": 0, "upserted": {"_id": null}})"));
        results.result(all, doc(R"({"ok": 0, "idx": 2, "code": 11000, "codeName": "DuplicateKey", "errmsg": "dup"})"));
        results.end_batch(all);
        QVERIFY(results.stopped());
        try {
            (void)results.finish();
            QFAIL("expected a client_bulk_write_error");
        } catch (const client_bulk_write_error& e) {
            QCOMPARE(e.code(), make_error_code(errc::duplicate_key));
            QCOMPARE(e.write_errors().at(2).message, std::string("dup"));
            QCOMPARE(e.write_concern_errors().size(), std::size_t(1));
            QVERIFY(e.partial_result());
            QCOMPARE(e.partial_result()->upserted_count, std::int64_t(1));
            QCOMPARE(json(e.partial_result()->update_results.at(1).upserted_id->view()), std::string(R"({"_id": null})"));
            QCOMPARE(json(e.partial_result()->insert_results.at(0).inserted_id.view()), std::string(R"({"_id": 1})"));
        }
        // The first of an ordered batch failing: nothing is known to have succeeded.
        ops::client_bulk_write_results none(op);
        none.reply(all, doc(R"({"ok": 1, "nErrors": 1})"));
        none.result(all, doc(R"({"ok": 0, "idx": 0, "code": 2, "errmsg": "bad"})"));
        none.end_batch(all);
        try {
            (void)none.finish();
            QFAIL("expected a client_bulk_write_error");
        } catch (const client_bulk_write_error& e) {
            QVERIFY(!e.partial_result());
        }
        // Refusals: unacknowledged with the default ordered; update_many with sort.
        std::vector<namespace_write_model> one;
        one.push_back({"d.c", insert_one_model{doc("{}")}});
        try {
            (void)ops::client_bulk_write_op::make(one, {}, write_concern{0, std::nullopt, std::nullopt, std::nullopt});
            QFAIL("expected a refusal");
        } catch (const error& e) {
            QVERIFY(std::string(e.what()).find("Cannot request unacknowledged write concern and ordered writes") != std::string::npos);
        }
    }

    void bulk_inserts_get_ids_and_split_batches() {
        std::vector<write_model> models;
        models.emplace_back(insert_one_model{doc(R"({"_id": 7, "a": 1})")});
        models.emplace_back(insert_one_model{doc(R"({"a": 2})")});
        models.emplace_back(insert_one_model{doc(R"({"a": 3})")});
        bulk_write_options unordered_options;
        unordered_options.ordered = false;
        auto op = ops::bulk_write_op::make("c", std::move(models), unordered_options, write_concern{});
        QCOMPARE(json(op.inserted_ids[0].view()), std::string(R"({"_id": 7})"));
        const auto& second = std::get<insert_one_model>(op.models[1]).document;
        QCOMPARE((*second.view().begin()).key(), std::string_view("_id"));  // generated, and first
        QVERIFY(op.inserted_ids[1]["_id"].type() == bson::type::oid);
        ops::connection_limits two;
        two.max_write_batch_size = 2;
        const auto b = op.batches(two);
        QCOMPARE(b.size(), std::size_t(2));
        QCOMPARE(b[0].models, (std::vector<std::size_t>{0, 1}));
        QCOMPARE(b[1].models, (std::vector<std::size_t>{2}));
        const auto cmd = op.command(b[1]);
        QCOMPARE(cmd["insert"].get_string(), std::string_view("c"));
        QCOMPARE(cmd["documents"].get_array().size(), std::size_t(1));
        QCOMPARE(cmd["ordered"].get_bool(), false);
        // By size: documents of ~400 bytes under a 1000-byte limit go two by two.
        std::vector<write_model> big;
        for (int i = 0; i < 5; ++i)
            big.emplace_back(insert_one_model{bson::make_document(bson::kvp("_id", i), bson::kvp("s", std::string(400, 'x')))});
        auto sized = ops::bulk_write_op::make("c", std::move(big), {}, write_concern{});
        ops::connection_limits small;
        small.max_bson_object_size = 1000;
        QCOMPARE(sized.batches(small).size(), std::size_t(3));
        small.max_bson_object_size = 100;
        try {
            (void)sized.batches(small);
            QFAIL("a document over maxBsonObjectSize must be refused");
        } catch (const error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("document 0 is") != std::string::npos, e.what());
        }
    }

    void bulk_groups_models_and_merges_replies() {
        std::vector<write_model> models;
        models.emplace_back(insert_one_model{doc(R"({"_id": 1})")});
        models.emplace_back(update_one_model{doc(R"({"_id": 1})"), doc(R"({"$inc": {"x": 1}})"), false, {}, {}, {}, {}});
        models.emplace_back(delete_many_model{doc(R"({"x": 9})"), {}, {}});
        models.emplace_back(insert_one_model{doc(R"({"_id": 2})")});
        models.emplace_back(replace_one_model{doc(R"({"_id": 3})"), doc(R"({"y": 1})"), true, {}, {}, {}});
        // Ordered: a command per run of one kind, in order.
        auto ordered = ops::bulk_write_op::make("c", models, {}, write_concern{});
        const auto ob = ordered.batches({});
        QCOMPARE(ob.size(), std::size_t(5));
        QVERIFY(!ob[2].retryable);  // delete_many: not a retryable write
        QVERIFY(ob[1].retryable);
        // Unordered: one command per kind, inserts, updates, deletes.
        bulk_write_options unordered_options;
        unordered_options.ordered = false;
        auto unordered = ops::bulk_write_op::make("c", models, unordered_options, write_concern{});
        const auto ub = unordered.batches({});
        QCOMPARE(ub.size(), std::size_t(3));
        QCOMPARE(ub[0].models, (std::vector<std::size_t>{0, 3}));
        QCOMPARE(ub[1].models, (std::vector<std::size_t>{1, 4}));
        QCOMPARE(ub[2].models, (std::vector<std::size_t>{2}));
        QCOMPARE(QString::fromStdString(json(unordered.command(ub[1]).view())),
                 QString::fromStdString(R"({"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"x": 1}}}, )"
                                        R"({"q": {"_id": 3}, "u": {"y": 1}, "upsert": true}], "ordered": false})"));
        QCOMPARE(json(unordered.command(ub[2]).view()),
                 std::string(R"({"delete": "c", "deletes": [{"q": {"x": 9}, "limit": 0}], "ordered": false})"));
        // Replies merge with the models' indexes; upserts are not matches.
        bulk_write_result r;
        unordered.merge(ub[1], doc(R"({"n": 2, "nModified": 1, "upserted": [{"index": 1, "_id": 3}]})").view(), {}, r);
        QCOMPARE(r.matched_count, std::int64_t(1));
        QCOMPARE(r.modified_count, std::int64_t(1));
        QCOMPARE(r.upserted_count, std::int64_t(1));
        QCOMPARE(json(r.upserted_ids.at(4).view()), std::string(R"({"_id": 3})"));
        // An insert batch with an error at its second document: unordered, the others were inserted.
        write_error_detail dup;
        dup.index = 1;
        dup.code = 11000;
        unordered.merge(ub[0], doc(R"({"n": 1})").view(), {dup}, r);
        QCOMPARE(r.inserted_count, std::int64_t(1));
        QCOMPARE(r.inserted_ids.size(), std::size_t(1));
        QVERIFY(r.inserted_ids.contains(0));
        // Invalid models are named by index.
        std::vector<write_model> bad;
        bad.emplace_back(insert_one_model{doc("{}")});
        bad.emplace_back(update_many_model{doc("{}"), doc(R"({"x": 1})"), false, {}, {}, {}, {}});
        try {
            (void)ops::bulk_write_op::make("c", std::move(bad), {}, write_concern{});
            QFAIL("an update without operators must be refused");
        } catch (const error& e) {
            QCOMPARE(e.code(), make_error_code(errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("model 1") != std::string::npos, e.what());
        }
        QVERIFY_THROWS_EXCEPTION(error, (void)ops::bulk_write_op::make("c", {}, {}, write_concern{}));
    }

    void find_and_modify_is_built_and_checked() {
        ops::find_and_modify_op op;
        op.collection = "c";
        op.filter = doc(R"({"a": 1})");
        op.change = arr(R"({"0": {"$set": {"b": 2}}})");  // a pipeline
        op.options.sort = doc(R"({"a": -1})");
        op.options.upsert = true;
        op.options.return_document = return_document::after;
        op.options.projection = doc(R"({"_id": 0})");
        op.options.comment = doc(R"({"why": "test"})");
        op.validate();
        QCOMPARE(QString::fromStdString(json(op.command().view())),
                 QString::fromStdString(R"({"findAndModify": "c", "query": {"a": 1}, "sort": {"a": -1}, )"
                                        R"("update": [{"$set": {"b": 2}}], "new": true, "upsert": true, "fields": {"_id": 0}, )"
                                        R"("comment": {"why": "test"}})"));
        QCOMPARE(json(op.parse(doc(R"({"value": {"b": 2}, "ok": 1})").view())->view()), std::string(R"({"b": 2})"));
        QVERIFY(!op.parse(doc(R"({"value": null, "ok": 1})").view()));
        op.what = ops::find_and_modify_op::kind::remove;
        QVERIFY_THROWS_EXCEPTION(error, op.validate());  // upsert with a delete
        op.what = ops::find_and_modify_op::kind::replace;
        op.change = doc(R"({"$set": {"b": 1}})");
        QVERIFY_THROWS_EXCEPTION(error, op.validate());  // operators in a replacement
    }

    void find_follows_the_crud_rules() {
        find_options o;
        o.limit = 5;
        o.batch_size = 5;
        o.hint = std::string("a_1");
        o.max_time = std::chrono::milliseconds(100);
        o.cursor_type = cursor_type::tailable_await;
        ops::find_op f{"c", doc("{}"), o, false};
        f.validate();
        QCOMPARE(QString::fromStdString(json(f.command().view())),
                 QString::fromStdString(R"({"find": "c", "filter": {}, "hint": "a_1", "limit": 5, "batchSize": 6, )"
                                        R"("maxTimeMS": 100, "tailable": true, "awaitData": true})"));
        f.options.limit = -1;
        QVERIFY_THROWS_EXCEPTION(error, f.validate());
        f.options.limit.reset();
        f.options.cursor_type = cursor_type::non_tailable;
        f.options.max_await_time = std::chrono::milliseconds(10);
        QVERIFY_THROWS_EXCEPTION(error, f.validate());
    }

    void update_and_replace_are_checked_and_built() {
        ops::validate_update(doc(R"({"$set": {"a": 1}})"));
        ops::validate_update(arr(R"({"0": {"$set": {"a": 1}}})"));
        QVERIFY_THROWS_EXCEPTION(error, ops::validate_update(doc(R"({"a": 1})")));
        QVERIFY_THROWS_EXCEPTION(error, ops::validate_update(doc("{}")));
        QVERIFY_THROWS_EXCEPTION(error, ops::validate_update(arr("{}")));
        ops::validate_replacement(doc(R"({"a": 1})").view());
        QVERIFY_THROWS_EXCEPTION(error, ops::validate_replacement(doc(R"({"$set": {"a": 1}})").view()));

        ops::update_op op;
        op.collection = "c";
        op.statement.filter = doc(R"({"x": 1})");
        op.statement.update = doc(R"({"$set": {"a.$[e]": 1}})");
        op.statement.multi = true;
        op.statement.upsert = true;
        op.statement.array_filters = arr(R"({"0": {"e": {"$gt": 1}}})");
        op.statement.hint.emplace(std::in_place_index<0>, "x_1");
        op.wc.w = std::string("majority");
        QCOMPARE(QString::fromStdString(json(op.command().view())), QString::fromStdString(
                 std::string(R"({"update": "c", "updates": [{"q": {"x": 1}, "u": {"$set": {"a.$[e]": 1}}, "multi": true, )"
                             R"("upsert": true, "arrayFilters": [{"e": {"$gt": 1}}], "hint": "x_1"}], "ordered": true, )"
                             R"("writeConcern": {"w": "majority"}})")));
        QVERIFY(!op.retryable());
        const auto r = op.parse(doc(R"({"ok": 1, "n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": 42}]})").view());
        QCOMPARE(r.matched_count, std::int64_t(0));
        QCOMPARE(r.modified_count, std::int64_t(0));
        QCOMPARE(json(r.upserted_id->view()), std::string(R"({"_id": 42})"));
    }

    void delete_counts_and_limits() {
        ops::delete_op one{"c", doc(R"({"a": 1})"), false, std::nullopt, std::nullopt, std::nullopt, std::nullopt, write_concern{}};
        QCOMPARE(one.command()["deletes"].get_array()[0].get_document()["limit"].as_int64(), std::int64_t(1));
        QVERIFY(one.retryable());
        QCOMPARE(one.parse(doc(R"({"ok": 1, "n": 1})").view()).deleted_count, std::int64_t(1));
        write_concern w0;
        w0.w = 0;
        ops::delete_op none{"c", doc("{}"), true, std::nullopt, std::nullopt, std::nullopt, std::nullopt, w0};
        QVERIFY(!none.parse(doc(R"({"ok": 1})").view()).acknowledged);
    }

    void write_errors_keep_everything() {
        const auto reply = doc(R"({"ok": 1, "n": 1, "writeErrors": [
            {"index": 1, "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key"},
            {"index": 3, "code": 121, "errmsg": "Document failed validation", "errInfo": {"why": "schema"}}],
            "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting timed out",
                                  "errorLabels": ["RetryableWriteError"]}})");
        try {
            ops::check_write_reply(reply.view(), "h:1");
            QFAIL("write errors must throw");
        } catch (const bulk_write_error& e) {
            QCOMPARE(e.code(), make_error_code(errc::duplicate_key));
            QCOMPARE(e.server_code(), 11000);
            QCOMPARE(e.write_errors().size(), std::size_t(2));
            QCOMPARE(e.write_errors()[0].index, std::int64_t(1));
            QCOMPARE(e.write_errors()[1].code, 121);
            QCOMPARE(json(e.write_errors()[1].details.view()), std::string(R"({"why": "schema"})"));
            QVERIFY(e.write_concern_error().has_value());
            QCOMPARE(e.write_concern_error()->code_name, std::string("WriteConcernFailed"));
            QVERIFY(e.has_error_label("RetryableWriteError"));
            QCOMPARE(e.reply()["n"].as_int64(), std::int64_t(1));
            QVERIFY2(std::string(e.what()).find("E11000 duplicate key (code 11000 DuplicateKey, write 1) and 1 more") !=
                         std::string::npos,
                     e.what());
        }
        ops::check_write_reply(doc(R"({"ok": 1, "n": 3})").view(), "h:1");  // nothing to say
    }

    void reads_build_their_commands() {
        count_options co;
        co.skip = 2;
        co.limit = 5;
        ops::count_documents_op count{"c", doc(R"({"a": 1})"), co};
        QCOMPARE(json(count.command().view()),
                 std::string(R"({"aggregate": "c", "pipeline": [{"$match": {"a": 1}}, {"$skip": 2}, {"$limit": 5}, )"
                             R"({"$group": {"_id": 1, "n": {"$sum": 1}}}], "cursor": {}})"));
        QCOMPARE(count.parse(doc(R"({"cursor": {"firstBatch": [{"_id": 1, "n": 4}], "id": 0}})").view()), std::int64_t(4));
        QCOMPARE(count.parse(doc(R"({"cursor": {"firstBatch": [], "id": 0}})").view()), std::int64_t(0));

        ops::distinct_op d{"c", "k", doc("{}"), {}};
        QCOMPARE(json(d.command().view()), std::string(R"({"distinct": "c", "key": "k", "query": {}})"));
        QCOMPARE(d.parse(doc(R"({"values": [1, "x"], "ok": 1})").view()).size(), std::size_t(2));

        ops::aggregate_op agg{"c", arr(R"({"0": {"$match": {}}, "1": {"$out": "o"}})"), {}};
        QVERIFY(agg.writes());
        ops::aggregate_op read{"c", arr(R"({"0": {"$match": {}}})"), {}};
        QVERIFY(!read.writes());

        QCOMPARE(ops::default_index_name(doc(R"({"a": 1, "b": -1, "t": "text"})").view()), std::string("a_1_b_-1_t_text"));
        std::vector<index_model> models;
        models.push_back({doc(R"({"a": 1})"), doc(R"({"unique": true})")});
        models.push_back({doc(R"({"b": 1})"), doc(R"({"name": "mine"})")});
        ops::create_indexes_op ci{"c", std::move(models), write_concern{}};
        QCOMPARE(ci.names(), (std::vector<std::string>{"a_1", "mine"}));
        QCOMPARE(json(ci.command().view()), std::string(R"({"createIndexes": "c", "indexes": [{"key": {"a": 1}, "name": "a_1", )"
                                                        R"("unique": true}, {"key": {"b": 1}, "name": "mine"}]})"));
    }

    void cursor_command_replies_and_options_are_checked() {
        const auto code_of = [](auto&& f) -> std::string {
            try {
                f();
            } catch (const error& e) {
                return std::string(errc_name(e)) + ": " + e.what();
            }
            return "accepted";
        };
        QCOMPARE(code_of([] { ops::check_cursor_reply(doc(R"({"cursor": {"id": 0, "ns": "d.c", "firstBatch": [{}]}, "ok": 1})").view(), "find"); }),
                 std::string("accepted"));
        QCOMPARE(code_of([] { ops::check_cursor_reply(doc(R"({"cursor": {"id": {"$numberInt": "5"}, "firstBatch": []}})").view(), "x"); }),
                 std::string("accepted"));  // ns may be absent, id may be an int32
        const auto refused = [&](std::string_view reply, std::string_view kind, std::string_view what) {
            const std::string got = code_of([&] { ops::check_cursor_reply(doc(reply).view(), "find"); });
            QVERIFY2(got.starts_with(kind), got.c_str());
            QVERIFY2(got.find(what) != std::string::npos, got.c_str());
        };
        refused(R"({"ok": 1})", "invalid_argument", "\"find\" has no cursor document");
        refused(R"({"cursor": 1})", "operation_failure", "cursor is of type int, not a document");
        refused(R"({"cursor": {"firstBatch": []}})", "operation_failure", "cursor.id is missing");
        refused(R"({"cursor": {"id": "1", "firstBatch": []}})", "operation_failure", "cursor.id is of type string");
        refused(R"({"cursor": {"id": 0}})", "operation_failure", "cursor.firstBatch is missing");
        refused(R"({"cursor": {"id": 0, "firstBatch": [{}, 2]}})", "operation_failure", "cursor.firstBatch.1 is of type int");
        refused(R"({"cursor": {"id": 0, "firstBatch": [], "ns": "nodot"}})", "operation_failure", "cursor.ns");

        run_cursor_command_options o;
        QCOMPARE(code_of([&] { ops::validate_cursor_command(doc(R"({"find": "c"})").view(), o); }), std::string("accepted"));
        QVERIFY(code_of([&] { ops::validate_cursor_command(doc("{}").view(), o); }).starts_with("invalid_argument"));
        o.batch_size = 0;
        QVERIFY(code_of([&] { ops::validate_cursor_command(doc(R"({"find": "c"})").view(), o); }).find("batch_size") != std::string::npos);
        o.batch_size = 1;
        o.max_time = std::chrono::milliseconds(-5);
        QVERIFY(code_of([&] { ops::validate_cursor_command(doc(R"({"find": "c"})").view(), o); }).find("-5 ms") != std::string::npos);
        o.max_time = std::chrono::milliseconds(0);  // zero: allowed (not negative)
        QCOMPARE(code_of([&] { ops::validate_cursor_command(doc(R"({"find": "c"})").view(), o); }), std::string("accepted"));
    }
};

QTEST_GUILESS_MAIN(OpsTest)
#include "ops_test.moc"
