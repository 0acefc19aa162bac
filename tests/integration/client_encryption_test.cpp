// Explicit client-side field-level encryption (trellis::client_encryption) against trellis-sim:
// kmsProviders and tlsOptions validation, data keys in the key vault (local KMS, and aws and azure
// through tests/support/mock_kms.py over verified TLS), deterministic and random encryption,
// decryption, a missing key, the key management queries, rewrap local -> local and local -> aws ->
// local, KMS failures (untrusted or misnamed certificate, error reply, refused, silent), the async
// faces, and a typed error for every bad input.
#include <QtTest/QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <random>
#include <set>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/client_encryption.hpp"
#include "trellis/sim/deployment.hpp"
#include "encryption/crypt_core.hpp"
#include "fail_point.hpp"
#include "mock_kms.hpp"
#include "sim_rig.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bson = trellis::bson;
using trellis::errc;

namespace {

using trellis_test::doc;

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed = 0) {
    std::mt19937 gen(12345 + seed + static_cast<unsigned>(n));
    std::vector<std::uint8_t> out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>(gen());
    return out;
}

// A local master key (the same for the same seed).
bson::document local_providers(std::size_t key_size = 96, unsigned seed = 0) {
    bson::builder b;
    b.open_document("local").append("key", bson::binary{bson::binary_subtype::generic, random_bytes(key_size, seed)}).close_document();
    return b.extract();
}

// The error code and message of what f throws (fails the test when it throws nothing).
template <class F>
std::pair<std::error_code, std::string> thrown(F&& f) {
    try {
        f();
    } catch (const trellis::error& e) {
        return {e.code(), e.what()};
    }
    return {};
}

// local and aws (the mock's credentials are not checked).
bson::document local_and_aws() {
    bson::builder b;
    b.concat(local_providers());
    b.open_document("aws").append("accessKeyId", "AKIAMOCK").append("secretAccessKey", "mock-secret").close_document();
    return b.extract();
}

bson::document aws_master_key(const std::string& endpoint, const std::string& key = "mock-key") {
    bson::builder b;
    b.append("region", "us-east-1").append("key", "arn:aws:kms:us-east-1:000000000000:key/" + key).append("endpoint", endpoint);
    return b.extract();
}

bson::document id_filter_of(const bson::uuid& id) {
    bson::builder b;
    b.append("_id", id);
    return b.extract();
}

// A loopback TCP socket: listening (connects succeed, nothing is ever answered) or not (refused).
struct loopback_socket {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    std::uint16_t port = 0;
    explicit loopback_socket(bool listening) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || (listening && ::listen(fd, 4) != 0))
            throw std::runtime_error("loopback socket");
        port = ntohs(a.sin_port);
    }
    ~loopback_socket() { ::close(fd); }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }
};

#define EXPECT_ERROR(expr, code, text)                                                        \
    do {                                                                                      \
        const auto [ec_, what_] = thrown([&] { (void)(expr); });                              \
        QVERIFY2(ec_ == trellis::make_error_code(code), (std::string("got: ") + what_).c_str()); \
        QVERIFY2(what_.find(text) != std::string::npos, what_.c_str());                       \
    } while (0)

}  // namespace

class ClientEncryptionTest : public QObject {
    Q_OBJECT

    std::unique_ptr<trellis_test::sim_rig> rig_;
    std::unique_ptr<trellis_test::mock_kms> kms_;

    // local and aws, the mock's CA trusted for aws.
    trellis::client_encryption_options aws_options() {
        auto o = options(local_and_aws());
        bson::builder tls;
        tls.open_document("aws").append("tlsCAFile", kms_->ca_file()).close_document();
        o.tls_options = tls.extract();
        return o;
    }

    trellis::client_encryption_options options(bson::document providers, std::string ns = "keyvault.datakeys") {
        trellis::client_encryption_options o;
        o.key_vault_client = rig_->client.get();
        o.key_vault_namespace = std::move(ns);
        o.kms_providers = std::move(providers);
        return o;
    }
    trellis::collection vault() { return (*rig_->client)["keyvault"]["datakeys"]; }

private slots:
    void initTestCase() {
        rig_ = std::make_unique<trellis_test::sim_rig>();
        kms_ = std::make_unique<trellis_test::mock_kms>();
    }
    void cleanupTestCase() {
        kms_.reset();
        rig_.reset();
    }
    void init() { vault().drop(); }

