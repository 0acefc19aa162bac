// TOML configuration files: one file configures an embedded client.
//
// A file gives the same client_options a connection string gives (trellis/options.hpp), plus
// what a URI cannot say: the topology strategy plugin to use and the plugins to load, with a
// table of settings for each. docs/configuration.md lists every key.
//
//     trellis::config cfg = trellis::load_config_file("/etc/trellis/trellis.toml");
//     trellis::client client(cfg.options);
//     for (const auto& [name, settings] : cfg.plugins.tables) registry.configure(name, settings);
//
// Precedence: [client] uri is parsed first; every other key set in the file then replaces the
// value the URI gave. The merged options pass trellis::validate().
//
// toml++ stays out of this header: the plugin tables are handed over as BSON, the project's
// value type, so a plugin reads its settings through bson::document_view.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/errors.hpp"
#include "trellis/options.hpp"

namespace trellis {

/// [topology]: which topology strategy plugin drives server discovery.
struct topology_settings {
    enum class strategy_type {
        auto_,         ///< decided from the first replies, as the SDAM spec does
        standalone,    ///< one server, used directly
        replica_set,   ///< a replica set (the URI's replicaSet names it)
        master_slave,  ///< the legacy master/slave pair: one writable master, read-only slaves
        mongos,        ///< one or more mongos routers
    };

    strategy_type strategy = strategy_type::auto_;
    /// master_slave only, and then required.
    std::optional<server_address> master;
    /// master_slave only, and then required to be non-empty.
    std::vector<server_address> slaves;

    friend bool operator==(const topology_settings&, const topology_settings&) = default;
};

/// "auto", "standalone", "replica_set", "master_slave", "mongos": the spelling the file uses.
std::string_view to_string(topology_settings::strategy_type s) noexcept;

/// [plugins] and the [plugins.<name>] tables.
struct plugin_settings {
    /// Files or directories to load plugins from, in the order given. A relative path in a
    /// file read by load_config_file() is resolved against that file's directory.
    std::vector<std::filesystem::path> paths;
    /// The cursor manager plugin to use, by name; unset: the default one.
    std::optional<std::string> cursor_manager;
    /// [plugins.<name>] tables, keyed by plugin name, converted to BSON: TOML integers become
    /// int64, floats double, booleans, strings, arrays and tables themselves, date-times
    /// date_time (a local date-time or date is taken as UTC). Keys keep the file's order.
    std::map<std::string, bson::document, std::less<>> tables;

    /// The table for a plugin, or an empty document when the file has none.
    bson::document_view table(std::string_view plugin_name) const noexcept;
};

/// Everything a configuration file says.
struct config {
    client_options options;
    topology_settings topology;
    plugin_settings plugins;
    /// What parse_uri() warned about in [client] uri (unknown options, ignored values).
    std::vector<std::string> warnings;
};

/// A configuration file that cannot be used: TOML syntax, an unknown key, a value of the wrong
/// type or range, or options that validate() rejects once merged. diagnostic() is
/// "<file>:<line>:<column>: <message>", e.g.
///     trellis.toml:5:12: pool.max_size must be a positive integer, got -3
/// and "<file>: <message>" when no place in the file is to blame (an unreadable file); what()
/// is that followed by the error category's text, as for every trellis::error.
class config_error : public configuration_error {
public:
    config_error(std::string file, std::size_t line, std::size_t column, std::string key_path, std::string message);

    const std::string& file() const noexcept { return file_; }
    /// 1-based; 0 when the error has no position.
    std::size_t line() const noexcept { return line_; }
    std::size_t column() const noexcept { return column_; }
    /// The dotted key the error is about ("pool.max_size"); empty for a syntax error.
    const std::string& key_path() const noexcept { return key_path_; }
    /// The message without the location prefix.
    const std::string& message() const noexcept { return message_; }
    /// "<file>:<line>:<column>: <message>", the one line a tool prints.
    const std::string& diagnostic() const noexcept { return diagnostic_; }

private:
    std::string file_;
    std::size_t line_;
    std::size_t column_;
    std::string key_path_;
    std::string message_;
    std::string diagnostic_;
};

/// Reads and parses a configuration file. Messages name the path as given. Relative paths in
/// the file ([plugins] paths, tls.ca_file, tls.certificate_key_file) are resolved against the
/// file's directory. Throws config_error.
config load_config_file(const std::filesystem::path& file);

/// Parses configuration text; source_name is the file name used in messages. Relative paths
/// are resolved against base_directory, or kept as written when it is empty. Throws config_error.
config parse_config(std::string_view toml_text, std::string_view source_name,
                    const std::filesystem::path& base_directory = {});

}  // namespace trellis
