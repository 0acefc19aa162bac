// The simulator's own zlib compressor (compressorId 2), so that drivers that
// negotiate compression exercise OP_COMPRESSED against it. The driver's
// compressors come as plugins; the simulator must not depend on them.
#pragma once

#include <zlib.h>

#include "trellis/errors.hpp"
#include "wire/compression.hpp"

namespace trellis::sim {

class zlib_compressor final : public wire::compressor {
public:
    std::uint8_t id() const override { return 2; }
    std::string_view name() const override { return "zlib"; }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        uLongf size = compressBound(static_cast<uLong>(in.size()));
        const std::size_t start = out.size();
        out.resize(start + size);
        if (compress2(out.data() + start, &size, in.data(), static_cast<uLong>(in.size()), Z_DEFAULT_COMPRESSION) != Z_OK)
            throw trellis::error(errc::compression_error, "zlib: compression failed");
        out.resize(start + size);
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        const std::size_t start = out.size();
        out.resize(start + uncompressed_size);
        uLongf size = static_cast<uLongf>(uncompressed_size);
        const int rc = uncompress(out.data() + start, &size, in.data(), static_cast<uLong>(in.size()));
        if (rc != Z_OK || size != uncompressed_size)
            throw trellis::error(errc::compression_error, "zlib: invalid compressed data (" + std::string(zError(rc)) + ")");
    }
};

}  // namespace trellis::sim
