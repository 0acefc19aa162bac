// Connects the simulator's sessions to the authentication library (apps/sim/auth).
#pragma once

#include "session.hpp"

namespace trellis::sim {

/// Sets up users from the configuration (called once at start).
void configure_users(deployment::impl& d);
/// saslSupportedMechs and speculativeAuthenticate fields of a hello reply.
void add_hello_auth_fields(session& s, const request& req, bson::builder& reply);
/// saslStart, saslContinue, authenticate (MONGODB-X509), logout, getnonce.
bson::document auth_command(session& s, request& req);

}  // namespace trellis::sim
