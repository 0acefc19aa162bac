// parse_uri(): the connection string spec's parsing steps (scheme, user information, hosts,
// database, options), then the URI options spec's options, then validate().
//
// Two kinds of trouble, as the specs ask: a malformed string or a forbidden combination throws
// configuration_error; an unknown option, or a value of the wrong type or range, is ignored
// with a warning and the option keeps its default.
#include <algorithm>
#include <limits>
#include <map>

#include "trellis/errors.hpp"
#include "trellis/uri.hpp"
#include "uri/options_internal.hpp"
#include "uri/text.hpp"

namespace trellis {
namespace {

using namespace uri_detail;
using std::chrono::milliseconds;

[[noreturn]] void fail(const std::string& what) { throw configuration_error(what); }

std::string quoted(std::string_view s) { return "'" + printable(s) + "'"; }

// Every decoded part must be text (UTF-8, no NUL). `raw` is shown as written, unless secret.
void require_text(const std::string& decoded, std::string_view raw, const std::string& what, bool secret = false) {
    if (auto why = text_problem(decoded)) fail(what + (secret ? std::string() : " " + quoted(raw)) + " " + *why);
}

constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();
constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t at = s.find(sep, start);
        out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) return out;
        start = at + 1;
    }
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// ---------------------------------------------------------------- user information

// RFC 3986 userinfo: unreserved / pct-encoded / sub-delims / ":". Bytes from 0x80 up pass too,
// so that UTF-8 names work without encoding, as most drivers allow.
bool is_userinfo_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) return true;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("-._~!$&'()*+,;=:%").find(c) != std::string_view::npos;
}

// The text is never quoted back: it holds the password.
void parse_userinfo(std::string_view info, auth_options& auth) {
    const std::string hint = "; percent-encode the username and password";
    if (info.find('@') != std::string_view::npos) fail("the user information contains an unescaped '@'" + hint);
    if (std::count(info.begin(), info.end(), ':') > 1)
        fail("the user information contains more than one unescaped ':'" + hint);
    if (!std::all_of(info.begin(), info.end(), is_userinfo_char))
        fail("the user information contains a character that must be percent-encoded" + hint);
    const std::size_t colon = info.find(':');
    const auto user = percent_decode(info.substr(0, colon));
    const auto password =
        colon == std::string_view::npos ? std::optional<std::string>() : percent_decode(info.substr(colon + 1));
    if (!user || (colon != std::string_view::npos && !password))
        fail("the user information has a '%' that is not followed by two hex digits" + hint);
    require_text(*user, info.substr(0, colon), "the user name");
    if (password) require_text(*password, {}, "the password (not shown)", true);
    auth.username = *user;
    if (colon != std::string_view::npos) auth.password = *password;
}

// ---------------------------------------------------------------- hosts

bool is_hex_group(std::string_view g) {
    return !g.empty() && g.size() <= 4 && std::all_of(g.begin(), g.end(), [](char c) { return hex_value(c) >= 0; });
}

// Counts the 16-bit groups of one side of a "::"; a dotted IPv4 tail counts as two.
bool count_ipv6_groups(std::string_view part, bool ipv4_allowed, int& groups) {
    if (part.empty()) return true;
    const std::vector<std::string_view> pieces = split(part, ':');
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        if (ipv4_allowed && i + 1 == pieces.size() && pieces[i].find('.') != std::string_view::npos) {
            if (classify_host(pieces[i]) != host_type::ipv4) return false;
            groups += 2;
        } else if (is_hex_group(pieces[i])) {
            ++groups;
        } else {
            return false;
        }
    }
    return true;
}

