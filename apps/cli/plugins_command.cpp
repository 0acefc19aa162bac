// trellis plugins [--json]: every plugin found, with its state.
#include <iomanip>
#include <iostream>

#include "cli.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/plugins.hpp"

namespace trellis::cli {

namespace {
std::string provided(const plugin_info& p) {
    std::string out;
    for (const auto& what : p.provides) out += (out.empty() ? " (" : ", ") + what;
    return out.empty() ? out : out + ")";
}
}  // namespace

int plugins_command(args a) {
    bool json = false;
    for (auto s : a) {
        if (s == "--help" || s == "-h") {
            std::cout << "usage: trellis plugins [--json]\n"
                         "Lists every plugin found on the search path ($TRELLIS_PLUGIN_PATH, then lib/trellis/plugins\n"
                         "beside libtrellis): kind, name, version, what it provides, file, and state (loaded, or\n"
                         "failed: reason, e.g. another build key). Reads descriptors only: no plugin is instantiated.\n"
                         "Exit status 0 even when some plugins failed: the listing is the report.\n";
            return exit_ok;
        }
        if (s == "--json") json = true;
        else throw usage_error{"plugins: unknown option " + std::string(s)};
    }
    plugin_registry registry;
    const auto& plugins = registry.plugins();
    if (json) {
        bson::builder b;
        b.open_array("search_path");
        for (const auto& p : registry.search_path()) b.append(p.string());
        b.close_array().open_array("plugins");
        for (const auto& p : plugins) {
            b.open_document()
                .append("kind", p.kind ? std::string(sdk::to_string(*p.kind)) : std::string())
                .append("name", p.name)
                .append("version", p.version)
                .append("file", p.file.string())
                .append("state", p.loaded ? std::string("loaded") : "failed: " + p.error)
                .append("description", p.description)
                .open_array("provides");
            for (const auto& what : p.provides) b.append(what);
            b.close_array().close_document();
        }
        b.close_array();
        std::cout << bson::to_json(b.extract()) << '\n';
        return exit_ok;
    }
    if (plugins.empty()) {
        std::cout << "no plugins found; searched:\n";
        for (const auto& p : registry.search_path()) std::cout << "  " << p.string() << '\n';
        return exit_ok;
    }
    std::cout << std::left << std::setw(18) << "KIND" << std::setw(14) << "NAME" << std::setw(9) << "VERSION"
              << "STATE / FILE\n";
    for (const auto& p : plugins) {
        std::cout << std::setw(18) << (p.kind ? std::string(sdk::to_string(*p.kind)) : std::string("?")) << std::setw(14)
                  << (p.name.empty() ? "?" : p.name) << std::setw(9) << (p.version.empty() ? "?" : p.version)
                  << (p.loaded ? std::string("loaded") : "failed: " + p.error) << provided(p) << "\n"
                  << std::setw(41) << "" << p.file.string() << '\n';
    }
    return exit_ok;
}

}  // namespace trellis::cli
