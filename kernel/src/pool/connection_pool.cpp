#include "pool/connection_pool.hpp"
#include "pool/strand.hpp"

#include <atomic>
#include <unordered_map>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>

#include "trellis/errors.hpp"
#include "trellis/options.hpp"

namespace trellis::pool {

namespace asio = boost::asio;

connection_pool_options pool_options_from(const client_options& options) {
    connection_pool_options o;
    o.max_pool_size = options.max_pool_size;
    o.min_pool_size = options.min_pool_size;
    o.max_connecting = options.max_connecting;
    o.max_idle_time = options.max_idle_time.value_or(std::chrono::milliseconds(0));
    o.wait_queue_timeout = options.wait_queue_timeout.value_or(std::chrono::milliseconds(0));
    return o;
}

namespace detail {

namespace {
std::error_code aborted() noexcept {
    return static_cast<std::error_code>(boost::system::error_code(boost::asio::error::operation_aborted));
}

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;
}  // namespace

class pool_impl : public std::enable_shared_from_this<pool_impl> {
public:
    using check_out_handler = asio::any_completion_handler<connection_pool::check_out_signature>;

    pool_impl(connection_pool::executor_type strand, pool_config config)
        : strand_(std::move(strand)),
          config_(std::move(config)),
          core_(config_.address, config_.options, config_.on_event, !config_.on_establish_error, config_.load_balanced),
          maintenance_(strand_) {}

    const connection_pool::executor_type& strand() const noexcept { return strand_; }
    const std::string& address() const noexcept { return config_.address; }
    request_id next_request() noexcept { return next_request_.fetch_add(1, std::memory_order_relaxed); }

    // Everything below runs on the strand.

    void start() { schedule_maintenance(std::chrono::milliseconds(0)); }

    void check_out(request_id r, check_out_handler handler) {
        // The handler's executor counts as busy until the completion is delivered, as it would
        // for any Asio operation in progress.
        auto work =
            asio::prefer(asio::get_associated_executor(handler, strand_), asio::execution::outstanding_work.tracked);
        // Constructed in place: Boost 1.81's any_completion_handler move assignment recurses
        // forever (it wraps an lvalue of itself), so handlers are only ever move-constructed.
        auto& w = waiters_.emplace(r, waiter_state{std::move(handler), std::move(work), nullptr}).first->second;
        pool_actions actions;
        core_.check_out(r, now(), actions);
        if (core_.is_waiting(r) && config_.options.wait_queue_timeout.count() > 0) {
            // CMAP "timeout aggressively": the request leaves the queue when the timer fires,
            // whatever else is going on.
            w.timer = std::make_unique<asio::steady_timer>(strand_, config_.options.wait_queue_timeout);
            w.timer->async_wait([weak = weak_from_this(), r](const boost::system::error_code& ec) {
                if (ec) return;
                if (auto self = weak.lock()) self->abandon(r, make_error_code(trellis::errc::wait_queue_timeout));
            });
        }
        run(std::move(actions));
    }

    // A connection handed out now, with no handler (connection_pool::try_check_out), or none.
    // Not while a handler runs inside deliver(): the pool is not re-entered mid-change.
    checked_out_connection try_check_out() {
        if (delivering_ > 0 || !core_.can_hand_out(now())) return {};
        const request_id r = next_request();
        pool_actions actions;
        core_.check_out(r, now(), actions);
        std::unique_ptr<pooled_connection> got;
        for (auto it = actions.begin(); it != actions.end(); ++it) {
            auto* c = std::get_if<action::complete>(&*it);
            if (c && c->request == r && c->connection) {
                got = std::move(c->connection);
                actions.erase(it);
                break;
            }
        }
        run(std::move(actions));
        return checked_out_connection(got.release(), check_in_deleter{weak_from_this()});
    }

    void abandon(request_id r, std::error_code error) {
        pool_actions actions;
        core_.abandon(r, error, now(), actions);
        run(std::move(actions));
    }

    void check_in(std::unique_ptr<pooled_connection> connection) {
        pool_actions actions;
        core_.check_in(std::move(connection), now(), actions);
        run(std::move(actions));
    }

    void ready() {
        pool_actions actions;
        core_.ready(actions);
        run(std::move(actions));
    }

    void clear(bool interrupt_in_use) {
        pool_actions actions;
        core_.clear(interrupt_in_use, now(), actions);
        run(std::move(actions));
    }

    void clear_service(const bson::oid& service, std::optional<std::uint64_t> if_generation) {
        pool_actions actions;
        core_.clear_service(service, if_generation, now(), actions);
        run(std::move(actions));
    }

