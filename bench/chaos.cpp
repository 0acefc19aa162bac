// trellis-bench chaos: W writer threads and 2 reader threads share one trellis::client (its
// blocking face) on an in-process trellis-sim replica set of 3, while a controller injects a
// seeded random fault every 2-5 s. At the end every member is healed and everything is read
// back with read concern majority from the primary. See chaos.hpp and README.md.
#include "chaos.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "args.hpp"
#include "sim_uri.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis_bench::chaos {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
namespace bson = trellis::bson;
namespace sim = trellis::sim;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

// The client's timeouts. An operation longer than serverSelectionTimeoutMS + socketTimeoutMS is
// slow (counted, allowed); one longer than that + connectTimeoutMS is hung. The retry of a write
// whose socket timed out may open a new connection to the same member (a timeout after the
// handshake does not mark it Unknown) and wait out the handshake: a spec-following driver can
// take socket + connect timeouts on one operation.
constexpr milliseconds server_selection_timeout{5000};
constexpr milliseconds socket_timeout{3000};
// Also the monitors' timeout. The default, 10 s, alone exceeds the hang limit when a read
// opens a connection to a member whose requests hang (the handshake waits that long); much
// less and monitors give up on members while the one simulator thread is busy (a rollback
// copies a member's data), which clears pools and fails operations for nothing.
constexpr milliseconds connect_timeout{5000};
constexpr milliseconds slow_limit = server_selection_timeout + socket_timeout;
constexpr milliseconds hang_limit = slow_limit + connect_timeout;
constexpr milliseconds heartbeat_frequency{500};
// trellis-sim: from losing a primary to electing the next one.
constexpr milliseconds election_delay{300};
// The controller's pause between two faults, drawn uniformly.
constexpr milliseconds fault_interval_min{2000};
constexpr milliseconds fault_interval_max{5000};
// A stepped-down member may not be re-elected for this long.
constexpr std::chrono::seconds no_reelect{2};
constexpr int readers = 2;
// After the chaos: time for the set to elect a primary, and for the final read to succeed.
constexpr std::chrono::seconds recovery_timeout{30};

constexpr std::string_view usage_text =
    "usage: trellis-bench chaos [--seconds N] [--writers W] [--seed S] [--json FILE]\n"
    "                           [--min-faults N] [--min-acknowledged N]\n"
    "\n"
    "W writers insert {w, s} documents with w:majority and retryable writes, and 2 readers\n"
    "find with secondaryPreferred, all through one trellis::client, on an in-process\n"
    "trellis-sim replica set of 3. Every 2-5 s (seeded) a controller repairs the member it\n"
    "broke last (restart or heal), then steps down or kills the primary, kills a secondary,\n"
    "or partitions a member (refuse, hang or drop). At the end everything is healed and read\n"
    "back with read concern majority from the primary.\n"
    "\n"
    "  --seconds N            length of the chaos (default 60)\n"
    "  --writers W            writer threads (default 8)\n"
    "  --seed S               the fault schedule's seed (default: random; printed)\n"
    "  --json FILE            write {\"acknowledged\", \"failed\", \"lost\", \"duplicated\", \"hung\",\n"
    "                         \"faults\", \"seconds\", \"seed\", ...} to FILE\n"
    "  --min-faults N         fail unless at least N faults were injected (default 0)\n"
    "  --min-acknowledged N   fail unless at least N writes were acknowledged (default 0)\n"
    "  -h, --help             this text\n"
    "\n"
    "An operation is slow (counted, allowed) when it takes longer than\n"
    "serverSelectionTimeoutMS (5000) + socketTimeoutMS (3000), and hung when it takes longer\n"
    "than that + connectTimeoutMS (5000): a retry may have to open a new connection.\n"
    "Exit status: 0 nothing lost, duplicated or hung; 1 something was (or a minimum was not\n"
    "reached, or the set did not recover); 2 usage error.\n";

