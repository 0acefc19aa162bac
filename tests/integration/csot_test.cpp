// Client-side operations timeout (timeoutMS) against trellis-sim: one deadline per operation over
// selection, check-out, the round trip and retries; maxTimeMS derived from it; inheritance
// client -> database -> collection -> operation; the timeout error and its cause; cursors'
// timeout modes. Timeouts are short (150-400 ms) and the checks leave generous margins.
#include <QtTest/QtTest>

#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <string>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/database.hpp"
#include "trellis/errors.hpp"
#include "trellis/gridfs.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"
#include "command_recorder.hpp"
#include "fail_point.hpp"

namespace sim = trellis::sim;
namespace bson = trellis::bson;
using trellis::errc;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

std::string with(std::string uri, const std::string& options) {
    return uri + (uri.find('?') == std::string::npos ? (uri.find('/', 10) == std::string::npos ? "/?" : "?") : "&") + options;
}

using trellis_test::doc;

using recorder = trellis_test::command_recorder;

// The maxTimeMS of a started command; -1 when it has none.
std::int64_t max_time_of(const bson::document& command) {
    const auto v = command.find("maxTimeMS");
    return v ? v->as_int64() : -1;
}

// failCommand on `command`: `times` times (0: always), blocking for `block` or failing with `code`.
void fail(trellis::client& c, const char* command, int times, std::optional<ms> block, int code = 0,
          bool close_connection = false) {
    bson::builder data;
    data.open_array("failCommands").append(command).close_array();
    if (block) data.append("blockConnection", true).append("blockTimeMS", static_cast<std::int32_t>(block->count()));
    if (code) data.append("errorCode", code);
    if (close_connection) data.append("closeConnection", true);
    bson::builder b;
    b.append("configureFailPoint", "failCommand");
    if (times > 0) b.open_document("mode").append("times", times).close_document();
    else b.append("mode", "alwaysOn");
    b.append("data", data.extract().view());
    c.run_command("admin", b.extract());
}

// A client of `d` with the given URI options and a command recorder.
trellis::client client_of(sim::deployment& d, recorder& rec, const std::string& options) {
    trellis::client_settings settings;
    rec.attach(settings);
    return trellis::client(trellis::parse_uri(with(d.uri(), options)).options, std::move(settings));
}

// A standalone sim, a client of it with `options` and a recorder, a plain admin client for
// fail points, and test.csot holding {_id: 1}.
struct started_sim : sim::deployment {
    started_sim() : sim::deployment(sim::sim_config{}) { start(); }
};

struct rig {
    started_sim d;
    recorder rec;
    trellis::client c;
    trellis::client admin;
    trellis::collection coll;

    explicit rig(const std::string& options) : c(client_of(d, rec, options)), admin(d.uri()), coll(c["test"]["csot"]) {
        coll.insert_one(doc(R"({"_id": 1})"));
    }
};

ms since(steady::time_point t) { return std::chrono::duration_cast<ms>(steady::now() - t); }

// Runs f, expecting trellis::operation_timeout; its cause's code is returned, the time taken in `took`.
std::error_code expect_timeout(const std::function<void()>& f, ms& took, std::string* text = nullptr) {
    const auto t0 = steady::now();
    try {
        f();
    } catch (const trellis::operation_timeout& e) {
        took = since(t0);
        if (text) *text = e.what();
        if (e.code() != errc::operation_timeout) return {};
        return e.cause_code();
    } catch (const std::exception& e) {
        took = since(t0);
        qWarning("not a timeout error: %s", e.what());
        return {};
    }
    took = since(t0);
    qWarning("no error");
    return {};
}

}  // namespace

