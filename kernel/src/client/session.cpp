// Explicit sessions: client_session, the server session it holds, and the cluster and operation
// times gossiped through it (the driver sessions and causal consistency specs).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <random>
#include <thread>

#include "client/core.hpp"
#include "client/session_knobs.hpp"
#include "client/wait.hpp"
#include "ops/ops.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/session.hpp"
#include "trellis/transaction_timeout.hpp"

namespace trellis {

namespace detail {

namespace {

// The clusterTime timestamp of a $clusterTime document; nullopt when it has none.
std::optional<bson::timestamp> cluster_timestamp(bson::document_view ct) {
    const auto t = ct.find("clusterTime");
    if (!t || t->type() != bson::type::timestamp) return std::nullopt;
    return t->get_timestamp();
}

// `current` becomes `seen` when that is later (cluster times compare by their timestamp only).
void advance(std::optional<bson::document>& current, bson::document_view seen) {
    const auto t = cluster_timestamp(seen);
    if (!t) return;
    if (current) {
        const auto mine = cluster_timestamp(current->view());
        if (mine && *mine >= *t) return;
    }
    current = bson::document(seen);
}

}  // namespace

session_ptr client_core::start_session(const session_options& o) {
    if (o.snapshot && o.causal_consistency.value_or(false))
        throw error(errc::invalid_argument, "start_session: snapshot and causal_consistency are mutually exclusive");
    if (o.snapshot_time && !o.snapshot)
        throw error(errc::invalid_argument, "start_session: snapshot_time is only valid with snapshot: true");
    if (o.default_timeout && o.default_timeout->count() < 0)
        throw error(errc::invalid_argument, "start_session: default_timeout (defaultTimeoutMS) must not be negative (got " +
                                                std::to_string(o.default_timeout->count()) + " ms)");
    auto s = std::make_shared<session_state>();
    s->core = shared_from_this();
    s->options = o;
    s->causal = o.causal_consistency.value_or(!o.snapshot);
    s->snapshot_time = o.snapshot_time;
    s->server = acquire_session(snapshot()->logical_session_timeout_minutes);
    return s;
}

void client_core::end_session(const session_ptr& s) {
    server_session server;
    bool abort = false;
    {
        pinned_ptr dropped;
        std::lock_guard lock(s->mutex);
        if (s->ended) return;
        s->ended = true;
        server = s->server;
        abort = s->txn == transaction_state::in_progress;
        if (!abort) dropped = unpin(*s);
    }
    if (!abort) {
        release_session(server);  // a dirty one is dropped there
        return;
    }
    // The transactions spec: a transaction in progress is aborted (errors ignored); the server
    // session goes back to the pool afterwards, so that nobody else uses its lsid meanwhile.
    asio::co_spawn(strand_, [self = shared_from_this(), s]() -> asio::awaitable<void> {
        co_await self->send_abort(s);
        server_session back;
        {
            std::lock_guard lock(s->mutex);
            back = s->server;
        }
        self->release_session(back);
    }, asio::detached);
}

// ---------------------------------------------------------------- transactions

namespace {

bool has_fields(const write_concern& wc) { return wc.w || wc.wtimeout || wc.journal || wc.fsync; }

std::string error_text(const std::exception_ptr& e) {
    try {
        if (e) std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
    }
    return "unknown error";
}

// The retryable writes spec's retryable errors: network errors, and the codes (or, from 4.4,
// the RetryableWriteError label) of a retryable write.
bool retryable_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const operation_failure& x) {
        if (x.has_error_label("RetryableWriteError")) return true;
        const auto k = &x.code().category() == &error_category() ? static_cast<errc>(x.code().value()) : errc::operation_failure;
        if (k == errc::auto_reconnect || k == errc::network_timeout || k == errc::connection_failure) return true;
        switch (x.server_code()) {
            case 6: case 7: case 89: case 91: case 189: case 262: case 9001: case 10107: case 11600: case 11602:
            case 13435: case 13436: return true;
            default: return false;
        }
    } catch (const error& x) {
        const auto c = x.code();
        return c == errc::auto_reconnect || c == errc::network_timeout || c == errc::connection_failure ||
               c == errc::server_selection_timeout;
    } catch (...) {
    }
    return false;
}

// The transactions spec's UnknownTransactionCommitResult: a commit failure after which the
// transaction may or may not have committed (network, selection, retryable, MaxTimeMSExpired,
// or a write concern error other than an unsatisfiable or unknown write concern).
bool unknown_commit_result(const std::exception_ptr& e) {
    if (retryable_error(e)) return true;
    try {
        std::rethrow_exception(e);
    } catch (const operation_failure& x) {
        if (x.server_code() == 50) return true;
        if (const auto* c = dynamic_cast<const command_failure*>(&x))
            if (c->reply().view().find("writeConcernError")) return x.server_code() != 100 && x.server_code() != 79;
        return false;
    } catch (...) {
    }
    return false;
}

}  // namespace

