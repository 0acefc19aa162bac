// Tests of the sans-io wire protocol codec (kernel/src/wire).
//
// The reference messages below are written out byte by byte from the wire
// protocol layout, BSON included, so the encoder is checked against the
// documented format rather than against the decoder.

#include <QtTest/QtTest>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/errors.hpp"
#include "wire/codec.hpp"
#include "wire/compression.hpp"
#include "wire/crc32c.hpp"
#include "wire/frame_decoder.hpp"
#include "wire/header.hpp"

// ---- allocation tracking ----------------------------------------------------
// Replaces the global operator new so tests can assert that a hostile length
// field never causes an allocation of that size.

namespace {
std::atomic<std::size_t> largest_allocation{0};

void note_allocation(std::size_t n) noexcept {
    std::size_t seen = largest_allocation.load(std::memory_order_relaxed);
    while (n > seen && !largest_allocation.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
    }
}
}  // namespace

void* operator new(std::size_t n) {
    note_allocation(n);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using trellis::errc;
using bytes = std::vector<std::uint8_t>;
namespace wire = trellis::wire;

// ---- reference messages -----------------------------------------------------

// {ping: 1, $db: "admin"}
const bytes ping_body = {
    0x1E, 0x00, 0x00, 0x00,                                      // document length 30
    0x10, 'p', 'i', 'n', 'g', 0x00, 0x01, 0x00, 0x00, 0x00,      // int32 "ping": 1
    0x02, '$', 'd', 'b', 0x00, 0x06, 0x00, 0x00, 0x00,           // string "$db", length 6
    'a', 'd', 'm', 'i', 'n', 0x00,                               //   "admin"
    0x00,                                                        // end of document
};

// OP_MSG, requestID 1, responseTo 0, flags 0, one kind-0 section.
const bytes ping_msg = {
    0x33, 0x00, 0x00, 0x00,  // messageLength 51
    0x01, 0x00, 0x00, 0x00,  // requestID 1
    0x00, 0x00, 0x00, 0x00,  // responseTo 0
    0xDD, 0x07, 0x00, 0x00,  // opCode 2013 OP_MSG
    0x00, 0x00, 0x00, 0x00,  // flagBits 0
    0x00,                    // section kind 0
    0x1E, 0x00, 0x00, 0x00, 0x10, 'p', 'i', 'n', 'g', 0x00, 0x01, 0x00, 0x00, 0x00,
    0x02, '$', 'd', 'b', 0x00, 0x06, 0x00, 0x00, 0x00, 'a', 'd', 'm', 'i', 'n', 0x00, 0x00,
};

// {insert: "c", $db: "db"}
const bytes insert_body = {
    0x1F, 0x00, 0x00, 0x00,                                                  // length 31
    0x02, 'i', 'n', 's', 'e', 'r', 't', 0x00, 0x02, 0x00, 0x00, 0x00, 'c', 0x00,  // "insert": "c"
    0x02, '$', 'd', 'b', 0x00, 0x03, 0x00, 0x00, 0x00, 'd', 'b', 0x00,           // "$db": "db"
    0x00,
};
// {_id: 1} and {_id: 2}
const bytes id1_doc = {0x0E, 0x00, 0x00, 0x00, 0x10, '_', 'i', 'd', 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
const bytes id2_doc = {0x0E, 0x00, 0x00, 0x00, 0x10, '_', 'i', 'd', 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};

// OP_MSG, requestID 7: kind-0 insert body, then a kind-1 "documents" sequence.
const bytes insert_msg = {
    0x5F, 0x00, 0x00, 0x00,  // messageLength 95
    0x07, 0x00, 0x00, 0x00,  // requestID 7
    0x00, 0x00, 0x00, 0x00,  // responseTo 0
    0xDD, 0x07, 0x00, 0x00,  // OP_MSG
    0x00, 0x00, 0x00, 0x00,  // flagBits 0
    0x00,                    // kind 0 at byte 20
    0x1F, 0x00, 0x00, 0x00, 0x02, 'i', 'n', 's', 'e', 'r', 't', 0x00, 0x02, 0x00, 0x00, 0x00, 'c', 0x00,
    0x02, '$', 'd', 'b', 0x00, 0x03, 0x00, 0x00, 0x00, 'd', 'b', 0x00, 0x00,
    0x01,                    // kind 1 at byte 52
    0x2A, 0x00, 0x00, 0x00,  // section size 42 = 4 + 10 + 14 + 14 (at byte 53)
    'd', 'o', 'c', 'u', 'm', 'e', 'n', 't', 's', 0x00,  // identifier (at byte 57)
    0x0E, 0x00, 0x00, 0x00, 0x10, '_', 'i', 'd', 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,  // at byte 67
    0x0E, 0x00, 0x00, 0x00, 0x10, '_', 'i', 'd', 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,  // at byte 81
};

// OP_MSG, requestID 5, checksumPresent: the ping body followed by the
// CRC-32C of bytes 0..50 (0x91A515B3, computed independently of this code).
const bytes checksum_msg = {
    0x37, 0x00, 0x00, 0x00,  // messageLength 55
    0x05, 0x00, 0x00, 0x00,  // requestID 5
    0x00, 0x00, 0x00, 0x00,  // responseTo 0
    0xDD, 0x07, 0x00, 0x00,  // OP_MSG
    0x01, 0x00, 0x00, 0x00,  // flagBits: checksumPresent
    0x00,
    0x1E, 0x00, 0x00, 0x00, 0x10, 'p', 'i', 'n', 'g', 0x00, 0x01, 0x00, 0x00, 0x00,
    0x02, '$', 'd', 'b', 0x00, 0x06, 0x00, 0x00, 0x00, 'a', 'd', 'm', 'i', 'n', 0x00, 0x00,
    0xB3, 0x15, 0xA5, 0x91,  // checksum at byte 51
};

// {hello: 1}
const bytes hello_doc = {0x10, 0x00, 0x00, 0x00, 0x10, 'h', 'e', 'l', 'l', 'o', 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};

// OP_QUERY, requestID 3: hello to admin.$cmd, numberToReturn -1.
const bytes hello_query = {
    0x37, 0x00, 0x00, 0x00,  // messageLength 55
    0x03, 0x00, 0x00, 0x00,  // requestID 3
    0x00, 0x00, 0x00, 0x00,  // responseTo 0
    0xD4, 0x07, 0x00, 0x00,  // opCode 2004 OP_QUERY
    0x00, 0x00, 0x00, 0x00,  // flags 0
    'a', 'd', 'm', 'i', 'n', '.', '$', 'c', 'm', 'd', 0x00,  // fullCollectionName
    0x00, 0x00, 0x00, 0x00,  // numberToSkip 0
    0xFF, 0xFF, 0xFF, 0xFF,  // numberToReturn -1
    0x10, 0x00, 0x00, 0x00, 0x10, 'h', 'e', 'l', 'l', 'o', 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
};

// {a: 1} and {b: 2}
const bytes a_doc = {0x0C, 0x00, 0x00, 0x00, 0x10, 'a', 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
const bytes b_doc = {0x0C, 0x00, 0x00, 0x00, 0x10, 'b', 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};

// OP_REPLY, requestID 9, responseTo 3, awaitCapable, cursorID 0x0102030405060708.
const bytes two_doc_reply = {
    0x3C, 0x00, 0x00, 0x00,  // messageLength 60
    0x09, 0x00, 0x00, 0x00,  // requestID 9
    0x03, 0x00, 0x00, 0x00,  // responseTo 3
    0x01, 0x00, 0x00, 0x00,  // opCode 1 OP_REPLY
    0x08, 0x00, 0x00, 0x00,  // responseFlags: AwaitCapable
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // cursorID
    0x00, 0x00, 0x00, 0x00,  // startingFrom 0
    0x02, 0x00, 0x00, 0x00,  // numberReturned 2 (at byte 32)
    0x0C, 0x00, 0x00, 0x00, 0x10, 'a', 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,  // at byte 36
    0x0C, 0x00, 0x00, 0x00, 0x10, 'b', 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,  // at byte 48
};

// OP_COMPRESSED (noop) wrapping ping_msg.
const bytes compressed_ping = {
    0x3C, 0x00, 0x00, 0x00,  // messageLength 60 = 16 + 9 + 35
    0x01, 0x00, 0x00, 0x00,  // requestID 1
    0x00, 0x00, 0x00, 0x00,  // responseTo 0
    0xDC, 0x07, 0x00, 0x00,  // opCode 2012 OP_COMPRESSED
    0xDD, 0x07, 0x00, 0x00,  // originalOpcode 2013
    0x23, 0x00, 0x00, 0x00,  // uncompressedSize 35 (at byte 20)
    0x00,                    // compressorId 0 noop (at byte 24)
    0x00, 0x00, 0x00, 0x00, 0x00,  // the OP_MSG after its header: flagBits, kind 0
    0x1E, 0x00, 0x00, 0x00, 0x10, 'p', 'i', 'n', 'g', 0x00, 0x01, 0x00, 0x00, 0x00,
    0x02, '$', 'd', 'b', 0x00, 0x06, 0x00, 0x00, 0x00, 'a', 'd', 'm', 'i', 'n', 0x00, 0x00,
};

// ---- helpers ----------------------------------------------------------------

bytes to_bytes(std::span<const std::uint8_t> s) { return bytes(s.begin(), s.end()); }

// "" when equal, otherwise where and how they differ.
std::string diff_bytes(std::span<const std::uint8_t> actual, std::span<const std::uint8_t> expected) {
    const std::size_t n = std::min(actual.size(), expected.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (actual[i] != expected[i]) {
            return "byte " + std::to_string(i) + ": got " + std::to_string(actual[i]) + ", expected " +
                   std::to_string(expected[i]);
        }
    }
    if (actual.size() != expected.size()) {
        return "size " + std::to_string(actual.size()) + ", expected " + std::to_string(expected.size());
    }
    return {};
}

#define QVERIFY_BYTES(actual, expected)                                      \
    do {                                                                     \
        const std::string d_ = diff_bytes((actual), (expected));             \
        QVERIFY2(d_.empty(), d_.c_str());                                    \
    } while (0)

struct caught {
    bool thrown = false;
    int code = 0;
    std::string what;
};

template <typename F>
caught capture(F&& f) {
    try {
        f();
    } catch (const trellis::protocol_error& e) {
        if (e.code().category() != trellis::error_category()) return {true, -1, e.what()};
        return {true, e.code().value(), e.what()};
    }
    return {};
}

// Runs stmt, expects a trellis::protocol_error with the given errc whose
// message contains every one of the given strings.
#define QVERIFY_WIRE_ERROR(stmt, expected_errc, ...)                                                         \
    do {                                                                                                     \
        const caught c_ = capture([&] { stmt; });                                                            \
        QVERIFY2(c_.thrown, "no protocol_error from: " #stmt);                                               \
        QCOMPARE(c_.code, static_cast<int>(expected_errc));                                                  \
        const std::vector<std::string> wanted_{__VA_ARGS__};                                                 \
        for (const std::string& s_ : wanted_) {                                                              \
            QVERIFY2(c_.what.find(s_) != std::string::npos, ("missing \"" + s_ + "\" in: " + c_.what).c_str()); \
        }                                                                                                    \
    } while (0)

void put_i32(bytes& b, std::size_t at, std::int32_t v) { wire::store_le(b.data() + at, v); }

// A valid BSON document of exactly `size` bytes: {x: "aaa..."}.
bytes make_doc(std::size_t size) {
    const std::size_t str_len = size - 13;  // 4 + 1 + 2 + 4 + (str_len + 1) + 1
    bytes d;
    wire::append_le(d, static_cast<std::int32_t>(size));
    d.push_back(0x02);
    d.push_back('x');
    d.push_back(0x00);
    wire::append_le(d, static_cast<std::int32_t>(str_len + 1));
    d.insert(d.end(), str_len, 'a');
    d.push_back(0x00);
    d.push_back(0x00);
    return d;
}

std::vector<bytes> drain(wire::frame_decoder& d) {
    std::vector<bytes> out;
    while (auto m = d.next()) out.push_back(to_bytes(m->bytes()));
    return out;
}

// The reference frames in one stream, and what each decodes to (the
// compressed one comes out as the inner OP_MSG).
bytes reference_stream() {
    bytes s;
    for (const bytes* f : {&ping_msg, &insert_msg, &checksum_msg, &hello_query, &two_doc_reply, &compressed_ping}) {
        s.insert(s.end(), f->begin(), f->end());
    }
    return s;
}
std::vector<bytes> reference_decoded() {
    return {ping_msg, insert_msg, checksum_msg, hello_query, two_doc_reply, ping_msg};
}

// Reversible toy compressor: proves encode/decode go through the compressor
// rather than copying.
class xor_compressor final : public wire::compressor {
public:
    std::uint8_t id() const override { return 42; }
    std::string_view name() const override { return "xor"; }
    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        for (auto b : in) out.push_back(static_cast<std::uint8_t>(b ^ 0x5A));
    }
    void decompress(std::span<const std::uint8_t> in, std::size_t, std::vector<std::uint8_t>& out) const override {
        for (auto b : in) out.push_back(static_cast<std::uint8_t>(b ^ 0x5A));
    }
};

// Produces extra bytes: exercises the codec's own size check.
class padding_compressor final : public wire::compressor {
public:
    std::uint8_t id() const override { return 9; }
    std::string_view name() const override { return "padding"; }
    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        out.insert(out.end(), in.begin(), in.end());
    }
    void decompress(std::span<const std::uint8_t> in, std::size_t, std::vector<std::uint8_t>& out) const override {
        out.insert(out.end(), in.begin(), in.end());
        out.insert(out.end(), 3, 0xEE);
    }
};

// Records whether decompress was reached.
class spy_compressor final : public wire::compressor {
public:
    mutable bool called = false;
    std::uint8_t id() const override { return 0; }
    std::string_view name() const override { return "spy"; }
    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        out.insert(out.end(), in.begin(), in.end());
    }
    void decompress(std::span<const std::uint8_t> in, std::size_t, std::vector<std::uint8_t>& out) const override {
        called = true;
        out.insert(out.end(), in.begin(), in.end());
    }
};

}  // namespace

