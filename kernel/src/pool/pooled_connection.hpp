// What the pool knows of a connection: an id, a generation, whether it is still fit for use,
// and how to close it. Everything else (the socket, the handshake, sending commands) belongs to
// the class that derives from this one and to the establisher that makes it: the pool never
// knows how connections are made.
#pragma once

#include <cstdint>
#include <optional>

#include "trellis/bson/oid.hpp"

namespace trellis::pool {

/// Per pool, starting at 1, in order of creation (CMAP "Monotonically Increasing ID").
using connection_id = std::int64_t;

class pool_core;

class pooled_connection {
public:
    pooled_connection() = default;
    pooled_connection(const pooled_connection&) = delete;
    pooled_connection& operator=(const pooled_connection&) = delete;
    virtual ~pooled_connection() = default;

    /// Set by the pool when the establisher hands the connection over; the establisher is told
    /// the id up front (to name the connection in logs), but the pool stamps both values itself
    /// so that no establisher can get them wrong.
    connection_id id() const noexcept { return id_; }
    /// The pool's generation when the connection was created; a connection whose generation is
    /// older than the pool's is stale.
    std::uint64_t generation() const noexcept { return generation_; }

    /// True once the connection has seen an error that makes it unfit for reuse: a network
    /// error or timeout, the server closing it, a protocol error, an interrupt. The pool adds
    /// the other two ways to perish (stale, idle) itself. Called on the pool's executor while
    /// the connection is not checked out.
    virtual bool is_perished() const noexcept = 0;

    /// Starts tearing the connection down. Must not block (the pool calls it on its executor,
    /// in the middle of a check-out); the object is destroyed right after the call.
    virtual void close() noexcept = 0;

    /// clear() with interrupt_in_use: cancel whatever the connection is doing and make it
    /// perished. Called on the pool's executor while the connection is checked out and possibly
    /// in use on another thread, so an implementation must be safe against that (e.g. post the
    /// cancellation to the connection's own executor). The default does nothing: such a
    /// connection still goes when it is checked in, as it is stale by then.
    virtual void interrupt() noexcept {}

    /// Load-balanced mode: the service behind the load balancer this connection reached (the
    /// handshake's serviceId). Its generation is that service's in the pool, not the pool's.
    virtual std::optional<bson::oid> service_id() const noexcept { return std::nullopt; }

private:
    friend class pool_core;
    connection_id id_ = 0;
    std::uint64_t generation_ = 0;
};

}  // namespace trellis::pool
