// Suitable servers by topology type and operation (Server Selection: "Rules for server
// selection", "Read preference", the deprioritized servers of step 3). Every server of the
// topology ends up either suitable or with one line saying why not.
#include <algorithm>
#include <optional>

#include "selection_internal.hpp"
#include "trellis/errors.hpp"

namespace trellis::selection {

namespace {

using std::chrono::milliseconds;

bool available(const server_description& s) noexcept {
    return s.type != server_type::unknown && s.type != server_type::possible_primary;
}

bool matches(const tag_set& wanted, const std::map<std::string, std::string>& have) {
    for (const auto& [name, value] : wanted) {
        const auto it = have.find(name);
        if (it == have.end() || it->second != value) return false;
    }
    return true;
}

std::string not_available(const server_description& s) {
    std::string why = "not available";
    if (s.error && !s.error->empty()) why += " (" + *s.error + ")";
    return why;
}

// One pass over the topology: verdict[i] is empty for a suitable server, the reason otherwise.
class pass {
public:
    pass(const topology_description& topology, const sdk::operation_requirements& operation,
         std::span<const std::string> excluded)
        : topology_(topology), operation_(operation), verdict_(topology.servers.size()) {
        considered_.resize(topology.servers.size(), true);
        for (std::size_t i = 0; i < topology.servers.size(); ++i)
            if (std::find(excluded.begin(), excluded.end(), topology.servers[i].address) != excluded.end()) {
                considered_[i] = false;
                verdict_[i] = "deprioritized for this retry, and other servers suit";
            }
    }

    void run() {
        const bool write = operation_.what == sdk::operation_requirements::kind::write || operation_.in_request;
        switch (topology_.type) {
            case topology_type::unknown:
                for_considered([](const server_description&) -> std::optional<std::string> {
                    return "topology type Unknown: no server suits until the deployment is discovered";
                });
                break;
            case topology_type::single:
                // A direct connection: the one server, whatever its type and the read preference.
                for_considered([](const server_description& s) -> std::optional<std::string> {
                    if (!available(s)) return not_available(s);
                    return std::nullopt;
                });
                break;
            case topology_type::sharded:
                for_considered([](const server_description& s) -> std::optional<std::string> {
                    if (!available(s)) return not_available(s);
                    if (s.type != server_type::mongos) return "not a mongos, in a sharded topology";
                    return std::nullopt;
                });
                break;
            case topology_type::load_balanced:
                for_considered([](const server_description& s) -> std::optional<std::string> {
                    if (s.type != server_type::load_balancer)
                        return "not the load balancer, in a load-balanced topology";
                    return std::nullopt;
                });
                break;
            case topology_type::replica_set_with_primary:
            case topology_type::replica_set_no_primary:
                if (write)
                    replica_set_write();
                else
                    replica_set_read();
                break;
        }
    }

    suitability result() const {
        suitability out;
        for (std::size_t i = 0; i < topology_.servers.size(); ++i) {
            const server_description& s = topology_.servers[i];
            if (verdict_[i])
                out.why_not.push_back(s.address + ": " + std::string(sdk::to_string(s.type)) + ", " + *verdict_[i]);
            else
                out.servers.push_back(&s);
        }
        return out;
    }

    bool any_suitable() const {
        return std::any_of(verdict_.begin(), verdict_.end(), [](const auto& v) { return !v; });
    }

private:
    template <class F>
    void for_considered(F&& judge) {
        for (std::size_t i = 0; i < topology_.servers.size(); ++i)
            if (considered_[i]) verdict_[i] = judge(topology_.servers[i]);
    }

    // Servers that are never candidates in a replica set, whatever the operation; true when
    // server i got its verdict here.
    bool never_candidate(std::size_t i) {
        const server_description& s = topology_.servers[i];
        if (!available(s)) {
            verdict_[i] = not_available(s);
            return true;
        }
        if (s.type != server_type::rs_primary && s.type != server_type::rs_secondary) {
            verdict_[i] = "never a candidate: only a primary or a secondary serves operations in a replica set";
            return true;
        }
        return false;
    }

    std::optional<std::size_t> primary() const {
        for (std::size_t i = 0; i < topology_.servers.size(); ++i)
            if (considered_[i] && topology_.servers[i].type == server_type::rs_primary) return i;
        return std::nullopt;
    }

    void replica_set_write() {
        for (std::size_t i = 0; i < topology_.servers.size(); ++i) {
            if (!considered_[i] || never_candidate(i)) continue;
            if (topology_.servers[i].type != server_type::rs_primary) verdict_[i] = "writes need the primary";
        }
    }

