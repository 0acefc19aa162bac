// trellis::dns::resolver: one c-ares channel driven by Asio.
//
// c-ares owns its sockets. It tells us through ARES_OPT_SOCK_STATE_CB which ones to watch for
// reading or writing (and, with 0/0, that it is about to close one); we wrap each in a
// posix::stream_descriptor only to async_wait on it, call ares_process_fd when it is ready, and
// release (never close) the descriptor when c-ares is done with it. ares_timeout() tells us when
// c-ares next needs the clock; one steady_timer waits for that. Nothing blocks and no thread is
// started: everything runs on the resolver's executor.
//
// One mutex guards the channel, the watches and the timer, so that operations may be started,
// cancelled or the resolver destroyed from any thread while handlers run on a multi-threaded
// io_context. No user code runs under it: completions are posted (detail::pending_op).
#include <ares.h>
#include <arpa/inet.h>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "trellis/dns.hpp"
#include "trellis/errors.hpp"

namespace trellis::dns {
namespace {

namespace asio = boost::asio;

// RFC 1035 class IN and the RR types we ask for (RFC 2782 SRV = 33, RFC 1035 TXT = 16); spelled
// out rather than taken from <arpa/nameser.h>, whose names vary between C libraries.
constexpr int class_in = 1;
constexpr int type_a = 1;
constexpr int type_txt = 16;
constexpr int type_srv = 33;

// c-ares needs ares_library_init before the first channel on some platforms; on Linux it is
// cheap, and once per process is enough (it is reference-counted and not thread-safe, hence the
// function-local static).
void init_library() {
    static const int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS)
        throw error(errc::connection_failure, std::string("cannot initialise c-ares: ") + ares_strerror(status));
}

// What a c-ares status means for us. The name is the problem (no such name, no such records,
// not a valid name): the connection string cannot be used, a configuration error. DNS could
// not be asked or answered badly: a connection failure, which may pass.
std::error_code error_for(int status) {
    switch (status) {
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
        return errc::configuration_error;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return detail::operation_aborted();
    default:
        return errc::connection_failure;
    }
}

std::vector<endpoint> parse_server_list(std::string_view text, std::string_view source) {
    std::vector<endpoint> servers;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        std::string_view item = text.substr(start, comma - start);
        start = comma + 1;
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty()) continue;
        try {
            servers.push_back(endpoint::parse(item));
        } catch (const configuration_error& e) {
            throw configuration_error(std::string(source) + ": " + e.what());
        }
    }
    return servers;
}

}  // namespace

struct resolver::impl : std::enable_shared_from_this<impl> {
    // One socket c-ares asked us to watch.
    struct watch {
        watch(const executor_type& executor, ares_socket_t fd) : descriptor(executor), fd(fd) {}
        asio::posix::stream_descriptor descriptor;
        ares_socket_t fd;
        bool want_read = false, want_write = false;
        bool read_pending = false, write_pending = false;
        // Set when c-ares said it is closing the socket: a handler still queued for it must not
        // touch the number, which c-ares may already have given to a new socket.
        bool closed = false;
    };

    impl(executor_type executor, resolver_options opts)
        : executor(std::move(executor)), options(std::move(opts)), timer(this->executor) {}

    ~impl() { shutdown(); }

    void start() {
        if (options.tries < 1) throw configuration_error("the DNS resolver needs tries of at least 1");
        if (options.timeout < std::chrono::milliseconds(1))
            throw configuration_error("the DNS resolver needs a timeout of at least 1 ms");
        std::vector<endpoint> servers = options.servers;
        if (servers.empty()) {
            if (const char* env = std::getenv(server_environment_variable); env && *env)
                servers = parse_server_list(env, server_environment_variable);
        }

        init_library();
        ares_options opts{};
        opts.timeout = static_cast<int>(std::min<std::chrono::milliseconds::rep>(options.timeout.count(), 1 << 30));
        opts.tries = options.tries;
        opts.sock_state_cb = &impl::on_sock_state;
        opts.sock_state_cb_data = this;  // the channel dies with this object, so a raw pointer is enough
        const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
        if (const int status = ares_init_options(&channel, &opts, mask); status != ARES_SUCCESS) {
            channel = nullptr;
            throw error(errc::connection_failure,
                        std::string("cannot start the DNS resolver: ") + ares_strerror(status));
        }
        if (!servers.empty()) set_servers(servers);
        servers_text = describe_servers();
    }

