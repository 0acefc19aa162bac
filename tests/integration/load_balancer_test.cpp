// Load-balanced mode (the load balancers spec) against trellis-sim's load balancer in front of
// two mongos routers: the handshake's serviceId, no monitoring, the SDAM and CMAP events, cursors
// pinned to their connection (the sim keeps a cursor on the router that opened it, so a getMore
// on another router would fail), pool clearing per service, a client that does not declare
// loadBalanced refused, and `trellis ping` with loadBalanced=true.
#include <QtTest/QtTest>

#include <QProcess>
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cli_runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/sim/deployment.hpp"

namespace bson = trellis::bson;
namespace sim = trellis::sim;
using namespace std::chrono_literals;

namespace {

// Everything a client reports, in order, under one lock.
struct recorder {
    std::mutex m;
    std::vector<trellis::sdam_event> sdam;
    std::vector<trellis::cmap_event> cmap;
    std::vector<trellis::command_event> commands;

    trellis::client_settings settings() {
        trellis::client_settings s;
        s.on_sdam = [this](const trellis::sdam_event& e) {
            std::lock_guard lock(m);
            sdam.push_back(e);
        };
        s.on_cmap = [this](const trellis::cmap_event& e) {
            std::lock_guard lock(m);
            cmap.push_back(e);
        };
        s.on_command = [this](const trellis::command_event& e) {
            std::lock_guard lock(m);
            commands.push_back(e);
        };
        return s;
    }
    std::vector<std::string> sdam_names() {
        std::lock_guard lock(m);
        std::vector<std::string> out;
        for (const auto& e : sdam) out.emplace_back(trellis::event_name(e));
        return out;
    }
    // The started events of one command name.
    std::vector<trellis::command_started_event> started(std::string_view name) {
        std::lock_guard lock(m);
        std::vector<trellis::command_started_event> out;
        for (const auto& e : commands)
            if (const auto* s = std::get_if<trellis::command_started_event>(&e); s && s->command_name == name) out.push_back(*s);
        return out;
    }
    template <class Event>
    std::vector<Event> cmap_of() {
        std::lock_guard lock(m);
        std::vector<Event> out;
        for (const auto& e : cmap)
            if (const auto* x = std::get_if<Event>(&e)) out.push_back(*x);
        return out;
    }
    std::size_t cmap_size() {
        std::lock_guard lock(m);
        return cmap.size();
    }
};

// The routers of the sim's status, by serviceId (hex): {host, getmore count}.
struct router_info {
    std::string host;
    std::int64_t getmores = 0;
    std::int64_t lb_connections = 0;
};
std::map<std::string, router_info> routers(const sim::deployment& d) {
    std::map<std::string, router_info> out;
    const bson::document st = d.status();
    for (const auto& e : st["members"].get_array()) {
        const auto m = e.get_document();
        if (m["role"].get_string() != "mongos") continue;
        router_info r;
        r.host = std::string(m["host"].get_string());
        r.getmores = m["opcounters"].get_document()["getmore"].as_int64();
        r.lb_connections = m["lbConnections"].as_int64();
        out[m["serviceId"].get_oid().to_hex()] = r;
    }
    return out;
}

std::vector<bson::document> numbered(int n) {
    std::vector<bson::document> out;
    for (int i = 0; i < n; ++i) out.push_back(bson::make_document(bson::kvp("_id", i)));
    return out;
}

trellis::find_options batches_of(std::int32_t n) {
    trellis::find_options o;
    o.batch_size = n;
    return o;
}

template <class F>
bool eventually(F&& f, std::chrono::milliseconds within = 3s) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (!f()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

}  // namespace

class LoadBalancerTest : public QObject {
    Q_OBJECT

    std::unique_ptr<sim::deployment> sim_;

    std::string uri(const std::string& extra = {}) const { return sim_->uri() + extra; }

private slots:
    void initTestCase() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        cfg.load_balancer = true;
        sim_ = std::make_unique<sim::deployment>(cfg);
        sim_->start();
        QVERIFY(!sim_->load_balancer_address().empty());
        QCOMPARE(sim_->uri(), "mongodb://" + sim_->load_balancer_address() + "/?loadBalanced=true");
        QCOMPARE(routers(*sim_).size(), std::size_t(2));
    }
    void cleanupTestCase() { sim_->stop(); }

