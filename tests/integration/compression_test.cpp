// OP_COMPRESSED end to end against trellis-sim, with the compressor plugins (snappy, zlib,
// zstd): small and ~8 MiB documents both ways, proved compressed by the reply's compressorId
// (server to client) and the simulator's own byte counts (serverStatus network.compression,
// client to server); the server's first match of the client's list is the one used, through a
// bare connection and through trellis::client; a reply that does not decompress is a
// compression_error, and its connection is closed and never reused.
#include <QtTest/QtTest>

#include <boost/asio.hpp>
#include <mutex>
#include <thread>

#include "connection/establisher.hpp"
#include "pool/connection_pool.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"
#include "wire_helpers.hpp"

namespace asio = boost::asio;
namespace sdk = trellis::sdk;
namespace bson = trellis::bson;
namespace conn = trellis::conn;
using trellis::errc;
using namespace std::chrono_literals;

namespace {

using trellis::test::established;
using trellis::test::ran;
using trellis::test::run;

std::string with(std::string uri, const std::string& option) {
    if (option.empty()) return uri;
    return uri + (uri.find('?') != std::string::npos ? "&" : uri.find('/', 10) != std::string::npos ? "?" : "/?") + option;
}

bson::document big_document(int id, std::size_t size) {
    std::string s;
    s.reserve(size);
    while (s.size() < size) s += "compressible text " + std::to_string(s.size() % 977) + "; ";
    s.resize(size);
    return bson::make_document(bson::kvp("_id", id), bson::kvp("s", s));
}

// serverStatus network.compression.<name>.{compressor,decompressor}.{bytesIn,bytesOut}.
struct counts {
    std::map<std::string, std::array<std::int64_t, 4>> by_name;  // cIn, cOut, dIn, dOut
    std::array<std::int64_t, 4> of(const std::string& name) const { return by_name.at(name); }
};

bson::document fail_point(const char* command, bool on) {
    bson::builder b;
    b.append("configureFailPoint", "failCommand");
    if (on) {
        b.open_document("mode").append("times", 1).close_document();
        b.open_document("data").open_array("failCommands").append(command).close_array()
            .append("corruptCompressedReply", true).close_document();
    } else {
        b.append("mode", "off");
    }
    return b.extract();
}

}  // namespace

class CompressionTest : public QObject {
    Q_OBJECT

    std::shared_ptr<trellis::plugin_registry> registry_ = std::make_shared<trellis::plugin_registry>();
    std::unique_ptr<trellis::sim::deployment> sim_, zstd_zlib_sim_;
    std::shared_ptr<trellis::wire::compressor_registry> compressors_;
    std::vector<trellis::command_event> events_;

    std::shared_ptr<conn::establish_settings> settings_for(const std::string& uri) {
        const auto options = trellis::parse_uri(uri).options;
        auto s = std::make_shared<conn::establish_settings>();
        const auto& server = options.hosts.at(0);
        s->connect = conn::connect_request_for(options, server);
        s->transport = registry_->create_as<sdk::transport>(sdk::plugin_kind::transport, "plain");
        s->connection.address = server.host + ":" + std::to_string(server.port_or_default());
        s->connection.compressors = compressors_;
        s->connection.on_command = [this](const trellis::command_event& e) { events_.push_back(e); };
        s->hello = conn::hello_options_for(options, *compressors_);
        return s;
    }

    established establish(asio::io_context& io, const std::string& uri) { return trellis::test::establish(io, settings_for(uri)); }


    // A command on a fresh uncompressed connection: fail points, serverStatus.
    bson::document admin(trellis::sim::deployment& sim, bson::document cmd) {
        asio::io_context io;
        auto c = establish(io, sim.uri());
        if (c.failure) throw std::runtime_error(c.failure.message);
        auto r = run(io, *c.connection, "admin", std::move(cmd));
        if (r.ec || !r.reply.ok()) throw std::runtime_error("admin command failed: " + r.ec.message() + " " + bson::to_json(r.reply.body));
        return bson::document(r.reply.body);
    }

    counts server_counts(trellis::sim::deployment& sim) {
        const auto status = admin(sim, bson::make_document(bson::kvp("serverStatus", 1)));
        counts out;
        for (const auto& e : status["network"].get_document()["compression"].get_document()) {
            const auto c = e.get_document()["compressor"].get_document();
            const auto d = e.get_document()["decompressor"].get_document();
            out.by_name[std::string(e.key())] = {c["bytesIn"].as_int64(), c["bytesOut"].as_int64(), d["bytesIn"].as_int64(),
                                                 d["bytesOut"].as_int64()};
        }
        return out;
    }

