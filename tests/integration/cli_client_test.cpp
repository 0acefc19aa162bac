// The trellis command's network commands, run as processes against trellis-sim deployments
// started in this process: ping, hello, run, find, insert, topology (--json, --watch), demo.
// Exit codes (0 ok, 1 operation error, 2 usage or input error) and one-line errors.
#include <QtTest/QtTest>

#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "cli_runner.hpp"
#include "trellis/sim/deployment.hpp"

using namespace std::chrono_literals;

namespace {

using result = trellis_test::cli_result;
using trellis_test::report;

result run(const QStringList& args, int timeout_ms = 60000) {
    trellis_test::cli_options o;
    o.timeout_ms = timeout_ms;
    return trellis_test::run_cli(args, o);
}

QString with_options(const std::string& uri, const QString& options) {
    const QString u = QString::fromStdString(uri);
    return u + (u.contains('?') ? "&" : (u.endsWith('/') ? "?" : "/?")) + options;
}

// A loopback port nobody listens on: bound, then released.
quint16 dead_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        qFatal("cannot bind a loopback port");
    ::close(fd);
    return ntohs(addr.sin_port);
}

QStringList lines_of(const QString& text) { return text.split('\n', Qt::SkipEmptyParts); }

std::unique_ptr<trellis::sim::deployment> start_replica_set() {
    trellis::sim::sim_config config;
    config.topology = trellis::sim::topology_kind::replica_set;
    config.nodes = 3;
    config.election_delay = 300ms;
    auto d = std::make_unique<trellis::sim::deployment>(config);
    d->start();
    if (!d->wait_for_primary(10s)) qFatal("the simulated replica set elected no primary");
    return d;
}

}  // namespace

class CliClientTest : public QObject {
    Q_OBJECT

    std::unique_ptr<trellis::sim::deployment> rs_;
    QString uri_;  // the replica set, with a short server selection timeout

private slots:
    void initTestCase() {
        if (const char* real = std::getenv("TRELLIS_TEST_URI"); real != nullptr && *real != '\0') {
            uri_ = QString::fromUtf8(real);
        } else {
            rs_ = start_replica_set();
            uri_ = with_options(rs_->uri(), "serverSelectionTimeoutMS=3000&heartbeatFrequencyMS=500");
        }
    }

    void help_and_usage_errors() {
        for (const char* cmd : {"ping", "hello", "run", "find", "insert", "topology", "demo"}) {
            const result r = run({cmd, "--help"});
            QCOMPARE(r.code, 0);
            QVERIFY2(r.out.startsWith(QString("usage: trellis ") + cmd), qPrintable(report(r)));
        }
        const QString top = run({"--help"}).out;
        for (const char* line : {"ping URI", "hello URI", "run URI DB COMMAND_JSON", "find URI DB.COLL", "insert URI DB.COLL",
                                 "topology URI", "demo"})
            QVERIFY2(top.contains(line), line);
        for (const QStringList& args :
             {QStringList{"ping"}, QStringList{"ping", uri_, "extra"}, QStringList{"run", uri_, "db"},
              QStringList{"find", uri_, "nodot"}, QStringList{"find", uri_, "db."}, QStringList{"find", uri_, "db.c", "--limit", "x"},
              QStringList{"find", uri_, "db.c", "--limit"}, QStringList{"insert", uri_, "db.c"},
              QStringList{"topology", uri_, "--watch", "0"}, QStringList{"topology", uri_, "--bogus"}, QStringList{"demo", "x"}}) {
            const result r = run(args);
            QVERIFY2(r.code == 2, qPrintable(args.join(' ') + "\n" + report(r)));
            QCOMPARE(r.err.count('\n'), 1);
            QVERIFY(r.out.isEmpty());
        }
        // An invalid connection string is a configuration error: exit 2, one line, nothing sent.
        const result bad_uri = run({"ping", "mongodb://h1,h2/?directConnection=true"});
        QCOMPARE(bad_uri.code, 2);
        QCOMPARE(bad_uri.err.count('\n'), 1);
        QVERIFY2(bad_uri.err.contains("directConnection"), qPrintable(report(bad_uri)));
        const result not_a_uri = run({"ping", "http://localhost"});
        QCOMPARE(not_a_uri.code, 2);
        QCOMPARE(not_a_uri.err.count('\n'), 1);
    }

