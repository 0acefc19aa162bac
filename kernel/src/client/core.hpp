// The client's implementation: topology ownership (SDAM), monitors, pools, server selection
// and operations. Everything here runs on one strand (core::strand()); the only state read
// from other threads is the topology snapshot (under a mutex) and a few settings (under the
// same mutex).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "connection/connection.hpp"
#include "connection/establisher.hpp"
#include "ops/bulk_write.hpp"
#include "ops/find_and_modify.hpp"
#include "ops/find.hpp"
#include "pool/connection_pool.hpp"
#include "pool/strand.hpp"
#include "trellis/client.hpp"
#include "trellis/client_bulk_write.hpp"
#include "trellis/dns.hpp"
#include "trellis/sdam.hpp"
#include "trellis/session.hpp"
#include "trellis/sdk/cursor_manager.hpp"
#include "trellis/sdk/topology_strategy.hpp"
#include "wire/frame_decoder.hpp"
#include "wire/compression.hpp"

namespace trellis::detail {

namespace asio = boost::asio;
/// The client's strand, type-erased (pool/strand.hpp: make_erased_strand).
using strand_type = asio::any_io_executor;

/// One server of the topology: its pool, its monitor's state and its load.
struct server_state {
    server_state(strand_type s, std::string addr) : address(std::move(addr)), wake(s), rtt_wake(s) {}

    std::string address;
    std::shared_ptr<const conn::establish_settings> settings;  // for the pool and the monitor
    std::unique_ptr<pool::connection_pool> pool;
    std::int64_t pool_generation = 0;
    std::atomic<int> in_flight{0};
    // Load balanced: checked-out connections by purpose (the spec's connection tracking).
    std::atomic<int> cursor_connections{0};     // pinned to cursors
    std::atomic<int> transaction_connections{0};  // pinned to transactions (a cursor of one shares it)
    std::atomic<int> operation_connections{0};  // held by an operation's attempt
    std::string last_establish_error;  // the pool's last failed establishment, for errors
    std::optional<bson::oid> last_establish_service;  // load balanced: its serviceId, if the hello succeeded
    // From the last successful hello (the seeds' properties answer from them).
    std::int32_t max_bson_size = 16 * 1024 * 1024;
    std::int32_t max_message_size = 48'000'000;
    std::int32_t max_write_batch_size = 100'000;

    // Monitor.
    sdam::rtt_estimator rtt;
    std::unique_ptr<conn::connection> monitor;
    std::unique_ptr<conn::connection> rtt_connection;
    std::chrono::nanoseconds last_hello_duration{0};
    asio::steady_timer wake;
    asio::steady_timer rtt_wake;
    bool rtt_running = false;
    // Cancel the monitors' connection establishments when the server goes (a connect may
    // otherwise hold the monitor, and through it the client, for up to connect_timeout).
    asio::cancellation_signal cancel_monitor, cancel_rtt;
    std::chrono::steady_clock::time_point last_check{};
    std::optional<std::chrono::steady_clock::time_point> last_heartbeat;  // last successful one
    bool check_requested = false;
    bool stopped = false;
    bool streaming = false;
};

/// Load-balanced mode: a connection a cursor keeps for its getMores and killCursors, or a
/// transaction for all its commands (the load balancers spec's pinning), checked in when the last
/// holder lets go of it (a transaction's after a network error at once, cursor or not).
struct pinned_connection {
    pinned_connection(pool::checked_out_connection c, std::weak_ptr<server_state> s, bool transaction = false)
        : connection(std::move(c)), server(std::move(s)), for_transaction(transaction) {
        if (auto st = server.lock()) ++count(*st);
    }
    ~pinned_connection() {
        if (auto st = server.lock()) --count(*st);
    }
    pinned_connection(const pinned_connection&) = delete;
    pinned_connection& operator=(const pinned_connection&) = delete;
    pool::checked_out_connection connection;
    std::weak_ptr<server_state> server;
    bool for_transaction = false;
    bool broken = false;  // a network error on it: no killCursors, just checked in

private:
    std::atomic<int>& count(server_state& s) const { return for_transaction ? s.transaction_connections : s.cursor_connections; }
};
using pinned_ptr = std::shared_ptr<pinned_connection>;

/// Server sessions (lsid; txnNumber for retryable writes), reused LIFO.
struct server_session {
    bson::uuid id;
    std::int64_t txn_number = 0;
    std::chrono::steady_clock::time_point last_used{};
    bool dirty = false;  // a network error during one of its operations: never pooled again
};

/// An explicit session (client_session's state): its server session, taken from the pool when
/// started, and its causal consistency times. Read and written from the strand (operations) and
/// from the application's threads (accessors, end_session), hence the mutex.
struct session_state {
    std::shared_ptr<client_core> core;
    session_options options;
    bool causal = true;
    /// with_transaction's limit on retries (the convenient API spec's 120 s); tests shorten it
    /// before using the session.
    std::chrono::steady_clock::duration with_transaction_limit = std::chrono::seconds(120);
    mutable std::mutex mutex;  // guards everything below
    server_session server;
    bool ended = false;
    std::optional<bson::document> cluster_time;  // {clusterTime, signature}
    std::optional<bson::timestamp> operation_time;
    std::optional<bson::timestamp> snapshot_time;  // a snapshot session's atClusterTime, once known
    // Transactions (the transactions spec): the state, the options resolved when it started.
    transaction_state txn = transaction_state::none;
    transaction_options txn_options;
    bool txn_empty = false;       // committed or aborted before any operation: nothing to send
    bool commit_sent = false;     // a commitTransaction went out: the next one is a retry (w: majority)
    std::optional<std::string> pinned;            // sharded: the mongos of the transaction (load balanced: the balancer)
    pinned_ptr pinned_connection;                 // load balanced: the connection of the transaction
    std::optional<bson::document> recovery_token;  // sharded: the last one a reply carried
    // CSOT: while with_transaction runs with a timeout, its deadline; the operations of its
    // callback in this session and its commits take what remains of it.
    std::optional<std::chrono::steady_clock::time_point> txn_deadline;
    std::chrono::milliseconds txn_timeout{0};
};
using session_ptr = std::shared_ptr<session_state>;

/// Unpins a session (the transactions spec's "when to unpin"), under its mutex. The connection
/// returned goes back to the pool when the caller lets go of it: after the lock, since a check-in
/// emits a CMAP event to the application's handler.
[[nodiscard]] inline pinned_ptr unpin(session_state& s) {
    s.pinned.reset();
    return std::move(s.pinned_connection);
}

/// A command's reply document, read in place in the frame it arrived in (kept alive with it):
/// a cursor batch of up to 16 MB is not copied on its way to the cursor. Or an owned document.
class reply_document {
public:
    reply_document() : view_(owned_.view()) {}
    reply_document(bson::document d) noexcept : owned_(std::move(d)), view_(owned_.view()) {}
    reply_document(std::shared_ptr<const void> frame, bson::document_view in_frame) noexcept
        : frame_(std::move(frame)), view_(in_frame) {}
    // Moving a document keeps its bytes where they are, so view_ stays valid.
    reply_document(reply_document&&) noexcept = default;
    reply_document& operator=(reply_document&&) noexcept = default;