// RFC 4291 text form, with an optional zone ("%eth0", percent-encoded in the URI as %25).
bool valid_ipv6(std::string_view s) {
    if (const std::size_t pct = s.find('%'); pct != std::string_view::npos) {
        if (pct + 1 == s.size()) return false;
        s = s.substr(0, pct);
    }
    const std::size_t gap = s.find("::");
    if (gap != std::string_view::npos && s.find("::", gap + 1) != std::string_view::npos) return false;
    int groups = 0;
    if (gap == std::string_view::npos) return count_ipv6_groups(s, true, groups) && groups == 8;
    return count_ipv6_groups(s.substr(0, gap), false, groups) && count_ipv6_groups(s.substr(gap + 2), true, groups) &&
           groups <= 7;
}

std::uint16_t parse_port(std::string_view port, std::string_view host_text) {
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    const bool digits = !port.empty() && std::all_of(port.begin(), port.end(), digit);
    const auto value = digits ? parse_integer(port) : std::nullopt;
    if (!value || *value < 1 || *value > 65535)
        fail("host " + quoted(host_text) + " has an invalid port " + quoted(port) +
             ": expected a number from 1 to 65535");
    return static_cast<std::uint16_t>(*value);
}

server_address parse_host(std::string_view text) {
    if (text.empty()) fail("the host list has an empty entry");
    server_address a;
    std::optional<std::string_view> port;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos)
            fail("host " + quoted(text) + " lacks the ']' that closes its IPv6 address");
        const std::string_view after = text.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') fail("host " + quoted(text) + " has characters after ']' that are not a port");
            port = after.substr(1);
        }
        const auto address = percent_decode(text.substr(1, close - 1));
        if (!address || !valid_ipv6(*address)) fail("host " + quoted(text) + " is not a valid IPv6 address");
        a.host = *address;
        a.type = host_type::ip_literal;
    } else {
        const std::size_t colon = text.find(':');
        if (colon != std::string_view::npos) port = text.substr(colon + 1);
        const auto name = percent_decode(text.substr(0, colon));
        if (!name) fail("host " + quoted(text) + " has a '%' that is not followed by two hex digits");
        require_text(*name, text, "host");
        if (name->empty()) fail("host " + quoted(text) + " has no name before its port");
        a.host = *name;
        if (name->find('/') != std::string::npos) {
            // Only a percent-encoded path can hold '/' here: a raw one ends the host list.
            if (!name->ends_with(".sock"))
                fail("unsupported host " + quoted(*name) + ": a UNIX domain socket path must end in .sock");
            if (port) fail("UNIX domain socket " + quoted(*name) + " cannot have a port");
            a.type = host_type::unix_socket;
        } else {
            for (char c : *name) {
                const auto u = static_cast<unsigned char>(c);
                if (u <= 0x20 || u == 0x7f || std::string_view("@/?#[]\\%\"<>^`{|}:").find(c) != std::string_view::npos)
                    fail("host " + quoted(*name) + " contains a character that a host name cannot have");
            }
            a.type = classify_host(*name);
        }
    }
    if (port) a.port = parse_port(*port, text);
    return a;
}

// ---------------------------------------------------------------- database

void parse_database(std::string_view raw, client_options& o) {
    const auto db = percent_decode(raw);
    if (!db) fail("the database name has a '%' that is not followed by two hex digits");
    require_text(*db, raw, "the database name");
    if (db->find_first_of("/\\ \"$") != std::string::npos)
        fail("database name " + quoted(*db) + " cannot contain '/', '\\', ' ', '\"' or '$'");
    if (!db->empty()) o.database = *db;
}

// ---------------------------------------------------------------- option values

// Reads one option's value. A value the option cannot take is ignored with a warning.
class value_reader {
public:
    value_reader(std::string_view name, std::string_view value, std::vector<std::string>& warnings)
        : name_(name), value_(value), warnings_(warnings) {}

    std::string_view name() const { return name_; }
    const std::string& text() const { return value_; }

    void warn(const std::string& message) { warnings_.push_back(message); }

    void invalid(std::string_view rule) {
        warn("ignored option " + name_ + "=" + value_ + ": " + std::string(rule));
    }