    void replica_set_read() {
        const read_preference& rp = operation_.read_preference;
        const std::string mode(trellis::to_string(rp.mode));
        std::vector<std::size_t> members;  // considered primaries and secondaries
        for (std::size_t i = 0; i < topology_.servers.size(); ++i)
            if (considered_[i] && !never_candidate(i)) members.push_back(i);
        const std::optional<std::size_t> p = primary();

        const auto set_secondaries = [&](const std::string& why) {
            for (std::size_t i : members)
                if (topology_.servers[i].type == server_type::rs_secondary) verdict_[i] = why;
        };
        const auto set_primary = [&](const std::string& why) {
            if (p) verdict_[*p] = why;
        };

        switch (rp.mode) {
            case read_preference_mode::primary: set_secondaries("mode primary reads from the primary only"); break;
            case read_preference_mode::primary_preferred:
                if (p)
                    set_secondaries("mode primaryPreferred and the primary " + topology_.servers[*p].address +
                                    " is available");
                else
                    eligible(members, /*with_primary=*/false);
                break;
            case read_preference_mode::secondary:
                set_primary("mode secondary reads from secondaries only");
                eligible(members, false);
                break;
            case read_preference_mode::secondary_preferred:
                if (eligible(members, false))
                    set_primary("mode secondaryPreferred and an eligible secondary is available");
                break;
            case read_preference_mode::nearest: eligible(members, /*with_primary=*/true); break;
        }
    }

    // Filters the candidates (the secondaries, and the primary when with_primary) by
    // maxStalenessSeconds and then by the tag sets; sets the verdict of each. Whether any
    // candidate is eligible.
    bool eligible(const std::vector<std::size_t>& members, bool with_primary) {
        const read_preference& rp = operation_.read_preference;
        std::vector<std::size_t> candidates;
        for (std::size_t i : members) {
            const server_type t = topology_.servers[i].type;
            if (t == server_type::rs_secondary || (with_primary && t == server_type::rs_primary))
                candidates.push_back(i);
        }

        if (rp.max_staleness) {
            std::vector<std::size_t> fresh;
            for (std::size_t i : candidates) {
                const auto st = staleness(topology_, topology_.servers[i], operation_.heartbeat_frequency);
                if (!st)
                    verdict_[i] = "staleness cannot be estimated (no lastWriteDate), and maxStalenessSeconds is " +
                                  std::to_string(rp.max_staleness->count());
                else if (*st > milliseconds(*rp.max_staleness))
                    verdict_[i] = "estimated staleness " + std::to_string(st->count()) +
                                  " ms exceeds maxStalenessSeconds " + std::to_string(rp.max_staleness->count());
                else
                    fresh.push_back(i);
            }
            candidates = std::move(fresh);
        }

        if (rp.tag_sets.empty()) return !candidates.empty();  // no tag sets: every candidate
        for (const tag_set& wanted : rp.tag_sets) {
            const bool any = std::any_of(candidates.begin(), candidates.end(),
                                         [&](std::size_t i) { return matches(wanted, topology_.servers[i].tags); });
            if (!any) continue;
            for (std::size_t i : candidates)
                if (!matches(wanted, topology_.servers[i].tags))
                    verdict_[i] = "tags " + detail::tags_text(topology_.servers[i].tags) + " do not match tag set " +
                                  selection::to_string(wanted) + ", the first that matches a candidate";
            return true;
        }
        for (std::size_t i : candidates)
            verdict_[i] = "tags " + detail::tags_text(topology_.servers[i].tags) + " do not match any tag set";
        return false;
    }

    const topology_description& topology_;
    const sdk::operation_requirements& operation_;
    std::vector<std::optional<std::string>> verdict_;
    std::vector<bool> considered_;
};

}  // namespace

suitability suitable_servers(const topology_description& topology, const sdk::operation_requirements& operation,
                             std::span<const std::string> deprioritized) {
    const bool read = operation.what != sdk::operation_requirements::kind::write && !operation.in_request;
    if (read)
        if (auto error = validate(operation.read_preference, topology.type, operation.heartbeat_frequency))
            throw configuration_error("invalid read preference: " + *error);

    const bool any_deprioritized = std::any_of(topology.servers.begin(), topology.servers.end(), [&](const auto& s) {
        return std::find(deprioritized.begin(), deprioritized.end(), s.address) != deprioritized.end();
    });
    if (any_deprioritized) {
        pass first(topology, operation, deprioritized);
        first.run();
        if (first.any_suitable()) return first.result();
    }
    // No deprioritized server in the topology, or nothing else suits: consider them all.
    pass all(topology, operation, {});
    all.run();
    suitability out = all.result();
    out.deprioritized_used = any_deprioritized;
    return out;
}

}  // namespace trellis::selection