class WireTest : public QObject {
    Q_OBJECT

private slots:
    // CRC-32C
    void crc32c_check_values();
    void crc32c_implementations_agree();

    // byte-exact encoding of the reference messages, and their decoding
    void op_msg_ping_bytes();
    void op_msg_document_sequence_bytes();
    void op_msg_checksum_bytes();
    void op_query_hello_bytes();
    void op_reply_two_documents_bytes();
    void op_compressed_noop_bytes();

    // round trips and ownership
    void round_trip_every_type();
    void round_trip_custom_compressor();
    void message_copies_and_moves_keep_views_valid();
    void encoders_append_to_existing_contents();

    // the incremental decoder
    void split_at_every_byte_boundary();
    void byte_at_a_time_and_random_chunks();
    void multiple_frames_in_one_feed();
    void prepare_commit_zero_copy();
    void bytes_needed_tracks_progress();
    void decoder_stays_failed_until_reset();
    void large_frames_reuse_the_cached_buffer();

    // framing errors
    void error_negative_length();
    void error_length_below_header();
    void error_length_over_limit_without_allocation();
    void error_frame_size_mismatch();
    void error_unsupported_opcode();

    // OP_MSG errors
    void error_bad_checksum();
    void error_checksum_flag_without_room();
    void error_unknown_section_kind();
    void error_two_body_sections();
    void error_missing_body_section();
    void error_unknown_required_flag_bit();
    void optional_unknown_flag_bit_accepted();
    void error_truncated_document();
    void error_document_past_section_end();
    void error_document_bad_terminator();
    void error_document_over_size_limit();
    void error_sequence_size_past_message_end();
    void error_sequence_duplicate_identifier();

