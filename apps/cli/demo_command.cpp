// trellis demo: an in-process trellis-sim replica set taken through a failover while a
// trellis::client writes and reads, with the timeline the client's own events give and a check
// that no acknowledged write was lost.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client_support.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/events.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis::cli {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using wall = std::chrono::system_clock;

constexpr const char* demo_usage =
    "usage: trellis demo\n"
    "Starts a simulated 3-member replica set in this process (trellis-sim; elections take\n"
    "300 ms), connects a trellis::client (heartbeatFrequencyMS=500, retryWrites=true,\n"
    "w=majority), writes numbered documents and reads them back continuously, steps the\n"
    "primary down after about 3 s, and prints the topology and the failover timeline: the\n"
    "stepdown, when the client saw the new primary, its first write acknowledged there, and\n"
    "how many acknowledged writes are missing on the new primary (it finds each one).\n"
    "Exit status: 0 no acknowledged write was lost; 1 one was, or the failover did not complete.\n";

constexpr auto write_phase = 3s;            // writing and reading before the stepdown
constexpr auto failover_limit = 8s;         // for a new primary and a write acknowledged by it
constexpr auto after_failover = 1s;         // writing on after the first write on the new primary
constexpr auto write_pause = 5ms;           // between two writes
constexpr auto read_pause = 20ms;           // between two reads

struct timed_line {
    steady::time_point at;
    std::string text;
};

// What the event handlers and the worker threads record; every field under `mutex`.
struct demo_state {
    std::mutex mutex;
    struct topology_change {
        steady::time_point at;
        sdk::topology_description before, after;
    };
    std::vector<topology_change> changes;
    std::vector<timed_line> insert_failures;  // failed insert commands (the client may retry them)
    std::optional<std::string> last_insert_address;

    std::optional<steady::time_point> stepdown_at;
    std::string old_primary;
    std::vector<std::int64_t> acknowledged;
    std::int64_t failed_writes = 0;
    std::optional<std::string> last_write_error;
    struct first_write {
        std::int64_t seq;
        steady::time_point at;
        std::optional<std::string> address;
    };
    std::optional<first_write> first_after_stepdown;
    std::int64_t reads_ok = 0, reads_during_failover = 0, reads_failed = 0;
    std::optional<std::string> last_read_error;
};

std::string plus_ms(steady::time_point t, steady::time_point origin, std::size_t width = 0) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - origin).count();
    std::string n = std::to_string(ms);
    if (n.size() < width) n.insert(0, width - n.size(), ' ');
    return "T + " + n + " ms";
}

void writer(std::stop_token stop, collection coll, std::shared_ptr<demo_state> st) {
    std::int64_t seq = 0;
    while (!stop.stop_requested()) {
        ++seq;
        const auto started = steady::now();
        try {
            coll.insert_one(bson::make_document(bson::kvp("seq", seq), bson::kvp("at", wall::now())));
            const auto acked = steady::now();
            std::lock_guard lock(st->mutex);
            st->acknowledged.push_back(seq);
            if (st->stepdown_at && !st->first_after_stepdown && acked > *st->stepdown_at) {
                // The first write the new primary acknowledged: by the address of the insert
                // command that succeeded when the client reports it, else a write started after
                // the stepdown had been made (the old primary refuses those).
                const bool on_new = st->last_insert_address ? *st->last_insert_address != st->old_primary
                                                            : started > *st->stepdown_at;
                if (on_new) st->first_after_stepdown = demo_state::first_write{seq, acked, st->last_insert_address};
            }
        } catch (const trellis::error& e) {
            std::lock_guard lock(st->mutex);
            ++st->failed_writes;
            st->last_write_error = "seq " + std::to_string(seq) + ": " + one_line(e.what());
        }
        std::this_thread::sleep_for(write_pause);
    }
}

void reader(std::stop_token stop, collection coll, std::shared_ptr<demo_state> st) {
    while (!stop.stop_requested()) {
        std::int64_t last = 0;
        {
            std::lock_guard lock(st->mutex);
            if (!st->acknowledged.empty()) last = st->acknowledged.back();
        }
        try {
            // primaryPreferred: while there is no primary, a secondary answers.
            find_options options;
            options.limit = 1;
            options.read_preference = trellis::read_preference{read_preference_mode::primary_preferred, {}, {}};
            cursor cur = coll.find(bson::make_document(bson::kvp("seq", last)), options);
            cur.next();
            std::lock_guard lock(st->mutex);
            ++st->reads_ok;
            if (st->stepdown_at && !st->first_after_stepdown) ++st->reads_during_failover;
        } catch (const trellis::error& e) {
            std::lock_guard lock(st->mutex);
            ++st->reads_failed;
            st->last_read_error = one_line(e.what());
        }
        std::this_thread::sleep_for(read_pause);
    }
}

}  // namespace

