// Plugin kind "transport": how the kernel gets a byte stream to a server.
//
// The kernel never knows which transport it holds: a stream is a type-erased
// asynchronous byte stream whose operations take Asio's any_completion_handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>

#include "trellis/sdk/plugin.hpp"

namespace trellis::sdk {

namespace asio = boost::asio;

/// A connected byte stream. All operations run on get_executor(); one read and
/// one write may be outstanding at a time.
class TRELLIS_SDK_VISIBLE stream {
public:
    virtual ~stream() = default;

    virtual asio::any_io_executor get_executor() = 0;
    virtual void async_read_some(asio::mutable_buffer buffer,
                                 asio::any_completion_handler<void(std::error_code, std::size_t)> handler) = 0;
    virtual void async_write_some(asio::const_buffer buffer,
                                  asio::any_completion_handler<void(std::error_code, std::size_t)> handler) = 0;
    /// Cancels pending operations (they complete with operation_aborted) and closes the stream.
    virtual void close() = 0;
    /// "127.0.0.1:27017", "tls 127.0.0.1:27017 (TLSv1.3)": for logs and errors.
    virtual std::string description() const = 0;
    /// The verified peer certificate's subject (RFC 2253), for TLS streams.
    virtual std::optional<std::string> peer_subject() const { return std::nullopt; }
    /// Writes what the stream takes at once, without blocking or waiting, and returns the bytes
    /// written: 0 when it takes nothing now, or when it only writes asynchronously (the default).
    /// Called on get_executor() (or, for a stream with a wait_handle, from any one thread at a time),
    /// never while an async_write_some is outstanding; a failure is set
    /// in `ec` as async_write_some would report it. The caller writes the rest asynchronously:
    /// a stream that implements it spares each small write a trip through the io_context.
    virtual std::size_t try_write_some(asio::const_buffer buffer, std::error_code& ec) {
        (void)buffer;
        ec.clear();
        return 0;
    }
    /// The descriptor whose readiness try_read_some and try_write_some wait for, or -1 (the
    /// default) when there is none to offer (a TLS stream may hold bytes the socket no longer
    /// shows). A stream that offers one implements both calls: a blocking caller then does its
    /// operation's I/O on its own thread with them, sleeping in poll(2) on this descriptor; it
    /// never reads, writes or closes the descriptor itself.
    virtual int wait_handle() const noexcept { return -1; }
    /// Reads what has arrived, without blocking or waiting: 0 bytes (no error) when nothing has.
    /// End of stream and failures are set in `ec` as async_read_some reports them. Called with no
    /// async operation outstanding, from any one thread at a time.
    virtual std::size_t try_read_some(asio::mutable_buffer buffer, std::error_code& ec) {
        (void)buffer;
        ec.clear();
        return 0;
    }
};

/// TLS settings, as the URI options give them.
struct tls_settings {
    bool enabled = false;
    std::string ca_file;
    std::string certificate_key_file;           // PEM with the client certificate and its key
    std::string certificate_key_file_password;
    bool allow_invalid_certificates = false;
    bool allow_invalid_hostnames = false;
};

struct connect_request {
    std::string host;   // a name, an IPv4 address, or an IPv6 address without brackets
    std::uint16_t port = 27017;
    std::chrono::milliseconds connect_timeout{10'000};  // zero: no timeout
    tls_settings tls;
};

/// What a failed connect reports: an error code, and text naming the host and the reason
/// (e.g. OpenSSL's "certificate verify failed" for a TLS handshake).
struct connect_error {
    std::error_code code;
    std::string message;
};

class TRELLIS_SDK_VISIBLE transport : public plugin {
public:
    /// Opens a stream to the server, trying each resolved address in turn within
    /// connect_timeout. On failure the stream is null and error describes why.
    virtual void async_connect(asio::any_io_executor executor, const connect_request& request,
                               asio::any_completion_handler<void(connect_error, std::unique_ptr<stream>)> handler) = 0;
};

}  // namespace trellis::sdk
