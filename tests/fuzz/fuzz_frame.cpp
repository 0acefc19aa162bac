// The wire frame decoder with every compressor. Input: byte 0 chooses how the stream is cut into
// chunks, byte 1 the limits and the announced size for raw decompression; the rest is the stream.
//   - each compressor (noop, and the snappy, zlib and zstd plugins): decompress(compress(x)) == x;
//     decompressing arbitrary bytes never yields more than the announced size (the plugins: exactly
//     that) or throws compression_error,
//     leaving what was already in the output untouched;
//   - frame_decoder, fed the stream in arbitrary chunks, yields the same messages as fed in one
//     piece; it fails only with trellis::error (protocol_error, message_too_large,
//     compression_error), stays failed with the same error, and every decoded message's spans lie
//     inside its own buffer, which is exactly messageLength bytes (ASan checks every read).
//
// The compressors are run-time plugins: they are created through a plugin_registry, which finds
// them in lib/trellis/plugins beside libtrellis (the build tree's). A missing one is a failure.
#include <functional>

#include "fuzz_check.hpp"
#include "trellis/errors.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdk/compressor.hpp"
#include "wire/frame_decoder.hpp"

namespace wire = trellis::wire;
namespace sdk = trellis::sdk;
using trellis::fuzz::hex;
using bytes = std::vector<std::uint8_t>;

