// TCP connection set-up shared by the plain and TLS transports: resolve, try
// each address in turn within connect_timeout, set TCP_NODELAY and keepalive.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>

#include "trellis/sdk/transport.hpp"

namespace trellis::transport_detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline std::string endpoint_text(const std::string& host, std::uint16_t port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

/// Connects a socket; calls done(error, socket) exactly once.
inline void async_tcp_connect(asio::any_io_executor ex, const sdk::connect_request& req,
                              std::function<void(sdk::connect_error, tcp::socket)> done) {
    struct state {
        tcp::resolver resolver;
        tcp::socket socket;
        asio::steady_timer timer;
        std::function<void(sdk::connect_error, tcp::socket)> done;
        std::string where;
        bool timed_out = false;
        bool finished = false;
        state(asio::any_io_executor e) : resolver(e), socket(e), timer(e) {}
        void finish(sdk::connect_error err) {
            if (finished) return;
            finished = true;
            timer.cancel();
            done(std::move(err), std::move(socket));
        }
    };
    auto s = std::make_shared<state>(ex);
    s->done = std::move(done);
    s->where = endpoint_text(req.host, req.port);
    if (req.connect_timeout.count() > 0) {
        s->timer.expires_after(req.connect_timeout);
        s->timer.async_wait([s, ms = req.connect_timeout.count()](const boost::system::error_code& ec) {
            if (ec || s->finished) return;
            s->timed_out = true;
            s->resolver.cancel();
            boost::system::error_code ignored;
            s->socket.close(ignored);
            s->finish({boost::system::error_code(asio::error::timed_out), "connect to " + s->where + " timed out after " + std::to_string(ms) + " ms"});
        });
    }
    s->resolver.async_resolve(req.host, std::to_string(req.port), [s](const boost::system::error_code& ec, tcp::resolver::results_type results) {
        if (s->finished) return;
        if (ec) return s->finish({ec, "cannot resolve " + s->where + ": " + ec.message()});
        asio::async_connect(s->socket, results, [s](const boost::system::error_code& ec, const tcp::endpoint&) {
            if (s->finished) return;
            if (ec) return s->finish({ec, "connect to " + s->where + " failed: " + ec.message()});
            boost::system::error_code ignored;
            s->socket.set_option(tcp::no_delay(true), ignored);
            s->socket.set_option(asio::socket_base::keep_alive(true), ignored);
            s->finish({});
        });
    });
}

}  // namespace trellis::transport_detail
