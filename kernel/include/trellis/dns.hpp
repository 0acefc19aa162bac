// DNS lookups for mongodb+srv:// (the initial DNS seedlist discovery spec): SRV and TXT queries
// through c-ares, driven by Asio on the executor the caller gives (no thread, no blocking call).
//
// The rules over the answers (targets inside the parent domain, at most one TXT record, only
// authSource / replicaSet / loadBalanced from it, srvMaxHosts) are trellis::resolve_srv()'s, in
// trellis/uri.hpp; this header only asks DNS.
//
//     trellis::dns::resolver r(io.get_executor());
//     r.async_query_srv("_mongodb._tcp.cluster0.example.net",
//                       [](std::error_code ec, std::vector<trellis::srv_record> records) { ... });
//
//     // or the whole preprocessing step, SRV and TXT queried concurrently:
//     trellis::dns::async_resolve_seedlist(r, trellis::parse_uri(uri),
//                                          [](std::error_code ec, trellis::dns::seedlist_result res) {
//                                              if (ec) log(res.error_message); else use(res.options);
//                                          });
//
//     // or, blocking, for tools and tests:
//     trellis::client_options o = trellis::dns::resolve_seedlist(trellis::parse_uri(uri));
//
// Completions carry a std::error_code: trellis::errc::configuration_error
// when DNS says the name has no such records (NXDOMAIN, no data, a malformed name) or when
// resolve_srv() rejects the answers, errc::connection_failure when DNS could not be asked or
// failed to answer (timeout, refused, SERVFAIL, a malformed reply), and
// std::errc::operation_canceled (ECANCELED, the value of asio::error::operation_aborted) when
// the operation was cancelled: by cancel(), by destroying the resolver, or through the handler's
// cancellation slot (asio::bind_cancellation_slot, awaitable operators, parallel_group).
//
// Since an error code cannot carry a sentence, the sentence that names the query and c-ares'
// reason ("SRV lookup of _mongodb._tcp.x.example.net failed: Domain name not found") goes to a
// dns::diagnostics the caller passes (the query operations, in the style of Boost.MySQL) or to
// seedlist_result::error_message (async_resolve_seedlist).
//
// With asio::use_future and asio::use_awaitable the result is a
// std::tuple<std::error_code, T> (Asio only throws for boost::system::error_code):
//
//     auto [ec, records] = co_await r.async_query_srv(name, asio::use_awaitable);
//
// The default completion token is asio::deferred: the operation starts when the deferred object
// is invoked with a token. It refers to the resolver, which must outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include "trellis/uri.hpp"

namespace trellis::dns {

/// A DNS server: an IPv4 or IPv6 address (c-ares takes no host names here) and a port.
struct endpoint {
    boost::asio::ip::address address;
    std::uint16_t port = 53;

    /// "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353". Throws configuration_error.
    static endpoint parse(std::string_view text);
    /// The spelling parse() reads: the port is always written, IPv6 addresses in brackets.
    std::string to_string() const;

    friend bool operator==(const endpoint&, const endpoint&) = default;
};

struct resolver_options {
    /// Asked in this order. Empty: the servers in the environment variable TRELLIS_DNS_SERVER (one
    /// endpoint, or several separated by commas), else the system's (/etc/resolv.conf).
    std::vector<endpoint> servers;
    /// How long the first try waits for an answer from one server. c-ares doubles the wait after
    /// every round over all servers, so with one server and 3 tries a lookup gives up after
    /// 7 x timeout.
    std::chrono::milliseconds timeout{3000};
    /// How many times each server is asked (at least 1).
    int tries = 2;
};

/// Names the variable resolver_options::servers falls back to.
inline constexpr const char* server_environment_variable = "TRELLIS_DNS_SERVER";

/// Filled in by the query operations that take one: on error the message names the query, its
/// name and c-ares' reason; on success it is cleared. It must outlive the operation, and is
/// written on the completion handler's executor just before the handler runs.
struct diagnostics {
    std::string message;
};

/// What async_resolve_seedlist() completes with: the connection string with the seed list filled
/// in and the TXT options applied (its warnings are the parsed ones plus the TXT record's), and,
/// when the error code is set, the sentence that says what went wrong (otherwise empty).
struct seedlist_result : connection_string {
    std::string error_message;
};

/// Throws what an async DNS operation's error means: configuration_error for
/// errc::configuration_error, trellis::error for any other code, with `message` as what().
[[noreturn]] void throw_error(std::error_code ec, const std::string& message);

class resolver;

namespace detail {

/// The type-erased end of one operation. The resolver (in the library) calls complete() with what
/// DNS answered; a cancellation slot calls it with operation_aborted; the first call wins and
/// later ones do nothing. complete() never runs the user's handler inline: it posts it.
template <typename Result>
class pending_op {
public:
    pending_op() = default;
    pending_op(const pending_op&) = delete;
    pending_op& operator=(const pending_op&) = delete;
    virtual ~pending_op() = default;

