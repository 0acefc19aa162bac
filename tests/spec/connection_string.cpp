// Suite connection-string (connection-string/tests), and the format it shares with the URI
// options tests (uri_options.cpp runs the same checks). Per case:
// - valid: parse_uri must succeed, or throw configuration_error (any other exception fails);
// - warning: true/false asserts that warnings were / were not reported; null asserts nothing;
// - hosts: type, host, port of each seed, in order (a null type or host asserts nothing; a
//   null port means no port was given);
// - auth: username, password, db compared exactly (null means absent);
// - options: each key, case-insensitively, against the parsed value. The spec files spell some
//   values as strings ("9", "false") and lists as one string ("zlib"): scalars compare by text.
//   A key this runner cannot map to client_options fails the case rather than being skipped.
#include <stdexcept>

#include "runner.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace trellis::spec {

void run_connection_string_format(std::string_view file, const boost::json::value& test, reporter& out);

namespace {

namespace json = boost::json;

struct mismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string show(const json::value& v) { return json::serialize(v); }

std::string lower_ascii(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return r;
}

template <class T>
json::value or_null(const std::optional<T>& v) {
    return v ? json::value(*v) : json::value(nullptr);
}

json::value millis(std::chrono::milliseconds d) { return json::value(static_cast<std::int64_t>(d.count())); }

json::value millis(const std::optional<std::chrono::milliseconds>& d) { return d ? millis(*d) : json::value(nullptr); }

json::value string_list(const std::vector<std::string>& list) {
    json::array a;
    for (const std::string& s : list) a.emplace_back(s);
    return a;
}

// The parsed value of an option, by its lower-case URI name; null when unset. false when the
// runner knows no such option.
bool option_value(const client_options& o, std::string_view key, json::value& v) {
    const std::string k = lower_ascii(key);
    if (k == "appname") v = or_null(o.app_name);
    else if (k == "authmechanism")
        v = o.auth.mechanism ? json::value(to_string(*o.auth.mechanism)) : json::value(nullptr);
    else if (k == "authmechanismproperties") {
        json::object props;
        for (const auto& [name, value] : o.auth.mechanism_properties) props[name] = value;
        v = std::move(props);
    } else if (k == "authsource") v = or_null(o.auth.source);
    else if (k == "compressors") v = string_list(o.compressors);
    else if (k == "connecttimeoutms") v = millis(o.connect_timeout);
    else if (k == "directconnection") v = or_null(o.direct_connection);
    else if (k == "fsync") v = or_null(o.write_concern.fsync);
    else if (k == "heartbeatfrequencyms") v = millis(o.heartbeat_frequency);
    else if (k == "journal") v = or_null(o.write_concern.journal);
    else if (k == "loadbalanced") v = or_null(o.load_balanced);
    else if (k == "localthresholdms") v = millis(o.local_threshold);
    else if (k == "maxadaptiveretries") v = o.max_adaptive_retries;
    else if (k == "enableoverloadretargeting") v = o.enable_overload_retargeting;
    else if (k == "maxconnecting") v = o.max_connecting;
    else if (k == "maxidletimems") v = millis(o.max_idle_time);
    else if (k == "maxpoolsize") v = o.max_pool_size;
    else if (k == "maxstalenessseconds") {
        // -1 is the URI's spelling of "no maximum", which is what unset means.
        const auto& s = o.read_preference.max_staleness;
        v = s ? static_cast<std::int64_t>(s->count()) : std::int64_t{-1};
    } else if (k == "minpoolsize") v = o.min_pool_size;
    else if (k == "proxyhost") v = or_null(o.proxy.host);
    else if (k == "proxyport") v = or_null(o.proxy.port);
    else if (k == "proxyusername") v = or_null(o.proxy.username);
    else if (k == "proxypassword") v = or_null(o.proxy.password);
    else if (k == "readconcernlevel") v = or_null(o.read_concern.level);
    else if (k == "readpreference") v = to_string(o.read_preference.mode);
    else if (k == "readpreferencetags") {
        json::array sets;
        for (const tag_set& s : o.read_preference.tag_sets) {
            json::object tags;
            for (const auto& [name, value] : s) tags[name] = value;
            sets.emplace_back(std::move(tags));
        }
        v = std::move(sets);
    } else if (k == "replicaset") v = or_null(o.replica_set);
    else if (k == "retryreads") v = o.retry_reads;
    else if (k == "retrywrites") v = o.retry_writes;
    else if (k == "servermonitoringmode") v = to_string(o.server_monitoring_mode);
    else if (k == "serverselectiontimeoutms") v = millis(o.server_selection_timeout);
    else if (k == "serverselectiontryonce") v = or_null(o.server_selection_try_once);
    else if (k == "sockettimeoutms") v = millis(o.socket_timeout);
    else if (k == "srvmaxhosts") v = or_null(o.srv_max_hosts);
    else if (k == "srvservicename") v = or_null(o.srv_service_name);
    else if (k == "ssl" || k == "tls") v = or_null(o.tls.enabled);
    else if (k == "timeoutms") v = millis(o.timeout);
    else if (k == "tlsallowinvalidcertificates") v = or_null(o.tls.allow_invalid_certificates);
    else if (k == "tlsallowinvalidhostnames") v = or_null(o.tls.allow_invalid_hostnames);
    else if (k == "tlscafile") v = or_null(o.tls.ca_file);
    else if (k == "tlscertificatekeyfile") v = or_null(o.tls.certificate_key_file);
    else if (k == "tlscertificatekeyfilepassword") v = or_null(o.tls.certificate_key_file_password);
    else if (k == "tlsdisablecertificaterevocationcheck") v = or_null(o.tls.disable_certificate_revocation_check);
    else if (k == "tlsdisableocspendpointcheck") v = or_null(o.tls.disable_ocsp_endpoint_check);
    else if (k == "tlsinsecure") v = or_null(o.tls.insecure);
    else if (k == "w") {
        if (!o.write_concern.w) v = nullptr;
        else if (const auto* n = std::get_if<std::int32_t>(&*o.write_concern.w)) v = *n;
        else v = std::get<std::string>(*o.write_concern.w);
    } else if (k == "waitqueuemultiple") v = or_null(o.wait_queue_multiple);
    else if (k == "waitqueuetimeoutms") v = millis(o.wait_queue_timeout);
    else if (k == "wtimeoutms") v = millis(o.write_concern.wtimeout);
    else if (k == "zlibcompressionlevel") v = or_null(o.zlib_compression_level);
    else return false;
    return true;
}

std::string scalar_text(const json::value& v) {
    if (const auto* s = v.if_string()) return std::string(*s);
    if (const auto* b = v.if_bool()) return *b ? "true" : "false";
    return show(v);
}

// Structure must match exactly (objects as unordered maps); scalars compare by their text, so
// that 9 matches "9" and true matches "true". A list also matches its comma-joined text.
bool loosely_equal(const json::value& expected, const json::value& actual) {
    if (expected.is_null() || actual.is_null()) return expected.is_null() && actual.is_null();
    if (expected.is_object() && actual.is_object()) {
        const json::object &e = expected.get_object(), &a = actual.get_object();
        if (e.size() != a.size()) return false;
        for (const auto& kv : e) {
            const json::value* other = a.if_contains(kv.key());
            if (!other || !loosely_equal(kv.value(), *other)) return false;
        }
        return true;
    }
    if (expected.is_array() && actual.is_array()) {
        const json::array &e = expected.get_array(), &a = actual.get_array();
        if (e.size() != a.size()) return false;
        for (std::size_t i = 0; i < e.size(); ++i)
            if (!loosely_equal(e[i], a[i])) return false;
        return true;
    }
    if (expected.is_string() && actual.is_array()) {
        std::string joined;
        for (const json::value& item : actual.get_array()) {
            if (!item.is_string()) return false;
            joined += (joined.empty() ? "" : ",") + std::string(item.get_string());
        }
        return joined == expected.get_string();
    }
    if (expected.is_structured() || actual.is_structured()) return false;
    if (expected.is_number() && actual.is_number() && (expected.is_double() || actual.is_double()))
        return expected.to_number<double>() == actual.to_number<double>();
    return scalar_text(expected) == scalar_text(actual);
}

void check_exact(const json::value& expected, const std::optional<std::string>& actual, std::string_view what) {
    if (expected.is_null() ? !actual : (expected.is_string() && actual && *actual == expected.get_string())) return;
    throw mismatch(std::string(what) + ": expected " + show(expected) + ", got " +
                   (actual ? show(json::value(*actual)) : std::string("nothing")));
}

void check_hosts(const json::array& expected, const client_options& o) {
    if (expected.size() != o.hosts.size())
        throw mismatch("expected " + std::to_string(expected.size()) + " hosts, got " + std::to_string(o.hosts.size()));
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const json::object* e = expected[i].if_object();
        if (!e) throw mismatch("hosts[" + std::to_string(i) + "] is not an object");
        const server_address& a = o.hosts[i];
        const std::string at = "hosts[" + std::to_string(i) + "].";
        if (const json::value* type = e->if_contains("type"); type && !type->is_null())
            check_exact(*type, std::string(to_string(a.type)), at + "type");
        if (const json::value* host = e->if_contains("host"); host && !host->is_null())
            check_exact(*host, a.host, at + "host");
        const json::value* port = e->if_contains("port");
        const json::value actual_port = a.port ? json::value(*a.port) : json::value(nullptr);
        if (!loosely_equal(port ? *port : json::value(nullptr), actual_port))
            throw mismatch(at + "port: expected " + (port ? show(*port) : "null") + ", got " + show(actual_port));
    }
}

