// client::bulk_write: each batch of ops/client_bulk_write.hpp is one bulkWrite command on
// "admin" (retryable when it has no multi-document model), cut by the limits of the connection
// that sends it; its results cursor is read to the end (getMore in the command's session, on its
// server) before the next batch goes out. In an explicit session every command carries its lsid.
#include "client/borrowed.hpp"
#include "client/core.hpp"
#include "client/wait.hpp"
#include "ops/client_bulk_write.hpp"

namespace trellis::detail {

asio::awaitable<client_bulk_write_result> client_core::client_bulk_write(std::vector<namespace_write_model> models,
                                                                         client_bulk_write_options options,
                                                                         session_ptr session) {
    write_concern wc = options.write_concern ? *options.write_concern : current_write_concern();
    const auto op = ops::client_bulk_write_op::make(std::move(models), std::move(options), std::move(wc));
    ops::client_bulk_write_results results(op);
    const bool unacknowledged = ops::unacknowledged(op.wc);
    for (std::size_t from = 0; from < op.models.size();) {
        std::optional<ops::client_bulk_write_op::batch> sent;  // what batch_for cut
        auto o = write_operation("admin", op.base_command(), true, op.wc);  // batch_for says if retryable
        o.keep_session = true;  // the results cursor's getMores use it
        o.explicit_session = session;
        o.raw_data = op.options.raw_data;
        o.min_wire_version = ops::client_bulk_write_min_wire;
        o.min_wire_reason = "bulk_write: the bulkWrite command needs MongoDB 8.0 (wire version 25) or later";
        o.batch_for = [&op, &sent, from](const ops::connection_limits& limits) {
            sent = op.next_batch(limits, from);
            auto seq = op.sequences_of(*sent);
            write_batch b;
            b.retryable = sent->retryable;
            b.sequences.emplace_back("ops", std::move(seq.ops));
            b.sequences.emplace_back("nsInfo", std::move(seq.ns_info));
            return b;
        };
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
        const auto batch = *sent;  // a reply: the batch was cut and sent
        from += batch.count;
        if (unacknowledged) {
            results.unacknowledged();
            continue;
        }
        if (with_wce) {
            // The failure kept neither the implicit session nor the server: the cursor is where
            // writes go (the server that just answered, unless the primary changed meanwhile).
            const reply_on in_use = co_await server_in_use();
            reply_on rebuilt;
            rebuilt.reply = std::move(*with_wce);
            rebuilt.address = in_use.address;
            rebuilt.max_wire_version = in_use.max_wire_version;
            rebuilt.explicit_session = session;
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

namespace trellis {

namespace asio = boost::asio;

asio::awaitable<client_bulk_write_result> client::bulk_write_impl(std::shared_ptr<detail::client_core> core,
                                                                  std::shared_ptr<detail::session_state> session,
                                                                  std::vector<namespace_write_model> models,
                                                                  client_bulk_write_options options) {
    auto s = detail::client_session_for(core, session, "client::bulk_write");
    co_return co_await core->client_bulk_write(std::move(models), std::move(options), std::move(s));
}

client_bulk_write_result client::bulk_write(const client_session& session, std::span<const namespace_write_model> models,
                                            client_bulk_write_options options) {
    return detail::wait(core_, bulk_write_impl(core_, session.state(), detail::borrowed(models), std::move(options)));
}

}  // namespace trellis
