// Compressor "snappy" (compressorId 1) for OP_COMPRESSED: snappy's raw format (a varint of the
// uncompressed length, then the compressed blocks), as MongoDB sends it. No settings.
#include <snappy.h>

#include <cstdint>
#include <limits>
#include <string>

#include "trellis/errors.hpp"
#include "trellis/sdk/compressor.hpp"

namespace {

namespace sdk = trellis::sdk;

[[noreturn]] void fail(const std::string& why) {
    throw trellis::error(trellis::errc::compression_error, "snappy: " + why);
}

class snappy_compressor final : public sdk::compressor {
public:
    explicit snappy_compressor(const sdk::plugin_context& ctx) {
        for (const auto& e : ctx.settings)
            throw trellis::configuration_error("compressor snappy: unknown setting \"" + std::string(e.key()) +
                                               "\" (snappy has no settings)");
    }

    std::uint8_t id() const override { return sdk::compressor_ids::snappy; }
    std::string_view name() const override { return "snappy"; }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        // The format's length preamble is 32 bits.
        if (in.size() > std::numeric_limits<std::uint32_t>::max())
            fail("message of " + std::to_string(in.size()) + " bytes is too large to compress");
        const std::size_t start = out.size();
        out.resize(start + snappy::MaxCompressedLength(in.size()));
        std::size_t produced = 0;
        snappy::RawCompress(reinterpret_cast<const char*>(in.data()), in.size(),
                            reinterpret_cast<char*>(out.data() + start), &produced);
        out.resize(start + produced);
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        const auto* src = reinterpret_cast<const char*>(in.data());
        std::size_t announced = 0;
        if (!snappy::GetUncompressedLength(src, in.size(), &announced))
            fail("invalid compressed data: the " + std::to_string(in.size()) +
                 "-byte payload does not start with a valid length");
        // The data's own length must match what the message header announced; it is checked
        // before anything is allocated.
        if (announced != uncompressed_size)
            fail("invalid compressed data: it decompresses to " + std::to_string(announced) +
                 " bytes but uncompressedSize says " + std::to_string(uncompressed_size));
        const std::size_t start = out.size();
        out.resize(start + uncompressed_size);
        if (!snappy::RawUncompress(src, in.size(), reinterpret_cast<char*>(out.data() + start))) {
            out.resize(start);
            fail("invalid compressed data: the " + std::to_string(in.size()) + "-byte payload is corrupt or truncated");
        }
    }
};

}  // namespace

TRELLIS_PLUGIN(compressor, "snappy", "1.0.0", "snappy compression for OP_COMPRESSED (compressorId 1)", snappy_compressor)
