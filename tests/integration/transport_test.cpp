// The transport plugins against trellis-sim: plain TCP and TLS (trusted CA,
// another CA, hostname checks and their relaxations, client certificates with
// a password). Certificates are made at test time with the openssl CLI.
#include <QtTest/QtTest>

#include <QTemporaryDir>
#include <boost/asio.hpp>
#include <future>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdk/transport.hpp"
#include "test_pki.hpp"
#include "trellis/sim/deployment.hpp"
#include "wire/codec.hpp"
#include "wire/frame_decoder.hpp"

namespace asio = boost::asio;
namespace sdk = trellis::sdk;
namespace bson = trellis::bson;
using namespace std::chrono_literals;

namespace {

struct connected {
    sdk::connect_error error;
    std::unique_ptr<sdk::stream> stream;
};

connected open_stream(sdk::transport& t, asio::io_context& io, sdk::connect_request req) {
    std::promise<connected> done;
    auto result = done.get_future();
    t.async_connect(io.get_executor(), req, [&done](sdk::connect_error e, std::unique_ptr<sdk::stream> s) {
        done.set_value({std::move(e), std::move(s)});
    });
    io.restart();
    io.run();
    return result.get();
}

// hello over the stream, with the kernel's wire codec.
bson::document hello(sdk::stream& s, asio::io_context& io) {
    const bson::document cmd = bson::make_document(bson::kvp("hello", 1), bson::kvp("$db", "admin"));
    std::vector<std::uint8_t> out;
    trellis::wire::encode_op_msg(out, 1, 0, 0, cmd.bytes());
    std::size_t written = 0;
    std::function<void()> write_more = [&] {
        s.async_write_some(asio::buffer(out.data() + written, out.size() - written), [&](std::error_code ec, std::size_t n) {
            if (ec) throw std::system_error(ec);
            written += n;
            if (written < out.size()) write_more();
        });
    };
    write_more();
    trellis::wire::frame_decoder decoder;
    std::optional<bson::document> reply;
    std::function<void()> read_more = [&] {
        auto buffer = decoder.prepare(4096);
        s.async_read_some(asio::buffer(buffer.data(), buffer.size()), [&](std::error_code ec, std::size_t n) {
            if (ec) throw std::system_error(ec);
            decoder.commit(n);
            if (auto msg = decoder.next()) reply = bson::document::from_bytes(msg->as_msg()->body);
            else read_more();
        });
    };
    read_more();
    io.restart();
    io.run();
    return std::move(*reply);
}

std::uint16_t port_of(const std::string& address) { return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))); }

}  // namespace

class TransportTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    trellis::plugin_registry registry_;
    std::unique_ptr<trellis::sim::deployment> plain_sim_, tls_sim_;
    std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

