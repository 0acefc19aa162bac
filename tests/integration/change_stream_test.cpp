// Change streams against a trellis-sim replica set: events in order, the resume token, one resume
// after a resumable getMore error (with the token command monitoring shows), no resume after
// another error, invalidate on drop, a standalone's error, and the async faces.
#include <QtTest/QtTest>

#include <boost/asio.hpp>

#include "command_recorder.hpp"

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/change_stream.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
using namespace std::chrono_literals;

namespace {

using trellis_test::doc;
bson::array arr(std::string_view json) {
    const bson::document d = bson::from_json("{\"a\": " + std::string(json) + "}");
    return bson::array(bson::document(d.view()["a"].get_array()));
}
std::string type_of(const bson::document& event) { return std::string(event.view()["operationType"].get_string()); }

// The next event, asking again while getMores come back empty (2 s at most).
std::optional<bson::document> next_event(trellis::change_stream& s) {
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    std::optional<bson::document> d = s.try_next();
    while (!d && s.alive() && std::chrono::steady_clock::now() < deadline) d = s.try_next();
    return d;
}

}  // namespace

class ChangeStreamTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> sim_;
    std::unique_ptr<trellis::client> client_;
    trellis_test::command_recorder recorder_;

    std::vector<bson::document> sent(std::string_view name) const { return recorder_.sent(name); }
    // The $changeStream stage of an aggregate as sent.
    static bson::document stage_of(const bson::document& aggregate) {
        return bson::document((*aggregate.view()["pipeline"].get_array().begin()).get_document()["$changeStream"].get_document());
    }
    void fail_get_more(std::string_view data) {
        trellis_test::fail_command(*client_, data);
    }
    trellis::change_stream_options short_wait() {
        trellis::change_stream_options o;
        o.max_await_time = 50ms;
        return o;
    }

