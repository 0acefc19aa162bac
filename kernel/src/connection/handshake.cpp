#include "trellis/reply.hpp"
#include "connection/handshake.hpp"

#include <sys/utsname.h>

#include <boost/version.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

#ifndef TRELLIS_VERSION
#define TRELLIS_VERSION "0.0.0"
#endif

namespace trellis::handshake {
namespace {

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
}

std::optional<std::int32_t> env_int32(const char* name) {
    const auto v = env(name);
    if (!v) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v->c_str(), &end, 10);
    // A value of the wrong type is left out, never an error (the spec).
    if (errno != 0 || end == v->c_str() || *end != '\0' || n < INT32_MIN || n > INT32_MAX) return std::nullopt;
    return static_cast<std::int32_t>(n);
}

// PRETTY_NAME from os-release(5), unquoted.
std::optional<std::string> os_pretty_name() {
    for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
        std::ifstream in(path);
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
            std::string v = line.substr(12);
            if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
                v = v.substr(1, v.size() - 2);
            if (!v.empty()) return v;
        }
    }
    return std::nullopt;
}

std::string compiler_and_libraries() {
    std::string s;
#if defined(__clang__)
    s = "clang " + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__);
#elif defined(__GNUC__)
    s = "g++ " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__);
#else
    s = "unknown compiler";
#endif
    s += " C++" + std::to_string(__cplusplus / 100 % 100);
    s += ", Boost " + std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000);
    return s;
}

// What is left after each step of the truncation order.
struct metadata_shape {
    bool env_name_only = false;
    bool os_type_only = false;
    bool no_env = false;
    std::optional<std::size_t> platform_bytes;  // cut platform to this many bytes
};

bson::document build(const metadata_facts& f, const metadata_shape& shape) {
    bson::builder b;
    if (f.application_name) b.open_document("application").append("name", *f.application_name).close_document();
    b.open_document("driver").append("name", f.driver_name).append("version", f.driver_version).close_document();
    b.open_document("os").append("type", f.os_type);
    if (!shape.os_type_only) {
        if (f.os_name) b.append("name", *f.os_name);
        if (f.os_architecture) b.append("architecture", *f.os_architecture);
        if (f.os_version) b.append("version", *f.os_version);
    }
    b.close_document();
    if (f.platform) {
        std::string_view p = *f.platform;
        if (shape.platform_bytes) p = p.substr(0, *shape.platform_bytes);
        // Never cut inside a UTF-8 sequence: back up to a lead byte.
        while (shape.platform_bytes && !p.empty() && p.size() < f.platform->size() &&
               (static_cast<unsigned char>((*f.platform)[p.size()]) & 0xC0) == 0x80)
            p.remove_suffix(1);
        if (!p.empty()) b.append("platform", p);
    }
    const auto& e = f.env;
    const bool env_present = shape.no_env ? false : shape.env_name_only ? e.name.has_value() : !e.empty();
    if (env_present) {
        b.open_document("env");
        if (e.name) b.append("name", *e.name);
        if (!shape.env_name_only) {
            if (e.timeout_sec) b.append("timeout_sec", *e.timeout_sec);
            if (e.memory_mb) b.append("memory_mb", *e.memory_mb);
            if (e.region) b.append("region", *e.region);
            if (e.container_runtime || e.container_orchestrator) {
                b.open_document("container");
                if (e.container_runtime) b.append("runtime", *e.container_runtime);
                if (e.container_orchestrator) b.append("orchestrator", *e.container_orchestrator);
                b.close_document();
            }
        }
        b.close_document();
    }
    return b.extract();
}

std::int32_t int32_field(bson::document_view reply, std::string_view key, std::int32_t fallback,
                         const std::string& address) {
    const auto e = reply.find(key);
    if (!e) return fallback;
    if (!e->is_number())
        throw protocol_error(errc::protocol_error, address + ": hello reply field '" + std::string(key) +
                                                       "' is not a number: " + std::string(bson::type_name(e->type())));
    const std::int64_t v = e->as_int64();
    if (v < INT32_MIN || v > INT32_MAX)
        throw protocol_error(errc::protocol_error,
                             address + ": hello reply field '" + std::string(key) + "' is out of range: " + std::to_string(v));
    return static_cast<std::int32_t>(v);
}

}  // namespace

