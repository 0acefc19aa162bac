// trellis topology URI [--json] [--watch SECONDS]: the servers of a deployment after initial
// discovery, and with --watch every change of the topology description as the client's SDAM
// events report it.
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "client_support.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/events.hpp"

namespace trellis::cli {
namespace {

using steady = std::chrono::steady_clock;
using wall = std::chrono::system_clock;

constexpr const char* topology_usage =
    "usage: trellis topology URI [--json] [--watch SECONDS]\n"
    "Discovers the deployment (each seed and each member found is checked once, within\n"
    "serverSelectionTimeoutMS) and prints its servers: address, type, round-trip time average\n"
    "and minimum (ms), age of the last heartbeat, replica set name, tags, error.\n"
    "  --json             one JSON object: {\"type\", \"set_name\", \"servers\": [{\"address\", \"type\",\n"
    "                     \"round_trip_time_ms\", \"min_round_trip_time_ms\", \"tags\", \"error\"}]}\n"
    "  --watch SECONDS    then keep watching for SECONDS and print every change of the topology\n"
    "                     as it happens, with its time (with --json: one object per change, with\n"
    "                     a \"time\" field, UTC)\n"
    "Monitoring follows the URI (heartbeatFrequencyMS, serverMonitoringMode, ...).\n"
    "Exit status: 0 ok; 1 no server could be reached (without --watch); 2 a usage error or an\n"
    "invalid URI.\n";

struct change {
    wall::time_point time;
    steady::time_point at;
    sdk::topology_description before, after;
};

struct change_queue {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<change> changes;
};

double parse_seconds(std::string_view text) {
    double s = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
    if (ec != std::errc() || end != text.data() + text.size() || !(s > 0) || s > 7 * 24 * 3600.0)
        throw usage_error{"topology: --watch needs a positive number of SECONDS, got \"" + std::string(text) + "\""};
    return s;
}

bool any_reachable(const sdk::topology_description& t) {
    for (const auto& s : t.servers)
        if (s.type != sdk::server_type::unknown) return true;
    return false;
}

}  // namespace

int topology_command(args a) {
    if (wants_help(a)) {
        std::cout << topology_usage;
        return exit_ok;
    }
    std::string_view uri;
    bool json = false;
    std::optional<double> watch;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i] == "--json") {
            json = true;
        } else if (a[i] == "--watch") {
            if (i + 1 >= a.size()) throw usage_error{"topology: --watch needs SECONDS"};
            watch = parse_seconds(a[++i]);
        } else if (a[i].starts_with("--watch=")) {
            watch = parse_seconds(a[i].substr(8));
        } else if (a[i].starts_with("--")) {
            throw usage_error{"topology: unknown option " + std::string(a[i])};
        } else if (uri.empty()) {
            uri = a[i];
        } else {
            throw usage_error{"topology: more than one URI given"};
        }
    }
    if (uri.empty()) throw usage_error{"topology: a URI is required"};

    auto queue = std::make_shared<change_queue>();
    client_settings settings;
    if (watch) {
        settings.on_sdam = [queue](const sdam_event& e) {
            const auto* changed = std::get_if<topology_description_changed_event>(&e);
            if (changed == nullptr) return;
            {
                std::lock_guard lock(queue->mutex);
                queue->changes.push_back({wall::now(), steady::now(), changed->previous_description, changed->new_description});
            }
            queue->cv.notify_one();
        };
    }
    command_client c("topology", uri, std::move(settings));
    c.guard([&] { return c.get().wait_for_discovery(); });
    // Changes published before this point are in the snapshot; later ones are printed (one
    // published while the snapshot is taken may be printed although the table shows it).
    const auto printed_at = steady::now();
    const auto snapshot = c.get().topology();
    if (json) std::cout << bson::to_json(topology_document(*snapshot)) << '\n';
    else print_topology_table(std::cout, *snapshot, steady::now());
    std::cout.flush();

    if (!watch) {
        if (!any_reachable(*snapshot))
            throw data_error{"topology: no server could be reached within serverSelectionTimeoutMS=" +
                             std::to_string(c.options().server_selection_timeout.count())};
        return exit_ok;
    }

    const auto deadline = printed_at + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(*watch));
    if (!json) std::cout << "\nwatching for " << *watch << " s\n" << std::flush;
    std::unique_lock lock(queue->mutex);
    for (;;) {
        queue->cv.wait_until(lock, deadline, [&] { return !queue->changes.empty(); });
        while (!queue->changes.empty()) {
            change ch = std::move(queue->changes.front());
            queue->changes.pop_front();
            if (ch.at < printed_at) continue;
            lock.unlock();
            if (json) {
                std::cout << bson::to_json(topology_document(ch.after, ch.time)) << '\n';
            } else {
                const std::string stamp = clock_time(ch.time);
                for (const std::string& line : describe_change(ch.before, ch.after)) std::cout << stamp << "  " << line << '\n';
            }
            std::cout.flush();
            lock.lock();
        }
        if (steady::now() >= deadline) break;
    }
    return exit_ok;
}

}  // namespace trellis::cli
