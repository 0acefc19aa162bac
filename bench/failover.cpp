// trellis-bench failover: starts a trellis-sim replica set in this process, runs the
// PyMongo half (bench/failover/pymongo_failover.py under Debian's /usr/bin/python3) against
// it as a child process, then the Trellis half (measure_trellis), and prints both medians
// and the ratio Trellis / PyMongo. See failover.hpp and README.md.
#include "failover.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "failover_report.hpp"
#include "trellis/sim/deployment.hpp"

#ifndef TRELLIS_BENCH_FAILOVER_SCRIPT
#define TRELLIS_BENCH_FAILOVER_SCRIPT "bench/failover/pymongo_failover.py"
#endif
#ifndef TRELLIS_BENCH_PYTHON
#define TRELLIS_BENCH_PYTHON "/usr/bin/python3"
#endif

extern char** environ;

namespace trellis_bench::failover {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage_error = 2;

// pymongo_failover.py's exit statuses.
constexpr int script_no_pymongo = 3;
constexpr int script_timeout = 4;

constexpr std::string_view usage_text =
    "usage: trellis-bench failover [--stepdowns N] [--json FILE] [--pymongo-only] [--python PATH] [--script PATH]\n"
    "\n"
    "Time from a primary's stepdown to the first successful write, for Trellis and for\n"
    "PyMongo, on the same in-process trellis-sim replica set (3 members, election delay\n"
    "300 ms), heartbeat 500 ms, retryable writes, w:majority; the median of N stepdowns\n"
    "per driver, and the ratio trellis / pymongo (below 1: Trellis recovers sooner).\n"
    "\n"
    "  --stepdowns N   stepdowns per driver (default 5)\n"
    "  --json FILE     write {\"tasks\": [{\"name\": \"failover_first_write\", \"trellis_ms\": ...,\n"
    "                  \"pymongo_ms\": ..., \"ratio\": ...}]} to FILE (needs both halves)\n"
    "  --pymongo-only  run only the PyMongo half (a harness check; no ratio)\n"
    "  --python PATH   the interpreter with Debian's python3-pymongo (default " TRELLIS_BENCH_PYTHON ")\n"
    "  --script PATH   the PyMongo half (default " TRELLIS_BENCH_FAILOVER_SCRIPT ")\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit status: 0 success; 1 failure, or the Trellis half could not be measured (there is\n"
    "no Trellis client yet: the PyMongo median is printed, no ratio, no JSON); 2 usage error.\n";

struct failure {
    int status;
    std::string message;
};

struct options {
    int stepdowns = default_stepdowns;
    std::optional<std::string> json_file;
    bool pymongo_only = false;
    std::string python = TRELLIS_BENCH_PYTHON;
    std::string script = TRELLIS_BENCH_FAILOVER_SCRIPT;
};

int parse_stepdowns(std::string_view text) {
    int value = 0;
    bool ok = !text.empty() && text.size() <= 4;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            ok = false;
            break;
        }
        value = value * 10 + (c - '0');
    }
    if (!ok || value < 1)
        throw failure{exit_usage_error, "--stepdowns needs an integer of at least 1, got \"" + std::string(text) + "\""};
    return value;
}

/// argv[0] is "failover". Returns nullopt for --help.
std::optional<options> parse_arguments(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view name = args[i];
        std::optional<std::string_view> value;
        if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string_view::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const auto take_value = [&]() -> std::string_view {
            if (value) return *value;
            if (i + 1 >= args.size()) throw failure{exit_usage_error, std::string(name) + " needs a value"};
            return args[++i];
        };
        const auto take_nonempty = [&](std::string_view what) {
            const std::string v(take_value());
            if (v.empty()) throw failure{exit_usage_error, std::string(name) + " needs " + std::string(what)};
            return v;
        };
        if (name == "-h" || name == "--help") return std::nullopt;
        if (name == "--stepdowns") o.stepdowns = parse_stepdowns(take_value());
        else if (name == "--json") o.json_file = take_nonempty("a file name");
        else if (name == "--pymongo-only" && !value) o.pymongo_only = true;
        else if (name == "--python") o.python = take_nonempty("a path");
        else if (name == "--script") o.script = take_nonempty("a path");
        else throw failure{exit_usage_error, "unknown argument \"" + std::string(args[i]) + "\" (see --help)"};
    }
    if (o.pymongo_only && o.json_file)
        throw failure{exit_usage_error, "--json needs both halves; it cannot go with --pymongo-only"};
    return o;
}