    // The compressors the simulator decompressed requests with between two counts.
    static std::vector<std::string> used(const counts& before, const counts& after) {
        std::vector<std::string> out;
        for (const auto& [name, a] : after.by_name)
            if (a[2] != before.of(name)[2]) out.push_back(name);
        return out;
    }

private slots:
    void initTestCase() {
        compressors_ = std::make_shared<trellis::wire::compressor_registry>(trellis::wire::compressor_registry::with_builtins());
        for (const char* name : {"snappy", "zlib", "zstd"})
            compressors_->add(registry_->create_as<sdk::compressor>(sdk::plugin_kind::compressor, name));
        sim_ = std::make_unique<trellis::sim::deployment>(trellis::sim::sim_config{});
        sim_->start();
        trellis::sim::sim_config limited;
        limited.compressors = {"zstd", "zlib"};
        zstd_zlib_sim_ = std::make_unique<trellis::sim::deployment>(limited);
        zstd_zlib_sim_->start();
    }

    void init() { events_.clear(); }

    void each_compressor_both_ways_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("id");
        QTest::newRow("snappy") << "snappy" << 1;
        QTest::newRow("zlib") << "zlib" << 2;
        QTest::newRow("zstd") << "zstd" << 3;
    }
    void each_compressor_both_ways() {
        QFETCH(QString, name);
        QFETCH(int, id);
        const std::string n = name.toStdString();
        const counts before = server_counts(*sim_);
        asio::io_context io;
        auto c = establish(io, with(sim_->uri(), "compressors=" + n));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        QCOMPARE(c.connection->description().compressor.value_or(""), n);
        const std::size_t big = 8 * 1024 * 1024;
        const std::string coll = "both_ways_" + n;
        for (const auto& doc : {bson::make_document(bson::kvp("_id", 1), bson::kvp("s", "tiny")), big_document(2, big)}) {
            bson::builder ins;
            ins.append("insert", coll).open_array("documents").append(doc.view()).close_array();
            auto r = run(io, *c.connection, "test", ins.extract());
            QVERIFY2(!r.ec, r.ec.message().c_str());
            QVERIFY2(r.reply.ok(), bson::to_json(r.reply.body).c_str());
            QCOMPARE(int(r.reply.message.compressor_id.value_or(255)), id);
            auto f = run(io, *c.connection, "test",
                         bson::make_document(bson::kvp("find", coll), bson::kvp("filter", bson::make_document(bson::kvp("_id", doc["_id"].get_int32())))));
            QVERIFY2(!f.ec, f.ec.message().c_str());
            QCOMPARE(int(f.reply.message.compressor_id.value_or(255)), id);
            const auto batch = f.reply.body["cursor"].get_document()["firstBatch"].get_array();
            QCOMPARE((*batch.begin()).get_document()["s"].get_string(), doc["s"].get_string());
        }
        // The simulator decompressed the 8 MiB request and compressed the 8 MiB reply with it,
        // each to a small fraction; no other compressor was touched.
        const counts after = server_counts(*sim_);
        QCOMPARE(used(before, after), std::vector<std::string>{n});
        const auto a = after.of(n), b = before.of(n);
        QVERIFY(a[3] - b[3] > std::int64_t(big));          // decompressed out
        QVERIFY(a[2] - b[2] < std::int64_t(big / 4));      // compressed in
        QVERIFY(a[0] - b[0] > std::int64_t(big));          // to compress
        QVERIFY(a[1] - b[1] < std::int64_t(big / 4));      // compressed out
        for (const auto& [other, counts_after] : after.by_name)
            if (other != n) QCOMPARE(counts_after, before.of(other));
    }

    void negotiation_takes_the_servers_first_match() {
        struct row {
            trellis::sim::deployment* sim;
            std::string offered;
            std::string expected;  // empty: nothing in common, no compression
        };
        const std::vector<row> rows = {{sim_.get(), "snappy,zstd", "snappy"},
                                       {sim_.get(), "zstd,snappy", "zstd"},
                                       {sim_.get(), "zlib,zstd,snappy", "zlib"},
                                       {zstd_zlib_sim_.get(), "snappy,zstd", "zstd"},
                                       {zstd_zlib_sim_.get(), "snappy,zlib,zstd", "zlib"},
                                       {zstd_zlib_sim_.get(), "snappy", ""}};
        for (const auto& r : rows) {
            const std::string what = r.offered + " -> " + (r.expected.empty() ? "none" : r.expected);
            asio::io_context io;
            const counts before = server_counts(*r.sim);
            auto c = establish(io, with(r.sim->uri(), "compressors=" + r.offered));
            QVERIFY2(!c.failure, c.failure.message.c_str());
            QVERIFY2(c.connection->description().compressor.value_or("") == r.expected, what.c_str());
            auto p = run(io, *c.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
            QVERIFY(!p.ec);
            QVERIFY2(p.reply.message.compressor_id.has_value() == !r.expected.empty(), what.c_str());
            const auto u = used(before, server_counts(*r.sim));
            QVERIFY2(u == (r.expected.empty() ? std::vector<std::string>{} : std::vector<std::string>{r.expected}), what.c_str());
        }
    }

    void client_uses_the_negotiated_compressor() {
        for (auto [sim, expected] : {std::pair{sim_.get(), "snappy"}, std::pair{zstd_zlib_sim_.get(), "zstd"}}) {
            const counts before = server_counts(*sim);
            trellis::client_settings settings;
            settings.registry = registry_;
            try {
                trellis::client client(with(sim->uri(), "compressors=snappy,zstd&serverSelectionTimeoutMS=5000"), settings);
                client.run_command("e2e", bson::make_document(bson::kvp("insert", "c"),
                                                              bson::kvp("documents", bson::make_array(big_document(1, 1024 * 1024).view()))));
                const auto reply = client.run_command("e2e", bson::make_document(bson::kvp("count", "c")));
                QCOMPARE(reply["n"].as_int64(), std::int64_t(1));
            } catch (const std::exception& e) {
                QFAIL(e.what());
            }
            QCOMPARE(used(before, server_counts(*sim)), std::vector<std::string>{expected});
        }
    }

    void corrupt_reply_closes_the_connection_data() { each_compressor_both_ways_data(); }
    void corrupt_reply_closes_the_connection() {
        QFETCH(QString, name);
        const std::string n = name.toStdString();
        asio::io_context io;
        auto c = establish(io, with(sim_->uri(), "compressors=" + n));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        admin(*sim_, fail_point("ping", true));
        auto r = run(io, *c.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
        QCOMPARE(r.ec, trellis::make_error_code(errc::compression_error));
        QVERIFY(c.connection->is_perished());
        const std::string why = c.connection->last_error();
        QVERIFY2(why.find("compressor \"" + n + "\"") != std::string::npos || why.find(n + ": invalid compressed data") != std::string::npos,
                 why.c_str());
        QVERIFY2(why.find(c.connection->address()) == 0, why.c_str());
        const auto& failed = std::get<trellis::command_failed_event>(events_.back());
        QCOMPARE(failed.code, trellis::make_error_code(errc::compression_error));
        // The connection is done for: the next command fails at once, naming the cause.
        auto again = run(io, *c.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
        QCOMPARE(again.ec, trellis::make_error_code(errc::connection_failure));
    }

    void pool_does_not_reuse_a_corrupted_connection() {
        asio::io_context io;
        auto s = settings_for(with(sim_->uri(), "compressors=zstd"));
        std::vector<std::string> cmap;
        std::vector<std::int64_t> closed_for_error;
        trellis::pool::pool_config cfg;
        cfg.address = s->connection.address;
        cfg.establisher = conn::make_pool_establisher(io.get_executor(), s);
        cfg.on_event = [&](const trellis::cmap_event& e) {
            cmap.emplace_back(trellis::event_name(e));
            if (const auto* c = std::get_if<trellis::connection_closed_event>(&e))
                if (c->reason == trellis::connection_closed_reason::error) closed_for_error.push_back(c->connection_id);
        };
        cfg.maintenance_interval.reset();
        trellis::pool::connection_pool pool(io.get_executor(), std::move(cfg));
        pool.ready();
        admin(*sim_, fail_point("ping", true));
        std::vector<ran> results;
        // Two pings one after the other, each on a checked-out connection, checked back in.
        std::function<void()> ping = [&] {
            pool.async_check_out([&](std::error_code ec, trellis::pool::checked_out_connection c) {
                QVERIFY(!ec);
                auto* connection = static_cast<conn::connection*>(c.get());
                conn::command_request req;
                req.database = "admin";
                req.command = bson::make_document(bson::kvp("ping", 1));
                connection->async_run_command(std::move(req), [&, c = std::move(c)](std::error_code e, conn::command_reply reply) mutable {
                    results.push_back({e, std::move(reply)});
                    c.reset();  // checked back in
                    if (results.size() < 2) ping();
                });
            });
        };
        ping();
        std::thread stopper([&] {
            std::this_thread::sleep_for(1500ms);
            pool.close();
        });
        io.run_for(4s);
        stopper.join();
        QCOMPARE(results.size(), std::size_t(2));
        QCOMPARE(results[0].ec, trellis::make_error_code(errc::compression_error));
        QVERIFY(!results[1].ec);
        QVERIFY(results[1].reply.ok());
        QCOMPARE(int(results[1].reply.message.compressor_id.value_or(255)), 3);
        // The first connection was closed for its error at check-in; a second one was made.
        QCOMPARE(closed_for_error, std::vector<std::int64_t>{1});
        QCOMPARE(std::count(cmap.begin(), cmap.end(), "ConnectionCreated"), 2L);
        // Command events: the failed ping on connection 1, the good one on connection 2.
        std::vector<std::int64_t> ping_connections;
        for (const auto& e : events_)
            if (const auto* st = std::get_if<trellis::command_started_event>(&e); st && st->command_name == "ping")
                ping_connections.push_back(st->connection_id);
        QCOMPARE(ping_connections, (std::vector<std::int64_t>{1, 2}));
    }

    void client_reports_a_corrupt_reply_and_carries_on() {
        std::mutex m;
        std::vector<std::int64_t> closed;
        std::vector<std::int64_t> ping_connections;
        trellis::client_settings settings;
        settings.registry = registry_;
        settings.on_cmap = [&](const trellis::cmap_event& e) {
            // Perished (error), or stale: SDAM clears the pool for the failure before check-in.
            if (const auto* c = std::get_if<trellis::connection_closed_event>(&e);
                c && (c->reason == trellis::connection_closed_reason::error || c->reason == trellis::connection_closed_reason::stale)) {
                std::lock_guard lock(m);
                closed.push_back(c->connection_id);
            }
        };
        settings.on_command = [&](const trellis::command_event& e) {
            if (const auto* st = std::get_if<trellis::command_started_event>(&e); st && st->command_name == "ping") {
                std::lock_guard lock(m);
                ping_connections.push_back(st->connection_id);
            }
        };
        // SDAM handles the failure as a network error: the server is Unknown until the next
        // heartbeat (no immediate check, as the spec says), so heartbeats come often here.
        trellis::client client(with(sim_->uri(), "compressors=snappy&serverSelectionTimeoutMS=10000&heartbeatFrequencyMS=500"),
                               settings);
        QVERIFY(client.run_command("admin", bson::make_document(bson::kvp("ping", 1)))["ok"].as_bool());
        admin(*sim_, fail_point("ping", true));
        try {
            client.run_command("admin", bson::make_document(bson::kvp("ping", 1)));
            QFAIL("a reply that does not decompress was accepted");
        } catch (const trellis::protocol_error& e) {
            QCOMPARE(e.code(), trellis::make_error_code(errc::compression_error));
            QVERIFY2(std::string(e.what()).find("snappy") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("truncated") != std::string::npos, e.what());
        } catch (const std::exception& e) {
            QFAIL((std::string("not a protocol_error: ") + e.what()).c_str());
        }
        try {
            QVERIFY(client.run_command("admin", bson::make_document(bson::kvp("ping", 1)))["ok"].as_bool());
        } catch (const std::exception& e) {
            QFAIL((std::string("after the corrupt reply: ") + e.what()).c_str());
        }
        std::lock_guard lock(m);
        QCOMPARE(ping_connections.size(), std::size_t(3));
        QCOMPARE(ping_connections[0], ping_connections[1]);  // the pooled connection, reused once
        QVERIFY(ping_connections[2] != ping_connections[1]);  // then never again
        QVERIFY(std::find(closed.begin(), closed.end(), ping_connections[1]) != closed.end());
    }

    void cleanupTestCase() {
        sim_->stop();
        zstd_zlib_sim_->stop();
    }
};

QTEST_GUILESS_MAIN(CompressionTest)
#include "compression_test.moc"
