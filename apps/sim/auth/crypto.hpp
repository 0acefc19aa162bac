// The cryptographic primitives SCRAM needs (RFC 5802 section 2.2), on top of
// OpenSSL's libcrypto, plus the strict base64 SCRAM messages use.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::sim::auth {

using bytes = std::vector<std::uint8_t>;

enum class hash_algorithm { sha1, sha256 };

/// 20 for SHA-1, 32 for SHA-256.
std::size_t digest_size(hash_algorithm h) noexcept;

/// The bytes of a string, viewed as unsigned.
inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const std::uint8_t> b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// H(data).
bytes digest(hash_algorithm h, std::span<const std::uint8_t> data);
/// HMAC(key, data).
bytes hmac(hash_algorithm h, std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);
/// Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC-H and one block of output.
bytes salted_password(hash_algorithm h, std::string_view password, std::span<const std::uint8_t> salt, int iterations);
/// Lower-case hex of MD5(data).
std::string md5_hex(std::string_view data);

/// Standard base64 with padding (RFC 4648 section 4).
std::string base64_encode(std::span<const std::uint8_t> data);
/// Strict: the length must be a multiple of 4, padding only at the end, no whitespace. nullopt otherwise.
std::optional<bytes> base64_decode(std::string_view text);

/// Compares without an early exit, so timing does not tell how much of a proof was right.
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

/// Fills its argument with random bytes. Injectable so that tests are deterministic.
using random_source = std::function<void(std::span<std::uint8_t>)>;
/// OpenSSL's RAND_bytes; throws std::runtime_error if the generator fails.
void openssl_random(std::span<std::uint8_t> out);
/// `r` if set, openssl_random otherwise.
inline random_source or_default(random_source r) {
    return r ? std::move(r) : random_source(&openssl_random);
}

}  // namespace trellis::sim::auth
