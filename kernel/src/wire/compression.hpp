// Compressors for OP_COMPRESSED and the registry that finds them by id/name.
//
// Only the identity compressor ("noop", id 0) lives here; snappy, zlib and
// zstd arrive later as plugins that implement the same interface.
#pragma once

#include "trellis/sdk/compressor.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace trellis::wire {

// The compressor interface and the spec's compressor ids are the SDK's:
// compressors come as plugins.
namespace compressor_ids = sdk::compressor_ids;
using compressor = sdk::compressor;

/// Identity "compression": the payload is carried as-is. Useful for tests and
/// for exercising the OP_COMPRESSED path without a codec library.
class noop_compressor final : public compressor {
public:
    std::uint8_t id() const override { return compressor_ids::noop; }
    std::string_view name() const override { return "noop"; }
    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override;
    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override;
};

/// Compressors by id and by name. Built once (add() is not thread-safe), then
/// shared read-only between connections; lookups are safe concurrently.
class compressor_registry {
public:
    compressor_registry() = default;

    /// A registry holding the built-in noop compressor.
    static compressor_registry with_builtins();

    /// Adds c. compression_error if c is null or its id or name is taken.
    void add(std::shared_ptr<const compressor> c);

    /// nullptr when absent.
    std::shared_ptr<const compressor> find(std::uint8_t id) const noexcept;
    std::shared_ptr<const compressor> find(std::string_view name) const noexcept;

    /// Registered names in the order they were added (for the hello
    /// "compression" list).
    std::vector<std::string_view> names() const;

    std::size_t size() const noexcept { return entries_.size(); }

private:
    std::vector<std::shared_ptr<const compressor>> entries_;
};

/// The registry decoders use when the caller gives none: noop only.
const compressor_registry& default_compressor_registry();

/// False for the commands the compression spec forbids compressing (hello,
/// isMaster and the authentication / user-management commands carrying
/// credentials); true otherwise. Compared ASCII case-insensitively so that
/// legacy spellings such as "ismaster" are caught too.
bool is_compressible_command(std::string_view command_name) noexcept;

}  // namespace trellis::wire
