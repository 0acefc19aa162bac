#include "monitor_config.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

namespace trellis::monitor {
namespace {

[[noreturn]] void fail(std::string_view source, const toml::node* node, const std::string& key, const std::string& message) {
    const auto& where = node ? node->source().begin : toml::source_position{};
    throw config_error(std::string(source), where.line, where.column, "monitor." + key, message);
}

double number(std::string_view source, const toml::node& n, const std::string& key) {
    if (auto v = n.value<double>(); v && *v > 0) return *v;
    fail(source, &n, key, "monitor." + key + " must be a positive number");
}

}  // namespace

monitor_file parse_monitor_config(std::string_view toml_text, std::string_view source_name,
                                  const std::filesystem::path& base_directory) {
    toml::table root;
    try {
        root = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& e) {
        throw config_error(std::string(source_name), e.source().begin.line, e.source().begin.column, "",
                           std::string(e.description()));
    }
    monitor_file out;
    if (toml::node* node = root.get("monitor")) {
        toml::table* t = node->as_table();
        if (!t) fail(source_name, node, "", "[monitor] must be a table");
        for (auto&& [k, v] : *t) {
            const std::string key(k.str());
            if (key == "alert_no_primary_s")
                out.monitor.alerts.no_primary_s = number(source_name, v, key);
            else if (key == "alert_rtt_p99_ms")
                out.monitor.alerts.rtt_p99_ms = number(source_name, v, key);
            else if (key == "alert_failed_heartbeats" || key == "canary_interval_ms" || key == "rtt_window") {
                auto i = v.value<std::int64_t>();
                if (!i || *i < 1 || *i > 1'000'000) fail(source_name, &v, key, "monitor." + key + " must be a positive integer");
                if (key == "alert_failed_heartbeats") out.monitor.alerts.failed_heartbeats = static_cast<int>(*i);
                else if (key == "canary_interval_ms") out.monitor.canary_interval_ms = static_cast<int>(*i);
                else out.monitor.rtt_window = static_cast<int>(*i);
            } else if (key == "canary_writes") {
                auto b = v.value<bool>();
                if (!b) fail(source_name, &v, key, "monitor.canary_writes must be a boolean");
                out.monitor.canary_writes = *b;
            } else {
                fail(source_name, &v, key, "unknown key monitor." + key);
            }
        }
    }
    const bool had_monitor = root.contains("monitor");
    root.erase("monitor");
    // The client's reader gets the file with the [monitor] table's lines turned into comments,
    // so that its messages keep the file's line numbers; a [monitor] written some other way
    // (dotted keys, an inline table) makes it get the file re-serialized without it.
    std::string rest;
    bool in_monitor = false, found = false;
    std::istringstream lines{std::string(toml_text)};
    for (std::string line; std::getline(lines, line);) {
        const auto first = line.find_first_not_of(" \t");
        const bool header = first != std::string::npos && line[first] == '[';
        if (header) {
            std::string name = line.substr(first);
            name.erase(std::remove_if(name.begin(), name.end(), [](char c) { return c == ' ' || c == '\t'; }), name.end());
            in_monitor = name.rfind("[monitor]", 0) == 0 || name.rfind("[monitor.", 0) == 0;
            found = found || in_monitor;
        }
        rest += in_monitor ? "# " + line : line;
        rest += '\n';
    }
    if (had_monitor && !found) {
        std::ostringstream serialized;
        serialized << root;
        rest = serialized.str();
    }
    out.client = parse_config(rest, source_name, base_directory);
    return out;
}

monitor_file load_monitor_config(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw config_error(file.string(), 0, 0, "", "cannot read the file");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_monitor_config(text.str(), file.string(), file.parent_path());
}

}  // namespace trellis::monitor
