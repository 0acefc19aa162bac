// Explicit client-side field-level encryption: the Client Side Encryption spec's
// ClientEncryption (data keys, explicit encrypt and decrypt, key management), on libmongocrypt.
//
// Data keys live in the key vault collection (key_vault_namespace, "db.coll") of the key vault
// client; each is wrapped by a KMS provider's master key: local, or a remote KMS (aws, azure, gcp,
// kmip) that libmongocrypt's requests reach over TLS (the server certificate and host name are
// verified; per-provider tls_options). Automatic encryption (autoEncryptOpts on a client) is not
// implemented.
//
// The calls are blocking and throw the typed trellis error. A client_encryption is used from one
// thread at a time; the key vault client must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/write_error.hpp"

namespace trellis {

class client;

struct client_encryption_options {
    /// Where data keys are read and written; must outlive the client_encryption.
    trellis::client* key_vault_client = nullptr;
    /// "database.collection" of the key vault.
    std::string key_vault_namespace;
    /// {local: {key: <96 bytes>}, aws: {accessKeyId, secretAccessKey[, sessionToken]},
    ///  azure: {tenantId, clientId, clientSecret[, identityPlatformEndpoint]},
    ///  gcp: {email, privateKey[, endpoint]}, kmip: {endpoint}}. Credentials must be given: an
    /// empty provider document (on-demand credentials) is refused.
    bson::document kms_providers;
    /// The spec's tlsOptions for KMS connections: {<provider>: {tlsCAFile, tlsCertificateKeyFile,
    /// tlsCertificateKeyFilePassword, tlsDisableOCSPEndpointCheck}}; a provider not named uses the
    /// system's trust store. tlsInsecure, tlsAllowInvalidCertificates, tlsAllowInvalidHostnames and
    /// tlsDisableCertificateRevocationCheck are refused ("Insecure TLS options prohibited").
    bson::document tls_options;
    /// The limit of one KMS round trip (resolve, connect, TLS handshake, request and reply) when the
    /// key vault client has no timeoutMS; with one, timeoutMS bounds it instead.
    std::chrono::milliseconds kms_timeout{10'000};
};

/// The spec's algorithms for explicit encryption.
namespace encryption_algorithm {
inline constexpr std::string_view deterministic = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic";
inline constexpr std::string_view random = "AEAD_AES_256_CBC_HMAC_SHA_512-Random";
}  // namespace encryption_algorithm

struct data_key_options {
    /// The provider's master key: local none; aws {region, key[, endpoint]}; azure
    /// {keyVaultEndpoint, keyName[, keyVersion]}; gcp {projectId, location, keyRing, keyName, ...};
    /// kmip {[keyId][, endpoint]}.
    std::optional<bson::document> master_key;
    std::vector<std::string> key_alt_names;
    /// 96 bytes of key material; unset: random.
    std::optional<std::vector<std::uint8_t>> key_material;
};

struct encrypt_options {
    /// Exactly one of key_id and key_alt_name.
    std::optional<bson::uuid> key_id;
    std::optional<std::string> key_alt_name;
    /// encryption_algorithm::deterministic or ::random.
    std::string algorithm;
};

struct rewrap_many_data_key_options {
    /// The provider the keys are rewrapped with; empty: each key's own (and no master_key).
    std::string provider;
    std::optional<bson::document> master_key;
};

struct rewrap_many_data_key_result {
    /// Unset when no key matched the filter.
    std::optional<trellis::bulk_write_result> bulk_write_result;
};

/// One BSON value with its own storage (the field "v" of a one-field document).
class owned_value {
public:
    /// box: {v: value}.
    explicit owned_value(bson::document box);
    bson::element get() const { return box_["v"]; }
    bson::type type() const { return get().type(); }
    /// {v: value}.
    const bson::document& box() const noexcept { return box_; }

private:
    bson::document box_;
};

class client_encryption {
public:
    /// Validates the options (configuration_error naming the provider and field, or the namespace)
    /// and sets up libmongocrypt.
    explicit client_encryption(client_encryption_options options);
    ~client_encryption();
    client_encryption(client_encryption&&) noexcept;
    /// The version of the libmongocrypt in use, as "1.7.2".
    static std::string libmongocrypt_version();
    client_encryption& operator=(client_encryption&&) noexcept;

    /// A new data key wrapped by kms_provider's master key, inserted into the key vault
    /// (writeConcern majority): its _id (a UUID, binary subtype 4).
    bson::uuid create_data_key(std::string_view kms_provider, const data_key_options& options = {});

    /// value encrypted with the data key named in options: binary subtype 6.
    owned_value encrypt(bson::element value, const encrypt_options& options);
    template <class T>
    owned_value encrypt(const T& value, const encrypt_options& options) {
        bson::builder b;
        b.append("v", value);
        const bson::document box = b.extract();
        return encrypt(box["v"], options);
    }
    /// The value a binary subtype 6 holds; its data key is read from the key vault.
    owned_value decrypt(bson::binary ciphertext);

    // Key management: queries on the key vault collection, as the spec defines them.
    std::optional<bson::document> get_key(const bson::uuid& id);
    cursor get_keys();
    delete_result delete_key(const bson::uuid& id);
    /// Adds name to the key's keyAltNames; the key as it was before, unset when no key has this id.
    std::optional<bson::document> add_key_alt_name(const bson::uuid& id, std::string_view name);
    /// Removes name (and keyAltNames when it was the last); the key as it was before.
    std::optional<bson::document> remove_key_alt_name(const bson::uuid& id, std::string_view name);
    std::optional<bson::document> get_key_by_alt_name(std::string_view name);
    /// Decrypts the keys that match filter and encrypts them again with options' provider and
    /// master key (each key's own when options.provider is empty), then updates them in the vault.
    rewrap_many_data_key_result rewrap_many_data_key(bson::document_view filter,
                                                     const rewrap_many_data_key_options& options = {});

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace trellis