    void sim_refuses_a_load_balancer_without_routers() {
        sim::sim_config cfg;
        cfg.load_balancer = true;  // standalone
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sim::deployment{cfg});
    }

    // The events of opening, using and closing a load-balanced client: the spec's sequence, and
    // no heartbeat at all.
    void sdam_events() {
        recorder rec;
        {
            trellis::client c(uri(), rec.settings());
            c["lb"]["events"].insert_one(bson::make_document(bson::kvp("x", 1)));
            const auto t = c.topology();
            QCOMPARE(t->type, trellis::sdk::topology_type::load_balanced);
            QCOMPARE(t->servers.size(), std::size_t(1));
            QCOMPARE(t->servers[0].type, trellis::sdk::server_type::load_balancer);
            QCOMPARE(t->servers[0].address, sim_->load_balancer_address());
        }
        const std::vector<std::string> expected = {
            "TopologyOpening", "TopologyDescriptionChanged", "ServerOpening", "ServerDescriptionChanged",
            "TopologyDescriptionChanged", "ServerClosed", "TopologyDescriptionChanged", "TopologyClosed"};
        QCOMPARE(rec.sdam_names(), expected);
        std::lock_guard lock(rec.m);
        const auto& first = std::get<trellis::topology_description_changed_event>(rec.sdam[1]);
        QCOMPARE(first.previous_description.type, trellis::sdk::topology_type::unknown);
        QVERIFY(first.previous_description.servers.empty());
        QCOMPARE(first.new_description.type, trellis::sdk::topology_type::load_balanced);
        QCOMPARE(first.new_description.servers.size(), std::size_t(1));
        QCOMPARE(first.new_description.servers[0].type, trellis::sdk::server_type::unknown);
        const auto& server = std::get<trellis::server_description_changed_event>(rec.sdam[3]);
        QCOMPARE(server.previous_description.type, trellis::sdk::server_type::unknown);
        QCOMPARE(server.new_description.type, trellis::sdk::server_type::load_balancer);
        const auto& second = std::get<trellis::topology_description_changed_event>(rec.sdam[4]);
        QCOMPARE(second.new_description.type, trellis::sdk::topology_type::load_balanced);
        QCOMPARE(second.new_description.servers[0].type, trellis::sdk::server_type::load_balancer);
        const auto& closing = std::get<trellis::topology_description_changed_event>(rec.sdam[6]);
        QCOMPARE(closing.new_description.type, trellis::sdk::topology_type::unknown);
        // The only connection the client made was its pool's (no monitor): one router counted it.
        std::int64_t pool_connections = 0;
        for (const auto& e : rec.cmap)
            if (std::holds_alternative<trellis::connection_created_event>(e)) ++pool_connections;
        QCOMPARE(pool_connections, std::int64_t(1));
    }

    // insert and find through the load balancer; a find over five batches keeps its connection,
    // so its getMores reach the router that holds the cursor; serviceId in the command events.
    void cursor_pinned_to_its_connection() {
        recorder rec;
        trellis::client c(uri(), rec.settings());
        auto coll = c["lb"]["pinned"];
        coll.drop();
        coll.insert_many(numbered(10));
        const auto before = routers(*sim_);
        std::vector<bson::document> got;
        {
            auto cur = coll.find({}, batches_of(2));
            while (auto d = cur.next()) got.push_back(std::move(*d));
        }
        QCOMPARE(got.size(), std::size_t(10));
        const auto finds = rec.started("find");
        const auto getmores = rec.started("getMore");
        QCOMPARE(finds.size(), std::size_t(1));
        QCOMPARE(getmores.size(), std::size_t(4));  // batches 2..5; the last one says id 0
        QVERIFY(finds[0].service_id.has_value());
        for (const auto& g : getmores) {
            QCOMPARE(g.connection_id, finds[0].connection_id);
            QCOMPARE(g.service_id, finds[0].service_id);
        }
        QVERIFY(rec.started("killCursors").empty());  // drained: nothing to kill
        // The sim: every getMore went to the router whose serviceId the handshake gave.
        const auto after = routers(*sim_);
        const std::string service = finds[0].service_id->to_hex();
        QVERIFY(after.count(service));
        QCOMPARE(after.at(service).getmores - before.at(service).getmores, std::int64_t(4));
        for (const auto& [id, r] : after)
            if (id != service) QCOMPARE(r.getmores, before.at(id).getmores);
        // One check-out for the cursor's whole life: every operation but the getMores took one (all on
        // the one connection of this client), and each came back, the cursor's once drained.
        {
            std::lock_guard lock(rec.m);
            std::size_t commands = 0, out = 0, in = 0;
            for (const auto& e : rec.commands)
                if (const auto* s = std::get_if<trellis::command_started_event>(&e); s && s->command_name != "hello")
                    ++commands;  // the handshake's hello is published too, before any check-out
            for (const auto& e : rec.cmap) {
                if (std::holds_alternative<trellis::connection_checked_out_event>(e)) ++out;
                if (std::holds_alternative<trellis::connection_checked_in_event>(e)) ++in;
            }
            QCOMPARE(out, commands - getmores.size());
            QCOMPARE(in, out);
        }
        // Succeeded and failed events carry the serviceId too (but the handshake's hello, which
        // brings it); the drop of a collection that does not exist yet fails.
        {
            std::lock_guard lock(rec.m);
            std::size_t checked = 0;
            for (const auto& e : rec.commands) {
                if (const auto* s = std::get_if<trellis::command_succeeded_event>(&e); s && s->command_name != "hello") {
                    QVERIFY2(s->service_id.has_value(), s->command_name.c_str());
                    ++checked;
                }
                if (const auto* f = std::get_if<trellis::command_failed_event>(&e)) {
                    QVERIFY2(f->service_id.has_value(), f->command_name.c_str());
                    ++checked;
                }
            }
            QCOMPARE(checked, std::size_t(3 + getmores.size()));  // drop, insert, find, the getMores
        }
    }

    // A cursor closed early: killCursors goes out on the cursor's own connection, which then
    // comes back to the pool.
    void closed_cursor_killed_on_its_connection() {
        recorder rec;
        trellis::client c(uri(), rec.settings());
        auto coll = c["lb"]["killed"];
        coll.drop();
        coll.insert_many(numbered(10));
        {
            auto cur = coll.find({}, batches_of(2));
            for (int i = 0; i < 3; ++i) QVERIFY(cur.next());
        }
        QVERIFY(eventually([&] { return rec.started("killCursors").size() == 1; }));
        const auto find = rec.started("find").at(0);
        const auto kill = rec.started("killCursors").at(0);
        QCOMPARE(kill.connection_id, find.connection_id);
        QCOMPARE(kill.service_id, find.service_id);
        QCOMPARE(rec.started("getMore").at(0).connection_id, find.connection_id);
        QVERIFY(eventually([&] {
            const auto outs = rec.cmap_of<trellis::connection_checked_out_event>();
            const auto ins = rec.cmap_of<trellis::connection_checked_in_event>();
            return outs.size() == ins.size();
        }));
        // The connection goes on serving the next operation.
        QCOMPARE(coll.count_documents(), std::int64_t(10));
    }

    // Two cursors pin two connections, one per router (round robin). The router of the first
    // dies: its getMore fails with a network error, the pool is cleared for its serviceId only,
    // and the other cursor and new operations carry on through the other router.
    void network_error_clears_only_that_service() {
        recorder rec;
        trellis::client c(uri("&serverSelectionTimeoutMS=2000"), rec.settings());
        auto coll = c["lb"]["clear"];
        coll.drop();
        coll.insert_many(numbered(10));
        auto first = coll.find({}, batches_of(2));
        auto second = coll.find({}, batches_of(2));
        QVERIFY(first.next());
        QVERIFY(second.next());
        const auto finds = rec.started("find");
        QCOMPARE(finds.size(), std::size_t(2));
        QVERIFY(finds[0].connection_id != finds[1].connection_id);
        QVERIFY(finds[0].service_id && finds[1].service_id);
        QVERIFY2(*finds[0].service_id != *finds[1].service_id, "round robin: the two connections reach two routers");
        const auto dead = *finds[0].service_id;
        const auto alive = *finds[1].service_id;
        const std::string dead_host = routers(*sim_).at(dead.to_hex()).host;

        sim_->kill(dead_host);
        QVERIFY(first.next());  // still in the first batch
        bool failed = false;
        try {
            while (first.next()) {
            }
        } catch (const trellis::error& e) {
            failed = true;
            QVERIFY2(std::string(e.what()).find("closed") != std::string::npos ||
                         std::string(e.what()).find("reset") != std::string::npos,
                     e.what());
        }
        QVERIFY(failed);
        // The pool clears on its own strand: the event may follow the operation's error.
        QVERIFY(eventually([&] { return !rec.cmap_of<trellis::pool_cleared_event>().empty(); }));
        const auto cleared = rec.cmap_of<trellis::pool_cleared_event>();
        QCOMPARE(cleared.size(), std::size_t(1));
        QVERIFY(cleared[0].service_id.has_value());
        QCOMPARE(*cleared[0].service_id, dead);
        // The other service's connection stays: its cursor goes on to the end.
        int rest = 1;
        while (second.next()) ++rest;
        QCOMPARE(rest, 10);
        for (const auto& closed : rec.cmap_of<trellis::connection_closed_event>())
            QVERIFY(closed.connection_id != finds[1].connection_id);
        // Nothing in SDAM changed: the load balancer is no more Unknown than before.
        QCOMPARE(c.topology()->servers[0].type, trellis::sdk::server_type::load_balancer);
        for (const auto& n : rec.sdam_names()) QVERIFY(n.find("Heartbeat") == std::string::npos);
        // New operations reach the router still up.
        QCOMPARE(coll.count_documents(), std::int64_t(10));

        // The router back, with a new process (and serviceId): round robin reaches it again.
        sim_->restart(dead_host);
        const auto back = routers(*sim_);
        QVERIFY(back.count(alive.to_hex()));
        QVERIFY(!back.count(dead.to_hex()));
        std::vector<trellis::cursor> cursors;
        for (int i = 0; i < 3; ++i) {
            cursors.push_back(coll.find({}, batches_of(2)));
            QVERIFY(cursors.back().next());
        }
        std::set<std::string> services;
        for (const auto& f : rec.started("find")) services.insert(f.service_id->to_hex());
        QCOMPARE(services.size(), std::size_t(3));  // the dead one, the live one, the restarted one
    }

    // A client that does not say loadBalanced is refused by the router behind the load balancer
    // (354 LoadBalancerSupportMismatch), and a load-balanced client that reaches a router
    // directly (no serviceId) is refused by the client, with the spec's message.
    void mismatches_refused() {
        {
            trellis::client c("mongodb://" + sim_->load_balancer_address() + "/?serverSelectionTimeoutMS=500");
            try {
                c["admin"].run_command(bson::make_document(bson::kvp("ping", 1)));
                QFAIL("a client without loadBalanced got through the load balancer");
            } catch (const trellis::error& e) {
                QVERIFY(e.code() == trellis::errc::server_selection_timeout);
                const std::string what = e.what();
                QVERIFY2(what.find("354") != std::string::npos, what.c_str());
                QVERIFY2(what.find("load balancer") != std::string::npos, what.c_str());
            }
        }
        {
            const std::string router = routers(*sim_).begin()->second.host;
            trellis::client c("mongodb://" + router + "/?loadBalanced=true");
            try {
                c["admin"].run_command(bson::make_document(bson::kvp("ping", 1)));
                QFAIL("a load-balanced client accepted a router without serviceId");
            } catch (const trellis::error& e) {
                QVERIFY2(e.code() == trellis::errc::incompatible_server, e.what());
                const std::string what = e.what();
                QVERIFY2(what.find("Driver attempted to initialize in load balancing mode, but the server does not "
                                   "support this mode.") != std::string::npos,
                         what.c_str());
            }
        }
    }

    // The spec's wait queue timeout message: the one connection is a cursor's.
    void wait_queue_timeout_names_connections_by_purpose() {
        trellis::client c(uri("&maxPoolSize=1&waitQueueTimeoutMS=100"));
        auto coll = c["lb"]["queue"];
        coll.drop();
        coll.insert_many(numbered(4));
        auto cur = coll.find({}, batches_of(2));
        QVERIFY(cur.next());
        try {
            coll.count_documents();
            QFAIL("a second connection was checked out beyond maxPoolSize=1");
        } catch (const trellis::error& e) {
            QVERIFY2(e.code() == trellis::errc::wait_queue_timeout, e.what());
            const std::string what = e.what();
            QVERIFY2(what.find("Timeout waiting for connection from the connection pool. maxPoolSize: 1, connections in use "
                               "by cursors: 1, connections in use by transactions: 0, connections in use by other "
                               "operations: 0") != std::string::npos,
                     what.c_str());
        }
        int n = 1;
        while (cur.next()) ++n;
        QCOMPARE(n, 4);
        QCOMPARE(coll.count_documents(), std::int64_t(4));  // the connection is back
    }

    void cli_ping() {
        const auto ok = trellis_test::run_cli({QStringLiteral("ping"), QString::fromStdString(uri())});
        QVERIFY2(ok.code == 0, qPrintable(trellis_test::report(ok)));
        QVERIFY2(ok.out.contains(QString::fromStdString(sim_->load_balancer_address() + " (serviceId ")), qPrintable(ok.out));
        QVERIFY2(ok.out.contains(": ok, round trip"), qPrintable(ok.out));
        // Without loadBalanced=true the router behind the load balancer refuses the CLI's client.
        const auto refused = trellis_test::run_cli(
            {QStringLiteral("ping"),
             QString::fromStdString("mongodb://" + sim_->load_balancer_address() + "/?serverSelectionTimeoutMS=500")});
        const QString qerr = refused.err;
        QVERIFY2(refused.code > 0, qPrintable(trellis_test::report(refused)));
        QVERIFY2(qerr.contains("LoadBalancerSupportMismatch"), qPrintable(qerr));
    }
};

QTEST_GUILESS_MAIN(LoadBalancerTest)
#include "load_balancer_test.moc"