    bson::document_view view() const noexcept { return view_; }
    bson::element operator[](std::string_view key) const { return view_[key]; }
    std::optional<bson::element> find(std::string_view key) const noexcept { return view_.find(key); }
    /// An owned document (a copy when the bytes are the frame's).
    bson::document to_document() && { return frame_ ? bson::document(view_) : std::move(owned_); }

private:
    bson::document owned_;
    std::shared_ptr<const void> frame_;
    bson::document_view view_;
};

/// A find's cursor.
/// A cursor's current batch, read in place from the reply it came in: each document is
/// copied out once, when it is taken.
class batch_queue {
public:
    /// `docs` (firstBatch or nextBatch) lies inside `reply`, which the queue keeps.
    void assign(reply_document reply, bson::array_view docs) {
        at_ = docs.begin();
        reply_ = std::move(reply);
    }
    bool empty() const noexcept { return at_ == bson::document_view::iterator(); }
    bson::document take() {
        bson::document d(at_->get_document());
        ++at_;
        if (empty()) reply_ = reply_document();
        return d;
    }
    /// The next document in place: valid until the next assign (the reply is kept till then).
    bson::document_view take_view() {
        const bson::document_view d = at_->get_document();
        ++at_;
        return d;
    }

private:
    reply_document reply_;
    bson::document_view::iterator at_;
};

struct cursor_state {
    std::shared_ptr<client_core> core;
    std::string db, collection, ns, address;
    std::int64_t id = 0;
    batch_queue batch;
    std::optional<std::int32_t> batch_size;
    std::int64_t limit = 0;  // 0: none
    std::int64_t returned = 0;
    std::int64_t server_connection_id = 0;
    bool closed = false;
    // A getMore is on its way: a close waits for it (close_requested), since the getMore still
    // uses the session and the server's cursor.
    bool getmore_in_flight = false;
    bool close_requested = false;
    std::optional<server_session> session;  // the implicit session of find, for getMore
    bool session_borrowed = false;          // a change stream's: the stream, not the cursor, releases it
    session_ptr explicit_session;           // or the explicit one it was started in
    pinned_ptr pinned;                      // load balanced: the connection its getMores use
    int max_wire_version = 0;                   // of the server the cursor lives on
    std::optional<comment_type> comment;        // find's, repeated on getMore (4.4+)
    std::optional<std::chrono::milliseconds> max_await_time;  // getMore's maxTimeMS (find: tailable_await only)
    // timeoutMS (CSOT) of the command that made it (zero: none) and, in cursor_lifetime mode, the
    // deadline its getMores share; in iteration mode each getMore gets the whole timeout.
    std::chrono::milliseconds timeout{0};
    std::optional<std::chrono::steady_clock::time_point> deadline;
    bool tailable = false;  // an empty getMore ends next() (nullopt) but not the cursor
    // A change stream's: the last reply's postBatchResumeToken, the aggregate's operationTime.
    std::optional<bson::document> post_batch_resume_token;
    std::optional<bson::timestamp> operation_time;