void client_core::start_transaction(session_state& s, const transaction_options& o) {
    if (s.options.snapshot)
        throw error(errc::invalid_argument, "start_transaction: Transactions are not supported in snapshot sessions");
    transaction_options r;
    const auto& d = s.options.default_transaction_options;
    r.read_concern = o.read_concern ? o.read_concern : d.read_concern;
    if (!r.read_concern) {
        const auto rc = settings_for({}).rc;  // the client's
        if (rc.level) r.read_concern = rc;
    }
    r.write_concern = o.write_concern ? o.write_concern : d.write_concern;
    if (!r.write_concern) {
        const auto wc = current_write_concern();
        if (has_fields(wc)) r.write_concern = wc;
    }
    r.read_preference = o.read_preference ? o.read_preference : d.read_preference;
    if (!r.read_preference) r.read_preference = current_read_preference();
    r.max_commit_time = o.max_commit_time ? o.max_commit_time : d.max_commit_time;
    if (r.write_concern && ops::unacknowledged(*r.write_concern))
        throw error(errc::invalid_argument, "start_transaction: transactions do not support unacknowledged write concern (w: 0)");
    pinned_ptr dropped;
    std::lock_guard lock(s.mutex);
    if (s.ended) throw error(errc::invalid_argument, "start_transaction: the session has ended: start a new one");
    if (s.txn == transaction_state::starting || s.txn == transaction_state::in_progress)
        throw error(errc::invalid_argument, "start_transaction: Transaction already in progress on this session");
    ++s.server.txn_number;
    s.txn = transaction_state::starting;
    s.txn_options = std::move(r);
    s.txn_empty = false;
    s.commit_sent = false;
    dropped = unpin(s);
    s.recovery_token.reset();
}

