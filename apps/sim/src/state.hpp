// trellis-sim internals. Every object here lives on the deployment's single
// io thread: no locks, and every wait is an Asio timer or signal.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "compressors.hpp"
#include "wire/compression.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis::sim {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------- waiting

/// Wakes every coroutine waiting on it. A waiter re-checks its condition after
/// each wake-up, so spurious wake-ups are harmless.
class signal {
public:
    explicit signal(asio::io_context& io) : io_(io) {}

    /// Waits until notify() or the deadline; true when notified.
    asio::awaitable<bool> wait_until(steady::time_point deadline);
    void notify();

private:
    asio::io_context& io_;
    std::list<asio::steady_timer*> waiters_;
};

// ---------------------------------------------------------------- replication

struct optime {
    bson::timestamp ts;
    std::int64_t term = -1;
    friend auto operator<=>(const optime&, const optime&) = default;
};

/// A retryable write already executed: its reply is returned again on a retry.
struct retry_key {
    std::string lsid;  // the raw bytes of lsid.id
    std::int64_t txn_number = 0;
    friend auto operator<=>(const retry_key&, const retry_key&) = default;
};

/// Records the reply of `key`'s write. As mongod, a session keeps the records of its newest
/// txnNumber only (a retry of an older one is refused: TransactionTooOld), so the records do
/// not grow with every write.
inline void remember_retry(std::map<retry_key, bson::document>& records, const retry_key& key, bson::document reply) {
    records.erase(records.lower_bound(retry_key{key.lsid, std::numeric_limits<std::int64_t>::min()}),
                  records.lower_bound(key));
    records[key] = std::move(reply);
}

/// A logical session a member has seen (its local session cache, as $listLocalSessions shows).
struct local_session {
    bson::document lsid;  // {id: UUID}
    std::string user;     // "db.name", or empty without authentication
    std::chrono::system_clock::time_point last_use;
};

struct oplog_record {
    optime op;
    steady::time_point written;                 // when the primary wrote it (lag is measured from here)
    std::chrono::system_clock::time_point wall;  // lastWriteDate
    std::vector<bson::document> entries;        // engine oplog entries of one write
    std::optional<std::pair<retry_key, bson::document>> retry;  // replicated retryable-write record
};

// ---------------------------------------------------------------- transactions

/// A multi-document transaction of one session (autocommit: false). Its commands run against a
/// private copy of the member's catalog taken when it started (snapshot isolation); its writes'
/// oplog entries are applied to the member's catalog and replicated when it commits, and dropped
/// when it aborts. As mongod, a write to a document another open transaction wrote, or that was
/// written since this one's snapshot, is a WriteConflict that aborts it; a write outside any
/// transaction to a document an open one wrote waits until that one ends.
struct transaction {
    std::int64_t txn_number = 0;
    enum class state_kind { in_progress, committed, aborted } state = state_kind::in_progress;
    catalog data;
    std::vector<bson::document> entries;
    std::uint64_t snapshot = 0;     // the member's write_seq when it started
    std::set<std::string> written;  // document keys (doc_key) of its writes while in progress
    steady::time_point started;     // for transactionLifetimeLimitSeconds
};

/// A document's key for write conflicts: "db.coll", a NUL, and its _id value's bytes.
std::string doc_key(std::string_view ns, const bson::element& id);
/// The documents an oplog entry writes (none for commands such as create or drop).
std::vector<std::string> written_keys(const std::vector<bson::document>& entries);

// ---------------------------------------------------------------- fail points

struct fail_point {
    enum class mode_kind { off, always, times, skip } mode = mode_kind::off;
    std::int64_t count = 0;  // remaining times, or remaining skips
    std::set<std::string> commands;
    std::optional<int> error_code;
    bool close_connection = false;
    std::optional<std::chrono::milliseconds> block;
    std::optional<bson::document> write_concern_error;
    std::optional<bson::document> error_labels;  // an array
    std::optional<std::string> app_name;
    bool corrupt_compressed_reply = false;  // trellis-sim's own: a compressed reply is cut short
    // onPrimaryTransactionalWrite (mongod's): fires on each statement of a retryable write; the
    // connection closes (closeConnection, true unless set false) after the statement commits, or
    // before, uncommitted, with failBeforeCommitExceptionCode.
    std::optional<int> fail_before_commit_code;
};

// ---------------------------------------------------------------- cursors

struct change_stream_cursor;  // change_stream.hpp

struct cursor {
    std::int64_t id = 0;
    std::string ns;
    std::deque<bson::document> remaining;
    steady::time_point last_used;
    bool no_timeout = false;
    // A tailable cursor on a capped collection: it stays open when drained, and a getMore returns
    // what was inserted since (awaitData: waiting up to its maxTimeMS, 1 s by default, for some).
    struct tail_state {
        std::string db, coll;
        find_options query;       // filter and projection of the find
        std::uint64_t position = 0;  // the collection's inserted_total() when last read
        bool await_data = false;
    };
    std::optional<tail_state> tail;
    std::shared_ptr<change_stream_cursor> stream;  // a $changeStream's cursor (getMore reads the oplog)
};

