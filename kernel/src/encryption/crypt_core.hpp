// libmongocrypt without I/O: option validation, one mongocrypt_t per client_encryption, and one
// context per operation whose state machine the caller drives through next():
//
//   need_keys{filter}  find the filter in the key vault, feed_key() each document, keys_done()
//   need_kms{requests} send each request to its KMS over TLS, feed_kms() the reply until
//                      kms_bytes_needed() is 0, then kms_done()
//   done{result}       the operation's result document
//
// client_encryption.cpp is the shell that does the key vault and KMS I/O. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "trellis/bson/document.hpp"

struct _mongocrypt_t;
struct _mongocrypt_ctx_t;
struct _mongocrypt_kms_ctx_t;

namespace trellis::encryption {

/// libmongocrypt's version string.
std::string libmongocrypt_version();

/// Checks kmsProviders as the spec asks of each provider's credentials; throws configuration_error
/// naming the provider and the field.
void validate_kms_providers(bson::document_view providers);

/// One HTTP (or KMIP) request to a KMS: send message over TLS to host:port, feed the reply back.
struct kms_request {
    std::size_t index = 0;  ///< for feed_kms and kms_bytes_needed
    std::string provider;   ///< "aws", "azure", "gcp", "kmip"
    std::string endpoint;   ///< as libmongocrypt gives it: "host[:port]"
    std::string host;
    std::uint16_t port = 443;
    std::vector<std::uint8_t> message;
};

/// "host[:port]" (IPv6 as "[addr]:port") split; port 443 when none is given. invalid_argument for a
/// malformed endpoint.
std::pair<std::string, std::uint16_t> split_endpoint(std::string_view endpoint, std::uint16_t default_port = 443);

namespace action {
struct need_keys {
    bson::document filter;
};
struct need_kms {
    std::vector<kms_request> requests;
};
struct done {
    bson::document result;
};
}  // namespace action
using next_action = std::variant<action::need_keys, action::need_kms, action::done>;

/// The libmongocrypt handle, configured with validated KMS providers.
class crypt {
public:
    explicit crypt(bson::document_view kms_providers);
    ~crypt();
    crypt(const crypt&) = delete;
    crypt& operator=(const crypt&) = delete;
    _mongocrypt_t* get() const noexcept { return handle_; }

private:
    _mongocrypt_t* handle_ = nullptr;
};

/// One operation's context.
class context {
public:
    /// createDataKey: master_key is {provider: ..., <the provider's master key fields>}.
    static context data_key(const crypt& c, bson::document_view master_key, const std::vector<std::string>& key_alt_names,
                            const std::vector<std::uint8_t>* key_material);
    /// Explicit encryption of box's "v" with the key named by key_id (16 bytes) or key_alt_name.
    static context explicit_encrypt(const crypt& c, bson::document_view box, const std::vector<std::uint8_t>* key_id,
                                    const std::string* key_alt_name, std::string_view algorithm);
    /// Explicit decryption of box's "v" (binary subtype 6).
    static context explicit_decrypt(const crypt& c, bson::document_view box);
    /// rewrapManyDataKey: new_master_key is {provider: ..., ...}, or null for each key's own.
    static context rewrap(const crypt& c, bson::document_view filter, const bson::document* new_master_key);

    ~context();
    context(context&& other) noexcept;
    context& operator=(context&&) = delete;

    /// What the caller must do next; throws invalid_argument (a client error: a missing key, bad
    /// input) or configuration_error when libmongocrypt failed.
    next_action next();
    void feed_key(bson::document_view key);
    void keys_done();
    /// How many more reply bytes request index needs; 0: its reply is complete.
    std::size_t kms_bytes_needed(std::size_t index) const;
    /// Reply bytes for request index (at most kms_bytes_needed). Throws when the reply is an error
    /// (errc::operation_failure with libmongocrypt's message, the provider and the endpoint named).
    void feed_kms(std::size_t index, std::span<const std::uint8_t> reply);
    /// Every request of the last need_kms is answered.
    void kms_done();

private:
    explicit context(const crypt& c);
    [[noreturn]] void raise(std::string_view during) const;
    [[noreturn]] static void raise_kms(_mongocrypt_kms_ctx_t* kms, const kms_request& r, std::string_view during);
    _mongocrypt_ctx_t* ctx_ = nullptr;
    std::vector<std::pair<_mongocrypt_kms_ctx_t*, kms_request>> kms_;  // the current need_kms round
};

}  // namespace trellis::encryption
