// The failover timeline fed scripted event sequences (no network): a stepdown, a killed
// primary, flapping, a double failover, a member that never returns, a primary replaced in
// one step, and a sharded cluster losing a router (and then all of them).
#include <QtTest>

#include "scripted.hpp"
#include "timeline.hpp"

using namespace trellis::monitor;
using namespace trellis::monitor::testing;

namespace {

const std::string A = "a:27017", B = "b:27017", C = "c:27017";

void feed(failover_timeline& tl, const std::vector<mon_event>& events) {
    for (const auto& e : events) tl.apply(e);
}

// A replica set with A primary (term 1), B and C secondaries, from t = 0..100.
deployment_script healthy_set(failover_timeline& tl) {
    deployment_script d(topology_type::replica_set_no_primary, {A, B, C});
    feed(tl, d.set(10, A, server_type::rs_primary, 1));
    feed(tl, d.set(20, B, server_type::rs_secondary));
    feed(tl, d.set(30, C, server_type::rs_secondary));
    for (std::int64_t t = 40; t <= 100; t += 30) {
        tl.apply(hb_ok(t, A, 1.0, true));
        tl.apply(hb_ok(t, B, 1.0, false));
        tl.apply(hb_ok(t, C, 1.0, false));
    }
    return d;
}

}  // namespace

