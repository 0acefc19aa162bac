#include "trellis/reply.hpp"
#include "connection/connection.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <utility>

#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "bson/validator.hpp"
#include "pool/strand.hpp"
#include "wire/frame_decoder.hpp"

namespace trellis::conn {

namespace asio = boost::asio;

bool command_reply::ok() const noexcept { return reply_ok(body); }

bool is_sensitive_command(std::string_view name, bson::document_view command) noexcept {
    std::string lower(name);
    for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    static constexpr std::string_view always[] = {"authenticate", "saslstart",      "saslcontinue",    "getnonce", "createuser",
                                                  "updateuser",   "copydbgetnonce", "copydbsaslstart", "copydb"};
    for (auto s : always)
        if (lower == s) return true;
    if (lower == "hello" || lower == "ismaster") return command.contains("speculativeAuthenticate");
    return false;
}

namespace detail {

using handler_type = asio::any_completion_handler<connection::command_signature>;

struct connection_state final : std::enable_shared_from_this<connection_state>, deferred_io {
    connection_state(std::unique_ptr<sdk::stream> s, connection_settings cfg)
        : stream(std::move(s)), executor(stream->get_executor()), timer(executor), settings(std::move(cfg)),
          decoder(wire::limits{}, settings.compressors, settings.buffers) {
        last_used_ns.store(std::chrono::steady_clock::now().time_since_epoch().count());
    }

    std::unique_ptr<sdk::stream> stream;
    const int wait_handle = stream->wait_handle();
    asio::any_io_executor executor;
    asio::steady_timer timer;
    connection_settings settings;
    handshake::connection_description description;
    std::shared_ptr<const wire::compressor> compressor;  // negotiated
    wire::frame_decoder decoder;
    // A reply that takes several reads is validated as it comes (check_ahead).
    bson::detail::validator ahead;
    bool checking_ahead = false;
    std::int64_t event_id = 0;

    std::atomic<bool> perished{false};
    std::atomic<std::int64_t> last_used_ns{0};
    mutable std::mutex error_mutex;
    std::string error_text;

    // The operation in flight.
    bool busy = false;
    // Optional and emplaced: Boost 1.81's any_completion_handler move assignment recurses
    // forever, so handlers are only ever move-constructed.
    std::optional<handler_type> handler;
    std::optional<asio::any_completion_executor> handler_work;
    std::vector<std::uint8_t> out;
    std::size_t written = 0;
    std::int32_t request_id = 0;
    std::int32_t expected_response_to = 0;  // the id a reply must answer
    bool expecting_more = false;            // the last reply said moreToCome
    bool timed_out = false;
    bool interrupted = false;
    bool unacknowledged = false;            // sent with moreToCome: no reply to wait for
    std::optional<std::chrono::milliseconds> op_timeout;
    steady_time started{};
    bool starting = false;  // inside an inline start: a completion now is posted, not run
    // Parked: the blocking caller does the I/O (deferred_io). While it may be at it, close and
    // interrupt leave the stream open and wake it instead; it stops and the resume fails.
    io_parking* parking = nullptr;
    bool performed = false;
    std::atomic<bool> abort_parked{false};
    std::error_code parked_error;
    // For events.
    bool sensitive = false;
    std::string command_name, database;

    /// Runs f on the handler's executor `work` later, never now: through the connection's
    /// executor, as an Asio operation completes (a completion executor cannot be posted to).
    template <class F>
    void post_to(asio::any_completion_executor work, F f) {
        asio::post(executor, [work = std::move(work), f = std::move(f)]() mutable { asio::dispatch(work, std::move(f)); });
    }

    void set_error(std::string text) {
        std::lock_guard lock(error_mutex);
        error_text = std::move(text);
    }

    std::chrono::milliseconds timeout_ms() const {
        if (op_timeout) return *op_timeout;
        return settings.socket_timeout.value_or(std::chrono::milliseconds(0));
    }