class CsotTest : public QObject {
    Q_OBJECT

private slots:
    void uri_option_parses() {
        const auto o = trellis::parse_uri("mongodb://localhost/?timeoutMS=250").options;
        QVERIFY(o.timeout.has_value());
        QCOMPARE(o.timeout->count(), 250);
        QVERIFY(trellis::parse_uri("mongodb://localhost/?timeoutMS=0").options.timeout == ms(0));
        // A negative value: warned about and ignored in a URI (the URI options spec), refused in code.
        const auto negative = trellis::parse_uri("mongodb://localhost/?timeoutMS=-1");
        QVERIFY(!negative.options.timeout);
        QVERIFY(std::any_of(negative.warnings.begin(), negative.warnings.end(),
                            [](const std::string& w) { return w.find("timeoutMS") != std::string::npos; }));
        bool refused = false;
        try {
            trellis::client_options o = trellis::parse_uri("mongodb://127.0.0.1:1").options;
            o.timeout = ms(-1);
            trellis::client c(std::move(o));
        } catch (const trellis::error& e) {
            refused = e.code() == errc::configuration_error && std::string(e.what()).find("timeoutMS") != std::string::npos;
        }
        QVERIFY(refused);
        // Accepted by a client now (it was refused while CSOT was not implemented).
        bool accepted = true;
        try {
            trellis::client c("mongodb://127.0.0.1:1/?timeoutMS=100&serverSelectionTimeoutMS=100");
        } catch (const trellis::error&) {
            accepted = false;
        }
        QVERIFY(accepted);
    }

    // A find blocked well past timeoutMS fails with the timeout error in about timeoutMS; its cause
    // is the socket timeout, and the connection it timed out on is closed (the next one is new).
    void blocked_operation_times_out_sync() {
        rig r("timeoutMS=200");
        auto& [d, rec, c, admin, coll] = r;
        fail(admin, "find", 1, ms(1500));
        ms took{};
        std::string text;
        const auto cause = expect_timeout([&] { coll.find_one({}); }, took, &text);
        QVERIFY2(cause == errc::network_timeout, text.c_str());
        QVERIFY2(took >= ms(190) && took < ms(1000), std::to_string(took.count()).c_str());
        QVERIFY2(text.find("timeoutMS (200 ms)") != std::string::npos, text.c_str());
        // The next operation works (a new connection: the timed-out one was mid-reply).
        QVERIFY(coll.find_one({}).has_value());
    }

    void blocked_operation_times_out_async() {
        rig r("timeoutMS=200");
        auto& [d, rec, c, admin, coll] = r;
        fail(admin, "find", 1, ms(1500));
        ms took{};
        const auto cause = expect_timeout(
            [&] { coll.async_find_one(bson::document(), trellis::find_options{}, boost::asio::use_future).get(); }, took);
        QVERIFY(cause == errc::network_timeout);
        QVERIFY2(took >= ms(190) && took < ms(1000), std::to_string(took.count()).c_str());
        // Per operation, asynchronously: the operation's timeout wins over the client's.
        fail(admin, "insert", 1, ms(1500));
        trellis::insert_one_options io;
        io.timeout = ms(150);
        const auto cause2 = expect_timeout(
            [&] { coll.async_insert_one(doc(R"({"_id": 2})"), io, boost::asio::use_future).get(); }, took);
        QVERIFY(cause2 == errc::network_timeout);
        QVERIFY2(took >= ms(140) && took < ms(190), std::to_string(took.count()).c_str());
    }

    // maxTimeMS = remaining - minRTT: present and at most timeoutMS with it, absent without it;
    // the deprecated per-operation max_time gives way.
    void max_time_ms_follows_timeout() {
        rig r("timeoutMS=300");
        auto& [d, rec, c, admin, coll] = r;
        trellis::find_options fo;
        fo.max_time = ms(5000);
        coll.find_one({}, fo);
        coll.count_documents({});
        for (const char* name : {"insert", "find", "aggregate"}) {
            const auto sent = rec.sent(name);
            QVERIFY2(!sent.empty(), name);
            const auto t = max_time_of(sent.back());
            QVERIFY2(t > 0 && t <= 300, (std::string(name) + ": " + std::to_string(t)).c_str());
        }
        recorder plain_rec;
        auto plain = client_of(d, plain_rec, "heartbeatFrequencyMS=500");
        plain["test"]["csot"].insert_one(doc(R"({"_id": 2})"));
        plain["test"]["csot"].find_one({});
        QCOMPARE(max_time_of(plain_rec.sent("insert").back()), std::int64_t(-1));
        QCOMPARE(max_time_of(plain_rec.sent("find").back()), std::int64_t(-1));
    }

