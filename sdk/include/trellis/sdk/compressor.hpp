// Plugin kind "compressor": OP_COMPRESSED payloads (snappy, zlib, zstd).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "trellis/sdk/plugin.hpp"

namespace trellis::sdk {

/// Compressor ids of the compression spec.
namespace compressor_ids {
inline constexpr std::uint8_t noop = 0;
inline constexpr std::uint8_t snappy = 1;
inline constexpr std::uint8_t zlib = 2;
inline constexpr std::uint8_t zstd = 3;
}  // namespace compressor_ids

class TRELLIS_SDK_VISIBLE compressor : public plugin {
public:
    /// The compressorId on the wire.
    virtual std::uint8_t id() const = 0;
    /// The name negotiated in hello's "compression" list ("zlib", ...).
    virtual std::string_view name() const = 0;
    /// Appends the compressed form of in to out (never clears out).
    virtual void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const = 0;
    /// Appends the decompressed form of in to out (never clears out). uncompressed_size
    /// is what the sender announced: never produce more than that; throw trellis::error
    /// (errc::compression_error) for data that does not decompress. The codec checks
    /// the resulting size itself too.
    virtual void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                            std::vector<std::uint8_t>& out) const = 0;
};

}  // namespace trellis::sdk
