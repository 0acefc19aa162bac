// Tests of TOML configuration files (kernel/src/config): the precedence of the file over its
// [client] uri, the exact wording and position of every kind of error, suggestions for
// misspelt keys, the topology rules, plugin tables as BSON, path resolution and the example
// file in examples/.
//
// The TOML texts are ordinary string literals on purpose: moc mis-reads raw string literals
// holding quotes, and then silently generates nothing for this file.

#include <QtTest/QtTest>

#include <QTemporaryDir>

#include <fstream>
#include <optional>
#include <string>

#include "trellis/bson/document.hpp"
#include "trellis/config.hpp"
#include "trellis/uri.hpp"

using namespace std::chrono_literals;
using trellis::config;
using trellis::config_error;
using trellis::parse_config;
using trellis::topology_settings;

namespace {

std::optional<config_error> error_of(std::string_view text) {
    try {
        (void)parse_config(text, "trellis.toml");
    } catch (const config_error& e) {
        return e;
    }
    return std::nullopt;
}

// The one-line diagnostic parsing text gives, or "(no error)".
std::string diagnostic(std::string_view text) {
    const auto e = error_of(text);
    return e ? e->diagnostic() : "(no error)";
}

#define COMPARE_STR(actual, expected) QCOMPARE(QString::fromStdString(actual), QString::fromStdString(expected))

void write_file(const QString& path, const std::string& text) {
    std::ofstream out(path.toStdString(), std::ios::binary);
    out << text;
}

}  // namespace

class ConfigTest : public QObject {
    Q_OBJECT

private slots:
    void empty_file_gives_the_defaults_and_localhost() {
        const config c = parse_config("", "trellis.toml");
        QCOMPARE(c.options, trellis::parse_uri("mongodb://localhost").options);
        QVERIFY(c.topology == topology_settings{});
        QVERIFY(c.plugins.paths.empty());
        QVERIFY(!c.plugins.cursor_manager);
        QVERIFY(c.plugins.tables.empty());
        QVERIFY(c.warnings.empty());
    }

    void file_keys_override_the_uri() {
        const config c = parse_config(
            "[client]\n"
            "uri = \"mongodb://u:pw@a:1,b:2/shop?maxPoolSize=10&appname=from-uri&readPreference=secondary"
            "&w=2&heartbeatFrequencyMS=2000&replicaSet=rs0\"\n"
            "app_name = \"from-file\"\n"
            "[pool]\n"
            "max_size = 50\n"
            "[write_concern]\n"
            "w = \"majority\"\n"
            "[auth]\n"
            "password = \"file-pw\"\n",
            "trellis.toml");
        const trellis::client_options& o = c.options;
        // Set in both: the file wins.
        QCOMPARE(o.max_pool_size, 50u);
        QCOMPARE(o.app_name, std::optional<std::string>("from-file"));
        QCOMPARE(o.write_concern.w, (std::optional<std::variant<std::int32_t, std::string>>("majority")));
        QCOMPARE(o.auth.password, std::optional<std::string>("file-pw"));
        // Set only in the URI: kept.
        QCOMPARE(o.hosts.size(), std::size_t{2});
        QCOMPARE(o.hosts[1].host, std::string("b"));
        QCOMPARE(o.database, std::optional<std::string>("shop"));
        QCOMPARE(o.read_preference.mode, trellis::read_preference_mode::secondary);
        QCOMPARE(o.heartbeat_frequency, 2000ms);
        QCOMPARE(o.replica_set, std::optional<std::string>("rs0"));
        QCOMPARE(o.auth.username, std::optional<std::string>("u"));
        // Set in neither: the default.
        QCOMPARE(o.min_pool_size, 0u);
    }

    void uri_comes_first_wherever_it_is_written() {
        // The key order in the file does not matter: [client] uri is always the base.
        const config c = parse_config("[pool]\nmax_size = 7\n[client]\nuri = \"mongodb://h/?maxPoolSize=3\"\n", "t.toml");
        QCOMPARE(c.options.max_pool_size, 7u);
        QCOMPARE(c.options.hosts.at(0).host, std::string("h"));
    }

