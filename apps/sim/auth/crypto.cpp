#include "auth/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <climits>
#include <stdexcept>

namespace trellis::sim::auth {

namespace {

const EVP_MD* md(hash_algorithm h) noexcept { return h == hash_algorithm::sha1 ? EVP_sha1() : EVP_sha256(); }

constexpr std::string_view base64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// -1 for characters outside the alphabet (including '=').
constexpr std::array<std::int8_t, 256> make_base64_table() {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (std::size_t i = 0; i < base64_alphabet.size(); ++i)
        t[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}
constexpr auto base64_table = make_base64_table();

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

std::string base64_encode(std::span<const std::uint8_t> data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
        out.push_back(base64_alphabet[(v >> 18) & 63]);
        out.push_back(base64_alphabet[(v >> 12) & 63]);
        out.push_back(base64_alphabet[(v >> 6) & 63]);
        out.push_back(base64_alphabet[v & 63]);
    }
    if (const std::size_t rest = data.size() - i; rest != 0) {
        const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (rest == 2 ? std::uint32_t{data[i + 1]} << 8 : 0);
        out.push_back(base64_alphabet[(v >> 18) & 63]);
        out.push_back(base64_alphabet[(v >> 12) & 63]);
        out.push_back(rest == 2 ? base64_alphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::optional<bytes> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    bytes out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        int pad = 0;
        if (last) pad = (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=');
        std::uint32_t v = 0;
        for (int k = 0; k < 4 - pad; ++k) {
            const std::int8_t d = base64_table[static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)])];
            if (d < 0) return std::nullopt;
            v |= static_cast<std::uint32_t>(d) << (18 - 6 * k);
        }
        out.push_back(static_cast<std::uint8_t>(v >> 16));
        if (pad < 2) out.push_back(static_cast<std::uint8_t>(v >> 8));
        if (pad < 1) out.push_back(static_cast<std::uint8_t>(v));
        // Bits below the last whole byte must be zero: otherwise two texts would decode to the same bytes.
        if ((pad == 1 && (v & 0xFF) != 0) || (pad == 2 && (v & 0xFFFF) != 0)) return std::nullopt;
    }
    return out;
}

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