    // legacy opcode errors
    void error_op_reply_number_returned_mismatch();
    void error_op_query_trailing_bytes();

    // OP_COMPRESSED errors
    void error_unknown_compressor_id();
    void error_decompressed_size_mismatch();
    void error_uncompressed_size_over_limit_before_decompressing();
    void error_nested_compression();

    // encoder errors
    void encode_errors_leave_output_unchanged();

    // responseTo, request ids, compressor registry
    void response_to_check();
    void request_id_generator_wraps_positive();
    void compressor_registry_lookup_and_duplicates();
    void compressible_commands();
};

// ---- CRC-32C ----------------------------------------------------------------

void WireTest::crc32c_check_values() {
    const std::string check = "123456789";
    const auto* p = reinterpret_cast<const std::uint8_t*>(check.data());
    QCOMPARE(wire::crc32c({p, check.size()}), 0xE3069283u);

    // RFC 3720 (iSCSI) appendix B.4 vectors.
    const bytes zeros(32, 0x00);
    const bytes ones(32, 0xFF);
    bytes ascending(32), descending(32);
    for (int i = 0; i < 32; ++i) {
        ascending[i] = static_cast<std::uint8_t>(i);
        descending[i] = static_cast<std::uint8_t>(31 - i);
    }
    QCOMPARE(wire::crc32c(zeros), 0x8A9136AAu);
    QCOMPARE(wire::crc32c(ones), 0x62A8AB43u);
    QCOMPARE(wire::crc32c(ascending), 0x46DD794Eu);
    QCOMPARE(wire::crc32c(descending), 0x113FDB5Cu);
    QCOMPARE(wire::crc32c({}), 0u);

    // The seed continues a previous CRC.
    for (std::size_t cut = 0; cut <= check.size(); ++cut) {
        const std::uint32_t first = wire::crc32c({p, cut});
        QCOMPARE(wire::crc32c({p + cut, check.size() - cut}, first), 0xE3069283u);
    }
}

void WireTest::crc32c_implementations_agree() {
    std::mt19937 rng(12345);
    bytes data(1024 + 16);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    for (std::size_t offset = 0; offset < 8; ++offset) {
        for (std::size_t len : {0u, 1u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 64u, 100u, 1000u, 1024u}) {
            const std::span<const std::uint8_t> s(data.data() + offset, len);
            const std::uint32_t portable = wire::detail::crc32c_portable(s, 0);
            QCOMPARE(wire::crc32c(s), portable);
            QCOMPARE(wire::detail::crc32c_hardware(s, 0), portable);
            QCOMPARE(wire::detail::crc32c_hardware(s, 0x12345678u),
                     wire::detail::crc32c_portable(s, 0x12345678u));
        }
    }
    qInfo("SSE4.2 crc32 available: %s", wire::detail::crc32c_hardware_available() ? "yes" : "no");
}

// ---- reference messages -------------------------------------------------------

void WireTest::op_msg_ping_bytes() {
    bytes out;
    wire::encode_op_msg(out, 1, 0, 0, ping_body);
    QVERIFY_BYTES(out, ping_msg);

    const wire::message m = wire::decode_message(ping_msg);
    QCOMPARE(m.header.message_length, 51);
    QCOMPARE(m.header.request_id, 1);
    QCOMPARE(m.header.response_to, 0);
    QCOMPARE(static_cast<int>(m.header.op_code), 2013);
    QVERIFY(!m.compressor_id.has_value());
    const wire::op_msg* msg = m.as_msg();
    QVERIFY(msg != nullptr);
    QCOMPARE(msg->flags, 0u);
    QVERIFY_BYTES(msg->body, ping_body);
    QCOMPARE(msg->body.data(), m.bytes().data() + 21);  // a view into the message, not a copy
    QCOMPARE(msg->sequences.size(), std::size_t{0});
}

void WireTest::op_msg_document_sequence_bytes() {
    const std::vector<wire::document_sequence> seqs = {{"documents", {id1_doc, id2_doc}}};
    bytes out;
    wire::encode_op_msg(out, 7, 0, 0, insert_body, seqs);
    QVERIFY_BYTES(out, insert_msg);

    const wire::message m = wire::decode_message(insert_msg);
    const wire::op_msg* msg = m.as_msg();
    QVERIFY(msg != nullptr);
    QCOMPARE(m.header.request_id, 7);
    QVERIFY_BYTES(msg->body, insert_body);
    QCOMPARE(msg->sequences.size(), std::size_t{1});
    QCOMPARE(msg->sequences[0].identifier, std::string_view("documents"));
    QCOMPARE(msg->sequences[0].documents.size(), std::size_t{2});
    QVERIFY_BYTES(msg->sequences[0].documents[0], id1_doc);
    QVERIFY_BYTES(msg->sequences[0].documents[1], id2_doc);
    QCOMPARE(msg->sequences[0].documents[1].data(), m.bytes().data() + 81);
    QVERIFY(msg->sequence("documents") == &msg->sequences[0]);
    QVERIFY(msg->sequence("updates") == nullptr);
}

void WireTest::op_msg_checksum_bytes() {
    bytes out;
    wire::encode_op_msg(out, 5, 0, wire::msg_flags::checksum_present, ping_body);
    QVERIFY_BYTES(out, checksum_msg);
    QCOMPARE(wire::crc32c(std::span(checksum_msg).first(51)), 0x91A515B3u);

    const wire::message m = wire::decode_message(checksum_msg);
    QCOMPARE(m.as_msg()->flags, wire::msg_flags::checksum_present);
    QVERIFY_BYTES(m.as_msg()->body, ping_body);
}

void WireTest::op_query_hello_bytes() {
    wire::op_query q;
    q.full_collection_name = "admin.$cmd";
    q.number_to_return = -1;
    q.query = hello_doc;
    bytes out;
    wire::encode_op_query(out, 3, 0, q);
    QVERIFY_BYTES(out, hello_query);

    const wire::message m = wire::decode_message(hello_query);
    const wire::op_query* d = m.as_query();
    QVERIFY(d != nullptr);
    QCOMPARE(static_cast<int>(m.header.op_code), 2004);
    QCOMPARE(m.header.request_id, 3);
    QCOMPARE(d->flags, 0);
    QCOMPARE(d->full_collection_name, std::string_view("admin.$cmd"));
    QCOMPARE(d->number_to_skip, 0);
    QCOMPARE(d->number_to_return, -1);
    QVERIFY_BYTES(d->query, hello_doc);
    QVERIFY(!d->return_fields_selector.has_value());
}

void WireTest::op_reply_two_documents_bytes() {
    wire::op_reply r;
    r.response_flags = wire::reply_flags::await_capable;
    r.cursor_id = 0x0102030405060708LL;
    r.documents = {a_doc, b_doc};
    bytes out;
    wire::encode_op_reply(out, 9, 3, r);
    QVERIFY_BYTES(out, two_doc_reply);

    const wire::message m = wire::decode_message(two_doc_reply);
    const wire::op_reply* d = m.as_reply();
    QVERIFY(d != nullptr);
    QCOMPARE(m.header.request_id, 9);
    QCOMPARE(m.header.response_to, 3);
    QCOMPARE(d->response_flags, 8);
    QCOMPARE(d->cursor_id, std::int64_t{0x0102030405060708LL});
    QCOMPARE(d->starting_from, 0);
    QCOMPARE(d->documents.size(), std::size_t{2});
    QVERIFY_BYTES(d->documents[0], a_doc);
    QVERIFY_BYTES(d->documents[1], b_doc);
}

