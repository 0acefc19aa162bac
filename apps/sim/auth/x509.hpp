// MONGODB-X509: the client certificate's subject, in RFC 2253 form, is the user
// name; the user must exist in $external. There is no SASL exchange: one
// authenticate command (or hello's speculativeAuthenticate) decides.
#pragma once

#include <openssl/x509.h>

#include <optional>
#include <string>
#include <string_view>

#include "auth/credentials.hpp"
#include "auth/errors.hpp"

namespace trellis::sim::auth {

/// The subject of a certificate as mongod names X.509 users: RFC 2253, so the last RDN of the certificate comes
/// first ("CN=client,OU=trellis,O=Trellis,L=New York,C=US"), with ',', '+', '"', '\', '<', '>', ';' and leading
/// '#' or spaces escaped by a backslash. Non-ASCII text stays UTF-8 (OpenSSL's RFC 2253 mode would write it as
/// \XX escapes; mongod does not). Empty for a null certificate.
std::string subject_rfc2253(X509* cert);

/// Authenticates the client whose certificate subject is `client_subject_rfc2253` (empty: the connection has no
/// verified client certificate). As mongod's authenticate command:
///  - no subject:                                              18 AuthenticationFailed
///  - requested_user given and not the subject:                18 AuthenticationFailed
///  - db not $external:                                        17 ProtocolError
///    "X.509 authentication must always use the $external database."
///  - no such user in $external:                               11 UserNotFound
///    "Could not find user \"<subject>\" for db \"$external\"" (mongod lets this one through unmasked)
result<authenticated_user> x509_authenticate(const credential_store& store, const std::string& client_subject_rfc2253,
                                             std::optional<std::string> requested_user,
                                             std::string_view db = external_db);

}  // namespace trellis::sim::auth
