// Test plugin: its factory throws.
#include <stdexcept>

#include "trellis/sdk/cursor_manager.hpp"

namespace {
class exploding final : public trellis::sdk::cursor_manager {
public:
    exploding() { throw std::runtime_error("exploding refuses to start"); }
    void on_cursor_closed(const trellis::sdk::closed_cursor&, trellis::sdk::cursor_killer&) override {}
};
}  // namespace

TRELLIS_PLUGIN(cursor_manager, "exploding", "0.1.0", "test: the factory throws", exploding)
