// trellis-spec: runs the MongoDB specification JSON tests, one suite at a time.
// A suite reads one parsed JSON file and reports a result per test case.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::spec {

// Options given on the command line, for the suites that use them.
struct run_options {
    std::string uri;                // --uri: a deployment to run against (suite unified)
    bool expect_failure = false;    // --expect-failure: every test must FAIL (the verdict is inverted)
    bool summary_by_reason = false; // --summary-by-reason: skip counts grouped by reason at the end
};
run_options& options();

class reporter {
public:
    explicit reporter(std::string suite) : suite_(std::move(suite)) {}

    void pass(std::string_view file, std::string_view description);
    void fail(std::string_view file, std::string_view description, std::string_view reason);
    void skip(std::string_view file, std::string_view description, std::string_view reason);

    std::size_t passed() const noexcept { return passed_; }
    std::size_t failed() const noexcept { return failed_; }
    std::size_t skipped() const noexcept { return skipped_; }
    /// Skips counted by their reason, for --summary-by-reason.
    const std::map<std::string, std::size_t>& skip_reasons() const noexcept { return skip_reasons_; }

private:
    void line(std::string_view status, std::string_view file, std::string_view description, std::string_view reason);

    std::string suite_;
    std::size_t passed_ = 0, failed_ = 0, skipped_ = 0;
    std::map<std::string, std::size_t> skip_reasons_;
};

struct suite {
    std::string_view name;
    std::string_view summary;
    // Runs every test case of one file. `file` is the name to print; `test` the parsed JSON.
    void (*run_file)(std::string_view file, const boost::json::value& test, reporter& out);
};

// The registry: one entry per suite. Later suites (connection-string, sdam, ...) add a line.
const std::vector<suite>& suites();

// Helpers shared by suites.
std::vector<std::uint8_t> hex_decode(std::string_view hex);
std::string string_of(const boost::json::value& v, std::string_view key, std::string_view fallback = "");

}  // namespace trellis::spec
