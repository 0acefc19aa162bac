// Hex digits, shared by ObjectId, UUID and Extended JSON parsing.
#pragma once

namespace trellis::bson::detail {

/// The value of a hex digit of either case, or -1.
constexpr int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline constexpr char hex_lower[] = "0123456789abcdef";

}  // namespace trellis::bson::detail
