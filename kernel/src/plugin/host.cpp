#define BOOST_DLL_USE_STD_FS
#include <dlfcn.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <fstream>
#include <map>

#include "trellis/plugins.hpp"

namespace trellis {

namespace fs = std::filesystem;

struct plugin_registry::impl {
    plugin_search_options options;
    std::vector<plugin_info> infos;
    // Parallel to infos: the library and descriptor of each loaded plugin.
    std::vector<std::shared_ptr<boost::dll::shared_library>> libraries;
    std::vector<const sdk::plugin_descriptor*> descriptors;
};

namespace {

// Opens a plugin file once: the library, or why it cannot be loaded, in words (Boost.DLL's own
// error says "Bad file descriptor" for a missing file and a text file alike, and a second
// dlopen just to read dlerror() would run the loader again).
std::shared_ptr<boost::dll::shared_library> open_library(const fs::path& file, std::string& why) {
    std::error_code ec;
    if (!fs::exists(file, ec)) {
        why = "missing: no such file";
        return nullptr;
    }
    if (!fs::is_regular_file(file, ec)) {
        why = "not a regular file";
        return nullptr;
    }
    {
        std::ifstream in(file, std::ios::binary);
        char magic[4] = {};
        in.read(magic, 4);
        if (in.gcount() < 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F') {
            why = "not a shared library (no ELF header)";
            return nullptr;
        }
    }
    dlerror();
    void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* text = dlerror();
        why = std::string("cannot be loaded: ") + (text ? text : "unknown dlopen error");
        return nullptr;
    }
    // Boost.DLL takes its own reference to the library loaded above (no second load), then ours goes.
    boost::dll::fs::error_code bec;
    auto lib = std::make_shared<boost::dll::shared_library>(
        file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, bec);
    dlclose(handle);
    if (bec || !lib->is_loaded()) {
        why = "cannot be loaded: " + bec.message();
        return nullptr;
    }
    return lib;
}

std::string boost_version_text(std::uint32_t v) {
    return std::to_string(v / 100000) + "." + std::to_string(v / 100 % 1000) +
           (v % 100 ? "." + std::to_string(v % 100) : std::string());
}

std::string text_or(const char* s) { return s ? std::string(s) : std::string("(null)"); }

}  // namespace

std::string build_key_mismatch(const sdk::build_key& plugin, const sdk::build_key& host) {
    if (plugin.trellis_abi != host.trellis_abi)
        return "built for Trellis SDK ABI " + std::to_string(plugin.trellis_abi) + ", this Trellis uses " +
               std::to_string(host.trellis_abi);
    if (text_or(plugin.compiler) != text_or(host.compiler) || plugin.compiler_major != host.compiler_major)
        return "built with " + text_or(plugin.compiler) + " " + std::to_string(plugin.compiler_major) +
               ", this Trellis with " + text_or(host.compiler) + " " + std::to_string(host.compiler_major);
    if (text_or(plugin.standard_library) != text_or(host.standard_library))
        return "built with " + text_or(plugin.standard_library) + ", this Trellis with " + text_or(host.standard_library);
    if (plugin.library_abi != host.library_abi)
        return "built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(plugin.library_abi) +
               ", this Trellis with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(host.library_abi);
    if (plugin.boost_version != host.boost_version)
        return "built with Boost " + boost_version_text(plugin.boost_version) + ", this Trellis uses " +
               boost_version_text(host.boost_version);
    return {};
}

namespace {

std::vector<fs::path> split_path_list(const char* text) {
    std::vector<fs::path> out;
    if (!text) return out;
    std::string_view s(text);
    while (!s.empty()) {
        const auto colon = s.find(':');
        const std::string_view part = s.substr(0, colon);
        if (!part.empty()) out.emplace_back(std::string(part));
        if (colon == std::string_view::npos) break;
        s.remove_prefix(colon + 1);
    }
    return out;
}

bool is_library_name(const fs::path& p) {
    const std::string name = p.filename().string();
    return p.extension() == ".so" || name.find(".so.") != std::string::npos;
}

}  // namespace

