// topology_strategy "master_slave": the legacy master/slave deployment PyMongo's
// MasterSlaveConnection drove: one master that takes writes and commands, and slaves that
// serve reads, "tried on each slave in turn until one succeeds".
//
// Members. The settings name them: `master` ("host:port") and `slaves` (a non-empty array of
// "host:port"), with no repeats and the master not among the slaves; the seeds are then
// ignored. With no settings at all, the seeds name them: the first is the master, the rest the
// slaves, and there must be at least one slave. Anything else is a configuration_error, thrown
// by the constructor for bad settings (the host reports a broken plugin creation) or by
// initial_topology for seeds that cannot make a master and a slave, e.g.
//   master_slave: slaves must be a non-empty array of "host:port" strings (got an empty array)
// The client's replicaSet, directConnection=true and loadBalanced=true are refused.
//
// Topology type: Single, whatever the number of members. Master/slave is no topology type of
// the SDAM spec; of the spec's types, Single is the one whose rules are this deployment's: every
// server is used directly, none is discovered from another's reply, none is removed, and each
// keeps the type its own hello gives. Unknown would tell a UI that discovery never finished,
// ReplicaSet* and Sharded would promise discovery and routing that do not exist. A UI reading
// the description sees a Single topology of several servers, which is what identifies it as
// master/slave.
//
// Roles. initial_topology lists the master first, then the slaves in configured order (so this
// strategy's descriptions are NOT ordered by address), all Unknown; servers[0] is the master
// and servers[1..] the slaves, and suitable_servers reads the roles from that order, so it
// stays a pure function of the description. Each member keeps the server type its hello gives:
// a master (ismaster: true) and a slave (ismaster: false) are both Standalone for
// trellis::sdam::parse_hello. on_server_description applies SDAM's Single rules through
// trellis::sdam::update: the member's description is replaced in place (a second Standalone is
// NOT removed, as it would be under TopologyType Unknown), then wire compatibility and
// logicalSessionTimeoutMinutes are recomputed; a description for an address that is not a
// member, or with an older topologyVersion, changes nothing.
//
// Selection. Writes, commands and every operation in a request (in_request) go to the master,
// when it is known and writable (Standalone, RSPrimary, Mongos). Reads go to the slaves that are
// known and readable (writable or RSSecondary), in configured order, with policy in_turn; the
// read preference is not consulted (MasterSlaveConnection sent every read to the slaves) and
// reads never fall back to the master. One why-not line names each member left out and why:
//   127.0.0.1:5: Unknown (connection refused)
//   127.0.0.1:1: Standalone, the master: reads go to the slaves
#include <optional>

#include "spec_topology.hpp"
#include "trellis/bson/document.hpp"

namespace {

using namespace trellis;
using kind = sdk::operation_requirements::kind;

constexpr std::string_view slaves_rule = R"(master_slave: slaves must be a non-empty array of "host:port" strings)";

struct members {
    std::string master;
    std::vector<std::string> slaves;  // configured order
};

configuration_error slaves_error(const std::string& detail) {
    return configuration_error(std::string(slaves_rule) + " (" + detail + ")");
}

std::string member_address(const std::string& role, std::string_view value) {
    if (value.empty()) throw configuration_error("master_slave: " + role + " is an empty string, not a \"host:port\"");
    try {
        return sdam::normalize_address(value);
    } catch (const configuration_error& e) {
        throw configuration_error("master_slave: " + role + " \"" + std::string(value) + "\": " + e.what());
    }
}

void check_distinct(const members& m) {
    for (std::size_t i = 0; i < m.slaves.size(); ++i) {
        if (m.slaves[i] == m.master)
            throw configuration_error("master_slave: " + m.master + " is both the master and a slave");
        for (std::size_t j = 0; j < i; ++j)
            if (m.slaves[j] == m.slaves[i])
                throw configuration_error("master_slave: slave " + m.slaves[i] + " is listed twice");
    }
}

std::string keys_of(bson::document_view settings) {
    std::string out;
    for (const bson::element& e : settings) out += (out.empty() ? "" : ", ") + std::string(e.key());
    return out;
}

// The members the settings name; nullopt for empty settings (the seeds then name them).
std::optional<members> members_from_settings(bson::document_view settings) {
    if (settings.empty()) return std::nullopt;
    members m;
    const auto master = settings.find("master");
    if (!master)
        throw configuration_error(
            "master_slave: master is required: the \"host:port\" of the server that takes writes (the settings have " +
            keys_of(settings) + ")");
    if (master->type() != bson::type::string)
        throw configuration_error("master_slave: master must be a \"host:port\" string, got " +
                                  std::string(bson::type_name(master->type())));
    m.master = member_address("master", master->get_string());

    const auto slaves = settings.find("slaves");
    if (!slaves) throw slaves_error("the settings have no \"slaves\"");
    if (slaves->type() != bson::type::array)
        throw slaves_error("got " + std::string(bson::type_name(slaves->type())));
    std::size_t index = 0;
    for (const bson::element& e : slaves->get_array()) {
        const std::string role = "slaves[" + std::to_string(index++) + "]";
        if (e.type() != bson::type::string)
            throw slaves_error(role + " is " + std::string(bson::type_name(e.type())));
        m.slaves.push_back(member_address(role, e.get_string()));
    }
    if (m.slaves.empty()) throw slaves_error("got an empty array");
    check_distinct(m);
    return m;
}

members members_from_seeds(const std::vector<std::string>& seeds) {
    if (seeds.empty())
        throw configuration_error(
            "master_slave: no members: the settings name no master and slaves, and the seed list is empty");
    members m;
    m.master = member_address("seed 1 (the master)", seeds.front());
    for (std::size_t i = 1; i < seeds.size(); ++i)
        m.slaves.push_back(member_address("seed " + std::to_string(i + 1) + " (a slave)", seeds[i]));
    if (m.slaves.empty())
        throw slaves_error("no settings were given, and the seed list names only the master " + m.master);
    check_distinct(m);
    return m;
}

void require_own(const sdk::topology_description& t, std::string_view what) {
    if (t.type != sdk::topology_type::single || t.servers.empty())
        throw std::invalid_argument("master_slave: " + std::string(what) + " got a topology description of type " +
                                    std::string(sdk::to_string(t.type)) + " with " + std::to_string(t.servers.size()) +
                                    " servers; this strategy's are Single, the master first");
}

// "127.0.0.1:5: Unknown (connection refused)" for a member that is not known.
std::optional<std::string> not_known(const sdk::server_description& s) {
    if (s.type != sdk::server_type::unknown && s.type != sdk::server_type::possible_primary) return std::nullopt;
    return s.address + ": " + std::string(sdk::to_string(s.type)) + " (" +
           (s.error && !s.error->empty() ? *s.error : std::string("not checked yet")) + ")";
}

std::string line(const sdk::server_description& s, const std::string& why) {
    return s.address + ": " + std::string(sdk::to_string(s.type)) + ", " + why;
}

class master_slave_strategy final : public sdk::topology_strategy {
public:
    explicit master_slave_strategy(const sdk::plugin_context& context)
        : configured_(members_from_settings(context.settings)) {}

