// topology_strategy "mongos": one or more mongos routers of a sharded cluster.
//
// initial_topology: TopologyType Sharded over every distinct seed, all Unknown (the SDAM spec
// allows a driver to start Sharded when the user says so). replicaSet, directConnection=true
// and loadBalanced=true contradict the strategy and are refused.
//
// on_server_description: SDAM's Sharded rules (a server that answers as anything but a mongos
// is removed), through trellis::sdam::update; suitable_servers: every known mongos, for reads,
// writes and commands alike (the read preference travels to the mongos), through
// trellis::selection::suitable_servers. Both follow the specs in every topology type (see
// topology-common/spec_topology.hpp).
#include "spec_topology.hpp"

namespace {

using namespace trellis;

class mongos_strategy final : public plugin_common::spec_strategy {
public:
    std::shared_ptr<const sdk::topology_description> initial_topology(const std::vector<std::string>& seeds,
                                                                      const sdk::strategy_context& options) override {
        plugin_common::refuse_load_balanced(name(), options);
        if (options.replica_set)
            throw configuration_error("mongos: replicaSet=" + *options.replica_set +
                                      " names a replica set, but the mongos strategy drives mongos routers, which "
                                      "belong to none (use strategy \"replica_set\")");
        if (options.direct_connection.value_or(false))
            throw configuration_error(
                "mongos: directConnection=true makes the topology Single, but the mongos strategy makes it Sharded "
                "(use strategy \"standalone\" for a direct connection to one mongos)");
        const std::vector<std::string> addresses = plugin_common::normalized_seeds(name(), seeds);
        if (addresses.empty())
            throw configuration_error("mongos: no seed given: at least one mongos address is needed");
        try {
            sdk::topology_description t = sdam::initial_topology(addresses, std::nullopt, /*direct_connection=*/false);
            t.type = sdk::topology_type::sharded;
            return std::make_shared<const sdk::topology_description>(std::move(t));
        } catch (const configuration_error& e) {
            throw configuration_error(std::string("mongos: ") + e.what());
        }
    }

private:
    std::string_view name() const noexcept override { return "mongos"; }
};

}  // namespace

TRELLIS_PLUGIN(topology_strategy, "mongos", "1.0.0", "mongos routers of a sharded cluster (TopologyType Sharded)",
               mongos_strategy)
