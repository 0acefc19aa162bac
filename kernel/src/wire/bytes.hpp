// Little-endian integer access for wire protocol buffers.
//
// Everything goes through memcpy so that reads and writes at arbitrary
// offsets stay well-defined (no unaligned pointer casts), and byte order is
// fixed explicitly so the code is correct on any host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace trellis::wire {

using byte = std::uint8_t;
using bytes_view = std::span<const byte>;

/// An allocator whose value-less construct leaves the object uninitialized: a vector of bytes
/// grown with it is not zero-filled first (a receive buffer is written by the read at once).
template <class T>
struct uninitialized_allocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = uninitialized_allocator<U>;
    };
    uninitialized_allocator() noexcept = default;
    template <class U>
    uninitialized_allocator(const uninitialized_allocator<U>&) noexcept {}
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        if constexpr (sizeof...(Args) == 0) ::new (static_cast<void*>(p)) U;
        else ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

/// The bytes of a received frame.
using frame_bytes = std::vector<byte, uninitialized_allocator<byte>>;

namespace detail {

template <typename T>
concept wire_integer = std::is_integral_v<T> && (sizeof(T) == 1 || sizeof(T) == 4 || sizeof(T) == 8);

}  // namespace detail

/// Reads a little-endian integer at p (no alignment requirement).
template <detail::wire_integer T>
inline T load_le(const byte* p) noexcept {
    using U = std::make_unsigned_t<T>;
    U value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        value |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
    }
    T out;
    std::memcpy(&out, &value, sizeof(T));
    return out;
}

/// Writes a little-endian integer at p (no alignment requirement).
template <detail::wire_integer T>
inline void store_le(byte* p, T value) noexcept {
    using U = std::make_unsigned_t<T>;
    U bits;
    std::memcpy(&bits, &value, sizeof(T));
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        p[i] = static_cast<byte>(bits >> (8 * i));
    }
}

/// Appends a little-endian integer to out.
template <detail::wire_integer T>
inline void append_le(std::vector<byte>& out, T value) {
    const std::size_t at = out.size();
    out.resize(at + sizeof(T));
    store_le(out.data() + at, value);
}

inline void append_bytes(std::vector<byte>& out, bytes_view data) {
    out.insert(out.end(), data.begin(), data.end());
}

/// Appends s followed by a NUL terminator (a BSON/wire "cstring").
inline void append_cstring(std::vector<byte>& out, std::string_view s) {
    out.insert(out.end(), s.begin(), s.end());
    out.push_back(0);
}

/// "0x1234ABCD" — used in error messages for checksums and flag words.
inline std::string to_hex(std::uint32_t value) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string s = "0x00000000";
    for (int i = 0; i < 8; ++i) {
        s[9 - i] = digits[(value >> (4 * i)) & 0xF];
    }
    return s;
}

}  // namespace trellis::wire
