#include "plugin/guard.hpp"

#include <cstdio>

namespace trellis::detail {

std::string current_exception_text() noexcept {
    try {
        throw;
    } catch (const std::exception& e) {
        try {
            return e.what();
        } catch (...) {
        }
    } catch (...) {
    }
    return "a non-standard exception";
}

void report_callback_failure(const callback_failure_handler& sink, std::string_view where, std::string_view what) noexcept {
    if (sink) {
        try {
            sink(callback_failure{std::string(where), std::string(what)});
            return;
        } catch (...) {
            // The reporter failed too: fall back to the log line below.
        }
    }
    std::fprintf(stderr, "trellis: %.*s threw: %.*s (the client carries on)\n", static_cast<int>(where.size()),
                 where.data(), static_cast<int>(what.size()), what.data());
}

}  // namespace trellis::detail