struct options {
    std::int64_t seconds = 60;
    std::int32_t writers = 8;
    std::optional<std::uint64_t> seed;
    std::optional<std::string> json_file;
    std::int64_t min_faults = 0;
    std::int64_t min_acknowledged = 0;
};

/// argv[0] is "chaos". Returns nullopt for --help.
std::optional<options> parse_arguments(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    options o;
    arg_walker w(args, 0);
    while (w.next()) {
        const std::string_view name = w.name();
        if (name == "-h" || name == "--help") return std::nullopt;
        if (name == "--seconds") o.seconds = static_cast<std::int64_t>(parse_count(name, w.take_value(), 1));
        else if (name == "--writers") {
            const auto n = parse_count(name, w.take_value(), 1);
            if (n > 256) throw failure{exit_usage_error, "--writers is at most 256, got " + std::to_string(n)};
            o.writers = static_cast<std::int32_t>(n);
        } else if (name == "--seed") o.seed = parse_count(name, w.take_value(), 0);
        else if (name == "--json") {
            o.json_file = std::string(w.take_value());
            if (o.json_file->empty()) throw failure{exit_usage_error, "--json needs a file name"};
        } else if (name == "--min-faults") o.min_faults = static_cast<std::int64_t>(parse_count(name, w.take_value(), 0));
        else if (name == "--min-acknowledged")
            o.min_acknowledged = static_cast<std::int64_t>(parse_count(name, w.take_value(), 0));
        else throw failure{exit_usage_error, "unknown argument \"" + std::string(name) + "\" (see --help)"};
    }
    return o;
}

/// How an error is grouped in the report: the server's code name and code, or the kind.
std::string error_group(const std::exception& e) {
    if (const auto* of = dynamic_cast<const trellis::operation_failure*>(&e); of && of->server_code() == 0) {
        // A network error on a retryable write: an operation_failure only to carry its label.
        return of->code().message();
    }
    if (const auto* of = dynamic_cast<const trellis::operation_failure*>(&e)) {
        if (!of->code_name().empty()) return of->code_name() + " (" + std::to_string(of->server_code()) + ")";
        std::string what = e.what();  // no code name: the text says what it was
        if (what.size() > 100) what = what.substr(0, 100) + "...";
        return "server error " + std::to_string(of->server_code()) + ": " + what;
    }
    if (const auto* te = dynamic_cast<const trellis::error*>(&e)) return te->code().message();
    return std::string("not a trellis::error: ") + e.what();
}

double ms_since(clock::time_point t0) { return std::chrono::duration<double, std::milli>(clock::now() - t0).count(); }

// ---------------------------------------------------------------- shared state

// The first failed writes are printed as they happen, with their time.
constexpr std::int64_t failures_printed = 20;

struct shared {
    std::atomic<bool> stop{false};
    clock::time_point start = clock::now();
    std::mutex mutex;  // guards everything below
    std::set<write_id> attempted, acknowledged;
    std::map<std::string, std::int64_t> failed_by_error, reads_failed_by_error;
    std::int64_t failed = 0, reads = 0, reads_failed = 0, slow = 0, hung = 0;
    double max_write_ms = 0, max_read_ms = 0;
    std::vector<std::string> slow_ops;  // the first few slow or hung ones, for the report
};

// Counts an operation that took ms as slow or hung (s.mutex held); what() names it.
template <class Name>
void note_duration(shared& s, double ms, Name what) {
    if (ms <= static_cast<double>(slow_limit.count())) return;
    const bool hung = ms > static_cast<double>(hang_limit.count());
    ++(hung ? s.hung : s.slow);
    if (s.slow_ops.size() < 10)
        s.slow_ops.push_back((hung ? "hung: " : "slow: ") + what() + " took " + std::to_string(static_cast<std::int64_t>(ms)) + " ms");
}

