// Command handlers of a simulated member. Replies are shaped as mongod's.
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sys/utsname.h>
#include <unistd.h>

#include "auth/crypto.hpp"
#include "auth_glue.hpp"
#include "change_stream.hpp"
#include "trellis/bson/json.hpp"
#include "session.hpp"

namespace trellis::sim {

using asio::use_awaitable;

namespace {

// ---------------------------------------------------------------- replies

bson::document error_reply(int code, std::string_view code_name, std::string_view msg,
                           bson::document_view labels = bson::document_view(), bson::document_view extra = bson::document_view()) {
    bson::builder b;
    b.append("ok", 0.0).append("errmsg", msg).append("code", code).append("codeName", code_name);
    if (!labels.empty()) b.append("errorLabels", bson::array_view(labels));
    b.concat(extra);
    return b.extract();
}

bson::document error_reply(const command_error& e) { return error_reply(e.code(), e.code_name(), e.message(), {}, e.extra()); }

const char* code_name_of(int code) {
    switch (code) {
        case 1: return "InternalError";
        case 2: return "BadValue";
        case 6: return "HostUnreachable";
        case 7: return "HostNotFound";
        case 8: return "UnknownError";
        case 9: return "FailedToParse";
        case 11: return "UserNotFound";
        case 13: return "Unauthorized";
        case 18: return "AuthenticationFailed";
        case 26: return "NamespaceNotFound";
        case 43: return "CursorNotFound";
        case 50: return "MaxTimeMSExpired";
        case 59: return "CommandNotFound";
        case 20: return "IllegalOperation";
        case 24: return "LockTimeout";
        case 63: return "StaleShardVersion";
        case 72: return "InvalidOptions";
        case 123: return "NotAReplicaSet";
        case 239: return "SnapshotTooOld";
        case 64: return "WriteConcernFailed";
        case 89: return "NetworkTimeout";
        case 91: return "ShutdownInProgress";
        case 112: return "WriteConflict";
        case 133: return "FailedToSatisfyReadPreference";
        case 150: return "StaleEpoch";
        case 189: return "PrimarySteppedDown";
        case 225: return "TransactionTooOld";
        case 251: return "NoSuchTransaction";
        case 256: return "TransactionCommitted";
        case 322: return "APIVersionError";
        case 323: return "APIStrictError";
        case 324: return "APIDeprecationError";
        case 462: return "IngressRequestRateLimitExceeded";
        case 262: return "ExceededTimeLimit";
        case 9001: return "SocketException";
        case 10107: return "NotWritablePrimary";
        case 11000: return "DuplicateKey";
        case 11600: return "InterruptedAtShutdown";
        case 11601: return "Interrupted";
        case 11602: return "InterruptedDueToReplStateChange";
        case 13388: return "StaleConfig";
        case 13435: return "NotPrimaryNoSecondaryOk";
        case 13436: return "NotPrimaryOrSecondary";
        default: return "";
    }
}

// Codes after which a retryable write may be retried (retryable writes spec).
bool retryable_code(int code) {
    static constexpr int codes[] = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 134};
    return std::find(std::begin(codes), std::end(codes), code) != std::end(codes);
}

bson::document retryable_label() {
    bson::builder b(bson::builder::root::array);
    b.append("RetryableWriteError");
    return b.extract();
}

// ---------------------------------------------------------------- command flags

// What the dispatcher checks before a handler runs (see the command table at the end).
enum command_flag : unsigned {
    needs_auth = 1u << 0,    // refused (13 Unauthorized) before authentication when users exist
    writes = 1u << 1,        // changes data: only a primary, master or standalone (else 10107)
    on_secondary = 1u << 2,  // may run on a secondary or slave (without it: 10107 NotWritablePrimary)
    on_arbiter = 1u << 3,    // may run on an arbiter (without it: 13436 NotPrimaryOrSecondary)
    reads = 1u << 4,         // a read: a secondary answers only with secondaryOk (else 13435)
    retryable = 1u << 5,     // a retryable write: one lsid + txnNumber is applied once
};

std::string version_for_wire(int wire) {
    if (wire >= 27) return "8.2.0";
    if (wire >= 25) return "8.0.0";
    if (wire >= 22) return "7.1.0";
    if (wire >= 21) return "7.0.0";
    if (wire >= 17) return "6.0.0";
    if (wire >= 13) return "5.0.0";
    if (wire >= 9) return "4.4.0";
    if (wire >= 8) return "4.2.0";
    if (wire >= 7) return "4.0.0";
    if (wire >= 6) return "3.6.0";
    return "3.4.0";
}

std::string collection_arg(const request& req) {
    const bson::element first = *req.body.begin();
    if (first.type() != bson::type::string)
        throw command_error(73, "InvalidNamespace", "collection name has invalid type " + std::string(bson::type_name(first.type())));
    return std::string(first.get_string());
}

bson::document doc_or_empty(bson::document_view body, std::string_view key) {
    if (auto e = body.find(key); e && e->type() == bson::type::document) return bson::document(e->get_document());
    return bson::document();
}

std::int64_t int_or(bson::document_view body, std::string_view key, std::int64_t fallback) {
    if (auto e = body.find(key); e && e->is_number()) return e->as_int64();
    return fallback;
}

bool bool_or(bson::document_view body, std::string_view key, bool fallback) {
    if (auto e = body.find(key)) {
        if (e->type() == bson::type::boolean) return e->get_bool();
        if (e->is_number()) return e->as_double() != 0;
    }
    return fallback;
}

std::optional<retry_key> retry_key_of(const request& req) {
    auto lsid = req.body.find("lsid");
    auto txn = req.body.find("txnNumber");
    if (!lsid || !txn || lsid->type() != bson::type::document || !txn->is_number()) return std::nullopt;
    auto id = lsid->get_document().find("id");
    if (!id || id->type() != bson::type::binary) return std::nullopt;
    const auto bytes = id->get_binary().bytes;
    return retry_key{std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), txn->as_int64()};
}

// ---------------------------------------------------------------- cursors

// The one place that sizes a cursor batch (find, aggregate, list*, getMore): up to batch_size
// documents (0: no limit) and no more than maxBsonObjectSize bytes, but always at least one document.
struct batch_extent {
    std::size_t count = 0;
    std::size_t reply_bytes = 0;  // enough for the whole reply: one allocation, not a doubling series
};
batch_extent next_batch(const member& m, const std::deque<bson::document>& rest, std::int64_t batch_size,
                        std::size_t ns_size) {
    batch_extent e;
    std::size_t bytes = 0;
    for (const auto& d : rest) {
        if (batch_size > 0 && e.count >= static_cast<std::size_t>(batch_size)) break;
        if (e.count > 0 && bytes + d.size() > static_cast<std::size_t>(m.dep.cfg.max_bson_object_size)) break;
        bytes += d.size();
        ++e.count;
    }
    e.reply_bytes = bytes + e.count * 9 + ns_size + 128;  // each element's type and index key; envelope
    return e;
}

void fill_batch(bson::builder& b, const char* batch_name, std::deque<bson::document>& rest, std::size_t count) {
    b.open_array(batch_name);
    for (; count > 0; --count) {
        b.append(rest.front().view());
        rest.pop_front();
    }
    b.close_array();
}