int demo_command(args a) {
    if (wants_help(a)) {
        std::cout << demo_usage;
        return exit_ok;
    }
    if (!a.empty()) throw usage_error{"demo: no arguments expected, got \"" + std::string(a[0]) + "\""};

    sim::sim_config config;
    config.topology = sim::topology_kind::replica_set;
    config.nodes = 3;
    config.election_delay = 300ms;
    sim::deployment deployment(config);
    deployment.start();
    const auto sim_primary = deployment.wait_for_primary(5s);
    if (!sim_primary) throw data_error{"demo: the simulated replica set elected no primary within 5 s"};

    const std::string uri = with_uri_options(
        deployment.uri(), "heartbeatFrequencyMS=500&retryWrites=true&w=majority&serverSelectionTimeoutMS=5000&appName=trellis-demo");
    std::cout << "trellis demo: a 3-member replica set simulated in this process (trellis-sim, elections take 300 ms)\n"
              << "client: " << uri << "\n\n"
              << std::flush;

    auto st = std::make_shared<demo_state>();
    client_settings settings;
    settings.on_sdam = [st](const sdam_event& e) {
        if (const auto* c = std::get_if<topology_description_changed_event>(&e)) {
            std::lock_guard lock(st->mutex);
            st->changes.push_back({steady::now(), c->previous_description, c->new_description});
        }
    };
    settings.on_command = [st](const command_event& e) {
        if (const auto* ok = std::get_if<command_succeeded_event>(&e); ok && ok->command_name == "insert") {
            std::lock_guard lock(st->mutex);
            st->last_insert_address = ok->address;
        } else if (const auto* failed = std::get_if<command_failed_event>(&e); failed && failed->command_name == "insert") {
            std::lock_guard lock(st->mutex);
            std::string what = failed->failure.empty() ? failed->code.message() : one_line(failed->failure);
            st->insert_failures.push_back({steady::now(), "insert failed on " + failed->address + ": " + what});
        }
    };

    command_client c("demo", uri, std::move(settings));
    const auto discovered = c.guard([&] { return c.get().wait_for_discovery(); });
    print_topology_table(std::cout, *c.get().topology(), steady::now());
    const std::string old_primary = primary_of(*discovered).value_or(*sim_primary);
    {
        std::lock_guard lock(st->mutex);
        st->old_primary = old_primary;
    }

    collection coll = c.get()["trellis_demo"]["failover"];
    std::cout << "\nwriting {seq: n} and reading it back for " << write_phase.count() << " s, then stepping "
              << old_primary << " down\n"
              << std::flush;
    std::jthread write_thread(writer, coll, st);
    std::jthread read_thread(reader, coll, st);
    std::this_thread::sleep_for(write_phase);

    const auto stepdown_wall = wall::now();
    const auto stepdown_at = steady::now();
    {
        std::lock_guard lock(st->mutex);
        st->stepdown_at = stepdown_at;
    }
    deployment.step_down(old_primary);

    // Until the client has seen a new primary and had a write acknowledged by it.
    const auto limit = stepdown_at + failover_limit;
    std::optional<steady::time_point> complete;
    while (steady::now() < limit) {
        {
            std::lock_guard lock(st->mutex);
            if (st->first_after_stepdown) {
                complete = st->first_after_stepdown->at;
                break;
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    if (complete) std::this_thread::sleep_until(std::max(steady::now(), *complete + after_failover));
    write_thread.request_stop();
    read_thread.request_stop();
    write_thread.join();
    read_thread.join();

    // Every acknowledged sequence number, looked for on the primary (the new one).
    std::vector<std::int64_t> acknowledged;
    {
        std::lock_guard lock(st->mutex);
        acknowledged = st->acknowledged;
    }
    std::set<std::int64_t> found;
    std::string checked_on;
    c.guard([&] {
        find_options options;
        options.projection = bson::make_document(bson::kvp("seq", 1), bson::kvp("_id", 0));
        options.read_preference = trellis::read_preference{};  // primary
        cursor cur = c.get()["trellis_demo"]["failover"].find({}, options);
        while (auto doc = cur.next()) {
            if (checked_on.empty()) checked_on = cur.address();
            if (auto s = doc->find("seq"); s && s->is_number()) found.insert(s->as_int64());
        }
        if (checked_on.empty()) checked_on = cur.address();
    });
    std::vector<std::int64_t> missing;
    for (std::int64_t s : acknowledged)
        if (!found.contains(s)) missing.push_back(s);

    std::cout << '\n';
    print_topology_table(std::cout, *c.get().topology(), steady::now());

    // The timeline, from the client's events.
    std::lock_guard lock(st->mutex);
    std::optional<std::pair<steady::time_point, std::string>> new_primary;
    std::vector<timed_line> lines;
    for (const auto& ch : st->changes) {
        if (ch.at < stepdown_at) continue;
        if (!new_primary) {
            for (std::string& l : describe_change(ch.before, ch.after)) lines.push_back({ch.at, std::move(l)});
            if (auto p = primary_of(ch.after); p && *p != old_primary) new_primary = {ch.at, *p};
        }
    }
    for (const auto& f : st->insert_failures)
        if (f.at >= stepdown_at && (!st->first_after_stepdown || f.at <= st->first_after_stepdown->at)) lines.push_back(f);
    std::stable_sort(lines.begin(), lines.end(), [](const timed_line& x, const timed_line& y) { return x.at < y.at; });

    std::cout << "\nfailover timeline\n";
    std::cout << "  stepdown at T (" << clock_time(stepdown_wall) << "): " << old_primary
              << " steps down and may not be re-elected for 10 s\n";
    for (const auto& l : lines) std::cout << "    " << plus_ms(l.at, stepdown_at, 5) << "  " << l.text << '\n';
    if (new_primary)
        std::cout << "  new primary seen at " << plus_ms(new_primary->first, stepdown_at) << ": " << new_primary->second
                  << '\n';
    else
        std::cout << "  new primary seen: not within " << failover_limit.count() << " s\n";
    if (st->first_after_stepdown) {
        const auto& w = *st->first_after_stepdown;
        std::cout << "  first successful write at " << plus_ms(w.at, stepdown_at) << " (seq " << w.seq;
        if (w.address) std::cout << ", on " << *w.address;
        std::cout << ")\n";
    } else {
        std::cout << "  first successful write: none within " << failover_limit.count() << " s\n";
    }

    std::cout << "\nwrites: " << acknowledged.size() << " acknowledged (w: majority), " << st->failed_writes << " failed";
    if (st->last_write_error) std::cout << " (last: " << *st->last_write_error << ")";
    std::cout << "\nreads: " << st->reads_ok << " ok";
    if (st->reads_during_failover)
        std::cout << " (" << st->reads_during_failover << " between the stepdown and the first write on the new primary)";
    std::cout << ", " << st->reads_failed << " failed";
    if (st->last_read_error) std::cout << " (last: " << *st->last_read_error << ")";
    std::cout << "\nacknowledged writes lost: " << missing.size();
    if (missing.empty()) {
        std::cout << " (each of the " << acknowledged.size() << " found with find on " << checked_on << ")\n";
    } else {
        std::cout << " of " << acknowledged.size() << ", missing on " << checked_on << ": seq";
        for (std::size_t i = 0; i < missing.size() && i < 20; ++i) std::cout << ' ' << missing[i];
        if (missing.size() > 20) std::cout << " ...";
        std::cout << '\n';
    }
    std::cout.flush();

    if (!missing.empty())
        throw data_error{"demo: " + std::to_string(missing.size()) + " acknowledged write(s) missing on the new primary " +
                         checked_on};
    if (!new_primary) throw data_error{"demo: the client saw no new primary within " + std::to_string(failover_limit.count()) + " s"};
    if (!st->first_after_stepdown)
        throw data_error{"demo: no write was acknowledged by the new primary within " + std::to_string(failover_limit.count()) + " s"};
    if (acknowledged.empty()) throw data_error{"demo: no write was acknowledged at all"};
    return exit_ok;
}

}  // namespace trellis::cli
