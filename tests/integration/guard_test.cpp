// No exception from a plugin or a user's event handler reaches the client's event loop: one
// guard reports it (on_callback_failure) and the client carries on. Against trellis-sim.
#include <QtTest/QtTest>

#include <QTemporaryFile>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <stdexcept>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/sim/deployment.hpp"

namespace bson = trellis::bson;
namespace sim = trellis::sim;

namespace {

std::string with(std::string uri, const std::string& options) {
    const bool has_query = uri.find('?') != std::string::npos;
    const bool has_path = uri.find('/', 10) != std::string::npos;
    return uri + (has_query ? "&" : has_path ? "?" : "/?") + options;
}

struct failures {
    std::mutex m;
    std::vector<trellis::callback_failure> seen;
    trellis::callback_failure_handler handler() {
        return [this](const trellis::callback_failure& f) {
            std::lock_guard lock(m);
            seen.push_back(f);
        };
    }
    int count(const std::string& where) {
        std::lock_guard lock(m);
        int n = 0;
        for (const auto& f : seen)
            if (f.where == where) ++n;
        return n;
    }
    std::string what(const std::string& where) {
        std::lock_guard lock(m);
        for (const auto& f : seen)
            if (f.where == where) return f.what;
        return {};
    }
};

std::size_t count_all(trellis::cursor cur) {
    std::size_t n = 0;
    while (cur.next()) ++n;
    return n;
}

void use(trellis::client& c, int round) {
    auto coll = c["guard"]["items"];
    for (int i = 0; i < 3; ++i) coll.insert_one(bson::make_document(bson::kvp("round", round), bson::kvp("i", i)));
    QCOMPARE(count_all(coll.find(bson::make_document(bson::kvp("round", round)))), std::size_t(3));
}

}  // namespace

class GuardTest : public QObject {
    Q_OBJECT

private slots:
    void throwing_event_handlers_lose_only_their_event() {
        sim::deployment d(sim::sim_config{});
        d.start();
        failures f;
        std::atomic<int> sdam_calls{0}, command_calls{0}, cmap_calls{0};
        trellis::client_settings settings;
        settings.on_sdam = [&](const trellis::sdam_event&) {
            ++sdam_calls;
            throw std::runtime_error("sdam handler is broken");
        };
        settings.on_command = [&](const trellis::command_event&) {
            ++command_calls;
            throw std::runtime_error("command handler is broken");
        };
        settings.on_cmap = [&](const trellis::cmap_event&) {
            ++cmap_calls;
            throw 42;  // not even a std::exception
        };
        settings.on_callback_failure = f.handler();
        trellis::client c(with(d.uri(), "heartbeatFrequencyMS=500"), std::move(settings));
        use(c, 1);
        QVERIFY(f.count("command event handler") > 0);
        QCOMPARE(f.what("command event handler"), std::string("command handler is broken"));
        QVERIFY(f.count("CMAP event handler") > 0);
        QCOMPARE(f.what("CMAP event handler"), std::string("a non-standard exception"));
        QVERIFY(f.count("SDAM event handler") > 0);
        // The monitor did not stop: heartbeats go on (each one's events throw again), and so
        // does the application's work.
        const int before = sdam_calls.load();
        QTRY_VERIFY_WITH_TIMEOUT(sdam_calls.load() >= before + 4, 5000);
        use(c, 2);
        QCOMPARE(f.count("command event handler"), command_calls.load());
        QCOMPARE(f.count("CMAP event handler"), cmap_calls.load());
        d.stop();
    }

    void throwing_cursor_manager_is_reported_and_the_cursor_still_killed() {
        sim::deployment d(sim::sim_config{});
        d.start();
        failures f;
        std::mutex m;
        std::vector<std::string> commands;
        trellis::client_settings settings;
        settings.plugins.paths = {TRELLIS_TEST_PLUGIN_DIR};
        settings.plugins.cursor_manager = "throwing";
        settings.on_callback_failure = f.handler();
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e)) {
                std::lock_guard lock(m);
                commands.push_back(s->command_name);
            }
        };
        trellis::client c(d.uri(), std::move(settings));
        auto coll = c["guard"]["cursors"];
        for (int i = 0; i < 10; ++i) coll.insert_one(bson::make_document(bson::kvp("i", i)));
        trellis::find_options o;
        o.batch_size = 2;
        auto cur = coll.find({}, o);
        QVERIFY(cur.next().has_value());
        const auto id = cur.id();
        QVERIFY(id != 0);
        cur.close();
        const std::string where = "cursor_manager \"throwing\": on_cursor_closed";
        QTRY_COMPARE_WITH_TIMEOUT(f.count(where), 1, 5000);  // close() hands the cursor to the client's strand
        QCOMPARE(f.what(where), "throwing refuses cursor " + std::to_string(id));
        // The manager did not take the cursor, so the client killed it itself.
        QTRY_VERIFY_WITH_TIMEOUT(([&] {
                                     std::lock_guard lock(m);
                                     return std::count(commands.begin(), commands.end(), std::string("killCursors")) == 1;
                                 }()),
                                 5000);
        // flush() throws once a second: reported each time, and the client keeps working.
        QTRY_VERIFY_WITH_TIMEOUT(f.count("cursor_manager \"throwing\": flush") >= 2, 5000);
        QCOMPARE(f.what("cursor_manager \"throwing\": flush"), std::string("throwing cannot flush"));
        QCOMPARE(count_all(coll.find({})), std::size_t(10));
    }

    void a_throwing_failure_handler_falls_back_to_the_log() {
        sim::deployment d(sim::sim_config{});
        d.start();
        std::atomic<int> reports{0};
        trellis::client_settings settings;
        settings.on_command = [](const trellis::command_event&) { throw std::runtime_error("broken"); };
        settings.on_callback_failure = [&](const trellis::callback_failure&) {
            ++reports;
            throw std::runtime_error("the reporter is broken too");
        };
        // Standard error goes to a file for the length of the client's life.
        QTemporaryFile log;
        QVERIFY(log.open());
        std::fflush(stderr);
        const int saved = ::dup(2);
        ::dup2(log.handle(), 2);
        {
            trellis::client c(d.uri(), std::move(settings));
            use(c, 3);
        }
        std::fflush(stderr);
        ::dup2(saved, 2);
        ::close(saved);
        QVERIFY(reports.load() > 0);
        QFile text(log.fileName());
        QVERIFY(text.open(QIODevice::ReadOnly));
        const QByteArray lines = text.readAll();
        QVERIFY2(lines.contains("trellis: command event handler threw: broken (the client carries on)\n"), lines.constData());
    }
};

QTEST_GUILESS_MAIN(GuardTest)
#include "guard_test.moc"
