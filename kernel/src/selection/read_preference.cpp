// Passing the read preference to the server (Server Selection: "Passing read preference to
// mongos and load balancers", "Document structure", "Topology type: Single", replica sets).
#include "selection_internal.hpp"
#include "trellis/bson/builder.hpp"

namespace trellis::selection {

bson::document read_preference_document(const read_preference& preference) {
    bson::builder b;
    b.append("mode", trellis::to_string(preference.mode));
    if (preference.mode != read_preference_mode::primary) {
        if (detail::has_tags(preference)) {
            b.open_array("tags");
            for (const tag_set& set : preference.tag_sets) {
                b.open_document();
                for (const auto& [name, value] : set) b.append(name, value);
                b.close_document();
            }
            b.close_array();
        }
        if (preference.max_staleness)
            b.append("maxStalenessSeconds", static_cast<std::int64_t>(preference.max_staleness->count()));
    }
    return b.extract();
}

read_preference_to_send read_preference_for(const read_preference& preference, topology_type topology,
                                            server_type server, wire_protocol protocol) {
    read_preference_to_send out;
    const bool primary = preference.mode == read_preference_mode::primary;

    if (server == server_type::mongos || server == server_type::load_balancer) {
        if (protocol == wire_protocol::op_msg) {
            if (!primary) out.read_preference = read_preference_document(preference);
            return out;
        }
        out.secondary_ok = !primary;
        // OP_QUERY: mode alone, primary or secondaryPreferred, travels in the flag only.
        const bool mode_only = !detail::has_tags(preference) && !preference.max_staleness;
        const bool flag_says_it =
            primary || (preference.mode == read_preference_mode::secondary_preferred && mode_only);
        if (!flag_says_it) out.read_preference = read_preference_document(preference);
        return out;
    }

    if (topology == topology_type::single) {
        if (server == server_type::standalone) return out;  // never a read preference to a standalone
        if (protocol == wire_protocol::op_query) {
            out.secondary_ok = true;  // whatever the member is, it must answer
            return out;
        }
        if (primary) {
            read_preference primary_preferred;
            primary_preferred.mode = read_preference_mode::primary_preferred;
            out.read_preference = read_preference_document(primary_preferred);
        } else {
            out.read_preference = read_preference_document(preference);
        }
        return out;
    }

    // A replica set member (or anything else): only mode primary goes without.
    if (primary) return out;
    if (protocol == wire_protocol::op_msg)
        out.read_preference = read_preference_document(preference);
    else
        out.secondary_ok = true;
    return out;
}

}  // namespace trellis::selection
