// Explicit sessions (the driver sessions and causal consistency specs).
//
//   auto s = client.start_session();                 // causally consistent by default
//   auto events = client["app"]["events"].with_session(s);
//   events.insert_one(doc);
//   auto n = events.count_documents({});             // readConcern {afterClusterTime: <the insert's time>}
//   s.end_session();                                 // or let it go out of scope
//
// Starting a session is local (no I/O): it takes a server session (lsid) from the client's pool.
// A handle bound to a session (collection::with_session, database::with_session) runs each of its
// operations, sync or async, and the getMores of the cursors they return, with that lsid.
// Ending the session returns the server session to the pool (the client sends endSessions for
// pooled sessions when it closes), unless a network error made it dirty: then it is discarded.
//
// A session is for one sequence of operations at a time (not for concurrent operations). It may
// be used only with handles of the client that started it, and not after it ended: both are
// errors (errc::invalid_argument). Unacknowledged writes (w: 0) are refused in an explicit
// session, so causal consistency never silently misses one.
//
// Transactions (the transactions and convenient transactions API specs), on a replica set or
// through mongos:
//
//   s.start_transaction();                           // local: the first operation starts it
//   events.insert_one(doc);                          // events bound to s (with_session)
//   s.commit_transaction();                          // or s.abort_transaction()
//
//   s.with_transaction([&](client_session&) { events.insert_one(doc); });  // commits, retries
//
// Every operation of a handle bound to the session between start and commit/abort belongs to the
// transaction: it carries txnNumber and autocommit: false, is sent to the primary (a read
// preference other than primary is refused), is never retried as a retryable read or write, and
// through mongos goes to the router the transaction's first command went to. Load balanced, the
// transaction keeps the connection its first command checked out (its cursors share it) until
// it commits, aborts, or fails with a transient or network error.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/bson/types.hpp"
#include "trellis/options.hpp"

namespace trellis {

class client;

namespace detail {
struct session_state;
}

/// The transactions spec's TransactionOptions. Unset: the session's default_transaction_options,
/// then the client's setting.
struct transaction_options {
    /// Sent with the transaction's first command (unset and no default: none, the server's).
    std::optional<trellis::read_concern> read_concern;
    /// Sent with commitTransaction and abortTransaction; an unacknowledged one (w: 0) is refused.
    std::optional<trellis::write_concern> write_concern;
    /// Reads in the transaction: only primary is allowed (others are refused when a read runs).
    std::optional<trellis::read_preference> read_preference;
    /// commitTransaction's maxTimeMS.
    std::optional<std::chrono::milliseconds> max_commit_time;
};

/// Where a session's transaction stands (the spec's states).
enum class transaction_state {
    none,         ///< no transaction started on this session yet
    starting,     ///< start_transaction() called, no operation sent yet
    in_progress,  ///< at least one operation sent in it
    committed,    ///< commit_transaction() returned or failed (it may be called again)
    aborted,      ///< abort_transaction() called
};

struct session_options {
    /// Reads see the session's earlier reads and writes (readConcern afterClusterTime).
    /// Unset: true (false for snapshot sessions).
    std::optional<bool> causal_consistency;
    /// Snapshot reads (the snapshot reads spec, MongoDB 5.0+): find, aggregate and distinct in
    /// the session read one snapshot, that of its first read (or snapshot_time). Every command of
    /// the session carries readConcern {level: "snapshot"} (with atClusterTime once known), so
    /// the server refuses writes and commands that cannot read at a snapshot. Not with
    /// causal_consistency: true, nor with transactions (both errc::invalid_argument).
    bool snapshot = false;
    /// The snapshot to read at (snapshot sessions only, else errc::invalid_argument): e.g. another
    /// session's snapshot_time(). Unset: the time of the session's first read.
    std::optional<bson::timestamp> snapshot_time;
    /// What start_transaction() and with_transaction() use where their options are unset.
    transaction_options default_transaction_options;
    /// The CSOT spec's defaultTimeoutMS: the timeoutMS of commit_transaction, abort_transaction,
    /// with_transaction and of the abort end_session sends. Unset: the client's timeoutMS; zero:
    /// no limit; negative: errc::invalid_argument from start_session. Other operations in the
    /// session keep their own (handle's, client's) timeoutMS.
    std::optional<std::chrono::milliseconds> default_timeout;
};

class client_session {
public:
    client_session(client_session&&) noexcept = default;
    client_session& operator=(client_session&& other) noexcept;
    /// Ends the session (see end_session()).
    ~client_session();

    /// The session id sent as lsid: {id: <UUID>}.
    bson::document id() const;
    const session_options& options() const noexcept;
    bool causal_consistency() const noexcept;
    /// The highest $clusterTime this session has seen ({clusterTime: Timestamp, signature: {...}});
    /// nullopt before the first reply from a deployment that keeps cluster times.
    std::optional<bson::document> cluster_time() const;
    /// The operationTime of the session's last acknowledged operation (nullopt before one).
    std::optional<bson::timestamp> operation_time() const;
    /// A snapshot session's snapshot (the atClusterTime its reads send): snapshot_time given when
    /// it started, else the time the server gave its first read; nullopt until then.
    std::optional<bson::timestamp> snapshot_time() const;
    /// Advances the session's cluster time (e.g. to one from another session); an older one is
    /// ignored. errc::invalid_argument unless `cluster_time` holds a timestamp clusterTime.
    void advance_cluster_time(bson::document_view cluster_time);
    /// Advances the operation time (an older one is ignored); the next causally consistent
    /// operation waits for it.
    void advance_operation_time(bson::timestamp operation_time);

