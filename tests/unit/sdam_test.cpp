// Tests of the pure SDAM rules (kernel/src/sdam) for what the spec files do not cover: the RTT
// estimator's edges, hello replies with fields of the wrong type, error-handling decisions
// (stale generations, legacy messages, what is cleared and checked), the event diff's equality
// rules, and the configuration errors of initial_topology().

#include <QtTest/QtTest>

#include <stdexcept>
#include <string>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"
#include "trellis/events.hpp"
#include "trellis/sdam.hpp"

using namespace std::chrono_literals;
namespace sdam = trellis::sdam;
namespace bson = trellis::bson;
using sdam::server_type;
using sdam::topology_type;

namespace {

const sdam::clock::time_point t0{std::chrono::hours(1)};

sdam::server_description hello(std::string_view address, std::string_view json) {
    const bson::document reply = bson::from_json(json);
    return sdam::parse_hello(std::string(address), reply, std::chrono::microseconds(500), t0);
}

bool contains(const std::optional<std::string>& text, std::string_view part) {
    return text && text->find(part) != std::string::npos;
}

#define VERIFY_CONTAINS(text, part) \
    QVERIFY2(contains((text), (part)), (std::string("\"") + (text).value_or("(none)") + "\" lacks \"" + (part) + "\"").c_str())

// A replica set a (primary, topologyVersion {1, 5}) and b (secondary).
sdam::topology_description replica_set() {
    auto t = sdam::initial_topology({"a:27017", "b:27017"}, std::string("rs"), false);
    t = sdam::apply(t, hello("a:27017", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs",
        "hosts": ["a:27017", "b:27017"], "minWireVersion": 0, "maxWireVersion": 21,
        "topologyVersion": {"processId": {"$oid": "000000000000000000000001"}, "counter": {"$numberLong": "5"}}})"));
    t = sdam::apply(t, hello("b:27017", R"({"ok": 1, "secondary": true, "setName": "rs",
        "hosts": ["a:27017", "b:27017"], "minWireVersion": 0, "maxWireVersion": 21})"));
    return t;
}

sdam::application_error state_change(int code, std::int64_t generation, std::int64_t counter) {
    sdam::application_error e;
    e.address = "a:27017";
    e.kind = sdam::error_kind::command;
    e.generation = generation;
    e.max_wire_version = 21;
    e.command = sdam::command_error{code, "error " + std::to_string(code),
                                    sdam::topology_version{bson::oid::from_hex("000000000000000000000001"), counter}};
    return e;
}

}  // namespace

class SdamTest : public QObject {
    Q_OBJECT

private slots:
    // ---------------------------------------------------------------- SRV polling

    void srv_polling_removes_and_adds_leaving_the_rest() {
        auto t = sdam::initial_topology(std::vector<std::string>{"a.x.test:1", "b.x.test:2"}, std::nullopt, false);
        t.type = topology_type::sharded;
        t.servers[1].type = server_type::mongos;  // b was checked: it must stay as it is
        const auto first = [](std::size_t) { return std::size_t(0); };
        const auto next = sdam::apply_srv_hosts(t, {"B.x.test:2", "c.x.test:3"}, 0, first);
        QCOMPARE(next.servers.size(), std::size_t(2));
        QCOMPARE(next.servers[0].address, std::string("b.x.test:2"));
        QCOMPARE(next.servers[0].type, server_type::mongos);
        QCOMPARE(next.servers[1].address, std::string("c.x.test:3"));
        QCOMPARE(next.servers[1].type, server_type::unknown);
        // No hosts: nothing changes (the spec keeps the old list).
        QCOMPARE(sdam::apply_srv_hosts(t, {}, 0, first).servers.size(), std::size_t(2));
        // A replica set is not polled.
        auto rs = t;
        rs.type = topology_type::replica_set_no_primary;
        QCOMPARE(sdam::apply_srv_hosts(rs, {"c.x.test:3"}, 0, first).servers.size(), std::size_t(2));
    }

