// Compressor "zstd" (compressorId 3) for OP_COMPRESSED: one or more zstd frames. Settings:
// {level: int} (zstd's levels, 1 to 22 and the negative fast levels; 0 or unset: zstd's default).
#include <zstd.h>
#include <zstd_errors.h>

#include <cstdint>
#include <string>

#include "trellis/errors.hpp"
#include "trellis/sdk/compressor.hpp"

namespace {

namespace sdk = trellis::sdk;

[[noreturn]] void fail(const std::string& why) {
    throw trellis::error(trellis::errc::compression_error, "zstd: " + why);
}

class zstd_compressor final : public sdk::compressor {
public:
    explicit zstd_compressor(const sdk::plugin_context& ctx) {
        for (const auto& e : ctx.settings) {
            if (e.key() != "level")
                throw trellis::configuration_error("compressor zstd: unknown setting \"" + std::string(e.key()) +
                                                   "\" (the only one is level)");
            const std::string range = std::to_string(ZSTD_minCLevel()) + " to " + std::to_string(ZSTD_maxCLevel());
            if (!e.is_number()) throw trellis::configuration_error("compressor zstd: level must be an integer from " + range);
            const auto v = e.as_int64();
            if (v < ZSTD_minCLevel() || v > ZSTD_maxCLevel())
                throw trellis::configuration_error("compressor zstd: level must be from " + range + ", got " +
                                                   std::to_string(v));
            level_ = static_cast<int>(v);
        }
    }

    std::uint8_t id() const override { return sdk::compressor_ids::zstd; }
    std::string_view name() const override { return "zstd"; }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        const std::size_t bound = ZSTD_compressBound(in.size());
        if (ZSTD_isError(bound)) fail("message of " + std::to_string(in.size()) + " bytes is too large to compress");
        const std::size_t start = out.size();
        out.resize(start + bound);
        const std::size_t rc = ZSTD_compress(out.data() + start, bound, in.data(), in.size(), level_);
        if (ZSTD_isError(rc)) {
            out.resize(start);
            fail(std::string("compression failed: ") + ZSTD_getErrorName(rc));
        }
        out.resize(start + rc);
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        // The first frame's header: a zstd frame at all, and (when it records one) its size.
        const unsigned long long content = ZSTD_getFrameContentSize(in.data(), in.size());
        if (content == ZSTD_CONTENTSIZE_ERROR)
            fail("invalid compressed data: the " + std::to_string(in.size()) +
                 "-byte payload does not start with a zstd frame header");
        if (content != ZSTD_CONTENTSIZE_UNKNOWN && content > uncompressed_size)
            fail("invalid compressed data: its frame holds " + std::to_string(content) +
                 " bytes but uncompressedSize says " + std::to_string(uncompressed_size));
        const std::size_t start = out.size();
        out.resize(start + uncompressed_size);
        // The capacity is the announced size: zstd stops with an error rather than write more.
        const std::size_t rc = ZSTD_decompress(out.data() + start, uncompressed_size, in.data(), in.size());
        if (ZSTD_isError(rc)) {
            out.resize(start);
            const auto code = ZSTD_getErrorCode(rc);
            fail("invalid compressed data: " +
                 (code == ZSTD_error_dstSize_tooSmall
                      ? "more data than the announced uncompressedSize of " + std::to_string(uncompressed_size) + " bytes"
                  : code == ZSTD_error_srcSize_wrong ? std::string("the payload ends inside a zstd frame (truncated)")
                                                     : std::string(ZSTD_getErrorName(rc))));
        }
        if (rc != uncompressed_size) {
            out.resize(start);
            fail("invalid compressed data: it decompresses to " + std::to_string(rc) +
                 " bytes but uncompressedSize says " + std::to_string(uncompressed_size));
        }
    }

private:
    int level_ = ZSTD_CLEVEL_DEFAULT;
};

}  // namespace

TRELLIS_PLUGIN(compressor, "zstd", "1.0.0", "zstd compression for OP_COMPRESSED (compressorId 3)", zstd_compressor)
