#include "runner.hpp"

#include <iostream>

namespace trellis::spec {

extern const suite bson_corpus_suite;
extern const suite connection_string_suite;
extern const suite uri_options_suite;
extern const suite auth_suite;
extern const suite cmap_suite;
extern const suite sdam_suite;
extern const suite rtt_suite;
extern const suite server_selection_suite;
extern const suite max_staleness_suite;
extern const suite in_window_suite;
extern const suite seedlist_suite;
extern const suite unified_suite;

const std::vector<suite>& suites() {
    static const std::vector<suite> all = {bson_corpus_suite, connection_string_suite, uri_options_suite, auth_suite,
                                           cmap_suite,        sdam_suite,              rtt_suite,         server_selection_suite,
                                           max_staleness_suite, in_window_suite, unified_suite, seedlist_suite};
    return all;
}

void reporter::line(std::string_view status, std::string_view file, std::string_view description, std::string_view reason) {
    std::cout << status << ' ' << suite_ << ' ' << file << ": " << description;
    if (!reason.empty()) {
        // Keep one line per case, whatever the reason holds.
        std::cout << ": ";
        for (char c : reason) std::cout << (c == '\n' ? ' ' : c);
    }
    std::cout << '\n';
}

run_options& options() {
    static run_options o;
    return o;
}

// With --expect-failure the runner checks itself: a test that FAILs was caught (PASS, with the
// failure shown), one that passes or is skipped was not (FAIL).
void reporter::pass(std::string_view file, std::string_view description) {
    if (options().expect_failure) {
        ++failed_;
        line("FAIL", file, description, "expected the runner to report a failure, but the test passed");
        return;
    }
    ++passed_;
    line("PASS", file, description, "");
}

void reporter::fail(std::string_view file, std::string_view description, std::string_view reason) {
    if (options().expect_failure) {
        ++passed_;
        line("PASS", file, description, std::string("failed as expected: ") + std::string(reason));
        return;
    }
    ++failed_;
    line("FAIL", file, description, reason);
}

void reporter::skip(std::string_view file, std::string_view description, std::string_view reason) {
    if (options().expect_failure) {
        ++failed_;
        line("FAIL", file, description, std::string("expected the runner to report a failure, but the test was skipped: ") + std::string(reason));
        return;
    }
    ++skipped_;
    ++skip_reasons_[std::string(reason)];
    line("SKIP", file, description, reason);
}

std::vector<std::uint8_t> hex_decode(std::string_view hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (hex.size() % 2 != 0) throw std::runtime_error("odd number of hex digits");
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) throw std::runtime_error("invalid hex digit");
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

std::string string_of(const boost::json::value& v, std::string_view key, std::string_view fallback) {
    if (const auto* obj = v.if_object())
        if (const auto* f = obj->if_contains(key))
            if (const auto* s = f->if_string()) return std::string(*s);
    return std::string(fallback);
}

}  // namespace trellis::spec
