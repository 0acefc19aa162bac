// The handshake without I/O: client metadata and its 512-byte truncation order, the initial
// hello's shape, what a reply gives a connection and how a bad reply is reported; the command
// monitoring spec's list of sensitive commands.
#include <QtTest/QtTest>

#include "connection/connection.hpp"
#include "connection/handshake.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace bson = trellis::bson;
namespace hs = trellis::handshake;
using trellis::errc;

namespace {

hs::metadata_facts facts() {
    hs::metadata_facts f;
    f.application_name = "app";
    f.driver_version = "0.1.0";
    f.os_type = "Linux";
    f.os_name = "Debian GNU/Linux 12 (bookworm)";
    f.os_architecture = "x86_64";
    f.os_version = "6.1.0";
    f.platform = "g++ 12.2 C++20, Boost 1.81";
    return f;
}

template <class F>
void expect_error(errc code, const std::string& fragment, F&& f) {
    try {
        f();
        QFAIL("no error");
    } catch (const trellis::error& e) {
        QVERIFY2(e.code() == code, e.what());
        QVERIFY2(std::string(e.what()).find(fragment) != std::string::npos, e.what());
    }
}

bson::document reply(const std::string& json) { return bson::from_json(json); }

}  // namespace

class HandshakeTest : public QObject {
    Q_OBJECT

private slots:
    void metadata_has_every_required_field() {
        const auto doc = hs::client_metadata(facts());
        QCOMPARE(doc["application"].get_document()["name"].get_string(), std::string_view("app"));
        QCOMPARE(doc["driver"].get_document()["name"].get_string(), std::string_view("trellis"));
        QCOMPARE(doc["driver"].get_document()["version"].get_string(), std::string_view("0.1.0"));
        QCOMPARE(doc["os"].get_document()["type"].get_string(), std::string_view("Linux"));
        QVERIFY(doc["os"].get_document().contains("architecture"));
        QVERIFY(!doc.contains("env"));  // omitted entirely when nothing would be in it
        QVERIFY(doc.size() <= hs::max_metadata_bytes);
    }

    void detected_platform_is_sensible() {
        const auto f = hs::detect_platform(std::string("x"));
        QCOMPARE(f.os_type, std::string("Linux"));
        QVERIFY(f.platform && f.platform->find("Boost 1.") != std::string::npos);
        QVERIFY(hs::client_metadata(f).size() <= hs::max_metadata_bytes);
    }

    void truncation_follows_the_spec_order() {
        // 1. env fields but name go first.
        auto f = facts();
        f.env.name = "aws.lambda";
        f.env.region = std::string(300, 'r');
        auto doc = hs::client_metadata(f);
        QVERIFY(doc.size() <= hs::max_metadata_bytes);
        QCOMPARE(doc["env"].get_document()["name"].get_string(), std::string_view("aws.lambda"));
        QVERIFY(!doc["env"].get_document().contains("region"));
        QVERIFY(doc["os"].get_document().contains("name"));  // untouched: not needed

        // 2. then os fields but type; 3. then env entirely.
        f = facts();
        f.env.name = std::string(150, 'n');
        f.os_name = std::string(250, 'o');
        doc = hs::client_metadata(f);
        QVERIFY(doc.size() <= hs::max_metadata_bytes);
        QVERIFY(!doc["os"].get_document().contains("name"));
        QCOMPARE(doc["os"].get_document()["type"].get_string(), std::string_view("Linux"));
        QVERIFY(doc.contains("env"));  // fits once os is trimmed

        f.env.name = std::string(400, 'n');
        doc = hs::client_metadata(f);
        QVERIFY(!doc.contains("env"));
        QCOMPARE(doc["platform"].get_string(), std::string_view(*f.platform));  // not cut: not needed

        // 4. then platform is cut, to exactly the limit.
        f = facts();
        f.platform = std::string(600, 'p');
        doc = hs::client_metadata(f);
        QCOMPARE(doc.size(), hs::max_metadata_bytes);
        QVERIFY(doc["platform"].get_string().size() < 600);
        QCOMPARE(doc["application"].get_document()["name"].get_string(), std::string_view("app"));
    }

    void metadata_that_cannot_fit_is_an_error() {
        auto f = facts();
        f.driver_name = std::string(500, 'd');  // driver information is never cut
        expect_error(errc::configuration_error, "512-byte limit", [&] { hs::client_metadata(f); });
    }

    void initial_hello_is_legacy_over_op_query() {
        hs::hello_options o;
        o.client_metadata = hs::client_metadata(facts());
        o.compressors = {"zlib"};
        o.sasl_supported_mechs = "admin.alice";
        auto h = hs::make_initial_hello(o);
        QVERIFY(h.use_op_query);
        QCOMPARE(h.command.view().begin()->key(), std::string_view("isMaster"));
        QCOMPARE(h.command["helloOk"].get_bool(), true);
        QCOMPARE(h.command["compression"].get_array().begin()->get_string(), std::string_view("zlib"));
        QCOMPARE(h.command["saslSupportedMechs"].get_string(), std::string_view("admin.alice"));
        QVERIFY(!h.command.contains("loadBalanced"));

        o.load_balanced = true;
        h = hs::make_initial_hello(o);
        QVERIFY(!h.use_op_query);  // hello must go over OP_MSG
        QCOMPARE(h.command.view().begin()->key(), std::string_view("hello"));
        QCOMPARE(h.command["loadBalanced"].get_bool(), true);
        QCOMPARE(h.command["backpressure"].get_string(), std::string_view("2"));

        // The Stable API: hello over OP_MSG (its fields are the connection's to add).
        o.load_balanced = false;
        o.server_api = true;
        h = hs::make_initial_hello(o);
        QVERIFY(!h.use_op_query);
        QCOMPARE(h.command.view().begin()->key(), std::string_view("hello"));
        QVERIFY(!h.command.contains("helloOk") && !h.command.contains("loadBalanced"));
        // The handshake spec: backpressure is the string "2", on every initial hello.
        QCOMPARE(h.command["backpressure"].type(), trellis::bson::type::string);
    }