    void set_servers(const std::vector<endpoint>& servers) {
        std::vector<ares_addr_port_node> nodes(servers.size());
        for (std::size_t i = 0; i < servers.size(); ++i) {
            ares_addr_port_node& n = nodes[i];
            n.next = i + 1 < servers.size() ? &nodes[i + 1] : nullptr;
            if (servers[i].address.is_v4()) {
                n.family = AF_INET;
                const auto bytes = servers[i].address.to_v4().to_bytes();
                std::memcpy(&n.addr.addr4, bytes.data(), bytes.size());
            } else {
                n.family = AF_INET6;
                const auto bytes = servers[i].address.to_v6().to_bytes();
                std::memcpy(&n.addr.addr6, bytes.data(), bytes.size());
            }
            n.udp_port = n.tcp_port = servers[i].port;
        }
        if (const int status = ares_set_servers_ports(channel, nodes.data()); status != ARES_SUCCESS) {
            ares_destroy(channel);
            channel = nullptr;
            throw error(errc::connection_failure, std::string("cannot set the DNS servers: ") + ares_strerror(status));
        }
    }

    std::vector<endpoint> current_servers() const {
        std::vector<endpoint> result;
        if (!channel) return result;
        ares_addr_port_node* list = nullptr;
        if (ares_get_servers_ports(channel, &list) != ARES_SUCCESS) return result;
        for (const ares_addr_port_node* n = list; n; n = n->next) {
            endpoint e;
            if (n->family == AF_INET) {
                asio::ip::address_v4::bytes_type b;
                std::memcpy(b.data(), &n->addr.addr4, b.size());
                e.address = asio::ip::address_v4(b);
            } else if (n->family == AF_INET6) {
                asio::ip::address_v6::bytes_type b;
                std::memcpy(b.data(), &n->addr.addr6, b.size());
                e.address = asio::ip::address_v6(b);
            } else {
                continue;
            }
            e.port = static_cast<std::uint16_t>(n->udp_port ? n->udp_port : 53);
            result.push_back(e);
        }
        ares_free_data(list);
        return result;
    }

    std::string describe_servers() const {
        std::string text;
        for (const endpoint& e : current_servers()) text += (text.empty() ? "" : ", ") + e.to_string();
        return text.empty() ? "none" : text;
    }

    // Under the mutex. Completes every pending query with ARES_EDESTRUCTION and lets go of the sockets.
    void shutdown() {
        if (channel) {
            ares_destroy(channel);  // calls the query callbacks, then on_sock_state(fd, 0, 0) per socket
            channel = nullptr;
        }
        for (auto& [fd, w] : watches) forget(*w);
        watches.clear();
        timer.cancel();
    }

