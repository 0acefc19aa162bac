// authenticator "x509": MONGODB-X509. The TLS client certificate is the credential; the
// authenticate command on $external names its subject as the user, or no user at all (the
// server takes the subject, MongoDB 3.4 and later). It rides in hello as speculative
// authentication, the same document with "db".
#include <memory>

#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdk/authenticator.hpp"

namespace {

using namespace trellis;
namespace asio = boost::asio;

class x509_conversation final : public sdk::auth_conversation {
public:
    explicit x509_conversation(const credential& c) : cred_(c) {
        if (cred_.password) throw std::invalid_argument("MONGODB-X509 takes no password");
    }

    std::optional<bson::document> speculative_request() override {
        bson::builder b;
        append_command(b);
        b.append("db", "$external");
        speculative_ = true;
        return b.extract();
    }

    void async_run(sdk::auth_connection& c, asio::any_completion_handler<void(sdk::auth_failure)> handler) override {
        if (speculative_) {
            // The server answers a successful speculative authenticate with {dbname, user}; nothing is left to do.
            if (const auto spec = c.hello_reply().find("speculativeAuthenticate"); spec && spec->type() == bson::type::document)
                return std::move(handler)(sdk::auth_failure{});
        }
        bson::builder b;
        append_command(b);
        c.async_run_command("$external", b.extract(), [h = std::move(handler)](std::error_code ec, bson::document reply) mutable {
            if (ec) return std::move(h)(sdk::auth_failure{ec, 0, "network error during authenticate"});
            std::move(h)(sdk::refusal_of(reply).value_or(sdk::auth_failure{}));
        });
    }

private:
    void append_command(bson::builder& b) const {
        b.append("authenticate", 1).append("mechanism", "MONGODB-X509");
        if (cred_.username && !cred_.username->empty()) b.append("user", *cred_.username);
    }

    credential cred_;
    bool speculative_ = false;
};

class x509_authenticator final : public sdk::authenticator {
public:
    static constexpr const char* provides[] = {"MONGODB-X509", nullptr};
    std::unique_ptr<sdk::auth_conversation> begin(const credential& cred) override {
        return std::make_unique<x509_conversation>(cred);
    }
};

}  // namespace

TRELLIS_PLUGIN(authenticator, "x509", "1.0.0", "MONGODB-X509: the TLS client certificate's subject", x509_authenticator)
