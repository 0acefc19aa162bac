// The TLS matrix (issue #14): trellis::client against trellis-sim servers with certificates made
// at test time by the openssl CLI (test_pki.hpp). Each refusal must come back from a real
// operation (ping) with an error whose text names the cause: an unknown CA, an expired or a
// not-yet-valid server certificate, a host name the certificate does not name, a missing client
// certificate, a wrong key password, a server offering only TLS 1.0/1.1. And tlsInsecure,
// tlsAllowInvalidCertificates and tlsAllowInvalidHostnames relax exactly what they say.
#include <QtTest/QtTest>

#include <QTemporaryDir>

#include "test_pki.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"

namespace {

std::uint16_t port_of(const std::string& address) { return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))); }

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

}  // namespace

class TlsMatrixTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    // good: server.pem, requires a client certificate; expired/future: dated certificates;
    // old: server.pem offered over TLS 1.1 at most.
    std::unique_ptr<trellis::sim::deployment> good_, expired_, future_, old_;

    std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

    std::unique_ptr<trellis::sim::deployment> start(const char* cert, bool require_client_cert, std::string max_version = {}) {
        trellis::sim::sim_config cfg;
        cfg.tls.cert_file = path(cert);
        cfg.tls.key_file = path("server.key");
        cfg.tls.ca_file = path("ca.pem");
        cfg.tls.require_client_cert = require_client_cert;
        cfg.tls.max_version = std::move(max_version);
        auto d = std::make_unique<trellis::sim::deployment>(cfg);
        d->start();
        return d;
    }

    // host: "127.0.0.1" or "localhost"; options after tls=true.
    static std::string uri(const std::string& host, const trellis::sim::deployment& d, const std::string& options) {
        return "mongodb://" + host + ":" + std::to_string(port_of(d.members()[0])) +
               "/?tls=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1500&" + options;
    }
    std::string trust(const char* ca = "ca.pem") const { return "tlsCAFile=" + path(ca); }
    std::string with_client_cert(const char* password = "s3cret") const {
        return "&tlsCertificateKeyFile=" + path("client.pem") + "&tlsCertificateKeyFilePassword=" + password;
    }

    // "ok" when ping succeeds, else the error's text.
    static std::string ping(const std::string& u) {
        try {
            trellis::client c(u);
            const auto reply = c["admin"].run_command(trellis::bson::from_json(R"({"ping": 1})"));
            return reply["ok"].as_double() == 1.0 ? "ok" : "ping replied " + trellis::bson::to_json(reply.view());
        } catch (const std::exception& e) {
            return e.what();
        }
    }

#define EXPECT_OK(u)                                          \
    do {                                                      \
        const std::string got_ = ping(u);                     \
        QVERIFY2(got_ == "ok", (std::string(u) + ": " + got_).c_str()); \
    } while (0)
