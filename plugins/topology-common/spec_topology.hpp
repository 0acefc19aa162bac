// What the spec-following topology strategies (standalone, replica_set, mongos) share, and what
// master_slave borrows: SDAM's "updating the TopologyDescription" and server selection's
// suitable servers, both taken from libtrellis's public pure functions (trellis/sdam.hpp,
// trellis/selection.hpp). Nothing here re-implements a rule; it only adapts the SDK's
// interface to those functions. Header-only, compiled into each plugin (no symbol is exported).
//
// The three strategies differ only in their initial topology description. Past it they answer
// alike in every topology type, since the kernel's "auto" strategy switches between them as
// the topology type changes (Single: standalone, ReplicaSet*: replica_set, Sharded: mongos,
// Unknown: any of them).
#pragma once

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/errors.hpp"
#include "trellis/options.hpp"
#include "trellis/sdam.hpp"
#include "trellis/sdk/topology_strategy.hpp"
#include "trellis/selection.hpp"

namespace trellis::plugin_common {

/// "a:27017, b:27017": the seeds as given, for error messages.
inline std::string seed_list_text(const std::vector<std::string>& seeds) {
    std::string out;
    for (const std::string& s : seeds) out += (out.empty() ? "" : ", ") + s;
    return out.empty() ? "(none)" : out;
}

/// The distinct seeds, normalized ("host:port", lower-cased, default port added) and kept in
/// the order given. A malformed seed gives configuration_error prefixed with `who`.
inline std::vector<std::string> normalized_seeds(std::string_view who, const std::vector<std::string>& seeds) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (const std::string& seed : seeds) {
        std::string address;
        try {
            address = sdam::normalize_address(seed);
        } catch (const configuration_error& e) {
            throw configuration_error(std::string(who) + ": seed \"" + seed + "\": " + e.what());
        }
        if (seen.insert(address).second) out.push_back(std::move(address));
    }
    return out;
}

/// Refuses loadBalanced=true: a load balancer hides the deployment, which no strategy but the
/// kernel's load-balanced mode may drive.
inline void refuse_load_balanced(std::string_view who, const sdk::strategy_context& options) {
    if (options.load_balanced.value_or(false))
        throw configuration_error(std::string(who) +
                                  ": loadBalanced=true cannot be used with this topology strategy (a load balancer "
                                  "is not monitored; use strategy \"auto\")");
}

/// The SDAM update through trellis::sdam::update(). When the description was not applied (its
/// server is not in the topology, or its topologyVersion is older) `current` itself is
/// returned, so the caller can tell "nothing changed" by pointer.
inline std::shared_ptr<const sdk::topology_description> updated_topology(
    std::string_view who, const std::shared_ptr<const sdk::topology_description>& current,
    const sdk::server_description& updated) {
    if (!current)
        throw std::invalid_argument(std::string(who) + ": on_server_description needs the current topology description, got null");
    sdam::update_result r = sdam::update(*current, updated);
    if (!r.applied) return current;
    return std::make_shared<const sdk::topology_description>(std::move(r.topology));
}

/// Server selection's suitable servers through trellis::selection::suitable_servers().
/// Operations of kind command are selected as writes (they need a writable server), and so are
/// in_request operations (selection already treats those as writes). The why-not lines are
/// appended to `why_not` when it is given. Throws configuration_error for a read preference the
/// topology type does not allow (selection::validate's text).
inline std::vector<const sdk::server_description*> spec_suitable_servers(const sdk::topology_description& topology,
                                                                         const sdk::operation_requirements& operation,
                                                                         std::vector<std::string>* why_not) {
    sdk::operation_requirements effective = operation;
    if (effective.what == sdk::operation_requirements::kind::command)
        effective.what = sdk::operation_requirements::kind::write;
    selection::suitability s = selection::suitable_servers(topology, effective);
    if (why_not) why_not->insert(why_not->end(), s.why_not.begin(), s.why_not.end());
    return std::move(s.servers);
}

/// The strategy shape standalone, replica_set and mongos share: only initial_topology differs.
class spec_strategy : public sdk::topology_strategy {
public:
    std::shared_ptr<const sdk::topology_description> on_server_description(
        const std::shared_ptr<const sdk::topology_description>& current,
        const sdk::server_description& updated) override {
        return updated_topology(name(), current, updated);
    }

    std::vector<const sdk::server_description*> suitable_servers(const sdk::topology_description& topology,
                                                                 const sdk::operation_requirements& operation,
                                                                 std::vector<std::string>* why_not) const override {
        return spec_suitable_servers(topology, operation, why_not);
    }

protected:
    /// The plugin's name, for messages.
    virtual std::string_view name() const noexcept = 0;
};

}  // namespace trellis::plugin_common