    /// The next document of the batch in hand, when there is one and the limit allows it:
    /// what next() and async_next() return without going through the client's strand. A
    /// cursor is used by one caller at a time, and the strand touches its state only while
    /// that caller waits for a getMore, so no lock is needed.
    bool buffered() const noexcept { return !closed && !batch.empty() && (limit == 0 || returned < limit); }
    std::optional<bson::document> take_buffered() {
        if (!buffered()) return std::nullopt;
        ++returned;
        return batch.take();
    }
};

class own_runtime;
struct change_stream_state;

class client_core : public std::enable_shared_from_this<client_core> {
public:
    /// `owner`: what runs `executor` (a client's own io_context and thread), kept alive as long
    /// as this core, so that the strand and timers of a core that outlives its client (held by a
    /// database, collection or cursor handle) never refer to a destroyed io_context.
    client_core(asio::any_io_executor executor, client_options options, client_settings settings,
                std::shared_ptr<void> owner = nullptr);
    ~client_core();

    void open();   // starts monitoring (again, after close); blocks until done when called off the strand
    void close();  // stops monitors and pools; blocks until done when called off the strand
    /// close() without waiting (for a client on an executor that may not be running).
    void close_async();
    /// The client is going away: close, and let no pending operation open it again.
    void shutdown();
    void shutdown_async();
    strand_type strand() const { return strand_; }
    /// The client's own io_context and thread, when it was given no executor (blocking calls
    /// run it themselves); null otherwise. Kept alive by owner_.
    detail::own_runtime* own_runtime() const noexcept { return own_runtime_; }
    void set_own_runtime(detail::own_runtime* rt) noexcept { own_runtime_ = rt; }
    /// True on a thread that runs the client's executor: its strand, a pool's or a monitor's
    /// strand, an event handler. A blocking call there would wait for work this very thread
    /// must do.
    bool on_client_thread() const;
    /// Throws configuration_error (naming `call`) on a client thread, and connection_failure once
    /// the client is gone: the checks every blocking call and every handle makes first.
    void check_blocking(std::string_view call) const;
    void check_usable() const;
    bool finished() const noexcept { return final_.load(); }

    // ---- snapshots and settings (any thread)
    std::shared_ptr<const sdk::topology_description> snapshot() const;
    const client_options& options() const noexcept { return options_; }
    read_preference current_read_preference() const;
    void set_read_preference(read_preference rp);
    write_concern current_write_concern() const;
    void set_write_concern(write_concern wc);
    bool in_request() const noexcept { return in_request_.load(); }
    void set_in_request(bool on) noexcept { in_request_ = on; }
    void set_cursor_manager(const std::string& name);
    /// Blocks until every known server has been checked once (or the selection timeout).
    std::shared_ptr<const sdk::topology_description> wait_for_discovery();

