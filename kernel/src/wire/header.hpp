// The standard message header shared by every wire protocol opcode, the
// opcodes Trellis speaks, and the size limits applied while framing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "wire/bytes.hpp"

namespace trellis::wire {

/// Opcodes Trellis encodes or decodes. Other values may appear in a header
/// read off the wire; they are kept as-is so errors can name them.
enum class opcode : std::int32_t {
    reply = 1,           // OP_REPLY (legacy, answer to OP_QUERY)
    query = 2004,        // OP_QUERY (legacy, only for the initial handshake)
    compressed = 2012,   // OP_COMPRESSED
    msg = 2013,          // OP_MSG
};

/// "OP_MSG", "OP_QUERY", ... or "opCode 1234" for anything else.
std::string opcode_name(opcode op);

/// The 16-byte header in front of every message.
struct message_header {
    std::int32_t message_length = 0;  // total size, header included
    std::int32_t request_id = 0;
    std::int32_t response_to = 0;
    opcode op_code = opcode::msg;
};

inline constexpr std::size_t header_size = 16;

/// Size limits applied by encoders and decoders. The defaults are the values
/// servers have advertised for years; a connection replaces them with what
/// its hello reply says (maxMessageSizeBytes, maxBsonObjectSize).
struct limits {
    std::size_t max_message_size = 48'000'000;
    std::size_t max_bson_object_size = 16 * 1024 * 1024;

    /// A document inside a message may exceed max_bson_object_size by the
    /// command overhead the server allows for the surrounding command fields.
    std::size_t max_document_size() const noexcept { return max_bson_object_size + 16 * 1024; }
};

/// Reads the header at the start of bytes (which must hold >= 16 bytes;
/// protocol_error otherwise). No validation of the values.
message_header read_header(bytes_view bytes);

/// Writes h as 16 bytes at dst.
void write_header(byte* dst, const message_header& h) noexcept;

/// Checks a messageLength value read off the wire: protocol_error if it is
/// below the header size (which includes negative values), message_too_large
/// if it exceeds lim.max_message_size. Returns it as a size.
std::size_t check_message_length(std::int32_t message_length, const limits& lim);

}  // namespace trellis::wire
