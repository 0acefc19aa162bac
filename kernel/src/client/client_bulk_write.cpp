// client::bulk_write: each batch of ops/client_bulk_write.hpp is one bulkWrite command on
// "admin" (retryable when it has no multi-document model); its results cursor is read to the
// end (getMore in the command's session, on its server) before the next batch goes out.
#include "client/core.hpp"
#include "ops/client_bulk_write.hpp"

namespace trellis::detail {

asio::awaitable<client_bulk_write_result> client_core::client_bulk_write(std::vector<namespace_write_model> models,
                                                                         client_bulk_write_options options) {
    write_concern wc = options.write_concern ? *options.write_concern : current_write_concern();
    const auto op = ops::client_bulk_write_op::make(std::move(models), std::move(options), std::move(wc));
    const ops::connection_limits limits = co_await write_limits();
    const std::string too_old = "bulk_write: the bulkWrite command needs MongoDB 8.0 (wire version 25) or later";
    // A load balancer's description has no wire version: the connection's is checked below.
    if (limits.max_wire_version > 0 && limits.max_wire_version < ops::client_bulk_write_min_wire)
        throw error(errc::invalid_argument,
                    too_old + "; the server writes go to has wire version " + std::to_string(limits.max_wire_version));
    ops::client_bulk_write_results results(op);
    const bool unacknowledged = ops::unacknowledged(op.wc);
    for (const auto& batch : op.batches(limits)) {
        auto o = write_operation("admin", op.command(batch), batch.retryable, op.wc);
        o.sequence_fields = {"ops", "nsInfo"};
        o.keep_session = true;  // the results cursor's getMores use it
        o.raw_data = op.options.raw_data;
        o.min_wire_version = ops::client_bulk_write_min_wire;
        o.min_wire_reason = too_old;
        std::optional<reply_on> r;
        std::exception_ptr top;
        std::optional<bson::document> with_wce;
        try {
            r = co_await execute(std::move(o));
        } catch (const bulk_write_error& e) {
            // ok: 1 with a writeConcernError: the writes were done and their results are in the
            // cursor; the bulk write goes on.
            if (e.write_concern_error() && e.write_errors().empty() && e.reply().view().find("cursor")) with_wce = e.reply();
            else top = std::current_exception();
        } catch (...) {
            top = std::current_exception();
        }
        if (top) std::rethrow_exception(results.top_level(top));
        if (unacknowledged) {
            results.unacknowledged();
            continue;
        }
        if (with_wce) {
            // The failure kept neither the session nor the server: the cursor is where writes go
            // (the server that just answered, unless the primary changed meanwhile).
            const reply_on in_use = co_await server_in_use();
            reply_on rebuilt;
            rebuilt.reply = std::move(*with_wce);
            rebuilt.address = in_use.address;
            rebuilt.max_wire_version = in_use.max_wire_version;
            r = std::move(rebuilt);
        }
        results.reply(batch, r->reply.view());
        cursor c = cursor_from(std::move(*r), "admin", "$cmd.bulkWrite", std::nullopt, 0);
        try {
            while (auto d = co_await cursor_next(c.state_)) results.result(batch, d->view());
        } catch (...) {
            top = std::current_exception();
        }
        // A cursor left open (a failed result) is killed as the cursor goes.
        if (top) std::rethrow_exception(results.top_level(top));
        results.end_batch(batch);
        if (results.stopped()) break;
    }
    co_return results.finish();
}

}  // namespace trellis::detail
