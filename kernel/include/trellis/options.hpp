// Client options: one plain struct that a connection string (trellis/uri.hpp), a configuration
// file or C++ code fills, and the checks every one of those sources must pass.
//
// Names follow the specifications in C++ style: heartbeatFrequencyMS is heartbeat_frequency,
// a std::chrono duration. A field with a default in the specifications is a plain value holding
// that default; a field without one is a std::optional, unset until someone sets it. Fields that
// a later rule must tell apart from "not given" (loadBalanced, directConnection, the TLS
// relaxations) are optional too, even where the specifications name a default.
//
// Nothing here performs I/O: validate() and make_credential() are pure checks over values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace trellis {

// ---------------------------------------------------------------- seed list

/// How a seed names its server. The connection string spec tests call these
/// "hostname", "ipv4", "ip_literal" and "unix".
enum class host_type { hostname, ipv4, ip_literal, unix_socket };

/// One seed: a host (and port) or a UNIX domain socket path.
struct server_address {
    static constexpr std::uint16_t default_port = 27017;

    /// A hostname, a dotted IPv4 address, an IPv6 address without brackets, or a socket path.
    std::string host;
    /// Unset: default_port. Never set for a socket.
    std::optional<std::uint16_t> port;
    host_type type = host_type::hostname;

    std::uint16_t port_or_default() const noexcept { return port.value_or(default_port); }
    friend bool operator==(const server_address&, const server_address&) = default;
};

/// The type a host string has: a socket path if it holds a '/', IPv6 if it holds a ':',
/// IPv4 if it is a dotted quad of numbers up to 255, a hostname otherwise.
host_type classify_host(std::string_view host) noexcept;

// ---------------------------------------------------------------- read and write concerns

enum class read_preference_mode { primary, primary_preferred, secondary, secondary_preferred, nearest };

/// A tag set: every pair must match a server's tags. Pairs keep the order they were given in.
using tag_set = std::vector<std::pair<std::string, std::string>>;

struct read_preference {
    read_preference_mode mode = read_preference_mode::primary;
    /// Tried in order; an empty set matches any server. Not allowed with mode primary.
    std::vector<tag_set> tag_sets;
    /// Unset: no maximum (the URI's maxStalenessSeconds=-1). Must be positive and not used with
    /// mode primary; the at-least-90-seconds and heartbeat rules belong to server selection,
    /// which knows the topology type they apply to.
    std::optional<std::chrono::seconds> max_staleness;

    friend bool operator==(const read_preference&, const read_preference&) = default;
};

struct write_concern {
    /// A number of nodes, or a mode name such as "majority" or a custom tag set name.
    std::optional<std::variant<std::int32_t, std::string>> w;
    std::optional<std::chrono::milliseconds> wtimeout;
    std::optional<bool> journal;
    /// Legacy: kept because old connection strings carry it; the server treats it like journal.
    std::optional<bool> fsync;

    friend bool operator==(const write_concern&, const write_concern&) = default;
};

struct read_concern {
    /// Any string, so that levels newer than this library pass through to the server.
    std::optional<std::string> level;

    friend bool operator==(const read_concern&, const read_concern&) = default;
};

/// What a database or collection handle applies to its operations. Unset: inherited (collection
/// from database, database from client; the client's current setting when none sets it).
/// with_options() returns a handle with some of them set; an operation's own option wins.
struct handle_options {
    // Default member initialisers: positional initialisation of the first fields stays quiet
    // under -Wmissing-field-initializers as fields are added.
    std::optional<trellis::read_preference> read_preference{};
    std::optional<trellis::read_concern> read_concern{};
    std::optional<trellis::write_concern> write_concern{};
    /// timeoutMS (client-side operations timeout) of the handle's operations; zero: no limit.
    std::optional<std::chrono::milliseconds> timeout{};

    /// `over` where set, this otherwise.
    handle_options merged(const handle_options& over) const {
        return {over.read_preference ? over.read_preference : read_preference,
                over.read_concern ? over.read_concern : read_concern, over.write_concern ? over.write_concern : write_concern,
                over.timeout ? over.timeout : timeout};
    }
    friend bool operator==(const handle_options&, const handle_options&) = default;
};

/// How timeoutMS bounds a cursor (the CSOT spec's timeoutMode): the cursor's whole life, its
/// first command and every getMore (the default of a non-tailable cursor), or each iteration
/// that goes to the server afresh (the default and only mode of a tailable cursor).
enum class timeout_mode { cursor_lifetime, iteration };

// ---------------------------------------------------------------- TLS, proxy, monitoring

