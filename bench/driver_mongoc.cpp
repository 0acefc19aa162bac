// trellis-bench driver, the libmongoc peer (the C driver, 1.23): one mongoc_client_t for the
// serial face, a mongoc_client_pool_t with `width` threads for the concurrent ones.
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <mongoc/mongoc.h>

#include "args.hpp"
#include "driver_peers.hpp"

namespace trellis_bench::driver {

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what, const bson_error_t& e) {
    throw failure{1, "libmongoc: " + what + ": " + e.message};
}

/// A bson_t owning a copy of a Trellis document's bytes.
struct owned_bson {
    bson_t* b;
    explicit owned_bson(const trellis::bson::document& d) : b(bson_new_from_data(d.view().data(), d.view().size())) {
        if (!b) throw failure{1, "libmongoc: bson_new_from_data refused a document"};
    }
    ~owned_bson() { bson_destroy(b); }
    owned_bson(const owned_bson&) = delete;
    owned_bson& operator=(const owned_bson&) = delete;
};

/// The documents of an insert_many (not a std::vector or unique_ptr: a template argument of
/// bson_t, an over-aligned type, warns that the alignment attribute is ignored).
struct pointer_array {
    const bson_t** p = nullptr;
    pointer_array() = default;
    pointer_array(const pointer_array&) = delete;
    pointer_array& operator=(const pointer_array&) = delete;
    ~pointer_array() { delete[] p; }
};

std::uint64_t digest_of(const bson_t* doc) { return fnv1a({bson_get_data(doc), doc->len}); }

class mongoc_peer final : public peer {
public:
    explicit mongoc_peer(const workload& w) : w_(w), small_(w.small), large_(w.large) {
        bson_error_t e;
        uri_ = mongoc_uri_new_with_error(w.uri.c_str(), &e);
        if (!uri_) fail("bad URI " + w.uri, e);
        client_ = mongoc_client_new_from_uri_with_error(uri_, &e);
        if (!client_) fail("mongoc_client_new_from_uri", e);
        mongoc_client_set_error_api(client_, MONGOC_ERROR_API_VERSION_2);
    }
    ~mongoc_peer() override {
        for (auto& [width, pool] : pools_) mongoc_client_pool_destroy(pool);
        mongoc_client_destroy(client_);
        mongoc_uri_destroy(uri_);
    }

    std::string name() const override { return "libmongoc"; }

    bool can(task_id task, face f) const override {
        if (f.kind == face_kind::serial) return true;
        if (f.kind != face_kind::threads) return false;  // no async face
        return task == task_id::run_command || task == task_id::find_one || task == task_id::insert_one;
    }

    measurement run(task_id task, face f, bool check) override {
        std::atomic<std::uint64_t> digest{0};
        std::atomic<std::size_t> documents{0};
        pointer_array many;
        if (task == task_id::insert_many) {
            many.p = new const bson_t*[w_.insert_many];
            for (std::size_t i = 0; i < w_.insert_many; ++i) many.p[i] = small_.b;
        }
        const auto start = clock_type::now();
        if (f.kind == face_kind::threads) {
            mongoc_client_pool_t* pool = pool_for(f.width);
            std::vector<std::thread> threads;
            std::mutex m;
            std::exception_ptr failure;
            for (int k = 0; k < f.width; ++k)
                threads.emplace_back([&, k] {
                    mongoc_client_t* c = mongoc_client_pool_pop(pool);
                    try {
                        ops(c, task, static_cast<std::size_t>(k), static_cast<std::size_t>(f.width), check, digest, documents);
                    } catch (...) {
                        const std::lock_guard lock(m);
                        if (!failure) failure = std::current_exception();
                    }
                    mongoc_client_pool_push(pool, c);
                });
            for (auto& th : threads) th.join();
            if (failure) std::rethrow_exception(failure);
        } else if (task == task_id::find_many) {
            mongoc_collection_t* coll = mongoc_client_get_collection(client_, w_.db.c_str(), w_.find_coll.c_str());
            bson_t filter = BSON_INITIALIZER;
            mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, &filter, nullptr, nullptr);
            const bson_t* doc;
            while (mongoc_cursor_next(cursor, &doc))
                if (check) {
                    digest += digest_of(doc);
                    ++documents;
                }
            bson_error_t e;
            const bool failed = mongoc_cursor_error(cursor, &e);
            mongoc_cursor_destroy(cursor);
            bson_destroy(&filter);
            mongoc_collection_destroy(coll);
            if (failed) fail("find", e);
        } else if (task == task_id::insert_many) {
            mongoc_collection_t* coll = mongoc_client_get_collection(client_, w_.db.c_str(), w_.insert_coll.c_str());
            bson_error_t e;
            const bool ok = mongoc_collection_insert_many(coll, many.p, w_.insert_many, nullptr, nullptr, &e);
            mongoc_collection_destroy(coll);
            if (!ok) fail("insert_many", e);
        } else if (task == task_id::insert_large) {
            mongoc_collection_t* coll = mongoc_client_get_collection(client_, w_.db.c_str(), w_.insert_coll.c_str());
            for (std::size_t i = 0; i < w_.large_inserts; ++i) {
                bson_error_t e;
                if (!mongoc_collection_insert_one(coll, large_.b, nullptr, nullptr, &e)) {
                    mongoc_collection_destroy(coll);
                    fail("insert_one (large)", e);
                }
            }
            mongoc_collection_destroy(coll);
        } else {
            ops(client_, task, 0, 1, check, digest, documents);
        }
        measurement m;
        m.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        m.digest = digest;
        m.documents = documents;
        return m;
    }