    void options_are_validated() {
        auto no_client = options(local_providers());
        no_client.key_vault_client = nullptr;
        EXPECT_ERROR(trellis::client_encryption(no_client), errc::configuration_error, "key_vault_client");
        for (const char* ns : {"datakeys", ".coll", "db.", ""})
            EXPECT_ERROR(trellis::client_encryption(options(local_providers(), ns)), errc::configuration_error,
                         "key_vault_namespace");
        EXPECT_ERROR(trellis::client_encryption(options(bson::document())), errc::configuration_error,
                     "no KMS provider");
        EXPECT_ERROR(trellis::client_encryption(options(local_providers(95))), errc::configuration_error,
                     "kmsProviders.local: key must be 96 bytes, got 95");
        struct bad {
            const char* json;
            const char* message;
        };
        const bad cases[] = {
            {R"({"local": {}})", "kmsProviders.local: empty: on-demand KMS credentials are not supported"},
            {R"({"aws": {}})", "kmsProviders.aws: empty"},
            {R"({"local": {"key": "not base64!"}})", "kmsProviders.local: key is not valid base64"},
            {R"({"local": {"key": 5}})", "kmsProviders.local: key must be binary or a base64 string"},
            {R"({"aws": {"accessKeyId": "a"}})", "kmsProviders.aws: missing required field \"secretAccessKey\""},
            {R"({"aws": {"accessKeyId": "a", "secretAccessKey": 1}})", "kmsProviders.aws: secretAccessKey must be a string"},
            {R"({"aws": {"accessKeyId": "a", "secretAccessKey": "b", "region": "x"}})",
             "kmsProviders.aws: unknown field \"region\""},
            {R"({"azure": {"tenantId": "t", "clientId": "c"}})", "kmsProviders.azure: missing required field \"clientSecret\""},
            {R"({"azure": {"accessToken": "x", "tenantId": "t"}})", "kmsProviders.azure: accessToken excludes"},
            {R"({"gcp": {"email": "e"}})", "kmsProviders.gcp: missing required field \"privateKey\""},
            {R"({"kmip": {"foo": "x"}})", "kmsProviders.kmip: unknown field \"foo\""},
            {R"({"kmip": {"endpoint": ""}})", "kmsProviders.kmip: endpoint is empty"},
            {R"({"vault": {"key": "x"}})", "kmsProviders.vault: unknown KMS provider"},
            {R"({"local:name1": {"key": "x"}})", "kmsProviders.local:name1: named KMS providers"},
            {R"({"local": 1})", "kmsProviders.local: must be a document"},
        };
        for (const auto& c : cases)
            EXPECT_ERROR(trellis::client_encryption(options(doc(c.json))), errc::configuration_error, c.message);
        // Every provider with its credentials is accepted (remote ones are not contacted).
        bson::builder all;
        all.open_document("aws").append("accessKeyId", "a").append("secretAccessKey", "s").close_document();
        all.open_document("azure").append("tenantId", "t").append("clientId", "c").append("clientSecret", "s").close_document();
        all.open_document("gcp").append("email", "e").append("privateKey", "cHJpdmF0ZUtleQo=").close_document();
        all.open_document("kmip").append("endpoint", "localhost:5698").close_document();
        all.concat(local_providers());
        trellis::client_encryption ok(options(all.extract()));
        Q_UNUSED(ok);
    }

    void create_data_key_stores_the_key() {
        trellis::client_encryption ce(options(local_providers()));
        trellis::data_key_options o;
        o.key_alt_names = {"alpha", "beta"};
        const bson::uuid id = ce.create_data_key("local", o);
        const auto stored = vault().find_one(doc("{}"));
        QVERIFY(stored);
        QCOMPARE((*stored)["_id"].type(), bson::type::binary);
        QCOMPARE((*stored)["_id"].get_binary().subtype, bson::binary_subtype::uuid);
        QVERIFY((*stored)["_id"].get_uuid() == id);
        QCOMPARE((*stored)["masterKey"].get_document()["provider"].get_string(), std::string_view("local"));
        QCOMPARE((*stored)["keyAltNames"].get_array().size(), std::size_t(2));
        std::set<std::string_view> names;
        for (const auto& n : (*stored)["keyAltNames"].get_array()) names.insert(n.get_string());
        QVERIFY((names == std::set<std::string_view>{"alpha", "beta"}));
        QCOMPARE((*stored)["keyMaterial"].type(), bson::type::binary);
        // The insert went with writeConcern majority.
        const auto inserts = rig_->sent("insert");
        QVERIFY(!inserts.empty());
        QCOMPARE(inserts.back()["writeConcern"].get_document()["w"].get_string(), std::string_view("majority"));
        // A key from given material works.
        trellis::data_key_options m;
        m.key_material = random_bytes(96);
        const bson::uuid id2 = ce.create_data_key("local", m);
        trellis::encrypt_options e;
        e.key_id = id2;
        e.algorithm = std::string(trellis::encryption_algorithm::random);
        const auto c = ce.encrypt(std::string("with material"), e);
        QCOMPARE(ce.decrypt(c.get().get_binary()).get().get_string(), std::string_view("with material"));
    }

