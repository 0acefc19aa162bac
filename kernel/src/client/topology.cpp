// The client's topology: the strategy plugins, the description and its servers (pools and
// monitors), SDAM error handling, and server selection with its wait.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "client/core.hpp"
#include "plugin/guard.hpp"
#include "sdam/internal.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "trellis/selection.hpp"
#include "trellis/uri.hpp"

namespace trellis::detail {

namespace {

std::string strategy_name(topology_settings::strategy_type t) { return std::string(to_string(t)); }

server_address address_from(const std::string& address) {
    server_address a;
    std::string host = address;
    if (!address.empty() && address.front() == '[') {
        const auto close = address.find(']');
        host = address.substr(1, close - 1);
        if (close + 1 < address.size() && address[close + 1] == ':')
            a.port = static_cast<std::uint16_t>(std::stoi(address.substr(close + 2)));
    } else if (const auto colon = address.rfind(':'); colon != std::string::npos) {
        host = address.substr(0, colon);
        a.port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
    }
    a.host = host;
    a.type = classify_host(host);
    return a;
}

// Error messages name at most this many servers, then say how many more there are: a topology
// of thousands would make a line of hundreds of kilobytes.
constexpr std::size_t listed_in_errors = 10;
constexpr std::size_t longest_item_in_errors = 300;

// items(i) for the first listed_in_errors items (each cut at longest_item_in_errors
// characters), then "and N more".
template <class Item>
void list_some(std::ostringstream& out, std::size_t count, std::string_view separator, Item&& item) {
    const std::size_t shown = std::min(count, listed_in_errors);
    for (std::size_t i = 0; i < shown; ++i) {
        std::string text = item(i);
        if (text.size() > longest_item_in_errors) {
            std::size_t cut = longest_item_in_errors;
            while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
            text = text.substr(0, cut) + "...";
        }
        out << (i ? separator : "") << text;
    }
    if (count > shown) out << separator << "and " << (count - shown) << " more";
}

std::string describe(const sdk::server_description& s) {
    std::string out = s.address + ": " + std::string(to_string(s.type));
    if (s.error) out += " (" + *s.error + ")";
    return out;
}

}  // namespace

std::string bare_message(const std::system_error& e);  // srv.cpp

std::exception_ptr make_failure(errc code, const std::string& text) {
    switch (code) {
        case errc::configuration_error: return std::make_exception_ptr(configuration_error(text));
        case errc::protocol_error:
        case errc::compression_error: return std::make_exception_ptr(protocol_error(code, text));
        default: return std::make_exception_ptr(error(code, text));
    }
}

client_core::client_core(asio::any_io_executor executor, client_options options, client_settings settings,
                         std::shared_ptr<void> owner)
    : owner_(std::move(owner)),
      inner_(executor),
      strand_(make_erased_strand(executor)),
      options_(std::move(options)),
      settings_(std::move(settings)) {
    validate(options_);
    // Options Trellis parses (they are valid in a URI) but does not implement: refused here,
    // where every source (URI, TOML, code) passes, rather than silently ignored.
    if (options_.proxy.host)
        throw configuration_error("proxyHost: connecting through a SOCKS5 proxy is not implemented");
    if (options_.wait_queue_multiple)
        throw configuration_error("waitQueueMultiple: not implemented; bound the wait for a connection with "
                                  "waitQueueTimeoutMS");
    // Every user handler runs through the guard from here on, wherever the client passes it.
    settings_.on_sdam = guard_handler(std::move(settings_.on_sdam), settings_.on_callback_failure, "SDAM event handler");
    settings_.on_cmap = guard_handler(std::move(settings_.on_cmap), settings_.on_callback_failure, "CMAP event handler");
    settings_.on_command =
        guard_handler(std::move(settings_.on_command), settings_.on_callback_failure, "command event handler");
    read_preference_ = options_.read_preference;
    write_concern_ = options_.write_concern;
    registry_ = settings_.registry;
    if (!registry_) {
        plugin_search_options search;
        search.paths = settings_.plugins.paths;
        registry_ = std::make_shared<plugin_registry>(search);
    }
    // Strategies: a named one, or (auto) the three SDAM ones, chosen by topology type.
    const auto kind = sdk::plugin_kind::topology_strategy;
    if (settings_.topology.strategy == topology_settings::strategy_type::auto_) {
        for (const char* name : {"standalone", "replica_set", "mongos"})
            strategies_[name] = registry_->create_as<sdk::topology_strategy>(kind, name, settings_.plugins.table(name));
    } else {
        const std::string name = strategy_name(settings_.topology.strategy);
        bson::document table(settings_.plugins.table(name));
        if (settings_.topology.strategy == topology_settings::strategy_type::master_slave && settings_.topology.master) {
            bson::builder b;
            b.concat(table.view());
            if (!table.contains("master")) b.append("master", sdam::address_of(*settings_.topology.master));
            if (!table.contains("slaves")) {
                b.open_array("slaves");
                for (const auto& s : settings_.topology.slaves) b.append(sdam::address_of(s));
                b.close_array();
            }
            table = b.extract();
        }
        strategies_[name] = registry_->create_as<sdk::topology_strategy>(kind, name, table.view());
    }
    set_cursor_manager(settings_.plugins.cursor_manager.value_or("immediate"));

    // Compressors: the noop built-in and a plugin for each one asked for, if any provides it.
    compressors_ = std::make_shared<wire::compressor_registry>(wire::compressor_registry::with_builtins());
    for (const auto& name : options_.compressors) {
        try {
            bson::builder b;
            if (name == "zlib" && options_.zlib_compression_level) b.append("level", *options_.zlib_compression_level);
            compressors_->add(registry_->create_as<sdk::compressor>(sdk::plugin_kind::compressor, name, b.view()));
        } catch (const plugin_error&) {
            // Not available: not offered (hello_options_for reports it as a warning).
        }
    }
    topology_id_ = bson::oid::generate();

    // Everything that can fail for a bad configuration fails here, in the caller's thread: the
    // initial topology (a strategy may refuse the seeds), the transport, the authenticator, the
    // DNS servers. A mongodb+srv:// seed list comes from DNS once the client is open
    // (start_seedlist): until then the topology is Unknown with no servers, and operations wait.
    if (options_.is_srv && options_.hosts.empty()) {
        dns::resolver_options ro;
        for (const std::string& text : options_.dns_servers) {
            try {
                ro.servers.push_back(dns::endpoint::parse(text));
            } catch (const configuration_error& e) {
                throw configuration_error("dns_servers: " + bare_message(e));
            }
        }
        const char* env = std::getenv(dns::server_environment_variable);
        dns_explicit_ = !ro.servers.empty() || (env && *env);
        resolver_ = std::make_unique<dns::resolver>(inner_, std::move(ro));
        seedlist_ = seedlist_state::pending;
        initial_ = std::make_shared<const sdk::topology_description>();
    } else {
        initial_ = make_initial(options_);
    }
    if (options_.srv_rescan_interval && options_.srv_rescan_interval->count() < 1)
        throw configuration_error("srv_rescan_interval (rescanSRVIntervalMS) must be at least 1 ms");
    const bool tls = options_.tls.enabled.value_or(options_.is_srv);
    transport_ = registry_->create_as<sdk::transport>(sdk::plugin_kind::transport, tls ? "tls" : "plain");
    hello_ = conn::hello_options_for(options_, *compressors_);
    authenticate_ = make_authenticator(options_);
    current_ = initial_;
    // open() is the owner's to call once the core is held by a shared_ptr.
}

std::shared_ptr<const sdk::topology_description> client_core::make_initial(const client_options& o) const {
    if (settings_.topology.strategy == topology_settings::strategy_type::auto_)
        return std::make_shared<const sdk::topology_description>(sdam::initial_topology(o));
    std::vector<std::string> seeds;
    for (const auto& h : o.hosts) seeds.push_back(sdam::address_of(h));
    return strategies_.begin()->second->initial_topology(
        seeds, sdk::strategy_context{o.replica_set, o.direct_connection, o.load_balanced});
}

std::function<std::unique_ptr<sdk::auth_conversation>()> client_core::make_authenticator(const client_options& o) const {
    auto cred = make_credential(o);
    if (!cred) return {};
    const std::string mech = cred->mechanism ? std::string(to_string(*cred->mechanism)) : "SCRAM-SHA-256";
    // The descriptors say which plugin provides the mechanism; only that one is created.
    for (const auto& p : registry_->plugins()) {
        if (p.kind != sdk::plugin_kind::authenticator || !p.loaded) continue;
        if (std::find(p.provides.begin(), p.provides.end(), mech) == p.provides.end()) continue;
        auto found = registry_->create_as<sdk::authenticator>(sdk::plugin_kind::authenticator, p.name);
        return [found, c = *cred] { return found->begin(c); };
    }
    throw configuration_error("authentication with " + mech + " was asked for, but no authenticator plugin provides it");
}

// By the time the last reference goes, close() has run (the client's destructor sees to it)
// and every coroutine that used this object has ended (each holds a reference while it runs).
client_core::~client_core() = default;

void client_core::open() {
    asio::dispatch(strand_, [self = shared_from_this()] {
        if (!self->open_) self->start_topology();
    });
}

void client_core::shutdown() {
    final_ = true;
    close();
}

void client_core::shutdown_async() {
    final_ = true;
    close_async();
}

void client_core::close_async() {
    auto self = shared_from_this();
    asio::co_spawn(strand_, [self]() -> asio::awaitable<void> { co_await self->end_sessions(); },
                   [self](std::exception_ptr) {
                       if (self->open_) self->stop_topology();
                   });
}

namespace {
// Whether this thread runs `ex` (an io_context's or a thread pool's executor, or a strand of one).
bool runs(const asio::any_io_executor& ex) {
    // The same executors with outstanding_work.tracked (a work guard's) are other types.
    using io_tracked = asio::io_context::basic_executor_type<std::allocator<void>,
                                                             asio::detail::io_context_bits::outstanding_work_tracked>;
    using pool_tracked = asio::thread_pool::basic_executor_type<std::allocator<void>,
                                                                asio::detail::thread_pool_bits::outstanding_work_tracked>;
    if (const auto* e = ex.target<asio::io_context::executor_type>()) return e->running_in_this_thread();
    if (const auto* e = ex.target<io_tracked>()) return e->running_in_this_thread();
    if (const auto* e = ex.target<asio::strand<asio::io_context::executor_type>>())
        return e->get_inner_executor().running_in_this_thread();
    if (const auto* e = ex.target<asio::thread_pool::executor_type>()) return e->running_in_this_thread();
    if (const auto* e = ex.target<pool_tracked>()) return e->running_in_this_thread();
    return false;
}
}  // namespace

bool client_core::on_client_thread() const {
    return strand_running_here(strand_) || runs(inner_);
}

void client_core::check_usable() const {
    if (final_)
        throw error(errc::connection_failure,
                    "this handle's client was destroyed: databases, collections and cursors cannot be used after it");
}

void client_core::check_blocking(std::string_view call) const {
    check_usable();
    if (on_client_thread())
        throw configuration_error((call.empty() ? std::string() : std::string(call) + ": ") +
                                  "a blocking Trellis call was made on a thread that runs the client's executor (an "
                                  "event handler, or a coroutine or handler on it), where it would wait for itself; use "
                                  "the async form there");
}

void client_core::close() {
    if (on_client_thread()) {  // cannot wait for ourselves: the same, asynchronously
        close_async();
        return;
    }
    // endSessions first, bounded: a server that does not answer within a second is not waited for.
    auto ended = std::make_shared<std::promise<void>>();
    auto self = shared_from_this();
    asio::co_spawn(strand_, [self]() -> asio::awaitable<void> { co_await self->end_sessions(); },
                   [ended](std::exception_ptr) { ended->set_value(); });
    ended->get_future().wait_for(std::chrono::seconds(1));
    std::promise<void> done;
    auto f = done.get_future();
    asio::dispatch(strand_, [this, &done] {
        if (open_) stop_topology();
        done.set_value();
    });
    f.wait();
}

void client_core::start_topology() {
    open_ = true;
    {
        std::lock_guard lock(mutex_);
        current_ = initial_;
    }
    emit(topology_opening_event{topology_id_});
    for (auto& e : sdam::opening_events(*initial_, topology_id_)) {
        if (std::holds_alternative<topology_opening_event>(e)) continue;
        emit(e);
    }
    reconcile_servers();
    asio::co_spawn(strand_, flush_cursors_loop(), asio::detached);
    if (seedlist_ == seedlist_state::pending || seedlist_ == seedlist_state::failed) start_seedlist();
    if (seedlist_ == seedlist_state::resolved) start_srv_polling();
}

void client_core::stop_topology() {
    open_ = false;
    flush_timer_.cancel();
    ++srv_poll_generation_;
    if (srv_timer_) srv_timer_->cancel();
    if (seedlist_ == seedlist_state::resolving) {  // abandoned: the next opening asks again
        ++seedlist_generation_;
        seedlist_ = seedlist_state::pending;
    }
    // A pending query (the seed list's, or a rescan's) must not keep a closing client waiting.
    if (resolver_) resolver_->cancel();
    std::vector<std::string> addresses;
    for (auto& [a, s] : servers_) addresses.push_back(a);
    for (auto& a : addresses) remove_server(a);
    for (auto& e : sdam::closing_events(*current_, topology_id_)) emit(e);
    wake_selectors();
}

sdk::topology_strategy& client_core::strategy_for(const sdk::topology_description& t) const {
    if (strategies_.size() == 1) return *strategies_.begin()->second;
    switch (t.type) {
        case sdk::topology_type::single: return *strategies_.at("standalone");
        case sdk::topology_type::sharded: return *strategies_.at("mongos");
        default: return *strategies_.at("replica_set");
    }
}

std::shared_ptr<const sdk::topology_description> client_core::snapshot() const {
    std::lock_guard lock(mutex_);
    return current_;
}

read_preference client_core::current_read_preference() const {
    std::lock_guard lock(mutex_);
    return read_preference_;
}
void client_core::set_read_preference(read_preference rp) {
    std::lock_guard lock(mutex_);
    read_preference_ = std::move(rp);
}
write_concern client_core::current_write_concern() const {
    std::lock_guard lock(mutex_);
    return write_concern_;
}
void client_core::set_write_concern(write_concern wc) {
    std::lock_guard lock(mutex_);
    write_concern_ = std::move(wc);
}

void client_core::set_cursor_manager(const std::string& name) {
    auto m = registry_->create_as<sdk::cursor_manager>(sdk::plugin_kind::cursor_manager, name, settings_.plugins.table(name));
    std::lock_guard lock(mutex_);
    cursor_manager_ = std::move(m);
    cursor_manager_name_ = name;
}

void client_core::emit(const sdam_event& e) const {
    if (settings_.on_sdam) settings_.on_sdam(e);
}

std::string client_core::strategy_call(const sdk::topology_strategy& s, std::string_view call) const {
    for (const auto& [name, p] : strategies_)
        if (p.get() == &s) return "topology_strategy \"" + name + "\": " + std::string(call);
    return "topology_strategy: " + std::string(call);
}

void client_core::on_server_description(const sdk::server_description& d) {
    if (!open_ || !servers_.count(d.address)) return;
    const auto* now = current_->find(d.address);
    if (d.type == sdk::server_type::unknown && now && now->type == sdk::server_type::unknown) {
        // A server that stays Unknown: nothing a selection waits for. When its error is the same
        // there is nothing to do at all; otherwise the change waits its turn in the next slice.
        if (sdam::same_description(*now, d)) {
            deferred_.erase(d.address);
            return;
        }
        deferred_.insert_or_assign(d.address, d);
        if (!draining_) {
            draining_ = true;
            asio::post(strand_, [self = shared_from_this()] { self->drain_deferred(); });
        }
        return;
    }
    deferred_.erase(d.address);  // older than this one
    if (now && d.type != sdk::server_type::unknown && sdam::same_description(*now, d)) {
        // SDAM would only replace the description: done here, coalesced, without the strategy.
        // The pool is made ready now (CMAP: a successful check does, even one changing nothing).
        if (auto it = servers_.find(d.address); it != servers_.end()) it->second->pool->ready();
        refreshed_.insert_or_assign(d.address, d);
        if (!refresh_armed_) {
            refresh_armed_ = true;
            constexpr auto refresh_interval = std::chrono::milliseconds(100);
            auto timer = std::make_shared<asio::steady_timer>(strand_, refresh_interval);
            timer->async_wait([self = shared_from_this(), timer](const boost::system::error_code&) { self->flush_refreshed(); });
        }
        return;
    }
    refreshed_.erase(d.address);  // older than this one
    apply_description(d);
}

// At most refresh_interval late: round trip times (the latency window) and lastWriteDate /
// lastUpdateTime (staleness, whose smallest bound is 90 s) of checks that changed nothing else.
void client_core::flush_refreshed() {
    refresh_armed_ = false;
    if (!open_ || refreshed_.empty()) {
        refreshed_.clear();
        return;
    }
    auto next = std::make_shared<sdk::topology_description>(*current_);
    bool any = false;
    for (auto& s : next->servers) {
        const auto it = refreshed_.find(s.address);
        if (it == refreshed_.end() || !sdam::same_description(s, it->second)) continue;
        s = std::move(it->second);
        any = true;
    }
    refreshed_.clear();
    if (!any) return;
    {
        std::lock_guard lock(mutex_);
        current_ = std::move(next);
    }
    wake_selectors();
}

// Each update copies the whole description (the strategy's pure function): with thousands of
// unreachable servers failing their first check, applying them all in one go would keep
// timers (a selection's deadline) and replies waiting for seconds.
void client_core::drain_deferred() {
    constexpr auto slice = std::chrono::milliseconds(5);
    const auto until = std::chrono::steady_clock::now() + slice;
    while (open_ && !deferred_.empty() && std::chrono::steady_clock::now() < until) {
        auto node = deferred_.extract(deferred_.begin());
        if (!servers_.count(node.key())) continue;
        if (const auto* now = current_->find(node.key()); now && sdam::same_description(*now, node.mapped())) continue;
        apply_description(node.mapped());
    }
    if (!open_) deferred_.clear();
    if (deferred_.empty()) {
        draining_ = false;
        return;
    }
    asio::post(strand_, [self = shared_from_this()] { self->drain_deferred(); });
}

void client_core::apply_description(const sdk::server_description& d) {
    auto previous = current_;
    auto& strategy = strategy_for(*previous);
    std::shared_ptr<const sdk::topology_description> next;
    // A strategy that throws (or answers nothing) leaves the description as it was: this
    // server's next check tries again.
    const auto where = strategy_call(strategy, "on_server_description");
    if (!guarded(settings_.on_callback_failure, where, [&] {
            next = strategy.on_server_description(previous, d);
            if (!next) throw std::runtime_error("returned no topology description");
        }))
        return;
    publish(previous, next, &d);
}

namespace {

bool unknown_or_possible(const sdk::server_description* s) {
    return s->type == sdk::server_type::unknown || s->type == sdk::server_type::possible_primary;
}

}  // namespace

// Work in proportion to what changed: the diff walks both descriptions once, and only the
// servers it names are touched.
void client_core::publish(std::shared_ptr<const sdk::topology_description> previous,
                          std::shared_ptr<const sdk::topology_description> next, const sdk::server_description* processed) {
    {
        std::lock_guard lock(mutex_);
        current_ = next;
    }
    const sdam::detail::topology_diff diff = sdam::detail::diff(*previous, *next, processed);
    for (const auto* s : diff.closed) remove_server(s->address);
    for (const auto* s : diff.opened)
        if (!servers_.count(s->address)) add_server(s->address);
    const auto ready_if_known = [&](const sdk::server_description& s) {
        if (s.type == sdk::server_type::unknown) return;
        if (auto it = servers_.find(s.address); it != servers_.end()) it->second->pool->ready();
    };
    // CMAP: a successful check makes the server's pool ready, even when it changed nothing.
    if (processed)
        if (const auto* now = next->find(processed->address)) ready_if_known(*now);
    for (const auto* s : diff.opened) ready_if_known(*s);
    for (const auto& c : diff.changed) {
        auto it = servers_.find(c.before->address);
        if (it == servers_.end()) continue;  // removed
        if (c.after->type != sdk::server_type::unknown) {
            it->second->pool->ready();
        } else if (c.before->type != sdk::server_type::unknown && (!processed || processed->address != c.after->address)) {
            // Another server's reply made this one Unknown (a stale primary, a member that left):
            // check it now rather than at its next heartbeat. A stale primary older than 4.2
            // also loses its connections (SDAM: servers before 4.2 close them on stepdown).
            if (c.before->type == sdk::server_type::rs_primary && c.before->max_wire_version < sdam::wire_version_4_2) {
                it->second->pool->clear();
                ++it->second->pool_generation;
            }
            request_check(*it->second);
        }
    }
    if (settings_.on_sdam)
        for (const auto& e : sdam::detail::events_of(diff, *previous, *next, topology_id_)) emit(e);
    // A server that stays Unknown cannot make a waiting selection succeed; anything else may
    // (a new lastWriteDate or round trip changes staleness and the latency window).
    bool quiet = processed && unknown_or_possible(processed) && diff.opened.empty() && diff.closed.empty() &&
                 sdam::detail::same_topology_fields(*previous, *next);
    if (quiet) {
        const auto* before = previous->find(processed->address);
        quiet = before && unknown_or_possible(before);
    }
    if (!quiet) wake_selectors();
}

void client_core::reconcile_servers() {
    std::vector<std::string_view> wanted;
    for (const auto& s : current_->servers) wanted.emplace_back(s.address);
    std::sort(wanted.begin(), wanted.end());
    std::vector<std::string> gone;
    for (auto& [a, s] : servers_)
        if (!std::binary_search(wanted.begin(), wanted.end(), std::string_view(a))) gone.push_back(a);
    for (auto& a : gone) remove_server(a);
    for (const auto& s : current_->servers)
        if (!servers_.count(s.address)) add_server(s.address);
}

std::shared_ptr<server_state> client_core::add_server(const std::string& address) {
    auto s = std::make_shared<server_state>(strand_, address);
    auto settings = std::make_shared<conn::establish_settings>();
    const auto where = address_from(address);
    settings->connect = conn::connect_request_for(options_, where);
    // An SRV target found through the DNS servers the client was given is reached at the address
    // those servers gave. The TLS transport verifies the name it connects to, so with TLS the
    // name stays (and the system resolver finds it).
    if (auto a = target_addresses_.find(where.host); a != target_addresses_.end() && !settings->connect.tls.enabled)
        settings->connect.host = a->second;
    settings->transport = transport_;
    settings->connection.address = address;
    settings->connection.socket_timeout = options_.socket_timeout;
    settings->connection.compressors = compressors_;
    settings->connection.buffers = receive_buffers_;
    settings->connection.on_command = settings_.on_command;
    if (options_.server_api) settings->connection.server_api = handshake::server_api_fields(*options_.server_api);
    settings->hello = hello_;  // metadata, compressors, loadBalanced, saslSupportedMechs: made once
    settings->authenticate = authenticate_;
    s->settings = settings;

    pool::pool_config cfg;
    cfg.address = address;
    cfg.options = pool::pool_options_from(options_);
    std::weak_ptr<server_state> weak = s;
    auto self = shared_from_this();
    cfg.establisher = conn::make_pool_establisher(strand_, settings, [weak, self](const conn::establish_failure& f) {
        asio::post(self->strand_, [weak, text = f.message, service = f.service_id] {
            if (auto st = weak.lock()) {
                st->last_establish_error = text;
                st->last_establish_service = service;
            }
        });
    });
    cfg.on_event = settings_.on_cmap;
    cfg.load_balanced = load_balanced();
    cfg.on_establish_error = [weak, self](std::error_code ec, std::uint64_t generation) {
        asio::post(self->strand_, [weak, self, ec, generation] {
            auto st = weak.lock();
            if (!st || st->stopped) return;
            // Load balanced: errors up to the end of the hello are not SDAM's (the load balancers
            // spec); later ones (authentication) clear the connection's service only.
            if (self->load_balanced() && !st->last_establish_service) return;
            sdam::application_error f;
            const std::error_code plain = conn::without_labels(ec);
            f.service_id = st->last_establish_service;
            f.kind = plain == errc::network_timeout ? sdam::error_kind::network_timeout
                     : plain == errc::authentication_failed ? sdam::error_kind::authentication
                                                            : sdam::error_kind::network;
            f.error_labels = conn::backpressure_labels(ec);
            f.handshake_completed = false;
            f.generation = static_cast<std::int64_t>(generation);
            f.message = st->last_establish_error.empty() ? ec.message() : st->last_establish_error;
            self->handle_application_error(*st, f);
        });
    };
    s->pool = std::make_unique<pool::connection_pool>(inner_, std::move(cfg));
    servers_[address] = s;
    if (load_balanced()) {
        // A load balancer is never monitored: its pool is ready from the start.
        s->pool->ready();
        return s;
    }
    asio::co_spawn(strand_, monitor_loop(s), asio::detached);
    return s;
}

void client_core::remove_server(const std::string& address) {
    auto it = servers_.find(address);
    if (it == servers_.end()) return;
    auto s = it->second;
    servers_.erase(it);
    s->stopped = true;
    s->wake.cancel();
    s->rtt_wake.cancel();
    s->cancel_monitor.emit(asio::cancellation_type::terminal);
    s->cancel_rtt.emit(asio::cancellation_type::terminal);
    if (s->monitor) s->monitor->close();
    if (s->rtt_connection) s->rtt_connection->close();
    s->pool->close();
}

void client_core::request_check(server_state& s) {
    s.check_requested = true;
    s.wake.cancel();
}

void client_core::request_check_all() {
    for (auto& [a, s] : servers_) request_check(*s);
}

void client_core::wake_selectors() {
    for (auto& t : selectors_) t->cancel();
}

void client_core::mark_unknown(server_state& s, const std::string& why, bool interrupt) {
    auto d = sdam::unknown_server(s.address, why);
    d.last_update_time = std::chrono::steady_clock::now();  // it was checked, and failed
    on_server_description(d);
    s.pool->clear(pool::clear_options{interrupt});
    ++s.pool_generation;
}

void client_core::handle_application_error(server_state& s, sdam::application_error e) {
    if (!open_ || !servers_.count(s.address)) return;
    e.address = s.address;
    const auto r = sdam::handle_application_error(*current_, e, s.pool_generation);
    if (r.marked_unknown)
        if (const auto* d = r.topology.find(s.address)) on_server_description(*d);
    if (r.clear_pool && r.clear_service_id) {
        // Load balanced: that service's connections only, unless they were cleared already.
        std::optional<std::uint64_t> generation;
        if (e.handshake_completed) generation = static_cast<std::uint64_t>(e.generation);
        s.pool->clear_service(*r.clear_service_id, generation);
    } else if (r.clear_pool) {
        s.pool->clear();
        ++s.pool_generation;
    }
    if (r.request_check) request_check(s);
}

asio::awaitable<client_core::selected> client_core::select(const sdk::operation_requirements& req,
                                                            const std::vector<std::string>& deprioritized,
                                                            std::optional<std::chrono::steady_clock::time_point> limit) {
    const auto started = std::chrono::steady_clock::now();
    // The CSOT spec's computedServerSelectionTimeout: min(serverSelectionTimeoutMS, remaining timeoutMS).
    const bool by_timeout = limit && *limit < started + options_.server_selection_timeout;
    const auto deadline = by_timeout ? *limit : started + options_.server_selection_timeout;
    bool asked = false;
    // A failed seed list resolution is tried again by each operation that starts afterwards.
    if (seedlist_ == seedlist_state::failed && open_) start_seedlist();
    for (;;) {
        if (!open_) {
            if (final_) throw error(errc::connection_failure, "the client was closed while the operation waited for a server");
            start_topology();  // used after close(): open again, as the seeds do
        }
        if (seedlist_ == seedlist_state::failed && seedlist_failure_) std::rethrow_exception(seedlist_failure_);
        auto t = current_;
        if (!t->compatible) throw error(errc::incompatible_server, t->compatibility_error.value_or("incompatible server"));
        auto& strategy = strategy_for(*t);
        std::vector<std::string> why;
        // The server selection spec: suitable servers are found first among those not
        // deprioritized (so primaryPreferred reads from a secondary when the primary is), and
        // only if none suits among all of them. The strategy sees a topology without them; one
        // that loses its primary so is one without a primary.
        std::vector<const sdk::server_description*> suitable;
        std::shared_ptr<sdk::topology_description> without;  // `suitable` may point into it
        if (!deprioritized.empty()) {
            auto f = std::make_shared<sdk::topology_description>(*t);
            std::erase_if(f->servers, [&](const sdk::server_description& s) {
                return std::find(deprioritized.begin(), deprioritized.end(), s.address) != deprioritized.end();
            });
            if (f->servers.size() != t->servers.size()) {
                if (f->type == sdk::topology_type::replica_set_with_primary &&
                    std::none_of(f->servers.begin(), f->servers.end(),
                                 [](const auto& s) { return s.type == sdk::server_type::rs_primary; }))
                    f->type = sdk::topology_type::replica_set_no_primary;
                without = std::move(f);
                std::vector<std::string> ignored;
                suitable = guarded_or_throw([&] { return strategy_call(strategy, "suitable_servers"); },
                                            [&] { return strategy.suitable_servers(*without, req, &ignored); });
            }
        }
        if (suitable.empty())
            suitable = guarded_or_throw([&] { return strategy_call(strategy, "suitable_servers"); },
                                        [&] { return strategy.suitable_servers(*t, req, &why); });
        if (!suitable.empty()) {
            selected out;
            out.policy = guarded_or_throw([&] { return strategy_call(strategy, "policy"); }, [&] { return strategy.policy(req); });
            if (out.policy == sdk::selection_policy::in_turn) {
                for (auto* d : suitable)
                    if (auto it = servers_.find(d->address); it != servers_.end()) out.servers.push_back(it->second);
            } else {
                const auto window = selection::in_latency_window(suitable, options_.local_threshold);
                const auto* chosen = selection::choose(
                    std::span<const sdk::server_description* const>(window),
                    [this](const sdk::server_description& d) -> std::size_t {
                        auto it = servers_.find(d.address);
                        return it == servers_.end() ? 0 : static_cast<std::size_t>(it->second->in_flight.load());
                    },
                    random_);
                if (chosen)
                    if (auto it = servers_.find(chosen->address); it != servers_.end()) out.servers.push_back(it->second);
            }
            if (!out.servers.empty()) co_return out;
        }
        if (!asked) {
            request_check_all();
            asked = true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            std::ostringstream msg;
            const char* what = req.what == sdk::operation_requirements::kind::read ? "read" : req.what == sdk::operation_requirements::kind::write ? "write" : "command";
            msg << "no suitable server for a " << what;
            if (req.what == sdk::operation_requirements::kind::read) msg << " (" << selection::to_string(req.read_preference) << ")";
            if (by_timeout)
                msg << " within the operation's remaining timeoutMS ("
                    << std::chrono::duration_cast<std::chrono::milliseconds>(deadline - started).count() << " ms)";
            else
                msg << " within " << options_.server_selection_timeout.count() << " ms";
            msg << "; topology " << to_string(t->type);
            if (t->set_name) msg << " (set " << *t->set_name << ")";
            msg << ": ";
            list_some(msg, why.size(), "; ", [&](std::size_t i) { return why[i]; });
            // Each server's state and last error, which the why-not lines may not say.
            if (seedlist_ == seedlist_state::resolving || seedlist_ == seedlist_state::pending) {
                msg << (why.empty() ? "" : "; ") << "no seed list yet: " << seedlist_source()
                    << " the SRV and TXT lookups have not answered";
            } else if (!t->servers.empty()) {
                msg << (why.empty() ? "" : "; ") << "servers: ";
                list_some(msg, t->servers.size(), "; ", [&](std::size_t i) { return describe(t->servers[i]); });
            } else {
                msg << (why.empty() ? "" : "; ") << "no servers left (the seeds ";
                list_some(msg, seeds().size(), " ", [&](std::size_t i) { return sdam::address_of(seeds()[i]); });
                msg << " were removed from the topology";
                if (options_.replica_set) msg << "; is replicaSet=" << *options_.replica_set << " right?";
                msg << ")";
            }
            throw error(errc::server_selection_timeout, msg.str());
        }
        auto timer = std::make_shared<asio::steady_timer>(strand_, deadline);
        selectors_.push_back(timer);
        co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
        selectors_.erase(std::remove(selectors_.begin(), selectors_.end(), timer), selectors_.end());
    }
}

std::shared_ptr<const sdk::topology_description> client_core::wait_for_discovery() {
    check_blocking("wait_for_discovery");  // it sleeps between looks: on the strand, nothing would change
    const auto deadline = std::chrono::steady_clock::now() + options_.server_selection_timeout;
    for (;;) {
        std::promise<std::pair<bool, std::shared_ptr<const sdk::topology_description>>> p;
        auto f = p.get_future();
        std::exception_ptr dns_failure;  // a mongodb+srv:// seed list DNS refused: nothing to discover
        asio::dispatch(strand_, [this, &p, &dns_failure] {
            if (seedlist_ == seedlist_state::failed) dns_failure = seedlist_failure_;
            if (!open_) start_topology();
            if (load_balanced()) {  // nothing to discover: the load balancer is all there is
                p.set_value({true, current_});
                return;
            }
            // A seed list still to come from DNS: nothing has been checked yet.
            bool all = seedlist_ != seedlist_state::pending && seedlist_ != seedlist_state::resolving;
            for (auto& [a, s] : servers_) all = all && (s->last_heartbeat || (s->last_check != std::chrono::steady_clock::time_point{} && !s->check_requested));
            // PossiblePrimary is what another member said, not a check of this one's own.
            for (const auto& d : current_->servers)
                all = all && ((d.type != sdk::server_type::unknown && d.type != sdk::server_type::possible_primary) || d.error);
            p.set_value({all, current_});
        });
        auto [done, t] = f.get();
        if (dns_failure) std::rethrow_exception(dns_failure);
        if (done || std::chrono::steady_clock::now() >= deadline) return t;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace trellis::detail
