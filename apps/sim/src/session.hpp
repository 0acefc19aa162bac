// One client connection to a simulated member.
#pragma once

#include <variant>

#include "state.hpp"
#include "wire/codec.hpp"

namespace trellis::sim {

namespace auth {
class auth_session;
}

/// A command as the handlers see it: OP_MSG document sequences are folded
/// into the body as arrays, OP_QUERY's $query/$readPreference unwrapped.
struct request {
    bson::document body;
    std::string name;        // the command name (first key)
    std::string db;          // $db, or the OP_QUERY namespace's database
    bool secondary_ok = false;  // OP_QUERY secondaryOk flag, or a non-primary $readPreference
    bool exhaust_allowed = false;
    bool legacy = false;     // arrived as OP_QUERY
};

struct command_result {
    bson::document reply;
    bool close_connection = false;  // failCommand closeConnection, or a hostile request
    bool no_reply = false;          // failCommand closeConnection also sends nothing
    bool close_after_reply = false;  // the reply goes out, then the connection closes
    bool corrupt_compression = false;  // failCommand corruptCompressedReply: cut the compressed reply short
};

class session : public std::enable_shared_from_this<session> {
public:
    using tls_stream = asio::ssl::stream<tcp::socket>;

    session(member& owner, tcp::socket socket);
    session(member& owner, tls_stream stream);

    void start();
    void close();

    member& owner;
    std::int64_t connection_id;
    std::string peer;
    std::string app_name;
    bool authenticated = false;
    std::string user;     // "db.name" once authenticated
    std::shared_ptr<auth::auth_session> auth;  // this connection's authentication state
    std::optional<std::string> client_subject;  // TLS client certificate subject (RFC 2253)
    // Came through the load balancer: the first hello must say loadBalanced: true, and its
    // reply (only that one) carries the router's serviceId.
    bool via_load_balancer = false;
    bool lb_hello_seen = false;
    bool lb_send_service_id = false;
    // Through the load balancer: the transactions started on this connection (raw lsid.id -> the
    // member holding it and its txnNumber). Closing the connection aborts those still in progress,
    // as the load balancers spec asks of the services behind one.
    std::map<std::string, std::pair<member*, std::int64_t>> lb_transactions;

private:
    asio::awaitable<void> run();
    asio::awaitable<bool> handle(const wire::message& msg);
    asio::awaitable<void> send(const std::vector<std::uint8_t>& bytes);
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buffer);
    asio::awaitable<void> reply_delay();
    void fail(const std::string& why);

    std::variant<tcp::socket, tls_stream> stream_;
    bool closed_ = false;
};

/// Runs one command on a member (commands.cpp).
asio::awaitable<command_result> execute(session& s, request& req);
/// Aborts the transactions started on a connection through the load balancer that are still
/// in progress (commands.cpp); called when the connection ends.
void abort_connection_transactions(session& s);
/// hello, isMaster or ismaster (commands.cpp's command table).
bool is_hello_command(std::string_view name);
/// The hello reply of a member (commands.cpp).
bson::document hello_reply(session& s, const request& req);

}  // namespace trellis::sim
