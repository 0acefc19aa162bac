// Tests of server selection (kernel/src/selection) for what the spec files do not pin down:
// the why-not lines a timeout error prints, the power of two choices with an injected random
// source, the $readPreference documents and SecondaryOk per server type, the validation texts,
// and the staleness formulas on the spec's own worked examples.

#include <QtTest/QtTest>

#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"
#include "trellis/selection.hpp"

using namespace std::chrono_literals;
namespace sel = trellis::selection;
using trellis::read_preference;
using trellis::read_preference_mode;
using trellis::sdk::operation_requirements;
using trellis::sdk::server_description;
using trellis::sdk::server_type;
using trellis::sdk::topology_description;
using trellis::sdk::topology_type;

namespace {

server_description server(std::string address, server_type type, std::chrono::milliseconds rtt = 5ms,
                          std::map<std::string, std::string> tags = {}) {
    server_description s;
    s.address = std::move(address);
    s.type = type;
    if (type != server_type::unknown) s.round_trip_time = rtt;
    s.tags = std::move(tags);
    return s;
}

operation_requirements read(read_preference_mode mode, std::vector<trellis::tag_set> tags = {},
                            std::optional<std::chrono::seconds> max_staleness = {}) {
    operation_requirements op;
    op.read_preference.mode = mode;
    op.read_preference.tag_sets = std::move(tags);
    op.read_preference.max_staleness = max_staleness;
    return op;
}

std::string json(const trellis::bson::document& d) { return trellis::bson::to_json(d.view()); }

QStringList lines(const std::vector<std::string>& v) {
    QStringList out;
    for (const auto& s : v) out << QString::fromStdString(s);
    return out;
}

// A random source that replays a script of indexes.
struct scripted {
    std::vector<std::size_t> draws;
    std::size_t next = 0;
    std::size_t operator()(std::size_t) { return draws.at(next++); }
};

}  // namespace

class selection_test : public QObject {
    Q_OBJECT

private slots:
    void why_not_lines_for_a_secondary_read() {
        topology_description t;
        t.type = topology_type::replica_set_with_primary;
        t.servers = {server("127.0.0.1:27017", server_type::rs_primary, 5ms, {{"dc", "sf"}}),
                     server("127.0.0.1:27018", server_type::rs_secondary, 5ms, {{"dc", "ny"}}),
                     server("127.0.0.1:27019", server_type::unknown),
                     server("127.0.0.1:27020", server_type::rs_arbiter)};
        t.servers[2].error = "connection refused";
        const auto s = sel::suitable_servers(t, read(read_preference_mode::secondary, {{{"dc", "sf"}}}));
        QVERIFY(s.servers.empty());
        QCOMPARE(lines(s.why_not),
                 QStringList({"127.0.0.1:27017: RSPrimary, mode secondary reads from secondaries only",
                              "127.0.0.1:27018: RSSecondary, tags {dc: ny} do not match any tag set",
                              "127.0.0.1:27019: Unknown, not available (connection refused)",
                              "127.0.0.1:27020: RSArbiter, never a candidate: only a primary or a secondary serves "
                              "operations in a replica set"}));

        // With a fallback tag set the secondary matches the second set; the primary stays out.
        const auto n = sel::suitable_servers(t, read(read_preference_mode::nearest, {{{"dc", "ny"}}, {{"dc", "sf"}}}));
        QCOMPARE(n.servers.size(), std::size_t{1});
        QCOMPARE(n.servers[0]->address, std::string("127.0.0.1:27018"));
        QCOMPARE(QString::fromStdString(n.why_not[0]),
                 QString("127.0.0.1:27017: RSPrimary, tags {dc: sf} do not match tag set {dc: ny}, the first that "
                         "matches a candidate"));
    }

