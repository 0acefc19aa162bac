// Suite cmap: the CMAP spec tests (connection-monitoring-and-pooling/tests/cmap-format).
//
// Each file is one test. A connection_pool runs on its own io_context thread; the test's
// "threads" are real std::threads, each with a queue of operations, so that check-outs block
// and queue up exactly as the format describes (the wait queue fairness test needs that). Every
// operation on a thread or on the main thread that checks out waits on asio::use_future.
//
// Unit-style files use an establisher that completes at once with a fake connection.
// Integration-style files (failPoint on hello, appName, blockConnection) need real connections:
// the runner starts a standalone trellis-sim in process, sets the fail point over a plain
// connection, and gives the pool the kernel's own establisher (transport plugin, legacy hello
// naming the application), so that the server-side failCommand applies to the pool's
// connections.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>

#include "connection/establisher.hpp"
#include "pool/connection_pool.hpp"
#include "runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/events.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sim/deployment.hpp"
#include "wire/codec.hpp"
#include "wire/frame_decoder.hpp"

namespace trellis::spec {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;
namespace bson = trellis::bson;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

// Bounds on waiting, so that a broken pool fails a case instead of hanging the suite.
constexpr auto default_event_timeout = 10s;  // waitForEvent without a timeout of its own
constexpr auto operation_timeout = 30s;      // a check-out, a thread finishing
constexpr auto file_timeout = 120s;          // the whole file (watchdog)

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

// A problem with the test run itself (a bound exceeded, a bad label): fails the case whatever
// the file expects.
struct runner_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An error a pool operation completed with: what the file's "error" is compared with.
struct pool_operation_error {
    std::error_code code;
};

// ---------------------------------------------------------------- events

json::object to_json(const cmap_event& e) {
    json::object o;
    o["type"] = event_name(e);
    o["address"] = event_address(e);
    const auto ms = [](std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::visit(overloaded{
                   [&](const pool_created_event& ev) {
                       json::object opts;
                       opts["maxPoolSize"] = ev.options.max_pool_size;
                       opts["minPoolSize"] = ev.options.min_pool_size;
                       opts["maxConnecting"] = ev.options.max_connecting;
                       opts["maxIdleTimeMS"] = ev.options.max_idle_time.count();
                       opts["waitQueueTimeoutMS"] = ev.options.wait_queue_timeout.count();
                       o["options"] = std::move(opts);
                   },
                   [&](const pool_cleared_event& ev) {
                       o["interruptInUseConnections"] = ev.interrupt_in_use_connections;
                       if (ev.service_id) o["serviceId"] = ev.service_id->to_hex();
                   },
                   [&](const connection_created_event& ev) { o["connectionId"] = ev.connection_id; },
                   [&](const connection_ready_event& ev) {
                       o["connectionId"] = ev.connection_id;
                       o["duration"] = ms(ev.duration);
                   },
                   [&](const connection_closed_event& ev) {
                       o["connectionId"] = ev.connection_id;
                       o["reason"] = to_string(ev.reason);
                   },
                   [&](const connection_check_out_failed_event& ev) {
                       o["reason"] = to_string(ev.reason);
                       o["duration"] = ms(ev.duration);
                   },
                   [&](const connection_checked_out_event& ev) {
                       o["connectionId"] = ev.connection_id;
                       o["duration"] = ms(ev.duration);
                   },
                   [&](const connection_checked_in_event& ev) { o["connectionId"] = ev.connection_id; },
                   [](const auto&) {},
               },
               e);
    return o;
}

class event_log {
public:
    void add(const cmap_event& e) {
        json::object o = to_json(e);
        {
            std::lock_guard lock(mutex_);
            events_.push_back(std::move(o));
        }
        changed_.notify_all();
    }

    // waitForEvent counts from the start of the test and ignores the file's "ignore" list.
    bool wait_for(std::string_view type, std::size_t count, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            std::size_t n = 0;
            for (const auto& e : events_)
                if (e.at("type").as_string() == type) ++n;
            return n >= count;
        });
    }