metadata_facts detect_platform(std::optional<std::string> application_name) {
    metadata_facts f;
    f.application_name = std::move(application_name);
    f.driver_version = TRELLIS_VERSION;
    utsname u{};
    if (::uname(&u) == 0) {
        f.os_type = u.sysname;
        f.os_architecture = std::string(u.machine);
        f.os_version = std::string(u.release);
    }
    f.os_name = os_pretty_name();
    f.platform = compiler_and_libraries();

    // FaaS: vercel wins over aws.lambda; any other combination leaves the FaaS fields out.
    std::vector<std::string> faas;
    const auto aws = env("AWS_EXECUTION_ENV");
    if ((aws && aws->rfind("AWS_Lambda_", 0) == 0) || env("AWS_LAMBDA_RUNTIME_API")) faas.push_back("aws.lambda");
    if (env("FUNCTIONS_WORKER_RUNTIME")) faas.push_back("azure.func");
    if (env("K_SERVICE") || env("FUNCTION_NAME")) faas.push_back("gcp.func");
    if (env("VERCEL")) faas.push_back("vercel");
    std::optional<std::string> name;
    if (faas.size() == 1) name = faas.front();
    else if (faas.size() == 2 && faas[0] == "aws.lambda" && faas[1] == "vercel") name = "vercel";
    if (name == "aws.lambda") {
        f.env.region = env("AWS_REGION");
        f.env.memory_mb = env_int32("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    } else if (name == "gcp.func") {
        f.env.memory_mb = env_int32("FUNCTION_MEMORY_MB");
        f.env.timeout_sec = env_int32("FUNCTION_TIMEOUT_SEC");
        f.env.region = env("FUNCTION_REGION");
    } else if (name == "vercel") {
        f.env.region = env("VERCEL_REGION");
    }
    f.env.name = name;
    std::error_code ec;
    if (std::filesystem::exists("/.dockerenv", ec)) f.env.container_runtime = "docker";
    if (env("KUBERNETES_SERVICE_HOST")) f.env.container_orchestrator = "kubernetes";
    return f;
}

bson::document client_metadata(const metadata_facts& facts) {
    metadata_shape shape;
    bson::document doc = build(facts, shape);
    if (doc.size() <= max_metadata_bytes) return doc;
    shape.env_name_only = true;
    doc = build(facts, shape);
    if (doc.size() <= max_metadata_bytes) return doc;
    shape.os_type_only = true;
    doc = build(facts, shape);
    if (doc.size() <= max_metadata_bytes) return doc;
    shape.no_env = true;
    doc = build(facts, shape);
    if (doc.size() <= max_metadata_bytes) return doc;
    if (facts.platform) {
        const std::size_t excess = doc.size() - max_metadata_bytes;
        // Removing n bytes of the string shrinks the document by n, until the field goes
        // (then by its key and framing as well).
        shape.platform_bytes = facts.platform->size() > excess ? facts.platform->size() - excess : 0;
        doc = build(facts, shape);
        if (doc.size() <= max_metadata_bytes) return doc;
    }
    throw configuration_error("client metadata is " + std::to_string(doc.size()) + " bytes even after truncation, over the " +
                              std::to_string(max_metadata_bytes) + "-byte limit: shorten appname or the driver information");
}

initial_hello make_initial_hello(const hello_options& o) {
    initial_hello h;
    h.use_op_query = !(o.load_balanced || o.server_api);
    bson::builder b;
    if (h.use_op_query) b.append("isMaster", 1).append("helloOk", true);
    else b.append("hello", 1);
    if (!o.client_metadata.view().empty()) b.append("client", o.client_metadata.view());
    if (!o.compressors.empty()) {
        b.open_array("compression");
        for (const auto& c : o.compressors) b.append(c);
        b.close_array();
    }
    if (o.load_balanced) b.append("loadBalanced", true);
    if (o.sasl_supported_mechs) b.append("saslSupportedMechs", *o.sasl_supported_mechs);
    if (o.speculative_authenticate) b.append("speculativeAuthenticate", o.speculative_authenticate->view());
    // A string, not a number: the handshake spec versions backpressure support this way.
    b.append("backpressure", "2");
    h.command = b.extract();
    return h;
}

bson::document server_api_fields(const server_api& api) {
    bson::builder b;
    b.append("apiVersion", api.version);
    if (api.strict) b.append("apiStrict", *api.strict);
    if (api.deprecation_errors) b.append("apiDeprecationErrors", *api.deprecation_errors);
    return b.extract();
}

connection_description parse_hello_reply(std::string address, bson::document_view reply,
                                         const std::vector<std::string>& offered) {
    if (!reply_ok(reply)) {
        int code = 0;
        std::string code_name, message;
        if (auto c = reply.find("code"); c && c->is_number()) code = static_cast<int>(c->as_int64());
        if (auto n = reply.find("codeName"); n && n->type() == bson::type::string) code_name = n->get_string();
        if (auto m = reply.find("errmsg"); m && m->type() == bson::type::string) message = m->get_string();
        throw operation_failure(code, code_name, {},
                                address + ": hello failed: " + (message.empty() ? bson::to_json(reply) : message) +
                                    (code != 0 ? " (code " + std::to_string(code) + (code_name.empty() ? "" : " " + code_name) + ")"
                                               : ""));
    }
    connection_description d;
    d.address = std::move(address);
    d.min_wire_version = int32_field(reply, "minWireVersion", 0, d.address);
    d.max_wire_version = int32_field(reply, "maxWireVersion", 0, d.address);
    // The SDAM spec's compatibility messages.
    if (d.min_wire_version > max_wire_version)
        throw error(errc::incompatible_server,
                    "Server at " + d.address + " requires wire version " + std::to_string(d.min_wire_version) +
                        ", but this version of Trellis only supports up to " + std::to_string(max_wire_version) + ".");
    if (d.max_wire_version < min_wire_version)
        throw error(errc::incompatible_server,
                    "Server at " + d.address + " reports wire version " + std::to_string(d.max_wire_version) +
                        ", but this version of Trellis requires at least " + std::to_string(min_wire_version) +
                        " (MongoDB 3.6).");
    d.op_msg = d.max_wire_version >= 6;
    d.max_bson_object_size = int32_field(reply, "maxBsonObjectSize", d.max_bson_object_size, d.address);
    d.max_message_size_bytes = int32_field(reply, "maxMessageSizeBytes", d.max_message_size_bytes, d.address);
    d.max_write_batch_size = int32_field(reply, "maxWriteBatchSize", d.max_write_batch_size, d.address);
    if (d.max_bson_object_size <= 0 || d.max_message_size_bytes <= 0 || d.max_write_batch_size <= 0)
        throw protocol_error(errc::protocol_error, d.address + ": hello reply gives a non-positive size limit");
    if (auto e = reply.find("connectionId"); e && e->is_number()) d.server_connection_id = e->as_int64();
    if (auto e = reply.find("helloOk"); e && e->type() == bson::type::boolean) d.hello_ok = e->get_bool();
    if (auto e = reply.find("logicalSessionTimeoutMinutes"); e && e->is_number())
        d.logical_session_timeout_minutes = static_cast<std::int32_t>(e->as_int64());
    if (auto e = reply.find("compression")) {
        if (e->type() != bson::type::array)
            throw protocol_error(errc::protocol_error, d.address + ": hello reply field 'compression' is not an array");
        for (const auto& c : e->get_array()) {
            if (c.type() != bson::type::string)
                throw protocol_error(errc::protocol_error, d.address + ": hello reply 'compression' holds a non-string");
            const std::string name(c.get_string());
            bool known = false;
            for (const auto& o : offered) known = known || o == name;
            if (!known)
                throw protocol_error(errc::protocol_error,
                                     d.address + ": server chose compressor '" + name + "', which was not offered");
            if (!d.compressor) d.compressor = name;  // the first of the server's list
        }
    }
    if (auto e = reply.find("saslSupportedMechs"); e && e->type() == bson::type::array)
        for (const auto& m : e->get_array())
            if (m.type() == bson::type::string) d.sasl_supported_mechs.emplace_back(m.get_string());
    if (auto e = reply.find("speculativeAuthenticate"); e && e->type() == bson::type::document)
        d.speculative_authenticate = bson::document(e->get_document());
    if (auto e = reply.find("topologyVersion"); e && e->type() == bson::type::document) {
        const auto tv = e->get_document();
        const auto pid = tv.find("processId");
        const auto counter = tv.find("counter");
        if (pid && pid->type() == bson::type::oid && counter && counter->is_number())
            d.topology_version = sdk::topology_version{pid->get_oid(), counter->as_int64()};
    }
    if (auto e = reply.find("serviceId")) {
        if (e->type() != bson::type::oid)
            throw protocol_error(errc::protocol_error, d.address + ": hello reply field 'serviceId' is not an ObjectId");
        d.service_id = e->get_oid();
    }
    return d;
}

}  // namespace trellis::handshake
