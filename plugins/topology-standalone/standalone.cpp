// topology_strategy "standalone": one server, used directly (the SDAM spec's directConnection
// case, TopologyType Single).
//
// initial_topology: exactly one seed (after normalizing and removing repeats), else a
// configuration_error naming the seeds; TopologyType Single with that one Unknown server. The
// client's replicaSet, when given, is the set name the server must report (SDAM's Single rules
// replace a server reporting another name with an Unknown one). directConnection=false and
// loadBalanced=true contradict the strategy and are refused.
//
// on_server_description and suitable_servers follow the specs in every topology type (see
// topology-common/spec_topology.hpp): with Single, the one server suits every operation once
// it is known, whatever its type and the read preference.
#include "spec_topology.hpp"

namespace {

using namespace trellis;

class standalone_strategy final : public plugin_common::spec_strategy {
public:
    std::shared_ptr<const sdk::topology_description> initial_topology(const std::vector<std::string>& seeds,
                                                                      const sdk::strategy_context& options) override {
        plugin_common::refuse_load_balanced(name(), options);
        if (options.direct_connection == false)
            throw configuration_error(
                "standalone: directConnection=false asks for discovery, but the standalone strategy connects "
                "directly to one server (use strategy \"auto\", \"replica_set\" or \"mongos\")");
        const std::vector<std::string> addresses = plugin_common::normalized_seeds(name(), seeds);
        if (addresses.size() != 1)
            throw configuration_error("standalone: the standalone strategy connects directly to exactly one server, got " +
                                      std::to_string(addresses.size()) + " seeds: " +
                                      plugin_common::seed_list_text(seeds) +
                                      (addresses.empty() ? std::string()
                                                         : " (use strategy \"replica_set\" or \"mongos\" for several)"));
        try {
            return std::make_shared<const sdk::topology_description>(
                sdam::initial_topology(addresses, options.replica_set, /*direct_connection=*/true));
        } catch (const configuration_error& e) {
            throw configuration_error(std::string("standalone: ") + e.what());
        }
    }

private:
    std::string_view name() const noexcept override { return "standalone"; }
};

}  // namespace

TRELLIS_PLUGIN(topology_strategy, "standalone", "1.0.0",
               "one server used directly (SDAM TopologyType Single, directConnection)", standalone_strategy)