    std::optional<bool> boolean() {
        if (empty()) return std::nullopt;
        if (iequals(value_, "true")) return true;
        if (iequals(value_, "false")) return false;
        invalid("expected true or false");
        return std::nullopt;
    }

    std::optional<std::int64_t> integer(std::int64_t min, std::int64_t max, std::string_view rule) {
        if (empty()) return std::nullopt;
        const auto v = parse_integer(value_);
        if (!v || *v < min || *v > max) {
            invalid(rule);
            return std::nullopt;
        }
        return v;
    }

    std::optional<milliseconds> millis(std::int64_t min, std::string_view rule, std::int64_t max = int32_max) {
        const auto v = integer(min, max, rule);
        return v ? std::optional<milliseconds>(milliseconds(*v)) : std::nullopt;
    }

    std::optional<std::uint32_t> count(std::int64_t min, std::string_view rule) {
        const auto v = integer(min, int32_max, rule);
        return v ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(*v)) : std::nullopt;
    }

private:
    // The connection string spec: an empty integer or boolean value is ignored.
    bool empty() {
        if (!value_.empty()) return false;
        warn("ignored option " + name_ + ": the value is empty");
        return true;
    }

    std::string name_;
    std::string value_;
    std::vector<std::string>& warnings_;
};

using apply_fn = void (*)(client_options&, value_reader&);

struct option_def {
    std::string_view name;  // the spec's spelling, for messages
    apply_fn apply;
};

template <class T>
void set_if(std::optional<T>& target, std::optional<T> value) {
    if (value) target = std::move(value);
}

template <class T, class U>
void assign_if(T& target, const std::optional<U>& value) {
    if (value) target = *value;
}

constexpr std::string_view non_negative = "expected an integer from 0 up";
constexpr std::string_view positive = "expected an integer from 1 up";

// "k1:v1,k2:v2" (the first ':' separates: values may hold colons, never commas).
std::optional<std::vector<std::pair<std::string, std::string>>> key_value_list(value_reader& v, bool skip_bad) {
    std::vector<std::pair<std::string, std::string>> out;
    if (v.text().empty()) return out;
    for (std::string_view piece : split(v.text(), ',')) {
        const std::size_t colon = piece.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            if (!skip_bad) {
                v.invalid("expected name:value pairs separated by ','");
                return std::nullopt;
            }
            v.warn(std::string(v.name()) + ": ignored " + quoted(piece) +
                   ", not a NAME:value pair (a value given in a connection string cannot contain ',')");
            continue;
        }
        out.emplace_back(std::string(piece.substr(0, colon)), std::string(piece.substr(colon + 1)));
    }
    return out;
}

void apply_mechanism_properties(client_options& o, value_reader& v) {
    std::map<std::string, std::string> props;
    auto pairs = key_value_list(v, true);  // never nullopt when bad pieces are skipped
    for (auto& [key, value] : *pairs) {
        std::string name = upper(key);
        if (props.count(name)) v.warn(std::string(v.name()) + ": " + name + " is given twice; the last value is used");
        props[std::move(name)] = std::move(value);
    }
    o.auth.mechanism_properties = std::move(props);
}

void apply_compressors(client_options& o, value_reader& v) {
    std::vector<std::string> list;
    for (std::string_view piece : split(v.text(), ',')) {
        std::string name = lower(piece);
        if (!known_compressor(name)) {
            v.warn(std::string(v.name()) + ": ignored unknown compressor " + quoted(piece) + " (snappy, zlib or zstd)");
            continue;
        }
        if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(std::move(name));
    }
    o.compressors = std::move(list);
}

void apply_read_preference(client_options& o, value_reader& v) {
    using enum read_preference_mode;
    for (auto m : {primary, primary_preferred, secondary, secondary_preferred, nearest})
        if (iequals(v.text(), to_string(m))) {
            o.read_preference.mode = m;
            return;
        }
    v.invalid("expected primary, primaryPreferred, secondary, secondaryPreferred or nearest");
}

