// Issue #14 ("Reliability"): the client against deployments that are odd rather than broken.
// A scripted hello server (the kernel's wire codec over a loopback socket) lists thousands of
// members; a connection string names thousands of seeds. Selection must still time out on
// time, and its error must stay a readable line.
#include <QtTest/QtTest>

#include <cstdlib>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"
#include "wire/codec.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace wire = trellis::wire;
using asio::ip::tcp;
using trellis::errc;
using namespace std::chrono_literals;

namespace {

// Upper bounds on wall time stretch by $TRELLIS_TEST_TIME_SCALE (the TSan preset sets 10: its
// instrumentation slows the client 5-15x); lower bounds do not.
std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    static const int scale = [] {
        const char* v = std::getenv("TRELLIS_TEST_TIME_SCALE");
        const int n = v ? std::atoi(v) : 1;
        return n > 0 ? n : 1;
    }();
    return bound * scale;
}

/// A port nothing listens on, on any loopback address (bound on 0.0.0.0 by the OS, then freed).
std::uint16_t closed_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::any(), 0));
    return a.local_endpoint().port();
}

/// n addresses on 127.1.0.0/16 (loopback: a connection is refused at once).
std::vector<std::string> refusing_hosts(std::size_t n, std::uint16_t port) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back("127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":" + std::to_string(port));
    return out;
}

/// Answers every hello (OP_QUERY or OP_MSG) with `reply` (its own address put first in
/// "hosts"), and any other command with {ok: 1}. Runs on its own thread until destroyed.
class hello_server {
public:
    explicit hello_server(std::function<bson::document(const std::string& self)> make_reply)
        : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        address_ = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
        reply_ = make_reply(address_);
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~hello_server() {
        asio::post(io_, [this] {
            acceptor_.close();
            for (auto& s : sockets_)
                if (auto p = s.lock()) p->close();
        });
        io_.stop();
        thread_.join();
    }
    const std::string& address() const { return address_; }
    int hellos() const { return hellos_.load(); }

private:
    void accept() {
        acceptor_.async_accept([this](std::error_code ec, tcp::socket s) {
            if (ec) return;
            auto socket = std::make_shared<tcp::socket>(std::move(s));
            sockets_.push_back(socket);
            read_header(socket, std::make_shared<std::vector<std::uint8_t>>());
            accept();
        });
    }

    void read_header(std::shared_ptr<tcp::socket> s, std::shared_ptr<std::vector<std::uint8_t>> frame) {
        frame->assign(4, 0);
        asio::async_read(*s, asio::buffer(*frame), [this, s, frame](std::error_code ec, std::size_t) {
            if (ec) return;
            const std::uint32_t length = (*frame)[0] | (*frame)[1] << 8 | (*frame)[2] << 16 | std::uint32_t((*frame)[3]) << 24;
            if (length < 16 || length > 48'000'000) return;
            frame->resize(length);
            asio::async_read(*s, asio::buffer(frame->data() + 4, length - 4), [this, s, frame](std::error_code ec2, std::size_t) {
                if (ec2) return;
                answer(s, wire::decode_message(*frame));
                read_header(s, frame);
            });
        });
    }

    void answer(const std::shared_ptr<tcp::socket>& s, const wire::message& m) {
        auto out = std::make_shared<std::vector<std::uint8_t>>();
        const bson::document ok = bson::make_document(bson::kvp("ok", 1));
        if (const auto* q = m.as_query()) {
            ++hellos_;
            wire::op_reply r;
            r.documents.push_back(reply_.bytes());
            wire::encode_op_reply(*out, 1, m.header.request_id, r);
            (void)q;
        } else if (const auto* msg = m.as_msg()) {
            const bson::document_view body(msg->body.data());
            const auto first = body.begin();
            const bool hello = first != body.end() && (first->key() == "hello" || first->key() == "isMaster" ||
                                                       first->key() == "ismaster");
            if (hello) ++hellos_;
            wire::encode_op_msg(*out, 1, m.header.request_id, 0, hello ? reply_.bytes() : ok.bytes());
        } else {
            return;
        }
        asio::async_write(*s, asio::buffer(*out), [out](std::error_code, std::size_t) {});
    }

    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::string address_;
    bson::document reply_;
    std::vector<std::weak_ptr<tcp::socket>> sockets_;
    std::atomic<int> hellos_{0};
    std::thread thread_;
};

/// A replica set member's hello listing itself and `others`.
bson::document member_hello(const std::string& self, const std::vector<std::string>& others, bool primary) {
    bson::builder b;
    b.append("ok", 1).append("isWritablePrimary", primary).append("secondary", !primary).append("setName", "big");
    b.open_array("hosts");
    b.append(self);
    for (const auto& h : others) b.append(h);
    b.close_array();
    if (primary) b.append("primary", self);
    b.append("me", self).append("minWireVersion", 0).append("maxWireVersion", 21);
    b.append("maxBsonObjectSize", 16 * 1024 * 1024).append("maxMessageSizeBytes", 48'000'000);
    b.append("maxWriteBatchSize", 100'000).append("logicalSessionTimeoutMinutes", 30);
    return b.extract();
}

struct outcome {
    std::chrono::milliseconds elapsed{};
    std::error_code code;
    std::string message;
};

template <class F>
outcome timed(F&& f) {
    outcome o;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        f();
    } catch (const trellis::error& e) {
        o.code = e.code();
        o.message = e.what();
    }
    o.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    qInfo("%lld ms, message of %zu bytes: %.300s", static_cast<long long>(o.elapsed.count()), o.message.size(),
          o.message.c_str());
    return o;
}