    void create_data_key_bad_input() {
        trellis::client_encryption ce(options(local_providers()));
        EXPECT_ERROR(ce.create_data_key("aws"), errc::invalid_argument, "\"aws\" is not configured");
        trellis::data_key_options short_material;
        short_material.key_material = random_bytes(10);
        EXPECT_ERROR(ce.create_data_key("local", short_material), errc::invalid_argument, "key_material must be 96 bytes, got 10");
        trellis::data_key_options mk;
        mk.master_key = doc(R"({"region": "x"})");
        EXPECT_ERROR(ce.create_data_key("local", mk), errc::invalid_argument, "local provider takes no master_key");
        trellis::data_key_options empty_name;
        empty_name.key_alt_names = {""};
        EXPECT_ERROR(ce.create_data_key("local", empty_name), errc::invalid_argument, "key_alt_name is empty");
        QCOMPARE(vault().count_documents(doc("{}")), std::int64_t(0));
    }

    void remote_master_key_is_required() {
        bson::builder p;
        p.open_document("aws").append("accessKeyId", "a").append("secretAccessKey", "s").close_document();
        trellis::client_encryption ce(options(p.extract()));
        trellis::data_key_options no_key;
        EXPECT_ERROR(ce.create_data_key("aws", no_key), errc::invalid_argument, "masterKey");
        QCOMPARE(vault().count_documents(doc("{}")), std::int64_t(0));
    }

    void encrypt_and_decrypt() {
        trellis::client_encryption ce(options(local_providers()));
        trellis::data_key_options o;
        o.key_alt_names = {"name"};
        const bson::uuid id = ce.create_data_key("local", o);
        trellis::encrypt_options det;
        det.key_id = id;
        det.algorithm = std::string(trellis::encryption_algorithm::deterministic);
        const auto a = ce.encrypt(std::string("secret"), det);
        const auto b = ce.encrypt(std::string("secret"), det);
        QCOMPARE(a.type(), bson::type::binary);
        QCOMPARE(a.get().get_binary().subtype, bson::binary_subtype::encrypted);
        QVERIFY(a.box() == b.box());  // deterministic: the same ciphertext
        trellis::encrypt_options rnd;
        rnd.key_alt_name = "name";
        rnd.algorithm = std::string(trellis::encryption_algorithm::random);
        const auto c = ce.encrypt(std::string("secret"), rnd);
        const auto d = ce.encrypt(std::string("secret"), rnd);
        QCOMPARE(c.get().get_binary().subtype, bson::binary_subtype::encrypted);
        QVERIFY(!(c.box() == d.box()));  // random: a new IV each time
        QVERIFY(!(a.box() == c.box()));
        for (const auto* x : {&a, &c, &d})
            QCOMPARE(ce.decrypt(x->get().get_binary()).get().get_string(), std::string_view("secret"));
        // Other types come back as they were.
        const auto n = ce.encrypt(std::int64_t(42), rnd);
        const auto nd = ce.decrypt(n.get().get_binary());
        QCOMPARE(nd.type(), bson::type::int64);
        QCOMPARE(nd.get().get_int64(), std::int64_t(42));
        const bson::document sub = doc(R"({"a": [1, {"b": "c"}]})");
        const auto s = ce.encrypt(sub.view()["a"], rnd);
        QVERIFY(ce.decrypt(s.get().get_binary()).get().get_array() == sub.view()["a"].get_array());
    }

    void missing_key_is_an_error() {
        const bson::document providers = local_providers();
        trellis::client_encryption ce(options(providers));
        const bson::uuid id = ce.create_data_key("local");
        trellis::encrypt_options o;
        o.key_id = id;
        o.algorithm = std::string(trellis::encryption_algorithm::deterministic);
        const auto secret = ce.encrypt(std::string("v"), o);
        // No such key id, no such alt name.
        trellis::encrypt_options unknown = o;
        unknown.key_id = bson::uuid::parse("00000000-0000-4000-8000-000000000000");
        EXPECT_ERROR(ce.encrypt(std::string("v"), unknown), errc::invalid_argument, "not all keys requested were satisfied");
        trellis::encrypt_options unknown_name;
        unknown_name.key_alt_name = "nobody";
        unknown_name.algorithm = o.algorithm;
        EXPECT_ERROR(ce.encrypt(std::string("v"), unknown_name), errc::invalid_argument, "not all keys requested were satisfied");
        // The key deleted: a client_encryption without it cached cannot decrypt.
        QCOMPARE(ce.delete_key(id).deleted_count, std::int64_t(1));
        trellis::client_encryption fresh(options(providers));
        EXPECT_ERROR(fresh.decrypt(secret.get().get_binary()), errc::invalid_argument, "not all keys requested were satisfied");
        EXPECT_ERROR(fresh.decrypt(secret.get().get_binary()), errc::invalid_argument, "(key vault keyvault.datakeys, filter {");
        // Another local master key cannot unwrap the key.
        trellis::client_encryption wrong(options(local_providers(96, 7)));
        const bson::uuid id2 = ce.create_data_key("local");
        trellis::encrypt_options o2 = o;
        o2.key_id = id2;
        EXPECT_ERROR(wrong.encrypt(std::string("v"), o2), errc::invalid_argument, "HMAC validation failure");
    }

