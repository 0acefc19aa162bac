// authenticator "scram": SCRAM-SHA-1 and SCRAM-SHA-256 over saslStart / saslContinue, with
// speculative authentication in hello and mechanism negotiation (saslSupportedMechs). The
// math and the messages are scram_core's; this file only moves them in commands.
#include <memory>
#include <utility>

#include "scram_core.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdk/authenticator.hpp"

namespace {

using namespace trellis;
namespace asio = boost::asio;
using auth_scram::hash_kind;

using done_handler = asio::any_completion_handler<void(sdk::auth_failure)>;

sdk::auth_failure failure(std::string message, int server_code = 0) {
    return {make_error_code(errc::authentication_failed), server_code, std::move(message)};
}

// The SASL fields of a reply (saslStart, saslContinue, or hello's speculativeAuthenticate).
struct sasl_reply {
    std::int64_t conversation_id = 0;
    bool done = false;
    std::string payload;
};

std::optional<sasl_reply> read_sasl(bson::document_view d) {
    sasl_reply r;
    if (const auto id = d.find("conversationId"); id && id->is_number()) r.conversation_id = id->as_int64();
    if (const auto done = d.find("done"); done && done->type() == bson::type::boolean) r.done = done->get_bool();
    const auto p = d.find("payload");
    if (!p) return std::nullopt;
    if (p->type() == bson::type::binary) {
        const auto b = p->get_binary();
        r.payload.assign(reinterpret_cast<const char*>(b.bytes.data()), b.bytes.size());
    } else if (p->type() == bson::type::string) {
        auto decoded = auth_scram::base64_decode(p->get_string());
        if (!decoded) return std::nullopt;
        r.payload = std::move(*decoded);
    } else {
        return std::nullopt;
    }
    return r;
}

bson::binary as_binary(const std::string& s) {
    return bson::binary{bson::binary_subtype::generic, {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}};
}

std::string_view name_of(hash_kind h) { return h == hash_kind::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256"; }

// The conversation's state; every callback holds it, so an abandoned conversation (the kernel gave
// up on the connection) is never touched after it is gone.
class scram_state final : public std::enable_shared_from_this<scram_state> {
public:
    explicit scram_state(const credential& c) : cred_(c) {
        if (!cred_.username) throw std::invalid_argument("SCRAM needs a user name");
        if (cred_.mechanism == auth_mechanism::scram_sha_1) explicit_ = hash_kind::sha1;
        else if (cred_.mechanism == auth_mechanism::scram_sha_256) explicit_ = hash_kind::sha256;
        else if (cred_.mechanism) throw std::invalid_argument("the scram authenticator does not implement this mechanism");
    }

    std::optional<bson::document> speculative_request() {
        // Without a mechanism, the speculative attempt is SCRAM-SHA-256 (the auth spec).
        const hash_kind h = explicit_.value_or(hash_kind::sha256);
        try {
            start(h);
        } catch (const std::exception&) {
            client_.reset();  // reported by async_run, which tries again and fails the same way
            return std::nullopt;
        }
        speculative_ = h;
        bson::builder b;
        append_start(b, h);
        b.append("db", cred_.source);
        return b.extract();
    }

    void async_run(sdk::auth_connection& c, done_handler handler) {
        conn_ = &c;
        // emplace, not assignment: Boost 1.81's any_completion_handler move assignment recurses forever.
        handler_.emplace(std::move(handler));
        const auto hello = c.hello_reply();
        if (speculative_ && client_) {
            if (const auto spec = hello.find("speculativeAuthenticate"); spec && spec->type() == bson::type::document) {
                if (auto r = read_sasl(spec->get_document())) return on_server_first(*r);
                return complete(failure("malformed speculativeAuthenticate reply"));
            }
        }
        // No speculative result: negotiate (or use the credential's mechanism) and start over.
        hash_kind h = hash_kind::sha1;
        if (explicit_) {
            h = *explicit_;
        } else if (const auto mechs = hello.find("saslSupportedMechs"); mechs && mechs->type() == bson::type::array) {
            for (const auto& m : mechs->get_array())
                if (m.type() == bson::type::string && m.get_string() == "SCRAM-SHA-256") h = hash_kind::sha256;
        }
        try {
            start(h);
        } catch (const std::exception& e) {
            return complete(failure(std::string(name_of(h)) + ": " + e.what()));
        }
        bson::builder b;
        append_start(b, h);
        c.async_run_command(cred_.source, b.extract(), [this, self = shared_from_this()](std::error_code ec, bson::document reply) {
            if (ec) return complete({ec, 0, "network error during saslStart"});
            if (auto f = sdk::refusal_of(reply)) return complete(std::move(*f));
            auto r = read_sasl(reply);
            if (!r) return complete(failure("malformed saslStart reply"));
            on_server_first(*r);
        });
    }

private:
    void start(hash_kind h) {
        hash_ = h;
        client_.emplace(h, *cred_.username, auth_scram::prepare_password(h, *cred_.username, cred_.password.value_or("")),
                        auth_scram::make_client_nonce());
    }

    void append_start(bson::builder& b, hash_kind h) {
        b.append("saslStart", 1).append("mechanism", name_of(h)).append("payload", as_binary(client_->client_first()));
        b.append("autoAuthorize", 1);
        b.open_document("options").append("skipEmptyExchange", true).close_document();
    }

    void on_server_first(const sasl_reply& r) {
        conversation_id_ = r.conversation_id;
        std::string final_message;
        try {
            final_message = client_->client_final(r.payload);
        } catch (const std::exception& e) {
            return complete(failure(std::string(name_of(hash_)) + ": " + e.what()));
        }
        send_continue(final_message, [this, self = shared_from_this()](sasl_reply r2) {
            try {
                client_->verify_server_final(r2.payload);
            } catch (const std::exception& e) {
                return complete(failure(std::string(name_of(hash_)) + ": " + e.what()));
            }
            if (r2.done) return complete({});
            // The server did not honour skipEmptyExchange: one more, empty, round.
            send_continue({}, [this, self = shared_from_this()](sasl_reply r3) {
                if (!r3.done) return complete(failure("SASL conversation did not finish"));
                complete({});
            });
        });
    }

    template <class Next>
    void send_continue(const std::string& payload, Next next) {
        bson::builder b;
        b.append("saslContinue", 1).append("conversationId", conversation_id_).append("payload", as_binary(payload));
        conn_->async_run_command(cred_.source, b.extract(), [this, self = shared_from_this(), next = std::move(next)](std::error_code ec, bson::document reply) mutable {
            if (ec) return complete({ec, 0, "network error during saslContinue"});
            if (auto f = sdk::refusal_of(reply)) return complete(std::move(*f));
            auto r = read_sasl(reply);
            if (!r) return complete(failure("malformed saslContinue reply"));
            next(std::move(*r));
        });
    }

    void complete(sdk::auth_failure f) {
        if (!handler_) return;
        done_handler h(std::move(*handler_));
        handler_.reset();
        std::move(h)(std::move(f));
    }

    credential cred_;
    std::optional<hash_kind> explicit_;
    std::optional<hash_kind> speculative_;
    hash_kind hash_ = hash_kind::sha256;
    std::optional<auth_scram::scram_client> client_;
    std::int64_t conversation_id_ = 0;
    sdk::auth_connection* conn_ = nullptr;
    std::optional<done_handler> handler_;
};

class scram_conversation final : public sdk::auth_conversation {
public:
    explicit scram_conversation(const credential& c) : state_(std::make_shared<scram_state>(c)) {}
    std::optional<bson::document> speculative_request() override { return state_->speculative_request(); }
    void async_run(sdk::auth_connection& c, done_handler handler) override { state_->async_run(c, std::move(handler)); }

private:
    std::shared_ptr<scram_state> state_;
};

class scram_authenticator final : public sdk::authenticator {
public:
    static constexpr const char* provides[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", nullptr};
    std::unique_ptr<sdk::auth_conversation> begin(const credential& cred) override {
        return std::make_unique<scram_conversation>(cred);
    }
};

}  // namespace

TRELLIS_PLUGIN(authenticator, "scram", "1.0.0", "SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), speculative and negotiated",
               scram_authenticator)
