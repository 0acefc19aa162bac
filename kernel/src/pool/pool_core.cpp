#include "pool/pool_core.hpp"

#include <algorithm>
#include <utility>

#include "trellis/errors.hpp"

namespace trellis::pool {

void validate_pool_options(const connection_pool_options& o) {
    if (o.max_connecting == 0) throw configuration_error("maxConnecting must be greater than 0");
    if (o.max_pool_size != 0 && o.min_pool_size > o.max_pool_size)
        throw configuration_error("minPoolSize (" + std::to_string(o.min_pool_size) +
                                  ") must not exceed maxPoolSize (" + std::to_string(o.max_pool_size) + ")");
    if (o.max_idle_time.count() < 0) throw configuration_error("maxIdleTimeMS must not be negative");
    if (o.wait_queue_timeout.count() < 0) throw configuration_error("waitQueueTimeoutMS must not be negative");
}

pool_core::pool_core(std::string address, connection_pool_options options, cmap_event_handler on_event,
                     bool clear_on_establish_error, bool load_balanced)
    : address_(std::move(address)),
      options_(options),
      on_event_(std::move(on_event)),
      clear_on_establish_error_(clear_on_establish_error),
      load_balanced_(load_balanced) {
    publish(pool_created_event{address_, options_});
}

pool_core::~pool_core() {
    // Whoever destroys a pool without closing it gets no events, but no socket is leaked either.
    for (auto& a : available_) a.connection->close();
}

void pool_core::publish(cmap_event event) noexcept {
    if (!on_event_) return;
    try {
        on_event_(event);
    } catch (...) {
        // A subscriber's failure must not leave the pool half way through a state change.
    }
}

pool_counts pool_core::counts() const noexcept {
    return {total(), available_.size(), pending_.size(), in_use_.size(), wait_queue_.size()};
}

bool pool_core::is_waiting(request_id request) const noexcept {
    return std::any_of(wait_queue_.begin(), wait_queue_.end(), [&](const waiter& w) { return w.id == request; });
}

std::optional<std::uint64_t> pool_core::pending_generation(connection_id id) const noexcept {
    if (auto it = pending_.find(id); it != pending_.end()) return it->second.generation;
    return std::nullopt;
}

std::uint64_t pool_core::service_generation(const bson::oid& service) const noexcept {
    const auto it = services_.find(service);
    return it == services_.end() ? 0 : it->second.generation;
}

std::size_t pool_core::service_connections(const bson::oid& service) const noexcept {
    const auto it = services_.find(service);
    return it == services_.end() ? 0 : it->second.connections;
}

bool pool_core::stale(const pooled_connection& c) const noexcept {
    if (load_balanced_)
        if (const auto service = c.service_id()) return c.generation() != service_generation(*service);
    return c.generation() != generation_;
}

void pool_core::forget_service(const pooled_connection& c) noexcept {
    if (!load_balanced_) return;
    const auto service = c.service_id();
    if (!service) return;
    const auto it = services_.find(*service);
    if (it == services_.end()) return;
    if (it->second.connections > 0) --it->second.connections;
    if (it->second.connections == 0) services_.erase(it);
}

std::size_t pool_core::unclaimed_pending() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(pending_.begin(), pending_.end(), [](const auto& p) { return !p.second.requester; }));
}

// ---------------------------------------------------------------- check-out

void pool_core::check_out(request_id request, time_point now, pool_actions& out) {
    publish(connection_check_out_started_event{address_});
    const waiter w{request, now};
    if (state_ == pool_state::closed) {
        fail(w, connection_check_out_failed_reason::pool_closed, trellis::errc::pool_closed, now, out);
        return;
    }
    if (state_ == pool_state::paused) {
        // A paused pool fails at once with a retryable error; it never queues.
        fail(w, connection_check_out_failed_reason::connection_error, trellis::errc::pool_cleared, now, out);
        return;
    }
    wait_queue_.push_back(w);
    service_wait_queue(now, out);
}

