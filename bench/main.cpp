// trellis-bench: the MongoDB driver benchmark spec's BSON micro-benchmarks
// (flat, deep and full; encode and decode), run on Trellis and on libbson in
// the same process, interleaved, so that the ratio between the two is what
// the result says; and `failover` (failover.cpp), Trellis against PyMongo on a
// simulated replica set; `driver` (driver.cpp), the driver benchmark spec's single- and multi-document
// tasks against libmongoc, PyMongo and a raw socket; `monitoring`; `scale`; and `chaos` (chaos.cpp),
// faults injected under load. See README.md.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "args.hpp"
#include "chaos.hpp"
#include "codecs.hpp"
#include "driver.hpp"
#include "failover.hpp"
#include "monitoring.hpp"
#include "pages.hpp"
#include "scale.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

#ifndef TRELLIS_DEFAULT_BENCH_DATA_DIR
#define TRELLIS_DEFAULT_BENCH_DATA_DIR "../shared/bench-data"
#endif

namespace {

using namespace trellis_bench;

constexpr int exit_ok = 0;
constexpr int exit_data_error = 1;

constexpr std::string_view usage_text =
    "usage: trellis-bench bson [--iterations N] [--runs R] [--json FILE] [--data DIR] [--encode-mode reuse|fresh]\n"
    "       trellis-bench failover [--stepdowns N] [--json FILE] [--pymongo-only] (see failover --help)\n"
    "       trellis-bench scale [--sizes N,N,...] [--min-time MS] (see scale --help)\n"
    "       trellis-bench driver [--tasks ...] [--peers ...] [--json FILE] (see driver --help)\n"
    "       trellis-bench monitoring [--servers N] [--seconds S] [--json FILE] (see monitoring --help)\n"
    "       trellis-bench chaos [--seconds N] [--writers W] [--seed S] [--json FILE] (see chaos --help)\n"
    "       trellis-bench pages [--mb N] [--runs R] (see pages --help)\n"
    "\n"
    "Runs the MongoDB driver benchmark spec's BSON micro-benchmarks (flat, deep and\n"
    "full BSON; encode and decode) on Trellis and on libbson, interleaved in one\n"
    "process, and prints MB/s for both and the ratio trellis/libbson per task. The\n"
    "_validate rows time the decoders' first step alone: structure and UTF-8 checks.\n"
    "\n"
    "  --iterations N   documents encoded or decoded per timed run (default 10000)\n"
    "  --runs R         timed runs per library and task, R >= 5 (default 7); the\n"
    "                   median is reported; one untimed warm-up run comes first\n"
    "  --json FILE      also write the results as JSON to FILE\n"
    "  --data DIR       benchmark data: DIR/extended_bson/{flat,deep,full}_bson.json\n"
    "                   (or DIR may be the extended_bson directory itself); default:\n"
    "                   $TRELLIS_BENCH_DATA_DIR, else " TRELLIS_DEFAULT_BENCH_DATA_DIR "\n"
    "  --encode-mode M  reuse (default): one builder / bson_t serves every document;\n"
    "                   fresh: a new one per document (both libraries alike)\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 success, 1 data error (missing or unreadable data, or the two\n"
    "libraries disagree), 2 usage error.\n";

struct options {
    std::size_t iterations = 10000;
    std::size_t runs = 7;
    std::optional<std::string> json_file;
    std::optional<std::string> data_dir;
    encode_mode mode = encode_mode::reuse;
};

/// Returns nullopt for --help.
std::optional<options> parse_arguments(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    for (const std::string_view a : args)
        if (a == "-h" || a == "--help") return std::nullopt;
    if (args.empty()) throw failure{exit_usage_error, "no benchmark suite given (\"bson\", \"driver\", \"failover\", \"monitoring\", \"scale\", \"chaos\" or \"pages\"; see --help)"};
    if (args[0] != "bson")
        throw failure{exit_usage_error, "unknown benchmark suite \"" + std::string(args[0]) + "\" (\"bson\", \"driver\", \"failover\", \"monitoring\", \"scale\", \"chaos\" or \"pages\")"};

    options o;
    arg_walker w(args, 1);
    while (w.next()) {
        const std::string_view name = w.name();
        const auto take_value = [&] { return w.take_value(); };
        if (name == "--iterations") {
            o.iterations = parse_count(name, take_value(), 1);
        } else if (name == "--runs") {
            o.runs = parse_count(name, take_value(), 5);
        } else if (name == "--json") {
            o.json_file = std::string(take_value());
            if (o.json_file->empty()) throw failure{exit_usage_error, "--json needs a file name"};
        } else if (name == "--data") {
            o.data_dir = std::string(take_value());
            if (o.data_dir->empty()) throw failure{exit_usage_error, "--data needs a directory"};
        } else if (name == "--encode-mode") {
            const std::string_view m = take_value();
            if (m == "reuse")
                o.mode = encode_mode::reuse;
            else if (m == "fresh")
                o.mode = encode_mode::fresh;
            else
                throw failure{exit_usage_error, "--encode-mode is reuse or fresh, got \"" + std::string(m) + "\""};
        } else {
            throw failure{exit_usage_error, "unknown argument \"" + std::string(name) + "\" (see --help)"};
        }
    }
    return o;
}

// ---------------------------------------------------------------- data

struct dataset {
    std::string name;                // "flat_bson"
    std::string path;                // the JSON file read
    node tree;                       // what the encoders start from
    std::vector<std::uint8_t> bson;  // what the decoders start from
    /// Strings whose first byte, made 0xFF, libbson's bson_validate does not catch (Trellis must
    /// catch every one): its _validate and _decode rows then time a partial check.
    std::size_t libbson_missed = 0, strings = 0;
};

bool is_file(const std::string& path) { return std::ifstream(path).good(); }

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        throw failure{exit_data_error, "cannot read benchmark data " + path + ": " +
                                           (err != 0 ? std::strerror(err) : "cannot open") +
                                           " (give --data DIR or set TRELLIS_BENCH_DATA_DIR)"};
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof()) throw failure{exit_data_error, "cannot read benchmark data " + path};
    return std::move(text).str();
}