// A tailable cursor (`tail`) stays open when drained.
bson::document cursor_reply(member& m, const std::string& ns, std::vector<bson::document> docs, std::int64_t batch_size,
                            bool single_batch, bool no_timeout, std::optional<cursor::tail_state> tail = std::nullopt) {
    std::deque<bson::document> rest(std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
    const auto extent = next_batch(m, rest, batch_size, ns.size());
    bson::builder b(bson::builder::root::document, extent.reply_bytes);
    b.open_document("cursor");
    fill_batch(b, "firstBatch", rest, extent.count);
    std::int64_t id = 0;
    if ((!rest.empty() || tail) && !single_batch) {
        do id = static_cast<std::int64_t>(m.rng() & 0x3FFFFFFFFFFFFFFFULL);
        while (id == 0 || m.cursors.count(id));
        m.cursors[id] = cursor{id, ns, std::move(rest), steady::now(), no_timeout, std::move(tail), nullptr};
    }
    b.append("id", id).append("ns", ns).close_document().append("ok", 1.0);
    return b.extract();
}

void sweep_cursors(member& m) {
    const auto now = steady::now();
    for (auto it = m.cursors.begin(); it != m.cursors.end();) {
        if (!it->second.no_timeout && now - it->second.last_used > m.dep.cfg.cursor_timeout) it = m.cursors.erase(it);
        else ++it;
    }
}

// A command's or a statement's collation, in force while the guard lives. Never held across a
// co_await: other commands run on the same thread meanwhile.
struct collation_guard {
    std::optional<collation_scope> scope;
    explicit collation_guard(bson::document_view body) {
        if (auto e = body.find("collation")) scope.emplace(collation::parse(*e));
    }
};

// bypassDocumentValidation: true skips the collection's validator while the guard lives (never
// across a co_await, as collation_guard).
struct bypass_guard {
    std::optional<validation_bypass> scope;
    explicit bypass_guard(bson::document_view body) {
        if (bool_or(body, "bypassDocumentValidation", false)) scope.emplace();
    }
};

// ---------------------------------------------------------------- the handler context

struct context {
    session& s;
    request& req;
    member& self;    // the member the client talks to
    member& target;  // where the data lives (the shard's primary behind a router)
    const std::string& db;
    running_op* op;  // this command in currentOp
    // A retryable write, statement by statement (onPrimaryTransactionalWrite may cut it short):
    std::map<std::size_t, bson::document> done;      // results of statements an earlier attempt committed
    std::map<std::size_t, bson::document> executed;  // results of this attempt's statements (done's too)
    bool close_connection = false;                   // cut short: no reply, the connection closes
    transaction* txn = nullptr;                      // a command of this transaction (target.data is its copy)
    // Outside a transaction, while one is open: a write to a document an open transaction wrote
    // stops (write_blocked) before it is recorded, and run_command restores the data and waits.
    bool may_block = false;
};

// What finish_write throws for a write that must wait for open transactions (their documents).
struct write_blocked {
    std::vector<std::string> keys;
};

const char* const write_conflict_message =
    "WriteConflict error: this operation conflicted with another operation. Please retry your operation or "
    "multi-document transaction.";

// A transaction's write (its oplog entries): WriteConflict, as mongod, when another open
// transaction wrote one of its documents, or a write after its snapshot did.
void check_write_conflicts(const member& m, const transaction& t, const oplog& log) {
    for (const auto& k : written_keys(log)) {
        bool conflict = false;
        if (auto w = m.doc_writes.find(k); w != m.doc_writes.end() && w->second > t.snapshot) conflict = true;
        for (const auto& [id, other] : m.transactions)
            if (&other != &t && other.state == transaction::state_kind::in_progress && other.written.count(k)) conflict = true;
        if (conflict) {
            bson::builder labels;
            labels.open_array("errorLabels").append("TransientTransactionError").close_array();
            throw command_error(112, "WriteConflict", write_conflict_message, labels.extract());
        }
    }
}

// The documents of `log` an open transaction wrote (empty: none).
std::vector<std::string> held_by_transactions(const member& m, const oplog& log) {
    std::vector<std::string> held;
    for (const auto& k : written_keys(log))
        for (const auto& [id, t] : m.transactions)
            if (t.state == transaction::state_kind::in_progress && t.written.count(k)) {
                held.push_back(k);
                break;
            }
    return held;
}

// Counts an operation where the data lives and, as mongos's own opcounters do, on the router
// that received it.
void count_op(context& c, const char* kind) {
    ++c.target.opcounters[kind];
    if (&c.self != &c.target && c.self.current == role::mongos) ++c.self.opcounters[kind];
}

// A retry record of a write cut short: {$statements: [{i: <statement index>, r: <its result>}]}.
// (A complete write's record is its reply, which never starts with "$statements".)
bson::document partial_record(const std::map<std::size_t, bson::document>& executed) {
    bson::builder b;
    b.open_array("$statements");
    for (const auto& [i, r] : executed)
        b.open_document().append("i", static_cast<std::int64_t>(i)).append("r", r.view()).close_document();
    b.close_array();
    return b.extract();
}

std::optional<std::map<std::size_t, bson::document>> partial_statements(bson::document_view record) {
    auto st = record.find("$statements");
    if (!st || st->type() != bson::type::array) return std::nullopt;
    std::map<std::size_t, bson::document> out;
    for (const auto& e : st->get_array())
        out[static_cast<std::size_t>(e.get_document()["i"].as_int64())] = bson::document(e.get_document()["r"].get_document());
    return out;
}

// What onPrimaryTransactionalWrite does to the next statement of a retryable write.
enum class statement_gate { pass, commit_then_close, close_uncommitted };

statement_gate primary_write_gate(context& c) {
    fail_point& fp = c.target.primary_write;
    if (fp.mode == fail_point::mode_kind::off || !retry_key_of(c.req)) return statement_gate::pass;
    switch (fp.mode) {
        case fail_point::mode_kind::times:
            if (fp.count <= 0) return statement_gate::pass;
            if (--fp.count == 0) fp.mode = fail_point::mode_kind::off;
            break;
        case fail_point::mode_kind::skip:
            if (fp.count > 0) {
                --fp.count;
                return statement_gate::pass;
            }
            break;
        default: break;
    }
    if (fp.fail_before_commit_code) {
        if (fp.close_connection) return statement_gate::close_uncommitted;
        const int code = *fp.fail_before_commit_code;
        throw command_error(code, code_name_of(code),
                            "Failing write for the retryable write due to failpoint. The write must not be reflected.");
    }
    return fp.close_connection ? statement_gate::commit_then_close : statement_gate::pass;
}

// Runs one statement of a retryable write (index i) through the fail point, or replays the result
// an earlier attempt committed. `run` returns the statement's result; `replay` takes a committed one.
// False when the write stops here (the connection closes).
template <class Run, class Replay>
bool run_statement(context& c, std::size_t i, Run&& run, Replay&& replay) {
    if (auto it = c.done.find(i); it != c.done.end()) {
        replay(it->second.view());
        c.executed[i] = it->second;
        return true;
    }
    const statement_gate gate = primary_write_gate(c);
    if (gate == statement_gate::close_uncommitted) {
        c.close_connection = true;
        return false;
    }
    c.executed[i] = run();
    if (gate == statement_gate::commit_then_close) {
        c.close_connection = true;
        return false;
    }
    return true;
}

// Sleeps (a blocking fail point) until the time passes, the deployment stops or killOp.
asio::awaitable<void> pause_op(deployment::impl& d, const running_op& op, std::chrono::milliseconds time) {
    const auto deadline = steady::now() + time;
    while (d.running && !op.killed && steady::now() < deadline) co_await d.data_changed.wait_until(deadline);
}

void refuse_view(context& c, const std::string& coll) {
    if (c.target.data.find_view(c.db, coll))
        throw command_error(166, "CommandNotSupportedOnView", "Namespace " + c.db + "." + coll + " is a view, not a collection");
}

collection& write_collection(context& c, const std::string& coll, oplog& log) {
    refuse_view(c, coll);
    return c.target.data.get_or_create(c.db, coll, log);
}

// A read of a view: the view's pipeline, then `more`, over the collection it reads.
std::vector<bson::document> read_view(context& c, const std::string& view, bson::array_view more, bson::document_view let = {}) {
    auto [source, stages] = c.target.data.resolve_view(c.db, view);
    bson::builder all(bson::builder::root::array);
    for (const auto& st : stages) all.append_value(st);
    for (const auto& st : more) all.append_value(st);
    const bson::array pipeline(all.extract());
    if (const collection* target = c.target.data.find(c.db, source)) return target->aggregate(pipeline.view(), let);
    return collection(c.db + "." + source).aggregate(pipeline.view(), let);
}

// Waits for the request's write concern on `op` and returns `reply`, with a writeConcernError
// (labelled RetryableWriteError when a retryable write's primary stepped down) if it failed.
asio::awaitable<bson::document> with_write_concern(deployment::impl& d, member& target, optime op, const request& req,
                                                   const bson::document& reply, const running_op* op_state) {
    auto wce = co_await d.await_write_concern(target, op, doc_or_empty(req.body, "writeConcern"), op_state);
    if (!wce) co_return reply;
    bson::builder b;
    b.concat(reply);
    b.append("writeConcernError", *wce);
    const bool label = (*wce)["code"].as_int64() == 11602 && retry_key_of(req);
    if (label) b.append("errorLabels", bson::array_view(retryable_label().view()));
    co_return b.extract();
}

// Runs the writes of one command, records them (with the retry record) and waits for the write concern.
asio::awaitable<bson::document> finish_write(context& c, oplog log, bson::builder& reply_body) {
    auto& d = c.target.dep;
    if (c.txn) {
        // In a transaction: kept for the commit, neither replicated nor waited for now.
        check_write_conflicts(c.target, *c.txn, log);
        for (auto& k : written_keys(log)) c.txn->written.insert(std::move(k));
        for (auto& e : log) c.txn->entries.push_back(std::move(e));
        reply_body.append("ok", 1.0);
        co_return reply_body.extract();
    }
    if (c.may_block)
        if (auto held = held_by_transactions(c.target, log); !held.empty()) throw write_blocked{std::move(held)};
    if (c.close_connection) {
        // Cut short by onPrimaryTransactionalWrite: what committed is recorded, the client hears nothing.
        std::optional<std::pair<retry_key, bson::document>> retry;
        if (auto key = retry_key_of(c.req)) retry.emplace(*key, partial_record(c.executed));
        d.record_write(c.target, std::move(log), std::move(retry));
        co_return bson::document();
    }
    reply_body.append("ok", 1.0);
    bson::document reply = reply_body.extract();
    std::optional<std::pair<retry_key, bson::document>> retry;
    if (auto key = retry_key_of(c.req)) retry.emplace(*key, reply);
    const bool replicated = !log.empty() || retry.has_value();
    optime op{};
    if (replicated) op = d.record_write(c.target, std::move(log), std::move(retry));
    if (!replicated && !c.target.log.empty()) op = c.target.log.back().op;
    co_return co_await with_write_concern(d, c.target, op, c.req, reply, c.op);
}

void write_error(bson::builder& b, std::size_t index, const command_error& e) {
    b.open_document().append("index", static_cast<std::int32_t>(index)).append("code", e.code());
    b.append("codeName", e.code_name()).append("errmsg", e.message()).concat(e.extra()).close_document();
}

// ---------------------------------------------------------------- CRUD

// The one ordered-write loop of insert, update and delete: runs `one` on each statement of the
// array `field`; a failing statement becomes a writeError (with its index), and an ordered
// batch stops at its first error. Returns the writeErrors array, or nullopt when none.
template <class F>
std::optional<bson::array> run_statements(const context& c, std::string_view field, F&& one) {
    // `one` returns false when the write stops there (see run_statement).
    const request& req = c.req;
    const bool ordered = bool_or(req.body, "ordered", true);
    auto statements = req.body.find(field);
    if (!statements || statements->type() != bson::type::array)
        throw command_error(40414, "Location40414",
                            "BSON field '" + req.name + "." + std::string(field) + "' is missing but a required field");
    const std::size_t count = statements->get_array().size();
    const auto max_batch = static_cast<std::size_t>(c.self.config.max_write_batch_size.value_or(c.self.dep.cfg.max_write_batch_size));
    if (count == 0 || count > max_batch)
        throw command_error(16, "InvalidLength", "Write batch sizes must be between 1 and " + std::to_string(max_batch) +
                                                     ". Got " + std::to_string(count) + " operations.");
    bson::builder errors(bson::builder::root::array);
    bool any = false;
    std::size_t i = 0;
    for (const auto& e : statements->get_array()) {
        try {
            if (e.type() != bson::type::document)
                throw command_error(14, "TypeMismatch", "BSON field '" + req.name + "." + std::string(field) + "' entries must be objects");
            if (!one(e.get_document(), i)) break;
        } catch (const command_error& err) {
            write_error(errors, i, err);
            any = true;
            if (ordered) break;
        }
        ++i;
    }
    if (!any) return std::nullopt;
    return bson::array(errors.extract());
}

asio::awaitable<bson::document> cmd_insert(context& c) {
    const std::string coll = collection_arg(c.req);
    oplog log;
    std::int64_t n = 0;
    collection* target = nullptr;
    auto errors = run_statements(c, "documents", [&](bson::document_view doc, std::size_t i) {
        return run_statement(
            c, i,
            [&] {
                const bypass_guard bypass(c.req.body);
                if (!target) target = &write_collection(c, coll, log);
                target->insert(bson::document(doc), log);
                ++n;
                count_op(c, "insert");
                return bson::make_document(bson::kvp("n", 1));
            },
            [&](bson::document_view) { ++n; });
    });
    bson::builder b;
    b.append("n", n);
    if (errors) b.append("writeErrors", *errors);
    co_return co_await finish_write(c, std::move(log), b);
}

// An update statement's sort (8.0): which of the matching documents a single update changes.
// The filter narrowed to that document's _id (the original filter kept for positional $
// updates), or the filter itself when none matches (an upsert then starts from it).
bson::document sorted_target(const collection& target, bson::document_view filter, bson::document_view sort,
                             bson::document_view let) {
    find_options o;
    o.filter = bson::document(filter);
    o.sort = bson::document(sort);
    o.limit = 1;
    o.let = bson::document(let);
    const auto first = target.find(o);
    if (first.empty()) return bson::document(filter);
    bson::builder b;
    b.open_array("$and").append(filter).open_document().append(first.front().view()["_id"]).close_document().close_array();
    return b.extract();
}

// The statement's sort document (nullopt without one): 14 TypeMismatch for another type; a sort
// with multi: true is refused before any statement runs (9 FailedToParse, as mongod 8.0).
std::optional<bson::document> statement_sort(bson::document_view statement, std::string_view where) {
    const auto e = statement.find("sort");
    if (!e) return std::nullopt;
    if (e->type() != bson::type::document)
        throw command_error(14, "TypeMismatch", "BSON field '" + std::string(where) + ".sort' is the wrong type '" +
                                                    std::string(bson::type_name(e->type())) + "', expected type 'object'");
    return bson::document(e->get_document());
}

void refuse_multi_sort(bson::document_view body, std::string_view field, std::string_view multi_key, std::string_view where) {
    if (auto statements = body.find(field); statements && statements->type() == bson::type::array)
        for (const auto& st : statements->get_array())
            if (st.type() == bson::type::document && st.get_document().contains("sort") && bool_or(st.get_document(), multi_key, false))
                throw command_error(9, "FailedToParse", "Cannot specify sort with multi=true (" + std::string(where) + ")");
}

// One update statement on `target`: updateMods a document (operators or a replacement) or a
// pipeline; a sort picks the document a single update changes.
update_result apply_update(collection& target, bson::document_view filter, const bson::element& mods, bool upsert, bool multi,
                           const std::optional<bson::document>& sort, oplog& log, const write_extras& extras) {
    bson::document narrowed;
    if (sort && !sort->view().empty() && !multi) narrowed = sorted_target(target, filter, sort->view(), extras.let);
    const bson::document_view q = narrowed.view().empty() ? filter : narrowed.view();
    return mods.type() == bson::type::array ? target.update_pipeline(q, mods.get_array(), upsert, multi, log, extras)
                                            : target.update(q, mods.get_document(), upsert, multi, log, extras);
}

asio::awaitable<bson::document> cmd_update(context& c) {
    const std::string coll = collection_arg(c.req);
    refuse_multi_sort(c.req.body, "updates", "multi", "update.updates");
    oplog log;
    std::int64_t n = 0, modified = 0;
    bson::builder upserted(bson::builder::root::array);
    bool any_upsert = false;
    const bson::document let = doc_or_empty(c.req.body, "let");
    auto errors = run_statements(c, "updates", [&](bson::document_view u, std::size_t i) {
        auto q = u.find("q"), up = u.find("u");
        if (!q || q->type() != bson::type::document || !up ||
            (up->type() != bson::type::document && up->type() != bson::type::array))
            throw command_error(9, "FailedToParse", "update statements need a q document and a u document or pipeline");
        write_extras extras;
        extras.let = let;
        if (auto af = u.find("arrayFilters"); af && af->type() == bson::type::array) extras.array_filters = af->get_array();
        // A statement's result: {n, nModified, upserted: {_id}}, counted here and replayed on a retry.
        const auto count = [&](bson::document_view r) {
            n += r["n"].as_int64();
            modified += r["nModified"].as_int64();
            if (auto id = r.find("upserted")) {
                any_upsert = true;
                upserted.open_document().append("index", static_cast<std::int32_t>(i)).concat(id->get_document()).close_document();
            }
        };
        return run_statement(
            c, i,
            [&] {
                const collation_guard by(u);
                const bypass_guard bypass(c.req.body);
                collection& target = write_collection(c, coll, log);
                const bool upsert = bool_or(u, "upsert", false), multi = bool_or(u, "multi", false);
                const update_result r =
                    apply_update(target, q->get_document(), *up, upsert, multi, statement_sort(u, "update.updates"), log, extras);
                count_op(c, "update");
                bson::builder rb;
                rb.append("n", r.matched + (r.upserted_id ? 1 : 0)).append("nModified", r.modified);
                if (r.upserted_id) rb.append("upserted", *r.upserted_id);
                bson::document result = rb.extract();
                count(result);
                return result;
            },
            count);
    });
    bson::builder b;
    b.append("n", n).append("nModified", modified);
    if (any_upsert) b.append("upserted", bson::array(upserted.extract()));
    if (errors) b.append("writeErrors", *errors);
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_delete(context& c) {
    const std::string coll = collection_arg(c.req);
    oplog log;
    std::int64_t n = 0;
    const bson::document let = doc_or_empty(c.req.body, "let");
    auto errors = run_statements(c, "deletes", [&](bson::document_view d, std::size_t i) {
        auto q = d.find("q");
        if (!q || q->type() != bson::type::document) throw command_error(9, "FailedToParse", "delete statements need q");
        const std::int64_t limit = int_or(d, "limit", 0);
        if (limit != 0 && limit != 1)
            throw command_error(9, "FailedToParse", "The limit field in delete objects must be 0 or 1. Got " + std::to_string(limit));
        return run_statement(
            c, i,
            [&] {
                const collation_guard by(d);
                refuse_view(c, coll);
                std::int64_t removed = 0;
                if (collection* target = c.target.data.find(c.db, coll)) removed = target->remove(q->get_document(), limit == 1, log, let);
                count_op(c, "delete");
                n += removed;
                return bson::make_document(bson::kvp("n", removed));
            },
            [&](bson::document_view r) { n += r["n"].as_int64(); });
    });
    bson::builder b;
    b.append("n", n);
    if (errors) b.append("writeErrors", *errors);
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_find_and_modify(context& c) {
    const std::string coll = collection_arg(c.req);
    find_and_modify_options o;
    o.query = doc_or_empty(c.req.body, "query");
    o.sort = doc_or_empty(c.req.body, "sort");
    o.fields = doc_or_empty(c.req.body, "fields");
    if (auto u = c.req.body.find("update"); u && u->type() == bson::type::document) o.update = bson::document(u->get_document());
    if (auto u = c.req.body.find("update"); u && u->type() == bson::type::array)
        o.update_pipeline = bson::array(bson::document(u->get_array()));
    if (auto af = c.req.body.find("arrayFilters"); af && af->type() == bson::type::array)
        o.array_filters = bson::array(bson::document(af->get_array()));
    o.let = doc_or_empty(c.req.body, "let");
    o.remove = bool_or(c.req.body, "remove", false);
    o.return_new = bool_or(c.req.body, "new", false);
    o.upsert = bool_or(c.req.body, "upsert", false);
    if (o.remove == (o.update.has_value() || o.update_pipeline.has_value()))
        co_return error_reply(9, "FailedToParse", "Either an update or remove=true must be specified");
    oplog log;
    bson::builder b;
    // One statement: its result is the reply's body (lastErrorObject and value).
    run_statement(
        c, 0,
        [&] {
            const collation_guard by(c.req.body);
            const bypass_guard bypass(c.req.body);
            collection& target = write_collection(c, coll, log);
            const find_and_modify_result r = target.find_and_modify(o, log);
            bson::builder rb;
            rb.open_document("lastErrorObject").append("n", r.n);
            if (!o.remove) rb.append("updatedExisting", r.updated_existing);
            if (r.upserted_id) rb.append("upserted", (*r.upserted_id)["_id"]);
            rb.close_document();
            if (r.value) rb.append("value", *r.value);
            else rb.append("value", bson::null);
            bson::document result = rb.extract();
            b.concat(result);
            return result;
        },
        [&](bson::document_view r) { b.concat(r); });
    co_return co_await finish_write(c, std::move(log), b);
}

// bulkWrite (8.0): ops on any namespaces (nsInfo), results in a cursor ({ok, idx, n, nModified,
// upserted} per op unless errorsOnly; {ok: 0, idx, code, codeName, errmsg} per failed op) and
// the counts. A failed op is a result, not a command error; ordered stops at the first.
asio::awaitable<bson::document> cmd_bulk_write(context& c) {
    const bson::document_view body = c.req.body.view();
    const auto array_field = [&](std::string_view key) {
        const auto e = body.find(key);
        if (!e) throw command_error(40414, "Location40414", "BSON field 'bulkWrite." + std::string(key) + "' is missing but a required field");
        if (e->type() != bson::type::array)
            throw command_error(14, "TypeMismatch", "BSON field 'bulkWrite." + std::string(key) + "' is the wrong type '" +
                                                        std::string(bson::type_name(e->type())) + "', expected type 'array'");
        return e->get_array();
    };
    const bson::array_view ops = array_field("ops");
    std::vector<std::pair<std::string, std::string>> namespaces;  // nsInfo: (db, collection)
    for (const auto& e : array_field("nsInfo")) {
        const auto ns = e.type() == bson::type::document ? e.get_document().find("ns") : std::nullopt;
        const std::string full = ns && ns->type() == bson::type::string ? std::string(ns->get_string()) : std::string();
        const auto dot = full.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 == full.size())
            throw command_error(73, "InvalidNamespace", "Invalid namespace specified '" + full + "' in bulkWrite.nsInfo");
        namespaces.emplace_back(full.substr(0, dot), full.substr(dot + 1));
    }
    const std::size_t count = ops.size();
    const auto max_batch = static_cast<std::size_t>(c.self.config.max_write_batch_size.value_or(c.self.dep.cfg.max_write_batch_size));
    if (count == 0 || count > max_batch)
        throw command_error(16, "InvalidLength", "Write batch sizes must be between 1 and " + std::to_string(max_batch) +
                                                     ". Got " + std::to_string(count) + " operations.");
    const bool ordered = bool_or(body, "ordered", true), errors_only = bool_or(body, "errorsOnly", false);
    const bson::document let = doc_or_empty(body, "let");
    std::int64_t n_errors = 0, n_inserted = 0, n_matched = 0, n_modified = 0, n_upserted = 0, n_deleted = 0;
    std::vector<bson::document> results;
    oplog log;
    // Each op's namespace, checked before anything runs (a bad index is the command's error).
    std::vector<std::size_t> ns_of;
    std::size_t idx = 0;
    for (const auto& op : ops) {
        if (op.type() != bson::type::document || op.get_document().empty())
            throw command_error(14, "TypeMismatch", "bulkWrite.ops entries must be objects (entry " + std::to_string(idx) + ")");
        const bson::element first = *op.get_document().begin();
        const std::string_view kind = first.key();
        if (kind != "insert" && kind != "update" && kind != "delete")
            throw command_error(40415, "Location40415", "BSON field 'bulkWrite.ops." + std::string(kind) + "' is an unknown field.");
        if (!first.is_number() || first.as_int64() < 0 || static_cast<std::size_t>(first.as_int64()) >= namespaces.size())
            throw command_error(2, "BadValue", "BulkWrite ops entry " + std::to_string(idx) + " has an invalid nsInfo index");
        ns_of.push_back(static_cast<std::size_t>(first.as_int64()));
        if (kind == "update" && op.get_document().contains("sort") && bool_or(op.get_document(), "multi", false))
            throw command_error(9, "FailedToParse", "Cannot specify sort with multi=true (bulkWrite.ops)");
        ++idx;
    }
    idx = 0;
    for (const auto& op_element : ops) {
        const bson::document_view op = op_element.get_document();
        const std::string_view kind = (*op.begin()).key();
        const auto& [db, coll] = namespaces[ns_of[idx]];
        // A result counts into the summary here, whether it ran now or is replayed on a retry.
        const auto count_result = [&](bson::document_view r) {
            if (kind == "insert") n_inserted += r["n"].as_int64();
            else if (kind == "delete") n_deleted += r["n"].as_int64();
            else {
                const bool upserted = r.contains("upserted");
                n_upserted += upserted ? 1 : 0;
                n_matched += r["n"].as_int64() - (upserted ? 1 : 0);
                n_modified += r["nModified"].as_int64();
            }
            if (!errors_only) results.emplace_back(r);
        };
        try {
            const auto filter = [&] {
                auto f = op.find("filter");
                if (!f || f->type() != bson::type::document)
                    throw command_error(40414, "Location40414", "BSON field 'bulkWrite.ops.filter' is missing but a required field");
                return f->get_document();
            };
            const bool go_on = run_statement(
                c, idx,
                [&] {
                    const auto view = c.target.data.find_view(db, coll);
                    if (view)
                        throw command_error(166, "CommandNotSupportedOnView", "Namespace " + db + "." + coll + " is a view, not a collection");
                    bson::builder rb;
                    rb.append("ok", 1.0).append("idx", static_cast<std::int32_t>(idx));
                    if (kind == "insert") {
                        auto d = op.find("document");
                        if (!d || d->type() != bson::type::document)
                            throw command_error(40414, "Location40414", "BSON field 'bulkWrite.ops.document' is missing but a required field");
                        const bypass_guard bypass(body);
                        c.target.data.get_or_create(db, coll, log).insert(bson::document(d->get_document()), log);
                        count_op(c, "insert");
                        rb.append("n", 1);
                    } else if (kind == "update") {
                        const auto mods = op.find("updateMods");
                        if (!mods || (mods->type() != bson::type::document && mods->type() != bson::type::array))
                            throw command_error(40414, "Location40414", "BSON field 'bulkWrite.ops.updateMods' is missing but a required field");
                        const collation_guard by(op);
                        const bypass_guard bypass(body);
                        write_extras extras;
                        extras.let = let;
                        if (auto af = op.find("arrayFilters"); af && af->type() == bson::type::array) extras.array_filters = af->get_array();
                        collection& target = c.target.data.get_or_create(db, coll, log);
                        const update_result r = apply_update(target, filter(), *mods, bool_or(op, "upsert", false), bool_or(op, "multi", false),
                                                             statement_sort(op, "bulkWrite.ops"), log, extras);
                        count_op(c, "update");
                        rb.append("n", static_cast<std::int32_t>(r.matched + (r.upserted_id ? 1 : 0)))
                            .append("nModified", static_cast<std::int32_t>(r.modified));
                        if (r.upserted_id) rb.append("upserted", *r.upserted_id);
                    } else {
                        const collation_guard by(op);
                        std::int64_t removed = 0;
                        if (collection* target = c.target.data.find(db, coll))
                            removed = target->remove(filter(), !bool_or(op, "multi", false), log, let);
                        count_op(c, "delete");
                        rb.append("n", static_cast<std::int32_t>(removed));
                    }
                    bson::document r = rb.extract();
                    count_result(r);
                    return r;
                },
                count_result);
            if (!go_on) break;
        } catch (const command_error& e) {
            ++n_errors;
            bson::builder eb;
            eb.append("ok", 0.0).append("idx", static_cast<std::int32_t>(idx)).append("code", e.code())
                .append("codeName", e.code_name()).append("errmsg", e.message()).concat(e.extra());
            results.push_back(eb.extract());
            if (ordered) break;
        }
        ++idx;
    }
    // mongod orders the cursor by idx; a replayed result keeps its place too.
    std::stable_sort(results.begin(), results.end(),
                     [](const bson::document& a, const bson::document& b) { return a.view()["idx"].as_int64() < b.view()["idx"].as_int64(); });
    std::int64_t batch = c.self.dep.cfg.bulk_write_cursor_batch_size;
    if (auto cur = body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", batch);
    const bson::document cursor = cursor_reply(c.self, "admin.$cmd.bulkWrite", std::move(results), batch, false, false);
    bson::builder b;
    b.append(cursor.view()["cursor"]);
    b.append("nErrors", static_cast<std::int32_t>(n_errors)).append("nInserted", static_cast<std::int32_t>(n_inserted))
        .append("nMatched", static_cast<std::int32_t>(n_matched)).append("nModified", static_cast<std::int32_t>(n_modified))
        .append("nUpserted", static_cast<std::int32_t>(n_upserted)).append("nDeleted", static_cast<std::int32_t>(n_deleted));
    co_return co_await finish_write(c, std::move(log), b);
}

bson::document cmd_find(context& c) {
    const collation_guard by(c.req.body);
    const std::string coll = collection_arg(c.req);
    find_options o;
    o.filter = doc_or_empty(c.req.body, "filter");
    o.sort = doc_or_empty(c.req.body, "sort");
    o.projection = doc_or_empty(c.req.body, "projection");
    o.skip = int_or(c.req.body, "skip", 0);
    o.let = doc_or_empty(c.req.body, "let");
    std::int64_t limit = int_or(c.req.body, "limit", 0);
    bool single = bool_or(c.req.body, "singleBatch", false);
    if (limit < 0) {
        limit = -limit;
        single = true;
    }
    o.limit = limit;
    if (o.skip < 0) throw command_error(51024, "Location51024", "BSON field 'skip' value must be >= 0, actual value '" + std::to_string(o.skip) + "'");
    const bool tailable = bool_or(c.req.body, "tailable", false), await_data = bool_or(c.req.body, "awaitData", false);
    if (await_data && !tailable) throw command_error(9, "FailedToParse", "Cannot set 'awaitData' without also setting 'tailable'");
    if (tailable) {
        const collection* target = c.target.data.find(c.db, coll);
        if (!target || !target->capped())
            throw command_error(2, "BadValue", "error processing query: ns=" + c.db + "." + coll +
                                                   " planner returned error :: caused by :: tailable cursor requested on non capped collection");
        if (!o.sort.empty() && !(o.sort.view().count() == 1 && o.sort.view().begin()->key() == "$natural"))
            throw command_error(2, "BadValue", "error processing query: ns=" + c.db + "." + coll +
                                                   " planner returned error :: caused by :: cannot use tailable option with a sort other than {$natural: 1}");
        o.sort = bson::document();
    }
    std::int64_t batch = int_or(c.req.body, "batchSize", 101);
    if (batch < 0) throw command_error(51024, "Location51024", "BSON field 'batchSize' value must be >= 0");
    if (limit > 0 && (batch == 0 || batch > limit)) batch = limit;
    count_op(c, "query");
    std::vector<bson::document> docs;
    if (c.target.data.find_view(c.db, coll)) {
        bson::builder more(bson::builder::root::array);
        more.open_document().append("$match", o.filter).close_document();
        if (!o.sort.empty()) more.open_document().append("$sort", o.sort).close_document();
        if (o.skip > 0) more.open_document().append("$skip", o.skip).close_document();
        if (o.limit > 0) more.open_document().append("$limit", o.limit).close_document();
        if (!o.projection.empty()) more.open_document().append("$project", o.projection).close_document();
        const bson::array stages(more.extract());
        docs = read_view(c, coll, stages.view(), o.let);
    } else if (const collection* target = c.target.data.find(c.db, coll))
        docs = target->find(o);
    else
        (void)collection(c.db + "." + coll).find(o);  // mongod parses the filter even when the collection is absent
    std::optional<cursor::tail_state> tail;
    if (tailable) {
        // What it read so far is where it goes on from; on an empty collection it is dead at once.
        const collection* target = c.target.data.find(c.db, coll);
        if (target->size() > 0) tail = cursor::tail_state{c.db, coll, o, target->inserted_total(), await_data};
    }
    return cursor_reply(c.self, c.db + "." + coll, std::move(docs), batch, single, bool_or(c.req.body, "noCursorTimeout", false),
                        std::move(tail));
}

asio::awaitable<bson::document> cmd_get_more(context& c) {
    const auto id = c.req.body.begin()->is_number() ? c.req.body.begin()->as_int64() : 0;
    auto it = c.self.cursors.find(id);
    if (it == c.self.cursors.end()) throw command_error(43, "CursorNotFound", "cursor id " + std::to_string(id) + " not found");
    count_op(c, "getmore");
    if (it->second.stream) co_return co_await change_stream_get_more(c.self, c.target, id, c.req, *c.op);
    // As mongod: maxTimeMS on a getMore is for an awaitData cursor (how long to wait) only.
    if (c.req.body.contains("maxTimeMS") && !(it->second.tail && it->second.tail->await_data))
        throw command_error(2, "BadValue", "cannot set maxTimeMS on getMore command for a non-awaitData cursor");
    it->second.last_used = steady::now();
    const std::int64_t batch = int_or(c.req.body, "batchSize", 0);
    if (it->second.tail && it->second.remaining.empty()) {
        // A tailable cursor: what was inserted since; awaitData waits up to maxTimeMS (1 s) for some.
        const auto wait = std::chrono::milliseconds(int_or(c.req.body, "maxTimeMS", 1000));
        const auto deadline = steady::now() + wait;
        for (;;) {
            it = c.self.cursors.find(id);
            if (it == c.self.cursors.end()) throw command_error(43, "CursorNotFound", "cursor id " + std::to_string(id) + " not found");
            cursor::tail_state& tail = *it->second.tail;
            const collection* target = c.target.data.find(tail.db, tail.coll);
            if (!target) {
                c.self.cursors.erase(it);
                throw command_error(175, "QueryPlanKilled", "collection dropped: " + tail.db + "." + tail.coll);
            }
            std::vector<bson::document> fresh;
            try {
                fresh = target->inserted_since(tail.position, tail.query);
            } catch (const command_error&) {
                c.self.cursors.erase(it);  // CappedPositionLost: the cursor is dead
                throw;
            }
            tail.position = target->inserted_total();
            for (auto& d : fresh) it->second.remaining.push_back(std::move(d));
            if (!it->second.remaining.empty() || !tail.await_data || !c.self.dep.running || c.op->killed ||
                steady::now() >= deadline)
                break;
            co_await c.self.dep.data_changed.wait_until(deadline);
        }
    }
    cursor& cur = it->second;
    const auto extent = next_batch(c.self, cur.remaining, batch, cur.ns.size());
    bson::builder b(bson::builder::root::document, extent.reply_bytes);
    b.open_document("cursor");
    fill_batch(b, "nextBatch", cur.remaining, extent.count);
    const std::string ns = cur.ns;
    std::int64_t out_id = id;
    if (cur.remaining.empty() && !cur.tail) {
        c.self.cursors.erase(it);
        out_id = 0;
    }
    b.append("id", out_id).append("ns", ns).close_document().append("ok", 1.0);
    co_return b.extract();
}

bson::document cmd_kill_cursors(context& c) {
    bson::builder killed(bson::builder::root::array), missing(bson::builder::root::array);
    if (auto ids = c.req.body.find("cursors"); ids && ids->type() == bson::type::array)
        for (const auto& e : ids->get_array()) {
            const std::int64_t id = e.is_number() ? e.as_int64() : 0;
            if (c.self.cursors.erase(id)) killed.append(id);
            else missing.append(id);
        }
    bson::builder b;
    b.append("cursorsKilled", bson::array(killed.extract()))
        .append("cursorsNotFound", bson::array(missing.extract()))
        .append("cursorsAlive", bson::make_array())
        .append("cursorsUnknown", bson::make_array())
        .append("ok", 1.0);
    return b.extract();
}

bson::document cmd_count(context& c) {
    const collation_guard by(c.req.body);
    const std::string coll = collection_arg(c.req);
    std::int64_t n = 0;
    const std::int64_t skip = int_or(c.req.body, "skip", 0), limit = int_or(c.req.body, "limit", 0);
    if (c.target.data.find_view(c.db, coll)) {
        // The documents the view shows that match, then skip and limit as a collection's count.
        if (skip < 0) throw command_error(2, "BadValue", "skip value is negative in count query");
        const matcher m = matcher::compile(doc_or_empty(c.req.body, "query"));
        for (const auto& d : read_view(c, coll, bson::array_view())) n += m.matches(d) ? 1 : 0;
        n = std::max<std::int64_t>(0, n - skip);
        if (limit != 0) n = std::min(n, limit < 0 ? -limit : limit);
    } else if (const collection* target = c.target.data.find(c.db, coll))
        n = target->count(doc_or_empty(c.req.body, "query"), skip, limit);
    bson::builder b;
    b.append("n", n).append("ok", 1.0);
    return b.extract();
}

// Whether a hint (an index name, or a key pattern) names one of the collection's indexes.
bool hint_names_index(const collection& coll, const bson::element& hint) {
    const auto same_keys = [](bson::document_view a, bson::document_view b) {
        auto i = a.begin(), j = b.begin();
        for (; i != a.end() && j != b.end(); ++i, ++j) {
            if (i->key() != j->key()) return false;
            if (i->is_number() && j->is_number()) {
                if (i->as_double() != j->as_double()) return false;
            } else if (i->type() == bson::type::string && j->type() == bson::type::string) {
                if (i->get_string() != j->get_string()) return false;
            } else {
                return false;
            }
        }
        return i == a.end() && j == b.end();
    };
    for (const auto& index : coll.indexes()) {
        if (hint.type() == bson::type::string && index.name == hint.get_string()) return true;
        if (hint.type() == bson::type::document && same_keys(index.key.view(), hint.get_document())) return true;
    }
    return false;
}

bson::document cmd_distinct(context& c) {
    const collation_guard by(c.req.body);
    const std::string coll = collection_arg(c.req);
    auto key = c.req.body.find("key");
    if (!key || key->type() != bson::type::string) throw command_error(9, "FailedToParse", "distinct needs a string key");
    bson::builder b;
    refuse_view(c, coll);  // not simulated on views
    // A hint (7.1+; older versions refuse the field before this) must name an existing index.
    if (auto hint = c.req.body.find("hint")) {
        if (hint->type() != bson::type::string && hint->type() != bson::type::document)
            throw command_error(14, "TypeMismatch", "BSON field 'distinct.hint' is the wrong type '" +
                                                        std::string(bson::type_name(hint->type())) + "', expected types '[string, object]'");
        if (const collection* target = c.target.data.find(c.db, coll); target && !hint_names_index(*target, *hint))
            throw command_error(2, "BadValue", "hint provided does not correspond to an existing index");
    }
    if (const collection* target = c.target.data.find(c.db, coll))
        b.append("values", target->distinct(key->get_string(), doc_or_empty(c.req.body, "query")));
    else
        b.append("values", bson::make_array());
    b.append("ok", 1.0);
    return b.extract();
}

// collStats' fields (and $collStats' storageStats): sizes of the in-memory data, storage = data
// (no compression, no preallocation), index sizes 0.
void storage_stats(bson::builder& b, const collection& coll) {
    const auto count = static_cast<std::int64_t>(coll.size());
    const auto size = static_cast<std::int64_t>(coll.data_size());
    b.append("size", size).append("count", count).append("avgObjSize", count ? size / count : 0)
        .append("storageSize", size).append("freeStorageSize", 0).append("capped", coll.capped().has_value())
        .append("nindexes", static_cast<std::int32_t>(coll.indexes().size()));
    b.open_document("indexSizes");
    for (const auto& i : coll.indexes()) b.append(i.name, 0);
    b.close_document();
    b.append("indexBuilds", bson::make_array()).append("totalIndexSize", 0).append("totalSize", size).append("scaleFactor", 1);
    if (const auto& capped = coll.capped()) {
        b.append("maxSize", capped->size);
        if (capped->max > 0) b.append("max", capped->max);
    }
}

// The $collStats stage (first in its pipeline, as mongod requires): one document with the
// storageStats and count asked for; the rest of the pipeline runs over it.
std::vector<bson::document> coll_stats_stage(context& c, const std::string& coll, bson::array_view pipeline) {
    const bson::document_view spec = (*pipeline.begin()).get_document()["$collStats"].get_document();
    const collection* target = c.target.data.find(c.db, coll);
    const std::string ns = c.db + "." + coll;
    if (!target && spec.find("storageStats"))
        throw command_error(26, "NamespaceNotFound", "Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [" + ns + "] not found.");
    bson::builder b;
    b.append("ns", ns).append("host", c.self.address()).append("localTime", bson::date_time(std::chrono::system_clock::now()));
    if (spec.find("storageStats")) {
        b.open_document("storageStats");
        storage_stats(b, *target);
        b.close_document();
    }
    if (spec.find("count")) b.open_document("count").append("count", static_cast<std::int64_t>(target ? target->size() : 0)).close_document();
    bson::document stats = b.extract();
    // The rest of the pipeline, over that one document (without the _id a collection would add).
    bson::builder rest(bson::builder::root::array);
    rest.open_document().append("$unset", "_id").close_document();
    bool first = true;
    std::size_t n = 0;
    for (const auto& stage : pipeline) {
        if (!first) rest.append_value(stage), ++n;
        first = false;
    }
    if (n == 0) return {std::move(stats)};
    collection scratch(ns);
    oplog ignored;
    scratch.insert(std::move(stats), ignored);
    const bson::array stages = bson::array(rest.extract());
    return scratch.aggregate(stages.view());
}

// ---------------------------------------------------------------- sessions

// The session cache: every command with an lsid refreshes its entry, as mongod's does.
void touch_session(member& m, const session& s, const request& req) {
    const auto lsid = req.body.find("lsid");
    if (!lsid || lsid->type() != bson::type::document) return;
    const auto id = lsid->get_document().find("id");
    if (!id || id->type() != bson::type::binary) return;
    const auto bytes = id->get_binary().bytes;
    local_session& entry = m.local_sessions[std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())];
    entry.lsid = bson::make_document(bson::kvp("id", *id));
    entry.user = s.user;
    entry.last_use = std::chrono::system_clock::now();
}

bson::document cmd_end_sessions(context& c) {
    if (auto ids = c.req.body.find("endSessions"); ids && ids->type() == bson::type::array)
        for (const auto& e : ids->get_array()) {
            if (e.type() != bson::type::document) continue;
            const auto id = e.get_document().find("id");
            if (!id || id->type() != bson::type::binary) continue;
            const auto bytes = id->get_binary().bytes;
            c.self.local_sessions.erase(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        }
    return bson::make_document(bson::kvp("ok", 1.0));
}

// $listLocalSessions: {_id: {id, uid}, lastUse} per cached session; uid is SHA-256 of the user
// ("" without authentication). Without allUsers, only the caller's user's sessions.
std::vector<bson::document> list_local_sessions(context& c, const bson::element& spec) {
    if (spec.type() != bson::type::document)
        throw command_error(14, "TypeMismatch", "$listLocalSessions must be an object");
    const bool all_users = bool_or(spec.get_document(), "allUsers", false);
    std::vector<bson::document> out;
    for (const auto& [key, entry] : c.self.local_sessions) {
        if (!all_users && entry.user != c.s.user) continue;
        const auto uid = auth::digest(auth::hash_algorithm::sha256, auth::as_bytes(entry.user));
        bson::builder b;
        b.open_document("_id").append("id", entry.lsid["id"])
            .append("uid", bson::binary{bson::binary_subtype::generic, std::span<const std::uint8_t>(uid)}).close_document();
        b.append("lastUse", bson::date_time(entry.last_use));
        out.push_back(b.extract());
    }
    return out;
}

// The documents a pipeline yields from the aggregate command's source: a collection, a view, or
// {aggregate: 1} with a first stage that makes documents ($listLocalSessions, $documents).
std::vector<bson::document> pipeline_documents(context& c, bson::array_view stages, const bson::document& let) {
    const bson::element first = *c.req.body.begin();
    if (first.type() != bson::type::string) {
        const bool numeric_one = first.is_number() && first.as_double() == 1;
        const bson::element stage = stages.empty() ? first : *stages.begin();
        const std::string_view name = stage.type() == bson::type::document && !stage.get_document().empty()
                                          ? stage.get_document().begin()->key() : std::string_view();
        if (!numeric_one)
            throw command_error(73, "InvalidNamespace", "Invalid {aggregate: 1}: the aggregate field must be a collection name or 1");
        if (name != "$listLocalSessions" && name != "$documents")
            throw command_error(73, "InvalidNamespace", "{aggregate: 1} is not valid for '" + std::string(name.empty() ? "$match" : name) +
                                                            "'; a collection is required.");
        bson::builder rest(bson::builder::root::array);
        bool skipped = false;
        for (const auto& s : stages) {
            if (skipped) rest.append_value(s);
            skipped = true;
        }
        const bson::array rest_stages(rest.extract());
        const bson::element arg = *stage.get_document().begin();
        std::vector<bson::document> source;
        if (name == "$documents") {
            if (arg.type() != bson::type::array)
                throw command_error(5858203, "Location5858203", "an array is expected for $documents");
            for (const auto& d : arg.get_array()) {
                if (d.type() != bson::type::document)
                    throw command_error(40228, "Location40228", "'$documents' elements must be objects, found " + std::string(bson::type_name(d.type())));
                source.emplace_back(d.get_document());
            }
        } else {
            source = list_local_sessions(c, arg);
        }
        return run_pipeline(std::move(source), rest_stages.view(), let);
    }
    const std::string coll(first.get_string());
    const bool coll_stats = !stages.empty() && (*stages.begin()).type() == bson::type::document &&
                            (*stages.begin()).get_document().find("$collStats") &&
                            (*stages.begin()).get_document()["$collStats"].type() == bson::type::document;
    if (coll_stats) return coll_stats_stage(c, coll, stages);
    if (c.target.data.find_view(c.db, coll)) return read_view(c, coll, stages, let);
    if (const collection* target = c.target.data.find(c.db, coll)) return target->aggregate(stages, let);
    return collection(c.db + "." + coll).aggregate(stages, let);  // stages like $count still answer
}

// The namespace of $out ("coll" or {db, coll}) or of $merge's into (the same shapes).
std::pair<std::string, std::string> output_namespace(const context& c, const bson::element& spec, std::string_view stage) {
    if (spec.type() == bson::type::string) return {c.db, std::string(spec.get_string())};
    if (spec.type() == bson::type::document) {
        const bson::document_view d = spec.get_document();
        auto coll = d.find("coll");
        auto db = d.find("db");
        if (coll && coll->type() == bson::type::string && (!db || db->type() == bson::type::string))
            return {db ? std::string(db->get_string()) : c.db, std::string(coll->get_string())};
    }
    throw command_error(16990, "Location16990",
                        std::string(stage) + "'s target must be a string or an object with a string 'coll' (and optional 'db')");
}

// $out: the results replace the target collection's documents (its indexes stay), all or nothing.
void run_out(context& c, catalog& data, const bson::element& spec, std::vector<bson::document> docs, oplog& log) {
    const auto [db, coll] = output_namespace(c, spec, "$out");
    if (data.find_view(db, coll))
        throw command_error(166, "CommandNotSupportedOnView", "Cannot write the results of $out to a view: " + db + "." + coll);
    const collection* existing = data.find(db, coll);
    const std::vector<index_info> indexes = existing ? existing->indexes() : std::vector<index_info>{};
    const validation_options validation = existing ? existing->validation() : validation_options{};
    const std::optional<capped_options> capped = existing ? existing->capped() : std::nullopt;
    if (capped) throw command_error(17152, "Location17152", "namespace '" + db + "." + coll + "' is capped so it can't be used for $out");
    // First into a scratch collection with the target's indexes: a duplicate fails before any change.
    collection scratch(db + "." + coll);
    oplog ignored;
    for (const auto& i : indexes)
        if (i.name != "_id_") scratch.create_index(i, ignored);
    for (const auto& d : docs) scratch.insert(bson::document(d), ignored);
    if (existing) data.drop(db, coll, log);
    collection& target = data.create(db, coll, log);
    for (const auto& i : indexes)
        if (i.name != "_id_") target.create_index(i, log);
    if (!validation.validator.empty()) data.modify(db, coll, validation, log);
    for (const auto& d : scratch.documents()) target.insert(bson::document(d), log);
}

// $merge: each result is matched on `on` (default _id) with the target's documents, then
// whenMatched (merge | replace | keepExisting | fail | a pipeline with $$new) and whenNotMatched
// (insert | discard | fail), as mongod's.
void run_merge(context& c, catalog& data, const bson::element& spec, const std::vector<bson::document>& docs, oplog& log) {
    if (spec.type() != bson::type::string && spec.type() != bson::type::document)
        throw command_error(51182, "Location51182", "$merge only supports a string or object argument");
    bson::element into = spec;
    std::vector<std::string> on{"_id"};
    std::string when_matched = "merge", when_not_matched = "insert";
    std::optional<bson::array> matched_pipeline;
    bson::document merge_let;
    if (spec.type() == bson::type::document) {
        const bson::document_view o = spec.get_document();
        auto i = o.find("into");
        if (!i) throw command_error(40414, "Location40414", "BSON field '$merge.into' is missing but a required field");
        into = *i;
        if (auto e = o.find("on")) {
            on.clear();
            if (e->type() == bson::type::string) on.emplace_back(e->get_string());
            else if (e->type() == bson::type::array)
                for (const auto& f : e->get_array()) {
                    if (f.type() != bson::type::string)
                        throw command_error(51134, "Location51134", "$merge 'on' array elements must be strings");
                    on.emplace_back(f.get_string());
                }
            else throw command_error(51186, "Location51186", "$merge 'on' field must be either a string or an array of strings");
        }
        if (auto e = o.find("whenMatched")) {
            if (e->type() == bson::type::string) when_matched = std::string(e->get_string());
            else if (e->type() == bson::type::array) {
                when_matched = "pipeline";
                matched_pipeline = bson::array(bson::document(e->get_array()));
            } else throw command_error(51191, "Location51191", "$merge 'whenMatched' must be a string or a pipeline");
        }
        if (auto e = o.find("whenNotMatched"); e && e->type() == bson::type::string) when_not_matched = std::string(e->get_string());
        if (auto e = o.find("let"); e && e->type() == bson::type::document) merge_let = bson::document(e->get_document());
        for (const auto& k : o) {
            const auto key = k.key();
            if (key != "into" && key != "on" && key != "whenMatched" && key != "whenNotMatched" && key != "let" &&
                key != "targetCollectionVersion")
                throw command_error(40415, "Location40415", "BSON field '$merge." + std::string(key) + "' is an unknown field.");
        }
    }
    if (when_matched != "merge" && when_matched != "replace" && when_matched != "keepExisting" && when_matched != "fail" &&
        when_matched != "pipeline")
        throw command_error(2, "BadValue", "Enumeration value '" + when_matched + "' for field '$merge.whenMatched' is not a valid value.");
    if (when_not_matched != "insert" && when_not_matched != "discard" && when_not_matched != "fail")
        throw command_error(2, "BadValue", "Enumeration value '" + when_not_matched + "' for field '$merge.whenNotMatched' is not a valid value.");
    const auto [db, coll] = output_namespace(c, into, "$merge");
    if (data.find_view(db, coll))
        throw command_error(166, "CommandNotSupportedOnView", "Cannot $merge into a view: " + db + "." + coll);
    collection& target = data.get_or_create(db, coll, log);
    for (const auto& d : docs) {
        bson::builder filter;
        for (const auto& f : on) {
            const auto v = get_path(d.view(), f);
            if (!v || v->type() == bson::type::null || v->type() == bson::type::undefined || v->type() == bson::type::array)
                throw command_error(51132, "Location51132",
                                    "$merge write error: 'on' field '" + f + "' cannot be missing, null, undefined or an array");
            filter.append(f, *v);
        }
        const bson::document match = filter.extract();
        find_options probe;
        probe.filter = match;
        probe.limit = 1;
        const bool matched = !target.find(probe).empty();
        if (!matched) {
            if (when_not_matched == "insert") target.insert(bson::document(d), log);
            else if (when_not_matched == "fail")
                throw command_error(13113, "MergeStageNoMatchingDocument",
                                    "$merge could not find a matching document in the target collection for at least one document in the source collection");
            continue;
        }
        if (when_matched == "fail") {
            target.insert(bson::document(d), log);  // fails as mongod's does: 11000 with keyPattern and keyValue
        } else if (when_matched == "replace") {
            target.update(match.view(), d.view(), false, false, log);
        } else if (when_matched == "merge") {
            bson::builder set;
            set.open_document("$set");
            for (const auto& e : d.view())
                if (e.key() != "_id") set.append(e);
            set.close_document();
            const bson::document update = set.extract();
            if (!update.view()["$set"].get_document().empty()) target.update(match.view(), update.view(), false, false, log);
        } else if (when_matched == "pipeline") {
            bson::builder vars;
            vars.concat(merge_let.view());
            if (!merge_let.view().find("new")) vars.append("new", d.view());
            const bson::document let = vars.extract();
            write_extras extras;
            extras.let = let.view();
            target.update_pipeline(match.view(), matched_pipeline->view(), false, false, log, extras);
        }
    }
}

asio::awaitable<bson::document> cmd_aggregate(context& c) {
    const bson::element first = *c.req.body.begin();
    auto pipeline = c.req.body.find("pipeline");
    if (!pipeline || pipeline->type() != bson::type::array) throw command_error(14, "TypeMismatch", "'pipeline' option must be specified as an array");
    const bson::document let = doc_or_empty(c.req.body, "let");
    std::int64_t batch = 101;
    if (auto cur = c.req.body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", 101);
    const bson::array_view stages = pipeline->get_array();
    const std::string ns = first.type() == bson::type::string ? c.db + "." + std::string(first.get_string()) : c.db + ".$cmd.aggregate";
    if (!stages.empty() && (*stages.begin()).type() == bson::type::document && (*stages.begin()).get_document().find("$changeStream")) {
        co_return open_change_stream(c.self, c.target, c.db, c.req, stages, batch);
    }

    // $out / $merge (last stage only): the rest of the pipeline, then a write.
    std::optional<bson::element> write_stage;
    std::string write_name;
    bson::builder reads(bson::builder::root::array);
    std::size_t i = 0, n = 0;
    for ([[maybe_unused]] const auto& st : stages) ++n;
    for (const auto& st : stages) {
        const std::string_view name = st.type() == bson::type::document && !st.get_document().empty()
                                          ? st.get_document().begin()->key() : std::string_view();
        if (name == "$out" || name == "$merge") {
            if (i + 1 != n) throw command_error(40601, "Location40601", std::string(name) + " can only be the final stage in the pipeline");
            write_stage = *st.get_document().begin();
            write_name = std::string(name);
        } else {
            reads.append_value(st);
        }
        ++i;
    }
    if (!write_stage) {
        std::vector<bson::document> docs;
        {
            const collation_guard by(c.req.body);
            docs = pipeline_documents(c, stages, let);
        }
        co_return cursor_reply(c.self, ns, std::move(docs), batch, false, false);
    }

    if (auto rc = c.req.body.find("readConcern"); rc && rc->type() == bson::type::document)
        if (auto level = rc->get_document().find("level"); level && level->type() == bson::type::string && level->get_string() == "linearizable")
            throw command_error(72, "InvalidOptions", write_name + " cannot be used with a 'linearizable' read concern level");
    const bson::array read_stages(reads.extract());
    std::optional<collation_guard> by(std::in_place, c.req.body);
    std::optional<bypass_guard> bypass(std::in_place, c.req.body);
    std::vector<bson::document> docs = pipeline_documents(c, read_stages.view(), let);
    // A secondary (5.0+) reads here and writes through the primary, as mongod's does.
    member* writer = &c.target;
    if (c.target.current == role::secondary) {
        writer = c.target.dep.primary;
        if (!writer || !writer->reachable()) throw command_error(10107, "NotWritablePrimary", "not primary");
    }
    context w{c.s, c.req, c.self, *writer, c.db, c.op, {}, {}, false};
    oplog log;
    try {
        if (write_name == "$out") run_out(w, writer->data, *write_stage, std::move(docs), log);
        else run_merge(w, writer->data, *write_stage, docs, log);
    } catch (const command_error&) {
        if (!log.empty()) writer->dep.record_write(*writer, std::move(log));  // what $merge did before the error stays
        throw;
    }
    by.reset();
    bypass.reset();
    ++writer->opcounters[write_name == "$out" ? "insert" : "update"];
    bson::builder b;
    b.open_document("cursor").append("firstBatch", bson::make_array()).append("id", static_cast<std::int64_t>(0)).append("ns", ns).close_document();
    co_return co_await finish_write(w, std::move(log), b);
}

// ---------------------------------------------------------------- catalog commands

// create's capped, size and max, checked and rounded as mongod's.
std::optional<capped_options> capped_of(bson::document_view body) {
    auto capped = body.find("capped");
    if (!capped || !capped->as_bool()) return std::nullopt;
    auto size = body.find("size");
    if (!size) throw command_error(72, "InvalidOptions", "the 'size' field is required when 'capped' is true");
    if (!size->is_number()) throw command_error(14, "TypeMismatch", "BSON field 'create.size' is the wrong type, expected a number");
    capped_options o;
    o.size = size->as_int64();
    if (o.size < 0) throw command_error(51024, "Location51024", "BSON field 'size' value must be >= 0, actual value '" + std::to_string(o.size) + "'");
    o.size = o.size <= 4096 ? 4096 : (o.size + 255) / 256 * 256;
    if (auto max = body.find("max")) {
        if (!max->is_number()) throw command_error(14, "TypeMismatch", "BSON field 'create.max' is the wrong type, expected a number");
        o.max = max->as_int64() < 0 ? 0 : max->as_int64();
    }
    return o;
}

// validator, validationLevel and validationAction of create or collMod, over `current`.
validation_options validation_of(bson::document_view body, std::string_view command, validation_options current) {
    if (auto v = body.find("validator")) {
        if (v->type() != bson::type::document)
            throw command_error(14, "TypeMismatch", "BSON field '" + std::string(command) + ".validator' is the wrong type, expected type 'object'");
        current.validator = bson::document(v->get_document());
        (void)matcher::compile(current.validator);  // a bad filter fails here, as mongod's
    }
    const auto enumeration = [&](std::string_view field, std::initializer_list<std::string_view> allowed, std::string& out) {
        auto e = body.find(field);
        if (!e) return;
        if (e->type() != bson::type::string)
            throw command_error(14, "TypeMismatch", "BSON field '" + std::string(command) + "." + std::string(field) + "' is the wrong type, expected type 'string'");
        if (std::find(allowed.begin(), allowed.end(), e->get_string()) == allowed.end())
            throw command_error(2, "BadValue", "Enumeration value '" + std::string(e->get_string()) + "' for field '" + std::string(command) +
                                                   "." + std::string(field) + "' is not a valid value.");
        out = std::string(e->get_string());
    };
    enumeration("validationLevel", {"off", "strict", "moderate"}, current.level);
    enumeration("validationAction", {"error", "warn"}, current.action);
    return current;
}

// collMod: the validation options (other collMod options are not simulated: 72 InvalidOptions).
asio::awaitable<bson::document> cmd_coll_mod(context& c) {
    const std::string coll = collection_arg(c.req);
    for (const auto& e : c.req.body) {
        const auto k = e.key();
        if (k == "collMod" || k == "validator" || k == "validationLevel" || k == "validationAction" || k == "writeConcern" ||
            k == "comment" || k == "lsid" || k == "txnNumber" || k == "apiVersion" || k == "apiStrict" ||
            k == "apiDeprecationErrors" || k.starts_with("$"))
            continue;
        co_return error_reply(72, "InvalidOptions", "trellis-sim: collMod option '" + std::string(k) + "' is not simulated");
    }
    refuse_view(c, coll);
    const collection* target = c.target.data.find(c.db, coll);
    if (!target) co_return error_reply(26, "NamespaceNotFound", "ns does not exist: " + c.db + "." + coll);
    oplog log;
    c.target.data.modify(c.db, coll, validation_of(c.req.body, "collMod", target->validation()), log);
    bson::builder b;
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_create(context& c) {
    oplog log;
    if (auto on = c.req.body.find("viewOn")) {
        if (on->type() != bson::type::string)
            co_return error_reply(14, "TypeMismatch", "BSON field 'create.viewOn' is the wrong type, expected type 'string'");
        auto pipeline = c.req.body.find("pipeline");
        if (pipeline && pipeline->type() != bson::type::array)
            co_return error_reply(14, "TypeMismatch", "BSON field 'create.pipeline' is the wrong type, expected type 'array'");
        c.target.data.create_view(c.db, collection_arg(c.req), on->get_string(),
                                  pipeline ? pipeline->get_array() : bson::array_view(), log);
    } else {
        const std::string coll = collection_arg(c.req);
        c.target.data.create(c.db, coll, log, capped_of(c.req.body));
        if (c.req.body.find("validator") || c.req.body.find("validationLevel") || c.req.body.find("validationAction"))
            c.target.data.modify(c.db, coll, validation_of(c.req.body, "create", validation_options{}), log);
    }
    bson::builder b;
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_drop(context& c) {
    oplog log;
    const std::string coll = collection_arg(c.req);
    if (!c.target.data.drop(c.db, coll, log)) co_return error_reply(26, "NamespaceNotFound", "ns not found");
    bson::builder b;
    b.append("ns", c.db + "." + coll).append("nIndexesWas", 1);
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_drop_database(context& c) {
    oplog log;
    c.target.data.drop_database(c.db, log);
    bson::builder b;
    b.append("dropped", c.db);
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_create_indexes(context& c) {
    const std::string coll = collection_arg(c.req);
    oplog log;
    const bool existed = c.target.data.find(c.db, coll) != nullptr;
    collection& target = write_collection(c, coll, log);
    const auto before = static_cast<std::int32_t>(target.indexes().size());
    auto indexes = c.req.body.find("indexes");
    if (!indexes || indexes->type() != bson::type::array) co_return error_reply(9, "FailedToParse", "indexes must be an array");
    for (const auto& e : indexes->get_array()) {
        if (e.type() != bson::type::document) co_return error_reply(9, "FailedToParse", "index specs must be objects");
        const bson::document_view spec = e.get_document();
        index_info info;
        auto key = spec.find("key");
        auto name = spec.find("name");
        if (!key || key->type() != bson::type::document) co_return error_reply(9, "FailedToParse", "index spec needs a key document");
        info.key = bson::document(key->get_document());
        if (name && name->type() == bson::type::string) info.name = std::string(name->get_string());
        info.unique = bool_or(spec, "unique", false);
        target.create_index(info, log);
    }
    bson::builder b;
    b.append("createdCollectionAutomatically", !existed)
        .append("numIndexesBefore", before)
        .append("numIndexesAfter", static_cast<std::int32_t>(target.indexes().size()));
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_drop_indexes(context& c) {
    const std::string coll = collection_arg(c.req);
    oplog log;
    collection* target = c.target.data.find(c.db, coll);
    if (!target) co_return error_reply(26, "NamespaceNotFound", "ns not found " + c.db + "." + coll);
    const auto before = static_cast<std::int32_t>(target->indexes().size());
    auto index = c.req.body.find("index");
    if (index && index->type() == bson::type::string) {
        target->drop_index(index->get_string(), log);
    } else if (index && index->type() == bson::type::document) {
        std::string name;
        for (const auto& i : target->indexes())
            if (i.key.view() == index->get_document()) name = i.name;
        if (name.empty()) co_return error_reply(27, "IndexNotFound", "can't find index with key: " + bson::to_json(index->get_document()));
        target->drop_index(name, log);
    } else {
        co_return error_reply(9, "FailedToParse", "dropIndexes needs an index name or key");
    }
    bson::builder b;
    b.append("nIndexesWas", before);
    co_return co_await finish_write(c, std::move(log), b);
}

bson::document cmd_list_indexes(context& c) {
    const std::string coll = collection_arg(c.req);
    const collection* target = c.target.data.find(c.db, coll);
    if (!target) throw command_error(26, "NamespaceNotFound", "ns does not exist: " + c.db + "." + coll);
    std::vector<bson::document> docs;
    for (const auto& i : target->indexes()) {
        bson::builder b;
        b.append("v", 2).append("key", i.key).append("name", i.name);
        if (i.unique) b.append("unique", true);
        docs.push_back(b.extract());
    }
    std::int64_t batch = 101;
    if (auto cur = c.req.body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", 101);
    return cursor_reply(c.self, c.db + "." + coll, std::move(docs), batch, false, false);
}

bson::document filtered(std::vector<bson::document> docs, bson::document_view filter, std::vector<bson::document>& out) {
    const matcher m = matcher::compile(filter);
    for (auto& d : docs)
        if (m.matches(d)) out.push_back(std::move(d));
    return bson::document();
}

bson::document cmd_list_collections(context& c) {
    std::vector<bson::document> all;
    const bool name_only = bool_or(c.req.body, "nameOnly", false);
    for (const auto& name : c.target.data.collection_names(c.db)) {
        bson::builder b;
        b.append("name", name).append("type", "collection");
        if (!name_only) {
            b.open_document("options");
            if (const collection* coll = c.target.data.find(c.db, name); coll && coll->capped()) {
                b.append("capped", true).append("size", coll->capped()->size);
                if (coll->capped()->max > 0) b.append("max", coll->capped()->max);
            }
            if (const collection* coll = c.target.data.find(c.db, name); coll && !coll->validation().validator.empty()) {
                b.append("validator", coll->validation().validator.view()).append("validationLevel", coll->validation().level)
                    .append("validationAction", coll->validation().action);
            }
            b.close_document();
            b.open_document("info").append("readOnly", false).close_document();
            b.open_document("idIndex").append("v", 2).append("key", bson::make_document(bson::kvp("_id", 1))).append("name", "_id_").close_document();
        }
        all.push_back(b.extract());
    }
    for (const auto& name : c.target.data.view_names(c.db)) {
        const view_info* v = c.target.data.find_view(c.db, name);
        bson::builder b;
        b.append("name", name).append("type", "view");
        if (!name_only) {
            b.open_document("options").append("viewOn", v->view_on).append("pipeline", v->pipeline).close_document();
            b.open_document("info").append("readOnly", true).close_document();
        }
        all.push_back(b.extract());
    }
    std::vector<bson::document> docs;
    filtered(std::move(all), doc_or_empty(c.req.body, "filter"), docs);
    std::int64_t batch = 101;
    if (auto cur = c.req.body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", 101);
    return cursor_reply(c.self, c.db + ".$cmd.listCollections", std::move(docs), batch, false, false);
}

bson::document cmd_list_databases(context& c) {
    std::vector<bson::document> all;
    std::int64_t total = 0;
    for (const auto& name : c.target.data.database_names()) {
        const auto size = static_cast<std::int64_t>(c.target.data.database_size(name));
        total += size;
        bson::builder b;
        b.append("name", name).append("sizeOnDisk", size).append("empty", size == 0);
        all.push_back(b.extract());
    }
    std::vector<bson::document> docs;
    filtered(std::move(all), doc_or_empty(c.req.body, "filter"), docs);
    const bool name_only = bool_or(c.req.body, "nameOnly", false);
    bson::builder b;
    b.open_array("databases");
    for (const auto& d : docs) {
        if (name_only) b.open_document().append("name", d["name"].get_string()).close_document();
        else b.append(d.view());
    }
    b.close_array();
    if (!name_only) b.append("totalSize", total).append("totalSizeMb", total / (1024 * 1024));
    b.append("ok", 1.0);
    return b.extract();
}

// renameCollection: "db.a" to "db.b" (or another database), on the admin database, as mongod.
// Logged as its parts (create, the indexes, the documents, drop), so secondaries follow.
asio::awaitable<bson::document> cmd_rename_collection(context& c) {
    if (c.db != "admin") co_return error_reply(13, "Unauthorized", "renameCollection may only be run against the admin database.");
    const bson::element from = *c.req.body.begin();
    auto to = c.req.body.find("to");
    if (from.type() != bson::type::string)
        co_return error_reply(14, "TypeMismatch", "collection name has invalid type " + std::string(bson::type_name(from.type())));
    if (!to || to->type() != bson::type::string)
        co_return error_reply(40414, "Location40414", "BSON field 'renameCollection.to' is missing but a required field");
    const std::string source(from.get_string()), dest(to->get_string());
    const auto split = [](const std::string& ns) -> std::optional<std::pair<std::string, std::string>> {
        const auto dot = ns.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 == ns.size()) return std::nullopt;
        return std::make_pair(ns.substr(0, dot), ns.substr(dot + 1));
    };
    const auto src = split(source), dst = split(dest);
    if (!src) co_return error_reply(73, "InvalidNamespace", "Invalid source namespace: " + source);
    if (!dst) co_return error_reply(73, "InvalidNamespace", "Invalid target namespace: " + dest);
    catalog& data = c.target.data;
    const collection* from_coll = data.find(src->first, src->second);
    if (!from_coll) co_return error_reply(26, "NamespaceNotFound", "Source collection " + source + " does not exist");
    if (source == dest) co_return error_reply(20, "IllegalOperation", "Can't rename a collection to itself");
    // A no-op marker first: change streams show the rename, not its parts.
    oplog log{bson::make_document(bson::kvp("op", "n"), bson::kvp("ns", "admin.$cmd"),
                                  bson::kvp("o", bson::make_document(bson::kvp("renameCollection", source), bson::kvp("to", dest))))};
    if (data.find(dst->first, dst->second)) {
        if (!bool_or(c.req.body, "dropTarget", false)) co_return error_reply(48, "NamespaceExists", "target namespace exists");
        data.drop(dst->first, dst->second, log);
    }
    // Copy before creating anything: create() checks the target name (73 InvalidNamespace).
    const std::vector<index_info> indexes = from_coll->indexes();
    std::vector<bson::document> docs;
    for (const auto& d : from_coll->documents()) docs.emplace_back(d);
    collection& target = data.create(dst->first, dst->second, log);
    for (const auto& i : indexes)
        if (i.name != "_id_") target.create_index(i, log);
    for (auto& d : docs) target.insert(std::move(d), log);
    data.drop(src->first, src->second, log);
    // Cursors on the old name go on reading what they had; new ones see the new name.
    bson::builder b;
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_copydb(context& c) {
    if (c.self.dep.cfg.max_wire_version >= 8)
        co_return error_reply(59, "CommandNotFound", "no such command: 'copydb'");
    auto from = c.req.body.find("fromdb");
    auto to = c.req.body.find("todb");
    if (!from || !to || from->type() != bson::type::string || to->type() != bson::type::string)
        co_return error_reply(9, "FailedToParse", "copydb needs fromdb and todb strings");
    const std::string fromdb(from->get_string()), todb(to->get_string());
    oplog log;
    for (const auto& name : c.target.data.collection_names(fromdb)) {
        const collection* src = c.target.data.find(fromdb, name);
        if (c.target.data.find(todb, name)) co_return error_reply(48, "NamespaceExists", "collection already exists: " + todb + "." + name);
        collection& dst = c.target.data.create(todb, name, log);
        for (const auto& i : src->indexes())
            if (i.name != "_id_") dst.create_index(i, log);
        for (const auto& d : src->documents()) dst.insert(bson::document(d), log);
    }
    bson::builder b;
    co_return co_await finish_write(c, std::move(log), b);
}

// ---------------------------------------------------------------- replica set commands

bson::document optime_doc(const optime& o) {
    bson::builder b;
    b.append("ts", o.ts).append("t", o.term);
    return b.extract();
}

int state_code(const member& m) {
    if (!m.up) return 8;
    switch (m.current) {
        case role::primary: return 1;
        case role::secondary: return 2;
        case role::arbiter: return 7;
        default: return 0;
    }
}

std::vector<member*> set_members(deployment::impl& d) {
    std::vector<member*> v;
    for (auto& x : d.members)
        if (x->current != role::mongos && !x->removed) v.push_back(x.get());
    return v;
}

bson::document cmd_repl_get_status(context& c) {
    auto& d = c.self.dep;
    if (!d.is_replica_set() || c.self.current == role::mongos || c.self.current == role::standalone)
        throw command_error(76, "NoReplicationEnabled", "not running with --replSet");
    static const char* names[] = {"STARTUP", "PRIMARY", "SECONDARY", "RECOVERING", "", "STARTUP2", "UNKNOWN", "ARBITER", "(not reachable/healthy)"};
    const auto now_wall = std::chrono::system_clock::now();
    const auto wall_of = [](const member& m) {
        return m.log.empty() ? std::chrono::system_clock::time_point{} : m.log.back().wall;
    };
    bson::builder b;
    b.append("set", d.cfg.set_name).append("date", bson::date_time(now_wall))
        .append("myState", state_code(c.self)).append("term", d.term)
        .append("syncSourceHost", c.self.current == role::secondary && d.sync_source(c.self) ? d.sync_source(c.self)->address() : "")
        .append("heartbeatIntervalMillis", static_cast<std::int64_t>(2000))
        .append("majorityVoteCount", static_cast<std::int32_t>(d.majority()))
        .append("writeMajorityCount", static_cast<std::int32_t>(d.majority()))
        .append("votingMembersCount", static_cast<std::int32_t>(d.voters()));
    const optime last = d.primary ? d.primary->applied() : c.self.applied();
    b.open_document("optimes").append("lastCommittedOpTime", optime_doc(last))
        .append("lastCommittedWallTime", bson::date_time(d.primary ? wall_of(*d.primary) : wall_of(c.self)))
        .append("appliedOpTime", optime_doc(c.self.applied())).append("durableOpTime", optime_doc(c.self.applied()))
        .append("lastAppliedWallTime", bson::date_time(wall_of(c.self))).close_document();
    if (c.self.current == role::primary) {
        // The election that made this member primary (mongod reports it on the primary).
        b.open_document("electionCandidateMetrics").append("lastElectionReason", d.election_reason)
            .append("lastElectionDate", bson::date_time(d.election_date)).append("electionTerm", d.term)
            .append("lastCommittedOpTimeAtElection", optime_doc(last)).append("lastSeenOpTimeAtElection", optime_doc(last))
            .append("numVotesNeeded", static_cast<std::int32_t>(d.majority()))
            .append("priorityAtElection", static_cast<double>(c.self.config.priority))
            .append("electionTimeoutMillis", static_cast<std::int64_t>(d.cfg.election_delay.count()))
            .append("newTermStartDate", bson::date_time(d.election_date))
            .append("wMajorityWriteAvailabilityDate", bson::date_time(d.election_date)).close_document();
    }
    b.open_array("members");
    for (member* m : set_members(d)) {
        const int st = state_code(*m);
        const bool self = m == &c.self;
        const bool healthy = m->reachable();
        b.open_document().append("_id", m->index).append("name", m->address()).append("health", healthy ? 1.0 : 0.0)
            .append("state", st).append("stateStr", names[st]);
        const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(steady::now() - m->started).count();
        b.append("uptime", static_cast<std::int64_t>(healthy ? uptime : 0));
        if (m->data_bearing()) {
            b.append("optime", optime_doc(m->applied())).append("optimeDate", bson::date_time(wall_of(*m)));
            if (!self) b.append("optimeDurable", optime_doc(m->applied())).append("optimeDurableDate", bson::date_time(wall_of(*m)));
            b.append("lastAppliedWallTime", bson::date_time(wall_of(*m))).append("lastDurableWallTime", bson::date_time(wall_of(*m)));
        }
        if (!self) {
            // Heartbeats are instantaneous in the simulator: "now" for a reachable member, pingMs its latency.
            b.append("lastHeartbeat", bson::date_time(healthy ? now_wall : std::chrono::system_clock::time_point{}))
                .append("lastHeartbeatRecv", bson::date_time(healthy ? now_wall : std::chrono::system_clock::time_point{}))
                .append("pingMs", static_cast<std::int64_t>(m->latency.count()));
            if (!healthy) b.append("lastHeartbeatMessage", "Error connecting to " + m->address() + " :: caused by :: Connection refused");
        }
        const member* source = m->current == role::secondary ? d.sync_source(*m) : nullptr;
        b.append("syncSourceHost", source ? source->address() : "").append("syncSourceId", source ? source->index : -1)
            .append("infoMessage", "");
        if (m->current == role::primary) {
            b.append("electionTime", bson::timestamp{static_cast<std::uint32_t>(std::chrono::system_clock::to_time_t(d.election_date)), 1})
                .append("electionDate", bson::date_time(d.election_date));
        }
        b.append("configVersion", d.set_version).append("configTerm", d.term);
        if (self) b.append("self", true).append("lastHeartbeatMessage", "");
        b.close_document();
    }
    b.close_array().append("ok", 1.0);
    return b.extract();
}

bson::document cmd_repl_get_config(context& c) {
    auto& d = c.self.dep;
    if (!d.is_replica_set() || c.self.current == role::mongos || c.self.current == role::standalone)
        throw command_error(76, "NoReplicationEnabled", "not running with --replSet");
    bson::builder b;
    b.open_document("config").append("_id", d.cfg.set_name).append("version", d.set_version).append("term", d.term)
        .append("protocolVersion", static_cast<std::int64_t>(1)).append("writeConcernMajorityJournalDefault", true);
    b.open_array("members");
    for (member* m : set_members(d)) {
        b.open_document().append("_id", m->index).append("host", m->address())
            .append("arbiterOnly", m->current == role::arbiter).append("buildIndexes", true).append("hidden", m->config.hidden)
            .append("priority", static_cast<double>(m->current == role::arbiter ? 0 : m->config.priority));
        b.open_document("tags");
        for (const auto& [k, v] : m->config.tags) b.append(k, v);
        b.close_document();
        b.append("secondaryDelaySecs", static_cast<std::int64_t>(0)).append("votes", 1).close_document();
    }
    b.close_array();
    b.open_document("settings").append("chainingAllowed", true).append("heartbeatIntervalMillis", 2000)
        .append("heartbeatTimeoutSecs", 10).append("electionTimeoutMillis", static_cast<std::int32_t>(d.cfg.election_delay.count()))
        .append("catchUpTimeoutMillis", -1).append("catchUpTakeoverDelayMillis", 30000)
        .append("getLastErrorModes", bson::document())
        .append("getLastErrorDefaults", bson::make_document(bson::kvp("w", 1), bson::kvp("wtimeout", 0)))
        .append("replicaSetId", d.replica_set_id).close_document();
    b.close_document().append("ok", 1.0);
    return b.extract();
}

bson::document cmd_repl_step_down(context& c) {
    auto& d = c.self.dep;
    if (c.self.current != role::primary) throw command_error(10107, "NotWritablePrimary", "not primary so can't step down");
    const std::int64_t secs = c.req.body.begin()->is_number() ? c.req.body.begin()->as_int64() : 60;
    bson::builder cmd;
    cmd.append("simStepDown", c.self.address()).append("secs", secs);
    return d.control_command(cmd.extract());
}

bson::document cmd_repl_reconfig(context& c) {
    auto& d = c.self.dep;
    if (!d.is_replica_set()) throw command_error(76, "NoReplicationEnabled", "not running with --replSet");
    if (c.self.current != role::primary) throw command_error(10107, "NotWritablePrimary", "replSetReconfig should only be run on a writable PRIMARY");
    const bson::element cfg = *c.req.body.begin();
    if (cfg.type() != bson::type::document) throw command_error(14, "TypeMismatch", "replSetReconfig takes a configuration document");
    const bson::document_view conf = cfg.get_document();
    const std::int64_t version = int_or(conf, "version", d.set_version + 1);
    if (version <= d.set_version)
        throw command_error(103, "NewReplicaSetConfigurationIncompatible",
                            "New config version " + std::to_string(version) + " must be greater than the current " + std::to_string(d.set_version));
    auto members = conf.find("members");
    if (!members || members->type() != bson::type::array) throw command_error(93, "InvalidReplicaSetConfig", "config needs members");
    std::set<member*> listed;
    for (const auto& e : members->get_array()) {
        if (e.type() != bson::type::document) continue;
        const bson::document_view md = e.get_document();
        auto host = md.find("host");
        if (!host || host->type() != bson::type::string) throw command_error(93, "InvalidReplicaSetConfig", "member needs a host");
        member* m = d.find_member(std::string(host->get_string()));
        if (!m) throw command_error(103, "NewReplicaSetConfigurationIncompatible", "trellis-sim cannot add " + std::string(host->get_string()) + "; use simAddMember");
        listed.insert(m);
        m->config.priority = static_cast<int>(int_or(md, "priority", m->config.priority));
        m->config.hidden = bool_or(md, "hidden", m->config.hidden);
        if (m->config.hidden) m->config.priority = 0;
        if (auto tags = md.find("tags"); tags && tags->type() == bson::type::document) {
            m->config.tags.clear();
            for (const auto& t : tags->get_document())
                if (t.type() == bson::type::string) m->config.tags[std::string(t.key())] = std::string(t.get_string());
        }
    }
    for (auto& m : d.members)
        if (m->current != role::mongos && !m->removed && !listed.count(m.get())) {
            m->removed = true;
            d.stop_listening(*m);
        }
    d.set_version = static_cast<int>(version);
    for (auto& m : d.members) m->bump_topology_version();
    bson::builder b;
    b.append("ok", 1.0);
    return b.extract();
}

// ---------------------------------------------------------------- admin

bson::document cmd_build_info(context& c) {
    const std::string v = version_for_wire(c.self.dep.cfg.max_wire_version);
    bson::builder b;
    b.append("version", v).append("gitVersion", "trellis-sim").append("modules", bson::make_array())
        .append("sysInfo", "deprecated");
    b.open_array("versionArray");
    int parts[3] = {0, 0, 0};
    std::sscanf(v.c_str(), "%d.%d.%d", &parts[0], &parts[1], &parts[2]);
    for (int p : parts) b.append(p);
    b.append(0).close_array();
    b.append("bits", 64).append("debug", false).append("maxBsonObjectSize", c.self.dep.cfg.max_bson_object_size).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_server_status(context& c) {
    member& m = c.self;
    const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - m.started).count();
    bson::builder b;
    b.append("host", m.address()).append("version", version_for_wire(m.dep.cfg.max_wire_version))
        .append("process", m.current == role::mongos ? "mongos" : "mongod").append("pid", static_cast<std::int64_t>(::getpid()))
        .append("uptime", static_cast<double>(up / 1000)).append("uptimeMillis", static_cast<std::int64_t>(up))
        .append("uptimeEstimate", static_cast<std::int64_t>(up / 1000))
        .append("localTime", bson::date_time(std::chrono::system_clock::now()));
    b.open_document("connections").append("current", static_cast<std::int32_t>(m.sessions.size()))
        .append("available", static_cast<std::int32_t>(838860 - m.sessions.size()))
        .append("totalCreated", m.connections_created).close_document();
    b.open_document("network").append("bytesIn", m.bytes_in).append("bytesOut", m.bytes_out)
        .append("numRequests", m.requests);
    // mongod's byte counts per compressor (this process's, so every member's together).
    b.open_document("compression");
    for (const auto& cc : m.dep.counted) {
        b.open_document(cc->name());
        b.open_document("compressor").append("bytesIn", cc->compressor_in.load()).append("bytesOut", cc->compressor_out.load())
            .close_document();
        b.open_document("decompressor").append("bytesIn", cc->decompressor_in.load())
            .append("bytesOut", cc->decompressor_out.load()).close_document();
        b.close_document();
    }
    b.close_document().close_document();
    // Not in mongod: what arrived as OP_MSG document sequences (tests check the wire with it).
    b.open_document("trellisSim").open_document("documentSequences");
    for (const auto& [id, n] : m.sequences_in)
        b.open_document(id).append("sequences", n).append("documents", m.sequence_documents_in[id]).close_document();
    b.close_document().close_document();
    b.open_document("opcounters");
    for (const char* k : {"insert", "query", "update", "delete", "getmore", "command"}) b.append(k, m.opcounters[k]);
    b.close_document();
    b.open_document("opcountersRepl");
    for (const char* k : {"insert", "query", "update", "delete", "getmore", "command"}) b.append(k, m.opcounters_repl[k]);
    b.close_document();
    if (m.dep.is_replica_set() && m.current != role::mongos && m.current != role::standalone) {
        // mongod's repl section: the hello fields of the member.
        request as_hello = c.req;
        as_hello.name = "hello";
        const bson::document hello = hello_reply(c.s, as_hello);
        b.open_document("repl");
        for (const char* k : {"topologyVersion", "hosts", "passives", "arbiters", "setName", "setVersion", "isWritablePrimary",
                              "ismaster", "secondary", "arbiterOnly", "hidden", "primary", "me", "electionId", "tags", "lastWrite"})
            if (auto e = hello.view().find(k)) b.append(*e);
        b.append("rbid", 1).close_document();
    }
    if (m.fsync_lock_count > 0) b.append("fsyncLock", true);
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_fsync(context& c) {
    member& m = c.target;
    bson::builder b;
    if (bool_or(c.req.body, "lock", false)) {
        ++m.fsync_lock_count;
        b.append("info", "now locked against writes, use db.fsyncUnlock() to unlock").append("lockCount", m.fsync_lock_count)
            .append("seeAlso", "http://dochub.mongodb.org/core/fsynccommand");
    } else {
        b.append("numFiles", 1);
    }
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_fsync_unlock(context& c) {
    member& m = c.target;
    if (m.fsync_lock_count == 0) throw command_error(125, "CommandFailed", "fsyncUnlock called when not locked");
    if (--m.fsync_lock_count == 0) m.fsync_unlocked.notify();
    bson::builder b;
    b.append("info", "fsyncUnlock completed").append("lockCount", m.fsync_lock_count).append("ok", 1.0);
    return b.extract();
}

// currentOp: the commands running on this member, as mongod's inprog documents; every
// field but the command's options filters them, as mongod's currentOp does.
bson::document cmd_current_op(context& c) {
    member& m = c.self;
    bson::builder filter;
    for (const auto& e : c.req.body.view()) {
        const auto k = e.key();
        if (k == "currentOp" || k == "$all" || k == "$ownOps" || k == "$db" || k == "lsid" || k == "$clusterTime" ||
            k == "$readPreference" || k == "apiVersion" || k == "apiStrict" || k == "apiDeprecationErrors")
            continue;
        filter.append(e);
    }
    const matcher match = matcher::compile(filter.extract());
    const auto now_steady = steady::now();
    bson::builder b;
    b.open_array("inprog");
    for (const auto& [id, op] : m.ops) {
        const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now_steady - op.started).count();
        std::string coll;
        if (auto first = op.command.begin(); first != op.command.end() && first->type() == bson::type::string)
            coll = std::string(first->get_string());
        bson::builder d;
        d.append("type", "op").append("host", m.address()).append("desc", "conn" + std::to_string(op.connection_id))
            .append("connectionId", static_cast<std::int32_t>(op.connection_id)).append("client", op.client);
        if (!op.app_name.empty()) d.append("appName", op.app_name);
        d.append("active", true).append("currentOpTime", bson::date_time(std::chrono::system_clock::now()))
            .append("opid", static_cast<std::int32_t>(op.opid))
            .append("secs_running", static_cast<std::int64_t>(micros / 1000000))
            .append("microsecs_running", static_cast<std::int64_t>(micros))
            .append("op", "command").append("ns", op.db + "." + (coll.empty() ? "$cmd" : coll))
            .append("command", op.command).append("killPending", op.killed).append("waitingForLock", false);
        const bson::document doc = d.extract();
        if (match.matches(doc)) b.append(doc.view());
    }
    b.close_array();
    if (c.target.fsync_lock_count > 0) b.append("fsyncLock", true).append("info", "use db.fsyncUnlock() to terminate the fsync write/snapshot lock");
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_kill_op(context& c) {
    if (c.db != "admin") throw command_error(13, "Unauthorized", "killOp may only be run against the admin database.");
    auto op = c.req.body.find("op");
    if (!op || !op->is_number()) throw command_error(40414, "Location40414", "BSON field 'killOp.op' is missing but a required field");
    member& m = c.self;
    if (auto it = m.ops.find(op->as_int64()); it != m.ops.end()) {
        it->second.killed = true;
        m.dep.data_changed.notify();  // wakes blocked fail points and write-concern waits
        m.fsync_unlocked.notify();
        if (c.target.fsync_lock_count > 0) c.target.fsync_unlocked.notify();
    }
    bson::builder b;
    b.append("info", "attempting to kill op").append("ok", 1.0);
    return b.extract();
}

bson::document cmd_get_log(context& c) {
    if (c.db != "admin") throw command_error(13, "Unauthorized", "getLog may only be run against the admin database.");
    const bson::element which = *c.req.body.begin();
    if (which.type() != bson::type::string)
        throw command_error(14, "TypeMismatch", "Argument to getLog must be of type String; found " + std::string(bson::type_name(which.type())));
    const auto name = which.get_string();
    auto& d = c.self.dep;
    bson::builder b;
    if (name == "*") {
        b.append("names", bson::make_array("global", "startupWarnings"));
    } else if (name == "startupWarnings" || name == "global") {
        std::vector<std::string> lines;
        if (name == "startupWarnings") lines = d.startup_warnings;
        else lines = recent_log_lines();
        b.append("totalLinesWritten", static_cast<std::int32_t>(lines.size()));
        b.open_array("log");
        for (const auto& l : lines) b.append(l);
        b.close_array();
    } else {
        throw command_error(72, "InvalidOptions", "No log named '" + std::string(name) + "'");
    }
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_get_cmd_line_opts(context& c) {
    if (c.db != "admin") throw command_error(13, "Unauthorized", "getCmdLineOpts may only be run against the admin database.");
    auto& d = c.self.dep;
    bson::builder b;
    b.open_array("argv");
    if (d.cfg.argv.empty()) b.append("trellis-sim");
    for (const auto& a : d.cfg.argv) b.append(a);
    b.close_array();
    b.open_document("parsed");
    b.open_document("net").append("bindIp", d.cfg.host).append("port", static_cast<std::int32_t>(c.self.port));
    if (d.cfg.tls.enabled()) b.open_document("tls").append("mode", "requireTLS").close_document();
    b.close_document();
    if (d.is_replica_set() && c.self.current != role::mongos && c.self.current != role::standalone)
        b.open_document("replication").append("replSet", d.cfg.set_name).close_document();
    if (d.auth_enabled()) b.open_document("security").append("authorization", "enabled").close_document();
    if (c.self.current == role::mongos) b.open_document("sharding").append("configDB", "trellis-sim").close_document();
    b.close_document();
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_host_info(context& c) {
    struct utsname u {};
    ::uname(&u);
    char hostname[256] = {};
    ::gethostname(hostname, sizeof hostname - 1);
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
    const auto mem_mb = static_cast<std::int64_t>(pages > 0 && page_size > 0 ? (pages / 1024) * page_size / 1024 : 0);
    const auto cores = static_cast<std::int32_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    bson::builder b;
    b.open_document("system").append("currentTime", bson::date_time(std::chrono::system_clock::now()))
        .append("hostname", std::string(hostname) + ":" + std::to_string(c.self.port)).append("cpuAddrSize", 64)
        .append("memSizeMB", mem_mb).append("memLimitMB", mem_mb).append("numCores", cores)
        .append("numPhysicalCores", cores).append("cpuArch", u.machine).append("numaEnabled", false).close_document();
    b.open_document("os").append("type", u.sysname).append("name", u.sysname).append("version", u.release).close_document();
    b.open_document("extra").append("versionString", u.version).append("pageSize", static_cast<std::int64_t>(page_size)).close_document();
    b.append("ok", 1.0);
    return b.extract();
}

// dbStats and collStats: counts and sizes of the in-memory data (storage = data; no
// compression, no preallocation).
bson::document cmd_db_stats(context& c) {
    const catalog& data = c.target.data;
    std::int64_t objects = 0, size = 0, indexes = 0;
    const auto names = data.collection_names(c.db);
    for (const auto& n : names) {
        const collection* coll = data.find(c.db, n);
        objects += static_cast<std::int64_t>(coll->size());
        size += static_cast<std::int64_t>(coll->data_size());
        indexes += static_cast<std::int64_t>(coll->indexes().size());
    }
    bson::builder b;
    b.append("db", c.db).append("collections", static_cast<std::int64_t>(names.size())).append("views", 0)
        .append("objects", objects).append("avgObjSize", objects ? static_cast<double>(size) / static_cast<double>(objects) : 0.0)
        .append("dataSize", static_cast<double>(size)).append("storageSize", static_cast<double>(size))
        .append("indexes", indexes).append("indexSize", 0.0).append("totalSize", static_cast<double>(size))
        .append("scaleFactor", 1).append("fsUsedSize", 0.0).append("fsTotalSize", 0.0).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_coll_stats(context& c) {
    const std::string coll = collection_arg(c.req);
    const collection* target = c.target.data.find(c.db, coll);
    if (!target) throw command_error(26, "NamespaceNotFound", "Collection [" + c.db + "." + coll + "] not found.");
    bson::builder b;
    b.append("ns", c.db + "." + coll);
    storage_stats(b, *target);
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_configure_fail_point(context& c) {
    const bson::element first = *c.req.body.begin();
    const bool primary_write = first.type() == bson::type::string && first.get_string() == "onPrimaryTransactionalWrite";
    if (first.type() != bson::type::string || (first.get_string() != "failCommand" && !primary_write))
        throw command_error(2, "BadValue", "trellis-sim supports only the failCommand and onPrimaryTransactionalWrite fail points");
    fail_point fp;
    auto mode = c.req.body.find("mode");
    if (!mode) throw command_error(9, "FailedToParse", "configureFailPoint needs a mode");
    if (mode->type() == bson::type::string) {
        if (mode->get_string() == "alwaysOn") fp.mode = fail_point::mode_kind::always;
        else if (mode->get_string() == "off") fp.mode = fail_point::mode_kind::off;
        else throw command_error(2, "BadValue", "unknown fail point mode " + std::string(mode->get_string()));
    } else if (mode->type() == bson::type::document) {
        const bson::document_view md = mode->get_document();
        if (auto t = md.find("times")) {
            fp.mode = fail_point::mode_kind::times;
            fp.count = t->as_int64();
        } else if (auto s = md.find("skip")) {
            fp.mode = fail_point::mode_kind::skip;
            fp.count = s->as_int64();
        } else {
            throw command_error(2, "BadValue", "mode document needs times or skip");
        }
    }
    if (auto data = c.req.body.find("data"); data && data->type() == bson::type::document) {
        const bson::document_view d = data->get_document();
        if (auto cmds = d.find("failCommands"); cmds && cmds->type() == bson::type::array)
            for (const auto& e : cmds->get_array())
                if (e.type() == bson::type::string) fp.commands.insert(std::string(e.get_string()));
        if (auto e = d.find("errorCode"); e && e->is_number()) fp.error_code = static_cast<int>(e->as_int64());
        if (auto e = d.find("failBeforeCommitExceptionCode"); e && e->is_number())
            fp.fail_before_commit_code = static_cast<int>(e->as_int64());
        fp.close_connection = bool_or(d, "closeConnection", primary_write);
        if (bool_or(d, "blockConnection", false)) fp.block = std::chrono::milliseconds(int_or(d, "blockTimeMS", 0));
        if (auto e = d.find("writeConcernError"); e && e->type() == bson::type::document) fp.write_concern_error = bson::document(e->get_document());
        if (auto e = d.find("errorLabels"); e && e->type() == bson::type::array) fp.error_labels = bson::document(e->get_array());
        if (auto e = d.find("appName"); e && e->type() == bson::type::string) fp.app_name = std::string(e->get_string());
        fp.corrupt_compressed_reply = bool_or(d, "corruptCompressedReply", false);
    } else if (primary_write) {
        fp.close_connection = true;  // mongod's default for onPrimaryTransactionalWrite
    }
    // failCommand is the process's own (a router's for a router, as on mongos, where the
    // commands it fails are checked); onPrimaryTransactionalWrite is the shard primary's.
    (primary_write ? c.target.primary_write : c.self.fail) = fp;
    bson::builder b;
    b.append("count", 0).append("ok", 1.0);
    return b.extract();
}

// Decides whether the fail point fires for this command, counting it down.
bool fail_point_fires(member& m, const session& s, const std::string& name) {
    fail_point& fp = m.fail;
    if (fp.mode == fail_point::mode_kind::off || !fp.commands.count(name)) return false;
    if (fp.app_name && *fp.app_name != s.app_name) return false;
    switch (fp.mode) {
        case fail_point::mode_kind::always: return true;
        case fail_point::mode_kind::times:
            if (fp.count <= 0) return false;
            if (--fp.count == 0) fp.mode = fail_point::mode_kind::off;
            return true;
        case fail_point::mode_kind::skip:
            if (fp.count > 0) {
                --fp.count;
                return false;
            }
            return true;
        case fail_point::mode_kind::off: return false;
    }
    return false;
}

}  // namespace

// ---------------------------------------------------------------- hello

bson::document hello_reply(session& s, const request& req) {
    member& m = s.owner;
    auto& d = m.dep;
    const bool hello_cmd = req.name == "hello";
    const bool writable = m.current == role::primary || m.current == role::master || m.current == role::standalone ||
                          m.current == role::mongos;
    bson::builder b;
    b.append(hello_cmd ? "isWritablePrimary" : "ismaster", writable && m.reachable());
    b.open_document("topologyVersion").append("processId", m.process_id).append("counter", m.tv_counter).close_document();
    if (m.current == role::mongos) b.append("msg", "isdbgrid");
    if (d.is_replica_set() && m.current != role::mongos && m.current != role::standalone) {
        b.append("setName", d.cfg.set_name).append("setVersion", d.set_version);
        b.append("secondary", m.current == role::secondary);
        if (m.current == role::arbiter) b.append("arbiterOnly", true);
        if (m.config.hidden) b.append("hidden", true);
        auto list = [&](const char* key, auto pred) {
            bool any = false;
            for (auto& x : d.members)
                if (!x->removed && x->current != role::mongos && pred(*x)) any = true;
            if (!any) return;
            b.open_array(key);
            for (auto& x : d.members)
                if (!x->removed && x->current != role::mongos && pred(*x)) b.append(x->address());
            b.close_array();
        };
        list("hosts", [](const member& x) { return x.current != role::arbiter && !x.config.hidden && x.config.priority > 0; });
        list("passives", [](const member& x) { return x.current != role::arbiter && !x.config.hidden && x.config.priority == 0; });
        list("arbiters", [](const member& x) { return x.current == role::arbiter; });
        // A partitioned member does not know who the primary is.
        if (d.primary && d.primary->reachable() && m.reachable()) b.append("primary", d.primary->address());
        b.append("me", m.address());
        if (m.current == role::primary) b.append("electionId", d.election_id);
        if (!m.config.tags.empty()) {
            b.open_document("tags");
            for (const auto& [k, v] : m.config.tags) b.append(k, v);
            b.close_document();
        }
    } else if (m.current == role::slave) {
        b.append("me", m.address());
    }
    if (m.data_bearing() && (d.is_replica_set() || d.cfg.topology == topology_kind::master_slave) && m.current != role::standalone) {
        const optime op = m.applied();
        const auto wall = m.log.empty() ? std::chrono::system_clock::now() : m.log.back().wall;
        b.open_document("lastWrite").append("opTime", optime_doc(op)).append("lastWriteDate", bson::date_time(wall))
            .append("majorityOpTime", optime_doc(op)).append("majorityWriteDate", bson::date_time(wall)).close_document();
    }
    b.append("maxBsonObjectSize", d.cfg.max_bson_object_size).append("maxMessageSizeBytes", d.cfg.max_message_size_bytes)
        .append("maxWriteBatchSize", m.config.max_write_batch_size.value_or(d.cfg.max_write_batch_size)).append("localTime", bson::date_time(std::chrono::system_clock::now()))
        .append("logicalSessionTimeoutMinutes", 30).append("connectionId", static_cast<std::int32_t>(s.connection_id))
        .append("minWireVersion", d.cfg.min_wire_version).append("maxWireVersion", d.cfg.max_wire_version)
        .append("readOnly", false);
    if (bool_or(req.body, "helloOk", false)) b.append("helloOk", true);
    // Compression negotiation: the client's list, in its order, that we also have.
    if (auto offered = req.body.find("compression"); offered && offered->type() == bson::type::array) {
        b.open_array("compression");
        for (const auto& e : offered->get_array())
            if (e.type() == bson::type::string && e.get_string() != "noop" && d.compressors->find(e.get_string()))
                b.append(e.get_string());
        b.close_array();
    }
    add_hello_auth_fields(s, req, b);
    if (std::exchange(s.lb_send_service_id, false)) b.append("serviceId", m.service_id);
    b.append("ok", 1.0);
    return b.extract();
}

// ---------------------------------------------------------------- the command table

namespace {

using handler = asio::awaitable<bson::document> (*)(context&);

// A handler that does not wait, as a table entry.
template <bson::document (*F)(context&)>
asio::awaitable<bson::document> now(context& c) {
    co_return F(c);
}

asio::awaitable<bson::document> cmd_hello(context& c) {
    member& m = c.self;
    // Awaitable hello: wait for a topology change or maxAwaitTimeMS.
    auto tv = c.req.body.find("topologyVersion");
    auto await_ms = c.req.body.find("maxAwaitTimeMS");
    if (tv && await_ms && tv->type() == bson::type::document && await_ms->is_number()) {
        const bson::document_view tvd = tv->get_document();
        auto pid = tvd.find("processId");
        auto counter = tvd.find("counter");
        if (pid && counter && pid->type() == bson::type::oid && pid->get_oid() == m.process_id && counter->is_number() &&
            counter->as_int64() == m.tv_counter) {
            const auto deadline = steady::now() + std::chrono::milliseconds(await_ms->as_int64());
            while (m.tv_counter == counter->as_int64() && steady::now() < deadline && m.dep.running)
                co_await m.changed.wait_until(deadline);
        }
    }
    co_return hello_reply(c.s, c.req);
}

bson::document cmd_ping(context&) { return bson::make_document(bson::kvp("ok", 1.0)); }

bson::document cmd_auth(context& c) { return auth_command(c.s, c.req); }

// getnonce: gone in 6.2 (wire version 19); before, a random nonce (MONGODB-CR, long removed).
bson::document cmd_getnonce(context& c) {
    if (c.self.dep.cfg.max_wire_version >= 19) return error_reply(59, "CommandNotFound", "no such command: 'getnonce'");
    thread_local std::mt19937_64 random{std::random_device{}()};
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(random()));
    bson::builder b;
    b.append("nonce", std::string_view(text, 16)).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_whatsmyuri(context& c) {
    bson::builder b;
    b.append("you", c.s.peer).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_get_last_error(context& c) {
    bson::builder b;
    b.append("connectionId", static_cast<std::int32_t>(c.s.connection_id)).append("n", 0).append("syncMillis", 0)
        .append("writtenTo", bson::null).append("err", bson::null).append("ok", 1.0);
    return b.extract();
}

struct command_spec {
    std::string_view name;
    std::vector<std::string_view> aliases;
    handler run;
    unsigned flags;
    int min_wire = 0;  // older versions do not know it (59 CommandNotFound): bulkWrite is 8.0's (25)
};

// Flag sets of the usual kinds of command.
constexpr unsigned crud_write = needs_auth | writes | retryable;
constexpr unsigned ddl = needs_auth | writes;
constexpr unsigned crud_read = needs_auth | on_secondary | reads;
constexpr unsigned admin = needs_auth | on_secondary | on_arbiter;
constexpr unsigned no_auth = on_secondary | on_arbiter;  // no authentication needed

asio::awaitable<bson::document> cmd_end_transaction(context& c);  // commitTransaction, abortTransaction

// Every command a member answers. Anything else: 59 CommandNotFound, as mongod.
const std::vector<command_spec>& command_table() {
    // Never destroyed: a member thread may still dispatch a command while the process exits
    // (an in-process deployment outliving main), after function statics are gone.
    static const auto& table = *new const std::vector<command_spec>{
        {"hello", {"isMaster", "ismaster"}, cmd_hello, no_auth},
        {"ping", {}, now<cmd_ping>, no_auth},
        {"buildInfo", {"buildinfo"}, now<cmd_build_info>, no_auth},
        {"saslStart", {}, now<cmd_auth>, no_auth},
        {"saslContinue", {}, now<cmd_auth>, no_auth},
        {"authenticate", {}, now<cmd_auth>, no_auth},
        {"logout", {}, now<cmd_auth>, no_auth},
        {"getnonce", {}, now<cmd_auth>, no_auth},
        {"endSessions", {}, now<cmd_end_sessions>, no_auth},
        {"killSessions", {}, now<cmd_ping>, admin},
        {"refreshSessions", {}, now<cmd_ping>, admin},
        {"whatsmyuri", {}, now<cmd_whatsmyuri>, admin},
        {"getnonce", {}, now<cmd_getnonce>, no_auth},
        {"getLastError", {"getlasterror"}, now<cmd_get_last_error>, admin},

        {"insert", {}, cmd_insert, crud_write},
        {"commitTransaction", {}, cmd_end_transaction, crud_write},
        {"abortTransaction", {}, cmd_end_transaction, crud_write},
        {"update", {}, cmd_update, crud_write},
        {"delete", {}, cmd_delete, crud_write},
        {"findAndModify", {"findandmodify"}, cmd_find_and_modify, crud_write},
        {"bulkWrite", {}, cmd_bulk_write, crud_write, 25},

        {"find", {}, now<cmd_find>, crud_read},
        {"getMore", {}, cmd_get_more, needs_auth | on_secondary},
        {"killCursors", {}, now<cmd_kill_cursors>, needs_auth | on_secondary},
        {"count", {}, now<cmd_count>, crud_read},
        {"distinct", {}, now<cmd_distinct>, crud_read},
        {"aggregate", {}, cmd_aggregate, crud_read},
        {"listIndexes", {}, now<cmd_list_indexes>, crud_read},
        {"listCollections", {}, now<cmd_list_collections>, crud_read},
        {"listDatabases", {}, now<cmd_list_databases>, crud_read},
        {"dbStats", {"dbstats"}, now<cmd_db_stats>, crud_read},
        {"collStats", {"collstats"}, now<cmd_coll_stats>, crud_read},

        {"create", {}, cmd_create, ddl},
        {"drop", {}, cmd_drop, ddl},
        {"dropDatabase", {}, cmd_drop_database, ddl},
        {"createIndexes", {}, cmd_create_indexes, ddl},
        {"dropIndexes", {"deleteIndexes"}, cmd_drop_indexes, ddl},
        {"renameCollection", {}, cmd_rename_collection, ddl},
        {"collMod", {}, cmd_coll_mod, ddl},
        {"copydb", {}, cmd_copydb, ddl},

        {"serverStatus", {}, now<cmd_server_status>, admin},
        {"currentOp", {}, now<cmd_current_op>, admin},
        {"killOp", {}, now<cmd_kill_op>, admin},
        {"getLog", {}, now<cmd_get_log>, admin},
        {"getCmdLineOpts", {}, now<cmd_get_cmd_line_opts>, admin},
        {"hostInfo", {}, now<cmd_host_info>, admin},
        {"fsync", {}, now<cmd_fsync>, admin},
        {"fsyncUnlock", {}, now<cmd_fsync_unlock>, admin},
        {"configureFailPoint", {}, now<cmd_configure_fail_point>, admin},
        {"replSetGetStatus", {}, now<cmd_repl_get_status>, admin},
        {"replSetGetConfig", {}, now<cmd_repl_get_config>, admin},
        {"replSetStepDown", {}, now<cmd_repl_step_down>, admin},
        {"replSetReconfig", {}, now<cmd_repl_reconfig>, admin},
    };
    return table;
}

const command_spec* find_command(std::string_view name) {
    // Never destroyed, as the table.
    static const auto& by_name = *[] {
        auto* m = new std::map<std::string_view, const command_spec*>;
        for (const auto& spec : command_table()) {
            (*m)[spec.name] = &spec;
            for (auto alias : spec.aliases) (*m)[alias] = &spec;
        }
        return m;
    }();
    const auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
}

// Members of a replica set and routers gossip the cluster time (the latest optime written)
// and tell the operation time (the member's last applied optime), as mongod does; the
// signature is all zeros (no keys: clients without auth never verify it).
bson::document with_cluster_time(member& m, bson::document reply) {
    auto& d = m.dep;
    if (!(d.is_replica_set() || m.current == role::mongos) || m.current == role::standalone || m.current == role::arbiter)
        return reply;
    if (reply.view().find("$clusterTime")) return reply;
    const member& source = m.current == role::mongos && d.primary ? *d.primary : m;
    const bson::timestamp op_time = source.applied().ts;
    bson::builder b;
    b.concat(reply);
    const std::array<std::uint8_t, 20> zeros{};
    b.open_document("$clusterTime").append("clusterTime", std::max(d.latest_written(), op_time))
        .open_document("signature").append("hash", bson::binary{bson::binary_subtype::generic, zeros})
        .append("keyId", static_cast<std::int64_t>(0)).close_document().close_document();
    b.append("operationTime", op_time);
    return b.extract();
}

bool counted_as_command(std::string_view name) {
    return name != "insert" && name != "update" && name != "delete" && name != "find" && name != "getMore";
}

}  // namespace

bool is_hello_command(std::string_view name) {
    const command_spec* spec = find_command(name);
    return spec && spec->name == "hello";
}

// ---------------------------------------------------------------- dispatch

namespace {

// The checks of the table's flags, in mongod's order. An error reply, or nullopt to go on.
// A key an older mongod refused to store: $-prefixed at any depth (DBRef's $ref, $id and $db
// aside); returns its path.
std::optional<std::string> dollar_prefixed(bson::document_view d, const std::string& prefix = "") {
    for (const auto& e : d) {
        const std::string_view k = e.key();
        if (!k.empty() && k[0] == '$' && k != "$ref" && k != "$id" && k != "$db") return prefix + std::string(k);
        if (e.type() == bson::type::document)
            if (auto p = dollar_prefixed(e.get_document(), prefix + std::string(k) + ".")) return p;
    }
    return std::nullopt;
}

// What mongod did not know before 4.4 (wire version 9) and 5.0 (13), refused in its words: the
// CRUD spec's tests of older servers expect these errors (trellis-sim plays a version by
// --max-wire-version).
std::optional<bson::document> unknown_to_version(const request& req, int wire) {
    const std::string& n = req.name;
    const bson::document_view b = req.body.view();
    const auto unknown = [&](const std::string& field) {
        return error_reply(40415, "Location40415", "BSON field '" + field + "' is an unknown field.");
    };
    const bool crud_write = n == "insert" || n == "update" || n == "delete" || n == "findAndModify";
    if (wire < 25 && n == "update")  // an update statement's sort is 8.0's
        if (auto ups = b.find("updates"); ups && ups->type() == bson::type::array)
            for (const auto& u : ups->get_array())
                if (u.type() == bson::type::document && u.get_document().contains("sort")) return unknown("update.updates.sort");
    // rawData, a generic argument since 8.2 (wire 27); before, every command's unknown field.
    if (auto raw = b.find("rawData")) {
        if (wire < 27) return unknown(n + ".rawData");
        if (raw->type() != bson::type::boolean)
            return error_reply(14, "TypeMismatch", "BSON field '" + n + ".rawData' is the wrong type '" +
                                                       std::string(bson::type_name(raw->type())) + "', expected type 'bool'");
    }
    // distinct takes a hint since 7.1 (wire 22).
    if (wire < 22 && n == "distinct" && b.contains("hint")) return unknown("distinct.hint");
    if (wire < 13) {
        // count and distinct took a document comment from 4.4.14; wire version 9 plays 4.4.0.
        if (n == "count" && b.contains("comment")) return unknown("count.comment");
        if (n == "distinct")
            if (auto c = b.find("comment"); c && c->type() != bson::type::string)
                return error_reply(14, "TypeMismatch", "BSON field 'distinct.comment' is the wrong type '" +
                                                           std::string(bson::type_name(c->type())) + "', expected type 'string'");
        if (b.contains("let")) {
            if (n == "aggregate") return error_reply(9, "FailedToParse", "unrecognized field 'let'");
            if (n == "find") return error_reply(2, "BadValue", "Failed to parse: Unrecognized field 'let'.");
            if (n == "findAndModify") return unknown("let");
            if (n == "update" || n == "delete") return unknown(n + ".let");
        }
        const auto refuse_dollars = [&](bson::document_view d) -> std::optional<bson::document> {
            if (auto path = dollar_prefixed(d))
                return error_reply(52, "DollarPrefixedFieldName", "The dollar ($) prefixed field '" + *path + "' is not valid for storage.");
            return std::nullopt;
        };
        if (n == "insert")
            if (auto docs = b.find("documents"); docs && docs->type() == bson::type::array)
                for (const auto& d : docs->get_array())
                    if (d.type() == bson::type::document)
                        if (auto r = refuse_dollars(d.get_document())) return r;
        if (n == "update")
            if (auto ups = b.find("updates"); ups && ups->type() == bson::type::array)
                for (const auto& u : ups->get_array())
                    if (u.type() == bson::type::document)
                        if (auto r = u.get_document().find("u"); r && r->type() == bson::type::document) {
                            const bson::document_view repl = r->get_document();
                            const bool replacement = repl.empty() || repl.begin()->key().empty() || repl.begin()->key()[0] != '$';
                            if (replacement)
                                if (auto e = refuse_dollars(repl)) return e;
                        }
        if (n == "findAndModify")
            if (auto r = b.find("update"); r && r->type() == bson::type::document) {
                const bson::document_view repl = r->get_document();
                if (!repl.empty() && !repl.begin()->key().empty() && repl.begin()->key()[0] != '$')
                    if (auto e = refuse_dollars(repl)) return e;
            }
    }
    if (wire < 9) {
        if (auto c = b.find("comment")) {
            if (crud_write || n == "distinct") return unknown(n + ".comment");
            if (c->type() != bson::type::string && (n == "find" || n == "aggregate" || n == "distinct"))
                return error_reply(14, "TypeMismatch", "BSON field '" + n + ".comment' is the wrong type '" +
                                                           std::string(bson::type_name(c->type())) + "', expected type 'string'");
        }
        if (n == "find" && b.contains("allowDiskUse")) return unknown("allowDiskUse");
        if (n == "findAndModify" && b.contains("hint")) return unknown("hint");
        if (n == "delete")
            if (auto dels = b.find("deletes"); dels && dels->type() == bson::type::array)
                for (const auto& d : dels->get_array())
                    if (d.type() == bson::type::document && d.get_document().contains("hint")) return unknown("delete.deletes.hint");
    }
    return std::nullopt;
}

std::optional<bson::document> refused(const command_spec& spec, session& s, const request& req, member*& target) {
    member& m = s.owner;
    auto& d = m.dep;
    if (d.auth_enabled() && !s.authenticated && (spec.flags & needs_auth))
        return error_reply(13, "Unauthorized", "command " + req.name + " requires authentication");
    if (m.current == role::mongos) {
        // A router sends everything to the shard's primary.
        target = d.primary;
        if (!target || !target->reachable()) {
            if (spec.flags & (writes | reads))
                return error_reply(133, "FailedToSatisfyReadPreference",
                                   "Could not find host matching read preference { mode: \"primary\" } for set " + d.cfg.set_name);
            target = &m;
        }
        return std::nullopt;
    }
    const bool writable = m.current == role::primary || m.current == role::master || m.current == role::standalone;
    if (!writable && ((spec.flags & writes) || !(spec.flags & on_secondary))) {
        bson::document labels;
        if ((spec.flags & retryable) && retry_key_of(req) && d.cfg.max_wire_version >= 9) labels = retryable_label();
        return error_reply(10107, "NotWritablePrimary", "not primary", labels);
    }
    if (m.current == role::arbiter && !(spec.flags & on_arbiter))
        return error_reply(13436, "NotPrimaryOrSecondary", "node is not in primary or recovering state");
    if ((spec.flags & reads) && (m.current == role::secondary || m.current == role::slave) && !req.secondary_ok)
        return error_reply(13435, "NotPrimaryNoSecondaryOk", "not primary and secondaryOk=false");
    return std::nullopt;
}

// ---------------------------------------------------------------- transactions

bson::document transient_label() {
    bson::builder b(bson::builder::root::array);
    b.append("TransientTransactionError");
    return b.extract();
}

// mongod's transactionLifetimeLimitSeconds default: an older open transaction is aborted (here
// when a write waits for it).
constexpr auto transaction_lifetime = std::chrono::seconds(60);

// Ends a transaction without committing it: its copy, its writes and its documents dropped;
// writes waiting for it go on.
void abort_transaction_state(member& target, transaction& t) {
    t.state = transaction::state_kind::aborted;
    t.data = catalog();
    t.entries.clear();
    t.written.clear();
    target.dep.data_changed.notify();
}

// A command with autocommit (or commitTransaction / abortTransaction): checked as mongod does,
// and its transaction found or started (`txn`). An error reply, or nullopt to go on (txn null:
// not a transaction's command).
std::optional<bson::document> transaction_gate(session& s, const request& req, member& target, transaction*& txn) {
    member& m = s.owner;
    const bool control = req.name == "commitTransaction" || req.name == "abortTransaction";
    if (req.body.find("txnNumber") && (m.current == role::standalone || m.current == role::master || m.current == role::slave))
        return error_reply(20, "IllegalOperation", "Transaction numbers are only allowed on a replica set member or mongos");
    const auto autocommit = req.body.find("autocommit");
    if (!autocommit) {
        if (control)
            return error_reply(50768, "Location50768", req.name + " must be run within a transaction (autocommit: false, txnNumber)");
        return std::nullopt;
    }
    if (autocommit->type() != bson::type::boolean || autocommit->get_bool())
        return error_reply(72, "InvalidOptions", "Specifying autocommit=true is not allowed.");
    const auto key = retry_key_of(req);
    if (!key) return error_reply(72, "InvalidOptions", "'autocommit' requires an lsid and a txnNumber");
    const std::int64_t n = key->txn_number;
    const bool start = bool_or(req.body, "startTransaction", false);
    if (auto st = req.body.find("startTransaction"); st && (st->type() != bson::type::boolean || !st->get_bool()))
        return error_reply(72, "InvalidOptions", "'startTransaction' may only be true");
    if (start && control) return error_reply(72, "InvalidOptions", req.name + " cannot start a transaction");
    if (m.current == role::mongos && !start) {
        // The router keeps its own transaction state: a transaction continues only on the router
        // it started on; a commit elsewhere recovers the outcome with the recoveryToken.
        const auto r = m.router_transactions.find(key->lsid);
        if (r == m.router_transactions.end() || r->second != n) {
            if (req.name == "abortTransaction")
                return error_reply(251, "NoSuchTransaction", "no known command has been sent by this router for this transaction",
                                   transient_label());
            if (req.name != "commitTransaction" || !req.body.find("recoveryToken"))
                return error_reply(251, "NoSuchTransaction",
                                   "cannot continue transaction " + std::to_string(n) + ": it was not started on this router",
                                   transient_label());
        }
    }
    if (!start && req.body.find("readConcern"))
        return error_reply(72, "InvalidOptions", "Only the first command in a transaction may specify a readConcern");
    if (!control && req.body.find("writeConcern"))
        return error_reply(72, "InvalidOptions", "Cannot set write concern after starting a transaction.");
    const auto found = target.transactions.find(key->lsid);
    if (found != target.transactions.end() && found->second.txn_number > n)
        return error_reply(225, "TransactionTooOld",
                           "Cannot start transaction " + std::to_string(n) + " on session because a newer transaction " +
                               std::to_string(found->second.txn_number) + " has already started");
    if (start) {
        if (found != target.transactions.end() && found->second.txn_number == n)
            return error_reply(251, "NoSuchTransaction",
                               "Transaction " + std::to_string(n) + " has already been started on this session", transient_label());
        transaction& t = target.transactions[key->lsid];
        if (t.state == transaction::state_kind::in_progress) abort_transaction_state(target, t);  // an older one
        t = transaction{};
        t.txn_number = n;
        t.data = target.data.clone();
        t.snapshot = target.write_seq;
        t.started = steady::now();
        txn = &t;
        if (m.current == role::mongos) m.router_transactions[key->lsid] = n;
        if (s.via_load_balancer) s.lb_transactions[key->lsid] = {&target, n};
        return std::nullopt;
    }
    if (found == target.transactions.end() || found->second.txn_number != n)
        return error_reply(251, "NoSuchTransaction",
                           "Given transaction number " + std::to_string(n) + " does not match any in-progress transactions.",
                           transient_label());
    transaction& t = found->second;
    switch (t.state) {
        case transaction::state_kind::aborted:
            return error_reply(251, "NoSuchTransaction", "Transaction " + std::to_string(n) + " has been aborted.", transient_label());
        case transaction::state_kind::committed:
            if (req.name == "commitTransaction") break;  // committing again answers as the first commit did
            return error_reply(256, "TransactionCommitted", "Transaction " + std::to_string(n) + " has been committed.");
        case transaction::state_kind::in_progress: break;
    }
    txn = &t;
    return std::nullopt;
}

// After a transaction's command: an error aborts it (as mongod does), and through mongos a
// successful reply carries the recoveryToken.
void transaction_reply(member& m, member& target, transaction& t, bson::document& reply) {
    const bool ok = reply.view().find("ok") && reply["ok"].as_bool();
    const auto we = reply.view().find("writeErrors");
    if ((!ok || (we && we->type() == bson::type::array && !we->get_array().empty())) &&
        t.state == transaction::state_kind::in_progress)
        abort_transaction_state(target, t);
    if (ok && m.current == role::mongos) {
        bson::builder b;
        b.concat(reply.view());
        b.open_document("recoveryToken").append("recoveryShardId", m.dep.cfg.set_name.empty() ? "shard0" : m.dep.cfg.set_name)
            .close_document();
        reply = b.extract();
    }
}

// commitTransaction: the transaction's writes applied to the member's data, replicated, and the
// write concern waited for (again, for a commit already done); abortTransaction: dropped.
asio::awaitable<bson::document> end_transaction(member& m, member& target, const request& req, transaction& t,
                                                 const running_op& op) {
    auto& d = target.dep;
    bson::document ok = bson::make_document(bson::kvp("ok", 1.0));
    if (req.name == "abortTransaction") {
        abort_transaction_state(target, t);
        transaction_reply(m, target, t, ok);
        co_return ok;
    }
    optime at = target.applied();
    if (t.state == transaction::state_kind::in_progress) {
        t.state = transaction::state_kind::committed;
        t.data = catalog();
        t.written.clear();
        std::vector<bson::document> entries = std::move(t.entries);
        t.entries.clear();
        for (const auto& e : entries) target.data.apply(e.view());
        if (!entries.empty()) at = d.record_write(target, std::move(entries));
    }
    bson::document reply = co_await with_write_concern(d, target, at, req, ok, &op);
    transaction_reply(m, target, t, reply);
    co_return reply;
}

asio::awaitable<bson::document> cmd_end_transaction(context& c) {
    co_return co_await end_transaction(c.self, c.target, c.req, *c.txn, *c.op);
}

// A write outside a transaction waits while open transactions hold its documents (`keys`): until
// they end, its maxTimeMS (MaxTimeMSExpired), killOp (Interrupted) or the deployment stopping
// (ShutdownInProgress). A transaction older than transactionLifetimeLimitSeconds is aborted.
// nullopt: the write may run again.
// Whether a transaction in progress on `target` has written anything (one older than
// transactionLifetimeLimitSeconds is aborted first, as mongod's reaper would have).
bool open_writers(member& target) {
    bool any = false;
    for (auto& [id, t] : target.transactions) {
        if (t.state != transaction::state_kind::in_progress) continue;
        if (steady::now() - t.started >= transaction_lifetime) {
            log_line(target.address() + ": aborting a transaction older than transactionLifetimeLimitSeconds (60)");
            abort_transaction_state(target, t);
            continue;
        }
        if (!t.written.empty()) any = true;
    }
    return any;
}

asio::awaitable<std::optional<bson::document>> wait_for_transactions(member& target, const std::vector<std::string>& keys,
                                                                     const request& req, const running_op& op) {
    auto& d = target.dep;
    const auto max_time = req.body.find("maxTimeMS");
    const auto deadline = max_time && max_time->is_number() && max_time->as_int64() > 0
                              ? steady::now() + std::chrono::milliseconds(max_time->as_int64())
                              : steady::time_point::max();
    for (;;) {
        bool held = false;
        for (auto& [id, t] : target.transactions) {
            if (t.state != transaction::state_kind::in_progress) continue;
            if (std::none_of(keys.begin(), keys.end(), [&](const std::string& k) { return t.written.count(k) > 0; })) continue;
            if (steady::now() - t.started >= transaction_lifetime) {
                log_line(target.address() + ": aborting a transaction older than transactionLifetimeLimitSeconds (60)");
                abort_transaction_state(target, t);
                continue;
            }
            held = true;
        }
        if (!held) co_return std::nullopt;
        if (!d.running) co_return error_reply(91, "ShutdownInProgress", "the deployment is stopping");
        if (op.killed) co_return error_reply(11601, "Interrupted", "operation was interrupted");
        if (steady::now() >= deadline) co_return error_reply(50, "MaxTimeMSExpired", "operation exceeded time limit");
        co_await d.data_changed.wait_until(std::min(deadline, steady::now() + std::chrono::milliseconds(50)));
    }
}

// ---------------------------------------------------------------- waiting for an optime

// Waits until `target` has applied `wanted` (a lagging secondary), or no longer than what was
// written (a later time has nothing to wait for), the command's maxTimeMS, or killOp. An error
// reply when it gave up.
asio::awaitable<std::optional<bson::document>> wait_until_applied(member& target, const request& req, const running_op& op,
                                                                  bson::timestamp wanted) {
    auto& d = target.dep;
    const auto deadline = req.body.find("maxTimeMS") && req.body["maxTimeMS"].is_number() && req.body["maxTimeMS"].as_int64() > 0
                              ? steady::now() + std::chrono::milliseconds(req.body["maxTimeMS"].as_int64())
                              : steady::time_point::max();
    const auto behind = [&] {
        const bson::timestamp written = d.primary ? d.primary->applied().ts : target.applied().ts;
        return target.applied().ts < std::min(wanted, written);
    };
    while (d.running && !op.killed && behind() && steady::now() < deadline)
        co_await d.data_changed.wait_until(std::min(deadline, steady::now() + std::chrono::seconds(1)));
    if (!behind()) co_return std::nullopt;
    co_return op.killed ? error_reply(11601, "Interrupted", "operation was interrupted")
                        : error_reply(50, "MaxTimeMSExpired", "operation exceeded time limit");
}

// ---------------------------------------------------------------- snapshot reads

// Snapshot reads (readConcern level "snapshot" outside a transaction, 5.0+): find, aggregate and
// distinct read the member's data as it was at readConcern.atClusterTime, or, without one, as it
// is (at the member's last applied optime: the sim has no majority commit point apart), and say
// at which time (atClusterTime in the cursor, or at the top level for distinct). A member keeps
// the versions snapshot reads asked for, the latest snapshot_retention of them, shared with the
// other members; a time before the oldest one it can rebuild is SnapshotTooOld. A time past the
// cluster time is refused as mongod does (InvalidOptions); one the member has not applied yet (a
// lagging secondary) is waited for.
constexpr std::size_t snapshot_retention = 16;

struct snapshot_read {
    std::shared_ptr<catalog> data;
    bson::timestamp at;
};

std::string timestamp_text(bson::timestamp t) {
    return "Timestamp(" + std::to_string(t.seconds) + ", " + std::to_string(t.increment) + ")";
}

// The member's data as it was at `at`: a kept version, else one made (and kept) from the current
// data (nothing written after `at`) or from the latest kept version before `at` and the oplog
// records after it. Null when neither is there.
std::shared_ptr<catalog> data_at(member& m, bson::timestamp at) {
    auto& kept = m.snapshots;
    for (const auto& v : kept)
        if (v.at == at) return v.data;
    std::shared_ptr<catalog> made;
    if (m.log.empty() || m.log.back().op.ts <= at) {
        made = std::make_shared<catalog>(m.data.clone());
    } else {
        const member::snapshot_version* base = nullptr;
        for (const auto& v : kept)
            if (v.at < at && (!base || base->at < v.at)) base = &v;
        if (!base) return nullptr;
        made = std::make_shared<catalog>(base->data->clone());
        auto it = std::upper_bound(m.log.begin(), m.log.end(), base->at,
                                   [](bson::timestamp t, const oplog_record& r) { return t < r.op.ts; });
        for (; it != m.log.end() && it->op.ts <= at; ++it)
            for (const auto& e : it->entries) made->apply(e.view());
    }
    // The members of the set hold one history: the version is every member's at that time (a
    // read at it on another secondary finds it there; a member that rolls back drops its own).
    for (member* x : m.dep.data_members()) {
        auto& theirs = x->snapshots;
        if (std::any_of(theirs.begin(), theirs.end(), [&](const auto& v) { return v.at == at; })) continue;
        theirs.push_back({at, made});
        if (theirs.size() > snapshot_retention) theirs.pop_front();
    }
    return made;
}

// A snapshot read concern on a command that takes none (writes, count, list*, ...), or on an
// aggregate that writes or streams changes: mongod's InvalidOptions.
std::optional<std::string> snapshot_unsupported(const request& req) {
    const std::string& n = req.name;
    if (n == "aggregate")
        if (auto p = req.body.find("pipeline"); p && p->type() == bson::type::array)
            for (const auto& st : p->get_array())
                if (st.type() == bson::type::document && !st.get_document().empty()) {
                    const std::string_view stage = st.get_document().begin()->key();
                    if (stage == "$out" || stage == "$merge" || stage == "$changeStream")
                        return std::string(stage) + " is not supported with read concern level snapshot";
                }
    if (n == "find" || n == "aggregate" || n == "distinct") return std::nullopt;
    return std::string("read concern not supported");
}

// readConcern's checks for snapshot reads, in mongod's order; outside a transaction only (its
// snapshot is the transaction's). An error reply; or the data to read at and its time; or
// neither (not a snapshot read).
asio::awaitable<std::optional<bson::document>> snapshot_gate(const request& req, member& target, const running_op& op,
                                                             std::optional<snapshot_read>& out) {
    auto& d = target.dep;
    const auto rc = req.body.find("readConcern");
    if (!rc || rc->type() != bson::type::document) co_return std::nullopt;
    const bson::document_view args = rc->get_document();
    const auto level = args.find("level");
    const bool snapshot = level && level->type() == bson::type::string && level->get_string() == "snapshot";
    const auto at = args.find("atClusterTime");
    if (at && args.find("afterClusterTime"))
        co_return error_reply(72, "InvalidOptions", "Can not specify both afterClusterTime and atClusterTime");
    if (at && !snapshot)
        co_return error_reply(72, "InvalidOptions", "atClusterTime field can be set only if level is equal to snapshot");
    if (!snapshot) co_return std::nullopt;
    if (at && at->type() != bson::type::timestamp)
        co_return error_reply(14, "TypeMismatch", "BSON field 'atClusterTime' is the wrong type '" +
                                                      std::string(bson::type_name(at->type())) + "', expected type 'timestamp'");
    if (auto why = snapshot_unsupported(req))
        co_return error_reply(72, "InvalidOptions", "Command " + req.name + " does not support { readConcern: { level: \"snapshot\" } } :: caused by :: " + *why);
    if (!d.is_replica_set() || target.current == role::standalone || target.current == role::master ||
        target.current == role::slave)
        co_return error_reply(123, "NotAReplicaSet", "node needs to be a replica set member to use readConcern: snapshot");
    bson::timestamp when = target.applied().ts;
    if (at) {
        when = at->get_timestamp();
        const bson::timestamp now = std::max(d.latest_written(), d.primary ? d.primary->applied().ts : when);
        if (now < when)
            co_return error_reply(72, "InvalidOptions", "readConcern atClusterTime value must not be greater than the current "
                                                        "clusterTime. Requested clusterTime: { ts: " + timestamp_text(when) +
                                                        " }; current clusterTime: { ts: " + timestamp_text(now) + " }");
        if (auto refusal = co_await wait_until_applied(target, req, op, when)) co_return refusal;
    }
    auto data = data_at(target, when);
    if (!data)
        co_return error_reply(239, "SnapshotTooOld", "Read timestamp " + timestamp_text(when) +
                                                         " is older than the oldest available timestamp.");
    out = snapshot_read{std::move(data), when};
    co_return std::nullopt;
}

// A successful snapshot read's reply with its atClusterTime: in the cursor (find, aggregate), or
// at the top level (distinct).
bson::document with_at_cluster_time(bson::document reply, bson::timestamp at) {
    if (!reply["ok"].as_bool()) return reply;
    bson::builder b;
    for (const auto& e : reply.view()) {
        if (e.key() == "cursor" && e.type() == bson::type::document) {
            b.open_document("cursor");
            for (const auto& f : e.get_document()) b.append(f);
            b.append("atClusterTime", at).close_document();
        } else {
            b.append(e);
        }
    }
    if (!reply.view().find("cursor")) b.append("atClusterTime", at);
    return b.extract();
}

asio::awaitable<command_result> run_command(session& s, request& req, const command_spec& spec, running_op& op) {
    member& m = s.owner;
    auto& d = m.dep;
    const std::string& name = req.name;
    command_result out;

    // Fail points come first, as mongod's failCommand does.
    const bool fired = spec.name != "configureFailPoint" && fail_point_fires(m, s, name);
    const std::optional<bson::document> attach_wce = fired ? m.fail.write_concern_error : std::nullopt;
    // With a writeConcernError, failCommand's errorLabels go on the reply too, as mongod does.
    const std::optional<bson::document> attach_labels = attach_wce ? m.fail.error_labels : std::nullopt;
    auto attach_write_concern_error = [&] {
        if (!attach_wce || !out.reply["ok"].as_bool()) return;
        bson::builder b;
        for (const auto& e : out.reply.view())
            if (e.key() != "writeConcernError") b.append(e);
        b.append("writeConcernError", *attach_wce);
        if (attach_labels && !out.reply.view().contains("errorLabels")) b.append("errorLabels", bson::array(*attach_labels));
        out.reply = b.extract();
    };
    if (fired) {
        const fail_point fp = m.fail;
        out.corrupt_compression = fp.corrupt_compressed_reply;
        if (fp.block) co_await pause_op(d, op, *fp.block);
        if (!d.running) {
            out.close_connection = true;  // stopping: nothing more to say
            co_return out;
        }
        if (op.killed) {
            out.reply = error_reply(11601, "Interrupted", "operation was interrupted");
            co_return out;
        }
        if (fp.close_connection) {
            out.close_connection = true;
            co_return out;
        }
        if (fp.error_code) {
            bson::document labels;
            if (fp.error_labels) labels = *fp.error_labels;
            else if ((spec.flags & retryable) && retry_key_of(req) && retryable_code(*fp.error_code) && d.cfg.max_wire_version >= 9)
                labels = retryable_label();
            out.reply = error_reply(*fp.error_code, code_name_of(*fp.error_code), "Failing command via 'failCommand' failpoint", labels);
            co_return out;
        }
        // Only writeConcernError (or only a block): run the command, then attach it.
    }

    member* target = &m;
    if (auto refusal = refused(spec, s, req, target)) {
        out.reply = std::move(*refusal);
        co_return out;
    }
    if (auto unknown = unknown_to_version(req, d.cfg.max_wire_version)) {
        out.reply = std::move(*unknown);
        co_return out;
    }

    transaction* txn = nullptr;
    if (auto refusal = transaction_gate(s, req, *target, txn)) {
        out.reply = std::move(*refusal);
        co_return out;
    }
    const bool txn_control = name == "commitTransaction" || name == "abortTransaction";
    std::optional<snapshot_read> snapshot;
    if (!txn) {
        auto refusal = co_await snapshot_gate(req, *target, op, snapshot);
        if (refusal) {
            out.reply = std::move(*refusal);
            co_return out;
        }
    }

    std::map<std::size_t, bson::document> done;
    if ((spec.flags & retryable) && !req.body.find("autocommit")) {
        // Retryable writes: the same lsid + txnNumber is applied once; of one cut short, the
        // statements that committed are not applied again.
        if (auto key = retry_key_of(req)) {
            if (const auto newer = target->retries.upper_bound(*key);
                newer != target->retries.end() && newer->first.lsid == key->lsid) {
                out.reply = error_reply(225, "TransactionTooOld",
                                        "Retryable write with txnNumber " + std::to_string(key->txn_number) +
                                            " is prohibited on this session because a newer retryable write with txnNumber " +
                                            std::to_string(newer->first.txn_number) + " has already started on this session.");
                co_return out;
            }
            if (auto it = target->retries.find(*key); it != target->retries.end()) {
                if (auto statements = partial_statements(it->second)) {
                    done = std::move(*statements);  // cut short: the rest of the statements run below
                } else {
                    // As mongod: the recorded reply, once the write concern is met for everything
                    // this member has (the write it records included).
                    const bson::document recorded = it->second;
                    const optime last = target->applied();
                    out.reply = co_await with_write_concern(d, *target, last, req, recorded, &op);
                    attach_write_concern_error();  // a fail point fires on a retry too
                    co_return out;
                }
            }
        }
    }
    if (spec.flags & writes) {
        // fsync {lock: true} blocks writes until fsyncUnlock.
        while (target->fsync_lock_count > 0 && d.running && !op.killed)
            co_await target->fsync_unlocked.wait_until(steady::now() + std::chrono::seconds(1));
        if (op.killed) {
            out.reply = error_reply(11601, "Interrupted", "operation was interrupted");
            co_return out;
        }
    }

    if (spec.flags & reads) {
        // readConcern afterClusterTime (causal consistency): a lagging member answers once it has
        // applied that time.
        if (auto rc = req.body.find("readConcern"); rc && rc->type() == bson::type::document)
            if (auto after = rc->get_document().find("afterClusterTime"); after && after->type() == bson::type::timestamp)
                if (auto refusal = co_await wait_until_applied(*target, req, op, after->get_timestamp())) {
                    out.reply = std::move(*refusal);
                    co_return out;
                }
    }

    if (counted_as_command(name)) ++m.opcounters["command"];
    context c{s, req, m, *target, req.db, &op, std::move(done), {}, false, txn, false};
    for (;;) {
        // A write outside a transaction while one with writes is open runs on the data as it is,
        // with a copy kept: if it touches a document an open transaction wrote it is undone (the
        // copy back) and runs again once that transaction ended, as mongod's write conflict retry
        // does. Handlers do not suspend before finish_write, so nothing else changes the data
        // between the copy and the undo.
        std::optional<catalog> before;
        c.may_block = !txn && (spec.flags & writes) && open_writers(*target);
        if (c.may_block) before = target->data.clone();
        std::optional<write_blocked> blocked;
        // A transaction's command sees and changes the transaction's copy of the data; a snapshot
        // read reads the version at its time (its handlers do not suspend).
        struct data_swap {
            catalog* other;
            member& target;
            data_swap(catalog* o, member& m) : other(o), target(m) {
                if (other) std::swap(target.data, *other);
            }
            ~data_swap() {
                if (other) std::swap(target.data, *other);
            }
            data_swap(const data_swap&) = delete;
            data_swap& operator=(const data_swap&) = delete;
        } swap(snapshot ? snapshot->data.get() : txn && !txn_control ? &txn->data : nullptr, *target);
        try {
            out.reply = co_await spec.run(c);
        } catch (const command_error& e) {
            out.reply = error_reply(e);
        } catch (const trellis::bson_error& e) {
            out.reply = error_reply(2, "BadValue", e.what());
        } catch (write_blocked& b) {
            blocked = std::move(b);
        }
        if (!blocked) break;
        target->data = std::move(*before);
        c.executed.clear();
        c.close_connection = false;
        if (auto refusal = co_await wait_for_transactions(*target, blocked->keys, req, op)) {
            out.reply = std::move(*refusal);
            break;
        }
    }
    if (txn && !txn_control) transaction_reply(m, *target, *txn, out.reply);
    if (snapshot) out.reply = with_at_cluster_time(std::move(out.reply), snapshot->at);
    if (c.close_connection) {
        out.close_connection = true;
        co_return out;
    }
    attach_write_concern_error();
    co_return out;
}

}  // namespace

void abort_connection_transactions(session& s) {
    for (const auto& [lsid, started] : s.lb_transactions) {
        auto& [target, n] = started;
        const auto& members = s.owner.dep.members;
        if (std::none_of(members.begin(), members.end(), [t = target](const auto& m) { return m.get() == t; })) continue;
        const auto found = target->transactions.find(lsid);
        if (found == target->transactions.end() || found->second.txn_number != n ||
            found->second.state != transaction::state_kind::in_progress)
            continue;
        abort_transaction_state(*target, found->second);
        log_line(s.owner.address() + ": connection " + std::to_string(s.connection_id) +
                 " closed: its transaction " + std::to_string(n) + " aborted");
    }
    s.lb_transactions.clear();
}

namespace {

// The Stable API parameters, checked as mongod does before the command runs: apiVersion "1"
// only; apiStrict and apiDeprecationErrors only with it; apiStrict: true refuses a command
// outside API Version 1. An error reply, or nullopt to go on.
std::optional<bson::document> api_refusal(const request& req) {
    static const std::set<std::string, std::less<>> api_v1 = {
        "abortTransaction", "aggregate",     "authenticate", "bulkWrite",   "collMod",         "commitTransaction",
        "count",            "create",        "createIndexes", "delete",     "drop",            "dropDatabase",
        "dropIndexes",      "endSessions",   "explain",      "find",        "findAndModify",   "getMore",
        "hello",            "insert",        "killCursors",  "listCollections", "listDatabases", "listIndexes",
        "ping",             "refreshSessions", "saslContinue", "saslStart", "update"};
    const auto version = req.body.find("apiVersion");
    std::optional<bool> strict, deprecation;
    for (std::string_view key : {"apiStrict", "apiDeprecationErrors"}) {
        const auto e = req.body.find(key);
        if (!e) continue;
        if (e->type() != bson::type::boolean)
            return error_reply(14, "TypeMismatch", "BSON field '" + std::string(key) + "' is the wrong type, expected type 'bool'");
        (key == "apiStrict" ? strict : deprecation) = e->get_bool();
    }
    if (!version) {
        if (strict) return error_reply(4886600, "Location4886600", "Provided apiStrict without passing apiVersion");
        if (deprecation)
            return error_reply(4886600, "Location4886600", "Provided apiDeprecationErrors without passing apiVersion");
        return std::nullopt;
    }
    if (version->type() != bson::type::string)
        return error_reply(14, "TypeMismatch", "BSON field 'apiVersion' is the wrong type, expected type 'string'");
    if (version->get_string() != "1") return error_reply(322, "APIVersionError", "API version must be \"1\"");
    if (req.legacy)
        return error_reply(322, "APIVersionError", "Cannot accept API parameters with an OP_QUERY command: use OP_MSG");
    if (strict.value_or(false) && !api_v1.count(req.name))
        return error_reply(323, "APIStrictError",
                           "Provided apiStrict:true, but the command " + req.name + " is not in API Version 1");
    return std::nullopt;
}

}  // namespace

asio::awaitable<command_result> execute(session& s, request& req) {
    member& m = s.owner;
    auto& d = m.dep;
    const std::string& name = req.name;
    command_result out;
    if (req.body.empty()) {
        out.reply = error_reply(59, "CommandNotFound", "no such command: ''");
        co_return out;
    }
    if (d.cfg.verbose) log_line(m.address() + " conn" + std::to_string(s.connection_id) + " " + req.db + " " + bson::to_json(req.body));
    sweep_cursors(m);

    const command_spec* spec = find_command(name);
    // The first hello of a connection names the application (failCommand's appName).
    if (spec && spec->name == "hello") {
        if (auto client = req.body.find("client"); client && client->type() == bson::type::document)
            if (auto app = client->get_document().find("application"); app && app->type() == bson::type::document)
                if (auto n = app->get_document().find("name"); n && n->type() == bson::type::string) s.app_name = std::string(n->get_string());
    }
    // Through the load balancer, as mongos with loadBalancerPort: the first hello must declare
    // it (else 354, a CloseConnectionError) and gets the serviceId.
    if (spec && spec->name == "hello" && s.via_load_balancer && !s.lb_hello_seen) {
        s.lb_hello_seen = true;
        if (!bool_or(req.body, "loadBalanced", false)) {
            out.reply = error_reply(354, "LoadBalancerSupportMismatch",
                                    "The server is being accessed through a load balancer, but this driver does not have "
                                    "load balancing enabled");
            out.close_after_reply = true;
            co_return out;
        }
        s.lb_send_service_id = true;
    }
    if (req.db.empty() && !req.legacy) {
        out.reply = error_reply(40571, "Location40571", "OP_MSG requests require a $db argument");
        co_return out;
    }
    if (!spec || d.cfg.max_wire_version < spec->min_wire) {
        out.reply = error_reply(59, "CommandNotFound", "no such command: '" + name + "'");
        co_return out;
    }
    if (auto refusal = api_refusal(req)) {
        out.reply = with_cluster_time(m, std::move(*refusal));
        co_return out;
    }

    touch_session(m, s, req);
    // Registered for currentOp / killOp while it runs. The map's nodes do not move.
    const std::int64_t opid = m.next_opid++;
    running_op& op = m.ops[opid];
    op.opid = opid;
    op.connection_id = s.connection_id;
    op.client = s.peer;
    op.app_name = s.app_name;
    op.db = req.db;
    op.command = req.body;
    op.started = steady::now();
    try {
        out = co_await run_command(s, req, *spec, op);
    } catch (...) {
        m.ops.erase(opid);
        throw;
    }
    m.ops.erase(opid);
    if (!out.close_connection) out.reply = with_cluster_time(m, std::move(out.reply));
    co_return out;
}

}  // namespace trellis::sim
