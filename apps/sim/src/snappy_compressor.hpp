// The simulator's own snappy compressor (compressorId 1): snappy's raw format, as mongod
// speaks it. Independent of the driver's compressor-snappy plugin.
#pragma once

#include <snappy.h>

#include <string>

#include "trellis/errors.hpp"
#include "wire/compression.hpp"

namespace trellis::sim {

class snappy_compressor final : public wire::compressor {
public:
    std::uint8_t id() const override { return 1; }
    std::string_view name() const override { return "snappy"; }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        std::string packed;
        snappy::Compress(reinterpret_cast<const char*>(in.data()), in.size(), &packed);
        out.insert(out.end(), packed.begin(), packed.end());
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        const auto* src = reinterpret_cast<const char*>(in.data());
        std::size_t length = 0;
        if (!snappy::GetUncompressedLength(src, in.size(), &length) || length != uncompressed_size)
            throw trellis::error(errc::compression_error, "snappy: invalid compressed data (its length preamble does not "
                                                          "match uncompressedSize " + std::to_string(uncompressed_size) + ")");
        std::string plain;
        if (!snappy::Uncompress(src, in.size(), &plain))
            throw trellis::error(errc::compression_error, "snappy: invalid compressed data (corrupt or truncated)");
        out.insert(out.end(), plain.begin(), plain.end());
    }
};

}  // namespace trellis::sim