void writer_loop(shared& s, trellis::collection coll, std::int32_t writer) {
    for (std::int64_t seq = 0; !s.stop.load(); ++seq) {
        const write_id id{writer, seq};
        {
            std::lock_guard lock(s.mutex);
            s.attempted.insert(id);
        }
        bson::document doc = bson::make_document(bson::kvp("w", writer), bson::kvp("s", seq));
        const auto t0 = clock::now();
        std::optional<std::string> error;
        std::string detail;
        try {
            coll.insert_one(std::move(doc));
        } catch (const std::exception& e) {
            error = error_group(e);
            detail = e.what();
        }
        const double ms = ms_since(t0);
        std::lock_guard lock(s.mutex);
        s.max_write_ms = std::max(s.max_write_ms, ms);
        note_duration(s, ms, [&] {
            return "insert {w: " + std::to_string(writer) + ", s: " + std::to_string(seq) + "}" + (error ? " (" + *error + ")" : "");
        });
        if (error) {
            ++s.failed;
            ++s.failed_by_error[*error];
            if (s.failed <= failures_printed)
                std::printf("  %6.1f s  insert {w: %d, s: %lld} failed after %.0f ms: %s\n", ms_since(s.start) / 1000, writer,
                            static_cast<long long>(seq), ms, detail.c_str());
        } else {
            s.acknowledged.insert(id);
        }
    }
}

void reader_loop(shared& s, trellis::collection coll, std::int32_t writers, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    while (!s.stop.load()) {
        const auto writer = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(writers));
        trellis::find_options fo;
        fo.limit = 20;
        fo.sort = bson::make_document(bson::kvp("s", -1));
        const auto t0 = clock::now();
        std::optional<std::string> error;
        try {
            auto cur = coll.find(bson::make_document(bson::kvp("w", writer)), fo);
            while (cur.next()) {
            }
        } catch (const std::exception& e) {
            error = error_group(e);
        }
        const double ms = ms_since(t0);
        std::lock_guard lock(s.mutex);
        ++s.reads;
        s.max_read_ms = std::max(s.max_read_ms, ms);
        note_duration(s, ms, [&] { return "find {w: " + std::to_string(writer) + "}" + (error ? " (" + *error + ")" : ""); });
        if (error) {
            ++s.reads_failed;
            ++s.reads_failed_by_error[*error];
        }
    }
}

// ---------------------------------------------------------------- the controller

enum class fault_kind { step_down_primary, kill_primary, kill_secondary, partition_primary, partition_secondary };

/// Injects one fault per tick after repairing the previous one, so that at most one member is
/// down or partitioned at a time: two of three are always there to elect a primary and to
/// acknowledge w:majority.
class controller {
public:
    controller(sim::deployment& d, std::uint64_t seed, clock::time_point start) : d_(d), rng_(seed), start_(start) {}

    milliseconds next_interval() {
        std::uniform_int_distribution<std::int64_t> pick(fault_interval_min.count(), fault_interval_max.count());
        return milliseconds(pick(rng_));
    }

    /// Repairs the broken member, if any, then breaks something.
    void tick() {
        repair();
        // Every random draw is made whatever the state, so a seed gives one schedule.
        const auto kind = static_cast<fault_kind>(rng_() % 5);
        const auto mode_draw = rng_() % 3;
        const auto member_draw = rng_();
        const auto primary = d_.wait_for_primary(std::chrono::seconds(5));
        const auto members = d_.members();
        std::vector<std::string> secondaries;
        for (const auto& m : members)
            if (!primary || m != *primary) secondaries.push_back(m);
        const std::string secondary = secondaries[member_draw % secondaries.size()];
        const auto mode = mode_draw == 0 ? sim::partition_mode::refuse : mode_draw == 1 ? sim::partition_mode::hang
                                                                                        : sim::partition_mode::drop_replies;
        const char* mode_name = mode_draw == 0 ? "refuse" : mode_draw == 1 ? "hang" : "drop";
        const bool on_primary = kind == fault_kind::step_down_primary || kind == fault_kind::kill_primary ||
                                kind == fault_kind::partition_primary;
        if (on_primary && !primary) {
            // No primary to act on (the set is still electing): a secondary's fault instead.
            count("no primary: skipped");
            return;
        }
        const std::string target = on_primary ? *primary : secondary;
        switch (kind) {
            case fault_kind::step_down_primary:
                d_.step_down(target, no_reelect);
                count("step down primary");
                break;
            case fault_kind::kill_primary:
            case fault_kind::kill_secondary:
                d_.kill(target);
                broken_ = {target, true};
                count(on_primary ? "kill primary" : "kill secondary");
                break;
            case fault_kind::partition_primary:
            case fault_kind::partition_secondary:
                d_.partition(target, mode);
                broken_ = {target, false};
                count(std::string("partition ") + (on_primary ? "primary" : "secondary") + " (" + mode_name + ")");
                break;
        }
        ++faults_;
        log(target);
    }

