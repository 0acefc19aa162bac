// The simulator's own zstd compressor (compressorId 3), with zstd's streaming API.
// Independent of the driver's compressor-zstd plugin.
#pragma once

#include <zstd.h>

#include <memory>
#include <string>

#include "trellis/errors.hpp"
#include "wire/compression.hpp"

namespace trellis::sim {

class zstd_compressor final : public wire::compressor {
public:
    std::uint8_t id() const override { return 3; }
    std::string_view name() const override { return "zstd"; }

    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const override {
        const std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
        if (!cctx) throw trellis::error(errc::compression_error, "zstd: out of memory");
        ZSTD_inBuffer src{in.data(), in.size(), 0};
        const std::size_t start = out.size();
        std::size_t left = 0;
        do {
            const std::size_t used = out.size();
            out.resize(used + ZSTD_CStreamOutSize());
            ZSTD_outBuffer dst{out.data() + used, out.size() - used, 0};
            left = ZSTD_compressStream2(cctx.get(), &dst, &src, ZSTD_e_end);
            out.resize(used + dst.pos);
            if (ZSTD_isError(left)) {
                out.resize(start);
                throw trellis::error(errc::compression_error, std::string("zstd: ") + ZSTD_getErrorName(left));
            }
        } while (left != 0);
    }

    void decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                    std::vector<std::uint8_t>& out) const override {
        const std::size_t start = out.size();
        out.resize(start + uncompressed_size);
        const std::size_t n = ZSTD_decompress(out.data() + start, uncompressed_size, in.data(), in.size());
        if (ZSTD_isError(n) || n != uncompressed_size) {
            out.resize(start);
            throw trellis::error(errc::compression_error,
                                 "zstd: invalid compressed data (" +
                                     (ZSTD_isError(n) ? std::string(ZSTD_getErrorName(n))
                                                      : std::to_string(n) + " bytes, uncompressedSize " +
                                                            std::to_string(uncompressed_size)) + ")");
        }
    }
};

}  // namespace trellis::sim
