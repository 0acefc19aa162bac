#include "wire/header.hpp"

#include "trellis/errors.hpp"

namespace trellis::wire {

std::string opcode_name(opcode op) {
    switch (op) {
        case opcode::reply: return "OP_REPLY";
        case opcode::query: return "OP_QUERY";
        case opcode::compressed: return "OP_COMPRESSED";
        case opcode::msg: return "OP_MSG";
    }
    return "opCode " + std::to_string(static_cast<std::int32_t>(op));
}

message_header read_header(bytes_view bytes) {
    if (bytes.size() < header_size) {
        throw protocol_error(errc::protocol_error, "message header needs 16 bytes but only " +
                                                       std::to_string(bytes.size()) + " are available");
    }
    message_header h;
    h.message_length = load_le<std::int32_t>(bytes.data());
    h.request_id = load_le<std::int32_t>(bytes.data() + 4);
    h.response_to = load_le<std::int32_t>(bytes.data() + 8);
    h.op_code = static_cast<opcode>(load_le<std::int32_t>(bytes.data() + 12));
    return h;
}

void write_header(byte* dst, const message_header& h) noexcept {
    store_le(dst, h.message_length);
    store_le(dst + 4, h.request_id);
    store_le(dst + 8, h.response_to);
    store_le(dst + 12, static_cast<std::int32_t>(h.op_code));
}

std::size_t check_message_length(std::int32_t message_length, const limits& lim) {
    if (message_length < static_cast<std::int32_t>(header_size)) {
        throw protocol_error(errc::protocol_error, "messageLength " + std::to_string(message_length) +
                                                       " (at byte 0) is below the 16-byte header size");
    }
    const auto length = static_cast<std::size_t>(message_length);
    if (length > lim.max_message_size) {
        throw protocol_error(errc::message_too_large, "messageLength " + std::to_string(length) +
                                                          " (at byte 0) exceeds the message size limit of " +
                                                          std::to_string(lim.max_message_size) + " bytes");
    }
    return length;
}

}  // namespace trellis::wire