void WireTest::op_compressed_noop_bytes() {
    bytes out;
    wire::encode_compressed(out, ping_msg, wire::noop_compressor());
    QVERIFY_BYTES(out, compressed_ping);

    const wire::message m = wire::decode_message(compressed_ping);
    QVERIFY(m.compressor_id.has_value());
    QCOMPARE(*m.compressor_id, std::uint8_t{0});
    // The inner message with its header rebuilt from the outer one.
    QCOMPARE(static_cast<int>(m.header.op_code), 2013);
    QCOMPARE(m.header.message_length, 51);
    QCOMPARE(m.header.request_id, 1);
    QVERIFY_BYTES(m.bytes(), ping_msg);
    QVERIFY(m.as_msg() != nullptr);
    QVERIFY_BYTES(m.as_msg()->body, ping_body);
}

// ---- round trips ----------------------------------------------------------------

void WireTest::round_trip_every_type() {
    const bytes big = make_doc(5000);
    const std::uint32_t flags =
        wire::msg_flags::checksum_present | wire::msg_flags::more_to_come | wire::msg_flags::exhaust_allowed;
    const std::vector<wire::document_sequence> seqs = {{"documents", {id1_doc, big, id2_doc}},
                                                       {"updates", {}},
                                                       {"deletes", {a_doc}}};
    bytes msg_bytes;
    wire::encode_op_msg(msg_bytes, 100, 99, flags, insert_body, seqs);

    wire::op_query q{wire::query_flags::secondary_ok, "db.coll", 5, 10, hello_doc, a_doc};
    bytes query_bytes;
    wire::encode_op_query(query_bytes, -7, 0, q);

    wire::op_reply r{wire::reply_flags::query_failure, -1, 17, {big, a_doc, b_doc}};
    bytes reply_bytes;
    wire::encode_op_reply(reply_bytes, 1, -7, r);

    wire::op_reply empty_reply;
    bytes empty_reply_bytes;
    wire::encode_op_reply(empty_reply_bytes, 2, 3, empty_reply);

    for (int compressed = 0; compressed < 2; ++compressed) {
        auto decode = [&](const bytes& b) {
            if (!compressed) return wire::decode_message(b);
            bytes c;
            wire::encode_compressed(c, b, wire::noop_compressor());
            return wire::decode_message(std::move(c));
        };

        const wire::message m1 = decode(msg_bytes);
        QCOMPARE(m1.compressor_id.has_value(), compressed == 1);
        QCOMPARE(m1.header.request_id, 100);
        QCOMPARE(m1.header.response_to, 99);
        const wire::op_msg* d1 = m1.as_msg();
        QVERIFY(d1 != nullptr);
        QCOMPARE(d1->flags, flags);
        QVERIFY_BYTES(d1->body, insert_body);
        QCOMPARE(d1->sequences.size(), std::size_t{3});
        QCOMPARE(d1->sequences[0].identifier, std::string_view("documents"));
        QCOMPARE(d1->sequences[0].documents.size(), std::size_t{3});
        QVERIFY_BYTES(d1->sequences[0].documents[1], big);
        QVERIFY_BYTES(d1->sequences[0].documents[2], id2_doc);
        QCOMPARE(d1->sequences[1].identifier, std::string_view("updates"));
        QCOMPARE(d1->sequences[1].documents.size(), std::size_t{0});
        QCOMPARE(d1->sequences[2].identifier, std::string_view("deletes"));
        QVERIFY_BYTES(d1->sequences[2].documents.at(0), a_doc);
        bytes again;
        wire::encode_op_msg(again, 100, 99, *d1);
        QVERIFY_BYTES(again, msg_bytes);

        const wire::message m2 = decode(query_bytes);
        const wire::op_query* d2 = m2.as_query();
        QVERIFY(d2 != nullptr);
        QCOMPARE(m2.header.request_id, -7);
        QCOMPARE(d2->flags, wire::query_flags::secondary_ok);
        QCOMPARE(d2->full_collection_name, std::string_view("db.coll"));
        QCOMPARE(d2->number_to_skip, 5);
        QCOMPARE(d2->number_to_return, 10);
        QVERIFY_BYTES(d2->query, hello_doc);
        QVERIFY(d2->return_fields_selector.has_value());
        QVERIFY_BYTES(*d2->return_fields_selector, a_doc);
        again.clear();
        wire::encode_op_query(again, -7, 0, *d2);
        QVERIFY_BYTES(again, query_bytes);

        const wire::message m3 = decode(reply_bytes);
        const wire::op_reply* d3 = m3.as_reply();
        QVERIFY(d3 != nullptr);
        QCOMPARE(m3.header.response_to, -7);
        QCOMPARE(d3->response_flags, wire::reply_flags::query_failure);
        QCOMPARE(d3->cursor_id, std::int64_t{-1});
        QCOMPARE(d3->starting_from, 17);
        QCOMPARE(d3->documents.size(), std::size_t{3});
        QVERIFY_BYTES(d3->documents[0], big);
        again.clear();
        wire::encode_op_reply(again, 1, -7, *d3);
        QVERIFY_BYTES(again, reply_bytes);

        const wire::message m4 = decode(empty_reply_bytes);
        QCOMPARE(m4.as_reply()->documents.size(), std::size_t{0});
        QCOMPARE(m4.header.message_length, 36);
    }
}

void WireTest::round_trip_custom_compressor() {
    auto registry = std::make_shared<wire::compressor_registry>(wire::compressor_registry::with_builtins());
    registry->add(std::make_shared<xor_compressor>());

    bytes out;
    wire::encode_compressed(out, insert_msg, *registry->find("xor"));
    QCOMPARE(out.size(), insert_msg.size() + 9);
    QCOMPARE(out[24], std::uint8_t{42});
    QCOMPARE(out[25], static_cast<std::uint8_t>(insert_msg[16] ^ 0x5A));  // really transformed

    const wire::message m = wire::decode_message(out, {}, registry.get());
    QCOMPARE(*m.compressor_id, std::uint8_t{42});
    QVERIFY_BYTES(m.bytes(), insert_msg);
    QVERIFY_BYTES(m.as_msg()->sequences.at(0).documents.at(1), id2_doc);

    // The default registry does not know id 42.
    QVERIFY_WIRE_ERROR(wire::decode_message(out), errc::compression_error, "unknown compressorId 42", "byte 24");

    // Through the frame decoder with the custom registry.
    wire::frame_decoder d({}, registry);
    d.feed(out);
    const auto got = drain(d);
    QCOMPARE(got.size(), std::size_t{1});
    QVERIFY_BYTES(got[0], insert_msg);
}

void WireTest::message_copies_and_moves_keep_views_valid() {
    wire::frame_decoder d;
    d.feed(insert_msg);
    std::optional<wire::message> first = d.next();
    QVERIFY(first.has_value());

    wire::message moved = std::move(*first);
    first.reset();
    wire::message copy = moved;
    std::vector<wire::message> many;
    for (int i = 0; i < 50; ++i) many.push_back(moved);  // reallocations move messages around
    { wire::message gone = std::move(moved); }

    for (const wire::message* m : {&copy, &many.front(), &many.back()}) {
        const wire::op_msg* msg = m->as_msg();
        QVERIFY(msg != nullptr);
        QVERIFY_BYTES(msg->body, insert_body);
        QCOMPARE(msg->sequences.at(0).identifier, std::string_view("documents"));
        QVERIFY_BYTES(msg->sequences.at(0).documents.at(0), id1_doc);
        QVERIFY(msg->body.data() >= m->bytes().data() &&
                msg->body.data() + msg->body.size() <= m->bytes().data() + m->bytes().size());
    }
}

void WireTest::encoders_append_to_existing_contents() {
    bytes out = {0xAA, 0xBB};
    wire::encode_op_msg(out, 1, 0, 0, ping_body);
    wire::encode_op_query(out, 3, 0, {0, "admin.$cmd", 0, -1, hello_doc, std::nullopt});
    wire::encode_compressed(out, ping_msg, wire::noop_compressor());
    bytes expected = {0xAA, 0xBB};
    for (const bytes* f : {&ping_msg, &hello_query, &compressed_ping}) expected.insert(expected.end(), f->begin(), f->end());
    QVERIFY_BYTES(out, expected);

    // Encoding an OP_MSG with a checksum after other data: the CRC covers only this message.
    bytes prefixed = {1, 2, 3};
    wire::encode_op_msg(prefixed, 5, 0, wire::msg_flags::checksum_present, ping_body);
    QVERIFY_BYTES(std::span(prefixed).subspan(3), checksum_msg);
}