    /// Returns the server session to the client's pool (a dirty one is discarded). Idempotent.
    void end_session() noexcept;
    bool has_ended() const noexcept;
    /// A network error happened during one of the session's operations: its server session will
    /// not be reused.
    bool dirty() const noexcept;

    /// The client that started this session; errc::invalid_argument once that client is gone.
    trellis::client& client() const;

    // ---- transactions
    /// Starts a transaction (local: its first operation carries startTransaction). Refused with
    /// errc::invalid_argument when one is already starting or in progress, when the session has
    /// ended, in a snapshot session, or for an unacknowledged write concern.
    void start_transaction(transaction_options options = {});
    /// Commits: nothing is sent when no operation ran in the transaction. Bounded by
    /// options().default_timeout, else the client's timeoutMS (one deadline for its retries). Retried once (with
    /// w: majority) on a retryable error; a failure whose outcome is unknown has the label
    /// UnknownTransactionCommitResult, and may be retried by calling commit_transaction() again
    /// (w: majority then too). errc::invalid_argument when no transaction was started ("No
    /// transaction started") or after abort_transaction().
    void commit_transaction();
    /// Aborts: the server's errors are ignored (it aborts an abandoned transaction itself).
    /// errc::invalid_argument when no transaction was started, after commit_transaction(), or
    /// when called twice.
    void abort_transaction();
    using transaction_signature = void(std::exception_ptr);
    template <boost::asio::completion_token_for<transaction_signature> T = boost::asio::deferred_t>
    auto async_commit_transaction(T&& token = {}) {
        return boost::asio::co_spawn(executor(), commit_impl(state_), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<transaction_signature> T = boost::asio::deferred_t>
    auto async_abort_transaction(T&& token = {}) {
        return boost::asio::co_spawn(executor(), abort_impl(state_), std::forward<T>(token));
    }
    /// The convenient API: starts a transaction, runs `callback`, commits. The whole transaction
    /// is run again (after a short backoff) when the callback or the commit fails with the label
    /// TransientTransactionError, the commit alone when it fails with
    /// UnknownTransactionCommitResult (not MaxTimeMSExpired), for up to 120 seconds; then it
    /// throws transaction_timeout (trellis/transaction_timeout.hpp), which carries the last error
    /// (its code and labels, and last_error()). Any other error of the callback aborts the
    /// transaction and is thrown as it is.
    /// The callback may run several times: it must be safe to repeat, and must let the errors of
    /// its operations out (a swallowed error leaves a transaction the server aborted).
    /// When the callback committed or aborted itself, nothing more is done.
    /// With a timeoutMS (options().default_timeout, else the client's) it bounds the whole call
    /// instead of 120 s: the callback's operations in this session and the commits get what
    /// remains of it (a timeout of such an operation's own is refused, errc::invalid_argument),
    /// and past it trellis::operation_timeout is thrown. Operations that do not use the session
    /// are not bounded by it.
    void with_transaction(const std::function<void(client_session&)>& callback, std::optional<transaction_options> options = {});
    /// The same with an asynchronous callback (it runs on the client's strand: it must not block,
    /// and co_awaits the async forms of its operations). The session must outlive the operation.
    using async_callback = std::function<boost::asio::awaitable<void>(client_session&)>;
    template <boost::asio::completion_token_for<transaction_signature> T = boost::asio::deferred_t>
    auto async_with_transaction(async_callback callback, std::optional<transaction_options> options = {}, T&& token = {}) {
        return boost::asio::co_spawn(executor(), with_transaction_impl(this, std::move(callback), std::move(options)),
                                     std::forward<T>(token));
    }
    transaction_state transaction() const noexcept;
    /// Sharded: the mongos ("host:port") this session's transaction is pinned to, if any.
    std::optional<std::string> pinned_server() const;

    /// Not for applications: the implementation, shared with handles bound to the session.
    const std::shared_ptr<detail::session_state>& state() const noexcept { return state_; }

private:
    friend class trellis::client;
    explicit client_session(std::shared_ptr<detail::session_state> s) : state_(std::move(s)) {}
    boost::asio::any_io_executor executor() const;
    static boost::asio::awaitable<void> commit_impl(std::shared_ptr<detail::session_state> s);
    static boost::asio::awaitable<void> abort_impl(std::shared_ptr<detail::session_state> s);
    static boost::asio::awaitable<void> with_transaction_impl(client_session* self, async_callback callback,
                                                              std::optional<transaction_options> options);
    std::shared_ptr<detail::session_state> state_;
};

}  // namespace trellis
