// The trellis command-line tool run as a process, for the tests that check what it prints and
// how it exits. TRELLIS_CLI_PATH comes from trellis_add_qtest(... CLI) in tests/CMakeLists.txt.
#pragma once

#include <QByteArray>
#include <QElapsedTimer>
#include <QProcess>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>
#include <QtGlobal>
#include <optional>

namespace trellis_test {

struct cli_result {
    int code;  ///< the exit code; -1: timed out (killed), -2: crashed
    QString out;
    QString err;
    qint64 elapsed_ms;
};

struct cli_options {
    QByteArray input;  ///< written to its standard input, which is then closed
    int timeout_ms = 60000;
    std::optional<QProcessEnvironment> environment;  ///< unset: this process's
};

inline cli_result run_cli(const QStringList& args, const cli_options& options = {}) {
    QProcess p;
    if (options.environment) p.setProcessEnvironment(*options.environment);
    QElapsedTimer timer;
    timer.start();
    p.start(QStringLiteral(TRELLIS_CLI_PATH), args);
    if (!p.waitForStarted()) qFatal("cannot start %s", TRELLIS_CLI_PATH);
    if (!options.input.isEmpty()) p.write(options.input);
    p.closeWriteChannel();
    if (!p.waitForFinished(options.timeout_ms)) {
        p.kill();
        p.waitForFinished();
        return {-1, QString::fromUtf8(p.readAllStandardOutput()), "timed out: " + QString::fromUtf8(p.readAllStandardError()),
                timer.elapsed()};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError()), timer.elapsed()};
}

/// For a failed check's message: the exit code and both outputs.
inline QString report(const cli_result& r) {
    return "exit " + QString::number(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

}  // namespace trellis_test