    void begin(handler_type h, std::optional<std::chrono::milliseconds> t) {
        handler.emplace(std::move(h));
        handler_work.emplace(
            asio::prefer(asio::get_associated_executor(*handler, executor), asio::execution::outstanding_work.tracked));
        busy = true;
        timed_out = false;
        op_timeout = t;
        started = std::chrono::steady_clock::now();
        // Per-operation cancellation (terminal): the stream is closed, as an interrupted read
        // leaves the wire in an unknown state.
        if (auto slot = asio::get_associated_cancellation_slot(*handler); slot.is_connected()) {
            std::weak_ptr<connection_state> weak = shared_from_this();
            slot.assign([weak](asio::cancellation_type) {
                if (auto self = weak.lock())
                    asio::post(self->executor, [self] {
                        if (!self->busy) return;
                        self->interrupted = true;
                        self->close_stream();
                    });
            });
        }
        arm_timer(timeout_ms());
    }

    void arm_timer(std::chrono::nanoseconds t) {
        if (t.count() <= 0) return;
        timer.expires_after(t);
        timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec || !self->busy) return;
            self->timed_out = true;
            self->stream->close();
        });
    }

    /// Closes the stream, or, with the I/O parked, has the caller stop (the resume closes it).
    void close_stream() {
        if (!parking) return stream->close();
        abort_parked = true;
        parking->wake();
    }

    void finish(std::error_code ec, command_reply reply) {
        timer.cancel();
        busy = false;
        handler_type h(std::move(*handler));
        handler.reset();
        asio::get_associated_cancellation_slot(h).clear();
        last_used_ns.store(std::chrono::steady_clock::now().time_since_epoch().count());
        asio::any_completion_executor work(std::move(*handler_work));
        handler_work.reset();
        auto complete = [h = std::move(h), ec, reply = std::move(reply)]() mutable { std::move(h)(ec, std::move(reply)); };
        if (starting) post_to(work, std::move(complete));  // never inside the initiating call
        else asio::dispatch(work, std::move(complete));
    }

    // A network, timeout or protocol failure: the connection is done for.
    void fail(std::error_code ec, std::string text) {
        perished = true;
        stream->close();
        expecting_more = false;
        set_error(text);
        emit_failed(ec, 0, sensitive ? std::string() : text, bson::document());
        finish(ec, command_reply{});
    }

    void fail_io(const std::error_code& io) {
        const auto& a = settings.address;
        if (timed_out)
            fail(make_error_code(errc::network_timeout),
                 a + ": no reply within the socket timeout of " + std::to_string(timeout_ms().count()) + " ms");
        else if (interrupted)
            fail(make_error_code(errc::connection_failure), a + ": connection interrupted (operation cancelled or pool cleared)");
        else if (io == std::error_code(boost::system::error_code(asio::error::eof)))
            fail(make_error_code(errc::connection_failure), a + ": connection closed by the server");
        else
            fail(make_error_code(errc::connection_failure), a + ": " + io.message());
    }

    // ---- monitoring

    // The fields every command event carries.
    template <class Event>
    Event event() const {
        Event e;
        e.address = settings.address;
        e.connection_id = event_id;
        e.server_connection_id = description.server_connection_id;
        e.service_id = description.service_id;
        e.request_id = request_id;
        e.database_name = database;
        e.command_name = command_name;
        return e;
    }

    void emit_started(const bson::document& command) {
        if (!settings.on_command) return;
        auto e = event<command_started_event>();
        if (!sensitive) e.command = command;
        settings.on_command(e);
    }

    void emit_succeeded(const command_reply& r) {
        if (!settings.on_command) return;
        auto e = event<command_succeeded_event>();
        e.duration = r.duration;
        if (!sensitive && !r.body.empty()) e.reply = bson::document(r.body);
        else if (!sensitive && unacknowledged) e.reply = bson::make_document(bson::kvp("ok", 1));  // w: 0 (command monitoring spec)
        settings.on_command(e);
    }

    void emit_failed(std::error_code ec, int server_code, std::string text, bson::document reply) {
        if (!settings.on_command) return;
        auto e = event<command_failed_event>();
        e.duration = std::chrono::steady_clock::now() - started;
        e.code = ec;
        e.server_code = server_code;
        if (!sensitive) {
            e.failure = std::move(text);
            e.reply = std::move(reply);
        }
        settings.on_command(e);
    }

    // ---- the operation

    void start_command(command_request req, handler_type h) {
        if (busy) {
            // A caller error: one operation at a time. Reported, not undefined.
            auto work = asio::prefer(asio::get_associated_executor(h, executor), asio::execution::outstanding_work.tracked);
            post_to(work, [h = std::move(h)]() mutable {  // perhaps inside the initiating call
                std::move(h)(make_error_code(errc::connection_failure), command_reply{});
            });
            return;
        }
        database = req.database;
        command_name = req.command.view().empty() ? std::string() : std::string(req.command.view().begin()->key());
        sensitive = is_sensitive_command(command_name, req.command.view());
        request_id = wire::next_request_id();
        begin(std::move(h), req.timeout);
        if (perished) {
            const std::string why = last_error_text();
            fail(make_error_code(errc::connection_failure),
                 settings.address + ": connection is closed" + (why.empty() ? "" : " (" + why + ")"));
            return;
        }
        if (expecting_more) {
            fail(make_error_code(errc::protocol_error),
                 settings.address + ": a command was sent while an exhaust reply stream was still open");
            return;
        }
        bson::document full;
        try {
            wire::limits lim{static_cast<std::size_t>(description.max_message_size_bytes),
                             static_cast<std::size_t>(description.max_bson_object_size)};
            out.clear();
            written = 0;
            if (req.op_query) {
                full = req.command;
                wire::op_query q;
                q.full_collection_name = "admin.$cmd";
                q.number_to_return = -1;
                q.query = full.bytes();
                wire::encode_op_query(out, request_id, 0, q, lim);
            } else {
                const bool api = !settings.server_api.view().empty();
                if (req.has_db && !api) {
                    full = std::move(req.command);
                } else {
                    bson::builder b;
                    b.concat(req.command.view());
                    if (api) b.concat(settings.server_api.view());
                    if (!req.has_db) b.append("$db", req.database);
                    full = b.extract();
                }
                std::uint32_t flags = 0;
                if (req.exhaust_allowed) flags |= wire::msg_flags::exhaust_allowed;
                if (req.more_to_come) flags |= wire::msg_flags::more_to_come;
                wire::encode_op_msg(out, request_id, 0, flags, full.bytes(), req.sequences, lim);
                if (!req.sequences.empty() && settings.on_command) {
                    // Command monitoring shows a document sequence as the array it stands for.
                    bson::builder merged;
                    merged.concat(full.view());
                    for (const auto& seq : req.sequences) {
                        merged.open_array(seq.identifier);
                        for (const auto& d : seq.documents) merged.append(bson::document_view(d.data(), d.size()));
                        merged.close_array();
                    }
                    full = merged.extract();
                }
            }
            if (compressor && wire::is_compressible_command(command_name)) {
                std::vector<std::uint8_t> wrapped;
                wire::encode_compressed(wrapped, out, *compressor, lim);
                out.swap(wrapped);
            }
        } catch (const trellis::error& e) {
            // Nothing was sent: the connection is still fine.
            busy = false;
            timer.cancel();
            set_error(settings.address + ": " + e.what());
            emit_started(full);
            emit_failed(e.code(), 0, sensitive ? std::string() : std::string(e.what()), bson::document());
            finish(e.code(), command_reply{});
            return;
        }
        emit_started(full);
        expected_response_to = request_id;
        unacknowledged = req.more_to_come;
        if (req.parking && wait_handle >= 0 && !unacknowledged && !req.exhaust_allowed && req.parking->wants_io()) {
            timer.cancel();  // the caller's poll keeps the time
            parking = req.parking;
            performed = false;
            abort_parked = false;
            parked_error.clear();
            parking->park(std::shared_ptr<deferred_io>(shared_from_this(), this));
            return;
        }
        write_some();
    }

    // ---- parked I/O (deferred_io.hpp)

    void perform(int wake_fd) noexcept override {
        performed = true;
        const auto limit = timeout_ms();
        const auto deadline = started + limit;
        // Waits for `events` on the socket; false on timeout, abort or a failed poll.
        const auto wait_for = [&](short events) {
            for (;;) {
                if (abort_parked.load()) return false;
                int ms = -1;
                if (limit.count() > 0) {
                    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
                    if (left.count() <= 0) {
                        timed_out = true;
                        return false;
                    }
                    ms = static_cast<int>(std::min<std::int64_t>(left.count(), 1'000'000));
                }
                pollfd fds[2] = {{wait_handle, events, 0}, {wake_fd, POLLIN, 0}};
                const int r = ::poll(fds, 2, ms);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    parked_error = std::error_code(errno, std::system_category());
                    return false;
                }
                if (fds[1].revents & POLLIN) {
                    std::uint64_t count = 0;
                    (void)!::read(wake_fd, &count, sizeof count);
                }
                if (fds[0].revents) return true;
            }
        };
        try {
            while (written < out.size()) {
                std::error_code ec;
                const std::size_t n = stream->try_write_some(asio::buffer(out.data() + written, out.size() - written), ec);
                if (ec) {
                    parked_error = ec;
                    return;
                }
                written += n;
                if (n == 0 && !wait_for(POLLOUT)) return;
            }
            // The reply cannot be there yet: sleep first, then read what came.
            if (!wait_for(POLLIN)) return;
            while (decoder.bytes_needed() != 0) {
                const std::size_t want = std::clamp<std::size_t>(decoder.bytes_needed(), 16 * 1024, 256 * 1024);
                auto space = decoder.prepare(want);
                std::error_code ec;
                const std::size_t n = stream->try_read_some(asio::buffer(space.data(), space.size()), ec);
                decoder.commit(n);
                if (ec) {
                    parked_error = ec;
                    return;
                }
                if (n == 0) {
                    if (!wait_for(POLLIN)) return;
                    continue;
                }
                check_ahead();
            }
        } catch (const std::exception&) {
            parked_error = make_error_code(errc::protocol_error);  // std::bad_alloc in prepare()
        }
    }

    // Through the operation's own executor (a strand of the same io_context): its completion,
    // dispatched there, then runs in the same handler.
    void resume() override {
        asio::dispatch(*handler_work, [self = shared_from_this()] { self->resume_here(); });
    }

    void resume_here() {
        parking = nullptr;
        const bool was_performed = std::exchange(performed, false);
        if (abort_parked && !timed_out) {
            if (interrupted) return fail_io({});
            return fail(make_error_code(errc::connection_failure), settings.address + ": connection closed");
        }
        if (!was_performed) {  // the caller left it: the usual way, in the time left
            const auto limit = timeout_ms();
            const auto left = limit - (std::chrono::steady_clock::now() - started);
            if (limit.count() > 0 && left.count() <= 0) {
                timed_out = true;
                return fail_io({});
            }
            if (limit.count() > 0) arm_timer(left);
            return write_some();
        }
        if (parked_error || timed_out) return fail_io(parked_error);
        read();
    }

    std::string last_error_text() const {
        std::lock_guard lock(error_mutex);
        return error_text;
    }

    // What the stream takes at once is written here; the rest asynchronously.
    void write_some() {
        while (written < out.size()) {
            std::error_code ec;
            const std::size_t n = stream->try_write_some(asio::buffer(out.data() + written, out.size() - written), ec);
            if (ec) return fail_io(ec);
            if (n == 0) break;
            written += n;
        }
        if (written == out.size()) return sent();
        stream->async_write_some(asio::buffer(out.data() + written, out.size() - written),
                                 [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                     if (ec) return self->fail_io(ec);
                                     self->written += n;
                                     self->write_some();
                                 });
    }

    void sent() {
        if (unacknowledged) {
            command_reply r;
            r.duration = std::chrono::steady_clock::now() - started;
            emit_succeeded(r);
            return finish({}, std::move(r));
        }
        read();
    }

    void start_read_more(std::optional<std::chrono::milliseconds> t, handler_type h) {
        if (busy || !expecting_more) {
            auto work = asio::prefer(asio::get_associated_executor(h, executor), asio::execution::outstanding_work.tracked);
            post_to(work, [h = std::move(h)]() mutable {  // perhaps inside the initiating call
                std::move(h)(make_error_code(errc::protocol_error), command_reply{});
            });
            return;
        }
        begin(std::move(h), t);
        if (perished) return fail(make_error_code(errc::connection_failure), settings.address + ": connection is closed");
        read();
    }

    void read() {
        std::optional<wire::message> m;
        try {
            m = decoder.next();
        } catch (const trellis::error& e) {
            return fail(e.code(), settings.address + ": " + e.what());
        }
        if (m) {
            const bool checked = checking_ahead && ahead.accepted();
            checking_ahead = false;
            return on_message(std::move(*m), checked);
        }
        // A large reply is read in steps (loopback hands over 64 KB a read anyway): each step's
        // space is zero-filled just before it is written, and stays in cache in between.
        const std::size_t want = std::clamp<std::size_t>(decoder.bytes_needed(), 16 * 1024, 256 * 1024);
        auto space = decoder.prepare(want);
        stream->async_read_some(asio::buffer(space.data(), space.size()),
                                [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                    if (ec) return self->fail_io(ec);
                                    self->decoder.commit(n);
                                    self->check_ahead();
                                    self->read();
                                });
    }

    // The body of an OP_MSG reply that has not all come (a batch of a large find) is validated
    // as far as it has, between reads: when its last bytes arrive, only they are left to check.
    void check_ahead() {
        constexpr std::size_t body_at = wire::header_size + 5;  // flagBits, then the kind-0 section
        const wire::bytes_view pending = decoder.pending();
        if (pending.size() < body_at) return;
        const wire::message_header h = wire::read_header(pending);
        if (h.message_length < static_cast<std::int32_t>(body_at) + 5 || h.op_code != wire::opcode::msg ||
            pending[body_at - 1] != 0)
            return;  // not a plain OP_MSG led by its body: decode_message judges it
        const auto frame = static_cast<std::size_t>(h.message_length);
        if (!checking_ahead) {
            if (pending.size() >= frame) return;  // it came in one read
            ahead.reset();
            checking_ahead = true;
        }
        const bool checksum = (wire::load_le<std::uint32_t>(pending.data() + wire::header_size) &
                               wire::msg_flags::checksum_present) != 0;
        const std::size_t limit = frame - body_at - (checksum ? 4 : 0);
        ahead.advance(pending.subspan(body_at, std::min(pending.size(), frame) - body_at), limit);
    }

    /// `checked`: check_ahead validated its body already.
    void on_message(wire::message m, bool checked = false) {
        if (m.header.response_to != expected_response_to)
            return fail(make_error_code(errc::protocol_error),
                        settings.address + ": reply answers request " + std::to_string(m.header.response_to) + ", expected " +
                            std::to_string(expected_response_to));
        command_reply r;
        try {
            if (const auto* msg = m.as_msg()) {
                r.body = checked && !m.compressor_id ? bson::document_view(msg->body.data())
                                                     : bson::document_view::validated(msg->body);
                r.more_to_come = (msg->flags & wire::msg_flags::more_to_come) != 0;
            } else if (const auto* rep = m.as_reply()) {
                if (rep->documents.empty())
                    throw protocol_error(errc::protocol_error, "OP_REPLY without a document");
                r.body = bson::document_view::validated(rep->documents.front());
            } else {
                throw protocol_error(errc::protocol_error, "the server answered with OP_QUERY");
            }
        } catch (const trellis::error& e) {
            return fail(e.code(), settings.address + ": bad reply: " + e.what());
        }
        expecting_more = r.more_to_come;
        if (r.more_to_come) expected_response_to = m.header.request_id;  // the next answers this one
        r.message = std::move(m);
        r.duration = std::chrono::steady_clock::now() - started;
        if (r.ok()) {
            emit_succeeded(r);
        } else {
            int code = 0;
            std::string text;
            if (auto c = r.body.find("code"); c && c->is_number()) code = static_cast<int>(c->as_int64());
            if (auto t = r.body.find("errmsg"); t && t->type() == bson::type::string) text = std::string(t->get_string());
            emit_failed(make_error_code(errc::operation_failure), code, text, bson::document(r.body));
        }
        finish({}, std::move(r));
    }
};