namespace {

// commitTransaction or abortTransaction as the session's transaction sends it, bounded by
// `deadline` (CSOT: one for all of its attempts; none without timeoutMS).
client_core::operation control_operation(const session_ptr& s, std::string_view name, bool majority,
                                         std::optional<std::chrono::steady_clock::time_point> deadline) {
    bson::builder b;
    b.append(name, 1);
    std::lock_guard lock(s->mutex);
    write_concern wc = s->txn_options.write_concern.value_or(write_concern{});
    if (majority) {
        // A retried commit: w: majority (other fields kept), wtimeout 10 s unless one is set.
        wc.w = std::string("majority");
        if (!wc.wtimeout) wc.wtimeout = std::chrono::milliseconds(10'000);
    }
    if (has_fields(wc)) b.append("writeConcern", ops::write_concern_document(wc).view());
    if (name == "commitTransaction" && s->txn_options.max_commit_time)
        b.append("maxTimeMS", static_cast<std::int64_t>(s->txn_options.max_commit_time->count()));
    if (s->recovery_token) b.append("recoveryToken", s->recovery_token->view());
    client_core::operation op;
    op.db = "admin";
    op.command = b.extract();
    op.kind = client_core::op_kind::command;
    op.read_pref = read_preference{};
    op.explicit_session = s;
    op.transaction_control = true;
    op.timeout = s->core->session_timeout(*s);
    op.deadline = deadline;
    op.fresh_timeout = name == "abortTransaction";
    return op;
}

}  // namespace

asio::awaitable<void> client_core::commit_transaction(session_ptr s) {
    bool retry = false;  // commit called again: a retry, with w: majority
    {
        std::lock_guard lock(s->mutex);
        if (s->ended) throw error(errc::invalid_argument, "commit_transaction: the session has ended");
        switch (s->txn) {
            case transaction_state::none: throw error(errc::invalid_argument, "commit_transaction: No transaction started");
            case transaction_state::aborted:
                throw error(errc::invalid_argument, "commit_transaction: Cannot call commitTransaction after calling abortTransaction");
            case transaction_state::starting:
                s->txn = transaction_state::committed;  // nothing ran: nothing to commit
                s->txn_empty = true;
                co_return;
            case transaction_state::committed:
                if (s->txn_empty) co_return;
                retry = true;
                break;
            case transaction_state::in_progress: retry = s->commit_sent; break;
        }
        s->commit_sent = true;
    }
    std::exception_ptr failure;
    // CSOT: the session's timeout bounds the commit and its retries, which go on while time
    // remains (inside with_transaction, what remains of its deadline: execute() applies it).
    auto deadline = deadline_for(session_timeout(*s));
    {
        std::lock_guard lock(s->mutex);
        if (s->txn_deadline) deadline = s->txn_deadline;
    }
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0 && deadline && std::chrono::steady_clock::now() >= *deadline) {
            failure = std::make_exception_ptr(operation_timeout(
                "commitTransaction: its timeoutMS (" + std::to_string(effective_timeout(session_timeout(*s)).count()) +
                    " ms) ran out while retrying; the last error: " + error_text(failure),
                failure));
            break;
        }
        failure = nullptr;
        // Named first: GCC 12 may destroy a temporary in a co_await's arguments twice.
        operation op = control_operation(s, "commitTransaction", retry || attempt > 0, deadline);
        try {
            co_await execute(std::move(op));
        } catch (...) {
            failure = std::current_exception();
        }
        if (!failure) break;
        const bool unknown = unknown_commit_result(failure);
        if (unknown || has_error_label(failure, "TransientTransactionError")) {
            pinned_ptr dropped;
            std::lock_guard lock(s->mutex);
            dropped = unpin(*s);  // the retry may go to any mongos (with the recovery token)
        }
        if ((attempt > 0 && !deadline) || !retryable_error(failure)) break;
    }
    {
        pinned_ptr dropped;
        std::lock_guard lock(s->mutex);
        s->txn = transaction_state::committed;
        // Load balanced: the connection goes back (the load balancers spec's tests); a commit
        // called again checks one out. Through mongos the session stays pinned to the router.
        if (load_balanced()) dropped = unpin(*s);
    }
    if (!failure) co_return;
    if (unknown_commit_result(failure)) failure = with_error_label(failure, "UnknownTransactionCommitResult");
    std::rethrow_exception(failure);
}

asio::awaitable<void> client_core::abort_transaction(session_ptr s) {
    {
        std::lock_guard lock(s->mutex);
        if (s->ended) throw error(errc::invalid_argument, "abort_transaction: the session has ended");
        switch (s->txn) {
            case transaction_state::none: throw error(errc::invalid_argument, "abort_transaction: No transaction started");
            case transaction_state::committed:
                throw error(errc::invalid_argument, "abort_transaction: Cannot call abortTransaction after calling commitTransaction");
            case transaction_state::aborted: throw error(errc::invalid_argument, "abort_transaction: Cannot call abortTransaction twice");
            case transaction_state::starting:
                s->txn = transaction_state::aborted;  // nothing ran: nothing to abort
                s->txn_empty = true;
                s->pinned.reset();  // nothing ran: no connection either
                co_return;
            case transaction_state::in_progress: break;
        }
    }
    co_await send_abort(std::move(s));
}

asio::awaitable<void> client_core::send_abort(session_ptr s) {
    const auto deadline = deadline_for(session_timeout(*s));  // CSOT: the abort and its retry
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::exception_ptr failure;
        operation op = control_operation(s, "abortTransaction", false, deadline);
        try {
            co_await execute(std::move(op));
        } catch (...) {
            failure = std::current_exception();
        }
        if (!failure || !retryable_error(failure)) break;
        pinned_ptr dropped;
        std::lock_guard lock(s->mutex);
        dropped = unpin(*s);  // the retry selects again
    }
    pinned_ptr dropped;
    std::lock_guard lock(s->mutex);
    s->txn = transaction_state::aborted;
    dropped = unpin(*s);
}

std::optional<bson::document> client_core::cluster_time_to_send(const session_state* s) const {
    std::optional<bson::document> out = cluster_time_;
    if (s) {
        std::lock_guard lock(s->mutex);
        if (s->cluster_time) advance(out, s->cluster_time->view());
    }
    return out;
}

