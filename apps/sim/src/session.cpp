#include "session.hpp"

#include <iostream>

#include "wire/bytes.hpp"
#include "wire/frame_decoder.hpp"

namespace trellis::sim {

using asio::use_awaitable;

session::session(member& m, tcp::socket socket) : owner(m), connection_id(m.next_connection_id++), stream_(std::move(socket)) {
    boost::system::error_code ec;
    auto ep = std::get<tcp::socket>(stream_).remote_endpoint(ec);
    peer = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    ++m.connections_created;
}

session::session(member& m, tls_stream stream) : owner(m), connection_id(m.next_connection_id++), stream_(std::move(stream)) {
    boost::system::error_code ec;
    auto ep = std::get<tls_stream>(stream_).lowest_layer().remote_endpoint(ec);
    peer = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    ++m.connections_created;
}

void session::start() {
    auto self = shared_from_this();
    asio::co_spawn(owner.dep.io, [self]() -> asio::awaitable<void> { co_await self->run(); }, asio::detached);
}

void session::close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    std::visit(
        [&](auto& s) {
            auto& sock = [&]() -> tcp::socket& {
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, tcp::socket>) return s;
                else return s.next_layer();
            }();
            sock.shutdown(tcp::socket::shutdown_both, ec);
            sock.close(ec);
        },
        stream_);
}

void session::fail(const std::string& why) {
    log_line(owner.address() + ": closing connection " + std::to_string(connection_id) + " from " + peer + ": " + why);
    close();
}

asio::awaitable<std::size_t> session::read_some(std::span<std::uint8_t> buffer) {
    const std::size_t n = co_await std::visit(
        [&](auto& s) { return s.async_read_some(asio::buffer(buffer.data(), buffer.size()), use_awaitable); }, stream_);
    owner.bytes_in += static_cast<std::int64_t>(n);
    co_return n;
}

asio::awaitable<void> session::send(const std::vector<std::uint8_t>& bytes) {
    co_await std::visit([&](auto& s) { return asio::async_write(s, asio::buffer(bytes), use_awaitable); }, stream_);
    owner.bytes_out += static_cast<std::int64_t>(bytes.size());
}

asio::awaitable<void> session::reply_delay() {
    auto delay = owner.latency;
    if (owner.jitter.count() > 0)
        delay += std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, owner.jitter.count())(owner.rng));
    if (delay.count() > 0) co_await owner.dep.pause(delay);
}

asio::awaitable<void> session::run() {
    auto self = shared_from_this();  // keeps the session alive while the coroutine runs
    if (auto* tls = std::get_if<tls_stream>(&stream_)) {
        try {
            co_await tls->async_handshake(asio::ssl::stream_base::server, use_awaitable);
            // MONGODB-X509 needs the client certificate's subject.
            if (X509* cert = SSL_get_peer_certificate(tls->native_handle())) {
                BIO* bio = BIO_new(BIO_s_mem());
                X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
                char* data = nullptr;
                const long n = BIO_get_mem_data(bio, &data);
                client_subject = std::string(data, static_cast<std::size_t>(n));
                BIO_free(bio);
                X509_free(cert);
            }
        } catch (const std::exception& e) {
            fail(std::string("TLS handshake failed: ") + e.what());
            owner.sessions.erase(self);
            co_return;
        }
    }
    wire::limits limits;  // hello's: a larger message (or document in one) closes the connection
    limits.max_message_size = static_cast<std::size_t>(owner.dep.cfg.max_message_size_bytes);
    limits.max_bson_object_size = static_cast<std::size_t>(owner.dep.cfg.max_bson_object_size);
    wire::frame_decoder decoder(limits, owner.dep.compressors);
    try {
        while (!closed_) {
            while (auto msg = decoder.next()) {
                if (!co_await handle(*msg)) break;
                if (closed_) break;
            }
            if (closed_) break;
            auto buffer = decoder.prepare(64 * 1024);
            const std::size_t n = co_await read_some(buffer);
            decoder.commit(n);
        }
    } catch (const boost::system::system_error& e) {
        // The peer went away (or we closed the socket): nothing to log.
        if (e.code() != asio::error::eof && e.code() != asio::error::operation_aborted &&
            e.code() != asio::error::connection_reset && e.code() != asio::error::bad_descriptor &&
            e.code() != asio::ssl::error::stream_truncated)
            fail(e.what());
        close();
    } catch (const std::exception& e) {
        // Garbage, truncated frames, absurd lengths, invalid BSON: close and log, never crash.
        fail(e.what());
    }
    abort_connection_transactions(*this);
    owner.sessions.erase(self);
}

namespace {

// Folds OP_MSG document sequences into the body as arrays.
bson::document merge_sequences(const wire::op_msg& m) {
    const bson::document_view body = bson::document_view::validated(m.body);
    if (m.sequences.empty()) return bson::document(body);
    bson::builder b;
    b.concat(body);
    for (const auto& seq : m.sequences) {
        b.open_array(seq.identifier);
        for (const auto& d : seq.documents) b.append(bson::document_view::validated(d));
        b.close_array();
    }
    return b.extract();
}

bool non_primary_read_preference(bson::document_view body) {
    if (auto rp = body.find("$readPreference"); rp && rp->type() == bson::type::document)
        if (auto mode = rp->get_document().find("mode"); mode && mode->type() == bson::type::string)
            return mode->get_string() != "primary";
    return false;
}

// Rebuilds a hello request carrying the topologyVersion of the last reply (exhaust streaming).
bson::document with_topology_version(bson::document_view body, bson::document_view last_reply) {
    bson::builder b;
    for (const auto& e : body)
        if (e.key() != "topologyVersion") b.append(e);
    if (auto tv = last_reply.find("topologyVersion")) b.append(*tv);
    return b.extract();
}

}  // namespace

