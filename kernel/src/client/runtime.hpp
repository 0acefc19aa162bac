// The io_context and thread of a client that was given no executor, and how its blocking calls
// wait: the calling thread runs the io_context itself while its operation is in flight, so a
// blocking call costs no hand-off between threads (no wake-up of the client's thread to start
// it, none of the caller to finish it), as a driver that does its I/O on the caller's thread.
//
// One thread at a time runs the io_context: whoever holds the baton, the client's own thread or
// a blocking caller. A caller alone (no other blocking call in progress) takes it when it is free;
// when the client's thread holds it (asleep in epoll), the caller's operation, posted first, wakes
// it, and it hands the baton over after that handler. After a caller lets go, the client's thread
// leaves the baton alone for `linger` (back-to-back blocking calls keep it without waking anyone)
// and then runs the io_context again, so timers and monitors wait at most that long between
// blocking calls. With several blocking calls at once, the client's thread runs the io_context
// and wakes each caller when its operation is done, as a future would.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace trellis::detail {

/// One blocking call's wait: its operation's completion calls own_runtime::complete.
struct blocking_call {
    std::condition_variable wake;
    bool done = false;  // under own_runtime's mutex
};

class own_runtime {
public:
    /// How long the client's thread leaves the io_context to blocking callers after one let go.
    static constexpr std::chrono::milliseconds linger{2};

    own_runtime();
    ~own_runtime();
    own_runtime(const own_runtime&) = delete;
    own_runtime& operator=(const own_runtime&) = delete;

    boost::asio::io_context& io() noexcept { return io_; }
    /// Returns once `call` is complete, running the io_context meanwhile when no other thread
    /// does. The call's operation must have been started (posted) first. Exceptions thrown by
    /// handlers it runs propagate, as from io_context::run.
    void wait(blocking_call& call);
    /// The operation of `call` has finished (on the thread that runs the io_context).
    void complete(blocking_call& call);
    /// Lets the client's last work drain (at most 5 s, then stops the io_context) and joins
    /// the thread. On a thread running the io_context, only lets it run out.
    void stop();
    /// Whether this thread is running the io_context now (the client's thread or a caller).
    bool running_here() { return io_.get_executor().running_in_this_thread(); }

private:
    enum class holder { none, thread, caller };
    void thread_main();
    void hand_over(std::unique_lock<std::mutex>& lock);
    /// One blocking call in progress, asleep: it may run the io_context itself.
    bool lone_caller_waits() const { return callers_ == 1 && waiting_.size() == 1; }

    boost::asio::io_context io_{1};  // one thread at a time: see is_serial()
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
    std::mutex m_;
    std::condition_variable thread_wake_;
    holder holder_ = holder::none;
    std::vector<blocking_call*> waiting_;  // callers asleep, their operation not done
    std::atomic<int> callers_{0};           // blocking calls in progress (changed under m_)
    std::chrono::steady_clock::time_point released_;  // when a caller last let go
    bool stopping_ = false;
    std::promise<void> finished_;
    std::shared_future<void> done_ = finished_.get_future().share();
    std::thread thread_;
};

}  // namespace trellis::detail
