// trellis-bench monitoring: a client monitoring N servers (the routers of a trellis-sim
// sharded cluster, in its own process) at heartbeatFrequencyMS H for S seconds. Reports the
// client's CPU time over the wall time (the share of one core; this process runs nothing but
// the client) and how much its resident memory grew, both measured from the end of discovery.
#include "monitoring.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "args.hpp"
#include "process.hpp"
#include "trellis/client.hpp"

namespace trellis_bench::monitoring {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

constexpr std::string_view usage_text =
    "usage: trellis-bench monitoring [--servers N] [--seconds S] [--heartbeat-ms H] [--json FILE]\n"
    "\n"
    "Starts a trellis-sim sharded cluster with N routers (its own process), connects one\n"
    "client to all of them with heartbeatFrequencyMS=H and lets it monitor them for S seconds.\n"
    "Prints the client's CPU time as a share of one core, and its RSS growth, both from the\n"
    "end of the initial discovery to the end of the run.\n"
    "\n"
    "  --servers N      routers monitored (default 100)\n"
    "  --seconds S      how long to monitor (default 60)\n"
    "  --heartbeat-ms H heartbeatFrequencyMS, at least 500 (default 500)\n"
    "  --json FILE      also write {\"servers\", \"seconds\", \"cpu_percent_of_core\", \"rss_growth_mb\"}\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

struct options {
    std::size_t servers = 100;
    std::size_t seconds = 60;
    std::size_t heartbeat_ms = 500;
    std::optional<std::string> json_file;
};

std::optional<options> parse_arguments(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    options o;
    arg_walker w(args, 0);
    while (w.next()) {
        const std::string_view name = w.name();
        if (name == "-h" || name == "--help") return std::nullopt;
        if (name == "--servers") o.servers = parse_count(name, w.take_value(), 1);
        else if (name == "--seconds") o.seconds = parse_count(name, w.take_value(), 1);
        else if (name == "--heartbeat-ms") o.heartbeat_ms = parse_count(name, w.take_value(), 500);
        else if (name == "--json") {
            o.json_file = std::string(w.take_value());
            if (o.json_file->empty()) throw failure{exit_usage_error, "--json needs a file name"};
        } else {
            throw failure{exit_usage_error, "unknown argument \"" + std::string(name) + "\" (see --help)"};
        }
    }
    return o;
}

/// VmRSS of this process, in MB (10^6 bytes).
double rss_mb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.starts_with("VmRSS:")) return std::stod(line.substr(6)) * 1024 / 1e6;  // kB
    return 0;
}

}  // namespace

int run(int argc, char** argv) {
    const auto parsed = parse_arguments(argc, argv);
    if (!parsed) {
        std::cout << usage_text;
        return exit_ok;
    }
    const options& o = *parsed;
    child_process sim({executable_directory() + "/trellis-sim", "--topology", "sharded", "--mongos",
                       std::to_string(o.servers), "--nodes", "1"});
    const std::string ready = sim.read_line(std::chrono::seconds(60));
    if (!ready.starts_with("ready "))
        throw failure{exit_failure, "trellis-sim: expected \"ready <uri> ...\", got \"" + ready + "\""};
    std::string uri = ready.substr(6, ready.find(' ', 6) - 6);
    uri += uri.find('?') != std::string::npos ? "&" : uri.ends_with('/') ? "?" : "/?";
    uri += "heartbeatFrequencyMS=" + std::to_string(o.heartbeat_ms) + "&serverSelectionTimeoutMS=30000";

    const double rss_before = rss_mb();
    trellis::client c(uri);
    const auto topology = c.wait_for_discovery();
    std::size_t known = 0;
    for (const auto& s : topology->servers)
        if (s.type == trellis::sdk::server_type::mongos) ++known;
    if (known != o.servers)
        throw failure{exit_failure, "discovery found " + std::to_string(known) + " routers of " + std::to_string(o.servers)};

    const double rss_start = rss_mb();
    const double cpu_start = own_cpu_seconds();
    const double sim_cpu_start = sim.cpu_seconds();
    const auto wall_start = std::chrono::steady_clock::now();
    std::printf("trellis-bench monitoring: %zu routers discovered (RSS %.1f MB, %.1f MB before the client); "
                "monitoring for %zu s at heartbeatFrequencyMS=%zu\n",
                o.servers, rss_start, rss_before, o.seconds, o.heartbeat_ms);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    const double cpu = own_cpu_seconds() - cpu_start;
    const double sim_cpu = sim.cpu_seconds() - sim_cpu_start;
    const double rss_end = rss_mb();
    std::size_t still = 0;
    for (const auto& s : c.topology()->servers)
        if (s.type == trellis::sdk::server_type::mongos) ++still;

    const double cpu_percent = 100 * cpu / wall;
    const double growth = rss_end - rss_start;
    std::printf("servers %zu, seconds %.1f: client CPU %.3f s = %.2f%% of one core; RSS %.1f -> %.1f MB (growth %.2f MB); "
                "%zu routers still known; trellis-sim used %.0f%% of a core\n",
                o.servers, wall, cpu, cpu_percent, rss_start, rss_end, growth, still, 100 * sim_cpu / wall);
    std::printf("targets: CPU <= 1%% of a core: %s; RSS growth <= 20 MB: %s\n", cpu_percent <= 1.0 ? "met" : "NOT met",
                growth <= 20.0 ? "met" : "NOT met");
    if (o.json_file) {
        boost::json::object j;
        j["servers"] = o.servers;
        j["seconds"] = wall;
        j["cpu_percent_of_core"] = cpu_percent;
        j["rss_growth_mb"] = growth;
        std::ofstream f(*o.json_file);
        f << boost::json::serialize(j) << "\n";
        if (!f) throw failure{exit_failure, "cannot write " + *o.json_file};
    }
    if (still != o.servers) throw failure{exit_failure, "only " + std::to_string(still) + " routers were still known at the end"};
    return exit_ok;
}

}  // namespace trellis_bench::monitoring