/// The directory holding the three files.
std::string resolve_data_dir(const options& o) {
    std::string dir;
    if (o.data_dir)
        dir = *o.data_dir;
    else if (const char* env = std::getenv("TRELLIS_BENCH_DATA_DIR"); env != nullptr && *env != '\0')
        dir = env;
    else
        dir = TRELLIS_DEFAULT_BENCH_DATA_DIR;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    // DIR/extended_bson/ as the spec's data tarballs unpack, or the extended_bson directory itself.
    if (!is_file(dir + "/extended_bson/flat_bson.json") && is_file(dir + "/flat_bson.json")) return dir;
    return dir + "/extended_bson";
}

dataset load(const std::string& dir, const std::string& name) {
    dataset d;
    d.name = name;
    d.path = dir + "/" + name + ".json";
    const std::string text = read_file(d.path);
    try {
        const trellis::bson::document doc =
            trellis::bson::from_json(text, trellis::bson::json_parse_options{.legacy_date_numbers = true});
        d.tree = tree_from(doc.view());
        d.bson.assign(doc.bytes().begin(), doc.bytes().end());
    } catch (const std::exception& e) {
        throw failure{exit_data_error, "cannot parse " + d.path + ": " + e.what()};
    }
    return d;
}

// ---------------------------------------------------------------- checks

std::string describe_difference(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    char buf[160];
    if (i < a.size() && i < b.size())
        std::snprintf(buf, sizeof buf, "first difference at byte %zu (0x%02X vs 0x%02X), sizes %zu vs %zu", i, a[i], b[i],
                      a.size(), b.size());
    else
        std::snprintf(buf, sizeof buf, "one is a prefix of the other, sizes %zu vs %zu", a.size(), b.size());
    return buf;
}

/// Where every string value of the document starts, at any depth.
void string_offsets(const trellis::bson::document_view& doc, const std::uint8_t* base, std::vector<std::size_t>& out) {
    for (const auto& e : doc) {
        if (e.type() == trellis::bson::type::string && !e.get_string().empty())
            out.push_back(static_cast<std::size_t>(reinterpret_cast<const std::uint8_t*>(e.get_string().data()) - base));
        else if (e.type() == trellis::bson::type::document)
            string_offsets(e.get_document(), base, out);
        else if (e.type() == trellis::bson::type::array)
            string_offsets(trellis::bson::document_view(e.get_array().bytes().data()), base, out);
    }
}

/// Each string value's first byte made 0xFF (invalid UTF-8) in turn: Trellis must refuse every
/// copy; the copies libbson accepts are counted.
void count_missed_corruptions(dataset& d) {
    std::vector<std::size_t> offsets;
    string_offsets(trellis::bson::document_view(d.bson.data()), d.bson.data(), offsets);
    for (const std::size_t at : offsets) {
        std::vector<std::uint8_t> bad = d.bson;
        bad[at] = 0xFF;
        ++d.strings;
        bool trellis_refused = false, libbson_refused = false;
        try {
            trellis_validate(bad);
        } catch (const std::exception&) {
            trellis_refused = true;
        }
        try {
            libbson_validate(bad);
        } catch (const std::exception&) {
            libbson_refused = true;
        }
        if (!trellis_refused)
            throw failure{exit_data_error, d.name + ": Trellis accepted invalid UTF-8 at byte " + std::to_string(at) + " (a bug)"};
        if (!libbson_refused) ++d.libbson_missed;
    }
}