struct tls_options {
    /// Unset: off for mongodb://, on for mongodb+srv:// (parse_uri fills it in for those).
    /// Other tls* options never turn TLS on by themselves.
    std::optional<bool> enabled;
    std::optional<std::string> ca_file;
    std::optional<std::string> certificate_key_file;
    std::optional<std::string> certificate_key_file_password;
    std::optional<bool> allow_invalid_certificates;
    std::optional<bool> allow_invalid_hostnames;
    /// Relaxes every check that can be relaxed: certificates, hostnames, OCSP endpoint queries.
    std::optional<bool> insecure;
    std::optional<bool> disable_ocsp_endpoint_check;
    std::optional<bool> disable_certificate_revocation_check;

    friend bool operator==(const tls_options&, const tls_options&) = default;
};

/// A SOCKS5 proxy to reach the servers through (the SOCKS5 support spec).
struct proxy_options {
    std::optional<std::string> host;
    std::optional<std::uint16_t> port;  ///< unset: 1080
    std::optional<std::string> username;
    std::optional<std::string> password;

    friend bool operator==(const proxy_options&, const proxy_options&) = default;
};

/// serverMonitoringMode. auto_: streaming unless the platform is a FaaS one.
enum class monitoring_mode { auto_, stream, poll };

// ---------------------------------------------------------------- authentication

enum class auth_mechanism { scram_sha_1, scram_sha_256, mongodb_x509, plain, gssapi, mongodb_aws, mongodb_oidc };

/// What the user asked for. make_credential() turns it into what authentication uses.
struct auth_options {
    /// Set (maybe empty) whenever the connection string has user information ("user@"):
    /// the '@' alone asks for authentication, per the auth spec.
    std::optional<std::string> username;
    /// Unset and empty are different: "user@" has no password, "user:@" an empty one.
    std::optional<std::string> password;
    /// Unset: negotiated at the handshake (SCRAM-SHA-256, else SCRAM-SHA-1).
    std::optional<auth_mechanism> mechanism;
    /// authSource. Unset: the mechanism's default (see make_credential).
    std::optional<std::string> source;
    /// authMechanismProperties. Names are case-insensitive in the spec; parse_uri stores them
    /// in upper case (SERVICE_NAME, TOKEN_RESOURCE, ...), as the specifications spell them.
    std::map<std::string, std::string> mechanism_properties;

    friend bool operator==(const auth_options&, const auth_options&) = default;
};

/// The auth spec's MongoCredential: the mechanism's defaults applied and its rules checked.
struct credential {
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::string source;
    std::optional<auth_mechanism> mechanism;  ///< unset: negotiated at the handshake
    std::map<std::string, std::string> mechanism_properties;

    friend bool operator==(const credential&, const credential&) = default;
};

// ---------------------------------------------------------------- Stable API

/// The Stable API version a client declares (the Stable API spec's ServerApi). Never set from a
/// connection string: the spec forbids it, so that copying a URI cannot change the API a program
/// was written against. Sent as apiVersion, apiStrict and apiDeprecationErrors on every command.
struct server_api {
    /// The versions this Trellis knows; validate() refuses any other.
    static constexpr std::string_view v1 = "1";

    /// Required (the spec: a version must be given when an API is declared), e.g. server_api::v1.
    std::string version;
    /// Unset: not sent (the server's default, false). Set: sent, even when false.
    std::optional<bool> strict;
    std::optional<bool> deprecation_errors;

    friend bool operator==(const server_api&, const server_api&) = default;
};

// ---------------------------------------------------------------- the options

struct client_options {
    static constexpr std::chrono::milliseconds min_heartbeat_frequency{500};
    static constexpr std::size_t max_app_name_bytes = 128;

    // Seed list. For mongodb+srv:// the seeds come from DNS: hosts stays empty until
    // resolve_srv() (trellis/uri.hpp) fills it from the SRV records of srv_host.
    std::vector<server_address> hosts;
    bool is_srv = false;
    std::string srv_host;                          ///< the name after mongodb+srv://
    std::optional<std::string> srv_service_name;   ///< unset: "mongodb"; only with is_srv
    std::optional<std::uint32_t> srv_max_hosts;    ///< unset or 0: every SRV host; only with is_srv
    /// The DNS servers asked for mongodb+srv:// (SRV, TXT, and the SRV targets' A records),
    /// "address" or "address:port" ("127.0.0.1:5353", "[::1]:53"). Empty: $TRELLIS_DNS_SERVER,
    /// else the system's (/etc/resolv.conf). Not a URI option (TOML: [dns] servers).
    std::vector<std::string> dns_servers;
    /// How long SRV polling waits between two rescans (rescanSRVIntervalMS). Unset: 60 s.
    /// Not a URI option (TOML: [dns] rescan_srv_interval_ms); at least 1 ms.
    std::optional<std::chrono::milliseconds> srv_rescan_interval;
    /// The database in the URI path: the client's default database, and the default authSource
    /// of the mechanisms that have one. Its presence alone does not ask for authentication.
    std::optional<std::string> database;

