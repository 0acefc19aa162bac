// The KMS half of client_encryption's shell: per-provider TLS settings (the spec's tlsOptions) and
// one request's round trip over TLS, as an Asio coroutine that feeds the reply to the context.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "encryption/crypt_core.hpp"
#include "trellis/errors.hpp"

namespace trellis::encryption {

/// One provider's TLS client settings, as tlsOptions gives them.
struct kms_tls_settings {
    std::string ca_file;               ///< tlsCAFile; empty: the system's trust store
    std::string certificate_key_file;  ///< tlsCertificateKeyFile (PEM: certificate chain and key)
    std::string certificate_key_file_password;
};

/// tlsOptions ({<provider>: {tlsCAFile, tlsCertificateKeyFile, tlsCertificateKeyFilePassword,
/// tlsDisableOCSPEndpointCheck}}) checked against the configured providers: configuration_error
/// naming the provider and the option ("Insecure TLS options prohibited", "TLS is required").
std::map<std::string, kms_tls_settings, std::less<>> parse_kms_tls_options(bson::document_view tls_options,
                                                                           bson::document_view kms_providers);

/// One OpenSSL client context per provider (peer and host name verified, TLS 1.2 or later), built
/// up front so a bad file is reported at construction.
class kms_tls_contexts {
public:
    kms_tls_contexts(const std::map<std::string, kms_tls_settings, std::less<>>& settings,
                     bson::document_view kms_providers);
    struct entry {
        std::unique_ptr<boost::asio::ssl::context> context;
        std::string ca_file;  ///< for messages; empty: the system's trust store
    };
    const entry& for_provider(std::string_view provider) const;

private:
    std::map<std::string, entry, std::less<>> contexts_;
};

/// Sends r.message to r.host:r.port over TLS and feeds the reply to ctx until it is complete,
/// within timeout for the whole round trip (expiry: timeout_code). Failures are trellis::error naming the provider and the
/// endpoint: connection_failure (resolve, connect, TLS handshake or verification, I/O), the
/// context's error for a KMS error reply.
boost::asio::awaitable<void> kms_round_trip(context& ctx, const kms_request& r, const kms_tls_contexts::entry& tls,
                                            std::chrono::milliseconds timeout, errc timeout_code);

}  // namespace trellis::encryption
