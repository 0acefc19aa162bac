// trellis-bench driver, the raw socket floor: for each operation the same pre-encoded OP_MSG
// (no session, no driver) written to a blocking socket and the whole reply read back. What is
// left is the kernel's and the server's share of a round trip.
#include <cerrno>
#include <chrono>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "args.hpp"
#include "driver_peers.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/oid.hpp"

namespace trellis_bench::driver {

namespace {

using trellis::bson::builder;
using trellis::bson::document;

[[noreturn]] void fail(const std::string& what) { throw failure{1, "raw socket: " + what}; }

/// header (length, requestID, responseTo, opCode 2013), flagBits 0, one kind-0 section.
std::vector<std::uint8_t> op_msg(const document& body, std::int32_t request_id) {
    const auto bytes = body.view().bytes();
    std::vector<std::uint8_t> msg(16 + 4 + 1 + bytes.size());
    auto put = [&](std::size_t at, std::int32_t v) {
        const auto u = static_cast<std::uint32_t>(v);
        for (int i = 0; i < 4; ++i) msg[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(u >> (8 * i));
    };
    put(0, static_cast<std::int32_t>(msg.size()));
    put(4, request_id);
    put(8, 0);
    put(12, 2013);
    put(16, 0);
    msg[20] = 0;
    std::memcpy(msg.data() + 21, bytes.data(), bytes.size());
    return msg;
}

class raw_peer final : public peer {
public:
    explicit raw_peer(const workload& w) : w_(w) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) fail(std::string("socket: ") + std::strerror(errno));
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(w.port));
        if (::inet_pton(AF_INET, w.host.c_str(), &a.sin_addr) != 1) fail("not an IPv4 address: " + w.host);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
            fail("connect to " + w.host + ":" + std::to_string(w.port) + ": " + std::strerror(errno));

        builder hello;
        hello.append("hello", true).append("$db", w.db);
        hello_ = op_msg(hello.extract(), 1);
        for (std::size_t i = 0; i < w.tweets; ++i) {
            builder find;
            find.append("find", w.find_coll);
            find.open_document("filter").append("_id", static_cast<std::int32_t>(i)).close_document();
            find.append("limit", std::int64_t{1}).append("singleBatch", true).append("$db", w.db);
            finds_.push_back(op_msg(find.extract(), static_cast<std::int32_t>(i + 2)));
        }
    }
    ~raw_peer() override { ::close(fd_); }

    std::string name() const override { return "raw"; }
    bool can(task_id task, face f) const override {
        return f.kind == face_kind::serial &&
               (task == task_id::run_command || task == task_id::find_one || task == task_id::insert_one);
    }

    measurement run(task_id task, face, bool check) override {
        std::vector<std::vector<std::uint8_t>> inserts;
        if (task == task_id::insert_one) {
            // Encoded before the clock starts: a fresh _id each, as a driver would add.
            inserts.reserve(w_.ops);
            for (std::size_t i = 0; i < w_.ops; ++i) {
                builder doc;
                doc.append("_id", trellis::bson::oid::generate());
                for (const auto& e : w_.small.view()) doc.append(e);
                builder insert;
                insert.append("insert", w_.insert_coll);
                insert.open_array("documents").append(doc.view()).close_array();
                insert.append("$db", w_.db);
                inserts.push_back(op_msg(insert.extract(), static_cast<std::int32_t>(i + 1)));
            }
        }
        measurement m;
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < w_.ops; ++i) {
            const auto& msg = task == task_id::run_command ? hello_
                              : task == task_id::find_one  ? finds_[static_cast<std::size_t>(find_one_id(i, w_))]
                                                           : inserts[i];
            write_all(msg);
            read_reply();
            if (check) tally(task, m);
        }
        m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return m;
    }

private:
    void write_all(const std::vector<std::uint8_t>& msg) {
        std::size_t done = 0;
        while (done < msg.size()) {
            const ssize_t n = ::send(fd_, msg.data() + done, msg.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail(std::string("send: ") + std::strerror(errno));
            done += static_cast<std::size_t>(n);
        }
    }
    void read_exact(std::uint8_t* p, std::size_t n) {
        std::size_t done = 0;
        while (done < n) {
            const ssize_t got = ::recv(fd_, p + done, n - done, 0);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) fail(got == 0 ? "the server closed the connection" : std::string("recv: ") + std::strerror(errno));
            done += static_cast<std::size_t>(got);
        }
    }
    void read_reply() {
        std::uint8_t header[16];
        read_exact(header, sizeof header);
        const std::uint32_t length = std::uint32_t(header[0]) | std::uint32_t(header[1]) << 8 |
                                     std::uint32_t(header[2]) << 16 | std::uint32_t(header[3]) << 24;
        if (length < 21 || length > 48u * 1024 * 1024) fail("reply of " + std::to_string(length) + " bytes");
        reply_.resize(length - 16);
        read_exact(reply_.data(), reply_.size());
    }
    /// The reply's body (flagBits, kind 0) as a document, for checking.
    void tally(task_id task, measurement& m) {
        const auto body = trellis::bson::document_view::validated({reply_.data() + 5, reply_.size() - 5});
        if (body["ok"].as_double() != 1.0) fail("the server refused: " + std::string(body.find("errmsg") ? body["errmsg"].get_string() : ""));
        if (task == task_id::find_one) {
            const auto batch = body["cursor"].get_document()["firstBatch"].get_array();
            if (batch.size() > 0) {
                m.digest += fnv1a(batch[0].get_document().bytes());
                ++m.documents;
            }
        } else if (task == task_id::run_command) {
            ++m.documents;
        }
    }

    const workload& w_;
    int fd_ = -1;
    std::vector<std::uint8_t> hello_;
    std::vector<std::vector<std::uint8_t>> finds_;
    std::vector<std::uint8_t> reply_;
};

}  // namespace

std::unique_ptr<peer> make_raw_peer(const workload& w) { return std::make_unique<raw_peer>(w); }

}  // namespace trellis_bench::driver
