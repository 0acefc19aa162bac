// Shared by the network commands: see client_support.hpp.
#include "client_support.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/uri.hpp"

namespace trellis::cli {

bool wants_help(args a) {
    for (auto s : a)
        if (s == "--help" || s == "-h") return true;
    return false;
}

client_options check_uri(std::string_view uri) {
    try {
        connection_string cs = parse_uri(uri);
        for (const std::string& w : cs.warnings) std::cerr << "trellis: warning: URI: " << one_line(w) << '\n';
        return std::move(cs.options);
    } catch (const trellis::error& e) {
        // parse_uri never quotes the user information, so its message is safe to print.
        throw input_error{"invalid URI: " + std::string(e.what())};
    }
}

std::string with_uri_options(std::string uri, std::string_view options) {
    if (options.empty()) return uri;
    const auto query = uri.find('?');
    if (query == std::string::npos) {
        // mongodb://hosts/db or mongodb://hosts: the options need the '/' before the '?'.
        const auto scheme_end = uri.find("://");
        const auto slash = uri.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
        if (slash == std::string::npos) uri += '/';
        uri += '?';
    } else if (query + 1 < uri.size() && uri.back() != '&') {
        uri += '&';
    }
    uri += options;
    return uri;
}

bson::document parse_json_argument(std::string_view what, std::string_view text) {
    try {
        return bson::from_json(text);
    } catch (const trellis::bson_error& e) {
        throw input_error{std::string(what) + ": " + e.what()};
    }
}

std::pair<std::string, std::string> split_namespace(std::string_view command, std::string_view ns) {
    const auto dot = ns.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == ns.size())
        throw usage_error{std::string(command) + ": \"" + std::string(ns) + "\" is not DB.COLLECTION"};
    return {std::string(ns.substr(0, dot)), std::string(ns.substr(dot + 1))};
}

std::int64_t parse_count(std::string_view option, std::string_view text) {
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < 0)
        throw usage_error{std::string(option) + " needs a non-negative integer, got \"" + std::string(text) + "\""};
    return n;
}

namespace {

bool mentions(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

std::string server_state(const sdk::server_description& s) {
    std::string out = s.address + " " + std::string(sdk::to_string(s.type));
    if (s.error) out += ": " + one_line(*s.error);
    return out;
}

}  // namespace

std::string describe_failure(const trellis::error& e, const client_options& options,
                             const sdk::topology_description* topology) {
    std::string msg = one_line(e.what());
    std::vector<std::string> extra;
    if (e.code() == errc::server_selection_timeout) {
        const std::string ms = std::to_string(options.server_selection_timeout.count());
        if (!mentions(msg, ms + " ms") && !mentions(msg, ms + "ms") && !mentions(msg, "=" + ms))
            extra.push_back("serverSelectionTimeoutMS=" + ms);
        if (topology != nullptr && !topology->servers.empty()) {
            for (const auto& s : topology->servers)
                if (!mentions(msg, s.address) || (s.error && !mentions(msg, one_line(*s.error))))
                    extra.push_back(server_state(s));
        } else {
            for (const auto& h : options.hosts) {
                const std::string a = h.host + ":" + std::to_string(h.port_or_default());
                if (!mentions(msg, a)) extra.push_back(a);
            }
        }
    } else if (const auto* f = dynamic_cast<const operation_failure*>(&e)) {
        if (!f->code_name().empty() && !mentions(msg, f->code_name())) extra.push_back(f->code_name());
        if (f->server_code() != 0 && !mentions(msg, std::to_string(f->server_code())))
            extra.push_back("code " + std::to_string(f->server_code()));
    }
    if (!extra.empty()) {
        msg += " (";
        for (std::size_t i = 0; i < extra.size(); ++i) msg += (i ? "; " : "") + extra[i];
        msg += ')';
    }
    return msg;
}

namespace {
std::vector<std::string> dns_servers;  // --dns-server, set once by main before any command runs
}  // namespace

std::vector<std::string_view> take_dns_servers(std::vector<std::string_view> a) {
    std::vector<std::string_view> rest;
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::string_view value;
        if (a[i] == "--dns-server") {
            if (i + 1 == a.size()) throw usage_error{"--dns-server needs an address, such as 127.0.0.1:5353"};
            value = a[++i];
        } else if (a[i].starts_with("--dns-server=")) {
            value = a[i].substr(std::string_view("--dns-server=").size());
        } else {
            rest.push_back(a[i]);
            continue;
        }
        std::size_t start = 0;
        while (start <= value.size()) {
            const std::size_t comma = std::min(value.find(',', start), value.size());
            const std::string_view item = value.substr(start, comma - start);
            start = comma + 1;
            if (item.empty()) throw usage_error{"--dns-server has an empty address in \"" + std::string(value) + "\""};
            dns_servers.emplace_back(item);
        }
    }
    return rest;
}

