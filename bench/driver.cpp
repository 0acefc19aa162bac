#include "driver.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <boost/json.hpp>
#include <mongoc/mongoc.h>

#include "args.hpp"
#include "driver_peers.hpp"
#include "process.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"

#ifndef TRELLIS_DEFAULT_BENCH_DATA_DIR
#define TRELLIS_DEFAULT_BENCH_DATA_DIR "../shared/bench-data"
#endif

namespace trellis_bench::driver {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

constexpr std::string_view usage_text =
    "usage: trellis-bench driver [--tasks T,...] [--peers P,...] [--faces F,...] [--rounds R] [--ops N]\n"
    "                            [--json FILE] [--data DIR] [--smoke] [--glibc-malloc-defaults]\n"
    "\n"
    "The driver benchmark spec's single- and multi-document tasks against one trellis-sim\n"
    "standalone (its own process), on Trellis and its peers in the same run, interleaved;\n"
    "prints the median of R rounds per task and peer, and the ratio Trellis / libmongoc.\n"
    "\n"
    "  --tasks T,...   run_command, find_one, insert_one, find_many, insert_many, insert_large\n"
    "                  (default: all)\n"
    "  --peers P,...   trellis, libmongoc, pymongo, raw (default: all; trellis is always run)\n"
    "  --faces F,...   the rows' Trellis faces: blocking, async (1 in flight), in_flight (64),\n"
    "                  threads (8) (default: all)\n"
    "  --rounds R      timed rounds, R >= 1 (default 5); an untimed checking round comes first\n"
    "  --ops N         operations per run of run_command, find_one, insert_one (default 10000)\n"
    "  --json FILE     also write {\"tasks\": [{\"name\", \"trellis\", \"libmongoc\", \"pymongo\",\n"
    "                  \"raw\", \"unit\", \"ratio_libmongoc\", ...}]} to FILE\n"
    "  --data DIR      DIR/single_and_multi_document/{tweet,small_doc,large_doc}.json; default:\n"
    "                  $TRELLIS_BENCH_DATA_DIR, else " TRELLIS_DEFAULT_BENCH_DATA_DIR "\n"
    "  --glibc-malloc-defaults  leave glibc's heap as it is: it then hands memory back to the\n"
    "                  kernel and takes it again as the peers, who share this process, allocate,\n"
    "                  and a 16 MB reply may land on fresh pages or not depending on who ran\n"
    "                  before (by default the heap keeps its memory: blocks up to 32 MB from the\n"
    "                  heap, trimmed beyond 1 GB free)\n"
    "  --smoke         a few hundred operations per task and one round: checks that every\n"
    "                  peer runs every task and gets the same documents back (CTest)\n"
    "\n"
    "Faces: Trellis blocking (one thread), async on one io_context run by the calling thread\n"
    "(1 and 64 operations in flight), blocking from 8 threads on one client; libmongoc one\n"
    "client, or a client pool with 16 / 8 threads for the concurrent rows; PyMongo one client\n"
    "(single-document tasks); raw: pre-encoded OP_MSG on a blocking socket.\n"
    "Exit status: 0 success, 1 failure (a peer failed or peers disagree), 2 usage error.\n";

const std::vector<std::string> all_tasks = {"run_command", "find_one", "insert_one", "find_many", "insert_many", "insert_large"};
const std::vector<std::string> all_peers = {"trellis", "libmongoc", "pymongo", "raw"};
const std::vector<std::string> all_faces = {"blocking", "async", "in_flight", "threads"};

struct options {
    std::vector<std::string> tasks = all_tasks;
    std::vector<std::string> peers = all_peers;
    std::vector<std::string> faces = all_faces;
    std::size_t rounds = 5;
    std::size_t ops = 10000;
    bool smoke = false;
    bool malloc_defaults = false;
    std::optional<std::string> json_file;
    std::optional<std::string> data_dir;
};

std::vector<std::string> split_list(std::string_view option, std::string_view text, const std::vector<std::string>& known) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        const std::size_t comma = std::min(text.find(',', at), text.size());
        const std::string item(text.substr(at, comma - at));
        if (std::find(known.begin(), known.end(), item) == known.end()) {
            std::string names;
            for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
            throw failure{exit_usage_error, std::string(option) + ": unknown \"" + item + "\" (one of " + names + ")"};
        }
        out.push_back(item);
        at = comma + 1;
    }
    return out;
}

