#include "auth/credentials.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "auth/saslprep.hpp"

namespace trellis::sim::auth {

namespace {

constexpr std::string_view client_key_text = "Client Key";
constexpr std::string_view server_key_text = "Server Key";

bytes random_salt(const random_source& random, hash_algorithm h) {
    bytes salt(scram_salt_length(h));
    random(salt);
    return salt;
}

}  // namespace

std::string_view mechanism_name(mechanism m) noexcept {
    switch (m) {
        case mechanism::scram_sha_1: return "SCRAM-SHA-1";
        case mechanism::scram_sha_256: return "SCRAM-SHA-256";
        case mechanism::plain: return "PLAIN";
        case mechanism::mongodb_x509: return "MONGODB-X509";
    }
    return {};
}

std::optional<mechanism> parse_mechanism(std::string_view name) noexcept {
    for (mechanism m : {mechanism::scram_sha_1, mechanism::scram_sha_256, mechanism::plain, mechanism::mongodb_x509})
        if (mechanism_name(m) == name) return m;
    return std::nullopt;
}

hash_algorithm scram_hash(mechanism m) noexcept {
    return m == mechanism::scram_sha_1 ? hash_algorithm::sha1 : hash_algorithm::sha256;
}

std::string mongodb_password_digest(std::string_view user, std::string_view password) {
    std::string text;
    text.reserve(user.size() + 7 + password.size());
    text.append(user).append(":mongo:").append(password);
    return md5_hex(text);
}

result<std::string> scram_key_password(mechanism m, std::string_view user, std::string_view password) {
    if (m == mechanism::scram_sha_1) return mongodb_password_digest(user, password);
    return saslprep(password);
}

scram_credential scram_credential::derive(hash_algorithm h, std::string_view key_password, bytes salt,
                                          int iterations) {
    const bytes salted = salted_password(h, key_password, salt, iterations);
    scram_credential c;
    c.hash = h;
    c.iteration_count = iterations;
    c.salt = std::move(salt);
    c.stored_key = digest(h, hmac(h, salted, as_bytes(client_key_text)));
    c.server_key = hmac(h, salted, as_bytes(server_key_text));
    return c;
}

bool scram_credential::matches(std::string_view key_password) const {
    const bytes salted = salted_password(hash, key_password, salt, iteration_count);
    return constant_time_equal(digest(hash, hmac(hash, salted, as_bytes(client_key_text))), stored_key);
}

credential_store::credential_store(store_options options) : options_(std::move(options)) {
    if (options_.scram_sha_1_iterations < 4096 || options_.scram_sha_256_iterations < 4096)
        throw std::invalid_argument("SCRAM iteration counts must be at least 4096");
    options_.random = or_default(std::move(options_.random));
}

std::optional<auth_error> credential_store::create_user(const user& u) {
    if (u.name.empty()) return bad_value("User name must not be empty");
    if (u.db.empty()) return bad_value("User database must not be empty");

    stored_user s{u.name, u.db, u.roles, std::nullopt, std::nullopt, std::nullopt};
    if (u.db == external_db) {
        // mongod keeps no password for $external users (LDAP or the certificate checks them). The simulation
        // may give one, for PLAIN.
        if (!u.password.empty())
            s.plain = scram_credential::derive(hash_algorithm::sha256, u.password,
                                               random_salt(options_.random, hash_algorithm::sha256),
                                               options_.scram_sha_256_iterations);
    } else {
        if (u.password.empty()) return bad_value("Password cannot be empty");
        if (u.mechanisms.empty()) return bad_value("mechanisms field must not be empty");
        for (mechanism m : u.mechanisms)
            if (m != mechanism::scram_sha_1 && m != mechanism::scram_sha_256)
                return bad_value("Unknown auth mechanism '" + std::string(mechanism_name(m)) + "'");
        for (mechanism m : {mechanism::scram_sha_1, mechanism::scram_sha_256}) {
            if (std::find(u.mechanisms.begin(), u.mechanisms.end(), m) == u.mechanisms.end()) continue;
            auto key_password = scram_key_password(m, u.name, u.password);
            if (!key_password) return key_password.error();
            const hash_algorithm h = scram_hash(m);
            auto cred = scram_credential::derive(
                h, *key_password, random_salt(options_.random, h),
                m == mechanism::scram_sha_1 ? options_.scram_sha_1_iterations : options_.scram_sha_256_iterations);
            (m == mechanism::scram_sha_1 ? s.scram_sha_1 : s.scram_sha_256) = std::move(cred);
        }
    }

    // The key derivation above is the slow part; it runs before the lock is taken.
    std::unique_lock lock(mutex_);
    auto [it, inserted] = users_.try_emplace({u.db, u.name}, std::move(s));
    if (!inserted)
        return auth_error{error_code::user_already_exists, "Location51003",
                          "User \"" + u.name + "@" + u.db + "\" already exists", "duplicate user"};
    return std::nullopt;
}

bool credential_store::drop_user(std::string_view db, std::string_view name) {
    std::unique_lock lock(mutex_);
    return users_.erase({std::string(db), std::string(name)}) != 0;
}

std::optional<stored_user> credential_store::find_user(std::string_view db, std::string_view name) const {
    std::shared_lock lock(mutex_);
    const auto it = users_.find({std::string(db), std::string(name)});
    if (it == users_.end()) return std::nullopt;
    return it->second;
}

std::size_t credential_store::size() const {
    std::shared_lock lock(mutex_);
    return users_.size();
}

std::optional<std::vector<std::string>> credential_store::sasl_supported_mechs(std::string_view db_dot_user) const {
    const auto dot = db_dot_user.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    const auto u = find_user(db_dot_user.substr(0, dot), db_dot_user.substr(dot + 1));
    if (!u) return std::nullopt;
    return sasl_supported_mechs(*u);
}

std::vector<std::string> credential_store::sasl_supported_mechs(const stored_user& u) {
    std::vector<std::string> out;
    if (u.db == external_db) {
        if (u.plain) out.emplace_back(mechanism_name(mechanism::plain));
        return out;
    }
    if (u.scram_sha_1) out.emplace_back(mechanism_name(mechanism::scram_sha_1));
    if (u.scram_sha_256) out.emplace_back(mechanism_name(mechanism::scram_sha_256));
    return out;
}

}  // namespace trellis::sim::auth
