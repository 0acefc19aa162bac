// The client side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) as MongoDB
// speaks it, without I/O: the messages in, the messages out, and the math between.
// SCRAM-SHA-1 feeds hex(MD5("user:mongo:password")) to Hi(); SCRAM-SHA-256 feeds the
// SASLprep'd password. Channel binding is not used ("n,,").
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::auth_scram {

enum class hash_kind { sha1, sha256 };

using bytes = std::vector<std::uint8_t>;

std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

/// RFC 4013 SASLprep (stored-string profile: unassigned code points are refused).
/// Throws std::invalid_argument with the reason when the string is refused.
std::string saslprep(std::string_view input);

/// hex(MD5(user + ":mongo:" + password)): SCRAM-SHA-1's password for MongoDB.
std::string mongodb_password_digest(std::string_view user, std::string_view password);

/// 24 random bytes (RAND_bytes), base64: 32 characters.
std::string make_client_nonce();

/// Escapes a SASL name: "," -> "=2C", "=" -> "=3D".
std::string sasl_name(std::string_view name);

/// A failure of the conversation found on the client (a bad server message, a signature mismatch).
struct scram_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// One client conversation. key_password is given to Hi() exactly as it is (already
/// digested or SASLprep'd by the caller: see prepare_password()).
class scram_client {
public:
    scram_client(hash_kind hash, std::string user, std::string key_password, std::string client_nonce);

    /// "n,,n=user,r=nonce".
    std::string client_first() const;
    /// Takes the server-first message; returns the client-final message (with the proof).
    /// Throws scram_error for a malformed message, a nonce that does not extend ours, or an
    /// iteration count outside [min_iterations, max_iterations]: the cap stops a hostile server
    /// from making the client hash for minutes (Hi() runs on the client's I/O thread).
    std::string client_final(std::string_view server_first, int min_iterations = 4096,
                             int max_iterations = default_max_iterations);

    /// 1,000,000: 66x the server's default for SCRAM-SHA-256 (15,000), about 0.5 s of hashing.
    static constexpr int default_max_iterations = 1'000'000;
    /// Checks the server-final message ("v=..."); throws scram_error("server signature mismatch")
    /// or with the server's "e=" error.
    void verify_server_final(std::string_view server_final) const;

private:
    hash_kind hash_;
    std::string user_;
    std::string key_password_;
    std::string client_nonce_;
    std::string expected_server_signature_;  // base64, once client_final() ran
};

/// The password as Hi() takes it for the mechanism: digest for SHA-1, SASLprep for SHA-256
/// (throws std::invalid_argument when SASLprep refuses it).
std::string prepare_password(hash_kind hash, std::string_view user, std::string_view password);

}  // namespace trellis::auth_scram
