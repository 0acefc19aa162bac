// A throw-away PKI for TLS tests, made with the openssl CLI in a temporary directory:
//   ca.pem/ca.key, other-ca.pem (a CA nobody signed with),
//   server.pem/server.key (CN=sim, subjectAltName IP:127.0.0.1 only, signed by ca),
//   client.pem (certificate + key encrypted with the password "s3cret", signed by ca).
#pragma once

#include <QFile>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <stdexcept>

namespace trellis::test {

inline void run_openssl(const QString& dir, const QStringList& args) {
    QProcess p;
    p.setWorkingDirectory(dir);
    p.start("openssl", args);
    if (!p.waitForFinished(30000) || p.exitCode() != 0)
        throw std::runtime_error("openssl " + args.join(' ').toStdString() + ": " + p.readAllStandardError().toStdString());
}

inline void make_test_pki(const QString& d) {
    auto ca = [&](const QString& name) {
        run_openssl(d, {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name, "-keyout",
                        name + ".key", "-out", name + ".pem"});
    };
    ca("ca");
    ca("other-ca");
    // The server's certificate names only the IP address, so "localhost" does not match it.
    run_openssl(d, {"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sim", "-keyout", "server.key", "-out", "server.csr"});
    QFile ext(d + "/server.ext");
    if (!ext.open(QIODevice::WriteOnly)) throw std::runtime_error("cannot write server.ext");
    ext.write("subjectAltName=IP:127.0.0.1\n");
    ext.close();
    run_openssl(d, {"x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                    "-out", "server.pem", "-extfile", "server.ext"});
    // A client certificate whose key is protected by a password.
    run_openssl(d, {"req", "-newkey", "rsa:2048", "-passout", "pass:s3cret", "-subj", "/CN=client", "-keyout", "client.key",
                    "-out", "client.csr"});
    run_openssl(d, {"x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                    "-out", "client.crt"});
    QFile bundle(d + "/client.pem");
    if (!bundle.open(QIODevice::WriteOnly)) throw std::runtime_error("cannot write client.pem");
    for (const char* part : {"/client.crt", "/client.key"}) {
        QFile f(d + part);
        if (!f.open(QIODevice::ReadOnly)) throw std::runtime_error(std::string("cannot read ") + part);
        bundle.write(f.readAll());
    }
}

}  // namespace trellis::test
