// The one guard at every call out of the kernel: into a plugin (cursor manager, strategy,
// transport, authenticator, compressor) and into a user's event handler. Nothing thrown there
// reaches the event loop. Two forms:
//   guarded(sink, where, f)         a call whose failure is reported and abandoned (handlers,
//                                   cursor managers, SDAM updates): returns whether f completed
//   guarded_or_throw(where, f)      a call whose failure is the operation's error: a
//                                   trellis::error passes unchanged, anything else becomes a
//                                   plugin_error naming `where`
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "trellis/errors.hpp"
#include "trellis/events.hpp"

namespace trellis::detail {

/// Hands a failure to the sink; to standard error when there is none or when the sink throws.
void report_callback_failure(const callback_failure_handler& sink, std::string_view where, std::string_view what) noexcept;

/// The message of the exception in flight (inside a catch block).
std::string current_exception_text() noexcept;

template <class F>
bool guarded(const callback_failure_handler& sink, std::string_view where, F&& f) noexcept {
    try {
        std::forward<F>(f)();
        return true;
    } catch (...) {
        report_callback_failure(sink, where, current_exception_text());
        return false;
    }
}

/// `where` is text, or a callable that makes it (called only on failure: hot paths build no string).
template <class W, class F>
decltype(auto) guarded_or_throw(const W& where, F&& f) {
    try {
        return std::forward<F>(f)();
    } catch (const trellis::error&) {
        throw;
    } catch (...) {
        std::string text;
        if constexpr (std::is_invocable_v<const W&>)
            text = where();
        else
            text = std::string(where);
        throw plugin_error("", "", text + " threw: " + current_exception_text());
    }
}

/// A handler that runs `handler` through guarded(): what the client passes on to its pools,
/// connections and monitors instead of the user's own.
template <class Event>
std::function<void(const Event&)> guard_handler(std::function<void(const Event&)> handler, callback_failure_handler sink,
                                                std::string where) {
    if (!handler) return {};
    return [h = std::move(handler), sink = std::move(sink), where = std::move(where)](const Event& e) {
        guarded(sink, where, [&] { h(e); });
    };
}

}  // namespace trellis::detail
