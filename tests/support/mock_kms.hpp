// The mock KMS (mock_kms.py) as a child process: HTTPS on loopback with a CA made for this run.
// It exits when this object closes its stdin (or after 120 s on its own).
#pragma once

#include <QProcess>
#include <QTemporaryDir>
#include <stdexcept>
#include <string>

namespace trellis_test {

class mock_kms {
public:
    mock_kms() {
        if (!dir_.isValid()) throw std::runtime_error("mock KMS: no temporary directory");
        process_.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        process_.start("/usr/bin/python3", {TRELLIS_MOCK_KMS_SCRIPT, dir_.path()});
        if (!process_.waitForStarted(5000)) throw std::runtime_error("mock KMS: /usr/bin/python3 did not start");
        QByteArray line;
        while (!line.endsWith('\n')) {
            if (!process_.waitForReadyRead(10000))
                throw std::runtime_error("mock KMS: no \"port N\" line: " + line.toStdString());
            line += process_.readLine();
        }
        const QList<QByteArray> words = line.trimmed().split(' ');
        bool ok = false, ok2 = false;
        if (words.size() == 3 && words[0] == "port") {
            port_ = words[1].toUShort(&ok);
            misnamed_port_ = words[2].toUShort(&ok2);
        }
        if (!ok || !ok2) throw std::runtime_error("mock KMS said: " + line.toStdString());
    }
    ~mock_kms() {
        process_.closeWriteChannel();
        if (!process_.waitForFinished(3000)) {
            process_.kill();
            process_.waitForFinished(1000);
        }
    }
    mock_kms(const mock_kms&) = delete;
    mock_kms& operator=(const mock_kms&) = delete;

    std::uint16_t port() const { return port_; }
    /// "127.0.0.1:PORT"
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
    /// "127.0.0.2:PORT": the same service; the certificate does not name 127.0.0.2.
    std::string misnamed_endpoint() const { return "127.0.0.2:" + std::to_string(misnamed_port_); }
    /// The CA that issued the mock's certificate (PEM).
    std::string ca_file() const { return dir_.filePath("ca.pem").toStdString(); }

private:
    QTemporaryDir dir_;
    QProcess process_;
    std::uint16_t port_ = 0;
    std::uint16_t misnamed_port_ = 0;
};

}  // namespace trellis_test