    void complete(std::error_code ec, Result result, std::string message) {
        if (done_.exchange(true, std::memory_order_acq_rel)) return;
        finish(ec, std::move(result), std::move(message));
    }

private:
    virtual void finish(std::error_code ec, Result result, std::string message) = 0;

    std::atomic<bool> done_{false};
};

/// ECANCELED, the code asio::error::operation_aborted has on POSIX, in the portable spelling.
inline std::error_code operation_aborted() noexcept { return std::make_error_code(std::errc::operation_canceled); }

/// A pending_op around an Asio completion handler: keeps work on the handler's executor counted
/// while DNS is asked, posts the handler there, and honours the handler's cancellation slot
/// (any cancellation type: a DNS query cannot be partly undone, so it is abandoned and completes
/// at once with operation_aborted; c-ares' late answer is dropped).
template <typename Result, typename Handler>
class handler_op final : public pending_op<Result> {
public:
    template <typename H>
    handler_op(H&& handler, const boost::asio::any_io_executor& io_executor, std::string* message_out)
        : handler_(std::forward<H>(handler)),
          work_(boost::asio::get_associated_executor(handler_, io_executor)),
          message_out_(message_out) {}

    static void connect_cancellation(const std::shared_ptr<handler_op>& op) {
        auto slot = boost::asio::get_associated_cancellation_slot(op->handler_);
        if (!slot.is_connected()) return;
        // A weak reference: the slot lives as long as its owner wants, the operation must not.
        slot.assign([weak = std::weak_ptr<handler_op>(op)](boost::asio::cancellation_type) {
            if (auto self = weak.lock()) self->complete(operation_aborted(), Result{}, "the DNS query was cancelled");
        });
    }

private:
    void finish(std::error_code ec, Result result, std::string message) override {
        auto executor = work_.get_executor();
        boost::asio::post(executor, [handler = std::move(handler_), work = std::move(work_), ec,
                                     result = std::move(result), message = std::move(message),
                                     out = message_out_]() mutable {
            // Cleared on the handler's own executor, where its owner also emits cancellations.
            auto slot = boost::asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) slot.clear();
            if (out) *out = ec ? std::move(message) : std::string();
            work.reset();
            std::move(handler)(ec, std::move(result));
        });
    }

    Handler handler_;
    boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>> work_;
    std::string* message_out_;
};

using srv_op = pending_op<std::vector<srv_record>>;
using address_op = pending_op<std::vector<boost::asio::ip::address>>;
using txt_op = pending_op<std::vector<txt_record>>;
using seedlist_op = pending_op<seedlist_result>;

void start_seedlist(resolver& r, const connection_string& parsed, std::shared_ptr<seedlist_op> op);

/// Makes the handler_op for `handler` and hands it to `start`.
template <typename Result, typename Handler, typename Start>
void launch(Handler&& handler, const boost::asio::any_io_executor& io_executor, std::string* message_out,
            Start&& start) {
    using op_type = handler_op<Result, std::decay_t<Handler>>;
    auto op = std::make_shared<op_type>(std::forward<Handler>(handler), io_executor, message_out);
    op_type::connect_cancellation(op);
    std::forward<Start>(start)(std::shared_ptr<pending_op<Result>>(std::move(op)));
}

}  // namespace detail

/// SRV and TXT lookups through one c-ares channel, driven by Asio on the resolver's executor:
/// c-ares' sockets are watched with async waits and its timeouts with a steady_timer.
///
/// Operations may be started from any thread (the channel is guarded by a mutex); handlers run on
/// their associated executor (by default the resolver's). Destroying the resolver, or cancel(),
/// completes every pending operation with operation_aborted. Destroy it before its execution
/// context, as any Asio I/O object.
class resolver {
public:
    using executor_type = boost::asio::any_io_executor;
    using srv_signature = void(std::error_code, std::vector<srv_record>);
    using txt_signature = void(std::error_code, std::vector<txt_record>);
    using address_signature = void(std::error_code, std::vector<boost::asio::ip::address>);

    /// Throws configuration_error for a bad TRELLIS_DNS_SERVER or a tries/timeout below 1, and
    /// trellis::error (connection_failure) when c-ares cannot start.
    explicit resolver(executor_type executor, resolver_options options = {});
    template <typename ExecutionContext>
        requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
    explicit resolver(ExecutionContext& context, resolver_options options = {})
        : resolver(executor_type(context.get_executor()), std::move(options)) {}
    ~resolver();
    resolver(const resolver&) = delete;
    resolver& operator=(const resolver&) = delete;

    executor_type get_executor() const noexcept;
    /// The servers c-ares asks, whichever source they came from.
    std::vector<endpoint> servers() const;
    const resolver_options& options() const noexcept;

    /// Completes every pending operation with operation_aborted. The resolver stays usable.
    void cancel();