// ---------------------------------------------------------------- operations in progress

/// A command being executed (currentOp lists them, killOp interrupts them).
struct running_op {
    std::int64_t opid = 0;
    std::int64_t connection_id = 0;
    std::string client;    // peer host:port
    std::string app_name;
    std::string db;
    bson::document command;
    steady::time_point started;
    bool killed = false;   // killOp: a waiting command ends with 11601 Interrupted
};

class member;
class session;

enum class role { standalone, primary, secondary, arbiter, master, slave, mongos };
const char* role_name(role r);

// ---------------------------------------------------------------- members

class member {
public:
    member(deployment::impl& d, int index, role r, member_config mc);

    deployment::impl& dep;
    int index;
    role current;
    member_config config;
    std::string host;
    std::uint16_t port = 0;
    bool up = true;
    std::optional<partition_mode> partitioned;
    std::chrono::milliseconds latency{0}, jitter{0};
    bool removed = false;

    // Data.
    catalog data;
    std::vector<oplog_record> log;
    std::map<retry_key, bson::document> retries;
    std::map<std::string, transaction> transactions;  // by the raw bytes of lsid.id: the latest one
    // Write conflicts: a counter of recorded writes, and (while a transaction is in progress) the
    // last one that wrote each document, by doc_key.
    std::uint64_t write_seq = 0;
    std::map<std::string, std::uint64_t> doc_writes;
    // A router's own transaction state (mongos): the txnNumber each session (raw lsid.id) started
    // through it; a transaction's later commands on another router fail as on a real one.
    std::map<std::string, std::int64_t> router_transactions;
    // Snapshot reads (readConcern level "snapshot"): copies of the data at the cluster times
    // snapshot reads asked for, oldest first, the latest few only (commands.cpp). Empty while
    // nobody reads at a snapshot; cleared when the member rolls back.
    struct snapshot_version {
        bson::timestamp at;
        std::shared_ptr<catalog> data;
    };
    std::deque<snapshot_version> snapshots;
    steady::time_point stepdown_until{};

    // Identity and SDAM.
    bson::oid process_id = bson::oid::generate();
    bson::oid service_id = bson::oid::generate();  // behind the load balancer; new on restart
    std::int64_t lb_connections = 0;  // connections the load balancer has sent here
    std::int64_t tv_counter = 0;
    signal changed;  // topologyVersion changed (awaitable hello)

    // Service state.
    std::optional<tcp::acceptor> acceptor;
    std::set<std::shared_ptr<session>> sessions;
    std::map<std::int64_t, cursor> cursors;
    std::map<std::string, local_session> local_sessions;  // by the raw bytes of lsid.id
    fail_point fail;
    fail_point primary_write;  // onPrimaryTransactionalWrite
    int fsync_lock_count = 0;
    signal fsync_unlocked;
    std::int64_t next_connection_id = 1;
    std::int64_t connections_created = 0;
    std::map<std::string, std::int64_t> opcounters;
    std::map<std::string, std::int64_t> opcounters_repl;  // what replication applied here
    std::int64_t bytes_in = 0, bytes_out = 0, requests = 0;
    // OP_MSG document sequences received, by identifier ("documents": n), and their documents.
    std::map<std::string, std::int64_t> sequences_in, sequence_documents_in;
    std::map<std::int64_t, running_op> ops;  // by opid
    std::int64_t next_opid = 1;
    std::chrono::system_clock::time_point started_wall = std::chrono::system_clock::now();
    steady::time_point started = steady::now();
    std::mt19937_64 rng;

    bool data_bearing() const { return current != role::arbiter && current != role::mongos; }
    bool voting() const { return current != role::mongos && !removed; }
    bool reachable() const { return up && !partitioned && !removed; }
    bool electable() const { return config.priority > 0 && !config.hidden && current != role::arbiter; }
    optime applied() const { return log.empty() ? optime{} : log.back().op; }
    std::string address() const { return host + ":" + std::to_string(port); }

    /// Counts a state change visible in hello, and wakes awaitable hellos.
    void bump_topology_version();
    void close_all_sessions();
};

// ---------------------------------------------------------------- the deployment

struct deployment::impl {
    explicit impl(sim_config c);

    sim_config cfg;
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    std::optional<asio::ssl::context> tls;
    /// Compressors the members accept and answer with (hello's "compression"), and the same
    /// ones with their byte counts (serverStatus), in cfg.compressors' order.
    std::shared_ptr<wire::compressor_registry> compressors;
    std::vector<std::shared_ptr<const counted_compressor>> counted;
    std::vector<std::unique_ptr<member>> members;  // routers first when sharded
    std::optional<tcp::acceptor> control;
    std::set<tcp::socket*> control_sockets;  // open control-port connections, closed by stop()
    std::string control_addr;
    // The load balancer in front of the routers (cfg.load_balancer).
    std::optional<tcp::acceptor> lb;
    std::string lb_addr;
    std::size_t lb_next = 0;  // round robin: the router index to try first
    std::mt19937_64 rng{std::random_device{}()};
    bool running = false;

