// Errors a check-out can complete with, besides whatever error the establisher reports.
//
// TODO(errors): these belong in trellis::errc (errors.hpp) with the rest of the error family;
// they have their own category here only until that header gains them. Messages are the CMAP
// specification's.
#pragma once

#include <system_error>

namespace trellis::pool {

enum class pool_errc : int {
    /// PoolClosedError: the pool was closed. Not retryable.
    pool_closed = 1,
    /// PoolClearedError: the pool is paused (cleared and not ready again yet), or was cleared
    /// while the check-out waited. A retryable, non-timeout network error that must not mark
    /// the server Unknown.
    pool_cleared,
    /// WaitQueueTimeoutError: no connection within wait_queue_timeout.
    wait_queue_timeout,
};

const std::error_category& pool_error_category() noexcept;

inline std::error_code make_error_code(pool_errc e) noexcept { return {static_cast<int>(e), pool_error_category()}; }

}  // namespace trellis::pool

template <>
struct std::is_error_code_enum<trellis::pool::pool_errc> : std::true_type {};
