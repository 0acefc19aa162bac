// The monitor's logic without a window: RTT statistics, the members, event log and timeline
// models (under QAbstractItemModelTester), the exports read back, alerts, the [monitor] table
// and the script syntax of the headless face.
#include <QAbstractItemModelTester>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include "alerts.hpp"
#include "event_log_model.hpp"
#include "exports.hpp"
#include "members_model.hpp"
#include "monitor_config.hpp"
#include "scripted.hpp"
#include "session.hpp"
#include "timeline.hpp"
#include "trellis/bson/builder.hpp"

using namespace trellis;
using namespace trellis::monitor;
using namespace trellis::monitor::testing;

namespace {

const std::string A = "a:27017", B = "b:27017", C = "c:27017";

mon_event cmap(std::int64_t t, const std::string& a, const char* type) { return make(t, event_family::cmap, type, a); }

}  // namespace

class monitor_models_test : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void latency_statistics() {
        latency_stats s(100);
        QVERIFY(!s.average() && !s.minimum() && !s.percentile(50));
        s.add(10);
        QCOMPARE(*s.average(), 10.0);  // the first sample as it is
        s.add(20);
        QCOMPARE(*s.average(), 12.0);  // 0.2 * 20 + 0.8 * 10
        s.clear();
        for (int i = 100; i >= 1; --i) s.add(i);
        QCOMPARE(*s.minimum(), 1.0);
        QCOMPARE(*s.percentile(50), 50.0);
        QCOMPARE(*s.percentile(95), 95.0);
        QCOMPARE(*s.percentile(99), 99.0);
        QCOMPARE(*s.percentile(100), 100.0);
        QCOMPARE(*s.last(), 1.0);
        // The window slides: 100 more samples of 1000 push every earlier one out.
        for (int i = 0; i < 100; ++i) s.add(1000);
        QCOMPARE(*s.minimum(), 1000.0);
        QCOMPARE(s.count(), std::size_t(100));
        QVERIFY(!s.percentile(0));
    }

    void members_model_follows_events() {
        members_model m;
        QAbstractItemModelTester tester(&m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QSignalSpy samples(&m, &members_model::rtt_sample);
        deployment_script d(topology_type::replica_set_no_primary, {A, B, C});
        m.apply(make(1, event_family::sdam, "ServerOpening", A));
        m.apply(make(1, event_family::sdam, "ServerOpening", B));
        m.apply(make(1, event_family::sdam, "ServerOpening", C));
        QCOMPARE(m.rowCount(), 3);
        for (const auto& e : d.set(10, A, server_type::rs_primary, 1)) m.apply(e);
        for (const auto& e : d.set(10, B, server_type::rs_secondary)) m.apply(e);
        for (const auto& e : d.set(10, C, server_type::rs_secondary)) m.apply(e);
        // A: 1..100 ms polled; B: 5 ms; C: 40 ms, outside the 15 ms window.
        for (int i = 1; i <= 100; ++i) m.apply(hb_ok(100 + i, A, i, true));
        for (int i = 0; i < 10; ++i) m.apply(hb_ok(300 + i, B, 5.0, false));
        for (int i = 0; i < 10; ++i) m.apply(hb_ok(300 + i, C, 40.0, false));
        m.apply(hb_ok(400, C, 9999.0, false, /*awaited=*/true));  // an awaited hello is no RTT sample
        QCOMPARE(samples.count(), 120);
        const auto row = [&](const std::string& a) {
            for (int r = 0; r < m.rowCount(); ++r)
                if (m.text(r, members_model::col_address) == QString::fromStdString(a)) return r;
            return -1;
        };
        QCOMPARE(m.text(row(A), members_model::col_type), QStringLiteral("PRIMARY"));
        QCOMPARE(m.text(row(B), members_model::col_type), QStringLiteral("SECONDARY"));
        QCOMPARE(m.text(row(A), members_model::col_set), QStringLiteral("rs0"));
        QCOMPARE(m.text(row(A), members_model::col_rtt_p50), QStringLiteral("50.0"));
        QCOMPARE(m.text(row(A), members_model::col_rtt_p99), QStringLiteral("99.0"));
        QCOMPARE(m.text(row(A), members_model::col_rtt_min), QStringLiteral("1.0"));
        QCOMPARE(m.text(row(A), members_model::col_mode), QStringLiteral("polled"));
        QCOMPARE(m.text(row(C), members_model::col_mode), QStringLiteral("awaited"));
        QCOMPARE(m.text(row(C), members_model::col_rtt_last), QStringLiteral("40.0"));
        QCOMPARE(m.text(row(B), members_model::col_in_window), QStringLiteral("yes"));
        QCOMPARE(m.text(row(C), members_model::col_in_window), QStringLiteral("no"));
        m.set_local_threshold_ms(50);
        QCOMPARE(m.text(row(C), members_model::col_in_window), QStringLiteral("yes"));
        m.set_now(1400);
        QCOMPARE(m.text(row(B), members_model::col_since_ok), QStringLiteral("1.1"));

        // Failures: counted in a row, the error kept; a success resets the count.
        m.apply(hb_failed(2000, C, "connection refused"));
        m.apply(hb_failed(2500, C, "connection refused"));
        QCOMPARE(m.text(row(C), members_model::col_failures), QStringLiteral("2"));
        for (const auto& e : d.set(2500, C, server_type::unknown, 0, "connection refused")) m.apply(e);
        QCOMPARE(m.text(row(C), members_model::col_type), QStringLiteral("Unknown"));
        QCOMPARE(m.text(row(C), members_model::col_error), QStringLiteral("connection refused"));
        QCOMPARE(m.text(row(C), members_model::col_in_window), QStringLiteral("no"));
        m.apply(hb_ok(3000, C, 2.0, false));
        QCOMPARE(m.text(row(C), members_model::col_failures), QStringLiteral("0"));

        // The pool from CMAP events.
        for (const char* t : {"ConnectionPoolCreated", "ConnectionCreated", "ConnectionCreated", "ConnectionCheckedOut",
                              "ConnectionCreated", "ConnectionCheckedOut", "ConnectionCheckedIn"})
            m.apply(cmap(3100, B, t));
        QCOMPARE(m.text(row(B), members_model::col_pool_in_use), QStringLiteral("1"));
        QCOMPARE(m.text(row(B), members_model::col_pool_available), QStringLiteral("2"));
        m.apply(cmap(3200, B, "ConnectionClosed"));
        QCOMPARE(m.text(row(B), members_model::col_pool_available), QStringLiteral("1"));

        // Sorting by p99, largest first: A (99), C (40), B (5).
        m.sort(members_model::col_rtt_p99, Qt::DescendingOrder);
        QCOMPARE(m.text(0, members_model::col_address), QString::fromStdString(A));
        QCOMPARE(m.text(1, members_model::col_address), QString::fromStdString(C));
        QCOMPARE(m.text(2, members_model::col_address), QString::fromStdString(B));
        m.sort(members_model::col_address, Qt::AscendingOrder);
        QCOMPARE(m.text(0, members_model::col_address), QString::fromStdString(A));

        // Tags from the description; a closed server's row goes.
        mon_event sd = make(3300, event_family::sdam, "ServerDescriptionChanged", B);
        sdk::server_description tagged;
        tagged.address = B;
        tagged.type = server_type::rs_secondary;
        tagged.tags = {{"dc", "east"}, {"rack", "r1"}};
        sd.server = std::make_shared<const sdk::server_description>(tagged);
        m.apply(sd);
        QCOMPARE(m.text(row(B), members_model::col_tags), QStringLiteral("dc:east,rack:r1"));
        m.apply(make(4000, event_family::sdam, "ServerClosed", B));
        QCOMPARE(m.rowCount(), 2);
        QCOMPARE(row(B), -1);
    }

    void members_batch_announces_changes_once() {
        members_model m;
        QAbstractItemModelTester tester(&m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        m.apply(make(1, event_family::sdam, "ServerOpening", A));
        m.apply(make(1, event_family::sdam, "ServerOpening", B));
        m.apply(make(1, event_family::sdam, "ServerOpening", C));
        QSignalSpy changed(&m, &QAbstractItemModel::dataChanged);
        m.begin_batch();
        for (int i = 0; i < 20; ++i) {
            m.apply(hb_ok(10 + i, A, 1.0, true));
            m.apply(hb_ok(10 + i, B, 2.0, false));
        }
        m.apply(make(40, event_family::sdam, "ServerClosed", C));  // a removal inside the batch
        QCOMPARE(changed.count(), 1);  // the rows touched before the removal, announced first
        m.apply(hb_ok(50, A, 1.0, true));
        m.end_batch();
        QCOMPARE(changed.count(), 2);
        const auto top_left = changed.back()[0].value<QModelIndex>();
        const auto bottom_right = changed.back()[1].value<QModelIndex>();
        QCOMPARE(top_left.row(), 0);
        QCOMPARE(bottom_right.row(), 0);
        QCOMPARE(bottom_right.column(), members_model::column_count - 1);
        QCOMPARE(m.text(0, members_model::col_rtt_last), QStringLiteral("1.0"));
        QCOMPARE(m.rowCount(), 2);
    }

    void event_log_keeps_what_it_should_and_filters() {
        event_log_model log(nullptr, 5);
        QAbstractItemModelTester tester(&log, QAbstractItemModelTester::FailureReportingMode::QtTest);
        event_filter_model filter;
        filter.setSourceModel(&log);
        QAbstractItemModelTester filter_tester(&filter, QAbstractItemModelTester::FailureReportingMode::QtTest);
        log.add(std::vector<mon_event>{hb_ok(1, A, 1, true), command_ok(2, A), cmap(3, A, "ConnectionCreated"),
                                       command_failed(4, B, true), hb_failed(5, B)});
        QCOMPARE(log.rowCount(), 3);  // successful commands and CMAP events are not logged
        filter.set_member(QString::fromStdString(B));
        QCOMPARE(filter.rowCount(), 2);
        filter.set_kind(QStringLiteral("CommandFailed"));
        QCOMPARE(filter.rowCount(), 1);
        QCOMPARE(filter.index(0, event_log_model::col_summary).data().toString(), QStringLiteral("insert: not primary"));
        filter.set_member({});
        filter.set_kind({});
        // At most 5 rows: the oldest go.
        for (int i = 0; i < 4; ++i) log.add(hb_failed(10 + i, C));
        QCOMPARE(log.rowCount(), 5);
        QCOMPARE(log.events().front().t_ms, 5);
        QCOMPARE(filter.rowCount(), 5);
    }

    void timeline_model_rows() {
        timeline_model tm;
        QAbstractItemModelTester tester(&tm, QAbstractItemModelTester::FailureReportingMode::QtTest);
        deployment_script d(topology_type::replica_set_no_primary, {A, B});
        for (const auto& e : d.set(10, A, server_type::rs_primary, 4)) tm.apply(e);
        for (const auto& e : d.set(10, B, server_type::rs_secondary)) tm.apply(e);
        tm.apply(hb_failed(1000, A));
        for (const auto& e : d.set(1200, A, server_type::unknown, 0, "refused")) tm.apply(e);
        QCOMPARE(tm.rowCount(), 1);
        QCOMPARE(tm.text(0, timeline_model::col_t1), QStringLiteral("+200 ms"));
        QCOMPARE(tm.text(0, timeline_model::col_t3), QStringLiteral("-"));
        for (const auto& e : d.set(1700, B, server_type::rs_primary, 5)) tm.apply(e);
        tm.apply(command_ok(1750, B));
        QCOMPARE(tm.text(0, timeline_model::col_t3), QStringLiteral("+700 ms"));
        QCOMPARE(tm.text(0, timeline_model::col_write_outage), QStringLiteral("750"));
        QCOMPARE(tm.text(0, timeline_model::col_no_primary), QStringLiteral("500"));
        QCOMPARE(tm.text(0, timeline_model::col_term), QStringLiteral("5"));
    }

    void exports_read_back() {
        members_model m;
        deployment_script d(topology_type::replica_set_no_primary, {A, B});
        for (const auto& e : d.set(10, A, server_type::rs_primary, 1)) m.apply(e);
        m.apply(hb_ok(20, A, 1.5, true));
        m.apply(hb_failed(30, B, "refused, \"really\"\nsecond line"));
        const QString csv = members_csv(m);
        QVERIFY(csv.contains(QStringLiteral("\r\n")));
        const auto records = parse_csv(csv);
        QCOMPARE(records.size(), std::size_t(3));
        for (const auto& r : records) QCOMPARE(r.size(), members_model::column_count + 1);
        QCOMPARE(records[1][members_model::col_address], QString::fromStdString(A));
        QCOMPARE(records[2][members_model::col_error], QStringLiteral("refused, \"really\"\nsecond line"));
        // UTC ISO 8601 with milliseconds.
        QVERIFY(QRegularExpression(QStringLiteral("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$"))
                    .match(records[1].back())
                    .hasMatch());

        std::deque<mon_event> events;
        mon_event with_detail = hb_failed(40, B, "a, b");
        with_detail.detail = std::make_shared<const bson::document>(
            bson::make_document(bson::kvp("failure", "a, b"), bson::kvp("n", std::int64_t(3))));
        events.push_back(with_detail);
        events.push_back(command_failed(50, A, true));
        const auto ev_records = parse_csv(events_csv(events));
        QCOMPARE(ev_records.size(), std::size_t(3));
        QCOMPARE(ev_records[1][1], QStringLiteral("ServerHeartbeatFailed"));
        QCOMPARE(ev_records[1][2], QString::fromStdString(B));
        const QJsonObject detail = QJsonDocument::fromJson(ev_records[1][4].toUtf8()).object();
        QCOMPARE(detail[QStringLiteral("failure")].toString(), QStringLiteral("a, b"));

        const QStringList lines = events_jsonl(events).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 2);
        QJsonParseError error;
        const QJsonObject first = QJsonDocument::fromJson(lines[0].toUtf8(), &error).object();
        QCOMPARE(error.error, QJsonParseError::NoError);
        QCOMPARE(first[QStringLiteral("kind")].toString(), QStringLiteral("ServerHeartbeatFailed"));
        QCOMPARE(first[QStringLiteral("t_ms")].toInteger(), 40);
        QCOMPARE(first[QStringLiteral("detail")].toObject()[QStringLiteral("n")].toInteger(), 3);
        QVERIFY(first[QStringLiteral("time")].toString().endsWith(QLatin1Char('Z')));

        QVERIFY_THROWS_EXCEPTION(std::runtime_error, parse_csv(QStringLiteral("a,\"b\r\n")));
    }

    void timeline_json_and_report() {
        failover_timeline tl;
        deployment_script d(topology_type::replica_set_no_primary, {A, B});
        for (const auto& e : d.set(10, A, server_type::rs_primary, 1)) tl.apply(e);
        for (const auto& e : d.set(10, B, server_type::rs_secondary)) tl.apply(e);
        tl.apply(hb_failed(1000, A));
        for (const auto& e : d.set(1100, A, server_type::unknown, 0, "refused")) tl.apply(e);
        for (const auto& e : d.set(1500, B, server_type::rs_primary, 2)) tl.apply(e);
        tl.apply(command_ok(1600, B));
        members_model m;
        m.apply(hb_ok(20, A, 1.0, true));
        const QJsonObject o = timeline_json(tl, m, /*origin=*/0, /*now=*/2000);
        const QJsonArray incidents = o[QStringLiteral("incidents")].toArray();
        QCOMPARE(incidents.size(), 1);
        const QJsonObject i = incidents[0].toObject();
        QCOMPARE(i[QStringLiteral("t0_ms")].toInteger(), 1000);
        QCOMPARE(i[QStringLiteral("t1_ms")].toInteger(), 1100);
        QCOMPARE(i[QStringLiteral("t3_ms")].toInteger(), 1500);
        QCOMPARE(i[QStringLiteral("t4_ms")].toInteger(), 1600);
        QVERIFY(i[QStringLiteral("t5_ms")].isNull());
        QCOMPARE(i[QStringLiteral("write_outage_ms")].toInteger(), 600);
        QCOMPARE(i[QStringLiteral("old_primary")].toString(), QString::fromStdString(A));
        QCOMPARE(i[QStringLiteral("new_primary")].toString(), QString::fromStdString(B));
        const QJsonArray members = o[QStringLiteral("members")].toArray();
        QCOMPARE(members.size(), 1);
        QCOMPARE(members[0].toObject()[QStringLiteral("since_last_ok_ms")].toInteger(), 1980);

        std::deque<mon_event> log{hb_failed(1000, A, "refused"), command_ok(1600, B)};
        const QString md = incident_markdown(tl.incidents().front(), log, QStringLiteral("chart.png"));
        QVERIFY(md.contains(QStringLiteral("| T4 | first successful write | +600 ms |")));
        QVERIFY(md.contains(QStringLiteral("| T5 | old primary back as a secondary | not seen |")));
        QVERIFY(md.contains(QStringLiteral("![RTT chart](chart.png)")));
        QVERIFY(md.contains(QStringLiteral("ServerHeartbeatFailed")));
        QVERIFY(!md.contains(QStringLiteral("CommandSucceeded")));  // not a logged event
    }

    void alerts_raise_and_clear() {
        alert_rules rules;
        rules.no_primary_s = 2;
        rules.rtt_p99_ms = 50;
        rules.failed_heartbeats = 3;
        alert_engine engine(rules);
        members_model m;
        failover_timeline tl;
        deployment_script d(topology_type::replica_set_no_primary, {A, B});
        for (const auto& e : d.set(10, A, server_type::rs_primary, 1)) { m.apply(e); tl.apply(e); }
        for (int i = 0; i < 10; ++i) m.apply(hb_ok(20 + i, B, 80.0, false));
        for (int i = 0; i < 3; ++i) m.apply(hb_failed(100 + i, A));
        for (const auto& e : d.set(103, A, server_type::unknown, 0, "refused")) { m.apply(e); tl.apply(e); }
        auto first = engine.evaluate(1000, m, tl);
        QCOMPARE(first.size(), std::size_t(2));  // RTT of B, heartbeats of A; no primary for < 2 s
        for (const auto& e : first) QCOMPARE(e.type, QStringLiteral("AlertRaised"));
        QVERIFY(engine.evaluate(1500, m, tl).empty());  // raised once
        auto later = engine.evaluate(2200, m, tl);
        QCOMPARE(later.size(), std::size_t(1));
        QVERIFY(later.front().error.startsWith(QStringLiteral("no primary for 2.1 s")));
        m.apply(hb_ok(2300, A, 1.0, true));
        for (const auto& e : d.set(2300, A, server_type::rs_primary, 1)) { m.apply(e); tl.apply(e); }
        auto cleared = engine.evaluate(2400, m, tl);
        QCOMPARE(cleared.size(), std::size_t(2));
        for (const auto& e : cleared) QCOMPARE(e.type, QStringLiteral("AlertCleared"));
        QCOMPARE(engine.active().size(), std::size_t(1));  // B's RTT p99 is still 80 ms
    }

    void monitor_table_in_toml() {
        const char* text =
            "[client]\nuri = \"mongodb://h1,h2/?replicaSet=rs0\"\n\n"
            "[monitor]\nalert_no_primary_s = 5\nalert_rtt_p99_ms = 12.5\nalert_failed_heartbeats = 3\ncanary_writes = true\n\n"
            "[pool]\nmax_size = 7\n";
        const monitor_file f = parse_monitor_config(text, "m.toml");
        QCOMPARE(*f.monitor.alerts.no_primary_s, 5.0);
        QCOMPARE(*f.monitor.alerts.rtt_p99_ms, 12.5);
        QCOMPARE(*f.monitor.alerts.failed_heartbeats, 3);
        QVERIFY(f.monitor.canary_writes);
        QCOMPARE(f.client.options.max_pool_size, 7u);
        QCOMPARE(*f.client.options.replica_set, std::string("rs0"));
        try {
            parse_monitor_config("[monitor]\nalert_rtt_p99 = 1\n", "m.toml");
            QFAIL("an unknown key was accepted");
        } catch (const config_error& e) {
            QCOMPARE(e.line(), std::size_t(2));
            QVERIFY(e.message().find("unknown key monitor.alert_rtt_p99") != std::string::npos);
        }
        // The client's errors keep the file's line numbers.
        try {
            parse_monitor_config("[monitor]\ncanary_writes = false\n\n[pool]\nmax_size = -3\n", "m.toml");
            QFAIL("a negative pool size was accepted");
        } catch (const config_error& e) {
            QCOMPARE(e.line(), std::size_t(5));
        }
    }

    void script_syntax() {
        QString error;
        auto steps = parse_script(QStringLiteral("kill:2@8s,stepdown@3s,restart:2@12.5,latency:1:80@500ms"), &error);
        QVERIFY2(steps, qPrintable(error));
        QCOMPARE(steps->size(), std::size_t(4));
        QCOMPARE((*steps)[0].at_ms, 500);
        QVERIFY((*steps)[0].what.kind == action_kind::latency);
        QCOMPARE((*steps)[0].what.latency_ms, 80);
        QCOMPARE((*steps)[1].at_ms, 3000);
        QVERIFY((*steps)[1].what.kind == action_kind::step_down);
        QCOMPARE((*steps)[1].what.index, 0);
        QCOMPARE((*steps)[2].what.index, 2);
        QCOMPARE((*steps)[3].at_ms, 12500);
        for (const char* bad : {"kill@3s", "kill:0@1s", "explode:1@2s", "stepdown", "stepdown@soon", ""})
            QVERIFY2(!parse_script(QString::fromLatin1(bad)), bad);
    }
};

QTEST_GUILESS_MAIN(monitor_models_test)
#include "monitor_models_test.moc"