namespace {
client_options with_dns_servers(client_options o) {
    if (!dns_servers.empty()) o.dns_servers = dns_servers;
    return o;
}
}  // namespace

command_client::command_client(std::string command, std::string_view uri, client_settings settings)
    : command_(std::move(command)), options_(check_uri(uri)), client_(with_dns_servers(options_), std::move(settings)) {}

void command_client::fail(const trellis::error& e, std::string_view context) {
    if (e.code() == errc::configuration_error || e.code() == errc::invalid_name) throw;
    const auto topology = client_.topology();
    std::string msg = command_ + ": ";
    if (!context.empty()) msg += std::string(context) + ": ";
    throw data_error{msg + describe_failure(e, options_, topology.get())};
}

// ---------------------------------------------------------------- times

std::optional<double> round_ms(std::optional<std::chrono::microseconds> d) {
    if (!d) return std::nullopt;
    return std::round(static_cast<double>(d->count()) / 100.0) / 10.0;
}

std::string format_ms(std::optional<std::chrono::microseconds> d) {
    if (!d) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(d->count()) / 1000.0);
    return buf;
}

namespace {
std::tm split_time(std::chrono::system_clock::time_point t, bool utc, int& millis) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    millis = static_cast<int>(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        --secs;
    }
    std::tm tm{};
    if (utc) gmtime_r(&secs, &tm);
    else localtime_r(&secs, &tm);
    return tm;
}
}  // namespace

std::string clock_time(std::chrono::system_clock::time_point t) {
    int ms = 0;
    const std::tm tm = split_time(t, false, ms);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    int ms = 0;
    const std::tm tm = split_time(t, true, ms);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

// ---------------------------------------------------------------- topology rendering

namespace {

std::string tags_text(const std::map<std::string, std::string>& tags) {
    if (tags.empty()) return "-";
    std::string out;
    for (const auto& [k, v] : tags) out += (out.empty() ? "" : ",") + k + "=" + v;
    return out;
}

std::string age_text(std::chrono::steady_clock::time_point last, std::chrono::steady_clock::time_point now) {
    if (last == std::chrono::steady_clock::time_point{}) return "-";  // not recorded
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - last);
    char buf[32];
    if (age.count() < 0) return "0.0 s ago";
    std::snprintf(buf, sizeof buf, "%.1f s ago", static_cast<double>(age.count()) / 1000.0);
    return buf;
}

}  // namespace

void print_topology_table(std::ostream& out, const sdk::topology_description& t, std::chrono::steady_clock::time_point now) {
    out << "topology " << sdk::to_string(t.type);
    if (t.set_name) out << ", set " << *t.set_name;
    out << ", " << t.servers.size() << (t.servers.size() == 1 ? " server" : " servers") << '\n';

    std::vector<std::vector<std::string>> rows;
    rows.push_back({"ADDRESS", "TYPE", "RTT AVG", "RTT MIN", "LAST HEARTBEAT", "SET", "TAGS", "ERROR"});
    for (const auto& s : t.servers) {
        rows.push_back({s.address, std::string(sdk::to_string(s.type)),
                        s.round_trip_time ? format_ms(s.round_trip_time) + " ms" : "-",
                        s.min_round_trip_time ? format_ms(s.min_round_trip_time) + " ms" : "-",
                        age_text(s.last_update_time, now), s.set_name.value_or("-"), tags_text(s.tags),
                        s.error ? one_line(*s.error) : "-"});
    }
    std::vector<std::size_t> width(rows.front().size(), 0);
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
    // RTT columns are numbers: right-aligned; the rest left-aligned; the last column unpadded.
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            const bool last = i + 1 == r.size();
            const bool right = i == 2 || i == 3;
            const std::string pad(width[i] - r[i].size(), ' ');
            if (right) line += pad + r[i];
            else line += last ? r[i] : r[i] + pad;
            if (!last) line += "  ";
        }
        out << line << '\n';
    }
    if (!t.compatible && t.compatibility_error) out << "incompatible: " << one_line(*t.compatibility_error) << '\n';
}

