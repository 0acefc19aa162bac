// The topology strategy and cursor manager plugins, loaded from the build tree through the
// plugin registry and driven with crafted hello replies (parse_hello + on_server_description):
// standalone, replica set discovery and elections, mongos routers, the three spec strategies
// agreeing while the topology is Unknown, master/slave roles, and the two cursor managers.
#include <QtTest/QtTest>

#include <chrono>
#include <functional>
#include <stdexcept>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdam.hpp"
#include "trellis/sdk/cursor_manager.hpp"
#include "trellis/sdk/topology_strategy.hpp"

using namespace trellis;
using sdk::operation_requirements;
using sdk::server_type;
using sdk::topology_type;
using topology_ptr = std::shared_ptr<const sdk::topology_description>;
using strategy_ptr = std::shared_ptr<sdk::topology_strategy>;
using names = std::vector<std::string>;

namespace {

struct recording_killer final : sdk::cursor_killer {
    names calls;
    int throw_on_call = -1;  // the index of a call that throws, or -1
    void kill_cursors(const std::string& server, const std::string& ns, const std::vector<std::int64_t>& ids) override {
        std::string s = server + " " + ns + ":";
        for (auto id : ids) s += " " + std::to_string(id);
        if (static_cast<int>(calls.size()) == throw_on_call) {
            throw_on_call = -1;
            calls.push_back("threw for " + s);
            throw std::runtime_error("killer failed");
        }
        calls.push_back(s);
    }
};

plugin_search_options build_tree_only() {
    plugin_search_options o;
    o.paths = {TRELLIS_PLUGIN_DIR};
    o.use_environment = false;
    o.use_default_locations = false;
    return o;
}

sdk::server_description hello(const std::string& address, std::string_view json) {
    const bson::document reply = bson::from_json(json);
    return sdam::parse_hello(address, reply, std::chrono::microseconds(1000), std::chrono::steady_clock::now());
}

names addresses(const std::vector<const sdk::server_description*>& servers) {
    names out;
    for (const auto* s : servers) out.push_back(s->address);
    return out;
}

names addresses(const sdk::topology_description& t) {
    names out;
    for (const auto& s : t.servers) out.push_back(s.address);
    return out;
}

operation_requirements reading(read_preference_mode mode = read_preference_mode::primary, std::vector<tag_set> tags = {}) {
    operation_requirements op;
    op.what = operation_requirements::kind::read;
    op.read_preference.mode = mode;
    op.read_preference.tag_sets = std::move(tags);
    return op;
}

operation_requirements of_kind(operation_requirements::kind k) {
    operation_requirements op;
    op.what = k;
    return op;
}

const operation_requirements write_op = of_kind(operation_requirements::kind::write);
// A command carries the client's read preference, yet needs a writable server: a secondary mode
// makes that visible (selected as a read, it would go to the secondaries).
const operation_requirements command_op = [] {
    operation_requirements op = of_kind(operation_requirements::kind::command);
    op.read_preference.mode = read_preference_mode::secondary;
    return op;
}();

names suitable(const sdk::topology_strategy& s, const sdk::topology_description& t, const operation_requirements& op,
               names* why_not = nullptr) {
    return addresses(s.suitable_servers(t, op, why_not));
}

bool any_line_has(const names& lines, const std::string& needle) {
    for (const auto& l : lines)
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

// The message of the exception `f` throws, which must be of type E; QFAIL-style text otherwise.
template <class E>
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("WRONG EXCEPTION TYPE: ") + e.what();
    }
    return "NOTHING THROWN";
}

#define VERIFY_CONTAINS(haystack, needle)                                                                        \
    do {                                                                                                         \
        const std::string h_ = (haystack);                                                                       \
        QVERIFY2(h_.find(needle) != std::string::npos, (std::string("\"") + needle + "\" not in: " + h_).c_str()); \
    } while (0)

sdk::strategy_context with_replica_set(const std::string& name) {
    sdk::strategy_context o;
    o.replica_set = name;
    return o;
}