    /// Restarts or heals the member broken last, if any.
    void repair() {
        if (!broken_) return;
        if (broken_->killed) d_.restart(broken_->member);
        else d_.heal(broken_->member);
        std::printf("  %6.1f s  %s %s\n", ms_since(start_) / 1000, broken_->killed ? "restart" : "heal", broken_->member.c_str());
        std::fflush(stdout);
        broken_.reset();
        ++repairs_;
    }

    std::int64_t faults() const { return faults_; }
    std::int64_t repairs() const { return repairs_; }
    const std::map<std::string, std::int64_t>& by_kind() const { return by_kind_; }

private:
    struct broken {
        std::string member;
        bool killed;
    };
    void count(const std::string& kind) {
        ++by_kind_[kind];
        last_ = kind;
    }
    void log(const std::string& target) {
        std::printf("  %6.1f s  %s %s\n", ms_since(start_) / 1000, last_.c_str(), target.c_str());
        std::fflush(stdout);
    }

    sim::deployment& d_;
    std::mt19937_64 rng_;
    std::optional<broken> broken_;
    std::map<std::string, std::int64_t> by_kind_;
    std::string last_;
    std::int64_t faults_ = 0, repairs_ = 0;
    clock::time_point start_;
};

// ---------------------------------------------------------------- the final read

/// Every {w, s} in the collection, read with read concern majority from the primary. Retries
/// until recovery_timeout (the set may still be electing after the last repair).
std::vector<write_id> read_back(const trellis::collection& coll) {
    trellis::handle_options ho;
    ho.read_concern = trellis::read_concern{"majority"};
    ho.read_preference = trellis::read_preference{};
    trellis::collection c = coll.with_options(ho);
    const auto deadline = clock::now() + recovery_timeout;
    for (;;) {
        try {
            std::vector<write_id> found;
            auto cur = c.find(bson::document{});
            while (auto d = cur.next()) {
                const auto v = d->view();
                const auto w = v.find("w");
                const auto s = v.find("s");
                if (!w || !s || !w->is_number() || !s->is_number())
                    throw std::runtime_error("the final read found a document without numeric w and s: " + bson::to_json(v));
                found.emplace_back(static_cast<std::int32_t>(w->as_int64()), s->as_int64());
            }
            return found;
        } catch (const trellis::error& e) {
            if (clock::now() > deadline)
                throw failure{exit_failure, std::string("the final read failed for ") + std::to_string(recovery_timeout.count()) +
                                                " s, last: " + e.what()};
            std::this_thread::sleep_for(milliseconds(200));
        }
    }
}

// ---------------------------------------------------------------- output

void print_counts(const char* title, const std::map<std::string, std::int64_t>& m) {
    if (m.empty()) return;
    std::printf("  %s\n", title);
    for (const auto& [k, v] : m) std::printf("    %-44s %8lld\n", k.c_str(), static_cast<long long>(v));
}

std::string id_list(const std::vector<write_id>& ids) {
    std::string out;
    for (const auto& [w, s] : ids) out += (out.empty() ? "" : ", ") + std::string("{w: ") + std::to_string(w) + ", s: " + std::to_string(s) + "}";
    return out;
}

