// trellis-bench driver, the Trellis peer: the blocking face on a client with its own thread,
// the async face on an io_context this thread runs (the embedder's single thread), with 1 or
// `width` operations in flight, and `width` threads sharing one blocking client.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "driver_peers.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"

namespace trellis_bench::driver {

namespace {

namespace asio = boost::asio;
using trellis::bson::document;

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

document id_filter(std::int32_t id) {
    trellis::bson::builder b;
    b.append("_id", id);
    return b.extract();
}

document hello_command() {
    trellis::bson::builder b;
    b.append("hello", true);
    return b.extract();
}

// What one operation brought back, folded into a measurement when checking.
struct tally {
    std::atomic<std::uint64_t> digest{0};
    std::atomic<std::size_t> documents{0};
    void add(const trellis::bson::document_view& d) {
        digest += fnv1a(d.bytes());
        ++documents;
    }
};

class trellis_peer final : public peer {
public:
    explicit trellis_peer(const workload& w)
        : w_(w), blocking_(w.uri), async_(io_.get_executor(), w.uri) {}

    std::string name() const override { return "trellis"; }

    bool can(task_id task, face f) const override {
        switch (task) {
        case task_id::run_command:
        case task_id::find_one:
        case task_id::insert_one: return true;
        default: return f.kind == face_kind::serial || f.kind == face_kind::async_serial;
        }
    }

    measurement run(task_id task, face f, bool check) override {
        switch (f.kind) {
        case face_kind::serial: return run_blocking(task, check);
        case face_kind::threads: return run_threads(task, f.width, check);
        case face_kind::async_serial: return run_async(task, 1, check);
        case face_kind::in_flight: return run_async(task, f.width, check);
        }
        return {};
    }

private:
    // ---------------------------------------------------------------- blocking

    measurement run_blocking(task_id task, bool check) {
        tally t;
        std::vector<document> many = task == task_id::insert_many ? copies(w_.small, w_.insert_many) : std::vector<document>{};
        const auto start = clock_type::now();
        switch (task) {
        case task_id::run_command:
        case task_id::find_one:
        case task_id::insert_one: blocking_ops(blocking_, task, 0, w_.ops, 1, check, t); break;
        case task_id::find_many: {
            auto cursor = blocking_[w_.db][w_.find_coll].find();
            while (const auto doc = cursor.next_view())  // in place, as mongoc_cursor_next's
                if (check) t.add(*doc);
            break;
        }
        case task_id::insert_many: blocking_[w_.db][w_.insert_coll].insert_many(std::move(many)); break;
        case task_id::insert_large: {
            auto coll = blocking_[w_.db][w_.insert_coll];
            for (std::size_t i = 0; i < w_.large_inserts; ++i) coll.insert_one(w_.large);
            break;
        }
        }
        return finish(start, t);
    }

    /// Operations first, first + step, ... below `end` on the blocking client.
    void blocking_ops(trellis::client& c, task_id task, std::size_t first, std::size_t end, std::size_t step, bool check,
                      tally& t) {
        auto db = c[w_.db];
        if (task == task_id::run_command) {
            for (std::size_t i = first; i < end; i += step) {
                const document reply = db.run_command(hello_command());
                if (check && reply.view()["ok"].as_double() == 1.0) ++t.documents;
            }
        } else if (task == task_id::find_one) {
            auto coll = db[w_.find_coll];
            for (std::size_t i = first; i < end; i += step) {
                const auto doc = coll.find_one(id_filter(find_one_id(i, w_)));
                if (check && doc) t.add(doc->view());
            }
        } else {
            auto coll = db[w_.insert_coll];
            for (std::size_t i = first; i < end; i += step) coll.insert_one(w_.small);
        }
    }

    measurement run_threads(task_id task, int width, bool check) {
        tally t;
        std::vector<std::thread> threads;
        const auto start = clock_type::now();
        std::mutex m;
        std::exception_ptr failure;
        for (int k = 0; k < width; ++k)
            threads.emplace_back([&, k] {
                try {
                    blocking_ops(blocking_, task, static_cast<std::size_t>(k), w_.ops, static_cast<std::size_t>(width), check, t);
                } catch (...) {
                    const std::lock_guard lock(m);
                    if (!failure) failure = std::current_exception();
                }
            });
        for (auto& th : threads) th.join();
        if (failure) std::rethrow_exception(failure);
        return finish(start, t);
    }