private:
    mongoc_client_pool_t* pool_for(int width) {
        for (auto& [w, p] : pools_)
            if (w == width) return p;
        bson_error_t e;
        mongoc_client_pool_t* pool = mongoc_client_pool_new_with_error(uri_, &e);
        if (!pool) fail("mongoc_client_pool_new", e);
        mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
        mongoc_client_pool_max_size(pool, static_cast<std::uint32_t>(width));
        pools_.emplace_back(width, pool);
        return pool;
    }

    /// Single-document operations first, first + step, ... below w_.ops on client c.
    void ops(mongoc_client_t* c, task_id task, std::size_t first, std::size_t step, bool check,
             std::atomic<std::uint64_t>& digest, std::atomic<std::size_t>& documents) {
        if (task == task_id::run_command) {
            bson_t command = BSON_INITIALIZER;
            BSON_APPEND_BOOL(&command, "hello", true);
            for (std::size_t i = first; i < w_.ops; i += step) {
                bson_t reply;
                bson_error_t e;
                const bool ok = mongoc_client_command_simple(c, w_.db.c_str(), &command, nullptr, &reply, &e);
                if (ok && check) ++documents;
                bson_destroy(&reply);
                if (!ok) fail("hello", e);
            }
            bson_destroy(&command);
            return;
        }
        if (task == task_id::find_one) {
            mongoc_collection_t* coll = mongoc_client_get_collection(c, w_.db.c_str(), w_.find_coll.c_str());
            bson_t opts = BSON_INITIALIZER;  // what a find_one sends: limit 1, one batch
            BSON_APPEND_INT64(&opts, "limit", 1);
            BSON_APPEND_BOOL(&opts, "singleBatch", true);
            for (std::size_t i = first; i < w_.ops; i += step) {
                bson_t filter = BSON_INITIALIZER;
                BSON_APPEND_INT32(&filter, "_id", find_one_id(i, w_));
                mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, nullptr);
                const bson_t* doc;
                if (mongoc_cursor_next(cursor, &doc) && check) {
                    digest += digest_of(doc);
                    ++documents;
                }
                bson_error_t e;
                const bool failed = mongoc_cursor_error(cursor, &e);
                mongoc_cursor_destroy(cursor);
                bson_destroy(&filter);
                if (failed) {
                    bson_destroy(&opts);
                    mongoc_collection_destroy(coll);
                    fail("find_one", e);
                }
            }
            bson_destroy(&opts);
            mongoc_collection_destroy(coll);
            return;
        }
        mongoc_collection_t* coll = mongoc_client_get_collection(c, w_.db.c_str(), w_.insert_coll.c_str());
        for (std::size_t i = first; i < w_.ops; i += step) {
            bson_error_t e;
            if (!mongoc_collection_insert_one(coll, small_.b, nullptr, nullptr, &e)) {
                mongoc_collection_destroy(coll);
                fail("insert_one", e);
            }
        }
        mongoc_collection_destroy(coll);
    }

    const workload& w_;
    owned_bson small_;
    owned_bson large_;
    mongoc_uri_t* uri_ = nullptr;
    mongoc_client_t* client_ = nullptr;
    std::vector<std::pair<int, mongoc_client_pool_t*>> pools_;
};

}  // namespace

std::unique_ptr<peer> make_mongoc_peer(const workload& w) { return std::make_unique<mongoc_peer>(w); }

}  // namespace trellis_bench::driver