    std::vector<json::object> snapshot() const {
        std::lock_guard lock(mutex_);
        return events_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<json::object> events_;
};

// ---------------------------------------------------------------- MATCH

bool is_placeholder(const json::value& v) {
    if (const auto* s = v.if_string()) return *s == "42";
    if (v.is_int64()) return v.get_int64() == 42;
    if (v.is_uint64()) return v.get_uint64() == 42;
    if (v.is_double()) return v.get_double() == 42.0;
    return false;
}

std::optional<double> number_of(const json::value& v) {
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    if (v.is_double()) return v.get_double();
    return std::nullopt;
}

// The format's MATCH: `expected` is a subset of `actual`; 42 and "42" match any present value.
bool matches(const json::value& expected, const json::value* actual, const std::string& path, std::string& why) {
    if (is_placeholder(expected)) {
        if (actual && !actual->is_null()) return true;
        why = path + " is missing";
        return false;
    }
    if (!actual) {
        why = path + " is missing (expected " + json::serialize(expected) + ")";
        return false;
    }
    if (const auto* eo = expected.if_object()) {
        const auto* ao = actual->if_object();
        if (!ao) {
            why = path + " is not an object: " + json::serialize(*actual);
            return false;
        }
        for (const auto& [k, v] : *eo)
            if (!matches(v, ao->if_contains(k), path + "." + std::string(k), why)) return false;
        return true;
    }
    if (const auto* ea = expected.if_array()) {
        const auto* aa = actual->if_array();
        if (!aa) {
            why = path + " is not an array";
            return false;
        }
        for (std::size_t i = 0; i < ea->size(); ++i)
            if (!matches((*ea)[i], i < aa->size() ? &(*aa)[i] : nullptr, path + "[" + std::to_string(i) + "]", why))
                return false;
        return true;
    }
    if (const auto en = number_of(expected)) {
        const auto an = number_of(*actual);
        if (an && *an == *en) return true;
    } else if (expected == *actual) {
        return true;
    }
    why = path + " is " + json::serialize(*actual) + ", expected " + json::serialize(expected);
    return false;
}

// ---------------------------------------------------------------- errors

// The spec's error type for each error a check-out can complete with.
std::string error_type(std::error_code ec) {
    if (ec == trellis::errc::pool_closed) return "PoolClosedError";
    if (ec == trellis::errc::pool_cleared) return "PoolClearedError";
    if (ec == trellis::errc::wait_queue_timeout) return "WaitQueueTimeoutError";
    return "ConnectionError";
}

// ---------------------------------------------------------------- connections

// Unit tests: a connection that is nothing but its id.
class fake_connection final : public pool::pooled_connection {
public:
    bool is_perished() const noexcept override { return false; }
    void close() noexcept override {}
};

tcp::endpoint endpoint_of(const std::string& address) {
    const auto colon = address.rfind(':');
    return {asio::ip::make_address(address.substr(0, colon)),
            static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))};
}

// Integration tests: the kernel's own establisher (transport plugin "plain", legacy hello with
// the application name), so that the server-side failCommand applies to the pool's handshakes.
pool::connection_establisher sim_establisher(asio::io_context& io, const std::string& address, const std::string& app_name) {
    static plugin_registry registry;
    auto settings = std::make_shared<conn::establish_settings>();
    settings->transport = registry.create_as<sdk::transport>(sdk::plugin_kind::transport, "plain");
    const auto colon = address.rfind(':');
    settings->connect.host = address.substr(0, colon);
    settings->connect.port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
    settings->connection.address = address;
    std::optional<std::string> name;
    if (!app_name.empty()) name = app_name;
    settings->hello.client_metadata = handshake::client_metadata(handshake::detect_platform(name));
    return conn::make_pool_establisher(io.get_executor(), settings);
}

