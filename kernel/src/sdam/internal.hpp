// Helpers shared by the SDAM sources (not installed).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/oid.hpp"
#include "trellis/events.hpp"
#include "trellis/sdk/sdam.hpp"

namespace trellis::sdam::detail {

/// ASCII lower-case, as the spec's hostname normalization asks.
std::string lower(std::string_view s);

/// The servers of `t` ordered by address, for merge walks: O(n) when they already are (every
/// description sdam makes), O(n log n) otherwise.
std::vector<const sdk::server_description*> by_address(const sdk::topology_description& t);

/// Whether two descriptions differ in anything but their servers (type, setName, maxSetVersion,
/// maxElectionId, compatibility, logicalSessionTimeoutMinutes).
bool same_topology_fields(const sdk::topology_description& a, const sdk::topology_description& b);

/// What differs between two topology descriptions, by address, each list in the order of the
/// description its servers are in. Pointers into the two descriptions (and `processed`).
struct topology_diff {
    struct change {
        const sdk::server_description* before;  ///< in the previous description
        const sdk::server_description* after;   ///< in the next one, or the processed description
    };
    std::vector<change> changed;  ///< not same_description()
    std::vector<const sdk::server_description*> closed;  ///< removed (in the previous description)
    std::vector<const sdk::server_description*> opened;  ///< added (in the next description)
    bool topology_changed = false;                        ///< !same_topology()
};

/// The diff description_events() publishes; O(n) when both descriptions are ordered by address.
topology_diff diff(const sdk::topology_description& previous, const sdk::topology_description& next,
                   const sdk::server_description* processed);

/// The events of a diff, in description_events()'s order.
std::vector<sdam_event> events_of(const topology_diff& d, const sdk::topology_description& previous,
                                  const sdk::topology_description& next, const bson::oid& topology_id);

}  // namespace trellis::sdam::detail
