// The trellis command-line tool, run as a process: exit codes, messages, round trips.
#include <QtTest/QtTest>

#include <QProcess>
#include <QTemporaryDir>

#include "cli_runner.hpp"

namespace {

using result = trellis_test::cli_result;

result run(const QStringList& args, const QByteArray& input = {}) {
    trellis_test::cli_options o;
    o.input = input;
    o.timeout_ms = 30000;
    return trellis_test::run_cli(args, o);
}

void write_file(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(bytes);
}

}  // namespace

class CliTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir dir_;
    QString path(const char* name) const { return dir_.filePath(QString::fromLatin1(name)); }

private slots:
    void help_and_usage_errors() {
        QCOMPARE(run({"--help"}).code, 0);
        for (const QStringList& args : {QStringList{"bson", "dump", "--help"}, QStringList{"bson", "from-json", "--help"},
                                         QStringList{"bson", "validate", "--help"}, QStringList{"bson", "--help"}}) {
            const result r = run(args);
            QCOMPARE(r.code, 0);
            QVERIFY(r.out.startsWith("usage: trellis bson"));
        }
        const result none = run({});
        QCOMPARE(none.code, 2);
        QCOMPARE(none.err.count('\n'), 1);  // one line
        QCOMPARE(run({"frobnicate"}).code, 2);
        QCOMPARE(run({"bson", "dump"}).code, 2);
        QCOMPARE(run({"bson", "from-json", "x.json"}).code, 2);  // no -o
        QCOMPARE(run({"bson", "dump", "--bogus", "x"}).code, 2);
    }

    void from_json_then_dump_round_trips() {
        write_file(path("in.json"), "{\"a\": 1, \"d\": {\"$date\": \"2012-12-24T12:15:30.501Z\"}}\n{\"b\": [true, null]}\n");
        const result conv = run({"bson", "from-json", path("in.json"), "-o", path("out.bson")});
        QCOMPARE(conv.code, 0);
        QVERIFY(conv.err.contains("wrote 2 document(s)"));
        const result dump = run({"bson", "dump", path("out.bson")});
        QCOMPARE(dump.code, 0);
        QCOMPARE(dump.out, QString("{\"a\": 1, \"d\": {\"$date\": \"2012-12-24T12:15:30.501Z\"}}\n{\"b\": [true, null]}\n"));
        const result canonical = run({"bson", "dump", "--canonical", path("out.bson")});
        QVERIFY(canonical.out.startsWith("{\"a\": {\"$numberInt\": \"1\"}, \"d\": {\"$date\": {\"$numberLong\": \"1356351330501\"}}}"));
        const result valid = run({"bson", "validate", path("out.bson")});
        QCOMPARE(valid.code, 0);
        QVERIFY(valid.out.contains("valid, 2 document(s)"));
    }

    void stdin_and_stdout() {
        const result conv = run({"bson", "from-json", "-", "-o", "-"}, "{\"x\": \"y\"}");
        QCOMPARE(conv.code, 0);
        const result dump = run({"bson", "dump", "-"}, conv.out.toLatin1());
        QCOMPARE(dump.out, QString("{\"x\": \"y\"}\n"));
    }

    void bad_json_is_a_data_error_and_writes_nothing() {
        write_file(path("bad.json"), "{\"a\": 1}\n{\"a\": {\"$numberInt\": 5}}\n");
        const result r = run({"bson", "from-json", path("bad.json"), "-o", path("never.bson")});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("line 2, column 22"), qPrintable(r.err));
        QCOMPARE(r.err.count('\n'), 1);
        QVERIFY(!QFile::exists(path("never.bson")));
    }

    void validate_names_the_first_bad_byte() {
        // Two documents; the second's string length is wrong: {"s": "ab"} claiming 9 bytes.
        QByteArray doc1("\x0C\x00\x00\x00\x10x\x00\x01\x00\x00\x00\x00", 12);
        QByteArray doc2("\x0F\x00\x00\x00\x02s\x00\x09\x00\x00\x00" "ab\x00\x00", 15);
        write_file(path("two.bson"), doc1 + doc2);
        const result r = run({"bson", "validate", path("two.bson")});
        QCOMPARE(r.code, 1);
        // doc2 starts at byte 12; its string length field is at 12 + 7.
        QVERIFY2(r.err.contains("invalid BSON at byte 19 (document 2 starting at byte 12)"), qPrintable(r.err));
        // dump prints the good document, then fails on the bad one.
        const result d = run({"bson", "dump", path("two.bson")});
        QCOMPARE(d.code, 1);
        QCOMPARE(d.out, QString("{\"x\": 1}\n"));
    }

    void truncated_and_missing_files() {
        write_file(path("trunc.bson"), QByteArray("\x40\x00\x00\x00\x10", 5));
        const result r = run({"bson", "validate", path("trunc.bson")});
        QCOMPARE(r.code, 1);
        QVERIFY(r.err.contains("runs past the end of the file"));
        const result missing = run({"bson", "dump", path("nope.bson")});
        QCOMPARE(missing.code, 1);
        QVERIFY(missing.err.contains("cannot open"));
    }

    void config_check_prints_the_effective_options() {
        write_file(path("good.toml"),
                   "[client]\nuri = \"mongodb://u:secret@h1,h2/?replicaSet=rs0&maxPoolSize=10\"\n"
                   "[pool]\nmax_size = 50\n[plugins]\npaths = [\"plugins\"]\n[plugins.batched]\nbatch_size = 10\n");
        const result ok = run({"config", "check", path("good.toml")});
        QCOMPARE(ok.code, 0);
        QVERIFY2(ok.err.isEmpty(), qPrintable(ok.err));
        QVERIFY2(ok.out.startsWith("[client]\nhosts = [\"h1:27017\", \"h2:27017\"]\n"), qPrintable(ok.out));
        QVERIFY(ok.out.contains("\n[pool]\nmax_size = 50\n"));  // the file beats the URI's maxPoolSize=10
        QVERIFY(ok.out.contains("replica_set = \"rs0\"\n"));
        QVERIFY(ok.out.contains("\n[auth]\nusername = \"u\"\npassword = \"***\"\n"));
        QVERIFY(!ok.out.contains("secret"));
        QVERIFY(ok.out.contains("paths = [\"" + QDir(dir_.path()).filePath("plugins") + "\"]\n"));
        QVERIFY(ok.out.contains("\n[plugins.batched]\nbatch_size = 10\n"));

        // URI warnings go to stderr; the file is still usable.
        write_file(path("warn.toml"), "[client]\nuri = \"mongodb://h/?frobnicate=1\"\n");
        const result warn = run({"config", "check", path("warn.toml")});
        QCOMPARE(warn.code, 0);
        QVERIFY(warn.err.contains("warning: "));
    }

    void config_check_errors_are_one_line_and_exit_2() {
        write_file(path("bad.toml"), "[client]\nuri = \"mongodb://localhost\"\n\n[pool]\nmax_size = -3\n");
        const result bad = run({"config", "check", path("bad.toml")});
        QCOMPARE(bad.code, 2);
        QCOMPARE(bad.err, "trellis: " + path("bad.toml") + ":5:12: pool.max_size must be a positive integer, got -3\n");
        QVERIFY(bad.out.isEmpty());

        write_file(path("typo.toml"), "[pool]\nmax_szie = 3\n");
        const result typo = run({"config", "check", path("typo.toml")});
        QCOMPARE(typo.code, 2);
        QCOMPARE(typo.err, "trellis: " + path("typo.toml") + ":2:1: unknown key pool.max_szie; did you mean pool.max_size?\n");

        const result missing = run({"config", "check", path("absent.toml")});
        QCOMPARE(missing.code, 2);
        QCOMPARE(missing.err.count('\n'), 1);
        QVERIFY(missing.err.contains("cannot open"));

        for (const QStringList& args : {QStringList{"config"}, QStringList{"config", "check"},
                                         QStringList{"config", "check", "a.toml", "b.toml"},
                                         QStringList{"config", "check", "--bogus", "a.toml"}, QStringList{"config", "frob"}}) {
            const result r = run(args);
            QCOMPARE(r.code, 2);
            QCOMPARE(r.err.count('\n'), 1);
        }
        for (const QStringList& args : {QStringList{"config", "--help"}, QStringList{"config", "check", "--help"}}) {
            const result r = run(args);
            QCOMPARE(r.code, 0);
            QVERIFY(r.out.startsWith("usage: trellis config"));
        }
        QVERIFY(run({"--help"}).out.contains("config check FILE"));
    }

    // The network commands check their arguments before they connect: a usage mistake, an
    // invalid URI or bad JSON is exit 2 at once, even when no server is there.
    void network_commands_check_arguments_first() {
        const QString dead = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100";
        for (const char* cmd : {"ping", "hello", "run", "find", "insert", "topology", "demo"}) {
            const result r = run({cmd, "--help"});
            QCOMPARE(r.code, 0);
            QVERIFY(r.out.startsWith(QString("usage: trellis ") + cmd));
        }
        const result json = run({"run", dead, "admin", "{\"ping\": 1,\n \"x\": }"});
        QCOMPARE(json.code, 2);
        QCOMPARE(json.err.count('\n'), 1);
        QVERIFY2(json.err.contains("COMMAND_JSON: Extended JSON line 2, column 7"), qPrintable(json.err));
        const result uri = run({"find", "mongodb://h:99999/", "db.c"});
        QCOMPARE(uri.code, 2);
        QCOMPARE(uri.err.count('\n'), 1);
        QVERIFY2(uri.err.startsWith("trellis: invalid URI: "), qPrintable(uri.err));
        QCOMPARE(run({"find", dead, "nodot"}).code, 2);
        QCOMPARE(run({"insert", dead, "db.c"}).code, 2);
        QCOMPARE(run({"topology", dead, "--watch", "-1"}).code, 2);
    }
};

QTEST_GUILESS_MAIN(CliTest)
#include "cli_test.moc"