    void encrypt_decrypt_bad_input() {
        trellis::client_encryption ce(options(local_providers()));
        const bson::uuid id = ce.create_data_key("local");
        trellis::encrypt_options none;
        none.algorithm = std::string(trellis::encryption_algorithm::random);
        EXPECT_ERROR(ce.encrypt(1, none), errc::invalid_argument, "exactly one of key_id and key_alt_name");
        trellis::encrypt_options both = none;
        both.key_id = id;
        both.key_alt_name = "x";
        EXPECT_ERROR(ce.encrypt(1, both), errc::invalid_argument, "exactly one of key_id and key_alt_name");
        trellis::encrypt_options alg;
        alg.key_id = id;
        alg.algorithm = "Indexed";
        EXPECT_ERROR(ce.encrypt(1, alg), errc::invalid_argument, "algorithm \"Indexed\" is not supported");
        alg.algorithm = "";
        EXPECT_ERROR(ce.encrypt(1, alg), errc::invalid_argument, "is not supported");
        const std::vector<std::uint8_t> bytes{1, 2, 3};
        EXPECT_ERROR(ce.decrypt(bson::binary{bson::binary_subtype::generic, bytes}), errc::invalid_argument,
                     "binary subtype 0, not 6");
        EXPECT_ERROR(ce.decrypt(bson::binary{bson::binary_subtype::encrypted, bytes}), errc::invalid_argument, "decrypt");
        // Deterministic encryption refuses values it cannot encrypt deterministically (a document).
        trellis::encrypt_options det;
        det.key_id = id;
        det.algorithm = std::string(trellis::encryption_algorithm::deterministic);
        EXPECT_ERROR(ce.encrypt(doc(R"({"a": 1})").view(), det), errc::invalid_argument, "encrypt");
        // Already encrypted.
        const auto once = ce.encrypt(1, det);
        EXPECT_ERROR(ce.encrypt(once.get(), det), errc::invalid_argument, "already encrypted");
    }

    void key_management() {
        trellis::client_encryption ce(options(local_providers()));
        const bson::uuid a = ce.create_data_key("local");
        trellis::data_key_options named;
        named.key_alt_names = {"one"};
        const bson::uuid b = ce.create_data_key("local", named);
        QVERIFY(ce.get_key(a));
        QVERIFY((*ce.get_key(a))["_id"].get_uuid() == a);
        QVERIFY(!ce.get_key(*bson::uuid::parse("00000000-0000-4000-8000-000000000000")));
        std::size_t n = 0;
        for (const auto& k : ce.get_keys()) {
            Q_UNUSED(k);
            ++n;
        }
        QCOMPARE(n, std::size_t(2));
        // add: the key as it was; $addToSet keeps names unique.
        const auto before = ce.add_key_alt_name(a, "first");
        QVERIFY(before);
        QVERIFY(!before->contains("keyAltNames"));
        QVERIFY(ce.add_key_alt_name(a, "second"));
        const auto again = ce.add_key_alt_name(a, "second");
        QCOMPARE((*again)["keyAltNames"].get_array().size(), std::size_t(2));
        QVERIFY(!ce.add_key_alt_name(*bson::uuid::parse("00000000-0000-4000-8000-000000000000"), "x"));
        QVERIFY((*ce.get_key_by_alt_name("first"))["_id"].get_uuid() == a);
        QVERIFY((*ce.get_key_by_alt_name("one"))["_id"].get_uuid() == b);
        QVERIFY(!ce.get_key_by_alt_name("none"));
        // remove: one name goes; the last one takes the field with it.
        const auto r1 = ce.remove_key_alt_name(a, "first");
        QCOMPARE((*r1)["keyAltNames"].get_array().size(), std::size_t(2));
        QCOMPARE((*ce.get_key(a))["keyAltNames"].get_array().size(), std::size_t(1));
        QCOMPARE((*ce.get_key(a))["keyAltNames"].get_array()[0].get_string(), std::string_view("second"));
        QVERIFY(ce.remove_key_alt_name(a, "absent"));
        QCOMPARE((*ce.get_key(a))["keyAltNames"].get_array().size(), std::size_t(1));
        ce.remove_key_alt_name(a, "second");
        QVERIFY(!ce.get_key(a)->contains("keyAltNames"));
        QVERIFY(!ce.get_key_by_alt_name("second"));
        // The update went as the spec's pipeline.
        const auto fam = rig_->sent("findAndModify").back();
        QCOMPARE(fam["update"].type(), bson::type::array);
        const bson::document spec = doc(
            R"({"u": [{"$set": {"keyAltNames": {"$cond": [{"$eq": ["$keyAltNames", ["second"]]}, "$$REMOVE", {"$filter": {"input": "$keyAltNames", "cond": {"$ne": ["$$this", "second"]}}}]}}}]})");
        QVERIFY2(fam["update"].get_array() == spec["u"].get_array(),
                 bson::to_json(fam["update"].get_array(), bson::json_mode::relaxed).c_str());
        // delete
        QCOMPARE(ce.delete_key(b).deleted_count, std::int64_t(1));
        QCOMPARE(ce.delete_key(b).deleted_count, std::int64_t(0));
        QVERIFY(!ce.get_key(b));
    }

