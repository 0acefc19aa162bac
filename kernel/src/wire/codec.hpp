// Encoding and decoding of whole wire protocol messages: OP_MSG, OP_QUERY,
// OP_REPLY and OP_COMPRESSED around any of them.
//
// Sans-io: everything here works on byte buffers only. Documents inside
// messages get framing checks (length prefix, bounds, trailing 0x00, size
// limit) and are handed out as spans; checking their contents is the BSON
// layer's job.
//
// Errors are trellis::protocol_error with errc::protocol_error (malformed
// frame), errc::message_too_large (a size limit) or errc::compression_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "wire/bytes.hpp"
#include "wire/compression.hpp"
#include "wire/header.hpp"

namespace trellis::wire {

/// OP_MSG flagBits.
namespace msg_flags {
inline constexpr std::uint32_t checksum_present = 1u << 0;
inline constexpr std::uint32_t more_to_come = 1u << 1;
inline constexpr std::uint32_t exhaust_allowed = 1u << 16;
/// Bits 0-15 are "required": a peer must reject a message setting one it
/// does not know. Bits 16-31 are optional and ignored when unknown.
inline constexpr std::uint32_t required_bits = 0x0000FFFFu;
inline constexpr std::uint32_t known_bits = checksum_present | more_to_come | exhaust_allowed;
}  // namespace msg_flags

/// OP_QUERY flags (legacy).
namespace query_flags {
inline constexpr std::int32_t tailable_cursor = 1 << 1;
inline constexpr std::int32_t secondary_ok = 1 << 2;
inline constexpr std::int32_t oplog_replay = 1 << 3;
inline constexpr std::int32_t no_cursor_timeout = 1 << 4;
inline constexpr std::int32_t await_data = 1 << 5;
inline constexpr std::int32_t exhaust = 1 << 6;
inline constexpr std::int32_t partial = 1 << 7;
}  // namespace query_flags

/// OP_REPLY responseFlags (legacy).
namespace reply_flags {
inline constexpr std::int32_t cursor_not_found = 1 << 0;
inline constexpr std::int32_t query_failure = 1 << 1;
inline constexpr std::int32_t shard_config_stale = 1 << 2;
inline constexpr std::int32_t await_capable = 1 << 3;
}  // namespace reply_flags

/// An OP_MSG kind-1 section: a named run of documents (e.g. "documents" of
/// an insert).
struct document_sequence {
    std::string_view identifier;
    std::vector<bytes_view> documents;
};

/// OP_MSG. On encode, checksum_present in flags makes the encoder append a
/// CRC-32C; on decode the checksum has already been verified.
struct op_msg {
    std::uint32_t flags = 0;
    bytes_view body;                           // the kind-0 section
    std::vector<document_sequence> sequences;  // kind-1 sections, in wire order

    /// The sequence with this identifier, or nullptr.
    const document_sequence* sequence(std::string_view identifier) const noexcept;
};

/// OP_QUERY (legacy; only used for the initial hello to pre-3.6 peers).
struct op_query {
    std::int32_t flags = 0;
    std::string_view full_collection_name;  // e.g. "admin.$cmd"
    std::int32_t number_to_skip = 0;
    std::int32_t number_to_return = 0;
    bytes_view query;
    std::optional<bytes_view> return_fields_selector;
};

/// OP_REPLY (legacy). numberReturned on the wire is documents.size().
struct op_reply {
    std::int32_t response_flags = 0;
    std::int64_t cursor_id = 0;
    std::int32_t starting_from = 0;
    std::vector<bytes_view> documents;
};

/// A decoded message that owns its bytes. The spans and string_views in body
/// point into *buffer, which is shared and immutable, so copies and moves of a
/// message keep them valid.
struct message {
    /// For a message that arrived in OP_COMPRESSED this describes the inner
    /// message: op_code is originalOpcode and message_length is 16 plus
    /// uncompressedSize; request_id and response_to come from the outer header.
    message_header header;
    /// Set when the message arrived in OP_COMPRESSED (a server answers with
    /// the same compressor).
    std::optional<std::uint8_t> compressor_id;
    std::variant<op_msg, op_query, op_reply> body;
    /// Owns the whole uncompressed message, header included (`bytes()`).
    std::shared_ptr<const void> buffer;
    bytes_view frame;

    bytes_view bytes() const noexcept { return frame; }
    const op_msg* as_msg() const noexcept { return std::get_if<op_msg>(&body); }
    const op_query* as_query() const noexcept { return std::get_if<op_query>(&body); }
    const op_reply* as_reply() const noexcept { return std::get_if<op_reply>(&body); }
};

// ---- encoding -------------------------------------------------------------
// Encoders append one complete message to out (existing contents are kept,
// so a caller can reuse or batch buffers). Everything is validated before the
// first byte is written: on an exception out is unchanged. Document spans
// must be complete BSON documents (length prefix equal to the span size,
// trailing 0x00, at most lim.max_document_size() bytes).

void encode_op_msg(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, std::uint32_t flags,
                   bytes_view body, std::span<const document_sequence> sequences = {}, const limits& lim = {});

void encode_op_msg(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, const op_msg& msg,
                   const limits& lim = {});

void encode_op_query(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, const op_query& query,
                     const limits& lim = {});

void encode_op_reply(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, const op_reply& reply,
                     const limits& lim = {});

/// Wraps an already encoded message (header included) in OP_COMPRESSED using
/// c; requestID and responseTo are taken from its header. uncompressed must
/// not point into out.
void encode_compressed(std::vector<byte>& out, bytes_view uncompressed, const compressor& c, const limits& lim = {});

// ---- decoding -------------------------------------------------------------

/// Decodes one complete message; frame must hold exactly messageLength bytes.
/// OP_COMPRESSED is unwrapped using registry (default_compressor_registry()
/// when null). Takes ownership of frame, so no copy is made.
message decode_message(frame_bytes frame, const limits& lim = {}, const compressor_registry* registry = nullptr);

/// Same, with the frame in a shared_ptr the caller made (whose deleter may recycle the buffer).
message decode_message(std::shared_ptr<frame_bytes> frame, const limits& lim = {},
                       const compressor_registry* registry = nullptr);

/// Same, copying the bytes.
message decode_message(bytes_view frame, const limits& lim = {}, const compressor_registry* registry = nullptr);

}  // namespace trellis::wire
