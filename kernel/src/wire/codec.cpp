#include "wire/codec.hpp"

#include <algorithm>
#include <concepts>
#include <functional>
#include <limits>
#include <string>

#include "plugin/guard.hpp"
#include "trellis/errors.hpp"
#include "wire/crc32c.hpp"

namespace trellis::wire {
namespace {

using std::to_string;

[[noreturn]] void fail(errc code, const std::string& context, const std::string& what) {
    throw protocol_error(code, context + ": " + what);
}

// What an error message calls a field: a fixed name, or a callable that builds one ("document 7
// of sequence \"documents\"") only when there is an error to report. Built eagerly, those names
// cost every document of every message a few heap allocations.
inline std::string name_of(std::string_view field) { return std::string(field); }
template <std::invocable F>
std::string name_of(const F& field) {
    return field();
}

// A message can never be larger than what its int32 messageLength can say,
// whatever the configured limit.
std::size_t effective_max_message_size(const limits& lim) noexcept {
    return std::min<std::size_t>(lim.max_message_size, std::numeric_limits<std::int32_t>::max());
}

std::string hex_byte(byte b) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return std::string{'0', 'x', digits[b >> 4], digits[b & 0xF]};
}

// A name from the wire or the caller, quoted for an error message; control
// bytes are escaped so a NUL cannot cut the message short.
std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto b = static_cast<byte>(ch);
        if (b < 0x20 || b == 0x7F || ch == '"' || ch == '\\') {
            out += "\\x";
            out += hex_byte(b).substr(2);
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

// Reads the fields of one message, naming the field and byte offset in
// every error. Offsets are from the first byte of the message header.
class reader {
public:
    reader(bytes_view msg, std::string context, const limits& lim)
        : msg_(msg), context_(std::move(context)), lim_(lim) {}

    bytes_view bytes() const noexcept { return msg_; }
    const std::string& context() const noexcept { return context_; }

    [[noreturn]] void fail(errc code, const std::string& what) const { wire::fail(code, context_, what); }

    template <detail::wire_integer T>
    T read(std::size_t& pos, std::size_t end, std::string_view field) const {
        if (end - pos < sizeof(T)) {
            fail(errc::protocol_error, "truncated " + std::string(field) + ": needs " + to_string(sizeof(T)) +
                                           " bytes at byte " + to_string(pos) + " but only " + to_string(end - pos) +
                                           " remain before byte " + to_string(end));
        }
        const T value = load_le<T>(msg_.data() + pos);
        pos += sizeof(T);
        return value;
    }

    std::string_view read_cstring(std::size_t& pos, std::size_t end, std::string_view field) const {
        const byte* first = msg_.data() + pos;
        const byte* last = msg_.data() + end;
        const byte* nul = std::find(first, last, byte{0});
        if (nul == last) {
            fail(errc::protocol_error, std::string(field) + " starting at byte " + to_string(pos) +
                                           " has no NUL terminator before byte " + to_string(end));
        }
        std::string_view s(reinterpret_cast<const char*>(first), static_cast<std::size_t>(nul - first));
        pos += s.size() + 1;
        return s;
    }

    // Framing checks only: the length prefix, the bounds of the enclosing
    // region [pos, end), the size limit and the trailing 0x00.
    template <class Field>
    bytes_view read_document(std::size_t& pos, std::size_t end, const Field& field) const {
        if (end - pos < 4) {
            fail(errc::protocol_error, "truncated " + name_of(field) + ": its 4-byte length at byte " + to_string(pos) +
                                           " is cut off, only " + to_string(end - pos) + " bytes remain before byte " +
                                           to_string(end));
        }
        const std::int32_t length = load_le<std::int32_t>(msg_.data() + pos);
        if (length < 5) {
            fail(errc::protocol_error, name_of(field) + " at byte " + to_string(pos) + " has length " + to_string(length) +
                                           ", below the minimum of 5");
        }
        const auto size = static_cast<std::size_t>(length);
        if (size > lim_.max_document_size()) {
            fail(errc::message_too_large, name_of(field) + " at byte " + to_string(pos) + " has length " + to_string(size) +
                                              ", over the document size limit of " +
                                              to_string(lim_.max_document_size()) + " bytes");
        }
        if (size > end - pos) {
            fail(errc::protocol_error, name_of(field) + " at byte " + to_string(pos) + " has length " + to_string(size) +
                                           " but only " + to_string(end - pos) + " bytes remain before byte " +
                                           to_string(end) + " (end of its section)");
        }
        const byte last = msg_[pos + size - 1];
        if (last != 0) {
            fail(errc::protocol_error, name_of(field) + " at byte " + to_string(pos) + " does not end with 0x00 (found " +
                                           hex_byte(last) + " at byte " + to_string(pos + size - 1) + ")");
        }
        bytes_view doc = msg_.subspan(pos, size);
        pos += size;
        return doc;
    }

private:
    bytes_view msg_;
    std::string context_;
    const limits& lim_;
};

int lowest_bit(std::uint32_t v) noexcept {
    int bit = 0;
    while (((v >> bit) & 1u) == 0) ++bit;
    return bit;
}

op_msg parse_op_msg(const reader& r) {
    const bytes_view msg = r.bytes();
    std::size_t pos = header_size;
    op_msg out;
    out.flags = r.read<std::uint32_t>(pos, msg.size(), "flagBits");

    if (const std::uint32_t unknown = out.flags & msg_flags::required_bits & ~msg_flags::known_bits) {
        r.fail(errc::protocol_error, "flagBits " + to_hex(out.flags) + " (at byte 16) set required bit " +
                                         to_string(lowest_bit(unknown)) + ", which this decoder does not know");
    }

    std::size_t end = msg.size();
    if (out.flags & msg_flags::checksum_present) {
        // Verify before looking at the sections: corrupted bytes would
        // otherwise surface as confusing framing errors.
        if (end - pos < 4) {
            r.fail(errc::protocol_error, "checksumPresent is set but the message ends at byte " + to_string(end) +
                                             ", leaving no room for the 4-byte checksum");
        }
        end -= 4;
        const std::uint32_t expected = crc32c(msg.first(end));
        const std::uint32_t found = load_le<std::uint32_t>(msg.data() + end);
        if (expected != found) {
            r.fail(errc::protocol_error, "checksum mismatch: CRC-32C of bytes 0.." + to_string(end - 1) + " is " +
                                             to_hex(expected) + " but the message carries " + to_hex(found) +
                                             " at byte " + to_string(end));
        }
    }

    std::size_t body_at = 0;
    bool have_body = false;
    while (pos < end) {
        const std::size_t section_at = pos;
        const auto kind = r.read<std::uint8_t>(pos, end, "section kind");
        if (kind == 0) {
            if (have_body) {
                r.fail(errc::protocol_error, "second kind-0 (body) section at byte " + to_string(section_at) +
                                                 "; the first one is at byte " + to_string(body_at));
            }
            out.body = r.read_document(pos, end, "body document");
            have_body = true;
            body_at = section_at;
        } else if (kind == 1) {
            const std::size_t size_at = pos;
            const std::int32_t size = r.read<std::int32_t>(pos, end, "document sequence size");
            // The size covers itself and the identifier's terminator at least.
            if (size < 5) {
                r.fail(errc::protocol_error, "document sequence size " + to_string(size) + " at byte " +
                                                 to_string(size_at) + " is below the minimum of 5");
            }
            if (static_cast<std::size_t>(size) > end - size_at) {
                r.fail(errc::protocol_error, "document sequence size " + to_string(size) + " at byte " +
                                                 to_string(size_at) + " runs past the end of the sections at byte " +
                                                 to_string(end) + " (" + to_string(end - size_at) +
                                                 " bytes remain)");
            }
            const std::size_t section_end = size_at + static_cast<std::size_t>(size);
            document_sequence seq;
            const std::size_t id_at = pos;
            seq.identifier = r.read_cstring(pos, section_end, "document sequence identifier");
            for (const auto& other : out.sequences) {
                if (other.identifier == seq.identifier) {
                    r.fail(errc::protocol_error, "duplicate document sequence identifier " +
                                                     quoted(seq.identifier) + " at byte " + to_string(id_at));
                }
            }
            while (pos < section_end) {
                seq.documents.push_back(r.read_document(pos, section_end, [&, k = seq.documents.size()] {
                    return "document " + to_string(k) + " of sequence " + quoted(seq.identifier);
                }));
            }
            out.sequences.push_back(std::move(seq));
        } else {
            r.fail(errc::protocol_error,
                   "unknown section kind " + to_string(kind) + " at byte " + to_string(section_at));
        }
    }
    if (!have_body) {
        r.fail(errc::protocol_error, "no kind-0 (body) section between byte 20 and byte " + to_string(end) +
                                         "; exactly one is required");
    }
    return out;
}

op_query parse_op_query(const reader& r) {
    const std::size_t end = r.bytes().size();
    std::size_t pos = header_size;
    op_query out;
    out.flags = r.read<std::int32_t>(pos, end, "flags");
    out.full_collection_name = r.read_cstring(pos, end, "fullCollectionName");
    out.number_to_skip = r.read<std::int32_t>(pos, end, "numberToSkip");
    out.number_to_return = r.read<std::int32_t>(pos, end, "numberToReturn");
    out.query = r.read_document(pos, end, "query document");
    if (pos < end) out.return_fields_selector = r.read_document(pos, end, "returnFieldsSelector");
    if (pos != end) {
        r.fail(errc::protocol_error, to_string(end - pos) + " unexpected bytes after returnFieldsSelector at byte " +
                                         to_string(pos));
    }
    return out;
}

op_reply parse_op_reply(const reader& r) {
    const std::size_t end = r.bytes().size();
    std::size_t pos = header_size;
    op_reply out;
    out.response_flags = r.read<std::int32_t>(pos, end, "responseFlags");
    out.cursor_id = r.read<std::int64_t>(pos, end, "cursorID");
    out.starting_from = r.read<std::int32_t>(pos, end, "startingFrom");
    const std::int32_t number_returned = r.read<std::int32_t>(pos, end, "numberReturned");
    if (number_returned < 0) {
        r.fail(errc::protocol_error, "numberReturned " + to_string(number_returned) + " (at byte 32) is negative");
    }
    // Each document takes at least 5 bytes, which bounds the reservation.
    out.documents.reserve(std::min<std::size_t>(static_cast<std::size_t>(number_returned), (end - pos) / 5));
    while (pos < end) {
        const std::size_t doc_at = pos;
        if (out.documents.size() == static_cast<std::size_t>(number_returned)) {
            r.fail(errc::protocol_error, "numberReturned (at byte 32) is " + to_string(number_returned) +
                                             " but more documents follow at byte " + to_string(doc_at));
        }
        out.documents.push_back(
            r.read_document(pos, end, [k = out.documents.size()] { return "document " + to_string(k); }));
    }
    if (out.documents.size() != static_cast<std::size_t>(number_returned)) {
        r.fail(errc::protocol_error, "numberReturned (at byte 32) is " + to_string(number_returned) +
                                         " but the message holds " + to_string(out.documents.size()) + " documents");
    }
    return out;
}

bool is_plain_opcode(opcode op) noexcept { return op == opcode::msg || op == opcode::query || op == opcode::reply; }

// Parses the body of m (whose header and buffer are set) in place.
void parse_body(message& m, const limits& lim, std::string context) {
    const reader r(m.frame, std::move(context), lim);
    switch (m.header.op_code) {
        case opcode::msg: m.body = parse_op_msg(r); return;
        case opcode::query: m.body = parse_op_query(r); return;
        case opcode::reply: m.body = parse_op_reply(r); return;
        case opcode::compressed: break;
    }
    r.fail(errc::protocol_error, "unsupported opCode " + to_string(static_cast<std::int32_t>(m.header.op_code)) +
                                     " (at byte 12)");
}

message decode_compressed(bytes_view frame, const message_header& outer, const limits& lim,
                          const compressor_registry& registry) {
    const reader r(frame, "OP_COMPRESSED", lim);
    std::size_t pos = header_size;
    const auto original = static_cast<opcode>(r.read<std::int32_t>(pos, frame.size(), "originalOpcode"));
    const std::int32_t uncompressed_size = r.read<std::int32_t>(pos, frame.size(), "uncompressedSize");
    const std::uint8_t compressor_id = r.read<std::uint8_t>(pos, frame.size(), "compressorId");

    if (original == opcode::compressed) {
        r.fail(errc::protocol_error, "originalOpcode (at byte 16) is OP_COMPRESSED itself; nested compression "
                                     "is not allowed");
    }
    if (!is_plain_opcode(original)) {
        r.fail(errc::protocol_error, "originalOpcode " + to_string(static_cast<std::int32_t>(original)) +
                                         " (at byte 16) is not OP_MSG, OP_QUERY or OP_REPLY");
    }
    if (uncompressed_size < 0) {
        r.fail(errc::protocol_error, "uncompressedSize " + to_string(uncompressed_size) + " (at byte 20) is negative");
    }
    // Checked before anything is allocated: the size comes from the peer.
    const std::size_t inner_length = header_size + static_cast<std::size_t>(uncompressed_size);
    if (inner_length > effective_max_message_size(lim)) {
        r.fail(errc::message_too_large, "uncompressedSize " + to_string(uncompressed_size) +
                                            " (at byte 20) plus the 16-byte header exceeds the message size limit of " +
                                            to_string(lim.max_message_size) + " bytes");
    }
    const auto comp = registry.find(compressor_id);
    if (!comp) {
        std::string known;
        for (auto name : registry.names()) known += (known.empty() ? "" : ", ") + std::string(name);
        r.fail(errc::compression_error, "unknown compressorId " + to_string(compressor_id) +
                                            " (at byte 24); registered compressors: " +
                                            (known.empty() ? "none" : known));
    }

    const bytes_view payload = frame.subspan(pos);
    auto inner = std::make_shared<std::vector<byte>>();
    inner->reserve(inner_length);
    inner->resize(header_size);
    trellis::detail::guarded_or_throw([&] { return "compressor \"" + std::string(comp->name()) + "\": decompress"; },
                             [&] { comp->decompress(payload, static_cast<std::size_t>(uncompressed_size), *inner); });
    if (inner->size() != inner_length) {
        r.fail(errc::compression_error,
               "compressor " + quoted(comp->name()) + " (id " + to_string(compressor_id) + ") turned the " +
                   to_string(payload.size()) + "-byte payload at byte 25 into " +
                   to_string(inner->size() - std::min(inner->size(), header_size)) +
                   " bytes but uncompressedSize (at byte 20) says " + to_string(uncompressed_size));
    }

    message m;
    m.header = {static_cast<std::int32_t>(inner_length), outer.request_id, outer.response_to, original};
    write_header(inner->data(), m.header);
    m.compressor_id = compressor_id;
    m.frame = bytes_view(*inner);
    m.buffer = std::move(inner);
    parse_body(m, lim,
               opcode_name(original) + " inside OP_COMPRESSED (byte offsets are within the decompressed message, "
                                       "header included)");
    return m;
}

// Checks a document handed to an encoder.
template <class Field>
void check_outgoing_document(bytes_view doc, const Field& field, const limits& lim, const std::string& ctx) {
    if (doc.size() < 5) {
        fail(errc::protocol_error, ctx, name_of(field) + " is " + to_string(doc.size()) + " bytes, below the BSON minimum of 5");
    }
    if (doc.size() > lim.max_document_size()) {
        fail(errc::message_too_large, ctx, name_of(field) + " is " + to_string(doc.size()) +
                                               " bytes, over the document size limit of " +
                                               to_string(lim.max_document_size()) + " bytes");
    }
    const std::int32_t length = load_le<std::int32_t>(doc.data());
    if (length < 0 || static_cast<std::size_t>(length) != doc.size()) {
        fail(errc::protocol_error, ctx, name_of(field) + " has length field " + to_string(length) + " (at its byte 0) but spans " +
                                            to_string(doc.size()) + " bytes");
    }
    if (doc.back() != 0) {
        fail(errc::protocol_error, ctx, name_of(field) + " does not end with 0x00 (found " + hex_byte(doc.back()) +
                                            " at its byte " + to_string(doc.size() - 1) + ")");
    }
}

void check_outgoing_size(std::size_t total, const limits& lim, const std::string& ctx) {
    if (total > effective_max_message_size(lim)) {
        fail(errc::message_too_large, ctx, "the message would be " + to_string(total) +
                                               " bytes, over the message size limit of " +
                                               to_string(effective_max_message_size(lim)) + " bytes");
    }
}

template <class Field>
void check_cstring(std::string_view s, const Field& field, const std::string& ctx) {
    if (const auto nul = s.find('\0'); nul != std::string_view::npos) {
        fail(errc::protocol_error, ctx, name_of(field) + " contains a NUL byte at its offset " + to_string(nul) +
                                            ", which cannot be encoded as a cstring");
    }
}

std::size_t sequence_section_size(const document_sequence& seq) noexcept {
    std::size_t size = 4 + seq.identifier.size() + 1;
    for (const auto& doc : seq.documents) size += doc.size();
    return size;
}

// Reserves the frame and writes its header; the caller appends the rest.
std::size_t begin_message(std::vector<byte>& out, std::size_t total, std::int32_t request_id,
                          std::int32_t response_to, opcode op) {
    const std::size_t start = out.size();
    out.reserve(start + total);
    out.resize(start + header_size);
    write_header(out.data() + start, {static_cast<std::int32_t>(total), request_id, response_to, op});
    return start;
}

}  // namespace

const document_sequence* op_msg::sequence(std::string_view identifier) const noexcept {
    for (const auto& seq : sequences) {
        if (seq.identifier == identifier) return &seq;
    }
    return nullptr;
}

// ---- encoding -------------------------------------------------------------

void encode_op_msg(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, std::uint32_t flags,
                   bytes_view body, std::span<const document_sequence> sequences, const limits& lim) {
    const std::string ctx = "encode OP_MSG";
    if (const std::uint32_t unknown = flags & msg_flags::required_bits & ~msg_flags::known_bits) {
        fail(errc::protocol_error, ctx, "flagBits " + to_hex(flags) + " set required bit " +
                                            to_string(lowest_bit(unknown)) + ", which the protocol does not define");
    }
    check_outgoing_document(body, "body document", lim, ctx);
    std::size_t total = header_size + 4 + 1 + body.size();
    for (std::size_t i = 0; i < sequences.size(); ++i) {
        const auto& seq = sequences[i];
        check_cstring(seq.identifier, [&] { return "document sequence identifier " + quoted(seq.identifier); }, ctx);
        for (std::size_t j = 0; j < i; ++j) {
            if (sequences[j].identifier == seq.identifier) {
                fail(errc::protocol_error, ctx, "document sequences " + to_string(j) + " and " + to_string(i) +
                                                    " share the identifier " + quoted(seq.identifier));
            }
        }
        for (std::size_t k = 0; k < seq.documents.size(); ++k) {
            check_outgoing_document(
                seq.documents[k], [&] { return "document " + to_string(k) + " of sequence " + quoted(seq.identifier); },
                lim, ctx);
        }
        total += 1 + sequence_section_size(seq);
    }
    if (flags & msg_flags::checksum_present) total += 4;
    check_outgoing_size(total, lim, ctx);

    const std::size_t start = begin_message(out, total, request_id, response_to, opcode::msg);
    append_le(out, flags);
    out.push_back(0);
    append_bytes(out, body);
    for (const auto& seq : sequences) {
        out.push_back(1);
        append_le(out, static_cast<std::int32_t>(sequence_section_size(seq)));
        append_cstring(out, seq.identifier);
        for (const auto& doc : seq.documents) append_bytes(out, doc);
    }
    if (flags & msg_flags::checksum_present) {
        append_le(out, crc32c(bytes_view(out).subspan(start)));
    }
}

void encode_op_msg(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, const op_msg& msg,
                   const limits& lim) {
    encode_op_msg(out, request_id, response_to, msg.flags, msg.body, msg.sequences, lim);
}

void encode_op_query(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, const op_query& query,
                     const limits& lim) {
    const std::string ctx = "encode OP_QUERY";
    check_cstring(query.full_collection_name, "fullCollectionName", ctx);
    check_outgoing_document(query.query, "query document", lim, ctx);
    std::size_t total = header_size + 4 + query.full_collection_name.size() + 1 + 4 + 4 + query.query.size();
    if (query.return_fields_selector) {
        check_outgoing_document(*query.return_fields_selector, "returnFieldsSelector", lim, ctx);
        total += query.return_fields_selector->size();
    }
    check_outgoing_size(total, lim, ctx);

    begin_message(out, total, request_id, response_to, opcode::query);
    append_le(out, query.flags);
    append_cstring(out, query.full_collection_name);
    append_le(out, query.number_to_skip);
    append_le(out, query.number_to_return);
    append_bytes(out, query.query);
    if (query.return_fields_selector) append_bytes(out, *query.return_fields_selector);
}

void encode_op_reply(std::vector<byte>& out, std::int32_t request_id, std::int32_t response_to, const op_reply& reply,
                     const limits& lim) {
    const std::string ctx = "encode OP_REPLY";
    std::size_t total = header_size + 4 + 8 + 4 + 4;
    for (std::size_t i = 0; i < reply.documents.size(); ++i) {
        check_outgoing_document(reply.documents[i], [i] { return "document " + to_string(i); }, lim, ctx);
        total += reply.documents[i].size();
    }
    // Every document is >= 5 bytes and total is bounded by an int32 below,
    // so the count fits numberReturned as well.
    check_outgoing_size(total, lim, ctx);

    begin_message(out, total, request_id, response_to, opcode::reply);
    append_le(out, reply.response_flags);
    append_le(out, reply.cursor_id);
    append_le(out, reply.starting_from);
    append_le(out, static_cast<std::int32_t>(reply.documents.size()));
    for (const auto& doc : reply.documents) append_bytes(out, doc);
}

void encode_compressed(std::vector<byte>& out, bytes_view uncompressed, const compressor& c, const limits& lim) {
    const std::string ctx = "encode OP_COMPRESSED";
    if (uncompressed.size() < header_size) {
        fail(errc::protocol_error, ctx, "the message to compress is " + to_string(uncompressed.size()) +
                                            " bytes, shorter than the 16-byte header");
    }
    // Compressing appends to out and may reallocate it under the input.
    if (!out.empty() && std::greater_equal<>{}(uncompressed.data(), out.data()) &&
        std::less<>{}(uncompressed.data(), out.data() + out.size())) {
        fail(errc::protocol_error, ctx, "the message to compress lies inside the output buffer");
    }
    const message_header inner = read_header(uncompressed);
    if (inner.message_length < 0 || static_cast<std::size_t>(inner.message_length) != uncompressed.size()) {
        fail(errc::protocol_error, ctx, "messageLength " + to_string(inner.message_length) +
                                            " (at byte 0) of the message to compress does not match its " +
                                            to_string(uncompressed.size()) + " bytes");
    }
    if (inner.op_code == opcode::compressed) {
        fail(errc::protocol_error, ctx, "the message to compress is already OP_COMPRESSED");
    }
    // The receiver applies the message size limit to the uncompressed form.
    check_outgoing_size(uncompressed.size(), lim, ctx);

    const std::size_t start = out.size();
    try {
        out.resize(start + header_size + 9);
        write_header(out.data() + start, {0, inner.request_id, inner.response_to, opcode::compressed});
        store_le(out.data() + start + 16, static_cast<std::int32_t>(inner.op_code));
        store_le(out.data() + start + 20, static_cast<std::int32_t>(uncompressed.size() - header_size));
        store_le(out.data() + start + 24, c.id());
        trellis::detail::guarded_or_throw([&] { return "compressor \"" + std::string(c.name()) + "\": compress"; },
                                 [&] { c.compress(uncompressed.subspan(header_size), out); });
        const std::size_t total = out.size() - start;
        check_outgoing_size(total, lim, ctx);
        store_le(out.data() + start, static_cast<std::int32_t>(total));
    } catch (...) {
        out.resize(start);  // keep the promise that out is unchanged on error
        throw;
    }
}

// ---- decoding -------------------------------------------------------------

message decode_message(frame_bytes frame, const limits& lim, const compressor_registry* registry) {
    return decode_message(std::make_shared<frame_bytes>(std::move(frame)), lim, registry);
}

message decode_message(std::shared_ptr<frame_bytes> shared_frame, const limits& lim,
                       const compressor_registry* registry) {
    const bytes_view frame(*shared_frame);
    if (frame.size() < header_size) {
        throw protocol_error(errc::protocol_error, "frame of " + to_string(frame.size()) +
                                                       " bytes is shorter than the 16-byte message header");
    }
    const message_header h = read_header(frame);
    const std::size_t length = check_message_length(h.message_length, lim);
    if (length != frame.size()) {
        throw protocol_error(errc::protocol_error, "messageLength " + to_string(length) +
                                                       " (at byte 0) does not match the frame of " +
                                                       to_string(frame.size()) + " bytes");
    }
    if (h.op_code != opcode::compressed && !is_plain_opcode(h.op_code)) {
        throw protocol_error(errc::protocol_error,
                             "unsupported opCode " + to_string(static_cast<std::int32_t>(h.op_code)) +
                                 " (at byte 12); expected OP_MSG (2013), OP_QUERY (2004), OP_REPLY (1) or "
                                 "OP_COMPRESSED (2012)");
    }
    if (h.op_code == opcode::compressed) {
        return decode_compressed(frame, h, lim, registry ? *registry : default_compressor_registry());
    }
    message m;
    m.header = h;
    m.frame = frame;
    m.buffer = std::move(shared_frame);
    parse_body(m, lim, opcode_name(h.op_code));
    return m;
}

message decode_message(bytes_view frame, const limits& lim, const compressor_registry* registry) {
    return decode_message(frame_bytes(frame.begin(), frame.end()), lim, registry);
}

}  // namespace trellis::wire