    // The operation's timeout beats the collection's, which beats the database's, which beats the
    // client's: each shows in the maxTimeMS sent.
    void inheritance_client_database_collection_operation() {
        sim::deployment d(sim::sim_config{});
        d.start();
        recorder rec;
        auto c = client_of(d, rec, "timeoutMS=8000");
        auto in_range = [&](const char* name, std::int64_t low, std::int64_t high) {
            const auto t = max_time_of(rec.sent(name).back());
            QVERIFY2(t > low && t <= high, (std::string(name) + ": " + std::to_string(t)).c_str());
            rec.clear();
        };
        c.run_command("test", doc(R"({"ping": 1})"));
        in_range("ping", 6000, 8000);
        trellis::handle_options db_o;
        db_o.timeout = ms(5000);
        auto db = c["test"].with_options(db_o);
        db.run_command(doc(R"({"ping": 1})"));
        in_range("ping", 4000, 5000);
        db["csot"].insert_one(doc(R"({"_id": 1})"));  // the database's, inherited by the collection
        in_range("insert", 4000, 5000);
        trellis::handle_options coll_o;
        coll_o.timeout = ms(3000);
        auto coll = db["csot"].with_options(coll_o);
        coll.insert_one(doc(R"({"_id": 2})"));
        in_range("insert", 2000, 3000);
        trellis::find_options fo;
        fo.timeout = ms(1000);
        coll.find_one({}, fo);
        in_range("find", 0, 1000);
        trellis::count_options co;
        co.timeout = ms(1500);
        coll.count_documents({}, co);
        in_range("aggregate", 1000, 1500);
        // Zero on the operation: no limit, no maxTimeMS.
        trellis::update_options uo;
        uo.timeout = ms(0);
        coll.update_one(doc(R"({"_id": 1})"), doc(R"({"$set": {"x": 1}})"), uo);
        QCOMPARE(max_time_of(rec.sent("update").back()), std::int64_t(-1));
        // A negative one is refused, naming the option.
        trellis::delete_options bad;
        bad.timeout = ms(-5);
        bool refused = false;
        try {
            coll.delete_one(doc(R"({"_id": 1})"), bad);
        } catch (const trellis::error& e) {
            refused = e.code() == errc::invalid_argument && std::string(e.what()).find("timeoutMS") != std::string::npos;
        }
        QVERIFY(refused);
    }

    // timeoutMS 0 (per operation, or on a handle) means no limit: a find blocked past the client's
    // timeoutMS still succeeds.
    void zero_means_no_limit() {
        rig r("timeoutMS=150");
        auto& [d, rec, c, admin, coll] = r;
        fail(admin, "find", 1, ms(350));
        trellis::find_options fo;
        fo.timeout = ms(0);
        const auto t0 = steady::now();
        QVERIFY(coll.find_one({}, fo).has_value());
        QVERIFY(since(t0) >= ms(340));
        trellis::handle_options unlimited;
        unlimited.timeout = ms(0);
        fail(admin, "find", 1, ms(350));
        QVERIFY(c["test"].with_options(unlimited)["csot"].find_one({}).has_value());
        QCOMPARE(max_time_of(rec.sent("find").back()), std::int64_t(-1));
    }

    // No server: selection gives up at timeoutMS when that comes before serverSelectionTimeoutMS,
    // and the timeout error carries the selection error.
    void server_selection_bounded_by_timeout() {
        trellis::client c("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=5000&timeoutMS=200&connectTimeoutMS=100");
        ms took{};
        std::string text;
        const auto cause = expect_timeout([&] { c["test"]["csot"].find_one({}); }, took, &text);
        QVERIFY2(cause == errc::server_selection_timeout, text.c_str());
        QVERIFY2(took >= ms(190) && took < ms(1500), std::to_string(took.count()).c_str());
        QVERIFY2(text.find("remaining timeoutMS") != std::string::npos, text.c_str());
        // Without timeoutMS the old error stays (serverSelectionTimeoutMS, no timeout error).
        trellis::client old("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=150&connectTimeoutMS=100");
        bool selection_error = false;
        try {
            old["test"]["csot"].find_one({});
        } catch (const trellis::operation_timeout&) {
        } catch (const trellis::error& e) {
            selection_error = e.code() == errc::server_selection_timeout;
        }
        QVERIFY(selection_error);
    }