void apply_monitoring_mode(client_options& o, value_reader& v) {
    for (auto m : {monitoring_mode::auto_, monitoring_mode::stream, monitoring_mode::poll})
        if (iequals(v.text(), to_string(m))) {
            o.server_monitoring_mode = m;
            return;
        }
    v.invalid("expected stream, poll or auto");
}

void apply_max_staleness(client_options& o, value_reader& v) {
    const auto s = v.integer(-1, int32_max, "expected -1 (no maximum) or a positive number of seconds");
    if (!s) return;
    if (*s == 0) return v.invalid("expected -1 (no maximum) or a positive number of seconds");
    if (*s == -1) o.read_preference.max_staleness.reset();
    else o.read_preference.max_staleness = std::chrono::seconds(*s);
}

void apply_w(client_options& o, value_reader& v) {
    if (v.text().empty()) return v.invalid("expected a number of nodes or a tag such as majority");
    if (const auto n = parse_integer(v.text())) {
        if (*n < 0 || *n > int32_max) return v.invalid("expected a non-negative number of nodes or a tag");
        o.write_concern.w = static_cast<std::int32_t>(*n);
    } else {
        o.write_concern.w = v.text();
    }
}

// Keyed by the lower-case name: the spec normalises keys by lower-casing A to Z.
const std::map<std::string, option_def, std::less<>>& options_table() {
    static const std::map<std::string, option_def, std::less<>> table = {
        {"appname", {"appname", [](client_options& o, value_reader& v) {
             if (v.text().size() > client_options::max_app_name_bytes) return v.invalid("longer than 128 bytes");
             o.app_name = v.text();
         }}},
        {"authmechanism", {"authMechanism", [](client_options& o, value_reader& v) {
             if (const auto m = auth_mechanism_from_string(v.text())) o.auth.mechanism = m;
             else v.invalid("not an authentication mechanism of the auth spec");
         }}},
        {"authmechanismproperties", {"authMechanismProperties", apply_mechanism_properties}},
        {"authsource", {"authSource", [](client_options& o, value_reader& v) {
             // The auth spec tests make an empty authSource an error, not a warning.
             if (v.text().empty()) fail("authSource must not be empty");
             o.auth.source = v.text();
         }}},
        {"compressors", {"compressors", apply_compressors}},
        {"connecttimeoutms", {"connectTimeoutMS", [](client_options& o, value_reader& v) {
             assign_if(o.connect_timeout, v.millis(0, non_negative));
         }}},
        {"directconnection", {"directConnection", [](client_options& o, value_reader& v) {
             set_if(o.direct_connection, v.boolean());
         }}},
        {"fsync", {"fsync", [](client_options& o, value_reader& v) { set_if(o.write_concern.fsync, v.boolean()); }}},
        {"heartbeatfrequencyms", {"heartbeatFrequencyMS", [](client_options& o, value_reader& v) {
             assign_if(o.heartbeat_frequency,
                       v.millis(client_options::min_heartbeat_frequency.count(), "expected an integer from 500 up"));
         }}},
        {"journal", {"journal", [](client_options& o, value_reader& v) {
             set_if(o.write_concern.journal, v.boolean());
         }}},
        {"loadbalanced", {"loadBalanced", [](client_options& o, value_reader& v) {
             set_if(o.load_balanced, v.boolean());
         }}},
        {"localthresholdms", {"localThresholdMS", [](client_options& o, value_reader& v) {
             assign_if(o.local_threshold, v.millis(0, non_negative));
         }}},
        {"maxconnecting", {"maxConnecting", [](client_options& o, value_reader& v) {
             assign_if(o.max_connecting, v.count(1, positive));
         }}},
        {"maxidletimems", {"maxIdleTimeMS", [](client_options& o, value_reader& v) {
             set_if(o.max_idle_time, v.millis(0, non_negative));
         }}},
        {"maxpoolsize", {"maxPoolSize", [](client_options& o, value_reader& v) {
             assign_if(o.max_pool_size, v.count(0, non_negative));
         }}},
        {"maxstalenessseconds", {"maxStalenessSeconds", apply_max_staleness}},
        {"minpoolsize", {"minPoolSize", [](client_options& o, value_reader& v) {
             assign_if(o.min_pool_size, v.count(0, non_negative));
         }}},
        {"proxyhost", {"proxyHost", [](client_options& o, value_reader& v) { o.proxy.host = v.text(); }}},
        {"proxypassword", {"proxyPassword", [](client_options& o, value_reader& v) { o.proxy.password = v.text(); }}},
        {"proxyport", {"proxyPort", [](client_options& o, value_reader& v) {
             if (const auto p = v.integer(1, 65535, "expected a port from 1 to 65535"))
                 o.proxy.port = static_cast<std::uint16_t>(*p);
         }}},
        {"proxyusername", {"proxyUsername", [](client_options& o, value_reader& v) { o.proxy.username = v.text(); }}},
        {"maxadaptiveretries", {"maxAdaptiveRetries", [](client_options& o, value_reader& v) {
             assign_if(o.max_adaptive_retries, v.count(0, non_negative));
         }}},
        {"enableoverloadretargeting", {"enableOverloadRetargeting", [](client_options& o, value_reader& v) {
             assign_if(o.enable_overload_retargeting, v.boolean());
         }}},
        {"readconcernlevel", {"readConcernLevel", [](client_options& o, value_reader& v) {
             o.read_concern.level = v.text();
         }}},
        {"readpreference", {"readPreference", apply_read_preference}},
        {"readpreferencetags", {"readPreferenceTags", [](client_options& o, value_reader& v) {
             // Each occurrence is one tag set, in order; an empty value is the empty set.
             if (auto tags = key_value_list(v, false)) o.read_preference.tag_sets.push_back(std::move(*tags));
         }}},
        {"replicaset", {"replicaSet", [](client_options& o, value_reader& v) { o.replica_set = v.text(); }}},
        {"retryreads", {"retryReads", [](client_options& o, value_reader& v) {
             assign_if(o.retry_reads, v.boolean());
         }}},
        {"retrywrites", {"retryWrites", [](client_options& o, value_reader& v) {
             assign_if(o.retry_writes, v.boolean());
         }}},
        {"servermonitoringmode", {"serverMonitoringMode", apply_monitoring_mode}},
        {"serverselectiontimeoutms", {"serverSelectionTimeoutMS", [](client_options& o, value_reader& v) {
             assign_if(o.server_selection_timeout, v.millis(1, positive));
         }}},
        {"serverselectiontryonce", {"serverSelectionTryOnce", [](client_options& o, value_reader& v) {
             set_if(o.server_selection_try_once, v.boolean());
         }}},
        {"sockettimeoutms", {"socketTimeoutMS", [](client_options& o, value_reader& v) {
             set_if(o.socket_timeout, v.millis(0, non_negative));
         }}},
        {"srvmaxhosts", {"srvMaxHosts", [](client_options& o, value_reader& v) {
             set_if(o.srv_max_hosts, v.count(0, non_negative));
         }}},
        {"srvservicename", {"srvServiceName", [](client_options& o, value_reader& v) {
             if (!valid_srv_service_name(v.text()))
                 return v.invalid("not an SRV service name (letters, digits and single hyphens, at most 62)");
             o.srv_service_name = v.text();
         }}},
        {"ssl", {"ssl", [](client_options& o, value_reader& v) { set_if(o.tls.enabled, v.boolean()); }}},
        {"timeoutms", {"timeoutMS", [](client_options& o, value_reader& v) {
             set_if(o.timeout, v.millis(0, non_negative));
         }}},
        {"tls", {"tls", [](client_options& o, value_reader& v) { set_if(o.tls.enabled, v.boolean()); }}},
        {"tlsallowinvalidcertificates", {"tlsAllowInvalidCertificates", [](client_options& o, value_reader& v) {
             set_if(o.tls.allow_invalid_certificates, v.boolean());
         }}},
        {"tlsallowinvalidhostnames", {"tlsAllowInvalidHostnames", [](client_options& o, value_reader& v) {
             set_if(o.tls.allow_invalid_hostnames, v.boolean());
         }}},
        {"tlscafile", {"tlsCAFile", [](client_options& o, value_reader& v) { o.tls.ca_file = v.text(); }}},
        {"tlscertificatekeyfile", {"tlsCertificateKeyFile", [](client_options& o, value_reader& v) {
             o.tls.certificate_key_file = v.text();
         }}},
        {"tlscertificatekeyfilepassword", {"tlsCertificateKeyFilePassword", [](client_options& o, value_reader& v) {
             o.tls.certificate_key_file_password = v.text();
         }}},
        {"tlsdisablecertificaterevocationcheck", {"tlsDisableCertificateRevocationCheck",
                                                  [](client_options& o, value_reader& v) {
                                                      set_if(o.tls.disable_certificate_revocation_check, v.boolean());
                                                  }}},
        {"tlsdisableocspendpointcheck", {"tlsDisableOCSPEndpointCheck", [](client_options& o, value_reader& v) {
             set_if(o.tls.disable_ocsp_endpoint_check, v.boolean());
         }}},
        {"tlsinsecure", {"tlsInsecure", [](client_options& o, value_reader& v) {
             set_if(o.tls.insecure, v.boolean());
         }}},
        {"w", {"w", apply_w}},
        {"waitqueuemultiple", {"waitQueueMultiple", [](client_options& o, value_reader& v) {
             set_if(o.wait_queue_multiple, v.count(0, non_negative));
         }}},
        {"waitqueuetimeoutms", {"waitQueueTimeoutMS", [](client_options& o, value_reader& v) {
             set_if(o.wait_queue_timeout, v.millis(1, positive));
         }}},
        {"wtimeoutms", {"wTimeoutMS", [](client_options& o, value_reader& v) {
             set_if(o.write_concern.wtimeout, v.millis(0, non_negative, int64_max));
         }}},
        {"zlibcompressionlevel", {"zlibCompressionLevel", [](client_options& o, value_reader& v) {
             if (const auto level = v.integer(-1, 9, "expected an integer from -1 to 9"))
                 o.zlib_compression_level = static_cast<int>(*level);
         }}},
    };
    return table;
}