/// Marks a start run inline, in the initiating call (exceptions included).
struct starting_scope {
    connection_state& s;
    explicit starting_scope(connection_state& state) : s(state) { s.starting = true; }
    ~starting_scope() { s.starting = false; }
    starting_scope(const starting_scope&) = delete;
    starting_scope& operator=(const starting_scope&) = delete;
};

}  // namespace detail

connection::connection(std::unique_ptr<sdk::stream> stream, connection_settings settings)
    : state_(std::make_shared<detail::connection_state>(std::move(stream), std::move(settings))) {}

connection::~connection() { close(); }

const std::string& connection::address() const noexcept { return state_->settings.address; }
const handshake::connection_description& connection::description() const noexcept { return state_->description; }

void connection::set_description(handshake::connection_description d) {
    auto& s = *state_;
    s.description = std::move(d);
    s.decoder.set_limits(wire::limits{static_cast<std::size_t>(s.description.max_message_size_bytes),
                                      static_cast<std::size_t>(s.description.max_bson_object_size)});
    s.compressor = nullptr;
    if (s.description.compressor && s.settings.compressors)
        s.compressor = s.settings.compressors->find(*s.description.compressor);
}

void connection::set_event_id(std::int64_t id) noexcept { state_->event_id = id; }
const sdk::stream& connection::stream() const noexcept { return *state_->stream; }