asio::awaitable<bool> session::handle(const wire::message& msg) {
    request req;
    std::uint32_t in_flags = 0;
    if (const auto* m = msg.as_msg()) {
        in_flags = m->flags;
        req.body = merge_sequences(*m);
        for (const auto& seq : m->sequences) {
            const std::string id(seq.identifier);
            ++owner.sequences_in[id];
            owner.sequence_documents_in[id] += static_cast<std::int64_t>(seq.documents.size());
        }
        req.exhaust_allowed = (m->flags & wire::msg_flags::exhaust_allowed) != 0;
        if (auto db = req.body.find("$db"); db && db->type() == bson::type::string) req.db = std::string(db->get_string());
        req.secondary_ok = non_primary_read_preference(req.body);
    } else if (const auto* q = msg.as_query()) {
        req.legacy = true;
        const std::string_view ns = q->full_collection_name;
        const auto dot = ns.find('.');
        req.db = std::string(ns.substr(0, dot));
        const bson::document_view query = bson::document_view::validated(q->query);
        req.secondary_ok = (q->flags & wire::query_flags::secondary_ok) != 0;
        if (auto inner = query.find("$query"); inner && inner->type() == bson::type::document) {
            req.body = bson::document(inner->get_document());
            if (non_primary_read_preference(query)) req.secondary_ok = true;
        } else {
            req.body = bson::document(query);
        }
        if (dot == std::string_view::npos || ns.substr(dot + 1) != "$cmd") {
            // Legacy OP_QUERY finds are gone from modern servers.
            bson::builder b;
            b.append("$err", "OP_QUERY is no longer supported for queries; use the find command").append("code", 5739101);
            std::vector<std::uint8_t> out;
            wire::op_reply reply;
            reply.response_flags = wire::reply_flags::query_failure;
            const bson::document err = b.extract();
            reply.documents.push_back(err.bytes());
            wire::encode_op_reply(out, wire::next_request_id(), msg.header.request_id, reply);
            co_await send(out);
            co_return true;
        }
    } else {
        fail("unexpected OP_REPLY from a client");
        co_return false;
    }
    if (!req.body.empty()) req.name = std::string(req.body.begin()->key());
    ++owner.requests;

    std::int32_t response_to = msg.header.request_id;
    for (;;) {
        // Partitioned members: "hang" holds requests until healed; "refuse" has closed us already.
        while (owner.partitioned == partition_mode::hang && !closed_)
            co_await owner.changed.wait_until(steady::now() + std::chrono::seconds(1));
        if (closed_) co_return false;

        command_result result = co_await execute(*this, req);
        if (result.close_connection) {
            close();
            co_return false;
        }
        if (owner.partitioned == partition_mode::drop_replies) co_return true;
        if (!req.legacy && (in_flags & wire::msg_flags::more_to_come) != 0) co_return true;  // w:0, no reply

        co_await reply_delay();
        if (closed_) co_return false;
        // Reused from reply to reply: a fresh 16 MB buffer per find batch cost 2,000 page faults.
        std::vector<std::uint8_t> out = owner.dep.take_reply_buffer(result.reply.size() + 64);
        const bool is_hello = is_hello_command(req.name);
        // Exhaust: an awaitable hello streams topology changes; a getMore streams the batches
        // of its cursor until the cursor is exhausted (OP_MSG moreToCome).
        const bool ok = result.reply["ok"].as_bool();
        const bool stream_hello = is_hello && req.body.find("topologyVersion") && req.body.find("maxAwaitTimeMS");
        const bool stream_cursor = req.name == "getMore" && ok && result.reply["cursor"].get_document()["id"].as_int64() != 0;
        const bool stream = !req.legacy && req.exhaust_allowed && ok && (stream_hello || stream_cursor);
        if (req.legacy) {
            wire::op_reply reply;
            reply.documents.push_back(result.reply.bytes());
            wire::encode_op_reply(out, wire::next_request_id(), response_to, reply);
        } else {
            // Each further exhaust reply answers the previous one (OP_MSG spec).
            const std::int32_t id = wire::next_request_id();
            wire::encode_op_msg(out, id, response_to, stream ? wire::msg_flags::more_to_come : 0u, result.reply.bytes());
            response_to = id;
        }
        // A compressed request gets a reply compressed the same way, unless the
        // command is one the compression spec keeps uncompressed.
        if (msg.compressor_id && wire::is_compressible_command(req.name))
            if (auto c = owner.dep.compressors->find(*msg.compressor_id)) {
                std::vector<std::uint8_t> wrapped;
                wire::encode_compressed(wrapped, out, *c);
                if (result.corrupt_compression) {
                    // Half of the compressed payload (after the 25 bytes of headers) goes missing;
                    // messageLength follows, so only the payload is bad.
                    constexpr std::size_t headers = 16 + 9;
                    wrapped.resize(headers + (wrapped.size() - headers) / 2);
                    wire::store_le(wrapped.data(), static_cast<std::int32_t>(wrapped.size()));
                }
                out.swap(wrapped);
            }
        co_await send(out);
        owner.dep.return_reply_buffer(std::move(out));
        if (result.close_after_reply) {
            fail("the client came through the load balancer without loadBalanced: true");
            co_return false;
        }
        if (!stream) co_return true;
        if (stream_hello) req.body = with_topology_version(req.body, result.reply);
    }
}

}  // namespace trellis::sim
