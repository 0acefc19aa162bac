// Incremental framing of a byte stream into messages (the sans-io core of a
// connection), the responseTo check, and request id generation.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "wire/codec.hpp"

namespace trellis::wire {

/// One spare receive buffer, shared by a client's connections: a large reply's buffer comes back
/// here when the last reference to the reply goes, and the next large reply is read into it.
/// Memory the process has not written yet costs a page fault per 4 KB page on first write (on
/// this project's VMs ~10 µs each, `trellis-bench pages`); a buffer written before, none. Keeps
/// the largest buffer it is given, up to `max_bytes` (a client's is
/// client_options::max_kept_reply_buffer). Thread-safe.
class buffer_cache {
public:
    explicit buffer_cache(std::size_t max_bytes) noexcept : max_(max_bytes) {}

    /// The spare buffer (empty, its capacity kept) when its capacity is at least n; else an empty vector.
    frame_bytes take(std::size_t n);
    /// Offers a buffer; kept when it is larger than the spare and at most max_bytes.
    void give(frame_bytes&& buffer) noexcept;
    /// The spare's capacity (0: none).
    std::size_t spare_capacity() const;

private:
    const std::size_t max_;
    mutable std::mutex m_;
    frame_bytes spare_;
};

/// Turns arbitrary chunks of a byte stream into decoded messages.
///
/// Feed bytes as they arrive, either by copy (feed) or by reading straight
/// into the decoder's buffer (prepare + commit), then call next() until it
/// returns nullopt. Chunk boundaries do not matter: a frame split at any byte
/// decodes the same, and several frames in one chunk come out in order.
///
/// A bad messageLength (below 16, negative, above max_message_size) is
/// reported by next() as soon as its 4 bytes are buffered — nothing is ever
/// allocated for it. Any error leaves the stream unframeable, so the decoder
/// stays failed: every later next() rethrows the same error until reset().
///
/// Not thread-safe; one decoder per connection.
class frame_decoder {
public:
    /// With `buffers`, a frame of 256 KB or more is read into its spare buffer when it has one,
    /// and the buffer of a frame handed over goes back to it when the message is released.
    explicit frame_decoder(limits lim = {}, std::shared_ptr<const compressor_registry> registry = nullptr,
                           std::shared_ptr<buffer_cache> buffers = nullptr);

    /// Appends a copy of chunk.
    void feed(bytes_view chunk);

    /// Writable space of at least n bytes at the end of the buffer, valid
    /// until the next call of a non-const member. Fill some of it, then
    /// commit() how many bytes were written.
    std::span<byte> prepare(std::size_t n);

    /// Makes the first n bytes of the last prepare() readable. std::out_of_range
    /// if n exceeds what prepare() returned.
    void commit(std::size_t n);

    /// The next complete message, or nullopt when more bytes are needed.
    std::optional<message> next();

    /// Bytes received but not yet returned as messages.
    std::size_t buffered() const noexcept { return end_ - begin_; }
    /// Those bytes (the next frame, as much of it as came), valid until the next non-const call.
    bytes_view pending() const noexcept { return {buf_.data() + begin_, end_ - begin_}; }

    /// A lower bound on the bytes still to arrive before next() can return a
    /// message (0 when one is complete, or when next() will report an error).
    std::size_t bytes_needed() const noexcept;

    /// Drops buffered bytes and any failure (e.g. after reconnecting).
    void reset() noexcept;

    const limits& get_limits() const noexcept { return lim_; }
    /// New limits (e.g. from a hello reply) apply from the next frame on.
    void set_limits(const limits& lim) noexcept { lim_ = lim; }

private:
    limits lim_;
    std::shared_ptr<const compressor_registry> registry_;
    std::shared_ptr<buffer_cache> buffers_;
    frame_bytes buf_;  // [begin_, end_) is unread data; beyond end_ is prepared space (uninitialized)
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t prepared_ = 0;
    std::exception_ptr failure_;
};

/// protocol_error unless the reply's responseTo equals the request id it
/// answers; the message names both ids.
void check_response_to(const message_header& reply, std::int32_t expected_request_id);
void check_response_to(const message& reply, std::int32_t expected_request_id);

/// Hands out request ids: increasing, always positive, wrapping from
/// INT32_MAX back to 1. Safe to share between threads.
class request_id_generator {
public:
    explicit request_id_generator(std::int32_t first = 1) noexcept : next_(first > 0 ? first : 1) {}

    std::int32_t next() noexcept;

private:
    std::atomic<std::int32_t> next_;
};

/// The process-wide generator drivers use for outgoing requests.
std::int32_t next_request_id() noexcept;

}  // namespace trellis::wire