    // ---------------------------------------------------------------- async

    asio::awaitable<void> async_ops(task_id task, std::size_t first, std::size_t step, bool check, tally& t,
                                    std::vector<document> many) {
        auto db = async_[w_.db];
        if (task == task_id::run_command) {
            for (std::size_t i = first; i < w_.ops; i += step) {
                document command = hello_command();
                const document reply = co_await db.async_run_command(std::move(command), asio::use_awaitable);
                if (check && reply.view()["ok"].as_double() == 1.0) ++t.documents;
            }
        } else if (task == task_id::find_one) {
            auto coll = db[w_.find_coll];
            for (std::size_t i = first; i < w_.ops; i += step) {
                document filter = id_filter(find_one_id(i, w_));
                trellis::find_options options;
                const auto doc = co_await coll.async_find_one(std::move(filter), std::move(options), asio::use_awaitable);
                if (check && doc) t.add(doc->view());
            }
        } else if (task == task_id::insert_one) {
            auto coll = db[w_.insert_coll];
            for (std::size_t i = first; i < w_.ops; i += step) {
                document doc = w_.small;
                trellis::insert_one_options options;
                co_await coll.async_insert_one(std::move(doc), std::move(options), asio::use_awaitable);
            }
        } else if (task == task_id::find_many) {
            auto coll = db[w_.find_coll];
            document filter;
            trellis::find_options options;
            auto cursor = co_await coll.async_find(std::move(filter), std::move(options), asio::use_awaitable);
            // In place, as the blocking face's next_view and mongoc_cursor_next's borrowed bson_t.
            while (const auto doc = co_await cursor.async_next_view(asio::use_awaitable))
                if (check) t.add(*doc);
        } else if (task == task_id::insert_many) {
            auto coll = db[w_.insert_coll];
            trellis::insert_many_options options;
            co_await coll.async_insert_many(std::move(many), std::move(options), asio::use_awaitable);
        } else {
            auto coll = db[w_.insert_coll];
            for (std::size_t i = 0; i < w_.large_inserts; ++i) {
                document doc = w_.large;
                trellis::insert_one_options options;
                co_await coll.async_insert_one(std::move(doc), std::move(options), asio::use_awaitable);
            }
        }
    }

    measurement run_async(task_id task, int width, bool check) {
        tally t;
        int left = width;
        std::exception_ptr failure;
        std::vector<document> many = task == task_id::insert_many ? copies(w_.small, w_.insert_many) : std::vector<document>{};
        const auto start = clock_type::now();
        for (int k = 0; k < width; ++k)
            asio::co_spawn(io_, async_ops(task, static_cast<std::size_t>(k), static_cast<std::size_t>(width), check, t,
                                          k == 0 ? std::move(many) : std::vector<document>{}),
                           [&](std::exception_ptr e) {
                               if (e && !failure) failure = e;
                               if (--left == 0) io_.stop();
                           });
        io_.restart();
        io_.run();  // until the last one stops it (monitoring timers keep it busy otherwise)
        measurement m = finish(start, t);
        if (failure) std::rethrow_exception(failure);
        return m;
    }

    // ---------------------------------------------------------------- helpers

    static std::vector<document> copies(const document& d, std::size_t n) { return std::vector<document>(n, d); }

    static measurement finish(clock_type::time_point start, const tally& t) {
        measurement m;
        m.seconds = seconds_since(start);
        m.digest = t.digest.load();
        m.documents = t.documents.load();
        return m;
    }

    const workload& w_;
    trellis::client blocking_;
    asio::io_context io_{1};  // run by one thread: the client needs no strands on it
    trellis::client async_;
};

}  // namespace

std::unique_ptr<peer> make_trellis_peer(const workload& w) { return std::make_unique<trellis_peer>(w); }

}  // namespace trellis_bench::driver