/// Before any timing: both encoders must produce the bytes from_json produced,
/// and both decoders must accept them and read the same values.
void verify(const dataset& d, encode_mode mode) {
    try {
        trellis_encoder te(mode);
        libbson_encoder le(mode);
        const auto t = te.encode_copy(d.tree);
        const auto l = le.encode_copy(d.tree);
        if (t != l)
            throw failure{exit_data_error, d.name + ": Trellis and libbson encode the same tree differently (a bug): " +
                                               describe_difference(t, l) + " (trellis vs libbson)"};
        if (t != d.bson)
            throw failure{exit_data_error, d.name + ": encoding the tree does not give back the bytes from_json made (a bug): " +
                                               describe_difference(t, d.bson) + " (encoded vs from_json)"};
        // Twice more each: a reused encoder must give the same bytes again.
        if (te.encode_copy(d.tree) != t || le.encode_copy(d.tree) != l)
            throw failure{exit_data_error, d.name + ": a reused encoder produced different bytes the second time (a bug)"};
        const std::uint64_t ts = trellis_decode(d.bson);
        const std::uint64_t ls = libbson_decode(d.bson);
        if (ts != ls)
            throw failure{exit_data_error, d.name + ": Trellis and libbson decode different values (checksums " +
                                               std::to_string(ts) + " vs " + std::to_string(ls) + "; a bug)"};
    } catch (const failure&) {
        throw;
    } catch (const std::exception& e) {
        throw failure{exit_data_error, d.name + ": check before timing failed: " + e.what()};
    }
}

// ---------------------------------------------------------------- timing

volatile std::uint64_t sink;  // every result goes here, so no work can be optimized away

struct task_result {
    std::string name;
    std::size_t bytes = 0;
    std::vector<double> trellis_mb_s, libbson_mb_s;  // one per run, in run order
    double trellis_median = 0, libbson_median = 0, ratio = 0;
    double pair_ratio_min = 0, pair_ratio_max = 0;  // spread of the run-by-run ratios
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// One timed run of `iterations` calls; returns seconds.
template <class F>
double timed_run(std::size_t iterations, F&& one) {
    std::uint64_t acc = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < iterations; ++i) acc += one();
    const auto stop = std::chrono::steady_clock::now();
    sink = sink + acc;
    return std::chrono::duration<double>(stop - start).count();
}

task_result run_task(const std::string& name, std::size_t bytes, const options& o,
                     const std::function<double()>& trellis_run, const std::function<double()>& libbson_run) {
    task_result r;
    r.name = name;
    r.bytes = bytes;
    const double megabytes = static_cast<double>(bytes) * static_cast<double>(o.iterations) / 1e6;
    trellis_run();  // warm-up: caches, branch predictors, the allocator's free lists
    libbson_run();
    for (std::size_t run = 0; run < o.runs; ++run) {
        r.trellis_mb_s.push_back(megabytes / trellis_run());
        r.libbson_mb_s.push_back(megabytes / libbson_run());
    }
    r.trellis_median = median(r.trellis_mb_s);
    r.libbson_median = median(r.libbson_mb_s);
    r.ratio = r.trellis_median / r.libbson_median;
    r.pair_ratio_min = r.pair_ratio_max = r.trellis_mb_s[0] / r.libbson_mb_s[0];
    for (std::size_t i = 1; i < o.runs; ++i) {
        const double q = r.trellis_mb_s[i] / r.libbson_mb_s[i];
        r.pair_ratio_min = std::min(r.pair_ratio_min, q);
        r.pair_ratio_max = std::max(r.pair_ratio_max, q);
    }
    return r;
}

std::vector<task_result> run_all(const std::vector<dataset>& sets, const options& o) {
    std::vector<task_result> results;
    for (const dataset& d : sets) {
        trellis_encoder te(o.mode);
        libbson_encoder le(o.mode);
        const node& tree = d.tree;
        results.push_back(run_task(
            d.name + "_encode", d.bson.size(), o,
            [&] { return timed_run(o.iterations, [&] { return te.encode(tree); }); },
            [&] { return timed_run(o.iterations, [&] { return le.encode(tree); }); }));
        const std::span<const std::uint8_t> bytes(d.bson);
        results.push_back(run_task(
            d.name + "_decode", d.bson.size(), o,
            [&] { return timed_run(o.iterations, [&] { return trellis_decode(bytes); }); },
            [&] { return timed_run(o.iterations, [&] { return libbson_decode(bytes); }); }));
        results.push_back(run_task(
            d.name + "_validate", d.bson.size(), o,
            [&] { return timed_run(o.iterations, [&] { return trellis_validate(bytes); }); },
            [&] { return timed_run(o.iterations, [&] { return libbson_validate(bytes); }); }));
    }
    return results;
}

