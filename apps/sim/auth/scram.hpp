// The server side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) as
// mongod speaks them: a sans-io state machine fed one client message per
// saslStart / saslContinue.
//
//   client-first   n,,n=user,r=<client nonce>            (saslStart)
//   server-first   r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//   client-final   c=biws,r=<nonce>,p=<proof>            (saslContinue)
//   server-final   v=<server signature>                  done unless the client must still send:
//   client         (empty)                                (saslContinue, only without skipEmptyExchange)
//   server         (empty)                                done
//
// MongoDB's departures from the RFC: user names are not SASLprep'd (for either
// mechanism: user documents are looked up by their raw bytes), SCRAM-SHA-1
// feeds hex(MD5(user:mongo:password)) to Hi() instead of the password, and
// channel binding is not supported.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/credentials.hpp"
#include "auth/crypto.hpp"
#include "auth/errors.hpp"

namespace trellis::sim::auth {

/// One SASL reply: the payload and whether the conversation is over (successfully).
struct sasl_step {
    std::string server_message;
    bool done = false;
};
/// A reply, or the error the command fails with (18 AuthenticationFailed for everything that goes wrong inside
/// a SCRAM conversation, as mongod).
using step_result = result<sasl_step>;

struct scram_options {
    /// saslStart's options.skipEmptyExchange: done with the server-final message rather than after one more
    /// empty exchange.
    bool skip_empty_exchange = false;
    /// For test vectors: the server's part of the nonce, used as given. By default it is mongod's,
    /// base64(24 random bytes): 32 characters.
    std::optional<std::string> fixed_server_nonce;
};

class scram_conversation {
public:
    /// A conversation authenticating a user of `db` found in `store` (which must outlive the conversation; it is
    /// read once, at the client-first message). mech: SCRAM-SHA-1 or SCRAM-SHA-256 (std::invalid_argument
    /// otherwise). The server nonce comes from `random` (RAND_bytes when unset).
    scram_conversation(mechanism mech, const credential_store& store, std::string db = "admin",
                       random_source random = {}, scram_options options = {});

    /// Lower level, for the RFC test vectors: the only user is `user_name` (of database "admin"), whose
    /// credential is derived here from `key_password` exactly as given to Hi() (neither MD5-digested nor
    /// SASLprep'd), `salt` and `iterations`.
    scram_conversation(mechanism mech, std::string user_name, std::string_view key_password, bytes salt,
                       int iterations, random_source random = {}, scram_options options = {});

    /// Feeds the next client message. After an error the conversation is over; later steps fail too (the
    /// server should forget the conversation when a step fails or is done, as mongod does).
    step_result step(std::string_view client_message);

    /// For saslStart's options, before the client-final message.
    void set_skip_empty_exchange(bool skip) noexcept { options_.skip_empty_exchange = skip; }

    mechanism get_mechanism() const noexcept { return mech_; }
    /// The authentication database.
    const std::string& db() const noexcept { return db_; }
    /// The user name the client-first message gave (decoded), for logs; empty before it.
    const std::string& principal_name() const noexcept { return principal_; }
    bool done() const noexcept { return state_ == state::done; }
    bool failed() const noexcept { return state_ == state::failed; }
    /// The user, once done().
    const std::optional<authenticated_user>& authenticated() const noexcept { return authenticated_; }

private:
    enum class state { client_first, client_final, empty_final, done, failed };

    step_result client_first(std::string_view message);
    step_result client_final(std::string_view message);
    void finish();

    mechanism mech_;
    hash_algorithm hash_;
    const credential_store* store_ = nullptr;  // null in the lower-level form
    std::string db_;
    random_source random_;
    scram_options options_;

    std::optional<stored_user> fixed_user_;  // the lower-level form's only user
    std::optional<stored_user> user_;        // found at the client-first message

    state state_ = state::client_first;
    std::string principal_;
    std::string gs2_header_;    // "n,," or "n,a=user,": what c= must hold, base64-encoded
    std::string nonce_;         // client nonce + server nonce
    std::string auth_message_;  // client-first-bare "," server-first "," client-final-without-proof
    std::optional<authenticated_user> authenticated_;
};

}  // namespace trellis::sim::auth
