// Tests of trellis-sim's authentication logic (apps/sim/auth).
//
// The SCRAM checks run against published conversations (RFC 5802, RFC 7677 and
// the MongoDB auth spec) reproduced byte for byte, and against a small SCRAM
// client written here on OpenSSL directly, so the server is not checked only
// against its own primitives.

#include <QtTest/QtTest>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/credentials.hpp"
#include "auth/crypto.hpp"
#include "auth/plain.hpp"
#include "auth/saslprep.hpp"
#include "auth/scram.hpp"
#include "auth/session.hpp"
#include "auth/x509.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/document.hpp"

namespace {

namespace auth = trellis::sim::auth;
namespace bson = trellis::bson;

QString q(const std::string& s) { return QString::fromStdString(s); }

// The reason of a failed result, for QVERIFY2 (empty when it succeeded).
template <class T>
const char* why(const auth::result<T>& r) {
    return r.ok() ? "" : r.error().reason.c_str();
}

// ---------------------------------------------------------------- independent primitives (OpenSSL directly)

const EVP_MD* md_of(auth::mechanism m) { return m == auth::mechanism::scram_sha_1 ? EVP_sha1() : EVP_sha256(); }

std::string b64(const std::string& raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string unb64(const std::string& text) {
    std::string out(3 * (text.size() / 4) + 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) throw std::runtime_error("bad base64 in test");
    std::size_t len = static_cast<std::size_t>(n);
    if (text.size() >= 2 && text.substr(text.size() - 2) == "==")
        len -= 2;
    else if (!text.empty() && text.back() == '=')
        len -= 1;
    out.resize(len);
    return out;
}

std::string hmac_raw(const EVP_MD* md, const std::string& key, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &n);
    return std::string(reinterpret_cast<const char*>(out), n);
}

std::string hash_raw(const EVP_MD* md, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
    return std::string(reinterpret_cast<const char*>(out), n);
}

std::string md5_hex_raw(const std::string& data) {
    const std::string d = hash_raw(EVP_md5(), data);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : d) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
    return out;
}

std::string to_string(const auth::bytes& b) { return std::string(b.begin(), b.end()); }
auth::bytes to_bytes(const std::string& s) { return auth::bytes(s.begin(), s.end()); }

// A random source that hands out prepared chunks in order (and fails loudly when asked for anything else).
auth::random_source scripted_random(std::vector<std::string> chunks) {
    auto queue = std::make_shared<std::deque<std::string>>(chunks.begin(), chunks.end());
    return [queue](std::span<std::uint8_t> out) {
        if (queue->empty() || queue->front().size() != out.size())
            throw std::logic_error("scripted_random: unexpected request of " + std::to_string(out.size()) + " bytes");
        std::copy(queue->front().begin(), queue->front().end(), out.begin());
        queue->pop_front();
    };
}

// A deterministic but varied random source.
auth::random_source counting_random() {
    auto counter = std::make_shared<std::uint8_t>(0);
    return [counter](std::span<std::uint8_t> out) {
        for (auto& b : out) b = (*counter)++;
    };
}

// ---------------------------------------------------------------- a test-only SCRAM client

class scram_client {
public:
    /// password: the plain password for SCRAM-SHA-1 (digested here as MongoDB does), the SASLprep'd one for
    /// SCRAM-SHA-256.
    scram_client(auth::mechanism m, std::string user, const std::string& password, std::string nonce,
                 std::string gs2 = "n,,")
        : mech_(m), user_(std::move(user)), nonce_(std::move(nonce)), gs2_(std::move(gs2)) {
        key_password_ = m == auth::mechanism::scram_sha_1 ? md5_hex_raw(user_ + ":mongo:" + password) : password;
    }
    /// For the RFC vectors: the password is fed to Hi() as given.
    static scram_client raw(auth::mechanism m, std::string user, std::string key_password, std::string nonce) {
        scram_client c(m, std::move(user), "", std::move(nonce));
        c.key_password_ = std::move(key_password);
        return c;
    }

    std::string first() {
        std::string escaped;
        for (char ch : user_) {
            if (ch == '=')
                escaped += "=3D";
            else if (ch == ',')
                escaped += "=2C";
            else
                escaped.push_back(ch);
        }
        first_bare_ = "n=" + escaped + ",r=" + nonce_;
        return gs2_ + first_bare_;
    }

    /// The client-final message for this server-first message; empty when the server-first is unacceptable.
    std::string final(const std::string& server_first) {
        std::map<std::string, std::string> attrs;
        std::size_t start = 0;
        while (start < server_first.size()) {
            std::size_t comma = server_first.find(',', start);
            if (comma == std::string::npos) comma = server_first.size();
            const std::string field = server_first.substr(start, comma - start);
            const std::size_t eq = field.find('=');
            if (eq != std::string::npos) attrs[field.substr(0, eq)] = field.substr(eq + 1);
            start = comma + 1;
        }
        const std::string rnonce = attrs["r"];
        const int iterations = std::stoi(attrs.count("i") ? attrs["i"] : "0");
        if (rnonce.rfind(nonce_, 0) != 0 || rnonce.size() <= nonce_.size() || iterations < 4096) return {};
        const std::string salt = unb64(attrs["s"]);

        const EVP_MD* md = md_of(mech_);
        std::string salted(static_cast<std::size_t>(EVP_MD_get_size(md)), '\0');
        PKCS5_PBKDF2_HMAC(key_password_.data(), static_cast<int>(key_password_.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                          iterations, md, static_cast<int>(salted.size()),
                          reinterpret_cast<unsigned char*>(salted.data()));
        const std::string client_key = hmac_raw(md, salted, "Client Key");
        const std::string stored_key = hash_raw(md, client_key);
        const std::string server_key = hmac_raw(md, salted, "Server Key");
        const std::string without_proof = "c=" + b64(gs2_) + ",r=" + rnonce;
        const std::string auth_message = first_bare_ + "," + server_first + "," + without_proof;
        std::string proof = hmac_raw(md, stored_key, auth_message);
        for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ client_key[i]);
        expected_server_final_ = "v=" + b64(hmac_raw(md, server_key, auth_message));
        return without_proof + ",p=" + b64(proof);
    }

    const std::string& expected_server_final() const { return expected_server_final_; }

private:
    auth::mechanism mech_;
    std::string user_;
    std::string nonce_;
    std::string gs2_;
    std::string key_password_;
    std::string first_bare_;
    std::string expected_server_final_;
};

// The client nonce PyMongo would send: base64 of 32 random bytes.
const std::string client_nonce = "q0Q8LwpXBS6rk7nUQMuZHkYkZPDDFprrgT4eNRRJJT4=";

// A store with the users the tests share. Iteration counts are mongod's defaults.
std::shared_ptr<auth::credential_store> make_store() {
    auto store = std::make_shared<auth::credential_store>(auth::store_options{10000, 15000, counting_random()});
    const auto add = [&](auth::user u) {
        if (auto e = store->create_user(u)) throw std::runtime_error("create_user: " + e->message);
    };
    add(auth::user{"alice", "admin", "s3cret", {"root"}});
    add(auth::user{"sha1only", "admin", "pw1", {"readWrite"}, {auth::mechanism::scram_sha_1}});
    add(auth::user{"sha256only", "test", "pw256", {}, {auth::mechanism::scram_sha_256}});
    add(auth::user{"a,b=c", "admin", "escaped", {}});
    add(auth::user{"IX", "admin", "IX", {}, {auth::mechanism::scram_sha_256}});
    add(auth::user{"\u2168", "admin", "\u2163", {}, {auth::mechanism::scram_sha_256}});
    add(auth::user{"ldapuser", "$external", "ldap-pw", {"read"}});
    add(auth::user{"CN=client,OU=trellis,O=Trellis,L=New York,ST=New York,C=US", "$external", "", {"root"}});
    return store;
}

// Runs a whole SCRAM conversation. A server error ends it (error, failed_step); a server reply the client must
// reject (done too early, wrong signature, a non-empty last payload) is a client_problem.
struct conversation_outcome {
    std::optional<auth::auth_error> error;
    int failed_step = 0;  // 1-based
    std::string client_problem;
    std::optional<auth::authenticated_user> user;

    bool ok() const { return !error && client_problem.empty() && user; }
    const char* describe() const { return error ? error->reason.c_str() : client_problem.c_str(); }
};