    void ping_and_hello() {
        const result r = run({"ping", uri_});
        QVERIFY2(r.code == 0, qPrintable(report(r)));
        QVERIFY2(r.out.contains(": ok, round trip ") || r.out.startsWith("ok ("), qPrintable(report(r)));
        if (rs_) QVERIFY2(r.out.startsWith(QString::fromStdString(*rs_->primary()) + ": ok"), qPrintable(report(r)));

        const result h = run({"hello", uri_});
        QVERIFY2(h.code == 0, qPrintable(report(h)));
        const QJsonObject reply = QJsonDocument::fromJson(h.out.toUtf8()).object();
        QVERIFY2(reply.value("isWritablePrimary").toBool() || reply.value("ismaster").toBool(), qPrintable(h.out));
        QCOMPARE(reply.value("ok").toDouble(), 1.0);

        // readPreference in the URI routes hello to a secondary.
        const result s = run({"hello", uri_ + "&readPreference=secondary"});
        QVERIFY2(s.code == 0, qPrintable(report(s)));
        const QJsonObject sec = QJsonDocument::fromJson(s.out.toUtf8()).object();
        QVERIFY2(sec.value("secondary").toBool(), qPrintable(s.out));
    }

    void dead_server_fails_fast_with_one_line() {
        const quint16 port = dead_port();
        const QString address = "127.0.0.1:" + QString::number(port);
        for (const char* cmd : {"ping", "hello"}) {
            const result r = run({cmd, "mongodb://" + address + "/?serverSelectionTimeoutMS=300&connectTimeoutMS=200"});
            QVERIFY2(r.code == 1, qPrintable(report(r)));
            QVERIFY2(r.err.count('\n') == 1 && r.err.startsWith("trellis: "), qPrintable(report(r)));
            QVERIFY2(r.err.contains(address), qPrintable(report(r)));  // the server
            QVERIFY2(r.err.contains("300"), qPrintable(report(r)));    // the timeout
            QVERIFY(r.out.isEmpty());
            QVERIFY2(r.elapsed_ms < 10000, qPrintable(QString::number(r.elapsed_ms)));
        }
        const result t = run({"topology", "mongodb://" + address + "/?serverSelectionTimeoutMS=300&connectTimeoutMS=200"});
        QCOMPARE(t.code, 1);
        QVERIFY2(t.out.contains(address) && t.out.contains("Unknown"), qPrintable(report(t)));
        QCOMPARE(t.err.count('\n'), 1);
    }

    void insert_find_run_round_trip() {
        const QString ns = "cli_test.items";
        QVERIFY(run({"run", uri_, "cli_test", R"({"drop": "items"})"}).code <= 1);  // absent is fine
        const result ins = run({"insert", uri_, ns, R"({"_id": 1, "name": "a", "n": 1.5})",
                                R"({"_id": 2, "name": "b", "when": {"$date": "2024-05-01T12:00:00Z"}, "big": {"$numberLong": "9007199254740993"}})",
                                R"({"name": "c"})"});
        QVERIFY2(ins.code == 0, qPrintable(report(ins)));
        const QStringList ids = lines_of(ins.out);
        QCOMPARE(ids.size(), 3);
        QCOMPARE(ids[0], QString(R"({"_id": 1})"));
        QCOMPARE(ids[1], QString(R"({"_id": 2})"));
        QVERIFY2(ids[2].startsWith("{\"_id\": {\"$oid\": \""), qPrintable(ids[2]));

        const result one = run({"find", uri_, ns, R"({"_id": 2})"});
        QVERIFY2(one.code == 0, qPrintable(report(one)));
        QCOMPARE(one.out, QString(R"({"_id": 2, "name": "b", "when": {"$date": "2024-05-01T12:00:00Z"}, "big": 9007199254740993})"
                                  "\n"));
        const result all = run({"find", uri_, ns});
        QCOMPARE(all.code, 0);
        QCOMPARE(lines_of(all.out).size(), 3);
        QVERIFY(all.out.startsWith(R"({"_id": 1, "name": "a", "n": 1.5})"));
        const result limited = run({"find", uri_, ns, "{}", "--limit", "2"});
        QCOMPARE(limited.code, 0);
        QCOMPARE(lines_of(limited.out).size(), 2);
        const result none = run({"find", uri_, ns, R"({"name": "zzz"})"});
        QCOMPARE(none.code, 0);
        QVERIFY(none.out.isEmpty());

        const result count = run({"run", uri_, "cli_test", R"({"count": "items", "query": {"name": {"$in": ["a", "c"]}}})"});
        QVERIFY2(count.code == 0, qPrintable(report(count)));
        const QJsonObject reply = QJsonDocument::fromJson(count.out.toUtf8()).object();
        QCOMPARE(reply.value("n").toInt(), 2);
        QCOMPARE(reply.value("ok").toDouble(), 1.0);

        // Server errors: exit 1, one line, the server's reason.
        const result dup = run({"insert", uri_, ns, R"({"_id": 1})"});
        QCOMPARE(dup.code, 1);
        QCOMPARE(dup.err.count('\n'), 1);
        QVERIFY2(dup.err.contains("E11000") || dup.err.contains("duplicate key"), qPrintable(report(dup)));
        const result unknown = run({"run", uri_, "cli_test", R"({"frobnicate": 1})"});
        QCOMPARE(unknown.code, 1);
        QCOMPARE(unknown.err.count('\n'), 1);
        QVERIFY2(unknown.err.contains("CommandNotFound") || unknown.err.contains("59"), qPrintable(report(unknown)));
    }

