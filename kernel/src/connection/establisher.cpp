#include "connection/establisher.hpp"
#include "plugin/guard.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <mutex>

#include "trellis/errors.hpp"

namespace trellis::conn {

namespace asio = boost::asio;
using trellis::detail::guarded_or_throw;

namespace {

// The labelled establishment failures (see pool_error_of).
enum class labelled { network = 1, timeout, overloaded_reply, overloaded_retryable_reply };

class labelled_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "trellis.establish"; }
    std::string message(int v) const override {
        switch (static_cast<labelled>(v)) {
            case labelled::network: return "network error while connecting (SystemOverloadedError, RetryableError)";
            case labelled::timeout: return "timeout while connecting (SystemOverloadedError, RetryableError)";
            case labelled::overloaded_reply: return "hello refused: server overloaded (SystemOverloadedError)";
            case labelled::overloaded_retryable_reply:
                return "hello refused: server overloaded (SystemOverloadedError, RetryableError)";
        }
        return "establishment error";
    }
};

const labelled_category& labels_category() noexcept {
    static const labelled_category c;
    return c;
}

constexpr std::string_view overloaded_label = "SystemOverloadedError";
constexpr std::string_view retryable_label = "RetryableError";

bool has(const std::vector<std::string>& labels, std::string_view l) {
    return std::find(labels.begin(), labels.end(), l) != labels.end();
}

// The CMAP spec: errors that can never come from an overloaded server get no labels: name
// resolution, and TLS errors that are not I/O (a refused certificate, a hostname mismatch, a
// context that cannot be set up). An EOF or reset during the TLS handshake still counts.
bool may_be_overload(const std::error_code& ec) {
    const std::string_view category = ec.category().name();
    if (category.find("netdb") != std::string_view::npos || category.find("addrinfo") != std::string_view::npos)
        return false;
    if (category == "asio.ssl") return false;  // OpenSSL's own errors; "asio.ssl.stream" is I/O
    if (&ec.category() == &trellis::error_category()) return false;  // configuration, plugin
    return true;
}

std::vector<std::string> both_labels() { return {std::string(overloaded_label), std::string(retryable_label)}; }

std::vector<std::string> reply_labels(bson::document_view reply) {
    std::vector<std::string> out;
    if (auto e = reply.find("errorLabels"); e && e->type() == bson::type::array)
        for (const auto& l : e->get_array())
            if (l.type() == bson::type::string) out.emplace_back(l.get_string());
    return out;
}

std::string address_of(const sdk::connect_request& c) {
    return (c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host) + ":" + std::to_string(c.port);
}

// What an authenticator sees of the connection it authenticates.
class auth_adapter final : public sdk::auth_connection {
public:
    auth_adapter(connection& c, bson::document hello, std::chrono::milliseconds timeout)
        : conn_(c), hello_(std::move(hello)), timeout_(timeout) {}
    void async_run_command(std::string db, bson::document command,
                           asio::any_completion_handler<void(std::error_code, bson::document)> handler) override {
        command_request r;
        r.database = std::move(db);
        r.command = std::move(command);
        if (timeout_.count() > 0) r.timeout = timeout_;
        conn_.async_run_command(std::move(r), [h = std::move(handler)](std::error_code ec, command_reply reply) mutable {
            std::move(h)(ec, ec ? bson::document() : bson::document(reply.body));
        });
    }
    bson::document_view hello_reply() const override { return hello_.view(); }
    std::string address() const override { return conn_.address(); }

private:
    connection& conn_;
    bson::document hello_;
    std::chrono::milliseconds timeout_;
};

struct establish_op : std::enable_shared_from_this<establish_op> {
    establish_op(asio::any_io_executor ex, std::shared_ptr<const establish_settings> s, std::int64_t i,
                 asio::any_completion_handler<establish_signature> h)
        : executor(std::move(ex)), settings(std::move(s)), id(i), handler(std::move(h)) {}
    asio::any_io_executor executor;
    std::shared_ptr<const establish_settings> settings;
    std::int64_t id = 0;
    asio::any_completion_handler<establish_signature> handler;
    std::unique_ptr<connection> conn;
    std::unique_ptr<sdk::auth_conversation> conversation;
    std::unique_ptr<auth_adapter> adapter;
    std::vector<std::string> offered;
    bool hello_op_query = true;  // the initial hello was legacy (isMaster over OP_QUERY)
    bool cancelled = false;  // on executor
    bool done = false;
    std::optional<bson::oid> service_id;  // from the hello, once it succeeded (load balanced)

    std::string address() const { return settings->connection.address.empty() ? address_of(settings->connect) : settings->connection.address; }

