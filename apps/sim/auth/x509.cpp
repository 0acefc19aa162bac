#include "auth/x509.hpp"

#include <openssl/bio.h>

#include <memory>

namespace trellis::sim::auth {

std::string subject_rfc2253(X509* cert) {
    if (cert == nullptr) return {};
    const X509_NAME* name = X509_get_subject_name(cert);
    if (name == nullptr) return {};
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (!bio) return {};
    // RFC 2253 order and escaping, but UTF-8 left as it is: mongod writes user names with their UTF-8 characters,
    // not as \XX escapes of each byte.
    const unsigned long flags = XN_FLAG_RFC2253 & ~static_cast<unsigned long>(ASN1_STRFLGS_ESC_MSB);
    if (X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) return {};
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    if (n <= 0 || data == nullptr) return {};
    return std::string(data, static_cast<std::size_t>(n));
}

result<authenticated_user> x509_authenticate(const credential_store& store, const std::string& client_subject_rfc2253,
                                             std::optional<std::string> requested_user, std::string_view db) {
    // The order of the checks is mongod's (_authenticateX509): it decides which error a client sees.
    if (client_subject_rfc2253.empty())
        return authentication_failed("No verified subject name available from client");
    if (requested_user && *requested_user != client_subject_rfc2253)
        return authentication_failed("There is no x.509 client certificate matching the user.");
    if (db != external_db) return protocol_error("X.509 authentication must always use the $external database.");

    const auto u = store.find_user(external_db, client_subject_rfc2253);
    if (!u) {
        auth_error e{error_code::user_not_found, "UserNotFound",
                     "Could not find user \"" + client_subject_rfc2253 + "\" for db \"$external\"", {}};
        e.reason = e.message;
        return e;
    }
    return authenticated_user{u->name, u->db, mechanism::mongodb_x509, u->roles};
}

}  // namespace trellis::sim::auth
