// authenticator "plain": SASL PLAIN (RFC 4616) in one saslStart. The password travels as
// it is, so it belongs on TLS connections; mongod does not run PLAIN speculatively.
#include <memory>

#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdk/authenticator.hpp"

namespace {

using namespace trellis;
namespace asio = boost::asio;

class plain_conversation final : public sdk::auth_conversation {
public:
    explicit plain_conversation(const credential& c) : cred_(c) {
        if (!cred_.username || cred_.username->empty()) throw std::invalid_argument("PLAIN needs a user name");
        if (!cred_.password) throw std::invalid_argument("PLAIN needs a password");
    }

    void async_run(sdk::auth_connection& c, asio::any_completion_handler<void(sdk::auth_failure)> handler) override {
        // authzid (empty) NUL authcid NUL password.
        const std::string payload = std::string(1, '\0') + *cred_.username + '\0' + *cred_.password;
        bson::builder b;
        b.append("saslStart", 1)
            .append("mechanism", "PLAIN")
            .append("payload", bson::binary{bson::binary_subtype::generic,
                                            {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()}})
            .append("autoAuthorize", 1);
        c.async_run_command(cred_.source, b.extract(), [h = std::move(handler)](std::error_code ec, bson::document reply) mutable {
            if (ec) return std::move(h)(sdk::auth_failure{ec, 0, "network error during saslStart"});
            if (auto refused = sdk::refusal_of(reply)) return std::move(h)(std::move(*refused));
            const auto done = reply.find("done");
            if (done && done->type() == bson::type::boolean && !done->get_bool())
                return std::move(h)(sdk::auth_failure{make_error_code(errc::authentication_failed), 0,
                                                      "PLAIN: the server did not finish the conversation"});
            std::move(h)(sdk::auth_failure{});
        });
    }

private:
    credential cred_;
};

class plain_authenticator final : public sdk::authenticator {
public:
    static constexpr const char* provides[] = {"PLAIN", nullptr};
    std::unique_ptr<sdk::auth_conversation> begin(const credential& cred) override {
        return std::make_unique<plain_conversation>(cred);
    }
};

}  // namespace

TRELLIS_PLUGIN(authenticator, "plain", "1.0.0", "SASL PLAIN (RFC 4616): LDAP and SCRAM users over TLS", plain_authenticator)