void check_auth(const json::object& expected, const client_options& o) {
    auto field = [&](std::string_view key) { return expected.contains(key) ? expected.at(key) : json::value(nullptr); };
    check_exact(field("username"), o.auth.username, "auth.username");
    check_exact(field("password"), o.auth.password, "auth.password");
    check_exact(field("db"), o.database, "auth.db");
}

void check_options(const json::object& expected, const client_options& o) {
    for (const auto& kv : expected) {
        json::value actual;
        if (!option_value(o, kv.key(), actual))
            throw mismatch("option " + std::string(kv.key()) + " is not supported by the parser");
        if (!loosely_equal(kv.value(), actual))
            throw mismatch("option " + std::string(kv.key()) + ": expected " + show(kv.value()) + ", got " +
                           show(actual));
    }
}

std::string joined(const std::vector<std::string>& warnings) {
    std::string s;
    for (const std::string& w : warnings) s += (s.empty() ? "" : " | ") + w;
    return s;
}

void check_case(const json::object& t) {
    const json::value* uri = t.if_contains("uri");
    const json::value* valid = t.if_contains("valid");
    if (!uri || !uri->is_string() || !valid || !valid->is_bool()) throw mismatch("the case lacks uri or valid");

    connection_string cs;
    try {
        cs = parse_uri(uri->get_string());
    } catch (const configuration_error& e) {
        if (valid->get_bool()) throw mismatch(std::string("unexpected error: ") + e.what());
        return;
    } catch (const std::exception& e) {
        throw mismatch(std::string("an exception other than configuration_error: ") + e.what());
    }
    if (!valid->get_bool())
        throw mismatch("parsed without error" +
                       (cs.warnings.empty() ? "" : " (warnings: " + joined(cs.warnings) + ")"));

    if (const json::value* w = t.if_contains("warning"); w && w->is_bool()) {
        if (w->get_bool() && cs.warnings.empty()) throw mismatch("expected a warning, got none");
        if (!w->get_bool() && !cs.warnings.empty()) throw mismatch("unexpected warning: " + joined(cs.warnings));
    }
    if (const json::value* h = t.if_contains("hosts"); h && h->is_array()) check_hosts(h->get_array(), cs.options);
    if (const json::value* a = t.if_contains("auth"); a && a->is_object()) check_auth(a->get_object(), cs.options);
    if (const json::value* o = t.if_contains("options"); o && o->is_object())
        check_options(o->get_object(), cs.options);
}

}  // namespace

// For the seedlist suite, which checks the same options.
bool uri_option_value(const client_options& o, std::string_view key, json::value& v) { return option_value(o, key, v); }
bool loosely_equal_values(const json::value& expected, const json::value& actual) { return loosely_equal(expected, actual); }

void run_connection_string_format(std::string_view file, const json::value& test, reporter& out) {
    const json::array* tests = test.is_object() && test.get_object().contains("tests")
                                   ? test.get_object().at("tests").if_array()
                                   : nullptr;
    if (!tests) {
        out.fail(file, "(file)", "no \"tests\" array");
        return;
    }
    for (const json::value& t : *tests) {
        const std::string description = string_of(t, "description", "(no description)");
        if (!t.is_object()) {
            out.fail(file, description, "the case is not an object");
            continue;
        }
        try {
            check_case(t.get_object());
            out.pass(file, description);
        } catch (const mismatch& m) {
            out.fail(file, description, m.what());
        }
    }
}

extern const suite connection_string_suite;
const suite connection_string_suite{"connection-string", "connection strings: hosts, user information, options",
                                    &run_connection_string_format};

}  // namespace trellis::spec