    void rewrap_local_to_local() {
        const bson::document providers = local_providers();
        trellis::client_encryption ce(options(providers));
        trellis::data_key_options named;
        named.key_alt_names = {"k"};
        const bson::uuid id = ce.create_data_key("local", named);
        ce.create_data_key("local");
        trellis::encrypt_options o;
        o.key_id = id;
        o.algorithm = std::string(trellis::encryption_algorithm::deterministic);
        const auto secret = ce.encrypt(std::string("kept"), o);
        const bson::document material = (*ce.get_key(id));
        rig_->forget();
        trellis::rewrap_many_data_key_options to_local;
        to_local.provider = "local";
        const auto result = ce.rewrap_many_data_key(doc(R"({"keyAltNames": "k"})"), to_local);
        QVERIFY(result.bulk_write_result);
        QCOMPARE(result.bulk_write_result->matched_count, std::int64_t(1));
        QCOMPARE(result.bulk_write_result->modified_count, std::int64_t(1));
        const bson::document after = *ce.get_key(id);
        QVERIFY(!(after["keyMaterial"].get_binary().bytes.size() == material["keyMaterial"].get_binary().bytes.size() &&
                  std::equal(after["keyMaterial"].get_binary().bytes.begin(), after["keyMaterial"].get_binary().bytes.end(),
                             material["keyMaterial"].get_binary().bytes.begin())));
        QCOMPARE(after["updateDate"].type(), bson::type::date_time);
        QVERIFY(after["updateDate"].get_date_time().milliseconds >= material["updateDate"].get_date_time().milliseconds);
        // The update is the spec's: $set masterKey and keyMaterial, $currentDate updateDate.
        const auto updates = rig_->sent("update");  // owns what `update` views
        const auto update = updates.back()["updates"].get_array()[0].get_document()["u"].get_document();
        QVERIFY(update["$set"].get_document().contains("keyMaterial"));
        QVERIFY(update["$set"].get_document().contains("masterKey"));
        QVERIFY(update["$currentDate"].get_document()["updateDate"].get_bool());
        // The value encrypted before still decrypts, with a fresh cache.
        trellis::client_encryption fresh(options(providers));
        QCOMPARE(fresh.decrypt(secret.get().get_binary()).get().get_string(), std::string_view("kept"));
        // Without a provider every key keeps its own; an empty filter rewraps both.
        const auto all = ce.rewrap_many_data_key(doc("{}"));
        QCOMPARE(all.bulk_write_result->matched_count, std::int64_t(2));
        // Nothing matched: no bulk write.
        const auto none = ce.rewrap_many_data_key(doc(R"({"keyAltNames": "nobody"})"), to_local);
        QVERIFY(!none.bulk_write_result);
        // Bad input.
        trellis::rewrap_many_data_key_options mk_only;
        mk_only.master_key = doc(R"({"key": "x"})");
        EXPECT_ERROR(ce.rewrap_many_data_key(doc("{}"), mk_only), errc::invalid_argument, "master_key needs a provider");
        trellis::rewrap_many_data_key_options gcp;
        gcp.provider = "gcp";
        EXPECT_ERROR(ce.rewrap_many_data_key(doc("{}"), gcp), errc::invalid_argument, "\"gcp\" is not configured");
    }

    void aws_data_key_encrypt_decrypt() {
        trellis::client_encryption ce(aws_options());
        trellis::data_key_options o;
        o.master_key = aws_master_key(kms_->endpoint());
        o.key_alt_names = {"aws-key"};
        const bson::uuid id = ce.create_data_key("aws", o);
        const bson::document key = *ce.get_key(id);
        const auto mk = key["masterKey"].get_document();
        QCOMPARE(mk["provider"].get_string(), std::string_view("aws"));
        QCOMPARE(mk["endpoint"].get_string(), std::string_view(kms_->endpoint()));
        // The key material is what the mock's Encrypt made of it: the key id, a NUL, 96 masked bytes.
        const auto material = key["keyMaterial"].get_binary().bytes;
        const std::string prefix = "arn:aws:kms:us-east-1:000000000000:key/mock-key";
        QCOMPARE(material.size(), prefix.size() + 1 + 96);
        QVERIFY(std::equal(prefix.begin(), prefix.end(), material.begin()));
        trellis::encrypt_options eo;
        eo.key_alt_name = "aws-key";
        eo.algorithm = std::string(trellis::encryption_algorithm::random);
        const auto secret = ce.encrypt(std::string("through the KMS"), eo);
        // A fresh client_encryption has no key cache: decrypting asks the mock's Decrypt.
        trellis::client_encryption fresh(aws_options());
        QCOMPARE(fresh.decrypt(secret.get().get_binary()).get().get_string(), std::string_view("through the KMS"));
    }