std::string connection::last_error() const { return state_->last_error_text(); }

steady_time connection::last_used() const noexcept {
    return steady_time(std::chrono::steady_clock::duration(state_->last_used_ns.load()));
}

bool connection::is_perished() const noexcept { return state_->perished.load(); }

void connection::close() noexcept {
    auto s = state_;
    s->perished = true;
    try {
        asio::dispatch(s->executor, [s] {
            s->timer.cancel();
            s->close_stream();
        });
    } catch (...) {
        // The executor is gone (its context destroyed): nothing can still be running on it.
    }
}

void connection::interrupt() noexcept {
    auto s = state_;
    try {
        asio::post(s->executor, [s] {
            s->perished = true;
            if (s->busy) s->interrupted = true;
            s->close_stream();
        });
    } catch (...) {
    }
}

// Started at once when the caller already runs on the connection's executor (a client's own
// io_context, where that is every executor): no hop through the io_context's queue. A completion
// that comes during the start (an error) is still posted, never run inside the initiating call.
void connection::start_command(command_request request, asio::any_completion_handler<command_signature> handler) {
    if (trellis::detail::strand_running_here(state_->executor)) {
        const detail::starting_scope scope(*state_);
        state_->start_command(std::move(request), std::move(handler));
        return;
    }
    asio::post(state_->executor, [s = state_, r = std::move(request), h = std::move(handler)]() mutable {
        s->start_command(std::move(r), std::move(h));
    });
}

void connection::start_read_more(std::optional<std::chrono::milliseconds> timeout,
                                 asio::any_completion_handler<command_signature> handler) {
    if (trellis::detail::strand_running_here(state_->executor)) {
        const detail::starting_scope scope(*state_);
        state_->start_read_more(timeout, std::move(handler));
        return;
    }
    asio::post(state_->executor, [s = state_, timeout, h = std::move(handler)]() mutable {
        s->start_read_more(timeout, std::move(h));
    });
}

}  // namespace trellis::conn