    void server_api_fields_are_the_given_ones() {
        trellis::server_api api;
        api.version = "1";
        auto f = hs::server_api_fields(api);
        QCOMPARE(f["apiVersion"].get_string(), std::string_view("1"));
        QVERIFY(!f.contains("apiStrict") && !f.contains("apiDeprecationErrors"));
        api.strict = false;  // given: sent, even though false is the server's default
        api.deprecation_errors = true;
        f = hs::server_api_fields(api);
        QCOMPARE(f["apiStrict"].get_bool(), false);
        QCOMPARE(f["apiDeprecationErrors"].get_bool(), true);
    }

    void reply_fills_the_description() {
        const auto d = hs::parse_hello_reply(
            "h:1",
            reply(R"({"ok": 1, "isWritablePrimary": true, "minWireVersion": 0, "maxWireVersion": 21, "helloOk": true,
                      "maxBsonObjectSize": 1000, "maxMessageSizeBytes": 2000, "maxWriteBatchSize": 10, "connectionId": 7,
                      "compression": ["zlib"], "saslSupportedMechs": ["SCRAM-SHA-256"], "logicalSessionTimeoutMinutes": 30})"),
            {"snappy", "zlib"});
        QCOMPARE(d.max_wire_version, 21);
        QCOMPARE(d.max_bson_object_size, 1000);
        QCOMPARE(d.max_message_size_bytes, 2000);
        QCOMPARE(d.max_write_batch_size, 10);
        QCOMPARE(d.server_connection_id.value_or(0), std::int64_t(7));
        QCOMPARE(d.compressor.value_or(""), std::string("zlib"));
        QCOMPARE(d.sasl_supported_mechs, std::vector<std::string>{"SCRAM-SHA-256"});
        QVERIFY(d.hello_ok);
        QCOMPARE(d.logical_session_timeout_minutes.value_or(0), 30);
    }

    void reply_service_id() {
        const auto d = hs::parse_hello_reply(
            "h:1", reply(R"({"ok": 1, "maxWireVersion": 21, "serviceId": {"$oid": "0123456789abcdef01234567"}})"), {});
        QCOMPARE(d.service_id.value_or(bson::oid()).to_hex(), std::string("0123456789abcdef01234567"));
        QVERIFY(!hs::parse_hello_reply("h:1", reply(R"({"ok": 1, "maxWireVersion": 21})"), {}).service_id);
        expect_error(errc::protocol_error, "h:1: hello reply field 'serviceId' is not an ObjectId", [] {
            hs::parse_hello_reply("h:1", reply(R"({"ok": 1, "maxWireVersion": 21, "serviceId": "lb"})"), {});
        });
    }

    void bad_replies_are_clear_errors() {
        expect_error(errc::operation_failure, "h:1: hello failed: boom (code 8000 AtlasError)", [] {
            hs::parse_hello_reply("h:1", reply(R"({"ok": 0, "errmsg": "boom", "code": 8000, "codeName": "AtlasError"})"), {});
        });
        expect_error(errc::incompatible_server, "Server at h:1 reports wire version 5, but this version of Trellis requires at least 6", [] {
            hs::parse_hello_reply("h:1", reply(R"({"ok": 1, "maxWireVersion": 5})"), {});
        });
        expect_error(errc::incompatible_server, "Server at h:1 requires wire version 26, but this version of Trellis only supports up to 25", [] {
            hs::parse_hello_reply("h:1", reply(R"({"ok": 1, "minWireVersion": 26, "maxWireVersion": 27})"), {});
        });
        expect_error(errc::protocol_error, "'maxBsonObjectSize' is not a number", [] {
            hs::parse_hello_reply("h:1", reply(R"({"ok": 1, "maxWireVersion": 21, "maxBsonObjectSize": "big"})"), {});
        });
        expect_error(errc::protocol_error, "compressor 'zstd', which was not offered", [] {
            hs::parse_hello_reply("h:1", reply(R"({"ok": 1, "maxWireVersion": 21, "compression": ["zstd"]})"), {"zlib"});
        });
    }

    void sensitive_commands_are_recognised() {
        const auto plain = bson::make_document(bson::kvp("hello", 1));
        const auto speculative =
            bson::make_document(bson::kvp("isMaster", 1), bson::kvp("speculativeAuthenticate", bson::make_document()));
        for (const char* name : {"saslStart", "saslContinue", "authenticate", "getnonce", "createUser", "updateUser",
                                 "copydbgetnonce", "copydbsaslstart", "copydb", "SASLSTART"})
            QVERIFY2(trellis::conn::is_sensitive_command(name, plain.view()), name);
        QVERIFY(!trellis::conn::is_sensitive_command("hello", plain.view()));
        QVERIFY(trellis::conn::is_sensitive_command("isMaster", speculative.view()));
        QVERIFY(trellis::conn::is_sensitive_command("ismaster", speculative.view()));
        QVERIFY(!trellis::conn::is_sensitive_command("find", plain.view()));
    }
};

QTEST_GUILESS_MAIN(HandshakeTest)
#include "handshake_test.moc"