    std::shared_ptr<const sdk::topology_description> initial_topology(const std::vector<std::string>& seeds,
                                                                      const sdk::strategy_context& options) override {
        plugin_common::refuse_load_balanced("master_slave", options);
        if (options.replica_set)
            throw configuration_error("master_slave: replicaSet=" + *options.replica_set +
                                      " names a replica set, but master/slave members belong to none (use strategy "
                                      "\"replica_set\")");
        if (options.direct_connection.value_or(false))
            throw configuration_error(
                "master_slave: directConnection=true connects to one server only, but master/slave needs the master "
                "and its slaves");
        const members m = configured_ ? *configured_ : members_from_seeds(seeds);

        sdk::topology_description t;
        t.type = sdk::topology_type::single;
        t.servers.push_back(sdam::unknown_server(m.master));
        for (const std::string& slave : m.slaves) t.servers.push_back(sdam::unknown_server(slave));
        t.seed_count = t.servers.size();
        return std::make_shared<const sdk::topology_description>(std::move(t));
    }

    std::shared_ptr<const sdk::topology_description> on_server_description(
        const std::shared_ptr<const sdk::topology_description>& current,
        const sdk::server_description& updated) override {
        if (current) require_own(*current, "on_server_description");
        return plugin_common::updated_topology("master_slave", current, updated);
    }

    std::vector<const sdk::server_description*> suitable_servers(const sdk::topology_description& topology,
                                                                 const sdk::operation_requirements& operation,
                                                                 std::vector<std::string>* why_not) const override {
        require_own(topology, "suitable_servers");
        std::vector<const sdk::server_description*> out;
        std::vector<std::string> lines;
        const sdk::server_description& master = topology.servers.front();

        if (to_master(operation)) {
            const std::string what = operation.in_request        ? "in a request, every operation goes to the master "
                                     : operation.what == kind::write ? "writes go to the master "
                                                                     : "commands go to the master ";
            if (auto why = not_known(master))
                lines.push_back(*why);
            else if (!master.is_writable())
                lines.push_back(line(master, "the master, cannot take writes"));
            else
                out.push_back(&master);
            for (std::size_t i = 1; i < topology.servers.size(); ++i)
                lines.push_back(line(topology.servers[i], "a slave: " + what + master.address));
        } else {
            lines.push_back(line(master, "the master: reads go to the slaves"));
            for (std::size_t i = 1; i < topology.servers.size(); ++i) {
                const sdk::server_description& slave = topology.servers[i];
                if (auto why = not_known(slave))
                    lines.push_back(*why);
                else if (!slave.is_readable())
                    lines.push_back(line(slave, "a slave that cannot serve reads"));
                else
                    out.push_back(&slave);
            }
        }
        if (why_not) why_not->insert(why_not->end(), lines.begin(), lines.end());
        return out;
    }

    sdk::selection_policy policy(const sdk::operation_requirements& operation) const override {
        return to_master(operation) ? sdk::selection_policy::latency_window : sdk::selection_policy::in_turn;
    }

private:
    static bool to_master(const sdk::operation_requirements& operation) noexcept {
        return operation.what != kind::read || operation.in_request;
    }

    std::optional<members> configured_;
};

}  // namespace

TRELLIS_PLUGIN(topology_strategy, "master_slave", "1.0.0",
               "legacy master/slave: writes and commands to the master, reads to each slave in turn",
               master_slave_strategy)
