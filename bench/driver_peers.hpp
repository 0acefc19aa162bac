// trellis-bench driver: the tasks, the ways of running them ("faces") and the peers that
// run them (Trellis, libmongoc, PyMongo, a raw socket), each against the same trellis-sim.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "trellis/bson/document.hpp"

namespace trellis_bench::driver {

/// The driver benchmark spec's single- and multi-document tasks.
enum class task_id { run_command, find_one, insert_one, find_many, insert_many, insert_large };

/// How a task's operations are issued.
enum class face_kind {
    serial,        // one after another from one thread (blocking API; libmongoc's one client)
    async_serial,  // Trellis async on the embedder's single-threaded io_context, 1 in flight
    in_flight,     // Trellis async, `width` operations in flight on that io_context
    threads,       // `width` threads on one client (Trellis) or a client pool (libmongoc)
};

struct face {
    face_kind kind = face_kind::serial;
    int width = 1;
};

/// What every peer works on.
struct workload {
    std::string uri;                 // mongodb://127.0.0.1:PORT
    std::string host;                // 127.0.0.1
    int port = 0;
    std::string db = "perftest";
    std::string find_coll = "corpus";   // `tweets` copies of tweet.json, _id 0..tweets-1 (int32)
    std::string insert_coll = "inserts";  // dropped before each insert measurement
    trellis::bson::document tweet;   // tweet.json
    trellis::bson::document small;   // small_doc.json
    trellis::bson::document large;   // large_doc.json
    std::size_t ops = 10000;         // run_command, find_one, insert_one operations per measurement
    std::size_t tweets = 10000;      // documents in find_coll (find_many reads them all)
    std::size_t insert_many = 10000; // small documents per insert_many
    std::size_t large_inserts = 10;  // large documents per insert_large
};

/// One timed run of one task on one face.
struct measurement {
    double seconds = 0;
    /// With `check`: an order-independent digest of what came back (the sum of the FNV-1a
    /// hashes of each document's bytes); 0 otherwise.
    std::uint64_t digest = 0;
    std::size_t documents = 0;  // documents (or ok replies) seen; with `check` only
};

class peer {
public:
    virtual ~peer() = default;
    virtual std::string name() const = 0;
    virtual bool can(task_id task, face f) const = 0;
    /// Runs the task once. With `check`, fills digest and documents (not timed for real).
    virtual measurement run(task_id task, face f, bool check) = 0;
    /// CPU seconds used so far by a peer that runs in its own process (PyMongo); nullopt for
    /// the in-process ones, whose CPU is trellis-bench's own.
    virtual std::optional<double> process_cpu_seconds() const { return std::nullopt; }
};

std::unique_ptr<peer> make_trellis_peer(const workload& w);
std::unique_ptr<peer> make_mongoc_peer(const workload& w);
std::unique_ptr<peer> make_raw_peer(const workload& w);
std::unique_ptr<peer> make_pymongo_peer(const workload& w, const std::string& python, const std::string& script,
                                        const std::string& small_path);

/// FNV-1a, 64 bits.
inline std::uint64_t fnv1a(std::span<const std::uint8_t> bytes) noexcept {
    std::uint64_t h = 14695981039346656037ull;
    for (const std::uint8_t b : bytes) {
        h ^= b;
        h *= 1099511628211ull;
    }
    return h;
}

/// The filter {_id: i} of the i-th find_one (of `tweets` documents).
inline std::int32_t find_one_id(std::size_t i, const workload& w) noexcept {
    return static_cast<std::int32_t>(i % w.tweets);
}

}  // namespace trellis_bench::driver
