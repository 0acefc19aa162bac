// Base64 (RFC 4648 section 4, padded): the one implementation Extended JSON ($binary), SCRAM
// and trellis-sim use.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::base64 {

/// Appends the encoding of `data` to `out`.
void append(std::span<const std::uint8_t> data, std::string& out);
std::string encode(std::span<const std::uint8_t> data);
inline std::string encode(std::string_view data) {
    return encode(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

/// Strict decoding: a multiple of four characters, padding only at the end, no other
/// character, and zero bits below the last byte (so that one text means one byte string).
/// nullopt for anything else.
std::optional<std::vector<std::uint8_t>> decode(std::string_view text);

}  // namespace trellis::base64