    // ---- operations (coroutines on the strand)
    struct reply_on {
        reply_document reply;
        std::string address;
        std::int64_t server_connection_id = 0;
        std::int32_t max_bson_size = 0, max_message_size = 0;
        int min_wire_version = 0, max_wire_version = 0;
        std::optional<server_session> session;  // kept for the caller when keep_session
        session_ptr explicit_session;           // the operation's explicit session, for its cursor
        pinned_ptr pinned;                      // load balanced: a cursor's connection (id != 0)
        std::chrono::milliseconds timeout{0};   // the operation's timeoutMS (zero: none)
        std::optional<std::chrono::steady_clock::time_point> deadline;  // and its deadline
    };
    enum class op_kind { read, write, command };
    /// One batch of a batched write: OP_MSG document sequences and what they allow.
    struct write_batch {
        std::vector<std::pair<std::string, std::vector<bson::document>>> sequences;  // identifier, documents
        bool retryable = true;  // no multi-document statement
        int min_wire_version = 0;
        std::string min_wire_reason;
    };
    struct operation {
        std::string db;
        bson::document command;
        op_kind kind = op_kind::command;
        std::optional<read_preference> read_pref;  // reads
        bool retryable = false;                    // retry once on a newly selected server
        bool retryable_write = false;              // add lsid + txnNumber (when supported)
        std::optional<std::string> pinned;         // this server only (getMore, killCursors)
        pinned_ptr pinned_connection;              // load balanced: this connection only (a cursor's)
        bool secondary_ok = false;                 // set for reads tried in turn (master-slave)
        bool unacknowledged = false;               // w: 0: no implicit session (the sessions spec)
        bool no_session = false;                   // endSessions: sent without an lsid of its own
        /// Top-level arrays of the command sent as OP_MSG document sequences (bulk writes:
        /// "documents", "updates", "deletes"; bulkWrite: "ops" and "nsInfo") rather than inside
        /// the command document.
        std::vector<std::string> sequence_fields;
        /// The session to use (a cursor's, for getMore); unset: an implicit one, released at
        /// the end unless keep_session (find: the cursor keeps it while it lives on the server).
        std::optional<server_session> session;
        bool keep_session = false;
        /// An explicit session instead (its lsid, txnNumber, cluster and operation times).
        session_ptr explicit_session;
        /// commitTransaction or abortTransaction: the session's lsid, txnNumber and autocommit:
        /// false whatever its transaction state (an ended session too: end_session's abort).
        bool transaction_control = false;
        /// abortTransaction: its own timeoutMS even inside with_transaction, whose time may be up
        /// (the CSOT spec refreshes it so that the transaction is cleaned up).
        bool fresh_timeout = false;
        /// A user's command (run_command, run_cursor_command): sent as given; in a transaction its
        /// own readConcern is refused rather than dropped.
        bool user_command = false;
        /// A command that takes readConcern afterClusterTime in a causally consistent session
        /// (the read-write-concern spec's list; never a user's run_command).
        bool causal = false;
        /// Refused before sending (errc::invalid_argument, saying why) by a server below this
        /// wire version: what older servers would silently misapply (an unacknowledged hint).
        int min_wire_version = 0;
        std::string min_wire_reason;
        /// rawData, appended at each attempt when the server has wire version 27 (8.2) or later.
        std::optional<bool> raw_data;
        /// A batched write: `command` is the command without its batch, and the batch (document
        /// sequences) is cut at the first attempt by the limits of the connection that sends it
        /// (its hello); a retry sends the same batch.
        std::function<write_batch(const ops::connection_limits&)> batch_for;
        /// timeoutMS (CSOT) of this operation: unset: the client's; zero: no limit.
        std::optional<std::chrono::milliseconds> timeout;
        /// The deadline, when the caller computed it once for several commands (a bulk write's
        /// batches, a cursor's getMores in cursor_lifetime mode): wins over `timeout`.
        std::optional<std::chrono::steady_clock::time_point> deadline;
        /// With a deadline: no maxTimeMS derived from it (getMore, an iteration-mode cursor's
        /// command), and the command's own maxTimeMS kept (getMore's is maxAwaitTimeMS).
        bool no_max_time = false;
        /// A hint with w: 0 needs a server that knows it (4.2, wire 8, for update; 4.4, wire 9,
        /// for delete and findAndModify): the CRUD spec's client-side error.
        void require_for_unacknowledged_hint(bool hint, const write_concern& wc, int wire, std::string_view what) {
            if (!hint || !ops::unacknowledged(wc)) return;
            min_wire_version = wire;
            min_wire_reason = std::string(what) + ": a hint with an unacknowledged write concern needs MongoDB " +
                              (wire >= 9 ? "4.4" : "4.2") + " or later";
        }
    };
    asio::awaitable<reply_on> execute(operation op);

    /// An operation's settings from its handle: read and write concern (the client's where the
    /// handle sets none); the read preference stays unset for execute() to take the client's.
    struct op_settings {
        std::optional<read_preference> read_pref;
        read_concern rc;
        write_concern wc;
        std::optional<std::chrono::milliseconds> timeout;  // the handle's timeoutMS (unset: the client's)
    };
    /// timeoutMS in force: `own`, else the client's; zero: none.
    std::chrono::milliseconds effective_timeout(std::optional<std::chrono::milliseconds> own) const {
        return own ? *own : options_.timeout.value_or(std::chrono::milliseconds(0));
    }
    /// The deadline of an operation starting now with timeoutMS `own` (else the client's); none
    /// without a limit.
    std::optional<std::chrono::steady_clock::time_point> deadline_for(std::optional<std::chrono::milliseconds> own) const {
        const auto t = effective_timeout(own);
        if (t.count() <= 0) return std::nullopt;
        return std::chrono::steady_clock::now() + t;
    }
    /// The timeoutMS of a session's commit, abort and with_transaction: its defaultTimeoutMS,
    /// else the client's (unset: none; zero: no limit).
    std::optional<std::chrono::milliseconds> session_timeout(const session_state& s) const {
        return s.options.default_timeout ? s.options.default_timeout : options_.timeout;
    }
    op_settings settings_for(const handle_options& h) const;
    /// A write: to the primary, retryable when single_statement (and acknowledged, retryWrites).
    operation write_operation(std::string db, bson::document command, bool single_statement, const write_concern& wc) const;
    /// A read, routed by `rp` (unset: the client's read preference), retried when retryReads is
    /// on, with readConcern when `rc` has a level.
    operation read_operation(std::string db, bson::document command, std::optional<read_preference> rp,
                             const read_concern& rc) const;
    asio::awaitable<bson::document> run_command(std::string db, bson::document command, std::optional<read_preference> rp,
                                                session_ptr session = {},
                                                std::optional<std::chrono::milliseconds> timeout = std::nullopt);
    /// A user's cursor command (database::run_cursor_command): the cursor over its reply.
    asio::awaitable<cursor> run_cursor_command(std::string db, bson::document command, run_cursor_command_options o,
                                               session_ptr session = {});
    /// A command for the server at `address` only (kill_cursors).
    asio::awaitable<bson::document> run_on(std::string address, std::string db, bson::document command);

