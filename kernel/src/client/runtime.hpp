// The io_context and thread of a client that was given no executor, and how its blocking calls
// wait: on the caller's thread, with no hand-off to another thread to start an operation or to
// finish it, and with the operation's socket I/O done there too.
//
// One thread at a time runs the io_context: whoever holds the baton, the client's own thread or
// a blocking caller. A caller takes the baton when it is free and runs what is ready, its own
// operation's start included (selection, check-out, encoding). The connection then parks the
// command's I/O with the caller (connection/deferred_io.hpp) when its stream allows: the caller
// lets the baton go, writes the request and reads the reply itself, asleep in poll(2) on the
// socket meanwhile, and takes the baton again to finish the operation. So threads sharing one
// client each wait on their own socket, as with a pool of single-threaded clients, and hold the
// shared state only for the work around the round trip.
//
// A caller alone keeps its I/O on the io_context and the baton throughout, asleep in the
// io_context itself (epoll) until its operation is done or another caller comes. A caller whose operation waits for anything
// else (a connection being opened, a server to select, a stream without a wait handle) leaves
// the io_context to the client's thread, which runs it for as long as such a caller waits;
// whoever completes an operation wakes its caller (an eventfd of the caller's thread). With no
// caller, the client's thread runs the io_context, except for `linger` after a caller let go
// (back-to-back blocking calls keep the baton without waking anyone); while callers take turns,
// it runs what is due (timers, monitors) when none has held the baton for `linger`.
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
#include <utility>
#include <vector>

#include "connection/deferred_io.hpp"
#include "trellis/events.hpp"

namespace trellis::detail {

class own_runtime;

/// One blocking call's wait: its operation's completion calls own_runtime::complete, and its
/// commands may park their I/O here.
struct blocking_call final : conn::io_parking {
    explicit blocking_call(own_runtime& rt);
    bool wants_io() const noexcept override;
    void park(std::shared_ptr<conn::deferred_io> io) override;
    void wake() noexcept override;

    own_runtime* runtime;
    int wake_fd;  // the caller thread's eventfd
    // Under own_runtime's mutex:
    std::shared_ptr<conn::deferred_io> parked;  // I/O this thread is to do
    bool done = false;
    std::atomic<bool> moved{false};  // parked or done since the caller took the baton
    enum class sleep { awake, for_baton, for_reactor } sleeping = sleep::awake;
};

/// The blocking call whose operation starts on this thread now: set by the blocking face around
/// the operation's first step, in which execute() takes it (null afterwards).
conn::io_parking*& starting_parking() noexcept;
inline conn::io_parking* take_starting_parking() noexcept { return std::exchange(starting_parking(), nullptr); }

class own_runtime {
public:
    /// How long the client's thread leaves the io_context to blocking callers after one let go.
    static constexpr std::chrono::milliseconds linger{2};

    /// `on_failure` hears of handlers that throw out of the io_context (the application's
    /// completion handlers): reported there, they stop neither the thread nor a blocking call.
    explicit own_runtime(callback_failure_handler on_failure = {});
    ~own_runtime();
    own_runtime(const own_runtime&) = delete;
    own_runtime& operator=(const own_runtime&) = delete;

    boost::asio::io_context& io() noexcept { return io_; }
    /// A blocking call begins: before its operation is posted, so that whoever runs the
    /// operation's start knows that a caller waits for it.
    void enter();
    /// enter() with no wait() to follow (the post failed).
    void abandon();
    /// After enter() and the post: returns once `call` is complete, doing its I/O and running
    /// the io_context meanwhile when no other thread does. A handler it runs that throws is
    /// reported (the constructor's `on_failure`), not thrown to this caller.
    void wait(blocking_call& call);
    /// The operation of `call` has finished (on the thread that runs the io_context).
    void complete(blocking_call& call);
    /// Lets the client's last work drain (at most 5 s, then stops the io_context) and joins
    /// the thread. On a thread running the io_context, only lets it run out.
    void stop();
    /// Whether this thread is running the io_context now (the client's thread or a caller).
    bool running_here() { return io_.get_executor().running_in_this_thread(); }

private:
    friend struct blocking_call;
    enum class holder { none, thread, caller };
    void thread_main();
    /// The baton is free (lock held): wakes a caller waiting for it (true), or the client's
    /// thread when a caller needs the io_context run for it.
    bool pass_baton();
    void park(blocking_call& call, std::shared_ptr<conn::deferred_io> io);
    /// One call into the io_context (run_one, poll_one, poll): a handler that throws is reported
    /// and counts as run.
    template <class F>
    std::size_t run_guarded(F run) noexcept;
    static void sleep(const blocking_call& call);
    static void wake(const blocking_call& call);

    const callback_failure_handler on_failure_;
    boost::asio::io_context io_{1};  // one thread at a time: see is_serial()
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
    std::mutex m_;
    std::condition_variable thread_wake_;
    holder holder_ = holder::none;
    std::vector<blocking_call*> waiting_;  // callers asleep, their operation not done
    std::atomic<int> callers_{0};           // blocking calls in progress (changed under m_)
    std::atomic<int> for_reactor_{0};       // callers asleep until the io_context runs for them
    std::atomic<int> for_baton_{0};         // callers asleep until the baton is free
    std::chrono::steady_clock::time_point released_;  // when a caller last let go
    std::atomic<bool> stopping_{false};  // set under m_; the run loop looks without it
    std::promise<void> finished_;
    std::shared_future<void> done_ = finished_.get_future().share();
    std::thread thread_;
};

}  // namespace trellis::detail
