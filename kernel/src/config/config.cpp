// load_config_file() and parse_config(): a TOML file to the client_options a URI gives, plus
// the topology and plugin settings a URI cannot carry.
//
// The order of work is the precedence rule: [client] uri is parsed first (parse_uri), every
// other key of the file then overwrites the value it names, and validate() checks the result.
// Unknown keys are errors, not warnings: a misspelt key in a file someone edits by hand would
// otherwise be silently ignored, which is the mistake a configuration file makes easiest.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "config/internal.hpp"
#include "trellis/config.hpp"
#include "trellis/dns.hpp"
#include "trellis/uri.hpp"

namespace trellis {
namespace {

using namespace config_detail;
using std::chrono::milliseconds;
using strategy_type = topology_settings::strategy_type;

constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();

// The rule a message states for an integer key.
std::string integer_rule(std::int64_t min, std::int64_t max) {
    if (max == int32_max) {
        if (min == 0) return "a non-negative integer";
        if (min == 1) return "a positive integer";
        return "an integer of at least " + std::to_string(min);
    }
    return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

std::string address_text(const server_address& a) {
    const std::string host = a.type == host_type::ip_literal ? "[" + a.host + "]" : a.host;
    return host + ":" + std::to_string(a.port_or_default());
}

bool same_server(const server_address& a, const server_address& b) {
    return a.host == b.host && a.port_or_default() == b.port_or_default();
}

// The message a configuration_error was made with: what() appends the category's text.
std::string message_of(const configuration_error& e) {
    std::string what = e.what();
    const std::string suffix = ": " + e.code().message();
    if (what.size() > suffix.size() && what.ends_with(suffix)) what.resize(what.size() - suffix.size());
    return what;
}

// One key's value and its dotted path. The accessors check type and range and throw
// config_error pointing at the value: "pool.max_size must be a positive integer, got -3".
class field {
public:
    field(const source_file& source, const toml::node& node, std::string path)
        : source_(source), node_(node), path_(std::move(path)) {}

    const toml::node& node() const noexcept { return node_; }
    const std::string& path() const noexcept { return path_; }

    [[noreturn]] void fail(const std::string& message) const { source_.fail(node_.source().begin, path_, message); }
    [[noreturn]] void expected(std::string_view rule) const {
        fail(path_ + " must be " + std::string(rule) + ", got " + describe(node_));
    }

    std::int64_t integer(std::int64_t min, std::int64_t max) const {
        const std::string rule = integer_rule(min, max);
        const auto* v = node_.as_integer();
        if (!v || v->get() < min) expected(rule);
        if (v->get() > max) {
            if (max == int32_max) fail(path_ + " must be at most " + std::to_string(max) + ", got " + describe(node_));
            expected(rule);
        }
        return v->get();
    }
    std::uint32_t count(std::int64_t min) const { return static_cast<std::uint32_t>(integer(min, int32_max)); }
    milliseconds millis(std::int64_t min) const { return milliseconds(integer(min, int32_max)); }

    bool boolean() const {
        if (const auto* v = node_.as_boolean()) return v->get();
        expected("true or false");
    }

    std::string string() const {
        if (const auto* v = node_.as_string()) return v->get();
        expected("a string");
    }
    std::string non_empty_string() const {
        const auto* v = node_.as_string();
        if (!v || v->get().empty()) expected("a non-empty string");
        return v->get();
    }

    const toml::array& array(std::string_view rule) const {
        if (const auto* v = node_.as_array()) return *v;
        expected(rule);
    }
    const toml::table& table(std::string_view rule) const {
        if (const auto* v = node_.as_table()) return *v;
        expected(rule);
    }

    /// The element of an array or table, as a field of its own ("a.b[2]", "a.b.c").
    field element(const toml::node& child, std::size_t index) const {
        return {source_, child, path_ + "[" + std::to_string(index) + "]"};
    }
    field member(const toml::key& key, const toml::node& child) const {
        return {source_, child, join_key(path_, key.str())};
    }

private:
    const source_file& source_;
    const toml::node& node_;
    std::string path_;
};

template <class E>
struct named {
    std::string_view name;
    E value;
    bool listed = true;  ///< false: an accepted alias, left out of the message's list
};

// A string naming one of a fixed set of values; a near miss gets a suggestion.
template <class E>
E choice(const field& f, std::initializer_list<named<E>> names) {
    const auto* s = f.node().as_string();
    if (s)
        for (const named<E>& n : names)
            if (n.name == s->get()) return n.value;
    std::string rule = "one of";
    std::vector<candidate> candidates;
    for (const named<E>& n : names) {
        if (n.listed) rule += (candidates.empty() ? " " : ", ") + quote(n.name);
        if (n.listed) candidates.push_back({std::string(n.name), std::string(n.name)});
    }
    std::string message = f.path() + " must be " + rule + ", got " + describe(f.node());
    if (s)
        if (auto near = closest(s->get(), candidates)) message += "; did you mean " + quote(*near) + "?";
    f.fail(message);
}

// ---------------------------------------------------------------- the reader state

struct reader {
    reader(std::string_view source_name, std::filesystem::path base_directory)
        : source(std::string(source_name)), base(std::move(base_directory)) {}

    source_file source;
    std::filesystem::path base;
    config result;
    client_options& options() { return result.options; }
    /// Every key the file sets, with the position of its value: validate() names options, and
    /// its messages are pointed at the key that set them.
    std::map<std::string, toml::source_position, std::less<>> set;

    /// A path from the file, resolved against the file's directory when it is relative.
    std::filesystem::path resolve(const std::string& text) const {
        std::filesystem::path p(text);
        if (base.empty() || p.is_absolute()) return p;
        return (base / p).lexically_normal();
    }
};

// "host", "host:port", "[ipv6]:port": parsed by the connection string's own rules.
server_address address(const field& f) {
    const std::string text = f.non_empty_string();
    if (text.find_first_of(",/?@%") != std::string::npos) f.expected("a host or host:port");
    try {
        connection_string cs = parse_uri("mongodb://" + text);
        return cs.options.hosts.at(0);
    } catch (const configuration_error& e) {
        f.fail(f.path() + ": " + message_of(e));
    }
}

std::vector<std::string> string_list(const field& f, std::string_view rule) {
    std::vector<std::string> out;
    std::size_t i = 0;
    for (const toml::node& n : f.array(rule)) {
        const field e = f.element(n, i++);
        out.push_back(e.non_empty_string());
    }
    return out;
}

std::string database_name(const field& f) {
    const std::string db = f.non_empty_string();
    if (db.find_first_of("/\\ \"$") != std::string::npos)
        f.fail(f.path() + " " + quote(db) + " cannot contain '/', '\\', ' ', '\"' or '$'");
    return db;
}

std::vector<tag_set> tag_sets(const field& f) {
    constexpr std::string_view rule = "an array of tables of strings, such as [{dc = \"ny\"}, {}]";
    std::vector<tag_set> out;
    std::size_t i = 0;
    for (const toml::node& n : f.array(rule)) {
        const field set = f.element(n, i++);
        tag_set tags;
        for (const auto& [key, value] : in_file_order(set.table("a table of strings, such as {dc = \"ny\"}")))
            tags.emplace_back(std::string(key->str()), set.member(*key, *value).string());
        out.push_back(std::move(tags));
    }
    return out;
}

std::map<std::string, std::string> mechanism_properties(const field& f) {
    std::map<std::string, std::string> out;
    const toml::table& table = f.table("a table of strings, such as {SERVICE_NAME = \"mongodb\"}");
    for (const auto& [key, value] : in_file_order(table)) {
        const field p = f.member(*key, *value);
        // Stored in upper case, as parse_uri() stores them: the auth spec ignores their case.
        std::string name(key->str());
        for (char& c : name)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        // CANONICALIZE_HOST_NAME is a boolean in older drivers' documentation: take both forms.
        std::string v = value->is_boolean() ? (p.boolean() ? "true" : "false") : p.string();
        if (!out.emplace(name, std::move(v)).second)
            p.fail(p.path() + " repeats " + name + " (property names are case-insensitive)");
    }
    return out;
}

// ---------------------------------------------------------------- the keys

// [server_api]: the declaration its keys fill in, made by the first of them.
server_api& declared_api(reader& r) {
    auto& api = r.options().server_api;
    if (!api) api.emplace();
    return *api;
}

using apply_fn = void (*)(reader&, const field&);

struct key_def {
    std::string_view table;
    std::string_view key;
    /// The connection string option it corresponds to, for validate()'s messages ("" if none).
    std::string_view uri_name;
    apply_fn apply;
};

// Every key the file may hold, table by table. docs/configuration.md lists the same keys: a
// key added here belongs there too.
const std::vector<key_def>& key_defs() {
    static const std::vector<key_def> defs = {
        // [client] uri is read before the walk (see read_uri); here it only counts as known.
        {"client", "uri", "", [](reader&, const field&) {}},
        {"client", "app_name", "appname", [](reader& r, const field& f) { r.options().app_name = f.string(); }},
        {"client", "database", "", [](reader& r, const field& f) { r.options().database = database_name(f); }},
        {"client", "replica_set", "replicaSet",
         [](reader& r, const field& f) { r.options().replica_set = f.non_empty_string(); }},
        {"client", "direct_connection", "directConnection",
         [](reader& r, const field& f) { r.options().direct_connection = f.boolean(); }},
        {"client", "load_balanced", "loadBalanced",
         [](reader& r, const field& f) { r.options().load_balanced = f.boolean(); }},
        {"client", "retry_reads", "retryReads",
         [](reader& r, const field& f) { r.options().retry_reads = f.boolean(); }},
        {"client", "retry_writes", "retryWrites",
         [](reader& r, const field& f) { r.options().retry_writes = f.boolean(); }},
        {"client", "max_adaptive_retries", "maxAdaptiveRetries",
         [](reader& r, const field& f) { r.options().max_adaptive_retries = f.count(0); }},
        {"client", "enable_overload_retargeting", "enableOverloadRetargeting",
         [](reader& r, const field& f) { r.options().enable_overload_retargeting = f.boolean(); }},
        {"client", "compressors", "compressors",
         [](reader& r, const field& f) {
             constexpr std::string_view rule = "an array of compressor names, such as [\"zstd\", \"zlib\"]";
             std::vector<std::string> list;
             std::size_t i = 0;
             for (const toml::node& n : f.array(rule)) {
                 const field e = f.element(n, i++);
                 const std::string name(
                     choice<std::string_view>(e, {{"snappy", "snappy"}, {"zlib", "zlib"}, {"zstd", "zstd"}}));
                 if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
             }
             r.options().compressors = std::move(list);
         }},
        {"client", "zlib_compression_level", "zlibCompressionLevel",
         [](reader& r, const field& f) { r.options().zlib_compression_level = static_cast<int>(f.integer(-1, 9)); }},
        {"client", "read_concern", "readConcernLevel",
         [](reader& r, const field& f) { r.options().read_concern.level = f.non_empty_string(); }},
        {"client", "timeout_ms", "timeoutMS", [](reader& r, const field& f) { r.options().timeout = f.millis(0); }},

        // The Stable API: never from the URI (the spec forbids it), only from here or code.
        {"server_api", "version", "",
         [](reader& r, const field& f) {
             const auto* v = f.node().as_string();
             if (!v || v->get() != server_api::v1)
                 f.fail(f.path() + " must be \"1\", the only Stable API version this driver knows, got " + describe(f.node()));
             declared_api(r).version = v->get();
         }},
        {"server_api", "strict", "", [](reader& r, const field& f) { declared_api(r).strict = f.boolean(); }},
        {"server_api", "deprecation_errors", "",
         [](reader& r, const field& f) { declared_api(r).deprecation_errors = f.boolean(); }},

        {"pool", "max_size", "maxPoolSize", [](reader& r, const field& f) { r.options().max_pool_size = f.count(1); }},
        {"pool", "min_size", "minPoolSize", [](reader& r, const field& f) { r.options().min_pool_size = f.count(0); }},
        {"pool", "max_connecting", "maxConnecting",
         [](reader& r, const field& f) { r.options().max_connecting = f.count(1); }},
        {"pool", "max_idle_time_ms", "maxIdleTimeMS",
         [](reader& r, const field& f) { r.options().max_idle_time = f.millis(0); }},
        {"pool", "wait_queue_timeout_ms", "waitQueueTimeoutMS",
         [](reader& r, const field& f) { r.options().wait_queue_timeout = f.millis(1); }},
        {"pool", "max_kept_reply_buffer_mb", "",
         [](reader& r, const field& f) {
             r.options().max_kept_reply_buffer = static_cast<std::size_t>(f.integer(0, 64)) << 20;
         }},

        {"monitoring", "heartbeat_frequency_ms", "heartbeatFrequencyMS",
         [](reader& r, const field& f) {
             r.options().heartbeat_frequency = f.millis(client_options::min_heartbeat_frequency.count());
         }},
        {"monitoring", "server_monitoring_mode", "serverMonitoringMode",
         [](reader& r, const field& f) {
             using enum monitoring_mode;
             r.options().server_monitoring_mode =
                 choice<monitoring_mode>(f, {{"auto", auto_}, {"stream", stream}, {"poll", poll}});
         }},
        {"monitoring", "connect_timeout_ms", "connectTimeoutMS",
         [](reader& r, const field& f) { r.options().connect_timeout = f.millis(0); }},
        {"monitoring", "socket_timeout_ms", "socketTimeoutMS",
         [](reader& r, const field& f) { r.options().socket_timeout = f.millis(0); }},

        {"dns", "servers", "",
         [](reader& r, const field& f) {
             std::vector<std::string> servers = string_list(f, "an array of DNS server addresses, such as [\"127.0.0.1:5353\"]");
             std::size_t i = 0;
             for (const toml::node& n : f.array("")) {
                 const field e = f.element(n, i++);
                 try {
                     (void)dns::endpoint::parse(e.string());
                 } catch (const configuration_error& err) {
                     e.fail(e.path() + ": " + message_of(err));
                 }
             }
             r.options().dns_servers = std::move(servers);
         }},
        {"dns", "rescan_srv_interval_ms", "",
         [](reader& r, const field& f) { r.options().srv_rescan_interval = f.millis(1); }},

        {"selection", "server_selection_timeout_ms", "serverSelectionTimeoutMS",
         [](reader& r, const field& f) { r.options().server_selection_timeout = f.millis(1); }},
        {"selection", "local_threshold_ms", "localThresholdMS",
         [](reader& r, const field& f) { r.options().local_threshold = f.millis(0); }},
        {"selection", "server_selection_try_once", "serverSelectionTryOnce",
         [](reader& r, const field& f) { r.options().server_selection_try_once = f.boolean(); }},

        {"read_preference", "mode", "readPreference",
         [](reader& r, const field& f) {
             using enum read_preference_mode;
             // The spec spelling is the documented one; the snake_case one is what the rest of
             // the file looks like, so it is accepted too.
             r.options().read_preference.mode = choice<read_preference_mode>(
                 f, {{"primary", primary},
                     {"primaryPreferred", primary_preferred},
                     {"secondary", secondary},
                     {"secondaryPreferred", secondary_preferred},
                     {"nearest", nearest},
                     {"primary_preferred", primary_preferred, false},
                     {"secondary_preferred", secondary_preferred, false}});
         }},
        {"read_preference", "tag_sets", "readPreferenceTags",
         [](reader& r, const field& f) { r.options().read_preference.tag_sets = tag_sets(f); }},
        {"read_preference", "max_staleness_s", "maxStalenessSeconds",
         [](reader& r, const field& f) {
             // -1 is the URI's "no maximum"; here it also undoes a maximum the URI set.
             const auto* v = f.node().as_integer();
             if (!v || v->get() == 0 || v->get() < -1 || v->get() > int32_max)
                 f.expected("a positive number of seconds, or -1 for no maximum");
             if (v->get() == -1) r.options().read_preference.max_staleness.reset();
             else r.options().read_preference.max_staleness = std::chrono::seconds(v->get());
         }},

        {"write_concern", "w", "w",
         [](reader& r, const field& f) {
             write_concern& wc = r.options().write_concern;
             if (f.node().is_integer()) wc.w = static_cast<std::int32_t>(f.integer(0, int32_max));
             else if (f.node().is_string() && !f.node().as_string()->get().empty())
                 wc.w = f.string();
             else f.expected("a number of nodes or a tag such as \"majority\"");
         }},
        {"write_concern", "wtimeout_ms", "wTimeoutMS",
         [](reader& r, const field& f) { r.options().write_concern.wtimeout = f.millis(0); }},
        {"write_concern", "journal", "journal",
         [](reader& r, const field& f) { r.options().write_concern.journal = f.boolean(); }},
        {"write_concern", "fsync", "fsync",
         [](reader& r, const field& f) { r.options().write_concern.fsync = f.boolean(); }},

        {"tls", "enabled", "tls", [](reader& r, const field& f) { r.options().tls.enabled = f.boolean(); }},
        {"tls", "ca_file", "tlsCAFile",
         [](reader& r, const field& f) { r.options().tls.ca_file = r.resolve(f.non_empty_string()).string(); }},
        {"tls", "certificate_key_file", "tlsCertificateKeyFile",
         [](reader& r, const field& f) {
             r.options().tls.certificate_key_file = r.resolve(f.non_empty_string()).string();
         }},
        {"tls", "certificate_key_file_password", "tlsCertificateKeyFilePassword",
         [](reader& r, const field& f) { r.options().tls.certificate_key_file_password = f.string(); }},
        {"tls", "allow_invalid_certificates", "tlsAllowInvalidCertificates",
         [](reader& r, const field& f) { r.options().tls.allow_invalid_certificates = f.boolean(); }},
        {"tls", "allow_invalid_hostnames", "tlsAllowInvalidHostnames",
         [](reader& r, const field& f) { r.options().tls.allow_invalid_hostnames = f.boolean(); }},
        {"tls", "insecure", "tlsInsecure", [](reader& r, const field& f) { r.options().tls.insecure = f.boolean(); }},
        {"tls", "disable_ocsp_endpoint_check", "tlsDisableOCSPEndpointCheck",
         [](reader& r, const field& f) { r.options().tls.disable_ocsp_endpoint_check = f.boolean(); }},
        {"tls", "disable_certificate_revocation_check", "tlsDisableCertificateRevocationCheck",
         [](reader& r, const field& f) { r.options().tls.disable_certificate_revocation_check = f.boolean(); }},

        {"proxy", "host", "proxyHost",
         [](reader& r, const field& f) { r.options().proxy.host = f.non_empty_string(); }},
        {"proxy", "port", "proxyPort",
         [](reader& r, const field& f) { r.options().proxy.port = static_cast<std::uint16_t>(f.integer(1, 65535)); }},
        {"proxy", "username", "proxyUsername",
         [](reader& r, const field& f) { r.options().proxy.username = f.non_empty_string(); }},
        {"proxy", "password", "proxyPassword",
         [](reader& r, const field& f) { r.options().proxy.password = f.string(); }},

        {"auth", "username", "", [](reader& r, const field& f) { r.options().auth.username = f.string(); }},
        {"auth", "password", "", [](reader& r, const field& f) { r.options().auth.password = f.string(); }},
        {"auth", "mechanism", "authMechanism",
         [](reader& r, const field& f) {
             using enum auth_mechanism;
             const auto* s = f.node().as_string();
             // Case is ignored, as in a URI; the message lists the spec spellings.
             if (const auto m = s ? auth_mechanism_from_string(s->get()) : std::nullopt) {
                 r.options().auth.mechanism = m;
                 return;
             }
             (void)choice<auth_mechanism>(f, {{"SCRAM-SHA-1", scram_sha_1},
                                              {"SCRAM-SHA-256", scram_sha_256},
                                              {"MONGODB-X509", mongodb_x509},
                                              {"PLAIN", plain},
                                              {"GSSAPI", gssapi},
                                              {"MONGODB-AWS", mongodb_aws},
                                              {"MONGODB-OIDC", mongodb_oidc}});
         }},
        {"auth", "source", "authSource",
         [](reader& r, const field& f) { r.options().auth.source = f.non_empty_string(); }},
        {"auth", "mechanism_properties", "authMechanismProperties",
         [](reader& r, const field& f) { r.options().auth.mechanism_properties = mechanism_properties(f); }},

        {"topology", "strategy", "",
         [](reader& r, const field& f) {
             r.result.topology.strategy = choice<strategy_type>(f, {{"auto", strategy_type::auto_},
                                                                    {"standalone", strategy_type::standalone},
                                                                    {"replica_set", strategy_type::replica_set},
                                                                    {"master_slave", strategy_type::master_slave},
                                                                    {"mongos", strategy_type::mongos}});
         }},
        {"topology", "master", "", [](reader& r, const field& f) { r.result.topology.master = address(f); }},
        {"topology", "slaves", "",
         [](reader& r, const field& f) {
             std::vector<server_address> slaves;
             std::size_t i = 0;
             for (const toml::node& n : f.array("an array of \"host:port\" strings")) {
                 const field e = f.element(n, i++);
                 server_address a = address(e);
                 for (const server_address& other : slaves)
                     if (same_server(a, other)) e.fail(e.path() + " repeats " + address_text(a));
                 slaves.push_back(std::move(a));
             }
             r.result.topology.slaves = std::move(slaves);
         }},

        {"plugins", "paths", "",
         [](reader& r, const field& f) {
             std::vector<std::filesystem::path> paths;
             for (const std::string& p : string_list(f, "an array of paths")) paths.push_back(r.resolve(p));
             r.result.plugins.paths = std::move(paths);
         }},
        {"plugins", "cursor_manager", "",
         [](reader& r, const field& f) { r.result.plugins.cursor_manager = f.non_empty_string(); }},
    };
    return defs;
}

const key_def* find_key(std::string_view table, std::string_view key) {
    for (const key_def& d : key_defs())
        if (d.table == table && d.key == key) return &d;
    return nullptr;
}

std::vector<std::string_view> table_names() {
    std::vector<std::string_view> names;
    for (const key_def& d : key_defs())
        if (std::find(names.begin(), names.end(), d.table) == names.end()) names.push_back(d.table);
    return names;
}

// ---------------------------------------------------------------- walking the file

// An unknown key: an error, with the closest known key when one is near. Keys of the same
// table rank first; a key of another table still counts ("[pool] heartbeat_frequency_ms").
[[noreturn]] void unknown_key(const reader& r, const toml::key& key, const toml::node& node, std::string_view table) {
    const std::string path = join_key(table, key.str());
    std::vector<candidate> candidates;
    if (table.empty())
        for (std::string_view t : table_names()) candidates.push_back({std::string(t), std::string(t)});
    for (const key_def& d : key_defs())
        candidates.push_back({std::string(d.key), join_key(d.table, d.key), d.table == table ? 0u : 1u});
    const bool is_table = table.empty() && node.is_table();
    std::string message = (is_table ? "unknown table [" : "unknown key ") + path + (is_table ? "]" : "");
    if (auto near = closest(key.str(), candidates)) message += "; did you mean " + *near + "?";
    else if (table == "plugins") message += " (a plugin's settings go in a [plugins.<name>] table)";
    r.source.fail(key.source().begin, path, message);
}

void walk_table(reader& r, const toml::table& table, std::string_view name) {
    for (const auto& [key, node] : in_file_order(table)) {
        const std::string path = join_key(name, key->str());
        if (const key_def* def = find_key(name, key->str())) {
            def->apply(r, field(r.source, *node, path));
            r.set[path] = node->source().begin;
        } else if (name == "plugins" && node->is_table()) {
            r.result.plugins.tables[std::string(key->str())] = to_bson(r.source, *node->as_table(), path);
        } else {
            unknown_key(r, *key, *node, name);
        }
    }
}

// [client] uri comes first, whatever its place in the file: the file's other keys override it.
void read_uri(reader& r, const toml::table& root) {
    const toml::table* client = root["client"].as_table();
    const toml::node* uri = client ? client->get("uri") : nullptr;
    if (!uri) return;
    const field f(r.source, *uri, "client.uri");
    try {
        connection_string cs = parse_uri(f.non_empty_string());
        r.result.options = std::move(cs.options);
        for (std::string& w : cs.warnings) r.result.warnings.push_back("client.uri: " + std::move(w));
    } catch (const config_error&) {
        throw;
    } catch (const configuration_error& e) {
        f.fail("client.uri: " + message_of(e));
    }
}

void check_topology(reader& r) {
    const topology_settings& t = r.result.topology;
    const auto at = [&r](std::string_view path) { return r.set.find(path)->second; };
    const bool has_slaves = r.set.count("topology.slaves") != 0;
    if (t.strategy == strategy_type::master_slave) {
        if (!t.master)
            r.source.fail(at("topology.strategy"), "topology.strategy",
                          "topology.strategy \"master_slave\" needs topology.master, the server that takes writes");
        if (t.slaves.empty()) {
            const std::string_view blame = has_slaves ? "topology.slaves" : "topology.strategy";
            r.source.fail(at(blame), std::string(blame),
                          "topology.strategy \"master_slave\" needs a non-empty topology.slaves list");
        }
        for (const server_address& s : t.slaves)
            if (same_server(s, *t.master))
                r.source.fail(at("topology.slaves"), "topology.slaves",
                              "topology.slaves lists the master " + address_text(s) + " too");
        return;
    }
    const std::string given = "not " + quote(to_string(t.strategy));
    if (t.master)
        r.source.fail(at("topology.master"), "topology.master",
                      "topology.master is only allowed with strategy = \"master_slave\", " + given);
    if (has_slaves)
        r.source.fail(at("topology.slaves"), "topology.slaves",
                      "topology.slaves is only allowed with strategy = \"master_slave\", " + given);
}

bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// validate() speaks in connection string option names. Its message is rewritten in the file's
// key names, and pointed at the first key it names that the file sets; failing that, at
// [client] uri, where the value must have come from.
[[noreturn]] void report_invalid(const reader& r, std::string_view message) {
    std::map<std::string_view, std::string> by_uri_name;
    for (const key_def& d : key_defs())
        if (!d.uri_name.empty()) by_uri_name.emplace(d.uri_name, join_key(d.table, d.key));

    std::string text;
    std::string blame;
    for (std::size_t i = 0; i < message.size();) {
        if (!is_word_char(message[i])) {
            text += message[i++];
            continue;
        }
        std::size_t end = i;
        while (end < message.size() && is_word_char(message[end])) ++end;
        const std::string_view word = message.substr(i, end - i);
        std::string path;
        if (const auto it = by_uri_name.find(word); it != by_uri_name.end()) path = it->second;
        else if (word == "username" || word == "password") path = "auth." + std::string(word);
        text += by_uri_name.count(word) ? path : std::string(word);
        if (blame.empty() && !path.empty() && r.set.count(path)) blame = path;
        i = end;
    }
    if (blame.empty() && r.set.count("client.uri")) blame = "client.uri";
    if (blame.empty()) throw config_error(r.source.name(), 0, 0, "", text);
    r.source.fail(r.set.find(blame)->second, blame, text);
}

config parse(std::string_view text, std::string_view source_name, std::filesystem::path base) {
    reader r(source_name, std::move(base));
    check_nesting(text, r.source.name());
    toml::table root;
    try {
        root = toml::parse(text, std::string_view(source_name));
    } catch (const toml::parse_error& e) {
        r.source.fail(e.source().begin, "", std::string(e.description()));
    }

    read_uri(r, root);
    const std::vector<std::string_view> tables = table_names();
    for (const auto& [key, node] : in_file_order(root)) {
        const auto known = std::find(tables.begin(), tables.end(), key->str());
        if (known == tables.end()) unknown_key(r, *key, *node, "");
        const field f(r.source, *node, std::string(key->str()));
        walk_table(r, f.table("a table"), *known);
    }
    check_topology(r);
    if (r.options().server_api && !r.set.count("server_api.version")) {
        const std::string blame = r.set.count("server_api.strict") ? "server_api.strict" : "server_api.deprecation_errors";
        r.source.fail(r.set.find(blame)->second, blame,
                      "[server_api] needs version (\"1\"): the Stable API spec requires a version whenever an API is declared");
    }

    client_options& o = r.options();
    if (!r.set.count("client.uri")) {
        // No URI: the master/slave pair are the seeds, else the local default server.
        const topology_settings& t = r.result.topology;
        if (t.strategy == strategy_type::master_slave) {
            o.hosts = {*t.master};
            o.hosts.insert(o.hosts.end(), t.slaves.begin(), t.slaves.end());
        } else {
            o.hosts = {server_address{"localhost", std::nullopt, host_type::hostname}};
        }
    }
    try {
        validate(o);
    } catch (const configuration_error& e) {
        report_invalid(r, message_of(e));
    }
    return std::move(r.result);
}

}  // namespace

std::string_view to_string(topology_settings::strategy_type s) noexcept {
    switch (s) {
        case strategy_type::auto_: return "auto";
        case strategy_type::standalone: return "standalone";
        case strategy_type::replica_set: return "replica_set";
        case strategy_type::master_slave: return "master_slave";
        case strategy_type::mongos: return "mongos";
    }
    return "?";
}

bson::document_view plugin_settings::table(std::string_view plugin_name) const noexcept {
    const auto it = tables.find(plugin_name);
    return it == tables.end() ? bson::document_view() : it->second.view();
}

config parse_config(std::string_view toml_text, std::string_view source_name,
                    const std::filesystem::path& base_directory) {
    return parse(toml_text, source_name, base_directory);
}

config load_config_file(const std::filesystem::path& file) {
    const std::string name = file.string();
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) throw config_error(name, 0, 0, "", "is a directory, not a file");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw config_error(name, 0, 0, "", std::string("cannot open: ") + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw config_error(name, 0, 0, "", std::string("cannot read: ") + std::strerror(errno));
    // Made absolute so that the resolved plugin paths do not depend on a later chdir().
    std::filesystem::path base = std::filesystem::absolute(file, ec).parent_path();
    if (ec) base = file.parent_path();
    return parse(text.str(), name, base);
}

}  // namespace trellis