    // With timeoutMS a retryable error is retried as long as time remains (not just once), and
    // the timeout error keeps the last failure; without it, one retry and the server's error.
    void retryable_error_retried_until_time_runs_out() {
        rig r("timeoutMS=300");
        auto& [d, rec, c, admin, coll] = r;
        fail(admin, "find", 0, std::nullopt, 89);  // NetworkTimeout: retryable, no state change
        rec.clear();
        ms took{};
        std::string text;
        const auto cause = expect_timeout([&] { coll.find_one({}); }, took, &text);
        QVERIFY2(cause == errc::operation_failure, text.c_str());
        QVERIFY2(text.find("code 89") != std::string::npos, text.c_str());
        QVERIFY2(took >= ms(290) && took < ms(1500), std::to_string(took.count()).c_str());
        const auto attempts = rec.sent("find").size();
        QVERIFY2(attempts >= 3, std::to_string(attempts).c_str());
        // Without timeoutMS: the first attempt and one retry.
        recorder plain_rec;
        auto plain = client_of(d, plain_rec, "heartbeatFrequencyMS=500");
        bool server_error = false;
        try {
            plain["test"]["csot"].find_one({});
        } catch (const trellis::operation_timeout&) {
        } catch (const trellis::operation_failure& e) {
            server_error = e.server_code() == 89;
        }
        QVERIFY(server_error);
        QCOMPARE(plain_rec.sent("find").size(), std::size_t(2));
        trellis_test::fail_command_off(admin);
    }

    // closeConnection and ShutdownInProgress (91): retried while time remains, then the timeout error.
    void network_and_shutdown_errors_retried_within_timeout() {
        rig r("timeoutMS=700&heartbeatFrequencyMS=500");
        auto& [d, rec, c, admin, coll] = r;
        // Each error marks the server Unknown; its check runs at once if the last one is older than
        // minHeartbeatFrequencyMS (500 ms), and the retry follows it.
        for (const bool close : {true, false}) {
            std::this_thread::sleep_for(600ms);
            fail(admin, "find", 0, std::nullopt, close ? 0 : 91, close);
            rec.clear();
            ms took{};
            std::string text;
            const auto cause = expect_timeout([&] { coll.find_one({}); }, took, &text);
            QVERIFY2(cause != std::error_code(), text.c_str());
            QVERIFY2(took >= ms(690) && took < ms(2000), std::to_string(took.count()).c_str());
            QVERIFY2(rec.sent("find").size() >= 2, text.c_str());
            trellis_test::fail_command_off(admin);
        }
        // A single failure: the retry succeeds within the time.
        std::this_thread::sleep_for(600ms);
        fail(admin, "find", 1, std::nullopt, 0, true);
        QVERIFY(coll.find_one({}).has_value());
    }

