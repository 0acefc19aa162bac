// mongodb+srv://: the seed list from DNS (initial DNS seedlist discovery) once the client opens,
// and SRV polling for mongos discovery while the topology is Sharded or Unknown. Both run on the
// client's strand; the DNS queries themselves run in c-ares, driven by Asio (trellis/dns.hpp).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/core.hpp"
#include "connection/establisher.hpp"
#include "sdam/internal.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace trellis::detail {

std::string bare_message(std::error_code ec, std::string text);
std::string bare_message(const std::system_error& e);

namespace {

// The spec's rescanSRVIntervalMS when the TTL is not known (c-ares 1.18's SRV parser drops it).
constexpr std::chrono::milliseconds default_rescan_interval{60'000};

std::string host_port(const server_address& a) { return a.host + ":" + std::to_string(a.port_or_default()); }

}  // namespace

// An error's text without the ": <category message>" std::system_error appends to it, for
// wrapping it in another error.
std::string bare_message(std::error_code ec, std::string text) {
    const std::string suffix = ": " + ec.message();
    if (text.size() > suffix.size() && text.ends_with(suffix)) text.resize(text.size() - suffix.size());
    return text;
}

std::string bare_message(const std::system_error& e) { return bare_message(e.code(), e.what()); }

std::string client_core::seedlist_source() const {
    std::string servers;
    for (const auto& e : resolver_->servers()) servers += (servers.empty() ? "" : ", ") + e.to_string();
    return "mongodb+srv://" + options_.srv_host + " (DNS servers " + (servers.empty() ? "none" : servers) + "):";
}

const std::vector<server_address>& client_core::seeds() const {
    return seedlist_ == seedlist_state::resolved ? srv_options_.hosts : options_.hosts;
}

void client_core::start_seedlist() {
    seedlist_ = seedlist_state::resolving;
    seedlist_failure_ = nullptr;
    asio::co_spawn(strand_, resolve_seedlist(seedlist_generation_), asio::detached);
}

asio::awaitable<void> client_core::resolve_seedlist(std::uint64_t generation) {
    auto self = shared_from_this();  // the DNS answer may come after the client let go
    connection_string parsed;
    parsed.options = options_;
    auto [ec, result] = co_await dns::async_resolve_seedlist(*resolver_, parsed, asio::use_awaitable);
    if (generation != seedlist_generation_) co_return;  // abandoned by a close
    if (ec) {
        seedlist_failed(ec, result.error_message);
        co_return;
    }
    std::vector<std::string> names;
    for (const auto& h : result.options.hosts) names.push_back(h.host);
    co_await lookup_targets(std::move(names));
    if (generation != seedlist_generation_) co_return;
    try {
        apply_seedlist(std::move(result.options));
    } catch (const error& e) {
        seedlist_failed(e.code(), bare_message(e));
    } catch (const std::exception& e) {  // a strategy plugin refusing the seeds
        seedlist_failed(errc::configuration_error, e.what());
    }
}

void client_core::seedlist_failed(std::error_code ec, const std::string& message) {
    seedlist_ = seedlist_state::failed;
    const errc kind = ec == errc::configuration_error ? errc::configuration_error : errc::connection_failure;
    seedlist_failure_ =
        make_failure(kind, seedlist_source() + " " + (message.empty() ? ec.message() : bare_message(ec, message)));
    wake_selectors();
}

void client_core::apply_seedlist(client_options resolved) {
    // Everything the TXT record may change (replicaSet, authSource, loadBalanced) is made again
    // from the resolved options; the rest is the constructor's.
    auto initial = make_initial(resolved);
    auto authenticate = make_authenticator(resolved);
    hello_ = conn::hello_options_for(resolved, *compressors_);
    authenticate_ = std::move(authenticate);
    srv_options_ = std::move(resolved);
    initial_ = std::move(initial);
    seedlist_ = seedlist_state::resolved;
    if (!open_) return;  // the next opening starts from initial_
    publish(current_, initial_, nullptr);
    start_srv_polling();
}

asio::awaitable<void> client_core::lookup_targets(std::vector<std::string> hosts) {
    if (!dns_explicit_) co_return;
    auto self = shared_from_this();
    for (const std::string& host : hosts) {
        if (classify_host(host) != host_type::hostname || target_addresses_.count(host)) continue;
        dns::diagnostics diag;
        auto [ec, addresses] = co_await resolver_->async_query_address(host, diag, asio::use_awaitable);
        // No answer: the name is left to the system resolver, whose failure names the host.
        if (!ec && !addresses.empty()) target_addresses_[host] = addresses.front().to_string();
    }
}

void client_core::start_srv_polling() {
    if (!resolver_ || !open_) return;
    const auto type = current_->type;
    if (type != sdk::topology_type::sharded && type != sdk::topology_type::unknown) return;
    ++srv_poll_generation_;
    if (srv_timer_) srv_timer_->cancel();
    srv_timer_ = std::make_shared<asio::steady_timer>(strand_);
    asio::co_spawn(strand_, srv_poll_loop(srv_poll_generation_, srv_timer_), asio::detached);
}

asio::awaitable<void> client_core::srv_poll_loop(std::uint64_t generation, std::shared_ptr<asio::steady_timer> timer) {
    auto self = shared_from_this();
    const auto interval = options_.srv_rescan_interval.value_or(default_rescan_interval);
    auto wait = interval;
    const auto live = [&] { return generation == srv_poll_generation_ && open_; };
    for (;;) {
        // From the end of the previous scan, as the spec says.
        timer->expires_after(wait);
        co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
        if (!live()) co_return;
        // Only Sharded and Unknown topologies are polled; once discovery says otherwise, never again.
        const auto type = current_->type;
        if (type != sdk::topology_type::sharded && type != sdk::topology_type::unknown) co_return;

        dns::diagnostics diag;
        const std::string name = srv_query_name(srv_options_);
        auto [ec, records] = co_await resolver_->async_query_srv(name, diag, asio::use_awaitable);
        if (!live()) co_return;
        // Targets outside the domain are left out, without an error; a port of 0 too.
        std::vector<server_address> valid;
        for (const srv_record& r : records) {
            std::string target = r.target;
            if (target.ends_with('.')) target.pop_back();
            if (r.port == 0 || !srv_target_allowed(srv_options_.srv_host, target)) continue;
            server_address a;
            a.type = classify_host(target);
            a.host = std::move(target);
            a.port = r.port;
            valid.push_back(std::move(a));
        }
        // A DNS error or no usable record: the topology stays, and the next try comes after
        // heartbeatFrequencyMS rather than the full interval.
        if (ec || valid.empty()) {
            wait = std::min(interval, options_.heartbeat_frequency);
            continue;
        }
        wait = interval;
        std::vector<std::string> names, addresses;
        for (const auto& a : valid) {
            names.push_back(a.host);
            addresses.push_back(host_port(a));
        }
        co_await lookup_targets(std::move(names));
        if (!live()) co_return;
        auto previous = current_;
        auto next = std::make_shared<const sdk::topology_description>(sdam::apply_srv_hosts(
            *previous, addresses, srv_options_.srv_max_hosts.value_or(0), [this](std::size_t n) {
                return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
            }));
        if (const auto d = sdam::detail::diff(*previous, *next, nullptr); d.opened.empty() && d.closed.empty()) continue;
        srv_options_.hosts = std::move(valid);
        publish(previous, next, nullptr);
    }
}

}  // namespace trellis::detail
