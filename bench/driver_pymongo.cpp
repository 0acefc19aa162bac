// trellis-bench driver, the PyMongo peer: bench/driver/pymongo_peer.py under Debian's python3,
// started once and asked for one task per line, so its runs interleave with the others'.
// Only the single-document tasks, serially (PyMongo 3.11 has no async face).
#include <sstream>

#include "args.hpp"
#include "driver_peers.hpp"
#include "process.hpp"

namespace trellis_bench::driver {

namespace {

const char* task_word(task_id t) {
    switch (t) {
    case task_id::run_command: return "run_command";
    case task_id::find_one: return "find_one";
    default: return "insert_one";
    }
}

class pymongo_peer final : public peer {
public:
    pymongo_peer(const workload& w, const std::string& python, const std::string& script, const std::string& small_path)
        : child_({python, script, w.uri, w.db, w.find_coll, w.insert_coll, std::to_string(w.ops), std::to_string(w.tweets),
                  small_path}) {
        const std::string line = child_.read_line(std::chrono::seconds(30));
        if (line != "ready") throw failure{1, "pymongo peer: expected \"ready\", got \"" + line + "\""};
    }

    std::string name() const override { return "pymongo"; }
    bool can(task_id task, face f) const override {
        return f.kind == face_kind::serial &&
               (task == task_id::run_command || task == task_id::find_one || task == task_id::insert_one);
    }

    measurement run(task_id task, face, bool check) override {
        child_.write_line(std::string(task_word(task)) + (check ? " 1" : " 0"));
        const std::string line = child_.read_line(std::chrono::minutes(5));
        std::istringstream in(line);
        std::string status;
        in >> status;
        if (status != "ok") throw failure{1, "pymongo peer: " + line};
        measurement m;
        in >> m.seconds >> m.digest >> m.documents;
        if (!in) throw failure{1, "pymongo peer: cannot read \"" + line + "\""};
        return m;
    }

    std::optional<double> process_cpu_seconds() const override { return child_.cpu_seconds(); }

private:
    child_process child_;
};

}  // namespace

std::unique_ptr<peer> make_pymongo_peer(const workload& w, const std::string& python, const std::string& script,
                                        const std::string& small_path) {
    return std::make_unique<pymongo_peer>(w, python, script, small_path);
}

}  // namespace trellis_bench::driver
