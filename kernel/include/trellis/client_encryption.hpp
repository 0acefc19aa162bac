// Explicit client-side field-level encryption: the Client Side Encryption spec's
// ClientEncryption (data keys, explicit encrypt and decrypt, key management), on libmongocrypt.
//
// Data keys live in the key vault collection (key_vault_namespace, "db.coll") of the key vault
// client; each is wrapped by a KMS provider's master key: local, or a remote KMS (aws, azure, gcp,
// kmip) that libmongocrypt's requests reach over TLS (the server certificate and host name are
// verified; per-provider tls_options). Automatic encryption (autoEncryptOpts on a client) is not
// implemented.
//
// Each operation is an Asio async operation on the key vault client's executor (async_*, any
// completion token; completions carry std::exception_ptr), and a blocking face that waits for it
// and throws the typed trellis error. A client_encryption's faces are called from one thread at a
// time; an operation in flight keeps what it needs alive. The key vault client must outlive it.
#pragma once

#include <chrono>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <cstdint>
#include <exception>
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
    /// null.
    owned_value();
    /// box: {v: value}.
    explicit owned_value(bson::document box);
    template <class T>
    static owned_value of(const T& value) {
        bson::builder b;
        b.append("v", value);
        return owned_value(b.extract());
    }
    bson::element get() const { return box_["v"]; }
    bson::type type() const { return get().type(); }
    /// {v: value}.
    const bson::document& box() const noexcept { return box_; }

private:
    bson::document box_;
};

class client_encryption {
public:
    using data_key_signature = void(std::exception_ptr, bson::uuid);
    using value_signature = void(std::exception_ptr, owned_value);
    using key_signature = void(std::exception_ptr, std::optional<bson::document>);
    using keys_signature = void(std::exception_ptr, cursor);
    using delete_signature = void(std::exception_ptr, delete_result);
    using rewrap_signature = void(std::exception_ptr, rewrap_many_data_key_result);

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
    template <boost::asio::completion_token_for<data_key_signature> T = boost::asio::deferred_t>
    auto async_create_data_key(std::string kms_provider, data_key_options options = {}, T&& token = {}) {
        return spawn(create_data_key_impl(impl_, std::move(kms_provider), std::move(options)), std::forward<T>(token));
    }

    /// value encrypted with the data key named in options: binary subtype 6.
    owned_value encrypt(bson::element value, const encrypt_options& options);
    template <class T>
    owned_value encrypt(const T& value, const encrypt_options& options) {
        const owned_value v = owned_value::of(value);
        return encrypt(v.get(), options);
    }
    template <boost::asio::completion_token_for<value_signature> T = boost::asio::deferred_t>
    auto async_encrypt(owned_value value, encrypt_options options, T&& token = {}) {
        return spawn(encrypt_impl(impl_, std::move(value), std::move(options)), std::forward<T>(token));
    }
    /// The value a binary subtype 6 holds; its data key is read from the key vault.
    owned_value decrypt(bson::binary ciphertext);
    /// ciphertext: a binary subtype 6 (as encrypt gives it).
    template <boost::asio::completion_token_for<value_signature> T = boost::asio::deferred_t>
    auto async_decrypt(owned_value ciphertext, T&& token = {}) {
        return spawn(decrypt_impl(impl_, std::move(ciphertext)), std::forward<T>(token));
    }