    void srv_polling_respects_srv_max_hosts() {
        auto t = sdam::initial_topology(std::vector<std::string>{"a.x.test:1", "b.x.test:2"}, std::nullopt, false);
        t.type = topology_type::sharded;
        // Nothing removed, two hosts already: the new ones wait.
        const auto last = [](std::size_t n) { return n - 1; };
        auto next = sdam::apply_srv_hosts(t, {"a.x.test:1", "b.x.test:2", "c.x.test:3", "d.x.test:4"}, 2, last);
        QCOMPARE(next.servers.size(), std::size_t(2));
        // a gone: one new host drawn (random_below's choice: the last of c, d).
        next = sdam::apply_srv_hosts(t, {"b.x.test:2", "c.x.test:3", "d.x.test:4"}, 2, last);
        QCOMPARE(next.servers.size(), std::size_t(2));
        QCOMPARE(next.servers[0].address, std::string("b.x.test:2"));
        QCOMPARE(next.servers[1].address, std::string("d.x.test:4"));
        // srvMaxHosts at or above the number of hosts: every new one is added.
        next = sdam::apply_srv_hosts(t, {"b.x.test:2", "c.x.test:3", "d.x.test:4"}, 3, last);
        QCOMPARE(next.servers.size(), std::size_t(3));
    }

    // ---------------------------------------------------------------- RTT

    void rtt_first_sample_is_taken_as_is() {
        sdam::rtt_estimator rtt;
        QVERIFY(!rtt.average());
        QVERIFY(!rtt.round_trip_time());
        rtt.add_sample(12ms);
        QCOMPARE(rtt.round_trip_time(), std::optional<std::chrono::microseconds>(12ms));
        QCOMPARE(rtt.sample_count(), std::size_t{1});
    }

    void rtt_moving_average_uses_alpha_0_2() {
        sdam::rtt_estimator rtt;
        rtt.add_sample(10ms);
        rtt.add_sample(20ms);  // 0.2 * 20 + 0.8 * 10 = 12
        QCOMPARE(rtt.round_trip_time(), std::optional<std::chrono::microseconds>(12ms));
        rtt.add_sample(0ms);  // 0.8 * 12 = 9.6
        QCOMPARE(rtt.round_trip_time(), std::optional<std::chrono::microseconds>(9600us));
        // Sub-microsecond samples still move the average (kept as double).
        sdam::rtt_estimator fine;
        fine.add_sample(1ns);
        fine.add_sample(2ns);
        QVERIFY(fine.average()->count() > 0.0011 && fine.average()->count() < 0.0013);
        QCOMPARE(fine.round_trip_time(), std::optional<std::chrono::microseconds>(0us));
    }

    void rtt_minimum_is_zero_until_two_samples() {
        sdam::rtt_estimator rtt;
        QCOMPARE(rtt.min_round_trip_time(), 0us);
        rtt.add_sample(7ms);
        QCOMPARE(rtt.min_round_trip_time(), 0us);
        rtt.add_sample(9ms);
        QCOMPARE(rtt.min_round_trip_time(), 7ms);
    }

    void rtt_minimum_covers_only_the_last_ten_samples() {
        sdam::rtt_estimator rtt;
        rtt.add_sample(1ms);  // will slide out of the window
        for (int i = 0; i < 9; ++i) rtt.add_sample(std::chrono::milliseconds(5 + i));
        QCOMPARE(rtt.min_round_trip_time(), 1ms);  // exactly 10 samples
        rtt.add_sample(20ms);                       // the 1 ms sample is gone
        QCOMPARE(rtt.min_round_trip_time(), 5ms);
        for (int i = 0; i < 25; ++i) rtt.add_sample(30ms);
        QCOMPARE(rtt.min_round_trip_time(), 30ms);
        QCOMPARE(rtt.sample_count(), std::size_t{36});
    }

    void rtt_reset_starts_over() {
        sdam::rtt_estimator rtt;
        rtt.add_sample(3ms);
        rtt.add_sample(4ms);
        rtt.reset();
        QVERIFY(!rtt.average());
        QCOMPARE(rtt.min_round_trip_time(), 0us);
        rtt.add_sample(50ms);
        QCOMPARE(rtt.round_trip_time(), std::optional<std::chrono::microseconds>(50ms));
    }