// ---- incremental decoder ---------------------------------------------------------

void WireTest::split_at_every_byte_boundary() {
    const bytes stream = reference_stream();
    const std::vector<bytes> expected = reference_decoded();
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        wire::frame_decoder d;
        d.feed(std::span(stream).first(cut));
        std::vector<bytes> got = drain(d);
        d.feed(std::span(stream).subspan(cut));
        for (auto& m : drain(d)) got.push_back(std::move(m));
        QVERIFY2(got.size() == expected.size(), ("cut at " + std::to_string(cut)).c_str());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            QVERIFY2(diff_bytes(got[i], expected[i]).empty(),
                     ("cut at " + std::to_string(cut) + ", message " + std::to_string(i)).c_str());
        }
        QCOMPARE(d.buffered(), std::size_t{0});
    }
}

void WireTest::byte_at_a_time_and_random_chunks() {
    const bytes stream = reference_stream();
    const std::vector<bytes> expected = reference_decoded();
    {
        wire::frame_decoder d;
        std::vector<bytes> got;
        for (std::uint8_t b : stream) {
            d.feed(std::span(&b, 1));
            for (auto& m : drain(d)) got.push_back(std::move(m));
        }
        QCOMPARE(got, expected);
    }
    std::mt19937 rng(2024);
    for (int round = 0; round < 200; ++round) {
        wire::frame_decoder d;
        std::vector<bytes> got;
        std::size_t pos = 0;
        while (pos < stream.size()) {
            const std::size_t n = std::min<std::size_t>(stream.size() - pos, rng() % 70);
            // Alternate between copying feeds and prepare/commit.
            if (rng() % 2) {
                d.feed(std::span(stream).subspan(pos, n));
            } else {
                const std::span<std::uint8_t> space = d.prepare(n);
                QVERIFY(space.size() >= n);
                std::memcpy(space.data(), stream.data() + pos, n);
                d.commit(n);
            }
            pos += n;
            for (auto& m : drain(d)) got.push_back(std::move(m));
        }
        QCOMPARE(got, expected);
    }
}

void WireTest::multiple_frames_in_one_feed() {
    wire::frame_decoder d;
    d.feed(reference_stream());
    QCOMPARE(d.buffered(), reference_stream().size());
    std::vector<wire::message> got;
    while (auto m = d.next()) got.push_back(std::move(*m));
    QCOMPARE(got.size(), std::size_t{6});
    QCOMPARE(got[0].header.request_id, 1);
    QCOMPARE(got[1].header.request_id, 7);
    QCOMPARE(got[2].header.request_id, 5);
    QVERIFY(got[3].as_query() != nullptr);
    QVERIFY(got[4].as_reply() != nullptr);
    QCOMPARE(got[5].compressor_id.value_or(0xFF), std::uint8_t{0});
    QVERIFY_BYTES(got[1].as_msg()->sequences.at(0).documents.at(1), id2_doc);
    QVERIFY(!d.next().has_value());
    QCOMPARE(d.buffered(), std::size_t{0});

    // A complete frame followed by a partial one: only the complete one comes out.
    wire::frame_decoder d2;
    bytes chunk = ping_msg;
    chunk.insert(chunk.end(), hello_query.begin(), hello_query.begin() + 20);
    d2.feed(chunk);
    QCOMPARE(drain(d2), std::vector<bytes>{ping_msg});
    QCOMPARE(d2.buffered(), std::size_t{20});
    d2.feed(std::span(hello_query).subspan(20));
    QCOMPARE(drain(d2), std::vector<bytes>{hello_query});
}

void WireTest::prepare_commit_zero_copy() {
    wire::frame_decoder d;
    std::span<std::uint8_t> space = d.prepare(10);
    QVERIFY(space.size() >= 10);
    std::memcpy(space.data(), insert_msg.data(), 10);
    d.commit(10);
    QVERIFY(!d.next().has_value());

    space = d.prepare(insert_msg.size() - 10);
    std::memcpy(space.data(), insert_msg.data() + 10, insert_msg.size() - 10);
    d.commit(insert_msg.size() - 10);
    auto m = d.next();
    QVERIFY(m.has_value());
    QVERIFY_BYTES(m->bytes(), insert_msg);

    // Committing more than was prepared is a caller bug.
    space = d.prepare(4);
    bool threw = false;
    try {
        d.commit(space.size() + 1);
    } catch (const std::out_of_range&) {
        threw = true;
    }
    QVERIFY(threw);
    d.commit(0);
    QCOMPARE(d.buffered(), std::size_t{0});
}

void WireTest::bytes_needed_tracks_progress() {
    wire::frame_decoder d;
    QCOMPARE(d.bytes_needed(), std::size_t{16});
    d.feed(std::span(ping_msg).first(2));
    QCOMPARE(d.bytes_needed(), std::size_t{14});
    d.feed(std::span(ping_msg).subspan(2, 8));
    QCOMPARE(d.bytes_needed(), std::size_t{41});  // length 51 known, 10 bytes in
    d.feed(std::span(ping_msg).subspan(10));
    QCOMPARE(d.bytes_needed(), std::size_t{0});
    QVERIFY(d.next().has_value());
    QCOMPARE(d.bytes_needed(), std::size_t{16});
}

