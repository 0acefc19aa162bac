// Server monitors (the server monitoring spec): one per server, on its own connection, never
// authenticated and never reported as command events. Polling: hello every
// heartbeat_frequency, or sooner when an operation asks (never more often than every 500 ms).
// Streaming (servers with topologyVersion, serverMonitoringMode stream or auto): an awaitable
// hello with exhaust, the server answering as soon as something changes, and a separate RTT
// monitor on a second connection.
#include "trellis/reply.hpp"
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/core.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"

namespace trellis::detail {

namespace {

constexpr std::chrono::milliseconds min_check_interval{500};

void note_limits(server_state& s, bson::document_view hello) {
    if (auto e = hello.find("maxBsonObjectSize"); e && e->is_number()) s.max_bson_size = static_cast<std::int32_t>(e->as_int64());
    if (auto e = hello.find("maxMessageSizeBytes"); e && e->is_number())
        s.max_message_size = static_cast<std::int32_t>(e->as_int64());
    if (auto e = hello.find("maxWriteBatchSize"); e && e->is_number())
        s.max_write_batch_size = static_cast<std::int32_t>(e->as_int64());
}

std::string errmsg_of(bson::document_view reply) {
    if (auto m = reply.find("errmsg"); m && m->type() == bson::type::string) return std::string(m->get_string());
    return "hello failed";
}

}  // namespace

asio::awaitable<std::unique_ptr<conn::connection>> client_core::monitor_connection(std::shared_ptr<server_state> s,
                                                                                  asio::cancellation_signal& cancel,
                                                                                  std::string& failure, std::error_code& code,
                                                                                  std::optional<bson::document>* refused_hello) {
    auto settings = std::make_shared<conn::establish_settings>(*s->settings);
    settings->authenticate = {};
    settings->connection.on_command = {};
    if (options_.connect_timeout.count() > 0) settings->connection.socket_timeout = options_.connect_timeout;
    auto [f, c] = co_await asio::async_initiate<decltype(asio::use_awaitable), conn::establish_signature>(
        [&](auto handler) {
            conn::async_establish(strand_, settings, 0, asio::bind_cancellation_slot(cancel.slot(), std::move(handler)));
        },
        asio::use_awaitable);
    if (f) {
        failure = f.message;
        code = f.code;
        if (refused_hello) *refused_hello = std::move(f.hello_reply);
        co_return nullptr;
    }
    co_return std::move(c);
}

asio::awaitable<bool> client_core::check(std::shared_ptr<server_state> s, bool retrying) {
    s->last_check = std::chrono::steady_clock::now();
    s->check_requested = false;
    emit(server_heartbeat_started_event{topology_id_, s->address, false});
    const auto t0 = std::chrono::steady_clock::now();
    std::string failure;
    std::error_code code;
    std::optional<bson::document> reply;
    std::chrono::nanoseconds duration{0};
    if (!s->monitor) {
        const auto started = std::chrono::steady_clock::now();
        auto c = co_await monitor_connection(s, s->cancel_monitor, failure, code, &reply);
        if (c) {
            reply = c->description().hello_reply;
            duration = c->description().hello_duration;
            s->monitor = std::move(c);
        } else if (reply) {
            // The server answered, with wire versions Trellis cannot speak: SDAM must see its
            // description (the topology becomes incompatible and selection fails at once) rather
            // than an Unknown server that selection would wait for.
            duration = std::chrono::steady_clock::now() - started;
        }
    } else {
        conn::command_request r;
        r.database = "admin";
        r.command = s->monitor->description().hello_ok ? bson::make_document(bson::kvp("hello", 1))
                                                       : bson::make_document(bson::kvp("isMaster", 1));
        auto [ec, rep] = co_await s->monitor->async_run_command(std::move(r), asio::as_tuple(asio::use_awaitable));
        if (ec) {
            failure = s->monitor->last_error();
            code = ec;
        } else {
            reply = bson::document(rep.body);
            duration = rep.duration;
        }
    }
    if (s->stopped) co_return false;
    const auto now = std::chrono::steady_clock::now();
    if (reply && reply_ok(reply->view())) {
        s->rtt.add_sample(duration);
        s->last_heartbeat = now;
        emit(server_heartbeat_succeeded_event{topology_id_, s->address, duration, *reply, false});
        note_limits(*s, reply->view());
        on_server_description(sdam::parse_hello(s->address, reply->view(), s->rtt, now));
        co_return true;
    }
    if (reply) {
        failure = s->address + ": " + errmsg_of(reply->view());
        code = make_error_code(errc::operation_failure);
    }
    emit(server_heartbeat_failed_event{topology_id_, s->address, now - t0, failure, code, reply, false});
    if (s->monitor) {
        s->monitor->close();
        s->monitor.reset();
    }
    // A network error on a server that was known: one immediate retry (the monitoring spec).
    const auto* previous = current_->find(s->address);
    if (!retrying && previous && previous->type != sdk::server_type::unknown && code != errc::network_timeout && !reply)
        co_return co_await check(s, true);
    s->rtt.reset();
    mark_unknown(*s, failure, code == errc::network_timeout);
    co_return false;
}

asio::awaitable<void> client_core::stream(std::shared_ptr<server_state> s) {
    const auto* d = current_->find(s->address);
    if (!d || !d->topology_version || !s->monitor) co_return;
    s->streaming = true;
    if (!s->rtt_running) asio::co_spawn(strand_, rtt_loop(s), asio::detached);
    bson::builder tv;
    tv.append("processId", d->topology_version->process_id).append("counter", d->topology_version->counter);
    conn::command_request r;
    r.database = "admin";
    r.command = bson::make_document(bson::kvp("hello", 1), bson::kvp("topologyVersion", tv.view()),
                                    bson::kvp("maxAwaitTimeMS", static_cast<std::int64_t>(options_.heartbeat_frequency.count())));
    r.exhaust_allowed = true;
    const auto wait = options_.connect_timeout + options_.heartbeat_frequency;
    r.timeout = wait;
    emit(server_heartbeat_started_event{topology_id_, s->address, true});
    auto t0 = std::chrono::steady_clock::now();
    auto [ec, rep] = co_await s->monitor->async_run_command(std::move(r), asio::as_tuple(asio::use_awaitable));
    for (;;) {
        if (s->stopped) break;
        const auto now = std::chrono::steady_clock::now();
        if (ec || !reply_ok(rep.body)) {
            const std::string failure = ec ? s->monitor->last_error() : s->address + ": " + errmsg_of(rep.body);
            std::optional<bson::document> body;
            if (!ec) body = bson::document(rep.body);
            emit(server_heartbeat_failed_event{topology_id_, s->address, now - t0, failure,
                                               ec ? ec : make_error_code(errc::operation_failure), body, true});
            s->monitor->close();
            s->monitor.reset();
            if (!ec) mark_unknown(*s, failure, false);
            break;  // the loop's next check reconnects (and marks the server Unknown if it fails)
        }
        s->last_heartbeat = now;
        emit(server_heartbeat_succeeded_event{topology_id_, s->address, now - t0, bson::document(rep.body), true});
        note_limits(*s, rep.body);
        on_server_description(sdam::parse_hello(s->address, rep.body, s->rtt, now));
        if (!rep.more_to_come || s->stopped) break;
        emit(server_heartbeat_started_event{topology_id_, s->address, true});
        t0 = std::chrono::steady_clock::now();
        std::tie(ec, rep) = co_await s->monitor->async_read_more(wait, asio::as_tuple(asio::use_awaitable));
    }
    s->streaming = false;
    s->rtt_wake.cancel();
}

asio::awaitable<void> client_core::rtt_loop(std::shared_ptr<server_state> s) {
    const auto self = shared_from_this();  // alive while this coroutine is
    s->rtt_running = true;
    while (!s->stopped && s->streaming) {
        if (!s->rtt_connection) {
            std::string failure;
            std::error_code code;
            auto c = co_await monitor_connection(s, s->cancel_rtt, failure, code);
            if (c) {
                s->rtt.add_sample(c->description().hello_duration);
                s->rtt_connection = std::move(c);
            }
        } else {
            conn::command_request r;
            r.database = "admin";
            r.command = bson::make_document(bson::kvp("hello", 1));
            auto [ec, rep] = co_await s->rtt_connection->async_run_command(std::move(r), asio::as_tuple(asio::use_awaitable));
            if (!ec && reply_ok(rep.body)) {
                s->rtt.add_sample(rep.duration);
            } else {
                s->rtt_connection->close();
                s->rtt_connection.reset();
            }
        }
        if (s->stopped || !s->streaming) break;
        s->rtt_wake.expires_after(options_.heartbeat_frequency);
        co_await s->rtt_wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (s->rtt_connection) {
        s->rtt_connection->close();
        s->rtt_connection.reset();
    }
    s->rtt_running = false;
}

asio::awaitable<void> client_core::monitor_loop(std::shared_ptr<server_state> s) {
    const auto self = shared_from_this();  // alive while this coroutine is
    const bool may_stream = options_.server_monitoring_mode != monitoring_mode::poll;
    while (!s->stopped) {
        const bool ok = co_await check(s, false);
        if (s->stopped) break;
        if (ok && may_stream && s->monitor && s->monitor->description().topology_version) {
            co_await stream(s);
            if (s->stopped) break;
        } else if (!s->check_requested) {
            s->wake.expires_after(options_.heartbeat_frequency);
            co_await s->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        // Never more often than every 500 ms, whatever asks.
        while (!s->stopped) {
            const auto since = std::chrono::steady_clock::now() - s->last_check;
            if (since >= min_check_interval) break;
            s->wake.expires_after(min_check_interval - since);
            co_await s->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
}

}  // namespace trellis::detail
