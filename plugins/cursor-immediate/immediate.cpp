// cursor_manager "immediate": kills every closed cursor at once, one killCursors per cursor
// (PyMongo's default CursorManager). Stateless, so it is safe from any thread. A cursor id of 0
// names no server cursor (the server already closed it): nothing is sent for it.
#include "trellis/sdk/cursor_manager.hpp"

namespace {

using namespace trellis::sdk;

class immediate_manager final : public cursor_manager {
public:
    void on_cursor_closed(const closed_cursor& cursor, cursor_killer& killer) override {
        if (cursor.id == 0) return;
        killer.kill_cursors(cursor.server_address, cursor.ns, {cursor.id});
    }
};

}  // namespace

TRELLIS_PLUGIN(cursor_manager, "immediate", "1.0.0", "sends killCursors as soon as a cursor is closed",
               immediate_manager)
