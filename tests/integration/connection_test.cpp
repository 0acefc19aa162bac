// Connections against trellis-sim: the establisher (transport plugin, initial hello over
// OP_QUERY, authentication), commands over OP_MSG, compression with the zlib plugin, exhaust
// replies, socket and connect timeouts, wire-version checks, command monitoring with redaction,
// TLS from URI options, and the CMAP pool driving the real establisher.
#include <QtTest/QtTest>

#include <QTemporaryDir>
#include <boost/asio.hpp>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <thread>

#include "connection/establisher.hpp"
#include "pool/connection_pool.hpp"
#include "test_pki.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sim/deployment.hpp"
#include "trellis/uri.hpp"
#include "wire/bytes.hpp"
#include "wire/codec.hpp"
#include "wire/frame_decoder.hpp"
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

// Answers the handshake, then every command with `reply` (an OP_MSG body), written in pieces of
// 32 KB with a pause after each, as a slow network hands over a large reply. One connection.
class slow_replier {
public:
    explicit slow_replier(bson::document reply)
        : reply_(std::move(reply)), acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        address_ = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
        thread_ = std::thread([this] { serve(); });
    }
    // The client hangs up first (it is destroyed before this), which ends serve(); if it never
    // connected, a connection of our own ends the wait in accept().
    ~slow_replier() {
        if (!accepted_) {
            boost::system::error_code ignored;
            asio::ip::tcp::socket poke(io_);
            poke.connect(acceptor_.local_endpoint(), ignored);
        }
        thread_.join();
    }
    std::string uri() const { return "mongodb://" + address_ + "/?directConnection=true"; }