    void finish(establish_failure f) {
        if (done) return;
        done = true;
        asio::get_associated_cancellation_slot(handler).clear();
        if (f && conn) conn->close();
        if (f) f.service_id = service_id;
        asio::any_completion_handler<establish_signature> h(std::move(handler));
        std::unique_ptr<connection> c = f ? nullptr : std::move(conn);
        adapter.reset();
        conversation.reset();
        std::move(h)(std::move(f), std::move(c));
    }

    void fail(errc code, std::string text) { finish({make_error_code(code), std::move(text)}); }

    void start() {
        if (auto slot = asio::get_associated_cancellation_slot(handler); slot.is_connected()) {
            std::weak_ptr<establish_op> weak = shared_from_this();
            slot.assign([weak](asio::cancellation_type) {
                if (auto self = weak.lock())
                    asio::post(self->executor, [self] {
                        self->cancelled = true;
                        // Complete now: whatever is still in flight (a connect that may take up to
                        // connect_timeout) is closed when it finishes, and nobody waits for it.
                        self->fail(errc::connection_failure, self->address() + ": connection establishment cancelled");
                    });
            });
        }
        if (!settings->transport) return fail(errc::configuration_error, address() + ": no transport to connect with");
        try {
            guarded_or_throw("transport: async_connect", [&] {
                settings->transport->async_connect(
                    executor, settings->connect,
                    [self = shared_from_this()](sdk::connect_error e, std::unique_ptr<sdk::stream> s) {
                        asio::post(self->executor, [self, e = std::move(e), s = std::move(s)]() mutable {
                            self->connected(std::move(e), std::move(s));
                        });
                    });
            });
        } catch (const std::exception& ex) {
            return fail(errc::connection_failure, address() + ": " + ex.what());
        }
    }

    void connected(sdk::connect_error e, std::unique_ptr<sdk::stream> s) {
        if (done) {
            if (s) s->close();
            return;
        }
        if (!s || e.code) {
            const bool timeout = e.code == std::errc::timed_out;
            establish_failure f{make_error_code(timeout ? errc::network_timeout : errc::connection_failure),
                                e.message.empty() ? address() + ": " + e.code.message() : e.message};
            if (!e.code || may_be_overload(e.code)) f.error_labels = both_labels();
            return finish(std::move(f));
        }
        if (cancelled) {
            s->close();
            return fail(errc::connection_failure, address() + ": connection establishment cancelled");
        }
        connection_settings cs = settings->connection;
        if (cs.address.empty()) cs.address = address_of(settings->connect);
        conn = std::make_unique<connection>(std::move(s), std::move(cs));
        conn->set_event_id(id);

        handshake::hello_options hello = settings->hello;
        if (settings->authenticate) {
            try {
                conversation = guarded_or_throw("authenticator: begin", [&] { return settings->authenticate(); });
                if (conversation && !hello.speculative_authenticate)
                    hello.speculative_authenticate = guarded_or_throw(
                        "authenticator: speculative_request", [&] { return conversation->speculative_request(); });
            } catch (const std::exception& ex) {
                return fail(errc::authentication_failed, address() + ": cannot start authentication: " + ex.what());
            }
        }
        offered = hello.compressors;
        const auto initial = handshake::make_initial_hello(hello);
        hello_op_query = initial.use_op_query;
        command_request r;
        r.database = "admin";
        r.command = initial.command;
        r.op_query = initial.use_op_query;
        if (settings->connect.connect_timeout.count() > 0) r.timeout = settings->connect.connect_timeout;
        conn->async_run_command(std::move(r), [self = shared_from_this()](std::error_code ec, command_reply reply) {
            self->hello_done(ec, std::move(reply));
        });
    }

    void hello_done(std::error_code ec, command_reply reply) {
        if (done) return;
        if (ec) {
            establish_failure f{ec, conn->last_error()};
            if (ec == errc::connection_failure || ec == errc::network_timeout) f.error_labels = both_labels();
            return finish(std::move(f));
        }
        handshake::connection_description d;
        try {
            d = handshake::parse_hello_reply(conn->address(), reply.body, offered);
        } catch (const trellis::error& e) {
            establish_failure f{e.code(), e.what()};
            if (e.code() == errc::incompatible_server) f.hello_reply = bson::document(reply.body);
            // A server that refuses the hello because it is overloaded says so in its labels.
            if (auto labels = reply_labels(reply.body); has(labels, overloaded_label)) f.error_labels = std::move(labels);
            return finish(std::move(f));
        }
        if (!hello_op_query) d.hello_ok = true;  // hello was spoken: monitors keep to it
        if (settings->hello.load_balanced && !d.service_id)
            return finish({make_error_code(errc::incompatible_server),
                           conn->address() + ": Driver attempted to initialize in load balancing mode, but the server "
                                             "does not support this mode. (its hello reply has no serviceId)"});
        service_id = d.service_id;
        d.hello_reply = bson::document(reply.body);
        d.hello_duration = reply.duration;
        conn->set_description(std::move(d));
        if (!conversation) return finish({});
        adapter = std::make_unique<auth_adapter>(*conn, bson::document(reply.body), settings->connect.connect_timeout);
        try {
            guarded_or_throw("authenticator: async_run", [&] { run_conversation(); });
        } catch (const std::exception& ex) {
            return fail(errc::authentication_failed, address() + ": authentication failed: " + ex.what());
        }
    }