// Old spellings still in use. The connection string spec: apply them with a warning, unless
// the new spelling is given too, in which case they are ignored (with a warning).
const std::map<std::string, std::string, std::less<>>& deprecated_aliases() {
    static const std::map<std::string, std::string, std::less<>> aliases = {
        {"wtimeout", "wtimeoutms"},
        {"sslallowinvalidcertificates", "tlsallowinvalidcertificates"},
        {"sslallowinvalidhostnames", "tlsallowinvalidhostnames"},
        {"sslcafile", "tlscafile"},
        {"sslpemkeyfile", "tlscertificatekeyfile"},
        {"sslpemkeypassword", "tlscertificatekeyfilepassword"},
    };
    return aliases;
}

struct raw_option {
    std::string key;        // as written (decoded), for messages
    std::string lower_key;  // what the tables are keyed by
    std::string value;
    bool skip = false;
};

std::vector<raw_option> split_options(std::string_view query) {
    std::vector<raw_option> out;
    for (std::string_view pair : split(query, '&')) {
        if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos)
            fail("option " + quoted(pair) + " has no value: options are key=value pairs separated by '&'");
        auto key = percent_decode(pair.substr(0, eq));
        if (!key)
            fail("option name " + quoted(pair.substr(0, eq)) + " has a '%' that is not followed by two hex digits");
        auto value = percent_decode(pair.substr(eq + 1));
        if (!value) fail("the value of option " + quoted(*key) + " has a '%' that is not followed by two hex digits");
        require_text(*key, pair.substr(0, eq), "option name");
        const bool secret = lower(*key).find("password") != std::string::npos;
        require_text(*value, pair.substr(eq + 1), "the value of option " + *key + (secret ? " (not shown)" : ""), secret);
        std::string low = lower(*key);
        out.push_back({std::move(*key), std::move(low), std::move(*value)});
    }
    return out;
}