// ---------------------------------------------------------------- the PyMongo half

struct child_result {
    int exit_status = -1;  // the exit code, or 128 + signal
    std::vector<std::string> lines;
};

/// Runs argv, echoing each stdout line as "  pymongo: LINE" and keeping it; stderr is
/// inherited. Kills the child (SIGKILL, by its pid) when `limit` passes.
child_result run_child(const std::vector<std::string>& argv, std::chrono::seconds limit) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw failure{exit_failure, std::string("pipe: ") + std::strerror(errno)};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears FD_CLOEXEC
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    std::fflush(stdout);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw failure{exit_failure, "cannot run " + argv[0] + ": " + std::strerror(rc)};
    }

    child_result result;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::string pending;
    bool timed_out = false;
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0) continue;
        const ssize_t got = ::read(fds[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;  // EOF: the child closed stdout (it exited)
        pending.append(buf, static_cast<std::size_t>(got));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            std::printf("  pymongo: %s\n", line.c_str());
            std::fflush(stdout);
            result.lines.push_back(std::move(line));
        }
    }
    ::close(fds[0]);
    if (!pending.empty()) result.lines.push_back(pending);
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        throw failure{exit_failure, "the PyMongo half did not finish within " + std::to_string(limit.count()) + " s (killed)"};
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

pymongo_summary measure_pymongo(const trellis::sim::deployment& d, const options& o) {
    const std::vector<std::string> argv{
        o.python,
        "-I",  // isolated: the interpreter's own packages (Debian's pymongo), no PYTHONPATH, no user site
        o.script,
        d.uri(),
        d.control_address(),
        "--stepdowns", std::to_string(o.stepdowns),
        "--heartbeat-ms", std::to_string(heartbeat_frequency.count()),
        "--no-reelect-secs", std::to_string(no_reelect.count()),
        "--settle-ms", std::to_string(settle.count()),
        "--w", std::string(write_concern_w),
        "--timeout-s", std::to_string(phase_timeout.count()),
    };
    // Each stepdown may take up to two phase timeouts (settle, first write), then the final check.
    const auto limit = phase_timeout * (2 * o.stepdowns + 2);
    const child_result r = run_child(argv, std::chrono::duration_cast<std::chrono::seconds>(limit));
    if (r.exit_status == script_no_pymongo)
        throw failure{exit_failure, o.python + " cannot import pymongo (install Debian's python3-pymongo)"};
    if (r.exit_status == 127) throw failure{exit_failure, "cannot run " + o.python + " " + o.script};
    if (r.exit_status == script_timeout)
        throw failure{exit_failure, "the PyMongo half timed out (the set did not settle, or no write succeeded)"};
    std::optional<pymongo_summary> s;
    try {
        s = find_pymongo_summary(r.lines);
    } catch (const report_error& e) {
        throw failure{exit_failure, e.what()};
    }
    if (s && s->lost != 0)
        throw failure{exit_failure, "PyMongo: " + std::to_string(s->lost) +
                                        " acknowledged writes were missing at the end (a lost write; no timing reported)"};
    if (r.exit_status != 0)
        throw failure{exit_failure, "the PyMongo half failed (exit status " + std::to_string(r.exit_status) + ")"};
    if (!s) throw failure{exit_failure, "the PyMongo half printed no summary line"};
    if (static_cast<int>(s->samples_ms.size()) != o.stepdowns)
        throw failure{exit_failure, "the PyMongo half reported " + std::to_string(s->samples_ms.size()) +
                                        " samples for " + std::to_string(o.stepdowns) + " stepdowns"};
    return *s;
}

std::string list(const std::vector<double>& v) {
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(1);
    for (std::size_t i = 0; i < v.size(); ++i) out << (i ? " " : "") << v[i];
    return out.str();
}

void write_json_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw failure{exit_failure, "cannot write " + path + ": " + std::strerror(errno)};
    out << text;
    out.close();
    if (!out) throw failure{exit_failure, "cannot write " + path};
}