pool::connection_establisher fake_establisher() {
    // Completes inside the call: the pool must cope with that.
    return [](pool::connection_id, pool::establish_handler handler) {
        std::move(handler)(std::error_code(), std::make_unique<fake_connection>());
    };
}

// ---------------------------------------------------------------- the simulator

// One command over a fresh connection, blocking (fail points, buildInfo).
bson::document run_command(const std::string& address, const bson::document& command) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(endpoint_of(address));
    std::vector<std::uint8_t> out;
    const std::int32_t id = wire::next_request_id();
    wire::encode_op_msg(out, id, 0, 0, command.bytes());
    asio::write(socket, asio::buffer(out));
    wire::frame_decoder decoder;
    for (;;) {
        if (auto msg = decoder.next()) {
            wire::check_response_to(*msg, id);
            return bson::document::from_bytes(msg->as_msg()->body);
        }
        auto buffer = decoder.prepare(16 * 1024);
        decoder.commit(socket.read_some(asio::buffer(buffer.data(), buffer.size())));
    }
}

bson::document admin_command(json::object command) {
    command["$db"] = "admin";
    return bson::from_json(json::serialize(command));
}

// A standalone trellis-sim, started on first use and shared by every integration file.
struct simulator {
    sim::deployment deployment{sim::sim_config{}};
    std::string address;
    std::string version;

    simulator() {
        deployment.start();
        address = deployment.members().at(0);
        const bson::document info = run_command(address, admin_command(json::object{{"buildInfo", 1}}));
        if (const auto v = info.find("version"); v && v->type() == bson::type::string)
            version = std::string(v->get_string());
    }
};

simulator& the_simulator() {
    static simulator s;
    return s;
}

std::vector<int> version_parts(std::string_view v) {
    std::vector<int> parts;
    std::istringstream in{std::string(v)};
    std::string part;
    while (std::getline(in, part, '.')) parts.push_back(std::atoi(part.c_str()));
    parts.resize(3);
    return parts;
}

// runOn: the simulator must satisfy one of the requirements (only versions are listed in CMAP).
std::optional<std::string> unmet_requirement(const json::object& test, const std::string& server_version) {
    const auto* run_on = test.if_contains("runOn");
    if (!run_on || !run_on->is_array() || run_on->as_array().empty()) return std::nullopt;
    const auto have = version_parts(server_version);
    std::string unmet;
    for (const auto& r : run_on->as_array()) {
        const auto& req = r.as_object();
        bool ok = true;
        if (const auto* min = req.if_contains("minServerVersion"))
            ok = ok && have >= version_parts(min->as_string());
        if (const auto* max = req.if_contains("maxServerVersion"))
            ok = ok && have <= version_parts(max->as_string());
        for (const auto& [k, v] : req)
            if (k != "minServerVersion" && k != "maxServerVersion") ok = false;  // topology etc.: not offered
        if (ok) return std::nullopt;
        unmet = json::serialize(r);
    }
    return "trellis-sim " + server_version + " does not satisfy runOn " + unmet;
}

// ---------------------------------------------------------------- threads

// A test thread: runs its operations in order; stops at its first error, which waitForThread
// hands to the main thread.
class worker {
public:
    worker() : thread_([this] { loop(); }) {}
    ~worker() {
        stop();
        thread_.join();
    }
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    void schedule(std::function<void()> op) {
        {
            std::lock_guard lock(mutex_);
            ops_.push_back(std::move(op));
        }
        changed_.notify_all();
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
    }

    // After stop(): whether every scheduled operation has run within the timeout.
    bool wait_done(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return done_; });
    }

    std::exception_ptr failure() const {
        std::lock_guard lock(mutex_);
        return failure_;
    }

