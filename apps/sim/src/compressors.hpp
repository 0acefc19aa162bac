// The simulator's compressors by name, each counting its bytes as mongod's serverStatus
// reports them (network.compression.<name>.compressor|decompressor.bytesIn|bytesOut).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "wire/compression.hpp"

namespace trellis::sim {

class counted_compressor final : public wire::compressor {
public:
    explicit counted_compressor(std::shared_ptr<const wire::compressor> inner) : inner_(std::move(inner)) {}

    std::uint8_t id() const override { return inner_->id(); }
    std::string_view name() const override { return inner_->name(); }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        const std::size_t before = out.size();
        inner_->compress(in, out);
        compressor_in += static_cast<std::int64_t>(in.size());
        compressor_out += static_cast<std::int64_t>(out.size() - before);
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        const std::size_t before = out.size();
        inner_->decompress(in, uncompressed_size, out);
        decompressor_in += static_cast<std::int64_t>(in.size());
        decompressor_out += static_cast<std::int64_t>(out.size() - before);
    }

    // Uncompressed bytes in and compressed bytes out; compressed in and uncompressed out.
    mutable std::atomic<std::int64_t> compressor_in{0}, compressor_out{0};
    mutable std::atomic<std::int64_t> decompressor_in{0}, decompressor_out{0};

private:
    std::shared_ptr<const wire::compressor> inner_;
};

/// The names sim_config::compressors accepts.
inline constexpr const char* known_compressors = "snappy, zlib, zstd";

/// The simulator's compressor called name, counted; nullptr for a name it does not have.
std::shared_ptr<counted_compressor> make_compressor(std::string_view name);

}  // namespace trellis::sim
