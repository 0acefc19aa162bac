// The monitor's session end to end against an in-process trellis-sim replica set (3 members,
// heartbeats every 500 ms, a workload writing and reading): the members appear with RTTs and
// pools; a stepdown gives one incident with T0 <= T1 <= T2 <= T3 <= T4 and the right old and
// new primaries; a killed secondary turns Unknown with the error and a restart brings it back;
// the exports of what was seen read back.
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include <set>

#include "event_log_model.hpp"
#include "exports.hpp"
#include "members_model.hpp"
#include "monitor_config.hpp"
#include "session.hpp"
#include "timeline.hpp"

using namespace trellis::monitor;

class monitor_sim_test : public QObject {
    Q_OBJECT

    std::unique_ptr<session> s_;
    members_model members_;
    timeline_model timeline_;
    event_log_model log_;
    std::deque<mon_event> all_;

    void drain() {
        auto events = s_->take_events();
        for (const auto& e : events) {
            members_.apply(e);
            timeline_.apply(e);
            all_.push_back(e);
        }
        log_.add(events);
    }
    template <class P>
    bool wait(P&& done, int timeout_ms) {
        return QTest::qWaitFor([&] {
            drain();
            return done();
        }, timeout_ms);
    }
    const member_row* row_of_type(trellis::sdk::server_type t) const {
        for (const auto& m : members_.rows())
            if (m.type == t) return &m;
        return nullptr;
    }
    int count_of_type(trellis::sdk::server_type t) const {
        int n = 0;
        for (const auto& m : members_.rows()) n += m.type == t ? 1 : 0;
        return n;
    }

    // A session signal, received on the test's thread as the window receives it (queued): a
    // QSignalSpy would record it on the session's thread and race the test (TSan saw it).
    struct received {
        QObject context;
        QStringList values;
        received(session* s, void (session::*signal)(const QString&)) {
            QObject::connect(s, signal, &context, [this](const QString& v) { values << v; }, Qt::QueuedConnection);
        }
        bool wait(int ms) {
            return QTest::qWaitFor([&] { return !values.isEmpty(); }, ms);
        }
    };

private Q_SLOTS:
    void initTestCase() {
        session_options o;
        o.demo = true;
        o.write_interval_ms = 50;
        s_ = std::make_unique<session>(o);
        received started(s_.get(), &session::started);
        received failed(s_.get(), &session::failed);
        s_->start();
        QVERIFY2(started.wait(10000), failed.values.isEmpty() ? "not started" : qPrintable(failed.values.front()));
        QVERIFY(s_->uri().contains(QStringLiteral("replicaSet=rs0")));
        QCOMPARE(s_->sim_members().size(), 3);
    }

    void members_appear_with_rtt_and_pools() {
        using st = trellis::sdk::server_type;
        QVERIFY(wait([&] {
            if (count_of_type(st::rs_primary) != 1 || count_of_type(st::rs_secondary) != 2) return false;
            for (const auto& m : members_.rows())
                if (m.rtt.count() < 2) return false;
            return true;
        }, 10000));
        const member_row* p = row_of_type(st::rs_primary);
        QCOMPARE(p->set_name, QStringLiteral("rs0"));
        QCOMPARE(p->awaited, std::optional<bool>(false));  // the demo polls, for raw RTT samples
        QVERIFY(*p->rtt.average() >= 0.0);
        QVERIFY(wait([&] { return members_.find(p->address)->pool_total > 0; }, 5000));
        QVERIFY(timeline_.timeline().incidents().empty());
    }

    void stepdown_gives_one_incident_in_order() {
        using st = trellis::sdk::server_type;
        const QString old_primary = row_of_type(st::rs_primary)->address;
        action a;
        a.kind = action_kind::step_down;
        s_->request(a);
        QVERIFY(wait([&] {
            const auto& incidents = timeline_.timeline().incidents();
            return !incidents.empty() && incidents.front().t4 && incidents.front().t5;
        }, 15000));
        QVERIFY(wait([&] { return row_of_type(st::rs_primary) != nullptr; }, 5000));
        const auto& incidents = timeline_.timeline().incidents();
        QCOMPARE(incidents.size(), std::size_t(1));
        const incident& i = incidents.front();
        qInfo("incident: T1 +%lld, T2 +%lld, T3 +%lld, T4 +%lld ms after T0; %s -> %s (term %lld)",
              static_cast<long long>(i.t1.value_or(-1) - *i.t0), static_cast<long long>(i.t2.value_or(-1) - *i.t0),
              static_cast<long long>(i.t3.value_or(-1) - *i.t0), static_cast<long long>(i.t4.value_or(-1) - *i.t0),
              qPrintable(i.old_primary), qPrintable(i.new_primary), static_cast<long long>(i.new_term.value_or(0)));
        QCOMPARE(i.old_primary, old_primary);
        QVERIFY(!i.new_primary.isEmpty());
        QVERIFY(i.new_primary != old_primary);
        QCOMPARE(row_of_type(st::rs_primary)->address, i.new_primary);
        QVERIFY(i.t0 && i.t1 && i.t2 && i.t3 && i.t4);
        QVERIFY(*i.t0 <= *i.t1);
        QVERIFY(*i.t1 <= *i.t2);
        QVERIFY(*i.t2 <= *i.t3);
        QVERIFY(*i.t3 <= *i.t4);
        QVERIFY(i.new_term && *i.new_term >= 2);
        QVERIFY(*i.write_outage_ms() < 10000);
        // The old primary is a secondary again.
        QCOMPARE(members_.find(old_primary)->type, st::rs_secondary);
        // The action is in the log.
        bool logged = false;
        for (const auto& e : log_.events())
            logged = logged || (e.type == QLatin1String("Action") && e.address == old_primary && !e.failed);
        QVERIFY(logged);
    }