constexpr std::string_view standalone_hello = R"({"ok": 1, "ismaster": true, "minWireVersion": 0, "maxWireVersion": 17})";
constexpr std::string_view slave_hello = R"({"ok": 1, "ismaster": false, "minWireVersion": 0, "maxWireVersion": 6})";
constexpr std::string_view mongos_hello =
    R"({"ok": 1, "isWritablePrimary": true, "msg": "isdbgrid", "minWireVersion": 0, "maxWireVersion": 17})";

}  // namespace

class StrategyTest : public QObject {
    Q_OBJECT

    std::unique_ptr<plugin_registry> registry_;

    strategy_ptr strategy(std::string_view name, bson::document_view settings = bson::document_view()) {
        return registry_->create_as<sdk::topology_strategy>(sdk::plugin_kind::topology_strategy, name, settings);
    }
    std::shared_ptr<sdk::cursor_manager> manager(std::string_view name, bson::document_view settings = bson::document_view()) {
        return registry_->create_as<sdk::cursor_manager>(sdk::plugin_kind::cursor_manager, name, settings);
    }

private slots:
    void initTestCase() { registry_ = std::make_unique<plugin_registry>(build_tree_only()); }

    void every_plugin_loads() {
        const std::vector<std::pair<sdk::plugin_kind, std::string>> wanted = {
            {sdk::plugin_kind::topology_strategy, "standalone"}, {sdk::plugin_kind::topology_strategy, "replica_set"},
            {sdk::plugin_kind::topology_strategy, "mongos"},     {sdk::plugin_kind::topology_strategy, "master_slave"},
            {sdk::plugin_kind::cursor_manager, "immediate"},     {sdk::plugin_kind::cursor_manager, "batched"}};
        for (const auto& [kind, name] : wanted) {
            bool found = false;
            for (const plugin_info& i : registry_->plugins())
                if (i.kind == kind && i.name == name) {
                    found = true;
                    QVERIFY2(i.loaded, (name + ": " + i.error).c_str());
                }
            QVERIFY2(found, name.c_str());
        }
    }

    // ------------------------------------------------------------ standalone

    void standalone_is_single() {
        auto s = strategy("standalone");
        topology_ptr t = s->initial_topology({"LocalHost:27017"}, {});
        QCOMPARE(t->type, topology_type::single);
        QCOMPARE(addresses(*t), names{"localhost:27017"});
        QCOMPARE(t->servers[0].type, server_type::unknown);

        names why;
        QCOMPARE(suitable(*s, *t, reading(), &why), names{});
        QCOMPARE(why.size(), std::size_t(1));
        VERIFY_CONTAINS(why[0], "localhost:27017: Unknown");

        t = s->on_server_description(t, hello("localhost:27017", standalone_hello));
        QCOMPARE(t->type, topology_type::single);
        QCOMPARE(t->servers[0].type, server_type::standalone);
        QCOMPARE(suitable(*s, *t, reading()), names{"localhost:27017"});
        QCOMPARE(suitable(*s, *t, write_op), names{"localhost:27017"});
        QCOMPARE(suitable(*s, *t, command_op), names{"localhost:27017"});
        QCOMPARE(s->policy(reading()), sdk::selection_policy::latency_window);

        // A direct connection to a secondary still serves every operation (Single's rule).
        t = s->on_server_description(
            t, hello("localhost:27017",
                     R"({"ok": 1, "secondary": true, "setName": "rs0", "hosts": ["localhost:27017"], "maxWireVersion": 17})"));
        QCOMPARE(t->type, topology_type::single);
        QCOMPARE(t->servers[0].type, server_type::rs_secondary);
        QCOMPARE(suitable(*s, *t, reading()), names{"localhost:27017"});

        // A server that left: Unknown, not suitable, the why-not line says why.
        t = s->on_server_description(t, sdam::unknown_server("localhost:27017", "connection refused"));
        why.clear();
        QCOMPARE(suitable(*s, *t, write_op, &why), names{});
        VERIFY_CONTAINS(why.at(0), "connection refused");
    }

