// mongodb+srv:// end to end: a dnsmasq this test starts on a loopback port it picks serves SRV,
// TXT and A records for the zone srv.trellis.test, whose targets are in-process trellis-sim
// members on loopback. Through trellis::client (blocking and async operations), the trellis
// CLI, the TXT options, bad records, srvMaxHosts and SRV polling (dnsmasq restarted on the same
// port with other records), proven by the client's SDAM events. Without dnsmasq the test skips
// (CTest reports it as skipped).

#include <QtTest/QtTest>

#include <QElapsedTimer>
#include <QProcess>
#include <QStandardPaths>

#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_future.hpp>

#include "cli_runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/dns.hpp"
#include "trellis/errors.hpp"
#include "trellis/events.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"

namespace asio = boost::asio;
namespace sdk = trellis::sdk;
namespace bson = trellis::bson;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

const QString zone = QStringLiteral(".srv.trellis.test");

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }
#define VERIFY_CONTAINS(text, part) \
    QVERIFY2(contains((text), (part)), (std::string("'") + (text) + "' lacks '" + (part) + "'").c_str())

std::uint16_t port_of(const std::string& member) { return static_cast<std::uint16_t>(std::stoi(member.substr(member.rfind(':') + 1))); }

// A port free on 127.0.0.1 for both UDP and TCP: dnsmasq binds both, and the other tests'
// servers take TCP ports from the same ephemeral range.
std::uint16_t free_dns_port() {
    asio::io_context io;
    const auto loopback = asio::ip::make_address("127.0.0.1");
    for (;;) {
        asio::ip::udp::socket u(io, asio::ip::udp::endpoint(loopback, 0));
        const auto port = u.local_endpoint().port();
        asio::ip::tcp::acceptor t(io);
        boost::system::error_code ec;
        t.open(asio::ip::tcp::v4(), ec);
        if (!ec) t.bind(asio::ip::tcp::endpoint(loopback, port), ec);
        if (!ec) return port;
    }
}

bson::document ping() {
    bson::builder b;
    b.append("ping", 1);
    return b.extract();
}

// The addresses of a topology's servers.
std::set<std::string> addresses(const sdk::topology_description& t) {
    std::set<std::string> out;
    for (const auto& s : t.servers) out.insert(s.address);
    return out;
}

// SDAM events as "ServerOpening m1.srv.trellis.test:1234" lines.
struct event_log {
    std::mutex mutex;
    std::vector<std::string> lines;

    trellis::sdam_event_handler handler() {
        return [this](const trellis::sdam_event& e) {
            std::string line(trellis::event_name(e));
            if (const std::string* a = trellis::event_address(e)) line += " " + *a;
            std::lock_guard lock(mutex);
            lines.push_back(std::move(line));
        };
    }
    bool has(const std::string& line) {
        std::lock_guard lock(mutex);
        return std::find(lines.begin(), lines.end(), line) != lines.end();
    }
    std::string all() {
        std::lock_guard lock(mutex);
        std::string out;
        for (const auto& l : lines) out += l + "\n";
        return out;
    }
};

using trellis_test::run_cli;

}  // namespace

class SrvTest : public QObject {
    Q_OBJECT

private:
    QProcess dnsmasq_;
    QString program_;
    std::uint16_t port_ = 0;
    QByteArray skip_reason_;
    std::unique_ptr<trellis::sim::deployment> sharded_;  // three routers
    std::unique_ptr<trellis::sim::deployment> rs_;       // a replica set with a user
    std::vector<std::string> mongos_;                    // "127.0.0.1:port" of each router

    QString dns_server() const { return "127.0.0.1:" + QString::number(port_); }

    QString target(int i) const { return "m" + QString::number(i) + zone; }
    std::string target_address(int i) const {
        return target(i).toStdString() + ":" + std::to_string(port_of(mongos_[static_cast<std::size_t>(i - 1)]));
    }
    QString srv(const QString& name, const QString& to, std::uint16_t port) const {
        return "--srv-host=_mongodb._tcp." + name + zone + "," + to + "," + QString::number(port);
    }
    QString srv_mongos(const QString& name, int i) const {
        return srv(name, target(i), port_of(mongos_[static_cast<std::size_t>(i - 1)]));
    }

