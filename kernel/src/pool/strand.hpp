// Strands kept type-erased (any_io_executor) without an allocation per use.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/detail/concurrency_hint.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace trellis::detail {

/// Whether `ex` is the executor of an io_context declared to be run by one thread (concurrency
/// hint 1, or an "unsafe" hint without scheduler locking), as a client's own io_context is
/// (client/runtime.hpp hands it from thread to thread, one at a time). That executor already
/// runs every handler one at a time, so strands over it are left out: a hop from one "strand"
/// to another is then a call, not a post through the io_context's queue.
inline bool is_serial(const boost::asio::any_io_executor& ex) {
    const auto* io = ex.target<boost::asio::io_context::executor_type>();
    if (!io) return false;
    const int hint = boost::asio::use_service<boost::asio::detail::scheduler>(io->context()).concurrency_hint();
    return hint == 1 || !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(SCHEDULER, hint);
}

/// any_io_executor keeps an executor of up to 24 bytes in place. A strand over an io_context's
/// executor fits; a strand over an any_io_executor does not, and then every copy, post, timer and
/// co_spawn through the erased strand allocates (and queries its inner executor through another
/// allocation). So the strand is built on the concrete io_context executor when `ex` is one; on a
/// serial one (is_serial), `ex` itself is the strand.
inline boost::asio::any_io_executor make_erased_strand(const boost::asio::any_io_executor& ex) {
    static_assert(sizeof(boost::asio::strand<boost::asio::io_context::executor_type>) <= 24,
                  "a strand over an io_context executor no longer fits in any_io_executor");
    if (is_serial(ex)) return ex;
    if (const auto* io = ex.target<boost::asio::io_context::executor_type>()) return boost::asio::make_strand(*io);
    return boost::asio::make_strand(ex);
}

/// Whether the calling thread runs inside `strand` (one make_erased_strand made).
inline bool strand_running_here(const boost::asio::any_io_executor& strand) {
    if (const auto* s = strand.target<boost::asio::strand<boost::asio::io_context::executor_type>>())
        return s->running_in_this_thread();
    if (const auto* s = strand.target<boost::asio::strand<boost::asio::any_io_executor>>())
        return s->running_in_this_thread();
    if (const auto* io = strand.target<boost::asio::io_context::executor_type>()) return io->running_in_this_thread();
    return false;
}

}  // namespace trellis::detail
