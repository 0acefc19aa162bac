#include "client/runtime.hpp"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "plugin/guard.hpp"
#include "trellis/errors.hpp"

namespace trellis::detail {

namespace {

// Each thread that makes blocking calls is woken through an eventfd of its own.
struct thread_wake_fd {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ~thread_wake_fd() {
        if (fd >= 0) ::close(fd);
    }
};

int this_thread_wake_fd() {
    thread_local thread_wake_fd w;
    if (w.fd < 0)
        throw error(errc::connection_failure,
                    std::string("a blocking call could not create the eventfd it sleeps on: ") + std::strerror(errno));
    return w.fd;
}

error closed_in_flight() {
    return error(errc::connection_failure, "the client was closed while this blocking call was in flight");
}

}  // namespace

conn::io_parking*& starting_parking() noexcept {
    thread_local conn::io_parking* parking = nullptr;
    return parking;
}

blocking_call::blocking_call(own_runtime& rt) : runtime(&rt), wake_fd(this_thread_wake_fd()) {}

bool blocking_call::wants_io() const noexcept { return runtime->callers_.load(std::memory_order_relaxed) > 1; }

void blocking_call::park(std::shared_ptr<conn::deferred_io> io) { runtime->park(*this, std::move(io)); }

void blocking_call::wake() noexcept { own_runtime::wake(*this); }

own_runtime::own_runtime(callback_failure_handler on_failure) : on_failure_(std::move(on_failure)) {
    thread_ = std::thread([this] { thread_main(); });
}

own_runtime::~own_runtime() { stop(); }

template <class F>
std::size_t own_runtime::run_guarded(F run) noexcept {
    try {
        return run();
    } catch (...) {
        report_callback_failure(on_failure_, "a completion handler on the client's own io_context",
                                current_exception_text());
        return 1;
    }
}

void own_runtime::thread_main() {
    std::unique_lock lock(m_);
    for (;;) {
        if (holder_ != holder::none) {  // a caller runs the io_context: look again later
            thread_wake_.wait_for(lock, linger);
            continue;
        }
        const auto now = std::chrono::steady_clock::now();
        if (!stopping_ && callers_ > 0 && for_reactor_ == 0) {
            // Callers take turns with the baton and run what is due; when none has for `linger`
            // (all of them in their round trips), the timers and monitors get a turn here.
            if (now - released_ >= linger) {
                holder_ = holder::thread;
                lock.unlock();
                run_guarded([this] { return io_.poll(); });
                lock.lock();
                holder_ = holder::none;
                released_ = std::chrono::steady_clock::now();
                if (io_.stopped()) break;
                pass_baton();
            }
            thread_wake_.wait_for(lock, linger);
            continue;
        }
        if (!stopping_ && callers_ == 0 && now < released_ + linger) {  // leave it to the caller that just let go
            thread_wake_.wait_until(lock, released_ + linger);
            continue;
        }
        holder_ = holder::thread;
        lock.unlock();
        // Handler after handler while no blocking call wants the baton, or while one needs the
        // io_context run for it and none waits for the baton (atomic loads).
        std::size_t ran = 0;
        do ran = run_guarded([this] { return io_.run_one(); });
        while (ran != 0 && for_baton_.load(std::memory_order_relaxed) == 0 &&
               (callers_.load(std::memory_order_relaxed) == 0 || for_reactor_.load(std::memory_order_relaxed) > 0 ||
                stopping_.load(std::memory_order_relaxed)));
        lock.lock();
        holder_ = holder::none;
        if (ran == 0) break;  // stopped, or out of work after stop()
        // A caller woken for the baton gets it: taken back at once, it would never be free.
        if (pass_baton()) thread_wake_.wait_for(lock, linger);
    }
    for (auto* c : waiting_) wake(*c);  // they find the io_context stopped
    lock.unlock();
    finished_.set_value();
}

bool own_runtime::pass_baton() {
    for (auto* c : waiting_)
        if (c->sleeping == blocking_call::sleep::for_baton) {
            wake(*c);
            return true;
        }
    if (for_reactor_ > 0 || stopping_) thread_wake_.notify_one();
    return false;
}

void own_runtime::park(blocking_call& call, std::shared_ptr<conn::deferred_io> io) {
    std::lock_guard lock(m_);
    call.parked = std::move(io);
    call.moved = true;
    if (call.sleeping != blocking_call::sleep::awake) wake(call);
}

void own_runtime::sleep(const blocking_call& call) {
    pollfd fd{call.wake_fd, POLLIN, 0};
    while (::poll(&fd, 1, -1) < 0 && errno == EINTR) {
    }
    std::uint64_t count = 0;
    (void)!::read(call.wake_fd, &count, sizeof count);
}

void own_runtime::wake(const blocking_call& call) {
    const std::uint64_t one = 1;
    (void)!::write(call.wake_fd, &one, sizeof one);
}

void own_runtime::enter() {
    std::lock_guard lock(m_);
    ++callers_;
}

void own_runtime::abandon() {
    std::lock_guard lock(m_);
    --callers_;
    if (holder_ == holder::none) pass_baton();
}

void own_runtime::wait(blocking_call& call) {
    std::unique_lock lock(m_);
    const auto leave = [&] {
        --callers_;
        if (holder_ == holder::none) pass_baton();
    };
    const auto sleep_as = [&](blocking_call::sleep kind) {
        call.sleeping = kind;
        waiting_.push_back(&call);
        auto& count = kind == blocking_call::sleep::for_baton ? for_baton_ : for_reactor_;
        ++count;
        if (kind == blocking_call::sleep::for_reactor && holder_ == holder::none) thread_wake_.notify_one();
        if (kind == blocking_call::sleep::for_baton && holder_ == holder::thread)
            boost::asio::post(io_, [] {});  // out of its epoll_wait, to see that a caller waits
        lock.unlock();
        sleep(call);
        lock.lock();
        --count;
        call.sleeping = blocking_call::sleep::awake;
        waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &call));
    };
    bool performed = false;  // the parked I/O is done: it resumes under the baton
    for (;;) {
        if (call.parked && !performed && !call.done) {
            const auto io = call.parked;
            lock.unlock();
            io->perform(call.wake_fd);  // the round trip, on this thread, without the baton
            lock.lock();
            performed = true;
            continue;
        }
        if (call.done && !call.parked) {
            leave();
            return;
        }
        if (holder_ != holder::none) {
            if (io_.stopped()) {
                leave();
                throw closed_in_flight();
            }
            if (holder_ == holder::caller) {
                // Another caller has it for the few microseconds around its round trip: yield to
                // it a little rather than sleep, which costs a wake-up and a switch each time.
                int spins = 0;
                while (holder_ == holder::caller && spins++ < 20) {
                    lock.unlock();
                    sched_yield();
                    lock.lock();
                }
                if (holder_ == holder::none) continue;
            }
            sleep_as(blocking_call::sleep::for_baton);
            continue;
        }
        holder_ = holder::caller;
        // I/O parked here and done goes on; I/O of another operation that got this call (see
        // starting_parking) and was not done goes the usual way.
        if (performed || call.done) {
            if (auto io = std::exchange(call.parked, nullptr)) io->resume();
        }
        performed = false;
        bool stopped = false;
        if (callers_ == 1) {  // alone: sleep in the io_context until done, parked, or another caller comes
            while (!call.done && !call.parked && callers_ == 1) {
                lock.unlock();
                stopped = run_guarded([this] { return io_.run_one(); }) == 0;
                lock.lock();
                if (stopped) break;
            }
        } else {
            // What is ready, up to this call's next step (its start parks, its resume completes
            // it), then let go: handler by handler, for io_context::poll would poll the reactor
            // once more at the end, with nothing to gain for this call.
            call.moved = false;
            lock.unlock();
            while (!call.moved.load(std::memory_order_acquire) && run_guarded([this] { return io_.poll_one(); }) != 0) {
            }
            stopped = io_.stopped();
            lock.lock();
        }
        holder_ = holder::none;
        released_ = std::chrono::steady_clock::now();
        if (call.done && !call.parked) {
            leave();
            return;
        }
        if (stopped) {
            leave();
            throw closed_in_flight();
        }
        pass_baton();
        if (call.parked || call.done) continue;
        sleep_as(blocking_call::sleep::for_reactor);  // its operation waits for something else
    }
}

void own_runtime::complete(blocking_call& call) {
    std::lock_guard lock(m_);
    call.done = true;
    call.moved = true;
    if (call.sleeping != blocking_call::sleep::awake) wake(call);
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