    // CRUD and collection management (crud.cpp), each through an ops/ value type.
    asio::awaitable<insert_one_result> insert_one(std::string db, std::string coll, bson::document doc,
                                                  insert_one_options options, write_concern wc, session_ptr session = {});
    asio::awaitable<insert_many_result> insert_many(std::string db, std::string coll, std::vector<bson::document> docs,
                                                    insert_many_options options, write_concern wc, session_ptr session = {});
    asio::awaitable<bulk_write_result> bulk_write(std::string db, std::string coll, std::vector<write_model> models,
                                                  bulk_write_options options, write_concern wc, session_ptr session = {});
    /// client::bulk_write: the bulkWrite command (client_bulk_write.cpp).
    asio::awaitable<client_bulk_write_result> client_bulk_write(std::vector<namespace_write_model> models,
                                                                client_bulk_write_options options, session_ptr session = {});
    /// Sends the op's batches; a bulk_write_error carries the models' indexes and the partial result.
    asio::awaitable<bulk_write_result> run_bulk(std::string db, const ops::bulk_write_op& op, session_ptr session = {});
    // Selection requirements with the client's settings (read preference: rp, or the client's).
    sdk::operation_requirements requirements_for(sdk::operation_requirements::kind what,
                                                 std::optional<read_preference> rp = std::nullopt) const;
    asio::awaitable<update_result> update(std::string db, std::string coll, bson::document filter, update_spec update,
                                          update_options options, bool multi, bool replace, write_concern wc,
                                          session_ptr session = {});
    asio::awaitable<delete_result> remove(std::string db, std::string coll, bson::document filter, delete_options options,
                                          bool multi, write_concern wc, session_ptr session = {});
    asio::awaitable<std::optional<bson::document>> find_and_modify(std::string db, ops::find_and_modify_op op,
                                                                  session_ptr session = {});
    /// The find command of `op` (validated), keeping its session for the cursor.
    operation find_operation(const std::string& db, const ops::find_op& op, const read_concern& rc, session_ptr session) const;
    asio::awaitable<cursor> find(std::string db, ops::find_op op, read_concern rc, session_ptr session = {});
    asio::awaitable<std::optional<bson::document>> find_one(std::string db, ops::find_op op, read_concern rc,
                                                           session_ptr session = {});
    asio::awaitable<std::optional<bson::document>> cursor_next(std::shared_ptr<cursor_state> c);
    /// Brings the cursor to a document in hand (a getMore when the batch is spent): false at the
    /// end, or, for a tailable cursor, when nothing new came.
    asio::awaitable<bool> cursor_fill(std::shared_ptr<cursor_state> c);
    /// A cursor over a cursor command's reply (find, aggregate, listIndexes, listCollections).
    cursor cursor_from(reply_on r, std::string db, std::string coll, std::optional<std::int32_t> batch_size, std::int64_t limit);
    asio::awaitable<std::int64_t> count_documents(std::string db, std::string coll, bson::document filter, count_options options,
                                                  read_concern rc, session_ptr session = {});
    asio::awaitable<std::int64_t> estimated_count(std::string db, std::string coll, estimated_count_options options,
                                                  read_concern rc, session_ptr session = {});
    asio::awaitable<std::int64_t> count(std::string db, std::string coll, bson::document filter, count_options options,
                                        read_concern rc, session_ptr session = {});
    asio::awaitable<bson::array> distinct(std::string db, std::string coll, std::string key, bson::document filter,
                                          distinct_options options, read_concern rc, session_ptr session = {});
    /// `coll` empty: a database aggregate.
    /// `implicit_session`: a change stream's, kept across resumes (the change streams spec).
    asio::awaitable<cursor> aggregate(std::string db, std::string coll, bson::array pipeline, aggregate_options options,
                                      op_settings s, session_ptr session = {},
                                      std::optional<server_session> implicit_session = std::nullopt);
    asio::awaitable<std::vector<std::string>> create_indexes(std::string db, std::string coll, std::vector<index_model> indexes,
                                                             write_concern wc, session_ptr session = {},
                                                             create_indexes_options options = {});
    asio::awaitable<cursor> list_indexes(std::string db, std::string coll, session_ptr session = {},
                                         list_indexes_options options = {});
    asio::awaitable<void> drop_index(std::string db, std::string coll, std::string index, write_concern wc,
                                     session_ptr session = {}, drop_index_options options = {});
    asio::awaitable<cursor> list_collections(std::string db, list_collections_options options, session_ptr session = {});
    /// listDatabases' reply: a retryable read on the primary.
    asio::awaitable<bson::document> list_databases(bson::document filter, bool name_only, session_ptr session = {});
    /// A command that changes the deployment (drop, dropIndexes, renameCollection): to the primary.
    asio::awaitable<bson::document> write_command(std::string db, bson::document command, write_concern wc,
                                                  session_ptr session = {},
                                                  std::optional<std::chrono::milliseconds> timeout = std::nullopt);
    /// A cursor the application let go of: the cursor manager decides when to kill it.
    void cursor_closed(cursor_state& c);
    void kill_cursors(const std::string& address, const std::string& ns, std::vector<std::int64_t> ids);
    /// Load balanced: killCursors on the cursor's own connection, which then goes back.
    void kill_pinned(pinned_ptr pinned, const std::string& address, const std::string& ns, std::int64_t id);
    void send_kill_cursors(const std::string& address, const std::string& ns, std::vector<std::int64_t> ids,
                           pinned_ptr pinned);
    bool load_balanced() const noexcept { return initial_->type == sdk::topology_type::load_balanced; }
    asio::awaitable<void> flush_cursors_loop();
    /// The server writes would go to, with its facts from its last hello: no round trip when
    /// one is known (waits for selection only when none is yet).
    asio::awaitable<reply_on> server_in_use();
    /// A ping to the server writes would go to (alive()).
    asio::awaitable<reply_on> ping_in_use();
    /// endSessions for every pooled server session, to one available data-bearing server;
    /// errors are ignored (servers expire sessions themselves).
    asio::awaitable<void> end_sessions();