    void rewrap_local_to_aws_and_back() {
        trellis::client_encryption ce(aws_options());
        trellis::data_key_options named;
        named.key_alt_names = {"moving"};
        const bson::uuid id = ce.create_data_key("local", named);
        trellis::encrypt_options eo;
        eo.key_id = id;
        eo.algorithm = std::string(trellis::encryption_algorithm::deterministic);
        const auto secret = ce.encrypt(std::int32_t(42), eo);
        trellis::rewrap_many_data_key_options to_aws;
        to_aws.provider = "aws";
        to_aws.master_key = aws_master_key(kms_->endpoint());
        const auto r1 = ce.rewrap_many_data_key(doc(R"({"keyAltNames": "moving"})"), to_aws);
        QVERIFY(r1.bulk_write_result);
        QCOMPARE(r1.bulk_write_result->modified_count, std::int64_t(1));
        QCOMPARE(ce.get_key(id)->view()["masterKey"].get_document()["provider"].get_string(), std::string_view("aws"));
        {
            trellis::client_encryption fresh(aws_options());
            QCOMPARE(fresh.decrypt(secret.get().get_binary()).get().get_int32(), 42);
        }
        trellis::rewrap_many_data_key_options to_local;
        to_local.provider = "local";
        const auto r2 = ce.rewrap_many_data_key(doc(R"({"keyAltNames": "moving"})"), to_local);
        QCOMPARE(r2.bulk_write_result->modified_count, std::int64_t(1));
        QCOMPARE(ce.get_key(id)->view()["masterKey"].get_document()["provider"].get_string(), std::string_view("local"));
        // Local only now: no aws provider needed to read it.
        trellis::client_encryption local_only(options(local_providers()));
        QCOMPARE(local_only.decrypt(secret.get().get_binary()).get().get_int32(), 42);
    }

    void azure_through_the_mock() {
        bson::builder p;
        p.open_document("azure")
            .append("tenantId", "tenant")
            .append("clientId", "client")
            .append("clientSecret", "secret")
            .append("identityPlatformEndpoint", kms_->endpoint())
            .close_document();
        auto o = options(p.extract());
        bson::builder tls;
        tls.open_document("azure").append("tlsCAFile", kms_->ca_file()).close_document();
        o.tls_options = tls.extract();
        trellis::client_encryption ce(std::move(o));
        trellis::data_key_options dk;
        bson::builder mk;
        mk.append("keyVaultEndpoint", kms_->endpoint()).append("keyName", "azure-key");
        dk.master_key = mk.extract();
        const bson::uuid id = ce.create_data_key("azure", dk);
        trellis::encrypt_options eo;
        eo.key_id = id;
        eo.algorithm = std::string(trellis::encryption_algorithm::random);
        const auto secret = ce.encrypt(std::string("azure"), eo);
        QCOMPARE(ce.decrypt(secret.get().get_binary()).get().get_string(), std::string_view("azure"));
    }

    void untrusted_or_misnamed_certificate_fails() {
        trellis::client_encryption ce(options(local_and_aws()));  // no tlsCAFile: the system's trust store
        trellis::data_key_options o;
        o.master_key = aws_master_key(kms_->endpoint());
        const std::string where = "KMS provider \"aws\" at " + kms_->endpoint();
        EXPECT_ERROR(ce.create_data_key("aws", o), errc::connection_failure, where + ": TLS handshake failed");
        EXPECT_ERROR(ce.create_data_key("aws", o), errc::connection_failure, "not issued by a trusted CA");
        // Trusted, but the certificate names 127.0.0.1 only.
        trellis::client_encryption trusting(aws_options());
        o.master_key = aws_master_key(kms_->misnamed_endpoint());
        EXPECT_ERROR(trusting.create_data_key("aws", o), errc::connection_failure,
                     "the KMS certificate does not name \"127.0.0.2\"");
        QCOMPARE(vault().count_documents(doc("{}")), std::int64_t(0));
    }

    void kms_error_reply_fails_with_its_message() {
        trellis::client_encryption ce(aws_options());
        trellis::data_key_options o;
        o.master_key = aws_master_key(kms_->endpoint(), "fail-me");
        EXPECT_ERROR(ce.create_data_key("aws", o), errc::operation_failure,
                     "KMS provider \"aws\" at " + kms_->endpoint());
        EXPECT_ERROR(ce.create_data_key("aws", o), errc::operation_failure,
                     "mock KMS: key arn:aws:kms:us-east-1:000000000000:key/fail-me does not exist");
        QCOMPARE(vault().count_documents(doc("{}")), std::int64_t(0));
    }

