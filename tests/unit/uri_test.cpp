// Tests of connection string parsing and option validation (kernel/src/uri) for what the spec
// files do not pin down: the wording of errors and warnings, the heartbeat minimum, the
// mongodb+srv rules over fake SRV and TXT answers, and hand-written URIs against the struct a
// C++ user would fill in.

#include <QtTest/QtTest>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

using namespace std::chrono_literals;
using trellis::client_options;
using trellis::configuration_error;
using trellis::connection_string;
using trellis::parse_uri;
using trellis::srv_record;
using trellis::txt_record;
using trellis::validate;

namespace {

// The message of the configuration_error that parsing uri throws, or "" when it does not.
std::string parse_error(std::string_view uri) {
    try {
        (void)parse_uri(uri);
    } catch (const configuration_error& e) {
        return e.what();
    }
    return {};
}

std::string validate_error(const client_options& o) {
    try {
        trellis::validate(o);
    } catch (const configuration_error& e) {
        return e.what();
    }
    return {};
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

bool any_contains(const std::vector<std::string>& list, std::string_view part) {
    for (const std::string& s : list)
        if (contains(s, part)) return true;
    return false;
}

#define VERIFY_CONTAINS(text, part) QVERIFY2(contains((text), (part)), ("\"" + (text) + "\" lacks " + (part)).c_str())

connection_string resolve(const connection_string& cs, const std::vector<srv_record>& srv,
                          const std::vector<txt_record>& txt = {}, unsigned seed = 1) {
    std::mt19937 rng(seed);
    return trellis::resolve_srv(cs, srv, txt, rng);
}

std::string resolve_error(const connection_string& cs, const std::vector<srv_record>& srv,
                          const std::vector<txt_record>& txt = {}) {
    try {
        (void)resolve(cs, srv, txt);
    } catch (const configuration_error& e) {
        return e.what();
    }
    return {};
}

const std::vector<srv_record> two_records = {{"a.example.net.", 27017}, {"b.example.net", 27018}};

}  // namespace

class UriTest : public QObject {
    Q_OBJECT

private slots:
    void errors_name_option_and_reason();
    void errors_are_configuration_errors();
    void errors_never_quote_the_password();
    void warnings_name_option_and_value();
    void heartbeat_minimum();
    void struct_rules_without_a_uri();
    void credential_defaults();
    void srv_parse();
    void srv_target_rules();
    void srv_resolve_applies_records_and_txt();
    void srv_resolve_rejects();
    void srv_max_hosts_picks_at_random();
    void round_trip_replica_set();
    void round_trip_srv_and_sockets();
    void round_trip_auth_and_tls();
    void deprecated_spellings();
    void decoded_parts_must_be_utf8_without_nul();
    void backpressure_options_and_no_server_api();
};

void UriTest::errors_name_option_and_reason() {
    std::string e = parse_error("mongodb://h/?tlsInsecure=true&tlsAllowInvalidCertificates=false");
    VERIFY_CONTAINS(e, "tlsInsecure");
    VERIFY_CONTAINS(e, "tlsAllowInvalidCertificates");
    VERIFY_CONTAINS(e, "cannot both be given");

    e = parse_error("mongodb://a,b/?directConnection=true");
    VERIFY_CONTAINS(e, "directConnection=true");
    VERIFY_CONTAINS(e, "exactly one host");

    e = parse_error("mongodb://db1.example.com:99999");
    VERIFY_CONTAINS(e, "db1.example.com:99999");
    VERIFY_CONTAINS(e, "port '99999'");
    VERIFY_CONTAINS(e, "1 to 65535");

    e = parse_error("mongodb://h/?loadBalanced=true&replicaSet=rs");
    VERIFY_CONTAINS(e, "loadBalanced=true");
    VERIFY_CONTAINS(e, "replicaSet");

    e = parse_error("mongodb://h/?tls=true&ssl=false");
    VERIFY_CONTAINS(e, "tls=true");
    VERIFY_CONTAINS(e, "ssl=false");
    VERIFY_CONTAINS(e, "same value");

    e = parse_error("mongodb://h/?srvServiceName=db");
    VERIFY_CONTAINS(e, "srvServiceName");
    VERIFY_CONTAINS(e, "mongodb+srv://");

    e = parse_error("mongodb://h/?readPreferenceTags=dc:ny");
    VERIFY_CONTAINS(e, "readPreferenceTags");
    VERIFY_CONTAINS(e, "primary");

    e = parse_error("mongodb://h/?maxStalenessSeconds=120");
    VERIFY_CONTAINS(e, "maxStalenessSeconds");
    VERIFY_CONTAINS(e, "default mode");

    e = parse_error("mongodb://h/?w=0&journal=true");
    VERIFY_CONTAINS(e, "w=0");
    VERIFY_CONTAINS(e, "journal=true");

    e = parse_error("mongodb://h/?proxyHost=p&proxyHost=q");
    VERIFY_CONTAINS(e, "proxyHost");
    VERIFY_CONTAINS(e, "more than once");

    e = parse_error("mongodb://u@h/?authMechanism=MONGODB-X509&authSource=admin");
    VERIFY_CONTAINS(e, "MONGODB-X509");
    VERIFY_CONTAINS(e, "$external");
    VERIFY_CONTAINS(e, "'admin'");

    e = parse_error("mongodb://%2Ftmp%2Fdb.socket");
    VERIFY_CONTAINS(e, "/tmp/db.socket");
    VERIFY_CONTAINS(e, ".sock");

    e = parse_error("mongodb://h/?appName=x&replicaSet");
    VERIFY_CONTAINS(e, "'replicaSet'");
    VERIFY_CONTAINS(e, "key=value");

    e = parse_error("postgres://h");
    VERIFY_CONTAINS(e, "mongodb://");
}

void UriTest::errors_are_configuration_errors() {
    try {
        (void)parse_uri("mongodb://h/?authSource=");
        QFAIL("no exception");
    } catch (const trellis::error& e) {
        QVERIFY(dynamic_cast<const configuration_error*>(&e) != nullptr);
        QCOMPARE(e.code(), make_error_code(trellis::errc::configuration_error));
        VERIFY_CONTAINS(std::string(e.what()), "authSource");
    }
}

void UriTest::errors_never_quote_the_password() {
    for (const char* uri : {"mongodb://user:s3cret%zz@h", "mongodb://user:s3cret@@h", "mongodb://user:s3cret:x@h",
                            "mongodb://user:s3cret/x@h/db", "mongodb://user:s3cret#@h"}) {
        const std::string e = parse_error(uri);
        QVERIFY2(!e.empty(), uri);
        QVERIFY2(!contains(e, "s3cret"), e.c_str());
    }
}

void UriTest::warnings_name_option_and_value() {
    connection_string cs = parse_uri("mongodb://h/?connectTimeoutMS=abc&Foo=1&zlibCompressionLevel=12&retryWrites=");
    QCOMPARE(cs.warnings.size(), std::size_t(4));
    VERIFY_CONTAINS(cs.warnings[0], "connectTimeoutMS=abc");
    VERIFY_CONTAINS(cs.warnings[1], "Foo");
    VERIFY_CONTAINS(cs.warnings[1], "unsupported");
    VERIFY_CONTAINS(cs.warnings[2], "zlibCompressionLevel=12");
    VERIFY_CONTAINS(cs.warnings[2], "-1 to 9");
    VERIFY_CONTAINS(cs.warnings[3], "retryWrites");
    VERIFY_CONTAINS(cs.warnings[3], "empty");
    // Ignored values leave the defaults.
    QCOMPARE(cs.options.connect_timeout, 10'000ms);
    QVERIFY(!cs.options.zlib_compression_level);
    QVERIFY(cs.options.retry_writes);

    cs = parse_uri("mongodb://h/?replicaSet=a&REPLICASET=b");
    QCOMPARE(*cs.options.replica_set, std::string("b"));
    QVERIFY(any_contains(cs.warnings, "2 times"));

    cs = parse_uri("mongodb://h/?compressors=zstd,lz4,zlib,zstd");
    QCOMPARE(cs.options.compressors, (std::vector<std::string>{"zstd", "zlib"}));
    QVERIFY(any_contains(cs.warnings, "'lz4'"));

    // A list option repeats without a warning; each occurrence is a tag set.
    cs = parse_uri("mongodb://h/?readPreference=nearest&readPreferenceTags=dc:ny,rack:1&readPreferenceTags=");
    QVERIFY(cs.warnings.empty());
    QCOMPARE(cs.options.read_preference.tag_sets.size(), std::size_t(2));
    QVERIFY(cs.options.read_preference.tag_sets[1].empty());
}

void UriTest::heartbeat_minimum() {
    client_options o;
    o.hosts = {{"localhost", std::nullopt, trellis::host_type::hostname}};
    o.heartbeat_frequency = 499ms;
    const std::string e = validate_error(o);
    VERIFY_CONTAINS(e, "heartbeatFrequencyMS");
    VERIFY_CONTAINS(e, "at least 500 ms");
    VERIFY_CONTAINS(e, "499 ms");
    o.heartbeat_frequency = 500ms;
    QCOMPARE(validate_error(o), std::string());

    // In a URI, as for every value out of range, the spec says: warn and keep the default.
    connection_string cs = parse_uri("mongodb://h/?heartbeatFrequencyMS=499");
    QCOMPARE(cs.options.heartbeat_frequency, 10'000ms);
    QVERIFY(any_contains(cs.warnings, "heartbeatFrequencyMS=499"));
    cs = parse_uri("mongodb://h/?heartbeatFrequencyMS=500");
    QCOMPARE(cs.options.heartbeat_frequency, 500ms);
    QVERIFY(cs.warnings.empty());
}

void UriTest::struct_rules_without_a_uri() {
    client_options o;
    QVERIFY(contains(validate_error(o), "seed list is empty"));
    o.hosts = {{"h", 27017, trellis::host_type::hostname}};
    QCOMPARE(validate_error(o), std::string());

    client_options p = o;
    p.min_pool_size = 200;
    VERIFY_CONTAINS(validate_error(p), "minPoolSize (200) cannot exceed maxPoolSize (100)");
    p.max_pool_size = 0;  // no maximum
    QCOMPARE(validate_error(p), std::string());

    p = o;
    p.app_name = std::string(129, 'x');
    VERIFY_CONTAINS(validate_error(p), "appname is 129 bytes");
    p.app_name = std::string(128, 'x');
    QCOMPARE(validate_error(p), std::string());

    p = o;
    p.hosts.push_back({"/tmp/m.sock", 27017, trellis::host_type::unix_socket});
    VERIFY_CONTAINS(validate_error(p), "cannot have a port");

    p = o;
    p.tls.disable_ocsp_endpoint_check = false;
    p.tls.disable_certificate_revocation_check = false;
    VERIFY_CONTAINS(validate_error(p), "tlsDisableOCSPEndpointCheck and tlsDisableCertificateRevocationCheck");

    p = o;
    p.proxy.port = 1080;
    VERIFY_CONTAINS(validate_error(p), "need proxyHost");

    p = o;
    p.read_preference.mode = trellis::read_preference_mode::secondary;
    p.read_preference.max_staleness = 0s;
    VERIFY_CONTAINS(validate_error(p), "maxStalenessSeconds must be positive");
    p.read_preference.max_staleness = 90s;
    QCOMPARE(validate_error(p), std::string());

    p = o;
    p.compressors = {"brotli"};
    VERIFY_CONTAINS(validate_error(p), "'brotli'");

    QCOMPARE(trellis::classify_host("10.0.0.1"), trellis::host_type::ipv4);
    QCOMPARE(trellis::classify_host("10.0.0.256"), trellis::host_type::hostname);
    QCOMPARE(trellis::classify_host("fe80::1"), trellis::host_type::ip_literal);
    QCOMPARE(trellis::classify_host("/var/run/m.sock"), trellis::host_type::unix_socket);
}

void UriTest::credential_defaults() {
    client_options o;
    o.hosts = {{"h", std::nullopt, trellis::host_type::hostname}};
    QVERIFY(!trellis::make_credential(o));

    o.auth.username = "kerberos@EXAMPLE.COM";
    o.auth.mechanism = trellis::auth_mechanism::gssapi;
    o.auth.mechanism_properties = {{"service_realm", "EXAMPLE.COM"}};  // names are case-insensitive
    auto c = trellis::make_credential(o);
    QVERIFY(c);
    QCOMPARE(c->source, std::string("$external"));
    QCOMPARE(c->mechanism_properties,
             (std::map<std::string, std::string>{{"SERVICE_NAME", "mongodb"}, {"SERVICE_REALM", "EXAMPLE.COM"}}));

    // A password may come from code after parsing; the URI's database is the default source.
    connection_string cs = parse_uri("mongodb://app@h/inventory");
    QVERIFY(!cs.options.auth.password);
    cs.options.auth.password = "from-a-vault";
    c = trellis::make_credential(cs.options);
    QVERIFY(c);
    QCOMPARE(c->source, std::string("inventory"));
    QCOMPARE(*c->password, std::string("from-a-vault"));
    QVERIFY(!c->mechanism);

    cs = parse_uri("mongodb://app:@h");  // an empty password is a password
    QCOMPARE(*cs.options.auth.password, std::string());
}

void UriTest::srv_parse() {
    connection_string cs = parse_uri("mongodb+srv://cluster0.example.net/app?w=majority");
    const client_options& o = cs.options;
    QVERIFY(o.is_srv);
    QCOMPARE(o.srv_host, std::string("cluster0.example.net"));
    QVERIFY(o.hosts.empty());
    QCOMPARE(o.tls.enabled, std::optional<bool>(true));  // implied by the scheme
    QCOMPARE(trellis::srv_query_name(o), std::string("_mongodb._tcp.cluster0.example.net"));

    cs = parse_uri("mongodb+srv://cluster0.example.net/?tls=false&srvServiceName=mongos-1");
    QCOMPARE(cs.options.tls.enabled, std::optional<bool>(false));
    QCOMPARE(trellis::srv_query_name(cs.options), std::string("_mongos-1._tcp.cluster0.example.net"));

    VERIFY_CONTAINS(parse_error("mongodb+srv://a.example.net,b.example.net"), "exactly one host name, got 2");
    VERIFY_CONTAINS(parse_error("mongodb+srv://a.example.net:27017"), "cannot have a port");
    VERIFY_CONTAINS(parse_error("mongodb+srv://10.1.2.3"), "must be a host name");
    VERIFY_CONTAINS(parse_error("mongodb+srv://a.example.net/?directConnection=true"), "directConnection=true");
    VERIFY_CONTAINS(parse_error("mongodb+srv://a.example.net/?srvMaxHosts=1&replicaSet=rs"),
                    "srvMaxHosts cannot be combined with replicaSet");
    cs = parse_uri("mongodb+srv://a.example.net/?srvServiceName=-bad-");
    QVERIFY(any_contains(cs.warnings, "srvServiceName=-bad-"));
    QVERIFY(!cs.options.srv_service_name);
}

void UriTest::srv_target_rules() {
    using trellis::srv_target_allowed;
    // Three labels or more: the domain is everything after the first label.
    QVERIFY(srv_target_allowed("cluster0.example.net", "shard-00.example.net"));
    QVERIFY(srv_target_allowed("cluster0.example.net", "a.b.example.net."));
    QVERIFY(srv_target_allowed("cluster0.example.net", "SHARD.Example.NET"));
    QVERIFY(!srv_target_allowed("cluster0.example.net", "example.net"));
    QVERIFY(!srv_target_allowed("cluster0.example.net", "shard.evilexample.net"));
    QVERIFY(!srv_target_allowed("cluster0.example.net", "shard.example.org"));
    // One or two labels: the whole name is the domain and the target needs one label more.
    QVERIFY(srv_target_allowed("localhost", "test.localhost"));
    QVERIFY(!srv_target_allowed("localhost", "localhost"));
    QVERIFY(srv_target_allowed("mongo.local", "db1.mongo.local"));
    QVERIFY(!srv_target_allowed("mongo.local", "mongo.local"));
    QVERIFY(!srv_target_allowed("mongo.local", "test_1.my_hostmongo.local"));
    QVERIFY(!srv_target_allowed("mongo.local", ""));
}

void UriTest::srv_resolve_applies_records_and_txt() {
    const connection_string parsed = parse_uri("mongodb+srv://cluster0.example.net/?authSource=fromUri");
    // A TXT record may come in several character strings: they are joined in order.
    const connection_string cs =
        resolve(parsed, two_records, {{"authSource=fromTxt&replica", "Set=rs0&loadBalanced=false"}});
    const client_options& o = cs.options;
    QCOMPARE(o.hosts.size(), std::size_t(2));
    QCOMPARE(o.hosts[0], (trellis::server_address{"a.example.net", 27017, trellis::host_type::hostname}));
    QCOMPARE(o.hosts[1], (trellis::server_address{"b.example.net", 27018, trellis::host_type::hostname}));
    QCOMPARE(*o.replica_set, std::string("rs0"));
    QCOMPARE(*o.auth.source, std::string("fromUri"));  // the connection string wins
    QCOMPARE(o.load_balanced, std::optional<bool>(false));
    QVERIFY(o.is_srv);
    QCOMPARE(o.srv_host, std::string("cluster0.example.net"));

    // Without a TXT record nothing else changes.
    const connection_string plain = resolve(parsed, two_records);
    QVERIFY(!plain.options.replica_set);
    QCOMPARE(plain.options.hosts, o.hosts);
}

void UriTest::srv_resolve_rejects() {
    const connection_string parsed = parse_uri("mongodb+srv://cluster0.example.net/");
    VERIFY_CONTAINS(resolve_error(parsed, {}), "no records");
    VERIFY_CONTAINS(resolve_error(parsed, {{"db.example.org", 27017}}), "'db.example.org' is not inside the domain");
    VERIFY_CONTAINS(resolve_error(parsed, {{"db.example.net", 0}}), "port 0");
    VERIFY_CONTAINS(resolve_error(parsed, two_records, {{"replicaSet=a"}, {"authSource=b"}}), "at most one");
    VERIFY_CONTAINS(resolve_error(parsed, two_records, {{"ssl=true"}}), "'ssl'");
    VERIFY_CONTAINS(resolve_error(parsed, two_records, {{"replicaSet"}}), "no value");
    // Rules that only the DNS answers can break.
    VERIFY_CONTAINS(resolve_error(parsed, two_records, {{"loadBalanced=true"}}),
                    "loadBalanced=true needs exactly one host");
    VERIFY_CONTAINS(resolve_error(parse_uri("mongodb+srv://cluster0.example.net/?srvMaxHosts=1"), two_records,
                                  {{"replicaSet=rs0"}}),
                    "srvMaxHosts cannot be combined with replicaSet");
    VERIFY_CONTAINS(resolve_error(parse_uri("mongodb+srv://x@cluster0.example.net/?authMechanism=MONGODB-X509"),
                                  two_records, {{"authSource=admin"}}),
                    "MONGODB-X509");
    VERIFY_CONTAINS(resolve_error(parse_uri("mongodb+srv://cluster0.example.net/?proxyPort=1080"), two_records),
                    "need proxyHost");
    VERIFY_CONTAINS(resolve_error(parse_uri("mongodb://h"), two_records), "mongodb+srv://");
}

void UriTest::srv_max_hosts_picks_at_random() {
    const std::vector<srv_record> five = {{"h1.example.net", 1}, {"h2.example.net", 2}, {"h3.example.net", 3},
                                          {"h4.example.net", 4}, {"h5.example.net", 5}};
    const connection_string parsed = parse_uri("mongodb+srv://cluster0.example.net/?srvMaxHosts=2");
    std::set<std::string> seen;
    for (unsigned seed = 0; seed < 64; ++seed) {
        const auto hosts = resolve(parsed, five, {}, seed).options.hosts;
        QCOMPARE(hosts.size(), std::size_t(2));
        QVERIFY(hosts[0].host != hosts[1].host);
        QCOMPARE(resolve(parsed, five, {}, seed).options.hosts, hosts);  // the random source decides
        for (const auto& h : hosts) seen.insert(h.host);
    }
    QCOMPARE(seen.size(), std::size_t(5));  // every host gets picked sometime

    const connection_string all = parse_uri("mongodb+srv://cluster0.example.net/?srvMaxHosts=5");
    QCOMPARE(resolve(all, five).options.hosts.size(), std::size_t(5));
}

void UriTest::round_trip_replica_set() {
    const connection_string cs = parse_uri(
        "mongodb://db1.example.com,db2.example.com:27018,[2001:db8::7]:27019/orders?replicaSet=rs0"
        "&readPreference=secondaryPreferred&readPreferenceTags=dc:east,rack:2&readPreferenceTags="
        "&maxStalenessSeconds=120"
        "&w=majority&wTimeoutMS=2500&journal=true&readConcernLevel=majority&retryWrites=false"
        "&maxPoolSize=50&minPoolSize=5&maxConnecting=4&maxIdleTimeMS=60000&waitQueueTimeoutMS=1500"
        "&connectTimeoutMS=3000&socketTimeoutMS=0&serverSelectionTimeoutMS=5000&heartbeatFrequencyMS=2000"
        "&localThresholdMS=20&appName=orders-service&compressors=zstd,zlib&zlibCompressionLevel=6"
        "&serverMonitoringMode=poll&timeoutMS=10000");
    QVERIFY(cs.warnings.empty());

    client_options e;
    e.hosts = {{"db1.example.com", std::nullopt, trellis::host_type::hostname},
               {"db2.example.com", 27018, trellis::host_type::hostname},
               {"2001:db8::7", 27019, trellis::host_type::ip_literal}};
    e.database = "orders";
    e.replica_set = "rs0";
    e.read_preference.mode = trellis::read_preference_mode::secondary_preferred;
    e.read_preference.tag_sets = {{{"dc", "east"}, {"rack", "2"}}, {}};
    e.read_preference.max_staleness = 120s;
    e.write_concern.w = std::string("majority");
    e.write_concern.wtimeout = 2500ms;
    e.write_concern.journal = true;
    e.read_concern.level = "majority";
    e.retry_writes = false;
    e.max_pool_size = 50;
    e.min_pool_size = 5;
    e.max_connecting = 4;
    e.max_idle_time = 60s;
    e.wait_queue_timeout = 1500ms;
    e.connect_timeout = 3s;
    e.socket_timeout = 0ms;
    e.server_selection_timeout = 5s;
    e.heartbeat_frequency = 2s;
    e.local_threshold = 20ms;
    e.app_name = "orders-service";
    e.compressors = {"zstd", "zlib"};
    e.zlib_compression_level = 6;
    e.server_monitoring_mode = trellis::monitoring_mode::poll;
    e.timeout = 10s;
    QVERIFY(cs.options == e);
    QCOMPARE(validate_error(e), std::string());
    QCOMPARE(cs.options.hosts[0].port_or_default(), std::uint16_t(27017));
}

void UriTest::round_trip_srv_and_sockets() {
    connection_string cs = parse_uri("mongodb+srv://cluster0.ab12c.mongodb.net/?retryReads=false&loadBalanced=true");
    client_options e;
    e.is_srv = true;
    e.srv_host = "cluster0.ab12c.mongodb.net";
    e.tls.enabled = true;
    e.retry_reads = false;
    e.load_balanced = true;
    QVERIFY(cs.options == e);

    cs = parse_uri("mongodb://%2Fvar%2Frun%2Fmongodb-27017.sock,127.0.0.1:27018/?directConnection=false");
    e = client_options();
    e.hosts = {{"/var/run/mongodb-27017.sock", std::nullopt, trellis::host_type::unix_socket},
               {"127.0.0.1", 27018, trellis::host_type::ipv4}};
    e.direct_connection = false;
    QVERIFY(cs.options == e);
}

void UriTest::round_trip_auth_and_tls() {
    const connection_string cs = parse_uri(
        "mongodb://ops%40corp:p%40ss%3Aw0rd@db.internal/admin?authMechanism=SCRAM-SHA-256&authSource=users"
        "&tls=true&tlsCAFile=%2Fetc%2Fssl%2Fca.pem&tlsCertificateKeyFile=client.pem"
        "&tlsCertificateKeyFilePassword=k3y&tlsAllowInvalidHostnames=true&proxyHost=socks.internal&proxyPort=1081"
        "&proxyUsername=px&proxyPassword=py");
    QVERIFY(cs.warnings.empty());
    client_options e;
    e.hosts = {{"db.internal", std::nullopt, trellis::host_type::hostname}};
    e.database = "admin";
    e.auth.username = "ops@corp";
    e.auth.password = "p@ss:w0rd";
    e.auth.mechanism = trellis::auth_mechanism::scram_sha_256;
    e.auth.source = "users";
    e.tls.enabled = true;
    e.tls.ca_file = "/etc/ssl/ca.pem";
    e.tls.certificate_key_file = "client.pem";
    e.tls.certificate_key_file_password = "k3y";
    e.tls.allow_invalid_hostnames = true;
    e.proxy = {"socks.internal", 1081, "px", "py"};
    QVERIFY(cs.options == e);

    const auto c = trellis::make_credential(e);
    QVERIFY(c);
    QCOMPARE(*c, (trellis::credential{"ops@corp", "p@ss:w0rd", "users", trellis::auth_mechanism::scram_sha_256, {}}));
}

void UriTest::deprecated_spellings() {
    connection_string cs = parse_uri("mongodb://h/?wtimeout=100&sslAllowInvalidCertificates=true&slaveOk=true");
    QCOMPARE(cs.options.write_concern.wtimeout, std::optional<std::chrono::milliseconds>(100ms));
    QCOMPARE(cs.options.tls.allow_invalid_certificates, std::optional<bool>(true));
    QCOMPARE(cs.options.read_preference.mode, trellis::read_preference_mode::secondary_preferred);
    QCOMPARE(cs.warnings.size(), std::size_t(3));
    QVERIFY(any_contains(cs.warnings, "use wTimeoutMS"));
    QVERIFY(any_contains(cs.warnings, "use tlsAllowInvalidCertificates"));
    QVERIFY(any_contains(cs.warnings, "use readPreference=secondaryPreferred"));

    // The new spelling wins, whatever the order.
    cs = parse_uri("mongodb://h/?wTimeoutMS=7&wtimeout=100&readPreference=nearest&slaveOk=true");
    QCOMPARE(cs.options.write_concern.wtimeout, std::optional<std::chrono::milliseconds>(7ms));
    QCOMPARE(cs.options.read_preference.mode, trellis::read_preference_mode::nearest);
    QVERIFY(any_contains(cs.warnings, "wtimeout is ignored"));

    // A deprecated alias still counts for the conflict rules.
    VERIFY_CONTAINS(parse_error("mongodb://h/?sslAllowInvalidCertificates=true&tlsInsecure=true"), "tlsInsecure");
    // ssl is an alias of tls, not deprecated: no warning.
    cs = parse_uri("mongodb://h/?ssl=true");
    QVERIFY(cs.warnings.empty());
    QCOMPARE(cs.options.tls.enabled, std::optional<bool>(true));
}

// Every percent-decoded part must be UTF-8 text without NUL: appName=%FF%FE went into the
// handshake as invalid UTF-8, and replicaSet=r%00s cut error lines at the NUL. The error quotes
// the part as written, so the message itself is valid UTF-8 with no NUL.
void UriTest::decoded_parts_must_be_utf8_without_nul() {
    const struct {
        const char* uri;
        const char* expected;
    } cases[] = {
        {"mongodb://h/?appName=%FF%FE", "the value of option appName '%FF%FE' is not valid UTF-8 (decoded byte 0, 0xFF)"},
        {"mongodb://h/?replicaSet=r%00s", "the value of option replicaSet 'r%00s' holds a NUL character (decoded byte 1)"},
        {"mongodb://h/?app%00Name=x", "option name 'app%00Name' holds a NUL character"},
        {"mongodb://h/db%C3", "the database name 'db%C3' is not valid UTF-8 (decoded byte 2, 0xC3)"},
        {"mongodb://us%E9r:pw@h", "the user name 'us%E9r' is not valid UTF-8"},
        {"mongodb://user:p%00w@h", "the password (not shown) holds a NUL character"},
        {"mongodb://%2Ftmp%2F%00.sock", "host '%2Ftmp%2F%00.sock' holds a NUL character"},
        {"mongodb://h/?authMechanismProperties=A:%ED%A0%80", "is not valid UTF-8 (decoded byte 2, 0xED)"},  // a surrogate
    };
    for (const auto& c : cases) {
        const std::string e = parse_error(c.uri);
        QVERIFY2(contains(e, c.expected), (std::string(c.uri) + " -> " + e).c_str());
        QVERIFY2(e.find('\0') == std::string::npos, c.uri);
        // Valid UTF-8: decoding it replaces nothing.
        QVERIFY2(QString::fromUtf8(e.data(), static_cast<qsizetype>(e.size())).toUtf8().toStdString() == e, c.uri);
    }
    QVERIFY(!contains(parse_error("mongodb://user:p%00w@h"), "p%00w"));
    // Valid UTF-8 decodes as before.
    const connection_string cs = parse_uri("mongodb://h/?appName=caf%C3%A9&replicaSet=r%C3%A9s");
    QCOMPARE(cs.options.app_name, std::optional<std::string>("café"));
    QCOMPARE(cs.options.replica_set, std::optional<std::string>("rés"));
}

// Issue #15: the uri-options spec's maxAdaptiveRetries and enableOverloadRetargeting; the
// Stable API spec forbids declaring an API in a connection string; an unknown API version.
void UriTest::backpressure_options_and_no_server_api() {
    connection_string cs = parse_uri("mongodb://h/");
    QCOMPARE(cs.options.max_adaptive_retries, 2u);
    QVERIFY(!cs.options.enable_overload_retargeting);
    cs = parse_uri("mongodb://h/?maxAdaptiveRetries=0&enableOverloadRetargeting=true");
    QVERIFY(cs.warnings.empty());
    QCOMPARE(cs.options.max_adaptive_retries, 0u);
    QVERIFY(cs.options.enable_overload_retargeting);
    cs = parse_uri("mongodb://h/?MAXADAPTIVERETRIES=7&enableoverloadretargeting=false");
    QCOMPARE(cs.options.max_adaptive_retries, 7u);
    QVERIFY(!cs.options.enable_overload_retargeting);
    // Bad values: a warning naming the option and value, and the default kept.
    cs = parse_uri("mongodb://h/?maxAdaptiveRetries=-1&enableOverloadRetargeting=yes");
    QCOMPARE(cs.warnings.size(), std::size_t(2));
    VERIFY_CONTAINS(cs.warnings[0], "maxAdaptiveRetries=-1");
    VERIFY_CONTAINS(cs.warnings[1], "enableOverloadRetargeting=yes");
    QCOMPARE(cs.options.max_adaptive_retries, 2u);
    QVERIFY(!cs.options.enable_overload_retargeting);

    cs = parse_uri("mongodb://h/?apiVersion=1&apiStrict=true&serverApi=1");
    QVERIFY(!cs.options.server_api);
    QCOMPARE(cs.warnings.size(), std::size_t(3));
    for (const auto& w : cs.warnings) VERIFY_CONTAINS(w, "Stable API spec forbids");

    client_options o = parse_uri("mongodb://h/").options;
    o.server_api.emplace().version = "1";
    validate(o);
    o.server_api->version = "2";
    QVERIFY_THROWS_EXCEPTION(configuration_error, validate(o));
    try {
        validate(o);
    } catch (const configuration_error& e) {
        VERIFY_CONTAINS(std::string(e.what()), "serverApi.version '2' is not a Stable API version");
    }
    o.server_api->version.clear();
    QVERIFY_THROWS_EXCEPTION(configuration_error, validate(o));
}

QTEST_APPLESS_MAIN(UriTest)

#include "uri_test.moc"