private:
    void serve() {
        boost::system::error_code ec;
        socket_.emplace(acceptor_.accept(ec));
        accepted_ = true;
        if (ec) return;
        for (;;) {
            std::vector<std::uint8_t> frame(4);
            asio::read(*socket_, asio::buffer(frame), ec);
            if (ec) return;
            const auto length = trellis::wire::load_le<std::int32_t>(frame.data());
            if (length < 16 || length > 48'000'000) return;
            frame.resize(static_cast<std::size_t>(length));
            asio::read(*socket_, asio::buffer(frame.data() + 4, frame.size() - 4), ec);
            if (ec) return;
            const auto m = trellis::wire::decode_message(frame);
            std::vector<std::uint8_t> out;
            if (m.as_query()) {  // the handshake's hello
                const auto hello = bson::make_document(
                    bson::kvp("ok", 1), bson::kvp("isWritablePrimary", true), bson::kvp("minWireVersion", 0),
                    bson::kvp("maxWireVersion", 21), bson::kvp("maxBsonObjectSize", 16 * 1024 * 1024),
                    bson::kvp("maxMessageSizeBytes", 48'000'000), bson::kvp("maxWriteBatchSize", 100'000));
                trellis::wire::op_reply r;
                r.documents.push_back(hello.bytes());
                trellis::wire::encode_op_reply(out, 1, m.header.request_id, r);
                asio::write(*socket_, asio::buffer(out), ec);
                continue;
            }
            trellis::wire::encode_op_msg(out, 2, m.header.request_id, 0, reply_.bytes());
            for (std::size_t at = 0; at < out.size() && !ec; at += 32 * 1024) {
                asio::write(*socket_, asio::buffer(out.data() + at, std::min<std::size_t>(32 * 1024, out.size() - at)), ec);
                std::this_thread::sleep_for(1ms);
            }
            if (ec) return;
        }
    }

    bson::document reply_;
    asio::io_context io_;
    asio::ip::tcp::acceptor acceptor_;
    std::optional<asio::ip::tcp::socket> socket_;
    std::atomic<bool> accepted_{false};
    std::string address_;
    std::thread thread_;
};

// A find reply of 20,000 small documents (about 1 MB); the string of document `broken`, if any,
// holds a byte that is not UTF-8. Returns the body and the offset of that byte.
std::pair<bson::document, std::size_t> large_reply(std::optional<int> broken = std::nullopt) {
    bson::builder b;
    b.append("ok", 1);
    b.open_document("cursor").append("id", std::int64_t{0}).append("ns", "test.x").open_array("firstBatch");
    for (int i = 0; i < 20'000; ++i) {
        b.open_document();
        b.append("i", i).append("s", "caf\u00e9 au lait, number " + std::to_string(i));
        b.close_document();
    }
    b.close_array().close_document();
    bson::document body = b.extract();
    if (!broken) return {std::move(body), 0};
    auto bytes = std::vector<std::uint8_t>(body.bytes().begin(), body.bytes().end());
    const std::string needle = "number " + std::to_string(*broken);
    const auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
    const auto at = static_cast<std::size_t>(it - bytes.begin());
    bytes[at] = 0xFF;
    return {bson::document::from_bytes(bytes, {.max_depth = 200, .max_size = 0x7FFFFFFF, .check_utf8 = false}), at};
}

// Where a command parks its I/O (connection/deferred_io.hpp), as a blocking caller: the test's
// thread performs it, then resumes the connection.
class test_parking final : public conn::io_parking {
public:
    test_parking() : wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
    ~test_parking() { ::close(wake_fd); }
    bool wants_io() const noexcept override { return true; }
    void park(std::shared_ptr<conn::deferred_io> io) override {
        parked = std::move(io);
        ++parks;
    }
    void wake() noexcept override {
        ++wakes;
        const std::uint64_t one = 1;
        (void)!::write(wake_fd, &one, sizeof one);
    }

    const int wake_fd;
    std::shared_ptr<conn::deferred_io> parked;
    int parks = 0;
    std::atomic<int> wakes{0};
};

// The command with its I/O parked at `p`. `perform`: whether this thread does the I/O (if not,
// the resume does it the usual way); `meanwhile` runs beside the I/O, on a thread that may run
// the io_context, and is joined before the resume.
ran run_parked(asio::io_context& io, conn::connection& c, test_parking& p, const std::string& db, bson::document cmd,
               bool perform = true, std::function<void()> meanwhile = {}) {
    std::optional<ran> out;
    conn::command_request r;
    r.database = db;
    r.command = std::move(cmd);
    r.parking = &p;
    c.async_run_command(std::move(r), [&out](std::error_code ec, conn::command_reply reply) { out = ran{ec, std::move(reply)}; });
    io.restart();
    while (!p.parked && !out && io.run_one() != 0) {
    }
    if (auto parked = std::exchange(p.parked, nullptr)) {
        std::thread side;
        if (meanwhile) side = std::thread(meanwhile);
        if (perform) parked->perform(p.wake_fd);
        if (side.joinable()) side.join();
        io.restart();
        parked->resume();
    }
    while (!out && io.run_one() != 0) {
    }
    return out.value_or(ran{make_error_code(errc::protocol_error), {}});  // never completed: a failure of the test
}

// PLAIN over saslStart: enough of a conversation to prove the authentication hook, its
// failures and the redaction of its commands.
class plain_conversation final : public sdk::auth_conversation {
public:
    plain_conversation(std::string user, std::string password) : user_(std::move(user)), password_(std::move(password)) {}
    void async_run(sdk::auth_connection& c, asio::any_completion_handler<void(sdk::auth_failure)> handler) override {
        payload_ = std::string(1, '\0') + user_ + '\0' + password_;
        const auto* p = reinterpret_cast<const std::uint8_t*>(payload_.data());
        bson::builder b;
        b.append("saslStart", 1).append("mechanism", "PLAIN").append("payload", bson::binary{0, {p, payload_.size()}});
        c.async_run_command("admin", b.extract(), [h = std::move(handler)](std::error_code ec, bson::document reply) mutable {
            if (ec) return std::move(h)(sdk::auth_failure{ec, 0, "network error"});
            const auto ok = reply.find("ok");
            if (ok && ok->as_double() == 1.0) return std::move(h)(sdk::auth_failure{});
            const auto code = reply.find("code");
            const auto msg = reply.find("errmsg");
            std::move(h)(sdk::auth_failure{make_error_code(errc::authentication_failed),
                                           code ? static_cast<int>(code->as_int64()) : 0,
                                           msg ? std::string(msg->get_string()) : "no errmsg"});
        });
    }

private:
    std::string user_, password_, payload_;
};

}  // namespace

class ConnectionTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    trellis::plugin_registry registry_;
    std::unique_ptr<trellis::sim::deployment> sim_, tls_sim_;
    std::shared_ptr<trellis::wire::compressor_registry> compressors_;
    std::vector<trellis::command_event> events_;

    std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

    std::shared_ptr<conn::establish_settings> settings_for(std::string uri, const std::string& option = "") {
        if (!option.empty()) uri += (uri.find('?') == std::string::npos ? (uri.find('/', 10) == std::string::npos ? "/?" : "?") : "&") + option;
        const auto options = trellis::parse_uri(uri).options;
        auto s = std::make_shared<conn::establish_settings>();
        const auto& server = options.hosts.at(0);
        s->connect = conn::connect_request_for(options, server);
        s->transport = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, s->connect.tls.enabled ? "tls" : "plain");
        s->connection.address = server.host + ":" + std::to_string(server.port_or_default());
        s->connection.socket_timeout = options.socket_timeout;
        s->connection.compressors = compressors_;
        s->connection.on_command = [this](const trellis::command_event& e) { events_.push_back(e); };
        s->hello = conn::hello_options_for(options, *compressors_);
        return s;
    }

    established establish(asio::io_context& io, std::shared_ptr<const conn::establish_settings> s) {
        return trellis::test::establish(io, std::move(s));
    }


    // A command on a fresh connection of its own (fail points).
    void admin(const bson::document& cmd) {
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri()));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        auto r = run(io, *c.connection, "admin", cmd);
        QVERIFY(!r.ec);
        QVERIFY2(r.reply.ok(), bson::to_json(r.reply.body).c_str());
    }

    // The sim holds the reply to the next count for 1.5 s.
    void hold_next_count_for_1500ms() {
        admin(bson::make_document(
            bson::kvp("configureFailPoint", "failCommand"), bson::kvp("mode", bson::make_document(bson::kvp("times", 1))),
            bson::kvp("data", bson::make_document(bson::kvp("failCommands", bson::make_array("count")),
                                                  bson::kvp("blockConnection", true), bson::kvp("blockTimeMS", 1500)))));
    }