    void dead_or_silent_endpoint_fails() {
        const loopback_socket closed(false);
        trellis::client_encryption ce(aws_options());
        trellis::data_key_options o;
        o.master_key = aws_master_key(closed.endpoint());
        EXPECT_ERROR(ce.create_data_key("aws", o), errc::connection_failure,
                     "KMS provider \"aws\" at " + closed.endpoint() + ": connect failed");
        // Accepted by the kernel, never answered: kms_timeout.
        const loopback_socket silent(true);
        auto quick = aws_options();
        quick.kms_timeout = std::chrono::milliseconds(300);
        trellis::client_encryption impatient(std::move(quick));
        o.master_key = aws_master_key(silent.endpoint());
        QElapsedTimer t;
        t.start();
        EXPECT_ERROR(impatient.create_data_key("aws", o), errc::network_timeout,
                     "KMS provider \"aws\" at " + silent.endpoint() + ": no reply within 300 ms");
        QVERIFY2(t.elapsed() < 3000, std::to_string(t.elapsed()).c_str());
        // A key vault client with timeoutMS: it bounds the round trip instead.
        std::string uri = rig_->deployment->uri();
        uri += uri.find('?') == std::string::npos ? (uri.ends_with('/') ? "?" : "/?") : "&";
        trellis::client csot(uri + "timeoutMS=400");
        auto bounded = aws_options();
        bounded.key_vault_client = &csot;
        trellis::client_encryption with_csot(std::move(bounded));
        EXPECT_ERROR(with_csot.create_data_key("aws", o), errc::operation_timeout, "no reply within 400 ms");
    }

    void kms_endpoints_are_split() {
        using trellis::encryption::split_endpoint;
        using hp = std::pair<std::string, std::uint16_t>;
        QCOMPARE(split_endpoint("kms.us-east-1.amazonaws.com"), hp("kms.us-east-1.amazonaws.com", 443));
        QCOMPARE(split_endpoint("127.0.0.1:8443"), hp("127.0.0.1", 8443));
        QCOMPARE(split_endpoint("[::1]:5696"), hp("::1", 5696));
        QCOMPARE(split_endpoint("[::1]"), hp("::1", 443));
        QCOMPARE(split_endpoint("kmip.example", 5696), hp("kmip.example", 5696));
        for (const char* bad : {"", ":443", "host:", "host:x1", "host:65536", "host:0", "::1:443", "[::1", "[::1]x"})
            EXPECT_ERROR(split_endpoint(bad), errc::invalid_argument, "KMS endpoint \"" + std::string(bad) + "\"");
    }

    void tls_options_are_validated() {
        auto with = [&](const char* json) {
            auto o = options(local_and_aws());
            o.tls_options = doc(json);
            return o;
        };
        const std::vector<std::pair<const char*, const char*>> cases = {
            {R"({"aws": {"tlsInsecure": true}})", "tlsOptions.aws: Insecure TLS options prohibited: tlsInsecure"},
            {R"({"aws": {"tlsAllowInvalidCertificates": true}})", "Insecure TLS options prohibited: tlsAllowInvalidCertificates"},
            {R"({"aws": {"tlsAllowInvalidHostnames": false}})", "Insecure TLS options prohibited: tlsAllowInvalidHostnames"},
            {R"({"aws": {"tlsDisableCertificateRevocationCheck": true}})", "Insecure TLS options prohibited"},
            {R"({"aws": {"tls": false}})", "tlsOptions.aws: TLS is required"},
            {R"({"gcp": {"tlsCAFile": "x"}})", "tlsOptions.gcp: no such provider in kmsProviders"},
            {R"({"aws": {"tlsCAFile": 1}})", "tlsOptions.aws: tlsCAFile must be a non-empty string"},
            {R"({"aws": {"tlsCRLFile": "x"}})", "tlsOptions.aws: unknown option \"tlsCRLFile\""},
            {R"({"aws": {"tlsCertificateKeyFilePassword": "p"}})", "tlsCertificateKeyFilePassword without tlsCertificateKeyFile"},
            {R"({"aws": {"tlsCAFile": "/nonexistent/ca.pem"}})", "tlsOptions.aws: cannot load tlsCAFile /nonexistent/ca.pem"},
            {R"({"aws": {"tlsCertificateKeyFile": "/nonexistent/client.pem"}})",
             "tlsOptions.aws: cannot read tlsCertificateKeyFile /nonexistent/client.pem"},
        };
        for (const auto& [json, text] : cases)
            EXPECT_ERROR(trellis::client_encryption(with(json)), errc::configuration_error, text);
        // Allowed by the spec (no OCSP check is made here anyway).
        trellis::client_encryption ok(with(R"({"aws": {"tlsDisableOCSPEndpointCheck": true}})"));
        trellis::client_encryption_options zero = options(local_providers());
        zero.kms_timeout = std::chrono::milliseconds(0);
        EXPECT_ERROR(trellis::client_encryption(std::move(zero)), errc::configuration_error, "kms_timeout must be positive");
    }