    // Key management: queries on the key vault collection, as the spec defines them.
    std::optional<bson::document> get_key(const bson::uuid& id);
    template <boost::asio::completion_token_for<key_signature> T = boost::asio::deferred_t>
    auto async_get_key(bson::uuid id, T&& token = {}) {
        return spawn(get_key_impl(impl_, id), std::forward<T>(token));
    }
    cursor get_keys();
    template <boost::asio::completion_token_for<keys_signature> T = boost::asio::deferred_t>
    auto async_get_keys(T&& token = {}) {
        return spawn(get_keys_impl(impl_), std::forward<T>(token));
    }
    delete_result delete_key(const bson::uuid& id);
    template <boost::asio::completion_token_for<delete_signature> T = boost::asio::deferred_t>
    auto async_delete_key(bson::uuid id, T&& token = {}) {
        return spawn(delete_key_impl(impl_, id), std::forward<T>(token));
    }
    /// Adds name to the key's keyAltNames; the key as it was before, unset when no key has this id.
    std::optional<bson::document> add_key_alt_name(const bson::uuid& id, std::string_view name);
    template <boost::asio::completion_token_for<key_signature> T = boost::asio::deferred_t>
    auto async_add_key_alt_name(bson::uuid id, std::string name, T&& token = {}) {
        return spawn(alt_name_impl(impl_, id, std::move(name), true), std::forward<T>(token));
    }
    /// Removes name (and keyAltNames when it was the last); the key as it was before.
    std::optional<bson::document> remove_key_alt_name(const bson::uuid& id, std::string_view name);
    template <boost::asio::completion_token_for<key_signature> T = boost::asio::deferred_t>
    auto async_remove_key_alt_name(bson::uuid id, std::string name, T&& token = {}) {
        return spawn(alt_name_impl(impl_, id, std::move(name), false), std::forward<T>(token));
    }
    std::optional<bson::document> get_key_by_alt_name(std::string_view name);
    template <boost::asio::completion_token_for<key_signature> T = boost::asio::deferred_t>
    auto async_get_key_by_alt_name(std::string name, T&& token = {}) {
        return spawn(get_key_by_alt_name_impl(impl_, std::move(name)), std::forward<T>(token));
    }
    /// Decrypts the keys that match filter and encrypts them again with options' provider and
    /// master key (each key's own when options.provider is empty), then updates them in the vault.
    rewrap_many_data_key_result rewrap_many_data_key(bson::document_view filter,
                                                     const rewrap_many_data_key_options& options = {});
    template <boost::asio::completion_token_for<rewrap_signature> T = boost::asio::deferred_t>
    auto async_rewrap_many_data_key(bson::document filter, rewrap_many_data_key_options options = {}, T&& token = {}) {
        return spawn(rewrap_impl(impl_, std::move(filter), std::move(options)), std::forward<T>(token));
    }

private:
    struct impl;
    using impl_ptr = std::shared_ptr<impl>;  // shared with the operations in flight
    impl_ptr impl_;

    boost::asio::any_io_executor executor() const;
    template <class R, class T>
    auto spawn(boost::asio::awaitable<R> work, T&& token) const {
        return boost::asio::co_spawn(executor(), std::move(work), std::forward<T>(token));
    }
    static boost::asio::awaitable<bson::uuid> create_data_key_impl(impl_ptr self, std::string kms_provider,
                                                                   data_key_options options);
    static boost::asio::awaitable<owned_value> encrypt_impl(impl_ptr self, owned_value value, encrypt_options options);
    static boost::asio::awaitable<owned_value> decrypt_impl(impl_ptr self, owned_value ciphertext);
    static boost::asio::awaitable<std::optional<bson::document>> get_key_impl(impl_ptr self, bson::uuid id);
    static boost::asio::awaitable<cursor> get_keys_impl(impl_ptr self);
    static boost::asio::awaitable<delete_result> delete_key_impl(impl_ptr self, bson::uuid id);
    static boost::asio::awaitable<std::optional<bson::document>> alt_name_impl(impl_ptr self, bson::uuid id,
                                                                               std::string name, bool add);
    static boost::asio::awaitable<std::optional<bson::document>> get_key_by_alt_name_impl(impl_ptr self, std::string name);
    static boost::asio::awaitable<rewrap_many_data_key_result> rewrap_impl(impl_ptr self, bson::document filter,
                                                                           rewrap_many_data_key_options options);
    template <class R>
    static R wait(const impl_ptr& self, boost::asio::awaitable<R> work);
};

}  // namespace trellis