namespace {
void pin_for_process(const fs::path& file) {
    dlerror();
    if (void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)) dlclose(h);
}
}  // namespace

plugin_registry::plugin_registry(plugin_search_options options) : impl_(std::make_unique<impl>()) {
    impl_->options = std::move(options);
}

plugin_registry::~plugin_registry() = default;

namespace {

struct search_entry {
    fs::path path;
    bool named;  // given by the user ($TRELLIS_PLUGIN_PATH or the configuration): report it when missing
};

std::vector<search_entry> search_entries(const plugin_search_options& options) {
    std::vector<search_entry> out;
    if (options.use_environment)
        for (auto& p : split_path_list(std::getenv("TRELLIS_PLUGIN_PATH"))) out.push_back({p, true});
    for (const auto& p : options.paths) out.push_back({p, true});
    if (options.use_default_locations) {
        // lib/trellis/plugins beside libtrellis itself: the build tree and every installed
        // tree share this layout, so an installed library finds its own plugins wherever the
        // prefix is, and never a build tree's.
        std::error_code ec;
        const fs::path self = boost::dll::this_line_location(ec);
        if (!ec) out.push_back({self.parent_path() / "trellis" / "plugins", false});
    }
    // The same directory reached twice is searched once.
    std::vector<search_entry> unique;
    for (auto& e : out) {
        std::error_code ec;
        const fs::path canonical = fs::weakly_canonical(e.path, ec);
        if (!ec) e.path = canonical;
        if (std::none_of(unique.begin(), unique.end(), [&](const search_entry& u) { return u.path == e.path; }))
            unique.push_back(e);
    }
    return unique;
}

}  // namespace

std::vector<fs::path> plugin_registry::search_path() const {
    std::vector<fs::path> out;
    for (const auto& e : search_entries(impl_->options)) out.push_back(e.path);
    return out;
}

void plugin_registry::scan() {
    impl& d = *impl_;
    std::map<std::pair<sdk::plugin_kind, std::string>, fs::path> first;
    auto add_failed = [&](const fs::path& file, std::optional<sdk::plugin_kind> kind, std::string why) {
        plugin_info info;
        info.file = file;
        info.kind = kind;
        info.error = std::move(why);
        d.infos.push_back(std::move(info));
        d.libraries.push_back(nullptr);
        d.descriptors.push_back(nullptr);
    };
    const sdk::build_key host_key = sdk::this_build_key();
    auto consider = [&](const fs::path& file) {
        std::string why;
        auto lib = open_library(file, why);
        if (!lib) return add_failed(file, std::nullopt, why);
        if (!lib->has(sdk::descriptor_symbol))
            return add_failed(file, std::nullopt, "no Trellis plugin descriptor (symbol \"trellis_plugin\")");
        const auto& desc = lib->get_alias<const sdk::plugin_descriptor>(sdk::descriptor_symbol);
        // Only abi_version may be read before it is checked.
        if (desc.abi_version != sdk::abi_version)
            return add_failed(file, std::nullopt,
                              "SDK ABI version " + std::to_string(desc.abi_version) + ", this host needs " +
                                  std::to_string(sdk::abi_version));
        // Then the build key: nothing else of a plugin built another way is trusted.
        if (!desc.build) return add_failed(file, std::nullopt, "no build key in the descriptor");
        if (auto why = build_key_mismatch(*desc.build, host_key); !why.empty()) return add_failed(file, std::nullopt, why);
        const std::string_view kind_name = sdk::to_string(desc.kind);
        if (kind_name == "unknown")
            return add_failed(file, std::nullopt, "unknown plugin kind " + std::to_string(static_cast<std::uint32_t>(desc.kind)));
        if (!desc.name || !*desc.name || !desc.version || !desc.description || !desc.create)
            return add_failed(file, desc.kind, "incomplete descriptor (name, version, description and factory are required)");
        plugin_info info;
        info.file = file;
        info.kind = desc.kind;
        info.name = desc.name;
        info.version = desc.version;
        info.description = desc.description;
        if (desc.provides)
            for (const char* const* p = desc.provides; *p; ++p) info.provides.emplace_back(*p);
        const auto key = std::make_pair(desc.kind, info.name);
        if (auto it = first.find(key); it != first.end()) {
            info.error = "duplicate: " + std::string(kind_name) + " \"" + info.name + "\" is already provided by " +
                         it->second.string();
            d.infos.push_back(std::move(info));
            d.libraries.push_back(nullptr);
            d.descriptors.push_back(nullptr);
            return;
        }
        // No factory runs here: a scan reads descriptors only.
        info.loaded = true;
        first.emplace(key, file);
        d.libraries.push_back(info.loaded ? lib : nullptr);
        d.descriptors.push_back(&desc);
        d.infos.push_back(std::move(info));
    };

    for (const search_entry& entry : search_entries(d.options)) {
        std::error_code ec;
        if (fs::is_directory(entry.path, ec)) {
            std::vector<fs::path> files;
            for (const auto& f : fs::directory_iterator(entry.path, ec))
                if (is_library_name(f.path())) files.push_back(f.path());
            std::sort(files.begin(), files.end());
            for (const auto& f : files) consider(f);
        } else if (fs::exists(entry.path, ec)) {
            consider(entry.path);
        } else if (entry.named) {
            // Absent default locations (no build tree, not installed) are normal; a path
            // the user named is worth reporting.
            add_failed(entry.path, std::nullopt, "missing: no such file or directory");
        }
    }
}