    void why_not_lines_for_writes_unknown_and_deprioritized() {
        topology_description rs;
        rs.type = topology_type::replica_set_no_primary;
        rs.servers = {server("a:27017", server_type::rs_secondary)};
        operation_requirements write;
        write.what = operation_requirements::kind::write;
        auto s = sel::suitable_servers(rs, write);
        QVERIFY(s.servers.empty());
        QCOMPARE(lines(s.why_not), QStringList({"a:27017: RSSecondary, writes need the primary"}));

        topology_description unknown;
        unknown.servers = {server("a:27017", server_type::rs_ghost)};
        s = sel::suitable_servers(unknown, read(read_preference_mode::nearest));
        QCOMPARE(lines(s.why_not),
                 QStringList({"a:27017: RSGhost, topology type Unknown: no server suits until the deployment is "
                              "discovered"}));

        topology_description sharded;
        sharded.type = topology_type::sharded;
        sharded.servers = {server("g:27017", server_type::mongos), server("h:27017", server_type::mongos)};
        const std::vector<std::string> avoid{"g:27017"};
        s = sel::suitable_servers(sharded, write, avoid);
        QCOMPARE(s.servers.size(), std::size_t{1});
        QCOMPARE(s.servers[0]->address, std::string("h:27017"));
        QVERIFY(!s.deprioritized_used);
        QCOMPARE(lines(s.why_not),
                 QStringList({"g:27017: Mongos, deprioritized for this retry, and other servers suit"}));

        // Nothing else suits: the deprioritized server is used after all.
        const std::vector<std::string> both{"g:27017", "h:27017"};
        s = sel::suitable_servers(sharded, write, both);
        QCOMPARE(s.servers.size(), std::size_t{2});
        QVERIFY(s.deprioritized_used);
    }

    void staleness_line() {
        topology_description t;
        t.type = topology_type::replica_set_with_primary;
        const auto now = std::chrono::system_clock::time_point(1'000'000s);
        const auto tick = std::chrono::steady_clock::time_point(500s);
        t.servers = {server("a:27017", server_type::rs_primary), server("b:27017", server_type::rs_secondary)};
        t.servers[0].last_write_date = now;
        t.servers[0].last_update_time = tick;
        t.servers[1].last_write_date = now - 200s;
        t.servers[1].last_update_time = tick;
        const auto s = sel::suitable_servers(t, read(read_preference_mode::secondary, {}, 120s));
        QVERIFY(s.servers.empty());
        QCOMPARE(lines(s.why_not),
                 QStringList({"a:27017: RSPrimary, mode secondary reads from secondaries only",
                              "b:27017: RSSecondary, estimated staleness 210000 ms exceeds maxStalenessSeconds 120"}));
    }

    void staleness_is_applied_before_tag_sets() {
        // The spec's "Why is maxStalenessSeconds applied before tag_sets?": node 1 (value1) is 5
        // minutes stale, node 2 (value2) 1 minute; tag sets [value1, value2], max 120 s: node 2.
        topology_description t;
        t.type = topology_type::replica_set_with_primary;
        const auto now = std::chrono::system_clock::time_point(1'000'000s);
        t.servers = {server("p:1", server_type::rs_primary),
                     server("n1:1", server_type::rs_secondary, 5ms, {{"tag", "value1"}}),
                     server("n2:1", server_type::rs_secondary, 5ms, {{"tag", "value2"}})};
        t.servers[0].last_write_date = now;
        t.servers[1].last_write_date = now - 300s + 10s;  // + heartbeat 10 s = 300 s
        t.servers[2].last_write_date = now - 60s + 10s;   // 60 s
        const auto s = sel::suitable_servers(
            t, read(read_preference_mode::secondary, {{{"tag", "value1"}}, {{"tag", "value2"}}}, 120s));
        QCOMPARE(s.servers.size(), std::size_t{1});
        QCOMPARE(s.servers[0]->address, std::string("n2:1"));

        // No primary: staleness against the freshest secondary; primaryPreferred falls back to
        // the secondaries, and secondaryPreferred with no eligible secondary has no primary to use.
        t.type = topology_type::replica_set_no_primary;
        t.servers.erase(t.servers.begin());
        auto pp = sel::suitable_servers(t, read(read_preference_mode::primary_preferred, {}, 200s));
        QCOMPARE(pp.servers.size(), std::size_t{1});  // n1 is 240 s behind n2 (+10 s heartbeat)
        QCOMPARE(pp.servers[0]->address, std::string("n2:1"));
        pp = sel::suitable_servers(t, read(read_preference_mode::secondary_preferred, {{{"tag", "none"}}}, 300s));
        QVERIFY(pp.servers.empty());
    }