    // Topology and monitoring.
    std::optional<std::string> replica_set;
    std::optional<bool> direct_connection;
    std::optional<bool> load_balanced;
    monitoring_mode server_monitoring_mode = monitoring_mode::auto_;
    std::chrono::milliseconds heartbeat_frequency{10'000};  ///< at least min_heartbeat_frequency
    std::chrono::milliseconds local_threshold{15};
    std::chrono::milliseconds server_selection_timeout{30'000};
    /// Only single-threaded clients scan once; Trellis keeps the value for tools that care.
    std::optional<bool> server_selection_try_once;

    // Connections and the pool.
    std::chrono::milliseconds connect_timeout{10'000};      ///< zero: no timeout
    std::optional<std::chrono::milliseconds> socket_timeout;  ///< unset or zero: no timeout
    std::optional<std::chrono::milliseconds> timeout;         ///< timeoutMS (client-side operation timeout); zero: none
    std::uint32_t max_pool_size = 100;  ///< zero: no maximum
    std::uint32_t min_pool_size = 0;
    std::uint32_t max_connecting = 2;
    std::optional<std::chrono::milliseconds> max_idle_time;       ///< unset or zero: no limit
    std::optional<std::chrono::milliseconds> wait_queue_timeout;  ///< unset: bounded by server selection
    std::optional<std::uint32_t> wait_queue_multiple;             ///< legacy; unset: no limit
    /// The largest receive buffer the client keeps between large replies (256 KB and more), in
    /// bytes: one buffer, shared by its connections, read into again rather than fresh memory
    /// (whose first write costs a page fault a page). Zero: none is kept.
    std::size_t max_kept_reply_buffer = std::size_t{32} << 20;
    std::optional<std::string> app_name;  ///< sent in the handshake; at most max_app_name_bytes
    /// "snappy", "zlib", "zstd", in order of preference.
    std::vector<std::string> compressors;
    std::optional<int> zlib_compression_level;  ///< -1 (library default) to 9
    tls_options tls;
    proxy_options proxy;

    // Operations.
    trellis::read_preference read_preference;
    trellis::write_concern write_concern;
    trellis::read_concern read_concern;
    bool retry_reads = true;
    bool retry_writes = true;

    // Stable API and client backpressure.
    /// Unset: no API version is declared and no API field is sent.
    std::optional<trellis::server_api> server_api;
    /// maxAdaptiveRetries: retries after an overload error (SystemOverloadedError and
    /// RetryableError labels), each after a jittered exponential backoff. Zero: none.
    std::uint32_t max_adaptive_retries = 2;
    /// enableOverloadRetargeting: a retry after an overload error avoids the server that was
    /// overloaded when another suitable one exists.
    bool enable_overload_retargeting = false;

    auth_options auth;

    friend bool operator==(const client_options&, const client_options&) = default;
};

/// Checks the options the way the specifications check a connection string: ranges, the
/// combinations they forbid (conflicting TLS relaxations, directConnection with several seeds,
/// loadBalanced with a replica set, proxy settings without a proxy host, ...) and the
/// credential (see make_credential). Throws configuration_error naming the option and the
/// reason. parse_uri() calls it; so does the client, for options filled in by hand.
void validate(const client_options& options);

/// The credential the options describe, or nullopt when they ask for no authentication (no
/// user information and no mechanism). Applies the auth spec's defaults (authSource from the
/// mechanism and the URI database, GSSAPI's SERVICE_NAME) and throws configuration_error when a
/// mechanism's rules are broken (a password for MONGODB-X509, a missing username for SCRAM,
/// an unknown property, ...). Passwords for SCRAM and PLAIN may still be missing here: code
/// may supply them after parsing; authentication itself rejects a missing one.
std::optional<credential> make_credential(const client_options& options);

/// Spec spellings: "SCRAM-SHA-256", "primaryPreferred", "stream", "ip_literal", ...
std::string_view to_string(auth_mechanism m) noexcept;
std::string_view to_string(read_preference_mode m) noexcept;
std::string_view to_string(monitoring_mode m) noexcept;
std::string_view to_string(host_type t) noexcept;

/// The mechanism a spec name denotes (ASCII case ignored); nullopt for an unknown name.
std::optional<auth_mechanism> auth_mechanism_from_string(std::string_view name) noexcept;

}  // namespace trellis