namespace {
// An OP_MSG whose body is {"s": "aaa…"} of n characters.
bytes op_msg_with_string(std::size_t n) {
    bytes body(4, 0);
    body.insert(body.end(), {0x02, 's', 0x00});
    const auto len = static_cast<std::uint32_t>(n + 1);
    for (int i = 0; i < 4; ++i) body.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
    body.insert(body.end(), n, 'a');
    body.insert(body.end(), {0x00, 0x00});
    const auto total = static_cast<std::uint32_t>(body.size());
    for (int i = 0; i < 4; ++i) body[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(total >> (8 * i));
    bytes out;
    wire::encode_op_msg(out, 1, 0, 0, body);
    return out;
}

// Reads `frame` through prepare/commit in pieces of 64 KB, as a connection does (the last
// prepare asks for more than is left). Once the frame's length is known, the buffer must not
// move: what came is never copied again.
wire::message read_through(wire::frame_decoder& d, const bytes& frame) {
    std::size_t at = 0;
    const std::uint8_t* base = nullptr;
    while (at < frame.size()) {
        const std::span<std::uint8_t> space = d.prepare(64 * 1024);
        if (at >= 16) {
            if (!base) base = space.data() - at;
            else if (space.data() - at != base) throw std::runtime_error("the buffer moved at byte " + std::to_string(at));
        }
        const std::size_t n = std::min(space.size(), frame.size() - at);
        std::memcpy(space.data(), frame.data() + at, n);
        d.commit(n);
        at += n;
    }
    auto m = d.next();
    if (!m) throw std::runtime_error("the frame did not come out whole");
    if (base && m->bytes().data() != base) throw std::runtime_error("the frame was copied out of its buffer");
    return std::move(*m);
}
}  // namespace

// A large reply's buffer goes back to the client's cache when the reply is released, and the
// next large reply is read into it (memory written before: no page faults).
void WireTest::large_frames_reuse_the_cached_buffer() {
    const bytes frame = op_msg_with_string(300 * 1024);
    auto cache = std::make_shared<wire::buffer_cache>(std::size_t{1} << 20);  // room for the 300 KB frames
    wire::frame_decoder d({}, nullptr, cache);
    wire::message m1 = read_through(d, frame);
    QVERIFY_BYTES(m1.bytes(), frame);
    const std::uint8_t* const first = m1.bytes().data();
    QCOMPARE(cache->spare_capacity(), std::size_t{0});  // the message holds it
    m1 = wire::message{};
    QVERIFY(cache->spare_capacity() >= frame.size());

    wire::message m2 = read_through(d, frame);
    QCOMPARE(m2.bytes().data(), first);
    QVERIFY_BYTES(m2.bytes(), frame);
    QCOMPARE(cache->spare_capacity(), std::size_t{0});
    QCOMPARE(m2.as_msg()->body.size(), frame.size() - 21);

    // While m2 holds the buffer, the next frame gets memory of its own; both stay whole.
    wire::message m3 = read_through(d, frame);
    QVERIFY(m3.bytes().data() != first);
    QVERIFY_BYTES(m2.bytes(), frame);
    QVERIFY_BYTES(m3.bytes(), frame);
    m2 = wire::message{};
    m3 = wire::message{};
    QVERIFY(cache->spare_capacity() >= frame.size());  // one of them, the other freed

    // Small frames are copied out and never touch the cache.
    const std::size_t spare = cache->spare_capacity();
    QVERIFY_BYTES(read_through(d, ping_msg).bytes(), ping_msg);
    QCOMPARE(cache->spare_capacity(), spare);

    // Above the cache's limit, a buffer is freed instead of kept.
    auto small = std::make_shared<wire::buffer_cache>(256 * 1024);
    wire::frame_decoder d2({}, nullptr, small);
    { const wire::message m = read_through(d2, frame); }
    QCOMPARE(small->spare_capacity(), std::size_t{0});

    // A message that outlives its decoder and cache frees its buffer (checked under ASan).
    wire::message outliving;
    {
        auto gone = std::make_shared<wire::buffer_cache>(std::size_t{1} << 20);
        wire::frame_decoder d3({}, nullptr, gone);
        outliving = read_through(d3, frame);
    }
    QVERIFY_BYTES(outliving.bytes(), frame);
}

void WireTest::decoder_stays_failed_until_reset() {
    wire::frame_decoder d;
    bytes bad = ping_msg;
    bad[20] = 7;  // unknown section kind
    bytes stream = ping_msg;
    stream.insert(stream.end(), bad.begin(), bad.end());
    stream.insert(stream.end(), ping_msg.begin(), ping_msg.end());
    d.feed(stream);
    QVERIFY(d.next().has_value());  // frames before the bad one still come out
    QVERIFY_WIRE_ERROR(d.next(), errc::protocol_error, "unknown section kind 7");
    QVERIFY_WIRE_ERROR(d.next(), errc::protocol_error, "unknown section kind 7");
    d.feed(ping_msg);
    QVERIFY_WIRE_ERROR(d.next(), errc::protocol_error, "unknown section kind 7");
    d.reset();
    QCOMPARE(d.buffered(), std::size_t{0});
    d.feed(ping_msg);
    auto m = d.next();
    QVERIFY(m.has_value());
    QVERIFY_BYTES(m->bytes(), ping_msg);
}

// ---- framing errors ----------------------------------------------------------------

void WireTest::error_negative_length() {
    wire::frame_decoder d;
    const bytes head = {0xFF, 0xFF, 0xFF, 0xFF};  // -1
    d.feed(head);
    QVERIFY_WIRE_ERROR(d.next(), errc::protocol_error, "messageLength -1", "byte 0", "16-byte header");

    bytes msg = ping_msg;
    put_i32(msg, 0, -51);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "messageLength -51");
}

void WireTest::error_length_below_header() {
    wire::frame_decoder d;
    d.feed(std::span(ping_msg).first(3));
    QVERIFY(!d.next().has_value());  // the length is not known yet
    bytes head = {0x03, 0x00, 0x00, 0x00};
    wire::frame_decoder d2;
    d2.feed(head);
    QVERIFY_WIRE_ERROR(d2.next(), errc::protocol_error, "messageLength 3", "below the 16-byte header size");

    bytes len15 = {0x0F, 0x00, 0x00, 0x00};
    wire::frame_decoder d3;
    d3.feed(len15);
    QVERIFY_WIRE_ERROR(d3.next(), errc::protocol_error, "messageLength 15");
}

void WireTest::error_length_over_limit_without_allocation() {
    // Just over the default 48,000,000-byte limit, and the int32 maximum;
    // only 16 bytes are ever fed.
    for (std::int32_t length : {48'000'001, 0x7FFFFFFF}) {
        bytes head(16, 0);
        put_i32(head, 0, length);
        put_i32(head, 12, 2013);
        largest_allocation = 0;
        wire::frame_decoder d;
        d.feed(head);
        QVERIFY_WIRE_ERROR(d.next(), errc::message_too_large, "messageLength " + std::to_string(length),
                           "limit of 48000000 bytes");
        QVERIFY2(largest_allocation.load() < 4096,
                 ("largest allocation " + std::to_string(largest_allocation.load())).c_str());
    }

    // Exactly at the limit is fine: the decoder waits, still without allocating it.
    bytes head(16, 0);
    put_i32(head, 0, 48'000'000);
    largest_allocation = 0;
    wire::frame_decoder d;
    d.feed(head);
    QVERIFY(!d.next().has_value());
    QCOMPARE(d.bytes_needed(), std::size_t{48'000'000 - 16});
    QVERIFY(largest_allocation.load() < 4096);

    // A configured lower limit applies the same way.
    wire::limits small;
    small.max_message_size = 50;
    wire::frame_decoder d2(small);
    d2.feed(ping_msg);  // 51 bytes
    QVERIFY_WIRE_ERROR(d2.next(), errc::message_too_large, "messageLength 51", "limit of 50 bytes");
}

void WireTest::error_frame_size_mismatch() {
    bytes longer = ping_msg;
    longer.push_back(0);
    QVERIFY_WIRE_ERROR(wire::decode_message(longer), errc::protocol_error, "messageLength 51",
                       "frame of 52 bytes");
    QVERIFY_WIRE_ERROR(wire::decode_message(std::span(ping_msg).first(10)), errc::protocol_error,
                       "frame of 10 bytes");
}

void WireTest::error_unsupported_opcode() {
    bytes msg = ping_msg;
    put_i32(msg, 12, 2010);  // OP_COMMAND, long gone
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "unsupported opCode 2010", "byte 12");
}

// ---- OP_MSG errors --------------------------------------------------------------------

void WireTest::error_bad_checksum() {
    bytes msg = checksum_msg;
    msg[51] ^= 0x01;  // B2 instead of B3
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "checksum mismatch", "0x91A515B3",
                       "0x91A515B2", "byte 51");

    // A flipped payload bit is caught as well.
    bytes corrupted = checksum_msg;
    corrupted[26] = 'P';
    QVERIFY_WIRE_ERROR(wire::decode_message(corrupted), errc::protocol_error, "checksum mismatch",
                       "carries 0x91A515B3");
}

void WireTest::error_checksum_flag_without_room() {
    // flagBits with checksumPresent and nothing after: 20-byte message.
    bytes msg = {0x14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xDD, 0x07, 0, 0, 0x01, 0, 0, 0};
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "checksumPresent", "byte 20");
}

void WireTest::error_unknown_section_kind() {
    bytes msg = ping_msg;
    msg[20] = 2;
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "unknown section kind 2", "at byte 20");
}

void WireTest::error_two_body_sections() {
    bytes msg = ping_msg;
    msg.push_back(0x00);
    msg.insert(msg.end(), ping_body.begin(), ping_body.end());
    put_i32(msg, 0, static_cast<std::int32_t>(msg.size()));
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "second kind-0 (body) section at byte 51",
                       "first one is at byte 20");
}

void WireTest::error_missing_body_section() {
    // Only the kind-1 section of insert_msg.
    bytes msg(insert_msg.begin(), insert_msg.begin() + 20);
    msg.insert(msg.end(), insert_msg.begin() + 52, insert_msg.end());
    put_i32(msg, 0, static_cast<std::int32_t>(msg.size()));
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "no kind-0 (body) section");

    // No sections at all.
    bytes bare(ping_msg.begin(), ping_msg.begin() + 20);
    put_i32(bare, 0, 20);
    QVERIFY_WIRE_ERROR(wire::decode_message(bare), errc::protocol_error, "no kind-0 (body) section");
}