std::optional<options> parse_arguments(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    options o;
    bool ops_given = false;
    bool rounds_given = false;
    arg_walker w(args, 0);
    while (w.next()) {
        const std::string_view name = w.name();
        if (name == "-h" || name == "--help") return std::nullopt;
        if (name == "--tasks") o.tasks = split_list(name, w.take_value(), all_tasks);
        else if (name == "--peers") o.peers = split_list(name, w.take_value(), all_peers);
        else if (name == "--faces") o.faces = split_list(name, w.take_value(), all_faces);
        else if (name == "--rounds") o.rounds = parse_count(name, w.take_value(), 1), rounds_given = true;
        else if (name == "--ops") o.ops = parse_count(name, w.take_value(), 64), ops_given = true;
        else if (name == "--smoke" && !w.has_inline_value()) o.smoke = true;
        else if (name == "--glibc-malloc-defaults" && !w.has_inline_value()) o.malloc_defaults = true;
        else if (name == "--json") {
            o.json_file = std::string(w.take_value());
            if (o.json_file->empty()) throw failure{exit_usage_error, "--json needs a file name"};
        } else if (name == "--data") {
            o.data_dir = std::string(w.take_value());
            if (o.data_dir->empty()) throw failure{exit_usage_error, "--data needs a directory"};
        } else {
            throw failure{exit_usage_error, "unknown argument \"" + std::string(name) + "\" (see --help)"};
        }
    }
    if (o.smoke) {
        if (!ops_given) o.ops = 256;
        if (!rounds_given) o.rounds = 1;
    }
    if (std::find(o.peers.begin(), o.peers.end(), "trellis") == o.peers.end()) o.peers.insert(o.peers.begin(), "trellis");
    return o;
}

// ---------------------------------------------------------------- data

std::string data_directory(const options& o) {
    if (o.data_dir) return *o.data_dir;
    if (const char* env = std::getenv("TRELLIS_BENCH_DATA_DIR"); env && *env) return env;
    return TRELLIS_DEFAULT_BENCH_DATA_DIR;
}

trellis::bson::document read_json_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw failure{exit_failure, "cannot read " + path + " (benchmark data; see --data)"};
    std::stringstream text;
    text << f.rdbuf();
    try {
        return trellis::bson::from_json(text.str());
    } catch (const std::exception& e) {
        throw failure{exit_failure, path + ": " + e.what()};
    }
}

// ---------------------------------------------------------------- rows

/// One line of the report: a task on one Trellis face against one libmongoc face.
struct row {
    std::string name;
    task_id task;
    face trellis;
    face libmongoc;
    bool single_peers;  // PyMongo and raw run it (their serial face)
};

std::vector<row> rows_for(const options& o) {
    const auto task_of = [](const std::string& t) {
        if (t == "run_command") return task_id::run_command;
        if (t == "find_one") return task_id::find_one;
        if (t == "insert_one") return task_id::insert_one;
        if (t == "find_many") return task_id::find_many;
        if (t == "insert_many") return task_id::insert_many;
        return task_id::insert_large;
    };
    const face serial{face_kind::serial, 1};
    const auto wanted = [&](const char* f) { return std::find(o.faces.begin(), o.faces.end(), f) != o.faces.end(); };
    std::vector<row> rows;
    for (const std::string& t : o.tasks) {
        const task_id id = task_of(t);
        if (wanted("blocking")) rows.push_back({t, id, serial, serial, true});
        if (wanted("async")) rows.push_back({t + " async", id, {face_kind::async_serial, 1}, serial, false});
        if (id == task_id::run_command || id == task_id::find_one || id == task_id::insert_one) {
            if (wanted("in_flight"))
                rows.push_back({t + " 64 in flight / pool 16", id, {face_kind::in_flight, 64}, {face_kind::threads, 16}, false});
            if (wanted("threads"))
                rows.push_back({t + " 8 threads / pool 8", id, {face_kind::threads, 8}, {face_kind::threads, 8}, false});
        }
    }
    return rows;
}

