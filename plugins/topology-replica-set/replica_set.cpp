// topology_strategy "replica_set": a replica set named by the client's replicaSet option.
//
// initial_topology: TopologyType ReplicaSetNoPrimary, set name options.replica_set (required: a
// configuration_error says so when it is missing or empty), one Unknown server per distinct
// seed. directConnection=true and loadBalanced=true contradict the strategy and are refused.
//
// on_server_description: SDAM's updateRSWithoutPrimary, updateRSFromPrimary (electionId and
// setVersion ordering, stale primaries marked Unknown), updateRSWithPrimaryFromMember and the
// rest, as trellis::sdam::update implements them; suitable_servers: the read preference's
// mode, maxStalenessSeconds and tag sets for reads, the primary for writes and commands, as
// trellis::selection::suitable_servers implements them. Both follow the specs in every
// topology type (see topology-common/spec_topology.hpp).
#include "spec_topology.hpp"

namespace {

using namespace trellis;

class replica_set_strategy final : public plugin_common::spec_strategy {
public:
    std::shared_ptr<const sdk::topology_description> initial_topology(const std::vector<std::string>& seeds,
                                                                      const sdk::strategy_context& options) override {
        plugin_common::refuse_load_balanced(name(), options);
        if (!options.replica_set || options.replica_set->empty())
            throw configuration_error(
                "replica_set: the replica set name is required (replicaSet=<name> in the connection string, or "
                "client.replica_set in the configuration file); seeds: " +
                plugin_common::seed_list_text(seeds));
        if (options.direct_connection.value_or(false))
            throw configuration_error(
                "replica_set: directConnection=true connects to one server without discovery, but the replica_set "
                "strategy discovers the members of \"" +
                *options.replica_set + "\" (use strategy \"standalone\" for a direct connection)");
        const std::vector<std::string> addresses = plugin_common::normalized_seeds(name(), seeds);
        if (addresses.empty())
            throw configuration_error("replica_set: no seed given: at least one member of \"" + *options.replica_set +
                                      "\" is needed");
        try {
            return std::make_shared<const sdk::topology_description>(
                sdam::initial_topology(addresses, options.replica_set, /*direct_connection=*/false));
        } catch (const configuration_error& e) {
            throw configuration_error(std::string("replica_set: ") + e.what());
        }
    }

private:
    std::string_view name() const noexcept override { return "replica_set"; }
};

}  // namespace

TRELLIS_PLUGIN(topology_strategy, "replica_set", "1.0.0",
               "a replica set: discovery from the members' replies, read preferences, tag sets, staleness",
               replica_set_strategy)
