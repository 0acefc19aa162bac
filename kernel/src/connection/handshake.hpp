// The connection handshake (the MongoDB Handshake spec), without I/O: the client metadata
// document with its 512-byte limit, the initial hello command, and what its reply tells a
// connection (limits, wire versions, the compressor, speculative authentication).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/options.hpp"
#include "trellis/sdam.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis::handshake {

/// Wire versions this version of Trellis speaks: MongoDB 3.6 (6) to 8.2 (25), as SDAM has them.
inline constexpr int min_wire_version = sdam::client_min_wire_version;
inline constexpr int max_wire_version = sdam::client_max_wire_version;
/// The spec's limit on the whole `client` document, BSON overhead included.
inline constexpr std::size_t max_metadata_bytes = 512;

/// The facts the client metadata reports. Defaults come from the running system
/// (detect_platform()); tests set them by hand to exercise truncation.
struct metadata_facts {
    std::optional<std::string> application_name;  // at most 128 bytes (checked by options' validate)
    std::string driver_name = "trellis";
    std::string driver_version;
    std::string os_type = "unknown";
    std::optional<std::string> os_name, os_architecture, os_version;
    std::optional<std::string> platform;
    /// client.env: FaaS and container facts, already gathered; name first.
    struct environment {
        std::optional<std::string> name;
        std::optional<std::int32_t> timeout_sec, memory_mb;
        std::optional<std::string> region;
        std::optional<std::string> container_runtime, container_orchestrator;
        bool empty() const noexcept {
            return !name && !timeout_sec && !memory_mb && !region && !container_runtime && !container_orchestrator;
        }
    } env;
};

/// The running system's facts: uname(2), /etc/os-release, the compiler and Boost versions,
/// FaaS variables and container markers as the spec lists them.
metadata_facts detect_platform(std::optional<std::string> application_name = std::nullopt);

/// The `client` document, within max_metadata_bytes: the spec's truncation order is applied
/// cumulatively (env fields but name, os fields but type, env entirely, then platform cut).
/// Throws configuration_error if even that does not fit (an application name cannot be cut).
bson::document client_metadata(const metadata_facts& facts);

struct hello_options {
    bson::document client_metadata;           // client_metadata(); empty: not sent
    std::vector<std::string> compressors;     // names offered, in preference order
    bool load_balanced = false;
    bool server_api = false;                  // a Stable API version is declared (its fields: connection_settings)
    /// "db.user" when a credential gives no mechanism (saslSupportedMechs).
    std::optional<std::string> sasl_supported_mechs;
    std::optional<bson::document> speculative_authenticate;
};

/// The first command on a new connection. `legacy` (isMaster over OP_QUERY, helloOk: true)
/// unless the Stable API or load balancing asks for hello over OP_MSG. Always carries
/// backpressure: "2" (the handshake spec's version of client backpressure support).
struct initial_hello {
    bson::document command;  // without $db: OP_QUERY carries admin.$cmd, OP_MSG adds $db
    bool use_op_query = true;
};
initial_hello make_initial_hello(const hello_options& options);

/// What a connection keeps from its handshake reply.
struct connection_description {
    std::string address;
    int min_wire_version = 0;
    int max_wire_version = 0;
    std::int32_t max_bson_object_size = 16 * 1024 * 1024;
    std::int32_t max_message_size_bytes = 48'000'000;
    std::int32_t max_write_batch_size = 100'000;
    std::optional<std::int64_t> server_connection_id;  // the reply's connectionId
    bool hello_ok = false;                              // monitors may send hello
    std::optional<std::string> compressor;              // negotiated: the server's first match
    std::optional<std::int32_t> logical_session_timeout_minutes;
    std::vector<std::string> sasl_supported_mechs;
    std::optional<bson::document> speculative_authenticate;  // the server's first auth reply
    std::optional<sdk::topology_version> topology_version;
    std::optional<bson::oid> service_id;                 // behind a load balancer (serviceId)
    bool op_msg = true;                                  // maxWireVersion >= 6
    /// Set by the establisher: the whole reply (SDAM reads it) and the hello's round trip.
    bson::document hello_reply;
    std::chrono::nanoseconds hello_duration{0};
};

/// Reads a successful hello reply. Throws:
///  - operation_failure when ok is not 1 (the server's code and errmsg in the text);
///  - incompatible_server when the wire versions do not overlap ours, with the SDAM spec's
///    message naming the server and both versions;
///  - protocol_error for fields of the wrong type (named).
/// `offered` are the compressor names sent: a reply naming another is a protocol error.
connection_description parse_hello_reply(std::string address, bson::document_view reply,
                                          const std::vector<std::string>& offered);

/// The command fields that declare `api` (the Stable API spec): apiVersion, and apiStrict and
/// apiDeprecationErrors when they were given (even when false).
bson::document server_api_fields(const server_api& api);

}  // namespace trellis::handshake
