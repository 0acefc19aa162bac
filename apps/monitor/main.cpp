// trellis-monitor: the Qt desktop monitor. See docs/monitor.md.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QTimer>

#include <cstdio>
#include <optional>

#include "main_window.hpp"
#include "monitor_config.hpp"
#include "rtt_chart.hpp"
#include "session.hpp"
#include "trellis/dns.hpp"
#include "trellis/uri.hpp"

using namespace trellis::monitor;

namespace {

constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2;

int usage_error(const QString& message) {
    std::fprintf(stderr, "trellis-monitor: %s\nTry 'trellis-monitor --help'.\n", qPrintable(message));
    return exit_usage;
}

std::optional<QSize> parse_size(const QString& s) {
    const QStringList wh = s.toLower().split(QLatin1Char('x'));
    if (wh.size() != 2) return std::nullopt;
    bool ok1 = false, ok2 = false;
    const int w = wh[0].toInt(&ok1), h = wh[1].toInt(&ok2);
    if (!ok1 || !ok2 || w < 200 || h < 150 || w > 8192 || h > 8192) return std::nullopt;
    return QSize(w, h);
}

}  // namespace

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QCoreApplication::setOrganizationName(QStringLiteral("Trellis"));
    QCoreApplication::setApplicationName(QStringLiteral("trellis-monitor"));

    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "Node health, latency and failover of a MongoDB deployment, live, from trellis::client's own events."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("uri"), QStringLiteral("A connection string to monitor."), QStringLiteral("[uri]"));
    const QCommandLineOption config({QStringLiteral("c"), QStringLiteral("config")},
                                    QStringLiteral("A TOML file (the client's keys and a [monitor] table)."), QStringLiteral("file"));
    const QCommandLineOption demo(QStringLiteral("demo"), QStringLiteral("Monitor an in-process trellis-sim deployment with a workload."));
    const QCommandLineOption topology(QStringLiteral("demo-topology"),
                                      QStringLiteral("replica-set (default), sharded, master-slave or standalone."), QStringLiteral("kind"));
    const QCommandLineOption nodes(QStringLiteral("demo-nodes"), QStringLiteral("Members (replica set, shard) or master + slaves; default 3."), QStringLiteral("n"));
    const QCommandLineOption routers(QStringLiteral("demo-mongos"), QStringLiteral("Routers of a sharded demo; default 2."), QStringLiteral("n"));
    const QCommandLineOption no_workload(QStringLiteral("no-workload"), QStringLiteral("Demo: no application writes and reads."));
    const QCommandLineOption canary(QStringLiteral("canary"), QStringLiteral("w:majority canary writes once a second (T4)."));
    const QCommandLineOption script(QStringLiteral("script"),
                                    QStringLiteral("Demo actions, e.g. \"stepdown@3s,kill:2@8s,restart:2@12s\" (members 1-based)."), QStringLiteral("steps"));
    const QCommandLineOption quit_after(QStringLiteral("quit-after"), QStringLiteral("Write the outputs and quit after this many seconds."), QStringLiteral("s"));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"), QStringLiteral("Save the window as PNG when quitting."), QStringLiteral("file"));
    const QCommandLineOption timeline_out(QStringLiteral("timeline-json"), QStringLiteral("Write incidents and members as JSON when quitting."), QStringLiteral("file"));
    const QCommandLineOption events_out(QStringLiteral("events-jsonl"), QStringLiteral("Write the event log as JSON Lines when quitting."), QStringLiteral("file"));
    const QCommandLineOption size(QStringLiteral("size"), QStringLiteral("Window size, WxH; default 1280x800."), QStringLiteral("WxH"));
    const QCommandLineOption light(QStringLiteral("light"), QStringLiteral("The light theme (this run only)."));
    const QCommandLineOption alert_np(QStringLiteral("alert-no-primary"), QStringLiteral("Alert: no primary for longer than N s."), QStringLiteral("s"));
    const QCommandLineOption alert_rtt(QStringLiteral("alert-rtt-p99"), QStringLiteral("Alert: a member's RTT p99 above X ms."), QStringLiteral("ms"));
    const QCommandLineOption alert_hb(QStringLiteral("alert-failed-heartbeats"), QStringLiteral("Alert: K failed heartbeats in a row."), QStringLiteral("k"));
    const QCommandLineOption dns_server(QStringLiteral("dns-server"),
                                        QStringLiteral("DNS server for a mongodb+srv:// URI, ADDR[:PORT]; repeatable (default $TRELLIS_DNS_SERVER, else resolv.conf)."),
                                        QStringLiteral("addr"));
    p.addOptions({dns_server, config, demo, topology, nodes, routers, no_workload, canary, script, quit_after, screenshot, timeline_out,
                  events_out, size, light, alert_np, alert_rtt, alert_hb});
    if (!p.parse(QCoreApplication::arguments())) return usage_error(p.errorText());
    if (p.isSet(QStringLiteral("help"))) {
        std::fputs(qPrintable(p.helpText()), stdout);
        return exit_ok;
    }

    session_options o;
    o.demo = p.isSet(demo);
    const QStringList positional = p.positionalArguments();
    if (positional.size() > 1) return usage_error(QStringLiteral("one connection string at most"));
    if (!positional.isEmpty()) {
        o.uri = positional.front();
        // An invalid connection string is a bad argument (exit 2), as for the trellis command.
        try {
            for (const std::string& w : trellis::parse_uri(o.uri.toStdString()).warnings)
                std::fprintf(stderr, "trellis-monitor: warning: %s\n", w.c_str());
        } catch (const std::exception& e) {
            return usage_error(QString::fromUtf8(e.what()));
        }
    }
    if (p.isSet(config)) o.config_file = p.value(config);
    for (const QString& s : p.values(dns_server)) {
        if (o.uri.isEmpty()) return usage_error(QStringLiteral("--dns-server needs a connection string"));
        try {
            (void)trellis::dns::endpoint::parse(s.toStdString());
        } catch (const std::exception& e) {
            return usage_error(QStringLiteral("--dns-server: ") + QString::fromUtf8(e.what()));
        }
        o.dns_servers.push_back(s.toStdString());
    }
    const int sources = (o.demo ? 1 : 0) + (o.uri.isEmpty() ? 0 : 1) + (o.config_file.isEmpty() ? 0 : 1);
    if (sources > 1) return usage_error(QStringLiteral("give one of --demo, a connection string, --config"));
    if (p.isSet(topology)) {
        if (!o.demo) return usage_error(QStringLiteral("--demo-topology needs --demo"));
        const QString k = p.value(topology);
        if (k == QLatin1String("replica-set") || k == QLatin1String("replica_set")) o.demo_topology = trellis::sim::topology_kind::replica_set;
        else if (k == QLatin1String("sharded")) o.demo_topology = trellis::sim::topology_kind::sharded;
        else if (k == QLatin1String("master-slave") || k == QLatin1String("master_slave")) o.demo_topology = trellis::sim::topology_kind::master_slave;
        else if (k == QLatin1String("standalone")) o.demo_topology = trellis::sim::topology_kind::standalone;
        else return usage_error(QStringLiteral("--demo-topology: replica-set, sharded, master-slave or standalone, not ") + k);
    }
    auto count = [&](const QCommandLineOption& opt, int lo, int hi, int& out) {
        if (!p.isSet(opt)) return true;
        bool ok = false;
        out = p.value(opt).toInt(&ok);
        return ok && out >= lo && out <= hi;
    };
    if (!count(nodes, 1, 50, o.demo_nodes)) return usage_error(QStringLiteral("--demo-nodes: 1 to 50"));
    if (!count(routers, 1, 200, o.demo_mongos)) return usage_error(QStringLiteral("--demo-mongos: 1 to 200"));
    o.workload = !p.isSet(no_workload);
    if (!o.config_file.isEmpty()) {
        try {
            o.monitor = load_monitor_config(o.config_file.toStdString()).monitor;
        } catch (const std::exception& e) {
            return usage_error(QString::fromUtf8(e.what()));
        }
    }
    if (p.isSet(canary)) o.monitor.canary_writes = true;
    auto positive = [&](const QCommandLineOption& opt, std::optional<double>& out) {
        if (!p.isSet(opt)) return true;
        bool ok = false;
        out = p.value(opt).toDouble(&ok);
        return ok && *out > 0;
    };
    if (!positive(alert_np, o.monitor.alerts.no_primary_s)) return usage_error(QStringLiteral("--alert-no-primary: a positive number"));
    if (!positive(alert_rtt, o.monitor.alerts.rtt_p99_ms)) return usage_error(QStringLiteral("--alert-rtt-p99: a positive number"));
    if (p.isSet(alert_hb)) {
        int k = 0;
        if (!count(alert_hb, 1, 1000, k)) return usage_error(QStringLiteral("--alert-failed-heartbeats: 1 to 1000"));
        o.monitor.alerts.failed_heartbeats = k;
    }

    std::vector<script_step> steps;
    if (p.isSet(script)) {
        if (!o.demo) return usage_error(QStringLiteral("--script acts on a simulated deployment: it needs --demo"));
        QString error;
        auto parsed = parse_script(p.value(script), &error);
        if (!parsed) return usage_error(QStringLiteral("--script: ") + error);
        steps = *parsed;
    }
    std::optional<double> quit_s;
    if (p.isSet(quit_after)) {
        bool ok = false;
        quit_s = p.value(quit_after).toDouble(&ok);
        if (!ok || *quit_s <= 0 || *quit_s > 86400) return usage_error(QStringLiteral("--quit-after: seconds, more than 0"));
    }
    QSize window_size(1280, 800);
    if (p.isSet(size)) {
        auto s = parse_size(p.value(size));
        if (!s) return usage_error(QStringLiteral("--size: WxH, e.g. 1280x800"));
        window_size = *s;
    }
    const bool headless = quit_s || p.isSet(screenshot) || p.isSet(timeline_out) || p.isSet(events_out);
    if (headless && !quit_s) quit_s = 10.0;
    if (sources == 0 && headless) return usage_error(QStringLiteral("the headless face needs --demo, a connection string or --config"));

    main_window window;
    if (p.isSet(light)) window.set_dark(false);
    window.resize(window_size);
    window.show();

    int status = exit_ok;
    if (headless) {
        QObject::connect(&window, &main_window::session_started, &app, [&](const QString&) {
            for (const auto& step : steps)
                QTimer::singleShot(step.at_ms, Qt::PreciseTimer, &window, [&window, a = step.what] {
                    if (auto* s = window.current_session()) s->request(a);
                });
            QTimer::singleShot(static_cast<int>(*quit_s * 1000.0), Qt::PreciseTimer, &window, [&] {
                window.drain();
                window.resize(window_size);
                QString error;
                if (p.isSet(timeline_out) && !window.export_timeline_json(p.value(timeline_out), &error)) {
                    std::fprintf(stderr, "trellis-monitor: %s: %s\n", qPrintable(p.value(timeline_out)), qPrintable(error));
                    status = exit_failed;
                }
                if (p.isSet(events_out) && !window.export_events_jsonl(p.value(events_out), &error)) {
                    std::fprintf(stderr, "trellis-monitor: %s: %s\n", qPrintable(p.value(events_out)), qPrintable(error));
                    status = exit_failed;
                }
                if (p.isSet(screenshot) && !window.export_png(p.value(screenshot), &error)) {
                    std::fprintf(stderr, "trellis-monitor: %s: %s\n", qPrintable(p.value(screenshot)), qPrintable(error));
                    status = exit_failed;
                }
                app.quit();
            });
        });
        QObject::connect(&window, &main_window::session_failed, &app, [&](const QString& message) {
            std::fprintf(stderr, "trellis-monitor: %s\n", qPrintable(message));
            status = exit_failed;
            app.quit();
        });
    }
    if (sources > 0) window.start_session(o);
    const int rc = app.exec();
    return rc != 0 ? rc : status;
}