    void every_table_reaches_the_options() {
        const config c = parse_config(
            "[client]\n"
            "uri = \"mongodb://h\"\n"
            "retry_reads = false\nretry_writes = false\ncompressors = [\"zstd\", \"zlib\", \"zstd\"]\n"
            "zlib_compression_level = 6\nread_concern = \"majority\"\nreplica_set = \"rs1\"\n"
            "direct_connection = false\ndatabase = \"app\"\ntimeout_ms = 1500\n"
            "[pool]\nmin_size = 2\nmax_connecting = 3\nmax_idle_time_ms = 60000\nwait_queue_timeout_ms = 500\n"
            "max_kept_reply_buffer_mb = 4\n"
            "[monitoring]\nheartbeat_frequency_ms = 500\nserver_monitoring_mode = \"poll\"\n"
            "connect_timeout_ms = 0\nsocket_timeout_ms = 9000\n"
            "[selection]\nserver_selection_timeout_ms = 4000\nlocal_threshold_ms = 0\nserver_selection_try_once = true\n"
            "[read_preference]\nmode = \"nearest\"\ntag_sets = [{rack = \"2\", dc = \"ny\"}, {}]\nmax_staleness_s = 95\n"
            "[write_concern]\nw = 3\nwtimeout_ms = 100\njournal = true\nfsync = false\n"
            "[tls]\nenabled = true\nallow_invalid_hostnames = true\n"
            "[proxy]\nhost = \"socks.local\"\nport = 1081\n"
            "[auth]\nusername = \"kerb\"\nmechanism = \"gssapi\"\n"
            "mechanism_properties = {service_name = \"mongo2\", CANONICALIZE_HOST_NAME = false}\n",
            "trellis.toml");
        const trellis::client_options& o = c.options;
        QCOMPARE(o.retry_reads, false);
        QCOMPARE(o.retry_writes, false);
        QCOMPARE(o.compressors, (std::vector<std::string>{"zstd", "zlib"}));
        QCOMPARE(o.zlib_compression_level, std::optional<int>(6));
        QCOMPARE(o.read_concern.level, std::optional<std::string>("majority"));
        QCOMPARE(o.replica_set, std::optional<std::string>("rs1"));
        QCOMPARE(o.direct_connection, std::optional<bool>(false));
        QCOMPARE(o.database, std::optional<std::string>("app"));
        QCOMPARE(o.timeout, std::optional<std::chrono::milliseconds>(1500ms));
        QCOMPARE(o.min_pool_size, 2u);
        QCOMPARE(o.max_connecting, 3u);
        QCOMPARE(o.max_idle_time, std::optional<std::chrono::milliseconds>(60000ms));
        QCOMPARE(o.wait_queue_timeout, std::optional<std::chrono::milliseconds>(500ms));
        QCOMPARE(o.max_kept_reply_buffer, std::size_t{4} << 20);
        QCOMPARE(o.heartbeat_frequency, 500ms);
        QCOMPARE(o.server_monitoring_mode, trellis::monitoring_mode::poll);
        QCOMPARE(o.connect_timeout, 0ms);
        QCOMPARE(o.socket_timeout, std::optional<std::chrono::milliseconds>(9000ms));
        QCOMPARE(o.server_selection_timeout, 4000ms);
        QCOMPARE(o.local_threshold, 0ms);
        QCOMPARE(o.server_selection_try_once, std::optional<bool>(true));
        QCOMPARE(o.read_preference.mode, trellis::read_preference_mode::nearest);
        // Tags keep the file's order, not the alphabet's.
        const std::vector<trellis::tag_set> tags = {{{"rack", "2"}, {"dc", "ny"}}, {}};
        QCOMPARE(o.read_preference.tag_sets, tags);
        QCOMPARE(o.read_preference.max_staleness, std::optional<std::chrono::seconds>(95s));
        QCOMPARE(o.write_concern.w, (std::optional<std::variant<std::int32_t, std::string>>(3)));
        QCOMPARE(o.write_concern.wtimeout, std::optional<std::chrono::milliseconds>(100ms));
        QCOMPARE(o.write_concern.journal, std::optional<bool>(true));
        QCOMPARE(o.write_concern.fsync, std::optional<bool>(false));
        QCOMPARE(o.tls.enabled, std::optional<bool>(true));
        QCOMPARE(o.tls.allow_invalid_hostnames, std::optional<bool>(true));
        QCOMPARE(o.proxy.host, std::optional<std::string>("socks.local"));
        QCOMPARE(o.proxy.port, std::optional<std::uint16_t>(1081));
        QCOMPARE(o.auth.mechanism, std::optional<trellis::auth_mechanism>(trellis::auth_mechanism::gssapi));
        // Property names are stored in upper case, as parse_uri() stores them.
        const std::map<std::string, std::string> props = {{"SERVICE_NAME", "mongo2"}, {"CANONICALIZE_HOST_NAME", "false"}};
        QCOMPARE(o.auth.mechanism_properties, props);
    }

    // Issue #15: [server_api] (never from the URI) and the client backpressure keys.
    void server_api_and_backpressure_keys() {
        config c = parse_config("[client]\nuri = \"mongodb://h/?maxAdaptiveRetries=5\"\nmax_adaptive_retries = 0\n"
                                "enable_overload_retargeting = true\n[server_api]\nversion = \"1\"\nstrict = true\n"
                                "deprecation_errors = false\n",
                                "t.toml");
        QCOMPARE(c.options.max_adaptive_retries, 0u);
        QVERIFY(c.options.enable_overload_retargeting);
        QVERIFY(c.options.server_api.has_value());
        QCOMPARE(c.options.server_api->version, std::string("1"));
        QCOMPARE(c.options.server_api->strict, std::optional<bool>(true));
        QCOMPARE(c.options.server_api->deprecation_errors, std::optional<bool>(false));
        c = parse_config("[server_api]\nversion = \"1\"\n", "t.toml");
        QVERIFY(!c.options.server_api->strict && !c.options.server_api->deprecation_errors);
        QVERIFY(!parse_config("", "t.toml").options.server_api);

        COMPARE_STR(diagnostic("[server_api]\nversion = \"2\"\n"),
                    "trellis.toml:2:11: server_api.version must be \"1\", the only Stable API version this driver knows, got \"2\"");
        COMPARE_STR(diagnostic("[server_api]\nstrict = true\n"),
                    "trellis.toml:2:10: [server_api] needs version (\"1\"): the Stable API spec requires a version whenever "
                    "an API is declared");
        COMPARE_STR(diagnostic("[server_api]\nversion = 1\n"),
                    "trellis.toml:2:11: server_api.version must be \"1\", the only Stable API version this driver knows, got 1");
        COMPARE_STR(diagnostic("[client]\nmax_adaptive_retries = -1\n"),
                    "trellis.toml:2:24: client.max_adaptive_retries must be a non-negative integer, got -1");
        COMPARE_STR(diagnostic("[client]\nenable_overload_retargeting = \"yes\"\n"),
                    "trellis.toml:2:31: client.enable_overload_retargeting must be true or false, got \"yes\"");
    }

