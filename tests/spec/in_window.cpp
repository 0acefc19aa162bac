// Suite in-window (server-selection/tests/in_window): operationCount-based selection within
// the latency window, one test per file.
//
// Per file: the topology, each server's operation_count (`mocked_topology_state`), then
// `iterations` selections for a read with mode nearest: selection::select (suitable servers,
// latency window of 15 ms, power of two choices) drawing from a std::mt19937_64 with a fixed
// seed, so a run is reproducible. Each server's observed frequency must be within
// `outcome.tolerance` of `outcome.expected_frequencies`, and exactly equal when the expected
// frequency is 0 or 1. A server selected but absent from the expected frequencies fails.
//
// The draft layout of these files (before the format was settled) is accepted too: `in_window`
// lists the servers inside the latency window with their counts (the topology may hold more),
// `expected_frequencies` sits at the top level, and there are no iterations (2000, as the test
// plan asks) and no tolerance (0.05). For a draft file the choice runs over the listed servers
// only: selection::choose, as the kernel calls it after in_latency_window. Draft files that
// count connections and wait queues instead of operations (active_connection_count,
// wait_queue_length) describe an algorithm the spec did not adopt and are skipped.
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>

#include "runner.hpp"
#include "selection_format.hpp"

namespace trellis::spec {

namespace {

namespace json = boost::json;

constexpr std::uint64_t seed = 0x5e1ec7104;
constexpr std::int64_t draft_iterations = 2000;
constexpr double draft_tolerance = 0.05;

double number(const json::value& v) {
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    if (v.is_double()) return v.get_double();
    throw std::runtime_error("not a number: " + json::serialize(v));
}

void run_file(std::string_view file, const json::value& test, reporter& out) {
    const std::string description = string_of(test, "description", "in window");
    const json::object& t = test.as_object();

    const json::value* state = t.if_contains("mocked_topology_state");
    const json::value* outcome = t.if_contains("outcome");
    const bool draft = !state;
    if (draft) state = t.if_contains("in_window");
    const json::value* expected =
        outcome ? outcome->as_object().if_contains("expected_frequencies") : t.if_contains("expected_frequencies");
    const json::value* topology_json = t.if_contains("topology_description");
    if (!state || !expected || !topology_json) {
        out.fail(file, description,
                 "needs topology_description, mocked_topology_state and outcome.expected_frequencies");
        return;
    }
    if (auto why = unsupported_server_fields(*topology_json)) {
        out.skip(file, description, *why);
        return;
    }

    std::map<std::string, std::size_t> counts;
    for (const json::value& entry : state->as_array()) {
        const json::object& e = entry.as_object();
        const json::value* count = e.if_contains("operation_count");
        if (!count) {
            out.skip(file, description,
                     "draft format: servers described by connection counts and wait queues, not operation_count "
                     "(an algorithm the spec did not adopt)");
            return;
        }
        counts[string_of(entry, "address")] = static_cast<std::size_t>(number(*count));
    }
    const std::int64_t iterations =
        t.contains("iterations") ? static_cast<std::int64_t>(number(t.at("iterations"))) : draft_iterations;
    const double tolerance =
        outcome && outcome->as_object().contains("tolerance") ? number(outcome->at("tolerance")) : draft_tolerance;
    if (iterations <= 0) {
        out.fail(file, description, "iterations must be positive");
        return;
    }

    const sdk::topology_description topology = parse_topology(*topology_json);
    sdk::operation_requirements operation;
    operation.read_preference.mode = read_preference_mode::nearest;
    const selection::operation_count_lookup lookup = [&counts](const sdk::server_description& s) -> std::size_t {
        const auto it = counts.find(s.address);
        return it == counts.end() ? 0 : it->second;
    };

    // Draft layout: the window is given, as the listed servers in the topology's order.
    std::vector<const sdk::server_description*> given_window;
    if (draft)
        for (const sdk::server_description& s : topology.servers)
            if (counts.contains(s.address)) given_window.push_back(&s);

    std::mt19937_64 random(seed);
    std::map<std::string, std::int64_t> selected;
    for (std::int64_t i = 0; i < iterations; ++i) {
        const sdk::server_description* chosen =
            draft
                ? selection::choose(std::span<const sdk::server_description* const>(given_window), lookup, random)
                : selection::select(topology, operation, {}, selection::default_local_threshold, lookup, random).server;
        if (!chosen) {
            out.fail(file, description, "no server selected at iteration " + std::to_string(i));
            return;
        }
        ++selected[chosen->address];
    }

    std::string problems;
    const auto frequency = [&](const std::string& address) {
        const auto it = selected.find(address);
        return it == selected.end() ? 0.0 : static_cast<double>(it->second) / static_cast<double>(iterations);
    };
    for (const auto& [address_key, want_value] : expected->as_object()) {
        const std::string address(address_key);
        const double want = number(want_value), got = frequency(address);
        const bool exact = want == 0.0 || want == 1.0;
        if (exact ? got != want : std::fabs(got - want) > tolerance)
            problems += address + ": expected " + std::to_string(want) + (exact ? " exactly" : "") + ", got " +
                        std::to_string(got) + "; ";
    }
    for (const auto& [address, n] : selected)
        if (!expected->as_object().contains(address))
            problems += address + ": selected " + std::to_string(n) + " times, not expected at all; ";
    const std::string shape = draft ? " (draft format: " + std::to_string(iterations) + " iterations, tolerance " +
                                          std::to_string(tolerance) + ")"
                                    : "";
    if (problems.empty())
        out.pass(file, description + shape);
    else
        out.fail(file, description + shape, problems);
}

}  // namespace

extern const suite in_window_suite;
const suite in_window_suite{"in-window", "selection within the latency window by operationCount (power of two choices)",
                            &run_file};

}  // namespace trellis::spec
