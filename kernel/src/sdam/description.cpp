// ServerDescription: addresses, parsing a hello reply, equality, topologyVersion order.
#include "trellis/reply.hpp"
#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <stdexcept>

#include "sdam/internal.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdam.hpp"

namespace trellis::sdam {

// ================================================================ addresses

std::string detail::lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

namespace {

std::string checked_port(std::string_view whole, std::string_view port) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
        throw configuration_error("server address \"" + std::string(whole) + "\": port \"" + std::string(port) +
                                  "\" is not a number from 1 to 65535");
    return std::to_string(value);
}

}  // namespace

std::string normalize_address(std::string_view address) {
    if (address.empty()) throw configuration_error("empty server address");
    if (address.find('/') != std::string_view::npos) return std::string(address);  // a UNIX socket path
    if (address.front() == '[') {
        const auto close = address.find(']');
        if (close == std::string_view::npos || close == 1)
            throw configuration_error("server address \"" + std::string(address) + "\": malformed IPv6 literal");
        const std::string host = detail::lower(address.substr(1, close - 1));
        const std::string_view rest = address.substr(close + 1);
        if (rest.empty()) return "[" + host + "]:27017";
        if (rest.front() != ':')
            throw configuration_error("server address \"" + std::string(address) + "\": unexpected text after ']'");
        return "[" + host + "]:" + checked_port(address, rest.substr(1));
    }
    const auto colon = address.find(':');
    if (colon == std::string_view::npos) return detail::lower(address) + ":27017";
    if (address.find(':', colon + 1) != std::string_view::npos)  // a bare IPv6 literal: no port
        return "[" + detail::lower(address) + "]:27017";
    if (colon == 0) throw configuration_error("server address \"" + std::string(address) + "\": empty host");
    return detail::lower(address.substr(0, colon)) + ":" + checked_port(address, address.substr(colon + 1));
}

std::string address_of(const server_address& seed) {
    if (seed.type == host_type::unix_socket) return seed.host;
    if (seed.host.empty()) throw configuration_error("seed with an empty host");
    const std::string port = std::to_string(seed.port_or_default());
    if (seed.type == host_type::ip_literal) return "[" + detail::lower(seed.host) + "]:" + port;
    return detail::lower(seed.host) + ":" + port;
}

// ================================================================ topologyVersion

int compare_topology_version(const std::optional<topology_version>& current,
                             const std::optional<topology_version>& incoming) noexcept {
    if (!current || !incoming) return -1;
    if (current->process_id != incoming->process_id) return -1;
    if (current->counter == incoming->counter) return 0;
    return current->counter < incoming->counter ? -1 : 1;
}

// ================================================================ RTT

rtt_estimator::rtt_estimator(duration average) {
    if (!(average.count() >= 0.0) || average.count() == std::numeric_limits<double>::infinity())
        throw std::invalid_argument("rtt_estimator: the initial average must be a finite, non-negative duration");
    average_ = average;
}

void rtt_estimator::add_sample(std::chrono::nanoseconds rtt) {
    if (rtt.count() < 0)
        throw std::invalid_argument("rtt_estimator: negative round-trip time (" + std::to_string(rtt.count()) + " ns)");
    const duration sample = std::chrono::duration_cast<duration>(rtt);
    average_ = average_ ? alpha * sample + (1.0 - alpha) * *average_ : sample;
    recent_[count_ % window] = rtt;
    ++count_;
}

void rtt_estimator::reset() noexcept {
    average_.reset();
    count_ = 0;
}

std::optional<std::chrono::microseconds> rtt_estimator::round_trip_time() const noexcept {
    if (!average_) return std::nullopt;
    return std::chrono::round<std::chrono::microseconds>(*average_);
}

std::chrono::microseconds rtt_estimator::min_round_trip_time() const noexcept {
    if (count_ < 2) return std::chrono::microseconds{0};
    const std::size_t n = std::min(count_, window);
    const auto smallest = *std::min_element(recent_.begin(), recent_.begin() + static_cast<std::ptrdiff_t>(n));
    return std::chrono::duration_cast<std::chrono::microseconds>(smallest);
}

// ================================================================ parsing hello

