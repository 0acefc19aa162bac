// Tests of the connection pool (kernel/src/pool) beyond what the CMAP spec files pin down:
// the sans-io core driven by hand with a fake clock (generations, perished connections,
// establishment failures, closing with connections out), and the Asio shell (completion token
// styles, cancellation, establishment failure end to end, check-outs posted from many threads,
// connections that outlive their pool).
// Asio and the pool come before QtTest: Qt defines emit as a macro, which would break
// asio::cancellation_signal::emit.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>

#include "pool/connection_pool.hpp"
#include "pool/strand.hpp"
#include "pool/pool_core.hpp"
#include "trellis/errors.hpp"
#include "trellis/errors.hpp"
#include "trellis/events.hpp"
#include "trellis/options.hpp"

namespace asio = boost::asio;
namespace pool = trellis::pool;
using namespace std::chrono_literals;

namespace {
void cancel(asio::cancellation_signal& signal) { signal.emit(asio::cancellation_type::terminal); }
}  // namespace

#include <QtTest/QtTest>

namespace {

// What a test connection has been through; shared so that it survives the connection.
struct connection_log {
    std::atomic<int> closed{0};
    std::atomic<int> interrupted{0};
};

class test_connection final : public pool::pooled_connection {
public:
    explicit test_connection(std::shared_ptr<connection_log> log, std::optional<trellis::bson::oid> service = {})
        : log_(std::move(log)), service_(service) {}
    bool is_perished() const noexcept override { return perished_; }
    std::optional<trellis::bson::oid> service_id() const noexcept override { return service_; }
    void close() noexcept override { ++log_->closed; }
    void interrupt() noexcept override {
        ++log_->interrupted;
        perished_ = true;
    }
    void break_it() noexcept { perished_ = true; }

private:
    std::shared_ptr<connection_log> log_;
    std::optional<trellis::bson::oid> service_;
    std::atomic<bool> perished_{false};
};

// Records events as "Type" or "Type:reason" strings, thread-safely.
class event_recorder {
public:
    trellis::cmap_event_handler handler() {
        return [this](const trellis::cmap_event& e) {
            std::string s(trellis::event_name(e));
            if (const auto* c = std::get_if<trellis::connection_closed_event>(&e))
                s += ":" + std::string(to_string(c->reason));
            if (const auto* f = std::get_if<trellis::connection_check_out_failed_event>(&e))
                s += ":" + std::string(to_string(f->reason));
            std::lock_guard lock(mutex_);
            names_.push_back(std::move(s));
            events_.push_back(e);
        };
    }
    std::vector<std::string> names() const {
        std::lock_guard lock(mutex_);
        return names_;
    }
    std::vector<trellis::cmap_event> events() const {
        std::lock_guard lock(mutex_);
        return events_;
    }
    int count(const std::string& name) const {
        std::lock_guard lock(mutex_);
        return static_cast<int>(std::count(names_.begin(), names_.end(), name));
    }
    void reset() {
        std::lock_guard lock(mutex_);
        names_.clear();
        events_.clear();
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> names_;
    std::vector<trellis::cmap_event> events_;
};

// ---- core helpers

struct core_fixture {
    explicit core_fixture(trellis::connection_pool_options options = {}, bool clear_on_error = true,
                          bool load_balanced = false)
        : core("db:27017", options, events.handler(), clear_on_error, load_balanced) {}

    event_recorder events;
    pool::pool_core core;
    pool::time_point now{};  // the fake clock
    std::shared_ptr<connection_log> log = std::make_shared<connection_log>();
    std::optional<trellis::bson::oid> service;  // the serviceId of the connections established next

    // Runs one input and answers its establish actions at once with new connections (or
    // with `fail` when given); returns the completions, in order.
    std::vector<pool::action::complete> answer(pool::pool_actions actions, std::optional<std::error_code> fail = {}) {
        std::vector<pool::action::complete> done;
        while (!actions.empty()) {
            pool::pool_actions next;
            for (auto& a : actions) {
                if (auto* e = std::get_if<pool::action::establish>(&a)) {
                    if (fail) core.establish_failed(e->id, *fail, now, next);
                    else core.establish_succeeded(e->id, std::make_unique<test_connection>(log, service), now, next);
                } else if (auto* c = std::get_if<pool::action::complete>(&a)) {
                    done.push_back(std::move(*c));
                }
            }
            actions = std::move(next);
        }
        return done;
    }

    std::unique_ptr<pool::pooled_connection> check_out(pool::request_id r) {
        pool::pool_actions out;
        core.check_out(r, now, out);
        auto done = answer(std::move(out));
        for (auto& c : done)
            if (c.request == r && !c.error) return std::move(c.connection);
        return nullptr;
    }