    // Explicit sessions (session.cpp). Any thread.
    session_ptr start_session(const session_options& o);
    /// Returns an ended session's server session to the pool (a dirty one is dropped), after
    /// aborting its transaction in progress (in the background, errors ignored).
    void end_session(const session_ptr& s);
    // Transactions (session.cpp). start_transaction: any thread; the others on the strand.
    void start_transaction(session_state& s, const transaction_options& o);
    asio::awaitable<void> commit_transaction(session_ptr s);
    asio::awaitable<void> abort_transaction(session_ptr s);
    /// abortTransaction (retried once), errors ignored; the session ends up aborted and unpinned.
    asio::awaitable<void> send_abort(session_ptr s);
    /// The public client object this core serves (moves follow it); null once it is gone.
    void set_face(client* c) noexcept { face_ = c; }
    client* face() const noexcept { return face_.load(); }

    /// Wraps a result as a cursor (cursor's constructor is private to it and its friend).
    static cursor make_cursor(std::shared_ptr<cursor_state> s) { return cursor(std::move(s)); }
    /// The state of a cursor, which lets go of it (a change stream drives it itself).
    static std::shared_ptr<cursor_state> release_cursor(cursor&& c) { return std::move(c.state_); }

private:
    friend struct change_stream_state;  // keeps an implicit session across resumes (release_session)
    // topology (topology.cpp)
    void start_topology();
    void stop_topology();
    sdk::topology_strategy& strategy_for(const sdk::topology_description& t) const;
    /// "topology_strategy \"replica_set\": <call>", for guard reports.
    std::string strategy_call(const sdk::topology_strategy& s, std::string_view call) const;
    /// Runs a call into the cursor manager through the guard.
    template <class F>
    bool call_cursor_manager(std::string_view call, F&& f);
    void on_server_description(const sdk::server_description& d);
    void apply_description(const sdk::server_description& d);
    void drain_deferred();
    void flush_refreshed();
    void publish(std::shared_ptr<const sdk::topology_description> previous, std::shared_ptr<const sdk::topology_description> next,
                 const sdk::server_description* processed);
    void reconcile_servers();
    std::shared_ptr<server_state> add_server(const std::string& address);
    void remove_server(const std::string& address);
    void request_check(server_state& s);
    void request_check_all();
    void wake_selectors();
    /// An operation's or a pool's failure on `s` (its address is filled in here): SDAM decides.
    void handle_application_error(server_state& s, sdam::application_error e);
    void mark_unknown(server_state& s, const std::string& why, bool interrupt);
    struct selected {
        std::vector<std::shared_ptr<server_state>> servers;  // one, or in_turn: all in order
        sdk::selection_policy policy = sdk::selection_policy::latency_window;
    };
    /// `limit`: the operation's deadline (timeoutMS), when sooner than serverSelectionTimeoutMS.
    asio::awaitable<selected> select(const sdk::operation_requirements& req, const std::vector<std::string>& deprioritized,
                                     std::optional<std::chrono::steady_clock::time_point> limit = std::nullopt);