namespace {

// A field of the wrong type or range: parse_hello turns it into an Unknown description.
struct malformed_reply : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void wrong_type(std::string_view path, const bson::element& e, std::string_view wanted) {
    throw malformed_reply("field '" + std::string(path) + "' is " + std::string(bson::type_name(e.type())) +
                          ", expected " + std::string(wanted));
}

// Each accessor treats an absent field and a null as "not given".
std::optional<bson::element> field(bson::document_view doc, std::string_view key) {
    auto e = doc.find(key);
    if (!e || e->is_null()) return std::nullopt;
    return e;
}

std::optional<bool> boolean(bson::document_view doc, std::string_view key, std::string_view path) {
    const auto e = field(doc, key);
    if (!e) return std::nullopt;
    if (e->type() == bson::type::boolean) return e->get_bool();
    if (e->is_number()) return e->as_double() != 0.0;
    wrong_type(path, *e, "bool");
}

std::optional<std::string> string(bson::document_view doc, std::string_view key, std::string_view path) {
    const auto e = field(doc, key);
    if (!e) return std::nullopt;
    if (e->type() != bson::type::string) wrong_type(path, *e, "string");
    return std::string(e->get_string());
}

std::optional<std::int64_t> integer(bson::document_view doc, std::string_view key, std::string_view path,
                                    std::int64_t min, std::int64_t max) {
    const auto e = field(doc, key);
    if (!e) return std::nullopt;
    if (!e->is_number()) wrong_type(path, *e, "an integer");
    std::int64_t v = 0;
    try {
        v = e->as_int64();
    } catch (const bson_error&) {
        throw malformed_reply("field '" + std::string(path) + "' holds " + std::to_string(e->as_double()) +
                              ", expected an integer");
    }
    if (v < min || v > max)
        throw malformed_reply("field '" + std::string(path) + "' holds " + std::to_string(v) + ", outside " +
                              std::to_string(min) + " to " + std::to_string(max));
    return v;
}

std::optional<int> small_integer(bson::document_view doc, std::string_view key, std::string_view path,
                                 std::int64_t min = std::numeric_limits<int>::min()) {
    const auto v = integer(doc, key, path, min, std::numeric_limits<int>::max());
    if (!v) return std::nullopt;
    return static_cast<int>(*v);
}

std::optional<bson::document_view> subdocument(bson::document_view doc, std::string_view key, std::string_view path) {
    const auto e = field(doc, key);
    if (!e) return std::nullopt;
    if (e->type() != bson::type::document) wrong_type(path, *e, "document");
    return e->get_document();
}

std::optional<bson::oid> object_id(bson::document_view doc, std::string_view key, std::string_view path) {
    const auto e = field(doc, key);
    if (!e) return std::nullopt;
    if (e->type() != bson::type::oid) wrong_type(path, *e, "objectId");
    return e->get_oid();
}

std::string address_field(std::string_view value, std::string_view path) {
    try {
        return normalize_address(value);
    } catch (const configuration_error& e) {
        throw malformed_reply("field '" + std::string(path) + "': " + e.what());
    }
}

std::vector<std::string> address_list(bson::document_view doc, std::string_view key) {
    std::vector<std::string> out;
    const auto e = field(doc, key);
    if (!e) return out;
    if (e->type() != bson::type::array) wrong_type(key, *e, "array");
    std::size_t i = 0;
    for (const bson::element& item : e->get_array()) {
        const std::string path = std::string(key) + "." + std::to_string(i++);
        if (item.type() != bson::type::string) wrong_type(path, item, "string");
        std::string address = address_field(item.get_string(), path);
        if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(std::move(address));
    }
    return out;
}

std::optional<topology_version> parse_topology_version(bson::document_view doc, std::string_view key) {
    const auto sub = subdocument(doc, key, key);
    if (!sub) return std::nullopt;
    const std::string pid_path = std::string(key) + ".processId";
    const std::string counter_path = std::string(key) + ".counter";
    const auto pid = object_id(*sub, "processId", pid_path);
    if (!pid) throw malformed_reply("field '" + pid_path + "' is missing");
    const auto counter =
        integer(*sub, "counter", counter_path, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
    if (!counter) throw malformed_reply("field '" + counter_path + "' is missing");
    return topology_version{*pid, *counter};
}

void parse_success(server_description& sd, bson::document_view reply) {
    // Type, per the spec's table.
    std::optional<bool> writable = boolean(reply, "isWritablePrimary", "isWritablePrimary");
    if (!writable) writable = boolean(reply, "ismaster", "ismaster");
    const auto msg = string(reply, "msg", "msg");
    const bool replica_set_ghost = boolean(reply, "isreplicaset", "isreplicaset").value_or(false);
    const bool secondary = boolean(reply, "secondary", "secondary").value_or(false);
    const bool arbiter = boolean(reply, "arbiterOnly", "arbiterOnly").value_or(false);
    sd.hidden = boolean(reply, "hidden", "hidden").value_or(false);
    sd.set_name = string(reply, "setName", "setName");

    if (msg && *msg == "isdbgrid")
        sd.type = server_type::mongos;
    else if (replica_set_ghost)
        sd.type = server_type::rs_ghost;
    else if (sd.set_name) {
        if (writable.value_or(false))
            sd.type = server_type::rs_primary;
        else if (sd.hidden)
            sd.type = server_type::rs_other;
        else if (secondary)
            sd.type = server_type::rs_secondary;
        else if (arbiter)
            sd.type = server_type::rs_arbiter;
        else
            sd.type = server_type::rs_other;
    } else
        sd.type = server_type::standalone;

    sd.min_wire_version = small_integer(reply, "minWireVersion", "minWireVersion", 0).value_or(0);
    sd.max_wire_version = small_integer(reply, "maxWireVersion", "maxWireVersion", 0).value_or(0);
    if (const auto me = string(reply, "me", "me")) sd.me = address_field(*me, "me");
    sd.hosts = address_list(reply, "hosts");
    sd.passives = address_list(reply, "passives");
    sd.arbiters = address_list(reply, "arbiters");
    if (const auto tags = subdocument(reply, "tags", "tags"))
        for (const bson::element& t : *tags) {
            if (t.type() != bson::type::string) wrong_type("tags." + std::string(t.key()), t, "string");
            sd.tags.emplace(std::string(t.key()), std::string(t.get_string()));
        }
    sd.set_version = small_integer(reply, "setVersion", "setVersion");
    sd.election_id = object_id(reply, "electionId", "electionId");
    if (const auto primary = string(reply, "primary", "primary")) sd.primary = address_field(*primary, "primary");
    if (const auto last_write = subdocument(reply, "lastWrite", "lastWrite")) {
        if (const auto date = field(*last_write, "lastWriteDate")) {
            if (date->type() != bson::type::date_time) wrong_type("lastWrite.lastWriteDate", *date, "date");
            sd.last_write_date = date->get_date_time().time_point();
        }
        if (const auto op_time = field(*last_write, "opTime")) {
            if (op_time->type() == bson::type::timestamp)
                sd.op_time = op_time->get_timestamp();
            else if (op_time->type() == bson::type::document) {
                const auto ts = field(op_time->get_document(), "ts");
                if (!ts) throw malformed_reply("field 'lastWrite.opTime.ts' is missing");
                if (ts->type() != bson::type::timestamp) wrong_type("lastWrite.opTime.ts", *ts, "timestamp");
                sd.op_time = ts->get_timestamp();
            } else
                wrong_type("lastWrite.opTime", *op_time, "document or timestamp");
        }
    }
    sd.logical_session_timeout_minutes =
        small_integer(reply, "logicalSessionTimeoutMinutes", "logicalSessionTimeoutMinutes", 0);
    sd.topology_version = parse_topology_version(reply, "topologyVersion");
    sd.is_cryptd = boolean(reply, "iscryptd", "iscryptd");
    sd.service_id = object_id(reply, "serviceId", "serviceId");
}

std::string failure_text(std::string_view address, bson::document_view reply) {
    std::string text = "hello failed on " + std::string(address);
    const auto msg = reply.find("errmsg");
    if (msg && msg->type() == bson::type::string) text += ": " + std::string(msg->get_string());
    const auto code = reply.find("code");
    if (code && code->is_number()) {
        const double d = code->as_double();
        if (d >= -2147483648.0 && d <= 2147483647.0) text += " (code " + std::to_string(static_cast<long>(d)) + ")";
    }
    return text;
}

}  // namespace

server_description unknown_server(std::string address, std::optional<std::string> error) {
    server_description sd;
    sd.address = normalize_address(address);
    sd.error = std::move(error);
    return sd;
}

server_description parse_hello(std::string address, bson::document_view reply,
                               std::optional<std::chrono::microseconds> rtt, clock::time_point now) {
    server_description sd;
    sd.address = normalize_address(address);
    sd.last_update_time = now;
    try {
        const auto ok = reply.find("ok");
        if (!ok) {
            sd.error = "hello reply from " + sd.address + " has no 'ok' field";
            return sd;
        }
        if (!ok->is_number() && ok->type() != bson::type::boolean) wrong_type("ok", *ok, "number or bool");
        if (!reply_ok(reply)) {
            sd.error = failure_text(sd.address, reply);
            return sd;
        }
        parse_success(sd, reply);
    } catch (const malformed_reply& e) {
        server_description unknown;
        unknown.address = sd.address;
        unknown.last_update_time = now;
        unknown.error = "malformed hello reply from " + sd.address + ": " + e.what();
        return unknown;
    }
    sd.round_trip_time = rtt;
    return sd;
}

server_description parse_hello(std::string address, bson::document_view reply, const rtt_estimator& rtt,
                               clock::time_point now) {
    server_description sd = parse_hello(std::move(address), reply, rtt.round_trip_time(), now);
    if (sd.type != server_type::unknown) sd.min_round_trip_time = rtt.min_round_trip_time();
    return sd;
}

// ================================================================ equality

namespace {

// Host lists compare as sets. Replies list them in the same order nearly always, so that is
// tried before sorting copies.
bool same_set(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.size() != b.size()) return false;
    if (a == b) return true;
    std::vector<std::string_view> x(a.begin(), a.end()), y(b.begin(), b.end());
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    return x == y;
}

// PossiblePrimary only orders a single-threaded client's scan; for everyone else it is
// "synonymous with Unknown" (the spec's note on ServerType), so marking a server a possible
// primary is no change a subscriber sees.
server_type observable(server_type t) noexcept {
    return t == server_type::possible_primary ? server_type::unknown : t;
}

}  // namespace