void print_report(const report& r, const reconciliation& rec, const std::vector<std::string>& slow_ops, double elapsed_s) {
    std::printf("\ntrellis-bench chaos: %lld s (%.1f s with recovery), %d writers, %d readers, seed %llu\n",
                static_cast<long long>(r.seconds), elapsed_s, r.writers, readers, static_cast<unsigned long long>(r.seed));
    std::printf("  w:majority, retryWrites, serverSelectionTimeoutMS %lld, socketTimeoutMS %lld, connectTimeoutMS %lld:\n"
                "  slow = longer than %lld ms, hung = longer than %lld ms\n\n",
                static_cast<long long>(server_selection_timeout.count()), static_cast<long long>(socket_timeout.count()),
                static_cast<long long>(connect_timeout.count()), static_cast<long long>(r.slow_limit_ms),
                static_cast<long long>(r.hang_limit_ms));
    const auto row = [](const char* name, std::int64_t v) { std::printf("  %-46s %8lld\n", name, static_cast<long long>(v)); };
    row("writes acknowledged", r.acknowledged);
    row("writes failed", r.failed);
    print_counts("failed, by error:", r.failed_by_error);
    row("failed writes found anyway (allowed)", r.failed_present);
    row("LOST (acknowledged, missing)", r.lost);
    row("DUPLICATED", r.duplicated);
    row("slow (writes and reads; allowed)", r.slow);
    row("HUNG (writes and reads)", r.hung);
    row("found but never written", r.unknown);
    row("reads", r.reads);
    row("reads failed", r.reads_failed);
    print_counts("reads failed, by error:", r.reads_failed_by_error);
    row("faults injected", r.faults);
    print_counts("faults, by kind:", r.faults_by_kind);
    row("repairs (restart, heal)", r.repairs);
    std::printf("  %-46s %8.0f\n", "longest write (ms)", r.max_write_ms);
    std::printf("  %-46s %8.0f\n", "longest read (ms)", r.max_read_ms);
    if (!rec.lost_ids.empty()) std::printf("  lost, first few: %s\n", id_list(rec.lost_ids).c_str());
    if (!rec.duplicated_ids.empty()) std::printf("  duplicated, first few: %s\n", id_list(rec.duplicated_ids).c_str());
    for (const auto& h : slow_ops) std::printf("  %s\n", h.c_str());
    std::fflush(stdout);
}

}  // namespace

