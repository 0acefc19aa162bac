// The authentication commands of one connection: saslStart, saslContinue,
// authenticate, and hello's speculativeAuthenticate, with the reply documents
// mongod sends. The server layer keeps one auth_session per connection (it
// holds the conversation in progress between commands) and calls it from its
// command handlers; errors come back as auth_error for it to turn into
// {ok: 0, errmsg, code, codeName} (error_reply() does exactly that).
//
//   saslStart     {saslStart: 1, mechanism, payload: BinData(0), options: {skipEmptyExchange}, $db}
//              -> {conversationId: 1, done, payload: BinData(0), ok: 1}
//   saslContinue  {saslContinue: 1, conversationId: 1, payload, $db}  -> the same shape
//   authenticate  {authenticate: 1, mechanism: "MONGODB-X509", user?, $db: "$external"}
//              -> {dbname: "$external", user: <subject>, ok: 1}
//   hello         {..., speculativeAuthenticate: {saslStart: 1, mechanism, payload, db}
//                                              | {authenticate: 1, mechanism: "MONGODB-X509", user?, db?}}
//              -> speculativeAuthenticate: {conversationId, done, payload} | {dbname, user}, or no field at all
//                 when it fails (mongod swallows speculative failures: the client then authenticates normally).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/credentials.hpp"
#include "auth/crypto.hpp"
#include "auth/errors.hpp"
#include "auth/scram.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/document.hpp"

namespace trellis::sim::auth {

namespace bson = trellis::bson;

/// A SASL payload as it came: BinData of any subtype (drivers send subtype 0) or, from old shells, a base64 string.
/// Replies use the form the client used.
struct sasl_payload {
    std::string data;
    bool base64_string = false;
};

/// Reads command["payload"]. Errors: 40414 IDLFailedToParse when absent, 14 TypeMismatch when neither binary nor
/// string, 2 BadValue for a string that is not base64.
result<sasl_payload> read_sasl_payload(bson::document_view command);

/// Appends conversationId, done and payload (BinData subtype 0, or a base64 string) in mongod's order.
void append_sasl_reply_fields(bson::builder& b, bool done, std::string_view payload, bool base64_string = false,
                              std::int32_t conversation_id = 1);
/// {conversationId, done, payload, ok: 1.0}: the reply to saslStart and saslContinue.
bson::document make_sasl_reply(bool done, std::string_view payload, bool base64_string = false,
                               std::int32_t conversation_id = 1);
/// {dbname, user, ok: 1.0}: the reply to authenticate.
bson::document make_authenticate_reply(const authenticated_user& u);
/// {ok: 0.0, errmsg, code, codeName}.
bson::document make_error_reply(const auth_error& e);

class auth_session {
public:
    /// `store` must outlive the session. `random` makes SCRAM server nonces (RAND_bytes when unset).
    explicit auth_session(const credential_store& store, random_source random = {});
    ~auth_session();
    auth_session(auth_session&&) noexcept;
    auth_session& operator=(auth_session&&) noexcept;

    /// saslStart on database `db` ($db). Starts a new conversation (forgetting one in progress). Mechanisms:
    /// SCRAM-SHA-1 and SCRAM-SHA-256 outside $external, PLAIN anywhere (see plain.hpp). Errors: 18 for any
    /// failure of the conversation itself; 2 BadValue for an unsupported mechanism ("Unsupported mechanism 'X' on
    /// authentication database 'db'") or a non-boolean skipEmptyExchange; 40414 / 14 for missing or mistyped fields.
    result<bson::document> sasl_start(std::string_view db, bson::document_view command);
    /// saslContinue. Errors: 17 ProtocolError "No SASL session state found" without a conversation in progress,
    /// "sasl: Mismatched conversation id" unless conversationId is 1, "Attempt to switch database target during
    /// SASL authentication." when `db` is not the conversation's; 18 for the conversation's own failures.
    result<bson::document> sasl_continue(std::string_view db, bson::document_view command);
    /// authenticate: MONGODB-X509 only. client_subject: the RFC 2253 subject of the connection's verified client
    /// certificate, empty without one. Errors as x509_authenticate(); other mechanisms give 18 (mongod lets only
    /// UserNotFound and ProtocolError through this command unmasked).
    result<bson::document> authenticate(std::string_view db, bson::document_view command,
                                        const std::string& client_subject = {});
    /// hello's speculativeAuthenticate document. The value: the document to put in the hello reply under
    /// "speculativeAuthenticate", or nullopt to leave the field out (the attempt failed, or a saslStart without the
    /// "db" field, or PLAIN, which mongod refuses to run speculatively). A SCRAM conversation started here goes on
    /// with saslContinue. The only error is for a document that names neither saslStart nor authenticate first:
    /// mongod fails the whole hello with 51769.
    result<std::optional<bson::document>> speculative_authenticate(bson::document_view request,
                                                                   const std::string& client_subject = {});

    /// The user the last successful authentication on this connection established.
    const std::optional<authenticated_user>& user() const noexcept { return user_; }
    /// Whether a SASL conversation waits for saslContinue.
    bool in_conversation() const noexcept { return scram_ != nullptr; }
    /// Forgets the user and any conversation (logout).
    void logout() noexcept;

private:
    result<bson::document> start(std::string_view db, bson::document_view command, bool speculative);

    const credential_store* store_;
    random_source random_;
    std::unique_ptr<scram_conversation> scram_;
    std::optional<authenticated_user> user_;
};

}  // namespace trellis::sim::auth