    void async_faces() {
        namespace asio = boost::asio;
        trellis::client_encryption ce(aws_options());
        trellis::data_key_options dk;
        dk.master_key = aws_master_key(kms_->endpoint());
        dk.key_alt_names = {"async"};
        const bson::uuid id = ce.async_create_data_key("aws", dk, asio::use_future).get();
        trellis::encrypt_options eo;
        eo.key_id = id;
        eo.algorithm = std::string(trellis::encryption_algorithm::deterministic);
        const auto secret = ce.async_encrypt(trellis::owned_value::of(std::string("async")), eo, asio::use_future).get();
        QCOMPARE(secret.get().get_binary().subtype, bson::binary_subtype::encrypted);
        {
            trellis::client_encryption fresh(aws_options());  // no key cache: the mock's Decrypt
            QCOMPARE(fresh.async_decrypt(secret, asio::use_future).get().get().get_string(), std::string_view("async"));
        }
        QVERIFY(ce.async_get_key(id, asio::use_future).get());
        trellis::cursor keys = ce.async_get_keys(asio::use_future).get();
        int n = 0;
        for (const auto& k : keys) n += k["_id"].get_uuid() == id ? 1 : 0;
        QCOMPARE(n, 1);
        const auto before = ce.async_add_key_alt_name(id, "second", asio::use_future).get();
        QCOMPARE(before->view()["keyAltNames"].get_array().count(), std::size_t(1));
        QCOMPARE(ce.async_get_key_by_alt_name("second", asio::use_future).get()->view()["_id"].get_uuid(), id);
        ce.async_remove_key_alt_name(id, "second", asio::use_future).get();
        QVERIFY(!ce.async_get_key_by_alt_name("second", asio::use_future).get());
        trellis::rewrap_many_data_key_options to_local;
        to_local.provider = "local";
        const auto rewrapped = ce.async_rewrap_many_data_key(doc(R"({"keyAltNames": "async"})"), to_local, asio::use_future).get();
        QCOMPARE(rewrapped.bulk_write_result->modified_count, std::int64_t(1));
        QCOMPARE(ce.async_delete_key(id, asio::use_future).get().deleted_count, std::int64_t(1));

        // Errors arrive through the completion, typed.
        auto unknown = ce.async_create_data_key("gcp", {}, asio::use_future);
        EXPECT_ERROR(unknown.get(), errc::invalid_argument, "\"gcp\" is not configured");
        dk.master_key = aws_master_key(kms_->endpoint(), "fail-async");
        auto refused = ce.async_create_data_key("aws", dk, asio::use_future);
        EXPECT_ERROR(refused.get(), errc::operation_failure, "mock KMS: key arn:aws:kms:us-east-1:000000000000:key/fail-async");

        // use_awaitable from a coroutine on an io_context of the caller's, and a plain callback.
        asio::io_context io;
        std::string round_trip;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const bson::uuid local = co_await ce.async_create_data_key("local", {}, asio::use_awaitable);
                trellis::encrypt_options o;
                o.key_id = local;
                o.algorithm = std::string(trellis::encryption_algorithm::random);
                const trellis::owned_value plain = trellis::owned_value::of(std::string("awaited"));
                const trellis::owned_value c = co_await ce.async_encrypt(plain, o, asio::use_awaitable);
                const trellis::owned_value back = co_await ce.async_decrypt(c, asio::use_awaitable);
                round_trip = std::string(back.get().get_string());
            },
            asio::detached);
        io.run();
        QCOMPARE(round_trip, std::string("awaited"));
        std::promise<std::string> called;
        ce.async_decrypt(trellis::owned_value::of(std::string("not ciphertext")),
                         [&called](std::exception_ptr e, trellis::owned_value) {
                             try {
                                 if (e) std::rethrow_exception(e);
                                 called.set_value("no error");
                             } catch (const trellis::error& err) {
                                 called.set_value(err.what());
                             }
                         });
        const std::string what = called.get_future().get();
        QVERIFY2(what.find("decrypt: the value is not binary") != std::string::npos, what.c_str());
    }

    void async_operation_outlives_its_client_encryption() {
        auto ce = std::make_unique<trellis::client_encryption>(aws_options());
        trellis::data_key_options dk;
        dk.master_key = aws_master_key(kms_->endpoint());
        auto pending = ce->async_create_data_key("aws", dk, boost::asio::use_future);
        ce.reset();  // the operation keeps what it needs
        const bson::uuid id = pending.get();
        QCOMPARE(vault().count_documents(id_filter_of(id)), std::int64_t(1));
    }
};

QTEST_GUILESS_MAIN(ClientEncryptionTest)
#include "client_encryption_test.moc"
