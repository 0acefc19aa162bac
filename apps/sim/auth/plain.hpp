// SASL PLAIN (RFC 4616): one message, [authzid] NUL authcid NUL password.
//
// mongod Community checks PLAIN against the SCRAM credentials of users outside
// $external; mongod Enterprise sends PLAIN in $external to LDAP. The simulation
// does both: any database, with $external users checked against the password
// they were created with (store `plain` credential) in place of an LDAP server.
#pragma once

#include <string_view>

#include "auth/credentials.hpp"
#include "auth/errors.hpp"

namespace trellis::sim::auth {

/// Checks a PLAIN payload for a user of `db`. A non-empty authzid must equal the authcid. Users outside $external
/// are checked against their SCRAM-SHA-256 credential (SASLprep'd password) and, failing that, their SCRAM-SHA-1
/// one (MD5 digest), as mongod does. Every failure is 18 "Authentication failed." (the reason says which).
result<authenticated_user> plain_check(const credential_store& store, std::string_view payload,
                                       std::string_view db = external_db);

}  // namespace trellis::sim::auth