private slots:
    void initTestCase() {
        compressors_ = std::make_shared<trellis::wire::compressor_registry>(trellis::wire::compressor_registry::with_builtins());
        compressors_->add(registry_.create_as<sdk::compressor>(sdk::plugin_kind::compressor, "zlib"));
        sim_ = std::make_unique<trellis::sim::deployment>(trellis::sim::sim_config{});
        sim_->start();

        trellis::test::make_test_pki(dir_.path());
        trellis::sim::sim_config tls;
        tls.tls.cert_file = path("server.pem");
        tls.tls.key_file = path("server.key");
        tls.tls.ca_file = path("ca.pem");
        tls_sim_ = std::make_unique<trellis::sim::deployment>(tls);
        tls_sim_->start();
    }

    void init() { events_.clear(); }

    void handshake_fills_the_description() {
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri(), "appname=conntest"));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        const auto& d = c.connection->description();
        QCOMPARE(d.max_wire_version, 21);
        QCOMPARE(d.max_bson_object_size, 16 * 1024 * 1024);
        QCOMPARE(d.max_message_size_bytes, 48'000'000);
        QVERIFY(d.hello_ok);
        QVERIFY(d.server_connection_id.has_value());
        QVERIFY(!d.compressor);  // none asked for
        // The first command was the legacy hello; its events carry the pool's connection id.
        QCOMPARE(events_.size(), std::size_t(2));
        const auto& started = std::get<trellis::command_started_event>(events_[0]);
        QCOMPARE(started.command_name, std::string("isMaster"));
        QVERIFY(started.command.find("helloOk").has_value());
        QCOMPARE(started.command["client"].get_document()["application"].get_document()["name"].get_string(),
                 std::string_view("conntest"));
        QCOMPARE(started.connection_id, std::int64_t(1));
        const auto& ok = std::get<trellis::command_succeeded_event>(events_[1]);
        QCOMPARE(ok.request_id, started.request_id);
        QVERIFY(ok.duration.count() > 0);

        auto r = run(io, *c.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
        QVERIFY(!r.ec);
        QVERIFY(r.reply.ok());
        QVERIFY(r.reply.message.as_msg() != nullptr);  // OP_MSG after the handshake
        const auto& ping = std::get<trellis::command_started_event>(events_[2]);
        QCOMPARE(ping.command["$db"].get_string(), std::string_view("admin"));
        QVERIFY(ping.server_connection_id == d.server_connection_id);
    }

    void app_name_reaches_the_server() {
        // failCommand with appName applies only to connections whose handshake named it.
        admin(bson::make_document(
            bson::kvp("configureFailPoint", "failCommand"), bson::kvp("mode", bson::make_document(bson::kvp("times", 1))),
            bson::kvp("data", bson::make_document(bson::kvp("failCommands", bson::make_array("ping")),
                                                  bson::kvp("appName", "marked"), bson::kvp("errorCode", 2)))));
        asio::io_context io;
        auto plain = establish(io, settings_for(sim_->uri()));
        QVERIFY(run(io, *plain.connection, "admin", bson::make_document(bson::kvp("ping", 1))).reply.ok());
        auto marked = establish(io, settings_for(sim_->uri(), "appname=marked"));
        auto r = run(io, *marked.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
        QVERIFY(!r.ec);
        QVERIFY(!r.reply.ok());
        QCOMPARE(r.reply.body["code"].as_int64(), std::int64_t(2));
        // ok: 0 is a CommandFailed event with the server's code, and no error for the caller.
        const auto& failed = std::get<trellis::command_failed_event>(events_.back());
        QCOMPARE(failed.server_code, 2);
        QVERIFY(failed.code == errc::operation_failure);
        QVERIFY(!marked.connection->is_perished());
    }

    void zlib_compression_is_negotiated_and_used() {
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri(), "compressors=zlib"));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        QCOMPARE(c.connection->description().compressor.value_or(""), std::string("zlib"));
        // A large document both ways, compressed both ways.
        const std::string big(200'000, 'x');
        bson::builder doc;
        doc.append("_id", 1).append("blob", big);
        bson::builder ins;
        ins.append("insert", "compressed").open_array("documents").append(doc.view()).close_array();
        auto r = run(io, *c.connection, "test", ins.extract());
        QVERIFY(!r.ec);
        QVERIFY2(r.reply.ok(), bson::to_json(r.reply.body).c_str());
        QCOMPARE(r.reply.message.compressor_id.value_or(255), std::uint8_t(2));
        auto f = run(io, *c.connection, "test", bson::make_document(bson::kvp("find", "compressed")));
        QVERIFY(!f.ec);
        QCOMPARE(f.reply.message.compressor_id.value_or(255), std::uint8_t(2));
        const auto first = f.reply.body["cursor"].get_document()["firstBatch"].get_array().begin();
        QCOMPARE((*first).get_document()["blob"].get_string().size(), big.size());
    }

    void an_unknown_compressor_is_not_offered() {
        std::vector<std::string> warnings;
        const auto options = trellis::parse_uri("mongodb://h/?compressors=snappy,zlib").options;
        const auto h = conn::hello_options_for(options, *compressors_, &warnings);
        QCOMPARE(h.compressors, std::vector<std::string>{"zlib"});
        QCOMPARE(warnings.size(), std::size_t(1));
        QVERIFY(warnings[0].find("snappy") != std::string::npos);
    }

    void exhaust_hello_streams_replies() {
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri()));
        QVERIFY(!c.failure);
        auto first = run(io, *c.connection, "admin", bson::make_document(bson::kvp("hello", 1)));
        const auto tv = bson::document(first.reply.body["topologyVersion"].get_document());
        conn::command_request r;
        r.database = "admin";
        r.command = bson::make_document(bson::kvp("hello", 1), bson::kvp("topologyVersion", tv.view()),
                                        bson::kvp("maxAwaitTimeMS", 100));
        r.exhaust_allowed = true;
        ran streamed;
        c.connection->async_run_command(std::move(r), [&](std::error_code ec, conn::command_reply reply) {
            streamed = {ec, std::move(reply)};
        });
        io.restart();
        io.run();
        QVERIFY(!streamed.ec);
        QVERIFY(streamed.reply.more_to_come);
        // Two more replies arrive without another request, each about maxAwaitTimeMS later.
        for (int i = 0; i < 2; ++i) {
            ran more;
            const auto t0 = std::chrono::steady_clock::now();
            c.connection->async_read_more(2000ms, [&](std::error_code ec, conn::command_reply reply) { more = {ec, std::move(reply)}; });
            io.restart();
            io.run();
            QVERIFY2(!more.ec, more.ec.message().c_str());
            QVERIFY(more.reply.ok());
            QVERIFY(more.reply.more_to_come);
            QVERIFY(std::chrono::steady_clock::now() - t0 >= 50ms);
        }
        // While the stream is open, sending a command is refused (the replies would interleave).
        auto refused = run(io, *c.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
        QVERIFY(refused.ec == errc::protocol_error);
    }

    void socket_timeout_closes_the_connection() {
        hold_next_count_for_1500ms();
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri(), "socketTimeoutMS=200"));
        QVERIFY(!c.failure);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = run(io, *c.connection, "test", bson::make_document(bson::kvp("count", "x")));
        const auto took = std::chrono::steady_clock::now() - t0;
        QVERIFY(r.ec == errc::network_timeout);
        QVERIFY2(took >= 190ms && took < 1200ms, std::to_string(took.count()).c_str());
        QVERIFY(c.connection->is_perished());
        QVERIFY2(c.connection->last_error().find("socket timeout of 200 ms") != std::string::npos, c.connection->last_error().c_str());
        QVERIFY(std::get<trellis::command_failed_event>(events_.back()).code == errc::network_timeout);
        // A perished connection refuses further commands with a clear error.
        auto again = run(io, *c.connection, "admin", bson::make_document(bson::kvp("ping", 1)));
        QVERIFY(again.ec == errc::connection_failure);
    }

    void connect_timeout_bounds_the_handshake() {
        // A listener that accepts and never answers: the hello waits for connect_timeout.
        asio::io_context io;
        asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
        asio::ip::tcp::socket accepted(io);
        silent.async_accept(accepted, [](const boost::system::error_code&) {});
        const auto uri = "mongodb://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/?connectTimeoutMS=300";
        const auto t0 = std::chrono::steady_clock::now();
        auto c = establish(io, settings_for(uri));
        const auto took = std::chrono::steady_clock::now() - t0;
        QVERIFY(c.failure.code == errc::network_timeout);
        QVERIFY(!c.connection);
        QVERIFY2(took >= 290ms && took < 2000ms, std::to_string(took.count()).c_str());
        QVERIFY2(c.failure.message.find("127.0.0.1:") != std::string::npos, c.failure.message.c_str());
        // A timeout during the hello may be an overloaded server (the CMAP spec's labels).
        QCOMPARE(c.failure.error_labels, (std::vector<std::string>{"SystemOverloadedError", "RetryableError"}));
    }

    // Issue #15: which establishment failures carry the backpressure labels, and how they travel
    // through the pool's error code.
    void backpressure_labels_of_establishment_failures() {
        const std::vector<std::string> both{"SystemOverloadedError", "RetryableError"};
        asio::io_context io;
        // Accepted, then closed before the hello is answered: a network error during the hello.
        asio::ip::tcp::acceptor closing(io, {asio::ip::make_address("127.0.0.1"), 0});
        asio::ip::tcp::socket accepted(io);
        closing.async_accept(accepted, [&](const boost::system::error_code& ec) {
            if (!ec) accepted.close();
        });
        auto c = establish(io, settings_for("mongodb://127.0.0.1:" + std::to_string(closing.local_endpoint().port())));
        QVERIFY(c.failure.code == errc::connection_failure);
        QCOMPARE(c.failure.error_labels, both);
        // Through the pool: the code keeps the labels and turns back into the plain kind.
        const auto pooled = conn::pool_error_of(c.failure);
        QCOMPARE(conn::backpressure_labels(pooled), both);
        QVERIFY(conn::without_labels(pooled) == errc::connection_failure);
        QVERIFY(!pooled.message().empty());

        // A name that cannot be resolved is never an overloaded server.
        auto dns = establish(io, settings_for("mongodb://no-such-host.invalid:27017/?connectTimeoutMS=5000"));
        QVERIFY(dns.failure);
        QVERIFY2(dns.failure.error_labels.empty(), dns.failure.message.c_str());
        QCOMPARE(conn::pool_error_of(dns.failure), dns.failure.code);
        QVERIFY(conn::backpressure_labels(dns.failure.code).empty());

        // The server refuses the hello as overloaded: its own labels travel.
        admin(bson::make_document(
            bson::kvp("configureFailPoint", "failCommand"), bson::kvp("mode", bson::make_document(bson::kvp("times", 1))),
            bson::kvp("data", bson::make_document(bson::kvp("failCommands", bson::make_array("isMaster")),
                                                  bson::kvp("appName", "shed"), bson::kvp("errorCode", 462),
                                                  bson::kvp("errorLabels", bson::make_array("SystemOverloadedError"))))));
        auto shed = establish(io, settings_for(sim_->uri(), "appname=shed"));
        QVERIFY(shed.failure.code == errc::operation_failure);
        QCOMPARE(shed.failure.error_labels, std::vector<std::string>{"SystemOverloadedError"});
        QCOMPARE(conn::backpressure_labels(conn::pool_error_of(shed.failure)), std::vector<std::string>{"SystemOverloadedError"});
    }

    void refused_connection_names_the_server() {
        asio::io_context io;
        asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
        const auto port = probe.local_endpoint().port();
        probe.close();
        auto c = establish(io, settings_for("mongodb://127.0.0.1:" + std::to_string(port)));
        QVERIFY(c.failure.code == errc::connection_failure);
        QVERIFY2(c.failure.message.find("127.0.0.1:" + std::to_string(port)) != std::string::npos, c.failure.message.c_str());
    }

    void incompatible_wire_versions_are_refused() {
        for (const auto& [min, max, expect] : {std::tuple{0, 5, "requires at least 6"}, std::tuple{26, 27, "requires wire version 26"}}) {
            trellis::sim::sim_config cfg;
            cfg.min_wire_version = min;
            cfg.max_wire_version = max;
            trellis::sim::deployment old(cfg);
            old.start();
            asio::io_context io;
            auto c = establish(io, settings_for(old.uri()));
            QVERIFY(c.failure.code == errc::incompatible_server);
            QVERIFY2(c.failure.message.find(expect) != std::string::npos && c.failure.message.find(old.members()[0]) != std::string::npos,
                     c.failure.message.c_str());
            old.stop();
        }
    }

    void authentication_and_redaction() {
        trellis::sim::sim_config cfg;
        cfg.users.push_back({"alice", "wonderland", "admin"});
        trellis::sim::deployment secured(cfg);
        secured.start();
        asio::io_context io;
        auto s = settings_for(secured.uri());
        s->authenticate = [] { return std::make_unique<plain_conversation>("alice", "wonderland"); };
        auto c = establish(io, s);
        QVERIFY2(!c.failure, c.failure.message.c_str());
        // saslStart is redacted: empty command and reply.
        bool seen = false;
        for (const auto& e : events_)
            if (const auto* st = std::get_if<trellis::command_started_event>(&e); st && st->command_name == "saslStart") {
                seen = true;
                QVERIFY(st->command.view().empty());
            } else if (const auto* ok = std::get_if<trellis::command_succeeded_event>(&e); ok && ok->command_name == "saslStart") {
                QVERIFY(ok->reply.view().empty());
            }
        QVERIFY(seen);

        s->authenticate = [] { return std::make_unique<plain_conversation>("alice", "looking-glass"); };
        auto bad = establish(io, s);
        QVERIFY(bad.failure.code == errc::authentication_failed);
        QVERIFY(bad.failure.error_labels.empty());  // never labelled after the hello
        QVERIFY(!bad.connection);
        QVERIFY2(bad.failure.message.find("authentication failed") != std::string::npos &&
                     bad.failure.message.find("code 18") != std::string::npos,
                 bad.failure.message.c_str());
        QVERIFY(std::get<trellis::command_failed_event>(events_.back()).failure.empty());  // redacted
    }

    void tls_from_uri_options() {
        const std::string base = "mongodb://" + tls_sim_->members()[0] + "/?tls=true";
        asio::io_context io;
        auto good = establish(io, settings_for(base + "&tlsCAFile=" + path("ca.pem")));
        QVERIFY2(!good.failure, good.failure.message.c_str());
        QVERIFY(good.connection->stream().description().find("TLS") != std::string::npos);
        QVERIFY(run(io, *good.connection, "admin", bson::make_document(bson::kvp("ping", 1))).reply.ok());

        auto other = establish(io, settings_for(base + "&tlsCAFile=" + path("other-ca.pem")));
        QVERIFY(other.failure.code == errc::connection_failure);
        QVERIFY2(other.failure.message.find("certificate verify failed") != std::string::npos, other.failure.message.c_str());
        // A refused certificate is no sign of overload: no backpressure labels (CMAP).
        QVERIFY(other.failure.error_labels.empty());

        auto insecure = establish(io, settings_for(base + "&tlsCAFile=" + path("other-ca.pem") + "&tlsInsecure=true"));
        QVERIFY2(!insecure.failure, insecure.failure.message.c_str());
    }

    // A command started from the connection's own executor starts in the call (its started
    // event and its bytes go out before the call returns); a completion during the start
    // (here: the connection is busy) still comes after the call, never inside it.
    void a_command_started_on_its_executor_starts_at_once() {
        asio::io_context io{1};
        auto c = establish(io, settings_for(sim_->uri()));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        events_.clear();
        bool in_call = false, ping_inside = false, busy_inside = false;
        std::size_t events_in_call = 0;
        ran ping, busy;
        asio::post(io, [&] {
            const auto request = [] {
                conn::command_request r;
                r.database = "admin";
                r.command = bson::make_document(bson::kvp("ping", 1));
                return r;
            };
            in_call = true;
            c.connection->async_run_command(request(), [&](std::error_code ec, conn::command_reply reply) {
                ping_inside = in_call;
                ping = {ec, std::move(reply)};
            });
            events_in_call = events_.size();
            c.connection->async_run_command(request(), [&](std::error_code ec, conn::command_reply reply) {
                busy_inside = in_call;
                busy = {ec, std::move(reply)};
            });
            in_call = false;
        });
        io.restart();
        io.run();
        QCOMPARE(events_in_call, std::size_t(1));  // started in the call
        QVERIFY(std::holds_alternative<trellis::command_started_event>(events_.at(0)));
        QVERIFY(!ping.ec);
        QVERIFY(ping.reply.ok());
        QCOMPARE(busy.ec, make_error_code(errc::connection_failure));
        QVERIFY(!ping_inside);
        QVERIFY(!busy_inside);
    }

    void a_large_reply_is_checked_as_it_arrives() {
        // Checked between the reads of its pieces (the connection validates a reply that takes
        // several reads as it comes): a good one is taken whole; a bad byte early or late in it
        // is refused with the same report as a reply checked at once.
        {
            const auto [body, unused] = large_reply();
            slow_replier server(body);
            asio::io_context io;
            auto c = establish(io, settings_for(server.uri()));
            QVERIFY2(!c.failure, c.failure.message.c_str());
            for (int round = 0; round < 2; ++round) {
                auto r = run(io, *c.connection, "test", bson::make_document(bson::kvp("find", "x")));
                QVERIFY2(!r.ec, c.connection->last_error().c_str());
                QVERIFY(r.reply.body == body.view());
            }
        }
        for (const int broken : {100, 19'000}) {
            const auto [body, at] = large_reply(broken);
            const auto expected = bson::find_error(body.bytes());
            QVERIFY(expected);
            QCOMPARE(expected->offset, at);
            slow_replier server(body);
            asio::io_context io;
            auto c = establish(io, settings_for(server.uri()));
            QVERIFY2(!c.failure, c.failure.message.c_str());
            auto r = run(io, *c.connection, "test", bson::make_document(bson::kvp("find", "x")));
            QCOMPARE(r.ec, make_error_code(errc::bson_invalid));
            const std::string why = c.connection->last_error();
            QVERIFY2(why.find("bad reply") != std::string::npos && why.find(expected->message) != std::string::npos &&
                         why.find("at byte " + std::to_string(at)) != std::string::npos,
                     why.c_str());
            QVERIFY(c.connection->is_perished());
        }
    }

    // A blocking caller's thread does the command's I/O (deferred_io.hpp): the connection parks
    // after encoding, the caller writes and reads with the stream's non-blocking calls, and the
    // resume completes the command as a read on the io_context would.
    void parked_io_is_done_by_the_caller() {
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri()));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        for (int round = 0; round < 3; ++round) {
            test_parking p;
            events_.clear();
            auto r = run_parked(io, *c.connection, p, "admin", bson::make_document(bson::kvp("ping", 1)));
            QVERIFY2(!r.ec, c.connection->last_error().c_str());
            QVERIFY(r.reply.ok());
            QCOMPARE(p.parks, 1);
            QCOMPARE(events_.size(), std::size_t(2));
            QVERIFY(std::holds_alternative<trellis::command_succeeded_event>(events_.back()));
        }
        // Left unperformed (the caller went away), the resume does the I/O the usual way.
        test_parking p;
        auto r = run_parked(io, *c.connection, p, "admin", bson::make_document(bson::kvp("ping", 1)), false);
        QVERIFY2(!r.ec, c.connection->last_error().c_str());
        QVERIFY(r.reply.ok());
        // A TLS stream offers no wait handle: nothing is parked, the I/O is the io_context's.
        auto t = establish(io, settings_for("mongodb://" + tls_sim_->members()[0] + "/?tls=true&tlsCAFile=" + path("ca.pem")));
        QVERIFY2(!t.failure, t.failure.message.c_str());
        test_parking tp;
        auto tr = run_parked(io, *t.connection, tp, "admin", bson::make_document(bson::kvp("ping", 1)));
        QVERIFY2(!tr.ec, t.connection->last_error().c_str());
        QVERIFY(tr.reply.ok());
        QCOMPARE(tp.parks, 0);
    }

    void parked_io_keeps_the_socket_timeout() {
        hold_next_count_for_1500ms();
        asio::io_context io;
        auto c = establish(io, settings_for(sim_->uri(), "socketTimeoutMS=200"));
        QVERIFY(!c.failure);
        test_parking p;
        const auto t0 = std::chrono::steady_clock::now();
        auto r = run_parked(io, *c.connection, p, "test", bson::make_document(bson::kvp("count", "x")));
        const auto took = std::chrono::steady_clock::now() - t0;
        QVERIFY(r.ec == errc::network_timeout);
        QVERIFY2(took >= 190ms && took < 1200ms, std::to_string(took.count()).c_str());
        QVERIFY(c.connection->is_perished());
        QVERIFY2(c.connection->last_error().find("socket timeout of 200 ms") != std::string::npos, c.connection->last_error().c_str());
        QVERIFY(std::get<trellis::command_failed_event>(events_.back()).code == errc::network_timeout);
    }

    // Closed or interrupted from the io_context while the caller waits for the reply: the
    // caller is woken, stops, and the command fails saying why (the socket is left to the resume).
    void parked_io_is_stopped_by_close_and_interrupt() {
        for (const bool interrupt : {false, true}) {
            hold_next_count_for_1500ms();
            asio::io_context io;
            auto c = establish(io, settings_for(sim_->uri()));
            QVERIFY(!c.failure);
            test_parking p;
            auto& connection = *c.connection;
            const auto t0 = std::chrono::steady_clock::now();
            auto r = run_parked(io, connection, p, "test", bson::make_document(bson::kvp("count", "x")), true, [&] {
                std::this_thread::sleep_for(100ms);
                if (interrupt) connection.interrupt();
                else connection.close();
                io.restart();
                io.poll();  // the close or interrupt runs on the io_context
            });
            const auto took = std::chrono::steady_clock::now() - t0;
            QVERIFY2(took < 1000ms, std::to_string(took.count()).c_str());
            QVERIFY(p.wakes.load() >= 1);
            QCOMPARE(r.ec, make_error_code(errc::connection_failure));
            const std::string why = connection.last_error();
            QVERIFY2(why.find(interrupt ? "interrupted" : "connection closed") != std::string::npos, why.c_str());
            QVERIFY(connection.is_perished());
        }
    }

    // A large reply read by the caller in pieces is checked as it comes, as on the io_context.
    void parked_io_checks_a_large_reply() {
        {
            const auto [body, unused] = large_reply();
            slow_replier server(body);
            asio::io_context io;
            auto c = establish(io, settings_for(server.uri()));
            QVERIFY2(!c.failure, c.failure.message.c_str());
            test_parking p;
            auto r = run_parked(io, *c.connection, p, "test", bson::make_document(bson::kvp("find", "x")));
            QVERIFY2(!r.ec, c.connection->last_error().c_str());
            QVERIFY(r.reply.body == body.view());
        }
        const auto [body, at] = large_reply(19'000);
        const auto expected = bson::find_error(body.bytes());
        QVERIFY(expected);
        slow_replier server(body);
        asio::io_context io;
        auto c = establish(io, settings_for(server.uri()));
        QVERIFY2(!c.failure, c.failure.message.c_str());
        test_parking p;
        auto r = run_parked(io, *c.connection, p, "test", bson::make_document(bson::kvp("find", "x")));
        QCOMPARE(r.ec, make_error_code(errc::bson_invalid));
        const std::string why = c.connection->last_error();
        QVERIFY2(why.find(expected->message) != std::string::npos && why.find("at byte " + std::to_string(at)) != std::string::npos,
                 why.c_str());
    }

    // A large reply's buffer goes back to the client's cache when the reply is released, and the
    // next large reply on any of its connections is read into it, asynchronously or parked.
    void large_replies_reuse_one_buffer() {
        const auto [body, unused] = large_reply();
        slow_replier server(body);
        asio::io_context io;
        auto s = settings_for(server.uri());
        auto cache = std::make_shared<trellis::wire::buffer_cache>(trellis::client_options{}.max_kept_reply_buffer);
        s->connection.buffers = cache;
        auto c = establish(io, s);
        QVERIFY2(!c.failure, c.failure.message.c_str());
        test_parking p;
        const auto find = [] { return bson::make_document(bson::kvp("find", "x")); };
        auto first = run_parked(io, *c.connection, p, "test", find(), false);  // the I/O the usual way
        QVERIFY2(!first.ec, c.connection->last_error().c_str());
        QVERIFY(first.reply.body == body.view());
        const std::uint8_t* const where = first.reply.message.bytes().data();
        QCOMPARE(cache->spare_capacity(), std::size_t{0});
        first = ran{};
        QVERIFY(cache->spare_capacity() > body.bytes().size());
        const auto second = run_parked(io, *c.connection, p, "test", find());  // done by this thread
        QVERIFY2(!second.ec, c.connection->last_error().c_str());
        QVERIFY(second.reply.body == body.view());
        QCOMPARE(second.reply.message.bytes().data(), where);
        QCOMPARE(cache->spare_capacity(), std::size_t{0});
    }

    void pool_uses_the_real_establisher() {
        asio::io_context io;
        auto s = settings_for(sim_->uri());
        std::vector<std::string> cmap;
        trellis::pool::pool_config cfg;
        cfg.address = s->connection.address;
        cfg.establisher = conn::make_pool_establisher(io.get_executor(), s);
        cfg.on_event = [&cmap](const trellis::cmap_event& e) { cmap.emplace_back(trellis::event_name(e)); };
        cfg.maintenance_interval.reset();
        trellis::pool::connection_pool pool(io.get_executor(), std::move(cfg));
        pool.ready();
        std::error_code checkout_ec;
        ran r;
        pool.async_check_out([&](std::error_code ec, trellis::pool::checked_out_connection c) {
            checkout_ec = ec;
            if (ec) return;
            auto* connection = static_cast<conn::connection*>(c.get());
            conn::command_request req;
            req.database = "admin";
            req.command = bson::make_document(bson::kvp("ping", 1));
            connection->async_run_command(std::move(req), [&r, c = std::move(c)](std::error_code e, conn::command_reply reply) mutable {
                r = {e, std::move(reply)};
                c.reset();  // checked back in
            });
        });
        std::thread stopper([&] {
            std::this_thread::sleep_for(1s);
            pool.close();
        });
        io.run_for(3s);
        stopper.join();
        QVERIFY(!checkout_ec);
        QVERIFY(!r.ec);
        QVERIFY(r.reply.ok());
        const std::vector<std::string> expected = {"ConnectionPoolCreated", "ConnectionPoolReady", "ConnectionCheckOutStarted",
                                                   "ConnectionCreated",    "ConnectionReady",     "ConnectionCheckedOut",
                                                   "ConnectionCheckedIn"};
        QVERIFY(cmap.size() >= expected.size());
        QCOMPARE(std::vector<std::string>(cmap.begin(), cmap.begin() + static_cast<long>(expected.size())), expected);
    }

    void cleanupTestCase() {
        sim_->stop();
        tls_sim_->stop();
    }
};

QTEST_GUILESS_MAIN(ConnectionTest)
#include "connection_test.moc"