void client_core::observe_times(bson::document_view reply, session_state* s) {
    const auto ct = reply.find("$clusterTime");
    const bool has_ct = ct && ct->type() == bson::type::document;
    if (has_ct) advance(cluster_time_, ct->get_document());
    if (!s) return;
    std::lock_guard lock(s->mutex);
    if (has_ct) advance(s->cluster_time, ct->get_document());
    if (const auto ot = reply.find("operationTime"); ot && ot->type() == bson::type::timestamp)
        if (!s->operation_time || *s->operation_time < ot->get_timestamp()) s->operation_time = ot->get_timestamp();
    if (s->options.snapshot && !s->snapshot_time) {
        // The snapshot reads spec: atClusterTime in the cursor (find, aggregate) or at the top
        // level (distinct) of the session's first read.
        auto at = reply.find("atClusterTime");
        if (const auto c = reply.find("cursor"); c && c->type() == bson::type::document) at = c->get_document().find("atClusterTime");
        if (at && at->type() == bson::type::timestamp) s->snapshot_time = at->get_timestamp();
    }
}

bson::document with_after_cluster_time(bson::document_view command, bson::timestamp t) {
    bson::builder b;
    std::optional<bson::document_view> rc;
    for (const auto& e : command) {
        if (e.key() == "readConcern" && e.type() == bson::type::document) rc = e.get_document();
        else b.append(e);
    }
    b.open_document("readConcern");
    if (rc)
        for (const auto& e : *rc)
            if (e.key() != "afterClusterTime") b.append(e);
    b.append("afterClusterTime", t).close_document();
    return b.extract();
}

bson::document with_snapshot_read_concern(bson::document_view command, std::optional<bson::timestamp> at) {
    bson::builder b;
    for (const auto& e : command)
        if (e.key() != "readConcern") b.append(e);
    b.open_document("readConcern").append("level", "snapshot");
    if (at) b.append("atClusterTime", *at);
    b.close_document();
    return b.extract();
}

void set_with_transaction_limit(client_session& s, std::chrono::steady_clock::duration limit) {
    if (!s.state()) throw error(errc::invalid_argument, "use of a moved-from client_session");
    s.state()->with_transaction_limit = limit;
}

}  // namespace detail

// ---------------------------------------------------------------- client_session

client_session client::start_session(session_options options) { return client_session(core_->start_session(options)); }

client_session& client_session::operator=(client_session&& other) noexcept {
    if (this != &other) {
        end_session();
        state_ = std::move(other.state_);
    }
    return *this;
}

client_session::~client_session() { end_session(); }

namespace {
detail::session_state& live(const std::shared_ptr<detail::session_state>& s) {
    if (!s) throw error(errc::invalid_argument, "use of a moved-from client_session");
    return *s;
}
}  // namespace

bson::document client_session::id() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return bson::make_document(bson::kvp("id", s.server.id));
}

const session_options& client_session::options() const noexcept {
    static const session_options none;
    return state_ ? state_->options : none;
}

bool client_session::causal_consistency() const noexcept { return state_ && state_->causal; }

std::optional<bson::document> client_session::cluster_time() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return s.cluster_time;
}

std::optional<bson::timestamp> client_session::operation_time() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return s.operation_time;
}

std::optional<bson::timestamp> client_session::snapshot_time() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return s.snapshot_time;
}

void client_session::advance_cluster_time(bson::document_view cluster_time) {
    const auto t = cluster_time.find("clusterTime");
    if (!t || t->type() != bson::type::timestamp)
        throw error(errc::invalid_argument, "advance_cluster_time: the document has no timestamp field clusterTime");
    auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    detail::advance(s.cluster_time, cluster_time);
}

void client_session::advance_operation_time(bson::timestamp operation_time) {
    auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    if (!s.operation_time || *s.operation_time < operation_time) s.operation_time = operation_time;
}

void client_session::end_session() noexcept {
    if (!state_) return;
    try {
        state_->core->end_session(state_);
    } catch (...) {
    }
}

bool client_session::has_ended() const noexcept {
    if (!state_) return true;
    std::lock_guard lock(state_->mutex);
    return state_->ended;
}

bool client_session::dirty() const noexcept {
    if (!state_) return false;
    std::lock_guard lock(state_->mutex);
    return state_->server.dirty;
}

