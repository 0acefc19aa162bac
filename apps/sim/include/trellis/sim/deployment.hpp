// libtrellis-sim: a simulated MongoDB deployment on loopback.
//
// Every member listens on its own 127.0.0.1 port and speaks the real wire
// protocol. All simulated state lives on one internal thread; the methods
// below are thread-safe and block until the change has been made.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trellis/bson/document.hpp"

namespace trellis::sim {

enum class topology_kind { standalone, replica_set, master_slave, sharded };

struct user_config {
    std::string name;
    std::string password;
    std::string db = "admin";
};

struct member_config {
    int priority = 1;              // 0: never primary
    bool hidden = false;           // implies priority 0
    bool arbiter = false;
    std::map<std::string, std::string> tags;
    std::chrono::milliseconds lag{0};  // replication delay behind the primary/master
    /// This member's hello maxWriteBatchSize, enforced as sim_config's (unset: sim_config's).
    std::optional<std::int32_t> max_write_batch_size;
};

struct tls_config {
    std::filesystem::path cert_file;  // PEM certificate chain
    std::filesystem::path key_file;   // PEM private key
    std::filesystem::path ca_file;    // CA for client certificates
    bool require_client_cert = false;
    /// The newest protocol version offered: "" (OpenSSL's newest), "1.0", "1.1", "1.2" or "1.3".
    /// Below 1.2 the oldest offered drops to 1.0 and OpenSSL's security level to 0 (tests of
    /// clients that must refuse an old server).
    std::string max_version;
    bool enabled() const { return !cert_file.empty(); }
};

struct sim_config {
    topology_kind topology = topology_kind::standalone;
    int nodes = 3;                 // replica set members / slaves + 1 (master) / shard members
    bool arbiter = false;          // replica set: one more member, an arbiter
    std::string set_name = "rs0";
    int mongos = 2;                // sharded: number of routers
    /// Sharded: one more listening address, a load balancer in front of the routers. Each
    /// connection to it goes to the next router that is up (round robin); a router answers the
    /// first hello of such a connection with its serviceId when the client says loadBalanced:
    /// true and refuses it (354 LoadBalancerSupportMismatch, then closes) when it does not.
    /// Another topology with it is a trellis::configuration_error from the constructor.
    bool load_balancer = false;
    bool shard_is_replica_set = false;
    std::chrono::milliseconds election_delay{200};
    std::chrono::milliseconds lag{0};        // default per-member replication delay
    std::chrono::milliseconds latency{0};    // added before every reply
    std::chrono::milliseconds cursor_timeout{std::chrono::minutes(10)};
    int max_wire_version = 21;
    /// hello's maxWriteBatchSize; an insert, update or delete with more statements fails (16).
    std::int32_t max_write_batch_size = 100000;
    /// hello's maxBsonObjectSize: a larger document to insert is a write error (10334
    /// BSONObjectTooLarge), and a reply batch holds no more. At least 1024. (An update growing a
    /// document is checked at mongod's 16 MiB.)
    std::int32_t max_bson_object_size = 16 * 1024 * 1024;
    /// hello's maxMessageSizeBytes: a larger message closes the connection, as mongod does. At
    /// least max_bson_object_size + 16 KiB (a command of one largest document).
    std::int32_t max_message_size_bytes = 48'000'000;
    /// Results per batch of bulkWrite's cursor (8.0) when the command asks for no batchSize;
    /// 0: as mongod, up to 16 MiB (tests set a few to make clients getMore).
    std::int32_t bulk_write_cursor_batch_size = 0;
    int min_wire_version = 0;
    std::vector<user_config> users;
    tls_config tls;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;        // first port; 0: the OS picks every port
    std::vector<member_config> members;  // optional per-member settings, by index
    /// Sharded: optional per-router settings, by index (only max_write_batch_size applies).
    std::vector<member_config> routers;
    /// What hello's "compression" may choose from: "snappy", "zlib", "zstd" (the simulator's own
    /// codecs). Replies to a compressed request use its compressor. An unknown name or a
    /// repeat is a trellis::configuration_error from the constructor.
    std::vector<std::string> compressors = {"snappy", "zlib", "zstd"};
    bool verbose = false;          // log each command to stderr
    std::vector<std::string> argv;  // the program's command line (getCmdLineOpts)
};

enum class partition_mode { refuse, hang, drop_replies };

class deployment {
public:
    explicit deployment(sim_config config);
    ~deployment();
    deployment(const deployment&) = delete;
    deployment& operator=(const deployment&) = delete;

    /// Binds every port and starts serving on an internal thread. Throws
    /// trellis::error when a port cannot be bound.
    void start();
    /// Closes every listener and connection and joins the thread.
    void stop();

    /// mongodb://host:port,host:port/?replicaSet=rs0 (data-bearing members and
    /// arbiters for a replica set; routers for sharded; the master and slaves,
    /// with directConnection, for master-slave: connect to each directly).
    /// With a load balancer: mongodb://<load balancer>/?loadBalanced=true.
    std::string uri() const;
    /// host:port of the load balancer; empty without one.
    std::string load_balancer_address() const;
    std::string control_address() const;
    /// host:port of every member, in configuration order (routers first when sharded).
    std::vector<std::string> members() const;
    /// host:port of the current primary (or master), if any.
    std::optional<std::string> primary() const;

    /// Member control, by host:port; each throws trellis::error for an unknown member.
    void kill(const std::string& member);
    void restart(const std::string& member);
    void step_down(const std::string& member, std::chrono::seconds no_reelect = std::chrono::seconds(10));
    void partition(const std::string& member, partition_mode mode = partition_mode::refuse);
    void heal(const std::string& member);
    void set_latency(const std::string& member, std::chrono::milliseconds fixed, std::chrono::milliseconds jitter = {});
    /// Adds a secondary to the replica set (setVersion increases); returns its host:port.
    std::string add_member();
    void remove_member(const std::string& member);

    /// {members: [{host, state, role, ..., opcounters, serviceId and lbConnections (routers
    /// behind a load balancer)}], primary, setVersion, term}.
    bson::document status() const;

    /// Waits until a primary exists (or the timeout passes); returns it.
    std::optional<std::string> wait_for_primary(std::chrono::milliseconds timeout) const;

    struct impl;

private:
    std::string uri_on_io() const;
    std::unique_ptr<impl> impl_;
};

}  // namespace trellis::sim