    // cursor_lifetime (the default): the find and its getMores share one deadline; iteration: each
    // next() that goes to the server gets the whole timeout. getMore never carries maxTimeMS.
    void cursor_lifetime_and_iteration() {
        sim::deployment d(sim::sim_config{});
        d.start();
        recorder rec;
        auto c = client_of(d, rec, "timeoutMS=300");
        auto coll = c["test"]["csot"];
        std::vector<bson::document> docs;
        for (int i = 0; i < 6; ++i) docs.push_back(bson::make_document(bson::kvp("_id", i)));
        coll.insert_many(docs);
        trellis::client admin(d.uri());
        for (const auto mode : {trellis::timeout_mode::cursor_lifetime, trellis::timeout_mode::iteration}) {
            trellis::find_options fo;
            fo.batch_size = 2;
            if (mode == trellis::timeout_mode::iteration) fo.timeout_mode = mode;
            rec.clear();
            auto cur = coll.find({}, fo);
            QVERIFY(cur.next() && cur.next());  // the first batch
            std::this_thread::sleep_for(200ms);
            fail(admin, "getMore", 1, ms(180));
            bool timed_out = false;
            try {
                QVERIFY(cur.next().has_value());
            } catch (const trellis::operation_timeout&) {
                timed_out = true;
            }
            // 200 + 180 > 300: the cursor's lifetime is over; a fresh 300 ms for the getMore is not.
            QCOMPARE(timed_out, mode == trellis::timeout_mode::cursor_lifetime);
            QVERIFY(!rec.sent("getMore").empty());
            for (const auto& g : rec.sent("getMore")) QCOMPARE(max_time_of(g), std::int64_t(-1));
            // Iteration mode: the find itself carries no maxTimeMS either.
            QCOMPARE(max_time_of(rec.sent("find").back()) == -1, mode == trellis::timeout_mode::iteration);
        }
        // Documents in hand are returned after the lifetime ends; only a getMore times out.
        trellis::find_options fo;
        fo.batch_size = 3;
        fo.timeout = ms(150);
        auto cur = coll.find({}, fo);
        std::this_thread::sleep_for(200ms);
        QVERIFY(cur.next() && cur.next() && cur.next());
        ms took{};
        const auto cause = expect_timeout([&] { cur.next(); }, took);
        QVERIFY(cause == errc::operation_timeout);  // found before selection: no cause
        QVERIFY(took < ms(100));
    }

    // What the spec refuses: timeout_mode without timeoutMS, cursor_lifetime on a tailable cursor,
    // maxAwaitTimeMS not below timeoutMS, iteration with $out.
    void cursor_timeout_refusals() {
        sim::deployment d(sim::sim_config{});
        d.start();
        auto refused = [](const std::function<void()>& f, const char* part) {
            try {
                f();
            } catch (const trellis::error& e) {
                return e.code() == errc::invalid_argument && std::string(e.what()).find(part) != std::string::npos;
            }
            return false;
        };
        trellis::client plain(d.uri());
        trellis::find_options fo;
        fo.timeout_mode = trellis::timeout_mode::iteration;
        QVERIFY(refused([&] { plain["test"]["csot"].find({}, fo); }, "timeout_mode needs a timeout"));
        trellis::client c(with(d.uri(), "timeoutMS=300"));
        auto coll = c["test"]["csot"];
        trellis::find_options tail;
        tail.cursor_type = trellis::cursor_type::tailable_await;
        tail.timeout_mode = trellis::timeout_mode::cursor_lifetime;
        QVERIFY(refused([&] { coll.find({}, tail); }, "iteration only"));
        tail.timeout_mode.reset();
        tail.max_await_time = ms(300);
        QVERIFY(refused([&] { coll.find({}, tail); }, "must be less than timeoutMS"));
        trellis::aggregate_options ao;
        ao.timeout_mode = trellis::timeout_mode::iteration;
        QVERIFY(refused([&] { coll.aggregate(bson::array(doc(R"({"0": {"$out": "other"}})")), ao); }, "$out or $merge"));
    }
    // GridFS: an upload is bounded as a whole by one deadline, not per chunk: three chunk inserts
    // blocked 150 ms each (each well within 400 ms) exceed it together. Without timeoutMS the
    // same upload succeeds. The chunks' maxTimeMS shrink as the deadline nears.
    void gridfs_upload_bounded_as_a_whole() {
        rig r("timeoutMS=400");
        auto& [d, rec, c, admin, coll] = r;
        trellis::gridfs::bucket_options bo;
        bo.chunk_size_bytes = 4;
        trellis::gridfs::bucket bucket(c["test"], bo);
        const std::vector<std::uint8_t> bytes(20, 7);  // five chunks
        bucket.upload_from_bytes("warm", std::span<const std::uint8_t>(bytes.data(), 4));  // makes the indexes
        rec.clear();
        fail(admin, "insert", 3, ms(150));
        ms took{};
        std::string text;
        const auto cause = expect_timeout([&] { bucket.upload_from_bytes("slow", bytes); }, took, &text);
        QVERIFY2(cause != std::error_code(), text.c_str());
        QVERIFY2(took >= ms(390) && took < ms(1000), std::to_string(took.count()).c_str());
        const auto inserts = rec.sent("insert");
        QVERIFY2(inserts.size() >= 3, std::to_string(inserts.size()).c_str());
        for (std::size_t i = 1; i < inserts.size(); ++i)
            QVERIFY2(max_time_of(inserts[i]) < max_time_of(inserts[i - 1]), std::to_string(max_time_of(inserts[i])).c_str());
        QVERIFY(max_time_of(inserts.front()) <= 400);

        recorder plain_rec;
        auto plain = client_of(d, plain_rec, "heartbeatFrequencyMS=500");
        trellis::gridfs::bucket unlimited(plain["test"], bo);
        fail(admin, "insert", 3, ms(150));
        QVERIFY(unlimited.download(unlimited.upload_from_bytes("slow", bytes)) == bytes);
    }

