// trellis-bench scale: how the pure SDAM and selection steps grow with the size of the
// topology. See README.md ("trellis-bench scale").
#include "scale.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "args.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/sdam.hpp"
#include "trellis/selection.hpp"

namespace trellis_bench::scale {

namespace {

namespace sdam = trellis::sdam;
namespace selection = trellis::selection;
namespace bson = trellis::bson;
using clock = std::chrono::steady_clock;

constexpr std::string_view usage_text =
    "usage: trellis-bench scale [--sizes N,N,...] [--min-time MS]\n"
    "\n"
    "Times the pure steps one heartbeat and one operation cost, on replica set topologies of\n"
    "each size (default 100,1000,10000 servers): one primary whose hello lists every member,\n"
    "the others secondaries.\n"
    "\n"
    "  member hello    one secondary's description through sdam::update and the event diff\n"
    "                  (it alternates between RSSecondary and Unknown, so events are made)\n"
    "  primary hello   the primary's hello (listing every member) through the same steps\n"
    "  select          suitable servers (secondaryPreferred), latency window, choice\n"
    "\n"
    "Each figure is the median time of one call over runs of at least --min-time ms (default\n"
    "200). The growth line divides each size's time by the previous size's: with sizes ten\n"
    "times apart, about 10 is linear growth, about 100 quadratic.\n"
    "\n"
    "  -h, --help      this text\n";

struct options {
    std::vector<std::size_t> sizes{100, 1000, 10000};
    std::chrono::milliseconds min_time{200};
};

std::vector<std::size_t> parse_sizes(std::string_view text) {
    std::vector<std::size_t> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        out.push_back(parse_count("--sizes", text.substr(0, comma), 2));
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    }
    if (out.empty()) throw failure{exit_usage_error, "--sizes needs at least one size"};
    return out;
}

std::string address(std::size_t i) {
    return "10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
           std::to_string(i % 256) + ":27017";
}

struct fixture {
    sdam::topology_description topology;
    sdam::server_description primary_hello;    // the primary's reply again
    sdam::server_description member_up;        // a secondary's reply
    sdam::server_description member_down;      // the same secondary, failed
};

// The topology a client has once every member answered; built directly (not through update())
// so that setting it up costs the same before and after any change to the rules.
fixture make_fixture(std::size_t n) {
    std::vector<std::string> hosts;
    for (std::size_t i = 0; i < n; ++i) hosts.push_back(address(i));
    std::sort(hosts.begin(), hosts.end());
    const auto now = clock::now();
    const auto wrote = std::chrono::system_clock::now();

    bson::builder reply;
    reply.append("isWritablePrimary", true).append("setName", "rs").append("setVersion", 1);
    reply.append("electionId", trellis::bson::oid::from_hex("7fffffff0000000000000001"));
    reply.open_array("hosts");
    for (const std::string& h : hosts) reply.append(h);
    reply.close_array();
    reply.append("minWireVersion", 0).append("maxWireVersion", 21);
    const bson::document primary_reply = reply.extract();

    fixture f;
    sdam::topology_description& t = f.topology;
    t.type = sdam::topology_type::replica_set_with_primary;
    t.set_name = "rs";
    t.seed_count = 1;
    for (std::size_t i = 0; i < n; ++i) {
        sdam::server_description s;
        if (i == 0) {
            s = sdam::parse_hello(hosts[0], primary_reply.view(), std::chrono::microseconds(500), now);
        } else {
            s.address = hosts[i];
            s.type = sdam::server_type::rs_secondary;
            s.set_name = "rs";
            s.min_wire_version = 0;
            s.max_wire_version = 21;
            s.round_trip_time = std::chrono::microseconds(400 + static_cast<long>(i % 700));
            s.last_write_date = wrote;
            s.last_update_time = now;
        }
        t.servers.push_back(std::move(s));
    }
    t.max_set_version = 1;
    t.max_election_id = t.servers[0].election_id;
    f.primary_hello = t.servers[0];
    f.member_up = t.servers[n / 2];
    f.member_down = sdam::unknown_server(f.member_up.address, "connection refused");
    return f;
}

volatile std::size_t sink = 0;

// The median time of one call, over runs of at least min_time each (5 runs, after a warm-up).
template <class F>
double median_seconds(std::chrono::milliseconds min_time, F&& one) {
    one();
    std::vector<double> per_call;
    for (int run = 0; run < 5; ++run) {
        std::size_t calls = 0;
        const auto start = clock::now();
        auto now = start;
        do {
            sink = sink + one();
            ++calls;
            now = clock::now();
        } while (now - start < min_time);
        per_call.push_back(std::chrono::duration<double>(now - start).count() / static_cast<double>(calls));
    }
    std::sort(per_call.begin(), per_call.end());
    return per_call[per_call.size() / 2];
}

struct row {
    std::size_t servers;
    double member_hello, primary_hello, select;
};

row measure(std::size_t n, std::chrono::milliseconds min_time) {
    const fixture f = make_fixture(n);
    row r{n, 0, 0, 0};
    const trellis::bson::oid id{};

    sdam::topology_description current = f.topology;
    bool down = false;
    r.member_hello = median_seconds(min_time, [&] {
        down = !down;
        sdam::update_result u = sdam::update(current, down ? f.member_down : f.member_up);
        const auto events = sdam::description_events(current, u.topology, down ? f.member_down : f.member_up, id);
        current = std::move(u.topology);
        return events.size();
    });
    r.primary_hello = median_seconds(min_time, [&] {
        sdam::update_result u = sdam::update(f.topology, f.primary_hello);
        return sdam::description_events(f.topology, u.topology, f.primary_hello, id).size() + u.topology.servers.size();
    });

    trellis::sdk::operation_requirements op;
    op.read_preference.mode = trellis::read_preference_mode::secondary_preferred;
    std::mt19937_64 random(42);
    r.select = median_seconds(min_time, [&] {
        const auto s = selection::select(f.topology, op, {}, std::chrono::milliseconds(15),
                                         [](const sdam::server_description&) { return std::size_t{0}; }, random);
        return s.server ? s.server->address.size() : 0;
    });
    return r;
}

std::string format_time(double seconds) {
    char buf[32];
    if (seconds < 1e-3)
        std::snprintf(buf, sizeof buf, "%.2f us", seconds * 1e6);
    else if (seconds < 1)
        std::snprintf(buf, sizeof buf, "%.2f ms", seconds * 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.2f s", seconds);
    return buf;
}

}  // namespace

int run(int argc, char** argv) {
    options o;
    arg_walker args(std::vector<std::string_view>(argv + 1, argv + argc), 0);
    while (args.next()) {
        if (args.name() == "-h" || args.name() == "--help") {
            std::cout << usage_text;
            return 0;
        }
        if (args.name() == "--sizes")
            o.sizes = parse_sizes(args.take_value());
        else if (args.name() == "--min-time")
            o.min_time = std::chrono::milliseconds(parse_count("--min-time", args.take_value(), 1));
        else
            throw failure{exit_usage_error, "scale: unknown argument \"" + std::string(args.name()) + "\" (see --help)"};
    }

    std::vector<row> rows;
    std::printf("trellis-bench scale: median time of one call (runs of at least %lld ms)\n\n",
                static_cast<long long>(o.min_time.count()));
    std::printf("%10s %16s %16s %16s\n", "servers", "member hello", "primary hello", "select");
    for (std::size_t n : o.sizes) {
        rows.push_back(measure(n, o.min_time));
        const row& r = rows.back();
        std::printf("%10zu %16s %16s %16s\n", r.servers, format_time(r.member_hello).c_str(),
                    format_time(r.primary_hello).c_str(), format_time(r.select).c_str());
        std::fflush(stdout);
    }
    if (rows.size() > 1) {
        std::printf("\ngrowth (time / previous size's time):\n");
        for (std::size_t i = 1; i < rows.size(); ++i) {
            const row& a = rows[i - 1];
            const row& b = rows[i];
            std::printf("%10s %16.1f %16.1f %16.1f   (servers x%.1f)\n",
                        (std::to_string(a.servers) + "->" + std::to_string(b.servers)).c_str(),
                        b.member_hello / a.member_hello, b.primary_hello / a.primary_hello, b.select / a.select,
                        static_cast<double>(b.servers) / static_cast<double>(a.servers));
        }
    }
    return 0;
}

}  // namespace trellis_bench::scale
