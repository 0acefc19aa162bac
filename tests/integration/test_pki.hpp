// A throw-away PKI for TLS tests, made with the openssl CLI in a temporary directory:
//   ca.pem/ca.key, other-ca.pem (a CA nobody signed with),
//   server.pem/server.key (CN=sim, subjectAltName IP:127.0.0.1 only, signed by ca),
//   client.pem (certificate + key encrypted with the password "s3cret", signed by ca);
// and make_dated_server_certs adds, for server.key and signed by ca with the same name,
//   expired.pem (valid 2020-01-01 to 2020-01-02) and future.pem (valid from 2099-01-01),
// through `openssl ca` and its -startdate/-enddate (OpenSSL 3.0's x509 cannot set dates).
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

inline void write_text(const QString& file, const QByteArray& text) {
    QFile f(file);
    if (!f.open(QIODevice::WriteOnly) || f.write(text) != text.size()) throw std::runtime_error("cannot write " + file.toStdString());
}

// After make_test_pki(d): expired.pem and future.pem, server certificates for IP 127.0.0.1 whose
// validity lies wholly in the past and wholly in the future.
inline void make_dated_server_certs(const QString& d) {
    write_text(d + "/dated-ca.cnf",
               "[ca]\ndefault_ca = test_ca\n"
               "[test_ca]\ndir = .\ndatabase = dated-index.txt\nnew_certs_dir = .\nserial = dated-serial\n"
               "default_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\nx509_extensions = server_ext\n"
               "[any]\ncommonName = supplied\n"
               "[server_ext]\nsubjectAltName = IP:127.0.0.1\n");
    write_text(d + "/dated-index.txt", "");
    write_text(d + "/dated-serial", "1000\n");
    auto sign = [&](const QString& out, const QString& start, const QString& end) {
        run_openssl(d, {"ca", "-batch", "-notext", "-config", "dated-ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in",
                        "server.csr", "-out", out, "-startdate", start, "-enddate", end});
    };
    sign("expired.pem", "20200101000000Z", "20200102000000Z");
    sign("future.pem", "20990101000000Z", "20990102000000Z");
}

}  // namespace trellis::test
