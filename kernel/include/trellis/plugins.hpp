// The plugin host: finds plugin libraries, checks them, creates plugin objects.
//
// Search order: the directories (or files) of $TRELLIS_PLUGIN_PATH (':'-separated),
// then the configured paths (TOML [plugins] paths), then lib/trellis/plugins beside
// libtrellis itself (the build tree's or the installation's, wherever its prefix is).
// Within a directory, files are taken in name order. The first plugin of a kind and
// name wins; a later one is reported as a duplicate.
//
// A file that is missing, is not a shared library, lacks the descriptor, has
// another SDK ABI version or another build key (compiler, standard library, Boost)
// is reported with its path and reason; the others still load. Scanning reads
// descriptors only: no factory runs until create(). Scanning happens once, on
// first use, and is thread-safe. A library that has made an object stays loaded
// until the process ends (docs/plugins.md says why).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdk/plugin.hpp"

namespace trellis {

struct plugin_info {
    std::filesystem::path file;
    std::optional<sdk::plugin_kind> kind;  // unknown until the descriptor is read
    std::string name;
    std::string version;
    std::string description;
    std::vector<std::string> provides;  // e.g. an authenticator's mechanisms, from the descriptor
    bool loaded = false;
    std::string error;  // why it failed, when !loaded
};

struct plugin_search_options {
    /// Paths from the configuration, searched after $TRELLIS_PLUGIN_PATH.
    std::vector<std::filesystem::path> paths;
    /// Read $TRELLIS_PLUGIN_PATH (on by default).
    bool use_environment = true;
    /// Search the build tree and the installation (on by default; tests turn it off).
    bool use_default_locations = true;
};

/// Why a plugin built as `plugin` cannot be used by a host built as `host`, in words
/// ("built with Boost 1.83, this Trellis uses 1.81"); empty when they match.
std::string build_key_mismatch(const sdk::build_key& plugin, const sdk::build_key& host);

class plugin_registry {
public:
    explicit plugin_registry(plugin_search_options options = {});
    ~plugin_registry();
    plugin_registry(const plugin_registry&) = delete;
    plugin_registry& operator=(const plugin_registry&) = delete;

    /// Every plugin found, in search order, with its state. Scans on first call.
    const std::vector<plugin_info>& plugins();
    /// The directories and files searched, in order.
    std::vector<std::filesystem::path> search_path() const;

    /// A new plugin object of this kind and name; the object keeps its library loaded.
    /// Throws plugin_error naming the file and the reason (or "no <kind> plugin named <name>",
    /// listing the ones there are).
    std::shared_ptr<sdk::plugin> create(sdk::plugin_kind kind, std::string_view name,
                                        bson::document_view settings = bson::document_view());

    template <class Interface>
    std::shared_ptr<Interface> create_as(sdk::plugin_kind kind, std::string_view name,
                                         bson::document_view settings = bson::document_view()) {
        auto p = create(kind, name, settings);
        auto typed = std::dynamic_pointer_cast<Interface>(p);
        if (!typed)
            throw plugin_error("", std::string(sdk::to_string(kind)),
                               "plugin \"" + std::string(name) + "\" does not implement the " +
                                   std::string(sdk::to_string(kind)) + " interface");
        return typed;
    }

    struct impl;

private:
    void scan();
    std::unique_ptr<impl> impl_;
    std::once_flag scanned_;
};

}  // namespace trellis