    void standalone_checks_the_set_name_and_its_seeds() {
        auto s = strategy("standalone");
        topology_ptr t = s->initial_topology({"a:1"}, with_replica_set("rs0"));
        QCOMPARE(t->type, topology_type::single);
        t = s->on_server_description(
            t, hello("a:1", R"({"ok": 1, "ismaster": true, "setName": "other", "hosts": ["a:1"], "maxWireVersion": 17})"));
        QCOMPARE(t->servers[0].type, server_type::unknown);
        QCOMPARE(suitable(*s, *t, write_op), names{});

        const std::string two = error_of<configuration_error>([&] { s->initial_topology({"a:1", "b:2"}, {}); });
        VERIFY_CONTAINS(two, "standalone: ");
        VERIFY_CONTAINS(two, "a:1, b:2");
        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({}, {}); }), "got 0 seeds");
        sdk::strategy_context discover;
        discover.direct_connection = false;
        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({"a:1"}, discover); }),
                        "directConnection=false");
        // The same server twice is one seed.
        QCOMPARE(addresses(*s->initial_topology({"A:1", "a:1"}, {})), names{"a:1"});
    }

    // ------------------------------------------------------------ replica set

    void replica_set_discovers_and_selects() {
        auto s = strategy("replica_set");
        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({"a:1"}, {}); }),
                        "replica_set: the replica set name is required");

        topology_ptr t = s->initial_topology({"a:1"}, with_replica_set("rs0"));
        QCOMPARE(t->type, topology_type::replica_set_no_primary);
        QCOMPARE(t->set_name.value_or("(none)"), std::string("rs0"));

        t = s->on_server_description(t, hello("a:1", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs0",
            "hosts": ["a:1", "b:1", "c:1"], "setVersion": 1, "electionId": {"$oid": "7fffffff0000000000000001"},
            "minWireVersion": 0, "maxWireVersion": 17})"));
        QCOMPARE(t->type, topology_type::replica_set_with_primary);
        QCOMPARE(addresses(*t), (names{"a:1", "b:1", "c:1"}));
        t = s->on_server_description(t, hello("b:1", R"({"ok": 1, "secondary": true, "setName": "rs0",
            "hosts": ["a:1", "b:1", "c:1"], "tags": {"dc": "ny"}, "maxWireVersion": 17})"));
        t = s->on_server_description(t, hello("c:1", R"({"ok": 1, "secondary": true, "setName": "rs0",
            "hosts": ["a:1", "b:1", "c:1"], "tags": {"dc": "sf"}, "maxWireVersion": 17})"));
        QCOMPARE(t->servers[1].type, server_type::rs_secondary);
        QCOMPARE(t->servers[2].type, server_type::rs_secondary);

        QCOMPARE(suitable(*s, *t, write_op), names{"a:1"});
        QCOMPARE(suitable(*s, *t, command_op), names{"a:1"});
        QCOMPARE(suitable(*s, *t, reading()), names{"a:1"});
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::secondary)), (names{"b:1", "c:1"}));
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::nearest)), (names{"a:1", "b:1", "c:1"}));

        names why;
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::secondary, {{{"dc", "sf"}}}), &why), names{"c:1"});
        QVERIFY2(any_line_has(why, "b:1: RSSecondary, tags {dc: ny} do not match"), why.front().c_str());
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::secondary, {{{"dc", "tokyo"}}, {}})), (names{"b:1", "c:1"}));
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::secondary, {{{"dc", "tokyo"}}})), names{});
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::secondary_preferred, {{{"dc", "tokyo"}}})), names{"a:1"});

        operation_requirements in_request = reading(read_preference_mode::secondary);
        in_request.in_request = true;
        QCOMPARE(suitable(*s, *t, in_request), names{"a:1"});

        // A description for a server that is not a member changes nothing: the same snapshot.
        QCOMPARE(s->on_server_description(t, hello("z:1", standalone_hello)).get(), t.get());
    }

    void replica_set_primary_change_by_election_id() {
        auto s = strategy("replica_set");
        topology_ptr t = s->initial_topology({"a:1", "b:1"}, with_replica_set("rs0"));
        const auto primary = [](const std::string& election) {
            std::string json = R"({"ok": 1, "isWritablePrimary": true, "setName": "rs0", "hosts": ["a:1", "b:1"],
                "setVersion": 1, "electionId": {"$oid": "ELECTION_ID"}, "maxWireVersion": 17})";
            return json.replace(json.find("ELECTION_ID"), std::string_view("ELECTION_ID").size(), election);
        };
        t = s->on_server_description(t, hello("a:1", primary("7fffffff0000000000000001")));
        t = s->on_server_description(
            t, hello("b:1", R"({"ok": 1, "secondary": true, "setName": "rs0", "hosts": ["a:1", "b:1"], "maxWireVersion": 17})"));
        QCOMPARE(suitable(*s, *t, write_op), names{"a:1"});

        // b wins an election: a newer electionId. a is marked Unknown as a stale primary.
        t = s->on_server_description(t, hello("b:1", primary("7fffffff0000000000000002")));
        QCOMPARE(t->type, topology_type::replica_set_with_primary);
        QCOMPARE(t->servers[0].type, server_type::unknown);
        QCOMPARE(t->servers[1].type, server_type::rs_primary);
        names why;
        QCOMPARE(suitable(*s, *t, write_op, &why), names{"b:1"});
        QVERIFY(any_line_has(why, "a:1: Unknown"));

        // a still believes it is primary, with the old electionId: it is stale, b stays primary.
        t = s->on_server_description(t, hello("a:1", primary("7fffffff0000000000000001")));
        QCOMPARE(t->servers[0].type, server_type::unknown);
        VERIFY_CONTAINS(t->servers[0].error.value_or(""), "mismatched electionId");
        QCOMPARE(suitable(*s, *t, write_op), names{"b:1"});
        QCOMPARE(t->max_election_id->to_hex(), std::string("7fffffff0000000000000002"));
    }

    // ------------------------------------------------------------ mongos

    void mongos_routers_take_everything() {
        auto s = strategy("mongos");
        topology_ptr t = s->initial_topology({"r2:27017", "r1:27017"}, {});
        QCOMPARE(t->type, topology_type::sharded);
        QCOMPARE(addresses(*t), (names{"r1:27017", "r2:27017"}));
        QCOMPARE(suitable(*s, *t, write_op), names{});

        t = s->on_server_description(t, hello("r1:27017", mongos_hello));
        t = s->on_server_description(t, hello("r2:27017", mongos_hello));
        QCOMPARE(t->type, topology_type::sharded);
        const names both{"r1:27017", "r2:27017"};
        QCOMPARE(suitable(*s, *t, write_op), both);
        QCOMPARE(suitable(*s, *t, command_op), both);
        QCOMPARE(suitable(*s, *t, reading()), both);
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::secondary, {{{"dc", "ny"}}})), both);

        // A router down is left out, and said so.
        auto down = s->on_server_description(t, sdam::unknown_server("r1:27017", "connection refused"));
        names why;
        QCOMPARE(suitable(*s, *down, write_op, &why), names{"r2:27017"});
        VERIFY_CONTAINS(why.at(0), "r1:27017: Unknown, not available (connection refused)");

        // A server that is not a mongos has no place in a sharded cluster: removed.
        t = s->on_server_description(t, hello("r2:27017", standalone_hello));
        QCOMPARE(addresses(*t), names{"r1:27017"});

        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({"r1:1"}, with_replica_set("rs0")); }),
                        "mongos: replicaSet=rs0");
        sdk::strategy_context lb;
        lb.load_balanced = true;
        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({"r1:1"}, lb); }), "loadBalanced=true");
    }

    // ------------------------------------------------------------ "auto": they agree while Unknown

    void spec_strategies_agree_from_unknown() {
        const std::vector<strategy_ptr> all = {strategy("standalone"), strategy("replica_set"), strategy("mongos")};
        const topology_ptr unknown =
            std::make_shared<const sdk::topology_description>(sdam::initial_topology({"a:1", "b:1"}, std::nullopt, false));
        QCOMPARE(unknown->type, topology_type::unknown);

        const std::vector<std::pair<std::vector<sdk::server_description>, topology_type>> scripts = {
            // Two seeds, a standalone answers: removed, still Unknown.
            {{hello("a:1", standalone_hello)}, topology_type::unknown},
            {{hello("a:1", mongos_hello), hello("b:1", mongos_hello)}, topology_type::sharded},
            {{hello("a:1", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs0", "hosts": ["a:1", "b:1"],
                 "maxWireVersion": 17})"),
              hello("b:1", R"({"ok": 1, "secondary": true, "setName": "rs0", "hosts": ["a:1", "b:1"], "maxWireVersion": 17})")},
             topology_type::replica_set_with_primary},
        };
        for (const auto& [replies, expected_type] : scripts) {
            std::vector<topology_ptr> results;
            for (const auto& s : all) {
                topology_ptr t = unknown;
                for (const auto& r : replies) t = s->on_server_description(t, r);
                results.push_back(t);
            }
            for (const auto& t : results) {
                QCOMPARE(t->type, expected_type);
                QVERIFY(sdam::same_topology(*t, *results[0]));
            }
            for (const auto& op : {reading(), reading(read_preference_mode::nearest), write_op, command_op}) {
                const names first = suitable(*all[0], *results[0], op);
                for (std::size_t i = 1; i < all.size(); ++i) QCOMPARE(suitable(*all[i], *results[i], op), first);
            }
            // Discovered deployments have servers to offer.
            QCOMPARE(suitable(*all[0], *results[0], write_op).empty(), expected_type == topology_type::unknown);
        }
        // Nothing suits an Unknown topology.
        for (const auto& s : all) QCOMPARE(suitable(*s, *unknown, reading()), names{});
    }

    // ------------------------------------------------------------ master/slave

    void master_slave_roles() {
        const bson::document settings = bson::from_json(
            R"({"master": "127.0.0.1:1", "slaves": ["127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:5"]})");
        auto s = strategy("master_slave", settings);
        topology_ptr t = s->initial_topology({"ignored:27017"}, {});
        QCOMPARE(t->type, topology_type::single);
        // The master first, then the slaves in configured order; the seeds are ignored.
        QCOMPARE(addresses(*t), (names{"127.0.0.1:1", "127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:5"}));
        for (const auto& sd : t->servers) QCOMPARE(sd.type, server_type::unknown);
        names why;
        QCOMPARE(suitable(*s, *t, write_op, &why), names{});
        QVERIFY(any_line_has(why, "127.0.0.1:1: Unknown (not checked yet)"));

        t = s->on_server_description(t, hello("127.0.0.1:1", standalone_hello));
        t = s->on_server_description(t, hello("127.0.0.1:3", slave_hello));
        t = s->on_server_description(t, hello("127.0.0.1:2", slave_hello));
        t = s->on_server_description(t, sdam::unknown_server("127.0.0.1:5", "connection refused"));
        // Every member stays, in place, with the type its own hello gave.
        QCOMPARE(t->type, topology_type::single);
        QCOMPARE(addresses(*t), (names{"127.0.0.1:1", "127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:5"}));
        QCOMPARE(t->servers[0].type, server_type::standalone);
        QCOMPARE(t->servers[1].type, server_type::standalone);
        QCOMPARE(t->servers[2].type, server_type::standalone);
        QCOMPARE(t->servers[3].type, server_type::unknown);
        QVERIFY(t->compatible);

        why.clear();
        QCOMPARE(suitable(*s, *t, write_op, &why), names{"127.0.0.1:1"});
        QVERIFY(any_line_has(why, "127.0.0.1:3: Standalone, a slave: writes go to the master 127.0.0.1:1"));
        QCOMPARE(suitable(*s, *t, command_op), names{"127.0.0.1:1"});

        why.clear();
        // Reads: the live slaves in configured order, whatever the read preference.
        QCOMPARE(suitable(*s, *t, reading(), &why), (names{"127.0.0.1:3", "127.0.0.1:2"}));
        QCOMPARE(suitable(*s, *t, reading(read_preference_mode::nearest, {{{"dc", "x"}}})), (names{"127.0.0.1:3", "127.0.0.1:2"}));
        QCOMPARE(why, (names{"127.0.0.1:1: Standalone, the master: reads go to the slaves",
                             "127.0.0.1:5: Unknown (connection refused)"}));

        operation_requirements in_request = reading();
        in_request.in_request = true;
        QCOMPARE(suitable(*s, *t, in_request), names{"127.0.0.1:1"});

        QCOMPARE(s->policy(reading()), sdk::selection_policy::in_turn);
        QCOMPARE(s->policy(write_op), sdk::selection_policy::latency_window);
        QCOMPARE(s->policy(command_op), sdk::selection_policy::latency_window);
        QCOMPARE(s->policy(in_request), sdk::selection_policy::latency_window);

        // The master goes down: no write suits, the line names it; reads still go to the slaves.
        auto no_master = s->on_server_description(t, sdam::unknown_server("127.0.0.1:1", "connection reset"));
        why.clear();
        QCOMPARE(suitable(*s, *no_master, write_op, &why), names{});
        QCOMPARE(why.at(0), std::string("127.0.0.1:1: Unknown (connection reset)"));
        QCOMPARE(suitable(*s, *no_master, reading()), (names{"127.0.0.1:3", "127.0.0.1:2"}));

        // The dead slave comes back: it rejoins the rotation in its configured place.
        t = s->on_server_description(t, hello("127.0.0.1:5", slave_hello));
        QCOMPARE(suitable(*s, *t, reading()), (names{"127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:5"}));
        // A stranger's description changes nothing.
        QCOMPARE(s->on_server_description(t, hello("127.0.0.1:9", slave_hello)).get(), t.get());
    }

    void master_slave_from_seeds() {
        auto s = strategy("master_slave");
        topology_ptr t = s->initial_topology({"m:1", "s2:1", "s1:1"}, {});
        QCOMPARE(addresses(*t), (names{"m:1", "s2:1", "s1:1"}));
        t = s->on_server_description(t, hello("s1:1", slave_hello));
        QCOMPARE(suitable(*s, *t, reading()), names{"s1:1"});

        const std::string only_master = error_of<configuration_error>([&] { s->initial_topology({"m:1"}, {}); });
        VERIFY_CONTAINS(only_master, R"(master_slave: slaves must be a non-empty array of "host:port" strings)");
        VERIFY_CONTAINS(only_master, "m:1");
        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({"m:1", "M:1"}, {}); }),
                        "m:1 is both the master and a slave");
        VERIFY_CONTAINS(error_of<configuration_error>([&] { s->initial_topology({"m:1", "s:1"}, with_replica_set("rs0")); }),
                        "master_slave: replicaSet=rs0");
    }

    void master_slave_settings_errors() {
        const std::string rule = R"(master_slave: slaves must be a non-empty array of "host:port" strings)";
        const std::vector<std::pair<std::string, std::string>> cases = {
            {R"({"master": "m:1"})", rule},
            {R"({"master": "m:1", "slaves": []})", rule + " (got an empty array)"},
            {R"({"master": "m:1", "slaves": "s:1"})", rule + " (got string)"},
            {R"({"master": "m:1", "slaves": ["s:1", 7]})", rule + " (slaves[1] is int)"},
            {R"({"slaves": ["s:1"]})", "master_slave: master is required"},
            {R"({"master": 5, "slaves": ["s:1"]})", "master_slave: master must be a \"host:port\" string, got int"},
            {R"({"master": "m:1", "slaves": ["s:1", "S:1"]})", "master_slave: slave s:1 is listed twice"},
            {R"({"master": "m:1", "slaves": ["m:1"]})", "master_slave: m:1 is both the master and a slave"},
            {R"({"master": "m:99999", "slaves": ["s:1"]})", "master_slave: master \"m:99999\""},
        };
        for (const auto& [json, expected] : cases) {
            const bson::document settings = bson::from_json(json);
            // The factory throws; the host reports a broken plugin creation with the reason.
            const std::string message = error_of<plugin_error>([&] { strategy("master_slave", settings); });
            QVERIFY2(message.find("factory threw") != std::string::npos, message.c_str());
            VERIFY_CONTAINS(message, expected);
        }
    }

    // ------------------------------------------------------------ cursor managers

    void cursor_immediate_kills_at_once() {
        auto m = manager("immediate");
        recording_killer killer;
        m->on_cursor_closed({11, "db.a", "h:1", 1}, killer);
        QCOMPARE(killer.calls, names{"h:1 db.a: 11"});
        m->on_cursor_closed({12, "db.b", "h:2", 1}, killer);
        m->on_cursor_closed({0, "db.b", "h:2", 1}, killer);  // no server cursor: nothing to kill
        QCOMPARE(killer.calls, (names{"h:1 db.a: 11", "h:2 db.b: 12"}));
        m->flush(killer);
        QCOMPARE(killer.calls.size(), std::size_t(2));
    }

    void cursor_batched_groups_by_server_and_namespace() {
        auto m = manager("batched", bson::make_document(bson::kvp("batch_size", std::int64_t(3))));
        recording_killer killer;
        m->on_cursor_closed({1, "db.a", "h:1", 1}, killer);
        m->on_cursor_closed({2, "db.a", "h:1", 1}, killer);
        m->on_cursor_closed({3, "db.b", "h:1", 1}, killer);
        m->on_cursor_closed({4, "db.a", "h:2", 1}, killer);
        QCOMPARE(killer.calls, names{});
        m->on_cursor_closed({5, "db.a", "h:1", 1}, killer);  // the third for (h:1, db.a)
        QCOMPARE(killer.calls, names{"h:1 db.a: 1 2 5"});
        m->flush(killer);
        QCOMPARE(killer.calls, (names{"h:1 db.a: 1 2 5", "h:1 db.b: 3", "h:2 db.a: 4"}));
        m->flush(killer);  // nothing left
        QCOMPARE(killer.calls.size(), std::size_t(3));
    }

    void cursor_batched_default_and_settings() {
        auto m = manager("batched");
        recording_killer killer;
        for (std::int64_t id = 1; id < 100; ++id) m->on_cursor_closed({id, "db.c", "h:1", 1}, killer);
        QCOMPARE(killer.calls, names{});
        m->on_cursor_closed({100, "db.c", "h:1", 1}, killer);
        QCOMPARE(killer.calls.size(), std::size_t(1));
        VERIFY_CONTAINS(killer.calls[0], "h:1 db.c: 1 2 3");
        VERIFY_CONTAINS(killer.calls[0], " 99 100");

        // Other keys are the table's business; batch_size is checked.
        QVERIFY(manager("batched", bson::from_json(R"({"batch_size": 500, "prefetch": true})")));
        for (const char* bad : {R"({"batch_size": "10"})", R"({"batch_size": 0})", R"({"batch_size": 2.5})",
                                R"({"batch_size": {"$numberLong": "500001"}})"}) {
            const bson::document settings = bson::from_json(bad);
            VERIFY_CONTAINS(error_of<plugin_error>([&] { manager("batched", settings); }),
                            "batched: batch_size must be an integer from 1 to 500000");
        }
    }

    void cursor_batched_keeps_unsent_groups_when_the_killer_throws() {
        auto m = manager("batched", bson::make_document(bson::kvp("batch_size", 10)));
        recording_killer killer;
        m->on_cursor_closed({1, "db.a", "h:1", 1}, killer);
        m->on_cursor_closed({2, "db.b", "h:1", 1}, killer);
        m->on_cursor_closed({3, "db.c", "h:1", 1}, killer);
        killer.throw_on_call = 1;  // the second group
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, m->flush(killer));
        QCOMPARE(killer.calls, (names{"h:1 db.a: 1", "threw for h:1 db.b: 2"}));
        m->flush(killer);
        QCOMPARE(killer.calls.back(), std::string("h:1 db.c: 3"));
        QCOMPARE(killer.calls.size(), std::size_t(3));
    }
};

QTEST_GUILESS_MAIN(StrategyTest)
#include "strategy_test.moc"