bool is_server_api_option(std::string_view lower_key) {
    return lower_key == "serverapi" || lower_key == "apiversion" || lower_key == "apistrict" ||
           lower_key == "apideprecationerrors";
}

bool is_proxy_option(std::string_view lower_key) {
    return lower_key == "proxyhost" || lower_key == "proxyport" || lower_key == "proxyusername" ||
           lower_key == "proxypassword";
}

void apply_options(std::string_view query, connection_string& cs) {
    client_options& o = cs.options;
    std::vector<std::string>& warnings = cs.warnings;
    std::vector<raw_option> options = split_options(query);

    // Repeated keys: their precedence is undefined by the spec; here the last one wins, with a
    // warning. readPreferenceTags is a list. The SOCKS5 spec makes a repeated proxy option an error.
    std::map<std::string, int, std::less<>> counts;
    for (const raw_option& r : options) ++counts[r.lower_key];
    for (const raw_option& r : options) {
        int& n = counts[r.lower_key];
        if (n <= 1 || r.lower_key == "readpreferencetags") continue;
        if (is_proxy_option(r.lower_key)) fail("option " + r.key + " is given more than once");
        warnings.push_back("option " + r.key + " is given " + std::to_string(n) + " times; the last value is used");
        n = 1;  // warn once per key
    }

    for (raw_option& r : options) {
        const auto alias = deprecated_aliases().find(r.lower_key);
        if (alias == deprecated_aliases().end()) continue;
        const std::string_view replacement = options_table().find(alias->second)->second.name;
        if (counts.count(alias->second)) {
            warnings.push_back("deprecated option " + r.key + " is ignored: " + std::string(replacement) +
                               " is given too");
            r.skip = true;
        } else {
            warnings.push_back("option " + r.key + " is deprecated; use " + std::string(replacement));
            r.lower_key = alias->second;
        }
    }

    // The URI options spec: every tls and ssl in the string must carry the same value.
    std::optional<std::pair<bool, std::string>> tls_seen;
    for (const raw_option& r : options) {
        if (r.lower_key != "tls" && r.lower_key != "ssl") continue;
        const bool t = iequals(r.value, "true");
        if (!t && !iequals(r.value, "false")) continue;  // an invalid value is warned about below
        if (tls_seen && tls_seen->first != t)
            fail("options " + tls_seen->second + " and " + r.key + "=" + r.value +
                 " disagree: every tls and ssl option must have the same value");
        if (!tls_seen) tls_seen.emplace(t, r.key + "=" + r.value);
    }

    const bool read_preference_given = counts.count("readpreference") != 0;
    for (raw_option& r : options) {
        if (r.skip) continue;
        if (r.lower_key == "slaveok") {
            // The pre-read-preference way to allow secondary reads.
            value_reader v(r.key, r.value, warnings);
            const auto ok = v.boolean();
            if (!ok) continue;
            if (read_preference_given) {
                warnings.push_back("deprecated option " + r.key + " is ignored: readPreference is given too");
            } else {
                warnings.push_back("option " + r.key + " is deprecated; use readPreference=secondaryPreferred");
                if (*ok) o.read_preference.mode = read_preference_mode::secondary_preferred;
            }
            continue;
        }
        const auto def = options_table().find(r.lower_key);
        if (def == options_table().end()) {
            if (is_server_api_option(r.lower_key))
                warnings.push_back("option " + r.key + " is ignored: the Stable API spec forbids declaring an API version in "
                                   "a connection string; set client_options::server_api or [server_api] in a configuration file");
            else
                warnings.push_back("unsupported option " + r.key + " is ignored");
            continue;
        }
        value_reader v(r.key, r.value, warnings);
        def->second.apply(o, v);
    }
}

}  // namespace