client& client_session::client() const {
    auto* c = live(state_).core->face();
    if (!c) throw error(errc::invalid_argument, "the session's client has been destroyed");
    return *c;
}

// ---------------------------------------------------------------- transactions

namespace asio = boost::asio;

boost::asio::any_io_executor client_session::executor() const {
    auto& s = live(state_);
    s.core->check_usable();
    return s.core->strand();
}

void client_session::start_transaction(transaction_options options) {
    auto& s = live(state_);
    s.core->start_transaction(s, options);
}

asio::awaitable<void> client_session::commit_impl(std::shared_ptr<detail::session_state> s) {
    co_await live(s).core->commit_transaction(s);
}

asio::awaitable<void> client_session::abort_impl(std::shared_ptr<detail::session_state> s) {
    co_await live(s).core->abort_transaction(s);
}

void client_session::commit_transaction() { detail::wait(live(state_).core, commit_impl(state_)); }

void client_session::abort_transaction() { detail::wait(live(state_).core, abort_impl(state_)); }

transaction_state client_session::transaction() const noexcept {
    if (!state_) return transaction_state::none;
    std::lock_guard lock(state_->mutex);
    return state_->txn;
}

std::optional<std::string> client_session::pinned_server() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return s.pinned;
}

namespace {

using clock = std::chrono::steady_clock;

// The convenient API's backoff before transaction attempt n: jitter * min(5 ms * 1.5^(n-1), 500 ms).
std::chrono::microseconds transaction_backoff(int attempt) {
    thread_local std::mt19937_64 random{std::random_device{}()};
    const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    const double ms = jitter * std::min(5.0 * std::pow(1.5, attempt - 1), 500.0);
    return std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000));
}

bool max_time_expired(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const operation_failure& x) {
        return x.server_code() == 50;
    } catch (...) {
    }
    return false;
}

std::string millis(clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// The convenient API spec's timeout error: the limit ran out while retrying; it wraps `last`,
// the error that made with_transaction retry, with its code and labels. With timeoutMS (`csot`):
// the CSOT spec's timeout error, `last` its cause.
std::exception_ptr timed_out(const std::exception_ptr& last, clock::duration limit, clock::time_point started, bool csot) {
    int code = 0;
    std::string code_name;
    std::vector<std::string> labels;
    std::string what = "unknown error";
    try {
        std::rethrow_exception(last);
    } catch (const operation_failure& x) {
        code = x.server_code();
        code_name = x.code_name();
        labels = x.error_labels();
        what = x.what();
    } catch (const std::exception& x) {
        what = x.what();
    } catch (...) {
    }
    if (csot)
        return std::make_exception_ptr(operation_timeout("with_transaction: its timeoutMS (" + millis(limit) + ") ran out (" +
                                                             millis(clock::now() - started) +
                                                             " since it started); the last error: " + what,
                                                         last));
    return std::make_exception_ptr(transaction_timeout(
        last, code, std::move(code_name), std::move(labels),
        "with_transaction: its time limit of " + millis(limit) + " ran out while retrying (" +
            millis(clock::now() - started) + " since it started); the last error: " + what));
}

// with_transaction's timeoutMS (the CSOT spec): the session's defaultTimeoutMS, else the client's;
// zero when there is none (the convenient API's 120 s limit on retries applies then).
std::chrono::milliseconds with_transaction_timeout(const detail::session_state& s) {
    return s.core->effective_timeout(s.core->session_timeout(s));
}

// While with_transaction runs with a timeout, the session holds its deadline (execute() gives
// the callback's operations and the commits what remains); cleared however it ends.
class transaction_deadline {
public:
    transaction_deadline(detail::session_state& s, std::chrono::milliseconds timeout, clock::time_point started) : s_(s) {
        if (timeout.count() <= 0) return;
        std::lock_guard lock(s_.mutex);
        s_.txn_deadline = started + timeout;
        s_.txn_timeout = timeout;
    }
    ~transaction_deadline() {
        std::lock_guard lock(s_.mutex);
        s_.txn_deadline.reset();
        s_.txn_timeout = std::chrono::milliseconds(0);
    }
    transaction_deadline(const transaction_deadline&) = delete;
    transaction_deadline& operator=(const transaction_deadline&) = delete;

private:
    detail::session_state& s_;
};

bool open_transaction(transaction_state t) { return t == transaction_state::starting || t == transaction_state::in_progress; }

// The spec's sequence of actions, shared by the blocking and the async with_transaction: each
// step answers what to do next.
class transaction_retries {
public:
    // `timeout`: with_transaction's timeoutMS (zero: none, the session's 120 s limit instead).
    transaction_retries(const detail::session_state& s, std::chrono::milliseconds timeout)
        : limit_(timeout.count() > 0 ? clock::duration(timeout) : s.with_transaction_limit),
          started_(clock::now()),
          csot_(timeout.count() > 0) {}
    clock::time_point started() const { return started_; }

    // Before attempt `n` (n > 0): the backoff to wait, or the timeout error (the backoff would
    // end past the limit).
    std::chrono::microseconds backoff(int n) {
        const auto wait = transaction_backoff(n);
        if (clock::now() + wait - started_ >= limit_) std::rethrow_exception(timed_out(last_, limit_, started_, csot_));
        return wait;
    }
    // After the callback failed (the transaction aborted): true to run it again; otherwise throws
    // (its own error, or the timeout error for a transient one past the limit).
    bool callback_failed(const std::exception_ptr& e) {
        last_ = e;
        if (!detail::has_error_label(e, "TransientTransactionError")) std::rethrow_exception(e);
        if (clock::now() - started_ >= limit_) std::rethrow_exception(timed_out(e, limit_, started_, csot_));
        return true;
    }
    enum class after_commit { retry_commit, retry_transaction };
    // After the commit failed; throws when neither is retried (past the limit: the timeout error,
    // for an error that would have been retried).
    after_commit commit_failed(const std::exception_ptr& e) {
        last_ = e;
        const bool commit_again = !max_time_expired(e) && detail::has_error_label(e, "UnknownTransactionCommitResult");
        const bool again = commit_again || detail::has_error_label(e, "TransientTransactionError");
        if (!again) std::rethrow_exception(e);
        if (clock::now() - started_ >= limit_) std::rethrow_exception(timed_out(e, limit_, started_, csot_));
        return commit_again ? after_commit::retry_commit : after_commit::retry_transaction;
    }

private:
    clock::duration limit_;
    clock::time_point started_;
    bool csot_;
    std::exception_ptr last_;
};

}  // namespace