namespace {

struct codecs {
    std::vector<std::shared_ptr<const sdk::compressor>> all;
    std::shared_ptr<wire::compressor_registry> registry;
};

const codecs& load() {
    static const codecs c = [] {
        codecs out;
        out.registry = std::make_shared<wire::compressor_registry>(wire::compressor_registry::with_builtins());
        out.all.push_back(out.registry->find(sdk::compressor_ids::noop));
        static trellis::plugin_registry plugins;  // kept: the objects keep their libraries loaded
        for (const char* name : {"snappy", "zlib", "zstd"}) {
            std::shared_ptr<const sdk::compressor> p;
            try {
                p = plugins.create_as<sdk::compressor>(sdk::plugin_kind::compressor, name);
            } catch (const trellis::error& e) {
                trellis::fuzz::broken(__FILE__, __LINE__, std::string("cannot load the compressor plugin: ") + e.what());
            }
            out.registry->add(p);
            out.all.push_back(p);
        }
        return out;
    }();
    return c;
}

bool in(std::span<const std::uint8_t> inner, std::span<const std::uint8_t> outer) {
    if (inner.empty()) return true;
    return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// A message's spans lie inside its buffer, which is exactly as long as its header says.
void check_message(const wire::message& m) {
    FUZZ_CHECK(m.buffer != nullptr, "a message without a buffer");
    const std::span<const std::uint8_t> buf = m.bytes();
    FUZZ_CHECK(buf.size() == static_cast<std::size_t>(m.header.message_length),
               "buffer of " + std::to_string(buf.size()) + " bytes, messageLength " + std::to_string(m.header.message_length));
    if (const auto* msg = m.as_msg()) {
        FUZZ_CHECK(in(msg->body, buf), "OP_MSG body outside the buffer");
        for (const auto& s : msg->sequences) {
            FUZZ_CHECK(s.identifier.empty() || in({reinterpret_cast<const std::uint8_t*>(s.identifier.data()), s.identifier.size()}, buf),
                       "sequence identifier outside the buffer");
            for (const auto& d : s.documents) FUZZ_CHECK(in(d, buf), "sequence document outside the buffer");
        }
    } else if (const auto* q = m.as_query()) {
        FUZZ_CHECK(in(q->query, buf), "OP_QUERY query outside the buffer");
        if (q->return_fields_selector) FUZZ_CHECK(in(*q->return_fields_selector, buf), "OP_QUERY selector outside the buffer");
    } else if (const auto* r = m.as_reply()) {
        for (const auto& d : r->documents) FUZZ_CHECK(in(d, buf), "OP_REPLY document outside the buffer");
    }
}

// Runs a decoder over the stream cut by `cut` (the next chunk's size, at least 1). Returns the
// messages' bytes, and the error text if it failed.
std::pair<std::vector<bytes>, std::string> decode(std::span<const std::uint8_t> stream, const wire::limits& lim,
                                                  const std::function<std::size_t()>& cut) {
    wire::frame_decoder dec(lim, load().registry);
    std::vector<bytes> out;
    std::size_t pos = 0;
    while (pos < stream.size()) {
        const std::size_t n = std::min(cut(), stream.size() - pos);
        if (n % 2 == 0) {
            dec.feed(stream.subspan(pos, n));
        } else {
            auto space = dec.prepare(n);
            FUZZ_CHECK(space.size() >= n, "prepare() gave less than asked");
            std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(pos), n, space.begin());
            dec.commit(n);
        }
        pos += n;
        try {
            while (auto m = dec.next()) {
                check_message(*m);
                out.emplace_back(m->bytes().begin(), m->bytes().end());
            }
        } catch (const trellis::error& e) {
            const std::string first = e.what();
            try {
                (void)dec.next();
                FUZZ_CHECK(false, "a failed decoder returned to work after: " + first);
            } catch (const trellis::error& again) {
                FUZZ_CHECK(first == again.what(), "a failed decoder changed its error: " + first + " / " + again.what());
            }
            return {out, first};
        }
    }
    return {out, {}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t cut_seed = data[0], knobs = data[1];
    const std::span<const std::uint8_t> payload(data + 2, size - 2);
    const codecs& c = load();

    for (const auto& codec : c.all) {
        bytes packed = {0xAB};  // output is appended to: a prefix must survive
        codec->compress(payload, packed);
        bytes unpacked = {0xCD};
        codec->decompress(std::span(packed).subspan(1), payload.size(), unpacked);
        FUZZ_CHECK(unpacked.size() == payload.size() + 1 && unpacked[0] == 0xCD &&
                       std::equal(payload.begin(), payload.end(), unpacked.begin() + 1),
                   std::string(codec->name()) + ": decompress(compress(x)) != x for " + hex(payload));

        // Arbitrary bytes as compressed data, with an announced size up to 64 KiB.
        const std::size_t announced = (static_cast<std::size_t>(knobs) << 8 | cut_seed) & 0xFFFF;
        bytes out = {0xEF};
        try {
            codec->decompress(payload, announced, out);
            // The contract: never more than announced. The plugins give exactly that or throw; noop
            // leaves a short payload to the codec's size check (which names the message's fields).
            const bool exact = codec->id() != sdk::compressor_ids::noop;
            FUZZ_CHECK(exact ? out.size() == announced + 1 : out.size() <= announced + 1,
                       std::string(codec->name()) + ": " + std::to_string(out.size() - 1) + " bytes where " +
                           std::to_string(announced) + " were announced");
        } catch (const trellis::error& e) {
            FUZZ_CHECK(e.code() == trellis::errc::compression_error, std::string(codec->name()) + ": wrong error: " + e.what());
            FUZZ_CHECK(out.size() == 1 && out[0] == 0xEF, std::string(codec->name()) + ": the output changed on failure");
        }
    }

    wire::limits lim;
    if (knobs & 1) {
        lim.max_message_size = 4096;
        lim.max_bson_object_size = 1024;
    }
    // Chunk sizes from a small linear congruential sequence seeded by byte 0.
    std::uint32_t state = cut_seed;
    auto chunks = [&state] {
        state = state * 1103515245u + 12345u;
        return static_cast<std::size_t>(1 + (state >> 16) % 37);
    };
    const auto whole = decode(payload, lim, [&] { return payload.size() + 1; });
    const auto pieces = decode(payload, lim, chunks);
    FUZZ_CHECK(whole.first == pieces.first, "chunking changed the decoded messages (" + std::to_string(whole.first.size()) +
                                                " vs " + std::to_string(pieces.first.size()) + ")");
    FUZZ_CHECK(whole.second == pieces.second, "chunking changed the error: \"" + whole.second + "\" vs \"" + pieces.second + "\"");
    return 0;
}