// Serves the wait queue strictly in order: only its head may take a connection or start one,
// so that no newer request is served before an older one that could not be.
void pool_core::service_wait_queue(time_point now, pool_actions& out) {
    while (state_ == pool_state::ready && !wait_queue_.empty()) {
        const waiter head = wait_queue_.front();
        if (auto c = take_available(now)) {
            wait_queue_.pop_front();
            hand_out(head, std::move(c), now, out);
            continue;
        }
        // A connection the background is establishing (min_pool_size) is claimed by nobody yet
        // and will be available soon: the head waits for it rather than starting one more. The
        // CMAP text would let it start another as soon as pending < max_connecting, which
        // overshoots when the populating connections complete a moment apart (the spec test
        // "threads blocked by maxConnecting check out minPoolSize connections" expects none).
        if (unclaimed_pending() > 0) break;
        if (!below_max_size() || pending_.size() >= options_.max_connecting) break;
        wait_queue_.pop_front();
        create(head, now, out);
    }
}

// The most recently used available connection that has not perished, closing perished ones
// on the way (CMAP: iterate until a non-perished one is found or the list is exhausted).
std::unique_ptr<pooled_connection> pool_core::take_available(time_point now) {
    while (!available_.empty()) {
        available_connection a = std::move(available_.back());
        available_.pop_back();
        if (const auto reason = perished(a, now)) {
            close_connection(std::move(a.connection), *reason);
            continue;
        }
        return std::move(a.connection);
    }
    return nullptr;
}

bool pool_core::can_hand_out(time_point now) const noexcept {
    if (state_ != pool_state::ready || !wait_queue_.empty()) return false;
    return std::any_of(available_.begin(), available_.end(), [&](const available_connection& a) { return !perished(a, now); });
}

std::optional<connection_closed_reason> pool_core::perished(const available_connection& a,
                                                            time_point now) const noexcept {
    if (stale(*a.connection)) return connection_closed_reason::stale;
    if (options_.max_idle_time.count() > 0 && now - a.since > options_.max_idle_time)
        return connection_closed_reason::idle;
    if (a.connection->is_perished()) return connection_closed_reason::error;
    return std::nullopt;
}

void pool_core::create(std::optional<waiter> requester, time_point now, pool_actions& out) {
    const connection_id id = next_id_++;
    pending_.emplace(id, pending_connection{generation_, now, requester});
    publish(connection_created_event{address_, id});
    out.push_back(action::establish{id, requester ? std::optional<request_id>(requester->id) : std::nullopt});
}

void pool_core::hand_out(const waiter& w, std::unique_ptr<pooled_connection> c, time_point now, pool_actions& out) {
    in_use_.emplace(c->id(), c.get());
    publish(connection_checked_out_event{address_, c->id(), now - w.started});
    out.push_back(action::complete{w.id, {}, std::move(c)});
}

void pool_core::fail(const waiter& w, connection_check_out_failed_reason reason, std::error_code error,
                     time_point now, pool_actions& out) {
    publish(connection_check_out_failed_event{address_, reason, now - w.started});
    out.push_back(action::complete{w.id, error, nullptr});
}

void pool_core::close_connection(std::unique_ptr<pooled_connection> c, connection_closed_reason reason) noexcept {
    forget_service(*c);
    publish(connection_closed_event{address_, c->id(), reason});
    c->close();
}

void pool_core::abandon(request_id request, std::error_code error, time_point now, pool_actions& out) {
    const auto it =
        std::find_if(wait_queue_.begin(), wait_queue_.end(), [&](const waiter& w) { return w.id == request; });
    if (it == wait_queue_.end()) return;
    const waiter w = *it;
    wait_queue_.erase(it);
    fail(w, connection_check_out_failed_reason::timeout, error, now, out);
    // The request behind it may be able to proceed now.
    service_wait_queue(now, out);
}

// ---------------------------------------------------------------- check-in

