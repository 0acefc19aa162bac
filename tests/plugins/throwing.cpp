// Test plugin: a cursor manager that throws from every call (the client must carry on, report
// it, and still kill the cursor).
#include <stdexcept>

#include "trellis/sdk/cursor_manager.hpp"

namespace {
class throwing final : public trellis::sdk::cursor_manager {
public:
    void on_cursor_closed(const trellis::sdk::closed_cursor& c, trellis::sdk::cursor_killer&) override {
        throw std::runtime_error("throwing refuses cursor " + std::to_string(c.id));
    }
    void flush(trellis::sdk::cursor_killer&) override { throw std::logic_error("throwing cannot flush"); }
};
}  // namespace

TRELLIS_PLUGIN(cursor_manager, "throwing", "0.1.0", "test: throws from on_cursor_closed and flush", throwing)
