// What the network commands share: connection strings and JSON arguments from the command
// line, one-line failure messages, and the rendering of a topology description (the table,
// its JSON form, the lines that describe one change).
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/options.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis::cli {

/// True when --help or -h is among the arguments.
bool wants_help(args a);

/// Parses a connection string given on the command line. Its warnings go to stderr
/// ("trellis: warning: ..."); an invalid one is an input_error (exit 2) naming the problem.
client_options check_uri(std::string_view uri);

/// The connection string with more options appended ("name=value&name=value").
std::string with_uri_options(std::string uri, std::string_view options);

/// An Extended JSON argument as a document; input_error naming the argument and the parser's
/// line, column and reason otherwise.
bson::document parse_json_argument(std::string_view what, std::string_view text);

/// "db.coll" as {db, coll}; usage_error when either part is empty.
std::pair<std::string, std::string> split_namespace(std::string_view command, std::string_view ns);

/// A non-negative integer argument; usage_error naming the option otherwise.
std::int64_t parse_count(std::string_view option, std::string_view text);

/// One line for a failed operation: the error's text, plus what it leaves out that a reader
/// needs: for a server selection timeout the timeout and every server with its state and last
/// error; for an operation failure the server's code name and code.
std::string describe_failure(const trellis::error& e, const client_options& options,
                             const sdk::topology_description* topology);

/// A client for one command: the parsed options beside it, and failures turned into data_error
/// messages prefixed with the command's name.
class command_client {
public:
    command_client(std::string command, std::string_view uri, client_settings settings = {});

    trellis::client& get() noexcept { return client_; }
    const client_options& options() const noexcept { return options_; }

    /// Runs f; a trellis::error (other than a configuration one, which main reports with exit 2)
    /// becomes a data_error: "<command>: <describe_failure>".
    template <class F>
    decltype(auto) guard(F&& f) {
        try {
            return f();
        } catch (const trellis::configuration_error&) {
            throw;
        } catch (const trellis::error& e) {
            fail(e);
        }
    }
    /// The same prefix for a message of the caller's.
    [[noreturn]] void fail(const trellis::error& e, std::string_view context = {});

private:
    std::string command_;
    client_options options_;
    trellis::client client_;
};

// ---------------------------------------------------------------- times

/// Milliseconds with one decimal ("0.4"); "-" when unset.
std::string format_ms(std::optional<std::chrono::microseconds> d);
/// Milliseconds rounded to one decimal, as a number for JSON.
std::optional<double> round_ms(std::optional<std::chrono::microseconds> d);
/// Local time of day with milliseconds: "14:03:07.251".
std::string clock_time(std::chrono::system_clock::time_point t);
/// UTC, ISO 8601 with milliseconds: "2024-05-01T12:03:07.251Z".
std::string iso_time(std::chrono::system_clock::time_point t);

// ---------------------------------------------------------------- topology rendering

/// The servers as a table: address, type, RTT average and minimum (ms), age of the last
/// heartbeat, set name, tags, error. `now` is the steady clock's present, for the ages.
void print_topology_table(std::ostream& out, const sdk::topology_description& topology,
                          std::chrono::steady_clock::time_point now);

/// {"type", "set_name", "servers": [{"address", "type", "round_trip_time_ms",
/// "min_round_trip_time_ms", "tags", "error"}]}, with "time" first when given.
bson::document topology_document(const sdk::topology_description& topology,
                                 std::optional<std::chrono::system_clock::time_point> time = {});

/// What changed between two descriptions, one short sentence per line: the topology type, the
/// set name, each server added, removed, or changed in type, error or tags, a new electionId
/// or setVersion. Never empty.
std::vector<std::string> describe_change(const sdk::topology_description& before, const sdk::topology_description& after);

/// The address of the writable primary, if the description has one.
std::optional<std::string> primary_of(const sdk::topology_description& topology);

}  // namespace trellis::cli
