// Suite seedlist (initial-dns-seedlist-discovery/tests): the spec's README records, served by a
// dnsmasq this runner starts on a loopback port it picks, with the SRV targets' ports 27017,
// 27018 and 27019 mapped to the members of an in-process trellis-sim replica set "repl0"
// (on 127.0.0.1, ports the OS picks). Expected seeds and hosts are compared with the ports
// mapped back and the members' 127.0.0.1 read as the spec's localhost. Per case:
// - error: parsing, DNS resolution or the client's ping must fail;
// - seeds / numSeeds: the seed list DNS gives (dns::async_resolve_seedlist);
// - options / parsed_options: the resolved options (user, password, db, auth_database);
// - hosts / numHosts and ping: a trellis::client with the runner's DNS server; TLS is turned
//   off for the connection only (the simulator here serves plain TCP; "ssl" is still checked).
// Files of the load-balanced and sharded folders need deployments the runner does not start:
// skipped, with that reason. Without dnsmasq every case is skipped.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/dns.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"

extern char** environ;

namespace trellis::spec {

bool uri_option_value(const client_options& o, std::string_view key, boost::json::value& v);
bool loosely_equal_values(const boost::json::value& expected, const boost::json::value& actual);

namespace {

namespace json = boost::json;
namespace asio = boost::asio;
using namespace std::chrono_literals;

struct mismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The README's zone, with {p27017} style ports for the mapped ones.
struct srv_line {
    const char* name;
    const char* target;
    int port;
};
constexpr srv_line srv_records[] = {
    {"_mongodb._tcp.test1.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test1.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27018},
    {"_mongodb._tcp.test2.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27018},
    {"_mongodb._tcp.test2.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27019},
    {"_mongodb._tcp.test3.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test5.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test6.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test7.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test8.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test10.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test11.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test12.test.build.10gen.cc", "localhost.build.10gen.cc", 27017},
    {"_mongodb._tcp.test13.test.build.10gen.cc", "test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test14.test.build.10gen.cc", "localhost.not-test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test15.test.build.10gen.cc", "localhost.test.not-build.10gen.cc", 27017},
    {"_mongodb._tcp.test16.test.build.10gen.cc", "localhost.test.build.not-10gen.cc", 27017},
    {"_mongodb._tcp.test17.test.build.10gen.cc", "localhost.test.build.10gen.not-cc", 27017},
    {"_mongodb._tcp.test18.test.build.10gen.cc", "localhost.sub.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test19.test.build.10gen.cc", "localhost.evil.build.10gen.cc", 27017},
    {"_mongodb._tcp.test19.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test20.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test21.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_customname._tcp.test22.test.build.10gen.cc", "localhost.test.build.10gen.cc", 27017},
    {"_mongodb._tcp.test23.test.build.10gen.cc", "localhost.test.build.10gen.cc", 8000},
    {"_mongodb._tcp.test24.test.build.10gen.cc", "localhost.test.build.10gen.cc", 8000},
    {"_mongodb._tcp.build.10gen.cc", "build.10gen.cc", 27017},
    {"_mongodb._tcp.test.build.10gen.cc", "test.build.10gen.cc", 27017},
};
// dnsmasq's --txt-record: commas separate a record's character-strings.
constexpr std::pair<const char*, const char*> txt_records[] = {
    {"test5.test.build.10gen.cc", "replicaSet=repl0&authSource=thisDB"},
    {"test6.test.build.10gen.cc", "replicaSet=repl0"},
    {"test6.test.build.10gen.cc", "authSource=otherDB"},
    {"test7.test.build.10gen.cc", "ssl=false"},
    {"test8.test.build.10gen.cc", "authSource"},
    {"test10.test.build.10gen.cc", "socketTimeoutMS=500"},
    {"test11.test.build.10gen.cc", "replicaS,et=rep,l0"},
    {"test20.test.build.10gen.cc", "loadBalanced=true"},
    {"test21.test.build.10gen.cc", "loadBalanced=false"},
    {"test24.test.build.10gen.cc", "loadBalanced=true"},
};

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::uint16_t free_udp_port() {
    asio::io_context io;
    asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return s.local_endpoint().port();
}

std::string find_dnsmasq() {
    std::vector<std::filesystem::path> dirs = {"/usr/sbin", "/sbin", "/usr/local/sbin"};
    if (const char* path = std::getenv("PATH")) {
        std::string p(path);
        for (std::size_t start = 0; start <= p.size();) {
            const std::size_t colon = std::min(p.find(':', start), p.size());
            if (colon > start) dirs.emplace_back(p.substr(start, colon - start));
            start = colon + 1;
        }
    }
    for (const auto& d : dirs)
        if (::access((d / "dnsmasq").c_str(), X_OK) == 0) return (d / "dnsmasq").string();
    return {};
}

// dnsmasq and the replica set, started on the first case and stopped at exit.
class environment {
public:
    environment() {
        const std::string program = find_dnsmasq();
        if (program.empty()) {
            skip_reason = "dnsmasq is not installed";
            return;
        }
        sim::sim_config c;
        c.topology = sim::topology_kind::replica_set;
        c.nodes = 3;
        c.set_name = "repl0";
        rs = std::make_unique<sim::deployment>(c);
        rs->start();
        if (!rs->wait_for_primary(10s)) {
            skip_reason = "the simulated replica set elected no primary";
            return;
        }
        const auto members = rs->members();
        for (std::size_t i = 0; i < 3 && i < members.size(); ++i) {
            const auto port = static_cast<std::uint16_t>(std::stoi(members[i].substr(members[i].rfind(':') + 1)));
            to_sim[static_cast<std::uint16_t>(27017 + i)] = port;
            from_sim[port] = static_cast<std::uint16_t>(27017 + i);
        }
        dns_port = free_udp_port();
        std::vector<std::string> args = {program, "--port=" + std::to_string(dns_port), "--listen-address=127.0.0.1",
                                         "--bind-interfaces", "--no-daemon", "--no-resolv", "--no-hosts",
                                         "--conf-file=/dev/null", "--pid-file=", "--log-facility=/dev/null",
                                         "--local=/10gen.cc/",
                                         "--host-record=localhost.test.build.10gen.cc,127.0.0.1",
                                         "--host-record=localhost.sub.test.build.10gen.cc,127.0.0.1"};
        for (const srv_line& r : srv_records) {
            const auto mapped = to_sim.find(static_cast<std::uint16_t>(r.port));
            const int port = mapped == to_sim.end() ? r.port : mapped->second;
            args.push_back(std::string("--srv-host=") + r.name + "," + r.target + "," + std::to_string(port));
        }
        for (const auto& [name, text] : txt_records) args.push_back(std::string("--txt-record=") + name + "," + text);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawn(&dnsmasq, program.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
            skip_reason = "dnsmasq could not be started";
            dnsmasq = 0;
            return;
        }
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            if (answers()) return;
            std::this_thread::sleep_for(50ms);
        }
        skip_reason = "dnsmasq never answered on 127.0.0.1:" + std::to_string(dns_port);
    }
    ~environment() {
        if (dnsmasq > 0) {
            ::kill(dnsmasq, SIGTERM);
            ::waitpid(dnsmasq, nullptr, 0);
        }
        if (rs) rs->stop();
    }

    dns::resolver_options resolver_options() const {
        dns::resolver_options o;
        o.servers = {{asio::ip::make_address("127.0.0.1"), dns_port}};
        o.timeout = 1000ms;
        o.tries = 2;
        return o;
    }
    std::string server() const { return "127.0.0.1:" + std::to_string(dns_port); }

    /// "host:port" with a simulator member turned back into the spec's localhost:270xx.
    std::string spec_address(const std::string& host, std::uint16_t port) const {
        const auto it = from_sim.find(port);
        if (it == from_sim.end()) return lower(host) + ":" + std::to_string(port);
        return (host == "127.0.0.1" ? std::string("localhost") : lower(host)) + ":" + std::to_string(it->second);
    }

    std::string skip_reason;
    std::unique_ptr<sim::deployment> rs;
    std::map<std::uint16_t, std::uint16_t> to_sim, from_sim;
    std::uint16_t dns_port = 0;
    pid_t dnsmasq = 0;

private:
    bool answers() const {
        auto o = resolver_options();
        o.timeout = 100ms;
        o.tries = 1;
        asio::io_context io;
        dns::resolver r(io, o);
        std::error_code got = make_error_code(std::errc::timed_out);
        r.async_query_srv("_mongodb._tcp.test1.test.build.10gen.cc", [&](std::error_code ec, auto) { got = ec; });
        io.run();
        return !got;
    }
};

environment& env() {
    static environment e;
    return e;
}

std::set<std::string> expected_set(const json::value& list) {
    std::set<std::string> out;
    for (const json::value& v : list.as_array()) out.insert(lower(std::string(v.as_string())));
    return out;
}

std::string show(const std::set<std::string>& s) {
    std::string out = "[";
    for (const auto& a : s) out += (out.size() > 1 ? ", " : "") + a;
    return out + "]";
}

void check_parsed_options(const json::object& expected, const client_options& o) {
    for (const auto& kv : expected) {
        std::optional<std::string> actual;
        if (kv.key() == "user") actual = o.auth.username;
        else if (kv.key() == "password") actual = o.auth.password;
        else if (kv.key() == "db" || kv.key() == "auth_database") actual = o.database;
        else throw mismatch("parsed_options." + std::string(kv.key()) + " is not known to this runner");
        const json::value a = actual ? json::value(*actual) : json::value(nullptr);
        if (!loosely_equal_values(kv.value(), a))
            throw mismatch("parsed_options." + std::string(kv.key()) + ": expected " + json::serialize(kv.value()) +
                           ", got " + json::serialize(a));
    }
}

// Runs one case; returns a skip reason, or empty when it passed (a mismatch throws).
std::string run_case(const json::object& t) {
    environment& e = env();
    const std::string uri(t.at("uri").as_string());
    const bool error = t.contains("error") && t.at("error").as_bool();

    connection_string parsed;
    try {
        parsed = parse_uri(uri);
    } catch (const configuration_error& x) {
        if (error) return {};
        throw mismatch(std::string("parse_uri failed: ") + x.what());
    }
    client_options resolved;
    try {
        resolved = dns::resolve_seedlist(parsed, e.resolver_options());
    } catch (const trellis::error& x) {
        if (error) return {};
        throw mismatch(std::string("DNS resolution failed: ") + x.what());
    }

    if (const json::value* seeds = t.if_contains("seeds")) {
        std::set<std::string> got;
        for (const auto& h : resolved.hosts) got.insert(e.spec_address(h.host, h.port_or_default()));
        if (got != expected_set(*seeds)) throw mismatch("seeds: expected " + show(expected_set(*seeds)) + ", got " + show(got));
    }
    if (const json::value* n = t.if_contains("numSeeds"); n && resolved.hosts.size() != n->to_number<std::size_t>())
        throw mismatch("numSeeds: expected " + json::serialize(*n) + ", got " + std::to_string(resolved.hosts.size()));
    if (const json::value* o = t.if_contains("options"); o && !error) {
        for (const auto& kv : o->as_object()) {
            json::value actual;
            if (!uri_option_value(resolved, kv.key(), actual))
                throw mismatch("option " + std::string(kv.key()) + " is not known to this runner");
            if (!loosely_equal_values(kv.value(), actual))
                throw mismatch("option " + std::string(kv.key()) + ": expected " + json::serialize(kv.value()) +
                               ", got " + json::serialize(actual));
        }
    }
    if (const json::value* p = t.if_contains("parsed_options")) check_parsed_options(p->as_object(), resolved);

    // The client: from the URI itself, so that it resolves through DNS on its own.
    client_options o = parsed.options;
    o.dns_servers = {e.server()};
    o.tls.enabled = false;  // the simulator serves plain TCP
    o.server_selection_timeout = 5000ms;
    const bool ping = !t.contains("ping") || t.at("ping").as_bool();
    try {
        client c(o);
        if (ping || error) {
            bson::builder b;
            b.append("ping", 1);
            c.run_command("admin", b.extract());
        }
        if (error) throw mismatch("expected an error; parsing, DNS and the ping all succeeded");
        const json::value* hosts = t.if_contains("hosts");
        const json::value* num_hosts = t.if_contains("numHosts");
        if (hosts || num_hosts) {
            std::set<std::string> got;
            const auto deadline = std::chrono::steady_clock::now() + 5s;
            for (;;) {
                got.clear();
                auto topology = c.wait_for_discovery();
                for (const auto& s : topology->servers) {
                    const auto colon = s.address.rfind(':');
                    got.insert(e.spec_address(s.address.substr(0, colon),
                                              static_cast<std::uint16_t>(std::stoi(s.address.substr(colon + 1)))));
                }
                const bool done = hosts ? got == expected_set(*hosts) : got.size() == num_hosts->to_number<std::size_t>();
                if (done || std::chrono::steady_clock::now() > deadline) break;
                std::this_thread::sleep_for(50ms);
            }
            if (hosts && got != expected_set(*hosts))
                throw mismatch("hosts: expected " + show(expected_set(*hosts)) + ", got " + show(got));
            if (num_hosts && got.size() != num_hosts->to_number<std::size_t>())
                throw mismatch("numHosts: expected " + json::serialize(*num_hosts) + ", got " + std::to_string(got.size()));
        }
    } catch (const trellis::error& x) {
        if (error) return {};
        throw mismatch(std::string("the client failed: ") + x.what());
    }
    return {};
}

void run_seedlist_file(std::string_view file, const json::value& test, reporter& out) {
    const std::string name(file);
    if (name.starts_with("load-balanced/") || name.starts_with("load-balanced-"))
        return out.skip(file, "(file)", "needs a load-balanced sharded cluster (mongos behind port 8000)");
    if (name.starts_with("sharded/")) return out.skip(file, "(file)", "needs a sharded cluster on localhost 27017-27018");
    if (!env().skip_reason.empty()) return out.skip(file, "(file)", env().skip_reason);
    const json::object* t = test.if_object();
    if (!t || !t->contains("uri")) return out.fail(file, "(file)", "no uri");
    const std::string description = t->contains("comment") ? std::string(t->at("comment").as_string()) : "(case)";
    try {
        const std::string skipped = run_case(*t);
        if (skipped.empty()) out.pass(file, description);
        else out.skip(file, description, skipped);
    } catch (const std::exception& x) {
        out.fail(file, description, x.what());
    }
}

}  // namespace

extern const suite seedlist_suite = {"seedlist",
                                     "initial-dns-seedlist-discovery/tests against dnsmasq and trellis-sim (needs dnsmasq)",
                                     run_seedlist_file};

}  // namespace trellis::spec
