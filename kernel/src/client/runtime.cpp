#include "client/runtime.hpp"

#include <algorithm>

#include "trellis/errors.hpp"

namespace trellis::detail {

own_runtime::own_runtime() {
    thread_ = std::thread([this] { thread_main(); });
}

own_runtime::~own_runtime() { stop(); }

void own_runtime::thread_main() {
    std::unique_lock lock(m_);
    for (;;) {
        if (holder_ != holder::none) {  // a caller runs the io_context: look again later
            thread_wake_.wait_for(lock, linger);
            continue;
        }
        if (!stopping_ && lone_caller_waits()) {  // its operation has started: it runs the rest
            waiting_.front()->wake.notify_one();
            thread_wake_.wait_for(lock, linger);
            continue;
        }
        if (!stopping_ && callers_ == 0) {
            const auto until = released_ + linger;
            if (std::chrono::steady_clock::now() < until) {  // leave it to the caller that just let go
                thread_wake_.wait_until(lock, until);
                continue;
            }
        }
        holder_ = holder::thread;
        lock.unlock();
        // Handler after handler while no blocking call wants the baton (one atomic load each).
        std::size_t ran = 0;
        do ran = io_.run_one();
        while (ran != 0 && callers_.load(std::memory_order_relaxed) == 0);
        lock.lock();
        holder_ = holder::none;
        if (ran == 0) break;  // stopped, or out of work after stop()
    }
    for (auto* c : waiting_) c->wake.notify_one();  // they find the io_context stopped
    lock.unlock();
    finished_.set_value();
}

// With the lock held and the baton free: who runs the io_context next. A lone blocking caller
// may; with several, the client's thread does (callers taking turns would wake one another
// at every hand-over), as it does when the last caller left and the work must go on.
void own_runtime::hand_over(std::unique_lock<std::mutex>&) {
    if (lone_caller_waits()) waiting_.front()->wake.notify_one();
    else if (callers_ > 0 || stopping_) thread_wake_.notify_one();
}

void own_runtime::wait(blocking_call& call) {
    std::unique_lock lock(m_);
    ++callers_;
    const auto leave = [&] {
        --callers_;
        if (holder_ == holder::none) hand_over(lock);
    };
    for (;;) {
        if (call.done) {
            leave();
            return;
        }
        if (holder_ == holder::none && callers_ == 1) {
            holder_ = holder::caller;
            bool stopped = false;
            try {
                while (!call.done) {
                    lock.unlock();
                    stopped = io_.run_one() == 0;
                    lock.lock();
                    if (stopped) break;
                }
            } catch (...) {
                if (!lock.owns_lock()) lock.lock();
                holder_ = holder::none;
                released_ = std::chrono::steady_clock::now();
                leave();
                throw;
            }
            holder_ = holder::none;
            released_ = std::chrono::steady_clock::now();
            leave();
            if (call.done) return;
            throw error(errc::connection_failure, "the client was closed while this blocking call was in flight");
        }
        if (io_.stopped()) {
            leave();
            throw error(errc::connection_failure, "the client was closed while this blocking call was in flight");
        }
        waiting_.push_back(&call);
        call.wake.wait(lock);
        waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &call));
    }
}

void own_runtime::complete(blocking_call& call) {
    std::lock_guard lock(m_);
    call.done = true;
    call.wake.notify_one();
}

void own_runtime::stop() {
    {
        std::lock_guard lock(m_);
        stopping_ = true;
    }
    work_.reset();
    thread_wake_.notify_one();
    if (running_here() || thread_.get_id() == std::this_thread::get_id()) return;
    if (done_.wait_for(std::chrono::seconds(5)) != std::future_status::ready) io_.stop();
    if (thread_.joinable()) thread_.join();
}

}  // namespace trellis::detail
