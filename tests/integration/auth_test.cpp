// The authenticator plugins (auth-scram, auth-plain, auth-x509) through trellis::client against
// an in-process trellis-sim with users: SCRAM-SHA-256 and SCRAM-SHA-1, negotiation, speculative
// authentication, SASLprep'd passwords, wrong passwords and unknown users, PLAIN, MONGODB-X509
// with a client certificate. The SCRAM math is checked against the RFC 5802 / RFC 7677 and the
// auth spec's vectors without a server, and the conversation's non-speculative path (saslStart,
// negotiation from saslSupportedMechs, a forged server signature) through a scripted connection.
#include <QtTest/QtTest>

#include <QTemporaryDir>
#include <functional>

#include "../../plugins/auth-scram/scram_core.hpp"
#include "test_pki.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdk/authenticator.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace sdk = trellis::sdk;
namespace bson = trellis::bson;
namespace scram = trellis::auth_scram;
using trellis::errc;

namespace {

using trellis_test::doc;

// An auth_connection over a trellis::client with one pooled connection (so saslStart and
// saslContinue share it): no speculative reply, a hello reply the test writes, and a hook to
// change replies on their way back.
class client_connection final : public sdk::auth_connection {
public:
    client_connection(trellis::client& c, bson::document hello) : client_(c), hello_(std::move(hello)) {}
    std::function<bson::document(const bson::document&)> tamper;
    std::vector<bson::document> sent;

    void async_run_command(std::string db, bson::document command,
                           asio::any_completion_handler<void(std::error_code, bson::document)> handler) override {
        sent.push_back(command);
        bson::document reply;
        try {
            reply = client_[db].run_command(std::move(command));
        } catch (const trellis::operation_failure& e) {
            bson::builder b;
            b.append("ok", 0.0).append("errmsg", std::string(e.what())).append("code", e.server_code());
            reply = b.extract();
        }
        if (tamper) reply = tamper(reply);
        std::move(handler)(std::error_code(), std::move(reply));
    }
    bson::document_view hello_reply() const override { return hello_.view(); }
    std::string address() const override { return "scripted"; }

private:
    trellis::client& client_;
    bson::document hello_;
};

std::string payload_of(bson::document_view d) {
    const auto b = d.find("payload")->get_binary();
    return std::string(reinterpret_cast<const char*>(b.bytes.data()), b.bytes.size());
}

}  // namespace

class AuthTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::unique_ptr<trellis::sim::deployment> sim_, tls_sim_;
    std::vector<trellis::command_event> events_;

    std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

    std::string uri(const std::string& userinfo, const std::string& options = "") const {
        return "mongodb://" + userinfo + "@" + sim_->members()[0] + "/?serverSelectionTimeoutMS=3000" +
               (options.empty() ? "" : "&" + options);
    }

    trellis::client_settings recording() {
        trellis::client_settings s;
        s.on_command = [this](const trellis::command_event& e) { events_.push_back(e); };
        return s;
    }

    int started(std::string_view name) const {
        int n = 0;
        for (const auto& e : events_)
            if (const auto* st = std::get_if<trellis::command_started_event>(&e); st && st->command_name == name) ++n;
        return n;
    }

    // Runs {ping: 1} on admin, which the simulator refuses without authentication.
    static void ping(trellis::client& c) {
        const auto reply = c["admin"].run_command(doc(R"({"ping": 1})"));
        QVERIFY(reply.find("ok")->as_double() == 1.0);
    }

    static std::string failure_of(const std::string& u) {
        try {
            trellis::client c(u);
            c["admin"].run_command(doc(R"({"ping": 1})"));
        } catch (const trellis::error& e) {
            return e.what();
        }
        return "no error";
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        trellis::sim::sim_config cfg;
        cfg.users.push_back({"alice", "wonderland", "admin"});
        cfg.users.push_back({"ix", "IX", "admin"});          // reached with "I<soft hyphen>X"
        cfg.users.push_back({"spacey", "a b", "admin"});     // reached with "a<no-break space>b"
        cfg.users.push_back({"carol", "p=,w@rd", "test"});
        sim_ = std::make_unique<trellis::sim::deployment>(cfg);
        sim_->start();
    }
    void cleanupTestCase() {
        if (tls_sim_) tls_sim_->stop();
        if (sim_) sim_->stop();
    }
    void init() { events_.clear(); }

    // ------------------------------------------------------------ the math, without a server

    void rfc5802_sha1_vector() {
        // RFC 5802 section 5: Hi() of the password as it is (no MongoDB digest).
        scram::scram_client c(scram::hash_kind::sha1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        QCOMPARE(c.client_first(), std::string("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"));
        QCOMPARE(c.client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"),
                 std::string("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="));
        c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    void mongodb_sha1_vector() {
        // The auth spec's SCRAM-SHA-1 conversation: Hi() of hex(MD5("user:mongo:pencil")).
        scram::scram_client c(scram::hash_kind::sha1, "user", scram::prepare_password(scram::hash_kind::sha1, "user", "pencil"),
                              "fyko+d2lbbFgONRv9qkxdawL");
        QCOMPARE(c.client_final("r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000"),
                 std::string("c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY="));
        c.verify_server_final("v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0=");
    }

    void rfc7677_sha256_vector() {
        scram::scram_client c(scram::hash_kind::sha256, "user", scram::prepare_password(scram::hash_kind::sha256, "user", "pencil"),
                              "rOprNGfwEbeRWgbNEkqO");
        QCOMPARE(c.client_first(), std::string("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
        QCOMPARE(c.client_final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                 std::string("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // A forged signature (one character changed in the middle) is not believed.
        try {
            c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=");
            c.verify_server_final("v=6rriTRBi23WpRR/wtuP+mMhUZUn/dB5nLTJRsjl95G4=");
            QFAIL("a wrong server signature was accepted");
        } catch (const scram::scram_error& e) {
            QCOMPARE(std::string(e.what()), std::string("server signature mismatch"));
        }
    }

    void refuses_bad_server_first() {
        const auto refused = [](const char* server_first) {
            scram::scram_client c(scram::hash_kind::sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
            try {
                c.client_final(server_first);
            } catch (const scram::scram_error&) {
                return true;
            }
            return false;
        };
        QVERIFY(refused("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));           // not our nonce
        QVERIFY(refused("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));   // nothing of the server's
        QVERIFY(refused("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095")); // too few iterations
        QVERIFY(refused("r=rOprNGfwEbeRWgbNEkqOxyz,i=4096"));                            // no salt
        QVERIFY(refused("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999"));   // hostile count
        QVERIFY(refused("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2147483648")); // not an int
        QVERIFY(refused("e=other-error"));
    }

    void nonce_and_names() {
        const auto a = scram::make_client_nonce(), b = scram::make_client_nonce();
        QCOMPARE(a.size(), std::size_t(32));  // 24 bytes, base64
        QVERIFY(a != b);
        QCOMPARE(scram::sasl_name("a,b=c"), std::string("a=2Cb=3Dc"));
        QCOMPARE(scram::base64_decode(scram::base64_encode("any carnal pleas")).value(), std::string("any carnal pleas"));
        QCOMPARE(scram::base64_encode("ab"), std::string("YWI="));
        QVERIFY(!scram::base64_decode("YW=I"));
    }

    void saslprep_rfc4013_examples() {
        QCOMPARE(scram::saslprep("I\xC2\xAD" "X"), std::string("IX"));     // soft hyphen mapped to nothing
        QCOMPARE(scram::saslprep("user"), std::string("user"));
        QCOMPARE(scram::saslprep("USER"), std::string("USER"));            // no case folding
        QCOMPARE(scram::saslprep("\xC2\xAA"), std::string("a"));           // NFKC
        QCOMPARE(scram::saslprep("\xE2\x85\xA8"), std::string("IX"));      // ROMAN NUMERAL NINE, NFKC
        QCOMPARE(scram::saslprep("a\xC2\xA0" "b"), std::string("a b"));   // non-ASCII space to SPACE
        const auto refused = [](std::string_view s) {
            try {
                scram::saslprep(s);
            } catch (const std::invalid_argument&) {
                return true;
            }
            return false;
        };
        QVERIFY(refused("\x07"));                          // control character
        QVERIFY(refused("\xD8\xA7" "1"));                  // RandALCat then a digit: not last
        QVERIFY(refused("\xD8\xA7" "a" "\xD8\xA7"));       // RandALCat and LCat together
        QVERIFY(!refused("\xD8\xA7" "1" "\xD8\xA7"));      // first and last RandALCat
        QVERIFY(refused("a\xEE\x80\x80"));                 // U+E000 private use
        QVERIFY(refused("\xFF"));                          // not UTF-8
    }

    // ------------------------------------------------------------ against trellis-sim

    void scram_sha_256() {
        trellis::client c(uri("alice:wonderland", "authMechanism=SCRAM-SHA-256"), recording());
        ping(c);
    }

    void scram_sha_1() {
        trellis::client c(uri("alice:wonderland", "authMechanism=SCRAM-SHA-1"), recording());
        ping(c);
        QVERIFY(started("saslContinue") >= 1);
    }

    void negotiated_and_speculative() {
        // No authMechanism: hello asks saslSupportedMechs and carries a speculative SCRAM-SHA-256
        // saslStart; the server's reply to it lets the conversation go on with saslContinue alone.
        trellis::client c(uri("alice:wonderland"), recording());
        ping(c);
        QCOMPARE(started("saslStart"), 0);
        QVERIFY(started("saslContinue") >= 1);
    }

    void auth_source_and_escaped_names() {
        // A user of "test" whose password has the characters SCRAM and URIs escape.
        trellis::client c(uri("carol:p%3D%2Cw%40rd", "authSource=test"), recording());
        const auto reply = c["test"].run_command(doc(R"({"ping": 1})"));
        QVERIFY(reply.find("ok")->as_double() == 1.0);
    }

    void saslprep_passwords() {
        {
            trellis::client c(uri("ix:I%C2%ADX", "authMechanism=SCRAM-SHA-256"));
            ping(c);
        }
        {
            trellis::client c(uri("spacey:a%C2%A0b"));  // negotiated: SCRAM-SHA-256
            ping(c);
        }
        // SCRAM-SHA-1 does not SASLprep: the soft hyphen stays, and the password is wrong.
        const auto what = failure_of(uri("ix:I%C2%ADX", "authMechanism=SCRAM-SHA-1"));
        QVERIFY2(what.find("authentication failed") != std::string::npos, what.c_str());
        // A password SASLprep refuses is an error that says so.
        const auto refused = failure_of(uri("ix:I%07X", "authMechanism=SCRAM-SHA-256"));
        qInfo("%s", refused.c_str());
        QVERIFY2(refused.find("SASLprep") != std::string::npos, refused.c_str());
    }

    void wrong_password() {
        for (const char* mech : {"SCRAM-SHA-256", "SCRAM-SHA-1"}) {
            const auto what = failure_of(uri("alice:looking-glass", std::string("authMechanism=") + mech));
            qInfo("%s", what.c_str());
            QVERIFY2(what.find("authentication failed") != std::string::npos && what.find("code 18") != std::string::npos,
                     what.c_str());
        }
        try {
            trellis::client c(uri("alice:looking-glass"));
            c["admin"].run_command(doc(R"({"ping": 1})"));
            QFAIL("authenticated with a wrong password");
        } catch (const trellis::error& e) {
            QVERIFY2(e.code() == errc::authentication_failed || std::string(e.what()).find("authentication failed") != std::string::npos,
                     e.what());
        }
    }

    void unknown_user() {
        const auto what = failure_of(uri("mallory:wonderland"));
        qInfo("%s", what.c_str());
        QVERIFY2(what.find("authentication failed") != std::string::npos && what.find("code 18") != std::string::npos,
                 what.c_str());
    }

    void plain() {
        trellis::client c(uri("alice:wonderland", "authMechanism=PLAIN&authSource=admin"), recording());
        ping(c);
        QCOMPARE(started("saslStart"), 1);  // PLAIN never rides in hello
        const auto what = failure_of(uri("alice:looking-glass", "authMechanism=PLAIN&authSource=admin"));
        QVERIFY2(what.find("authentication failed") != std::string::npos && what.find("code 18") != std::string::npos,
                 what.c_str());
    }

    // ------------------------------------------------------------ the conversation without speculation

    void conversation_negotiates_from_sasl_supported_mechs() {
        trellis::plugin_registry registry;
        for (const auto& info : registry.plugins())
            if (info.kind == sdk::plugin_kind::authenticator && info.name == "scram")
                QCOMPARE(info.provides, (std::vector<std::string>{"SCRAM-SHA-1", "SCRAM-SHA-256"}));
        auto scram_plugin = registry.create_as<sdk::authenticator>(sdk::plugin_kind::authenticator, "scram");
        trellis::client carrier("mongodb://" + sim_->members()[0] + "/?maxPoolSize=1&serverSelectionTimeoutMS=3000");
        trellis::credential cred;
        cred.username = "alice";
        cred.password = "wonderland";
        cred.source = "admin";
        for (const auto& [mechs, expected] : {std::pair{R"({"saslSupportedMechs": ["SCRAM-SHA-1"]})", "SCRAM-SHA-1"},
                                              std::pair{R"({"saslSupportedMechs": ["SCRAM-SHA-1", "SCRAM-SHA-256"]})", "SCRAM-SHA-256"},
                                              std::pair{R"({})", "SCRAM-SHA-1"}}) {
            client_connection fake(carrier, doc(mechs));
            auto conversation = scram_plugin->begin(cred);  // no speculative_request(): a plain saslStart
            std::optional<sdk::auth_failure> result;
            conversation->async_run(fake, [&](sdk::auth_failure f) { result = std::move(f); });
            QVERIFY(result);
            QVERIFY2(!result->code, result->message.c_str());
            QVERIFY(!fake.sent.empty());
            QCOMPARE(std::string(fake.sent[0].find("mechanism")->get_string()), std::string(expected));
            QVERIFY(fake.sent[0].find("options")->get_document().find("skipEmptyExchange")->get_bool());
        }
    }

    void conversation_refuses_a_forged_server_signature() {
        trellis::plugin_registry registry;
        auto scram_plugin = registry.create_as<sdk::authenticator>(sdk::plugin_kind::authenticator, "scram");
        trellis::client carrier("mongodb://" + sim_->members()[0] + "/?maxPoolSize=1&serverSelectionTimeoutMS=3000");
        trellis::credential cred;
        cred.username = "alice";
        cred.password = "wonderland";
        cred.source = "admin";
        cred.mechanism = trellis::auth_mechanism::scram_sha_256;
        client_connection fake(carrier, doc("{}"));
        fake.tamper = [](const bson::document& reply) {
            const auto p = reply.find("payload");
            if (!p || !payload_of(reply.view()).starts_with("v=")) return reply;
            const std::string forged = "v=" + scram::base64_encode(std::string(32, 'x'));
            bson::builder b;
            for (const auto& e : reply.view())
                if (e.key() == "payload")
                    b.append("payload", bson::binary{0, {reinterpret_cast<const std::uint8_t*>(forged.data()), forged.size()}});
                else
                    b.append(e.key(), e);
            return b.extract();
        };
        auto conversation = scram_plugin->begin(cred);
        std::optional<sdk::auth_failure> result;
        conversation->async_run(fake, [&](sdk::auth_failure f) { result = std::move(f); });
        QVERIFY(result);
        QVERIFY(result->code == errc::authentication_failed);
        QVERIFY2(result->message.find("server signature mismatch") != std::string::npos, result->message.c_str());
    }

    // ------------------------------------------------------------ MONGODB-X509

    void x509() {
        trellis::test::make_test_pki(dir_.path());
        trellis::sim::sim_config cfg;
        cfg.tls.cert_file = path("server.pem");
        cfg.tls.key_file = path("server.key");
        cfg.tls.ca_file = path("ca.pem");
        cfg.tls.require_client_cert = true;
        cfg.users.push_back({"CN=client", "", "$external"});
        tls_sim_ = std::make_unique<trellis::sim::deployment>(cfg);
        tls_sim_->start();
        const std::string base = "mongodb://%s" + tls_sim_->members()[0] + "/?tls=true&tlsCAFile=" + path("ca.pem") +
                                 "&tlsCertificateKeyFile=" + path("client.pem") +
                                 "&tlsCertificateKeyFilePassword=s3cret&authMechanism=MONGODB-X509&serverSelectionTimeoutMS=3000";
        const auto with_user = [&](const std::string& user) {
            std::string u = base;
            u.replace(u.find("%s"), 2, user);
            return u;
        };
        {
            trellis::client c(with_user(""), recording());  // no user: the server takes the subject
            ping(c);
            QCOMPARE(started("authenticate"), 0);  // speculative, in hello
        }
        {
            trellis::client c(with_user("CN%3Dclient@"));
            ping(c);
        }
        const auto what = failure_of(with_user("CN%3Dsomeone-else@"));
        qInfo("%s", what.c_str());
        QVERIFY2(what.find("authentication failed") != std::string::npos, what.c_str());
    }
};

QTEST_GUILESS_MAIN(AuthTest)
#include "auth_test.moc"