bool same_description(const server_description& a, const server_description& b) {
    return a.address == b.address && observable(a.type) == observable(b.type) && a.error == b.error &&
           a.min_wire_version == b.min_wire_version && a.max_wire_version == b.max_wire_version && a.me == b.me &&
           same_set(a.hosts, b.hosts) && same_set(a.passives, b.passives) && same_set(a.arbiters, b.arbiters) &&
           a.tags == b.tags && a.set_name == b.set_name && a.election_id == b.election_id &&
           a.set_version == b.set_version && a.primary == b.primary &&
           a.logical_session_timeout_minutes == b.logical_session_timeout_minutes &&
           a.topology_version == b.topology_version && a.is_cryptd == b.is_cryptd;
}

std::vector<const server_description*> detail::by_address(const topology_description& t) {
    std::vector<const server_description*> out;
    out.reserve(t.servers.size());
    for (const server_description& s : t.servers) out.push_back(&s);
    const auto less = [](const server_description* x, const server_description* y) { return x->address < y->address; };
    if (!std::is_sorted(out.begin(), out.end(), less)) std::sort(out.begin(), out.end(), less);
    return out;
}

bool detail::same_topology_fields(const topology_description& a, const topology_description& b) {
    return a.type == b.type && a.set_name == b.set_name && a.max_set_version == b.max_set_version &&
           a.max_election_id == b.max_election_id && a.compatible == b.compatible &&
           a.compatibility_error == b.compatibility_error &&
           a.logical_session_timeout_minutes == b.logical_session_timeout_minutes;
}

bool same_topology(const topology_description& a, const topology_description& b) {
    if (!detail::same_topology_fields(a, b) || a.servers.size() != b.servers.size()) return false;
    const auto x = detail::by_address(a), y = detail::by_address(b);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!same_description(*x[i], *y[i])) return false;  // same_description compares addresses too
    return true;
}

}  // namespace trellis::sdam