    // mongodb+srv:// (srv.cpp): the seed list from DNS before the first server, then SRV polling.
    /// Strand. Starts the SRV and TXT lookups when the seed list is still to be resolved (or
    /// its last resolution failed).
    void start_seedlist();
    asio::awaitable<void> resolve_seedlist(std::uint64_t generation);
    /// The resolved options become the client's seeds, TXT options and initial topology.
    void apply_seedlist(client_options resolved);
    void seedlist_failed(std::error_code ec, const std::string& message);
    /// Asks the configured DNS servers for the A records of the hostnames among `hosts` not
    /// looked up yet (only when the servers were given explicitly).
    asio::awaitable<void> lookup_targets(std::vector<std::string> hosts);
    void start_srv_polling();
    asio::awaitable<void> srv_poll_loop(std::uint64_t generation, std::shared_ptr<asio::steady_timer> timer);
    /// "mongodb+srv://host: " with the DNS servers asked, for messages.
    std::string seedlist_source() const;
    /// The seed list as resolved (options_.hosts for mongodb://), for messages.
    const std::vector<server_address>& seeds() const;
    std::shared_ptr<const sdk::topology_description> make_initial(const client_options& o) const;
    std::function<std::unique_ptr<sdk::auth_conversation>()> make_authenticator(const client_options& o) const;

    // monitors (monitor.cpp)
    asio::awaitable<void> monitor_loop(std::shared_ptr<server_state> s);
    asio::awaitable<bool> check(std::shared_ptr<server_state> s, bool retrying);
    asio::awaitable<void> stream(std::shared_ptr<server_state> s);
    asio::awaitable<void> rtt_loop(std::shared_ptr<server_state> s);
    asio::awaitable<std::unique_ptr<conn::connection>> monitor_connection(std::shared_ptr<server_state> s,
                                                                          asio::cancellation_signal& cancel,
                                                                          std::string& failure, std::error_code& code,
                                                                          std::optional<bson::document>* refused_hello = nullptr);
    void emit(const sdam_event& e) const;

    // operations (operations.cpp)
    /// What one attempt on one server came to: a reply, or a failure (the typed exception, its
    /// kind for branching, and whether the operation may be retried elsewhere).
    struct outcome {
        std::optional<reply_on> reply;
        std::exception_ptr failure;
        std::string address;  // the server of the attempt
        errc kind = errc::operation_failure;
        bool retry_allowed = false;
        /// The server answered (a command or write error), as opposed to a network or pool failure.
        bool is_server_answer() const noexcept {
            return kind == errc::operation_failure || kind == errc::not_primary || kind == errc::write_error;
        }
        std::string message() const;
    };
    /// What carries over from one attempt to the next: the session and whether the retryable
    /// write's transaction number was taken (a retry reuses it).
    struct attempt_state {
        std::optional<server_session> session;
        bool txn_assigned = false;
        session_state* explicit_session = nullptr;  // its cluster time goes out, replies advance it
        bool in_transaction = false;                 // the explicit session's transaction
        bool snapshot = false;                       // a snapshot session's command (5.0+ only)
        /// Load balanced: the transaction's first command keeps the connection it checks out.
        bool pin_connection = false;
        pinned_ptr transaction_connection;  // that connection, once checked out
        std::optional<write_batch> batch;            // a batched write's, cut at the first attempt
        // CSOT: the operation's deadline and timeoutMS (for messages); none without timeoutMS.
        std::optional<std::chrono::steady_clock::time_point> deadline;
        std::chrono::milliseconds timeout{0};
        /// The blocking call this operation runs for, if any: its commands' I/O may be parked
        /// there, for the caller's thread to do (runtime.hpp).
        conn::io_parking* parking = nullptr;
        bool out_of_time = false;  // the attempts stopped because the deadline passed
        bool csot = false;         // timeoutMS set at some level (even zero): no deprecated wtimeout
    };
    asio::awaitable<outcome> attempt(server_state& s, const operation& op, const sdk::operation_requirements& req,
                                     attempt_state& st);
    /// After an operation of a transaction: its state (in progress once the first command went
    /// out), the mongos (load balanced: the connection) it is pinned to, the recovery token, and
    /// TransientTransactionError on a network or selection failure (which unpins, as that label
    /// from the server does).
    void note_transaction_outcome(session_state& es, outcome& last, bool first, attempt_state& st);
    /// Selection and the attempts (a retry on a newly selected server; each server in turn for
    /// in_turn strategies); the last outcome.
    asio::awaitable<outcome> run_attempts(operation& op, const sdk::operation_requirements& req, attempt_state& st);
    /// The client backpressure spec's delay before overload retry number `retry` (1, 2, ...).
    std::chrono::milliseconds overload_backoff(int retry, std::optional<double> base_ms);
    server_session acquire_session();
    /// Any thread (sessions_mutex_); the server's session timeout when known.
    server_session acquire_session(std::optional<int> timeout_minutes);
    void release_session(server_session s);
    /// $clusterTime to send: the greater of the client's and the explicit session's (none: nullopt).
    std::optional<bson::document> cluster_time_to_send(const session_state* s) const;
    /// A reply's $clusterTime and operationTime: the client's and the session's cluster times and
    /// the session's operation time advance; a snapshot session's first atClusterTime is kept.
    void observe_times(bson::document_view reply, session_state* s);