    // The zone; `poll_targets` are the routers the name poll.srv.trellis.test lists.
    QStringList zone_arguments(std::initializer_list<int> poll_targets) const {
        QStringList a = {"--local=/srv.trellis.test/"};
        for (int i = 1; i <= 3; ++i) a << "--host-record=" + target(i) + ",127.0.0.1";
        a << "--host-record=r1" + zone + ",127.0.0.1";
        a << srv_mongos("s1", 1) << srv_mongos("s1", 2);
        for (int i : poll_targets) a << srv_mongos("poll", i);
        for (int i = 1; i <= 3; ++i) a << srv_mongos("max", i);
        a << srv("rs", "r1" + zone, port_of(rs_->members().front()));
        a << "--txt-record=rs" + zone + ",replicaSet=rs0&authSource=admin";
        a << srv("evil", "m1.elsewhere.test", port_of(mongos_[0]));
        a << srv_mongos("twotxt", 1) << "--txt-record=twotxt" + zone + ",replicaSet=rs0"
          << "--txt-record=twotxt" + zone + ",authSource=admin";
        a << srv_mongos("badtxt", 1) << "--txt-record=badtxt" + zone + ",w=majority";
        return a;  // nx.srv.trellis.test: nothing, NXDOMAIN
    }

    bool answers() {
        trellis::dns::resolver_options probe;
        probe.servers = {{asio::ip::make_address("127.0.0.1"), port_}};
        probe.timeout = 100ms;
        probe.tries = 1;
        asio::io_context io;
        trellis::dns::resolver r(io, probe);
        std::error_code got = make_error_code(std::errc::timed_out);
        r.async_query_srv("_mongodb._tcp.s1" + zone.toStdString(), [&](std::error_code ec, auto) { got = ec; });
        io.run();
        return !got;
    }

    void stop_dnsmasq() {
        if (dnsmasq_.state() == QProcess::NotRunning) return;
        dnsmasq_.terminate();
        if (!dnsmasq_.waitForFinished(5000)) {
            dnsmasq_.kill();
            dnsmasq_.waitForFinished(5000);
        }
    }

    // Starts dnsmasq with the zone and waits until it answers. The first start may move to
    // another port when someone else took it; a restart keeps port_, which clients already use.
    bool start_dnsmasq(std::initializer_list<int> poll_targets, bool may_move = false) {
        for (int attempt = 0; attempt < 20; ++attempt) {  // the port may take a moment to be free again
            if (may_move && attempt > 0) port_ = free_dns_port();
            QStringList args = {"--port=" + QString::number(port_), "--listen-address=127.0.0.1", "--bind-interfaces",
                                "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
                                "--log-facility=-", "--local-ttl=1"};
            args += zone_arguments(poll_targets);
            dnsmasq_.setProcessChannelMode(QProcess::MergedChannels);
            dnsmasq_.start(program_, args);
            if (!dnsmasq_.waitForStarted(5000)) return false;
            const auto deadline = clock_type::now() + 5s;
            while (clock_type::now() < deadline && dnsmasq_.state() == QProcess::Running) {
                if (answers()) return true;
                dnsmasq_.waitForFinished(50);
            }
            qWarning("dnsmasq: %s", dnsmasq_.readAll().constData());
            stop_dnsmasq();
            QThread::msleep(100);
        }
        return false;
    }

    trellis::client_options options(const std::string& uri) const {
        trellis::client_options o = trellis::parse_uri(uri).options;
        o.dns_servers = {dns_server().toStdString()};
        return o;
    }

    void require() {
        if (!skip_reason_.isEmpty()) QSKIP(skip_reason_.constData());
    }

private slots:
    void initTestCase() {
        qunsetenv(trellis::dns::server_environment_variable);
        program_ = QStandardPaths::findExecutable("dnsmasq");
        if (program_.isEmpty()) program_ = QStandardPaths::findExecutable("dnsmasq", {"/usr/sbin", "/sbin"});
        if (program_.isEmpty()) {
            skip_reason_ = "dnsmasq is not installed (Debian: apt-get install dnsmasq)";
            return;
        }
        trellis::sim::sim_config sc;
        sc.topology = trellis::sim::topology_kind::sharded;
        sc.mongos = 3;
        sc.nodes = 1;
        sharded_ = std::make_unique<trellis::sim::deployment>(sc);
        sharded_->start();
        const auto members = sharded_->members();
        mongos_.assign(members.begin(), members.begin() + 3);

        trellis::sim::sim_config rc;
        rc.topology = trellis::sim::topology_kind::replica_set;
        rc.nodes = 1;
        rc.users.push_back({"alice", "wonderland", "admin"});
        rs_ = std::make_unique<trellis::sim::deployment>(rc);
        rs_->start();
        QVERIFY(rs_->wait_for_primary(10s));

        port_ = free_dns_port();
        QVERIFY2(start_dnsmasq({1, 2}, true), "dnsmasq is installed but never answered");
    }

    void cleanupTestCase() {
        stop_dnsmasq();
        if (sharded_) sharded_->stop();
        if (rs_) rs_->stop();
    }