void pool_core::check_in(std::unique_ptr<pooled_connection> c, time_point now, pool_actions& out) {
    if (!c) return;
    const auto it = in_use_.find(c->id());
    if (it == in_use_.end() || it->second != c.get()) {
        // Not checked out of this pool (or checked in twice through a copy of its pointer):
        // CMAP forbids it; the connection is not ours to count, so it just goes.
        c->close();
        return;
    }
    in_use_.erase(it);
    publish(connection_checked_in_event{address_, c->id()});
    if (state_ == pool_state::closed) close_connection(std::move(c), connection_closed_reason::pool_closed);
    else if (stale(*c)) close_connection(std::move(c), connection_closed_reason::stale);
    else if (c->is_perished()) close_connection(std::move(c), connection_closed_reason::error);
    else available_.push_back({std::move(c), now});
    service_wait_queue(now, out);
}

// ---------------------------------------------------------------- establishment

void pool_core::establish_succeeded(connection_id id, std::unique_ptr<pooled_connection> c, time_point now,
                                    pool_actions& out) {
    const auto it = pending_.find(id);
    if (it == pending_.end()) {
        // Interrupted by clear() or close(), which already reported it closed.
        if (c) c->close();
        return;
    }
    if (!c) {
        establish_failed(id, make_error_code(errc::connection_failure), now, out);
        return;
    }
    const pending_connection p = std::move(it->second);
    pending_.erase(it);
    c->id_ = id;
    c->generation_ = p.generation;
    if (load_balanced_)
        if (const auto service = c->service_id()) {
            // CMAP load balancer mode: the generation of its service, which counts it.
            service_entry& entry = services_[*service];
            c->generation_ = entry.generation;
            ++entry.connections;
        }
    publish(connection_ready_event{address_, id, now - p.created});
    if (p.requester) {
        // Made for this request, which left the wait queue when it started: it gets it even if
        // the pool was cleared meanwhile (without interrupting); it is stale on check-in.
        hand_out(*p.requester, std::move(c), now, out);
    } else if (p.generation != generation_) {  // a clear of the whole pool meanwhile
        close_connection(std::move(c), connection_closed_reason::stale);
    } else {
        available_.push_back({std::move(c), now});
    }
    after_establishment(now, out);
}

void pool_core::establish_failed(connection_id id, std::error_code error, time_point now, pool_actions& out) {
    const auto it = pending_.find(id);
    if (it == pending_.end()) return;
    // Clear before reporting the connection closed: SDAM's handling of the error comes first
    // (the spec test "error during minPoolSize population clears pool" expects this order).
    if (clear_on_establish_error_ && it->second.generation == generation_) clear(false, now, out);
    const pending_connection p = std::move(it->second);
    pending_.erase(it);
    publish(connection_closed_event{address_, id, connection_closed_reason::error});
    if (p.requester) fail(*p.requester, connection_check_out_failed_reason::connection_error, error, now, out);
    after_establishment(now, out);
}

// One fewer pending connection: a waiter blocked by max_connecting may proceed, and population
// toward min_pool_size may continue without waiting for the next periodic run.
void pool_core::after_establishment(time_point now, pool_actions& out) {
    service_wait_queue(now, out);
    if (state_ == pool_state::ready && total() < options_.min_pool_size) out.push_back(action::run_background{});
}

// ---------------------------------------------------------------- state changes

void pool_core::ready(pool_actions& out) {
    if (state_ != pool_state::paused) return;
    state_ = pool_state::ready;
    // The event comes before any connection the background creates for min_pool_size.
    publish(pool_ready_event{address_});
    out.push_back(action::run_background{});
}

