#include "wire/frame_decoder.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>

#include "trellis/errors.hpp"

namespace trellis::wire {

namespace {
// Frames at least this large are handed over with the buffer rather than copied out of it.
constexpr std::size_t handover_threshold = 256 * 1024;

// A handed-over frame's buffer goes back to the cache (if the client still has it) when the
// message's last reference goes.
struct return_to {
    std::weak_ptr<buffer_cache> cache;
    void operator()(frame_bytes* buffer) const noexcept {
        if (auto c = cache.lock()) c->give(std::move(*buffer));
        delete buffer;
    }
};
}  // namespace

frame_bytes buffer_cache::take(std::size_t n) {
    std::lock_guard lock(m_);
    if (spare_.capacity() < n) return {};
    frame_bytes out = std::move(spare_);
    spare_ = frame_bytes();
    out.clear();
    return out;
}

void buffer_cache::give(frame_bytes&& buffer) noexcept {
    if (buffer.capacity() > max_) return;
    frame_bytes smaller = std::move(buffer);  // freed outside the lock
    try {
        std::lock_guard lock(m_);
        if (smaller.capacity() > spare_.capacity()) spare_.swap(smaller);
    } catch (const std::system_error&) {  // the mutex failed: the buffer is freed instead
    }
}

std::size_t buffer_cache::spare_capacity() const {
    std::lock_guard lock(m_);
    return spare_.capacity();
}

frame_decoder::frame_decoder(limits lim, std::shared_ptr<const compressor_registry> registry,
                             std::shared_ptr<buffer_cache> buffers)
    : lim_(lim), registry_(std::move(registry)), buffers_(std::move(buffers)) {}

void frame_decoder::feed(bytes_view chunk) {
    if (chunk.empty()) return;
    const std::span<byte> dst = prepare(chunk.size());
    std::memcpy(dst.data(), chunk.data(), chunk.size());
    commit(chunk.size());
}

std::span<byte> frame_decoder::prepare(std::size_t n) {
    if (buf_.size() - end_ < n && begin_ > 0) {
        // Slide unread bytes to the front before growing: after a frame is
        // consumed the space in front of the partial next one is free.
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (buf_.size() - end_ < n) {
        // Room for the whole frame in progress and one more read of n past it, at once, so that
        // growing step by step does not move what came (a read near the frame's end asks for
        // more than the frame has left). A step is not zero-filled (frame_bytes): the read writes it.
        const std::size_t whole = end_ + bytes_needed();
        if (const std::size_t room = whole + n; room > buf_.capacity()) {
            frame_bytes spare;
            if (buffers_ && whole >= handover_threshold) spare = buffers_->take(room);
            if (spare.capacity() >= room) {  // memory written before: no page faults
                spare.assign(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(end_));
                buf_.swap(spare);
            } else {
                buf_.reserve(room);
            }
        }
        buf_.resize(end_ + n);  // within that room, unless n grew (then geometrically)
    }
    prepared_ = buf_.size() - end_;
    return {buf_.data() + end_, prepared_};
}

void frame_decoder::commit(std::size_t n) {
    if (n > prepared_) {
        throw std::out_of_range("frame_decoder::commit(" + std::to_string(n) + ") exceeds the " +
                                std::to_string(prepared_) + " bytes of the last prepare()");
    }
    end_ += n;
    prepared_ = 0;
}

std::optional<message> frame_decoder::next() {
    if (failure_) std::rethrow_exception(failure_);
    prepared_ = 0;  // next() may move the buffer out, so earlier prepare() spans die here
    const std::size_t available = end_ - begin_;
    if (available < 4) return std::nullopt;
    try {
        // Judge the length before waiting for (or allocating) the rest.
        const std::size_t length = check_message_length(load_le<std::int32_t>(buf_.data() + begin_), lim_);
        if (available < length) return std::nullopt;

        frame_bytes frame;
        if (begin_ == 0 && end_ == length && length >= handover_threshold) {
            // The buffer holds exactly this large frame: hand it over instead of
            // copying. A small frame is copied, so the buffer, already grown,
            // serves the next reply without a new allocation and zero fill.
            buf_.resize(length);
            end_ = 0;
            if (buffers_) {  // ...and back to the cache when the message is released
                std::shared_ptr<frame_bytes> shared(new frame_bytes(std::move(buf_)), return_to{buffers_});
                buf_ = frame_bytes();
                return decode_message(std::move(shared), lim_, registry_.get());
            }
            frame = std::move(buf_);
            buf_ = frame_bytes();
        } else {
            frame.assign(buf_.begin() + static_cast<std::ptrdiff_t>(begin_),
                         buf_.begin() + static_cast<std::ptrdiff_t>(begin_ + length));
            begin_ += length;
            if (begin_ == end_) begin_ = end_ = 0;
        }
        return decode_message(std::move(frame), lim_, registry_.get());
    } catch (...) {
        failure_ = std::current_exception();
        throw;
    }
}

std::size_t frame_decoder::bytes_needed() const noexcept {
    if (failure_) return 0;
    const std::size_t available = end_ - begin_;
    if (available < 4) return header_size - available;
    const std::int32_t length = load_le<std::int32_t>(buf_.data() + begin_);
    if (length < static_cast<std::int32_t>(header_size) || static_cast<std::size_t>(length) > lim_.max_message_size) {
        return 0;  // next() reports the error
    }
    const auto size = static_cast<std::size_t>(length);
    return available < size ? size - available : 0;
}

void frame_decoder::reset() noexcept {
    buf_.clear();
    begin_ = end_ = prepared_ = 0;
    failure_ = nullptr;
}

void check_response_to(const message_header& reply, std::int32_t expected_request_id) {
    if (reply.response_to != expected_request_id) {
        throw protocol_error(errc::protocol_error,
                             "responseTo " + std::to_string(reply.response_to) + " (at byte 8) of the " +
                                 opcode_name(reply.op_code) + " reply (requestID " + std::to_string(reply.request_id) +
                                 ") does not match requestID " + std::to_string(expected_request_id) +
                                 " of the request it answers");
    }
}

void check_response_to(const message& reply, std::int32_t expected_request_id) {
    check_response_to(reply.header, expected_request_id);
}

std::int32_t request_id_generator::next() noexcept {
    std::int32_t current = next_.load(std::memory_order_relaxed);
    // Wrap before overflow so ids stay positive (0 and negatives look like
    // "no request" to some peers).
    while (!next_.compare_exchange_weak(current,
                                        current == std::numeric_limits<std::int32_t>::max() ? 1 : current + 1,
                                        std::memory_order_relaxed)) {
    }
    return current;
}

std::int32_t next_request_id() noexcept {
    static request_id_generator generator;
    return generator.next();
}

}  // namespace trellis::wire