    void check_in(std::unique_ptr<pool::pooled_connection> c) {
        pool::pool_actions out;
        core.check_in(std::move(c), now, out);
        answer(std::move(out));
    }
};

// ---- shell helpers

// Runs the io_context on the calling thread until `done` holds (or a bound passes).
template <class Predicate>
bool pump(asio::io_context& io, Predicate done, std::chrono::milliseconds bound = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        io.restart();
        io.run_for(1ms);
    }
    return true;
}

// A config without designated initializers (GCC 12 warns about the fields they leave out).
pool::pool_config make_config(pool::connection_establisher establisher, trellis::cmap_event_handler on_event = {}) {
    pool::pool_config cfg;
    cfg.address = "db:27017";
    cfg.establisher = std::move(establisher);
    cfg.on_event = std::move(on_event);
    return cfg;
}

pool::connection_establisher immediate_establisher(std::shared_ptr<connection_log> log) {
    return [log](pool::connection_id, pool::establish_handler h) {
        std::move(h)(std::error_code(), std::make_unique<test_connection>(log));
    };
}

}  // namespace

class PoolTest : public QObject {
    Q_OBJECT

private slots:
    // ================================================================ the core

    void core_ids_and_counts() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        auto a = f.check_out(1);
        auto b = f.check_out(2);
        QVERIFY(a && b);
        QCOMPARE(a->id(), pool::connection_id(1));
        QCOMPARE(b->id(), pool::connection_id(2));
        QCOMPARE(f.core.counts().in_use, std::size_t(2));
        f.check_in(std::move(a));
        const auto c = f.core.counts();
        QCOMPARE(c.total, std::size_t(2));
        QCOMPARE(c.available, std::size_t(1));
        QCOMPARE(c.in_use, std::size_t(1));
        // The available one is reused: no third connection.
        auto again = f.check_out(3);
        QCOMPARE(again->id(), pool::connection_id(1));
        f.check_in(std::move(again));
        f.check_in(std::move(b));
    }

    void core_generations_after_clear() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        auto old = f.check_out(1);
        QCOMPARE(old->generation(), std::uint64_t(0));
        f.core.clear(false, f.now, out);
        QCOMPARE(f.core.generation(), std::uint64_t(1));
        QCOMPARE(f.core.state(), pool::pool_state::paused);
        // Clearing a paused pool still moves the generation on, without an event.
        f.events.reset();
        f.core.clear(false, f.now, out);
        QCOMPARE(f.core.generation(), std::uint64_t(2));
        QCOMPARE(f.events.count("ConnectionPoolCleared"), 0);
        f.core.ready(out);
        auto fresh = f.check_out(2);
        QCOMPARE(fresh->generation(), std::uint64_t(2));
        // The old connection is stale when it comes back; the new one is kept.
        f.check_in(std::move(old));
        QCOMPARE(f.events.count("ConnectionClosed:stale"), 1);
        f.check_in(std::move(fresh));
        QCOMPARE(f.core.counts().available, std::size_t(1));
        QCOMPARE(f.log->closed.load(), 1);
    }

    // CMAP load balancer mode: generations per serviceId; clearing one service leaves the pool
    // ready, the other service's connections current, and drops an entry at zero connections.
    void core_load_balancer_mode_clears_per_service() {
        core_fixture f({}, false, true);
        pool::pool_actions out;
        f.core.ready(out);
        const auto a_id = trellis::bson::oid::generate(), b_id = trellis::bson::oid::generate();
        f.service = a_id;
        auto a1 = f.check_out(1);
        auto a2 = f.check_out(2);
        f.service = b_id;
        auto b1 = f.check_out(3);
        QVERIFY(a1 && a2 && b1);
        QCOMPARE(f.core.service_connections(a_id), std::size_t(2));
        QCOMPARE(f.core.service_connections(b_id), std::size_t(1));
        f.check_in(std::move(a2));  // available, then stale
        f.events.reset();
        f.core.clear_service(a_id, std::uint64_t(0), f.now, out);
        QCOMPARE(f.core.service_generation(a_id), std::uint64_t(1));
        QCOMPARE(f.core.service_generation(b_id), std::uint64_t(0));
        QCOMPARE(f.core.generation(), std::uint64_t(0));
        QCOMPARE(f.core.state(), pool::pool_state::ready);
        const auto events = f.events.events();
        QCOMPARE(events.size(), std::size_t(1));
        const auto& cleared = std::get<trellis::pool_cleared_event>(events[0]);
        QVERIFY(cleared.service_id.has_value());
        QCOMPARE(*cleared.service_id, a_id);
        // A second error from a connection of the old generation clears nothing more.
        f.core.clear_service(a_id, std::uint64_t(0), f.now, out);
        QCOMPARE(f.core.service_generation(a_id), std::uint64_t(1));
        QCOMPARE(f.events.count("ConnectionPoolCleared"), 1);
        // The background run closes the available stale one; checked in, a1 is stale too, b1 not.
        f.answer([&] {
            pool::pool_actions bg;
            f.core.background_run(f.now, bg);
            return bg;
        }());
        QCOMPARE(f.events.count("ConnectionClosed:stale"), 1);
        f.check_in(std::move(a1));
        QCOMPARE(f.events.count("ConnectionClosed:stale"), 2);
        QCOMPARE(f.core.service_connections(a_id), std::size_t(0));
        QCOMPARE(f.core.service_generation(a_id), std::uint64_t(0));  // entry dropped at zero
        f.check_in(std::move(b1));
        QCOMPARE(f.core.counts().available, std::size_t(1));
        // b1 is reused; a new connection to service a is current (the pool never paused).
        f.service = a_id;
        auto b_again = f.check_out(4);
        QVERIFY(b_again && b_again->service_id() == b_id);
        auto a3 = f.check_out(5);
        QVERIFY(a3 && a3->service_id() == a_id);
        QCOMPARE(a3->generation(), std::uint64_t(0));
        f.check_in(std::move(a3));
        f.check_in(std::move(b_again));
        QCOMPARE(f.events.count("ConnectionClosed:stale"), 2);
        QCOMPARE(f.core.counts().available, std::size_t(2));
        // Outside load balancer mode clear_service does nothing.
        core_fixture plain;
        plain.core.ready(out);
        plain.core.clear_service(a_id, std::nullopt, plain.now, out);
        QCOMPARE(plain.events.count("ConnectionPoolCleared"), 0);
    }

    void core_paused_pool_fails_at_once() {
        core_fixture f;
        pool::pool_actions out;
        f.core.check_out(7, f.now, out);
        QCOMPARE(out.size(), std::size_t(1));
        const auto& c = std::get<pool::action::complete>(out[0]);
        QCOMPARE(c.request, pool::request_id(7));
        QVERIFY(c.error == trellis::errc::pool_cleared);
        QCOMPARE(f.events.names().back(), std::string("ConnectionCheckOutFailed:connectionError"));
    }

    void core_idle_connection_perishes() {
        trellis::connection_pool_options o;
        o.max_idle_time = 100ms;
        core_fixture f(o);
        pool::pool_actions out;
        f.core.ready(out);
        auto c = f.check_out(1);
        f.check_in(std::move(c));
        // Not idle yet at exactly the limit (the spec says "longer than").
        f.now += 100ms;
        auto same = f.check_out(2);
        QCOMPARE(same->id(), pool::connection_id(1));
        f.check_in(std::move(same));
        f.now += 101ms;
        auto next = f.check_out(3);
        QCOMPARE(next->id(), pool::connection_id(2));
        QCOMPARE(f.events.count("ConnectionClosed:idle"), 1);
        // The background run closes idle available connections too.
        f.check_in(std::move(next));
        f.now += 1s;
        f.core.background_run(f.now, out);
        QCOMPARE(f.events.count("ConnectionClosed:idle"), 2);
        QCOMPARE(f.core.counts().total, std::size_t(0));
    }

    void core_errored_connection_perishes() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        auto a = f.check_out(1);
        auto b = f.check_out(2);
        // Broken while in use: closed on check-in.
        static_cast<test_connection*>(a.get())->break_it();
        f.check_in(std::move(a));
        QCOMPARE(f.events.count("ConnectionClosed:error"), 1);
        // Broken while available: closed on check-out, and another is made.
        auto* raw = static_cast<test_connection*>(b.get());
        f.check_in(std::move(b));
        raw->break_it();
        auto c = f.check_out(3);
        QCOMPARE(c->id(), pool::connection_id(3));
        QCOMPARE(f.events.count("ConnectionClosed:error"), 2);
        f.check_in(std::move(c));
    }

    void core_establishment_failure_clears_pool() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        f.events.reset();
        out.clear();
        f.core.check_out(1, f.now, out);
        const std::error_code refused = std::make_error_code(std::errc::connection_refused);
        auto done = f.answer(std::move(out), refused);
        QCOMPARE(done.size(), std::size_t(1));
        QVERIFY(done[0].error == refused);
        QVERIFY(!done[0].connection);
        const std::vector<std::string> expected{"ConnectionCheckOutStarted", "ConnectionCreated",
                                                "ConnectionPoolCleared", "ConnectionClosed:error",
                                                "ConnectionCheckOutFailed:connectionError"};
        QCOMPARE(f.events.names(), expected);
        QCOMPARE(f.core.state(), pool::pool_state::paused);
        QCOMPARE(f.core.counts().total, std::size_t(0));
    }

    void core_establishment_failure_left_to_sdam() {
        core_fixture f({}, false);
        pool::pool_actions out;
        f.core.ready(out);
        out.clear();
        f.core.check_out(1, f.now, out);
        f.answer(std::move(out), std::make_error_code(std::errc::connection_refused));
        QCOMPARE(f.core.state(), pool::pool_state::ready);
        QCOMPARE(f.events.count("ConnectionPoolCleared"), 0);
    }

    void core_stale_failure_does_not_clear_again() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        out.clear();
        f.core.check_out(1, f.now, out);
        const auto id = std::get<pool::action::establish>(out.at(0)).id;
        pool::pool_actions ignored;
        f.core.clear(false, f.now, ignored);
        f.core.ready(ignored);
        f.events.reset();
        // An establishment from before the clear fails: it no longer speaks for the server.
        f.core.establish_failed(id, std::make_error_code(std::errc::connection_reset), f.now, ignored);
        QCOMPARE(f.events.count("ConnectionPoolCleared"), 0);
        QCOMPARE(f.core.state(), pool::pool_state::ready);
    }

    void core_close_with_connections_checked_out() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        auto a = f.check_out(1);
        auto b = f.check_out(2);
        f.check_in(std::move(b));
        f.events.reset();
        out.clear();
        f.core.close(f.now, out);
        const std::vector<std::string> expected{"ConnectionClosed:poolClosed", "ConnectionPoolClosed"};
        QCOMPARE(f.events.names(), expected);
        // The checked-out one still counts until it comes back, and is then closed.
        QCOMPARE(f.core.counts().in_use, std::size_t(1));
        f.check_in(std::move(a));
        QCOMPARE(f.events.count("ConnectionClosed:poolClosed"), 2);
        QCOMPARE(f.core.counts().total, std::size_t(0));
        // Nothing comes out of a closed pool, and nothing changes its state any more.
        out.clear();
        f.core.check_out(3, f.now, out);
        QVERIFY(std::get<pool::action::complete>(out.at(0)).error == trellis::errc::pool_closed);
        f.core.ready(out);
        f.core.clear(true, f.now, out);
        QCOMPARE(f.core.state(), pool::pool_state::closed);
        QCOMPARE(f.events.count("ConnectionPoolReady"), 0);
    }

    void core_close_fails_waiters_and_pending() {
        trellis::connection_pool_options o;
        o.max_pool_size = 1;
        core_fixture f(o);
        pool::pool_actions out;
        f.core.ready(out);
        out.clear();
        f.core.check_out(1, f.now, out);  // establishing, not answered
        f.core.check_out(2, f.now, out);  // waits: the pool is full
        QVERIFY(f.core.is_waiting(2));
        out.clear();
        f.core.close(f.now, out);
        int cancelled = 0, failed = 0;
        for (auto& a : out) {
            if (std::holds_alternative<pool::action::cancel_establish>(a)) ++cancelled;
            if (auto* c = std::get_if<pool::action::complete>(&a)) {
                QVERIFY(c->error == trellis::errc::pool_closed);
                ++failed;
            }
        }
        QCOMPARE(cancelled, 1);
        QCOMPARE(failed, 2);
        // The establishment finishing later changes nothing.
        pool::pool_actions later;
        f.core.establish_succeeded(1, std::make_unique<test_connection>(f.log), f.now, later);
        QVERIFY(later.empty());
        QCOMPARE(f.log->closed.load(), 1);
    }

    void core_interrupt_in_use() {
        core_fixture f;
        pool::pool_actions out;
        f.core.ready(out);
        auto a = f.check_out(1);
        out.clear();
        f.core.check_out(2, f.now, out);  // pending, not answered
        out.clear();
        f.core.clear(true, f.now, out);
        QCOMPARE(f.log->interrupted.load(), 1);
        QVERIFY(std::holds_alternative<pool::action::cancel_establish>(out.at(0)));
        QCOMPARE(f.core.counts().pending, std::size_t(0));
        f.check_in(std::move(a));
        QCOMPARE(f.events.count("ConnectionClosed:stale"), 2);
    }

    void core_min_pool_size_respects_max_connecting() {
        trellis::connection_pool_options o;
        o.min_pool_size = 5;
        o.max_connecting = 2;
        core_fixture f(o);
        pool::pool_actions out;
        // Paused: no population.
        f.core.background_run(f.now, out);
        QVERIFY(out.empty());
        f.core.ready(out);
        out.clear();
        f.core.background_run(f.now, out);
        QCOMPARE(out.size(), std::size_t(2));
        QCOMPARE(f.core.counts().pending, std::size_t(2));
        // Each completion asks for another run until the minimum is reached.
        f.answer(std::move(out));
        QCOMPARE(f.core.counts().available, std::size_t(2));
        for (int i = 0; i < 3; ++i) {
            pool::pool_actions run;
            f.core.background_run(f.now, run);
            f.answer(std::move(run));
        }
        QCOMPARE(f.core.counts().total, std::size_t(5));
    }

    void core_rejects_bad_options() {
        trellis::connection_pool_options o;
        o.max_connecting = 0;
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, pool::validate_pool_options(o));
        o = {};
        o.max_pool_size = 2;
        o.min_pool_size = 3;
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, pool::validate_pool_options(o));
        o.max_pool_size = 0;  // no maximum: any minimum
        pool::validate_pool_options(o);
    }

    void options_from_client_options() {
        trellis::client_options c;
        c.max_pool_size = 7;
        c.min_pool_size = 3;
        c.max_connecting = 4;
        c.max_idle_time = 250ms;
        const auto o = pool::pool_options_from(c);
        QCOMPARE(o.max_pool_size, 7u);
        QCOMPARE(o.min_pool_size, 3u);
        QCOMPARE(o.max_connecting, 4u);
        QCOMPARE(o.max_idle_time, std::chrono::milliseconds(250));
        QCOMPARE(o.wait_queue_timeout, std::chrono::milliseconds(0));
    }

    // ================================================================ the Asio shell

    void completion_token_styles() {
        asio::io_context io;
        auto log = std::make_shared<connection_log>();
        event_recorder events;
        pool::connection_pool p(io.get_executor(), make_config(immediate_establisher(log), events.handler()));
        p.ready();

        // A callback.
        pool::checked_out_connection by_callback;
        bool called = false;
        p.async_check_out([&](std::error_code ec, pool::checked_out_connection c) {
            QVERIFY(!ec);
            by_callback = std::move(c);
            called = true;
        });
        QVERIFY(pump(io, [&] { return called; }));
        QVERIFY(by_callback);

        // use_future, completed on the pool's thread while this one waits.
        std::thread runner([&] { pump(io, [&] { return events.count("ConnectionCheckedOut") >= 2; }); });
        auto f = p.async_check_out(asio::use_future);
        auto [ec, by_future] = f.get();
        runner.join();
        QVERIFY(!ec);
        QVERIFY(by_future);
        QVERIFY(by_future->id() != by_callback->id());

        // use_awaitable.
        pool::checked_out_connection by_coroutine;
        std::error_code coroutine_error;
        bool finished = false;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                auto [e, c] = co_await p.async_check_out(asio::use_awaitable);
                coroutine_error = e;
                by_coroutine = std::move(c);
            },
            [&](std::exception_ptr) { finished = true; });
        QVERIFY(pump(io, [&] { return finished; }));
        QVERIFY(!coroutine_error);
        QVERIFY(by_coroutine);

        // deferred (the default token): nothing happens until the operation is started.
        auto op = p.async_check_out();
        io.restart();
        io.poll();
        QCOMPARE(events.count("ConnectionCheckOutStarted"), 3);
        pool::checked_out_connection by_deferred;
        std::move(op)([&](std::error_code e, pool::checked_out_connection c) {
            QVERIFY(!e);
            by_deferred = std::move(c);
        });
        QVERIFY(pump(io, [&] { return bool(by_deferred); }));

        // Letting go checks in.
        by_callback.reset();
        p.check_in(std::move(by_future));
        by_coroutine.reset();
        by_deferred.reset();
        QVERIFY(pump(io, [&] { return events.count("ConnectionCheckedIn") == 4; }));
        p.close();
        QVERIFY(pump(io, [&] { return events.count("ConnectionPoolClosed") == 1; }));
        QCOMPARE(log->closed.load(), 4);
    }

    // On an io_context run by one thread (concurrency hint 1) the pool needs no strand, and a
    // caller on that thread takes an available connection on the spot, with CMAP's events.
    void try_check_out_on_a_serial_executor() {
        {
            asio::io_context serial{1}, shared;
            QVERIFY(trellis::detail::is_serial(serial.get_executor()));
            QVERIFY(!trellis::detail::is_serial(shared.get_executor()));
            QVERIFY(trellis::detail::make_erased_strand(serial.get_executor()) == asio::any_io_executor(serial.get_executor()));
            QVERIFY(trellis::detail::make_erased_strand(shared.get_executor()) != asio::any_io_executor(shared.get_executor()));
        }
        asio::io_context io{1};
        auto log = std::make_shared<connection_log>();
        event_recorder events;
        pool::connection_pool p(io.get_executor(), make_config(immediate_establisher(log), events.handler()));
        p.ready();
        QVERIFY(pump(io, [&] { return events.count("ConnectionPoolReady") == 1; }));
        // Nothing available: nothing happens (no request, no connection started).
        bool tried = false;
        asio::post(io, [&] {
            QVERIFY(!p.try_check_out());
            tried = true;
        });
        QVERIFY(pump(io, [&] { return tried; }));
        QCOMPARE(events.count("ConnectionCheckOutStarted"), 0);
        QCOMPARE(events.count("ConnectionCreated"), 0);

        pool::checked_out_connection first;
        p.async_check_out([&](std::error_code, pool::checked_out_connection c) { first = std::move(c); });
        QVERIFY(pump(io, [&] { return bool(first); }));
        const auto id = first->id();
        first.reset();
        QVERIFY(pump(io, [&] { return events.count("ConnectionCheckedIn") == 1; }));

        // Not on the pool's executor (this thread is not running it): empty.
        QVERIFY(!p.try_check_out());
        pool::checked_out_connection again;
        asio::post(io, [&] { again = p.try_check_out(); });
        QVERIFY(pump(io, [&] { return bool(again); }));
        QCOMPARE(again->id(), id);
        QCOMPARE(events.count("ConnectionCheckOutStarted"), 2);
        QCOMPARE(events.count("ConnectionCheckedOut"), 2);
        QCOMPARE(events.count("ConnectionCreated"), 1);
        again.reset();
        QVERIFY(pump(io, [&] { return events.count("ConnectionCheckedIn") == 2; }));

        // A paused pool hands out nothing on the spot.
        p.clear();
        tried = false;
        asio::post(io, [&] {
            QVERIFY(!p.try_check_out());
            tried = true;
        });
        QVERIFY(pump(io, [&] { return tried; }));
        QCOMPARE(events.count("ConnectionCheckOutStarted"), 2);
        p.close();
        QVERIFY(pump(io, [&] { return events.count("ConnectionPoolClosed") == 1; }));
    }

    void establishment_failure_end_to_end() {
        asio::io_context io;
        event_recorder events;
        std::atomic<int> attempts{0};
        auto refusing = [&](pool::connection_id, pool::establish_handler h) {
            ++attempts;
            // Completes later, from the io_context, as real I/O would.
            asio::post(io, [h = std::move(h)]() mutable {
                std::move(h)(std::make_error_code(std::errc::connection_refused), nullptr);
            });
        };
        pool::connection_pool p(io.get_executor(), make_config(refusing, events.handler()));
        p.ready();
        std::optional<std::error_code> first, second;
        p.async_check_out([&](std::error_code ec, pool::checked_out_connection) { first = ec; });
        QVERIFY(pump(io, [&] { return first.has_value(); }));
        QVERIFY(*first == std::errc::connection_refused);
        QCOMPARE(events.count("ConnectionPoolCleared"), 1);
        QCOMPARE(events.count("ConnectionClosed:error"), 1);
        QCOMPARE(events.count("ConnectionCheckOutFailed:connectionError"), 1);
        // Paused now: the next check-out fails at once, without trying to connect.
        p.async_check_out([&](std::error_code ec, pool::checked_out_connection) { second = ec; });
        QVERIFY(pump(io, [&] { return second.has_value(); }));
        QVERIFY(*second == trellis::errc::pool_cleared);
        QCOMPARE(attempts.load(), 1);
    }

    void establishment_failure_reported_to_hook() {
        asio::io_context io;
        event_recorder events;
        std::optional<std::uint64_t> reported;
        auto cfg = make_config(
            [](pool::connection_id, pool::establish_handler h) {
                std::move(h)(make_error_code(trellis::errc::connection_failure), nullptr);
            },
            events.handler());
        cfg.on_establish_error = [&](std::error_code, std::uint64_t generation) { reported = generation; };
        pool::connection_pool p(io.get_executor(), std::move(cfg));
        p.ready();
        std::optional<std::error_code> result;
        p.async_check_out([&](std::error_code ec, pool::checked_out_connection) { result = ec; });
        QVERIFY(pump(io, [&] { return result.has_value(); }));
        QVERIFY(*result == trellis::errc::connection_failure);
        QCOMPARE(reported, std::optional<std::uint64_t>(0));
        QCOMPARE(events.count("ConnectionPoolCleared"), 0);
    }

    void perished_idle_connection_with_injected_clock() {
        asio::io_context io;
        event_recorder events;
        auto log = std::make_shared<connection_log>();
        auto now = std::make_shared<std::atomic<std::int64_t>>(0);
        auto cfg = make_config(immediate_establisher(log), events.handler());
        cfg.options.max_idle_time = 50ms;
        cfg.maintenance_interval.reset();  // only check-out may notice
        cfg.clock = [now] { return pool::time_point(std::chrono::milliseconds(now->load())); };
        pool::connection_pool p(io.get_executor(), std::move(cfg));
        p.ready();
        pool::checked_out_connection c;
        p.async_check_out([&](std::error_code, pool::checked_out_connection x) { c = std::move(x); });
        QVERIFY(pump(io, [&] { return bool(c); }));
        c.reset();
        QVERIFY(pump(io, [&] { return events.count("ConnectionCheckedIn") == 1; }));
        now->store(1000);  // ages the connection without sleeping
        p.async_check_out([&](std::error_code, pool::checked_out_connection x) { c = std::move(x); });
        QVERIFY(pump(io, [&] { return bool(c); }));
        QCOMPARE(c->id(), pool::connection_id(2));
        QCOMPARE(events.count("ConnectionClosed:idle"), 1);
        // The durations come from the same clock.
        for (const auto& e : events.events())
            if (const auto* out = std::get_if<trellis::connection_checked_out_event>(&e))
                QCOMPARE(out->duration.count(), 0);
        c.reset();
        p.close();
        QVERIFY(pump(io, [&] { return events.count("ConnectionPoolClosed") == 1; }));
    }

    // The maintenance timer sleeps while the pool has nothing to maintain (no handler runs),
    // and a check-in wakes it: the idle connection then perishes without any check-out.
    void maintenance_sleeps_while_idle() {
        asio::io_context io;
        event_recorder events;
        auto log = std::make_shared<connection_log>();
        auto cfg = make_config(immediate_establisher(log), events.handler());
        cfg.options.max_idle_time = 30ms;
        cfg.maintenance_interval = 5ms;
        pool::connection_pool p(io.get_executor(), std::move(cfg));
        p.ready();
        io.run_for(20ms);
        io.restart();
        // Every 5 ms for 100 ms would be about 20 runs; asleep, none.
        QCOMPARE(io.run_for(100ms), std::size_t(0));
        pool::checked_out_connection c;
        p.async_check_out([&](std::error_code, pool::checked_out_connection x) { c = std::move(x); });
        QVERIFY(pump(io, [&] { return bool(c); }));
        c.reset();
        QVERIFY(pump(io, [&] { return events.count("ConnectionClosed:idle") == 1; }, 2000ms));
        // Nothing left to maintain: asleep again.
        io.restart();
        io.run_for(20ms);
        io.restart();
        QCOMPARE(io.run_for(100ms), std::size_t(0));
        p.close();
        QVERIFY(pump(io, [&] { return events.count("ConnectionPoolClosed") == 1; }));
    }

    void close_with_connections_checked_out() {
        auto log = std::make_shared<connection_log>();
        event_recorder events;
        pool::checked_out_connection survivor;
        {
            asio::io_context io;
            {
                pool::connection_pool p(io.get_executor(), make_config(immediate_establisher(log), events.handler()));
                p.ready();
                pool::checked_out_connection first;
                p.async_check_out([&](std::error_code, pool::checked_out_connection x) { first = std::move(x); });
                p.async_check_out([&](std::error_code, pool::checked_out_connection x) { survivor = std::move(x); });
                QVERIFY(pump(io, [&] { return first && survivor; }));
                p.close();
                QVERIFY(pump(io, [&] { return events.count("ConnectionPoolClosed") == 1; }));
                // Checked in after the close: closed with reason poolClosed.
                first.reset();
                QVERIFY(pump(io, [&] { return events.count("ConnectionClosed:poolClosed") == 1; }));
                std::optional<std::error_code> after;
                p.async_check_out([&](std::error_code ec, pool::checked_out_connection) { after = ec; });
                QVERIFY(pump(io, [&] { return after.has_value(); }));
                QVERIFY(*after == trellis::errc::pool_closed);
            }
            // The pool object is gone: letting go of the last connection still closes it.
            survivor.reset();
            QVERIFY(pump(io, [&] { return log->closed.load() == 2; }));
        }
        QCOMPARE(log->closed.load(), 2);
    }

    void connection_outlives_everything() {
        auto log = std::make_shared<connection_log>();
        pool::checked_out_connection orphan;
        {
            asio::io_context io;
            pool::connection_pool p(io.get_executor(), make_config(immediate_establisher(log)));
            p.ready();
            p.async_check_out([&](std::error_code, pool::checked_out_connection x) { orphan = std::move(x); });
            QVERIFY(pump(io, [&] { return bool(orphan); }));
        }
        // Pool and io_context are gone: letting go only closes the connection.
        QVERIFY(orphan);
        orphan.reset();
        QCOMPARE(log->closed.load(), 1);
    }

    void cancellation_while_waiting() {
        asio::io_context io;
        event_recorder events;
        auto log = std::make_shared<connection_log>();
        auto cfg = make_config(immediate_establisher(log), events.handler());
        cfg.options.max_pool_size = 1;
        pool::connection_pool p(io.get_executor(), std::move(cfg));
        p.ready();
        pool::checked_out_connection held;
        p.async_check_out([&](std::error_code, pool::checked_out_connection x) { held = std::move(x); });
        QVERIFY(pump(io, [&] { return bool(held); }));
        asio::cancellation_signal signal;
        std::optional<std::error_code> result;
        p.async_check_out(asio::bind_cancellation_slot(
            signal.slot(), [&](std::error_code ec, pool::checked_out_connection) { result = ec; }));
        QVERIFY(pump(io, [&] { return events.count("ConnectionCheckOutStarted") == 2; }));
        cancel(signal);
        QVERIFY(pump(io, [&] { return result.has_value(); }));
        QVERIFY(*result == static_cast<std::error_code>(boost::system::error_code(asio::error::operation_aborted)));
        QCOMPARE(events.count("ConnectionCheckOutFailed:timeout"), 1);
        // The queue goes on without it.
        held.reset();
        pool::checked_out_connection next;
        p.async_check_out([&](std::error_code, pool::checked_out_connection x) { next = std::move(x); });
        QVERIFY(pump(io, [&] { return bool(next); }));
        QCOMPARE(next->id(), pool::connection_id(1));
    }

    void wait_queue_timeout() {
        asio::io_context io;
        event_recorder events;
        auto log = std::make_shared<connection_log>();
        auto cfg = make_config(immediate_establisher(log), events.handler());
        cfg.options.max_pool_size = 1;
        cfg.options.wait_queue_timeout = 20ms;
        pool::connection_pool p(io.get_executor(), std::move(cfg));
        p.ready();
        pool::checked_out_connection held;
        p.async_check_out([&](std::error_code, pool::checked_out_connection x) { held = std::move(x); });
        QVERIFY(pump(io, [&] { return bool(held); }));
        std::optional<std::error_code> result;
        const auto started = std::chrono::steady_clock::now();
        p.async_check_out([&](std::error_code ec, pool::checked_out_connection) { result = ec; });
        QVERIFY(pump(io, [&] { return result.has_value(); }));
        QVERIFY(std::chrono::steady_clock::now() - started >= 20ms);
        QVERIFY(*result == trellis::errc::wait_queue_timeout);
        QCOMPARE(result->message(), std::string("Timed out while checking out a connection from connection pool"));
    }

    void concurrent_check_outs_from_threads() {
        asio::io_context io;
        auto work = asio::make_work_guard(io);
        std::thread io_thread([&] { io.run(); });
        auto log = std::make_shared<connection_log>();
        event_recorder events;
        auto cfg = make_config(nullptr, events.handler());
        cfg.options.max_pool_size = 3;
        cfg.options.max_connecting = 2;
        cfg.options.wait_queue_timeout = 10s;
        // Establishment takes a little while, on another thread, as a real one would.
        cfg.establisher = [log](pool::connection_id, pool::establish_handler h) {
            std::thread([log, h = std::move(h)]() mutable {
                std::this_thread::sleep_for(1ms);
                std::move(h)(std::error_code(), std::make_unique<test_connection>(log));
            }).detach();
        };
        pool::connection_pool p(io.get_executor(), std::move(cfg));
        p.ready();

        constexpr int threads = 8, rounds = 50;
        std::atomic<int> failures{0}, in_hand{0}, max_in_hand{0};
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t)
            workers.emplace_back([&] {
                for (int i = 0; i < rounds; ++i) {
                    auto [ec, c] = p.async_check_out(asio::use_future).get();
                    if (ec || !c) {
                        ++failures;
                        continue;
                    }
                    const int now = ++in_hand;
                    int seen = max_in_hand.load();
                    while (now > seen && !max_in_hand.compare_exchange_weak(seen, now)) {
                    }
                    std::this_thread::yield();
                    --in_hand;
                    p.check_in(std::move(c));
                }
            });
        for (auto& w : workers) w.join();
        QCOMPARE(failures.load(), 0);
        QVERIFY(max_in_hand.load() <= 3);
        p.close();
        std::promise<void> drained;
        asio::post(p.get_executor(), [&] { drained.set_value(); });
        drained.get_future().wait();
        work.reset();
        io_thread.join();
        QCOMPARE(events.count("ConnectionCheckedOut"), threads * rounds);
        QCOMPARE(events.count("ConnectionCheckedIn"), threads * rounds);
        QVERIFY(events.count("ConnectionCreated") <= 3);
        // Every connection made was closed by the close.
        QCOMPARE(events.count("ConnectionClosed:poolClosed"), events.count("ConnectionCreated"));
        // Events arrived in a coherent order: never more out than the pool may hold.
        int out = 0;
        for (const auto& name : events.names()) {
            if (name == "ConnectionCheckedOut") ++out;
            if (name == "ConnectionCheckedIn") --out;
            QVERIFY(out >= 0 && out <= 3);
        }
    }

    void events_carry_spec_names() {
        QCOMPARE(trellis::to_string(trellis::connection_closed_reason::pool_closed), std::string_view("poolClosed"));
        QCOMPARE(trellis::to_string(trellis::connection_check_out_failed_reason::connection_error),
                 std::string_view("connectionError"));
        const trellis::cmap_event e = trellis::connection_check_out_started_event{"h:1"};
        QCOMPARE(trellis::event_name(e), std::string_view("ConnectionCheckOutStarted"));
        QCOMPARE(trellis::event_address(e), std::string("h:1"));
    }
};

QTEST_GUILESS_MAIN(PoolTest)
#include "pool_test.moc"
