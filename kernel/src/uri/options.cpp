// validate() and make_credential(): the rules of the URI options, auth, load balancer, SOCKS5
// and seedlist specs that hold for client_options whatever filled them.
#include "trellis/options.hpp"

#include <algorithm>
#include <array>

#include "trellis/errors.hpp"
#include "uri/options_internal.hpp"
#include "uri/text.hpp"

namespace trellis {
namespace {

using namespace uri_detail;
using std::chrono::milliseconds;

[[noreturn]] void fail(const std::string& what) { throw configuration_error(what); }

std::string quoted(std::string_view s) { return "'" + printable(s) + "'"; }

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

void check_not_negative(milliseconds d, std::string_view option) {
    if (d.count() < 0) fail(std::string(option) + " must not be negative, got " + ms_text(d));
}

void check_positive(milliseconds d, std::string_view option) {
    if (d.count() <= 0) fail(std::string(option) + " must be positive, got " + ms_text(d));
}

bool is_dotted_quad(std::string_view s) noexcept {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t digits = 0;
        int value = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 4) {
            value = value * 10 + (s[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0 || digits > 3 || value > 255) return false;
        ++parts;
        if (i == s.size()) return parts == 4;
        if (s[i] != '.' || parts == 4) return false;
        ++i;
    }
}

void check_address(const server_address& a) {
    if (a.host.empty()) fail("a host in the seed list is empty");
    if (a.type == host_type::unix_socket && a.port)
        fail("UNIX domain socket " + quoted(a.host) + " cannot have a port");
    if (a.port && *a.port == 0) fail("host " + quoted(a.host) + " has port 0: ports are 1 to 65535");
}

// The seven pairs the URI options spec forbids: each pair relaxes overlapping checks, and
// allowing both would leave the effective setting to the order they are applied in.
void check_tls(const tls_options& t) {
    struct pair {
        const std::optional<bool>& a;
        std::string_view a_name;
        const std::optional<bool>& b;
        std::string_view b_name;
        std::string_view why;
    };
    const std::array<pair, 7> pairs = {{
        {t.insecure, "tlsInsecure", t.allow_invalid_certificates, "tlsAllowInvalidCertificates",
         "tlsInsecure already allows invalid certificates"},
        {t.insecure, "tlsInsecure", t.allow_invalid_hostnames, "tlsAllowInvalidHostnames",
         "tlsInsecure already allows invalid hostnames"},
        {t.insecure, "tlsInsecure", t.disable_ocsp_endpoint_check, "tlsDisableOCSPEndpointCheck",
         "tlsInsecure already disables OCSP endpoint checks"},
        {t.insecure, "tlsInsecure", t.disable_certificate_revocation_check, "tlsDisableCertificateRevocationCheck",
         "tlsInsecure already relaxes certificate checks"},
        {t.allow_invalid_certificates, "tlsAllowInvalidCertificates", t.disable_ocsp_endpoint_check,
         "tlsDisableOCSPEndpointCheck", "allowing invalid certificates already skips OCSP"},
        {t.allow_invalid_certificates, "tlsAllowInvalidCertificates", t.disable_certificate_revocation_check,
         "tlsDisableCertificateRevocationCheck", "allowing invalid certificates already skips revocation checks"},
        {t.disable_ocsp_endpoint_check, "tlsDisableOCSPEndpointCheck", t.disable_certificate_revocation_check,
         "tlsDisableCertificateRevocationCheck", "disabling revocation checks already disables OCSP"},
    }};
    for (const pair& p : pairs)
        if (p.a && p.b)
            fail(std::string(p.a_name) + " and " + std::string(p.b_name) + " cannot both be given (" +
                 std::string(p.why) + ")");
}

void check_topology(const client_options& o) {
    if (o.is_srv) {
        if (o.srv_host.empty()) fail("mongodb+srv:// needs a host name to look up");
        if (classify_host(o.srv_host) != host_type::hostname ||
            o.srv_host.find_first_of(":,/") != std::string::npos)
            fail("mongodb+srv:// host " + quoted(o.srv_host) + " must be a single host name without a port");
        if (o.srv_service_name && !valid_srv_service_name(*o.srv_service_name))
            fail("srvServiceName " + quoted(*o.srv_service_name) +
                 " is not a valid SRV service name (letters, digits and hyphens, at most 62)");
    } else {
        if (!o.srv_host.empty()) fail("srv_host " + quoted(o.srv_host) + " is set, but is_srv is not");
        if (o.hosts.empty()) fail("the seed list is empty: give at least one host");
        if (o.srv_service_name) fail("srvServiceName is only allowed with mongodb+srv://");
        if (o.srv_max_hosts) fail("srvMaxHosts is only allowed with mongodb+srv://");
    }
    for (const server_address& a : o.hosts) check_address(a);

    if (o.direct_connection == true) {
        if (o.is_srv)
            fail("directConnection=true is not allowed with mongodb+srv://: the SRV records may name several hosts");
        if (o.hosts.size() > 1)
            fail("directConnection=true needs exactly one host, got " + std::to_string(o.hosts.size()));
    }
    if (o.load_balanced == true) {
        if (o.hosts.size() > 1)
            fail("loadBalanced=true needs exactly one host, got " + std::to_string(o.hosts.size()));
        if (o.direct_connection == true) fail("loadBalanced=true cannot be combined with directConnection=true");
        if (o.replica_set) fail("loadBalanced=true cannot be combined with replicaSet");
    }
    if (o.srv_max_hosts && *o.srv_max_hosts > 0) {
        if (o.replica_set) fail("srvMaxHosts cannot be combined with replicaSet");
        if (o.load_balanced == true) fail("srvMaxHosts cannot be combined with loadBalanced=true");
    }
}

void check_timing_and_pool(const client_options& o) {
    if (o.heartbeat_frequency < client_options::min_heartbeat_frequency)
        fail("heartbeatFrequencyMS must be at least " + ms_text(client_options::min_heartbeat_frequency) + ", got " +
             ms_text(o.heartbeat_frequency));
    check_not_negative(o.local_threshold, "localThresholdMS");
    check_positive(o.server_selection_timeout, "serverSelectionTimeoutMS");
    check_not_negative(o.connect_timeout, "connectTimeoutMS");
    if (o.socket_timeout) check_not_negative(*o.socket_timeout, "socketTimeoutMS");
    if (o.timeout) check_not_negative(*o.timeout, "timeoutMS");
    if (o.max_idle_time) check_not_negative(*o.max_idle_time, "maxIdleTimeMS");
    if (o.wait_queue_timeout) check_positive(*o.wait_queue_timeout, "waitQueueTimeoutMS");
    if (o.max_connecting == 0) fail("maxConnecting must be positive");
    if (o.max_pool_size != 0 && o.min_pool_size > o.max_pool_size)
        fail("minPoolSize (" + std::to_string(o.min_pool_size) + ") cannot exceed maxPoolSize (" +
             std::to_string(o.max_pool_size) + ")");
}

void check_misc(const client_options& o, bool before_dns) {
    if (o.app_name && o.app_name->size() > client_options::max_app_name_bytes)
        fail("appname is " + std::to_string(o.app_name->size()) + " bytes long; the handshake allows at most " +
             std::to_string(client_options::max_app_name_bytes));
    for (const std::string& c : o.compressors)
        if (!known_compressor(c)) fail("compressors: unknown compressor " + quoted(c) + " (snappy, zlib or zstd)");
    if (o.zlib_compression_level && (*o.zlib_compression_level < -1 || *o.zlib_compression_level > 9))
        fail("zlibCompressionLevel must be between -1 and 9, got " + std::to_string(*o.zlib_compression_level));

    // For mongodb+srv://, the seedlist spec puts validation after the DNS lookups; the proxy
    // rules are the ones its tests expect to wait (nothing from DNS can change their outcome).
    const proxy_options& p = o.proxy;
    if (!before_dns) {
        if (!p.host && (p.port || p.username || p.password))
            fail("proxyPort, proxyUsername and proxyPassword need proxyHost");
        if (p.username.has_value() != p.password.has_value())
            fail("proxyUsername and proxyPassword must be given together");
    }
    if (p.port && *p.port == 0) fail("proxyPort 0 is not a port");
}

// The Stable API spec: a client refuses an API version it does not know.
void check_server_api(const client_options& o) {
    if (!o.server_api) return;
    const std::string& v = o.server_api->version;
    if (v.empty()) fail("serverApi.version is empty: declare a Stable API version (\"1\")");
    if (v != server_api::v1)
        fail("serverApi.version " + quoted(v) + " is not a Stable API version this driver knows (known: \"1\")");
}

void check_concerns(const client_options& o) {
    const read_preference& rp = o.read_preference;
    if (rp.mode == read_preference_mode::primary) {
        const auto non_empty = [](const tag_set& s) { return !s.empty(); };
        const bool tags = std::any_of(rp.tag_sets.begin(), rp.tag_sets.end(), non_empty);
        if (tags) fail("readPreferenceTags cannot be used with readPreference=primary");
        if (rp.max_staleness)
            fail("maxStalenessSeconds cannot be used with readPreference=primary (the default mode)");
    }
    if (rp.max_staleness && rp.max_staleness->count() <= 0)
        fail("maxStalenessSeconds must be positive (-1 in a connection string means no maximum), got " +
             std::to_string(rp.max_staleness->count()));

    const write_concern& wc = o.write_concern;
    if (wc.w) {
        if (const auto* n = std::get_if<std::int32_t>(&*wc.w); n && *n < 0)
            fail("w must not be negative, got " + std::to_string(*n));
        if (const auto* s = std::get_if<std::string>(&*wc.w); s && s->empty()) fail("w must not be empty");
        if (const auto* n = std::get_if<std::int32_t>(&*wc.w); n && *n == 0 && wc.journal == true)
            fail("w=0 (unacknowledged) cannot be combined with journal=true");
    }
    if (wc.wtimeout) check_not_negative(*wc.wtimeout, "wTimeoutMS");
}

// ---------------------------------------------------------------- credentials

std::string mech_name(const std::optional<auth_mechanism>& m) {
    return m ? "authMechanism=" + std::string(to_string(*m)) : std::string("the default authentication mechanism");
}

void require_username(const auth_options& a) {
    if (!a.username || a.username->empty()) fail(mech_name(a.mechanism) + " needs a username");
}

void forbid_empty_username(const auth_options& a) {
    if (a.username && a.username->empty())
        fail(mech_name(a.mechanism) + ": the username is empty (remove the '@' or give a name)");
}

void forbid_password(const auth_options& a, std::string_view why) {
    if (a.password) fail(mech_name(a.mechanism) + " takes no password (" + std::string(why) + ")");
}

void forbid_properties(const auth_options& a) {
    if (!a.mechanism_properties.empty())
        fail(mech_name(a.mechanism) + " takes no authMechanismProperties, got " +
             quoted(a.mechanism_properties.begin()->first));
}

// The auth spec makes property names case-insensitive: compare them in upper case.
std::map<std::string, std::string> upper_keys(const auth_options& a) {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : a.mechanism_properties)
        if (!out.emplace(upper(k), v).second)
            fail("authMechanismProperties names " + quoted(k) + " twice (names are case-insensitive)");
    return out;
}

void allow_only(const std::map<std::string, std::string>& props, std::initializer_list<std::string_view> allowed,
                const auth_options& a) {
    for (const auto& [k, v] : props)
        if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
            fail(mech_name(a.mechanism) + " does not know the authMechanismProperties entry " + quoted(k));
}

std::string external_source(const auth_options& a) {
    if (a.source && *a.source != "$external")
        fail(mech_name(a.mechanism) + " authenticates against $external; authSource " + quoted(*a.source) +
             " is not allowed");
    return "$external";
}

void check_gssapi(const auth_options& a, credential& c) {
    require_username(a);
    c.source = external_source(a);
    c.mechanism_properties = upper_keys(a);
    allow_only(c.mechanism_properties, {"SERVICE_NAME", "CANONICALIZE_HOST_NAME", "SERVICE_REALM", "SERVICE_HOST"}, a);
    if (auto it = c.mechanism_properties.find("CANONICALIZE_HOST_NAME"); it != c.mechanism_properties.end()) {
        const std::string& v = it->second;
        if (!iequals(v, "none") && !iequals(v, "forward") && !iequals(v, "forwardAndReverse") && !iequals(v, "true") &&
            !iequals(v, "false"))
            fail("CANONICALIZE_HOST_NAME " + quoted(v) + " is not one of none, forward, forwardAndReverse");
    }
    c.mechanism_properties.try_emplace("SERVICE_NAME", "mongodb");
}

// Follows DRIVERS-3131: explicit AWS credentials are no longer accepted; the mechanism takes
// them from the environment, the web identity token or the ECS/EC2 endpoints.
void check_aws(const auth_options& a, credential& c) {
    if (a.username || a.password)
        fail("authMechanism=MONGODB-AWS takes no username or password: the AWS credentials come from the environment");
    c.source = external_source(a);
    c.mechanism_properties = upper_keys(a);
    if (c.mechanism_properties.count("AWS_SESSION_TOKEN"))
        fail("authMechanism=MONGODB-AWS does not take AWS_SESSION_TOKEN: the session token comes from the environment");
    allow_only(c.mechanism_properties, {}, a);
}

void check_oidc(const auth_options& a, credential& c) {
    forbid_password(a, "the token comes from the environment or a callback");
    forbid_empty_username(a);
    c.source = external_source(a);
    c.mechanism_properties = upper_keys(a);
    for (std::string_view code_only : {"OIDC_CALLBACK", "OIDC_HUMAN_CALLBACK", "ALLOWED_HOSTS"})
        if (c.mechanism_properties.count(std::string(code_only)))
            fail("authMechanismProperties " + std::string(code_only) +
                 " cannot be given as text; it is set in code");
    allow_only(c.mechanism_properties, {"ENVIRONMENT", "TOKEN_RESOURCE"}, a);
    const auto env = c.mechanism_properties.find("ENVIRONMENT");
    if (env == c.mechanism_properties.end())
        fail("authMechanism=MONGODB-OIDC needs authMechanismProperties ENVIRONMENT (test, azure, gcp or k8s)");
    const std::string& e = env->second;
    const bool token_resource = c.mechanism_properties.count("TOKEN_RESOURCE") != 0;
    if (e == "test") {
        if (a.username) fail("MONGODB-OIDC ENVIRONMENT:test takes no username");
    } else if (e == "azure" || e == "gcp") {
        if (!token_resource) fail("MONGODB-OIDC ENVIRONMENT:" + e + " needs TOKEN_RESOURCE");
    } else if (e != "k8s") {
        fail("MONGODB-OIDC ENVIRONMENT " + quoted(e) + " is not one of test, azure, gcp, k8s");
    }
    if (token_resource && e != "azure" && e != "gcp")
        fail("MONGODB-OIDC TOKEN_RESOURCE only applies to ENVIRONMENT azure or gcp, not " + quoted(e));
}

}  // namespace

