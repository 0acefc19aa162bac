// The connection string parser. Input: text taken as a connection string.
//   - parse_uri() fails only with configuration_error, and its message never quotes the password;
//   - a string it accepts, written back as a connection string (every option spelled out,
//     every part percent-encoded) by format_uri() below, parses to the same client_options;
//   - the accepted options pass validate() and make_credential() as parse_uri() promised.
#include <string>

#include "fuzz_check.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace {

using namespace trellis;

std::string enc(std::string_view s) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 0xF];
        }
    }
    return out;
}

// A list value ("k:v,k:v") cannot carry ',' or ':' inside its parts: the value is
// percent-decoded before it is split (as the specs' tests expect).
bool listable(std::string_view s) { return s.find_first_of(",:") == std::string_view::npos; }

struct writer {
    std::string query;
    void add(std::string_view key, std::string_view value) {
        query += query.empty() ? '?' : '&';
        query += key;
        query += '=';
        query += enc(value);
    }
    void add(std::string_view key, bool v) { add(key, std::string_view(v ? "true" : "false")); }
    void add(std::string_view key, std::int64_t v) { add(key, std::string_view(std::to_string(v))); }
    void add(std::string_view key, std::chrono::milliseconds v) { add(key, static_cast<std::int64_t>(v.count())); }
    template <class T>
    void opt(std::string_view key, const std::optional<T>& v) {
        if (v) add(key, *v);
    }
};