bson::document topology_document(const sdk::topology_description& t, std::optional<std::chrono::system_clock::time_point> time) {
    bson::builder b;
    if (time) b.append("time", iso_time(*time));
    b.append("type", sdk::to_string(t.type));
    if (t.set_name) b.append("set_name", *t.set_name);
    else b.append("set_name", nullptr);
    b.open_array("servers");
    for (const auto& s : t.servers) {
        b.open_document();
        b.append("address", s.address).append("type", sdk::to_string(s.type));
        if (auto ms = round_ms(s.round_trip_time)) b.append("round_trip_time_ms", *ms);
        else b.append("round_trip_time_ms", nullptr);
        if (auto ms = round_ms(s.min_round_trip_time)) b.append("min_round_trip_time_ms", *ms);
        else b.append("min_round_trip_time_ms", nullptr);
        b.open_document("tags");
        for (const auto& [k, v] : s.tags) b.append(k, v);
        b.close_document();
        if (s.error) b.append("error", *s.error);
        else b.append("error", nullptr);
        b.close_document();
    }
    b.close_array();
    return b.extract();
}

namespace {

// The spec's (=) fields of a server description that differ, by their hello names; type,
// error, tags and primary are described on their own.
std::vector<std::string> other_changed_fields(const sdk::server_description& a, const sdk::server_description& b) {
    std::vector<std::string> out;
    if (a.min_wire_version != b.min_wire_version || a.max_wire_version != b.max_wire_version) out.push_back("wire versions");
    if (a.me != b.me) out.push_back("me");
    if (a.hosts != b.hosts || a.passives != b.passives || a.arbiters != b.arbiters) out.push_back("members");
    if (a.set_name != b.set_name) out.push_back("setName");
    if (a.set_version != b.set_version) out.push_back("setVersion");
    if (a.election_id != b.election_id) out.push_back("electionId");
    if (a.logical_session_timeout_minutes != b.logical_session_timeout_minutes) out.push_back("logicalSessionTimeoutMinutes");
    if (a.topology_version != b.topology_version) out.push_back("topologyVersion");
    if (a.hidden != b.hidden) out.push_back("hidden");
    if (a.is_cryptd != b.is_cryptd) out.push_back("iscryptd");
    if (a.service_id != b.service_id) out.push_back("serviceId");
    return out;
}

}  // namespace

std::vector<std::string> describe_change(const sdk::topology_description& before, const sdk::topology_description& after) {
    std::vector<std::string> lines;
    if (before.type != after.type)
        lines.push_back("topology " + std::string(sdk::to_string(before.type)) + " -> " +
                        std::string(sdk::to_string(after.type)));
    if (before.set_name != after.set_name) lines.push_back("set name " + after.set_name.value_or("(none)"));
    for (const auto& s : after.servers) {
        const sdk::server_description* old = before.find(s.address);
        if (old == nullptr) {
            lines.push_back(s.address + " added (" + std::string(sdk::to_string(s.type)) + ")");
            continue;
        }
        std::vector<std::string> parts;
        if (old->type != s.type)
            parts.push_back(std::string(sdk::to_string(old->type)) + " -> " + std::string(sdk::to_string(s.type)));
        if (s.error && old->error != s.error) parts.push_back("error: " + one_line(*s.error));
        if (old->tags != s.tags) parts.push_back("tags " + tags_text(s.tags));
        if (old->primary != s.primary) parts.push_back(s.primary ? "reports primary " + *s.primary : "reports no primary");
        const auto fields = other_changed_fields(*old, s);
        if (!fields.empty()) {
            std::string f;
            for (const auto& name : fields) f += (f.empty() ? "" : ", ") + name;
            parts.push_back("new " + f);
        }
        if (parts.empty()) continue;
        std::string line = s.address;
        for (std::size_t i = 0; i < parts.size(); ++i) line += (i ? "; " : " ") + parts[i];
        lines.push_back(std::move(line));
    }
    for (const auto& s : before.servers)
        if (after.find(s.address) == nullptr) lines.push_back(s.address + " removed");
    if (after.max_election_id && before.max_election_id != after.max_election_id) {
        char hex[25] = {};
        after.max_election_id->to_hex(hex);
        lines.push_back("topology electionId " + std::string(hex, 24));
    }
    if (after.max_set_version && before.max_set_version != after.max_set_version)
        lines.push_back("topology setVersion " + std::to_string(*after.max_set_version));
    if (!after.compatible && after.compatibility_error && before.compatibility_error != after.compatibility_error)
        lines.push_back("incompatible: " + one_line(*after.compatibility_error));
    if (lines.empty())
        lines.push_back("topology " + std::string(sdk::to_string(after.type)) +
                        " republished (no change in a field the table shows)");
    return lines;
}

std::optional<std::string> primary_of(const sdk::topology_description& t) {
    for (const auto& s : t.servers)
        if (s.type == sdk::server_type::rs_primary) return s.address;
    return std::nullopt;
}

}  // namespace trellis::cli