bool per_operation(task_id t) { return t == task_id::run_command || t == task_id::find_one || t == task_id::insert_one; }

// ---------------------------------------------------------------- the run

struct cell {
    std::vector<double> rates;      // per round: ops/s or MB/s
    std::vector<double> sim_share;  // per round: the sim's CPU / wall time
    std::vector<double> client_cpu; // per round: the client's CPU seconds per operation (or per run)
    double median_rate() const { return median(rates); }
    double median_share() const { return median(sim_share); }
    double median_client_cpu() const { return median(client_cpu); }
    static double median(std::vector<double> v) {
        if (v.empty()) return 0;
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
};

class bench {
public:
    bench(const options& o, workload& w, child_process& sim) : o_(o), w_(w), sim_(sim), admin_(w.uri) {}

    void add_peer(std::unique_ptr<peer> p) { peers_.push_back(std::move(p)); }

    /// Loads the find collection: `tweets` copies of tweet.json with _id 0, 1, ...
    void load() {
        admin_[w_.db].drop();
        std::vector<trellis::bson::document> docs;
        docs.reserve(w_.tweets);
        for (std::size_t i = 0; i < w_.tweets; ++i) {
            trellis::bson::builder b;
            b.append("_id", static_cast<std::int32_t>(i));
            for (const auto& e : w_.tweet.view())
                if (e.key() != "_id") b.append(e);
            docs.push_back(b.extract());
        }
        admin_[w_.db][w_.find_coll].insert_many(std::move(docs));
    }

    /// The checking round (also the warm-up): each peer runs each row once; they must agree.
    void check(const std::vector<row>& rows) {
        for (const row& r : rows) {
            std::optional<std::uint64_t> digest;
            std::string first;
            for (auto& p : peers_) {
                const auto f = face_of(*p, r);
                if (!f) continue;
                prepare(r.task);
                const measurement m = p->run(r.task, *f, true);
                const std::string who = p->name() + " (" + r.name + ")";
                verify(r.task, m, who);
                if (r.task == task_id::find_one || r.task == task_id::find_many) {
                    if (!digest) {
                        digest = m.digest;
                        first = who;
                    } else if (*digest != m.digest) {
                        throw failure{exit_failure, who + " got other documents back than " + first};
                    }
                }
            }
            std::printf("  checked %-36s every peer agrees\n", r.name.c_str());
            std::fflush(stdout);
        }
    }

    void time(const std::vector<row>& rows) {
        for (std::size_t round = 0; round < o_.rounds; ++round) {
            for (const row& r : rows) {
                // Rotate the order each round so no peer always runs first.
                for (std::size_t k = 0; k < peers_.size(); ++k) {
                    peer& p = *peers_[(k + round) % peers_.size()];
                    const auto f = face_of(p, r);
                    if (!f) continue;
                    if (r.task == task_id::find_many) {
                        // An untimed run first: the timed one then reads its 16 MB batch into
                        // memory this peer has written, whatever the other peer freed or kept.
                        prepare(r.task);
                        (void)p.run(r.task, *f, false);
                    }
                    prepare(r.task);
                    const auto client_cpu = [&] { return p.process_cpu_seconds().value_or(own_cpu_seconds()); };
                    const double cpu0 = sim_.cpu_seconds();
                    const double client0 = client_cpu();
                    const measurement m = p.run(r.task, *f, false);
                    const double client = client_cpu() - client0;
                    const double cpu = sim_.cpu_seconds() - cpu0;
                    cell& c = cells_[{r.name, p.name()}];
                    c.rates.push_back(rate(r.task, m.seconds));
                    c.sim_share.push_back(m.seconds > 0 ? cpu / m.seconds : 0);
                    c.client_cpu.push_back(client / static_cast<double>(per_operation(r.task) ? w_.ops : 1));
                }
            }
            std::printf("  round %zu of %zu done\n", round + 1, o_.rounds);
            std::fflush(stdout);
        }
    }

