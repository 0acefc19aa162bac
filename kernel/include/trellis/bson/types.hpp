// BSON element types and the small value types that stand for them.
//
// Values that point into a document (strings, binary data, regex parts, code)
// are views: they live as long as the bytes they were read from.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "trellis/bson/decimal128.hpp"
#include "trellis/bson/oid.hpp"

namespace trellis::bson {

enum class type : std::uint8_t {
    double_ = 0x01,
    string = 0x02,
    document = 0x03,
    array = 0x04,
    binary = 0x05,
    undefined = 0x06,  // deprecated
    oid = 0x07,
    boolean = 0x08,
    date_time = 0x09,
    null = 0x0A,
    regex = 0x0B,
    db_pointer = 0x0C,  // deprecated
    code = 0x0D,
    symbol = 0x0E,        // deprecated
    code_w_scope = 0x0F,  // deprecated
    int32 = 0x10,
    timestamp = 0x11,
    int64 = 0x12,
    decimal128 = 0x13,
    min_key = 0xFF,
    max_key = 0x7F,
};

/// "double", "string", ... as the BSON spec names them; "0xNN" for a byte that is no type.
std::string_view type_name(type t) noexcept;

/// True when the byte is one of the types above.
constexpr bool is_known_type(std::uint8_t b) noexcept { return (b >= 0x01 && b <= 0x13) || b == 0x7F || b == 0xFF; }

namespace binary_subtype {
inline constexpr std::uint8_t generic = 0x00;
inline constexpr std::uint8_t function = 0x01;
inline constexpr std::uint8_t binary_old = 0x02;  // deprecated: an int32 length inside the data
inline constexpr std::uint8_t uuid_old = 0x03;
inline constexpr std::uint8_t uuid = 0x04;
inline constexpr std::uint8_t md5 = 0x05;
inline constexpr std::uint8_t encrypted = 0x06;
inline constexpr std::uint8_t column = 0x07;
inline constexpr std::uint8_t sensitive = 0x08;
inline constexpr std::uint8_t vector = 0x09;
inline constexpr std::uint8_t user_defined = 0x80;
}  // namespace binary_subtype

struct null_t {
    friend constexpr bool operator==(null_t, null_t) noexcept { return true; }
};
struct undefined_t {
    friend constexpr bool operator==(undefined_t, undefined_t) noexcept { return true; }
};
struct min_key_t {
    friend constexpr bool operator==(min_key_t, min_key_t) noexcept { return true; }
};
struct max_key_t {
    friend constexpr bool operator==(max_key_t, max_key_t) noexcept { return true; }
};
inline constexpr null_t null{};
inline constexpr undefined_t undefined{};
inline constexpr min_key_t min_key{};
inline constexpr max_key_t max_key{};

/// UTC datetime: milliseconds since the Unix epoch.
struct date_time {
    std::int64_t milliseconds = 0;

    constexpr date_time() noexcept = default;
    constexpr explicit date_time(std::int64_t ms) noexcept : milliseconds(ms) {}
    template <class Duration>
    constexpr date_time(std::chrono::time_point<std::chrono::system_clock, Duration> tp) noexcept
        : milliseconds(std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count()) {}

    constexpr std::chrono::system_clock::time_point time_point() const noexcept {
        return std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::milliseconds(milliseconds)));
    }
    friend constexpr bool operator==(date_time, date_time) noexcept = default;
};

/// MongoDB internal timestamp: seconds and an increment. On the wire the
/// increment is the low 32 bits.
struct timestamp {
    std::uint32_t seconds = 0;
    std::uint32_t increment = 0;
    friend constexpr bool operator==(timestamp, timestamp) noexcept = default;
    friend constexpr auto operator<=>(timestamp, timestamp) noexcept = default;
};

/// Binary data. For the old subtype 0x02, bytes is the payload only: the
/// inner length BSON stores before it is written and checked by the library.
struct binary {
    std::uint8_t subtype = binary_subtype::generic;
    std::span<const std::uint8_t> bytes;
};

/// A UUID: 16 bytes, stored in BSON as binary subtype 4 (big-endian, RFC 4122 order).
struct uuid {
    std::array<std::uint8_t, 16> bytes{};

    /// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits of either case); nullopt otherwise.
    static std::optional<uuid> parse(std::string_view text) noexcept;
    /// Lower-case hyphenated form.
    std::string to_string() const;
    friend constexpr bool operator==(const uuid&, const uuid&) noexcept = default;
};

struct regex {
    std::string_view pattern;
    std::string_view options;
};

struct db_pointer {
    std::string_view collection;
    bson::oid id;
};

struct code {
    std::string_view javascript;
};

struct symbol {
    std::string_view value;
};

}  // namespace trellis::bson
