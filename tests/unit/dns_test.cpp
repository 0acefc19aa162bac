// Tests of trellis::dns (kernel/src/dns): SRV and TXT lookups through c-ares driven by Asio,
// against a dnsmasq this test starts on a loopback port it picks, with records modelled on the
// seedlist discovery spec's test.build.10gen.cc zone. Timeouts and cancellation use a UDP socket
// that never answers, so they need no dnsmasq. Without dnsmasq the tests that need it skip
// (and CTest reports the test as skipped).

#include <QtTest/QtTest>

#include <QProcess>
#include <QStandardPaths>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "trellis/dns.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using trellis::srv_record;
using trellis::txt_record;
using trellis::dns::resolver;
using trellis::dns::resolver_options;
using trellis::dns::seedlist_result;

namespace {

using clock_type = std::chrono::steady_clock;

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

#define VERIFY_CONTAINS(text, part) \
    QVERIFY2(contains((text), (part)), (std::string("'") + (text) + "' lacks '" + (part) + "'").c_str())

// How the resolver reports operation_aborted: ECANCELED, portably spelt.
const std::error_code aborted = std::make_error_code(std::errc::operation_canceled);

// A UDP socket on loopback that nobody reads: DNS queries sent to it time out.
struct silent_server {
    asio::io_context io;
    asio::ip::udp::socket socket{io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};

    trellis::dns::endpoint endpoint() const { return {socket.local_endpoint().address(), socket.local_endpoint().port()}; }
};

// Qt defines `emit` as an empty macro; Asio's headers shield themselves from it, this call must too.
#pragma push_macro("emit")
#undef emit
void cancel_terminally(asio::cancellation_signal& signal) { signal.emit(asio::cancellation_type::terminal); }
#pragma pop_macro("emit")

std::uint16_t free_udp_port() {
    asio::io_context io;
    asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return s.local_endpoint().port();
}

template <typename T>
struct outcome {
    bool done = false;
    std::error_code ec;
    T value{};
    std::string message;
};

// One query or seedlist resolution on an io_context of its own, with a plain callback.
outcome<std::vector<srv_record>> query_srv(const resolver_options& options, const std::string& name) {
    asio::io_context io;
    resolver r(io, options);
    trellis::dns::diagnostics diag;
    outcome<std::vector<srv_record>> out;
    r.async_query_srv(name, diag, [&](std::error_code ec, std::vector<srv_record> records) {
        out.done = true;
        out.ec = ec;
        out.value = std::move(records);
    });
    io.run();
    out.message = diag.message;
    return out;
}

outcome<std::vector<txt_record>> query_txt(const resolver_options& options, const std::string& name) {
    asio::io_context io;
    resolver r(io, options);
    trellis::dns::diagnostics diag;
    outcome<std::vector<txt_record>> out;
    r.async_query_txt(name, diag, [&](std::error_code ec, std::vector<txt_record> records) {
        out.done = true;
        out.ec = ec;
        out.value = std::move(records);
    });
    io.run();
    out.message = diag.message;
    return out;
}

outcome<seedlist_result> seedlist(const resolver_options& options, std::string_view uri) {
    asio::io_context io;
    resolver r(io, options);
    outcome<seedlist_result> out;
    trellis::dns::async_resolve_seedlist(r, trellis::parse_uri(uri), [&](std::error_code ec, seedlist_result res) {
        out.done = true;
        out.ec = ec;
        out.message = res.error_message;
        out.value = std::move(res);
    });
    io.run();
    return out;
}

std::set<std::string> host_ports(const trellis::client_options& o) {
    std::set<std::string> result;
    for (const trellis::server_address& a : o.hosts) result.insert(a.host + ":" + std::to_string(a.port_or_default()));
    return result;
}

// The zone dnsmasq serves. --local makes it answer NXDOMAIN itself for other names in the
// domain (with no upstream it would refuse them).
QStringList zone_arguments() {
    const QString d = QStringLiteral(".test.build.10gen.cc");
    auto srv = [&](const QString& name, const QString& target, int port) {
        return QStringLiteral("--srv-host=_mongodb._tcp.") + name + d + "," + target + "," + QString::number(port);
    };
    auto txt = [&](const QString& name, const QString& strings) {
        return QStringLiteral("--txt-record=") + name + d + "," + strings;
    };
    return {
        QStringLiteral("--local=/test.build.10gen.cc/"),
        // Several targets and ports, no TXT record.
        srv("test1", "localhost" + d, 27017),
        srv("test1", "localhost" + d, 27018),
        srv("test1", "other" + d, 27019),
        // TXT options.
        srv("test5", "localhost" + d, 27017),
        txt("test5", "replicaSet=repl0&authSource=thisDB"),
        // Two TXT records: the spec forbids them.
        srv("test6", "localhost" + d, 27017),
        txt("test6", "replicaSet=repl0"),
        txt("test6", "authSource=otherDB"),
        // One TXT record split into three character-strings (commas separate them for dnsmasq).
        srv("test8", "localhost" + d, 27017),
        txt("test8", "replicaS,et=repl0&auth,Source=thisDB"),
        // A TXT value of the wrong type: a warning, not an error.
        srv("test9", "localhost" + d, 27017),
        txt("test9", "loadBalanced=maybe"),
        // A target outside the parent domain.
        srv("test18", "localhost.evil.example", 27017),
        // srvServiceName.
        QStringLiteral("--srv-host=_customname._tcp.test22") + d + ",localhost" + d + ",27017",
        // test4 has nothing: NXDOMAIN.
    };
}

}  // namespace

