// trellis-spec's contract: one line per case, the exact closing line, exit codes,
// and "skipped, never passed" when the spec data is absent.
#include <QtTest/QtTest>

#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>

// Kept in a header: moc mis-reads raw strings holding escaped quotes.
#include "spec_runner_data.hpp"

namespace {

struct result {
    int code;
    QStringList lines;
};

result run(const QStringList& args, const QString& spec_dir = {}) {
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    if (!spec_dir.isEmpty()) env.insert("TRELLIS_SPEC_DIR", spec_dir);
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(TRELLIS_SPEC_PATH), args);
    p.waitForFinished(60000);
    return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()).split('\n', Qt::SkipEmptyParts)};
}

void write_file(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(bytes);
}

}  // namespace

class SpecRunnerTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;

private slots:
    void reports_each_case_and_the_totals() {
        write_file(dir_.filePath("self.json"), mixed);
        const result r = run({"bson-corpus", dir_.path()});
        QCOMPARE(r.code, 1);
        QCOMPARE(r.lines.size(), 5);
        QCOMPARE(r.lines[0], QString("PASS bson-corpus self.json: good"));
        QVERIFY2(r.lines[1].startsWith("FAIL bson-corpus self.json: wrong json: "), qPrintable(r.lines[1]));
        QVERIFY2(r.lines[2].startsWith("FAIL bson-corpus self.json: not an error: decoded without error"), qPrintable(r.lines[2]));
        QCOMPARE(r.lines[3], QString("PASS bson-corpus self.json: bad int"));
        QCOMPARE(r.lines.last(), QString("2 passed, 2 failed"));
    }

    void a_single_file_path_works() {
        write_file(dir_.filePath("one.json"), mixed);
        QCOMPARE(run({"bson-corpus", dir_.filePath("one.json")}).lines.last(), QString("2 passed, 2 failed"));
    }

    void missing_default_data_is_skipped_not_passed() {
        QTemporaryDir empty;
        const result r = run({"bson-corpus"}, empty.path());
        QCOMPARE(r.code, 77);
        QVERIFY(r.lines.first().startsWith("SKIP bson-corpus"));
        QCOMPARE(r.lines.last(), QString("0 passed, 0 failed, 1 skipped"));
    }

    void usage_errors() {
        QCOMPARE(run({}).code, 2);
        QCOMPARE(run({"no-such-suite"}).code, 2);
        QCOMPARE(run({"bson-corpus", dir_.filePath("missing.json")}).code, 2);
        QCOMPARE(run({"--help"}).code, 0);
    }

    void unreadable_json_fails_the_file() {
        QTemporaryDir d;
        write_file(d.filePath("broken.json"), "{ not json");
        const result r = run({"bson-corpus", d.path()});
        QCOMPARE(r.code, 1);
        QVERIFY(r.lines.first().startsWith("FAIL bson-corpus broken.json: (file): not valid JSON"));
    }
};

QTEST_GUILESS_MAIN(SpecRunnerTest)
#include "spec_runner_test.moc"
