// Why a TLS peer's certificate was refused, in the terms of the options that govern it: for the
// TLS transport and for anything else that verifies a peer with OpenSSL (the KMS requests of
// client-side encryption). Header-only; needs OpenSSL's headers.
#pragma once

#include <openssl/x509.h>
#include <string>
#include <string_view>

namespace trellis::sdk {

/// OpenSSL's text for a failed verification (`verify`, from SSL_get_verify_result) and the
/// cause: `whose` names the certificate ("the server's certificate"), `host` the name it was
/// checked against, `trust` where trusted CAs came from ("tlsCAFile ca.pem"). Empty when
/// `verify` is X509_V_OK.
inline std::string explain_verify_failure(long verify, std::string_view whose, std::string_view host,
                                          std::string_view trust) {
    if (verify == X509_V_OK) return {};
    std::string why = std::string(" (") + X509_verify_cert_error_string(verify) + "): " + std::string(whose);
    switch (verify) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            return why + " is not issued by a trusted CA (" + std::string(trust) + ")";
        case X509_V_ERR_CERT_HAS_EXPIRED: return why + " has expired";
        case X509_V_ERR_CERT_NOT_YET_VALID: return why + " is not valid yet";
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH: return why + " does not name \"" + std::string(host) + "\"";
        default: return std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
}

}  // namespace trellis::sdk
