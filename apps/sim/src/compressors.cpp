#include "compressors.hpp"

#include "snappy_compressor.hpp"
#include "zlib_compressor.hpp"
#include "zstd_compressor.hpp"

namespace trellis::sim {

std::shared_ptr<counted_compressor> make_compressor(std::string_view name) {
    std::shared_ptr<const wire::compressor> c;
    if (name == "snappy") c = std::make_shared<snappy_compressor>();
    else if (name == "zlib") c = std::make_shared<zlib_compressor>();
    else if (name == "zstd") c = std::make_shared<zstd_compressor>();
    else return nullptr;
    return std::make_shared<counted_compressor>(std::move(c));
}

}  // namespace trellis::sim