    void rtt_rejects_negative_and_non_finite_values() {
        sdam::rtt_estimator rtt;
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, rtt.add_sample(-1ns));
        QVERIFY(!rtt.average());  // unchanged
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, sdam::rtt_estimator(sdam::rtt_estimator::duration(-1.0)));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                                 sdam::rtt_estimator(sdam::rtt_estimator::duration(std::nan(""))));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                                 sdam::rtt_estimator(sdam::rtt_estimator::duration(HUGE_VAL)));
    }

    void parse_hello_takes_rtt_from_the_estimator() {
        sdam::rtt_estimator rtt;
        rtt.add_sample(4ms);
        rtt.add_sample(2ms);
        const bson::document reply = bson::from_json(R"({"ok": 1, "isWritablePrimary": true})");
        const auto sd = sdam::parse_hello("a", reply, rtt, t0);
        QCOMPARE(sd.round_trip_time, rtt.round_trip_time());
        QCOMPARE(sd.min_round_trip_time, std::optional<std::chrono::microseconds>(2ms));
        QCOMPARE(sd.address, std::string("a:27017"));
        QCOMPARE(sd.last_update_time, t0);
    }

    // ---------------------------------------------------------------- parse_hello

    void parse_hello_reads_every_field() {
        const auto sd = hello("A:27017", R"({"ok": 1.0, "isWritablePrimary": false, "secondary": true,
            "setName": "rs", "setVersion": {"$numberLong": "3"}, "me": "A:27017",
            "hosts": ["A:27017", "b"], "passives": ["[::1]:27018"], "arbiters": ["C:1"],
            "primary": "B:27017", "tags": {"dc": "east"},
            "lastWrite": {"lastWriteDate": {"$date": "2024-01-02T03:04:05Z"},
                          "opTime": {"ts": {"$timestamp": {"t": 10, "i": 2}}, "t": {"$numberLong": "1"}}},
            "logicalSessionTimeoutMinutes": 30, "minWireVersion": 0, "maxWireVersion": 21,
            "topologyVersion": {"processId": {"$oid": "000000000000000000000007"}, "counter": 4}})");
        QCOMPARE(sd.type, server_type::rs_secondary);
        QVERIFY(!sd.error);
        QCOMPARE(sd.address, std::string("a:27017"));
        QCOMPARE(sd.me, std::optional<std::string>("a:27017"));
        QCOMPARE(sd.hosts, (std::vector<std::string>{"a:27017", "b:27017"}));
        QCOMPARE(sd.passives, (std::vector<std::string>{"[::1]:27018"}));
        QCOMPARE(sd.arbiters, (std::vector<std::string>{"c:1"}));
        QCOMPARE(sd.primary, std::optional<std::string>("b:27017"));
        QCOMPARE(sd.set_version, std::optional<int>(3));
        QCOMPARE(sd.tags.at("dc"), std::string("east"));
        QVERIFY(sd.last_write_date.has_value());
        QCOMPARE(sd.op_time->seconds, 10u);
        QCOMPARE(sd.logical_session_timeout_minutes, std::optional<int>(30));
        QCOMPARE(sd.topology_version->counter, std::int64_t{4});
        QCOMPARE(sd.round_trip_time, std::optional<std::chrono::microseconds>(500us));
    }

    void parse_hello_types() {
        QCOMPARE(hello("a", R"({"ok": 1, "ismaster": true, "msg": "isdbgrid"})").type, server_type::mongos);
        QCOMPARE(hello("a", R"({"ok": 1, "ismaster": true})").type, server_type::standalone);
        QCOMPARE(hello("a", R"({"ok": 1, "isreplicaset": true})").type, server_type::rs_ghost);
        QCOMPARE(hello("a", R"({"ok": 1, "setName": "rs", "arbiterOnly": true})").type, server_type::rs_arbiter);
        QCOMPARE(hello("a", R"({"ok": 1, "setName": "rs", "secondary": true, "hidden": true})").type,
                 server_type::rs_other);
        QCOMPARE(hello("a", R"({"ok": 1, "setName": "rs"})").type, server_type::rs_other);
        // isWritablePrimary wins over the legacy ismaster.
        QCOMPARE(hello("a", R"({"ok": 1, "setName": "rs", "isWritablePrimary": true, "ismaster": false})").type,
                 server_type::rs_primary);
    }

    void parse_hello_ok_0_is_unknown_with_the_servers_error() {
        const auto sd = hello("a", R"({"ok": 0, "errmsg": "not authorized", "code": 13})");
        QCOMPARE(sd.type, server_type::unknown);
        VERIFY_CONTAINS(sd.error, "not authorized");
        VERIFY_CONTAINS(sd.error, "code 13");
        QVERIFY(!sd.round_trip_time);  // an Unknown server has no RTT
        // A code that is no integer is left out rather than converted.
        const auto odd = hello("a", R"({"ok": 0, "errmsg": "odd", "code": {"$numberDouble": "NaN"}})");
        QCOMPARE(odd.type, server_type::unknown);
        QCOMPARE(odd.error, std::optional<std::string>("hello failed on a:27017: odd"));
        const auto missing = hello("a", R"({"isWritablePrimary": true})");
        QCOMPARE(missing.type, server_type::unknown);
        VERIFY_CONTAINS(missing.error, "no 'ok' field");
    }

    void parse_hello_wrong_types_give_unknown_with_a_reason_data() {
        QTest::addColumn<QString>("reply");
        QTest::addColumn<QString>("expected");
        QTest::newRow("ok string") << R"({"ok": "yes"})" << "field 'ok' is string, expected number or bool";
        QTest::newRow("hosts string") << R"({"ok": 1, "hosts": "a:1"})" << "field 'hosts' is string, expected array";
        QTest::newRow("host number") << R"({"ok": 1, "hosts": ["a:1", 5]})" << "field 'hosts.1' is int, expected string";
        QTest::newRow("bad port") << R"({"ok": 1, "hosts": ["a:99999"]})" << "field 'hosts.0'";
        QTest::newRow("setName int") << R"({"ok": 1, "setName": 5})" << "field 'setName' is int, expected string";
        QTest::newRow("setVersion string") << R"({"ok": 1, "setName": "rs", "setVersion": "1"})"
                                           << "field 'setVersion' is string, expected an integer";
        QTest::newRow("setVersion fraction") << R"({"ok": 1, "setVersion": 1.5})" << "field 'setVersion' holds 1.5";
        QTest::newRow("setVersion too big") << R"({"ok": 1, "setVersion": {"$numberLong": "9999999999"}})"
                                            << "outside";
        QTest::newRow("electionId string") << R"({"ok": 1, "electionId": "7fffffff"})"
                                           << "field 'electionId' is string, expected objectId";
        QTest::newRow("isWritablePrimary string") << R"({"ok": 1, "isWritablePrimary": "true"})"
                                                  << "field 'isWritablePrimary' is string, expected bool";
        QTest::newRow("maxWireVersion negative") << R"({"ok": 1, "maxWireVersion": -1})"
                                                 << "field 'maxWireVersion' holds -1";
        QTest::newRow("tags value") << R"({"ok": 1, "tags": {"dc": 1}})" << "field 'tags.dc' is int, expected string";
        QTest::newRow("topologyVersion no processId") << R"({"ok": 1, "topologyVersion": {"counter": 1}})"
                                                      << "field 'topologyVersion.processId' is missing";
        QTest::newRow("topologyVersion counter") << R"({"ok": 1, "topologyVersion": {"processId": {"$oid": "000000000000000000000001"}, "counter": "x"}})"
                                                 << "field 'topologyVersion.counter' is string";
        QTest::newRow("lastWriteDate") << R"({"ok": 1, "lastWrite": {"lastWriteDate": 5}})"
                                       << "field 'lastWrite.lastWriteDate' is int, expected date";
        QTest::newRow("opTime") << R"({"ok": 1, "lastWrite": {"opTime": "x"}})"
                                << "field 'lastWrite.opTime' is string, expected document or timestamp";
        QTest::newRow("me") << R"({"ok": 1, "me": ["a"]})" << "field 'me' is array, expected string";
    }

    void parse_hello_wrong_types_give_unknown_with_a_reason() {
        QFETCH(QString, reply);
        QFETCH(QString, expected);
        const auto sd = hello("a:27017", reply.toStdString());
        QCOMPARE(sd.type, server_type::unknown);
        VERIFY_CONTAINS(sd.error, "malformed hello reply from a:27017");
        VERIFY_CONTAINS(sd.error, expected.toStdString());
        QVERIFY(sd.hosts.empty());
        QVERIFY(!sd.set_name);
        QCOMPARE(sd.last_update_time, t0);
    }

    void null_fields_count_as_absent() {
        const auto sd = hello("a", R"({"ok": 1, "setName": "rs", "secondary": true, "electionId": null,
            "setVersion": null, "logicalSessionTimeoutMinutes": null, "hosts": null})");
        QCOMPARE(sd.type, server_type::rs_secondary);
        QVERIFY(!sd.election_id && !sd.set_version && !sd.logical_session_timeout_minutes && sd.hosts.empty());
    }

    void addresses_are_normalized() {
        QCOMPARE(sdam::normalize_address("Example.COM"), std::string("example.com:27017"));
        QCOMPARE(sdam::normalize_address("[::1]"), std::string("[::1]:27017"));
        QCOMPARE(sdam::normalize_address("::1"), std::string("[::1]:27017"));
        QCOMPARE(sdam::normalize_address("[FE80::1]:27018"), std::string("[fe80::1]:27018"));
        QCOMPARE(sdam::normalize_address("/tmp/mongodb-27017.sock"), std::string("/tmp/mongodb-27017.sock"));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::normalize_address(""));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::normalize_address("a:0"));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::normalize_address("a:x"));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::normalize_address("[::1"));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::normalize_address("[::1]x"));
        // parse_hello normalizes the address it is given, and rejects a bad one the same way.
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, hello("a:70000", R"({"ok": 1})"));
    }

    // ---------------------------------------------------------------- initial topology

    void initial_topology_rejects_bad_combinations() {
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::initial_topology({}, std::nullopt, false));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error,
                                 sdam::initial_topology({"a", "b"}, std::nullopt, true));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error,
                                 sdam::initial_topology({"a"}, std::string("rs"), false, true));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::initial_topology({"a"}, std::nullopt, true, true));
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::initial_topology({"a", "b"}, std::nullopt, false, true));
        // Duplicates (after normalization) collapse into one seed.
        const auto t = sdam::initial_topology({"A", "a:27017"}, std::nullopt, false);
        QCOMPARE(t.servers.size(), std::size_t{1});
        QCOMPARE(t.seed_count, std::size_t{1});
        QCOMPARE(t.type, topology_type::unknown);
    }

    void old_primary_of_a_pre_4_2_server_needs_its_pool_cleared() {
        auto t = sdam::initial_topology({"a", "b"}, std::string("rs"), false);
        t = sdam::apply(t, hello("a", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017", "b:27017"],
            "setVersion": 1, "electionId": {"$oid": "000000000000000000000001"}, "maxWireVersion": 7})"));
        const auto r = sdam::update(t, hello("b", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs",
            "hosts": ["a:27017", "b:27017"], "setVersion": 1, "electionId": {"$oid": "000000000000000000000002"},
            "maxWireVersion": 7})"));
        QVERIFY(r.applied);
        QCOMPARE(r.check_now, std::vector<std::string>{"a:27017"});
        QCOMPARE(r.clear_pool, std::vector<std::string>{"a:27017"});
        VERIFY_CONTAINS(r.topology.find("a:27017")->error, "primary marked stale due to electionId/setVersion mismatch");
        QCOMPARE(r.topology.type, topology_type::replica_set_with_primary);
    }

    void a_description_from_a_removed_server_is_ignored() {
        const auto t = replica_set();
        const auto r = sdam::update(t, hello("z", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["z:27017"]})"));
        QVERIFY(!r.applied);
        QVERIFY(sdam::same_topology(r.topology, t));
    }

    void incompatible_server_message() {
        auto t = sdam::initial_topology({"a"}, std::nullopt, true);
        t = sdam::apply(t, hello("a", R"({"ok": 1, "isWritablePrimary": true, "minWireVersion": 26, "maxWireVersion": 27})"));
        QVERIFY(!t.compatible);
        QCOMPARE(t.compatibility_error, std::optional<std::string>("Server at a:27017 requires wire version 26, but this "
                                                                   "version of Trellis only supports up to 25."));
        t = sdam::apply(t, hello("a", R"({"ok": 1, "isWritablePrimary": true, "minWireVersion": 0, "maxWireVersion": 5})"));
        QCOMPARE(t.compatibility_error, std::optional<std::string>("Server at a:27017 reports wire version 5, but this "
                                                                   "version of Trellis requires at least 6 (MongoDB 3.6)."));
    }

    // ---------------------------------------------------------------- error handling

    void stale_generation_changes_nothing() {
        const auto t = replica_set();
        sdam::application_error e;
        e.address = "a:27017";
        e.kind = sdam::error_kind::network;
        e.generation = 2;
        const auto r = sdam::handle_application_error(t, e, 3);
        QVERIFY(!r.marked_unknown && !r.clear_pool && !r.request_check && !r.cancel_check);
        QVERIFY(sdam::same_topology(r.topology, t));
        QVERIFY2(r.reason.find("stale: connection generation 2 < pool generation 3") != std::string::npos,
                 r.reason.c_str());
        // A state change error with a stale generation is ignored too, however new its topologyVersion.
        const auto s = sdam::handle_application_error(t, state_change(10107, 0, 99), 1);
        QVERIFY(!s.marked_unknown && !s.request_check);
    }

    void current_generation_network_error_marks_unknown_and_clears() {
        const auto t = replica_set();
        sdam::application_error e;
        e.address = "A";  // normalized
        e.kind = sdam::error_kind::network;
        e.generation = 4;  // a newer generation than the pool's is not stale
        e.message = "connection reset";
        const auto r = sdam::handle_application_error(t, e, 3);
        QVERIFY(r.marked_unknown && r.clear_pool && r.cancel_check && !r.request_check);
        QCOMPARE(r.topology.find("a:27017")->type, server_type::unknown);
        VERIFY_CONTAINS(r.topology.find("a:27017")->error, "connection reset");
        QCOMPARE(r.topology.type, topology_type::replica_set_no_primary);
    }

    void timeouts_matter_only_before_the_handshake() {
        const auto t = replica_set();
        sdam::application_error e;
        e.address = "a:27017";
        e.kind = sdam::error_kind::network_timeout;
        auto r = sdam::handle_application_error(t, e, 0);
        QVERIFY(!r.marked_unknown && !r.clear_pool);
        e.handshake_completed = false;
        r = sdam::handle_application_error(t, e, 0);
        QVERIFY(r.marked_unknown && r.clear_pool);
        e.kind = sdam::error_kind::authentication;
        r = sdam::handle_application_error(t, e, 0);
        QVERIFY(r.marked_unknown && r.clear_pool);
    }

    // The current SDAM text (2025-11-21, backpressure): a network error or timeout with
    // SystemOverloadedError, before or after the handshake, leaves the server and its pool.
    void overload_labelled_network_errors_are_ignored() {
        const auto t = replica_set();
        for (const auto kind : {sdam::error_kind::network, sdam::error_kind::network_timeout}) {
            for (const bool completed : {false, true}) {
                sdam::application_error e;
                e.address = "a:27017";
                e.kind = kind;
                e.handshake_completed = completed;
                e.error_labels = {"SystemOverloadedError", "RetryableError"};
                const auto r = sdam::handle_application_error(t, e, 0);
                QVERIFY(!r.marked_unknown && !r.clear_pool && !r.cancel_check && !r.request_check);
                QVERIFY(sdam::same_topology(r.topology, t));
                if (kind == sdam::error_kind::network || !completed)
                    QVERIFY2(r.reason.find("carries SystemOverloadedError: ignored") != std::string::npos, r.reason.c_str());
            }
        }
        // RetryableError alone is no overload: the rules without labels apply.
        sdam::application_error e;
        e.address = "a:27017";
        e.kind = sdam::error_kind::network;
        e.handshake_completed = false;
        e.error_labels = {"RetryableError"};
        QVERIFY(sdam::handle_application_error(t, e, 0).marked_unknown);
        // An authentication failure never carries the label (the pool does not add it after the
        // hello): it still marks Unknown and clears.
        e.kind = sdam::error_kind::authentication;
        e.error_labels.clear();
        const auto r = sdam::handle_application_error(t, e, 0);
        QVERIFY(r.marked_unknown && r.clear_pool);
    }

    void state_change_errors_by_topology_version() {
        const auto t = replica_set();  // a is at topologyVersion {1, 5}
        auto r = sdam::handle_application_error(t, state_change(10107, 0, 5), 0);  // equal: stale
        QVERIFY(!r.marked_unknown && !r.request_check);
        r = sdam::handle_application_error(t, state_change(10107, 0, 6), 0);
        QVERIFY(r.marked_unknown && r.request_check && !r.clear_pool);  // 4.2+, not shutting down
        QCOMPARE(r.topology.find("a:27017")->topology_version->counter, std::int64_t{6});
        r = sdam::handle_application_error(t, state_change(91, 0, 6), 0);  // ShutdownInProgress
        QVERIFY(r.marked_unknown && r.clear_pool);
        auto old = state_change(189, 0, 6);
        old.max_wire_version = 7;  // MongoDB 4.0
        r = sdam::handle_application_error(t, old, 0);
        QVERIFY(r.marked_unknown && r.clear_pool);
        // Not a state change: nothing.
        r = sdam::handle_application_error(t, state_change(11000, 0, 6), 0);
        QVERIFY(!r.marked_unknown && !r.clear_pool && !r.request_check);
    }

    void legacy_messages_decide_only_without_a_code() {
        using sdam::command_error;
        QVERIFY(sdam::is_not_writable_primary(command_error{std::nullopt, "not master", {}}));
        QVERIFY(sdam::is_recovering(command_error{std::nullopt, "not master or secondary", {}}));
        QVERIFY(!sdam::is_not_writable_primary(command_error{std::nullopt, "not master or secondary", {}}));
        QVERIFY(sdam::is_recovering(command_error{std::nullopt, "node is recovering", {}}));
        QVERIFY(!sdam::is_state_change(command_error{1, "not master", {}}));  // a code wins
        QVERIFY(!sdam::is_shutdown(command_error{std::nullopt, "shutdown in progress", {}}));
        QVERIFY(sdam::is_shutdown(command_error{11600, "", {}}));
    }

    void command_error_of_reads_replies() {
        auto e = sdam::command_error_of(bson::from_json(R"({"ok": 0, "errmsg": "not primary", "code": 10107,
            "topologyVersion": {"processId": {"$oid": "000000000000000000000001"}, "counter": {"$numberLong": "2"}}})"));
        QVERIFY(e && e->code == 10107 && e->message == "not primary" && e->topology_version->counter == 2);
        e = sdam::command_error_of(bson::from_json(R"({"ok": 1, "writeConcernError": {"code": 91, "errmsg": "shutting down"}})"));
        QVERIFY(e && e->code == 91);
        QVERIFY(!sdam::command_error_of(bson::from_json(R"({"ok": 1, "writeErrors": [{"code": 10107}]})")));
        e = sdam::command_error_of(bson::from_json(R"({"ok": 0, "code": "x", "errmsg": "not master"})"));
        QVERIFY(e && !e->code && sdam::is_not_writable_primary(*e));
    }

    void bad_error_input_is_a_typed_error() {
        const auto t = replica_set();
        sdam::application_error e;
        e.address = "a:27017";
        e.kind = sdam::error_kind::command;  // without its command_error
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, sdam::handle_application_error(t, e, 0));
        e.address = "";
        e.command = sdam::command_error{91, "", {}};
        QVERIFY_THROWS_EXCEPTION(trellis::configuration_error, sdam::handle_application_error(t, e, 0));
        e.address = "elsewhere:1";
        const auto r = sdam::handle_application_error(t, e, 0);
        QVERIFY(!r.marked_unknown && !r.clear_pool);
    }

    void load_balanced_errors_clear_the_service_only() {
        const auto t = sdam::initial_topology({"lb"}, std::nullopt, false, true);
        QCOMPARE(t.servers.front().type, server_type::load_balancer);
        sdam::application_error e;
        e.address = "lb";
        e.kind = sdam::error_kind::network;
        e.service_id = bson::oid::from_hex("0000000000000000000000aa");
        const auto r = sdam::handle_application_error(t, e, 0);
        QVERIFY(!r.marked_unknown && r.clear_pool && !r.cancel_check);
        QCOMPARE(r.clear_service_id, e.service_id);
        QCOMPARE(r.topology.servers.front().type, server_type::load_balancer);
    }

    // ---------------------------------------------------------------- events

    void rtt_changes_alone_publish_nothing() {
        const auto t = replica_set();
        auto sd = *t.find("b:27017");
        sd.round_trip_time = 99ms;
        sd.last_update_time += 10s;
        const auto next = sdam::apply(t, sd);
        QVERIFY(sdam::description_events(t, next).empty());
        QCOMPARE(next.find("b:27017")->round_trip_time, std::optional<std::chrono::microseconds>(99ms));
        // Hosts are compared as a set.
        auto reordered = *t.find("b:27017");
        std::reverse(reordered.hosts.begin(), reordered.hosts.end());
        QVERIFY(sdam::same_description(reordered, *t.find("b:27017")));
    }

    void events_for_a_change() {
        const auto t = replica_set();
        const auto id = bson::oid::from_hex("0000000000000000000000ff");
        const auto next = sdam::apply(t, hello("a", R"({"ok": 1, "isWritablePrimary": true, "setName": "rs",
            "hosts": ["a:27017", "c:27017"], "maxWireVersion": 21,
            "topologyVersion": {"processId": {"$oid": "000000000000000000000001"}, "counter": {"$numberLong": "6"}}})"));
        const auto events = sdam::description_events(t, next, id);
        QCOMPARE(events.size(), std::size_t{4});
        QCOMPARE(trellis::event_name(events[0]), std::string_view("ServerDescriptionChanged"));
        QCOMPARE(trellis::event_name(events[1]), std::string_view("ServerClosed"));
        QCOMPARE(*trellis::event_address(events[1]), std::string("b:27017"));
        QCOMPARE(trellis::event_name(events[2]), std::string_view("TopologyDescriptionChanged"));
        QCOMPARE(trellis::event_name(events[3]), std::string_view("ServerOpening"));
        QCOMPARE(*trellis::event_address(events[3]), std::string("c:27017"));
        for (const auto& e : events) QCOMPARE(trellis::event_topology_id(e), id);
        const auto& changed = std::get<trellis::server_description_changed_event>(events[0]);
        QCOMPARE(changed.previous_description.topology_version->counter, std::int64_t{5});
        QCOMPARE(changed.new_description.topology_version->counter, std::int64_t{6});
    }

    void opening_and_closing_events() {
        const auto t = sdam::initial_topology({"a", "b"}, std::nullopt, false);
        auto open = sdam::opening_events(t);
        QCOMPARE(open.size(), std::size_t{4});
        QCOMPARE(trellis::event_name(open[0]), std::string_view("TopologyOpening"));
        QVERIFY(!trellis::event_address(open[0]));
        QCOMPARE(trellis::event_name(open[1]), std::string_view("TopologyDescriptionChanged"));
        QVERIFY(std::get<trellis::topology_description_changed_event>(open[1]).previous_description.servers.empty());
        auto close = sdam::closing_events(t);
        QCOMPARE(close.size(), std::size_t{4});
        QCOMPARE(trellis::event_name(close[0]), std::string_view("ServerClosed"));
        QCOMPARE(trellis::event_name(close[2]), std::string_view("TopologyDescriptionChanged"));
        QCOMPARE(trellis::event_name(close[3]), std::string_view("TopologyClosed"));
    }

    // The load balancers spec: no monitor, yet the server goes Unknown -> LoadBalancer.
    void load_balanced_opening_events() {
        const auto t = sdam::initial_topology({"lb:27017"}, std::nullopt, false, true);
        const auto open = sdam::opening_events(t);
        std::vector<std::string_view> names;
        for (const auto& e : open) names.push_back(trellis::event_name(e));
        const std::vector<std::string_view> expected = {"TopologyOpening", "TopologyDescriptionChanged", "ServerOpening",
                                                        "ServerDescriptionChanged", "TopologyDescriptionChanged"};
        QCOMPARE(names, expected);
        const auto& first = std::get<trellis::topology_description_changed_event>(open[1]);
        QCOMPARE(first.previous_description.type, trellis::sdk::topology_type::unknown);
        QVERIFY(first.previous_description.servers.empty());
        QCOMPARE(first.new_description.type, trellis::sdk::topology_type::load_balanced);
        QCOMPARE(first.new_description.servers.at(0).type, trellis::sdk::server_type::unknown);
        QCOMPARE(first.new_description.servers.at(0).address, std::string("lb:27017"));
        const auto& server = std::get<trellis::server_description_changed_event>(open[3]);
        QCOMPARE(server.previous_description.type, trellis::sdk::server_type::unknown);
        QCOMPARE(server.new_description.type, trellis::sdk::server_type::load_balancer);
        const auto& second = std::get<trellis::topology_description_changed_event>(open[4]);
        QCOMPARE(second.previous_description.servers.at(0).type, trellis::sdk::server_type::unknown);
        QCOMPARE(second.new_description.servers.at(0).type, trellis::sdk::server_type::load_balancer);
        QVERIFY(second.new_description.compatible);
        const auto close = sdam::closing_events(t);
        QCOMPARE(close.size(), std::size_t{3});
        QCOMPARE(std::get<trellis::topology_description_changed_event>(close[1]).new_description.type,
                 trellis::sdk::topology_type::unknown);
    }
};

QTEST_APPLESS_MAIN(SdamTest)

#include "sdam_test.moc"
