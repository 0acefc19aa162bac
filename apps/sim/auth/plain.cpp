#include "auth/plain.hpp"

#include <string>

#include "auth/saslprep.hpp"

namespace trellis::sim::auth {

result<authenticated_user> plain_check(const credential_store& store, std::string_view payload,
                                       std::string_view db) {
    const std::size_t first_nul = payload.find('\0');
    if (first_nul == std::string_view::npos)
        return authentication_failed("Incorrectly formatted PLAIN client message, missing first NULL delimiter");
    const std::size_t second_nul = payload.find('\0', first_nul + 1);
    if (second_nul == std::string_view::npos)
        return authentication_failed("Incorrectly formatted PLAIN client message, missing second NULL delimiter");

    const std::string_view authzid = payload.substr(0, first_nul);
    const std::string_view authcid = payload.substr(first_nul + 1, second_nul - first_nul - 1);
    const std::string_view password = payload.substr(second_nul + 1);
    if (authcid.empty()) return authentication_failed("Incorrectly formatted PLAIN client message, empty username");
    if (!authzid.empty() && authzid != authcid)
        return authentication_failed("SASL authorization identity must match authentication identity");
    if (password.empty()) return authentication_failed("Incorrectly formatted PLAIN client message, empty password");

    const auto u = store.find_user(db, authcid);
    if (!u)
        return authentication_failed("UserNotFound: Could not find user \"" + std::string(authcid) + "\" for db \"" +
                                     std::string(db) + "\"");

    const auto success = [&] { return authenticated_user{u->name, u->db, mechanism::plain, u->roles}; };
    if (u->plain) {
        if (u->plain->matches(password)) return success();
    } else {
        // Try what the user has, SCRAM-SHA-256 first, as mongod does. A password SASLprep refuses cannot be the
        // SCRAM-SHA-256 one, but may still be the SCRAM-SHA-1 one (which is not SASLprep'd).
        if (u->scram_sha_256) {
            if (auto prepared = saslprep(password); prepared && u->scram_sha_256->matches(*prepared))
                return success();
        }
        if (u->scram_sha_1 && u->scram_sha_1->matches(mongodb_password_digest(authcid, password))) return success();
        if (!u->scram_sha_256 && !u->scram_sha_1) return authentication_failed("No credentials available.");
    }
    return authentication_failed("Incorrect user name or password");
}

}  // namespace trellis::sim::auth
