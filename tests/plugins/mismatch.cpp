// Test plugin: a cursor manager whose build key differs from the host's in one part, chosen at
// compile time (MISMATCH_BOOST, MISMATCH_COMPILER), or built for real with another standard
// library ABI (-D_GLIBCXX_USE_CXX11_ABI=0, no macro of ours). It touches nothing of libtrellis,
// so the library loads and the host's check of the key is what refuses it.
#include "trellis/sdk/cursor_manager.hpp"

namespace {
class mismatch final : public trellis::sdk::cursor_manager {
public:
    void on_cursor_closed(const trellis::sdk::closed_cursor&, trellis::sdk::cursor_killer&) override {}
};

std::unique_ptr<trellis::sdk::plugin> create(const trellis::sdk::plugin_context&) { return std::make_unique<mismatch>(); }

constexpr trellis::sdk::build_key key = [] {
    auto k = trellis::sdk::this_build_key();
#if defined(MISMATCH_BOOST)
    k.boost_version = MISMATCH_BOOST;
#endif
#if defined(MISMATCH_COMPILER)
    k.compiler = "Clang";
    k.compiler_major = MISMATCH_COMPILER;
#endif
    return k;
}();

const trellis::sdk::plugin_descriptor descriptor{trellis::sdk::abi_version, trellis::sdk::plugin_kind::cursor_manager,
                                                 "mismatch", "0.1.0", "test: another build key", &create, &key, nullptr};
}  // namespace

BOOST_DLL_ALIAS(descriptor, trellis_plugin)