#define REQUIRE_DNSMASQ()                                    \
    do {                                                     \
        if (!dnsmasq_ready_) QSKIP(skip_reason_.constData()); \
    } while (false)

class DnsTest : public QObject {
    Q_OBJECT

private:
    QProcess dnsmasq_;
    std::uint16_t port_ = 0;
    bool dnsmasq_ready_ = false;
    QByteArray skip_reason_;

    resolver_options dnsmasq_options() const {
        resolver_options o;
        o.servers = {{asio::ip::make_address("127.0.0.1"), port_}};
        o.timeout = 1000ms;
        o.tries = 2;
        return o;
    }

    // Starts dnsmasq on a free port (again on another one if that port was taken meanwhile) and
    // waits until it answers.
    void start_dnsmasq() {
        QStringList dirs = {"/usr/sbin", "/sbin", "/usr/local/sbin"};
        QString program = QStandardPaths::findExecutable("dnsmasq");
        if (program.isEmpty()) program = QStandardPaths::findExecutable("dnsmasq", dirs);
        if (program.isEmpty()) {
            skip_reason_ = "dnsmasq is not installed (Debian: apt-get install dnsmasq; scripts/install-deps.sh)";
            return;
        }
        QString log;
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_udp_port();
            QStringList args = {"--port=" + QString::number(port_), "--listen-address=127.0.0.1", "--bind-interfaces",
                                "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
                                "--log-facility=-"};
            args += zone_arguments();
            dnsmasq_.setProcessChannelMode(QProcess::MergedChannels);
            dnsmasq_.start(program, args);
            if (!dnsmasq_.waitForStarted(5000)) QFAIL(qPrintable("dnsmasq did not start: " + dnsmasq_.errorString()));
            resolver_options probe;
            probe.servers = {{asio::ip::make_address("127.0.0.1"), port_}};
            probe.timeout = 100ms;
            probe.tries = 1;
            const auto deadline = clock_type::now() + 10s;
            while (clock_type::now() < deadline && dnsmasq_.state() == QProcess::Running) {
                if (!query_srv(probe, "_mongodb._tcp.test1.test.build.10gen.cc").ec) {
                    dnsmasq_ready_ = true;
                    return;
                }
                dnsmasq_.waitForFinished(50);
            }
            log += QString::fromUtf8(dnsmasq_.readAll());
            dnsmasq_.kill();
            dnsmasq_.waitForFinished(5000);
        }
        qWarning("dnsmasq output:\n%s", qPrintable(log));
        QFAIL("dnsmasq is installed but never answered");
    }