    void report(const std::vector<row>& rows) const {
        std::printf("\n%-36s %12s %12s %12s %12s %6s %7s  %s\n", "task", "trellis", "libmongoc", "pymongo", "raw", "unit",
                    "ratio", "sim CPU (trellis / libmongoc)");
        boost::json::array tasks;
        for (const row& r : rows) {
            const auto value = [&](const std::string& peer_name) -> std::optional<double> {
                const auto it = cells_.find({r.name, peer_name});
                if (it == cells_.end() || it->second.rates.empty()) return std::nullopt;
                return it->second.median_rate();
            };
            const auto share = [&](const std::string& peer_name) -> std::string {
                const auto it = cells_.find({r.name, peer_name});
                if (it == cells_.end()) return "-";
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.0f%%", 100 * it->second.median_share());
                return buf;
            };
            const auto t = value("trellis"), m = value("libmongoc"), py = value("pymongo"), raw = value("raw");
            const auto text = [](std::optional<double> v) {
                if (!v) return std::string("-");
                char buf[32];
                std::snprintf(buf, sizeof buf, *v >= 100 ? "%.0f" : "%.1f", *v);
                return std::string(buf);
            };
            const std::optional<double> ratio = t && m && *m > 0 ? std::optional<double>(*t / *m) : std::nullopt;
            char ratio_text[16] = "-";
            if (ratio) std::snprintf(ratio_text, sizeof ratio_text, "%.2f", *ratio);
            const char* unit = per_operation(r.task) ? "ops/s" : "MB/s";
            std::printf("%-36s %12s %12s %12s %12s %6s %7s  %s / %s\n", r.name.c_str(), text(t).c_str(), text(m).c_str(),
                        text(py).c_str(), text(raw).c_str(), unit, ratio_text, share("trellis").c_str(),
                        share("libmongoc").c_str());
            boost::json::object j;
            j["name"] = r.name;
            const auto put = [&](const char* key, std::optional<double> v) {
                if (v) j[key] = *v;
                else j[key] = nullptr;
            };
            put("trellis", t);
            put("libmongoc", m);
            put("pymongo", py);
            put("raw", raw);
            j["unit"] = unit;
            put("ratio_libmongoc", ratio);
            boost::json::object sim;
            for (const auto& p : peers_)
                if (const auto it = cells_.find({r.name, p->name()}); it != cells_.end())
                    sim[p->name()] = it->second.median_share() * 100;
            j["sim_cpu_percent"] = std::move(sim);
            boost::json::object client_cpu;
            for (const auto& p : peers_)
                if (const auto it = cells_.find({r.name, p->name()}); it != cells_.end())
                    client_cpu[p->name()] = it->second.median_client_cpu() * 1e6;
            j["client_cpu_us"] = std::move(client_cpu);
            tasks.push_back(std::move(j));
        }
        std::printf("\nClient CPU per operation (per run for the multi-document tasks), microseconds\n"
                    "(the driver's process, every thread; CPU time barely depends on the machine's load):\n");
        std::printf("%-36s %12s %12s %12s %12s\n", "task", "trellis", "libmongoc", "pymongo", "raw");
        for (const row& r : rows) {
            const auto us = [&](const char* peer_name) {
                const auto it = cells_.find({r.name, peer_name});
                if (it == cells_.end() || it->second.client_cpu.empty()) return std::string("-");
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.1f", it->second.median_client_cpu() * 1e6);
                return std::string(buf);
            };
            std::printf("%-36s %12s %12s %12s %12s\n", r.name.c_str(), us("trellis").c_str(), us("libmongoc").c_str(),
                        us("pymongo").c_str(), us("raw").c_str());
        }
        std::printf("\nMedian of %zu interleaved rounds; higher is better; ratio = trellis / libmongoc.\n"
                    "sim CPU: trellis-sim's CPU time over the run's wall time (100%% = one core saturated:\n"
                    "the server, not the driver, limits that figure).\n",
                    o_.rounds);
        if (o_.json_file) {
            boost::json::object doc;
            doc["tasks"] = std::move(tasks);
            doc["rounds"] = o_.rounds;
            doc["ops"] = w_.ops;
            doc["malloc"] = o_.malloc_defaults ? "glibc defaults" : "steady heap";
            std::ofstream f(*o_.json_file);
            f << boost::json::serialize(doc) << "\n";
            if (!f) throw failure{exit_failure, "cannot write " + *o_.json_file};
        }
    }

private:
    std::optional<face> face_of(const peer& p, const row& r) const {
        if (p.name() == "trellis") return p.can(r.task, r.trellis) ? std::optional<face>(r.trellis) : std::nullopt;
        if (p.name() == "libmongoc") return p.can(r.task, r.libmongoc) ? std::optional<face>(r.libmongoc) : std::nullopt;
        const face serial{face_kind::serial, 1};
        return r.single_peers && p.can(r.task, serial) ? std::optional<face>(serial) : std::nullopt;
    }

