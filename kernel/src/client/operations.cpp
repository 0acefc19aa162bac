// Operations: selection, a pooled connection, the command, and what its outcome tells SDAM;
// retryable reads and writes (once, on a newly selected server); cursors and killCursors.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <cmath>

#include "client/core.hpp"
#include "client/failures.hpp"
#include "client/runtime.hpp"
#include "ops/ops.hpp"
#include "plugin/guard.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"
#include "trellis/reply.hpp"
#include "trellis/selection.hpp"

namespace trellis::detail {

namespace {

// The retryable writes and reads specs' retryable error codes (besides network errors).
bool retryable_code(std::int32_t code) {
    switch (code) {
        case 6: case 7: case 89: case 91: case 189: case 262: case 9001: case 10107: case 11600: case 11602:
        case 13435: case 13436: case 134: case 63:
            return true;
        default: return false;
    }
}

std::string code_name_of(bson::document_view reply) {
    for (auto d : {reply}) {
        if (auto n = d.find("codeName"); n && n->type() == bson::type::string) return std::string(n->get_string());
        if (auto w = d.find("writeConcernError"); w && w->type() == bson::type::document)
            if (auto n = w->get_document().find("codeName"); n && n->type() == bson::type::string) return std::string(n->get_string());
    }
    return {};
}


// The bulk_write_error of a reply with write errors or a write concern error.
// `labels`: the reply's, unless the driver added one (pre-4.4 servers).
std::exception_ptr write_failure_of(bson::document_view reply, const std::string& where,
                                    std::optional<std::vector<std::string>> labels = std::nullopt) {
    return std::make_exception_ptr(ops::write_failure(ops::write_errors_of(reply), ops::write_concern_error_of(reply),
                                                      labels ? std::move(*labels) : ops::error_labels(reply),
                                                      bson::document(reply), where, std::nullopt));
}

// CSOT: the failures that say time ran out (the spec's error transformations: a selection,
// check-out or socket timeout, the server's MaxTimeMSExpired, code 50, in any of its places).
bool timeout_cause(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const operation_timeout&) {
        return false;  // already one
    } catch (const bulk_write_error& x) {
        for (const auto& w : x.write_errors())
            if (w.code == 50) return true;
        return x.write_concern_error() && x.write_concern_error()->code == 50;
    } catch (const error& x) {
        // MaxTimeMSExpired from the server, or a step of our own that ran out of time.
        if (const auto* f = dynamic_cast<const operation_failure*>(&x); f && f->server_code() == 50) return true;
        const auto c = x.code();
        return c == errc::server_selection_timeout || c == errc::wait_queue_timeout || c == errc::network_timeout;
    } catch (...) {
    }
    return false;
}

std::string ms_text(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

class core_killer final : public sdk::cursor_killer {
public:
    explicit core_killer(client_core& core) : core_(core) {}
    void kill_cursors(const std::string& address, const std::string& ns, const std::vector<std::int64_t>& ids) override {
        core_.kill_cursors(address, ns, ids);
    }

private:
    client_core& core_;
};

}  // namespace

bool network_failure(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const error& x) {
        const auto c = x.code();
        return c == errc::auto_reconnect || c == errc::network_timeout || c == errc::protocol_error ||
               c == errc::compression_error || c == errc::connection_failure;
    } catch (...) {
    }
    return false;
}