private slots:
    void initTestCase() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        sim_ = std::make_unique<sim::deployment>(cfg);
        sim_->start();
        // Polling monitors check at once when an operation asks (after the network error below);
        // a streaming one would wait out its awaitable hello (10 s).
        client_ = std::make_unique<trellis::client>(sim_->uri() + "&serverMonitoringMode=poll", recorder_.settings());
    }
    void cleanupTestCase() {
        client_.reset();
        sim_->stop();
    }

    void events_in_order_with_resume_tokens() {
        auto c = (*client_)["cs"]["order"];
        c.insert_one(doc(R"({"_id": 0})"));  // before the stream: not seen
        auto s = c.watch({}, short_wait());
        QVERIFY(s.alive());
        const auto opened = s.resume_token();  // the aggregate's postBatchResumeToken
        QVERIFY(opened.has_value());
        c.insert_one(doc(R"({"_id": 1, "a": 1, "n": {"x": 1, "y": 2}})"));
        c.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"b": 2, "n.x": 5}, "$unset": {"n.y": 1}})"));
        c.replace_one(doc(R"({"_id": 1})"), doc(R"({"r": true})"));
        c.delete_one(doc(R"({"_id": 1})"));

        auto e = next_event(s);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("insert"));
        QCOMPARE(e->view()["ns"].get_document(), doc(R"({"db": "cs", "coll": "order"})").view());
        QCOMPARE(e->view()["documentKey"].get_document(), doc(R"({"_id": 1})").view());
        QCOMPARE(e->view()["fullDocument"].get_document(), doc(R"({"_id": 1, "a": 1, "n": {"x": 1, "y": 2}})").view());
        QCOMPARE(e->view()["clusterTime"].type(), bson::type::timestamp);
        QCOMPARE(e->view()["wallTime"].type(), bson::type::date_time);
        e = next_event(s);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("update"));
        QCOMPARE(e->view()["updateDescription"].get_document(),
                 doc(R"({"updatedFields": {"n.x": 5, "b": 2}, "removedFields": ["n.y"], "truncatedArrays": []})").view());
        QVERIFY(!e->view().find("fullDocument"));  // fullDocument "default"
        e = next_event(s);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("replace"));
        QCOMPARE(e->view()["fullDocument"].get_document(), doc(R"({"_id": 1, "r": true})").view());
        e = next_event(s);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("delete"));
        // The last event of its batch: the token is the batch's postBatchResumeToken, at or after its _id.
        QVERIFY(s.resume_token().has_value());
        QVERIFY(s.resume_token()->view()["_data"].get_string() >= e->view()["_id"].get_document()["_data"].get_string());
        QVERIFY(s.resume_token()->view()["_data"].get_string() > opened->view()["_data"].get_string());

        // Nothing more: try_next answers after one getMore (maxTimeMS 50 sent), the stream lives.
        const auto get_mores = sent("getMore").size();
        QVERIFY(!s.try_next());
        QVERIFY(s.alive());
        QCOMPARE(sent("getMore").size(), get_mores + 1);
        QCOMPARE(sent("getMore").back().view()["maxTimeMS"].as_int64(), std::int64_t(50));

        // resume_after a token: the events after it, with the pre-image and the looked-up document.
        c.insert_one(doc(R"({"_id": 2})"));
        c.update_one(doc(R"({"_id": 2})"), doc(R"({"$set": {"u": 1}})"));
        trellis::change_stream_options o = short_wait();
        o.resume_after = s.resume_token();
        o.full_document = "updateLookup";
        o.full_document_before_change = "whenAvailable";
        s.close();
        QVERIFY(!s.alive());
        auto again = c.watch({}, o);
        e = next_event(again);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("insert"));
        e = next_event(again);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("update"));
        QCOMPARE(e->view()["fullDocument"].get_document(), doc(R"({"_id": 2, "u": 1})").view());
        QCOMPARE(e->view()["fullDocumentBeforeChange"].get_document(), doc(R"({"_id": 2})").view());
        QCOMPARE(stage_of(sent("aggregate").back()).view()["resumeAfter"].get_document(), o.resume_after->view());
    }

    void pipeline_stages_filter_events() {
        auto c = (*client_)["cs"]["pipeline"];
        auto s = c.watch(arr(R"([{"$match": {"fullDocument.keep": true}}, {"$project": {"fullDocument": 1}}])"), short_wait());
        c.insert_one(doc(R"({"_id": 1, "keep": false})"));
        c.insert_one(doc(R"({"_id": 2, "keep": true})"));
        auto e = next_event(s);
        QVERIFY(e);
        QCOMPARE(e->view()["fullDocument"].get_document()["_id"].as_int64(), std::int64_t(2));
        QVERIFY(!e->view().find("operationType"));  // projected away; _id (the token) stays
        QVERIFY(e->view().find("_id"));
    }

    // A getMore error labelled ResumableChangeStreamError: one new aggregate with resumeAfter set
    // to the token held before the error (the first aggregate's postBatchResumeToken), and the
    // event arrives as if nothing happened.
    void resumes_once_after_resumable_get_more_error() {
        auto c = (*client_)["cs"]["resume"];
        auto s = c.watch({}, short_wait());
        const auto token = s.resume_token();
        QVERIFY(token);
        const auto aggregates = sent("aggregate").size();
        fail_get_more(R"({"failCommands": ["getMore"], "errorCode": 6, "errorLabels": ["ResumableChangeStreamError"]})");
        c.insert_one(doc(R"({"_id": 1})"));
        auto e = next_event(s);
        QVERIFY(e);
        QCOMPARE(e->view()["documentKey"].get_document()["_id"].as_int64(), std::int64_t(1));
        QCOMPARE(sent("aggregate").size(), aggregates + 1);
        const bson::document resumed = stage_of(sent("aggregate").back());
        QCOMPARE(resumed.view()["resumeAfter"].get_document(), token->view());
        QVERIFY(!resumed.view().find("startAtOperationTime"));

        // A network error (the connection closed) resumes too, from the last event's token.
        const auto last = s.resume_token();
        fail_get_more(R"({"failCommands": ["getMore"], "closeConnection": true})");
        c.insert_one(doc(R"({"_id": 2})"));
        e = next_event(s);
        QVERIFY(e);
        QCOMPARE(e->view()["documentKey"].get_document()["_id"].as_int64(), std::int64_t(2));
        QCOMPARE(sent("aggregate").size(), aggregates + 2);
        QCOMPARE(stage_of(sent("aggregate").back()).view()["resumeAfter"].get_document(), last->view());
    }

    void no_resume_after_other_errors() {
        auto c = (*client_)["cs"]["noresume"];
        auto s = c.watch({}, short_wait());
        const auto aggregates = sent("aggregate").size();
        fail_get_more(R"({"failCommands": ["getMore"], "errorCode": 2})");  // BadValue, no label
        try {
            (void)s.try_next();
            QFAIL("a BadValue getMore error did not reach the caller");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 2);
        }
        QVERIFY(!s.alive());
        QCOMPARE(sent("aggregate").size(), aggregates);
        QVERIFY(!s.try_next());  // ended: nothing more is sent
    }

    void invalidate_on_drop() {
        auto c = (*client_)["cs"]["dropped"];
        c.insert_one(doc(R"({"_id": 1})"));
        auto s = c.watch({}, short_wait());
        c.drop();
        auto e = next_event(s);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("drop"));
        e = next_event(s);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("invalidate"));
        QVERIFY(!s.next());  // the server closed the cursor with the invalidate
        QVERIFY(!s.alive());
        // resumeAfter an invalidate is refused; startAfter goes on after it.
        trellis::change_stream_options o = short_wait();
        o.resume_after = bson::document(e->view()["_id"].get_document());
        try {
            (void)c.watch({}, o);
            QFAIL("resumeAfter an invalidate was accepted");
        } catch (const trellis::operation_failure& x) {
            QCOMPARE(x.server_code(), 260);  // InvalidResumeToken
        }
        o.resume_after.reset();
        o.start_after = bson::document(e->view()["_id"].get_document());
        auto after = c.watch({}, o);
        c.insert_one(doc(R"({"_id": 5})"));
        e = next_event(after);
        QVERIFY(e);
        QCOMPARE(type_of(*e), std::string("insert"));
    }

    void rename_and_database_drop() {
        auto db = (*client_)["cs_db"];
        db["a"].insert_one(doc(R"({"_id": 1})"));
        auto s = db.watch({}, short_wait());
        db["a"].rename("b");
        db.drop();
        std::vector<std::string> types;
        while (auto e = next_event(s)) types.push_back(type_of(*e));
        QCOMPARE(types, (std::vector<std::string>{"rename", "drop", "dropDatabase", "invalidate"}));
        QVERIFY(!s.alive());
    }

    // MongoDB 4.0 (wire 7): no ResumableChangeStreamError labels (the spec's code list decides),
    // and the server returns an event whose _id a stage removed: the stream refuses it.
    void older_server_code_list_and_missing_token() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.max_wire_version = 7;
        sim::deployment old(cfg);
        old.start();
        {
            trellis_test::command_recorder recorder;
            trellis::client c(old.uri() + "&serverMonitoringMode=poll", recorder.settings());
            auto coll = c["cs"]["old"];
            auto s = coll.watch({}, short_wait());
            trellis_test::fail_command(c, R"({"failCommands": ["getMore"], "errorCode": 6})");  // HostUnreachable, no label
            coll.insert_one(doc(R"({"_id": 1})"));
            auto e = next_event(s);
            QVERIFY(e);
            QCOMPARE(e->view()["documentKey"].get_document()["_id"].as_int64(), std::int64_t(1));
            QCOMPARE(recorder.sent("aggregate").size(), std::size_t(2));

            auto no_id = coll.watch(arr(R"([{"$project": {"_id": 0}}])"), short_wait());
            coll.insert_one(doc(R"({"_id": 2})"));
            try {
                (void)next_event(no_id);
                QFAIL("an event without its resume token was returned");
            } catch (const trellis::error& x) {
                QCOMPARE(x.code(), std::error_code(trellis::errc::invalid_argument));
                QVERIFY(std::string(x.what()).find("resume token is missing") != std::string::npos);
            }
            QVERIFY(!no_id.alive());
        }
        old.stop();
    }

    void standalone_refuses_with_a_clear_error() {
        sim::deployment standalone(sim::sim_config{});
        standalone.start();
        {
            trellis::client c(standalone.uri());
            try {
                (void)c["db"]["coll"].watch();
                QFAIL("a standalone opened a change stream");
            } catch (const trellis::operation_failure& e) {
                QCOMPARE(e.server_code(), 40573);
                QVERIFY(std::string(e.what()).find("only supported on replica sets") != std::string::npos);
            }
        }
        standalone.stop();
    }

    void bad_options_are_refused_before_sending() {
        trellis::change_stream_options o;
        o.batch_size = -1;
        const auto aggregates = sent("aggregate").size();
        try {
            (void)(*client_)["cs"]["x"].watch({}, o);
            QFAIL("a negative batch_size was accepted");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), std::error_code(trellis::errc::invalid_argument));
        }
        QCOMPARE(sent("aggregate").size(), aggregates);
        // What the server refuses comes back typed.
        o.batch_size.reset();
        o.full_document = "sometimes";
        try {
            (void)(*client_)["cs"]["x"].watch({}, o);
            QFAIL("fullDocument \"sometimes\" was accepted");
        } catch (const trellis::operation_failure& e) {
            QCOMPARE(e.server_code(), 2);
            QVERIFY(std::string(e.what()).find("fullDocument") != std::string::npos);
        }
    }

    // async_watch and async_next with use_awaitable on the embedder's io_context (a database
    // stream and a cluster stream), and async_try_next with use_future.
    void async_faces() {
        auto db = (*client_)["cs_async"];
        asio::io_context mine;
        auto work = [this, db]() mutable -> asio::awaitable<std::vector<std::string>> {
            trellis::change_stream_options o;
            o.max_await_time = 50ms;
            bson::array none;
            auto s = co_await db.async_watch(none, o, asio::use_awaitable);
            auto everything = co_await client_->async_watch(none, o, asio::use_awaitable);
            auto one = bson::make_document(bson::kvp("x", 1));
            co_await db["one"].async_insert_one(one, {}, asio::use_awaitable);
            auto two = bson::make_document(bson::kvp("x", 2));
            co_await db["two"].async_insert_one(two, {}, asio::use_awaitable);
            std::vector<std::string> seen;
            for (int i = 0; i < 2; ++i) {
                auto e = co_await s.async_next(asio::use_awaitable);
                if (e) seen.push_back(std::string(e->view()["ns"].get_document()["coll"].get_string()));
            }
            auto e = co_await everything.async_next(asio::use_awaitable);
            if (e) seen.push_back(std::string(e->view()["ns"].get_document()["db"].get_string()));
            co_return seen;
        };
        auto result = asio::co_spawn(mine, work(), asio::use_future);
        mine.run();
        QCOMPARE(result.get(), (std::vector<std::string>{"one", "two", "cs_async"}));
        const auto cluster = sent("aggregate");
        bool admin_stage = false;
        for (const auto& a : cluster)
            if (a.view()["$db"].get_string() == "admin" && stage_of(a).view().find("allChangesForCluster")) admin_stage = true;
        QVERIFY(admin_stage);

        auto coll = db["future"];
        auto s = coll.async_watch({}, short_wait(), asio::use_future).get();
        coll.insert_one(doc(R"({"_id": 9})"));
        std::optional<bson::document> e;
        for (int i = 0; i < 40 && !e; ++i) e = s.async_try_next(asio::use_future).get();
        QVERIFY(e);
        QCOMPARE(e->view()["documentKey"].get_document()["_id"].as_int64(), std::int64_t(9));
    }

    // The change streams spec: "the resume attempt MUST use the same session as the previous
    // attempt's command". Without an explicit session the first aggregate's implicit session
    // serves its getMores and the resumed aggregate; it goes back to the pool when the stream
    // closes (the next operation takes it), unless a network error made it dirty.
    void resume_uses_the_same_implicit_session() {
        auto c = (*client_)["cs"]["same_session"];
        auto s = c.watch({}, short_wait());
        const auto aggregates = sent("aggregate").size();
        const bson::document lsid(sent("aggregate").back()["lsid"].get_document());
        fail_get_more(R"({"failCommands": ["getMore"], "errorCode": 6, "errorLabels": ["ResumableChangeStreamError"]})");
        c.insert_one(doc(R"({"_id": 1})"));
        QVERIFY(next_event(s));
        const auto all_aggregates = sent("aggregate");
        QCOMPARE(all_aggregates.size(), aggregates + 1);
        QCOMPARE(all_aggregates.back()["lsid"].get_document(), lsid.view());
        for (const auto& g : sent("getMore"))
            if (g["collection"].get_string() == "same_session") QCOMPARE(g["lsid"].get_document(), lsid.view());
        // The stream ends (an invalidate: the collection dropped, no killCursors): the session
        // goes back to the top of the pool, so the next operation gets it.
        c.drop();
        auto invalidate = next_event(s);
        while (invalidate && type_of(*invalidate) != "invalidate") invalidate = next_event(s);
        QVERIFY(invalidate);
        QVERIFY(!s.try_next());  // the server closed the cursor with the invalidate: the stream ends
        QVERIFY(!s.alive());
        (void)c.find_one(doc("{}"));
        QCOMPARE(sent("find").back()["lsid"].get_document(), lsid.view());

        // A network error: the resume still uses the (now dirty) session, which is then discarded.
        auto t = c.watch({}, short_wait());
        const bson::document second(sent("aggregate").back()["lsid"].get_document());
        fail_get_more(R"({"failCommands": ["getMore"], "closeConnection": true})");
        c.insert_one(doc(R"({"_id": 2})"));
        QVERIFY(next_event(t));
        QCOMPARE(sent("aggregate").back()["lsid"].get_document(), second.view());
        t.close();
        (void)c.find_one(doc("{}"));
        QVERIFY(sent("find").back()["lsid"].get_document() != second.view());  // never pooled again
    }

    // client::watch in an explicit session: the aggregate, its getMores and a resume carry the
    // session's lsid, and the replies advance its times. Another client's or an ended session is
    // refused with invalid_argument (through the token for async_watch), nothing sent.
    void client_watch_in_an_explicit_session() {
        auto session = client_->start_session();
        const auto lsid = session.id();
        recorder_.clear();
        auto s = client_->watch(session, {}, short_wait());
        QCOMPARE(sent("aggregate").back()["lsid"].get_document(), lsid.view());
        QCOMPARE(sent("aggregate").back()["$db"].get_string(), std::string_view("admin"));
        QVERIFY(session.cluster_time());
        QVERIFY(session.operation_time());
        fail_get_more(R"({"failCommands": ["getMore"], "errorCode": 6, "errorLabels": ["ResumableChangeStreamError"]})");
        (*client_)["cs"]["explicit"].insert_one(doc(R"({"_id": 1})"));
        QVERIFY(next_event(s));
        const auto aggregates = sent("aggregate");
        QCOMPARE(aggregates.size(), std::size_t(2));  // the first and the resume
        for (const auto& a : aggregates) QCOMPARE(a["lsid"].get_document(), lsid.view());
        const auto get_mores = sent("getMore");
        QVERIFY(!get_mores.empty());  // the failed one (the resumed aggregate's batch had the event)
        for (const auto& g : get_mores) QCOMPARE(g["lsid"].get_document(), lsid.view());
        s.close();

        const auto refused = [&](const trellis::client_session& bad, std::string_view why) {
            recorder_.clear();
            try {
                (void)client_->watch(bad);
                QFAIL("a bad session was accepted");
            } catch (const trellis::error& e) {
                QCOMPARE(e.code(), make_error_code(trellis::errc::invalid_argument));
                QVERIFY2(std::string_view(e.what()).find(why) != std::string_view::npos, e.what());
            }
            try {
                (void)client_->async_watch(bad, {}, {}, asio::use_future).get();
                QFAIL("a bad session was accepted (async)");
            } catch (const trellis::error& e) {
                QCOMPARE(e.code(), make_error_code(trellis::errc::invalid_argument));
            }
            QCOMPARE(sent("aggregate").size(), std::size_t(0));
        };
        trellis::client other(sim_->uri());
        auto foreign = other.start_session();
        refused(foreign, "different client");
        session.end_session();
        refused(session, "has ended");
    }
};

QTEST_GUILESS_MAIN(ChangeStreamTest)
#include "change_stream_test.moc"