    void max_staleness_minus_one_undoes_the_uri() {
        const config c = parse_config(
            "[client]\nuri = \"mongodb://h/?readPreference=secondary&maxStalenessSeconds=120\"\n"
            "[read_preference]\nmax_staleness_s = -1\n",
            "trellis.toml");
        QVERIFY(!c.options.read_preference.max_staleness);
    }

    void the_documented_error_format() {
        const auto e = error_of(
            "[client]\n"
            "uri = \"mongodb://localhost\"\n"
            "\n"
            "[pool]\n"
            "max_size = -3\n");
        QVERIFY(e);
        COMPARE_STR(e->diagnostic(), "trellis.toml:5:12: pool.max_size must be a positive integer, got -3");
        COMPARE_STR(e->file(), "trellis.toml");
        QCOMPARE(e->line(), std::size_t{5});
        QCOMPARE(e->column(), std::size_t{12});
        COMPARE_STR(e->key_path(), "pool.max_size");
        COMPARE_STR(e->message(), "pool.max_size must be a positive integer, got -3");
        // A trellis::configuration_error like every other bad option, so callers may catch that.
        QCOMPARE(e->code(), make_error_code(trellis::errc::configuration_error));
        QVERIFY(std::string(e->what()).starts_with(e->diagnostic()));
    }

    void dns_table() {
        const config c = parse_config(
            "[client]\nuri = \"mongodb+srv://cluster0.example.net/\"\n[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]\"]\n"
            "rescan_srv_interval_ms = 1500\n",
            "trellis.toml");
        QCOMPARE(c.options.dns_servers, (std::vector<std::string>{"127.0.0.1:5353", "[::1]"}));
        QCOMPARE(c.options.srv_rescan_interval, std::optional<std::chrono::milliseconds>(1500));
        QVERIFY(c.options.is_srv);
        COMPARE_STR(diagnostic("[dns]\nservers = [\"127.0.0.1\", \"dns.example.com\"]\n"),
                    "trellis.toml:2:25: dns.servers[1]: DNS server 'dns.example.com': not an IPv4 or IPv6 address (a DNS "
                    "server is given by address, not by name)");
        COMPARE_STR(diagnostic("[dns]\nrescan_srv_interval_ms = 0\n"),
                    "trellis.toml:2:26: dns.rescan_srv_interval_ms must be a positive integer, got 0");
    }

