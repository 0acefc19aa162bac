// Compressor "zlib" (compressorId 2) for OP_COMPRESSED, with zlib's streaming API so that the
// level (zlibCompressionLevel, -1 to 9) can be chosen and a peer's announced size is never
// exceeded while inflating. Settings: {level: int} (the [plugins.zlib] table, or the kernel
// passes the URI's zlibCompressionLevel).
#include <zlib.h>

#include <limits>
#include <string>

#include "trellis/errors.hpp"
#include "trellis/sdk/compressor.hpp"

namespace {

namespace sdk = trellis::sdk;

class zlib_compressor final : public sdk::compressor {
public:
    explicit zlib_compressor(const sdk::plugin_context& ctx) {
        if (auto l = ctx.settings.find("level")) {
            if (!l->is_number()) throw trellis::configuration_error("compressor zlib: level must be an integer from -1 to 9");
            const auto v = l->as_int64();
            if (v < -1 || v > 9)
                throw trellis::configuration_error("compressor zlib: level must be from -1 to 9, got " + std::to_string(v));
            level_ = static_cast<int>(v);
        }
    }

    std::uint8_t id() const override { return sdk::compressor_ids::zlib; }
    std::string_view name() const override { return "zlib"; }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        if (in.size() > std::numeric_limits<uInt>::max())
            throw trellis::error(trellis::errc::compression_error, "zlib: message too large to compress");
        z_stream zs{};
        if (deflateInit(&zs, level_) != Z_OK) throw trellis::error(trellis::errc::compression_error, "zlib: deflateInit failed");
        const std::size_t start = out.size();
        out.resize(start + deflateBound(&zs, static_cast<uLong>(in.size())));
        zs.next_in = const_cast<Bytef*>(in.data());
        zs.avail_in = static_cast<uInt>(in.size());
        zs.next_out = out.data() + start;
        zs.avail_out = static_cast<uInt>(out.size() - start);
        const int rc = deflate(&zs, Z_FINISH);
        const std::size_t produced = zs.total_out;
        deflateEnd(&zs);
        if (rc != Z_STREAM_END) {
            out.resize(start);
            throw trellis::error(trellis::errc::compression_error, "zlib: compression failed (" + std::to_string(rc) + ")");
        }
        out.resize(start + produced);
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        if (in.size() > std::numeric_limits<uInt>::max() || uncompressed_size > std::numeric_limits<uInt>::max())
            throw trellis::error(trellis::errc::compression_error, "zlib: message too large to decompress");
        z_stream zs{};
        if (inflateInit(&zs) != Z_OK) throw trellis::error(trellis::errc::compression_error, "zlib: inflateInit failed");
        const std::size_t start = out.size();
        out.resize(start + uncompressed_size);
        zs.next_in = const_cast<Bytef*>(in.data());
        zs.avail_in = static_cast<uInt>(in.size());
        zs.next_out = out.data() + start;
        zs.avail_out = static_cast<uInt>(uncompressed_size);
        const int rc = inflate(&zs, Z_FINISH);
        const std::size_t produced = zs.total_out;
        const char* msg = zs.msg;
        inflateEnd(&zs);
        if (rc != Z_STREAM_END || produced != uncompressed_size) {
            out.resize(start);
            // Z_BUF_ERROR: the input ran out before the stream's end (truncated), or the output
            // is full with input left (too much data).
            const bool ran_out = rc == Z_BUF_ERROR && zs.avail_in == 0;
            std::string why = ran_out ? "the data ends early (truncated) after " + std::to_string(produced) + " of the announced " +
                                            std::to_string(uncompressed_size) + " bytes"
                              : rc == Z_BUF_ERROR || (rc == Z_OK && produced == uncompressed_size)
                                  ? "more data than the announced " + std::to_string(uncompressed_size) + " bytes"
                              : rc == Z_STREAM_END ? std::to_string(produced) + " bytes where " + std::to_string(uncompressed_size) +
                                                         " were announced"
                                                   : std::string(msg != nullptr ? msg : zError(rc));
            throw trellis::error(trellis::errc::compression_error, "zlib: invalid compressed data: " + why);
        }
    }

private:
    int level_ = Z_DEFAULT_COMPRESSION;
};

}  // namespace

TRELLIS_PLUGIN(compressor, "zlib", "1.0.0", "zlib compression for OP_COMPRESSED (compressorId 2)", zlib_compressor)