const std::vector<plugin_info>& plugin_registry::plugins() {
    std::call_once(scanned_, [this] { scan(); });
    return impl_->infos;
}

std::shared_ptr<sdk::plugin> plugin_registry::create(sdk::plugin_kind kind, std::string_view name,
                                                     bson::document_view settings) {
    const auto& infos = plugins();
    std::string available;
    for (std::size_t i = 0; i < infos.size(); ++i) {
        const plugin_info& info = infos[i];
        if (info.kind != kind) continue;
        if (info.loaded) available += (available.empty() ? "" : ", ") + info.name;
        if (info.name != name || !info.loaded) continue;
        std::shared_ptr<boost::dll::shared_library> lib = impl_->libraries[i];
        std::unique_ptr<sdk::plugin> object;
        try {
            object = impl_->descriptors[i]->create(sdk::plugin_context{settings});
        } catch (const std::exception& e) {
            throw plugin_error(info.file.string(), std::string(sdk::to_string(kind)),
                               info.file.string() + ": " + std::string(sdk::to_string(kind)) + " \"" + info.name +
                                   "\": factory threw: " + e.what());
        }
        if (!object)
            throw plugin_error(info.file.string(), std::string(sdk::to_string(kind)),
                               info.file.string() + ": factory returned nothing");
        // A library that has made an object stays loaded until the process ends: its code may
        // still run after the object is gone (a queued completion, a handler it gave out, a
        // vtable of an exception in flight). RTLD_NOLOAD on a loaded library only adds the flag.
        pin_for_process(info.file);
        return std::shared_ptr<sdk::plugin>(object.release(), [lib](sdk::plugin* p) { delete p; });
    }
    for (const plugin_info& info : infos)
        if (info.kind == kind && info.name == name)
            throw plugin_error(info.file.string(), std::string(sdk::to_string(kind)),
                               info.file.string() + ": " + std::string(sdk::to_string(kind)) + " \"" + info.name +
                                   "\" failed to load: " + info.error);
    throw plugin_error("", std::string(sdk::to_string(kind)),
                       "no " + std::string(sdk::to_string(kind)) + " plugin named \"" + std::string(name) + "\"" +
                           (available.empty() ? " (none found)" : " (found: " + available + ")"));
}

}  // namespace trellis
