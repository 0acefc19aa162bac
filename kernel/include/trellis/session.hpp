// Explicit sessions (the driver sessions and causal consistency specs).
//
//   auto s = client.start_session();                 // causally consistent by default
//   auto events = client["app"]["events"].with_session(s);
//   events.insert_one(doc);
//   auto n = events.count_documents({});             // readConcern {afterClusterTime: <the insert's time>}
//   s.end_session();                                 // or let it go out of scope
//
// Starting a session is local (no I/O): it takes a server session (lsid) from the client's pool.
// A handle bound to a session (collection::with_session, database::with_session) runs each of its
// operations, sync or async, and the getMores of the cursors they return, with that lsid.
// Ending the session returns the server session to the pool (the client sends endSessions for
// pooled sessions when it closes), unless a network error made it dirty: then it is discarded.
//
// A session is for one sequence of operations at a time (not for concurrent operations). It may
// be used only with handles of the client that started it, and not after it ended: both are
// errors (errc::invalid_argument). Unacknowledged writes (w: 0) are refused in an explicit
// session, so causal consistency never silently misses one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "trellis/bson/document.hpp"
#include "trellis/bson/types.hpp"

namespace trellis {

class client;

namespace detail {
struct session_state;
}

struct session_options {
    /// Reads see the session's earlier reads and writes (readConcern afterClusterTime).
    /// Unset: true (false for snapshot sessions).
    std::optional<bool> causal_consistency;
    /// Snapshot reads: not supported (start_session refuses them with errc::invalid_argument).
    bool snapshot = false;
};

class client_session {
public:
    client_session(client_session&&) noexcept = default;
    client_session& operator=(client_session&& other) noexcept;
    /// Ends the session (see end_session()).
    ~client_session();

    /// The session id sent as lsid: {id: <UUID>}.
    bson::document id() const;
    const session_options& options() const noexcept;
    bool causal_consistency() const noexcept;
    /// The highest $clusterTime this session has seen ({clusterTime: Timestamp, signature: {...}});
    /// nullopt before the first reply from a deployment that keeps cluster times.
    std::optional<bson::document> cluster_time() const;
    /// The operationTime of the session's last acknowledged operation (nullopt before one).
    std::optional<bson::timestamp> operation_time() const;
    /// Advances the session's cluster time (e.g. to one from another session); an older one is
    /// ignored. errc::invalid_argument unless `cluster_time` holds a timestamp clusterTime.
    void advance_cluster_time(bson::document_view cluster_time);
    /// Advances the operation time (an older one is ignored); the next causally consistent
    /// operation waits for it.
    void advance_operation_time(bson::timestamp operation_time);

    /// Returns the server session to the client's pool (a dirty one is discarded). Idempotent.
    void end_session() noexcept;
    bool has_ended() const noexcept;
    /// A network error happened during one of the session's operations: its server session will
    /// not be reused.
    bool dirty() const noexcept;

    /// The client that started this session; errc::invalid_argument once that client is gone.
    trellis::client& client() const;

    /// Not for applications: the implementation, shared with handles bound to the session.
    const std::shared_ptr<detail::session_state>& state() const noexcept { return state_; }

private:
    friend class trellis::client;
    explicit client_session(std::shared_ptr<detail::session_state> s) : state_(std::move(s)) {}
    std::shared_ptr<detail::session_state> state_;
};

}  // namespace trellis