// ---------------------------------------------------------------- public functions

host_type classify_host(std::string_view host) noexcept {
    if (host.find('/') != std::string_view::npos) return host_type::unix_socket;
    if (host.find(':') != std::string_view::npos) return host_type::ip_literal;
    if (is_dotted_quad(host)) return host_type::ipv4;
    return host_type::hostname;
}

void validate(const client_options& options) { validate_options(options, false); }

void validate_options(const client_options& options, bool before_dns) {
    check_topology(options);
    check_tls(options.tls);
    check_timing_and_pool(options);
    check_misc(options, before_dns);
    check_concerns(options);
    check_server_api(options);
    (void)make_credential(options);
}

bool known_compressor(std::string_view name) noexcept { return name == "snappy" || name == "zlib" || name == "zstd"; }

std::optional<credential> make_credential(const client_options& options) {
    const auth_options& a = options.auth;
    // Checked even when nothing asks for authentication (the auth spec tests say so): an
    // empty authSource is a mistake whatever else the string holds.
    if (a.source && a.source->empty()) fail("authSource must not be empty");
    if (!a.username && !a.mechanism) {
        if (a.password) fail("a password is given without a username");
        if (!a.mechanism_properties.empty()) fail("authMechanismProperties needs authMechanism");
        return std::nullopt;
    }

    credential c;
    c.username = a.username;
    c.password = a.password;
    c.mechanism = a.mechanism;
    const std::string db_default = options.database.value_or("");

    if (!a.mechanism || *a.mechanism == auth_mechanism::scram_sha_1 || *a.mechanism == auth_mechanism::scram_sha_256) {
        require_username(a);
        forbid_properties(a);
        c.source = a.source ? *a.source : !db_default.empty() ? db_default : "admin";
        return c;
    }
    switch (*a.mechanism) {
        case auth_mechanism::plain:
            require_username(a);
            forbid_properties(a);
            // PLAIN is LDAP: its users live in $external unless the URI names a database.
            c.source = a.source ? *a.source : !db_default.empty() ? db_default : "$external";
            break;
        case auth_mechanism::mongodb_x509:
            forbid_empty_username(a);
            forbid_password(a, "the client certificate is the proof");
            forbid_properties(a);
            c.source = external_source(a);
            break;
        case auth_mechanism::gssapi: check_gssapi(a, c); break;
        case auth_mechanism::mongodb_aws: check_aws(a, c); break;
        case auth_mechanism::mongodb_oidc: check_oidc(a, c); break;
        case auth_mechanism::scram_sha_1:
        case auth_mechanism::scram_sha_256: break;  // handled above
    }
    return c;
}