    void close() {
        pool_actions actions;
        core_.close(now(), actions);
        ++maintenance_seq_;
        maintenance_.cancel();
        run(std::move(actions));
    }

    void on_established(connection_id id, std::error_code error, std::unique_ptr<pooled_connection> connection) {
        signals_.erase(id);
        pool_actions actions;
        if (error || !connection) {
            if (connection) connection->close();
            if (!error) error = make_error_code(errc::connection_failure);
            if (config_.on_establish_error)
                if (const auto generation = core_.pending_generation(id))
                    config_.on_establish_error(error, *generation);
            core_.establish_failed(id, error, now(), actions);
        } else {
            core_.establish_succeeded(id, std::move(connection), now(), actions);
        }
        run(std::move(actions));
    }

private:
    struct waiter_state {
        check_out_handler handler;
        asio::any_completion_executor work;
        std::unique_ptr<asio::steady_timer> timer;  // wait_queue_timeout, while in the wait queue
    };

    // What the establisher completes. Posts back to the strand whatever thread it is called
    // on, and never runs pool code inside the establisher's call (an establisher may complete
    // at once, from within the call that started it).
    struct establish_completion {
        std::shared_ptr<pool_impl> pool;  // strong: the cancellation signal must outlive the slot
        connection_id id;
        asio::cancellation_slot slot;

        using executor_type = connection_pool::executor_type;
        executor_type get_executor() const noexcept { return pool->strand_; }
        using cancellation_slot_type = asio::cancellation_slot;
        cancellation_slot_type get_cancellation_slot() const noexcept { return slot; }

        void operator()(std::error_code error, std::unique_ptr<pooled_connection> connection) {
            auto p = std::move(pool);
            auto& strand = p->strand_;
            asio::post(strand, [p = std::move(p), id = id, error, c = std::move(connection)]() mutable {
                p->on_established(id, error, std::move(c));
            });
        }
    };

    time_point now() const { return config_.clock ? config_.clock() : clock_type::now(); }

    void run(pool_actions&& actions) {
        for (pool_action& a : actions) {
            std::visit(overloaded{
                           [&](action::establish& e) {
                               if (e.requester) stop_timer(*e.requester);
                               start_establish(e.id);
                           },
                           [&](action::cancel_establish& e) {
                               if (const auto it = signals_.find(e.id); it != signals_.end())
                                   it->second->emit(asio::cancellation_type::terminal);
                           },
                           [&](action::complete& c) { deliver(c.request, c.error, std::move(c.connection)); },
                           [&](action::run_background&) { schedule_maintenance(std::chrono::milliseconds(0)); },
                       },
                       a);
        }
        // The maintenance timer sleeps while there is nothing to maintain; any change that
        // gives it work (a check-in, ready(), a waiter) wakes it here.
        if (maintenance_idle_ && core_.needs_background_run() && config_.maintenance_interval)
            schedule_maintenance(*config_.maintenance_interval);
    }

    void stop_timer(request_id r) {
        if (const auto it = waiters_.find(r); it != waiters_.end() && it->second.timer) it->second.timer->cancel();
    }

    void start_establish(connection_id id) {
        auto& signal = signals_[id];
        signal = std::make_unique<asio::cancellation_signal>();
        establish_handler handler(establish_completion{shared_from_this(), id, signal->slot()});
        try {
            config_.establisher(id, std::move(handler));
        } catch (...) {
            // An establisher that throws failed to establish; the pool must not lose count.
            asio::post(strand_, [self = shared_from_this(), id] {
                self->on_established(id, make_error_code(errc::connection_failure), nullptr);
            });
        }
    }

    void deliver(request_id r, std::error_code error, std::unique_ptr<pooled_connection> connection) {
        const auto it = waiters_.find(r);
        if (it == waiters_.end()) {
            // Every request the core knows came through check_out(); keep the books straight anyway.
            if (connection) check_in(std::move(connection));
            return;
        }
        waiter_state w = std::move(it->second);
        waiters_.erase(it);
        if (w.timer) w.timer->cancel();
        checked_out_connection result(connection.release(), check_in_deleter{weak_from_this()});
        // Dispatched to the handler's executor (we are on the strand, not in the initiating
        // function, so running it here when that executor is ours is allowed). Whatever the
        // handler then does to the pool is posted, so it cannot re-enter the pool mid-change.
        struct delivering {
            int& depth;
            explicit delivering(int& d) : depth(d) { ++depth; }
            ~delivering() { --depth; }
            delivering(const delivering&) = delete;
            delivering& operator=(const delivering&) = delete;
        } scope(delivering_);
        asio::dispatch(w.work, [h = std::move(w.handler), error, result = std::move(result)]() mutable {
            asio::get_associated_cancellation_slot(h).clear();
            std::move(h)(error, std::move(result));
        });
    }

