// ObjectId per the BSON ObjectId spec: 4-byte big-endian seconds, 5 random
// bytes chosen once per process, 3-byte big-endian counter starting at a
// random value. Generation is thread-safe and lock-free.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis::bson {

class oid {
public:
    static constexpr std::size_t size = 12;

    constexpr oid() noexcept = default;  // all zero bytes
    explicit oid(const std::uint8_t* bytes12) noexcept;
    explicit constexpr oid(const std::array<std::uint8_t, size>& bytes) noexcept : bytes_(bytes) {}

    /// A new, unique ObjectId for the current time.
    static oid generate();
    /// A new ObjectId for the given time (the seconds part only is used).
    static oid generate(std::chrono::system_clock::time_point when);

    /// 24 hex digits, either case; nullopt otherwise.
    static std::optional<oid> parse(std::string_view hex) noexcept;
    /// As parse(), but throws trellis::bson_error naming the bad input.
    static oid from_hex(std::string_view hex);

    std::string to_hex() const;
    void to_hex(char* out24) const noexcept;

    /// The creation time stored in the first four bytes.
    std::chrono::system_clock::time_point timestamp() const noexcept;

    const std::array<std::uint8_t, size>& bytes() const noexcept { return bytes_; }
    const std::uint8_t* data() const noexcept { return bytes_.data(); }

    friend constexpr bool operator==(const oid&, const oid&) noexcept = default;
    friend constexpr auto operator<=>(const oid&, const oid&) noexcept = default;

private:
    std::array<std::uint8_t, size> bytes_{};
};

}  // namespace trellis::bson
