// transport "plain": TCP.
#include "connect.hpp"

namespace {

using namespace trellis;
using transport_detail::tcp;

class plain_stream final : public sdk::stream {
public:
    plain_stream(tcp::socket socket, std::string where)
        : socket_(std::move(socket)), handle_(socket_.native_handle()), where_(std::move(where)) {}

    sdk::asio::any_io_executor get_executor() override { return socket_.get_executor(); }
    void async_read_some(sdk::asio::mutable_buffer buffer,
                         sdk::asio::any_completion_handler<void(std::error_code, std::size_t)> handler) override {
        socket_.async_read_some(buffer, [h = std::move(handler)](const boost::system::error_code& ec, std::size_t n) mutable {
            std::move(h)(ec, n);
        });
    }
    void async_write_some(sdk::asio::const_buffer buffer,
                          sdk::asio::any_completion_handler<void(std::error_code, std::size_t)> handler) override {
        socket_.async_write_some(buffer, [h = std::move(handler)](const boost::system::error_code& ec, std::size_t n) mutable {
            std::move(h)(ec, n);
        });
    }
    // One send(2) on the socket in non-blocking mode: a command usually fits the send buffer.
    std::size_t try_write_some(sdk::asio::const_buffer buffer, std::error_code& ec) override {
        return at_once(ec, [&](boost::system::error_code& e) { return socket_.write_some(buffer, e); });
    }
    // One recv(2), the same way.
    std::size_t try_read_some(sdk::asio::mutable_buffer buffer, std::error_code& ec) override {
        return at_once(ec, [&](boost::system::error_code& e) { return socket_.read_some(buffer, e); });
    }
    void close() override {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }
    std::string description() const override { return where_; }
    int wait_handle() const noexcept override { return handle_; }

private:
    // `io` on the socket in non-blocking mode; "it would block" is 0 bytes, not an error.
    template <class Io>
    std::size_t at_once(std::error_code& ec, Io io) {
        boost::system::error_code e;
        if (!socket_.non_blocking()) socket_.non_blocking(true, e);
        const std::size_t n = e ? 0 : io(e);
        if (e == boost::asio::error::would_block || e == boost::asio::error::try_again) e.clear();
        ec = e;
        return n;
    }

    tcp::socket socket_;
    int handle_;
    std::string where_;
};

class plain_transport final : public sdk::transport {
public:
    void async_connect(sdk::asio::any_io_executor executor, const sdk::connect_request& request,
                       sdk::asio::any_completion_handler<void(sdk::connect_error, std::unique_ptr<sdk::stream>)> handler) override {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        const std::string where = transport_detail::endpoint_text(request.host, request.port);
        transport_detail::async_tcp_connect(executor, request, [h, where](sdk::connect_error err, tcp::socket socket) {
            if (err.code) return std::move(*h)(std::move(err), nullptr);
            std::move(*h)(sdk::connect_error{}, std::make_unique<plain_stream>(std::move(socket), where));
        });
    }
};

}  // namespace

TRELLIS_PLUGIN(transport, "plain", "1.0.0", "TCP connections (TCP_NODELAY, keepalive, connect timeout)", plain_transport)