void pool_core::clear(bool interrupt_in_use, time_point now, pool_actions& out) {
    if (state_ == pool_state::closed) return;
    const bool was_paused = state_ == pool_state::paused;
    // Every connection of the current generation is stale from now on; check-out and check-in
    // close them lazily, the background run closes the available ones.
    ++generation_;
    state_ = pool_state::paused;
    // A paused pool has nothing new to clear: no event (the generation still moves on).
    if (!was_paused) publish(pool_cleared_event{address_, std::nullopt, interrupt_in_use});

    // The wait queue is emptied eagerly with a retryable error, so that callers retry now
    // instead of sitting out their timeouts.
    std::deque<waiter> evicted;
    evicted.swap(wait_queue_);
    for (const waiter& w : evicted)
        fail(w, connection_check_out_failed_reason::connection_error, trellis::errc::pool_cleared, now, out);

    if (interrupt_in_use) {
        // All in-use connections predate this clear, so all are interrupted.
        for (auto& [id, c] : in_use_) c->interrupt();
        // Pending establishments are cut short; their requesters fail now, not when (or if)
        // the server answers.
        std::map<connection_id, pending_connection> interrupted;
        interrupted.swap(pending_);
        for (auto& [id, p] : interrupted) {
            publish(connection_closed_event{address_, id, connection_closed_reason::stale});
            out.push_back(action::cancel_establish{id});
            if (p.requester)
                fail(*p.requester, connection_check_out_failed_reason::connection_error, trellis::errc::pool_cleared, now,
                     out);
        }
    }
    // CMAP: a clear SHOULD schedule the next background run at once, to close what is stale.
    out.push_back(action::run_background{});
}

void pool_core::clear_service(const bson::oid& service, std::optional<std::uint64_t> if_generation, time_point now,
                              pool_actions& out) {
    (void)now;
    if (!load_balanced_ || state_ == pool_state::closed) return;
    const auto it = services_.find(service);
    // No connection of it left: nothing is stale, and its entry is gone (CMAP drops it at zero).
    if (it == services_.end()) return;
    if (if_generation && *if_generation != it->second.generation) return;
    ++it->second.generation;
    publish(pool_cleared_event{address_, service, false});
    // Not paused, the wait queue untouched (CMAP "Clearing a load balanced pool"); the
    // background run closes the available connections now stale.
    out.push_back(action::run_background{});
}

void pool_core::close(time_point now, pool_actions& out) {
    if (state_ == pool_state::closed) return;
    state_ = pool_state::closed;
    // First the available connections, then the event (CMAP "Closing a Connection Pool").
    std::vector<available_connection> available;
    available.swap(available_);
    for (auto& a : available) close_connection(std::move(a.connection), connection_closed_reason::pool_closed);
    // Establishments in progress would only produce connections to close: stop them.
    std::map<connection_id, pending_connection> pending;
    pending.swap(pending_);
    for (auto& [id, p] : pending) {
        publish(connection_closed_event{address_, id, connection_closed_reason::pool_closed});
        out.push_back(action::cancel_establish{id});
    }
    publish(pool_closed_event{address_});
    std::deque<waiter> waiting;
    waiting.swap(wait_queue_);
    for (const waiter& w : waiting)
        fail(w, connection_check_out_failed_reason::pool_closed, trellis::errc::pool_closed, now, out);
    for (auto& [id, p] : pending)
        if (p.requester)
            fail(*p.requester, connection_check_out_failed_reason::pool_closed, trellis::errc::pool_closed, now, out);
    // In-use connections stay with their users and are closed when checked in.
}

void pool_core::background_run(time_point now, pool_actions& out) {
    if (state_ == pool_state::closed) return;
    // Oldest first, so that the idle ones go before the recently used ones are looked at.
    std::vector<available_connection> keep;
    keep.reserve(available_.size());
    std::vector<available_connection> current;
    current.swap(available_);
    for (auto& a : current) {
        if (const auto reason = perished(a, now)) close_connection(std::move(a.connection), *reason);
        else keep.push_back(std::move(a));
    }
    available_ = std::move(keep);
    if (state_ == pool_state::ready)
        while (total() < options_.min_pool_size && below_max_size() && pending_.size() < options_.max_connecting)
            create(std::nullopt, now, out);
    // Closing perished connections may have made room for a waiter.
    service_wait_queue(now, out);
}

}  // namespace trellis::pool