private:
    void loop() {
        for (;;) {
            std::function<void()> op;
            {
                std::unique_lock lock(mutex_);
                changed_.wait(lock, [&] { return !ops_.empty() || stopping_; });
                if (ops_.empty()) break;
                op = std::move(ops_.front());
                ops_.pop_front();
                if (failure_) continue;
            }
            try {
                op();
            } catch (...) {
                std::lock_guard lock(mutex_);
                failure_ = std::current_exception();
            }
        }
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        changed_.notify_all();
    }

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::function<void()>> ops_;
    bool stopping_ = false;
    bool done_ = false;
    std::exception_ptr failure_;
    std::thread thread_;
};

// Ends the process if a file runs past its bound: a hung pool must not hang the suite.
class watchdog {
public:
    watchdog(std::string file, std::chrono::seconds limit)
        : thread_([this, file = std::move(file), limit] {
              std::unique_lock lock(mutex_);
              if (changed_.wait_for(lock, limit, [&] { return done_; })) return;
              std::cout << "FAIL cmap " << file << ": timed out after " << limit.count() << " s" << std::endl;
              std::_Exit(1);
          }) {}
    ~watchdog() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool done_ = false;
    std::thread thread_;
};

// ---------------------------------------------------------------- one test

class test_run {
public:
    explicit test_run(const json::object& test) : test_(test), work_(asio::make_work_guard(io_)) {
        io_thread_ = std::thread([this] {
            io_.run();
            std::lock_guard lock(io_mutex_);
            io_done_ = true;
            io_changed_.notify_all();
        });
    }

    ~test_run() {
        try {
            shut_down();
        } catch (...) {
            // Already failing; the case reports the first problem.
        }
    }

    // Makes the pool; integration files first set their fail point.
    void start(bool integration) {
        pool::pool_config cfg;
        const json::object empty;
        const json::object& opts = test_.contains("poolOptions") ? test_.at("poolOptions").as_object() : empty;
        std::string app_name;
        for (const auto& [k, v] : opts) {
            if (k == "maxPoolSize") cfg.options.max_pool_size = static_cast<std::uint32_t>(v.to_number<std::int64_t>());
            else if (k == "minPoolSize")
                cfg.options.min_pool_size = static_cast<std::uint32_t>(v.to_number<std::int64_t>());
            else if (k == "maxConnecting")
                cfg.options.max_connecting = static_cast<std::uint32_t>(v.to_number<std::int64_t>());
            else if (k == "maxIdleTimeMS")
                cfg.options.max_idle_time = std::chrono::milliseconds(v.to_number<std::int64_t>());
            else if (k == "waitQueueTimeoutMS")
                cfg.options.wait_queue_timeout = std::chrono::milliseconds(v.to_number<std::int64_t>());
            else if (k == "backgroundThreadIntervalMS") {
                // Negative: never run (the format's rule); positive: the interval.
                const auto ms = v.to_number<std::int64_t>();
                if (ms < 0) cfg.maintenance_interval.reset();
                else cfg.maintenance_interval = std::chrono::milliseconds(ms);
            } else if (k == "appName") app_name = std::string(v.as_string());
            else throw runner_failure("unsupported pool option " + std::string(k));
        }
        if (integration) {
            simulator& s = the_simulator();
            cfg.address = s.address;
            if (const auto* fp = test_.if_contains("failPoint")) {
                fail_point_ = std::string(fp->as_object().at("configureFailPoint").as_string());
                const bson::document reply = run_command(s.address, admin_command(fp->as_object()));
                const auto ok = reply.find("ok");
                if (!ok || ok->as_double() != 1.0)
                    throw runner_failure("configureFailPoint failed: " + bson::to_json(reply));
            }
            cfg.establisher = sim_establisher(io_, s.address, app_name);
        } else {
            cfg.address = "127.0.0.1:27017";  // never contacted
            cfg.establisher = fake_establisher();
        }
        cfg.on_event = [this](const cmap_event& e) { log_.add(e); };
        pool_.emplace(io_.get_executor(), std::move(cfg));
    }

