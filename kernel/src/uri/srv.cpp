// The initial DNS seedlist discovery rules, over SRV and TXT answers the caller looked up.
#include <algorithm>

#include "trellis/errors.hpp"
#include "trellis/uri.hpp"
#include "uri/options_internal.hpp"
#include "uri/text.hpp"

namespace trellis {
namespace {

using namespace uri_detail;

[[noreturn]] void fail(const std::string& what) { throw configuration_error(what); }

std::string quoted(std::string_view s) { return "'" + printable(s) + "'"; }

std::string dns_name(std::string_view name) {
    if (name.ends_with('.')) name.remove_suffix(1);
    return lower(name);
}

// The TXT record is a query string like the URI's, limited to three options. An option the
// connection string gives itself wins (the spec's precedence).
void apply_txt(const std::string& text, connection_string& cs) {
    client_options& o = cs.options;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t amp = std::min(text.find('&', start), text.size());
        const std::string_view pair(text.data() + start, amp - start);
        start = amp + 1;
        if (pair.empty()) continue;
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos)
            fail("the TXT record option " + quoted(pair) + " has no value: options are key=value pairs");
        const auto key = percent_decode(pair.substr(0, eq));
        const auto value = percent_decode(pair.substr(eq + 1));
        if (!key || !value) fail("the TXT record has a '%' that is not followed by two hex digits");
        for (const std::string* part : {&*key, &*value})
            if (auto why = text_problem(*part)) fail("the TXT record option " + quoted(pair) + " " + *why);
        const std::string k = lower(*key);
        if (k == "authsource") {
            if (value->empty()) fail("the TXT record sets an empty authSource");
            if (!o.auth.source) o.auth.source = *value;
        } else if (k == "replicaset") {
            if (!o.replica_set) o.replica_set = *value;
        } else if (k == "loadbalanced") {
            std::optional<bool> b;
            if (iequals(*value, "true")) b = true;
            else if (iequals(*value, "false")) b = false;
            else cs.warnings.push_back("ignored TXT record option " + *key + "=" + *value + ": expected true or false");
            if (b && !o.load_balanced) o.load_balanced = b;
        } else {
            fail("the TXT record sets " + quoted(*key) +
                 ": only authSource, replicaSet and loadBalanced may come from DNS");
        }
    }
}

}  // namespace

std::string srv_query_name(const client_options& options) {
    return "_" + options.srv_service_name.value_or("mongodb") + "._tcp." + options.srv_host;
}

bool srv_target_allowed(std::string_view srv_host, std::string_view target) noexcept {
    try {
        const std::string host = dns_name(srv_host), t = dns_name(target);
        if (host.empty() || t.empty()) return false;
        // Three labels or more: the domain is what follows the first one. Fewer: the whole name,
        // and the target needs a label more than it (so "localhost" cannot vouch for itself).
        const bool short_name = std::count(host.begin(), host.end(), '.') < 2;
        const std::string domain = short_name ? host : host.substr(host.find('.') + 1);
        return t.size() > domain.size() + 1 && t.ends_with(domain) && t[t.size() - domain.size() - 1] == '.';
    } catch (...) {
        return false;  // only allocation can fail here
    }
}

std::vector<server_address> srv_seeds(std::string_view srv_host, std::span<const srv_record> records) {
    if (records.empty()) fail("the SRV lookup for " + quoted(srv_host) + " returned no records");
    std::vector<server_address> seeds;
    seeds.reserve(records.size());
    for (const srv_record& r : records) {
        std::string target = r.target;
        if (target.ends_with('.')) target.pop_back();
        if (!srv_target_allowed(srv_host, target))
            fail("SRV record " + quoted(r.target) + " is not inside the domain of " + quoted(srv_host));
        if (r.port == 0) fail("SRV record " + quoted(r.target) + " has port 0");
        server_address a;
        a.type = classify_host(target);
        a.host = std::move(target);
        a.port = r.port;
        seeds.push_back(std::move(a));
    }
    return seeds;
}

connection_string detail::resolve_srv(const connection_string& parsed, std::span<const srv_record> records,
                                      std::span<const txt_record> txt_records,
                                      const std::function<std::size_t(std::size_t)>& random_below) {
    if (!parsed.options.is_srv) fail("resolve_srv needs a mongodb+srv:// connection string");
    connection_string cs = parsed;
    std::vector<server_address> seeds = srv_seeds(parsed.options.srv_host, records);

    if (txt_records.size() > 1)
        fail("the TXT lookup for " + quoted(parsed.options.srv_host) + " returned " +
             std::to_string(txt_records.size()) + " records; at most one is allowed");
    if (txt_records.size() == 1) {
        std::string text;
        for (const std::string& piece : txt_records.front()) text += piece;
        apply_txt(text, cs);
    }

    // srvMaxHosts: keep that many, chosen uniformly (partial Fisher-Yates: the first n slots
    // end up holding a uniformly drawn n-subset in random order).
    const std::uint32_t max_hosts = cs.options.srv_max_hosts.value_or(0);
    if (max_hosts > 0 && max_hosts < seeds.size()) {
        for (std::size_t i = 0; i < max_hosts; ++i) {
            const std::size_t j = i + random_below(seeds.size() - i);
            std::swap(seeds[i], seeds[j]);
        }
        seeds.resize(max_hosts);
    }
    cs.options.hosts = std::move(seeds);
    validate_options(cs.options, false);
    return cs;
}

}  // namespace trellis