    // ------------------------------------------------------------------ sockets

    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
        static_cast<impl*>(data)->sock_state(fd, readable != 0, writable != 0);
    }

    // Runs inside a c-ares call we made, so under the mutex. Must not throw (C caller).
    void sock_state(ares_socket_t fd, bool readable, bool writable) noexcept {
        auto it = watches.find(fd);
        if (!readable && !writable) {
            if (it != watches.end()) {
                forget(*it->second);
                watches.erase(it);
            }
            return;
        }
        try {
            if (it == watches.end()) {
                auto w = std::make_shared<watch>(executor, fd);
                boost::system::error_code ec;
                w->descriptor.assign(fd, ec);
                // Unwatchable (should not happen): c-ares' own timeout then fails the query.
                if (ec) return;
                it = watches.emplace(fd, std::move(w)).first;
            }
            it->second->want_read = readable;
            it->second->want_write = writable;
            arm(it->second);
        } catch (...) {
            // Out of memory: as above, the query times out rather than the process aborting.
        }
    }

    // Releases the descriptor without closing it: the socket is c-ares'. Pending waits complete
    // with operation_aborted and find `closed` set.
    static void forget(watch& w) noexcept {
        w.closed = true;
        if (w.descriptor.is_open()) (void)w.descriptor.release();
    }

    void arm(const std::shared_ptr<watch>& w) {
        if (w->want_read && !w->read_pending) {
            w->read_pending = true;
            wait(w, true);
        }
        if (w->want_write && !w->write_pending) {
            w->write_pending = true;
            wait(w, false);
        }
    }

    // Weak references: a queued handler must neither keep a destroyed resolver's state alive nor
    // reach a socket c-ares has closed.
    void wait(const std::shared_ptr<watch>& w, bool read) {
        using base = asio::posix::descriptor_base;
        auto on_wait = [self = weak_from_this(), ww = std::weak_ptr<watch>(w), read](boost::system::error_code ec) {
            if (auto s = self.lock()) s->on_ready(ww, read, ec);
        };
        w->descriptor.async_wait(read ? base::wait_read : base::wait_write, std::move(on_wait));
    }

    void on_ready(const std::weak_ptr<watch>& weak, bool read, boost::system::error_code ec) {
        std::lock_guard lock(mutex);
        const std::shared_ptr<watch> w = weak.lock();
        if (!w || w->closed || !channel) return;
        (read ? w->read_pending : w->write_pending) = false;
        if (ec == asio::error::operation_aborted) {
            arm(w);
            return;
        }
        ares_process_fd(channel, read ? w->fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : w->fd);
        // A failed wait (not expected from epoll) is not re-armed, so that it cannot spin: c-ares
        // has seen the socket's error, or its timeout will fire.
        if (!w->closed && channel && !ec) arm(w);
        schedule_timeout();
    }

    // ------------------------------------------------------------------ timeouts

    // Under the mutex, after every c-ares call: c-ares' next deadline may have moved.
    void schedule_timeout() {
        timeval tv{};
        if (!channel || !ares_timeout(channel, nullptr, &tv)) {
            timer.cancel();  // no query pending
            return;
        }
        timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
        timer.async_wait([self = weak_from_this()](boost::system::error_code ec) {
            if (ec == asio::error::operation_aborted) return;  // rescheduled or shut down
            auto s = self.lock();
            if (!s) return;
            std::lock_guard lock(s->mutex);
            if (!s->channel) return;
            ares_process_fd(s->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // handles timeouts
            s->schedule_timeout();
        });
    }

    // ------------------------------------------------------------------ queries

    template <typename Result>
    struct query {
        const char* kind;  // "SRV", "TXT"
        std::string name;
        std::string servers;
        std::shared_ptr<detail::pending_op<Result>> op;

        void fail(int status) {
            std::string message = std::string(kind) + " lookup of " + name + " failed: " + ares_strerror(status);
            const std::error_code ec = error_for(status);
            // When DNS itself failed, say whom we asked: the usual cause is the wrong server.
            if (ec == errc::connection_failure) message += " (DNS servers: " + servers + ")";
            op->complete(ec, Result{}, std::move(message));
        }
    };

    template <typename Result>
    void start_query(const char* kind, int type, std::string name, std::shared_ptr<detail::pending_op<Result>> op,
                     ares_callback callback) {
        auto q = std::make_unique<query<Result>>(query<Result>{kind, std::move(name), {}, std::move(op)});
        std::lock_guard lock(mutex);
        q->servers = servers_text;
        if (!channel) {  // only between shutdown() and the end of the destructor
            q->fail(ARES_EDESTRUCTION);
            return;
        }
        query<Result>* arg = q.release();  // the callback, always called exactly once, owns it
        ares_query(channel, arg->name.c_str(), class_in, type, callback, arg);
        schedule_timeout();
    }

    static void on_srv(void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
        std::unique_ptr<query<std::vector<srv_record>>> q(static_cast<query<std::vector<srv_record>>*>(arg));
        if (status != ARES_SUCCESS) return q->fail(status);
        ares_srv_reply* replies = nullptr;
        if (const int parsed = ares_parse_srv_reply(answer, length, &replies); parsed != ARES_SUCCESS)
            return q->fail(parsed);
        std::vector<srv_record> records;
        try {
            for (const ares_srv_reply* r = replies; r; r = r->next) records.push_back({r->host, r->port});
        } catch (...) {
            ares_free_data(replies);
            return q->fail(ARES_ENOMEM);
        }
        ares_free_data(replies);
        // c-ares reports an empty answer as ARES_ENODATA already; kept for a reply that parses to nothing.
        if (records.empty()) return q->fail(ARES_ENODATA);
        q->op->complete({}, std::move(records), {});
    }

    static void on_txt(void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
        std::unique_ptr<query<std::vector<txt_record>>> q(static_cast<query<std::vector<txt_record>>*>(arg));
        // The TXT record is optional: no such name or no TXT data simply means no options.
        if (status == ARES_ENODATA || status == ARES_ENOTFOUND) return q->op->complete({}, {}, {});
        if (status != ARES_SUCCESS) return q->fail(status);
        ares_txt_ext* chunks = nullptr;
        const int parsed = ares_parse_txt_reply_ext(answer, length, &chunks);
        if (parsed == ARES_ENODATA) return q->op->complete({}, {}, {});
        if (parsed != ARES_SUCCESS) return q->fail(parsed);
        // One txt_record per record, holding its character-strings in order; resolve_srv()
        // concatenates them as the spec says.
        std::vector<txt_record> records;
        try {
            for (const ares_txt_ext* c = chunks; c; c = c->next) {
                if (c->record_start || records.empty()) records.emplace_back();
                records.back().emplace_back(reinterpret_cast<const char*>(c->txt), c->length);
            }
        } catch (...) {
            ares_free_data(chunks);
            return q->fail(ARES_ENOMEM);
        }
        ares_free_data(chunks);
        q->op->complete({}, std::move(records), {});
    }

    static void on_address(void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
        using result = std::vector<asio::ip::address>;
        std::unique_ptr<query<result>> q(static_cast<query<result>*>(arg));
        if (status != ARES_SUCCESS) return q->fail(status);
        std::array<ares_addrttl, 32> found{};
        int count = static_cast<int>(found.size());
        if (const int parsed = ares_parse_a_reply(answer, length, nullptr, found.data(), &count); parsed != ARES_SUCCESS)
            return q->fail(parsed);
        result addresses;
        try {
            for (int i = 0; i < count; ++i) {
                asio::ip::address_v4::bytes_type b;
                std::memcpy(b.data(), &found[static_cast<std::size_t>(i)].ipaddr, b.size());
                addresses.emplace_back(asio::ip::address_v4(b));
            }
        } catch (...) {
            return q->fail(ARES_ENOMEM);
        }
        if (addresses.empty()) return q->fail(ARES_ENODATA);
        q->op->complete({}, std::move(addresses), {});
    }

    executor_type executor;
    resolver_options options;
    std::mutex mutex;
    ares_channel channel = nullptr;
    std::unordered_map<ares_socket_t, std::shared_ptr<watch>> watches;
    asio::steady_timer timer;
    std::string servers_text;
};

resolver::resolver(executor_type executor, resolver_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {
    impl_->start();
}

resolver::~resolver() {
    std::lock_guard lock(impl_->mutex);
    impl_->shutdown();
}

resolver::executor_type resolver::get_executor() const noexcept { return impl_->executor; }

const resolver_options& resolver::options() const noexcept { return impl_->options; }

std::vector<endpoint> resolver::servers() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->current_servers();
}

void resolver::cancel() {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->channel) return;
    ares_cancel(impl_->channel);  // calls every pending query's callback with ARES_ECANCELLED
    impl_->schedule_timeout();
}

void resolver::start_srv(std::string name, std::shared_ptr<detail::srv_op> op) {
    impl_->start_query("SRV", type_srv, std::move(name), std::move(op), &impl::on_srv);
}

void resolver::start_address(std::string name, std::shared_ptr<detail::address_op> op) {
    impl_->start_query("A", type_a, std::move(name), std::move(op), &impl::on_address);
}

void resolver::start_txt(std::string name, std::shared_ptr<detail::txt_op> op) {
    impl_->start_query("TXT", type_txt, std::move(name), std::move(op), &impl::on_txt);
}

}  // namespace trellis::dns
