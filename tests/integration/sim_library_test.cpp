// libtrellis-sim used in-process, as the driver's integration tests, the CLI
// demo and the monitor's demo mode use it. Talks to members with the kernel's
// wire codec over plain Asio sockets (the driver's client is not involved).
#include <QtTest/QtTest>

#include <boost/asio.hpp>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/sim/deployment.hpp"
#include "wire/codec.hpp"
#include "wire/frame_decoder.hpp"

using namespace std::chrono_literals;
namespace bson = trellis::bson;
namespace sim = trellis::sim;
namespace asio = boost::asio;

namespace {

// One command round trip over OP_MSG.
bson::document run(const std::string& address, bson::document command) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    const auto colon = address.rfind(':');
    socket.connect({asio::ip::make_address(address.substr(0, colon)),
                    static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))});
    std::vector<std::uint8_t> out;
    const std::int32_t id = trellis::wire::next_request_id();
    trellis::wire::encode_op_msg(out, id, 0, 0, command.bytes());
    asio::write(socket, asio::buffer(out));
    trellis::wire::frame_decoder decoder;
    for (;;) {
        if (auto msg = decoder.next()) {
            trellis::wire::check_response_to(*msg, id);
            return bson::document::from_bytes(msg->as_msg()->body);
        }
        auto buffer = decoder.prepare(65536);
        decoder.commit(socket.read_some(asio::buffer(buffer.data(), buffer.size())));
    }
}

bson::document hello() { return bson::make_document(bson::kvp("hello", 1), bson::kvp("$db", "admin")); }

}  // namespace

class SimLibraryTest : public QObject {
    Q_OBJECT

private slots:
    void replica_set_lifecycle() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        cfg.election_delay = 50ms;
        sim::deployment d(cfg);
        const auto started = std::chrono::steady_clock::now();
        d.start();
        QVERIFY(std::chrono::steady_clock::now() - started < 1s);
        const auto members = d.members();
        QCOMPARE(members.size(), std::size_t(3));
        QVERIFY(d.uri().starts_with("mongodb://127.0.0.1:"));
        QVERIFY(d.uri().ends_with("/?replicaSet=rs0"));
        const auto primary = d.primary();
        QVERIFY(primary.has_value());
        QCOMPARE(*primary, members[0]);

        const bson::document h = run(members[1], hello());
        QCOMPARE(h["setName"].get_string(), std::string_view("rs0"));
        QCOMPARE(h["primary"].get_string(), std::string_view(members[0]));
        QCOMPARE(h["secondary"].get_bool(), true);
        QCOMPARE(h["hosts"].get_array().size(), std::size_t(3));

        d.step_down(members[0], 30s);
        const auto next = d.wait_for_primary(5s);
        QVERIFY(next.has_value());
        QVERIFY(*next != members[0]);

        d.kill(*next);
        const auto third = d.wait_for_primary(5s);
        QVERIFY(third.has_value());
        QVERIFY(*third != *next);
        d.restart(*next);
        QVERIFY(d.wait_for_primary(5s).has_value());

        const bson::document status = d.status();
        QCOMPARE(status["members"].get_array().size(), std::size_t(3));
        QCOMPARE(status["primary"].get_string(), std::string_view(*d.primary()));

