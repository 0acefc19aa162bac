#include "auth_glue.hpp"

#include "auth/session.hpp"
#include "trellis/errors.hpp"

namespace trellis::sim {

struct deployment::impl::auth_state {
    auth::credential_store store;
};

namespace {

auth::auth_session& auth_of(session& s) {
    auto& d = s.owner.dep;
    if (!d.auth) d.auth = std::make_shared<deployment::impl::auth_state>();  // no users: every attempt fails, as on mongod
    if (!s.auth) s.auth = std::make_shared<auth::auth_session>(d.auth->store);
    return *s.auth;
}

void note_user(session& s) {
    if (const auto& u = s.auth->user()) {
        s.authenticated = true;
        s.user = u->db + "." + u->name;
    }
}

}  // namespace

void configure_users(deployment::impl& d) {
    if (d.cfg.users.empty()) return;
    d.auth = std::make_shared<deployment::impl::auth_state>();
    for (const auto& u : d.cfg.users) {
        auth::user user;
        user.name = u.name;
        user.db = u.db;
        user.password = u.password;
        user.roles = {"root"};
        if (auto err = d.auth->store.create_user(user))
            throw trellis::error(errc::configuration_error, "trellis-sim: user " + u.name + "@" + u.db + ": " + err->message);
    }
}

void add_hello_auth_fields(session& s, const request& req, bson::builder& reply) {
    auto& d = s.owner.dep;
    if (!d.auth) return;
    if (auto mechs = req.body.find("saslSupportedMechs"); mechs && mechs->type() == bson::type::string) {
        if (auto list = d.auth->store.sasl_supported_mechs(mechs->get_string())) {
            reply.open_array("saslSupportedMechs");
            for (const auto& m : *list) reply.append(m);
            reply.close_array();
        }
    }
    if (auto spec = req.body.find("speculativeAuthenticate"); spec && spec->type() == bson::type::document) {
        auto result = auth_of(s).speculative_authenticate(spec->get_document(), s.client_subject.value_or(""));
        if (!result) throw command_error(result.error().code, result.error().code_name, result.error().message);
        if (*result) reply.append("speculativeAuthenticate", **result);
        note_user(s);
    }
}

bson::document auth_command(session& s, request& req) {
    auth::auth_session& a = auth_of(s);
    const std::string& name = req.name;
    if (name == "logout") {
        a.logout();
        s.authenticated = false;
        s.user.clear();
        return bson::make_document(bson::kvp("ok", 1.0));
    }
    if (name == "getnonce") throw command_error(59, "CommandNotFound", "no such command: 'getnonce'");
    auth::result<bson::document> r = name == "saslStart"      ? a.sasl_start(req.db, req.body)
                                     : name == "saslContinue" ? a.sasl_continue(req.db, req.body)
                                                              : a.authenticate(req.db, req.body, s.client_subject.value_or(""));
    if (!r) return auth::make_error_reply(r.error());
    note_user(s);
    return std::move(r).value();
}

}  // namespace trellis::sim