int run_checked(int argc, char** argv) {
    const std::optional<options> o = parse_arguments(argc, argv);
    if (!o) {
        std::cout << usage_text;
        return exit_ok;
    }

    trellis::sim::sim_config cfg;
    cfg.topology = trellis::sim::topology_kind::replica_set;
    cfg.nodes = members;
    cfg.election_delay = election_delay;
    trellis::sim::deployment d(cfg);
    d.start();
    struct stopper {
        trellis::sim::deployment& d;
        ~stopper() { d.stop(); }
    } stop_at_end{d};
    if (!d.wait_for_primary(std::chrono::seconds(10))) throw failure{exit_failure, "trellis-sim elected no primary"};

    std::printf("trellis-bench failover: trellis-sim replica set of %d (election delay %lld ms) at %s\n", members,
                static_cast<long long>(election_delay.count()), d.uri().c_str());
    std::printf("  heartbeat %lld ms, retryable writes, w:%s; %d stepdowns per driver (no re-election for %lld s)\n",
                static_cast<long long>(heartbeat_frequency.count()), std::string(write_concern_w).c_str(), o->stepdowns,
                static_cast<long long>(no_reelect.count()));
    std::printf("  sample = stepdown request -> first write acknowledged after it; figure = median; ratio = trellis / pymongo\n\n");
    std::printf("PyMongo (%s %s):\n", o->python.c_str(), o->script.c_str());

    const pymongo_summary py = measure_pymongo(d, *o);
    std::printf("pymongo %s: median %.1f ms over %zu stepdowns (samples %s ms); %lld writes acknowledged, %lld failed, "
                "%lld documents at the end, none lost\n",
                py.pymongo_version.c_str(), py.median_ms, py.samples_ms.size(), list(py.samples_ms).c_str(),
                static_cast<long long>(py.acknowledged), static_cast<long long>(py.failed_writes),
                static_cast<long long>(py.counted));
    if (o->pymongo_only) {
        std::printf("trellis: not run (--pymongo-only)\n");
        return exit_ok;
    }

    // The members PyMongo stepped down must be electable again before the Trellis half starts.
    std::this_thread::sleep_for(no_reelect + std::chrono::milliseconds(100));
    if (!d.wait_for_primary(phase_timeout)) throw failure{exit_failure, "no primary before the Trellis half"};
    std::vector<double> trellis_samples;
    try {
        trellis_samples = measure_trellis(d, o->stepdowns);
    } catch (const trellis_unavailable& e) {
        std::printf("trellis: MISSING, not measured: %s\n", e.what());
        std::printf("\nNo ratio: only the PyMongo half ran%s.\n", o->json_file ? "; no JSON written" : "");
        std::fflush(stdout);
        std::fprintf(stderr, "trellis-bench: failover: the Trellis side is missing (%s)\n", e.what());
        return exit_failure;
    }
    if (static_cast<int>(trellis_samples.size()) != o->stepdowns)
        throw failure{exit_failure, "the Trellis half returned " + std::to_string(trellis_samples.size()) +
                                        " samples for " + std::to_string(o->stepdowns) + " stepdowns"};
    const double trellis_ms = median(trellis_samples);
    const double ratio = failover_ratio(trellis_ms, py.median_ms);
    std::printf("trellis: median %.1f ms (samples %s ms)\n\n", trellis_ms, list(trellis_samples).c_str());
    std::printf("%-22s %12s %12s %8s\n", "task", "trellis ms", "pymongo ms", "ratio");
    std::printf("%-22s %12.1f %12.1f %8.3f\n", std::string(task_name).c_str(), trellis_ms, py.median_ms, ratio);
    std::fflush(stdout);
    if (o->json_file) write_json_file(*o->json_file, failover_json(trellis_ms, py.median_ms));
    return exit_ok;
}

}  // namespace

int run(int argc, char** argv) {
    try {
        return run_checked(argc, argv);
    } catch (const failure& f) {
        std::fflush(stdout);
        std::fprintf(stderr, "trellis-bench: failover: %s\n", f.message.c_str());
        return f.status;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "trellis-bench: failover: %s\n", e.what());
        return exit_failure;
    }
}

}  // namespace trellis_bench::failover
