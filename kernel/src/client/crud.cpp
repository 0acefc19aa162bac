// CRUD and collection management: each operation's command and reply come from its ops/ value
// type; this file only chooses how it is executed (read or write, retryable or not).
#include "client/core.hpp"
#include "ops/ops.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/write_error.hpp"

namespace trellis::detail {


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
    return o;
}

client_core::operation client_core::read_operation(std::string db, bson::document command,
                                                    std::optional<read_preference> rp) const {
    operation o;
    o.db = std::move(db);
    o.command = std::move(command);
    o.kind = op_kind::read;
    o.read_pref = std::move(rp);
    o.retryable = options_.retry_reads;
    return o;
}

asio::awaitable<insert_many_result> client_core::insert_many(std::string db, std::string coll,
                                                             std::vector<bson::document> docs, insert_many_options options,
                                                             write_concern wc) {
    if (docs.empty()) throw error(errc::invalid_argument, "insert_many: no documents to insert");
    auto op = ops::insert_op::make(std::move(coll), std::move(docs), options.ordered, wc);
    op.bypass_document_validation = options.bypass_document_validation;
    // Batches by the limits every server since 3.6 reports (16 MiB documents, 100,000 writes);
    // a server that reports less is told by its own error.
    const ops::connection_limits limits;
    std::vector<bulk_write_error> unordered_failures;
    for (const auto& [first, last] : op.batches(limits)) {
        auto o = write_operation(db, op.command(first, last), true, wc);
        o.write_error_offset = static_cast<std::int64_t>(first);
        try {
            co_await execute(std::move(o));
        } catch (const bulk_write_error& e) {
            if (options.ordered) throw;
            unordered_failures.push_back(e);  // unordered: the other batches still go out
        }
    }
    if (!unordered_failures.empty()) {
        if (unordered_failures.size() == 1) throw unordered_failures.front();
        std::vector<write_error_detail> all;
        std::optional<write_error_detail> wce;
        for (const auto& f : unordered_failures) {
            all.insert(all.end(), f.write_errors().begin(), f.write_errors().end());
            if (!wce) wce = f.write_concern_error();
        }
        throw bulk_write_error(std::move(all), std::move(wce), unordered_failures.front().error_labels(),
                               unordered_failures.front().reply(), unordered_failures.front().what());
    }
    insert_many_result out;
    out.inserted_ids = std::move(op.ids);
    out.acknowledged = !ops::unacknowledged(wc);
    co_return out;
}

asio::awaitable<update_result> client_core::update(std::string db, std::string coll, bson::document filter,
                                                   bson::document update, update_options options, bool multi, bool replace,
                                                   write_concern wc) {
    if (replace) ops::validate_replacement(update.view());
    else ops::validate_update(update.view());
    ops::update_op op;
    op.collection = std::move(coll);
    op.statement.filter = std::move(filter);
    op.statement.update = std::move(update);
    op.statement.multi = multi;
    op.statement.upsert = options.upsert;
    op.statement.array_filters = std::move(options.array_filters);
    op.statement.collation = std::move(options.collation);
    op.statement.hint = std::move(options.hint);
    op.let = std::move(options.let);
    op.wc = std::move(wc);
    auto r = co_await execute(write_operation(std::move(db), op.command(), op.retryable(), op.wc));
    co_return op.parse(r.reply.view());
}

asio::awaitable<delete_result> client_core::remove(std::string db, std::string coll, bson::document filter,
                                                   delete_options options, bool multi, write_concern wc) {
    ops::delete_op op;
    op.collection = std::move(coll);
    op.filter = std::move(filter);
    op.multi = multi;
    op.collation = std::move(options.collation);
    op.hint = std::move(options.hint);
    op.wc = std::move(wc);
    auto r = co_await execute(write_operation(std::move(db), op.command(), op.retryable(), op.wc));
    co_return op.parse(r.reply.view());
}

asio::awaitable<std::int64_t> client_core::count_documents(std::string db, std::string coll, bson::document filter,
                                                           count_options options) {
    ops::count_documents_op op{std::move(coll), std::move(filter), std::move(options)};
    auto r = co_await execute(read_operation(std::move(db), op.command(), op.options.read_preference));
    co_return op.parse(r.reply.view());
}

asio::awaitable<std::int64_t> client_core::estimated_count(std::string db, std::string coll) {
    ops::estimated_count_op op{std::move(coll)};
    auto r = co_await execute(read_operation(std::move(db), op.command(), std::nullopt));
    co_return op.parse(r.reply.view());
}

asio::awaitable<bson::array> client_core::distinct(std::string db, std::string coll, std::string key, bson::document filter) {
    ops::distinct_op op{std::move(coll), std::move(key), std::move(filter)};
    auto r = co_await execute(read_operation(std::move(db), op.command(), std::nullopt));
    co_return op.parse(r.reply.view());
}

asio::awaitable<cursor> client_core::aggregate(std::string db, std::string coll, bson::array pipeline,
                                               aggregate_options options, write_concern wc) {
    if (!options.write_concern) options.write_concern = std::move(wc);
    ops::aggregate_op op{coll, std::move(pipeline), options};
    // $out / $merge: a write, to the primary, never retried.
    auto o = op.writes() ? write_operation(db, op.command(), false, *options.write_concern)
                         : read_operation(db, op.command(), options.read_preference);
    o.keep_session = true;
    auto r = co_await execute(std::move(o));
    co_return cursor_from(std::move(r), std::move(db), std::move(coll), options.batch_size, 0);
}

asio::awaitable<std::vector<std::string>> client_core::create_indexes(std::string db, std::string coll,
                                                                      std::vector<index_model> indexes, write_concern wc) {
    if (indexes.empty()) throw error(errc::invalid_argument, "create_indexes: no index given");
    ops::create_indexes_op op{std::move(coll), std::move(indexes), std::move(wc)};
    co_await execute(write_operation(std::move(db), op.command(), false, op.wc));
    co_return op.names();
}

asio::awaitable<cursor> client_core::list_indexes(std::string db, std::string coll) {
    // The primary: listIndexes is not a secondary read.
    auto o = read_operation(db, bson::make_document(bson::kvp("listIndexes", coll), bson::kvp("cursor", bson::document())),
                            read_preference{});
    o.keep_session = true;
    auto r = co_await execute(std::move(o));
    co_return cursor_from(std::move(r), std::move(db), std::move(coll), std::nullopt, 0);
}

asio::awaitable<bson::document> client_core::write_command(std::string db, bson::document command, write_concern wc) {
    bson::builder b;
    b.concat(command.view());
    const auto wcd = ops::write_concern_document(wc);
    if (!wcd.view().empty()) b.append("writeConcern", wcd.view());
    auto r = co_await execute(write_operation(std::move(db), b.extract(), false, wc));
    co_return std::move(r.reply);
}

}  // namespace trellis::detail