    // An upload stream's deadline starts when it is opened: a write after it has passed fails
    // with the timeout error at once (nothing sent); asynchronously too.
    void gridfs_upload_stream_lifetime() {
        rig r("timeoutMS=300");
        auto& [d, rec, c, admin, coll] = r;
        trellis::gridfs::bucket_options bo;
        bo.chunk_size_bytes = 4;
        trellis::gridfs::bucket bucket(c["test"], bo);
        const std::vector<std::uint8_t> bytes(8, 1);
        auto up = bucket.open_upload_stream("late");
        up.write(bytes);  // in time
        std::this_thread::sleep_for(350ms);
        rec.clear();
        ms took{};
        QVERIFY(expect_timeout([&] { up.write(bytes); }, took) == errc::operation_timeout);
        QVERIFY2(took < ms(100), std::to_string(took.count()).c_str());
        QVERIFY(expect_timeout([&] { up.async_close(boost::asio::use_future).get(); }, took) == errc::operation_timeout);
        QCOMPARE(rec.sent("insert").size(), std::size_t(0));
    }

    // A download is bounded as a whole: the files document's find and the chunks' find, blocked
    // 250 ms each, exceed 400 ms together.
    void gridfs_download_bounded_as_a_whole() {
        rig r("timeoutMS=400");
        auto& [d, rec, c, admin, coll] = r;
        trellis::gridfs::bucket_options bo;
        bo.chunk_size_bytes = 4;
        trellis::gridfs::bucket bucket(c["test"], bo);
        const std::vector<std::uint8_t> bytes(20, 3);
        const auto id = bucket.upload_from_bytes("file", bytes);
        fail(admin, "find", 2, ms(250));
        ms took{};
        std::string text;
        const auto cause = expect_timeout(
            [&] { bucket.async_download(id, trellis::gridfs::download_options{}, boost::asio::use_future).get(); }, took, &text);
        QVERIFY2(cause != std::error_code(), text.c_str());
        QVERIFY2(took >= ms(390) && took < ms(1000), std::to_string(took.count()).c_str());
        trellis_test::fail_command_off(admin);
        QVERIFY(bucket.download(id) == bytes);
    }

    // Dropping a bucket is bounded as a whole: two drops blocked 250 ms each exceed 400 ms
    // together (each alone is well within it); the second drop's maxTimeMS is what remained.
    void gridfs_drop_bounded_as_a_whole() {
        rig r("timeoutMS=400");
        auto& [d, rec, c, admin, coll] = r;
        trellis::gridfs::bucket bucket(c["test"]);
        bucket.upload_from_bytes("file", std::vector<std::uint8_t>(10, 5));
        rec.clear();
        fail(admin, "drop", 2, ms(250));
        ms took{};
        std::string text;
        const auto cause = expect_timeout([&] { bucket.drop(); }, took, &text);
        QVERIFY2(cause != std::error_code(), text.c_str());
        QVERIFY2(took >= ms(390) && took < ms(1000), std::to_string(took.count()).c_str());
        const auto drops = rec.sent("drop");
        QCOMPARE(drops.size(), std::size_t(2));
        QVERIFY2(max_time_of(drops[1]) < 200, std::to_string(max_time_of(drops[1])).c_str());
        trellis_test::fail_command_off(admin);
        bucket.drop();
    }
};

QTEST_GUILESS_MAIN(CsotTest)
#include "csot_test.moc"
