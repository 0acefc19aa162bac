// trellis config check FILE: loads a TOML configuration file and prints the effective options,
// grouped as the file groups them, so that the result of the URI and the file's overrides can
// be read before a client ever starts.
#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>

#include "cli.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/config.hpp"

namespace trellis::cli {
namespace {

constexpr const char* config_usage =
    "usage: trellis config SUBCOMMAND ...\n"
    "  check FILE\n"
    "      Loads a TOML configuration file (see docs/configuration.md) and prints the effective\n"
    "      options, one 'key = value' per line; exits 2 with the error's file:line:column if\n"
    "      the file cannot be used.\n";

constexpr const char* check_usage =
    "usage: trellis config check FILE\n"
    "Loads FILE, merges its [client] uri with the file's other keys (the keys win), checks the\n"
    "result and prints the effective options; passwords are shown as ***.\n"
    "Exit status: 0 the file is usable, 2 it is not (one line on stderr: file:line:column: message).\n";

bool wants_help(args a) {
    for (auto s : a)
        if (s == "--help" || s == "-h") return true;
    return false;
}

std::string toml_quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + '"';
}

std::string bare_or_quoted(std::string_view key) {
    const auto bare = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    };
    if (!key.empty() && std::all_of(key.begin(), key.end(), bare)) return std::string(key);
    return toml_quoted(key);
}

std::string address(const server_address& a) {
    const std::string host = a.type == host_type::ip_literal ? "[" + a.host + "]" : a.host;
    if (a.type == host_type::unix_socket) return toml_quoted(host);
    return toml_quoted(host + ":" + std::to_string(a.port_or_default()));
}

// The listing: one "key = value" per line under [table] headings, values written as TOML
// would write them; "(not set)" for an option nobody gave and that has no default.
class listing {
public:
    void table(std::string_view name) {
        if (!out_.str().empty()) out_ << '\n';
        out_ << '[' << name << "]\n";
    }
    void raw(std::string_view key, const std::string& value) { out_ << key << " = " << value << '\n'; }

    void value(std::string_view key, const std::string& v) { raw(key, toml_quoted(v)); }
    void value(std::string_view key, const char* v) { raw(key, toml_quoted(v)); }
    void value(std::string_view key, bool v) { raw(key, v ? "true" : "false"); }
    void value(std::string_view key, std::int64_t v) { raw(key, std::to_string(v)); }
    void value(std::string_view key, std::uint32_t v) { raw(key, std::to_string(v)); }
    void value(std::string_view key, int v) { raw(key, std::to_string(v)); }
    void value(std::string_view key, std::uint16_t v) { raw(key, std::to_string(v)); }
    template <class Rep, class Period>
    void value(std::string_view key, std::chrono::duration<Rep, Period> d) {
        raw(key, std::to_string(d.count()));
    }
    template <class T>
    void value(std::string_view key, const std::optional<T>& v) {
        if (v) value(key, *v);
        else raw(key, "(not set)");
    }
    void secret(std::string_view key, const std::optional<std::string>& v) { raw(key, v ? "\"***\"" : "(not set)"); }
    void strings(std::string_view key, const std::vector<std::string>& list) {
        std::string text = "[";
        for (const std::string& s : list) text += (text.size() > 1 ? ", " : "") + toml_quoted(s);
        raw(key, text + "]");
    }

    std::string str() const { return out_.str(); }

private:
    std::ostringstream out_;
};