    /// The SRV records of `name` (e.g. srv_query_name(options)), priority and weight dropped, in
    /// the order DNS gave them. No record is an error (configuration_error), as the spec says.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(srv_signature) Token = boost::asio::deferred_t>
    auto async_query_srv(std::string name, Token&& token = {}) {
        return async_query_srv_impl(std::move(name), nullptr, std::forward<Token>(token));
    }
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(srv_signature) Token = boost::asio::deferred_t>
    auto async_query_srv(std::string name, diagnostics& diag, Token&& token = {}) {
        return async_query_srv_impl(std::move(name), &diag.message, std::forward<Token>(token));
    }

    /// The TXT records of `name`, each one's character-strings concatenated into one string, as
    /// the spec asks (a record's strings may be split at 255 bytes). No record (no data, or
    /// NXDOMAIN) is not an error: the TXT record is optional; the result is then empty.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(txt_signature) Token = boost::asio::deferred_t>
    auto async_query_txt(std::string name, Token&& token = {}) {
        return async_query_txt_impl(std::move(name), nullptr, std::forward<Token>(token));
    }
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(txt_signature) Token = boost::asio::deferred_t>
    auto async_query_txt(std::string name, diagnostics& diag, Token&& token = {}) {
        return async_query_txt_impl(std::move(name), &diag.message, std::forward<Token>(token));
    }

    /// The IPv4 addresses (A records) of `name`: how a client that was given its DNS servers
    /// finds the SRV targets it connects to. No record is an error (configuration_error).
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(address_signature) Token = boost::asio::deferred_t>
    auto async_query_address(std::string name, diagnostics& diag, Token&& token = {}) {
        return boost::asio::async_initiate<Token, address_signature>(
            [this](auto handler, std::string name, std::string* out) {
                detail::launch<std::vector<boost::asio::ip::address>>(
                    std::move(handler), get_executor(), out,
                    [&](std::shared_ptr<detail::address_op> op) { start_address(std::move(name), std::move(op)); });
            },
            token, std::move(name), &diag.message);
    }

private:
    struct impl;
    friend void detail::start_seedlist(resolver&, const connection_string&, std::shared_ptr<detail::seedlist_op>);

    template <typename Token>
    auto async_query_srv_impl(std::string name, std::string* message_out, Token&& token) {
        return boost::asio::async_initiate<Token, srv_signature>(
            [this](auto handler, std::string name, std::string* out) {
                detail::launch<std::vector<srv_record>>(std::move(handler), get_executor(), out,
                                                        [&](std::shared_ptr<detail::srv_op> op) {
                                                            start_srv(std::move(name), std::move(op));
                                                        });
            },
            token, std::move(name), message_out);
    }
    template <typename Token>
    auto async_query_txt_impl(std::string name, std::string* message_out, Token&& token) {
        return boost::asio::async_initiate<Token, txt_signature>(
            [this](auto handler, std::string name, std::string* out) {
                detail::launch<std::vector<txt_record>>(std::move(handler), get_executor(), out,
                                                        [&](std::shared_ptr<detail::txt_op> op) {
                                                            start_txt(std::move(name), std::move(op));
                                                        });
            },
            token, std::move(name), message_out);
    }

    // The record text stays the caller's: the message names `name`.
    void start_srv(std::string name, std::shared_ptr<detail::srv_op> op);
    void start_txt(std::string name, std::shared_ptr<detail::txt_op> op);
    void start_address(std::string name, std::shared_ptr<detail::address_op> op);

    std::shared_ptr<impl> impl_;
};

using seedlist_signature = void(std::error_code, seedlist_result);

/// The spec's preprocessing step for a parsed mongodb+srv:// connection string: the SRV records of
/// srv_query_name(parsed.options) and the TXT records of parsed.options.srv_host, queried
/// concurrently, then resolve_srv() (srvMaxHosts draws from a random_device-seeded generator).
/// A mongodb:// string needs no DNS: it completes at once with `parsed` unchanged.
/// `parsed` is copied; the resolver must outlive the operation.
template <BOOST_ASIO_COMPLETION_TOKEN_FOR(seedlist_signature) Token = boost::asio::deferred_t>
auto async_resolve_seedlist(resolver& r, const connection_string& parsed, Token&& token = {}) {
    return boost::asio::async_initiate<Token, seedlist_signature>(
        [&r](auto handler, connection_string parsed) {
            detail::launch<seedlist_result>(std::move(handler), r.get_executor(), nullptr,
                                            [&](std::shared_ptr<detail::seedlist_op> op) {
                                                detail::start_seedlist(r, parsed, std::move(op));
                                            });
        },
        token, parsed);
}

/// Blocking: async_resolve_seedlist() on an io_context of its own, run on the calling thread.
/// Throws configuration_error (no such records, rejected answers, a bad TRELLIS_DNS_SERVER) or
/// trellis::error (connection_failure: DNS unreachable or failing). The warnings the TXT record
/// gives are appended to `warnings` when it is not null.
client_options resolve_seedlist(const connection_string& parsed, const resolver_options& options = {},
                                std::vector<std::string>* warnings = nullptr);

}  // namespace trellis::dns