private slots:
    void initTestCase() {
        trellis::test::make_test_pki(dir_.path());

        trellis::sim::sim_config plain;
        plain_sim_ = std::make_unique<trellis::sim::deployment>(plain);
        plain_sim_->start();
        trellis::sim::sim_config tls;
        tls.tls.cert_file = path("server.pem");
        tls.tls.key_file = path("server.key");
        tls.tls.ca_file = path("ca.pem");
        tls.tls.require_client_cert = true;
        tls_sim_ = std::make_unique<trellis::sim::deployment>(tls);
        tls_sim_->start();
    }

    void plain_round_trip() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "plain");
        asio::io_context io;
        auto c = open_stream(*t, io, {"127.0.0.1", port_of(plain_sim_->members()[0]), 5000ms, {}});
        QVERIFY2(!c.error.code, c.error.message.c_str());
        QVERIFY(c.stream->description().starts_with("127.0.0.1:"));
        QCOMPARE(hello(*c.stream, io)["isWritablePrimary"].get_bool(), true);
        c.stream->close();
    }

    // try_write_some: what the socket takes at once, 0 (no error) when it takes nothing, an
    // error once the peer is gone. The peer here is a socket that reads only when told to.
    void plain_try_write_some() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "plain");
        asio::io_context io;
        asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
        auto c = open_stream(*t, io, {"127.0.0.1", acceptor.local_endpoint().port(), 5000ms, {}});
        QVERIFY2(!c.error.code, c.error.message.c_str());
        asio::ip::tcp::socket peer = acceptor.accept();
        const std::vector<char> chunk(64 * 1024, 'x');
        std::size_t total = 0, last = 1;
        std::error_code ec;
        for (int i = 0; i < 10000 && last != 0; ++i) {
            last = c.stream->try_write_some(asio::buffer(chunk), ec);
            QVERIFY2(!ec, ec.message().c_str());
            total += last;
        }
        QCOMPARE(last, std::size_t(0));  // the socket's buffers are full: nothing taken, no error
        QVERIFY(total > 0);
        std::vector<char> sink(1024 * 1024);
        std::size_t drained = 0;
        while (drained < total / 2) drained += peer.read_some(asio::buffer(sink));
        last = 0;
        for (int i = 0; i < 1000 && last == 0 && !ec; ++i) {  // once the peer's window update is in
            last = c.stream->try_write_some(asio::buffer(chunk), ec);
            if (last == 0) std::this_thread::sleep_for(1ms);
        }
        QVERIFY2(!ec, ec.message().c_str());
        QVERIFY(last > 0);
        peer.close();
        for (int i = 0; i < 1000 && !ec; ++i) {
            c.stream->try_write_some(asio::buffer(chunk), ec);
            if (!ec) std::this_thread::sleep_for(1ms);
        }
        QVERIFY2(ec, "writing to a closed peer never failed");
    }

    void plain_refused_names_the_address() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "plain");
        asio::io_context io;
        // A port that was free a moment ago: bind, read it, close.
        asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
        const auto port = probe.local_endpoint().port();
        probe.close();
        auto c = open_stream(*t, io, {"127.0.0.1", port, 2000ms, {}});
        QVERIFY(c.error.code);
        QVERIFY(!c.stream);
        QVERIFY2(c.error.message.find("connect to 127.0.0.1:" + std::to_string(port) + " failed") != std::string::npos,
                 c.error.message.c_str());
    }

    void tls_with_the_test_ca_and_a_client_certificate() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "tls");
        asio::io_context io;
        sdk::connect_request req{"127.0.0.1", port_of(tls_sim_->members()[0]), 5000ms, {}};
        req.tls = {true, path("ca.pem"), path("client.pem"), "s3cret", false, false};
        auto c = open_stream(*t, io, req);
        QVERIFY2(!c.error.code, c.error.message.c_str());
        QVERIFY2(c.stream->description().find("TLSv1.") != std::string::npos, c.stream->description().c_str());
        QCOMPARE(c.stream->peer_subject().value_or(""), std::string("CN=sim"));
        // TLS writes records asynchronously only: nothing is taken at once, and nothing is lost.
        std::error_code ec;
        QCOMPARE(c.stream->try_write_some(asio::buffer("x", 1), ec), std::size_t(0));
        QVERIFY(!ec);
        QCOMPARE(hello(*c.stream, io)["ok"].as_double(), 1.0);
    }

    void tls_with_another_ca_fails_with_a_certificate_error() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "tls");
        asio::io_context io;
        sdk::connect_request req{"127.0.0.1", port_of(tls_sim_->members()[0]), 5000ms, {}};
        req.tls = {true, path("other-ca.pem"), path("client.pem"), "s3cret", false, false};
        auto c = open_stream(*t, io, req);
        QVERIFY(c.error.code);
        QVERIFY2(c.error.message.find("TLS handshake with 127.0.0.1:") != std::string::npos &&
                     c.error.message.find("certificate verify failed") != std::string::npos,
                 c.error.message.c_str());
        // tlsAllowInvalidCertificates accepts it.
        req.tls.allow_invalid_certificates = true;
        auto relaxed = open_stream(*t, io, req);
        QVERIFY2(!relaxed.error.code, relaxed.error.message.c_str());
    }

    void tls_hostname_verification() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "tls");
        asio::io_context io;
        sdk::connect_request req{"localhost", port_of(tls_sim_->members()[0]), 5000ms, {}};
        req.tls = {true, path("ca.pem"), path("client.pem"), "s3cret", false, false};
        auto c = open_stream(*t, io, req);
        QVERIFY(c.error.code);
        QVERIFY2(c.error.message.find("Hostname mismatch") != std::string::npos ||
                     c.error.message.find("hostname mismatch") != std::string::npos,
                 c.error.message.c_str());
        req.tls.allow_invalid_hostnames = true;
        auto relaxed = open_stream(*t, io, req);
        QVERIFY2(!relaxed.error.code, relaxed.error.message.c_str());
    }

    void tls_wrong_key_password_is_reported() {
        auto t = registry_.create_as<sdk::transport>(sdk::plugin_kind::transport, "tls");
        asio::io_context io;
        sdk::connect_request req{"127.0.0.1", port_of(tls_sim_->members()[0]), 5000ms, {}};
        req.tls = {true, path("ca.pem"), path("client.pem"), "wrong", false, false};
        auto c = open_stream(*t, io, req);
        QVERIFY(c.error.code);
        QVERIFY2(c.error.message.find("TLS set-up for 127.0.0.1:") != std::string::npos, c.error.message.c_str());
    }

    void cleanupTestCase() {
        plain_sim_->stop();
        tls_sim_->stop();
    }
};

QTEST_GUILESS_MAIN(TransportTest)
#include "transport_test.moc"