    // Runs the operations; the first error on the main thread ends them (and is returned).
    std::optional<std::error_code> run_operations() {
        for (const auto& v : test_.at("operations").as_array()) {
            const json::object& op = v.as_object();
            if (const auto* t = op.if_contains("thread")) {
                thread(std::string(t->as_string())).schedule([this, op] { execute(op); });
                continue;
            }
            try {
                execute(op);
            } catch (const pool_operation_error& e) {
                return e.code;
            }
        }
        return std::nullopt;
    }

    // Every event so far, after everything already posted to the pool has run.
    std::vector<json::object> events() {
        barrier();
        return log_.snapshot();
    }

    void shut_down() {
        if (shut_down_) return;
        shut_down_ = true;
        if (pool_) pool_->close();
        {
            std::lock_guard lock(connections_mutex_);
            labeled_.clear();
            unlabeled_.clear();
        }
        for (auto& [name, w] : threads_) {
            w->stop();
            if (!w->wait_done(operation_timeout)) throw runner_failure("thread " + name + " did not finish");
        }
        threads_.clear();
        if (pool_) {
            barrier();
            pool_.reset();
        }
        work_.reset();
        {
            std::unique_lock lock(io_mutex_);
            if (!io_changed_.wait_for(lock, operation_timeout, [&] { return io_done_; })) io_.stop();
        }
        io_thread_.join();
        if (fail_point_) {
            json::object off{{"configureFailPoint", *fail_point_}, {"mode", "off"}};
            run_command(the_simulator().address, admin_command(std::move(off)));
        }
    }

private:
    worker& thread(const std::string& name) {
        const auto it = threads_.find(name);
        if (it == threads_.end()) throw runner_failure("no thread " + name);
        return *it->second;
    }

    void barrier() {
        std::promise<void> done;
        auto f = done.get_future();
        asio::post(pool_->get_executor(), [&done] { done.set_value(); });
        if (f.wait_for(operation_timeout) != std::future_status::ready)
            throw runner_failure("the pool's strand is stuck");
    }

    void execute(const json::object& op) {
        const std::string name(op.at("name").as_string());
        if (name == "start") {
            threads_.emplace(std::string(op.at("target").as_string()), std::make_unique<worker>());
        } else if (name == "wait") {
            std::this_thread::sleep_for(std::chrono::milliseconds(op.at("ms").to_number<std::int64_t>()));
        } else if (name == "waitForThread") {
            const std::string target(op.at("target").as_string());
            worker& w = thread(target);
            w.stop();
            if (!w.wait_done(operation_timeout)) throw runner_failure("thread " + target + " did not finish");
            if (auto failure = w.failure()) std::rethrow_exception(failure);
        } else if (name == "waitForEvent") {
            const std::string event(op.at("event").as_string());
            const auto count = static_cast<std::size_t>(op.at("count").to_number<std::int64_t>());
            const auto timeout = op.contains("timeout")
                                     ? std::chrono::milliseconds(op.at("timeout").to_number<std::int64_t>())
                                     : std::chrono::milliseconds(default_event_timeout);
            if (!log_.wait_for(event, count, timeout))
                throw runner_failure("waitForEvent: fewer than " + std::to_string(count) + " " + event + " within " +
                                     std::to_string(timeout.count()) + " ms");
        } else if (name == "checkOut") {
            auto f = pool_->async_check_out(asio::use_future);
            if (f.wait_for(operation_timeout) != std::future_status::ready)
                throw runner_failure("checkOut did not complete");
            auto [ec, connection] = f.get();
            if (ec) throw pool_operation_error{ec};
            std::lock_guard lock(connections_mutex_);
            if (const auto* label = op.if_contains("label"))
                labeled_[std::string(label->as_string())] = std::move(connection);
            else unlabeled_.push_back(std::move(connection));  // stays checked out until the end
        } else if (name == "checkIn") {
            const std::string label(op.at("connection").as_string());
            pool::checked_out_connection connection;
            {
                std::lock_guard lock(connections_mutex_);
                const auto it = labeled_.find(label);
                if (it == labeled_.end()) throw runner_failure("no connection labelled " + label);
                connection = std::move(it->second);
                labeled_.erase(it);
            }
            pool_->check_in(std::move(connection));
        } else if (name == "clear") {
            const auto* interrupt = op.if_contains("interruptInUseConnections");
            pool_->clear({.interrupt_in_use = interrupt && interrupt->as_bool()});
        } else if (name == "close") {
            pool_->close();
        } else if (name == "ready") {
            pool_->ready();
        } else {
            throw runner_failure("unsupported operation " + name);
        }
    }

