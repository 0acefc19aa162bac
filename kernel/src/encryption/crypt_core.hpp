// libmongocrypt without I/O: option validation, one mongocrypt_t per client_encryption, and one
// context per operation whose state machine the caller drives through next():
//
//   need_keys{filter}  find the filter in the key vault, feed_key() each document, keys_done()
//   need_kms{provider} a request to that provider's KMS is needed (the shell refuses it)
//   done{result}       the operation's result document
//
// client_encryption.cpp is the shell that does the key vault I/O. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "trellis/bson/document.hpp"

struct _mongocrypt_t;
struct _mongocrypt_ctx_t;

namespace trellis::encryption {

/// libmongocrypt's version string.
std::string libmongocrypt_version();

/// Checks kmsProviders as the spec asks of each provider's credentials; throws configuration_error
/// naming the provider and the field.
void validate_kms_providers(bson::document_view providers);

namespace action {
struct need_keys {
    bson::document filter;
};
struct need_kms {
    std::string provider;
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

private:
    explicit context(const crypt& c);
    [[noreturn]] void raise(std::string_view during) const;
    _mongocrypt_ctx_t* ctx_ = nullptr;
};

}  // namespace trellis::encryption