        const std::string added = d.add_member();
        QCOMPARE(d.members().size(), std::size_t(4));
        QCOMPARE(run(added, hello())["setVersion"].as_int64(), std::int64_t(2));
        d.remove_member(added);
        QCOMPARE(d.members().size(), std::size_t(3));
        QVERIFY_THROWS_EXCEPTION(trellis::error, d.kill("127.0.0.1:1"));
        d.stop();
    }

    void writes_replicate_in_process() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 2;
        sim::deployment d(cfg);
        d.start();
        const auto members = d.members();
        bson::builder insert;
        insert.append("insert", "c").open_array("documents");
        for (int i = 0; i < 5; ++i) insert.open_document().append("i", i).close_document();
        insert.close_array().open_document("writeConcern").append("w", 2).close_document().append("$db", "lib");
        const bson::document reply = run(members[0], insert.extract());
        QCOMPARE(reply["n"].as_int64(), std::int64_t(5));
        QVERIFY(!reply.find("writeConcernError"));
        // w:2 returned, so the secondary has them: count there with a secondary read preference.
        bson::builder count;
        count.append("count", "c").append("$db", "lib").open_document("$readPreference").append("mode", "secondary").close_document();
        QCOMPARE(run(members[1], count.extract())["n"].as_int64(), std::int64_t(5));
    }

    // A retryable write the member already executed is answered from its record, but like
    // mongod it must still wait for the write concern: a retry must not acknowledge
    // w:majority for a write only the primary has (trellis-bench chaos lost such writes).
    // A write that replicates nothing on a set that has written nothing yet (dropping a database
    // that does not exist) is acknowledged at once by w:majority; it used to wait forever.
    void majority_on_a_fresh_set_for_a_write_of_nothing() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        sim::deployment d(cfg);
        d.start();
        QVERIFY(d.wait_for_primary(std::chrono::seconds(10)));
        bson::builder b;
        b.append("dropDatabase", 1).open_document("writeConcern").append("w", "majority").append("wtimeout", 2000).close_document();
        b.append("$db", "never_written");
        const auto started = std::chrono::steady_clock::now();
        const bson::document reply = run(*d.primary(), b.extract());
        QVERIFY2(!reply.find("writeConcernError"), bson::to_json(reply.view()).c_str());
        QCOMPARE(reply["ok"].as_double(), 1.0);
        QVERIFY(std::chrono::steady_clock::now() - started < std::chrono::seconds(1));
        d.stop();
    }

    void retried_write_still_waits_for_write_concern() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        sim::deployment d(cfg);
        d.start();
        const auto members = d.members();
        d.kill(members[1]);
        d.kill(members[2]);
        const trellis::bson::uuid session_id{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
        const auto insert = [&] {
            bson::builder b;
            b.append("insert", "c").open_array("documents").open_document().append("_id", 1).close_document().close_array();
            b.open_document("lsid").append("id", session_id).close_document().append("txnNumber", std::int64_t{1});
            b.open_document("writeConcern").append("w", "majority").append("wtimeout", 200).close_document().append("$db", "lib");
            return b.extract();
        };
        const bson::document first = run(members[0], insert());
        QCOMPARE(first["n"].as_int64(), std::int64_t(1));
        QVERIFY(first.find("writeConcernError"));
        const bson::document retry = run(members[0], insert());
        QVERIFY2(retry.find("writeConcernError"), bson::to_json(retry.view()).c_str());
        QCOMPARE(retry["writeConcernError"].get_document()["code"].as_int64(), std::int64_t(64));  // WriteConcernFailed
        QCOMPARE(retry["n"].as_int64(), std::int64_t(1));                          // the first result, not run again
        // Once a secondary is back and has caught up, the same retry is acknowledged.
        d.restart(members[1]);
        bool acknowledged = false;
        for (int i = 0; i < 50 && !acknowledged; ++i) {
            acknowledged = !run(members[0], insert()).find("writeConcernError");
            if (!acknowledged) QTest::qWait(50);
        }
        QVERIFY(acknowledged);
        d.stop();
    }

    // As mongod, a session keeps the record of its newest retryable write only: a retry of an
    // older txnNumber is refused (TransactionTooOld), not run again; other sessions are untouched.
    void a_session_keeps_its_newest_retry_record_only() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 1;
        sim::deployment d(cfg);
        d.start();
        QVERIFY(d.wait_for_primary(std::chrono::seconds(10)));
        const std::string primary = *d.primary();
        const auto insert = [&](std::uint8_t session, std::int64_t txn, int id) {
            const trellis::bson::uuid lsid{{session, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
            bson::builder b;
            b.append("insert", "c").open_array("documents").open_document().append("_id", id).close_document().close_array();
            b.open_document("lsid").append("id", lsid).close_document().append("txnNumber", txn).append("$db", "lib");
            return run(primary, b.extract());
        };
        QCOMPARE(insert(1, 1, 1)["n"].as_int64(), std::int64_t(1));
        QCOMPARE(insert(1, 1, 1)["n"].as_int64(), std::int64_t(1));  // the record: not run again (no E11000)
        QCOMPARE(insert(2, 1, 2)["n"].as_int64(), std::int64_t(1));  // another session
        QCOMPARE(insert(1, 2, 3)["n"].as_int64(), std::int64_t(1));
        QCOMPARE(insert(1, 2, 3)["n"].as_int64(), std::int64_t(1));
        const bson::document too_old = insert(1, 1, 1);
        QCOMPARE(too_old["ok"].as_double(), 0.0);
        QCOMPARE(too_old["code"].as_int64(), std::int64_t(225));
        QCOMPARE(std::string(too_old["codeName"].get_string()), std::string("TransactionTooOld"));
        QCOMPARE(insert(2, 1, 2)["n"].as_int64(), std::int64_t(1));  // session 2's record is still there
        d.stop();
    }

    // A voter grants its vote only to a candidate at least as up to date as itself. With the
    // freshest survivor in its step-down period, a lagging member must not win: it would
    // roll back a write a majority acknowledged.
    void stale_member_is_not_elected_over_a_majority_write() {
        sim::sim_config cfg;
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        cfg.election_delay = 50ms;
        cfg.members.resize(3);
        cfg.members[2].lag = 30s;  // members[2] never catches up during the test
        sim::deployment d(cfg);
        d.start();
        const auto members = d.members();
        QCOMPARE(d.primary(), std::optional<std::string>(members[0]));
        bson::builder insert;
        insert.append("insert", "c").open_array("documents").open_document().append("_id", 1).close_document().close_array();
        insert.open_document("writeConcern").append("w", "majority").close_document().append("$db", "lib");
        const bson::document reply = run(members[0], insert.extract());
        QCOMPARE(reply["n"].as_int64(), std::int64_t(1));
        QVERIFY(!reply.find("writeConcernError"));  // members[0] and members[1] have it

        d.step_down(members[0], 2s);
        QCOMPARE(d.wait_for_primary(5s), std::optional<std::string>(members[1]));
        d.kill(members[1]);
        // members[2] is electable but behind members[0], whose vote it needs: no primary
        // until members[0]'s step-down period ends, then members[0].
        QTest::qWait(500);
        QCOMPARE(d.primary(), std::nullopt);
        QCOMPARE(d.wait_for_primary(5s), std::optional<std::string>(members[0]));
        bson::builder count;
        count.append("count", "c").append("$db", "lib");
        QCOMPARE(run(members[0], count.extract())["n"].as_int64(), std::int64_t(1));
        d.stop();
    }

    void bad_port_is_a_clear_error() {
        sim::sim_config first;
        sim::deployment a(first);
        a.start();
        sim::sim_config clash;
        const std::string taken = a.members()[0];
        clash.port = static_cast<std::uint16_t>(std::stoi(taken.substr(taken.rfind(':') + 1)));
        sim::deployment b(clash);
        try {
            b.start();
            QFAIL("binding a taken port must fail");
        } catch (const trellis::error& e) {
            QVERIFY2(std::string(e.what()).find("cannot listen on 127.0.0.1:" + taken.substr(taken.rfind(':') + 1)) !=
                         std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(SimLibraryTest)
#include "sim_library_test.moc"