    void prepare(task_id t) {
        if (t == task_id::insert_one || t == task_id::insert_many || t == task_id::insert_large)
            admin_[w_.db][w_.insert_coll].drop();
    }

    double rate(task_id t, double seconds) const {
        if (seconds <= 0) return 0;
        switch (t) {
        case task_id::run_command:
        case task_id::find_one:
        case task_id::insert_one: return static_cast<double>(w_.ops) / seconds;
        case task_id::find_many: return static_cast<double>(w_.tweets * tweet_size()) / seconds / 1e6;
        case task_id::insert_many: return static_cast<double>(w_.insert_many * w_.small.view().size()) / seconds / 1e6;
        case task_id::insert_large: return static_cast<double>(w_.large_inserts * w_.large.view().size()) / seconds / 1e6;
        }
        return 0;
    }
    std::size_t tweet_size() const { return w_.tweet.view().size(); }

    /// What a checking run must have produced.
    void verify(task_id t, const measurement& m, const std::string& who) {
        const auto expect = [&](std::size_t got, std::size_t want, const char* what) {
            if (got != want)
                throw failure{exit_failure, who + ": " + std::to_string(got) + " " + what + ", expected " + std::to_string(want)};
        };
        switch (t) {
        case task_id::run_command: expect(m.documents, w_.ops, "ok replies"); return;
        case task_id::find_one: expect(m.documents, w_.ops, "documents found"); return;
        case task_id::find_many: expect(m.documents, w_.tweets, "documents read"); return;
        default: break;
        }
        auto coll = admin_[w_.db][w_.insert_coll];
        const std::size_t want = t == task_id::insert_one ? w_.ops : t == task_id::insert_many ? w_.insert_many : w_.large_inserts;
        expect(static_cast<std::size_t>(coll.count_documents()), want, "documents inserted");
        const auto doc = coll.find_one();
        const auto& source = t == task_id::insert_large ? w_.large : w_.small;
        trellis::bson::builder without_id;
        for (const auto& e : doc->view())
            if (e.key() != "_id") without_id.append(e);
        if (!(without_id.view() == source.view()) || !doc->view().contains("_id"))
            throw failure{exit_failure, who + ": the inserted document differs from the source (or has no _id)"};
    }

