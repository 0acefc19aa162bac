// CRUD and collection management: each operation's command and reply come from its ops/ value
// type; this file only chooses how it is executed (read or write, retryable or not).
#include "client/core.hpp"
#include "ops/ops.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/write_error.hpp"

namespace trellis::detail {

client_core::op_settings client_core::settings_for(const handle_options& h) const {
    return {h.read_preference, h.read_concern.value_or(options_.read_concern),
            h.write_concern ? *h.write_concern : current_write_concern(), h.timeout};
}

namespace {
// The read-write-concern spec: the commands that take readConcern afterClusterTime in a causally
// consistent session (reads, and these writes with afterClusterTime alone).
bool takes_after_cluster_time(bson::document_view command) {
    if (command.empty()) return false;
    const auto name = (*command.begin()).key();
    for (std::string_view c : {"find", "aggregate", "count", "distinct", "insert", "update", "delete", "findAndModify",
                               "create", "createIndexes", "drop", "dropDatabase", "dropIndexes"})
        if (name == c) return true;
    return false;
}
}  // namespace

client_core::operation client_core::write_operation(std::string db, bson::document command, bool single_statement,
                                                     const write_concern& wc) const {
    operation o;
    o.db = std::move(db);
    o.command = std::move(command);
    o.kind = op_kind::write;
    o.unacknowledged = ops::unacknowledged(wc);
    // The retryable writes spec: single-statement writes, acknowledged, when retryWrites is on.
    o.retryable = single_statement && options_.retry_writes && !o.unacknowledged;
    o.retryable_write = o.retryable;
    o.causal = takes_after_cluster_time(o.command.view());
    return o;
}

namespace {
bson::document with_read_concern(bson::document command, const read_concern& rc) {
    if (!rc.level) return command;
    bson::builder b;
    b.concat(command.view()).open_document("readConcern").append("level", *rc.level).close_document();
    return b.extract();
}
}  // namespace

client_core::operation client_core::read_operation(std::string db, bson::document command, std::optional<read_preference> rp,
                                                    const read_concern& rc) const {
    operation o;
    o.db = std::move(db);
    o.command = with_read_concern(std::move(command), rc);
    o.kind = op_kind::read;
    o.read_pref = std::move(rp);
    o.retryable = options_.retry_reads;
    o.causal = takes_after_cluster_time(o.command.view());
    return o;
}

namespace {
// CSOT for a command that makes a cursor (the spec's timeoutMode rules): refuses what the spec
// refuses, and says whether the cursor's getMores share the command's deadline
// (cursor_lifetime) or each iteration gets the whole timeout.
bool lifetime_mode(const char* what, std::optional<timeout_mode> mode, bool timeout_set, std::chrono::milliseconds timeout,
                   cursor_type type, std::optional<std::chrono::milliseconds> max_await, bool writes) {
    if (mode && !timeout_set)
        throw error(errc::invalid_argument, std::string(what) + ": timeout_mode needs a timeout (timeoutMS) on the operation, "
                                                                "its collection, database or client");
    const bool tailable = type != cursor_type::non_tailable;
    if (tailable && mode == timeout_mode::cursor_lifetime)
        throw error(errc::invalid_argument, std::string(what) + ": a tailable cursor supports timeout_mode iteration only");
    if (type == cursor_type::tailable_await && max_await && timeout.count() > 0 && *max_await >= timeout)
        throw error(errc::invalid_argument, std::string(what) + ": max_await_time (" + std::to_string(max_await->count()) +
                                                " ms) must be less than timeoutMS (" + std::to_string(timeout.count()) + " ms)");
    if (writes && mode == timeout_mode::iteration)
        throw error(errc::invalid_argument,
                    std::string(what) + ": timeout_mode iteration cannot be used with a $out or $merge stage");
    return !tailable && mode.value_or(timeout_mode::cursor_lifetime) == timeout_mode::cursor_lifetime;
}
}  // namespace

// ---------------------------------------------------------------- writes

asio::awaitable<insert_one_result> client_core::insert_one(std::string db, std::string coll, bson::document doc,
                                                           insert_one_options options, write_concern wc, session_ptr session) {
    std::vector<write_model> one;
    one.emplace_back(insert_one_model{std::move(doc)});
    const auto op = ops::bulk_write_op::make(std::move(coll), std::move(one),
                                             {.ordered = true,
                                              .bypass_document_validation = options.bypass_document_validation,
                                              .let = std::nullopt,
                                              .comment = std::move(options.comment),
                                              .raw_data = options.raw_data,
                                              .timeout = options.timeout},
                                             std::move(wc));
    const auto r = co_await run_bulk(std::move(db), op, std::move(session));
    co_return insert_one_result{op.inserted_ids.front(), r.acknowledged};
}

asio::awaitable<insert_many_result> client_core::insert_many(std::string db, std::string coll,
                                                             std::vector<bson::document> docs, insert_many_options options,
                                                             write_concern wc, session_ptr session) {
    if (docs.empty()) throw error(errc::invalid_argument, "insert_many: no documents to insert");
    std::vector<write_model> models;
    models.reserve(docs.size());
    for (auto& d : docs) models.emplace_back(insert_one_model{std::move(d)});
    auto op = ops::bulk_write_op::make(std::move(coll), std::move(models),
                                       {.ordered = options.ordered,
                                        .bypass_document_validation = options.bypass_document_validation,
                                        .let = std::nullopt,
                                        .comment = std::move(options.comment),
                                        .raw_data = options.raw_data,
                                        .timeout = options.timeout},
                                       std::move(wc));
    const auto r = co_await run_bulk(std::move(db), op, std::move(session));
    co_return insert_many_result{std::move(op.inserted_ids), r.acknowledged};
}

asio::awaitable<bulk_write_result> client_core::bulk_write(std::string db, std::string coll, std::vector<write_model> models,
                                                           bulk_write_options options, write_concern wc, session_ptr session) {
    const auto op = ops::bulk_write_op::make(std::move(coll), std::move(models), std::move(options), std::move(wc));
    co_return co_await run_bulk(std::move(db), op, std::move(session));
}

asio::awaitable<bulk_write_result> client_core::run_bulk(std::string db, const ops::bulk_write_op& op, session_ptr session) {
    // Each batch is cut by the limits (maxBsonObjectSize, maxWriteBatchSize) of the connection
    // that sends it, at its first attempt: operation::batch_for.
    bulk_write_result result;
    result.acknowledged = !ops::unacknowledged(op.wc);
    std::vector<write_error_detail> errors;
    std::optional<write_error_detail> wce;
    std::vector<std::string> labels;
    bson::document last_reply;
    // CSOT: timeoutMS bounds the whole bulk write, every batch (the spec's batching rule).
    const auto deadline = deadline_for(op.options.timeout);
    for (std::size_t from = 0; from < op.order.size();) {
        std::optional<ops::bulk_write_op::batch> sent;  // what batch_for cut
        const auto what = op.kind_at(from);
        try {
            auto o = write_operation(db, op.head(what), true, op.wc);  // batch_for says if the batch is retryable
            o.explicit_session = session;
            o.raw_data = op.options.raw_data;
            o.timeout = op.options.timeout;
            o.deadline = deadline;
            o.batch_for = [&op, &sent, from, what](const ops::connection_limits& limits) {
                sent = op.next_batch(limits, from);
                write_batch b;
                b.retryable = sent->retryable;
                b.sequences.emplace_back(ops::bulk_write_op::sequence_of(what), op.statements(*sent));
                if (what != ops::bulk_write_op::kind::insert) {
                    operation hint_check;
                    hint_check.require_for_unacknowledged_hint(sent->hinted, op.wc,
                                                               what == ops::bulk_write_op::kind::remove ? 9 : 8, "bulk_write");
                    b.min_wire_version = hint_check.min_wire_version;
                    b.min_wire_reason = std::move(hint_check.min_wire_reason);
                }
                return b;
            };
            const auto r = co_await execute(std::move(o));
            from += sent->models.size();
            op.merge(*sent, r.reply.view(), {}, result);
            continue;
        } catch (const bulk_write_error& e) {
            if (!sent) throw;
            const auto& batch = *sent;  // a reply: the batch was cut and sent
            from += batch.models.size();
            op.merge(batch, e.reply().view(), e.write_errors(), result);
            for (auto we : e.write_errors()) {
                if (we.index >= 0 && static_cast<std::size_t>(we.index) < batch.models.size())
                    we.index = static_cast<std::int64_t>(batch.models[static_cast<std::size_t>(we.index)]);
                errors.push_back(std::move(we));
            }
            if (!wce) wce = e.write_concern_error();
            for (const auto& l : e.error_labels())
                if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
            last_reply = e.reply();
            if (op.options.ordered && !e.write_errors().empty()) break;
        } catch (const operation_failure& e) {
            // A command error, or a network error of a retryable write, ends the bulk write; it goes
            // on with what the earlier batches did (the CRUD spec's BulkWriteException.writeResult),
            // its kind, code, labels and reply unchanged. (Other errors, e.g. a server selection
            // timeout, propagate as they are.)
            const auto* with_reply = dynamic_cast<const command_failure*>(&e);
            const errc kind = &e.code().category() == &error_category() ? static_cast<errc>(e.code().value()) : errc::operation_failure;
            throw bulk_write_error(kind, e.server_code(), e.code_name(), e.error_labels(), e.what(),
                                   with_reply ? with_reply->reply() : bson::document(), result);
        }
    }
    if (!errors.empty() || wce) throw ops::write_failure(std::move(errors), std::move(wce), std::move(labels),
                                                         std::move(last_reply), db + "." + op.collection, result);
    co_return result;
}

asio::awaitable<update_result> client_core::update(std::string db, std::string coll, bson::document filter,
                                                   update_spec update, update_options options, bool multi, bool replace,
                                                   write_concern wc, session_ptr session) {
    if (replace) {
        if (options.array_filters) throw error(errc::invalid_argument, "replace_one: array_filters applies to an update only");
        if (!std::holds_alternative<bson::document>(update))
            throw error(errc::invalid_argument, "replace_one: the replacement must be a document, not a pipeline");
        ops::validate_replacement(std::get<bson::document>(update).view());
    } else {
        ops::validate_update(update);
        if (multi && options.sort)
            throw error(errc::invalid_argument, "update_many: sort applies to update_one and replace_one only");
    }
    ops::update_op op;
    op.collection = std::move(coll);
    op.statement.filter = std::move(filter);
    op.statement.update = std::move(update);
    op.statement.multi = multi;
    op.statement.upsert = options.upsert;
    op.statement.array_filters = std::move(options.array_filters);
    op.statement.collation = std::move(options.collation);
    op.statement.hint = std::move(options.hint);
    op.statement.sort = std::move(options.sort);
    op.let = std::move(options.let);
    op.bypass_document_validation = options.bypass_document_validation;
    op.comment = std::move(options.comment);
    op.wc = std::move(wc);
    auto o = write_operation(std::move(db), op.command(), op.retryable(), op.wc);
    o.explicit_session = std::move(session);
    o.raw_data = options.raw_data;
    o.require_for_unacknowledged_hint(op.statement.hint.has_value(), op.wc, 8, replace ? "replace_one" : "update");
    o.timeout = options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

asio::awaitable<delete_result> client_core::remove(std::string db, std::string coll, bson::document filter,
                                                   delete_options options, bool multi, write_concern wc,
                                                   session_ptr session) {
    ops::delete_op op;
    op.collection = std::move(coll);
    op.filter = std::move(filter);
    op.multi = multi;
    op.collation = std::move(options.collation);
    op.hint = std::move(options.hint);
    op.let = std::move(options.let);
    op.comment = std::move(options.comment);
    op.wc = std::move(wc);
    auto o = write_operation(std::move(db), op.command(), op.retryable(), op.wc);
    o.explicit_session = std::move(session);
    o.raw_data = options.raw_data;
    o.require_for_unacknowledged_hint(op.hint.has_value(), op.wc, 9, "delete");
    o.timeout = options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

asio::awaitable<std::optional<bson::document>> client_core::find_and_modify(std::string db, ops::find_and_modify_op op,
                                                                          session_ptr session) {
    op.validate();
    auto o = write_operation(std::move(db), op.command(), true, op.wc);
    o.explicit_session = std::move(session);
    o.raw_data = op.options.raw_data;
    o.require_for_unacknowledged_hint(op.options.hint.has_value(), op.wc, 9, "find_one_and_modify");
    o.timeout = op.options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

// ---------------------------------------------------------------- reads

client_core::operation client_core::find_operation(const std::string& db, const ops::find_op& op, const read_concern& rc,
                                                   session_ptr session) const {
    op.validate();
    auto o = read_operation(db, op.command(), op.options.read_preference, rc);
    o.keep_session = true;  // for the cursor's getMores
    o.explicit_session = std::move(session);
    o.raw_data = op.options.raw_data;
    return o;
}

asio::awaitable<cursor> client_core::find(std::string db, ops::find_op op, read_concern rc, session_ptr session) {
    const auto timeout = effective_timeout(op.options.timeout);
    const bool timeout_set = op.options.timeout || options_.timeout;
    const bool lifetime = lifetime_mode("find", op.options.timeout_mode, timeout_set, timeout, op.options.cursor_type,
                                        op.options.max_await_time, false);
    if (timeout.count() > 0) op.options.max_time.reset();  // deprecated: timeoutMS gives maxTimeMS
    auto o = find_operation(db, op, rc, std::move(session));
    o.timeout = op.options.timeout;
    // Iteration mode and tailable cursors: no maxTimeMS (an awaitData cursor's first find keeps it).
    o.no_max_time = !lifetime && op.options.cursor_type != cursor_type::tailable_await;
    auto r = co_await execute(std::move(o));
    if (!lifetime) r.deadline.reset();  // each getMore gets the whole timeout
    auto c = cursor_from(std::move(r), std::move(db), std::move(op.collection), op.options.batch_size,
                         op.options.limit.value_or(0));
    c.state_->comment = std::move(op.options.comment);
    c.state_->max_await_time = op.options.max_await_time;
    c.state_->tailable = op.options.cursor_type != cursor_type::non_tailable;
    co_return c;
}

asio::awaitable<std::optional<bson::document>> client_core::find_one(std::string db, ops::find_op op, read_concern rc,
                                                                   session_ptr session) {
    op.options.limit = 1;
    op.options.batch_size.reset();
    op.single_batch = true;
    if (effective_timeout(op.options.timeout).count() > 0) op.options.max_time.reset();  // timeoutMS gives maxTimeMS
    auto o = find_operation(db, op, rc, std::move(session));
    o.timeout = op.options.timeout;
    auto r = co_await execute(std::move(o));
    const auto reply_cursor = r.reply["cursor"].get_document();
    if (reply_cursor["id"].as_int64() == 0) {
        // The usual answer: one batch, no cursor left on the server. Its first document is the
        // result; no cursor state is built.
        if (r.session) release_session(*r.session);
        const auto batch = reply_cursor["firstBatch"].get_array();
        if (batch.empty()) co_return std::nullopt;
        co_return bson::document(batch[0].get_document());
    }
    // A server that kept a cursor open despite singleBatch: a cursor closes it.
    auto c = cursor_from(std::move(r), std::move(db), std::move(op.collection), std::nullopt, 1);
    co_return co_await cursor_next(c.state_);
}

asio::awaitable<std::int64_t> client_core::count_documents(std::string db, std::string coll, bson::document filter,
                                                           count_options options, read_concern rc, session_ptr session) {
    ops::count_documents_op op{std::move(coll), std::move(filter), std::move(options)};
    auto o = read_operation(std::move(db), op.command(), op.options.read_preference, rc);
    o.explicit_session = std::move(session);
    o.raw_data = op.options.raw_data;
    o.timeout = op.options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

asio::awaitable<std::int64_t> client_core::estimated_count(std::string db, std::string coll, estimated_count_options options,
                                                           read_concern rc, session_ptr session) {
    ops::estimated_count_op op{std::move(coll), std::move(options)};
    auto o = read_operation(std::move(db), op.command(), op.options.read_preference, rc);
    o.explicit_session = std::move(session);
    o.raw_data = op.options.raw_data;
    o.timeout = op.options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

asio::awaitable<std::int64_t> client_core::count(std::string db, std::string coll, bson::document filter, count_options options,
                                                 read_concern rc, session_ptr session) {
    ops::count_op op{std::move(coll), std::move(filter), std::move(options)};
    auto o = read_operation(std::move(db), op.command(), op.options.read_preference, rc);
    o.explicit_session = std::move(session);
    o.raw_data = op.options.raw_data;
    o.timeout = op.options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

asio::awaitable<bson::array> client_core::distinct(std::string db, std::string coll, std::string key, bson::document filter,
                                                   distinct_options options, read_concern rc, session_ptr session) {
    ops::distinct_op op{std::move(coll), std::move(key), std::move(filter), std::move(options)};
    auto o = read_operation(std::move(db), op.command(), op.options.read_preference, rc);
    o.explicit_session = std::move(session);
    o.raw_data = op.options.raw_data;
    o.timeout = op.options.timeout;
    auto r = co_await execute(std::move(o));
    co_return op.parse(r.reply.view());
}

asio::awaitable<cursor> client_core::aggregate(std::string db, std::string coll, bson::array pipeline,
                                               aggregate_options options, op_settings s, session_ptr session,
                                               std::optional<server_session> implicit_session) {
    if (!options.write_concern) options.write_concern = s.wc;
    if (!options.read_preference) options.read_preference = s.read_pref;
    if (!options.timeout) options.timeout = s.timeout;
    const auto timeout = effective_timeout(options.timeout);
    if (timeout.count() > 0) options.max_time.reset();  // deprecated: timeoutMS gives maxTimeMS
    ops::aggregate_op op{coll, std::move(pipeline), options};
    const bool lifetime = lifetime_mode("aggregate", options.timeout_mode, options.timeout || options_.timeout, timeout,
                                        cursor_type::non_tailable, std::nullopt, op.writes());
    const auto deadline = deadline_for(options.timeout);
    // $out / $merge: a write, never retried, with the write concern; to the primary, unless the
    // read preference is not primary and no available server is older than 5.0 (wire 13; a load
    // balancer counts as 5.0+): then the read preference selects, as the CRUD spec says.
    bool by_read_preference = false;
    if (op.writes() && options.read_preference && options.read_preference->mode != read_preference_mode::primary) {
        // Decided on a discovered topology: a selection by the read preference waits for one.
        co_await select(requirements_for(sdk::operation_requirements::kind::read, options.read_preference), {}, deadline);
        by_read_preference = true;
        if (current_->type != sdk::topology_type::load_balanced)
            for (const auto& server : current_->servers)
                if (server.is_data_bearing() && server.max_wire_version < 13) by_read_preference = false;
    }
    auto o = op.writes() && !by_read_preference ? write_operation(db, op.command(), false, *options.write_concern)
                                                : read_operation(db, op.command(), options.read_preference, s.rc);
    if (op.writes() && !by_read_preference) o.command = with_read_concern(std::move(o.command), s.rc);
    if (op.writes()) o.retryable = false;
    o.keep_session = true;
    o.session = std::move(implicit_session);  // the caller's, which it keeps (a change stream's resume)
    o.explicit_session = std::move(session);
    o.raw_data = options.raw_data;
    o.timeout = options.timeout;
    o.deadline = deadline;
    o.no_max_time = !lifetime;
    auto r = co_await execute(std::move(o));
    if (!lifetime) r.deadline.reset();  // each getMore gets the whole timeout
    auto c = cursor_from(std::move(r), std::move(db), std::move(coll), options.batch_size, 0);
    c.state_->comment = std::move(options.comment);
    co_return c;
}

// ---------------------------------------------------------------- indexes and collections

asio::awaitable<std::vector<std::string>> client_core::create_indexes(std::string db, std::string coll,
                                                                      std::vector<index_model> indexes, write_concern wc,
                                                                      session_ptr session, create_indexes_options options) {
    if (indexes.empty()) throw error(errc::invalid_argument, "create_indexes: no index given");
    ops::create_indexes_op op{std::move(coll), std::move(indexes), std::move(wc)};
    auto o = write_operation(std::move(db), op.command(), false, op.wc);
    o.explicit_session = std::move(session);
    o.raw_data = options.raw_data;  // the index management spec: 8.2+ only, as everywhere
    o.timeout = options.timeout;
    co_await execute(std::move(o));
    co_return op.names();
}

asio::awaitable<cursor> client_core::list_indexes(std::string db, std::string coll, session_ptr session,
                                                  list_indexes_options options) {
    // The primary: listIndexes is not a secondary read.
    auto o = read_operation(db, bson::make_document(bson::kvp("listIndexes", coll), bson::kvp("cursor", bson::document())),
                            read_preference{}, {});
    o.keep_session = true;
    o.explicit_session = std::move(session);
    o.raw_data = options.raw_data;
    o.timeout = options.timeout;
    auto r = co_await execute(std::move(o));
    co_return cursor_from(std::move(r), std::move(db), std::move(coll), std::nullopt, 0);
}

asio::awaitable<void> client_core::drop_index(std::string db, std::string coll, std::string index, write_concern wc,
                                              session_ptr session, drop_index_options options) {
    bson::builder b;
    b.append("dropIndexes", coll).append("index", index);
    ops::append_write_concern(b, wc);
    auto o = write_operation(std::move(db), b.extract(), false, wc);
    o.explicit_session = std::move(session);
    o.raw_data = options.raw_data;
    o.timeout = options.timeout;
    co_await execute(std::move(o));
}

asio::awaitable<cursor> client_core::list_collections(std::string db, list_collections_options options, session_ptr session) {
    // The primary, as listIndexes.
    auto o = read_operation(db, ops::list_collections_command(options), read_preference{}, {});
    o.keep_session = true;
    o.explicit_session = std::move(session);
    o.timeout = options.timeout;
    auto r = co_await execute(std::move(o));
    co_return cursor_from(std::move(r), std::move(db), "$cmd.listCollections", options.batch_size, 0);
}

asio::awaitable<bson::document> client_core::list_databases(bson::document filter, bool name_only, session_ptr session) {
    bson::builder b;
    b.append("listDatabases", 1);
    if (!filter.view().empty()) b.append("filter", filter.view());
    if (name_only) b.append("nameOnly", true);
    auto o = read_operation("admin", b.extract(), read_preference{}, {});
    o.explicit_session = std::move(session);
    auto r = co_await execute(std::move(o));
    co_return std::move(r.reply).to_document();
}

asio::awaitable<bson::document> client_core::write_command(std::string db, bson::document command, write_concern wc,
                                                           session_ptr session, std::optional<std::chrono::milliseconds> timeout) {
    bson::builder b;
    b.concat(command.view());
    ops::append_write_concern(b, wc);
    auto o = write_operation(std::move(db), b.extract(), false, wc);
    o.explicit_session = std::move(session);
    o.timeout = timeout;
    auto r = co_await execute(std::move(o));
    co_return std::move(r.reply).to_document();
}

}  // namespace trellis::detail