std::string effective_options(const config& cfg) {
    const client_options& o = cfg.options;
    listing l;

    l.table("client");
    std::string host_list = "[";
    for (const server_address& a : o.hosts) host_list += (host_list.size() > 1 ? ", " : "") + address(a);
    l.raw("hosts", host_list + "]");
    if (o.is_srv) {
        l.value("srv_host", o.srv_host);
        l.value("srv_service_name", o.srv_service_name);
        l.value("srv_max_hosts", o.srv_max_hosts);
    }
    l.value("database", o.database);
    l.value("app_name", o.app_name);
    l.value("replica_set", o.replica_set);
    l.value("direct_connection", o.direct_connection);
    l.value("load_balanced", o.load_balanced);
    l.value("retry_reads", o.retry_reads);
    l.value("retry_writes", o.retry_writes);
    l.strings("compressors", o.compressors);
    l.value("zlib_compression_level", o.zlib_compression_level);
    l.value("read_concern", o.read_concern.level);
    l.value("timeout_ms", o.timeout);

    l.table("pool");
    l.value("max_size", o.max_pool_size);
    l.value("min_size", o.min_pool_size);
    l.value("max_connecting", o.max_connecting);
    l.value("max_idle_time_ms", o.max_idle_time);
    l.value("wait_queue_timeout_ms", o.wait_queue_timeout);

    l.table("monitoring");
    l.value("heartbeat_frequency_ms", o.heartbeat_frequency);
    l.value("server_monitoring_mode", std::string(to_string(o.server_monitoring_mode)));
    l.value("connect_timeout_ms", o.connect_timeout);
    l.value("socket_timeout_ms", o.socket_timeout);

    l.table("selection");
    l.value("server_selection_timeout_ms", o.server_selection_timeout);
    l.value("local_threshold_ms", o.local_threshold);
    l.value("server_selection_try_once", o.server_selection_try_once);

    l.table("read_preference");
    const read_preference& rp = o.read_preference;
    l.value("mode", std::string(to_string(rp.mode)));
    std::string sets = "[";
    for (const tag_set& s : rp.tag_sets) {
        std::string one = "{";
        for (const auto& [k, v] : s) one += (one.size() > 1 ? ", " : "") + bare_or_quoted(k) + " = " + toml_quoted(v);
        sets += (sets.size() > 1 ? ", " : "") + one + "}";
    }
    l.raw("tag_sets", sets + "]");
    l.value("max_staleness_s", rp.max_staleness);

    l.table("write_concern");
    const write_concern& wc = o.write_concern;
    if (!wc.w) l.raw("w", "(not set)");
    else if (const auto* n = std::get_if<std::int32_t>(&*wc.w)) l.value("w", static_cast<std::int64_t>(*n));
    else l.value("w", std::get<std::string>(*wc.w));
    l.value("wtimeout_ms", wc.wtimeout);
    l.value("journal", wc.journal);
    l.value("fsync", wc.fsync);

    l.table("tls");
    const tls_options& t = o.tls;
    l.value("enabled", t.enabled);
    l.value("ca_file", t.ca_file);
    l.value("certificate_key_file", t.certificate_key_file);
    l.secret("certificate_key_file_password", t.certificate_key_file_password);
    l.value("allow_invalid_certificates", t.allow_invalid_certificates);
    l.value("allow_invalid_hostnames", t.allow_invalid_hostnames);
    l.value("insecure", t.insecure);
    l.value("disable_ocsp_endpoint_check", t.disable_ocsp_endpoint_check);
    l.value("disable_certificate_revocation_check", t.disable_certificate_revocation_check);

    l.table("proxy");
    l.value("host", o.proxy.host);
    l.value("port", o.proxy.port);
    l.value("username", o.proxy.username);
    l.secret("password", o.proxy.password);

    l.table("auth");
    const auth_options& a = o.auth;
    l.value("username", a.username);
    l.secret("password", a.password);
    if (a.mechanism) l.value("mechanism", std::string(to_string(*a.mechanism)));
    else l.raw("mechanism", "(not set)");
    l.value("source", a.source);
    std::string props = "{";
    for (const auto& [k, v] : a.mechanism_properties)
        props += (props.size() > 1 ? ", " : "") + bare_or_quoted(k) + " = " + toml_quoted(v);
    l.raw("mechanism_properties", props + "}");

    if (o.is_srv || !o.dns_servers.empty() || o.srv_rescan_interval) {
        l.table("dns");
        l.strings("servers", o.dns_servers);
        l.value("rescan_srv_interval_ms", o.srv_rescan_interval);
    }

    l.table("topology");
    const topology_settings& top = cfg.topology;
    l.value("strategy", std::string(to_string(top.strategy)));
    if (top.master) l.raw("master", address(*top.master));
    if (top.strategy == topology_settings::strategy_type::master_slave) {
        std::string slaves = "[";
        for (const server_address& s : top.slaves) slaves += (slaves.size() > 1 ? ", " : "") + address(s);
        l.raw("slaves", slaves + "]");
    }

    l.table("plugins");
    std::vector<std::string> paths;
    for (const auto& p : cfg.plugins.paths) paths.push_back(p.string());
    l.strings("paths", paths);
    l.value("cursor_manager", cfg.plugins.cursor_manager);
    // Plugin settings are the plugin's business: shown as the BSON the plugin receives.
    for (const auto& [name, doc] : cfg.plugins.tables) {
        l.table("plugins." + bare_or_quoted(name));
        for (const bson::element& e : doc.view()) {
            std::string json;
            bson::to_json(e, json);
            l.raw(bare_or_quoted(e.key()), json);
        }
    }
    return l.str();
}

int check(args a) {
    if (wants_help(a)) {
        std::cout << check_usage;
        return exit_ok;
    }
    std::string_view path;
    for (auto s : a) {
        if (s.starts_with("-")) throw usage_error{"config check: unknown option " + std::string(s)};
        if (!path.empty()) throw usage_error{"config check: more than one FILE given"};
        path = s;
    }
    if (path.empty()) throw usage_error{"config check: FILE is required"};
    config cfg;
    try {
        cfg = load_config_file(std::filesystem::path(path));
    } catch (const config_error& e) {
        // One line, whatever a message holds: scripts read the first line of stderr.
        std::string line = e.diagnostic();
        for (char& c : line)
            if (c == '\n' || c == '\r') c = ' ';
        std::cerr << "trellis: " << line << '\n';
        return exit_usage;
    }
    for (const std::string& w : cfg.warnings) std::cerr << "trellis: warning: " << path << ": " << w << '\n';
    std::cout << effective_options(cfg);
    return exit_ok;
}

}  // namespace

int config_command(args a) {
    if (a.empty()) throw usage_error{"config: a subcommand is required (check)"};
    if (a[0] == "--help" || a[0] == "-h") {
        std::cout << config_usage;
        return exit_ok;
    }
    if (a[0] == "check") return check(a.subspan(1));
    throw usage_error{"config: unknown subcommand \"" + std::string(a[0]) + "\""};
}

}  // namespace trellis::cli