    void type_and_range_errors() {
        COMPARE_STR(diagnostic("[pool]\nmax_size = \"x\"\n"),
                    "trellis.toml:2:12: pool.max_size must be a positive integer, got \"x\"");
        COMPARE_STR(diagnostic("[pool]\nmax_size = true\n"),
                    "trellis.toml:2:12: pool.max_size must be a positive integer, got true");
        COMPARE_STR(diagnostic("[pool]\nmin_size = 1.5\n"),
                    "trellis.toml:2:12: pool.min_size must be a non-negative integer, got 1.5");
        COMPARE_STR(diagnostic("[pool]\nmax_size = 0\n"),
                    "trellis.toml:2:12: pool.max_size must be a positive integer, got 0");
        COMPARE_STR(diagnostic("[pool]\nmax_size = 3000000000\n"),
                    "trellis.toml:2:12: pool.max_size must be at most 2147483647, got 3000000000");
        COMPARE_STR(diagnostic("[pool]\nmax_kept_reply_buffer_mb = 65\n"),
                    "trellis.toml:2:28: pool.max_kept_reply_buffer_mb must be an integer from 0 to 64, got 65");
        COMPARE_STR(diagnostic("[pool]\nmax_kept_reply_buffer_mb = -1\n"),
                    "trellis.toml:2:28: pool.max_kept_reply_buffer_mb must be an integer from 0 to 64, got -1");
        COMPARE_STR(diagnostic("[monitoring]\nheartbeat_frequency_ms = 100\n"),
                    "trellis.toml:2:26: monitoring.heartbeat_frequency_ms must be an integer of at least 500, got 100");
        COMPARE_STR(diagnostic("[client]\nretry_writes = \"yes\"\n"),
                    "trellis.toml:2:16: client.retry_writes must be true or false, got \"yes\"");
        COMPARE_STR(diagnostic("[client]\napp_name = 42\n"),
                    "trellis.toml:2:12: client.app_name must be a string, got 42");
        COMPARE_STR(diagnostic("[client]\nzlib_compression_level = 10\n"),
                    "trellis.toml:2:26: client.zlib_compression_level must be an integer from -1 to 9, got 10");
        COMPARE_STR(diagnostic("[client]\ncompressors = [\"zstd\", \"lz4\"]\n"),
                    "trellis.toml:2:24: client.compressors[1] must be one of \"snappy\", \"zlib\", \"zstd\", got \"lz4\"");
        COMPARE_STR(diagnostic("[write_concern]\nw = -1\n"),
                    "trellis.toml:2:5: write_concern.w must be a non-negative integer, got -1");
        COMPARE_STR(diagnostic("[write_concern]\nw = [1]\n"),
                    "trellis.toml:2:5: write_concern.w must be a number of nodes or a tag such as \"majority\", got an array");
        COMPARE_STR(diagnostic("[read_preference]\ntag_sets = [{dc = 1}]\n"),
                    "trellis.toml:2:19: read_preference.tag_sets[0].dc must be a string, got 1");
        COMPARE_STR(diagnostic("[read_preference]\nmax_staleness_s = 0\n"),
                    "trellis.toml:2:19: read_preference.max_staleness_s must be a positive number of seconds, or -1 for no "
                    "maximum, got 0");
        COMPARE_STR(diagnostic("[proxy]\nport = 70000\n"),
                    "trellis.toml:2:8: proxy.port must be an integer from 1 to 65535, got 70000");
        COMPARE_STR(diagnostic("pool = 5\n"), "trellis.toml:1:8: pool must be a table, got 5");
        COMPARE_STR(diagnostic("[tls]\nca_file = \"\"\n"),
                    "trellis.toml:2:11: tls.ca_file must be a non-empty string, got \"\"");
    }

