#include "auth/crypto.hpp"

#include "trellis/base64.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <climits>
#include <stdexcept>

namespace trellis::sim::auth {

namespace {

const EVP_MD* md(hash_algorithm h) noexcept { return h == hash_algorithm::sha1 ? EVP_sha1() : EVP_sha256(); }

int checked_int(std::size_t n, const char* what) {
    if (n > static_cast<std::size_t>(INT_MAX)) throw std::length_error(std::string(what) + " too long");
    return static_cast<int>(n);
}

}  // namespace

std::size_t digest_size(hash_algorithm h) noexcept { return h == hash_algorithm::sha1 ? 20 : 32; }

bytes digest(hash_algorithm h, std::span<const std::uint8_t> data) {
    bytes out(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &n, md(h), nullptr) != 1)
        throw std::runtime_error("EVP_Digest failed");
    out.resize(n);
    return out;
}

bytes hmac(hash_algorithm h, std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
    bytes out(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    // HMAC() refuses a null key pointer even for an empty key (and an empty span may hold one): give it a valid
    // address.
    static const std::uint8_t empty = 0;
    if (HMAC(md(h), key.empty() ? &empty : key.data(), checked_int(key.size(), "HMAC key"),
             data.empty() ? &empty : data.data(), data.size(), out.data(), &n) == nullptr)
        throw std::runtime_error("HMAC failed");
    out.resize(n);
    return out;
}

bytes salted_password(hash_algorithm h, std::string_view password, std::span<const std::uint8_t> salt,
                      int iterations) {
    if (iterations < 1) throw std::invalid_argument("SCRAM iteration count must be positive");
    bytes out(digest_size(h));
    if (PKCS5_PBKDF2_HMAC(password.data(), checked_int(password.size(), "password"), salt.data(),
                          checked_int(salt.size(), "salt"), iterations, md(h), static_cast<int>(out.size()),
                          out.data()) != 1)
        throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
    return out;
}

std::string md5_hex(std::string_view data) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), d, &n, EVP_md5(), nullptr) != 1)
        throw std::runtime_error("EVP_Digest(MD5) failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned int i = 0; i < n; ++i) {
        out.push_back(hex[d[i] >> 4]);
        out.push_back(hex[d[i] & 0x0F]);
    }
    return out;
}

std::string base64_encode(std::span<const std::uint8_t> data) { return trellis::base64::encode(data); }

std::optional<bytes> base64_decode(std::string_view text) { return trellis::base64::decode(text); }

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept {
    if (a.size() != b.size()) return false;
    std::uint8_t diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<std::uint8_t>(a[i] ^ b[i]);
    return diff == 0;
}

void openssl_random(std::span<std::uint8_t> out) {
    if (out.empty()) return;
    if (RAND_bytes(out.data(), checked_int(out.size(), "random request")) != 1)
        throw std::runtime_error("RAND_bytes failed");
}

}  // namespace trellis::sim::auth