    void bad_json_is_exit_2_naming_line_and_column() {
        const result f = run({"find", uri_, "cli_test.items", "{\n  \"a\": 1,\n  \"b\": ]\n}"});
        QCOMPARE(f.code, 2);
        QCOMPARE(f.err.count('\n'), 1);
        QVERIFY2(f.err.contains("FILTER_JSON") && f.err.contains("line 3, column 8"), qPrintable(report(f)));

        const result r = run({"run", uri_, "admin", R"({"ping": 1)"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("COMMAND_JSON") && r.err.contains("line 1, column"), qPrintable(report(r)));

        // The second document is bad: nothing is inserted, not even the first.
        const result i = run({"insert", uri_, "cli_test.bad_json", R"({"_id": "first"})", R"({"x": {"$numberInt": 5}})"});
        QCOMPARE(i.code, 2);
        QVERIFY2(i.err.contains("DOC_JSON 2") && i.err.contains("line 1, column"), qPrintable(report(i)));
        QVERIFY(i.out.isEmpty());
        const result after = run({"find", uri_, "cli_test.bad_json"});
        QCOMPARE(after.code, 0);
        QVERIFY(after.out.isEmpty());
    }

    void topology_json() {
        const result r = run({"topology", uri_, "--json"});
        QVERIFY2(r.code == 0, qPrintable(report(r)));
        QCOMPARE(lines_of(r.out).size(), 1);
        QJsonParseError error;
        const QJsonObject t = QJsonDocument::fromJson(r.out.toUtf8(), &error).object();
        QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString()));
        QCOMPARE(t.keys(), (QStringList{"servers", "set_name", "type"}));
        QCOMPARE(t.value("type").toString(), QString("ReplicaSetWithPrimary"));
        if (rs_) QCOMPARE(t.value("set_name").toString(), QString("rs0"));
        const QJsonArray servers = t.value("servers").toArray();
        QCOMPARE(servers.size(), 3);
        int primaries = 0;
        for (const QJsonValue& v : servers) {
            const QJsonObject s = v.toObject();
            QCOMPARE(s.keys(), (QStringList{"address", "error", "min_round_trip_time_ms", "round_trip_time_ms", "tags", "type"}));
            if (s.value("type").toString() == "RSPrimary") ++primaries;
            else QCOMPARE(s.value("type").toString(), QString("RSSecondary"));
            QVERIFY2(s.value("round_trip_time_ms").isDouble(), qPrintable(r.out));
            QVERIFY(s.value("round_trip_time_ms").toDouble() >= 0);
            QVERIFY2(s.value("min_round_trip_time_ms").isDouble(), qPrintable(r.out));
            QVERIFY(s.value("tags").isObject());
            QVERIFY(s.value("error").isNull());
        }
        QCOMPARE(primaries, 1);
        if (rs_) {
            const QString primary = QString::fromStdString(*rs_->primary());
            bool found = false;
            for (const QJsonValue& v : servers)
                if (v.toObject().value("address").toString() == primary) found = v.toObject().value("type").toString() == "RSPrimary";
            QVERIFY2(found, qPrintable(r.out));
        }