    void enumerations_list_their_values_and_suggest() {
        COMPARE_STR(diagnostic("[read_preference]\nmode = \"secondry\"\n"),
                    "trellis.toml:2:8: read_preference.mode must be one of \"primary\", \"primaryPreferred\", "
                    "\"secondary\", \"secondaryPreferred\", \"nearest\", got \"secondry\"; did you mean \"secondary\"?");
        COMPARE_STR(diagnostic("[read_preference]\nmode = \"fastest\"\n"),
                    "trellis.toml:2:8: read_preference.mode must be one of \"primary\", \"primaryPreferred\", "
                    "\"secondary\", \"secondaryPreferred\", \"nearest\", got \"fastest\"");
        // The snake_case spelling is accepted too.
        QCOMPARE(parse_config("[read_preference]\nmode = \"secondary_preferred\"\n", "t").options.read_preference.mode,
                 trellis::read_preference_mode::secondary_preferred);
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"replicaset\"\n"),
                    "trellis.toml:2:12: topology.strategy must be one of \"auto\", \"standalone\", \"replica_set\", "
                    "\"master_slave\", \"mongos\", got \"replicaset\"; did you mean \"replica_set\"?");
        COMPARE_STR(diagnostic("[auth]\nusername = \"u\"\nmechanism = \"SCRAM-SHA-512\"\n"),
                    "trellis.toml:3:13: auth.mechanism must be one of \"SCRAM-SHA-1\", \"SCRAM-SHA-256\", \"MONGODB-X509\", "
                    "\"PLAIN\", \"GSSAPI\", \"MONGODB-AWS\", \"MONGODB-OIDC\", got \"SCRAM-SHA-512\"; did you mean "
                    "\"SCRAM-SHA-1\"?");
        COMPARE_STR(diagnostic("[monitoring]\nserver_monitoring_mode = \"strem\"\n"),
                    "trellis.toml:2:26: monitoring.server_monitoring_mode must be one of \"auto\", \"stream\", \"poll\", "
                    "got \"strem\"; did you mean \"stream\"?");
    }

    void syntax_errors_carry_line_and_column() {
        const auto e = error_of("[pool]\nmax_size = \n");
        QVERIFY(e);
        COMPARE_STR(e->file(), "trellis.toml");
        QCOMPARE(e->line(), std::size_t{2});
        QVERIFY2(e->column() > 0, e->diagnostic().c_str());
        QVERIFY(e->key_path().empty());
        QVERIFY2(e->diagnostic().starts_with("trellis.toml:2:"), e->diagnostic().c_str());
        QCOMPARE(e->diagnostic().find('\n'), std::string::npos);

        const auto dup = error_of("[pool]\nmax_size = 1\nmax_size = 2\n");
        QVERIFY(dup);
        QCOMPARE(dup->line(), std::size_t{3});
    }

    void unknown_keys_are_errors_with_suggestions() {
        COMPARE_STR(diagnostic("[pool]\nmax_szie = 3\n"),
                    "trellis.toml:2:1: unknown key pool.max_szie; did you mean pool.max_size?");
        COMPARE_STR(diagnostic("[pool]\nmax_sise = 3\n"),
                    "trellis.toml:2:1: unknown key pool.max_sise; did you mean pool.max_size?");
        // A key of another table.
        COMPARE_STR(diagnostic("[pool]\nheartbeat_frequency_ms = 500\n"),
                    "trellis.toml:2:1: unknown key pool.heartbeat_frequency_ms; did you mean "
                    "monitoring.heartbeat_frequency_ms?");
        // Top level: tables, and keys written outside their table.
        COMPARE_STR(diagnostic("[pol]\nmax_size = 3\n"), "trellis.toml:1:2: unknown table [pol]; did you mean pool?");
        COMPARE_STR(diagnostic("uri = \"mongodb://h\"\n"), "trellis.toml:1:1: unknown key uri; did you mean client.uri?");
        // Nothing close: no suggestion.
        COMPARE_STR(diagnostic("[client]\nfrobnicate = 1\n"), "trellis.toml:2:1: unknown key client.frobnicate");
        COMPARE_STR(diagnostic("[plugins]\nverbose = true\n"),
                    "trellis.toml:2:1: unknown key plugins.verbose (a plugin's settings go in a [plugins.<name>] table)");
        // Dotted keys and inline tables are the same keys.
        COMPARE_STR(diagnostic("pool.max_szie = 3\n"),
                    "trellis.toml:1:6: unknown key pool.max_szie; did you mean pool.max_size?");
        const auto e = error_of("[pool]\nmax_szie = 3\n");
        COMPARE_STR(e->key_path(), "pool.max_szie");
    }

    void the_first_error_in_the_file_is_reported() {
        // toml++ keeps tables sorted by key; the reader walks them in the file's order.
        COMPARE_STR(diagnostic("[selection]\nlocal_threshold_ms = -1\n[auth]\nsorce = \"x\"\n"),
                    "trellis.toml:2:22: selection.local_threshold_ms must be a non-negative integer, got -1");
    }

    void validation_after_merging_names_the_file_keys() {
        // Both values from the file: pointed at the first key the message names.
        COMPARE_STR(diagnostic("[pool]\nmax_size = 2\nmin_size = 5\n"),
                    "trellis.toml:3:12: pool.min_size (5) cannot exceed pool.max_size (2)");
        // One value from the URI, the other from the file: pointed at the file's key.
        COMPARE_STR(diagnostic("[client]\nuri = \"mongodb://a,b\"\ndirect_connection = true\n"),
                    "trellis.toml:3:21: client.direct_connection=true needs exactly one host, got 2");
        COMPARE_STR(
            diagnostic("[client]\nuri = \"mongodb://h/?readPreference=secondary&maxStalenessSeconds=120\"\n"
                       "[read_preference]\nmode = \"primary\"\n"),
            "trellis.toml:4:8: read_preference.max_staleness_s cannot be used with read_preference.mode=primary (the "
            "default mode)");
        COMPARE_STR(diagnostic("[auth]\npassword = \"x\"\n"),
                    "trellis.toml:2:12: a password is given without a username");
        COMPARE_STR(diagnostic("[tls]\ninsecure = true\nallow_invalid_certificates = true\n"),
                    "trellis.toml:2:12: tls.insecure and tls.allow_invalid_certificates cannot both be given "
                    "(tls.insecure already allows invalid certificates)");
        // A bad URI: pointed at it.
        COMPARE_STR(diagnostic("[client]\nuri = \"mongodb://h:0\"\n"),
                    "trellis.toml:2:7: client.uri: host 'h:0' has an invalid port '0': expected a number from 1 to 65535");
        const auto e = error_of("[client]\nuri = \"postgres://h\"\n");
        QVERIFY(e);
        COMPARE_STR(e->key_path(), "client.uri");
    }

    void uri_warnings_are_kept() {
        const config c = parse_config("[client]\nuri = \"mongodb://h/?frobnicate=1\"\n", "trellis.toml");
        QCOMPARE(c.warnings.size(), std::size_t{1});
        COMPARE_STR(c.warnings[0], "client.uri: unsupported option frobnicate is ignored");
    }

    void topology_master_slave() {
        const config c = parse_config(
            "[topology]\nstrategy = \"master_slave\"\nmaster = \"m.example:27018\"\n"
            "slaves = [\"s1.example\", \"[::1]:27019\"]\n",
            "trellis.toml");
        QCOMPARE(c.topology.strategy, topology_settings::strategy_type::master_slave);
        QVERIFY(c.topology.master);
        QCOMPARE(c.topology.master->host, std::string("m.example"));
        QCOMPARE(c.topology.master->port, std::optional<std::uint16_t>(27018));
        QCOMPARE(c.topology.slaves.size(), std::size_t{2});
        QCOMPARE(c.topology.slaves[1].type, trellis::host_type::ip_literal);
        QCOMPARE(c.topology.slaves[1].port_or_default(), std::uint16_t{27019});
        // Without a URI the pair are the seeds, master first.
        QCOMPARE(c.options.hosts.size(), std::size_t{3});
        QCOMPARE(c.options.hosts[0], *c.topology.master);
        // With a URI, its seeds stay.
        const config with_uri = parse_config(
            "[client]\nuri = \"mongodb://seed\"\n[topology]\nstrategy = \"master_slave\"\nmaster = \"m\"\nslaves = [\"s\"]\n",
            "trellis.toml");
        QCOMPARE(with_uri.options.hosts.size(), std::size_t{1});

        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nslaves = [\"s\"]\n"),
                    "trellis.toml:2:12: topology.strategy \"master_slave\" needs topology.master, the server that takes "
                    "writes");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nmaster = \"m\"\n"),
                    "trellis.toml:2:12: topology.strategy \"master_slave\" needs a non-empty topology.slaves list");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nmaster = \"m\"\nslaves = []\n"),
                    "trellis.toml:4:10: topology.strategy \"master_slave\" needs a non-empty topology.slaves list");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nmaster = \"m\"\nslaves = [\"m:27017\"]\n"),
                    "trellis.toml:4:10: topology.slaves lists the master m:27017 too");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nmaster = \"m\"\nslaves = [\"s\", \"s:27017\"]\n"),
                    "trellis.toml:4:16: topology.slaves[1] repeats s:27017");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"replica_set\"\nmaster = \"m\"\n"),
                    "trellis.toml:3:10: topology.master is only allowed with strategy = \"master_slave\", not "
                    "\"replica_set\"");
        COMPARE_STR(diagnostic("[topology]\nslaves = [\"s\"]\n"),
                    "trellis.toml:2:10: topology.slaves is only allowed with strategy = \"master_slave\", not \"auto\"");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nmaster = \"m:0\"\nslaves = [\"s\"]\n"),
                    "trellis.toml:3:10: topology.master: host 'm:0' has an invalid port '0': expected a number from 1 "
                    "to 65535");
        COMPARE_STR(diagnostic("[topology]\nstrategy = \"master_slave\"\nmaster = \"m/x\"\nslaves = [\"s\"]\n"),
                    "trellis.toml:3:10: topology.master must be a host or host:port, got \"m/x\"");
        for (const char* s : {"auto", "standalone", "replica_set", "mongos"}) {
            const config other = parse_config("[topology]\nstrategy = \"" + std::string(s) + "\"\n", "t");
            COMPARE_STR(std::string(trellis::to_string(other.topology.strategy)), s);
        }
    }

    void plugin_tables_become_bson() {
        const config c = parse_config(
            "[plugins]\ncursor_manager = \"batched\"\n"
            "[plugins.batched]\n"
            "zeta = 1\n"
            "alpha = 2.5\n"
            "on = true\n"
            "name = \"b\"\n"
            "list = [1, \"two\", [3], {four = 4}]\n"
            "nested = { inner = { deep = \"x\" } }\n"
            "at = 1979-05-27T07:32:00-08:00\n"
            "local = 1979-05-27T07:32:00.250\n"
            "day = 1979-05-27\n"
            "[plugins.\"other plugin\"]\n",
            "trellis.toml");
        QCOMPARE(c.plugins.cursor_manager, std::optional<std::string>("batched"));
        QCOMPARE(c.plugins.tables.size(), std::size_t{2});
        const trellis::bson::document_view d = c.plugins.table("batched");
        // Keys in the file's order.
        std::vector<std::string> keys;
        for (const auto& e : d) keys.emplace_back(e.key());
        QCOMPARE(keys, (std::vector<std::string>{"zeta", "alpha", "on", "name", "list", "nested", "at", "local", "day"}));
        QCOMPARE(d["zeta"].type(), trellis::bson::type::int64);
        QCOMPARE(d["zeta"].get_int64(), std::int64_t{1});
        QCOMPARE(d["alpha"].get_double(), 2.5);
        QCOMPARE(d["on"].get_bool(), true);
        QCOMPARE(d["name"].get_string(), std::string_view("b"));
        const auto list = d["list"].get_array();
        QCOMPARE(list.size(), std::size_t{4});
        QCOMPARE(list[0].get_int64(), std::int64_t{1});
        QCOMPARE(list[1].get_string(), std::string_view("two"));
        QCOMPARE(list[2].get_array()[0].get_int64(), std::int64_t{3});
        QCOMPARE(list[3].get_document()["four"].get_int64(), std::int64_t{4});
        QCOMPARE(d["nested"].get_document()["inner"].get_document()["deep"].get_string(), std::string_view("x"));
        // 1979-05-27T15:32:00Z is 296667120 seconds after the epoch.
        QCOMPARE(d["at"].get_date_time().milliseconds, std::int64_t{296667120000});
        // Local date-times and dates are taken as UTC.
        QCOMPARE(d["local"].get_date_time().milliseconds, std::int64_t{296638320250});
        QCOMPARE(d["day"].get_date_time().milliseconds, std::int64_t{296611200000});
        QVERIFY(c.plugins.table("other plugin").empty());
        QVERIFY(c.plugins.table("absent").empty());

        COMPARE_STR(diagnostic("[plugins.x]\nat = 07:32:00\n"),
                    "trellis.toml:2:6: plugins.x.at: a time of day without a date has no BSON type; write it as a "
                    "string, got 07:32:00");
        COMPARE_STR(diagnostic("[plugins.x]\n\"a\\u0000b\" = 1\n"),
                    "trellis.toml:2:1: plugins.x.\"a\\u0000b\": a key with a NUL character cannot become a BSON key");
        COMPARE_STR(diagnostic("[plugins]\npaths = \"one\"\n"),
                    "trellis.toml:2:9: plugins.paths must be an array of paths, got \"one\"");
    }

    void relative_plugin_paths_resolve_against_the_file() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString file = dir.filePath("conf/trellis.toml");
        QVERIFY(QDir(dir.path()).mkpath("conf"));
        write_file(file,
                   "[plugins]\npaths = [\"plugins\", \"../shared/p.so\", \"/opt/trellis/plugins\"]\n"
                   "[tls]\nca_file = \"ca.pem\"\n");
        const config c = trellis::load_config_file(file.toStdString());
        const std::filesystem::path base = std::filesystem::path(dir.path().toStdString()) / "conf";
        QCOMPARE(c.plugins.paths.size(), std::size_t{3});
        COMPARE_STR(c.plugins.paths[0].string(), (base / "plugins").string());
        COMPARE_STR(c.plugins.paths[1].string(), (std::filesystem::path(dir.path().toStdString()) / "shared/p.so").string());
        COMPARE_STR(c.plugins.paths[2].string(), "/opt/trellis/plugins");
        COMPARE_STR(*c.options.tls.ca_file, (base / "ca.pem").string());

        // Text without a file: relative paths stay as written, or resolve against the directory given.
        const config text = parse_config("[plugins]\npaths = [\"plugins\"]\n", "inline");
        COMPARE_STR(text.plugins.paths.at(0).string(), "plugins");
        const config based = parse_config("[plugins]\npaths = [\"plugins\"]\n", "inline", "/etc/trellis");
        COMPARE_STR(based.plugins.paths.at(0).string(), "/etc/trellis/plugins");
    }

    // toml++ recurses into every level: 20,000 of them overflowed the stack (SIGSEGV), 10,000
    // became a plugin table nested far past BSON's limit. The text is checked before parsing.
    void deep_nesting_is_refused_before_parsing() {
        const auto repeat = [](std::string_view s, std::size_t n) {
            std::string out;
            for (std::size_t i = 0; i < n; ++i) out += s;
            return out;
        };
        const auto dotted = [&](std::size_t n) { return "a" + repeat(".a", n - 1); };
        for (const std::size_t n : {std::size_t{20000}, std::size_t{10000}}) {
            const std::vector<std::pair<std::string, std::string>> cases = {
                {"[plugins.x]\n" + dotted(n) + " = 1\n", "trellis.toml:2:1: "},
                {"[plugins.x]\nv = " + repeat("{a = ", n) + "1" + repeat("}", n) + "\n", "trellis.toml:2:"},
                {"[plugins.x]\nv = " + repeat("[", n) + "1" + repeat("]", n) + "\n", "trellis.toml:2:"},
                {"# arrays over lines\n[plugins.x]\nv = " + repeat("[\n", n) + "1" + repeat("]", n) + "\n",
                 "trellis.toml:200:1: "},
                {"[" + dotted(n) + "]\nk = 1\n", "trellis.toml:1:1: "},
                {"[[" + dotted(n) + "]]\n", "trellis.toml:1:1: "},
                {"[plugins.x]\nv = [" + repeat("{a = [", n / 2) + "1" + repeat("]}", n / 2) + "]\n", "trellis.toml:2:"},
            };
            for (const auto& [text, where] : cases) {
                const auto e = error_of(text);
                QVERIFY2(e, text.substr(0, 60).c_str());
                QVERIFY2(e->diagnostic().starts_with(where), e->diagnostic().c_str());
                QVERIFY2(e->message().find("nest more than 199 levels") != std::string::npos, e->diagnostic().c_str());
                QCOMPARE(e->code(), std::error_code(trellis::errc::configuration_error));
            }
        }
        // The same through a file, as client::from_config_file reads it.
        QTemporaryDir dir;
        const QString deep = dir.filePath("deep.toml");
        write_file(deep, "[plugins.x]\n" + dotted(20000) + " = 1\n");
        try {
            (void)trellis::load_config_file(deep.toStdString());
            QFAIL("no error for a key 20,000 levels deep");
        } catch (const config_error& e) {
            QCOMPARE(e.line(), std::size_t{2});
            QCOMPARE(e.column(), std::size_t{1});
        }

        // The limit is BSON's: 200 levels with the root table. [plugins.x] is 2 levels, so a key
        // of 198 parts reaches 199 below the root and its table is valid BSON; one more is not.
        const config at_limit = parse_config("[plugins.x]\n" + dotted(198) + " = 1\n", "t");
        const trellis::bson::document_view table = at_limit.plugins.table("x");
        QCOMPARE(trellis::bson::document_view::validated({table.data(), table.size()}).size(), table.size());
        QVERIFY(error_of("[plugins.x]\n" + dotted(199) + " = 1\n"));
        QVERIFY(!error_of("[plugins.x]\nv = " + repeat("[", 197) + "1" + repeat("]", 197) + "\n"));
        QVERIFY(error_of("[plugins.x]\nv = " + repeat("[", 198) + "1" + repeat("]", 198) + "\n"));
        QVERIFY(!error_of("[plugins.x]\nv = " + repeat("{a = ", 197) + "1" + repeat("}", 197) + "\n"));
        QVERIFY(error_of("[plugins.x]\nv = " + repeat("{a = ", 198) + "1" + repeat("}", 198) + "\n"));
        // [[t]] is an array and its element: [[plugins.x.t]] then [plugins.x.t.u] puts u at level 5.
        const config arrays = parse_config("[[plugins.x.t]]\n[plugins.x.t.u]\nk = [1]\n", "t");
        QCOMPARE(arrays.plugins.table("x")["t"].get_array()[0].get_document()["u"].get_document()["k"].get_array()[0].get_int64(),
                 std::int64_t{1});
        // Brackets in strings and comments are not nesting.
        const std::string brackets = repeat("[{", 5000);
        const config quoted = parse_config("[plugins.x]\ns = \"" + brackets + "\" # " + brackets + "\nm = \"\"\"" +
                                               brackets + "\n\"\"\"\nl = '" + brackets + "'\n",
                                           "t");
        QCOMPARE(quoted.plugins.table("x")["s"].get_string().size(), brackets.size());
    }

    void file_errors_name_the_file() {
        QTemporaryDir dir;
        const std::string missing = dir.filePath("absent.toml").toStdString();
        try {
            (void)trellis::load_config_file(missing);
            QFAIL("no error for a missing file");
        } catch (const config_error& e) {
            COMPARE_STR(e.diagnostic(), missing + ": cannot open: No such file or directory");
            QCOMPARE(e.line(), std::size_t{0});
        }
        const QString bad = dir.filePath("bad.toml");
        write_file(bad, "[client]\nuri = \"mongodb://localhost\"\n\n[pool]\nmax_size = -3\n");
        try {
            (void)trellis::load_config_file(bad.toStdString());
            QFAIL("no error for a bad file");
        } catch (const config_error& e) {
            COMPARE_STR(e.diagnostic(), bad.toStdString() + ":5:12: pool.max_size must be a positive integer, got -3");
        }
    }

    void the_example_file() {
        const std::filesystem::path example = std::filesystem::path(TRELLIS_SOURCE_DIR) / "examples" / "trellis.toml";
        const config c = trellis::load_config_file(example);
        const trellis::client_options& o = c.options;
        QCOMPARE(o.hosts.size(), std::size_t{3});
        QCOMPARE(o.hosts[0].host, std::string("db1.example.net"));
        QCOMPARE(o.replica_set, std::optional<std::string>("rs0"));
        QCOMPARE(o.database, std::optional<std::string>("inventory"));
        // The URI says maxPoolSize=20 and primaryPreferred; the file overrides both.
        QCOMPARE(o.max_pool_size, 50u);
        QCOMPARE(o.read_preference.mode, trellis::read_preference_mode::secondary_preferred);
        QCOMPARE(o.read_preference.tag_sets.size(), std::size_t{3});
        QCOMPARE(o.read_preference.max_staleness, std::optional<std::chrono::seconds>(120s));
        QCOMPARE(o.app_name, std::optional<std::string>("inventory-service"));
        QCOMPARE(o.compressors, (std::vector<std::string>{"zstd", "zlib"}));
        QCOMPARE(o.heartbeat_frequency, 5000ms);
        QCOMPARE(o.server_monitoring_mode, trellis::monitoring_mode::stream);
        QCOMPARE(o.write_concern.w, (std::optional<std::variant<std::int32_t, std::string>>("majority")));
        QCOMPARE(o.tls.enabled, std::optional<bool>(true));
        COMPARE_STR(*o.tls.ca_file, (example.parent_path() / "certs/ca.pem").lexically_normal().string());
        QCOMPARE(o.auth.username, std::optional<std::string>("inventory"));
        QCOMPARE(o.auth.mechanism, std::optional<trellis::auth_mechanism>(trellis::auth_mechanism::scram_sha_256));
        QCOMPARE(c.topology.strategy, topology_settings::strategy_type::replica_set);
        QCOMPARE(c.plugins.cursor_manager, std::optional<std::string>("batched"));
        QCOMPARE(c.plugins.paths.size(), std::size_t{2});
        QVERIFY(c.plugins.paths[0].is_absolute());
        QCOMPARE(c.plugins.table("batched")["batch_size"].get_int64(), std::int64_t{500});
        QCOMPARE(c.plugins.table("audit-log")["sample_rate"].get_double(), 0.25);
        QVERIFY(c.warnings.empty());
        // What the file gives passes the checks a client runs.
        trellis::validate(o);
    }
};

QTEST_APPLESS_MAIN(ConfigTest)
#include "config_test.moc"