conversation_outcome run_conversation(auth::scram_conversation& server, scram_client& client) {
    conversation_outcome out;
    auto r1 = server.step(client.first());
    if (!r1) return {r1.error(), 1, {}, std::nullopt};
    if (r1->done) return {std::nullopt, 0, "server done after client-first", std::nullopt};
    const std::string client_final = client.final(r1->server_message);
    if (client_final.empty()) return {std::nullopt, 0, "unacceptable server-first", std::nullopt};
    auto r2 = server.step(client_final);
    if (!r2) return {r2.error(), 2, {}, std::nullopt};
    if (r2->server_message != client.expected_server_final())
        return {std::nullopt, 0, "wrong server signature", std::nullopt};
    if (!r2->done) {
        auto r3 = server.step("");
        if (!r3) return {r3.error(), 3, {}, std::nullopt};
        if (!r3->done || !r3->server_message.empty()) return {std::nullopt, 0, "bad empty final round", std::nullopt};
    }
    out.user = server.authenticated();
    if (!out.user) out.client_problem = "done but no authenticated user";
    return out;
}

bson::document sasl_start_command(const std::string& mech, const std::string& payload, bool skip_empty,
                                   std::optional<std::string> db = std::nullopt) {
    bson::builder b;
    b.append("saslStart", 1);
    b.append("mechanism", mech);
    b.append("payload", bson::binary{0, auth::as_bytes(payload)});
    b.append("autoAuthorize", 1);
    b.open_document("options");
    b.append("skipEmptyExchange", skip_empty);
    b.close_document();
    if (db) b.append("db", *db);
    return b.extract();
}

bson::document sasl_continue_command(const std::string& payload, int conversation_id = 1) {
    bson::builder b;
    b.append("saslContinue", 1);
    b.append("conversationId", conversation_id);
    b.append("payload", bson::binary{0, auth::as_bytes(payload)});
    return b.extract();
}

std::string payload_of(const bson::document& reply) {
    const auto b = reply["payload"].get_binary();
    return std::string(auth::as_chars(b.bytes));
}

std::string plain_payload(const std::string& authzid, const std::string& authcid, const std::string& password) {
    std::string p = authzid;
    p.push_back('\0');
    p += authcid;
    p.push_back('\0');
    p += password;
    return p;
}

// ---------------------------------------------------------------- certificates

struct x509_deleter {
    void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

// A self-signed certificate with these subject entries, added in this order (the DER order).
x509_ptr make_certificate(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                             &EVP_PKEY_free);
    if (!key) throw std::runtime_error("EVP_PKEY_Q_keygen failed");
    x509_ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    for (const auto& [field, value] : entries)
        if (X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) != 1)
            throw std::runtime_error("X509_NAME_add_entry_by_txt failed for " + field);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key.get());
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
    return cert;
}

const std::string client_subject = "CN=client,OU=trellis,O=Trellis,L=New York,ST=New York,C=US";

}  // namespace

class SimAuthTest : public QObject {
    Q_OBJECT

private slots:
    // primitives
    void passwordDigest();
    void base64();
    // published conversations
    void rfc5802Sha1Example();
    void rfc7677Sha256Example();
    void mongodbSpecSha1Example();
    // credentials
    void storedCredentials();
    void createUserErrors();
    void saslSupportedMechs();
    // conversations against the test client
    void fullConversation_data();
    void fullConversation();
    void wrongPassword_data();
    void wrongPassword();
    void unknownUser();
    void missingCredentialForMechanism();
    void tamperedNonce();
    void channelBinding();
    void authzid();
    void escapedUserName();
    void emptyFinalRound();
    void malformedMessages_data();
    void malformedMessages();
    void sha256PasswordIsSaslpreped();
    void onlyScramMechanisms();
    // SASLprep
    void saslprep_data();
    void saslprep();
    void saslprepOptions();
    // PLAIN
    void plain();
    // X.509
    void x509Subject();
    void x509SubjectMatchesOpensslCli();
    void x509Authenticate();
    // commands
    void saslCommands_data();
    void saslCommands();
    void saslCommandErrors();
    void base64StringPayload();
    void plainCommand();
    void authenticateCommand();
    void speculativeScram();
    void speculativeFailures();
    void speculativeX509();
    void errorReply();
};

// ---------------------------------------------------------------- primitives

void SimAuthTest::passwordDigest() {
    // hex(MD5("user:mongo:pencil")), checked with md5sum, and independently here through OpenSSL.
    QCOMPARE(q(auth::mongodb_password_digest("user", "pencil")), QString("1c33006ec1ffd90f9cadcbcc0e118200"));
    QCOMPARE(q(auth::mongodb_password_digest("user", "pencil")), q(md5_hex_raw("user:mongo:pencil")));
    QCOMPARE(q(auth::md5_hex("")), QString("d41d8cd98f00b204e9800998ecf8427e"));
    // SCRAM-SHA-1 feeds the digest to Hi(); SCRAM-SHA-256 the SASLprep'd password.
    QCOMPARE(q(*auth::scram_key_password(auth::mechanism::scram_sha_1, "user", "pencil")),
             QString("1c33006ec1ffd90f9cadcbcc0e118200"));
    QCOMPARE(q(*auth::scram_key_password(auth::mechanism::scram_sha_256, "user", "I\u00ADX")), QString("IX"));
}

void SimAuthTest::base64() {
    const std::vector<std::pair<std::string, std::string>> vectors = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}, {"n,,", "biws"}};
    for (const auto& [raw, text] : vectors) {
        QCOMPARE(q(auth::base64_encode(auth::as_bytes(raw))), q(text));
        const auto decoded = auth::base64_decode(text);
        QVERIFY(decoded);
        QCOMPARE(q(to_string(*decoded)), q(raw));
    }
    for (const char* bad : {"Zg", "Zg=", "Z===", "Zm=v", "Zm9v\n", "Zm9v====", "Zh==", "Zm9=", "Zm!v", "=Zm9"})
        QVERIFY2(!auth::base64_decode(bad), bad);
    // Every byte value survives a round trip.
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    QCOMPARE(q(auth::base64_encode(auth::as_bytes(all))), q(b64(all)));
    QCOMPARE(to_string(*auth::base64_decode(b64(all))), all);
}

// ---------------------------------------------------------------- published conversations