    std::shared_ptr<void> owner_;  // first: destroyed after the strand and the timers below
    detail::own_runtime* own_runtime_ = nullptr;  // owner_'s, when it is a client's own runtime
    asio::any_io_executor inner_;  // the executor the strand runs on
    strand_type strand_;
    asio::steady_timer flush_timer_{strand_};  // cursor managers' flush()
    std::uint64_t flush_generation_ = 0;       // strand
    client_options options_;
    client_settings settings_;
    std::shared_ptr<plugin_registry> registry_;
    std::map<std::string, std::shared_ptr<sdk::topology_strategy>> strategies_;  // by name
    std::shared_ptr<sdk::cursor_manager> cursor_manager_;  // mutex_
    std::string cursor_manager_name_;                     // mutex_
    std::shared_ptr<wire::compressor_registry> compressors_;
    // One spare buffer for large replies, kept for the next (wire::buffer_cache).
    std::shared_ptr<wire::buffer_cache> receive_buffers_ =
        std::make_shared<wire::buffer_cache>(options_.max_kept_reply_buffer);
    handshake::hello_options hello_;  // every connection's initial hello, computed once
    std::shared_ptr<const sdk::topology_description> initial_;  // what (re)opening starts from
    std::shared_ptr<sdk::transport> transport_;
    std::function<std::unique_ptr<sdk::auth_conversation>()> authenticate_;
    bson::oid topology_id_;

    mutable std::mutex mutex_;  // guards the four below
    std::shared_ptr<const sdk::topology_description> current_;
    read_preference read_preference_;
    write_concern write_concern_;
    std::map<std::string, std::shared_ptr<server_state>> servers_;  // strand only, but nodes() reads addresses

    std::vector<std::shared_ptr<asio::steady_timer>> selectors_;  // strand
    std::mutex sessions_mutex_;                                   // guards sessions_, session_random_
    std::vector<server_session> sessions_;
    std::mt19937_64 session_random_{std::random_device{}()};
    std::mt19937_64 backoff_random_{std::random_device{}()};  // on the strand
    std::optional<bson::document> cluster_time_;  // the highest $clusterTime seen (strand)
    std::atomic<client*> face_{nullptr};
    std::atomic<bool> in_request_{false};
    bool open_ = false;  // strand
    /// Failed checks of servers that were Unknown already, by address (the latest each): applied
    /// in slices of bounded time so that thousands of them never hold the strand (strand).
    std::map<std::string, sdk::server_description> deferred_;
    bool draining_ = false;  // strand
    // Checks that changed no observable field (only round trip time, lastWriteDate, last update
    // time), waiting for flush_refreshed(): one copy of the topology per refresh interval for
    // all of them, not one per heartbeat (each copy is O(servers)).
    std::map<std::string, sdk::server_description> refreshed_;
    bool refresh_armed_ = false;  // strand
    std::atomic<bool> final_{false};
    std::mt19937_64 random_{std::random_device{}()};

    // mongodb+srv:// state (strand, apart from resolver_, which is thread-safe).
    enum class seedlist_state { none, pending, resolving, resolved, failed };
    seedlist_state seedlist_ = seedlist_state::none;
    std::unique_ptr<dns::resolver> resolver_;
    bool dns_explicit_ = false;            // servers given by option or TRELLIS_DNS_SERVER
    std::uint64_t seedlist_generation_ = 0;  // a stop abandons the resolution under way
    std::exception_ptr seedlist_failure_;
    client_options srv_options_;           // options_ with the seed list and TXT options applied
    std::map<std::string, std::string> target_addresses_;  // SRV target -> IPv4 (dns_explicit_)
    std::uint64_t srv_poll_generation_ = 0;
    std::shared_ptr<asio::steady_timer> srv_timer_;
};

/// An explicit session given to a client-level operation (`where`): this client's and not ended,
/// else errc::invalid_argument.
session_ptr client_session_for(const std::shared_ptr<client_core>& core, const session_ptr& s, const char* where);

/// The exception for an error code and text: the matching class of the error family.
std::exception_ptr make_failure(errc code, const std::string& text);

/// `e` with an error label added (a network or selection error becomes an operation_failure of
/// the same kind carrying it).
std::exception_ptr with_error_label(std::exception_ptr e, const std::string& label);
bool has_error_label(const std::exception_ptr& e, std::string_view label);

/// `command` with readConcern.afterClusterTime set to `t` (its level, if any, kept).
bson::document with_after_cluster_time(bson::document_view command, bson::timestamp t);
/// `command` with readConcern {level: "snapshot"} (and atClusterTime `at`, once known) in place
/// of its own: every command of a snapshot session (the snapshot reads spec).
bson::document with_snapshot_read_concern(bson::document_view command, std::optional<bson::timestamp> at);

}  // namespace trellis::detail
