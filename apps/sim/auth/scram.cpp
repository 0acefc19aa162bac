#include "auth/scram.hpp"

#include <array>
#include <stdexcept>
#include <vector>

namespace trellis::sim::auth {

namespace {

// mongod's server nonce: 3 random 64-bit words, base64-encoded (a multiple of 3 bytes, so no padding).
constexpr std::size_t server_nonce_bytes = 24;

mechanism check_scram(mechanism m) {
    if (m != mechanism::scram_sha_1 && m != mechanism::scram_sha_256)
        throw std::invalid_argument("scram_conversation needs SCRAM-SHA-1 or SCRAM-SHA-256");
    return m;
}

// Splits on ',' and drops empty fields, as mongod does (it accepts "n=u,,r=x"); attributes keep their order.
std::vector<std::string_view> split_fields(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const std::size_t comma = s.find(',', start);
        const std::size_t end = comma == std::string_view::npos ? s.size() : comma;
        if (end > start) out.push_back(s.substr(start, end - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

// RFC 5802 saslname: ',' and '=' travel as "=2C" and "=3D". Decoded left to right; any other '=' sequence is kept
// as it is (mongod does not reject it either, it only replaces the two escapes).
std::string decode_saslname(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '=' && s.substr(i + 1, 2) == "2C") {
            out.push_back(',');
            i += 2;
        } else if (s[i] == '=' && s.substr(i + 1, 2) == "3D") {
            out.push_back('=');
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

auth_error bad_count(const char* which, std::size_t got) {
    return authentication_failed(std::string("Incorrect number of arguments for ") + which +
                                 " SCRAM client message, got " + std::to_string(got) + " expected at least 3");
}

}  // namespace

scram_conversation::scram_conversation(mechanism mech, const credential_store& store, std::string db,
                                       random_source random, scram_options options)
    : mech_(check_scram(mech)),
      hash_(scram_hash(mech)),
      store_(&store),
      db_(std::move(db)),
      random_(or_default(std::move(random))),
      options_(std::move(options)) {}

scram_conversation::scram_conversation(mechanism mech, std::string user_name, std::string_view key_password,
                                       bytes salt, int iterations, random_source random, scram_options options)
    : mech_(check_scram(mech)),
      hash_(scram_hash(mech)),
      db_("admin"),
      random_(or_default(std::move(random))),
      options_(std::move(options)) {
    stored_user u;
    u.name = std::move(user_name);
    u.db = db_;
    auto cred = scram_credential::derive(hash_, key_password, std::move(salt), iterations);
    (mech_ == mechanism::scram_sha_1 ? u.scram_sha_1 : u.scram_sha_256) = std::move(cred);
    fixed_user_ = std::move(u);
}

step_result scram_conversation::step(std::string_view client_message) {
    std::optional<step_result> r;
    switch (state_) {
        case state::client_first: r = client_first(client_message); break;
        case state::client_final: r = client_final(client_message); break;
        case state::empty_final:
            // The client has checked the server signature and has nothing to add. mongod does not look at what
            // this message holds.
            finish();
            return sasl_step{std::string(), true};
        case state::done:
        case state::failed: r = authentication_failed("Invalid SCRAM authentication step"); break;
    }
    if (!r->ok()) state_ = state::failed;
    return std::move(*r);
}

void scram_conversation::finish() {
    state_ = state::done;
    authenticated_ = authenticated_user{user_->name, user_->db, mech_, user_->roles};
}

// client-first-message = gs2-header client-first-message-bare
//   gs2-header = gs2-cbind-flag "," [ authzid ] ","     gs2-cbind-flag = "p=" cb-name / "n" / "y"
//   client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
step_result scram_conversation::client_first(std::string_view message) {
    const std::size_t flag_end = message.find(',');
    if (flag_end == std::string_view::npos) return bad_count("first", 1);
    const std::string_view flag = message.substr(0, flag_end);
    if (flag.starts_with("p=")) return authentication_failed("Server does not support channel binding");
    // "y": the client could bind but believes the server cannot. True here, so accepted as "n".
    if (flag != "n" && flag != "y")
        return authentication_failed("Incorrect SCRAM client message prefix: " + std::string(flag));

    const std::size_t header_end = message.find(',', flag_end + 1);
    if (header_end == std::string_view::npos) return bad_count("first", 2);
    std::string_view authzid = message.substr(flag_end + 1, header_end - flag_end - 1);
    if (!authzid.empty()) {
        if (!authzid.starts_with("a="))
            return authentication_failed("Incorrect SCRAM authzid: " + std::string(authzid));
        authzid.remove_prefix(2);
    }
    gs2_header_ = std::string(message.substr(0, header_end + 1));

    const std::string_view bare = message.substr(header_end + 1);
    if (bare.starts_with("m=")) return authentication_failed("SCRAM mandatory extensions are not supported");
    const auto fields = split_fields(bare);
    if (fields.size() < 2) return bad_count("first", fields.size() + 2);

    if (!fields[0].starts_with("n=") || fields[0].size() < 3)
        return authentication_failed("Invalid SCRAM user name: " + std::string(fields[0]));
    principal_ = decode_saslname(fields[0].substr(2));
    if (!authzid.empty() && decode_saslname(authzid) != principal_)
        return authentication_failed("SCRAM user name " + principal_ + " does not match authzid " +
                                     std::string(authzid));

    // mongod wants at least 4 characters of client nonce.
    if (!fields[1].starts_with("r=") || fields[1].size() < 6)
        return authentication_failed("Invalid SCRAM client nonce: " + std::string(fields[1]));
    const std::string_view client_nonce = fields[1].substr(2);

    // Unknown user and missing credential fail here, at saslStart, with the same code 18 a wrong proof gets.
    if (store_ != nullptr) {
        user_ = store_->find_user(db_, principal_);
    } else if (fixed_user_ && fixed_user_->name == principal_) {
        user_ = fixed_user_;
    }
    if (!user_)
        return authentication_failed("UserNotFound: Could not find user \"" + principal_ + "\" for db \"" + db_ +
                                     "\"");
    const auto& cred = user_->scram(mech_);
    if (!cred) {
        const std::string name(mechanism_name(mech_));
        return authentication_failed("MechanismUnavailable: Unable to use " + name +
                                     " based authentication for user without any " + name +
                                     " credentials registered");
    }

    std::string server_nonce;
    if (options_.fixed_server_nonce) {
        server_nonce = *options_.fixed_server_nonce;
    } else {
        std::array<std::uint8_t, server_nonce_bytes> r{};
        random_(r);
        server_nonce = base64_encode(r);
    }
    nonce_ = std::string(client_nonce) + server_nonce;

    std::string server_first = "r=" + nonce_ + ",s=" + base64_encode(cred->salt) +
                               ",i=" + std::to_string(cred->iteration_count);
    auth_message_.reserve(bare.size() + server_first.size() + nonce_.size() + 16);
    auth_message_.append(bare).append(",").append(server_first);
    state_ = state::client_final;
    return sasl_step{std::move(server_first), false};
}

// client-final-message = channel-binding "," nonce ["," extensions] "," proof
step_result scram_conversation::client_final(std::string_view message) {
    const std::size_t last_comma = message.rfind(',');
    if (last_comma == std::string_view::npos) return bad_count("second", 1);
    const std::string_view without_proof = message.substr(0, last_comma);
    auth_message_.append(",").append(without_proof);

    const std::string_view proof_field = message.substr(last_comma + 1);
    if (proof_field.size() < 3 || !proof_field.starts_with("p="))
        return authentication_failed("Incorrect SCRAM ClientProof: " + std::string(proof_field));

    const auto fields = split_fields(without_proof);
    if (fields.size() < 2) return bad_count("second", fields.size() + 1);

    if (!fields[0].starts_with("c=") || fields[0].size() < 3)
        return authentication_failed("Incorrect SCRAM channel binding: " + std::string(fields[0]));
    // RFC 5802 section 5.1: without channel binding, c= carries the gs2 header of the client-first message
    // ("biws" for "n,,"). mongod does not check it; this server does, to catch clients that get it wrong.
    if (fields[0].substr(2) != base64_encode(as_bytes(gs2_header_)))
        return authentication_failed("Incorrect SCRAM channel binding: " + std::string(fields[0]) +
                                     " does not match the gs2 header " + gs2_header_);

    if (!fields[1].starts_with("r=") || fields[1].size() < 6)
        return authentication_failed("Incorrect SCRAM client|server nonce: " + std::string(fields[1]));
    if (fields[1].substr(2) != nonce_)
        return authentication_failed("Unmatched SCRAM nonce received from client in second step, expected " +
                                     nonce_ + " but received " + std::string(fields[1].substr(2)));

    const auto proof = base64_decode(proof_field.substr(2));
    if (!proof || proof->size() != digest_size(hash_))
        return authentication_failed("Incorrect SCRAM ClientProof: " + std::string(proof_field));

    // ClientSignature := HMAC(StoredKey, AuthMessage); ClientKey := ClientProof XOR ClientSignature;
    // the proof is right when H(ClientKey) = StoredKey.
    const scram_credential& cred = *user_->scram(mech_);
    bytes client_key = hmac(hash_, cred.stored_key, as_bytes(auth_message_));
    for (std::size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= (*proof)[i];
    if (!constant_time_equal(digest(hash_, client_key), cred.stored_key))
        return authentication_failed("SCRAM authentication failed, storedKey mismatch");

    // ServerSignature := HMAC(ServerKey, AuthMessage): proves to the client that this server knows the password.
    std::string server_final = "v=" + base64_encode(hmac(hash_, cred.server_key, as_bytes(auth_message_)));
    if (options_.skip_empty_exchange) {
        finish();
        return sasl_step{std::move(server_final), true};
    }
    state_ = state::empty_final;
    return sasl_step{std::move(server_final), false};
}

}  // namespace trellis::sim::auth