    // The seed list comes from DNS; blocking operations wait for it like for discovery.
    void blocking_operations() {
        require();
        event_log events;
        trellis::client_settings settings;
        settings.on_sdam = events.handler();
        trellis::client c(options("mongodb+srv://s1" + zone.toStdString() + "/?tls=false&serverSelectionTimeoutMS=5000"),
                          std::move(settings));
        QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);
        bson::builder doc;
        doc.append("x", 42);
        c["app"]["srv"].insert_one(doc.extract());
        const auto found = c["app"]["srv"].find_one();
        QVERIFY(found.has_value());
        QCOMPARE((*found)["x"].get_int32(), 42);
        const auto t = c.topology();
        QCOMPARE(t->type, sdk::topology_type::sharded);
        QCOMPARE(addresses(*t), (std::set<std::string>{target_address(1), target_address(2)}));
        QVERIFY2(events.has("ServerOpening " + target_address(1)), events.all().c_str());
        QVERIFY2(events.has("ServerOpening " + target_address(2)), events.all().c_str());
    }

    // On an executor of the caller's, construction does no I/O: the lookups start once the
    // executor runs, and an async operation completes through them.
    void async_operation() {
        require();
        asio::io_context io;
        auto work = asio::make_work_guard(io);
        std::optional<trellis::client> c;
        c.emplace(io.get_executor(), options("mongodb+srv://s1" + zone.toStdString() + "/?tls=false"));
        const bool empty_at_first = c->topology()->servers.empty();  // the executor has not run yet
        std::thread runner([&] { io.run(); });
        auto reply = (*c)["admin"].async_run_command(ping(), asio::use_future);
        const bool ready = reply.wait_for(10s) == std::future_status::ready;
        std::string failure;
        double ok = 0;
        if (ready) {
            try {
                ok = reply.get()["ok"].as_double();
            } catch (const std::exception& e) {
                failure = e.what();
            }
        }
        const std::size_t servers = c->topology()->servers.size();
        c.reset();  // closes on the executor, which still runs
        work.reset();
        std::this_thread::sleep_for(300ms);
        io.stop();
        runner.join();
        QVERIFY(empty_at_first);
        QVERIFY2(ready, "the async operation did not complete within 10 s");
        QVERIFY2(failure.empty(), failure.c_str());
        QCOMPARE(ok, 1.0);
        QCOMPARE(servers, std::size_t(2));
    }

    // The TXT record sets replicaSet and authSource: the user exists in admin, the URI's database
    // is app (the default authSource), so only the TXT option makes authentication succeed.
    void txt_options_applied() {
        require();
        const std::string uri = "mongodb+srv://alice:wonderland@rs" + zone.toStdString() +
                                "/app?tls=false&serverSelectionTimeoutMS=5000";
        trellis::client c(options(uri));
        QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);
        const auto t = c.topology();
        QCOMPARE(t->type, sdk::topology_type::replica_set_with_primary);
        QCOMPARE(t->set_name, std::optional<std::string>("rs0"));

        // The same user with authSource=app directly: refused, so the TXT option did the work.
        trellis::client direct("mongodb://alice:wonderland@" + rs_->members().front() +
                               "/app?directConnection=true&serverSelectionTimeoutMS=2000");
        QVERIFY_THROWS_EXCEPTION(trellis::error, direct.run_command("admin", ping()));
    }

    void bad_records_fail_quickly_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("says");
        const int config = static_cast<int>(trellis::errc::configuration_error);
        QTest::newRow("target outside the domain") << "evil" << config << "SRV record 'm1.elsewhere.test' is not inside the domain of 'evil.srv.trellis.test'";
        QTest::newRow("two TXT records") << "twotxt" << config << "the TXT lookup for 'twotxt.srv.trellis.test' returned 2 records";
        QTest::newRow("TXT option not allowed") << "badtxt" << config << "only authSource, replicaSet and loadBalanced may come from DNS";
        QTest::newRow("NXDOMAIN") << "nx" << config << "SRV lookup of _mongodb._tcp.nx.srv.trellis.test failed";
    }
    void bad_records_fail_quickly() {
        require();
        QFETCH(QString, name);
        QFETCH(int, code);
        QFETCH(QString, says);
        trellis::client c(options("mongodb+srv://" + name.toStdString() + zone.toStdString() +
                                  "/?tls=false&serverSelectionTimeoutMS=20000"));
        const auto started = clock_type::now();
        try {
            c.run_command("admin", ping());
            QFAIL("the operation succeeded");
        } catch (const trellis::error& e) {
            QCOMPARE(static_cast<int>(e.code().value()), code);
            QVERIFY(dynamic_cast<const trellis::configuration_error*>(&e) != nullptr);
            VERIFY_CONTAINS(std::string(e.what()), says.toStdString());
            VERIFY_CONTAINS(std::string(e.what()), "mongodb+srv://" + name.toStdString() + zone.toStdString());
        }
        QVERIFY(clock_type::now() - started < 3s);
    }

    // A DNS server that does not answer: the operation fails at serverSelectionTimeoutMS, saying
    // that the seed list is still missing and which DNS server was asked.
    void silent_dns_server_times_out() {
        require();
        asio::io_context io;
        asio::ip::udp::socket silent(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        trellis::client_options o = trellis::parse_uri("mongodb+srv://s1" + zone.toStdString() +
                                                       "/?tls=false&serverSelectionTimeoutMS=700").options;
        const std::string where = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
        o.dns_servers = {where};
        trellis::client c(o);
        const auto started = clock_type::now();
        try {
            c.run_command("admin", ping());
            QFAIL("the operation succeeded");
        } catch (const trellis::error& e) {
            QCOMPARE(e.code(), std::error_code(trellis::errc::server_selection_timeout));
            VERIFY_CONTAINS(std::string(e.what()), "no seed list yet");
            VERIFY_CONTAINS(std::string(e.what()), where);
        }
        const auto took = clock_type::now() - started;
        QVERIFY(took >= 650ms && took < 3s);
    }

    void srv_max_hosts() {
        require();
        trellis::client c(options("mongodb+srv://max" + zone.toStdString() + "/?tls=false&srvMaxHosts=2"));
        QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);
        const auto got = addresses(*c.topology());
        QCOMPARE(got.size(), std::size_t(2));
        const std::set<std::string> all = {target_address(1), target_address(2), target_address(3)};
        for (const auto& a : got) QVERIFY2(all.count(a), a.c_str());
    }

    // SRV polling: poll lists m1 and m2; dnsmasq comes back on the same port listing m2 and m3.
    // The client removes m1, adds m3, leaves m2 alone, and says so through SDAM events.
    void polling_follows_record_changes() {
        require();
        event_log events;
        trellis::client_settings settings;
        settings.on_sdam = events.handler();
        trellis::client_options o = options("mongodb+srv://poll" + zone.toStdString() + "/?tls=false&heartbeatFrequencyMS=500");
        o.srv_rescan_interval = 200ms;
        trellis::client c(o, std::move(settings));
        QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);
        QCOMPARE(addresses(*c.topology()), (std::set<std::string>{target_address(1), target_address(2)}));

        stop_dnsmasq();
        QVERIFY(start_dnsmasq({2, 3}));
        const auto deadline = clock_type::now() + 10s;
        const std::set<std::string> wanted = {target_address(2), target_address(3)};
        while (clock_type::now() < deadline && addresses(*c.topology()) != wanted) QThread::msleep(50);
        QCOMPARE(addresses(*c.topology()), wanted);
        QVERIFY2(events.has("ServerClosed " + target_address(1)), events.all().c_str());
        QVERIFY2(events.has("ServerOpening " + target_address(3)), events.all().c_str());
        QVERIFY2(!events.has("ServerClosed " + target_address(2)), events.all().c_str());
        QCOMPARE(c.run_command("admin", ping())["ok"].as_double(), 1.0);

        stop_dnsmasq();
        QVERIFY(start_dnsmasq({1, 2}));  // the zone the other tests expect
    }

    void cli_ping() {
        require();
        const QString uri = "mongodb+srv://s1" + zone + "/?tls=false&serverSelectionTimeoutMS=5000";
        const auto ok = run_cli({"ping", uri, "--dns-server", dns_server()});
        QVERIFY2(ok.code == 0, qPrintable(ok.out + ok.err));
        QVERIFY2(ok.out.contains(zone), qPrintable(ok.out));

        const auto nx = run_cli({"ping", "mongodb+srv://nx" + zone + "/?tls=false", "--dns-server=" + dns_server()});
        QCOMPARE(nx.code, 2);
        QVERIFY2(nx.err.contains("SRV lookup of _mongodb._tcp.nx.srv.trellis.test failed"), qPrintable(nx.err));
        QVERIFY(nx.elapsed_ms < 5000);

        // topology waits for discovery: the DNS failure is its error too, not an empty table.
        const auto topology = run_cli({"topology", "mongodb+srv://twotxt" + zone + "/?tls=false", "--dns-server", dns_server()});
        QCOMPARE(topology.code, 2);
        QVERIFY2(topology.err.contains("returned 2 records; at most one is allowed"), qPrintable(topology.err));

        const auto bad = run_cli({"ping", uri, "--dns-server", "dns.example.com"});
        QCOMPARE(bad.code, 2);
        QVERIFY2(bad.err.contains("dns_servers: DNS server 'dns.example.com'"), qPrintable(bad.err));

        // The environment variable is the fallback.
        trellis_test::cli_options o;
        o.environment = QProcessEnvironment::systemEnvironment();
        o.environment->insert(trellis::dns::server_environment_variable, dns_server());
        const auto from_env = run_cli({"ping", uri}, o);
        QVERIFY2(from_env.code == 0, qPrintable(trellis_test::report(from_env)));
    }
};

QTEST_GUILESS_MAIN(SrvTest)
#include "srv_test.moc"