std::string client_core::outcome::message() const {
    try {
        if (failure) std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

server_session client_core::acquire_session() { return acquire_session(current_->logical_session_timeout_minutes); }

server_session client_core::acquire_session(std::optional<int> timeout_minutes) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(sessions_mutex_);
    while (!sessions_.empty()) {
        auto s = sessions_.back();
        sessions_.pop_back();
        // A session the server may have expired (timeout less a minute of margin) is dropped.
        const auto timeout = std::chrono::minutes(timeout_minutes.value_or(30));
        // Load balanced: logicalSessionTimeoutMinutes is ignored and nothing pruned (the spec).
        if (load_balanced() || now - s.last_used < timeout - std::chrono::minutes(1)) return s;
    }
    server_session s;
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : s.id.bytes) b = static_cast<std::uint8_t>(byte(session_random_));
    s.id.bytes[6] = static_cast<std::uint8_t>((s.id.bytes[6] & 0x0F) | 0x40);  // version 4
    s.id.bytes[8] = static_cast<std::uint8_t>((s.id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
    return s;
}

void client_core::release_session(server_session s) {
    if (s.dirty) return;  // the sessions spec: a dirty server session is discarded, not pooled
    s.last_used = std::chrono::steady_clock::now();
    std::lock_guard lock(sessions_mutex_);
    sessions_.push_back(s);
}

asio::awaitable<client_core::outcome> client_core::attempt(server_state& s, const operation& op,
                                                             const sdk::operation_requirements& req, attempt_state& st) {
    auto& session = st.session;
    outcome out;
    out.address = s.address;
    auto failed = [&out](errc kind, std::exception_ptr e, bool retry) {
        out.kind = kind;
        out.failure = std::move(e);
        out.retry_allowed = retry;
    };
    struct in_flight_guard {
        server_state& s;
        explicit in_flight_guard(server_state& st) : s(st) { ++s.in_flight; }
        ~in_flight_guard() { --s.in_flight; }
    } guard(s);
    const auto found = servers_.find(s.address);
    const auto state = found == servers_.end() ? nullptr : found->second;  // keep it alive across awaits
    pool::checked_out_connection checked_out;
    conn::connection* connection = nullptr;
    if (op.pinned_connection) {
        // A cursor's connection (load balanced): no check-out, and it stays the cursor's.
        if (op.pinned_connection->broken || !op.pinned_connection->connection) {
            failed(errc::auto_reconnect,
                   make_failure(errc::auto_reconnect, s.address + ": the cursor's connection failed earlier; the cursor is lost"),
                   false);
            co_return out;
        }
        connection = static_cast<conn::connection*>(op.pinned_connection->connection.get());
    } else {
        std::error_code labelled_ec;
        pool::checked_out_connection c = s.pool->try_check_out();  // an available one, on the spot
        if (!c && st.deadline) {
            // CSOT: the wait for a connection ends at the deadline (the pool drops the request).
            struct watch {
                asio::cancellation_signal signal;
                bool done = false;
            };
            auto w = std::make_shared<watch>();
            asio::steady_timer timer(strand_, *st.deadline);
            timer.async_wait([w](std::error_code e) {
                if (!e && !w->done) w->signal.emit(asio::cancellation_type::terminal);
            });
            auto token = asio::bind_cancellation_slot(w->signal.slot(), asio::as_tuple(asio::use_awaitable));
            std::tie(labelled_ec, c) = co_await s.pool->async_check_out(token);
            w->done = true;
            timer.cancel();
            if (labelled_ec && std::chrono::steady_clock::now() >= *st.deadline && !c) {
                failed(errc::operation_timeout,
                       std::make_exception_ptr(operation_timeout(
                           s.address + ": no connection from the pool within the operation's timeoutMS (" +
                           ms_text(st.timeout) + "); connection check-out: " + conn::without_labels(labelled_ec).message())),
                       false);
                co_return out;
            }
        } else if (!c) {
            std::tie(labelled_ec, c) = co_await s.pool->async_check_out(asio::as_tuple(asio::use_awaitable));
        }
        if (labelled_ec) {
            // A failure to connect or during the hello carries the backpressure labels (CMAP).
            const auto labels = conn::backpressure_labels(labelled_ec);
            const std::error_code ec = conn::without_labels(labelled_ec);
            const bool retry = op.retryable && ec != errc::authentication_failed && ec != errc::incompatible_server;
            if (ec == errc::pool_cleared || ec == errc::pool_closed) {
                failed(errc::auto_reconnect,
                       make_failure(errc::auto_reconnect, s.address + ": " + ec.message() + " (the server is being checked again)"), retry);
            } else if (ec == errc::wait_queue_timeout && current_->type == sdk::topology_type::load_balanced) {
                // The load balancers spec's message, with the connections in use by purpose.
                failed(errc::wait_queue_timeout,
                       make_failure(errc::wait_queue_timeout,
                                    s.address + ": Timeout waiting for connection from the connection pool. maxPoolSize: " +
                                        std::to_string(options_.max_pool_size) + ", connections in use by cursors: " +
                                        std::to_string(s.cursor_connections.load()) +
                                        ", connections in use by transactions: " +
                                        std::to_string(s.transaction_connections.load()) +
                                        ", connections in use by other operations: " +
                                        std::to_string(s.operation_connections.load())),
                       retry);
            } else {
                const std::string why = s.last_establish_error.empty() ? s.address + ": " + ec.message() : s.last_establish_error;
                const errc kind = ec == errc::authentication_failed ? errc::authentication_failed
                                  : ec == errc::incompatible_server ? errc::incompatible_server
                                                                    : errc::connection_failure;
                if (labels.empty()) failed(kind, make_failure(kind, why), retry);
                else failed(kind, std::make_exception_ptr(operation_failure(0, "", labels, why, kind)), retry);
            }
            co_return out;
        }
        checked_out = std::move(c);
        connection = static_cast<conn::connection*>(checked_out.get());
        // Load balanced: a transaction's first command keeps its connection for the transaction.
        if (st.pin_connection) st.transaction_connection = std::make_shared<pinned_connection>(std::move(checked_out), state, true);
    }
    // Counted while this attempt holds a connection of its own (a cursor's is counted apart).
    struct holding_guard {
        std::atomic<int>* count = nullptr;
        explicit holding_guard(std::atomic<int>* c) : count(c) {
            if (count) ++*count;
        }
        ~holding_guard() {
            if (count) --*count;
        }
    } holding(checked_out ? &s.operation_connections : nullptr);
    const auto& d = connection->description();
    if (d.max_wire_version < op.min_wire_version) {
        failed(errc::invalid_argument,
               make_failure(errc::invalid_argument, op.min_wire_reason + " (" + s.address + " has wire version " +
                                                        std::to_string(d.max_wire_version) + ")"),
               false);
        co_return out;
    }
    if (op.batch_for && !st.batch) {
        // A batched write: its batch fits the connection that sends it (a retry resends it as cut).
        ops::connection_limits limits;
        limits.max_wire_version = d.max_wire_version;
        limits.max_bson_object_size = d.max_bson_object_size;
        limits.max_message_size_bytes = d.max_message_size_bytes;
        limits.max_write_batch_size = d.max_write_batch_size;
        try {
            st.batch = op.batch_for(limits);
        } catch (...) {
            failed(errc::invalid_argument, std::current_exception(), false);
            co_return out;
        }
    }
    if (st.batch && d.max_wire_version < st.batch->min_wire_version) {
        failed(errc::invalid_argument,
               make_failure(errc::invalid_argument, st.batch->min_wire_reason + " (" + s.address + " has wire version " +
                                                        std::to_string(d.max_wire_version) + ")"),
               false);
        co_return out;
    }
    // A batch with a multi-document statement is not retryable.
    const bool op_retryable = op.retryable && (!st.batch || st.batch->retryable);
    const bool op_retryable_write = op.retryable_write && (!st.batch || st.batch->retryable);
    const auto* described = current_->find(s.address);
    const auto server_type = described ? described->type : sdk::server_type::unknown;
    // CSOT: maxTimeMS is what remains less the server's minimum round trip time; with no more
    // than that left, nothing is sent (the connection goes back). The socket waits what remains.
    std::optional<std::chrono::milliseconds> max_time, socket_limit;
    if (st.deadline) {
        using std::chrono::milliseconds;
        const auto remaining = std::chrono::duration_cast<milliseconds>(*st.deadline - std::chrono::steady_clock::now());
        const auto min_rtt = described && described->min_round_trip_time
                                 ? std::chrono::ceil<milliseconds>(*described->min_round_trip_time)
                                 : milliseconds(0);
        if (remaining <= min_rtt) {
            failed(errc::operation_timeout,
                   std::make_exception_ptr(operation_timeout(
                       s.address + ": the operation's timeoutMS (" + ms_text(st.timeout) + ") expired before its command was sent (" +
                       ms_text(std::max(remaining, milliseconds(0))) + " left, the server's minimum round trip time is " +
                       ms_text(min_rtt) + ")")),
                   false);
            co_return out;
        }
        if (!op.no_max_time) max_time = remaining - min_rtt;
        socket_limit = remaining;
    }

    bson::builder b;
    const bool drop_max_time = st.deadline && !op.no_max_time;
    if (!drop_max_time && !st.csot) {
        b.concat(op.command.view());
    } else {
        for (const auto& e : op.command.view()) {
            // The deprecated per-operation maxTimeMS gives way to the one timeoutMS gives.
            if (drop_max_time && e.key() == "maxTimeMS") continue;
            if (st.csot && e.key() == "writeConcern" && e.type() == bson::type::document &&
                e.get_document().find("wtimeout")) {
                // CSOT: the deprecated wtimeout is not sent while timeoutMS is set (even to zero).
                b.open_document("writeConcern");
                for (const auto& f : e.get_document())
                    if (f.key() != "wtimeout") b.append(f);
                b.close_document();
                continue;
            }
            b.append(e);
        }
    }
    if (max_time) b.append("maxTimeMS", static_cast<std::int64_t>(max_time->count()));
    // rawData: for 8.2+ only; an older server, which would refuse it, never sees it (the CRUD spec).
    if (op.raw_data && d.max_wire_version >= ops::wire_version_8_2) b.append("rawData", *op.raw_data);
    // Implicit sessions: every acknowledged operation on a deployment that supports sessions
    // carries an lsid; the same one on a retry and on a cursor's getMore.
    // Load balanced: sessions are always supported (the load balancers spec).
    const bool sessions_supported = !op.no_session && !op.unacknowledged &&
                                    (current_->type == sdk::topology_type::load_balanced ||
                                     (current_->logical_session_timeout_minutes.has_value() &&
                                      d.logical_session_timeout_minutes.has_value()));
    const bool supports_retryable_writes = op_retryable_write && options_.retry_writes && sessions_supported &&
                                           server_type != sdk::server_type::standalone;
    if (st.explicit_session && !sessions_supported) {
        failed(errc::invalid_argument,
               make_failure(errc::invalid_argument, s.address + ": an explicit session was given, but the server does not "
                                                                "support sessions (no logicalSessionTimeoutMinutes)"),
               false);
        co_return out;
    }
    // Transactions need 4.0 on a replica set, 4.2 through mongos (wire versions 7 and 8).
    if (st.in_transaction && d.max_wire_version < (server_type == sdk::server_type::mongos ? 8 : 7)) {
        failed(errc::invalid_argument,
               make_failure(errc::invalid_argument, s.address + ": transactions need MongoDB 4.0 on a replica set or 4.2 "
                                                                "through mongos (the server has wire version " +
                                                        std::to_string(d.max_wire_version) + ")"),
               false);
        co_return out;
    }
    if (st.snapshot && d.max_wire_version < 13) {
        failed(errc::invalid_argument,
               make_failure(errc::invalid_argument, "Snapshot reads require MongoDB 5.0 or later (" + s.address +
                                                        " has wire version " + std::to_string(d.max_wire_version) + ")"),
               false);
        co_return out;
    }
    if (sessions_supported && !session) session = acquire_session();
    if (session && sessions_supported) b.open_document("lsid").append("id", session->id).close_document();
    if (auto ct = cluster_time_to_send(st.explicit_session)) b.append("$clusterTime", ct->view());
    if (supports_retryable_writes) {
        if (!st.txn_assigned) {
            ++session->txn_number;
            st.txn_assigned = true;
        }
        b.append("txnNumber", session->txn_number);
    }
    if (op.kind == op_kind::read && !op.pinned && op.secondary_ok) {
        // Master-slave reads: a slave serves reads only when told it may (secondaryOk).
        b.append("$readPreference", bson::make_document(bson::kvp("mode", "secondaryPreferred")).view());
    } else if (op.kind == op_kind::read && !op.pinned) {
        const auto rp = selection::read_preference_for(req.read_preference, current_->type, server_type,
                                                       selection::wire_protocol::op_msg);
        if (rp.read_preference) b.append("$readPreference", rp.read_preference->view());
    }
    b.append("$db", op.db);
    conn::command_request request;
    request.database = op.db;
    request.command = b.extract();
    request.has_db = true;
    request.more_to_come = op.unacknowledged;  // w: 0: nothing to wait for (OP_MSG moreToCome)
    request.timeout = socket_limit;
    request.parking = st.parking;
    // The document sequence's spans point into `whole`, which lives until the reply is in.
    bson::document whole;
    if (!op.sequence_fields.empty()) {
        whole = std::move(request.command);
        bson::builder body;
        for (const auto& e : whole.view()) {
            const auto field = std::find(op.sequence_fields.begin(), op.sequence_fields.end(), e.key());
            if (field == op.sequence_fields.end() || e.type() != bson::type::array) {
                body.append(e);
                continue;
            }
            wire::document_sequence seq;
            seq.identifier = *field;
            for (const auto& d : e.get_array()) seq.documents.push_back(d.get_document().bytes());
            request.sequences.push_back(std::move(seq));
        }
        request.command = body.extract();
    }
    if (st.batch)
        for (const auto& [identifier, documents] : st.batch->sequences) {
            wire::document_sequence seq;
            seq.identifier = identifier;
            for (const auto& doc : documents) seq.documents.push_back(doc.view().bytes());
            request.sequences.push_back(std::move(seq));
        }
    auto [ec2, reply] = co_await connection->async_run_command(std::move(request), asio::as_tuple(asio::use_awaitable));
    if (ec2) {
        sdam::application_error f;
        f.kind = ec2 == errc::network_timeout ? sdam::error_kind::network_timeout : sdam::error_kind::network;
        f.generation = static_cast<std::int64_t>(connection->generation());
        f.max_wire_version = d.max_wire_version;
        f.message = connection->last_error();
        f.service_id = d.service_id;
        // A cursor's connection stays the cursor's until it closes; a transaction's goes back now
        // (below), even when a cursor of the transaction shares it (the load balancers spec).
        pinned_connection* pinned = op.pinned_connection ? op.pinned_connection.get() : st.transaction_connection.get();
        if (pinned) pinned->broken = true;
        if (state) handle_application_error(s, f);
        if (session) session->dirty = true;  // the sessions spec: the server session is not reused
        // A reply that could not be decoded (a corrupt or undecompressable frame) keeps its own
        // code; SDAM still handles it as a network error, since the connection is closed.
        const errc kind = ec2 == errc::network_timeout     ? errc::network_timeout
                          : ec2 == errc::compression_error ? errc::compression_error
                          : ec2 == errc::protocol_error    ? errc::protocol_error
                                                           : errc::auto_reconnect;
        const bool retry = op_retryable && (!op_retryable_write || supports_retryable_writes);
        if (op_retryable_write && supports_retryable_writes) {
            // The retryable writes spec: a network error on a retryable write carries the
            // RetryableWriteError label (the error keeps its network kind).
            failed(kind, std::make_exception_ptr(operation_failure(0, "", {"RetryableWriteError"}, connection->last_error(), kind)),
                   retry);
        } else {
            failed(kind, make_failure(kind, connection->last_error()), retry);
        }
        if (pinned && pinned->for_transaction) pinned->connection.reset();
        co_return out;
    }
    // Sent with moreToCome, a w: 0 write has no reply: {ok: 1}, as the command monitoring spec says.
    reply_document body = op.unacknowledged && reply.body.empty() ? reply_document(bson::make_document(bson::kvp("ok", 1)))
                                                                   : reply_document(reply.message.buffer, reply.body);
    if (!op.unacknowledged) observe_times(body.view(), st.explicit_session);
    if (auto ce = sdam::command_error_of(body.view())) {
        const bool state_change = sdam::is_state_change(*ce);
        if (state_change && state) {
            sdam::application_error f;
            f.kind = sdam::error_kind::command;
            f.generation = static_cast<std::int64_t>(connection->generation());
            f.max_wire_version = d.max_wire_version;
            f.command = ce;
            f.message = ce->message;
            f.service_id = d.service_id;
            handle_application_error(s, f);
        }
        auto labels = ops::error_labels(body.view());
        const std::int32_t code = ce->code.value_or(0);
        bool retryable = retryable_code(code);
        // The retryable writes spec: a pre-4.4 mongos's writeConcernError code says nothing
        // (mongos may have retried internally already).
        const bool mongos_wce = server_type == sdk::server_type::mongos && reply_ok(body.view());
        if (op_retryable_write && d.max_wire_version >= 9)  // 4.4+: the server labels what is retryable
            retryable = std::find(labels.begin(), labels.end(), "RetryableWriteError") != labels.end();
        else if (op_retryable_write && mongos_wce)
            retryable = false;
        else if (op_retryable_write && supports_retryable_writes && retryable &&
                 std::find(labels.begin(), labels.end(), "RetryableWriteError") == labels.end())
            labels.emplace_back("RetryableWriteError");  // before 4.4 the driver adds the label
        const bool not_primary = sdam::is_not_writable_primary(*ce) || sdam::is_recovering(*ce);
        const std::string code_name = code_name_of(body.view());
        std::string text = s.address + ": " + ce->message;
        if (code != 0) text += " (code " + std::to_string(code) + (code_name.empty() ? "" : " " + code_name) + ")";
        const errc kind = not_primary ? errc::not_primary : errc::operation_failure;
        failed(kind, std::make_exception_ptr(command_failure(code, code_name, labels, text, kind, bson::document(body.view()))),
               op_retryable && retryable && (!op_retryable_write || supports_retryable_writes));
        if (op.kind == op_kind::write && body.find("writeConcernError")) {
            // ok: 1 with a write concern error: the write was applied; the error keeps every
            // write error and the write concern error with the reply's counts.
            out.failure = write_failure_of(body.view(), s.address, labels);
            out.kind = errc::write_error;
        }
        co_return out;
    }
    if (auto we = body.find("writeErrors"); we && we->type() == bson::type::array && !we->get_array().empty()) {
        failed(errc::write_error, write_failure_of(body.view(), s.address), false);
        co_return out;
    }
    // From a temporary: clang (16) decides reply_on is not default-constructible while core.hpp
    // is still being read (its members have default initializers) and keeps that answer.
    reply_on& r = out.reply.emplace(reply_on{});
    r.reply = std::move(body);
    r.address = s.address;
    r.server_connection_id = d.server_connection_id.value_or(0);
    r.max_bson_size = d.max_bson_object_size;
    r.max_message_size = d.max_message_size_bytes;
    r.min_wire_version = d.min_wire_version;
    r.max_wire_version = d.max_wire_version;
    // Load balanced: a cursor left open on the service keeps this connection for its getMores
    // (a cursor of a transaction shares the transaction's).
    if (current_->type == sdk::topology_type::load_balanced)
        if (auto c = r.reply.view().find("cursor"); c && c->type() == bson::type::document)
            if (auto id = c->get_document().find("id"); id && id->is_number() && id->as_int64() != 0) {
                if (checked_out) r.pinned = std::make_shared<pinned_connection>(std::move(checked_out), state);
                else if (st.transaction_connection) r.pinned = st.transaction_connection;
                else if (op.pinned_connection && op.pinned_connection->for_transaction) r.pinned = op.pinned_connection;
            }
    co_return out;
}

namespace {

// The command of a transaction's operation: its own readConcern and writeConcern (the handle's)
// dropped, txnNumber and autocommit: false added; the first also gets startTransaction and the
// transaction's read concern (with afterClusterTime in a causally consistent session).
bson::document transaction_command(bson::document_view command, std::int64_t txn_number, bool first,
                                   const std::optional<read_concern>& rc, std::optional<bson::timestamp> after,
                                   bool control) {
    bson::builder b;
    for (const auto& e : command)
        if (control || (e.key() != "readConcern" && e.key() != "writeConcern")) b.append(e);
    b.append("txnNumber", txn_number).append("autocommit", false);
    if (first) {
        b.append("startTransaction", true);
        if ((rc && rc->level) || after) {
            b.open_document("readConcern");
            if (rc && rc->level) b.append("level", *rc->level);
            if (after) b.append("afterClusterTime", *after);
            b.close_document();
        }
    }
    return b.extract();
}

}  // namespace

std::exception_ptr with_error_label(std::exception_ptr e, const std::string& label) {
    try {
        std::rethrow_exception(e);
    } catch (operation_failure& x) {
        x.add_error_label(label);
        return std::current_exception();
    } catch (const error& x) {
        // A network or selection error: the same kind, now with the label.
        const errc kind = &x.code().category() == &error_category() ? static_cast<errc>(x.code().value())
                                                                       : errc::connection_failure;
        return std::make_exception_ptr(operation_failure(0, "", {label}, x.what(), kind));
    } catch (...) {
        return std::current_exception();
    }
}

bool has_error_label(const std::exception_ptr& e, std::string_view label) {
    try {
        std::rethrow_exception(e);
    } catch (const operation_failure& x) {
        return x.has_error_label(label);
    } catch (...) {
    }
    return false;
}

asio::awaitable<client_core::reply_on> client_core::execute(operation op) {
    attempt_state st;
    st.parking = detail::take_starting_parking();
    if (op.timeout && op.timeout->count() < 0)
        throw error(errc::invalid_argument, "timeoutMS: must not be negative (got " + ms_text(*op.timeout) + ")");
    // CSOT: one deadline for the whole operation, from here (or the caller's, computed once for
    // several commands), bounding selection, check-out, the round trip and every retry.
    st.timeout = effective_timeout(op.timeout);
    st.deadline = op.deadline ? op.deadline : deadline_for(op.timeout);
    st.csot = op.timeout || op.deadline || options_.timeout;
    st.session = op.session;  // a cursor's, or an implicit one the first attempt takes
    bool txn_first = false;  // the transaction's first command (startTransaction)
    if (op.explicit_session) {
        auto& es = *op.explicit_session;
        std::optional<bson::timestamp> after;
        std::optional<bson::timestamp> snapshot_time;
        std::optional<read_concern> txn_rc;
        std::int64_t txn_number = 0;
        {
            pinned_ptr dropped;  // an unpinned connection goes back after the lock
            std::lock_guard lock(es.mutex);
            if (es.ended && !op.transaction_control) throw error(errc::invalid_argument, "the session has ended: start a new one");
            st.session = es.server;
            st.in_transaction = op.transaction_control || es.txn == transaction_state::starting ||
                                es.txn == transaction_state::in_progress;
            if (es.txn_deadline && !op.fresh_timeout) {
                // CSOT: inside with_transaction its callback's operations and its commits take
                // what remains of its deadline, whatever their handle's or client's timeout.
                st.deadline = es.txn_deadline;
                st.timeout = es.txn_timeout;
                st.csot = true;
            }
            if (st.in_transaction) {
                if (op.user_command && op.command.view().find("readConcern"))
                    throw error(errc::invalid_argument, "Cannot set read concern after starting a transaction.");
                txn_first = !op.transaction_control && es.txn == transaction_state::starting;
                const auto rp = es.txn_options.read_preference.value_or(read_preference{});
                if (rp.mode != read_preference_mode::primary && (op.kind == op_kind::read || op.user_command))
                    throw error(errc::invalid_argument, "read preference in a transaction must be primary (the transaction's "
                                                        "read preference is not): a read cannot run in it");
                op.read_pref = read_preference{};
                if (txn_first) {
                    dropped = unpin(es);  // a new transaction goes to the mongos selected for its first command
                    es.recovery_token.reset();
                    txn_rc = es.txn_options.read_concern;
                    if (es.causal) after = es.operation_time;
                }
                if (es.pinned && !op.pinned) op.pinned = es.pinned;
                // Load balanced: the transaction's connection, or the first command pins the one it gets.
                if (es.pinned_connection && !op.pinned_connection) op.pinned_connection = es.pinned_connection;
                st.pin_connection = load_balanced() && !es.pinned_connection && !op.transaction_control;
                txn_number = es.server.txn_number;
            } else {
                if (es.txn == transaction_state::committed || es.txn == transaction_state::aborted) {
                    // A later operation outside the transaction ends it client-side and unpins.
                    es.txn = transaction_state::none;
                    dropped = unpin(es);
                    es.recovery_token.reset();
                }
                if (es.causal && op.causal) after = es.operation_time;
                // Snapshot sessions: every command but a cursor's getMore and killCursors (which
                // take no read concern) reads at the session's snapshot, once it is known.
                const std::string_view name = op.command.view().empty() ? std::string_view() : op.command.view().begin()->key();
                st.snapshot = es.options.snapshot && name != "getMore" && name != "killCursors";
                if (st.snapshot) snapshot_time = es.snapshot_time;
            }
        }
        if (st.in_transaction) {
            // Never retried as a retryable read or write; acknowledged whatever the handle's concern.
            op.command = transaction_command(op.command.view(), txn_number, txn_first, txn_rc, after, op.transaction_control);
            op.retryable = false;
            op.retryable_write = false;
            op.unacknowledged = false;
        } else {
            if (op.unacknowledged)
                throw error(errc::invalid_argument,
                            "an explicit session cannot be used with an unacknowledged write concern (w: 0)");
            if (after) op.command = with_after_cluster_time(op.command.view(), *after);
            if (st.snapshot) op.command = with_snapshot_read_concern(op.command.view(), snapshot_time);
        }
        st.explicit_session = &es;
    }
    sdk::operation_requirements req;
    req.what = op.kind == op_kind::read    ? sdk::operation_requirements::kind::read
               : op.kind == op_kind::write ? sdk::operation_requirements::kind::write
                                           : sdk::operation_requirements::kind::command;
    req.read_preference = op.read_pref.value_or(current_read_preference());
    req.in_request = in_request();
    req.heartbeat_frequency = options_.heartbeat_frequency;
    const bool own_session = !op.session.has_value() && !op.explicit_session;
    // The implicit session goes back to the pool whatever happens, unless the caller keeps it.
    auto release = [&] {
        if (own_session && st.session) release_session(*st.session);
        st.session.reset();
    };
    // An explicit session keeps what the attempts did to its server session (txnNumber, dirty).
    auto keep_explicit = [&] {
        if (!op.explicit_session || !st.session) return;
        std::lock_guard lock(op.explicit_session->mutex);
        if (!op.explicit_session->ended) op.explicit_session->server = *st.session;
        else if (st.session->dirty && !op.explicit_session->server.dirty) op.explicit_session->server.dirty = true;
    };
    outcome last;
    try {
        last = co_await run_attempts(op, req, st);
    } catch (const error& e) {
        // Selection failed (nothing was sent), or a refusal before sending.
        last.failure = std::current_exception();
        last.kind = &e.code().category() == &error_category() ? static_cast<errc>(e.code().value()) : errc::invalid_argument;
    } catch (...) {
        last.failure = std::current_exception();
        last.kind = errc::invalid_argument;
    }
    keep_explicit();
    if (st.in_transaction && !op.transaction_control) note_transaction_outcome(*op.explicit_session, last, txn_first, st);
    if (last.reply) {
        last.reply->explicit_session = op.explicit_session;
        last.reply->timeout = st.timeout;
        last.reply->deadline = st.deadline;
        if (own_session && st.session && op.keep_session) {
            last.reply->session = std::move(st.session);
            st.session.reset();  // the caller's now: not back to the pool
        }
        release();
        co_return std::move(*last.reply);
    }
    release();
    if (st.deadline && (st.out_of_time || timeout_cause(last.failure))) {
        // The CSOT spec's timeout error, the failure of the step that ran out of time its cause.
        const std::string cause = last.message();
        throw operation_timeout("the operation exceeded its timeoutMS (" + ms_text(st.timeout) + "): " + cause, last.failure);
    }
    std::rethrow_exception(last.failure);
}

void client_core::note_transaction_outcome(session_state& es, outcome& last, bool first, attempt_state& st) {
    const bool sent = last.reply || (last.kind != errc::invalid_argument && last.kind != errc::server_selection_timeout);
    // The transactions spec: a network or selection error in a transaction (commit aside) is
    // transient: the whole transaction may be run again.
    if (!last.reply && (network_failure(last.failure) || last.kind == errc::server_selection_timeout))
        last.failure = with_error_label(last.failure, "TransientTransactionError");
    const bool transient = !last.reply && has_error_label(last.failure, "TransientTransactionError");
    // A connection this command checked out and did not keep goes back when `st` goes.
    pinned_ptr dropped;
    std::lock_guard lock(es.mutex);
    if (first && sent && es.txn == transaction_state::starting) es.txn = transaction_state::in_progress;
    if (current_->type == sdk::topology_type::sharded && sent && !es.pinned && !last.address.empty())
        es.pinned = last.address;
    // Load balanced: kept after a success or a server error (the transaction goes on), not after
    // a transient one (below) or a network error (the connection is gone).
    if (st.transaction_connection && st.transaction_connection->connection && !st.transaction_connection->broken &&
        !es.ended && (es.txn == transaction_state::in_progress)) {
        es.pinned_connection = std::move(st.transaction_connection);
        es.pinned = last.address;
    }
    if (last.reply)
        if (auto t = last.reply->reply.view().find("recoveryToken"); t && t->type() == bson::type::document)
            es.recovery_token = bson::document(t->get_document());
    if (transient) dropped = unpin(es);
}

namespace {

// What the client backpressure spec reads from a failed attempt: its labels and the server's
// baseBackoffMS.
struct overload_facts {
    bool overloaded = false;  // SystemOverloadedError
    bool retryable = false;   // RetryableError
    std::optional<double> base_backoff_ms;
};

overload_facts overload_facts_of(const std::exception_ptr& e) {
    overload_facts f;
    try {
        std::rethrow_exception(e);
    } catch (const operation_failure& x) {
        f.overloaded = x.has_error_label("SystemOverloadedError");
        f.retryable = x.has_error_label("RetryableError");
        if (const auto* c = dynamic_cast<const command_failure*>(&x))
            if (auto b = c->reply().view().find("baseBackoffMS"); b && b->is_number() && b->as_double() > 0)
                f.base_backoff_ms = b->as_double();
    } catch (...) {
    }
    return f;
}

}  // namespace

std::chrono::milliseconds client_core::overload_backoff(int retry, std::optional<double> base_ms) {
    // The client backpressure spec: jitter * min(MAX_BACKOFF, BASE_BACKOFF * 2^attempt), the
    // first retry being attempt 1; a positive baseBackoffMS from the server replaces the base.
    constexpr double max_backoff_ms = 10'000;
    const double base = base_ms.value_or(100.0);
    const double jitter = settings_.backoff_jitter ? std::clamp(settings_.backoff_jitter(), 0.0, 1.0)
                                                   : std::uniform_real_distribution<double>(0.0, 1.0)(backoff_random_);
    const double ms = jitter * std::min(max_backoff_ms, base * std::ldexp(1.0, std::min(retry, 30)));
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

asio::awaitable<client_core::outcome> client_core::run_attempts(operation& op, const sdk::operation_requirements& req,
                                                                attempt_state& st) {
    // Retries allowed: one for a retryable read or write, until an overload error sets the
    // limit to maxAdaptiveRetries (for every later retry, whatever its error).
    std::uint32_t allowed = op.retryable ? 1 : 0;
    std::uint32_t retries = 0;
    // The overload policy retries a read (a cursor's getMore too) if retryReads, a write if
    // retryWrites, anything else (runCommand, killCursors) only if both are on.
    const bool get_more = !op.command.view().empty() && op.command.view().begin()->key() == "getMore";
    const bool overload_policy = op.kind == op_kind::read || get_more ? options_.retry_reads
                                 : op.kind == op_kind::write ? options_.retry_writes
                                                             : options_.retry_reads && options_.retry_writes;
    std::vector<std::string> deprioritized;
    outcome last;
    for (;;) {
        if (st.deadline && std::chrono::steady_clock::now() >= *st.deadline) {
            // CSOT: no time left (a retry's cause stays the failure; none yet: said so).
            st.out_of_time = true;
            if (!last.failure) {
                last.kind = errc::operation_timeout;
                last.failure = std::make_exception_ptr(operation_timeout(
                    "the operation's timeoutMS (" + ms_text(st.timeout) + ") had expired before server selection"));
            }
            co_return last;
        }
        selected chosen;
        if (op.pinned) {
            auto it = servers_.find(*op.pinned);
            if (it == servers_.end()) {
                last.kind = errc::auto_reconnect;
                last.failure = make_failure(errc::auto_reconnect, *op.pinned + " is no longer part of the topology");
                co_return last;
            }
            chosen.servers.push_back(it->second);
        } else {
            chosen = co_await select(req, deprioritized, st.deadline);
        }
        if (chosen.policy == sdk::selection_policy::in_turn) {
            // Each server in turn until one succeeds (master-slave reads); a server's own command
            // error is the answer, not a reason to try the next.
            std::string failures;
            op.secondary_ok = true;
            for (auto& target : chosen.servers) {
                last = co_await attempt(*target, op, req, st);
                if (last.reply || (last.kind != errc::not_primary && last.is_server_answer())) co_return last;
                failures += (failures.empty() ? "" : "; ") + last.message();
            }
            last.kind = errc::auto_reconnect;
            last.failure = make_failure(errc::auto_reconnect, "every server tried in turn failed: " + failures);
            co_return last;
        }
        const std::string address = chosen.servers.front()->address;
        // CSOT: a retry refused for lack of time reports the failure that made it retry.
        const std::exception_ptr before = last.failure;
        const errc before_kind = last.kind;
        last = co_await attempt(*chosen.servers.front(), op, req, st);
        if (last.reply) co_return last;
        if (before && last.kind == errc::operation_timeout) {
            last.failure = before;
            last.kind = before_kind;
            st.out_of_time = true;
            co_return last;
        }
        const overload_facts o = overload_facts_of(last.failure);
        const bool overload_retry = o.overloaded && o.retryable && overload_policy;
        if (!last.retry_allowed && !overload_retry) co_return last;
        ++retries;
        if (o.overloaded) allowed = options_.max_adaptive_retries;
        // CSOT: with timeoutMS a retryable error is retried as long as time remains (overload
        // retries keep their own limit).
        const bool until_deadline = st.deadline && !o.overloaded;
        if (!until_deadline && retries > allowed) co_return last;
        // Sharded: the failed router is avoided on every retry (retryable reads and writes);
        // otherwise only after an overload error, when enableOverloadRetargeting asks for it.
        const auto* described = current_->find(address);
        const bool router = described && described->type == sdk::server_type::mongos;
        if (router || (o.overloaded && options_.enable_overload_retargeting)) deprioritized.push_back(address);
        if (o.overloaded) {
            const auto wait = overload_backoff(static_cast<int>(retries), o.base_backoff_ms);
            if (wait.count() > 0) {
                asio::steady_timer timer(strand_);
                timer.expires_after(wait);
                if (st.deadline && *st.deadline < timer.expiry()) timer.expires_at(*st.deadline);
                co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            }
        }
    }
}

asio::awaitable<bson::document> client_core::run_command(std::string db, bson::document command,
                                                         std::optional<read_preference> rp, session_ptr session,
                                                         std::optional<std::chrono::milliseconds> timeout) {
    operation op;
    op.timeout = timeout;
    op.db = std::move(db);
    op.command = std::move(command);
    op.kind = rp ? op_kind::read : op_kind::command;
    op.read_pref = std::move(rp);
    op.explicit_session = std::move(session);  // never causal: a user's command gets no readConcern
    op.user_command = true;
    auto r = co_await execute(std::move(op));
    co_return std::move(r.reply).to_document();
}

asio::awaitable<cursor> client_core::run_cursor_command(std::string db, bson::document command, run_cursor_command_options o,
                                                        session_ptr session) {
    ops::validate_cursor_command(command.view(), o);
    const bson::element first = *command.view().begin();
    const std::string name(first.key());
    // The collection getMore names when the reply has no ns (it usually has): the command's.
    const std::string coll = first.type() == bson::type::string ? std::string(first.get_string()) : "$cmd";
    // As run_command (never retried, no read concern), but the session stays with the cursor.
    operation op;
    op.db = db;
    op.command = std::move(command);
    op.kind = o.read_preference ? op_kind::read : op_kind::command;
    op.read_pref = std::move(o.read_preference);
    op.keep_session = true;
    op.explicit_session = std::move(session);
    op.user_command = true;
    op.timeout = o.timeout;
    const auto timeout = effective_timeout(o.timeout);
    if (o.timeout_mode && !o.timeout && !options_.timeout)
        throw error(errc::invalid_argument, "run_cursor_command: timeout_mode needs a timeout (timeoutMS) on the operation, "
                                            "its database or client");
    const bool tailable = o.cursor_type != cursor_type::non_tailable;
    if (tailable && o.timeout_mode == timeout_mode::cursor_lifetime)
        throw error(errc::invalid_argument, "run_cursor_command: a tailable cursor supports timeout_mode iteration only");
    if (o.cursor_type == cursor_type::tailable_await && o.max_time && timeout.count() > 0 && *o.max_time >= timeout)
        throw error(errc::invalid_argument, "run_cursor_command: max_time (getMore's maxTimeMS, " +
                                                std::to_string(o.max_time->count()) + " ms) must be less than timeoutMS (" +
                                                std::to_string(timeout.count()) + " ms)");
    const bool lifetime = !tailable && o.timeout_mode.value_or(timeout_mode::cursor_lifetime) == timeout_mode::cursor_lifetime;
    op.no_max_time = !lifetime;
    auto r = co_await execute(std::move(op));
    if (!lifetime) r.deadline.reset();  // each getMore gets the whole timeout
    try {
        ops::check_cursor_reply(r.reply.view(), name);
    } catch (...) {
        if (r.session) release_session(*r.session);  // no cursor to keep it for
        throw;
    }
    auto c = cursor_from(std::move(r), std::move(db), coll, o.batch_size, 0);
    c.state_->comment = std::move(o.comment);
    c.state_->max_await_time = o.max_time;
    c.state_->tailable = o.cursor_type != cursor_type::non_tailable;
    co_return c;
}

asio::awaitable<bson::document> client_core::run_on(std::string address, std::string db, bson::document command) {
    operation op;
    op.db = std::move(db);
    op.command = std::move(command);
    op.pinned = std::move(address);
    auto r = co_await execute(std::move(op));
    co_return std::move(r.reply).to_document();
}

cursor client_core::cursor_from(reply_on r, std::string db, std::string coll, std::optional<std::int32_t> batch_size,
                                std::int64_t limit) {
    auto state = std::make_shared<cursor_state>();
    state->core = shared_from_this();
    state->db = std::move(db);
    state->address = r.address;
    state->server_connection_id = r.server_connection_id;
    state->max_wire_version = r.max_wire_version;
    state->batch_size = batch_size;
    state->limit = limit;
    state->timeout = r.timeout;
    state->deadline = r.deadline;
    const auto c = r.reply["cursor"].get_document();
    state->id = c["id"].as_int64();
    state->ns = c.find("ns") ? std::string(c["ns"].get_string()) : state->db + "." + coll;
    // getMore names the collection of the cursor's namespace (listIndexes: "coll", aggregate: the source).
    const auto dot = state->ns.find('.');
    state->collection = dot == std::string::npos ? coll : state->ns.substr(dot + 1);
    if (auto t = c.find("postBatchResumeToken"); t && t->type() == bson::type::document)
        state->post_batch_resume_token = bson::document(t->get_document());
    if (auto t = r.reply.view().find("operationTime"); t && t->type() == bson::type::timestamp)
        state->operation_time = t->get_timestamp();
    const auto first_batch = c["firstBatch"].get_array();
    state->batch.assign(std::move(r.reply), first_batch);
    if (r.session) {
        if (state->id != 0) state->session = std::move(r.session);  // for its getMores
        else release_session(*r.session);
    }
    if (state->id != 0) state->explicit_session = std::move(r.explicit_session);
    if (state->id != 0) state->pinned = std::move(r.pinned);
    return make_cursor(std::move(state));
}

asio::awaitable<std::optional<bson::document>> client_core::cursor_next(std::shared_ptr<cursor_state> c) {
    const bool ready = co_await cursor_fill(c);
    if (!ready) co_return std::nullopt;
    ++c->returned;
    co_return c->batch.take();
}

asio::awaitable<bool> client_core::cursor_fill(std::shared_ptr<cursor_state> c) {
    for (;;) {
        if (c->closed) co_return false;
        if (c->limit > 0 && c->returned >= c->limit) {
            cursor_closed(*c);
            c->closed = true;
            co_return false;
        }
        if (!c->batch.empty()) co_return true;
        if (c->id == 0) {
            c->closed = true;
            co_return false;
        }
        bson::builder cmd;
        cmd.append("getMore", c->id).append("collection", c->collection);
        std::optional<std::int64_t> want;
        if (c->batch_size) want = *c->batch_size;
        if (c->limit > 0) want = std::min<std::int64_t>(want.value_or(c->limit - c->returned), c->limit - c->returned);
        if (want) cmd.append("batchSize", *want);
        ops::append_max_time(cmd, c->max_await_time);
        if (c->max_wire_version >= 9) ops::append_comment(cmd, c->comment);  // getMore takes a comment since 4.4
        operation op;
        op.db = c->db;
        op.command = cmd.extract();
        op.kind = op_kind::command;
        op.pinned = c->address;
        op.pinned_connection = c->pinned;
        op.session = c->session;
        op.explicit_session = c->explicit_session;
        // CSOT: the cursor's deadline (cursor_lifetime) or the whole timeout for this getMore
        // (iteration); never a maxTimeMS from it (an awaitData cursor's is maxAwaitTimeMS).
        op.timeout = c->timeout;
        op.deadline = c->deadline;
        op.no_max_time = true;
        reply_on r;
        c->getmore_in_flight = true;
        try {
            r = co_await execute(std::move(op));
        } catch (...) {
            c->getmore_in_flight = false;
            if (c->session) {
                c->session->dirty = network_failure(std::current_exception());
                if (!c->session_borrowed) release_session(*c->session);  // a borrowed one: its owner's
                if (!c->session_borrowed) c->session.reset();
            }
            c->closed = true;  // the server's cursor is gone or unreachable
            c->pinned.reset();  // no killCursors for it: its connection goes back (closed if broken)
            throw;
        }
        c->getmore_in_flight = false;
        const auto cur = r.reply["cursor"].get_document();
        c->id = cur["id"].as_int64();
        c->post_batch_resume_token.reset();
        if (auto t = cur.find("postBatchResumeToken"); t && t->type() == bson::type::document)
            c->post_batch_resume_token = bson::document(t->get_document());
        if (c->close_requested) {  // closed while the getMore ran: now the close can happen
            cursor_closed(*c);
            co_return false;
        }
        if (c->id == 0 && c->session) {  // exhausted: the session is free again (a borrowed one: its owner's)
            if (!c->session_borrowed) release_session(*c->session);
            c->session.reset();
        }
        if (c->id == 0) c->explicit_session.reset();
        if (c->id == 0) c->pinned.reset();  // drained: its connection goes back to the pool
        const auto next_batch = cur["nextBatch"].get_array();
        c->batch.assign(std::move(r.reply), next_batch);
        // A tailable cursor with nothing new yet: no document now, the cursor stays open for more.
        if (c->tailable && c->batch.empty() && c->id != 0) co_return false;
    }
}

void client_core::cursor_closed(cursor_state& c) {
    if (c.getmore_in_flight) {  // cursor_next closes it when the getMore is back
        c.close_requested = true;
        return;
    }
    if (c.session) {
        if (!c.session_borrowed) release_session(*c.session);
        c.session.reset();
    }
    c.explicit_session.reset();  // the application ends an explicit session itself
    const bool was_closed = std::exchange(c.closed, true);
    pinned_ptr pinned = std::move(c.pinned);
    if (was_closed || c.id == 0) return;
    if (pinned) {
        // Load balanced: killCursors on the cursor's own connection (none on a broken one), then
        // the connection goes back; the cursor manager never sees it.
        if (!pinned->broken) kill_pinned(std::move(pinned), c.address, c.ns, c.id);
        return;
    }
    core_killer killer(*this);
    const sdk::closed_cursor closed{c.id, c.ns, c.address, c.server_connection_id};
    // A manager that throws has not taken the cursor: kill it now rather than leave it open.
    if (!call_cursor_manager("on_cursor_closed", [&](sdk::cursor_manager& m) { m.on_cursor_closed(closed, killer); }))
        kill_cursors(c.address, c.ns, {c.id});
}

template <class F>
bool client_core::call_cursor_manager(std::string_view call, F&& f) {
    std::shared_ptr<sdk::cursor_manager> manager;
    std::string name;
    {
        std::lock_guard lock(mutex_);
        manager = cursor_manager_;
        name = cursor_manager_name_;
    }
    return guarded(settings_.on_callback_failure, "cursor_manager \"" + name + "\": " + std::string(call),
                   [&] { f(*manager); });
}

// A cursor manager that batches its kills sends them from flush(): once a second while the
// client is open (what remains at close is left to the servers' cursor timeout).
asio::awaitable<void> client_core::flush_cursors_loop() {
    const auto self = shared_from_this();  // alive while this coroutine is
    const auto generation = ++flush_generation_;  // a reopened client's loop replaces this one
    while (open_ && generation == flush_generation_) {
        flush_timer_.expires_after(std::chrono::seconds(1));
        co_await flush_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!open_ || generation != flush_generation_) break;
        core_killer killer(*this);
        // A manager that fails to flush is reported and asked again next round.
        call_cursor_manager("flush", [&](sdk::cursor_manager& m) { m.flush(killer); });
    }
}

void client_core::kill_cursors(const std::string& address, const std::string& ns, std::vector<std::int64_t> ids) {
    send_kill_cursors(address, ns, std::move(ids), nullptr);
}

void client_core::kill_pinned(pinned_ptr pinned, const std::string& address, const std::string& ns, std::int64_t id) {
    send_kill_cursors(address, ns, {id}, std::move(pinned));
}

// killCursors on `address`, on the cursor's own connection when pinned (load balanced: the
// connection goes back whatever the result, as the load balancers spec says). The server kills
// idle cursors itself, so a failed kill loses nothing.
void client_core::send_kill_cursors(const std::string& address, const std::string& ns, std::vector<std::int64_t> ids,
                                    pinned_ptr pinned) {
    const auto dot = ns.find('.');
    if (dot == std::string::npos || ids.empty()) return;
    bson::builder cmd;
    cmd.append("killCursors", ns.substr(dot + 1)).open_array("cursors");
    for (auto id : ids) cmd.append(id);
    cmd.close_array();
    operation op;
    op.db = ns.substr(0, dot);
    op.command = cmd.extract();
    op.pinned = address;
    op.pinned_connection = std::move(pinned);
    auto self = shared_from_this();
    asio::co_spawn(strand_, [self, op = std::move(op)]() mutable -> asio::awaitable<void> {
        try {
            co_await self->execute(std::move(op));
        } catch (const std::exception&) {
        }
    }, asio::detached);
}

sdk::operation_requirements client_core::requirements_for(sdk::operation_requirements::kind what,
                                                          std::optional<read_preference> rp) const {
    sdk::operation_requirements req;
    req.what = what;
    req.read_preference = rp ? std::move(*rp) : current_read_preference();
    req.in_request = in_request();
    req.heartbeat_frequency = options_.heartbeat_frequency;
    return req;
}

asio::awaitable<client_core::reply_on> client_core::server_in_use() {
    const auto chosen = co_await select(requirements_for(sdk::operation_requirements::kind::command), {});
    const auto& s = *chosen.servers.front();
    reply_on out;
    out.address = s.address;
    out.max_bson_size = s.max_bson_size;
    out.max_message_size = s.max_message_size;
    if (const auto* d = current_->find(s.address)) {
        out.min_wire_version = d->min_wire_version;
        out.max_wire_version = d->max_wire_version;
    }
    co_return out;
}

asio::awaitable<void> client_core::end_sessions() {
    if (!open_ || (!current_->logical_session_timeout_minutes && current_->type != sdk::topology_type::load_balanced)) co_return;
    // The sessions spec: to a server a primaryPreferred read could use; here the first available
    // data-bearing one of the snapshot (no selection wait while closing).
    std::optional<std::string> target;
    for (const auto& d : current_->servers)
        if (d.is_data_bearing() && (!target || d.type == sdk::server_type::rs_primary)) target = d.address;
    if (!target || !servers_.count(*target)) co_return;
    std::vector<server_session> pooled;
    {
        std::lock_guard lock(sessions_mutex_);
        pooled.swap(sessions_);
    }
    while (!pooled.empty()) {
        bson::builder b;
        b.open_array("endSessions");
        for (std::size_t n = 0; n < 10'000 && !pooled.empty(); ++n) {  // at most 10,000 ids per command
            b.open_document().append("id", pooled.back().id).close_document();
            pooled.pop_back();
        }
        b.close_array();
        operation op;
        op.db = "admin";
        op.command = b.extract();
        op.pinned = target;
        op.no_session = true;
        try {
            co_await execute(std::move(op));
        } catch (const std::exception&) {
            co_return;  // the server expires them itself
        }
    }
}

asio::awaitable<client_core::reply_on> client_core::ping_in_use() {
    operation op;
    op.db = "admin";
    op.command = bson::make_document(bson::kvp("ping", 1));
    op.kind = op_kind::command;
    co_return co_await execute(std::move(op));
}

}  // namespace trellis::detail