        // The table: a header line, a column header, one row per member.
        const result table = run({"topology", uri_});
        QVERIFY2(table.code == 0, qPrintable(report(table)));
        const QStringList rows = lines_of(table.out);
        QCOMPARE(rows.size(), 5);
        QVERIFY2(rows[0].startsWith("topology ReplicaSetWithPrimary"), qPrintable(table.out));
        QVERIFY(rows[1].startsWith("ADDRESS"));
        QCOMPARE(table.out.count("RSPrimary"), 1);
        QVERIFY(table.out.contains(" ms "));
        QVERIFY(table.out.contains(" s ago"));
    }

    void topology_watch_reports_a_stepdown() {
        if (!rs_) QSKIP("steps a member down: only against trellis-sim");
        auto rs = start_replica_set();  // its own deployment: the stepdown must not disturb the others
        const std::string old_primary = *rs->primary();
        QProcess p;
        p.start(QStringLiteral(TRELLIS_CLI_PATH),
                {"topology", with_options(rs->uri(), "serverSelectionTimeoutMS=3000&heartbeatFrequencyMS=500"), "--json",
                 "--watch", "4"});
        QVERIFY(p.waitForStarted());
        QElapsedTimer timer;
        timer.start();
        while (!p.canReadLine() && timer.elapsed() < 10000) p.waitForReadyRead(100);
        const QByteArray first = p.readLine();
        QVERIFY2(first.contains("\"ReplicaSetWithPrimary\""), first.constData());
        QVERIFY(!first.contains("\"time\""));
        rs->step_down(old_primary);
        QVERIFY(p.waitForFinished(20000));
        QCOMPARE(p.exitCode(), 0);
        const QList<QByteArray> changes = p.readAllStandardOutput().split('\n');
        bool old_left = false, new_primary = false;
        for (const QByteArray& line : changes) {
            if (line.isEmpty()) continue;
            const QJsonObject t = QJsonDocument::fromJson(line).object();
            QVERIFY2(t.value("time").toString().endsWith('Z'), line.constData());
            QCOMPARE(t.keys(), (QStringList{"servers", "set_name", "time", "type"}));
            for (const QJsonValue& v : t.value("servers").toArray()) {
                const QJsonObject s = v.toObject();
                const bool is_old = s.value("address").toString().toStdString() == old_primary;
                if (is_old && s.value("type").toString() != "RSPrimary") old_left = true;
                if (!is_old && s.value("type").toString() == "RSPrimary") new_primary = true;
            }
        }
        QVERIFY2(old_left && new_primary, p.readAllStandardError().constData());

        // The same in table form: timestamped lines naming the changes.
        QProcess q;
        q.start(QStringLiteral(TRELLIS_CLI_PATH),
                {"topology", with_options(rs->uri(), "serverSelectionTimeoutMS=3000&heartbeatFrequencyMS=500"), "--watch", "3"});
        QVERIFY(q.waitForStarted());
        timer.restart();
        QByteArray seen;
        while (!seen.contains("watching for") && timer.elapsed() < 10000) {
            q.waitForReadyRead(100);
            seen += q.readAllStandardOutput();
        }
        const std::string second_primary = *rs->wait_for_primary(5s);
        rs->kill(second_primary);
        QVERIFY(q.waitForFinished(20000));
        QVERIFY2(q.exitStatus() == QProcess::NormalExit && q.exitCode() == 0, q.readAllStandardError().constData());
        seen += q.readAllStandardOutput();
        const QString text = QString::fromUtf8(seen);
        QVERIFY2(text.contains(QString::fromStdString(second_primary) + " RSPrimary -> Unknown"), qPrintable(text));
        QVERIFY2(QRegularExpression(R"(\n\d\d:\d\d:\d\d\.\d\d\d  )").match(text).hasMatch(), qPrintable(text));
    }

    void demo_fails_over_without_losing_writes() {
        const result r = run({"demo"}, 60000);
        QVERIFY2(r.code == 0, qPrintable(report(r)));
        QVERIFY2(r.elapsed_ms < 20000, qPrintable(QString::number(r.elapsed_ms)));
        QVERIFY(r.out.contains("ADDRESS"));
        QVERIFY(r.out.contains("stepdown at T ("));
        QVERIFY(QRegularExpression("new primary seen at T \\+ \\d+ ms: 127\\.0\\.0\\.1:\\d+").match(r.out).hasMatch());
        QVERIFY(QRegularExpression("first successful write at T \\+ \\d+ ms").match(r.out).hasMatch());
        QVERIFY2(r.out.contains("acknowledged writes lost: 0"), qPrintable(report(r)));
    }
};

QTEST_GUILESS_MAIN(CliClientTest)
#include "cli_client_test.moc"