    void killed_secondary_turns_unknown_and_comes_back() {
        using st = trellis::sdk::server_type;
        const QString victim = row_of_type(st::rs_secondary)->address;
        action kill;
        kill.kind = action_kind::kill;
        kill.member = victim;
        s_->request(kill);
        QVERIFY(wait([&] { return members_.find(victim)->type == st::unknown; }, 10000));
        const member_row* m = members_.find(victim);
        QVERIFY(!m->last_error.isEmpty());
        QVERIFY(m->consecutive_failures >= 1);
        QCOMPARE(timeline_.timeline().incidents().size(), std::size_t(1));  // a secondary: no failover
        action restart;
        restart.kind = action_kind::restart;
        restart.member = victim;
        s_->request(restart);
        QVERIFY(wait([&] { return members_.find(victim)->type == st::rs_secondary; }, 10000));
        QCOMPARE(members_.find(victim)->consecutive_failures, 0);
    }

    void exports_of_what_was_seen_read_back() {
        const auto csv = parse_csv(members_csv(members_));
        QCOMPARE(csv.size(), std::size_t(4));
        const auto events = parse_csv(events_csv(log_.events()));
        QCOMPARE(events.size(), log_.events().size() + 1);
        int descriptions = 0;
        for (const QString& line : events_jsonl(log_.events()).split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
            QJsonParseError error;
            const QJsonObject o = QJsonDocument::fromJson(line.toUtf8(), &error).object();
            QCOMPARE(error.error, QJsonParseError::NoError);
            if (o[QStringLiteral("kind")].toString() == QLatin1String("ServerDescriptionChanged")) {
                ++descriptions;
                QVERIFY(o[QStringLiteral("detail")].toObject().contains(QStringLiteral("newDescription")));
            }
        }
        QVERIFY(descriptions >= 6);
    }

    void toml_file_with_monitor_table_and_canary_writes() {
        // A second session, from a TOML file naming the same deployment: the [monitor] table
        // turns canary writes on; they succeed (w: majority) and are reported.
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath(QStringLiteral("monitor.toml"));
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        const QString uri = s_->uri().section(QLatin1Char('?'), 0, 0) + QStringLiteral("?replicaSet=rs0&heartbeatFrequencyMS=500");
        f.write(QStringLiteral("[client]\nuri = \"%1\"\n\n[monitor]\ncanary_writes = true\ncanary_interval_ms = 200\n"
                               "alert_failed_heartbeats = 2\n").arg(uri).toUtf8());
        f.close();
        session_options o;
        o.config_file = path;
        o.monitor = load_monitor_config(path.toStdString()).monitor;
        QVERIFY(o.monitor.canary_writes);
        QCOMPARE(*o.monitor.alerts.failed_heartbeats, 2);
        session file_session(o);
        received started(&file_session, &session::started);
        file_session.start();
        QVERIFY(started.wait(10000));
        QVERIFY(file_session.uri().startsWith(QStringLiteral("config: ")));
        int canaries_ok = 0, members = 0;
        std::set<QString> seen;
        QVERIFY(QTest::qWaitFor([&] {
            for (const auto& e : file_session.take_events()) {
                if (e.type == QLatin1String("CanaryWrite") && !e.failed && e.is_write) ++canaries_ok;
                if (e.type == QLatin1String("ServerHeartbeatSucceeded")) seen.insert(e.address);
            }
            members = static_cast<int>(seen.size());
            return canaries_ok >= 3 && members == 3;
        }, 10000));
        file_session.stop();
    }

    void cleanupTestCase() {
        s_->stop();
        s_.reset();
    }
};

QTEST_GUILESS_MAIN(monitor_sim_test)
#include "monitor_sim_test.moc"
