// CRC-32C (Castagnoli), the checksum of OP_MSG's checksumPresent flag.
#pragma once

#include <cstdint>
#include <span>

namespace trellis::wire {

/// CRC-32C of data. seed is the CRC of the bytes before data, so a buffer can
/// be checksummed in pieces: crc32c(b, crc32c(a)) == crc32c(a followed by b).
/// Uses the SSE4.2 crc32 instruction when the CPU has it, tables otherwise.
std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t seed = 0) noexcept;

namespace detail {

// The two implementations, exposed so tests can check that they agree.
std::uint32_t crc32c_portable(std::span<const std::uint8_t> data, std::uint32_t seed) noexcept;
bool crc32c_hardware_available() noexcept;
/// Only call when crc32c_hardware_available(); falls back to portable otherwise.
std::uint32_t crc32c_hardware(std::span<const std::uint8_t> data, std::uint32_t seed) noexcept;

}  // namespace detail
}  // namespace trellis::wire