#define EXPECT_REFUSED(u, ...)                                                                   \
    do {                                                                                         \
        const std::string got_ = ping(u);                                                        \
        QVERIFY2(got_ != "ok", (std::string(u) + " was accepted").c_str());                      \
        for (std::string_view part_ : {__VA_ARGS__})                                             \
            QVERIFY2(contains(got_, part_), ("missing \"" + std::string(part_) + "\" in: " + got_).c_str()); \
    } while (0)

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        trellis::test::make_test_pki(dir_.path());
        trellis::test::make_dated_server_certs(dir_.path());
        good_ = start("server.pem", true);
        expired_ = start("expired.pem", false);
        future_ = start("future.pem", false);
        old_ = start("server.pem", false, "1.1");
    }
    void cleanupTestCase() {
        for (auto* d : {&good_, &expired_, &future_, &old_})
            if (*d) (*d)->stop();
    }

    void the_good_case_works() {
        EXPECT_OK(uri("127.0.0.1", *good_, trust() + with_client_cert()));
    }

    void unknown_ca_is_refused() {
        EXPECT_REFUSED(uri("127.0.0.1", *good_, trust("other-ca.pem") + with_client_cert()), "TLS handshake with 127.0.0.1:",
                       "certificate verify failed", "not issued by a trusted CA", "other-ca.pem");
        // Host names are not the problem: allowing invalid ones changes nothing.
        EXPECT_REFUSED(uri("127.0.0.1", *good_, trust("other-ca.pem") + with_client_cert() + "&tlsAllowInvalidHostnames=true"),
                       "not issued by a trusted CA");
        EXPECT_REFUSED(uri("localhost", *good_, trust("other-ca.pem") + with_client_cert() + "&tlsAllowInvalidHostnames=true"),
                       "not issued by a trusted CA");
        EXPECT_OK(uri("127.0.0.1", *good_, trust("other-ca.pem") + with_client_cert() + "&tlsAllowInvalidCertificates=true"));
        EXPECT_OK(uri("127.0.0.1", *good_, trust("other-ca.pem") + with_client_cert() + "&tlsInsecure=true"));
    }

    void expired_server_certificate_is_refused() {
        EXPECT_REFUSED(uri("127.0.0.1", *expired_, trust()), "certificate verify failed", "certificate has expired");
        EXPECT_REFUSED(uri("127.0.0.1", *expired_, trust() + "&tlsAllowInvalidHostnames=true"), "certificate has expired");
        EXPECT_OK(uri("127.0.0.1", *expired_, trust() + "&tlsAllowInvalidCertificates=true"));
        EXPECT_OK(uri("127.0.0.1", *expired_, trust() + "&tlsInsecure=true"));
    }

    void not_yet_valid_server_certificate_is_refused() {
        EXPECT_REFUSED(uri("127.0.0.1", *future_, trust()), "certificate verify failed", "certificate is not yet valid");
        EXPECT_REFUSED(uri("127.0.0.1", *future_, trust() + "&tlsAllowInvalidHostnames=true"), "certificate is not yet valid");
        EXPECT_OK(uri("127.0.0.1", *future_, trust() + "&tlsAllowInvalidCertificates=true"));
    }

    void wrong_host_name_is_refused() {
        // The certificate names only IP 127.0.0.1; "localhost" reaches the same server.
        EXPECT_REFUSED(uri("localhost", *good_, trust() + with_client_cert()), "TLS handshake with localhost:",
                       "certificate verify failed", "hostname mismatch",
                       "does not name \"localhost\"");
        EXPECT_OK(uri("localhost", *good_, trust() + with_client_cert() + "&tlsAllowInvalidHostnames=true"));
        EXPECT_OK(uri("localhost", *good_, trust() + with_client_cert() + "&tlsAllowInvalidCertificates=true"));
        EXPECT_OK(uri("localhost", *good_, trust() + with_client_cert() + "&tlsInsecure=true"));
    }

    void missing_client_certificate_is_refused() {
        EXPECT_REFUSED(uri("127.0.0.1", *good_, trust()), "certificate required");
        // Relaxing the client's checks of the server does not help.
        EXPECT_REFUSED(uri("127.0.0.1", *good_, trust() + "&tlsInsecure=true"), "certificate required");
        // Without the requirement the same client is welcome.
        auto open = start("server.pem", false);
        EXPECT_OK(uri("127.0.0.1", *open, trust()));
        open->stop();
    }

    void wrong_client_key_password_is_refused() {
        EXPECT_REFUSED(uri("127.0.0.1", *good_, trust() + with_client_cert("wrong")), "TLS set-up for 127.0.0.1:",
                       "client.pem", "wrong tlsCertificateKeyFilePassword");
        EXPECT_REFUSED(uri("127.0.0.1", *good_, trust() + with_client_cert("wrong") + "&tlsInsecure=true"),
                       "wrong tlsCertificateKeyFilePassword");
    }

    void sim_max_version_offers_tls_1_1() {
        // The simulator's --tls-max-version really speaks TLS 1.1 (checked with openssl s_client).
        QProcess p;
        p.start("openssl", {"s_client", "-connect", QString::fromStdString(old_->members()[0]), "-tls1_1", "-cipher",
                            "DEFAULT@SECLEVEL=0", "-CAfile", QString::fromStdString(path("ca.pem"))});
        QVERIFY(p.waitForStarted());
        p.closeWriteChannel();
        QVERIFY(p.waitForFinished(30000));
        const QString out = QString::fromUtf8(p.readAllStandardOutput());
        QVERIFY2(out.contains(QRegularExpression("Protocol *: TLSv1\\.1")), qPrintable(out + p.readAllStandardError()));
    }

    void old_protocol_versions_are_refused() {
        EXPECT_REFUSED(uri("127.0.0.1", *old_, trust()), "TLS handshake with 127.0.0.1:", "protocol version",
                       "no TLS version this client accepts (TLS 1.2 or later)");
        // tlsInsecure relaxes certificate checks, not the protocol floor.
        EXPECT_REFUSED(uri("127.0.0.1", *old_, trust() + "&tlsInsecure=true"), "protocol version");
        // The same server at TLS 1.2 is fine: the refusal is about the version alone.
        auto modern = start("server.pem", false, "1.2");
        EXPECT_OK(uri("127.0.0.1", *modern, trust()));
        modern->stop();
    }
};

QTEST_GUILESS_MAIN(TlsMatrixTest)
#include "tls_matrix_test.moc"
