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
        if (!stopping_ && waiting_.empty()) {
            const auto until = released_ + linger;
            if (std::chrono::steady_clock::now() < until) {  // leave it to the caller that just let go
                thread_wake_.wait_until(lock, until);
                continue;
            }
        }
        holder_ = holder::thread;
        lock.unlock();
        const auto ran = io_.run_one();
        lock.lock();
        holder_ = holder::none;
        if (ran == 0) break;  // stopped, or out of work after stop()
        if (!waiting_.empty()) {  // a blocking caller's operation has started: it runs the rest
            released_ = std::chrono::steady_clock::now();
            waiting_.front()->wake.notify_one();
        }
    }
    for (auto* c : waiting_) c->wake.notify_one();  // they find the io_context stopped
    lock.unlock();
    finished_.set_value();
}

// Called with the lock held and the baton free: the next sleeping caller may take it.
void own_runtime::hand_over(std::unique_lock<std::mutex>&) {
    if (!waiting_.empty()) waiting_.front()->wake.notify_one();
    else if (stopping_) thread_wake_.notify_one();
}

void own_runtime::wait(blocking_call& call) {
    std::unique_lock lock(m_);
    for (;;) {
        if (call.done) {
            if (holder_ == holder::none) hand_over(lock);  // woken for the baton after all: pass it on
            return;
        }
        if (holder_ == holder::none) {
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
                hand_over(lock);
                throw;
            }
            holder_ = holder::none;
            released_ = std::chrono::steady_clock::now();
            hand_over(lock);
            if (call.done) return;
            throw error(errc::connection_failure, "the client was closed while this blocking call was in flight");
        }
        if (io_.stopped()) throw error(errc::connection_failure, "the client was closed while this blocking call was in flight");
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
