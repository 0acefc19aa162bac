#include "auth/session.hpp"

#include "auth/plain.hpp"
#include "auth/x509.hpp"

namespace trellis::sim::auth {

namespace {

std::string command_name(bson::document_view command) {
    const auto it = command.begin();
    return it == command.end() ? std::string() : std::string(it->key());
}

// The IDL parser's errors, which mongod reports before any authentication logic runs.
auth_error missing_field(bson::document_view command, std::string_view field) {
    auth_error e{error_code::idl_failed_to_parse, "IDLFailedToParse",
                 "BSON field '" + command_name(command) + "." + std::string(field) +
                     "' is missing but a required field",
                 {}};
    e.reason = e.message;
    return e;
}
auth_error wrong_type(bson::document_view command, const bson::element& e, std::string_view expected) {
    auth_error err{14, "TypeMismatch",
                   "BSON field '" + command_name(command) + "." + std::string(e.key()) + "' is the wrong type '" +
                       std::string(bson::type_name(e.type())) + "', expected type '" + std::string(expected) + "'",
                   {}};
    err.reason = err.message;
    return err;
}

result<std::string_view> required_string(bson::document_view command, std::string_view field) {
    const auto e = command.find(field);
    if (!e) return missing_field(command, field);
    if (e->type() != bson::type::string) return wrong_type(command, *e, "string");
    return e->get_string();
}

// An optional string field: nullopt when absent.
result<std::optional<std::string>> optional_string(bson::document_view command, std::string_view field) {
    const auto e = command.find(field);
    if (!e) return std::optional<std::string>();
    if (e->type() != bson::type::string) return wrong_type(command, *e, "string");
    return std::optional<std::string>(std::string(e->get_string()));
}

}  // namespace

result<sasl_payload> read_sasl_payload(bson::document_view command) {
    const auto e = command.find("payload");
    if (!e) return missing_field(command, "payload");
    if (e->type() == bson::type::binary) {
        const auto b = e->get_binary();
        return sasl_payload{std::string(as_chars(b.bytes)), false};
    }
    if (e->type() == bson::type::string) {
        auto decoded = base64_decode(e->get_string());
        if (!decoded) return bad_value("Invalid base64 SASL payload");
        return sasl_payload{std::string(as_chars(*decoded)), true};
    }
    return wrong_type(command, *e, "binData or string");
}

void append_sasl_reply_fields(bson::builder& b, bool done, std::string_view payload, bool base64_string,
                              std::int32_t conversation_id) {
    b.append("conversationId", conversation_id);
    b.append("done", done);
    if (base64_string)
        b.append("payload", base64_encode(as_bytes(payload)));
    else
        b.append("payload", bson::binary{bson::binary_subtype::generic, as_bytes(payload)});
}

bson::document make_sasl_reply(bool done, std::string_view payload, bool base64_string,
                               std::int32_t conversation_id) {
    bson::builder b;
    append_sasl_reply_fields(b, done, payload, base64_string, conversation_id);
    b.append("ok", 1.0);
    return b.extract();
}

bson::document make_authenticate_reply(const authenticated_user& u) {
    bson::builder b;
    b.append("dbname", u.db);
    b.append("user", u.name);
    b.append("ok", 1.0);
    return b.extract();
}

bson::document make_error_reply(const auth_error& e) {
    bson::builder b;
    b.append("ok", 0.0);
    b.append("errmsg", e.message);
    b.append("code", e.code);
    b.append("codeName", e.code_name);
    return b.extract();
}

// ---------------------------------------------------------------- auth_session

auth_session::auth_session(const credential_store& store, random_source random)
    : store_(&store), random_(or_default(std::move(random))) {}
auth_session::~auth_session() = default;
auth_session::auth_session(auth_session&&) noexcept = default;
auth_session& auth_session::operator=(auth_session&&) noexcept = default;

void auth_session::logout() noexcept {
    scram_.reset();
    user_.reset();
}

result<bson::document> auth_session::start(std::string_view db, bson::document_view command, bool speculative) {
    const auto mech_name = required_string(command, "mechanism");
    if (!mech_name) return mech_name.error();
    const auto payload = read_sasl_payload(command);
    if (!payload) return payload.error();
    // A saslStart that parses abandons whatever conversation was in progress, as mongod starts a new session.
    scram_.reset();
    bool skip_empty_exchange = false;
    if (const auto options = command.find("options")) {
        if (options->type() != bson::type::document) return wrong_type(command, *options, "object");
        if (const auto skip = options->get_document().find("skipEmptyExchange")) {
            if (skip->type() != bson::type::boolean) return bad_value("skipEmptyExchange must be boolean");
            skip_empty_exchange = skip->get_bool();
        }
    }

    // mongod keeps two mechanism registries: one for $external (PLAIN via LDAP, GSSAPI), one for every other
    // database (SCRAM, and PLAIN against the SCRAM credentials). The simulation offers PLAIN in both.
    const auto mech = parse_mechanism(*mech_name);
    const bool is_scram = mech == mechanism::scram_sha_1 || mech == mechanism::scram_sha_256;
    if (!mech || !((is_scram && db != external_db) || *mech == mechanism::plain))
        return bad_value("Unsupported mechanism '" + std::string(*mech_name) + "' on authentication database '" +
                         std::string(db) + "'");
    if (speculative && *mech == mechanism::plain)
        return bad_value("Plaintext mechanisms may not be used with speculativeSaslStart");

    if (*mech == mechanism::plain) {
        auto r = plain_check(*store_, payload->data, db);
        if (!r) return r.error();
        user_ = std::move(r).value();
        bson::builder b;
        append_sasl_reply_fields(b, true, {}, payload->base64_string);
        return b.extract();
    }

    auto conversation = std::make_unique<scram_conversation>(*mech, *store_, std::string(db), random_,
                                                             scram_options{skip_empty_exchange, std::nullopt});
    auto step = conversation->step(payload->data);
    if (!step) return step.error();
    // The client-first message never finishes a SCRAM conversation; keep it for saslContinue.
    scram_ = std::move(conversation);
    bson::builder b;
    append_sasl_reply_fields(b, step->done, step->server_message, payload->base64_string);
    return b.extract();
}

result<bson::document> auth_session::sasl_start(std::string_view db, bson::document_view command) {
    auto fields = start(db, command, false);
    if (!fields) return fields.error();
    bson::builder b;
    b.concat(*fields);
    b.append("ok", 1.0);
    return b.extract();
}

result<bson::document> auth_session::sasl_continue(std::string_view db, bson::document_view command) {
    const auto id = command.find("conversationId");
    if (!id) return missing_field(command, "conversationId");
    if (!id->is_number()) return wrong_type(command, *id, "int");
    const auto payload = read_sasl_payload(command);
    if (!payload) return payload.error();

    if (!scram_) return protocol_error("No SASL session state found");
    if (id->as_double() != 1.0) return protocol_error("sasl: Mismatched conversation id");
    if (db != scram_->db()) return protocol_error("Attempt to switch database target during SASL authentication.");

    auto step = scram_->step(payload->data);
    if (!step) {
        // mongod forgets a conversation as soon as a step fails.
        scram_.reset();
        return step.error();
    }
    if (step->done) {
        user_ = scram_->authenticated();
        scram_.reset();
    }
    return make_sasl_reply(step->done, step->server_message, payload->base64_string);
}

result<bson::document> auth_session::authenticate(std::string_view db, bson::document_view command,
                                                  const std::string& client_subject) {
    const auto mech_name = required_string(command, "mechanism");
    if (!mech_name) return mech_name.error();
    auto requested_user = optional_string(command, "user");
    if (!requested_user) return requested_user.error();
    // authenticate starts a new authentication session too: a SASL conversation in progress is over.
    scram_.reset();
    if (mech_name->empty()) return authentication_failed("Auth mechanism not specified");
    if (*mech_name != mechanism_name(mechanism::mongodb_x509))
        return authentication_failed("Unsupported mechanism: " + std::string(*mech_name));

    auto r = x509_authenticate(*store_, client_subject, std::move(requested_user).value(), db);
    if (!r) return r.error();
    user_ = *r;
    return make_authenticate_reply(*r);
}

result<std::optional<bson::document>> auth_session::speculative_authenticate(bson::document_view request,
                                                                             const std::string& client_subject) {
    using reply = std::optional<bson::document>;
    const std::string name = command_name(request);
    if (name == "saslStart") {
        // mongod runs a speculative saslStart only when the document names its database in "db".
        const auto db = request.find("db");
        if (!db || db->type() != bson::type::string) return reply();
        auto fields = start(db->get_string(), request, true);
        if (!fields) return reply();
        return reply(std::move(fields).value());
    }
    if (name == "authenticate") {
        // X.509 needs no database: $external unless the document says otherwise.
        std::string db(external_db);
        if (const auto e = request.find("db"); e && e->type() == bson::type::string) db = e->get_string();
        auto r = authenticate(db, request, client_subject);
        if (!r) return reply();
        bson::builder b;
        b.append("dbname", user_->db);
        b.append("user", user_->name);
        return reply(b.extract());
    }
    auth_error e{51769, "Location51769", "hello.speculativeAuthenticate unknown command: " + name, {}};
    e.reason = e.message;
    return e;
}

}  // namespace trellis::sim::auth
