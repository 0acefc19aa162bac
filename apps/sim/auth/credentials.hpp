// Users and their credentials, as mongod keeps them in admin.system.users:
// per SCRAM mechanism a salt, an iteration count, StoredKey and ServerKey, and
// never the password itself.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/crypto.hpp"
#include "auth/errors.hpp"

namespace trellis::sim::auth {

enum class mechanism { scram_sha_1, scram_sha_256, plain, mongodb_x509 };

/// "SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN", "MONGODB-X509".
std::string_view mechanism_name(mechanism m) noexcept;
/// The inverse of mechanism_name (exact, case-sensitive, as mongod's registry); nullopt for anything else.
std::optional<mechanism> parse_mechanism(std::string_view name) noexcept;
/// SHA-1 or SHA-256 for the SCRAM mechanisms. Precondition: m is one of them.
hash_algorithm scram_hash(mechanism m) noexcept;

/// The database X.509 (and, in mongod Enterprise, LDAP) users live in.
inline constexpr std::string_view external_db = "$external";

/// MongoDB's legacy password digest, hex(MD5(user + ":mongo:" + password)): what SCRAM-SHA-1 feeds to Hi()
/// instead of the password (neither part SASLprep'd).
std::string mongodb_password_digest(std::string_view user, std::string_view password);

/// What a mechanism feeds to Hi() for this password: the digest above for SCRAM-SHA-1, SASLprep(password) for
/// SCRAM-SHA-256 (2 BadValue when SASLprep refuses it). Precondition: m is a SCRAM mechanism.
result<std::string> scram_key_password(mechanism m, std::string_view user, std::string_view password);

/// mongod's salt length: the hash length less 4 (16 bytes for SHA-1, 28 for SHA-256), so that the salt and
/// PBKDF2's 4-byte block index fill exactly one hash block.
inline std::size_t scram_salt_length(hash_algorithm h) noexcept { return digest_size(h) - 4; }

struct scram_credential {
    hash_algorithm hash = hash_algorithm::sha1;
    int iteration_count = 0;
    bytes salt;
    bytes stored_key;  // H(ClientKey)
    bytes server_key;  // HMAC(SaltedPassword, "Server Key")

    /// Derives StoredKey and ServerKey from the password exactly as fed to Hi() (see scram_key_password).
    static scram_credential derive(hash_algorithm h, std::string_view key_password, bytes salt, int iterations);
    /// Whether key_password derives this StoredKey (constant-time comparison).
    bool matches(std::string_view key_password) const;
};

/// A user to create. The password is consumed at creation and not kept.
struct user {
    std::string name;
    std::string db = "admin";
    std::string password;
    std::vector<std::string> roles;
    /// createUser's `mechanisms`: which SCRAM credentials to derive (ignored for $external users).
    std::vector<mechanism> mechanisms = {mechanism::scram_sha_1, mechanism::scram_sha_256};
};

/// A user as stored.
struct stored_user {
    std::string name;
    std::string db;
    std::vector<std::string> roles;
    std::optional<scram_credential> scram_sha_1;
    std::optional<scram_credential> scram_sha_256;
    /// Only for $external users created with a password: stands in for the LDAP server that PLAIN asks in
    /// mongod Enterprise. Hi() over the raw password (LDAP compares bytes, no SASLprep), SHA-256.
    std::optional<scram_credential> plain;

    /// scram_sha_1 or scram_sha_256. Precondition: m is a SCRAM mechanism.
    const std::optional<scram_credential>& scram(mechanism m) const noexcept {
        return m == mechanism::scram_sha_1 ? scram_sha_1 : scram_sha_256;
    }
};

/// Who a finished conversation authenticated.
struct authenticated_user {
    std::string name;
    std::string db;
    mechanism mech = mechanism::scram_sha_256;
    std::vector<std::string> roles;
};

struct store_options {
    /// mongod's defaults (scramIterationCount, scramSHA256IterationCount). At least 4096, the minimum drivers
    /// accept (the store's constructor throws std::invalid_argument otherwise).
    int scram_sha_1_iterations = 10000;
    int scram_sha_256_iterations = 15000;
    /// Salts come from here; RAND_bytes when unset.
    random_source random;
};

/// Users by (db, name). Safe to share between connections: lookups take a shared lock, changes an exclusive
/// one, and lookups return copies, so a conversation never points into the store.
class credential_store {
public:
    explicit credential_store(store_options options = {});

    /// createUser. Errors: 51003 (Location51003) "User \"name@db\" already exists"; 2 BadValue for an empty
    /// name or db, an empty password (except $external users, who may have none), an empty or unknown
    /// `mechanisms` list, or a password SASLprep refuses for SCRAM-SHA-256.
    std::optional<auth_error> create_user(const user& u);
    /// dropUser; false when there was no such user.
    bool drop_user(std::string_view db, std::string_view name);
    std::optional<stored_user> find_user(std::string_view db, std::string_view name) const;
    std::size_t size() const;

    /// hello's saslSupportedMechs for "db.user" (the database is everything before the first '.', as mongod's
    /// UserName::parse splits it). nullopt when there is no '.' or no such user: mongod then leaves the field
    /// out of the reply. For a user of another database than $external: the SCRAM mechanisms it has
    /// credentials for, SCRAM-SHA-1 first (mongod never advertises plain-text mechanisms for those). For a
    /// $external user: ["PLAIN"] if it has a password, [] otherwise.
    std::optional<std::vector<std::string>> sasl_supported_mechs(std::string_view db_dot_user) const;
    static std::vector<std::string> sasl_supported_mechs(const stored_user& u);

private:
    store_options options_;
    mutable std::shared_mutex mutex_;
    std::map<std::pair<std::string, std::string>, stored_user> users_;  // by (db, name)
};

}  // namespace trellis::sim::auth