    void run_conversation() {
        conversation->async_run(*adapter, [self = shared_from_this()](sdk::auth_failure f) {
            asio::post(self->executor, [self, f = std::move(f)] {
                if (self->done) return;
                if (!f.code) return self->finish({});
                std::string text = self->conn->address() + ": authentication failed: " + f.message;
                if (f.server_code != 0) text += " (code " + std::to_string(f.server_code) + ")";
                // A network failure during the conversation stays a network failure.
                const bool network = f.code == errc::connection_failure || f.code == errc::network_timeout;
                self->finish({network ? f.code : make_error_code(errc::authentication_failed), text});
            });
        });
    }
};

}  // namespace

void async_establish(asio::any_io_executor executor, std::shared_ptr<const establish_settings> settings, std::int64_t id,
                     asio::any_completion_handler<establish_signature> handler) {
    auto op = std::make_shared<establish_op>(executor, std::move(settings), id, std::move(handler));
    asio::post(executor, [op] { op->start(); });
}

pool::connection_establisher make_pool_establisher(asio::any_io_executor executor,
                                                   std::shared_ptr<const establish_settings> settings,
                                                   std::function<void(const establish_failure&)> on_failure) {
    return [executor, settings, on_failure](pool::connection_id id, pool::establish_handler handler) {
        // The pool's handler carries its cancellation slot (emitted on the pool's strand); a
        // slot-bound wrapper hands it on to the establishment.
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto completion = [h = std::move(handler), on_failure](establish_failure f, std::unique_ptr<connection> c) mutable {
            if (f) {
                if (on_failure) on_failure(f);
                std::move(h)(pool_error_of(f), nullptr);
                return;
            }
            std::move(h)(std::error_code(), std::move(c));
        };
        async_establish(executor, settings, id, asio::bind_cancellation_slot(slot, std::move(completion)));
    };
}

std::error_code pool_error_of(const establish_failure& f) {
    if (!has(f.error_labels, overloaded_label)) return f.code;
    labelled v = labelled::network;
    if (f.code == errc::network_timeout) v = labelled::timeout;
    else if (f.code != errc::connection_failure)
        v = has(f.error_labels, retryable_label) ? labelled::overloaded_retryable_reply : labelled::overloaded_reply;
    return {static_cast<int>(v), labels_category()};
}

std::vector<std::string> backpressure_labels(std::error_code ec) {
    if (&ec.category() != &labels_category()) return {};
    if (static_cast<labelled>(ec.value()) == labelled::overloaded_reply) return {std::string(overloaded_label)};
    return both_labels();
}

std::error_code without_labels(std::error_code ec) {
    if (&ec.category() != &labels_category()) return ec;
    return make_error_code(static_cast<labelled>(ec.value()) == labelled::timeout ? errc::network_timeout
                                                                                  : errc::connection_failure);
}

sdk::connect_request connect_request_for(const client_options& o, const server_address& server) {
    sdk::connect_request r;
    r.host = server.host;
    r.port = server.port_or_default();
    r.connect_timeout = o.connect_timeout;
    const auto& t = o.tls;
    r.tls.enabled = t.enabled.value_or(o.is_srv);
    r.tls.ca_file = t.ca_file.value_or("");
    r.tls.certificate_key_file = t.certificate_key_file.value_or("");
    r.tls.certificate_key_file_password = t.certificate_key_file_password.value_or("");
    const bool insecure = t.insecure.value_or(false);
    r.tls.allow_invalid_certificates = insecure || t.allow_invalid_certificates.value_or(false);
    r.tls.allow_invalid_hostnames = insecure || t.allow_invalid_hostnames.value_or(false);
    return r;
}

handshake::hello_options hello_options_for(const client_options& o, const wire::compressor_registry& registry,
                                           std::vector<std::string>* warnings) {
    handshake::hello_options h;
    h.client_metadata = handshake::client_metadata(handshake::detect_platform(o.app_name));
    for (const auto& name : o.compressors) {
        if (registry.find(name)) h.compressors.push_back(name);
        else if (warnings) warnings->push_back("compressor '" + name + "' is not available (no plugin provides it); not offered");
    }
    h.load_balanced = o.load_balanced.value_or(false);
    h.server_api = o.server_api.has_value();
    if (auto cred = make_credential(o); cred && !cred->mechanism && cred->username)
        h.sasl_supported_mechs = cred->source + "." + *cred->username;
    return h;
}

}  // namespace trellis::conn
