// Plugin kind "cursor_manager": decides when closed cursors are killed on the
// server (PyMongo's set_cursor_manager). The kernel tells the manager of every
// cursor the application closes while the server may still hold it, and gives
// it a way to send killCursors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/sdk/plugin.hpp"

namespace trellis::sdk {

struct closed_cursor {
    std::int64_t id = 0;
    std::string ns;              // "db.collection"
    std::string server_address;  // the member the cursor lives on ("host:port")
    std::int64_t connection_id = 0;  // the server's connectionId of the connection that opened it
};

/// Sends killCursors for cursors of one namespace on one server. Non-blocking:
/// the kernel queues the command and runs it on a pooled connection.
class TRELLIS_SDK_VISIBLE cursor_killer {
public:
    virtual ~cursor_killer() = default;
    virtual void kill_cursors(const std::string& server_address, const std::string& ns,
                              const std::vector<std::int64_t>& ids) = 0;
};

class TRELLIS_SDK_VISIBLE cursor_manager : public plugin {
public:
    /// A cursor was closed by the application. The manager kills it now, later,
    /// or never (a server kills idle cursors itself after its timeout).
    virtual void on_cursor_closed(const closed_cursor& cursor, cursor_killer& killer) = 0;
    /// Called periodically and when the client closes: a manager that batches kills sends them here.
    virtual void flush(cursor_killer& killer) { (void)killer; }
};

}  // namespace trellis::sdk
