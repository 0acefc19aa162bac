// The Trellis plugin SDK: what every plugin library exports.
//
// A plugin library exports exactly one descriptor through TRELLIS_PLUGIN
// (Boost.DLL's BOOST_DLL_ALIAS under the name "trellis_plugin"). The host reads
// the descriptor, checks abi_version and the build key before it calls anything,
// and creates plugin objects through the factory only when asked for one: a scan
// never instantiates a plugin. Loaded libraries stay loaded until the process ends.
//
//   class my_manager final : public trellis::sdk::cursor_manager { ... };
//   TRELLIS_PLUGIN(cursor_manager, "deferred", "1.0.0", "kills closed cursors in batches", my_manager)
//
// The SDK's types are C++ types: host and plugin must be built with the same
// compiler, standard library and Boost, which the build key records and the host checks.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <type_traits>

#include <boost/dll/alias.hpp>
#include <boost/version.hpp>

#include "trellis/bson/document.hpp"

/// SDK interfaces keep default visibility so that their type information is
/// shared between the host and plugins built with -fvisibility=hidden
/// (dynamic_cast to the kind's interface relies on it).
#define TRELLIS_SDK_VISIBLE __attribute__((visibility("default")))

namespace trellis::sdk {

/// Changes whenever a declaration of this SDK changes incompatibly.
inline constexpr std::uint32_t abi_version = 4;

/// How a binary was built, as far as the SDK's C++ types depend on it. Plain data: the host
/// compares it field by field before it trusts anything else in the descriptor.
struct build_key {
    std::uint32_t trellis_abi;      // abi_version
    const char* compiler;           // "GCC", "Clang"
    std::uint32_t compiler_major;   // __GNUC__ / __clang_major__
    const char* standard_library;   // "libstdc++", "libc++"
    std::uint32_t library_abi;      // _GLIBCXX_USE_CXX11_ABI (1: the C++11 std::string and std::list)
    std::uint32_t boost_version;    // BOOST_VERSION, e.g. 108100 for 1.81.0
};

/// The build key of the translation unit that includes this header (evaluated at compile time:
/// TRELLIS_PLUGIN stores it in an object of the plugin's own, never shared with the host).
constexpr build_key this_build_key() noexcept {
    return {
    abi_version,
#if defined(__clang__)
    "Clang", __clang_major__,
#elif defined(__GNUC__)
    "GCC", __GNUC__,
#else
    "unknown", 0,
#endif
#if defined(_LIBCPP_VERSION)
    "libc++", 0,
#elif defined(__GLIBCXX__)
    "libstdc++", _GLIBCXX_USE_CXX11_ABI,
#else
    "unknown", 0,
#endif
    BOOST_VERSION,
    };
}

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
    /// How the plugin was built; the host refuses a plugin whose key differs from its own.
    const build_key* build;
    /// What the plugin provides besides its name, null-terminated (an authenticator's mechanisms,
    /// e.g. {"SCRAM-SHA-1", "SCRAM-SHA-256", nullptr}); may be null. Read without instantiating.
    const char* const* provides;
};

/// A plugin class that provides more than its name declares, as a static member:
///   static constexpr const char* provides[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", nullptr};
template <class C>
constexpr const char* const* provides_of() noexcept {
    if constexpr (requires { C::provides; })
        return C::provides;
    else
        return nullptr;
}

/// The exported symbol name.
inline constexpr const char* descriptor_symbol = "trellis_plugin";

}  // namespace trellis::sdk

/// Exports a plugin: kind (an sdk::plugin_kind enumerator name), name, version,
/// description, and the class to create. The class is constructed from a
/// const plugin_context& when it accepts one, otherwise default-constructed; its static
/// `provides` member, if any, goes into the descriptor.
#define TRELLIS_PLUGIN(kind_, name_, version_, description_, class_)                                        \
    namespace {                                                                                             \
    std::unique_ptr<::trellis::sdk::plugin> trellis_plugin_create(const ::trellis::sdk::plugin_context& ctx) { \
        if constexpr (std::is_constructible_v<class_, const ::trellis::sdk::plugin_context&>)                \
            return std::make_unique<class_>(ctx);                                                           \
        else                                                                                                \
            return ((void)ctx, std::make_unique<class_>());                                                 \
    }                                                                                                       \
    constexpr ::trellis::sdk::build_key trellis_plugin_build_key = ::trellis::sdk::this_build_key();        \
    const ::trellis::sdk::plugin_descriptor trellis_plugin_descriptor_object{                               \
        ::trellis::sdk::abi_version, ::trellis::sdk::plugin_kind::kind_, name_, version_, description_,     \
        &trellis_plugin_create, &trellis_plugin_build_key,         ::trellis::sdk::provides_of<class_>()};    \
    }                                                                                                       \
    BOOST_DLL_ALIAS(trellis_plugin_descriptor_object, trellis_plugin)