connection_string parse_uri(std::string_view uri) {
    connection_string cs;
    client_options& o = cs.options;
    if (uri.empty()) fail("the connection string is empty");

    constexpr std::string_view plain_scheme = "mongodb://", srv_scheme = "mongodb+srv://";
    std::string_view rest;
    if (starts_with_icase(uri, plain_scheme)) {
        rest = uri.substr(plain_scheme.size());
    } else if (starts_with_icase(uri, srv_scheme)) {
        rest = uri.substr(srv_scheme.size());
        o.is_srv = true;
    } else {
        fail("the connection string must start with mongodb:// or mongodb+srv://");
    }

    // The host information ends at the first '/' or, when the slash before the options is
    // left out, at the first '?'.
    const std::size_t hosts_end = rest.find_first_of("/?");
    std::string_view host_info = rest.substr(0, hosts_end);
    const std::string_view tail = hosts_end == std::string_view::npos ? std::string_view() : rest.substr(hosts_end);

    // A '/' inside user information ends the host list early and leaves the '@' in the database
    // part. Say so before the hosts are parsed: the "host" would be part of the password.
    if (host_info.find('@') == std::string_view::npos && tail.starts_with("/") &&
        tail.substr(0, tail.find('?')).find('@') != std::string_view::npos)
        fail("the database name contains '@'; if user information comes before it, percent-encode the '/' in "
             "the username or password");
    if (const std::size_t at = host_info.rfind('@'); at != std::string_view::npos) {
        parse_userinfo(host_info.substr(0, at), o.auth);
        host_info = host_info.substr(at + 1);
    }
    if (host_info.empty()) {
        if (tail.starts_with("/") && tail.find(".sock") != std::string_view::npos)
            fail("the connection string names no host: a UNIX domain socket path must be percent-encoded, as in "
                 "mongodb://%2Ftmp%2Fmongodb-27017.sock");
        fail("the connection string names no host");
    }

    std::vector<server_address> hosts;
    for (std::string_view h : split(host_info, ',')) hosts.push_back(parse_host(h));
    if (o.is_srv) {
        if (hosts.size() != 1)
            fail("mongodb+srv:// takes exactly one host name, got " + std::to_string(hosts.size()));
        if (hosts.front().port)
            fail("mongodb+srv:// host " + quoted(host_info) + " cannot have a port: the SRV records give the ports");
        if (hosts.front().type != host_type::hostname)
            fail("mongodb+srv:// host " + quoted(hosts.front().host) + " must be a host name, not an address");
        o.srv_host = hosts.front().host;
    } else {
        o.hosts = std::move(hosts);
    }

    std::string_view query;
    if (tail.starts_with("/")) {
        const std::string_view db_and_query = tail.substr(1);
        const std::size_t q = db_and_query.find('?');
        parse_database(db_and_query.substr(0, q), o);
        if (q != std::string_view::npos) query = db_and_query.substr(q + 1);
    } else if (!tail.empty()) {
        query = tail.substr(1);
    }
    apply_options(query, cs);

    // The seedlist spec: mongodb+srv implies TLS unless the string turns it off.
    if (o.is_srv && !o.tls.enabled) o.tls.enabled = true;
    validate_options(o, o.is_srv && o.hosts.empty());
    return cs;
}

}  // namespace trellis