    void schedule_maintenance(std::chrono::milliseconds delay) {
        if (!config_.maintenance_interval || core_.state() == pool_state::closed) return;
        // A newer schedule replaces an older one, even one whose timer already fired.
        const std::uint64_t seq = ++maintenance_seq_;
        maintenance_idle_ = false;
        maintenance_.expires_after(delay);
        maintenance_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
            if (ec || seq != self->maintenance_seq_) return;
            self->maintenance_run();
        });
    }

    void maintenance_run() {
        const std::uint64_t seq_at_start = maintenance_seq_;
        pool_actions actions;
        core_.background_run(now(), actions);
        run(std::move(actions));
        if (maintenance_seq_ != seq_at_start) return;  // run() scheduled the next one already
        if (core_.needs_background_run()) schedule_maintenance(*config_.maintenance_interval);
        else maintenance_idle_ = true;
    }

    connection_pool::executor_type strand_;
    int delivering_ = 0;  // handlers running inside deliver()
    pool_config config_;
    pool_core core_;
    std::atomic<request_id> next_request_{1};
    std::unordered_map<request_id, waiter_state> waiters_;
    std::unordered_map<connection_id, std::unique_ptr<asio::cancellation_signal>> signals_;
    asio::steady_timer maintenance_;
    std::uint64_t maintenance_seq_ = 0;
    bool maintenance_idle_ = false;  // no timer armed: nothing to maintain
};

}  // namespace detail

// ---------------------------------------------------------------- check-in on release

void check_in_deleter::operator()(pooled_connection* connection) const noexcept {
    if (!connection) return;
    std::unique_ptr<pooled_connection> owned(connection);
    if (auto p = pool.lock()) {
        auto& strand = p->strand();
        asio::post(strand, [p = std::move(p), c = std::move(owned)]() mutable { p->check_in(std::move(c)); });
    } else {
        owned->close();
    }
}

// ---------------------------------------------------------------- connection_pool

connection_pool::connection_pool(asio::any_io_executor executor, pool_config config) {
    validate_pool_options(config.options);
    if (!config.establisher) throw configuration_error("a connection pool needs a connection establisher");
    impl_ = std::make_shared<detail::pool_impl>(trellis::detail::make_erased_strand(executor), std::move(config));
    asio::post(impl_->strand(), [impl = impl_] { impl->start(); });
}

connection_pool::~connection_pool() {
    if (impl_) close();
}

connection_pool::executor_type connection_pool::get_executor() const noexcept { return impl_->strand(); }

const std::string& connection_pool::address() const noexcept { return impl_->address(); }

void connection_pool::start_check_out(const std::shared_ptr<detail::pool_impl>& impl,
                                      asio::any_completion_handler<check_out_signature> handler) {
    const request_id r = impl->next_request();
    // Cancellation is requested from the caller's side: it only asks the strand to take the
    // request out of the wait queue, which does nothing if the request has moved on.
    if (auto slot = asio::get_associated_cancellation_slot(handler); slot.is_connected()) {
        slot.assign([weak = std::weak_ptr<detail::pool_impl>(impl), r](asio::cancellation_type type) {
            if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                         asio::cancellation_type::total)) == asio::cancellation_type::none)
                return;
            if (auto p = weak.lock()) asio::post(p->strand(), [p, r] { p->abandon(r, detail::aborted()); });
        });
    }
    asio::post(impl->strand(), [impl, r, h = std::move(handler)]() mutable { impl->check_out(r, std::move(h)); });
}

checked_out_connection connection_pool::try_check_out() {
    if (!trellis::detail::strand_running_here(impl_->strand())) return {};
    return impl_->try_check_out();
}

void connection_pool::check_in(checked_out_connection connection) { connection.reset(); }

void connection_pool::ready() {
    asio::post(impl_->strand(), [impl = impl_] { impl->ready(); });
}

void connection_pool::clear(clear_options options) {
    asio::post(impl_->strand(), [impl = impl_, interrupt = options.interrupt_in_use] { impl->clear(interrupt); });
}

void connection_pool::clear_service(bson::oid service, std::optional<std::uint64_t> if_generation) {
    asio::post(impl_->strand(), [impl = impl_, service, if_generation] { impl->clear_service(service, if_generation); });
}

void connection_pool::close() {
    asio::post(impl_->strand(), [impl = impl_] { impl->close(); });
}

}  // namespace trellis::pool
