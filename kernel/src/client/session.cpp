// Explicit sessions: client_session, the server session it holds, and the cluster and operation
// times gossiped through it (the driver sessions and causal consistency specs).
#include "client/core.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/session.hpp"

namespace trellis {

namespace detail {

namespace {

// The clusterTime timestamp of a $clusterTime document; nullopt when it has none.
std::optional<bson::timestamp> cluster_timestamp(bson::document_view ct) {
    const auto t = ct.find("clusterTime");
    if (!t || t->type() != bson::type::timestamp) return std::nullopt;
    return t->get_timestamp();
}

// `current` becomes `seen` when that is later (cluster times compare by their timestamp only).
void advance(std::optional<bson::document>& current, bson::document_view seen) {
    const auto t = cluster_timestamp(seen);
    if (!t) return;
    if (current) {
        const auto mine = cluster_timestamp(current->view());
        if (mine && *mine >= *t) return;
    }
    current = bson::document(seen);
}

}  // namespace

session_ptr client_core::start_session(const session_options& o) {
    if (o.snapshot && o.causal_consistency.value_or(false))
        throw error(errc::invalid_argument, "start_session: snapshot and causal_consistency are mutually exclusive");
    if (o.snapshot) throw error(errc::invalid_argument, "start_session: snapshot sessions are not supported");
    auto s = std::make_shared<session_state>();
    s->core = shared_from_this();
    s->options = o;
    s->causal = o.causal_consistency.value_or(true);
    s->server = acquire_session(snapshot()->logical_session_timeout_minutes);
    return s;
}

void client_core::end_session(session_state& s) {
    server_session server;
    {
        std::lock_guard lock(s.mutex);
        if (s.ended) return;
        s.ended = true;
        server = s.server;
    }
    release_session(server);  // a dirty one is dropped there
}

std::optional<bson::document> client_core::cluster_time_to_send(const session_state* s) const {
    std::optional<bson::document> out = cluster_time_;
    if (s) {
        std::lock_guard lock(s->mutex);
        if (s->cluster_time) advance(out, s->cluster_time->view());
    }
    return out;
}

void client_core::observe_times(bson::document_view reply, session_state* s) {
    const auto ct = reply.find("$clusterTime");
    const bool has_ct = ct && ct->type() == bson::type::document;
    if (has_ct) advance(cluster_time_, ct->get_document());
    if (!s) return;
    std::lock_guard lock(s->mutex);
    if (has_ct) advance(s->cluster_time, ct->get_document());
    if (const auto ot = reply.find("operationTime"); ot && ot->type() == bson::type::timestamp)
        if (!s->operation_time || *s->operation_time < ot->get_timestamp()) s->operation_time = ot->get_timestamp();
}

bson::document with_after_cluster_time(bson::document_view command, bson::timestamp t) {
    bson::builder b;
    std::optional<bson::document_view> rc;
    for (const auto& e : command) {
        if (e.key() == "readConcern" && e.type() == bson::type::document) rc = e.get_document();
        else b.append(e);
    }
    b.open_document("readConcern");
    if (rc)
        for (const auto& e : *rc)
            if (e.key() != "afterClusterTime") b.append(e);
    b.append("afterClusterTime", t).close_document();
    return b.extract();
}

}  // namespace detail

// ---------------------------------------------------------------- client_session

client_session client::start_session(session_options options) { return client_session(core_->start_session(options)); }

client_session& client_session::operator=(client_session&& other) noexcept {
    if (this != &other) {
        end_session();
        state_ = std::move(other.state_);
    }
    return *this;
}

client_session::~client_session() { end_session(); }

namespace {
detail::session_state& live(const std::shared_ptr<detail::session_state>& s) {
    if (!s) throw error(errc::invalid_argument, "use of a moved-from client_session");
    return *s;
}
}  // namespace

bson::document client_session::id() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return bson::make_document(bson::kvp("id", s.server.id));
}

const session_options& client_session::options() const noexcept {
    static const session_options none;
    return state_ ? state_->options : none;
}

bool client_session::causal_consistency() const noexcept { return state_ && state_->causal; }

std::optional<bson::document> client_session::cluster_time() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return s.cluster_time;
}

std::optional<bson::timestamp> client_session::operation_time() const {
    const auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    return s.operation_time;
}

void client_session::advance_cluster_time(bson::document_view cluster_time) {
    const auto t = cluster_time.find("clusterTime");
    if (!t || t->type() != bson::type::timestamp)
        throw error(errc::invalid_argument, "advance_cluster_time: the document has no timestamp field clusterTime");
    auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    detail::advance(s.cluster_time, cluster_time);
}

void client_session::advance_operation_time(bson::timestamp operation_time) {
    auto& s = live(state_);
    std::lock_guard lock(s.mutex);
    if (!s.operation_time || *s.operation_time < operation_time) s.operation_time = operation_time;
}

void client_session::end_session() noexcept {
    if (!state_) return;
    try {
        state_->core->end_session(*state_);
    } catch (...) {
    }
}

bool client_session::has_ended() const noexcept {
    if (!state_) return true;
    std::lock_guard lock(state_->mutex);
    return state_->ended;
}

bool client_session::dirty() const noexcept {
    if (!state_) return false;
    std::lock_guard lock(state_->mutex);
    return state_->server.dirty;
}

client& client_session::client() const {
    auto* c = live(state_).core->face();
    if (!c) throw error(errc::invalid_argument, "the session's client has been destroyed");
    return *c;
}

}  // namespace trellis