// ---------------------------------------------------------------- output

void print_table(const std::vector<task_result>& results, const options& o, const std::string& data_dir) {
    std::printf("trellis-bench bson: %zu iterations per run, median of %zu runs per library (after 1 warm-up run),\n",
                o.iterations, o.runs);
    std::printf("  runs interleaved trellis/libbson; encode mode %s; libbson %s; data %s\n",
                o.mode == encode_mode::reuse ? "reuse" : "fresh", libbson_version().c_str(), data_dir.c_str());
    std::printf("  MB/s = BSON document bytes x iterations / seconds / 1e6; ratio = trellis / libbson (>1: Trellis faster)\n\n");
    std::printf("%-18s %9s %14s %14s %8s   %s\n", "task", "bytes", "trellis MB/s", "libbson MB/s", "ratio",
                "run-by-run ratio min..max");
    std::printf("%s\n", std::string(18 + 1 + 9 + 1 + 14 + 1 + 14 + 1 + 8 + 3 + 25, '-').c_str());
    for (const task_result& r : results)
        std::printf("%-18s %9zu %14.1f %14.1f %8.3f   %.3f..%.3f\n", r.name.c_str(), r.bytes, r.trellis_median,
                    r.libbson_median, r.ratio, r.pair_ratio_min, r.pair_ratio_max);
    std::fflush(stdout);
}

/// Opened before the benchmark runs, so that a bad path fails at once.
std::ofstream open_json(const std::string& path) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw failure{exit_data_error, "cannot write " + path + ": " + std::strerror(errno)};
    return out;
}

void write_json(const std::vector<task_result>& results, std::ofstream& out, const std::string& path) {
    boost::json::array tasks;
    for (const task_result& r : results)
        tasks.push_back(boost::json::object{{"name", r.name},
                                            {"trellis_mb_s", r.trellis_median},
                                            {"libbson_mb_s", r.libbson_median},
                                            {"ratio", r.ratio}});
    const boost::json::object root{{"tasks", std::move(tasks)}};
    out << boost::json::serialize(root) << '\n';
    out.close();
    if (!out) throw failure{exit_data_error, "cannot write " + path};
}

int run(int argc, char** argv) {
    if (argc > 1 && std::string_view(argv[1]) == "failover") return trellis_bench::failover::run(argc - 1, argv + 1);
    if (argc > 1 && std::string_view(argv[1]) == "driver") return trellis_bench::driver::run(argc - 1, argv + 1);
    if (argc > 1 && std::string_view(argv[1]) == "monitoring") return trellis_bench::monitoring::run(argc - 1, argv + 1);
    if (argc > 1 && std::string_view(argv[1]) == "scale") return trellis_bench::scale::run(argc - 1, argv + 1);
    if (argc > 1 && std::string_view(argv[1]) == "chaos") return trellis_bench::chaos::run(argc - 1, argv + 1);
    if (argc > 1 && std::string_view(argv[1]) == "pages") return trellis_bench::pages::run(argc - 1, argv + 1);
    const std::optional<options> o = parse_arguments(argc, argv);
    if (!o) {
        std::cout << usage_text;
        return exit_ok;
    }
    std::ofstream json_out;
    if (o->json_file) json_out = open_json(*o->json_file);
    const std::string dir = resolve_data_dir(*o);
    std::vector<dataset> sets;
    for (const char* name : {"flat_bson", "deep_bson", "full_bson"}) sets.push_back(load(dir, name));
    for (dataset& d : sets) {
        verify(d, o->mode);
        count_missed_corruptions(d);
    }

    const std::vector<task_result> results = run_all(sets, *o);
    print_table(results, *o, dir);
    for (const dataset& d : sets)
        if (d.libbson_missed != 0)
            std::printf("note: %s: libbson %s's bson_validate (BSON_VALIDATE_UTF8) accepted %zu of the %zu copies with\n"
                        "  a string value made invalid UTF-8 (Trellis refused all): its %s_validate and _decode rows\n"
                        "  time a partial check\n",
                        d.name.c_str(), libbson_version().c_str(), d.libbson_missed, d.strings, d.name.c_str());
    if (o->json_file) write_json(results, json_out, *o->json_file);
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const failure& f) {
        std::fprintf(stderr, "trellis-bench: %s\n", f.message.c_str());
        return f.status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "trellis-bench: %s\n", e.what());
        return exit_data_error;
    }
}