    const json::object& test_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::thread io_thread_;
    std::mutex io_mutex_;
    std::condition_variable io_changed_;
    bool io_done_ = false;
    event_log log_;
    std::optional<pool::connection_pool> pool_;
    std::mutex connections_mutex_;
    std::map<std::string, pool::checked_out_connection> labeled_;
    std::vector<pool::checked_out_connection> unlabeled_;
    std::map<std::string, std::unique_ptr<worker>> threads_;
    std::optional<std::string> fail_point_;
    bool shut_down_ = false;
};

// Compares the error (or its absence) and the events with the file's expectations.
std::optional<std::string> check(const json::object& test, const std::optional<std::error_code>& main_error,
                                 const std::vector<json::object>& events) {
    if (const auto* expected = test.if_contains("error")) {
        if (!main_error) return "expected error " + json::serialize(*expected) + ", got none";
        const json::object actual{{"type", error_type(*main_error)}, {"message", main_error->message()}};
        const json::value actual_value(actual);
        std::string why;
        if (!matches(*expected, &actual_value, "error", why)) return why;
    } else if (main_error) {
        return "unexpected error: " + main_error->message();
    }

    std::vector<std::string> ignore;
    if (const auto* list = test.if_contains("ignore"))
        for (const auto& v : list->as_array()) ignore.emplace_back(v.as_string());
    json::array actual;
    for (const auto& e : events) {
        const std::string type(e.at("type").as_string());
        if (std::find(ignore.begin(), ignore.end(), type) == ignore.end()) actual.push_back(e);
    }
    const auto& expected = test.at("events").as_array();
    for (std::size_t i = 0; i < expected.size(); ++i) {
        std::string why;
        if (!matches(expected[i], i < actual.size() ? &actual[i] : nullptr, "events[" + std::to_string(i) + "]", why))
            return why + "; events seen: " + json::serialize(actual);
    }
    return std::nullopt;
}

void run_file(std::string_view file, const json::value& value, reporter& out) {
    const json::object& test = value.as_object();
    const std::string description = string_of(value, "description", file);
    const std::string style = string_of(value, "style", "unit");
    if (style != "unit" && style != "integration") {
        out.skip(file, description, "unknown style " + style);
        return;
    }
    const bool integration = style == "integration";
    if (integration) {
        if (const auto unmet = unmet_requirement(test, the_simulator().version)) {
            out.skip(file, description, *unmet);
            return;
        }
    }
    watchdog guard(std::string(file), file_timeout);
    std::optional<std::string> failure;
    try {
        test_run run(test);
        run.start(integration);
        const auto main_error = run.run_operations();
        const auto events = run.events();
        run.shut_down();
        failure = check(test, main_error, events);
    } catch (const runner_failure& e) {
        failure = e.what();
    } catch (const pool_operation_error& e) {
        failure = "unexpected error: " + e.code.message();
    }
    if (failure) out.fail(file, description, *failure);
    else out.pass(file, description);
}

}  // namespace

extern const suite cmap_suite;
const suite cmap_suite{"cmap", "Connection Monitoring and Pooling: unit and integration (trellis-sim) tests",
                       &run_file};

}  // namespace trellis::spec