std::string_view to_string(auth_mechanism m) noexcept {
    switch (m) {
        case auth_mechanism::scram_sha_1: return "SCRAM-SHA-1";
        case auth_mechanism::scram_sha_256: return "SCRAM-SHA-256";
        case auth_mechanism::mongodb_x509: return "MONGODB-X509";
        case auth_mechanism::plain: return "PLAIN";
        case auth_mechanism::gssapi: return "GSSAPI";
        case auth_mechanism::mongodb_aws: return "MONGODB-AWS";
        case auth_mechanism::mongodb_oidc: return "MONGODB-OIDC";
    }
    return "?";
}

std::string_view to_string(read_preference_mode m) noexcept {
    switch (m) {
        case read_preference_mode::primary: return "primary";
        case read_preference_mode::primary_preferred: return "primaryPreferred";
        case read_preference_mode::secondary: return "secondary";
        case read_preference_mode::secondary_preferred: return "secondaryPreferred";
        case read_preference_mode::nearest: return "nearest";
    }
    return "?";
}

std::string_view to_string(monitoring_mode m) noexcept {
    switch (m) {
        case monitoring_mode::auto_: return "auto";
        case monitoring_mode::stream: return "stream";
        case monitoring_mode::poll: return "poll";
    }
    return "?";
}

std::string_view to_string(host_type t) noexcept {
    switch (t) {
        case host_type::hostname: return "hostname";
        case host_type::ipv4: return "ipv4";
        case host_type::ip_literal: return "ip_literal";
        case host_type::unix_socket: return "unix";
    }
    return "?";
}

std::optional<auth_mechanism> auth_mechanism_from_string(std::string_view name) noexcept {
    for (auth_mechanism m : {auth_mechanism::scram_sha_1, auth_mechanism::scram_sha_256, auth_mechanism::mongodb_x509,
                             auth_mechanism::plain, auth_mechanism::gssapi, auth_mechanism::mongodb_aws,
                             auth_mechanism::mongodb_oidc})
        if (iequals(name, to_string(m))) return m;
    return std::nullopt;
}

}  // namespace trellis