int run(int argc, char** argv) {
    const std::optional<options> o = parse_arguments(argc, argv);
    if (!o) {
        std::cout << usage_text;
        return exit_ok;
    }
    const std::uint64_t seed = o->seed ? *o->seed : std::random_device{}();
    std::ofstream json_out;
    if (o->json_file) {
        json_out.open(*o->json_file, std::ios::binary | std::ios::trunc);
        if (!json_out) throw failure{exit_failure, "cannot write " + *o->json_file + ": " + std::strerror(errno)};
    }

    sim::sim_config cfg;
    cfg.topology = sim::topology_kind::replica_set;
    cfg.nodes = 3;
    cfg.election_delay = election_delay;
    sim::deployment d(cfg);
    d.start();
    if (!d.wait_for_primary(recovery_timeout)) throw failure{exit_failure, "the simulated replica set elected no primary"};

    const std::string uri = with_options(
        d.uri(), "retryWrites=true&w=majority&heartbeatFrequencyMS=" + std::to_string(heartbeat_frequency.count()) +
                     "&serverSelectionTimeoutMS=" + std::to_string(server_selection_timeout.count()) +
                     "&socketTimeoutMS=" + std::to_string(socket_timeout.count()) +
                     "&connectTimeoutMS=" + std::to_string(connect_timeout.count()));
    std::printf("trellis-bench chaos: seed %llu, %d writers, %lld s on %s\n", static_cast<unsigned long long>(seed), o->writers,
                static_cast<long long>(o->seconds), uri.c_str());
    std::fflush(stdout);
    trellis::client client(uri);
    trellis::collection writes = client["bench"]["chaos"];
    trellis::handle_options ro;
    ro.read_preference = trellis::read_preference{};
    ro.read_preference->mode = trellis::read_preference_mode::secondary_preferred;
    const trellis::collection reads = writes.with_options(ro);

    shared s;
    const auto t0 = s.start;
    std::vector<std::thread> threads;
    for (std::int32_t w = 0; w < o->writers; ++w) threads.emplace_back(writer_loop, std::ref(s), writes, w);
    for (int r = 0; r < readers; ++r) threads.emplace_back(reader_loop, std::ref(s), reads, o->writers, seed + 1 + static_cast<std::uint64_t>(r));

    controller ctl(d, seed, s.start);
    const auto end = t0 + std::chrono::seconds(o->seconds);
    try {
        // Each pause starts when the previous fault is in place (a control call can wait for
        // the simulator's thread), so faults never come in a burst.
        for (auto next = clock::now() + ctl.next_interval(); next < end; next = clock::now() + ctl.next_interval()) {
            std::this_thread::sleep_until(next);
            ctl.tick();
        }
        std::this_thread::sleep_until(end);
        ctl.repair();
    } catch (...) {
        s.stop = true;
        for (auto& t : threads) t.join();
        throw;
    }
    s.stop = true;
    for (auto& t : threads) t.join();
    if (!d.wait_for_primary(recovery_timeout))
        throw failure{exit_failure, "no primary " + std::to_string(recovery_timeout.count()) + " s after healing every member"};

    const std::vector<write_id> found = read_back(writes);
    const double elapsed_s = ms_since(t0) / 1000;
    const reconciliation rec = reconcile(s.attempted, s.acknowledged, found);

    report r;
    r.acknowledged = static_cast<std::int64_t>(s.acknowledged.size());
    r.failed = s.failed;
    r.failed_by_error = s.failed_by_error;
    r.lost = rec.lost;
    r.duplicated = rec.duplicated;
    r.slow = s.slow;
    r.hung = s.hung;
    r.faults = ctl.faults();
    r.faults_by_kind = ctl.by_kind();
    r.repairs = ctl.repairs();
    r.reads = s.reads;
    r.reads_failed = s.reads_failed;
    r.reads_failed_by_error = s.reads_failed_by_error;
    r.failed_present = rec.failed_present;
    r.unknown = rec.unknown;
    r.max_write_ms = s.max_write_ms;
    r.max_read_ms = s.max_read_ms;
    r.slow_limit_ms = slow_limit.count();
    r.hang_limit_ms = hang_limit.count();
    r.seconds = o->seconds;
    r.seed = seed;
    r.writers = o->writers;
    print_report(r, rec, s.slow_ops, elapsed_s);

    if (o->json_file) {
        json_out << report_json(r);
        json_out.close();
        if (!json_out) throw failure{exit_failure, "cannot write " + *o->json_file};
    }
    int status = exit_ok;
    if (report_failed(r)) {
        std::fprintf(stderr, "trellis-bench chaos: FAILED: %lld lost, %lld duplicated, %lld hung, %lld found but never written\n",
                     static_cast<long long>(r.lost), static_cast<long long>(r.duplicated), static_cast<long long>(r.hung),
                     static_cast<long long>(r.unknown));
        status = exit_failure;
    }
    if (r.faults < o->min_faults) {
        std::fprintf(stderr, "trellis-bench chaos: FAILED: %lld faults injected, fewer than --min-faults %lld\n",
                     static_cast<long long>(r.faults), static_cast<long long>(o->min_faults));
        status = exit_failure;
    }
    if (r.acknowledged < o->min_acknowledged) {
        std::fprintf(stderr, "trellis-bench chaos: FAILED: %lld writes acknowledged, fewer than --min-acknowledged %lld\n",
                     static_cast<long long>(r.acknowledged), static_cast<long long>(o->min_acknowledged));
        status = exit_failure;
    }
    return status;
}

}  // namespace trellis_bench::chaos
