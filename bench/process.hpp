// A child process with pipes to its stdin and stdout, for trellis-bench's out-of-process
// peers (trellis-sim, the PyMongo driver script): line-based requests and answers, its CPU
// time read from /proc, and a kill on destruction.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <sys/types.h>

namespace trellis_bench {

class child_process {
public:
    /// Starts argv[0] (a path) with argv; stderr is inherited. Throws failure when it cannot.
    explicit child_process(const std::vector<std::string>& argv);
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process();

    /// The next line the child writes to stdout (without the newline); throws failure
    /// when the child closes stdout or `limit` passes first.
    std::string read_line(std::chrono::milliseconds limit);
    /// Writes `line` and a newline to the child's stdin.
    void write_line(const std::string& line);
    /// CPU time (user + system) the child has used so far, in seconds.
    double cpu_seconds() const;
    pid_t pid() const noexcept { return pid_; }
    const std::string& program() const noexcept { return program_; }
    /// SIGTERM, then SIGKILL after `grace`; returns the exit status (128 + signal when killed).
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(3));

private:
    std::string program_;
    pid_t pid_ = -1;
    int in_ = -1;   // the child's stdin (we write)
    int out_ = -1;  // the child's stdout (we read)
    std::string pending_;
    bool stopped_ = false;
    int status_ = -1;
};

/// CPU time (user + system) of this process, all its threads, in seconds.
double own_cpu_seconds();

/// The directory of the running executable (where trellis-sim sits next to trellis-bench).
std::string executable_directory();

}  // namespace trellis_bench