    void staleness_formulas_on_the_spec_examples() {
        // "Estimating Staleness: Example With a Primary and Continuous Writes", client times 60..80.
        const auto at = [](int s) { return std::chrono::steady_clock::time_point(std::chrono::seconds(s)); };
        const auto wrote = [](int s) { return std::chrono::system_clock::time_point(std::chrono::seconds(s)); };
        server_description p = server("p:1", server_type::rs_primary), s = server("s:1", server_type::rs_secondary);
        p.last_update_time = at(60), p.last_write_date = wrote(10);
        s.last_update_time = at(60), s.last_write_date = wrote(0);
        QCOMPARE(sel::staleness_with_primary(s, p, 10s), std::optional<std::chrono::milliseconds>(20s));
        s.last_update_time = at(70), s.last_write_date = wrote(5);
        QCOMPARE(sel::staleness_with_primary(s, p, 10s), std::optional<std::chrono::milliseconds>(25s));
        p.last_update_time = at(80), p.last_write_date = wrote(30);
        QCOMPARE(sel::staleness_with_primary(s, p, 10s), std::optional<std::chrono::milliseconds>(25s));

        // "Example With No Primary": S1 wrote at 20, S2 at 5, heartbeat 10 s.
        server_description s1 = server("s1:1", server_type::rs_secondary),
                           s2 = server("s2:1", server_type::rs_secondary);
        s1.last_write_date = wrote(20), s2.last_write_date = wrote(5);
        QCOMPARE(sel::staleness_without_primary(s1, s1, 10s), std::optional<std::chrono::milliseconds>(10s));
        QCOMPARE(sel::staleness_without_primary(s2, s1, 10s), std::optional<std::chrono::milliseconds>(25s));
        topology_description t;
        t.type = topology_type::replica_set_no_primary;
        t.servers = {s1, s2};
        QCOMPARE(sel::staleness(t, t.servers[1], 10s), std::optional<std::chrono::milliseconds>(25s));

        // Non-secondaries are never stale; a missing lastWriteDate cannot be estimated.
        QCOMPARE(sel::staleness(t, server("m:1", server_type::mongos), 10s),
                 std::optional<std::chrono::milliseconds>(0ms));
        s2.last_write_date.reset();
        QVERIFY(!sel::staleness_without_primary(s2, s1, 10s));
    }