    const options& o_;
    workload& w_;
    child_process& sim_;
    trellis::client admin_;
    std::vector<std::unique_ptr<peer>> peers_;
    std::map<std::pair<std::string, std::string>, cell> cells_;
};

bool wants(const options& o, const char* peer_name) {
    return std::find(o.peers.begin(), o.peers.end(), peer_name) != o.peers.end();
}

}  // namespace

int run(int argc, char** argv) {
    const auto parsed = parse_arguments(argc, argv);
    if (!parsed) {
        std::cout << usage_text;
        return exit_ok;
    }
    const options& o = *parsed;
    // The Trellis and libmongoc peers share this process's heap. With glibc's defaults, whether
    // a peer's 16 MB find batch lands on fresh pages (the first write to a page costs ~10 us
    // on this VM: `trellis-bench pages`) depended on what the other peer had allocated and freed
    // before: libmongoc's find_many took 45-90 ms of CPU per run in a full run and 4.4 ms with
    // this setting, Trellis's 8-63 ms and 9 ms. A steady heap, and an untimed find_many before
    // each timed one (time()), measure the drivers, not the order they ran in.
    if (!o.malloc_defaults && (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 1 << 30) != 1))
        throw failure{exit_failure, "glibc refused the heap settings (mallopt); run with --glibc-malloc-defaults"};
    const std::string dir = data_directory(o);
    const std::string docs_dir = dir + "/single_and_multi_document";

    workload w;
    w.tweet = read_json_file(docs_dir + "/tweet.json");
    w.small = read_json_file(docs_dir + "/small_doc.json");
    w.large = read_json_file(docs_dir + "/large_doc.json");
    w.ops = o.ops;
    if (o.smoke) {
        w.tweets = 300;
        w.insert_many = 300;
        w.large_inserts = 2;
    }

    // One trellis-sim standalone, its own process, so its CPU is not the client's.
    const std::string sim_path = executable_directory() + "/trellis-sim";
    child_process sim({sim_path, "--topology", "standalone"});
    const std::string ready = sim.read_line(std::chrono::seconds(20));
    if (!ready.starts_with("ready "))
        throw failure{exit_failure, "trellis-sim: expected \"ready <uri> ...\", got \"" + ready + "\""};
    w.uri = ready.substr(6, ready.find(' ', 6) - 6);
    {
        const auto hostport = w.uri.substr(std::string_view("mongodb://").size());
        const auto colon = hostport.rfind(':');
        w.host = hostport.substr(0, colon);
        w.port = std::stoi(hostport.substr(colon + 1, hostport.find_first_of("/?", colon) - colon - 1));
    }
    std::printf("trellis-bench driver: trellis-sim (pid %d) at %s; %zu ops per single-document run, %zu tweets, %zu round(s);\n"
                "  heap: %s\n",
                static_cast<int>(sim.pid()), w.uri.c_str(), w.ops, w.tweets, o.rounds,
                o.malloc_defaults ? "glibc defaults" : "steady (blocks up to 32 MB from the heap, trimmed beyond 1 GB free)");
    std::fflush(stdout);

    mongoc_init();
    int status = exit_ok;
    {
        bench b(o, w, sim);
        b.load();
        b.add_peer(make_trellis_peer(w));
        if (wants(o, "libmongoc")) b.add_peer(make_mongoc_peer(w));
        if (wants(o, "pymongo")) b.add_peer(make_pymongo_peer(w, TRELLIS_BENCH_PYTHON, TRELLIS_BENCH_DRIVER_SCRIPT,
                                                            docs_dir + "/small_doc.json"));
        if (wants(o, "raw")) b.add_peer(make_raw_peer(w));
        const auto rows = rows_for(o);
        b.check(rows);
        b.time(rows);
        b.report(rows);
    }
    mongoc_cleanup();
    sim.stop();
    return status;
}

}  // namespace trellis_bench::driver
