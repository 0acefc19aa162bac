// Test plugin: built against another SDK ABI (its descriptor says 999).
#include "trellis/sdk/plugin.hpp"

namespace {
std::unique_ptr<trellis::sdk::plugin> never(const trellis::sdk::plugin_context&) { return nullptr; }
const trellis::sdk::plugin_descriptor descriptor{999, trellis::sdk::plugin_kind::cursor_manager, "old", "0.0.1",
                                                 "test: another ABI", &never, nullptr, nullptr};
}  // namespace

BOOST_DLL_ALIAS(descriptor, trellis_plugin)