void WireTest::error_unknown_required_flag_bit() {
    for (int bit : {2, 8, 15}) {
        bytes msg = ping_msg;
        put_i32(msg, 16, 1 << bit);
        QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "required bit " + std::to_string(bit),
                           "at byte 16");
    }
}

void WireTest::optional_unknown_flag_bit_accepted() {
    bytes msg = ping_msg;
    put_i32(msg, 16, (1 << 17) | (1 << 16) | (1 << 1));
    const wire::message m = wire::decode_message(msg);
    QCOMPARE(m.as_msg()->flags, 0x00030002u);
    QVERIFY_BYTES(m.as_msg()->body, ping_body);
}

void WireTest::error_truncated_document() {
    // The body's 4-byte length is cut off after 2 bytes.
    bytes msg(ping_msg.begin(), ping_msg.begin() + 23);
    put_i32(msg, 0, 23);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "truncated body document",
                       "at byte 21", "only 2 bytes remain");

    // A document in a sequence cut off the same way (section shrunk to match).
    bytes seq(insert_msg.begin(), insert_msg.begin() + 70);
    put_i32(seq, 0, 70);
    put_i32(seq, 53, 17);  // 4 + 10 + 3 bytes of the first document
    QVERIFY_WIRE_ERROR(wire::decode_message(seq), errc::protocol_error,
                       "truncated document 0 of sequence \"documents\"", "at byte 67");

    // A frame cut short inside the body: its length says 30, only 20 remain.
    bytes shortened(ping_msg.begin(), ping_msg.end() - 10);
    put_i32(shortened, 0, static_cast<std::int32_t>(shortened.size()));
    QVERIFY_WIRE_ERROR(wire::decode_message(shortened), errc::protocol_error, "body document at byte 21",
                       "length 30", "only 20 bytes remain");
}

void WireTest::error_document_past_section_end() {
    // Sequence size one byte too small: the last document crosses the
    // section end although the message itself holds all of it.
    bytes msg = insert_msg;
    put_i32(msg, 53, 41);  // the section now ends at byte 94, one byte before the message does
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error,
                       "document 1 of sequence \"documents\" at byte 81", "length 14", "only 13 bytes remain",
                       "before byte 94");

    // Sequence size one byte too large: runs past the end of the message.
    bytes big = insert_msg;
    put_i32(big, 53, 43);
    QVERIFY_WIRE_ERROR(wire::decode_message(big), errc::protocol_error, "document sequence size 43 at byte 53",
                       "runs past the end");
}

void WireTest::error_document_bad_terminator() {
    bytes msg = ping_msg;
    msg[50] = 0x01;
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "body document at byte 21",
                       "does not end with 0x00", "found 0x01 at byte 50");
    bytes small = ping_msg;
    put_i32(small, 21, 4);
    QVERIFY_WIRE_ERROR(wire::decode_message(small), errc::protocol_error, "length 4", "minimum of 5");
}

void WireTest::error_document_over_size_limit() {
    wire::limits lim;
    lim.max_bson_object_size = 0;  // documents may then be up to 16 KiB (the command overhead)
    QCOMPARE(lim.max_document_size(), std::size_t{16384});
    const bytes ok_doc = make_doc(16384);
    const bytes big_doc = make_doc(16385);

    bytes ok_msg;
    wire::encode_op_msg(ok_msg, 1, 0, 0, ok_doc, {}, lim);
    QVERIFY(wire::decode_message(ok_msg, lim).as_msg() != nullptr);

    bytes msg;
    wire::encode_op_msg(msg, 1, 0, 0, big_doc);  // default limits accept it
    QVERIFY_WIRE_ERROR(wire::decode_message(msg, lim), errc::message_too_large, "body document at byte 21",
                       "length 16385", "limit of 16384 bytes");

    wire::op_reply r;
    r.documents = {a_doc, big_doc};
    bytes reply;
    wire::encode_op_reply(reply, 1, 0, r);
    QVERIFY_WIRE_ERROR(wire::decode_message(reply, lim), errc::message_too_large, "document 1 at byte 48",
                       "length 16385");

    bytes out;
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 0, big_doc, {}, lim), errc::message_too_large,
                       "body document is 16385 bytes", "limit of 16384 bytes");
    QVERIFY(out.empty());
}

void WireTest::error_sequence_size_past_message_end() {
    bytes msg = insert_msg;
    put_i32(msg, 53, 1000);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "document sequence size 1000 at byte 53",
                       "42 bytes remain");
    put_i32(msg, 53, 4);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "document sequence size 4 at byte 53",
                       "minimum of 5");
    // Identifier without a terminator inside the section.
    put_i32(msg, 53, 8);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "document sequence identifier",
                       "byte 57", "no NUL terminator before byte 61");
}

void WireTest::error_sequence_duplicate_identifier() {
    const std::vector<wire::document_sequence> seqs = {{"documents", {id1_doc}}, {"documents", {id2_doc}}};
    bytes out;
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 0, insert_body, seqs), errc::protocol_error,
                       "share the identifier \"documents\"");
    QVERIFY(out.empty());

    // Decoding: append a second "documents" sequence to insert_msg by hand.
    bytes msg = insert_msg;
    msg.insert(msg.end(), insert_msg.begin() + 52, insert_msg.end());
    put_i32(msg, 0, static_cast<std::int32_t>(msg.size()));
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error,
                       "duplicate document sequence identifier \"documents\" at byte 100");
}

// ---- legacy opcode errors ----------------------------------------------------------------

void WireTest::error_op_reply_number_returned_mismatch() {
    bytes msg = two_doc_reply;
    put_i32(msg, 32, 3);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "numberReturned (at byte 32) is 3",
                       "holds 2 documents");
    put_i32(msg, 32, 1);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "numberReturned (at byte 32) is 1",
                       "more documents follow at byte 48");
    put_i32(msg, 32, -2);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "numberReturned -2", "negative");
    put_i32(msg, 32, 0x7FFFFFFF);  // must not reserve that many
    largest_allocation = 0;
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "is 2147483647");
    QVERIFY(largest_allocation.load() < 4096);
}

void WireTest::error_op_query_trailing_bytes() {
    bytes msg = hello_query;
    msg.insert(msg.end(), {0x05, 0x00, 0x00, 0x00, 0x00, 0xAB});  // selector {} plus one stray byte
    put_i32(msg, 0, static_cast<std::int32_t>(msg.size()));
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "1 unexpected bytes", "at byte 60");

    bytes unterminated(hello_query.begin(), hello_query.begin() + 25);  // name cut in the middle
    put_i32(unterminated, 0, 25);
    QVERIFY_WIRE_ERROR(wire::decode_message(unterminated), errc::protocol_error,
                       "fullCollectionName starting at byte 20", "no NUL terminator");
}

// ---- OP_COMPRESSED errors ---------------------------------------------------------------

void WireTest::error_unknown_compressor_id() {
    bytes msg = compressed_ping;
    msg[24] = 3;  // zstd: a known id, but not registered here
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::compression_error, "unknown compressorId 3",
                       "at byte 24", "registered compressors: noop");
    wire::compressor_registry empty;
    msg[24] = 0;
    QVERIFY_WIRE_ERROR(wire::decode_message(msg, {}, &empty), errc::compression_error, "unknown compressorId 0",
                       "registered compressors: none");
}

void WireTest::error_decompressed_size_mismatch() {
    bytes msg = compressed_ping;
    put_i32(msg, 20, 36);  // one more than the 35 bytes carried
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::compression_error, "\"noop\"", "into 35 bytes",
                       "uncompressedSize (at byte 20) says 36");
    put_i32(msg, 20, 34);  // one less: the noop compressor refuses to overrun it
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::compression_error, "payload is 35 bytes",
                       "uncompressedSize of 34");

    wire::compressor_registry reg;
    reg.add(std::make_shared<padding_compressor>());
    bytes padded;
    wire::encode_compressed(padded, ping_msg, padding_compressor());
    QVERIFY_WIRE_ERROR(wire::decode_message(padded, {}, &reg), errc::compression_error, "\"padding\" (id 9)",
                       "into 38 bytes", "says 35");
}