constexpr std::size_t bounded_message = 8 * 1024;

}  // namespace

class ReliabilityTest : public QObject {
    Q_OBJECT

private slots:
    // A secondary lists 5,000 members nobody can reach and there is no primary: a command waits
    // out serverSelectionTimeoutMS (2 s) and not much more, and says so in a bounded line.
    void thousands_of_members_time_out_on_time() {
        const auto others = refusing_hosts(5000, closed_port());
        hello_server server([&](const std::string& self) { return member_hello(self, others, false); });
        trellis::client c("mongodb://" + server.address() +
                          "/?replicaSet=big&serverSelectionTimeoutMS=2000&socketTimeoutMS=1000&connectTimeoutMS=1000");
        const outcome o = timed([&] { c.run_command("admin", bson::make_document(bson::kvp("ping", 1))); });
        QVERIFY2(o.code == errc::server_selection_timeout, o.message.c_str());
        QVERIFY2(o.elapsed >= 1900ms && o.elapsed < scaled(4000ms), std::to_string(o.elapsed.count()).c_str());
        QVERIFY2(o.message.size() < bounded_message, std::to_string(o.message.size()).c_str());
        QVERIFY2(o.message.find(" more") != std::string::npos, o.message.c_str());
        QVERIFY2(o.message.find(server.address()) != std::string::npos, o.message.c_str());
        QVERIFY(server.hellos() >= 1);
    }

    // The same member as primary: a command is answered at once, however many members it lists.
    void thousands_of_members_with_a_primary_answer_at_once() {
        const auto others = refusing_hosts(5000, closed_port());
        hello_server server([&](const std::string& self) { return member_hello(self, others, true); });
        trellis::client c("mongodb://" + server.address() + "/?replicaSet=big&serverSelectionTimeoutMS=5000");
        const outcome o = timed([&] {
            const auto reply = c.run_command("admin", bson::make_document(bson::kvp("ping", 1)));
            QCOMPARE(reply["ok"].as_double(), 1.0);
        });
        QVERIFY2(!o.code, o.message.c_str());
        QVERIFY2(o.elapsed < scaled(2500ms), std::to_string(o.elapsed.count()).c_str());
    }

    // 3,000 seeds, none reachable: a 500 ms selection timeout fails within twice that, with a
    // short message that still names the first seeds.
    void thousands_of_seeds_fail_promptly() {
        const auto seeds = refusing_hosts(3000, closed_port());
        std::string uri = "mongodb://";
        for (std::size_t i = 0; i < seeds.size(); ++i) uri += (i ? "," : "") + seeds[i];
        uri += "/?serverSelectionTimeoutMS=500";
        trellis::client c(uri);
        const outcome o = timed([&] { c.run_command("admin", bson::make_document(bson::kvp("ping", 1))); });
        QVERIFY2(o.code == errc::server_selection_timeout, o.message.c_str());
        QVERIFY2(o.elapsed < scaled(1000ms), std::to_string(o.elapsed.count()).c_str());
        QVERIFY2(o.message.size() < bounded_message, std::to_string(o.message.size()).c_str());
        QVERIFY2(o.message.find("and 2990 more") != std::string::npos, o.message.c_str());
    }

    // A server whose wire versions do not overlap Trellis's: the server selection spec fails at
    // once with the compatibility error, not after serverSelectionTimeoutMS (10 s here).
    void incompatible_wire_versions_fail_at_once() {
        struct versions {
            int min, max;
            std::string says;
        };
        for (const versions& v : {versions{0, 5, "reports wire version 5, but this version of Trellis requires at least 6"},
                                  versions{30, 30, "requires wire version 30, but this version of Trellis only supports up to 25"}}) {
            trellis::sim::sim_config config;
            config.min_wire_version = v.min;
            config.max_wire_version = v.max;
            trellis::sim::deployment d(config);
            d.start();
            const std::string member = d.members().at(0);
            trellis::client c(d.uri() + (d.uri().find('?') == std::string::npos ? "?" : "&") + "serverSelectionTimeoutMS=10000");
            const outcome o = timed([&] { c.run_command("admin", bson::make_document(bson::kvp("ping", 1))); });
            QVERIFY2(o.code == errc::incompatible_server, o.message.c_str());
            QVERIFY2(o.elapsed < scaled(2000ms), std::to_string(o.elapsed.count()).c_str());
            QVERIFY2(o.message.find("Server at " + member + " " + v.says) != std::string::npos, o.message.c_str());
        }
    }
};

QTEST_GUILESS_MAIN(ReliabilityTest)
#include "reliability_test.moc"