    void power_of_two_choices_picks_the_less_busy() {
        const server_description a = server("a:1", server_type::mongos), b = server("b:1", server_type::mongos),
                                 c = server("c:1", server_type::mongos);
        const std::vector<const server_description*> window{&a, &b, &c};
        const std::map<std::string, std::size_t> busy{{"a:1", 5}, {"b:1", 1}, {"c:1", 9}};
        const sel::operation_count_lookup count = [&](const server_description& s) { return busy.at(s.address); };

        // Draws (0, 0): a, then index 0 of the other two = b. b has fewer operations.
        QCOMPARE(sel::detail::choose(window, count, scripted{{0, 0}}), &b);
        // Draws (0, 1): a and c. a has fewer.
        QCOMPARE(sel::detail::choose(window, count, scripted{{0, 1}}), &a);
        // Draws (2, 1): c and b.
        QCOMPARE(sel::detail::choose(window, count, scripted{{2, 1}}), &b);

        // A tie goes to the first drawn.
        const std::map<std::string, std::size_t> even{{"a:1", 3}, {"b:1", 3}, {"c:1", 3}};
        const sel::operation_count_lookup same = [&](const server_description& s) { return even.at(s.address); };
        QCOMPARE(sel::detail::choose(window, same, scripted{{2, 0}}), &c);

        // Two servers: with any random source the busier one is never chosen.
        const std::vector<const server_description*> two{&a, &b};
        std::mt19937 random(42);
        for (int i = 0; i < 500; ++i) QCOMPARE(sel::choose(two, count, random), &b);

        // One server: that one, without drawing. None: nullptr.
        QCOMPARE(sel::detail::choose(std::vector<const server_description*>{&c}, count, scripted{}), &c);
        QCOMPARE(sel::detail::choose({}, count, scripted{}), static_cast<const server_description*>(nullptr));
        // A random source that breaks its contract is reported, not trusted.
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, sel::detail::choose(window, count, scripted{{3, 0}}));
    }

    void latency_window() {
        const server_description a = server("a:1", server_type::mongos, 5ms),
                                 b = server("b:1", server_type::mongos, 20ms),
                                 c = server("c:1", server_type::mongos, 21ms);
        server_description unmeasured = server("d:1", server_type::mongos);
        unmeasured.round_trip_time.reset();
        const std::vector<const server_description*> all{&a, &b, &c, &unmeasured};
        const auto w = sel::in_latency_window(all, 15ms);
        QCOMPARE(w, (std::vector<const server_description*>{&a, &b}));
        QCOMPARE(sel::in_latency_window(all, 0ms), (std::vector<const server_description*>{&a}));
        // A load balancer is not monitored: without any RTT every server is in the window.
        server_description lb = server("lb:1", server_type::load_balancer);
        lb.round_trip_time.reset();
        QCOMPARE(sel::in_latency_window(std::vector<const server_description*>{&lb}, 15ms),
                 (std::vector<const server_description*>{&lb}));
    }

    void read_preference_documents() {
        read_preference rp;
        QCOMPARE(json(sel::read_preference_document(rp)), std::string(R"({"mode": "primary"})"));
        rp.mode = read_preference_mode::primary_preferred;
        QCOMPARE(json(sel::read_preference_document(rp)), std::string(R"({"mode": "primaryPreferred"})"));
        rp.mode = read_preference_mode::secondary;
        rp.tag_sets = {{{"dc", "ny"}, {"rack", "2"}}, {}};
        QCOMPARE(json(sel::read_preference_document(rp)),
                 std::string(R"({"mode": "secondary", "tags": [{"dc": "ny", "rack": "2"}, {}]})"));
        rp.mode = read_preference_mode::secondary_preferred;
        rp.tag_sets = {{}};  // [{}] asks for nothing: no tags field
        rp.max_staleness = 120s;
        QCOMPARE(json(sel::read_preference_document(rp)),
                 std::string(R"({"mode": "secondaryPreferred", "maxStalenessSeconds": 120})"));
        rp.mode = read_preference_mode::nearest;
        rp.tag_sets = {{{"dc", "sf"}}};
        rp.max_staleness.reset();
        QCOMPARE(json(sel::read_preference_document(rp)),
                 std::string(R"({"mode": "nearest", "tags": [{"dc": "sf"}]})"));
    }

    void read_preference_passed_per_server() {
        using sel::wire_protocol;
        read_preference primary, secondary_preferred, tagged;
        secondary_preferred.mode = read_preference_mode::secondary_preferred;
        tagged.mode = read_preference_mode::secondary_preferred;
        tagged.tag_sets = {{{"dc", "ny"}}};

        // To a mongos, OP_MSG: nothing for primary, the document otherwise.
        auto r = sel::read_preference_for(primary, topology_type::sharded, server_type::mongos, wire_protocol::op_msg);
        QVERIFY(!r.read_preference && !r.secondary_ok);
        r = sel::read_preference_for(secondary_preferred, topology_type::sharded, server_type::mongos,
                                     wire_protocol::op_msg);
        QVERIFY(r.read_preference);
        QCOMPARE(json(*r.read_preference), std::string(R"({"mode": "secondaryPreferred"})"));
        // OP_QUERY: secondaryPreferred alone travels in SecondaryOk; with tags it needs $readPreference.
        r = sel::read_preference_for(secondary_preferred, topology_type::sharded, server_type::mongos,
                                     wire_protocol::op_query);
        QVERIFY(!r.read_preference && r.secondary_ok);
        r = sel::read_preference_for(tagged, topology_type::sharded, server_type::mongos, wire_protocol::op_query);
        QVERIFY(r.read_preference && r.secondary_ok);
        r = sel::read_preference_for(primary, topology_type::load_balanced, server_type::load_balancer,
                                     wire_protocol::op_query);
        QVERIFY(!r.read_preference && !r.secondary_ok);

        // A direct connection to a member: primary becomes primaryPreferred; a standalone gets nothing.
        r = sel::read_preference_for(primary, topology_type::single, server_type::rs_secondary, wire_protocol::op_msg);
        QVERIFY(r.read_preference);
        QCOMPARE(json(*r.read_preference), std::string(R"({"mode": "primaryPreferred"})"));
        r = sel::read_preference_for(primary, topology_type::single, server_type::rs_secondary,
                                     wire_protocol::op_query);
        QVERIFY(!r.read_preference && r.secondary_ok);
        r = sel::read_preference_for(tagged, topology_type::single, server_type::standalone, wire_protocol::op_msg);
        QVERIFY(!r.read_preference && !r.secondary_ok);

        // Replica set members: every mode but primary says so.
        r = sel::read_preference_for(primary, topology_type::replica_set_with_primary, server_type::rs_primary,
                                     wire_protocol::op_msg);
        QVERIFY(!r.read_preference && !r.secondary_ok);
        r = sel::read_preference_for(tagged, topology_type::replica_set_with_primary, server_type::rs_secondary,
                                     wire_protocol::op_msg);
        QVERIFY(r.read_preference);
        r = sel::read_preference_for(tagged, topology_type::replica_set_with_primary, server_type::rs_secondary,
                                     wire_protocol::op_query);
        QVERIFY(!r.read_preference && r.secondary_ok);
    }

    void validation_texts() {
        const auto rs = topology_type::replica_set_with_primary;
        read_preference rp;
        QVERIFY(!sel::validate(rp, rs, 10s));
        rp.tag_sets = {{}};
        QVERIFY(!sel::validate(rp, rs, 10s));  // an empty tag set is allowed with primary
        rp.tag_sets = {{{"dc", "ny"}}};
        QCOMPARE(sel::validate(rp, rs, 10s),
                 std::optional<std::string>("read preference mode primary cannot have tag sets, got [{dc: ny}]"));
        rp.tag_sets.clear();
        rp.max_staleness = 120s;
        QCOMPARE(sel::validate(rp, topology_type::sharded, 10s),
                 std::optional<std::string>(
                     "maxStalenessSeconds cannot be used with read preference mode primary, got 120"));

        rp.mode = read_preference_mode::nearest;
        rp.max_staleness = 0s;
        QCOMPARE(sel::validate(rp, topology_type::single, 10s),
                 std::optional<std::string>("maxStalenessSeconds must be positive (unset means no maximum), got 0"));
        rp.max_staleness = 60s;
        QCOMPARE(sel::validate(rp, rs, 10s),
                 std::optional<std::string>("maxStalenessSeconds 60 is less than the smallest allowed, 90 seconds"));
        QVERIFY(!sel::validate(rp, topology_type::sharded, 10s));  // mongos checks it, not the driver
        rp.max_staleness = 100s;
        QCOMPARE(
            sel::validate(rp, topology_type::replica_set_no_primary, 95s),
            std::optional<std::string>("maxStalenessSeconds 100 (100000 ms) is less than heartbeatFrequencyMS 95000 "
                                       "+ idleWritePeriodMS 10000 = 105000 ms"));
        QVERIFY(!sel::validate(rp, rs, 90s));

        // suitable_servers refuses an invalid read preference with the same text.
        topology_description t;
        t.type = rs;
        try {
            (void)sel::suitable_servers(t, read(read_preference_mode::secondary, {}, 60s));
            QFAIL("no configuration_error");
        } catch (const trellis::configuration_error& e) {
            // std::system_error appends the category's message after the text.
            const std::string what = e.what();
            QVERIFY2(what.starts_with("invalid read preference: maxStalenessSeconds 60 is less than the smallest "
                                      "allowed, 90 seconds"),
                     what.c_str());
            QCOMPARE(e.code(), trellis::make_error_code(trellis::errc::configuration_error));
        }
    }

    void to_string_of_read_preference() {
        read_preference rp;
        rp.mode = read_preference_mode::secondary;
        rp.tag_sets = {{{"dc", "ny"}}, {}};
        rp.max_staleness = 120s;
        QCOMPARE(sel::to_string(rp), std::string("secondary, tag sets [{dc: ny}, {}], maxStalenessSeconds 120"));
    }
};

QTEST_APPLESS_MAIN(selection_test)
#include "selection_test.moc"