void WireTest::error_uncompressed_size_over_limit_before_decompressing() {
    auto spy = std::make_shared<spy_compressor>();
    wire::compressor_registry reg;
    reg.add(spy);

    bytes msg = compressed_ping;
    put_i32(msg, 20, 0x7FFFFFF0);
    largest_allocation = 0;
    QVERIFY_WIRE_ERROR(wire::decode_message(msg, {}, &reg), errc::message_too_large, "uncompressedSize 2147483632",
                       "at byte 20", "limit of 48000000 bytes");
    QVERIFY(!spy->called);
    QVERIFY(largest_allocation.load() < 4096);

    put_i32(msg, 20, -1);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg, {}, &reg), errc::protocol_error, "uncompressedSize -1",
                       "negative");
    QVERIFY(!spy->called);

    put_i32(msg, 20, 35);
    QVERIFY(wire::decode_message(msg, {}, &reg).as_msg() != nullptr);
    QVERIFY(spy->called);
}

void WireTest::error_nested_compression() {
    bytes msg = compressed_ping;
    put_i32(msg, 16, 2012);
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "originalOpcode (at byte 16)",
                       "nested compression");
    put_i32(msg, 16, 2004);  // claims OP_QUERY: the inner body then fails to parse as one
    QVERIFY_WIRE_ERROR(wire::decode_message(msg), errc::protocol_error, "OP_QUERY inside OP_COMPRESSED");

    bytes out;
    QVERIFY_WIRE_ERROR(wire::encode_compressed(out, compressed_ping, wire::noop_compressor()),
                       errc::protocol_error, "already OP_COMPRESSED");
    QVERIFY(out.empty());
}

// ---- encoder errors ----------------------------------------------------------------------

void WireTest::encode_errors_leave_output_unchanged() {
    const bytes before = {9, 8, 7};
    bytes out = before;

    bytes bad_len = ping_body;
    put_i32(bad_len, 0, 31);
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 0, bad_len), errc::protocol_error,
                       "body document has length field 31", "spans 30 bytes");
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 1u << 3, ping_body), errc::protocol_error, "required bit 3");

    bytes unterminated = ping_body;
    unterminated.back() = 0x7F;
    const std::vector<wire::document_sequence> seqs = {{"documents", {id1_doc, unterminated}}};
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 0, insert_body, seqs), errc::protocol_error,
                       "document 1 of sequence \"documents\"", "found 0x7F");

    const std::vector<wire::document_sequence> nul_id = {{std::string_view("doc\0x", 5), {id1_doc}}};
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 0, insert_body, nul_id), errc::protocol_error,
                       "identifier \"doc\\x00x\"", "NUL byte at its offset 3");

    wire::limits lim;
    lim.max_message_size = 50;
    QVERIFY_WIRE_ERROR(wire::encode_op_msg(out, 1, 0, 0, ping_body, {}, lim), errc::message_too_large,
                       "would be 51 bytes", "limit of 50 bytes");
    QVERIFY_WIRE_ERROR(wire::encode_op_query(out, 1, 0, {0, "admin.$cmd", 0, -1, bytes{1, 2, 3}, std::nullopt}),
                       errc::protocol_error, "query document is 3 bytes");
    wire::op_reply r;
    r.documents = {a_doc, bad_len};
    QVERIFY_WIRE_ERROR(wire::encode_op_reply(out, 1, 0, r), errc::protocol_error, "document 1 has length field 31");

    // Compression whose result goes over the limit is rolled back.
    lim.max_message_size = 55;
    QVERIFY_WIRE_ERROR(wire::encode_compressed(out, ping_msg, wire::noop_compressor(), lim),
                       errc::message_too_large, "would be 60 bytes");
    bytes wrong_length = ping_msg;
    put_i32(wrong_length, 0, 50);
    QVERIFY_WIRE_ERROR(wire::encode_compressed(out, wrong_length, wire::noop_compressor()), errc::protocol_error,
                       "messageLength 50", "51 bytes");
    QVERIFY_BYTES(out, before);
}

// ---- responseTo, request ids, registry ---------------------------------------------------

void WireTest::response_to_check() {
    const wire::message m = wire::decode_message(two_doc_reply);
    wire::check_response_to(m, 3);  // matches: no exception
    QVERIFY_WIRE_ERROR(wire::check_response_to(m, 4), errc::protocol_error, "responseTo 3", "requestID 4",
                       "OP_REPLY");
    const wire::message reply = wire::decode_message(ping_msg);  // responseTo 0
    QVERIFY_WIRE_ERROR(wire::check_response_to(reply.header, 12345), errc::protocol_error, "responseTo 0",
                       "requestID 12345");
}

void WireTest::request_id_generator_wraps_positive() {
    wire::request_id_generator gen(0x7FFFFFFE);
    QCOMPARE(gen.next(), 0x7FFFFFFE);
    QCOMPARE(gen.next(), 0x7FFFFFFF);
    QCOMPARE(gen.next(), 1);
    QCOMPARE(gen.next(), 2);

    wire::request_id_generator from_zero(0);
    QCOMPARE(from_zero.next(), 1);

    const std::int32_t a = wire::next_request_id();
    const std::int32_t b = wire::next_request_id();
    QVERIFY(a > 0);
    QCOMPARE(b, a + 1);
}

void WireTest::compressor_registry_lookup_and_duplicates() {
    wire::compressor_registry reg = wire::compressor_registry::with_builtins();
    QCOMPARE(reg.size(), std::size_t{1});
    QVERIFY(reg.find(std::uint8_t{0}) != nullptr);
    QCOMPARE(reg.find(std::uint8_t{0})->name(), std::string_view("noop"));
    QVERIFY(reg.find("noop") != nullptr);
    QVERIFY(reg.find(std::uint8_t{1}) == nullptr);
    QVERIFY(reg.find("snappy") == nullptr);

    reg.add(std::make_shared<xor_compressor>());
    QCOMPARE(reg.find(std::uint8_t{42})->name(), std::string_view("xor"));
    QCOMPARE(reg.find("xor")->id(), std::uint8_t{42});
    QCOMPARE(reg.names(), (std::vector<std::string_view>{"noop", "xor"}));

    QVERIFY_WIRE_ERROR(reg.add(std::make_shared<spy_compressor>()), errc::compression_error,
                       "compressor id 0 (\"spy\") is already registered as \"noop\"");
    QVERIFY_WIRE_ERROR(reg.add(std::make_shared<xor_compressor>()), errc::compression_error, "id 42");
    QVERIFY_WIRE_ERROR(reg.add(nullptr), errc::compression_error, "null compressor");
    QCOMPARE(reg.size(), std::size_t{2});

    // Compress and decompress directly.
    const wire::noop_compressor noop;
    bytes out = {1};
    noop.compress(ping_body, out);
    QCOMPARE(out.size(), ping_body.size() + 1);
    bytes back;
    noop.decompress(std::span(out).subspan(1), ping_body.size(), back);
    QVERIFY_BYTES(back, ping_body);
}

void WireTest::compressible_commands() {
    for (const char* name : {"hello", "isMaster", "ismaster", "saslStart", "saslContinue", "getnonce", "authenticate",
                             "createUser", "updateUser", "copydbSaslStart", "copydbgetnonce", "copydb"}) {
        QVERIFY2(!wire::is_compressible_command(name), name);
    }
    for (const char* name : {"find", "insert", "ping", "aggregate", "helloworld", "hell", ""}) {
        QVERIFY2(wire::is_compressible_command(name), name);
    }
}

QTEST_APPLESS_MAIN(WireTest)

#include "wire_test.moc"
