// The window and the headless face: a demo session fills the members table and the chart; the
// window's PNG is written and not blank (many colours); an incident report is written with its
// chart image; the theme is switched and remembered; passwords stay out of the recent list;
// and trellis-monitor itself runs a script headless (exit 0, timeline JSON in order, a
// screenshot of the size asked for) and refuses bad flags with exit status 2.
#include <QAction>
#include <QApplication>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include <set>

#include "exports.hpp"
#include "main_window.hpp"
#include "phase_bar.hpp"
#include "rtt_chart.hpp"
#include "scripted.hpp"
#include "trellis/sim/deployment.hpp"

using namespace trellis::monitor;
using namespace trellis::monitor::testing;

namespace {

// Distinct colours in the image (sampled every 3rd pixel).
std::size_t colours(const QImage& image) {
    std::set<QRgb> seen;
    for (int y = 0; y < image.height(); y += 3)
        for (int x = 0; x < image.width(); x += 3) seen.insert(image.pixel(x, y));
    return seen.size();
}

}  // namespace

class monitor_ui_test : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("TrellisTest"));
        QCoreApplication::setApplicationName(QStringLiteral("monitor_ui_test"));
        QSettings().clear();
        QVERIFY(dir_.isValid());
    }

    void window_shows_a_demo_and_writes_a_png() {
        main_window w;
        w.resize(1280, 800);
        w.show();
        session_options o;
        o.demo = true;
        QSignalSpy started(&w, &main_window::session_started);
        w.start_session(o);
        QVERIFY(started.wait(10000));
        QVERIFY(QTest::qWaitFor([&] {
            if (w.members().rowCount() != 3) return false;
            for (const auto& m : w.members().rows())
                if (m.rtt.count() < 3 || w.chart().kept(m.address) < 3) return false;
            return w.log().rowCount() > 10;
        }, 10000));
        const QString png = dir_.filePath(QStringLiteral("window.png"));
        QString error;
        QVERIFY2(w.export_png(png, &error), qPrintable(error));
        QImage image(png);
        QVERIFY(!image.isNull());
        QCOMPARE(image.size(), w.size());
        QVERIFY2(colours(image) > 200, qPrintable(QString::number(colours(image))));

        // Exports from the window read back.
        const QString csv = dir_.filePath(QStringLiteral("members.csv"));
        QVERIFY(w.export_members_csv(csv, &error));
        QFile f(csv);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(parse_csv(QString::fromUtf8(f.readAll())).size(), std::size_t(4));

        // An incident (scripted into the window's models) makes a report with the chart image.
        QVERIFY(!w.export_incident_report(dir_.filePath(QStringLiteral("none.md")), &error));
        QCOMPARE(error, QStringLiteral("no incident yet"));
        deployment_script d(topology_type::replica_set_no_primary, {"x:1", "y:1"});
        std::vector<mon_event> events;
        for (auto& e : d.set(10, "x:1", server_type::rs_primary, 1)) events.push_back(e);
        events.push_back(hb_failed(1000, "x:1"));
        for (auto& e : d.set(1100, "x:1", server_type::unknown, 0, "refused")) events.push_back(e);
        for (auto& e : d.set(1400, "y:1", server_type::rs_primary, 2)) events.push_back(e);
        events.push_back(command_ok(1450, "y:1"));
        for (const auto& e : events) w.timeline().apply(e);
        w.log().add(events);
        const QString md = dir_.filePath(QStringLiteral("incident.md"));
        QVERIFY2(w.export_incident_report(md, &error), qPrintable(error));
        QFile report(md);
        QVERIFY(report.open(QIODevice::ReadOnly));
        const QString text = QString::fromUtf8(report.readAll());
        QVERIFY(text.contains(QStringLiteral("| T4 | first successful write | +450 ms |")));
        QVERIFY(text.contains(QStringLiteral("![RTT chart](incident-chart.png)")));
        QImage chart(dir_.filePath(QStringLiteral("incident-chart.png")));
        QVERIFY(!chart.isNull());
        QVERIFY(colours(chart) > 20);

        // Another session (a standalone this time) replaces everything the first one showed.
        session_options standalone;
        standalone.demo = true;
        standalone.demo_topology = trellis::sim::topology_kind::standalone;
        const QString old_member = w.members().rows().front().address;
        QVERIFY(w.chart().kept(old_member) > 0);
        QSignalSpy again(&w, &main_window::session_started);
        w.start_session(standalone);
        QCOMPARE(w.chart().kept(old_member), std::size_t(0));
        QCOMPARE(w.members().rowCount(), 0);
        QCOMPARE(w.timeline().rowCount(), 0);
        QCOMPARE(w.log().rowCount(), 0);
        QVERIFY(again.wait(10000));
        QVERIFY(QTest::qWaitFor([&] {
            return w.members().rowCount() == 1 && w.members().rows().front().type == server_type::standalone;
        }, 10000));
        QVERIFY(QTest::qWaitFor([&] { return w.chart().kept(w.members().rows().front().address) > 0; }, 5000));
    }

    void paused_chart_keeps_collecting() {
        rtt_chart chart;
        chart.set_paused(true);
        const auto now = steady_now_ms();
        for (int i = 0; i < 50; ++i) chart.add_sample(QStringLiteral("m:1"), now - 1000 + i, 1.0 + i, 1.0);
        QCOMPARE(chart.kept(QStringLiteral("m:1")), std::size_t(50));
        // Samples older than the ring buffer's hour go.
        chart.add_sample(QStringLiteral("m:1"), now + rtt_chart::keep_ms + 5000, 2.0, 2.0);
        QCOMPARE(chart.kept(QStringLiteral("m:1")), std::size_t(1));
    }

    void phase_bar_draws_the_phases_to_scale() {
        phase_bar bar;
        bar.resize(400, 60);
        auto red_columns = [&] {
            const QImage image = bar.grab().toImage();
            std::set<int> columns;
            for (int y = 0; y < image.height(); ++y)
                for (int x = 0; x < image.width(); ++x)
                    if (image.pixelColor(x, y) == QColor(210, 60, 60)) columns.insert(x);
            return columns;
        };
        QVERIFY(red_columns().empty());
        incident inc;
        inc.t0 = 1000;
        inc.t1 = 1000;  // no primary from T0 ...
        inc.t3 = 1500;  // ... to half of the span
        inc.t4 = 1600;
        inc.t5 = 2000;
        bar.set_incident(inc);
        const auto red = red_columns();
        QVERIFY(!red.empty());
        // T1..T3 is half of T0..T5: the red stretch is about half of the drawn line.
        const int first = *red.begin(), last = *red.rbegin();
        QVERIFY2(last - first > 120 && last - first < 200, qPrintable(QStringLiteral("%1..%2").arg(first).arg(last)));
        bar.set_incident(std::nullopt);
        QVERIFY(red_columns().empty());
    }

    void theme_is_switched_and_remembered() {
        main_window w;
        auto* action = w.findChild<QAction*>(QStringLiteral("dark-action"));
        QVERIFY(action);
        if (!action->isChecked()) action->trigger();
        QVERIFY(w.dark());
        QVERIFY(QApplication::palette().color(QPalette::Window).lightness() < 100);
        action->trigger();
        QVERIFY(!w.dark());
        QVERIFY(QApplication::palette().color(QPalette::Window).lightness() > 150);
        QCOMPARE(QSettings().value(QStringLiteral("theme/dark")).toBool(), false);
        main_window again;
        QVERIFY(!again.dark());  // remembered
        action->trigger();
        QCOMPARE(QSettings().value(QStringLiteral("theme/dark")).toBool(), true);
    }

    void passwords_stay_out_of_recent_connections() {
        QCOMPARE(main_window::without_password(QStringLiteral("mongodb://alice:s3cret@h1:27017,h2/?replicaSet=rs0")),
                 QStringLiteral("mongodb://alice@h1:27017,h2/?replicaSet=rs0"));
        QCOMPARE(main_window::without_password(QStringLiteral("mongodb://h1,h2/")), QStringLiteral("mongodb://h1,h2/"));
    }

    void headless_face_runs_a_script() {
        const QString png = dir_.filePath(QStringLiteral("headless.png"));
        const QString json = dir_.filePath(QStringLiteral("timeline.json"));
        QProcess p;
        p.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        p.start(QStringLiteral(TRELLIS_MONITOR_PATH),
                {QStringLiteral("--demo"), QStringLiteral("--script"), QStringLiteral("stepdown@1500ms"),
                 QStringLiteral("--quit-after"), QStringLiteral("5"), QStringLiteral("--screenshot"), png,
                 QStringLiteral("--timeline-json"), json, QStringLiteral("--size"), QStringLiteral("960x640")});
        QVERIFY(p.waitForFinished(30000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 0);
        QImage image(png);
        QCOMPARE(image.size(), QSize(960, 640));
        QVERIFY(colours(image) > 200);
        QFile f(json);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
        const QJsonArray incidents = o[QStringLiteral("incidents")].toArray();
        QCOMPARE(incidents.size(), 1);
        const QJsonObject i = incidents[0].toObject();
        qint64 previous = 0;
        for (const char* k : {"t0_ms", "t1_ms", "t2_ms", "t3_ms", "t4_ms"}) {
            QVERIFY2(i[QLatin1String(k)].isDouble(), k);
            const qint64 v = i[QLatin1String(k)].toInteger();
            QVERIFY2(v >= previous, k);
            previous = v;
        }
        QVERIFY(i[QStringLiteral("t0_ms")].toInteger() >= 1500);  // after the stepdown was asked for
        QVERIFY(i[QStringLiteral("old_primary")].toString() != i[QStringLiteral("new_primary")].toString());
        QCOMPARE(o[QStringLiteral("members")].toArray().size(), 3);
    }

    void headless_face_against_a_connection_string() {
        // A deployment of this process, monitored by trellis-monitor through its URI.
        trellis::sim::sim_config config;
        config.topology = trellis::sim::topology_kind::replica_set;
        trellis::sim::deployment d(config);
        d.start();
        QVERIFY(d.wait_for_primary(std::chrono::seconds(5)));
        const QString json = dir_.filePath(QStringLiteral("uri.json"));
        QProcess p;
        p.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        p.start(QStringLiteral(TRELLIS_MONITOR_PATH),
                {QString::fromStdString(d.uri() + "&heartbeatFrequencyMS=500"), QStringLiteral("--quit-after"),
                 QStringLiteral("2"), QStringLiteral("--timeline-json"), json});
        QVERIFY(p.waitForFinished(20000));
        QCOMPARE(p.exitCode(), 0);
        QFile f(json);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
        const QJsonArray members = o[QStringLiteral("members")].toArray();
        QCOMPARE(members.size(), 3);
        int primaries = 0;
        for (const auto& m : members) primaries += m.toObject()[QStringLiteral("type")].toString() == QLatin1String("PRIMARY");
        QCOMPARE(primaries, 1);
        QVERIFY(o[QStringLiteral("incidents")].toArray().isEmpty());
        d.stop();
    }

    void headless_face_refuses_bad_flags() {
        const QList<QStringList> bad{
            {QStringLiteral("--no-such-flag")},
            {QStringLiteral("--script"), QStringLiteral("stepdown@1s"), QStringLiteral("mongodb://h/")},
            {QStringLiteral("--demo"), QStringLiteral("--script"), QStringLiteral("explode@1s")},
            {QStringLiteral("--demo"), QStringLiteral("--size"), QStringLiteral("big")},
            {QStringLiteral("--demo"), QStringLiteral("--demo-topology"), QStringLiteral("ring")},
            {QStringLiteral("--quit-after"), QStringLiteral("1")},
            {QStringLiteral("not-a-uri://x"), QStringLiteral("--quit-after"), QStringLiteral("1")},
        };
        for (const QStringList& args : bad) {
            QProcess p;
            p.start(QStringLiteral(TRELLIS_MONITOR_PATH), args);
            QVERIFY(p.waitForFinished(10000));
            QVERIFY2(p.exitCode() == 2, qPrintable(args.join(QLatin1Char(' '))));
            QVERIFY(!p.readAllStandardError().isEmpty());
        }
    }
};

QTEST_MAIN(monitor_ui_test)
#include "monitor_ui_test.moc"
