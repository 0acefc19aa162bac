// The Trellis plugin SDK: what every plugin library exports.
//
// A plugin library exports exactly one descriptor through TRELLIS_PLUGIN
// (Boost.DLL's BOOST_DLL_ALIAS under the name "trellis_plugin"). The host reads
// the descriptor, checks abi_version before it calls anything, and creates the
// plugin object through the factory. The object keeps the library loaded for as
// long as it lives.
//
//   class my_manager final : public trellis::sdk::cursor_manager { ... };
//   TRELLIS_PLUGIN(cursor_manager, "deferred", "1.0.0", "kills closed cursors in batches", my_manager)
//
// The SDK's types are C++ types: host and plugin must be built with the same
// compiler and standard library, which abi_version stands for.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>

#include <boost/dll/alias.hpp>

#include "trellis/bson/document.hpp"

/// SDK interfaces keep default visibility so that their type information is
/// shared between the host and plugins built with -fvisibility=hidden
/// (dynamic_cast to the kind's interface relies on it).
#define TRELLIS_SDK_VISIBLE __attribute__((visibility("default")))

namespace trellis::sdk {

/// Changes whenever a declaration of this SDK changes incompatibly.
inline constexpr std::uint32_t abi_version = 1;

enum class plugin_kind : std::uint32_t {
    transport = 1,
    topology_strategy = 2,
    cursor_manager = 3,
    authenticator = 4,
    compressor = 5,
};

/// "transport", "topology_strategy", ...; "unknown" for other values.
constexpr std::string_view to_string(plugin_kind k) noexcept {
    switch (k) {
        case plugin_kind::transport: return "transport";
        case plugin_kind::topology_strategy: return "topology_strategy";
        case plugin_kind::cursor_manager: return "cursor_manager";
        case plugin_kind::authenticator: return "authenticator";
        case plugin_kind::compressor: return "compressor";
    }
    return "unknown";
}

/// Base of every plugin object.
class TRELLIS_SDK_VISIBLE plugin {
public:
    virtual ~plugin() = default;
};

/// What a factory gets: the plugin's own settings (the [plugins.<name>] table of
/// the TOML configuration, as BSON; empty when there is none).
struct plugin_context {
    bson::document_view settings;
};

/// The one exported object. Plain data, so the host can read it before trusting anything else.
struct plugin_descriptor {
    std::uint32_t abi_version;
    plugin_kind kind;
    const char* name;         // unique within its kind, e.g. "plain", "tls", "replica_set"
    const char* version;      // the plugin's own version
    const char* description;  // one line
    /// Creates the plugin object; may throw (the host reports it as a broken plugin).
    /// The object's dynamic type is the kind's interface (transport, cursor_manager, ...).
    std::unique_ptr<plugin> (*create)(const plugin_context& context);
};

/// The exported symbol name.
inline constexpr const char* descriptor_symbol = "trellis_plugin";

}  // namespace trellis::sdk

/// Exports a plugin: kind (an sdk::plugin_kind enumerator name), name, version,
/// description, and the class to create. The class is constructed from a
/// const plugin_context& when it accepts one, otherwise default-constructed.
#define TRELLIS_PLUGIN(kind_, name_, version_, description_, class_)                                        \
    namespace {                                                                                             \
    std::unique_ptr<::trellis::sdk::plugin> trellis_plugin_create(const ::trellis::sdk::plugin_context& ctx) { \
        if constexpr (std::is_constructible_v<class_, const ::trellis::sdk::plugin_context&>)                \
            return std::make_unique<class_>(ctx);                                                           \
        else                                                                                                \
            return ((void)ctx, std::make_unique<class_>());                                                 \
    }                                                                                                       \
    const ::trellis::sdk::plugin_descriptor trellis_plugin_descriptor_object{                               \
        ::trellis::sdk::abi_version, ::trellis::sdk::plugin_kind::kind_, name_, version_, description_,     \
        &trellis_plugin_create};                                                                            \
    }                                                                                                       \
    BOOST_DLL_ALIAS(trellis_plugin_descriptor_object, trellis_plugin)