void client_session::with_transaction(const std::function<void(client_session&)>& callback,
                                      std::optional<transaction_options> options) {
    const auto timeout = with_transaction_timeout(live(state_));
    transaction_retries retries(*state_, timeout);
    const transaction_deadline deadline(*state_, timeout, retries.started());
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(retries.backoff(attempt));
        start_transaction(options.value_or(transaction_options{}));
        std::exception_ptr failure;
        try {
            callback(*this);
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            if (open_transaction(transaction())) abort_transaction();
            retries.callback_failed(failure);
            continue;
        }
        if (!open_transaction(transaction())) return;  // the callback committed or aborted itself
        for (;;) {
            try {
                commit_transaction();
                return;
            } catch (...) {
                failure = std::current_exception();
            }
            if (retries.commit_failed(failure) == transaction_retries::after_commit::retry_transaction) break;
        }
    }
}

asio::awaitable<void> client_session::with_transaction_impl(client_session* self, async_callback callback,
                                                             std::optional<transaction_options> options) {
    const auto state = self->state_;
    auto& core = *live(state).core;
    const auto timeout = with_transaction_timeout(*state);
    transaction_retries retries(*state, timeout);
    const transaction_deadline deadline(*state, timeout, retries.started());
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0) {
            asio::steady_timer timer(core.strand());
            timer.expires_after(retries.backoff(attempt));
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        self->start_transaction(options.value_or(transaction_options{}));
        std::exception_ptr failure;
        try {
            co_await callback(*self);
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            if (open_transaction(self->transaction())) co_await core.send_abort(state);
            retries.callback_failed(failure);
            continue;
        }
        if (!open_transaction(self->transaction())) co_return;
        for (;;) {
            failure = nullptr;
            try {
                co_await core.commit_transaction(state);
            } catch (...) {
                failure = std::current_exception();
            }
            if (!failure) co_return;
            if (retries.commit_failed(failure) == transaction_retries::after_commit::retry_transaction) break;
        }
    }
}

}  // namespace trellis