// The options as a connection string; nullopt when they hold what a connection string cannot
// say (a ',' or ':' in a tag or a mechanism property).
std::optional<std::string> format_uri(const client_options& o) {
    std::string uri = o.is_srv ? "mongodb+srv://" : "mongodb://";
    if (o.auth.username) {
        uri += enc(*o.auth.username);
        if (o.auth.password) uri += ":" + enc(*o.auth.password);
        uri += "@";
    }
    if (o.is_srv) {
        uri += enc(o.srv_host);
    } else {
        for (std::size_t i = 0; i < o.hosts.size(); ++i) {
            const server_address& h = o.hosts[i];
            if (i > 0) uri += ",";
            uri += h.type == host_type::ip_literal ? "[" + enc(h.host) + "]" : enc(h.host);
            if (h.port) uri += ":" + std::to_string(*h.port);
        }
    }
    uri += "/";
    if (o.database) uri += enc(*o.database);

    writer w;
    w.opt("srvServiceName", o.srv_service_name);
    if (o.srv_max_hosts) w.add("srvMaxHosts", static_cast<std::int64_t>(*o.srv_max_hosts));
    w.opt("replicaSet", o.replica_set);
    w.opt("directConnection", o.direct_connection);
    w.opt("loadBalanced", o.load_balanced);
    w.add("serverMonitoringMode", to_string(o.server_monitoring_mode));
    w.add("heartbeatFrequencyMS", o.heartbeat_frequency);
    w.add("localThresholdMS", o.local_threshold);
    w.add("serverSelectionTimeoutMS", o.server_selection_timeout);
    w.opt("serverSelectionTryOnce", o.server_selection_try_once);
    w.add("connectTimeoutMS", o.connect_timeout);
    w.opt("socketTimeoutMS", o.socket_timeout);
    w.opt("timeoutMS", o.timeout);
    w.add("maxPoolSize", static_cast<std::int64_t>(o.max_pool_size));
    w.add("minPoolSize", static_cast<std::int64_t>(o.min_pool_size));
    w.add("maxConnecting", static_cast<std::int64_t>(o.max_connecting));
    w.opt("maxIdleTimeMS", o.max_idle_time);
    w.opt("waitQueueTimeoutMS", o.wait_queue_timeout);
    if (o.wait_queue_multiple) w.add("waitQueueMultiple", static_cast<std::int64_t>(*o.wait_queue_multiple));
    w.opt("appName", o.app_name);
    if (!o.compressors.empty()) {
        std::string list;
        for (const auto& c : o.compressors) list += (list.empty() ? "" : ",") + c;
        w.add("compressors", list);
    }
    if (o.zlib_compression_level) w.add("zlibCompressionLevel", static_cast<std::int64_t>(*o.zlib_compression_level));
    w.opt("tls", o.tls.enabled);
    w.opt("tlsCAFile", o.tls.ca_file);
    w.opt("tlsCertificateKeyFile", o.tls.certificate_key_file);
    w.opt("tlsCertificateKeyFilePassword", o.tls.certificate_key_file_password);
    w.opt("tlsAllowInvalidCertificates", o.tls.allow_invalid_certificates);
    w.opt("tlsAllowInvalidHostnames", o.tls.allow_invalid_hostnames);
    w.opt("tlsInsecure", o.tls.insecure);
    w.opt("tlsDisableOCSPEndpointCheck", o.tls.disable_ocsp_endpoint_check);
    w.opt("tlsDisableCertificateRevocationCheck", o.tls.disable_certificate_revocation_check);
    w.opt("proxyHost", o.proxy.host);
    if (o.proxy.port) w.add("proxyPort", static_cast<std::int64_t>(*o.proxy.port));
    w.opt("proxyUsername", o.proxy.username);
    w.opt("proxyPassword", o.proxy.password);
    w.add("readPreference", to_string(o.read_preference.mode));
    for (const tag_set& set : o.read_preference.tag_sets) {
        std::string list;
        for (const auto& [k, v] : set) {
            if (!listable(k) || !listable(v)) return std::nullopt;
            list += (list.empty() ? "" : ",") + k + ":" + v;
        }
        w.add("readPreferenceTags", list);
    }
    if (o.read_preference.max_staleness) w.add("maxStalenessSeconds", static_cast<std::int64_t>(o.read_preference.max_staleness->count()));
    if (o.write_concern.w) {
        if (const auto* n = std::get_if<std::int32_t>(&*o.write_concern.w)) w.add("w", static_cast<std::int64_t>(*n));
        else w.add("w", std::get<std::string>(*o.write_concern.w));
    }
    w.opt("wTimeoutMS", o.write_concern.wtimeout);
    w.opt("journal", o.write_concern.journal);
    w.opt("fsync", o.write_concern.fsync);
    w.opt("readConcernLevel", o.read_concern.level);
    w.add("retryReads", o.retry_reads);
    w.add("retryWrites", o.retry_writes);
    w.add("maxAdaptiveRetries", static_cast<std::int64_t>(o.max_adaptive_retries));
    w.add("enableOverloadRetargeting", o.enable_overload_retargeting);
    if (o.auth.mechanism) w.add("authMechanism", to_string(*o.auth.mechanism));
    w.opt("authSource", o.auth.source);
    if (!o.auth.mechanism_properties.empty()) {
        std::string list;
        for (const auto& [k, v] : o.auth.mechanism_properties) {
            if (!listable(k) || !listable(v)) return std::nullopt;
            list += (list.empty() ? "" : ",") + k + ":" + v;
        }
        w.add("authMechanismProperties", list);
    }
    return uri + w.query;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    trellis::connection_string first;
    try {
        first = trellis::parse_uri(text);
    } catch (const trellis::configuration_error& e) {
        // The password never appears in the message: the same string with the password replaced
        // by a marker of the same length must not quote the marker (when it fails too).
        (void)e;
        const std::size_t scheme = text.find("://");
        if (scheme != std::string_view::npos) {
            const std::string_view rest = text.substr(scheme + 3);
            const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
            const std::size_t at = authority.rfind('@');
            const std::size_t colon = authority.substr(0, at == std::string_view::npos ? 0 : at).find(':');
            if (at != std::string_view::npos && colon != std::string_view::npos && at - colon - 1 >= 4) {
                std::string marked(text);
                const std::size_t from = scheme + 3 + colon + 1, length = at - colon - 1;
                std::string marker;
                for (std::size_t i = 0; i < length; ++i) marker += "Qz7"[i % 3];
                // An input that already holds the marker elsewhere (libFuzzer learns it from this
                // very comparison) would make any echo of that text look like a leak.
                if (text.find(marker) != std::string_view::npos) return 0;
                marked.replace(from, length, marker);
                try {
                    (void)trellis::parse_uri(marked);
                } catch (const trellis::configuration_error& again) {
                    FUZZ_CHECK(std::string_view(again.what()).find(marker) == std::string_view::npos,
                               "the error quotes the password: " + std::string(again.what()));
                }
            }
        }
        return 0;
    }
    // What parse_uri() accepted, validate() and make_credential() accept too.
    try {
        trellis::validate(first.options);
        (void)trellis::make_credential(first.options);
    } catch (const trellis::configuration_error& e) {
        FUZZ_CHECK(false, std::string("parse_uri accepted options that validate() refuses: ") + e.what());
    }
    const auto again = format_uri(first.options);
    if (!again) return 0;
    trellis::connection_string second;
    try {
        second = trellis::parse_uri(*again);
    } catch (const trellis::configuration_error& e) {
        FUZZ_CHECK(false, "\"" + std::string(text) + "\" parsed, but its options written back as \"" + *again +
                              "\" do not: " + e.what());
    }
    FUZZ_CHECK(second.options == first.options,
               "\"" + std::string(text) + "\" and its options written back as \"" + *again + "\" parse differently");
    return 0;
}
