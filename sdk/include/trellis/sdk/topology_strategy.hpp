// Plugin kind "topology_strategy": standalone, replica set, master-slave, mongos.
//
// A strategy owns its part of SDAM and of server selection: it turns the
// current topology description and one server's new description (from a hello
// reply, or an error) into the next topology description, and it says which
// servers suit an operation before the kernel applies the latency window and
// picks one. Both are pure functions of their arguments: the kernel calls them
// from the one strand that owns the topology, and tests call them directly.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trellis/options.hpp"
#include "trellis/sdk/plugin.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis::sdk {

/// What a strategy learns of the client's configuration: only the options that shape the
/// initial topology, so that a new client option never changes what a plugin binary sees.
struct strategy_context {
    std::optional<std::string> replica_set;     // replicaSet
    std::optional<bool> direct_connection;      // directConnection
    std::optional<bool> load_balanced;          // loadBalanced
};

/// What an operation needs from a server.
struct operation_requirements {
    enum class kind { read, write, command } what = kind::read;
    trellis::read_preference read_preference;  // for reads
    bool in_request = false;  // start_request: everything goes where writes go (master-slave)
    std::chrono::milliseconds heartbeat_frequency{10'000};  // for maxStalenessSeconds
};

/// How the kernel picks one of the suitable servers.
enum class selection_policy {
    /// The server selection spec: the local_threshold latency window, then the less busy of two
    /// servers drawn at random.
    latency_window,
    /// Each suitable server in the order given, the next one when an operation fails on one
    /// (master-slave reads: "tried on each slave in turn until one succeeds").
    in_turn,
};

class TRELLIS_SDK_VISIBLE topology_strategy : public plugin {
public:
    /// The description before any server has answered: its type, set name and the servers to
    /// monitor (the seeds, or for master-slave the master and the slaves its settings name).
    /// Throws trellis::configuration_error when the options do not suit the strategy.
    virtual std::shared_ptr<const topology_description> initial_topology(const std::vector<std::string>& seeds,
                                                                         const strategy_context& options) = 0;

    /// The topology description after `updated` replaces the server of the same
    /// address (SDAM's "updating the TopologyDescription" for this strategy). Not called when
    /// `updated` equals the known description of a server that is not Unknown (same_description:
    /// only round trip time, lastWriteDate, opTime or update time differ): the kernel then
    /// replaces it itself, batching such checks (at most 100 ms late).
    virtual std::shared_ptr<const topology_description> on_server_description(
        const std::shared_ptr<const topology_description>& current, const server_description& updated) = 0;

    /// The servers suitable for the operation, before the latency window. Empty
    /// when none is: selection then waits for a change, up to server_selection_timeout.
    /// `why_not` receives one line per unsuitable server for the timeout error.
    virtual std::vector<const server_description*> suitable_servers(const topology_description& topology,
                                                                    const operation_requirements& operation,
                                                                    std::vector<std::string>* why_not) const = 0;

    virtual selection_policy policy(const operation_requirements& operation) const {
        (void)operation;
        return selection_policy::latency_window;
    }
};

}  // namespace trellis::sdk