void SimAuthTest::rfc5802Sha1Example() {
    // RFC 5802 section 5: user "user", password "pencil" (fed to Hi() as is: the RFC has no MongoDB digest).
    auth::scram_conversation server(auth::mechanism::scram_sha_1, "user", "pencil", to_bytes(unb64("QSXCR+Q6sek8bf92")),
                                    4096, {}, auth::scram_options{true, "3rfcNHYJY1ZVvWVs7j"});
    auto r1 = server.step("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    QVERIFY2(r1, why(r1));
    QCOMPARE(q(r1->server_message), QString("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"));
    QVERIFY(!r1->done);

    // The test client computes the RFC's client-final message too.
    auto client = scram_client::raw(auth::mechanism::scram_sha_1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
    client.first();
    const std::string client_final =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    QCOMPARE(q(client.final(r1->server_message)), q(client_final));

    auto r2 = server.step(client_final);
    QVERIFY2(r2, why(r2));
    QCOMPARE(q(r2->server_message), QString("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="));
    QVERIFY(r2->done);
    QVERIFY(server.done());
    QVERIFY(server.authenticated());
    QCOMPARE(q(server.authenticated()->name), QString("user"));
}

void SimAuthTest::rfc7677Sha256Example() {
    // RFC 7677 section 3.
    auth::scram_conversation server(auth::mechanism::scram_sha_256, "user", "pencil",
                                    to_bytes(unb64("W22ZaJ0SNY7soEsUEjb6gQ==")), 4096, {},
                                    auth::scram_options{true, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"});
    auto r1 = server.step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    QVERIFY2(r1, why(r1));
    QCOMPARE(q(r1->server_message),
             QString("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));

    auto client = scram_client::raw(auth::mechanism::scram_sha_256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    client.first();
    const std::string client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    QCOMPARE(q(client.final(r1->server_message)), q(client_final));

    auto r2 = server.step(client_final);
    QVERIFY2(r2, why(r2));
    QCOMPARE(q(r2->server_message), QString("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
    QVERIFY(r2->done);
}

void SimAuthTest::mongodbSpecSha1Example() {
    // The SCRAM-SHA-1 conversation of the MongoDB auth spec, reproduced through the credential store: the store's
    // random source yields the spec's salt (16 bytes) then a SCRAM-SHA-256 salt (28 bytes); the conversation's
    // yields the 24 bytes whose base64 is the spec's server nonce. So this is the path PyMongo exercises:
    // MD5 digest, 10000 iterations, mongod's salt and nonce sizes.
    auth::credential_store store(
        auth::store_options{10000, 15000, scripted_random({unb64("rQ9ZY3MntBeuP3E1TDVC4w=="), std::string(28, 'x')})});
    QVERIFY(!store.create_user(auth::user{"user", "admin", "pencil", {}}));

    auth::scram_conversation server(auth::mechanism::scram_sha_1, store, "admin",
                                    scripted_random({unb64("Ho+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE")}));
    auto r1 = server.step("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    QVERIFY2(r1, why(r1));
    QCOMPARE(q(r1->server_message),
             QString("r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000"));
    auto r2 = server.step(
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY=");
    QVERIFY2(r2, why(r2));
    QCOMPARE(q(r2->server_message), QString("v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0="));
    // No skipEmptyExchange: the spec's "Backwards Compatibility" conversation, with the extra empty round.
    QVERIFY(!r2->done);
    QVERIFY(!server.authenticated());
    auto r3 = server.step("");
    QVERIFY2(r3, why(r3));
    QVERIFY(r3->done);
    QVERIFY(r3->server_message.empty());
    QCOMPARE(q(server.authenticated()->name), QString("user"));
    QCOMPARE(q(server.authenticated()->db), QString("admin"));
}

// ---------------------------------------------------------------- credentials

void SimAuthTest::storedCredentials() {
    auth::credential_store store;  // RAND_bytes salts
    QVERIFY(!store.create_user(auth::user{"bob", "app", "hunter2", {"readWrite", "dbAdmin"}}));
    QVERIFY(!store.create_user(auth::user{"bob", "other", "hunter2", {}}));  // same name, another database
    QCOMPARE(store.size(), std::size_t(2));
    const auto u = store.find_user("app", "bob");
    QVERIFY(u);
    QCOMPARE(u->roles.size(), std::size_t(2));
    QVERIFY(!store.find_user("admin", "bob"));
    QVERIFY(!store.find_user("app", "Bob"));

    // mongod's sizes: salt = hash length - 4; iteration counts 10000 and 15000.
    QVERIFY(u->scram_sha_1 && u->scram_sha_256);
    QCOMPARE(u->scram_sha_1->salt.size(), std::size_t(16));
    QCOMPARE(u->scram_sha_256->salt.size(), std::size_t(28));
    QCOMPARE(u->scram_sha_1->iteration_count, 10000);
    QCOMPARE(u->scram_sha_256->iteration_count, 15000);
    QCOMPARE(u->scram_sha_1->stored_key.size(), std::size_t(20));
    QCOMPARE(u->scram_sha_256->server_key.size(), std::size_t(32));
    QVERIFY(u->scram_sha_1->salt != store.find_user("other", "bob")->scram_sha_1->salt);

    // StoredKey and ServerKey are what RFC 5802 says, recomputed here with OpenSSL.
    const std::string salted(reinterpret_cast<const char*>(auth::salted_password(
                                 auth::hash_algorithm::sha1, md5_hex_raw("bob:mongo:hunter2"),
                                 u->scram_sha_1->salt, 10000).data()),
                             20);
    QCOMPARE(to_string(u->scram_sha_1->stored_key), hash_raw(EVP_sha1(), hmac_raw(EVP_sha1(), salted, "Client Key")));
    QCOMPARE(to_string(u->scram_sha_1->server_key), hmac_raw(EVP_sha1(), salted, "Server Key"));
    QVERIFY(u->scram_sha_1->matches(md5_hex_raw("bob:mongo:hunter2")));
    QVERIFY(!u->scram_sha_1->matches(md5_hex_raw("bob:mongo:hunter3")));
    QVERIFY(u->scram_sha_256->matches("hunter2"));

    QVERIFY(store.drop_user("app", "bob"));
    QVERIFY(!store.drop_user("app", "bob"));
    QCOMPARE(store.size(), std::size_t(1));

    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, auth::credential_store(auth::store_options{4095, 15000, {}}));
}

void SimAuthTest::createUserErrors() {
    auth::credential_store store(auth::store_options{4096, 4096, counting_random()});
    QVERIFY(!store.create_user(auth::user{"carol", "admin", "pw", {}}));

    auto dup = store.create_user(auth::user{"carol", "admin", "other", {}});
    QVERIFY(dup);
    QCOMPARE(dup->code, 51003);
    QCOMPARE(q(dup->code_name), QString("Location51003"));
    QCOMPARE(q(dup->message), QString("User \"carol@admin\" already exists"));

    auto empty_pw = store.create_user(auth::user{"dave", "admin", "", {}});
    QVERIFY(empty_pw);
    QCOMPARE(empty_pw->code, 2);
    QVERIFY(store.create_user(auth::user{"", "admin", "pw", {}}));
    QVERIFY(store.create_user(auth::user{"erin", "admin", "pw", {}, {}}));
    QVERIFY(store.create_user(auth::user{"erin", "admin", "pw", {}, {auth::mechanism::plain}}));

    // SASLprep refuses a control character for SCRAM-SHA-256; SCRAM-SHA-1 digests the password and does not care.
    auto prohibited = store.create_user(auth::user{"frank", "admin", "bell\x07", {}});
    QVERIFY(prohibited);
    QCOMPARE(prohibited->code, 2);
    QVERIFY(!store.find_user("admin", "frank"));
    QVERIFY(!store.create_user(auth::user{"frank", "admin", "bell\x07", {}, {auth::mechanism::scram_sha_1}}));

    // $external users need no password (X.509); with one they can use PLAIN. No SCRAM credentials there.
    QVERIFY(!store.create_user(auth::user{"CN=x", "$external", "", {}}));
    QVERIFY(!store.create_user(auth::user{"ldap", "$external", "pw", {}}));
    const auto ldap = store.find_user("$external", "ldap");
    QVERIFY(ldap->plain && !ldap->scram_sha_1 && !ldap->scram_sha_256);
}

void SimAuthTest::saslSupportedMechs() {
    const auto store = make_store();
    const auto list = [&](const char* name) -> QStringList {
        const auto m = store->sasl_supported_mechs(name);
        if (!m) return {"<absent>"};
        QStringList out;
        for (const auto& s : *m) out << q(s);
        return out;
    };
    QCOMPARE(list("admin.alice"), (QStringList{"SCRAM-SHA-1", "SCRAM-SHA-256"}));
    QCOMPARE(list("admin.sha1only"), (QStringList{"SCRAM-SHA-1"}));
    QCOMPARE(list("test.sha256only"), (QStringList{"SCRAM-SHA-256"}));
    QCOMPARE(list("admin.a,b=c"), (QStringList{"SCRAM-SHA-1", "SCRAM-SHA-256"}));
    // Unknown users and malformed names: mongod leaves the field out.
    QCOMPARE(list("admin.nobody"), (QStringList{"<absent>"}));
    QCOMPARE(list("test.alice"), (QStringList{"<absent>"}));
    QCOMPARE(list("alice"), (QStringList{"<absent>"}));
    QCOMPARE(list("$external.ldapuser"), (QStringList{"PLAIN"}));
    QCOMPARE(list(("$external." + client_subject).c_str()), QStringList());

    // The database ends at the first dot; the user name may hold more.
    QVERIFY(!store->create_user(auth::user{"first.last", "admin", "pw", {}}));
    QCOMPARE(list("admin.first.last"), (QStringList{"SCRAM-SHA-1", "SCRAM-SHA-256"}));
}

// ---------------------------------------------------------------- conversations

void SimAuthTest::fullConversation_data() {
    QTest::addColumn<int>("mech");
    QTest::addColumn<bool>("skip_empty_exchange");
    QTest::addColumn<QByteArray>("db");
    QTest::addColumn<QByteArray>("user");
    QTest::addColumn<QByteArray>("password");
    QTest::newRow("SHA-1") << int(auth::mechanism::scram_sha_1) << false << QByteArray("admin") << QByteArray("alice")
                           << QByteArray("s3cret");
    QTest::newRow("SHA-1 skipEmptyExchange")
        << int(auth::mechanism::scram_sha_1) << true << QByteArray("admin") << QByteArray("alice")
        << QByteArray("s3cret");
    QTest::newRow("SHA-256") << int(auth::mechanism::scram_sha_256) << false << QByteArray("admin")
                             << QByteArray("alice") << QByteArray("s3cret");
    QTest::newRow("SHA-256 skipEmptyExchange") << int(auth::mechanism::scram_sha_256) << true << QByteArray("admin")
                                               << QByteArray("alice") << QByteArray("s3cret");
    QTest::newRow("SHA-1 only user") << int(auth::mechanism::scram_sha_1) << true << QByteArray("admin")
                                     << QByteArray("sha1only") << QByteArray("pw1");
    QTest::newRow("SHA-256 user of db test") << int(auth::mechanism::scram_sha_256) << true << QByteArray("test")
                                             << QByteArray("sha256only") << QByteArray("pw256");
}

void SimAuthTest::fullConversation() {
    QFETCH(int, mech);
    QFETCH(bool, skip_empty_exchange);
    QFETCH(QByteArray, db);
    QFETCH(QByteArray, user);
    QFETCH(QByteArray, password);
    const auto store = make_store();
    const auto m = static_cast<auth::mechanism>(mech);

    auth::scram_conversation server(m, *store, db.toStdString(), {}, auth::scram_options{skip_empty_exchange, {}});
    scram_client client(m, user.toStdString(), password.toStdString(), client_nonce);

    auto r1 = server.step(client.first());
    QVERIFY2(r1, why(r1));
    QVERIFY(!r1->done);
    // mongod's server nonce: 24 random bytes in base64, appended to the client's.
    const std::string& sf = r1->server_message;
    QVERIFY(sf.rfind("r=" + client_nonce, 0) == 0);
    const std::string server_nonce = sf.substr(2 + client_nonce.size(), sf.find(',') - 2 - client_nonce.size());
    QCOMPARE(server_nonce.size(), std::size_t(32));
    QCOMPARE(unb64(server_nonce).size(), std::size_t(24));
    QVERIFY(sf.find(m == auth::mechanism::scram_sha_1 ? ",i=10000" : ",i=15000") != std::string::npos);

    auto r2 = server.step(client.final(sf));
    QVERIFY2(r2, why(r2));
    QCOMPARE(q(r2->server_message), q(client.expected_server_final()));
    QCOMPARE(r2->done, skip_empty_exchange);
    if (!skip_empty_exchange) {
        QVERIFY(!server.authenticated());
        auto r3 = server.step("");
        QVERIFY2(r3, why(r3));
        QVERIFY(r3->done);
        QVERIFY(r3->server_message.empty());
    }
    QVERIFY(server.done());
    QVERIFY(server.authenticated());
    QCOMPARE(q(server.authenticated()->name), q(user.toStdString()));
    QCOMPARE(q(server.authenticated()->db), q(db.toStdString()));
    QVERIFY(server.authenticated()->mech == m);

    // Done: any further message is refused.
    auto extra = server.step("");
    QVERIFY(!extra);
    QCOMPARE(extra.error().code, 18);
}

void SimAuthTest::wrongPassword_data() {
    QTest::addColumn<int>("mech");
    QTest::newRow("SHA-1") << int(auth::mechanism::scram_sha_1);
    QTest::newRow("SHA-256") << int(auth::mechanism::scram_sha_256);
}

void SimAuthTest::wrongPassword() {
    QFETCH(int, mech);
    const auto store = make_store();
    auth::scram_conversation server(static_cast<auth::mechanism>(mech), *store);
    scram_client client(static_cast<auth::mechanism>(mech), "alice", "S3cret", client_nonce);
    const auto out = run_conversation(server, client);
    QVERIFY(out.error);
    QCOMPARE(out.failed_step, 2);
    QCOMPARE(out.error->code, 18);
    QCOMPARE(q(out.error->code_name), QString("AuthenticationFailed"));
    QCOMPARE(q(out.error->message), QString("Authentication failed."));
    QVERIFY(server.failed());
    QVERIFY(!server.authenticated());
    QVERIFY(!server.step(""));  // failed for good
}

void SimAuthTest::unknownUser() {
    const auto store = make_store();
    for (auto m : {auth::mechanism::scram_sha_1, auth::mechanism::scram_sha_256}) {
        auth::scram_conversation server(m, *store);
        scram_client client(m, "mallory", "whatever", client_nonce);
        const auto out = run_conversation(server, client);
        QVERIFY(out.error);
        // Fails at saslStart, with exactly what a wrong password gets: mongod does not reveal which it was.
        QCOMPARE(out.failed_step, 1);
        QCOMPARE(out.error->code, 18);
        QCOMPARE(q(out.error->message), QString("Authentication failed."));
        QVERIFY(out.error->reason.find("UserNotFound") != std::string::npos);
    }
    // A user of another database is not this database's user.
    auth::scram_conversation server(auth::mechanism::scram_sha_256, *store, "test");
    scram_client client(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);
    QCOMPARE(run_conversation(server, client).failed_step, 1);
}

void SimAuthTest::missingCredentialForMechanism() {
    const auto store = make_store();
    auth::scram_conversation sha256(auth::mechanism::scram_sha_256, *store);
    scram_client c1(auth::mechanism::scram_sha_256, "sha1only", "pw1", client_nonce);
    auto out = run_conversation(sha256, c1);
    QVERIFY(out.error);
    QCOMPARE(out.error->code, 18);
    QCOMPARE(out.failed_step, 1);

    auth::scram_conversation sha1(auth::mechanism::scram_sha_1, *store, "test");
    scram_client c2(auth::mechanism::scram_sha_1, "sha256only", "pw256", client_nonce);
    out = run_conversation(sha1, c2);
    QVERIFY(out.error);
    QCOMPARE(out.error->code, 18);
}

void SimAuthTest::tamperedNonce() {
    const auto store = make_store();
    for (auto m : {auth::mechanism::scram_sha_1, auth::mechanism::scram_sha_256}) {
        auth::scram_conversation server(m, *store);
        scram_client client(m, "alice", "s3cret", client_nonce);
        auto r1 = server.step(client.first());
        QVERIFY2(r1, why(r1));
        std::string server_first = r1->server_message;
        // The client signs a server-first whose nonce differs in its last character; its proof is then
        // computed over that nonce, which the server did not issue.
        const std::size_t comma = server_first.find(',');
        server_first[comma - 1] = server_first[comma - 1] == 'A' ? 'B' : 'A';
        auto r2 = server.step(client.final(server_first));
        QVERIFY(!r2);
        QCOMPARE(r2.error().code, 18);
        QVERIFY(r2.error().reason.find("Unmatched SCRAM nonce") != std::string::npos);
    }
    // The client's own nonce part changed.
    auth::scram_conversation server(auth::mechanism::scram_sha_256, *store);
    scram_client client(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);
    auto r1 = server.step(client.first());
    std::string final_message = client.final(r1->server_message);
    final_message.replace(final_message.find("r=q0Q8"), 6, "r=q0Q9");
    QVERIFY(!server.step(final_message));
}

void SimAuthTest::channelBinding() {
    const auto store = make_store();
    // The client asks for channel binding: mongod supports none.
    {
        auth::scram_conversation server(auth::mechanism::scram_sha_256, *store);
        auto r = server.step("p=tls-server-end-point,,n=alice,r=" + client_nonce);
        QVERIFY(!r);
        QCOMPARE(r.error().code, 18);
        QVERIFY(r.error().reason.find("channel binding") != std::string::npos);
    }
    // "y": the client could bind but thinks the server cannot. Accepted; c= then carries "y,,".
    {
        auth::scram_conversation server(auth::mechanism::scram_sha_256, *store, "admin", {},
                                        auth::scram_options{true, {}});
        scram_client client(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce, "y,,");
        const auto out = run_conversation(server, client);
        QVERIFY2(out.ok(), out.describe());
    }
    // c= must carry the gs2 header that was sent: "biws" is base64("n,,"), not base64("y,,").
    {
        auth::scram_conversation server(auth::mechanism::scram_sha_256, *store);
        scram_client client(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);
        auto r1 = server.step("y,,n=alice,r=" + client_nonce);
        QVERIFY(r1);
        client.first();
        auto r2 = server.step(client.final(r1->server_message));  // c=biws
        QVERIFY(!r2);
        QVERIFY(r2.error().reason.find("channel binding") != std::string::npos);
    }
}

void SimAuthTest::authzid() {
    const auto store = make_store();
    {
        auth::scram_conversation server(auth::mechanism::scram_sha_1, *store, "admin", {},
                                        auth::scram_options{true, {}});
        scram_client client(auth::mechanism::scram_sha_1, "alice", "s3cret", client_nonce, "n,a=alice,");
        const auto out = run_conversation(server, client);
        QVERIFY2(out.ok(), out.describe());
    }
    {
        auth::scram_conversation server(auth::mechanism::scram_sha_1, *store);
        auto r = server.step("n,a=sha1only,n=alice,r=" + client_nonce);
        QVERIFY(!r);
        QCOMPARE(r.error().code, 18);
        QVERIFY(r.error().reason.find("does not match authzid") != std::string::npos);
    }
    {
        auth::scram_conversation server(auth::mechanism::scram_sha_1, *store);
        QVERIFY(!server.step("n,alice,n=alice,r=" + client_nonce));  // authzid without "a="
    }
}

void SimAuthTest::escapedUserName() {
    // The user "a,b=c" travels as "n=a=2Cb=3Dc". User names are never SASLprep'd.
    const auto store = make_store();
    for (auto m : {auth::mechanism::scram_sha_1, auth::mechanism::scram_sha_256}) {
        auth::scram_conversation server(m, *store, "admin", {}, auth::scram_options{true, {}});
        scram_client client(m, "a,b=c", "escaped", client_nonce);
        QVERIFY(client.first().find("n=a=2Cb=3Dc,") != std::string::npos);
        const auto out = run_conversation(server, client);
        QVERIFY2(out.ok(), out.describe());
        QCOMPARE(q(out.user->name), QString("a,b=c"));
        QCOMPARE(q(server.principal_name()), QString("a,b=c"));
    }
}

void SimAuthTest::emptyFinalRound() {
    const auto store = make_store();
    // Without skipEmptyExchange (what drivers before MongoDB 4.4 did, and what a server that ignores the option
    // makes PyMongo do): server-final comes with done: false, the client sends an empty message, the server
    // answers done: true with an empty payload.
    auth::scram_conversation server(auth::mechanism::scram_sha_256, *store);
    scram_client client(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);
    auto r1 = server.step(client.first());
    auto r2 = server.step(client.final(r1->server_message));
    QVERIFY2(r2, why(r2));
    QVERIFY(!r2->done);
    QVERIFY(!server.done());
    QVERIFY(!server.authenticated());
    auto r3 = server.step("");
    QVERIFY2(r3, why(r3));
    QVERIFY(r3->done);
    QCOMPARE(q(r3->server_message), QString());
    QVERIFY(server.authenticated());

    // set_skip_empty_exchange before the client-final message (saslStart's options) finishes a round earlier.
    auth::scram_conversation quick(auth::mechanism::scram_sha_256, *store);
    quick.set_skip_empty_exchange(true);
    scram_client client2(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);
    auto q1 = quick.step(client2.first());
    auto q2 = quick.step(client2.final(q1->server_message));
    QVERIFY(q2 && q2->done);
    QVERIFY(!quick.step(""));
}

void SimAuthTest::malformedMessages_data() {
    QTest::addColumn<QByteArray>("first");
    QTest::addColumn<QByteArray>("final");  // empty: the first message must fail
    const QByteArray nonce = QByteArray::fromStdString(client_nonce);
    QTest::newRow("empty") << QByteArray("") << QByteArray();
    QTest::newRow("no comma") << QByteArray("n") << QByteArray();
    QTest::newRow("no header end") << QByteArray("n,") << QByteArray();
    QTest::newRow("bad flag") << QByteArray("x,,n=alice,r=" + nonce) << QByteArray();
    QTest::newRow("mandatory extension") << QByteArray("n,,m=ext,n=alice,r=" + nonce) << QByteArray();
    QTest::newRow("empty user") << QByteArray("n,,n=,r=" + nonce) << QByteArray();
    QTest::newRow("nonce too short") << QByteArray("n,,n=alice,r=abc") << QByteArray();
    QTest::newRow("no nonce") << QByteArray("n,,n=alice") << QByteArray();
    QTest::newRow("fields swapped") << QByteArray("n,,r=" + nonce + ",n=alice") << QByteArray();
    const QByteArray first = "n,,n=alice,r=" + nonce;
    QTest::newRow("final: no proof") << first << QByteArray("c=biws,r=NONCE");
    QTest::newRow("final: empty") << first << QByteArray(",");
    QTest::newRow("final: proof not base64") << first << QByteArray("c=biws,r=NONCE,p=###");
    QTest::newRow("final: proof too short") << first << QByteArray("c=biws,r=NONCE,p=AAAA");
    QTest::newRow("final: no channel binding") << first << QByteArray("r=NONCE,p=AAAA");
    QTest::newRow("final: empty channel binding") << first << QByteArray("c=,r=NONCE,p=AAAA");
    QTest::newRow("final: missing nonce") << first << QByteArray("c=biws,p=AAAA");
}

void SimAuthTest::malformedMessages() {
    QFETCH(QByteArray, first);
    QFETCH(QByteArray, final);
    const auto store = make_store();
    auth::scram_conversation server(auth::mechanism::scram_sha_256, *store);
    auto r1 = server.step(first.toStdString());
    if (final.isNull()) {
        QVERIFY(!r1);
        QCOMPARE(r1.error().code, 18);
        QCOMPARE(q(r1.error().message), QString("Authentication failed."));
    } else {
        QVERIFY2(r1, why(r1));
        const std::string nonce = r1->server_message.substr(2, r1->server_message.find(',') - 2);
        std::string msg = final.toStdString();
        if (const auto at = msg.find("NONCE"); at != std::string::npos) msg.replace(at, 5, nonce);
        auto r2 = server.step(msg);
        QVERIFY(!r2);
        QCOMPARE(r2.error().code, 18);
    }
    QVERIFY(server.failed());
    QVERIFY(!server.step("c=biws,r=x,p=y"));
}

void SimAuthTest::sha256PasswordIsSaslpreped() {
    // The auth spec's SASLprep test users: "IX"/"IX" and U+2168/U+2163, created from the raw bytes. A client
    // SASLpreps whatever form it is given ("I\u00ADX" loses its soft hyphen, U+2163 becomes "IV").
    const auto store = make_store();
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"IX", "IX"}, {"IX", "I\u00ADX"}, {"\u2168", "IV"}, {"\u2168", "I\u00ADV"}, {"\u2168", "\u2163"}};
    for (const auto& [user, password] : cases) {
        const auto prepared = auth::saslprep(password);
        QVERIFY(prepared);
        auth::scram_conversation server(auth::mechanism::scram_sha_256, *store, "admin", {},
                                        auth::scram_options{true, {}});
        scram_client client(auth::mechanism::scram_sha_256, user, *prepared, client_nonce);
        const auto out = run_conversation(server, client);
        QVERIFY2(out.ok(), (user + " / " + password + ": " + out.describe()).c_str());
        QCOMPARE(q(out.user->name), q(user));
    }
    // The user name itself is not SASLprep'd: "IX" and U+2168 are two users.
    auth::scram_conversation server(auth::mechanism::scram_sha_256, *store, "admin");
    scram_client client(auth::mechanism::scram_sha_256, "\u2168", "IX", client_nonce);
    QVERIFY(run_conversation(server, client).error);
}

void SimAuthTest::onlyScramMechanisms() {
    const auto store = make_store();
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, auth::scram_conversation(auth::mechanism::plain, *store));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                             auth::scram_conversation(auth::mechanism::mongodb_x509, *store));
    QCOMPARE(q(std::string(auth::mechanism_name(auth::mechanism::scram_sha_256))), QString("SCRAM-SHA-256"));
    QVERIFY(auth::parse_mechanism("SCRAM-SHA-1") == auth::mechanism::scram_sha_1);
    QVERIFY(auth::parse_mechanism("MONGODB-X509") == auth::mechanism::mongodb_x509);
    QVERIFY(!auth::parse_mechanism("scram-sha-1"));
    QVERIFY(!auth::parse_mechanism("SCRAM-SHA-512"));
}

// ---------------------------------------------------------------- SASLprep

void SimAuthTest::saslprep_data() {
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QByteArray>("expected");  // null: refused
    // RFC 4013 section 3.
    QTest::newRow("SOFT HYPHEN mapped to nothing") << QByteArray("I\u00ADX") << QByteArray("IX");
    QTest::newRow("no transformation") << QByteArray("user") << QByteArray("user");
    QTest::newRow("case preserved") << QByteArray("USER") << QByteArray("USER");
    QTest::newRow("output is NFKC, input in ISO 8859-1") << QByteArray("\u00AA") << QByteArray("a");
    QTest::newRow("output is NFKC, will match 1st example") << QByteArray("\u2168") << QByteArray("IX");
    QTest::newRow("error - prohibited character") << QByteArray("\u0007") << QByteArray();
    QTest::newRow("error - bidirectional check") << QByteArray("\u0627\u0031") << QByteArray();
    // More of the profile.
    QTest::newRow("non-ASCII space mapped to space") << QByteArray("a\u00A0b\u3000c") << QByteArray("a b c");
    QTest::newRow("zero width space removed") << QByteArray("a\u200Bb") << QByteArray("ab");
    QTest::newRow("variation selector removed") << QByteArray("x\uFE0Fy") << QByteArray("xy");
    QTest::newRow("ASCII with spaces and symbols") << QByteArray(" p@ss w0rd! ") << QByteArray(" p@ss w0rd! ");
    QTest::newRow("empty") << QByteArray("") << QByteArray("");
    QTest::newRow("canonical composition") << QByteArray("e\u0301") << QByteArray("\u00E9");
    QTest::newRow("fullwidth letters") << QByteArray("\uFF21\uFF42") << QByteArray("Ab");
    QTest::newRow("ligature") << QByteArray("\uFB01") << QByteArray("fi");
    QTest::newRow("RandALCat first and last") << QByteArray("\u0627\u0031\u0628") << QByteArray("\u0627\u0031\u0628");
    QTest::newRow("RandALCat only") << QByteArray("\u05D0\u05D1") << QByteArray("\u05D0\u05D1");
    QTest::newRow("RandALCat with LCat") << QByteArray("\u0627a\u0628") << QByteArray();
    QTest::newRow("RandALCat not last") << QByteArray("\u05D0\u05D1!") << QByteArray();
    QTest::newRow("ASCII control") << QByteArray("a\x7F") << QByteArray();
    QTest::newRow("tab") << QByteArray("a\tb") << QByteArray();
    QTest::newRow("C1 control") << QByteArray("a\u0085") << QByteArray();
    QTest::newRow("private use") << QByteArray("\uE000") << QByteArray();
    QTest::newRow("supplementary private use") << QByteArray("\U000F0000") << QByteArray();
    QTest::newRow("non-character") << QByteArray("\uFDD0") << QByteArray();
    QTest::newRow("replacement character") << QByteArray("\uFFFD") << QByteArray();
    QTest::newRow("ideographic description") << QByteArray("\u2FF0") << QByteArray();
    QTest::newRow("left-to-right mark") << QByteArray("a\u200Eb") << QByteArray();
    QTest::newRow("language tag") << QByteArray("\U000E0001") << QByteArray();
    QTest::newRow("line separator") << QByteArray("a\u2028b") << QByteArray();
    QTest::newRow("unassigned in Unicode 3.2") << QByteArray("\u0221") << QByteArray();
    QTest::newRow("emoji, unassigned in Unicode 3.2") << QByteArray("\U0001F600") << QByteArray();
    QTest::newRow("truncated UTF-8") << QByteArray("a\xC3") << QByteArray();
    QTest::newRow("encoded surrogate") << QByteArray("\xED\xA0\x80") << QByteArray();
    QTest::newRow("overlong UTF-8") << QByteArray("\xC0\xAF") << QByteArray();
}

void SimAuthTest::saslprep() {
    QFETCH(QByteArray, input);
    QFETCH(QByteArray, expected);
    const auto r = auth::saslprep(input.toStdString());
    if (expected.isNull()) {
        QVERIFY2(!r, r ? r->c_str() : "");
        QCOMPARE(r.error().code, 2);
    } else {
        QVERIFY2(r, why(r));
        QCOMPARE(QByteArray::fromStdString(*r), expected);
    }
}

void SimAuthTest::saslprepOptions() {
    // Stringprep's "query" profile lets unassigned code points through; nothing else changes.
    const auto r = auth::saslprep("\u0221", auth::saslprep_options{true});
    QVERIFY2(r, why(r));
    QCOMPARE(QByteArray::fromStdString(*r), QByteArray("\u0221"));
    QVERIFY(!auth::saslprep("\u0007", auth::saslprep_options{true}));
    // Only removable characters: an empty result.
    QCOMPARE(q(*auth::saslprep("\u00AD\u200B")), QString());
}

// ---------------------------------------------------------------- PLAIN

void SimAuthTest::plain() {
    const auto store = make_store();
    const auto ok = [&](const std::string& payload, const std::string& db) {
        auto r = auth::plain_check(*store, payload, db);
        return r.ok();
    };
    // $external users: checked against the password they were created with (LDAP's stand-in).
    auto r = auth::plain_check(*store, plain_payload("", "ldapuser", "ldap-pw"));
    QVERIFY2(r, why(r));
    QCOMPARE(q(r->name), QString("ldapuser"));
    QCOMPARE(q(r->db), QString("$external"));
    QVERIFY(r->mech == auth::mechanism::plain);
    QVERIFY(ok(plain_payload("ldapuser", "ldapuser", "ldap-pw"), "$external"));
    QVERIFY(!ok(plain_payload("", "ldapuser", "ldap-PW"), "$external"));
    QVERIFY(!ok(plain_payload("alice", "ldapuser", "ldap-pw"), "$external"));
    // An X.509 user has no password to check.
    QVERIFY(!ok(plain_payload("", client_subject, "x"), "$external"));

    // Other databases: against the SCRAM credentials, as mongod Community does.
    QVERIFY(ok(plain_payload("", "alice", "s3cret"), "admin"));
    QVERIFY(!ok(plain_payload("", "alice", "s3cret"), "$external"));
    QVERIFY(!ok(plain_payload("", "alice", "wrong"), "admin"));
    QVERIFY(ok(plain_payload("", "sha1only", "pw1"), "admin"));
    QVERIFY(ok(plain_payload("", "sha256only", "pw256"), "test"));
    QVERIFY(ok(plain_payload("", "IX", "I\u00ADX"), "admin"));  // SASLprep'd for the SCRAM-SHA-256 credential

    // Malformed payloads and unknown users: 18 every time.
    for (const std::string& bad : {std::string("alice"), std::string("\0alice", 6), plain_payload("", "", "s3cret"),
                                   plain_payload("", "alice", ""), plain_payload("", "nobody", "s3cret")}) {
        auto e = auth::plain_check(*store, bad, "admin");
        QVERIFY(!e);
        QCOMPARE(e.error().code, 18);
        QCOMPARE(q(e.error().message), QString("Authentication failed."));
    }
}

// ---------------------------------------------------------------- X.509

void SimAuthTest::x509Subject() {
    // Entries in DER order, most general first; RFC 2253 writes them the other way round.
    const auto cert = make_certificate({{"C", "US"}, {"ST", "New York"}, {"L", "New York"}, {"O", "Trellis"},
                                        {"OU", "trellis"}, {"CN", "client"}});
    QCOMPARE(q(auth::subject_rfc2253(cert.get())), q(client_subject));

    const auto escaped = make_certificate({{"O", "Trellis"}, {"CN", "Doe, John+x=\"y\" <z>;"}});
    QCOMPARE(q(auth::subject_rfc2253(escaped.get())), QString("CN=Doe\\, John\\+x=\\\"y\\\" \\<z\\>\\;,O=Trellis"));

    const auto leading = make_certificate({{"CN", "#hash "}});
    QCOMPARE(q(auth::subject_rfc2253(leading.get())), QString("CN=\\#hash\\ "));

    // UTF-8 stays UTF-8.
    const auto utf8 = make_certificate({{"CN", "J\u00FCrgen"}});
    QCOMPARE(QByteArray::fromStdString(auth::subject_rfc2253(utf8.get())), QByteArray("CN=J\u00FCrgen"));

    QCOMPARE(q(auth::subject_rfc2253(nullptr)), QString());
}

void SimAuthTest::x509SubjectMatchesOpensslCli() {
    // The way the auth spec tells users to find their X.509 user name:
    //   openssl x509 -subject -nameopt RFC2253 -noout -inform PEM -in my-cert.pem
    const QString openssl = QStandardPaths::findExecutable("openssl");
    if (openssl.isEmpty()) QSKIP("no openssl executable");
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString key = dir.filePath("key.pem");
    const QString pem = dir.filePath("cert.pem");
    for (const QString& subject : {QString("/C=US/ST=New York/L=New York/O=Trellis/OU=trellis/CN=client"),
                                   QString("/O=Trellis/OU=a;b/CN=Doe, John")}) {
        QProcess req;
        req.start(openssl, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                            "-keyout", key, "-out", pem, "-days", "1", "-subj", subject});
        QVERIFY(req.waitForFinished(30000));
        QVERIFY2(req.exitCode() == 0, req.readAllStandardError().constData());

        QProcess show;
        show.start(openssl, {"x509", "-subject", "-nameopt", "RFC2253", "-noout", "-inform", "PEM", "-in", pem});
        QVERIFY(show.waitForFinished(30000));
        QCOMPARE(show.exitCode(), 0);
        QString expected = QString::fromUtf8(show.readAllStandardOutput()).trimmed();
        QVERIFY(expected.startsWith("subject="));
        expected = expected.mid(8).trimmed();

        QFile file(pem);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray bytes = file.readAll();
        std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(bytes.constData(), int(bytes.size())),
                                                      &BIO_free);
        x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        QVERIFY(cert);
        QCOMPARE(q(auth::subject_rfc2253(cert.get())), expected);
    }
}

void SimAuthTest::x509Authenticate() {
    const auto store = make_store();
    auto r = auth::x509_authenticate(*store, client_subject, std::nullopt);
    QVERIFY2(r, why(r));
    QCOMPARE(q(r->name), q(client_subject));
    QCOMPARE(q(r->db), QString("$external"));
    QVERIFY(r->mech == auth::mechanism::mongodb_x509);
    QCOMPARE(r->roles.size(), std::size_t(1));
    QVERIFY(auth::x509_authenticate(*store, client_subject, client_subject));

    // The named user must be the certificate's subject.
    auto other = auth::x509_authenticate(*store, client_subject, std::string("CN=other"));
    QVERIFY(!other);
    QCOMPARE(other.error().code, 18);
    QCOMPARE(q(other.error().message), QString("Authentication failed."));

    // No certificate.
    auto none = auth::x509_authenticate(*store, "", std::nullopt);
    QVERIFY(!none);
    QCOMPARE(none.error().code, 18);

    // A subject with no user: mongod's UserNotFound, not masked.
    auto unknown = auth::x509_authenticate(*store, "CN=stranger,O=Trellis", std::nullopt);
    QVERIFY(!unknown);
    QCOMPARE(unknown.error().code, 11);
    QCOMPARE(q(unknown.error().code_name), QString("UserNotFound"));
    QCOMPARE(q(unknown.error().message), QString("Could not find user \"CN=stranger,O=Trellis\" for db \"$external\""));

    // Only $external.
    auto admin = auth::x509_authenticate(*store, client_subject, std::nullopt, "admin");
    QVERIFY(!admin);
    QCOMPARE(admin.error().code, 17);
    QCOMPARE(q(admin.error().message), QString("X.509 authentication must always use the $external database."));
}

// ---------------------------------------------------------------- commands

void SimAuthTest::saslCommands_data() {
    QTest::addColumn<QByteArray>("mech");
    QTest::addColumn<bool>("skip_empty_exchange");
    QTest::newRow("SCRAM-SHA-1") << QByteArray("SCRAM-SHA-1") << false;
    QTest::newRow("SCRAM-SHA-1 skipEmptyExchange") << QByteArray("SCRAM-SHA-1") << true;
    QTest::newRow("SCRAM-SHA-256") << QByteArray("SCRAM-SHA-256") << false;
    QTest::newRow("SCRAM-SHA-256 skipEmptyExchange") << QByteArray("SCRAM-SHA-256") << true;
}

void SimAuthTest::saslCommands() {
    QFETCH(QByteArray, mech);
    QFETCH(bool, skip_empty_exchange);
    const auto store = make_store();
    const auto m = *auth::parse_mechanism(mech.toStdString());
    auth::auth_session session(*store);
    scram_client client(m, "alice", "s3cret", client_nonce);

    auto start =
        session.sasl_start("admin", sasl_start_command(mech.toStdString(), client.first(), skip_empty_exchange));
    QVERIFY2(start, why(start));
    // {conversationId: 1, done: false, payload: BinData(0, ...), ok: 1.0}, in that order.
    std::vector<std::string> keys;
    for (const auto& e : start.value()) keys.emplace_back(e.key());
    QCOMPARE(keys, (std::vector<std::string>{"conversationId", "done", "payload", "ok"}));
    QCOMPARE(start.value()["conversationId"].get_int32(), 1);
    QCOMPARE(start.value()["done"].get_bool(), false);
    QCOMPARE(int(start.value()["payload"].get_binary().subtype), 0);
    QCOMPARE(start.value()["ok"].get_double(), 1.0);
    QVERIFY(session.in_conversation());
    QVERIFY(!session.user());

    auto cont = session.sasl_continue("admin", sasl_continue_command(client.final(payload_of(start.value()))));
    QVERIFY2(cont, why(cont));
    QCOMPARE(q(payload_of(cont.value())), q(client.expected_server_final()));
    QCOMPARE(cont.value()["done"].get_bool(), skip_empty_exchange);
    if (!skip_empty_exchange) {
        QVERIFY(!session.user());
        auto last = session.sasl_continue("admin", sasl_continue_command(""));
        QVERIFY2(last, why(last));
        QCOMPARE(last.value()["done"].get_bool(), true);
        QCOMPARE(q(payload_of(last.value())), QString());
    }
    QVERIFY(!session.in_conversation());
    QVERIFY(session.user());
    QCOMPARE(q(session.user()->name), QString("alice"));
    QCOMPARE(q(session.user()->db), QString("admin"));
    QCOMPARE(session.user()->roles, std::vector<std::string>{"root"});

    session.logout();
    QVERIFY(!session.user());
}

void SimAuthTest::saslCommandErrors() {
    const auto store = make_store();
    auth::auth_session session(*store);

    auto no_session = session.sasl_continue("admin", sasl_continue_command("c=biws"));
    QVERIFY(!no_session);
    QCOMPARE(no_session.error().code, 17);
    QCOMPARE(q(no_session.error().message), QString("No SASL session state found"));

    auto unsupported = session.sasl_start("admin", sasl_start_command("SCRAM-SHA-512", "n,,n=alice,r=abcdef", true));
    QVERIFY(!unsupported);
    QCOMPARE(unsupported.error().code, 2);
    QCOMPARE(q(unsupported.error().message),
             QString("Unsupported mechanism 'SCRAM-SHA-512' on authentication database 'admin'"));
    auto external = session.sasl_start("$external", sasl_start_command("SCRAM-SHA-256", "n,,n=alice,r=abcdef", true));
    QVERIFY(!external);
    QCOMPARE(external.error().code, 2);

    {
        bson::builder b;
        b.append("saslStart", 1);
        b.append("mechanism", "SCRAM-SHA-256");
        auto missing = session.sasl_start("admin", b.extract());
        QVERIFY(!missing);
        QCOMPARE(missing.error().code, 40414);
        QCOMPARE(q(missing.error().message), QString("BSON field 'saslStart.payload' is missing but a required field"));
    }
    {
        bson::builder b;
        b.append("saslStart", 1);
        b.append("mechanism", 5);
        b.append("payload", bson::binary{0, {}});
        auto mistyped = session.sasl_start("admin", b.extract());
        QVERIFY(!mistyped);
        QCOMPARE(mistyped.error().code, 14);
    }
    {
        bson::builder b;
        b.append("saslStart", 1);
        b.append("mechanism", "SCRAM-SHA-256");
        b.append("payload", bson::binary{0, {}});
        b.open_document("options");
        b.append("skipEmptyExchange", 1);
        b.close_document();
        auto bad_option = session.sasl_start("admin", b.extract());
        QVERIFY(!bad_option);
        QCOMPARE(bad_option.error().code, 2);
    }

    // Unknown user: 18 at saslStart, and no conversation is left behind.
    auto unknown = session.sasl_start("admin", sasl_start_command("SCRAM-SHA-256", "n,,n=nobody,r=abcdefgh", true));
    QVERIFY(!unknown);
    QCOMPARE(unknown.error().code, 18);
    QCOMPARE(q(unknown.error().message), QString("Authentication failed."));
    QVERIFY(!session.in_conversation());

    // Wrong password: 18 at saslContinue; the conversation is gone afterwards.
    scram_client wrong(auth::mechanism::scram_sha_256, "alice", "nope", client_nonce);
    auto start = session.sasl_start("admin", sasl_start_command("SCRAM-SHA-256", wrong.first(), true));
    QVERIFY(start);
    auto bad_id = session.sasl_continue("admin", sasl_continue_command("x", 2));
    QVERIFY(!bad_id);
    QCOMPARE(bad_id.error().code, 17);
    auto other_db = session.sasl_continue("test", sasl_continue_command("x"));
    QVERIFY(!other_db);
    QCOMPARE(other_db.error().code, 17);
    QVERIFY(session.in_conversation());
    auto failed = session.sasl_continue("admin", sasl_continue_command(wrong.final(payload_of(start.value()))));
    QVERIFY(!failed);
    QCOMPARE(failed.error().code, 18);
    QVERIFY(!session.in_conversation());
    QVERIFY(!session.user());
    QCOMPARE(session.sasl_continue("admin", sasl_continue_command("")).error().code, 17);

    // A saslStart that does not parse leaves the conversation in progress alone; one that does replaces it.
    scram_client first(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);
    auto a = session.sasl_start("admin", sasl_start_command("SCRAM-SHA-256", first.first(), true));
    QVERIFY(a);
    bson::builder unparsable;
    unparsable.append("saslStart", 1);
    unparsable.append("payload", bson::binary{0, {}});
    QCOMPARE(session.sasl_start("admin", unparsable.extract()).error().code, 40414);
    QVERIFY(session.in_conversation());
    scram_client second(auth::mechanism::scram_sha_1, "sha1only", "pw1", "secondClientNonce");
    auto b = session.sasl_start("admin", sasl_start_command("SCRAM-SHA-1", second.first(), true));
    QVERIFY(b);
    QVERIFY(!session.sasl_continue("admin", sasl_continue_command(first.final(payload_of(a.value())))));
    QVERIFY(!session.in_conversation());
}

void SimAuthTest::base64StringPayload() {
    // Old shells send the payload as a base64 string; mongod answers in kind.
    const auto store = make_store();
    auth::auth_session session(*store);
    scram_client client(auth::mechanism::scram_sha_1, "alice", "s3cret", client_nonce);
    bson::builder b;
    b.append("saslStart", 1);
    b.append("mechanism", "SCRAM-SHA-1");
    b.append("payload", b64(client.first()));
    auto start = session.sasl_start("admin", b.extract());
    QVERIFY2(start, why(start));
    QVERIFY(start.value()["payload"].type() == bson::type::string);
    const std::string server_first = unb64(std::string(start.value()["payload"].get_string()));
    QVERIFY(server_first.rfind("r=" + client_nonce, 0) == 0);

    bson::builder c;
    c.append("saslContinue", 1);
    c.append("conversationId", 1);
    c.append("payload", b64(client.final(server_first)));
    auto cont = session.sasl_continue("admin", c.extract());
    QVERIFY2(cont, why(cont));
    QCOMPARE(q(unb64(std::string(cont.value()["payload"].get_string()))), q(client.expected_server_final()));

    bson::builder bad;
    bad.append("saslStart", 1);
    bad.append("mechanism", "SCRAM-SHA-1");
    bad.append("payload", "not base64!");
    QCOMPARE(session.sasl_start("admin", bad.extract()).error().code, 2);
}

void SimAuthTest::plainCommand() {
    const auto store = make_store();
    auth::auth_session session(*store);
    // The auth spec's PLAIN example shape: one saslStart, done at once, empty payload.
    auto r =
        session.sasl_start("$external", sasl_start_command("PLAIN", plain_payload("", "ldapuser", "ldap-pw"), false));
    QVERIFY2(r, why(r));
    QCOMPARE(r.value()["done"].get_bool(), true);
    QCOMPARE(q(payload_of(r.value())), QString());
    QCOMPARE(r.value()["conversationId"].get_int32(), 1);
    QVERIFY(!session.in_conversation());
    QCOMPARE(q(session.user()->name), QString("ldapuser"));

    auth::auth_session other(*store);
    auto bad = other.sasl_start("$external", sasl_start_command("PLAIN", plain_payload("", "ldapuser", "x"), false));
    QVERIFY(!bad);
    QCOMPARE(bad.error().code, 18);
    QVERIFY(!other.user());
    auto admin = other.sasl_start("admin", sasl_start_command("PLAIN", plain_payload("", "alice", "s3cret"), false));
    QVERIFY2(admin, why(admin));
}

void SimAuthTest::authenticateCommand() {
    const auto store = make_store();
    auth::auth_session session(*store);
    const auto command = [](const char* mech, std::optional<std::string> user) {
        bson::builder b;
        b.append("authenticate", 1);
        b.append("mechanism", mech);
        if (user) b.append("user", *user);
        return b.extract();
    };

    auto r = session.authenticate("$external", command("MONGODB-X509", std::nullopt), client_subject);
    QVERIFY2(r, why(r));
    std::vector<std::string> keys;
    for (const auto& e : r.value()) keys.emplace_back(e.key());
    QCOMPARE(keys, (std::vector<std::string>{"dbname", "user", "ok"}));
    QCOMPARE(q(std::string(r.value()["dbname"].get_string())), QString("$external"));
    QCOMPARE(q(std::string(r.value()["user"].get_string())), q(client_subject));
    QCOMPARE(q(session.user()->name), q(client_subject));

    QVERIFY(session.authenticate("$external", command("MONGODB-X509", client_subject), client_subject));
    QCOMPARE(session.authenticate("$external", command("MONGODB-X509", std::string("CN=x")), client_subject)
                 .error()
                 .code,
             18);
    QCOMPARE(session.authenticate("$external", command("MONGODB-X509", std::nullopt), "CN=nobody").error().code, 11);
    QCOMPARE(session.authenticate("admin", command("MONGODB-X509", std::nullopt), client_subject).error().code, 17);
    QCOMPARE(session.authenticate("$external", command("MONGODB-X509", std::nullopt), "").error().code, 18);
    // Anything but X.509 through authenticate: mongod masks the BadValue as 18.
    QCOMPARE(session.authenticate("admin", command("SCRAM-SHA-1", std::string("alice")), client_subject).error().code,
             18);
    bson::builder b;
    b.append("authenticate", 1);
    QCOMPARE(session.authenticate("$external", b.extract(), client_subject).error().code, 40414);
}

void SimAuthTest::speculativeScram() {
    const auto store = make_store();
    for (auto m : {auth::mechanism::scram_sha_1, auth::mechanism::scram_sha_256}) {
        auth::auth_session session(*store);
        scram_client client(m, "alice", "s3cret", client_nonce);
        // PyMongo's speculative document: the saslStart command plus "db".
        const auto spec = sasl_start_command(std::string(auth::mechanism_name(m)), client.first(), true, "admin");
        auto r = session.speculative_authenticate(spec);
        QVERIFY2(r, why(r));
        QVERIFY(r.value());
        const bson::document& reply = *r.value();
        std::vector<std::string> keys;
        for (const auto& e : reply) keys.emplace_back(e.key());
        // What mongod puts under hello's speculativeAuthenticate: no "ok".
        QCOMPARE(keys, (std::vector<std::string>{"conversationId", "done", "payload"}));
        QCOMPARE(reply["done"].get_bool(), false);
        QVERIFY(session.in_conversation());

        // The conversation goes on with an ordinary saslContinue.
        auto cont = session.sasl_continue("admin", sasl_continue_command(client.final(payload_of(reply))));
        QVERIFY2(cont, why(cont));
        QCOMPARE(cont.value()["done"].get_bool(), true);
        QCOMPARE(q(payload_of(cont.value())), q(client.expected_server_final()));
        QCOMPARE(q(session.user()->name), QString("alice"));
    }
}

void SimAuthTest::speculativeFailures() {
    const auto store = make_store();
    auth::auth_session session(*store);
    scram_client client(auth::mechanism::scram_sha_256, "alice", "s3cret", client_nonce);

    // Without "db" mongod does not even try.
    auto no_db = session.speculative_authenticate(sasl_start_command("SCRAM-SHA-256", client.first(), true));
    QVERIFY(no_db);
    QVERIFY(!no_db.value());
    QVERIFY(!session.in_conversation());

    // Unknown user: the field is left out of hello, nothing else happens.
    scram_client stranger(auth::mechanism::scram_sha_256, "nobody", "x", client_nonce);
    auto unknown = session.speculative_authenticate(
        sasl_start_command("SCRAM-SHA-256", stranger.first(), true, "admin"));
    QVERIFY(unknown);
    QVERIFY(!unknown.value());
    QVERIFY(!session.in_conversation());

    // PLAIN is never speculative.
    auto plain = session.speculative_authenticate(
        sasl_start_command("PLAIN", plain_payload("", "ldapuser", "ldap-pw"), true, "$external"));
    QVERIFY(plain);
    QVERIFY(!plain.value());
    QVERIFY(!session.user());

    // A document naming another command fails the hello itself.
    bson::builder b;
    b.append("find", "users");
    b.append("db", "admin");
    auto unknown_command = session.speculative_authenticate(b.extract());
    QVERIFY(!unknown_command);
    QCOMPARE(unknown_command.error().code, 51769);
    QCOMPARE(q(unknown_command.error().message), QString("hello.speculativeAuthenticate unknown command: find"));
}

void SimAuthTest::speculativeX509() {
    const auto store = make_store();
    const auto spec = [](std::optional<std::string> user) {
        bson::builder b;
        b.append("authenticate", 1);
        b.append("mechanism", "MONGODB-X509");
        if (user) b.append("user", *user);
        return b.extract();
    };
    auth::auth_session session(*store);
    auto r = session.speculative_authenticate(spec(std::nullopt), client_subject);
    QVERIFY2(r, why(r));
    QVERIFY(r.value());
    std::vector<std::string> keys;
    for (const auto& e : *r.value()) keys.emplace_back(e.key());
    QCOMPARE(keys, (std::vector<std::string>{"dbname", "user"}));
    QCOMPARE(q(std::string((*r.value())["user"].get_string())), q(client_subject));
    QCOMPARE(q(session.user()->name), q(client_subject));

    auth::auth_session other(*store);
    auto wrong_user = other.speculative_authenticate(spec(std::string("CN=x")), client_subject);
    QVERIFY(wrong_user && !wrong_user.value());
    auto no_cert = other.speculative_authenticate(spec(std::nullopt), "");
    QVERIFY(no_cert && !no_cert.value());
    auto unknown = other.speculative_authenticate(spec(std::nullopt), "CN=nobody");
    QVERIFY(unknown && !unknown.value());
    QVERIFY(!other.user());
}

void SimAuthTest::errorReply() {
    const auto doc = auth::make_error_reply(auth::authentication_failed("secret detail"));
    std::vector<std::string> keys;
    for (const auto& e : doc) keys.emplace_back(e.key());
    QCOMPARE(keys, (std::vector<std::string>{"ok", "errmsg", "code", "codeName"}));
    QCOMPARE(doc["ok"].get_double(), 0.0);
    QCOMPARE(q(std::string(doc["errmsg"].get_string())), QString("Authentication failed."));
    QCOMPARE(doc["code"].get_int32(), 18);
    QCOMPARE(q(std::string(doc["codeName"].get_string())), QString("AuthenticationFailed"));

    const auto reply = auth::make_sasl_reply(true, "v=abc");
    QCOMPARE(reply["conversationId"].get_int32(), 1);
    QCOMPARE(q(payload_of(reply)), QString("v=abc"));
}

QTEST_APPLESS_MAIN(SimAuthTest)

#include "sim_auth_test.moc"