private slots:
    void initTestCase() {
        qunsetenv(trellis::dns::server_environment_variable);
        start_dnsmasq();
        if (!dnsmasq_ready_) qWarning("SKIP dnsmasq tests: %s", skip_reason_.constData());
    }

    void cleanupTestCase() {
        if (dnsmasq_.state() != QProcess::NotRunning) {
            dnsmasq_.terminate();
            if (!dnsmasq_.waitForFinished(5000)) {
                dnsmasq_.kill();
                dnsmasq_.waitForFinished(5000);
            }
        }
    }

    // ------------------------------------------------------------------ servers

    void endpoints_parse_and_print() {
        using trellis::dns::endpoint;
        QCOMPARE(endpoint::parse("127.0.0.1").port, std::uint16_t(53));
        QCOMPARE(endpoint::parse("127.0.0.1:5353").to_string(), std::string("127.0.0.1:5353"));
        QCOMPARE(endpoint::parse("::1").to_string(), std::string("[::1]:53"));
        QCOMPARE(endpoint::parse("[::1]:5353").to_string(), std::string("[::1]:5353"));
        QCOMPARE(endpoint::parse("[fe80::1]").port, std::uint16_t(53));
        for (const char* bad : {"", "dns.example.com", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
                                "[::1", "[127.0.0.1]:53", "[::1]x", "300.1.1.1"}) {
            try {
                (void)endpoint::parse(bad);
                QFAIL(qPrintable(QString("accepted '") + bad + "'"));
            } catch (const trellis::configuration_error& e) {
                VERIFY_CONTAINS(std::string(e.what()), "DNS server '" + std::string(bad) + "'");
            }
        }
    }

    void servers_come_from_options_then_environment() {
        asio::io_context io;
        resolver_options o;
        o.servers = {trellis::dns::endpoint::parse("127.0.0.1:5300"), trellis::dns::endpoint::parse("[::1]:5301")};
        QCOMPARE(resolver(io, o).servers(), o.servers);

        qputenv(trellis::dns::server_environment_variable, "127.0.0.2:5302, 127.0.0.3");
        const std::vector<trellis::dns::endpoint> from_env = resolver(io).servers();
        QCOMPARE(from_env.size(), std::size_t(2));
        QCOMPARE(from_env[0].to_string(), std::string("127.0.0.2:5302"));
        QCOMPARE(from_env[1].to_string(), std::string("127.0.0.3:53"));
        QCOMPARE(resolver(io, o).servers(), o.servers);  // explicit servers win

        qputenv(trellis::dns::server_environment_variable, "dns.example.com");
        try {
            resolver r(io);
            QFAIL("a host name in TRELLIS_DNS_SERVER was accepted");
        } catch (const trellis::configuration_error& e) {
            VERIFY_CONTAINS(std::string(e.what()), "TRELLIS_DNS_SERVER: DNS server 'dns.example.com'");
        }
        qunsetenv(trellis::dns::server_environment_variable);

        QVERIFY(!resolver(io).servers().empty());  // the system's (resolv.conf, else c-ares' default)
        resolver_options bad;
        bad.tries = 0;
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, resolver(io, bad));
        bad.tries = 1;
        bad.timeout = 0ms;
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, resolver(io, bad));
    }

    void environment_variable_reaches_blocking_resolution() {
        REQUIRE_DNSMASQ();
        qputenv(trellis::dns::server_environment_variable, QByteArray("127.0.0.1:") + QByteArray::number(port_));
        trellis::client_options o;
        try {
            o = trellis::dns::resolve_seedlist(trellis::parse_uri("mongodb+srv://test5.test.build.10gen.cc/"));
        } catch (const std::exception& e) {
            qunsetenv(trellis::dns::server_environment_variable);
            QFAIL(e.what());
        }
        qunsetenv(trellis::dns::server_environment_variable);
        QCOMPARE(o.replica_set, std::optional<std::string>("repl0"));
    }

    // ------------------------------------------------------------------ SRV and TXT queries

    void srv_with_several_targets_and_ports() {
        REQUIRE_DNSMASQ();
        const auto out = query_srv(dnsmasq_options(), "_mongodb._tcp.test1.test.build.10gen.cc");
        QVERIFY(out.done);
        QVERIFY2(!out.ec, out.message.c_str());
        QVERIFY(out.message.empty());
        std::multiset<std::string> got;
        for (const srv_record& r : out.value) got.insert(r.target + ":" + std::to_string(r.port));
        QCOMPARE(got, (std::multiset<std::string>{"localhost.test.build.10gen.cc:27017",
                                                  "localhost.test.build.10gen.cc:27018",
                                                  "other.test.build.10gen.cc:27019"}));
    }

    void txt_records_come_back_per_record_with_their_strings() {
        REQUIRE_DNSMASQ();
        auto one = query_txt(dnsmasq_options(), "test5.test.build.10gen.cc");
        QVERIFY2(!one.ec, one.message.c_str());
        QCOMPARE(one.value, (std::vector<txt_record>{{"replicaSet=repl0&authSource=thisDB"}}));

        auto split = query_txt(dnsmasq_options(), "test8.test.build.10gen.cc");
        QVERIFY2(!split.ec, split.message.c_str());
        QCOMPARE(split.value, (std::vector<txt_record>{{"replicaS", "et=repl0&auth", "Source=thisDB"}}));

        auto two = query_txt(dnsmasq_options(), "test6.test.build.10gen.cc");
        QVERIFY2(!two.ec, two.message.c_str());
        QCOMPARE(two.value.size(), std::size_t(2));

        // No TXT record (the name exists for SRV only, or not at all) is no options, not an error.
        auto none = query_txt(dnsmasq_options(), "test1.test.build.10gen.cc");
        QVERIFY2(!none.ec, none.message.c_str());
        QVERIFY(none.value.empty());
        auto missing = query_txt(dnsmasq_options(), "test4.test.build.10gen.cc");
        QVERIFY2(!missing.ec, missing.message.c_str());
        QVERIFY(missing.value.empty());
    }

    void nxdomain_names_the_query() {
        REQUIRE_DNSMASQ();
        const auto out = query_srv(dnsmasq_options(), "_mongodb._tcp.test4.test.build.10gen.cc");
        QVERIFY(out.done);
        QCOMPARE(out.ec, std::error_code(trellis::errc::configuration_error));
        QCOMPARE(out.message, std::string("SRV lookup of _mongodb._tcp.test4.test.build.10gen.cc failed: "
                                          "Domain name not found"));
        QVERIFY(out.value.empty());

        // A name with records, but none of type SRV: no data, the same kind of error.
        const auto nodata = query_srv(dnsmasq_options(), "test5.test.build.10gen.cc");
        QCOMPARE(nodata.ec, std::error_code(trellis::errc::configuration_error));
        VERIFY_CONTAINS(nodata.message, "SRV lookup of test5.test.build.10gen.cc failed: ");

        try {
            (void)trellis::dns::resolve_seedlist(trellis::parse_uri("mongodb+srv://test4.test.build.10gen.cc/"),
                                                 dnsmasq_options());
            QFAIL("resolved a name that does not exist");
        } catch (const trellis::configuration_error& e) {
            // std::system_error appends the category's message to what().
            QVERIFY(std::string_view(e.what()).starts_with(
                "SRV lookup of _mongodb._tcp.test4.test.build.10gen.cc failed: Domain name not found"));
        }
    }

    // ------------------------------------------------------------------ the seedlist step

    void seedlist_from_srv() {
        REQUIRE_DNSMASQ();
        const auto out = seedlist(dnsmasq_options(), "mongodb+srv://test1.test.build.10gen.cc/app");
        QVERIFY(out.done);
        QVERIFY2(!out.ec, out.message.c_str());
        QVERIFY(out.message.empty());
        QCOMPARE(host_ports(out.value.options),
                 (std::set<std::string>{"localhost.test.build.10gen.cc:27017", "localhost.test.build.10gen.cc:27018",
                                        "other.test.build.10gen.cc:27019"}));
        QCOMPARE(out.value.options.tls.enabled, std::optional<bool>(true));
        QCOMPARE(out.value.options.database, std::optional<std::string>("app"));
        QVERIFY(!out.value.options.replica_set);
    }

    void seedlist_applies_txt_options() {
        REQUIRE_DNSMASQ();
        for (const char* host : {"test5", "test8"}) {  // test8: the same options in three strings
            const auto out = seedlist(dnsmasq_options(), std::string("mongodb+srv://") + host + ".test.build.10gen.cc/");
            QVERIFY2(!out.ec, out.message.c_str());
            QCOMPARE(out.value.options.replica_set, std::optional<std::string>("repl0"));
            QCOMPARE(out.value.options.auth.source, std::optional<std::string>("thisDB"));
            QCOMPARE(host_ports(out.value.options), (std::set<std::string>{"localhost.test.build.10gen.cc:27017"}));
        }
        // The connection string wins over the TXT record.
        const auto own = seedlist(dnsmasq_options(), "mongodb+srv://test5.test.build.10gen.cc/?authSource=mine");
        QVERIFY2(!own.ec, own.message.c_str());
        QCOMPARE(own.value.options.auth.source, std::optional<std::string>("mine"));
        QCOMPARE(own.value.options.replica_set, std::optional<std::string>("repl0"));
    }

    void seedlist_rejects_two_txt_records() {
        REQUIRE_DNSMASQ();
        const auto out = seedlist(dnsmasq_options(), "mongodb+srv://test6.test.build.10gen.cc/");
        QVERIFY(out.done);
        QCOMPARE(out.ec, std::error_code(trellis::errc::configuration_error));
        VERIFY_CONTAINS(out.message, "returned 2 records; at most one is allowed");
        QVERIFY(out.value.options.hosts.empty());
    }

    void seedlist_rejects_a_target_outside_the_domain() {
        REQUIRE_DNSMASQ();
        const auto out = seedlist(dnsmasq_options(), "mongodb+srv://test18.test.build.10gen.cc/");
        QCOMPARE(out.ec, std::error_code(trellis::errc::configuration_error));
        VERIFY_CONTAINS(out.message, "'localhost.evil.example' is not inside the domain of 'test18.test.build.10gen.cc'");
        try {
            (void)trellis::dns::resolve_seedlist(trellis::parse_uri("mongodb+srv://test18.test.build.10gen.cc/"),
                                                 dnsmasq_options());
            QFAIL("accepted a target outside the domain");
        } catch (const trellis::configuration_error& e) {
            QVERIFY(std::string_view(e.what()).starts_with(out.message));
        }
    }

    void seedlist_srv_max_hosts() {
        REQUIRE_DNSMASQ();
        const std::set<std::string> all = {"localhost.test.build.10gen.cc:27017", "localhost.test.build.10gen.cc:27018",
                                           "other.test.build.10gen.cc:27019"};
        for (int i = 0; i < 5; ++i) {
            const auto two = seedlist(dnsmasq_options(), "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=2");
            QVERIFY2(!two.ec, two.message.c_str());
            QCOMPARE(two.value.options.hosts.size(), std::size_t(2));
            const std::set<std::string> chosen = host_ports(two.value.options);
            QCOMPARE(chosen.size(), std::size_t(2));
            QVERIFY(std::includes(all.begin(), all.end(), chosen.begin(), chosen.end()));
        }
        const auto more = seedlist(dnsmasq_options(), "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=5");
        QCOMPARE(host_ports(more.value.options), all);
        // srvMaxHosts with a replicaSet from the TXT record: validate() runs again after DNS.
        const auto rs = seedlist(dnsmasq_options(), "mongodb+srv://test5.test.build.10gen.cc/?srvMaxHosts=1");
        QCOMPARE(rs.ec, std::error_code(trellis::errc::configuration_error));
        VERIFY_CONTAINS(rs.message, "srvMaxHosts");
    }

    void seedlist_service_name_and_warnings() {
        REQUIRE_DNSMASQ();
        const auto custom =
            seedlist(dnsmasq_options(), "mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname");
        QVERIFY2(!custom.ec, custom.message.c_str());
        QCOMPARE(host_ports(custom.value.options), (std::set<std::string>{"localhost.test.build.10gen.cc:27017"}));

        std::vector<std::string> warnings = {"mine"};
        const trellis::client_options o = trellis::dns::resolve_seedlist(
            trellis::parse_uri("mongodb+srv://test9.test.build.10gen.cc/"), dnsmasq_options(), &warnings);
        QCOMPARE(o.hosts.size(), std::size_t(1));
        QCOMPARE(warnings.size(), std::size_t(2));
        VERIFY_CONTAINS(warnings[1], "loadBalanced=maybe");
    }

    void non_srv_strings_need_no_dns() {
        // Pointed at a server that never answers: any query would time out.
        silent_server silent;
        resolver_options o;
        o.servers = {silent.endpoint()};
        const auto parsed = trellis::parse_uri("mongodb://a.example.com,b.example.com:27018/");
        const auto start = clock_type::now();
        QCOMPARE(trellis::dns::resolve_seedlist(parsed, o), parsed.options);
        const auto out = seedlist(o, "mongodb://a.example.com/");
        QVERIFY(out.done);
        QVERIFY(!out.ec);
        QCOMPARE(out.value.options.hosts.size(), std::size_t(1));
        QVERIFY(clock_type::now() - start < 1s);
    }

    // ------------------------------------------------------------------ timeouts and cancellation

    void timeout_is_a_connection_failure_naming_the_server() {
        silent_server silent;
        resolver_options o;
        o.servers = {silent.endpoint()};
        o.timeout = 200ms;
        o.tries = 1;
        const auto start = clock_type::now();
        const auto out = query_srv(o, "_mongodb._tcp.test1.test.build.10gen.cc");
        const auto elapsed = clock_type::now() - start;
        QVERIFY(out.done);
        QCOMPARE(out.ec, std::error_code(trellis::errc::connection_failure));
        VERIFY_CONTAINS(out.message, "SRV lookup of _mongodb._tcp.test1.test.build.10gen.cc failed: Timeout");
        VERIFY_CONTAINS(out.message, silent.endpoint().to_string());
        QVERIFY2(elapsed >= 150ms && elapsed < 1s,
                 qPrintable(QString::number(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count())));

        try {
            (void)trellis::dns::resolve_seedlist(trellis::parse_uri("mongodb+srv://test1.test.build.10gen.cc/"), o);
            QFAIL("no timeout");
        } catch (const trellis::configuration_error&) {
            QFAIL("a timeout is not a configuration error");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), std::error_code(trellis::errc::connection_failure));
            VERIFY_CONTAINS(std::string(e.what()), "Timeout");
        }
    }

    void cancel_aborts_pending_operations() {
        silent_server silent;
        resolver_options o;
        o.servers = {silent.endpoint()};
        o.timeout = 5s;
        asio::io_context io;
        resolver r(io, o);
        outcome<std::vector<srv_record>> srv;
        outcome<std::vector<txt_record>> txt;
        outcome<seedlist_result> seeds;
        trellis::dns::diagnostics diag;
        r.async_query_srv("_mongodb._tcp.a.example.com", diag, [&](std::error_code ec, std::vector<srv_record>) {
            srv.done = true;
            srv.ec = ec;
        });
        r.async_query_txt("a.example.com", [&](std::error_code ec, std::vector<txt_record>) {
            txt.done = true;
            txt.ec = ec;
        });
        trellis::dns::async_resolve_seedlist(r, trellis::parse_uri("mongodb+srv://a.example.com/"),
                                             [&](std::error_code ec, seedlist_result) {
                                                 seeds.done = true;
                                                 seeds.ec = ec;
                                             });
        asio::steady_timer t(io, 50ms);
        t.async_wait([&](boost::system::error_code) { r.cancel(); });
        const auto start = clock_type::now();
        io.run();
        QVERIFY(clock_type::now() - start < 2s);
        QVERIFY(srv.done && txt.done && seeds.done);
        QCOMPARE(srv.ec, aborted);
        QVERIFY(srv.ec == std::errc::operation_canceled);
        QCOMPARE(txt.ec, aborted);
        QCOMPARE(seeds.ec, aborted);
        VERIFY_CONTAINS(diag.message, "SRV lookup of _mongodb._tcp.a.example.com failed");
    }

    void resolver_stays_usable_after_cancel() {
        REQUIRE_DNSMASQ();
        asio::io_context io;
        resolver r(io, dnsmasq_options());
        std::vector<std::error_code> codes;
        auto record = [&](std::error_code ec, std::vector<srv_record>) { codes.push_back(ec); };
        r.async_query_srv("_mongodb._tcp.test1.test.build.10gen.cc", record);
        r.cancel();  // before the answer can have arrived: nothing has run yet
        r.async_query_srv("_mongodb._tcp.test1.test.build.10gen.cc", record);
        io.run();
        QCOMPARE(codes.size(), std::size_t(2));
        QCOMPARE(codes[0], aborted);
        QCOMPARE(codes[1], std::error_code());
    }

    void destroying_the_resolver_aborts_pending_operations() {
        silent_server silent;
        resolver_options o;
        o.servers = {silent.endpoint()};
        o.timeout = 5s;
        asio::io_context io;
        auto r = std::make_unique<resolver>(io, o);
        outcome<std::vector<srv_record>> srv;
        outcome<std::vector<txt_record>> txt;
        r->async_query_srv("_mongodb._tcp.a.example.com", [&](std::error_code ec, std::vector<srv_record>) {
            srv.done = true;
            srv.ec = ec;
        });
        r->async_query_txt("a.example.com", [&](std::error_code ec, std::vector<txt_record>) {
            txt.done = true;
            txt.ec = ec;
        });
        io.poll();  // let the queries go out
        QVERIFY(!srv.done);
        r.reset();
        const auto start = clock_type::now();
        io.run();
        QVERIFY(clock_type::now() - start < 1s);
        QVERIFY(srv.done && txt.done);
        QCOMPARE(srv.ec, aborted);
        QCOMPARE(txt.ec, aborted);
    }

    void cancellation_slot_aborts_one_operation() {
        silent_server silent;
        resolver_options o;
        o.servers = {silent.endpoint()};
        o.timeout = 300ms;
        o.tries = 1;
        asio::io_context io;
        resolver r(io, o);
        asio::cancellation_signal signal;
        outcome<std::vector<srv_record>> cancelled, other;
        std::chrono::steady_clock::duration cancelled_after{};
        const auto start = clock_type::now();
        r.async_query_srv("_mongodb._tcp.a.example.com",
                          asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::vector<srv_record>) {
                              cancelled.done = true;
                              cancelled.ec = ec;
                              cancelled_after = clock_type::now() - start;
                          }));
        r.async_query_srv("_mongodb._tcp.b.example.com", [&](std::error_code ec, std::vector<srv_record>) {
            other.done = true;
            other.ec = ec;
        });
        asio::steady_timer t(io, 50ms);
        t.async_wait([&](boost::system::error_code) { cancel_terminally(signal); });
        io.run();
        QVERIFY(cancelled.done && other.done);
        QCOMPARE(cancelled.ec, aborted);
        QVERIFY(cancelled_after < 250ms);
        QCOMPARE(other.ec, std::error_code(trellis::errc::connection_failure));  // its own timeout, untouched
    }

    // ------------------------------------------------------------------ completion tokens

    void completion_styles() {
        REQUIRE_DNSMASQ();
        asio::io_context io;
        resolver r(io, dnsmasq_options());
        const std::string name = "_mongodb._tcp.test5.test.build.10gen.cc";

        // A callback is what every test above uses. asio::deferred is the default token.
        std::size_t deferred_count = 0;
        auto op = r.async_query_srv(name);
        std::move(op)([&](std::error_code ec, std::vector<srv_record> records) {
            if (!ec) deferred_count = records.size();
        });
        io.run();
        QCOMPARE(deferred_count, std::size_t(1));

        // use_future: (std::error_code, T) comes back as a tuple.
        io.restart();
        auto future = r.async_query_srv(name, asio::use_future);
        auto txt_future = r.async_query_txt("test5.test.build.10gen.cc", asio::use_future);
        io.run();
        auto [ec, records] = future.get();
        QVERIFY(!ec);
        QCOMPARE(records.size(), std::size_t(1));
        QCOMPARE(records[0].port, std::uint16_t(27017));
        auto [txt_ec, txt] = txt_future.get();
        QVERIFY(!txt_ec);
        QCOMPARE(txt.size(), std::size_t(1));

        // use_awaitable, including the seedlist step.
        io.restart();
        std::exception_ptr failure;
        std::error_code srv_ec, seed_ec;
        std::size_t srv_count = 0;
        std::optional<std::string> replica_set;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                auto [e1, srv] = co_await r.async_query_srv(name, asio::use_awaitable);
                srv_ec = e1;
                srv_count = srv.size();
                auto [e2, seeds] = co_await trellis::dns::async_resolve_seedlist(
                    r, trellis::parse_uri("mongodb+srv://test5.test.build.10gen.cc/"), asio::use_awaitable);
                seed_ec = e2;
                replica_set = seeds.options.replica_set;
            },
            [&](std::exception_ptr e) { failure = e; });
        io.run();
        QVERIFY(!failure);
        QVERIFY(!srv_ec);
        QCOMPARE(srv_count, std::size_t(1));
        QVERIFY(!seed_ec);
        QCOMPARE(replica_set, std::optional<std::string>("repl0"));
    }

    void many_concurrent_queries() {
        REQUIRE_DNSMASQ();
        asio::io_context io;
        resolver r(io, dnsmasq_options());
        int ok = 0, failed = 0;
        for (int i = 0; i < 50; ++i) {
            r.async_query_srv("_mongodb._tcp.test1.test.build.10gen.cc", [&](std::error_code ec, std::vector<srv_record> v) {
                (!ec && v.size() == 3) ? ++ok : ++failed;
            });
            r.async_query_txt("test5.test.build.10gen.cc", [&](std::error_code ec, std::vector<txt_record> v) {
                (!ec && v.size() == 1) ? ++ok : ++failed;
            });
        }
        io.run();
        QCOMPARE(ok, 100);
        QCOMPARE(failed, 0);
    }
};

QTEST_GUILESS_MAIN(DnsTest)
#include "dns_test.moc"
