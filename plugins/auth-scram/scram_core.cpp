#include "scram_core.hpp"

#include "trellis/base64.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

namespace trellis::auth_scram {

namespace {

const EVP_MD* md_of(hash_kind h) { return h == hash_kind::sha1 ? EVP_sha1() : EVP_sha256(); }

std::string as_string(const bytes& b) { return std::string(b.begin(), b.end()); }

bytes hmac(hash_kind h, std::string_view key, std::string_view data) {
    bytes out(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    if (!HMAC(md_of(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out.data(), &n))
        throw scram_error("HMAC failed");
    out.resize(n);
    return out;
}

bytes digest(const EVP_MD* md, std::string_view data) {
    bytes out(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    if (!EVP_Digest(data.data(), data.size(), out.data(), &n, md, nullptr)) throw scram_error("digest failed");
    out.resize(n);
    return out;
}

bytes hi(hash_kind h, std::string_view password, std::string_view salt, int iterations) {
    bytes out(static_cast<std::size_t>(EVP_MD_get_size(md_of(h))));
    if (!PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                           reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                           md_of(h), static_cast<int>(out.size()), out.data()))
        throw scram_error("PBKDF2 failed");
    return out;
}

// The attributes of a SCRAM message: "a=value,b=value".
std::optional<std::string> attribute(std::string_view message, char name) {
    std::size_t pos = 0;
    while (pos <= message.size()) {
        std::size_t end = message.find(',', pos);
        if (end == std::string_view::npos) end = message.size();
        const auto part = message.substr(pos, end - pos);
        if (part.size() >= 2 && part[0] == name && part[1] == '=') return std::string(part.substr(2));
        pos = end + 1;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------- SASLprep tables (RFC 3454)

struct range {
    char32_t first, last;
};

bool in(const range* begin, const range* end, char32_t c) {
    for (auto* r = begin; r != end; ++r)
        if (c >= r->first && c <= r->last) return true;
    return false;
}

// C.1.2 Non-ASCII space characters: mapped to SPACE.
constexpr range non_ascii_space[] = {{0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200B}, {0x202F, 0x202F},
                                     {0x205F, 0x205F}, {0x3000, 0x3000}};
// B.1 Commonly mapped to nothing.
constexpr range mapped_to_nothing[] = {{0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x1806, 0x1806}, {0x180B, 0x180D},
                                       {0x200B, 0x200D}, {0x2060, 0x2060}, {0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF}};
// C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9: prohibited output.
constexpr range prohibited[] = {
    {0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200B}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},  // C.1.2
    {0x0000, 0x001F}, {0x007F, 0x007F},                                                                          // C.2.1
    {0x0080, 0x009F}, {0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x180E, 0x180E}, {0x200C, 0x200D}, {0x2028, 0x2029},
    {0x2060, 0x2063}, {0x206A, 0x206F}, {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFC}, {0x1D173, 0x1D17A},               // C.2.2
    {0xE000, 0xF8FF}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD},                                                 // C.3
    {0xFDD0, 0xFDEF}, {0xFFFE, 0xFFFF},                                                                         // C.4 (planes below)
    {0xD800, 0xDFFF},                                                                                           // C.5
    {0xFFF9, 0xFFFD},                                                                                           // C.6
    {0x2FF0, 0x2FFB},                                                                                           // C.7
    {0x0340, 0x0341}, {0x200E, 0x200F}, {0x202A, 0x202E},                                                       // C.8
    {0xE0001, 0xE0001}, {0xE0020, 0xE007F},                                                                     // C.9
};

template <std::size_t N>
bool in(const range (&table)[N], char32_t c) {
    return in(table, table + N, c);
}

std::string hex_of(char32_t c) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
    return buf;
}

std::vector<char32_t> decode_utf8(std::string_view s) {
    std::vector<char32_t> out;
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
    while (left > 0) {
        utf8proc_int32_t c = 0;
        const auto n = utf8proc_iterate(p, left, &c);
        if (n <= 0) throw std::invalid_argument("SASLprep: the string is not valid UTF-8");
        out.push_back(static_cast<char32_t>(c));
        p += n;
        left -= n;
    }
    return out;
}

std::string encode_utf8(const std::vector<char32_t>& cps) {
    std::string out;
    for (char32_t c : cps) {
        utf8proc_uint8_t buf[4];
        const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    }
    return out;
}

}  // namespace

std::string base64_encode(std::string_view data) { return trellis::base64::encode(data); }

std::optional<std::string> base64_decode(std::string_view text) {
    auto bytes = trellis::base64::decode(text);
    if (!bytes) return std::nullopt;
    return std::string(bytes->begin(), bytes->end());
}

std::string saslprep(std::string_view input) {
    // 1. Mapping: non-ASCII spaces to SPACE, B.1 to nothing.
    std::vector<char32_t> mapped;
    for (char32_t c : decode_utf8(input)) {
        if (in(mapped_to_nothing, c)) continue;
        if (c == 0) throw std::invalid_argument("SASLprep: prohibited character U+0000");
        mapped.push_back(in(non_ascii_space, c) ? U' ' : c);
    }
    // 2. Normalization: NFKC.
    const std::string mapped_utf8 = encode_utf8(mapped);
    utf8proc_uint8_t* normalized = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(mapped_utf8.data()),
                                static_cast<utf8proc_ssize_t>(mapped_utf8.size()), &normalized,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
    if (n < 0) throw std::invalid_argument(std::string("SASLprep: ") + utf8proc_errmsg(n));
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> holder(normalized, &std::free);
    std::string out(reinterpret_cast<const char*>(normalized), static_cast<std::size_t>(n));

    // 3. Prohibited output, unassigned code points; 4. bidirectional characters.
    bool has_randal = false, has_l = false;
    const auto cps = decode_utf8(out);
    for (char32_t c : cps) {
        const bool noncharacter = (c & 0xFFFE) == 0xFFFE;  // C.4: U+nFFFE and U+nFFFF of every plane
        if (in(prohibited, c) || noncharacter) throw std::invalid_argument("SASLprep: prohibited character " + hex_of(c));
        const auto* prop = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
        if (prop->category == UTF8PROC_CATEGORY_CN)
            throw std::invalid_argument("SASLprep: unassigned code point " + hex_of(c));
        if (prop->bidi_class == UTF8PROC_BIDI_CLASS_R || prop->bidi_class == UTF8PROC_BIDI_CLASS_AL) has_randal = true;
        if (prop->bidi_class == UTF8PROC_BIDI_CLASS_L) has_l = true;
    }
    if (has_randal) {
        if (has_l) throw std::invalid_argument("SASLprep: both left-to-right and right-to-left characters");
        const auto is_randal = [](char32_t c) {
            const auto b = utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->bidi_class;
            return b == UTF8PROC_BIDI_CLASS_R || b == UTF8PROC_BIDI_CLASS_AL;
        };
        if (!is_randal(cps.front()) || !is_randal(cps.back()))
            throw std::invalid_argument("SASLprep: a right-to-left string must start and end with a right-to-left character");
    }
    return out;
}

std::string mongodb_password_digest(std::string_view user, std::string_view password) {
    const auto d = digest(EVP_md5(), std::string(user) + ":mongo:" + std::string(password));
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (auto b : d) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

std::string make_client_nonce() {
    std::array<unsigned char, 24> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) throw scram_error("RAND_bytes failed");
    return base64_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

std::string sasl_name(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (c == ',') out += "=2C";
        else if (c == '=') out += "=3D";
        else out += c;
    }
    return out;
}

std::string prepare_password(hash_kind hash, std::string_view user, std::string_view password) {
    return hash == hash_kind::sha1 ? mongodb_password_digest(user, password) : saslprep(password);
}

scram_client::scram_client(hash_kind hash, std::string user, std::string key_password, std::string client_nonce)
    : hash_(hash), user_(std::move(user)), key_password_(std::move(key_password)), client_nonce_(std::move(client_nonce)) {}

std::string scram_client::client_first() const { return "n,,n=" + sasl_name(user_) + ",r=" + client_nonce_; }

std::string scram_client::client_final(std::string_view server_first, int min_iterations, int max_iterations) {
    if (server_first.starts_with("m=")) throw scram_error("server sent an unsupported mandatory extension");
    if (auto e = attribute(server_first, 'e')) throw scram_error("server error: " + *e);
    const auto nonce = attribute(server_first, 'r');
    const auto salt64 = attribute(server_first, 's');
    const auto iter_text = attribute(server_first, 'i');
    if (!nonce || !salt64 || !iter_text) throw scram_error("malformed server-first message");
    if (!nonce->starts_with(client_nonce_) || nonce->size() == client_nonce_.size())
        throw scram_error("server nonce does not extend the client nonce");
    const auto salt = base64_decode(*salt64);
    if (!salt) throw scram_error("server salt is not base64");
    int iterations = 0;
    try {
        std::size_t used = 0;
        iterations = std::stoi(*iter_text, &used);
        if (used != iter_text->size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
        throw scram_error("malformed iteration count");
    }
    if (iterations < min_iterations)
        throw scram_error("server iteration count " + std::to_string(iterations) + " is below the minimum " +
                          std::to_string(min_iterations));
    if (iterations > max_iterations)
        throw scram_error("server iteration count " + std::to_string(iterations) + " is above the maximum " +
                          std::to_string(max_iterations) + " this client accepts");

    const bytes salted = hi(hash_, key_password_, *salt, iterations);
    const std::string salted_s = as_string(salted);
    const bytes client_key = hmac(hash_, salted_s, "Client Key");
    const bytes stored_key = digest(md_of(hash_), as_string(client_key));
    const std::string without_proof = "c=biws,r=" + *nonce;
    const std::string first_bare = client_first().substr(3);
    const std::string auth_message = first_bare + "," + std::string(server_first) + "," + without_proof;
    const bytes client_signature = hmac(hash_, as_string(stored_key), auth_message);
    std::string proof(client_key.size(), '\0');
    for (std::size_t i = 0; i < client_key.size(); ++i) proof[i] = static_cast<char>(client_key[i] ^ client_signature[i]);
    const bytes server_key = hmac(hash_, salted_s, "Server Key");
    expected_server_signature_ = base64_encode(as_string(hmac(hash_, as_string(server_key), auth_message)));
    return without_proof + ",p=" + base64_encode(proof);
}

void scram_client::verify_server_final(std::string_view server_final) const {
    if (auto e = attribute(server_final, 'e')) throw scram_error("server error: " + *e);
    const auto v = attribute(server_final, 'v');
    if (!v || expected_server_signature_.empty()) throw scram_error("malformed server-final message");
    // Constant time is not needed for a value the server sends us; compare plainly.
    if (*v != expected_server_signature_) throw scram_error("server signature mismatch");
}

}  // namespace trellis::auth_scram