    // Replica set / master-slave state.
    std::int64_t term = 0;
    int set_version = 1;
    member* primary = nullptr;  // primary of the set, master, or the standalone shard
    bson::oid election_id;
    std::chrono::system_clock::time_point election_date{};  // when the current primary was elected
    std::string election_reason;
    bson::oid replica_set_id = bson::oid::generate();
    std::vector<std::string> startup_warnings;  // getLog startupWarnings (mongod's JSON log lines)
    std::optional<asio::steady_timer> election_timer;
    signal data_changed;   // oplog grew, a member applied, topology changed
    // Encoded replies' buffers, shared by every connection: a connection that had not sent a
    // large reply before would otherwise take fresh pages for its first 16 MB find batch (a
    // client's pool hands out a different connection now and then).
    std::vector<std::vector<std::uint8_t>> spare_reply_buffers;
    /// The smallest spare that holds `need` bytes, else the largest (it grows from there).
    std::vector<std::uint8_t> take_reply_buffer(std::size_t need) {
        auto& spares = spare_reply_buffers;
        if (spares.empty()) return {};
        const auto by_capacity = [](const auto& x, const auto& y) { return x.capacity() < y.capacity(); };
        auto pick = spares.end();
        for (auto it = spares.begin(); it != spares.end(); ++it)
            if (it->capacity() >= need && (pick == spares.end() || by_capacity(*it, *pick))) pick = it;
        if (pick == spares.end()) pick = std::max_element(spares.begin(), spares.end(), by_capacity);
        std::vector<std::uint8_t> b = std::move(*pick);
        spares.erase(pick);
        b.clear();
        return b;
    }
    /// Keeps the four largest.
    void return_reply_buffer(std::vector<std::uint8_t> b) {
        auto& spares = spare_reply_buffers;
        if (spares.size() < 4) return spares.push_back(std::move(b));
        auto smallest = std::min_element(spares.begin(), spares.end(),
                                         [](const auto& x, const auto& y) { return x.capacity() < y.capacity(); });
        if (smallest->capacity() < b.capacity()) *smallest = std::move(b);
    }
    std::uint32_t ts_increment = 0;
    std::uint32_t ts_seconds = 0;

    // Users (auth library glue lives in commands.cpp).
    struct auth_state;
    std::shared_ptr<auth_state> auth;

    // --- topology
    /// With users configured, commands need authentication (as mongod --auth).
    bool auth_enabled() const { return !cfg.users.empty(); }
    bool is_replica_set() const { return cfg.topology == topology_kind::replica_set || cfg.shard_is_replica_set; }
    std::vector<member*> data_members();
    member* find_member(const std::string& address);
    std::size_t voters() const;
    std::size_t majority() const { return voters() / 2 + 1; }
    optime next_optime();
    /// The latest optime handed out (the cluster time); {0, 0} before the first write.
    bson::timestamp latest_written() const { return {ts_seconds, ts_increment}; }

    void start_load_balancer(std::uint16_t port);
    /// The router the load balancer sends the next connection to: the next one up, or none.
    member* next_router();
    void start_listening(member& m);
    void stop_listening(member& m);
    void schedule_election(std::chrono::milliseconds delay);
    void run_election();
    void become_secondary(member& m);
    /// The member secondaries of m copy from (the primary or master), if reachable.
    member* sync_source(const member& m);
    asio::awaitable<void> replicate(member& m);

    // --- writes
    /// Records one write on the primary (applied there already) and wakes secondaries.
    optime record_write(member& primary, std::vector<bson::document> entries,
                        std::optional<std::pair<retry_key, bson::document>> retry = std::nullopt);
    /// Waits for a write concern; nullopt when satisfied, else a writeConcernError document.
    /// killOp of `running` ends the wait with 11601 Interrupted.
    asio::awaitable<std::optional<bson::document>> await_write_concern(member& m, optime op, bson::document_view wc,
                                                                       const running_op* running = nullptr);

    // --- control
    bson::document control_command(bson::document_view cmd);
    bson::document status_document() const;
    asio::awaitable<void> serve_control(tcp::socket socket);

    // --- plumbing
    /// Waits for `d`, or less when the deployment stops: every sleep in the simulator goes
    /// through here so that nothing holds the io thread after stop().
    asio::awaitable<void> pause(steady::duration d);
    /// Runs on the io thread: closes every listener and connection, wakes every waiter.
    void begin_stop();

    template <class F>
    auto on_io(F&& f) -> decltype(f());
};

std::string now_log_prefix();
void log_line(const std::string& line);
/// A log line as mongod writes it (JSON): {"t": {"$date"}, "s", "c", "id", "ctx", "msg"}.
std::string json_log_line(char severity, const std::string& msg);
/// The latest lines log_line() wrote, as JSON log lines (getLog global); at most 1024.
std::vector<std::string> recent_log_lines();

}  // namespace trellis::sim