class monitor_timeline_test : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void stepdown_gives_all_phases() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        QVERIFY(tl.incidents().empty());
        tl.apply(command_failed(1000, A, true));            // T0: NotWritablePrimary
        feed(tl, d.set(1010, A, server_type::rs_secondary));  // T1 (and the old primary a secondary: T5)
        tl.apply(command_ok(1100, A));                       // a write before T3 does not count
        feed(tl, d.set(1400, B, server_type::rs_primary, 2)); // T2, T3
        tl.apply(command_ok(1450, B));                       // T4
        QCOMPARE(tl.incidents().size(), std::size_t(1));
        const incident& i = tl.incidents().front();
        QCOMPARE(i.kind, QStringLiteral("primary lost"));
        QCOMPARE(i.old_primary, QString::fromStdString(A));
        QCOMPARE(i.new_primary, QString::fromStdString(B));
        QCOMPARE(*i.t0, 1000);
        QCOMPARE(*i.t1, 1010);
        QCOMPARE(*i.t2, 1400);
        QCOMPARE(*i.t3, 1400);
        QCOMPARE(*i.t4, 1450);
        QCOMPARE(*i.t5, 1010);
        QCOMPARE(*i.write_outage_ms(), 450);
        QCOMPARE(*i.no_primary_ms(), 390);
        QCOMPARE(*i.new_term, 2);
        QCOMPARE(i.cause, QStringLiteral("not primary"));
    }

    void killed_primary_t0_is_the_first_failed_heartbeat() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        tl.apply(hb_failed(1000, A));
        tl.apply(hb_failed(1500, A));
        feed(tl, d.set(1500, A, server_type::unknown, 0, "connection refused"));
        QVERIFY(tl.no_primary_for(2000).has_value());
        QCOMPARE(*tl.no_primary_for(2000), 500);
        {
            // C's heartbeat names B as primary before B's own description arrives: that is T2.
            mon_event sd = make(2000, event_family::sdam, "ServerDescriptionChanged", C);
            trellis::sdk::server_description c;
            c.address = C;
            c.type = server_type::rs_secondary;
            sd.previous_server = std::make_shared<const trellis::sdk::server_description>(c);
            c.primary = B;
            sd.server = std::make_shared<const trellis::sdk::server_description>(c);
            tl.apply(sd);
        }
        feed(tl, d.set(2400, B, server_type::rs_primary, 2));
        tl.apply(command_ok(2600, B));
        feed(tl, d.set(5000, A, server_type::rs_secondary));
        QCOMPARE(tl.incidents().size(), std::size_t(1));
        const incident& i = tl.incidents().front();
        QCOMPARE(*i.t0, 1000);
        QCOMPARE(*i.t1, 1500);
        QCOMPARE(*i.t2, 2000);
        QCOMPARE(*i.t3, 2400);
        QCOMPARE(*i.new_term, 2);  // from B's electionId, seen after the sighting
        QCOMPARE(*i.t4, 2600);
        QCOMPARE(*i.t5, 5000);
        QCOMPARE(i.cause, QStringLiteral("connection refused"));
        QVERIFY(!tl.no_primary_for(6000).has_value());
    }

    void flapping_heartbeats_make_no_incident_and_a_flapping_primary_one_per_loss() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        for (std::int64_t t = 1000; t < 4000; t += 1000) {
            tl.apply(hb_failed(t, A));
            tl.apply(hb_ok(t + 500, A, 1.0, true));
        }
        QVERIFY(tl.incidents().empty());
        // The old failures were cleared by the successes: T0 is the loss itself.
        feed(tl, d.set(5000, A, server_type::unknown, 0, "connection reset"));
        feed(tl, d.set(5200, A, server_type::rs_primary, 1));
        feed(tl, d.set(6000, A, server_type::unknown, 0, "connection reset"));
        feed(tl, d.set(6300, A, server_type::rs_primary, 1));
        QCOMPARE(tl.incidents().size(), std::size_t(2));
        for (const incident& i : tl.incidents()) {
            QCOMPARE(i.old_primary, QString::fromStdString(A));
            QCOMPARE(i.new_primary, QString::fromStdString(A));
            QCOMPARE(*i.t0, *i.t1);
            QCOMPARE(*i.t5, *i.t3);  // the same primary took writes again
        }
        QCOMPARE(*tl.incidents()[0].t0, 5000);
        QCOMPARE(*tl.incidents()[0].no_primary_ms(), 200);
        QCOMPARE(*tl.incidents()[1].no_primary_ms(), 300);
    }

    void double_failover_gives_two_incidents() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        tl.apply(hb_failed(1000, A));
        feed(tl, d.set(1200, A, server_type::unknown, 0, "connection refused"));
        feed(tl, d.set(1800, B, server_type::rs_primary, 2));
        tl.apply(command_ok(1900, B));
        tl.apply(hb_failed(3000, B));
        feed(tl, d.set(3100, B, server_type::unknown, 0, "connection refused"));
        feed(tl, d.set(3900, C, server_type::rs_primary, 3));
        tl.apply(command_ok(4000, C));
        feed(tl, d.set(9000, A, server_type::rs_secondary));
        QCOMPARE(tl.incidents().size(), std::size_t(2));
        const incident& first = tl.incidents()[0];
        const incident& second = tl.incidents()[1];
        QCOMPARE(first.old_primary, QString::fromStdString(A));
        QCOMPARE(first.new_primary, QString::fromStdString(B));
        QCOMPARE(*first.write_outage_ms(), 900);
        QCOMPARE(*first.t5, 9000);
        QCOMPARE(second.old_primary, QString::fromStdString(B));
        QCOMPARE(second.new_primary, QString::fromStdString(C));
        QCOMPARE(*second.t0, 3000);
        QCOMPARE(*second.t4, 4000);
        QCOMPARE(*second.new_term, 3);
        QVERIFY(!second.t5);  // B never came back
        QCOMPARE(second.number, 2);
    }

    void member_that_never_returns_leaves_t5_empty() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        tl.apply(hb_failed(1000, A));
        feed(tl, d.set(1500, A, server_type::unknown, 0, "connection refused"));
        for (std::int64_t t = 2000; t < 60000; t += 500) tl.apply(hb_failed(t, A));
        QCOMPARE(*tl.no_primary_for(10000), 8500);
        feed(tl, d.set(61000, C, server_type::rs_primary, 2));
        tl.apply(command_ok(61010, C));
        const incident& i = tl.incidents().front();
        QVERIFY(i.recovered());
        QVERIFY(!i.t5);
        QCOMPARE(*i.write_outage_ms(), 60010);
        QCOMPARE(*i.no_primary_ms(), 59500);
        QCOMPARE(tl.incidents().size(), std::size_t(1));
    }

    void primary_replaced_in_one_step_has_zero_no_primary() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        tl.apply(command_failed(900, A, false));  // a network error on the primary: T0
        feed(tl, d.swap(1000, A, B, 2));
        tl.apply(command_ok(1020, B));
        QCOMPARE(tl.incidents().size(), std::size_t(1));
        const incident& i = tl.incidents().front();
        QCOMPARE(*i.t0, 900);
        QCOMPARE(*i.t1, 1000);
        QCOMPARE(*i.t2, 1000);
        QCOMPARE(*i.t3, 1000);
        QCOMPARE(*i.no_primary_ms(), 0);
        QCOMPARE(*i.write_outage_ms(), 120);
        QCOMPARE(i.new_primary, QString::fromStdString(B));
    }

    void sharded_cluster_losing_a_router() {
        const std::string R1 = "r1:27017", R2 = "r2:27017";
        failover_timeline tl;
        deployment_script d(topology_type::sharded, {R1, R2});
        feed(tl, d.set(10, R1, server_type::mongos));
        feed(tl, d.set(20, R2, server_type::mongos));
        tl.apply(hb_failed(1000, R1));
        feed(tl, d.set(1500, R1, server_type::unknown, 0, "connection refused"));
        QCOMPARE(tl.incidents().size(), std::size_t(1));
        QVERIFY(!tl.no_primary_for(1600));  // R2 still takes writes
        tl.apply(command_ok(1600, R2));
        feed(tl, d.set(5000, R1, server_type::mongos));
        {
            const incident& i = tl.incidents().front();
            QCOMPARE(i.kind, QStringLiteral("router lost"));
            QCOMPARE(i.old_primary, QString::fromStdString(R1));
            QCOMPARE(i.new_primary, QString::fromStdString(R2));
            QVERIFY(!i.t1 && !i.t2 && !i.t3);
            QVERIFY(!i.no_primary_ms());
            QCOMPARE(*i.write_outage_ms(), 600);
            QCOMPARE(*i.t5, 5000);
            QVERIFY(i.recovered());
        }
        // Then both routers: no writable server until one is back.
        feed(tl, d.set(7000, R1, server_type::unknown, 0, "connection refused"));
        feed(tl, d.set(7100, R2, server_type::unknown, 0, "connection refused"));
        QCOMPARE(tl.incidents().size(), std::size_t(3));
        const incident& all = tl.incidents().back();
        QCOMPARE(*all.t1, 7100);
        feed(tl, d.set(8000, R2, server_type::mongos));
        tl.apply(command_ok(8050, R2));
        QCOMPARE(*all.t3, 8000);
        QCOMPARE(*all.t4, 8050);
        QCOMPARE(*all.no_primary_ms(), 900);
        QCOMPARE(*all.t5, 8000);  // the router lost last is back
    }

    void master_lost_while_slaves_remain() {
        // Master/slave: the slaves are standalones to SDAM (writable by type), yet writes go to
        // the master only; the outage is measured by the first write that works again.
        const std::string M = "m:27017", S1 = "s1:27017", S2 = "s2:27017";
        failover_timeline tl;
        deployment_script d(topology_type::single, {M, S1, S2});
        feed(tl, d.set(10, M, server_type::standalone));
        feed(tl, d.set(10, S1, server_type::standalone));
        feed(tl, d.set(10, S2, server_type::standalone));
        tl.apply(command_failed(2000, M, false));
        feed(tl, d.set(2100, M, server_type::unknown, 0, "connection refused"));
        tl.apply(command_failed(2500, M, false));
        feed(tl, d.set(4500, M, server_type::standalone));
        tl.apply(command_ok(4510, M));
        QCOMPARE(tl.incidents().size(), std::size_t(1));
        const incident& i = tl.incidents().front();
        QCOMPARE(i.kind, QStringLiteral("writable server lost"));
        QVERIFY(!i.t1 && !i.t2 && !i.t3);
        QCOMPARE(*i.t0, 2000);
        QCOMPARE(*i.t4, 4510);
        QCOMPARE(*i.t5, 4500);
        QCOMPARE(*i.write_outage_ms(), 2510);
        QCOMPARE(i.new_primary, QString::fromStdString(M));
    }

    void canary_write_gives_t4() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        tl.apply(hb_failed(1000, A));
        feed(tl, d.set(1200, A, server_type::unknown, 0, "refused"));
        mon_event canary = make(1300, event_family::workload, "CanaryWrite");
        canary.is_write = true;
        canary.failed = true;
        tl.apply(canary);  // failed: no T4
        feed(tl, d.set(1500, B, server_type::rs_primary, 2));
        canary.t_ms = 1800;
        canary.failed = false;
        tl.apply(canary);
        QCOMPARE(*tl.incidents().front().t4, 1800);
    }

    void topology_changes_are_marked() {
        failover_timeline tl;
        auto d = healthy_set(tl);
        const auto before = tl.topology_changes().size();
        feed(tl, d.set(1000, C, server_type::unknown, 0, "gone"));  // a secondary: no writable change
        QCOMPARE(tl.topology_changes().size(), before);
        QVERIFY(tl.incidents().empty());
        feed(tl, d.set(2000, A, server_type::unknown, 0, "gone"));
        QCOMPARE(tl.topology_changes().size(), before + 1);
        QCOMPARE(tl.topology_changes().back(), 2000);
    }
};

QTEST_GUILESS_MAIN(monitor_timeline_test)
#include "monitor_timeline_test.moc"
