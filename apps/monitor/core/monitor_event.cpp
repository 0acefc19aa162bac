#include "monitor_event.hpp"

#include <chrono>
#include <string>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdam.hpp"

namespace trellis::monitor {
namespace {

QString qs(std::string_view s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

double to_ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

mon_event base(event_family family, std::string_view type, std::string_view address) {
    mon_event ev;
    ev.t_ms = steady_now_ms();
    ev.utc = QDateTime::currentDateTimeUtc();
    ev.family = family;
    ev.type = qs(type);
    ev.address = qs(address);
    return ev;
}

void append_server(bson::builder& b, std::string_view key, const sdk::server_description& s) {
    b.open_document(key);
    b.append("address", s.address);
    b.append("type", sdk::to_string(s.type));
    if (s.set_name) b.append("setName", *s.set_name);
    if (s.set_version) b.append("setVersion", *s.set_version);
    if (s.election_id) b.append("electionId", *s.election_id);
    if (s.primary) b.append("primary", *s.primary);
    if (s.round_trip_time) b.append("roundTripTimeMS", static_cast<double>(s.round_trip_time->count()) / 1000.0);
    if (!s.tags.empty()) {
        b.open_document("tags");
        for (const auto& [k, v] : s.tags) b.append(k, v);
        b.close_document();
    }
    if (s.error) b.append("error", *s.error);
    b.close_document();
}

void append_topology(bson::builder& b, std::string_view key, const sdk::topology_description& t) {
    b.open_document(key);
    b.append("type", sdk::to_string(t.type));
    if (t.set_name) b.append("setName", *t.set_name);
    if (t.max_election_id) b.append("maxElectionId", *t.max_election_id);
    if (t.max_set_version) b.append("maxSetVersion", *t.max_set_version);
    b.open_array("servers");
    for (const auto& s : t.servers) {
        b.open_document();
        b.append("address", s.address);
        b.append("type", sdk::to_string(s.type));
        if (s.error) b.append("error", *s.error);
        b.close_document();
    }
    b.close_array();
    b.close_document();
}

std::shared_ptr<const bson::document> finish(bson::builder& b) {
    return std::make_shared<const bson::document>(b.extract());
}

bool reply_writable(bson::document_view reply) {
    for (std::string_view key : {"isWritablePrimary", "ismaster"})
        if (auto e = reply.find(key); e && e->type() == bson::type::boolean && e->get_bool()) return true;
    return false;
}

bool is_write_command(std::string_view name) {
    return name == "insert" || name == "update" || name == "delete" || name == "findAndModify";
}

}  // namespace

std::string_view to_string(event_family f) noexcept {
    switch (f) {
        case event_family::sdam: return "sdam";
        case event_family::cmap: return "cmap";
        case event_family::command: return "command";
        case event_family::rtt: return "rtt";
        case event_family::workload: return "workload";
        case event_family::action: return "action";
        case event_family::alert: return "alert";
    }
    return "unknown";
}

std::int64_t steady_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

QString mon_event::detail_json() const {
    if (!detail) return QStringLiteral("{}");
    return QString::fromStdString(bson::to_json(detail->view(), bson::json_mode::relaxed));
}

mon_event from_sdam(const sdam_event& e) {
    const std::string* addr = event_address(e);
    mon_event ev = base(event_family::sdam, event_name(e), addr ? std::string_view(*addr) : std::string_view{});
    bson::builder b;
    b.append("topologyId", event_topology_id(e));
    if (addr) b.append("address", *addr);
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, server_heartbeat_started_event>) {
                ev.awaited = x.awaited;
                b.append("awaited", x.awaited);
            } else if constexpr (std::is_same_v<T, server_heartbeat_succeeded_event>) {
                ev.awaited = x.awaited;
                ev.duration_ms = to_ms(x.duration);
                ev.writable = reply_writable(x.reply.view());
                b.append("awaited", x.awaited);
                b.append("durationMS", *ev.duration_ms);
                b.append("reply", x.reply);
            } else if constexpr (std::is_same_v<T, server_heartbeat_failed_event>) {
                ev.awaited = x.awaited;
                ev.duration_ms = to_ms(x.duration);
                ev.failed = true;
                ev.error = QString::fromStdString(x.failure);
                b.append("awaited", x.awaited);
                b.append("durationMS", *ev.duration_ms);
                b.append("failure", x.failure);
                if (x.reply) b.append("reply", *x.reply);
            } else if constexpr (std::is_same_v<T, server_description_changed_event>) {
                ev.previous_server = std::make_shared<const sdk::server_description>(x.previous_description);
                ev.server = std::make_shared<const sdk::server_description>(x.new_description);
                if (x.new_description.error) ev.error = QString::fromStdString(*x.new_description.error);
                append_server(b, "previousDescription", x.previous_description);
                append_server(b, "newDescription", x.new_description);
            } else if constexpr (std::is_same_v<T, topology_description_changed_event>) {
                ev.previous_topology = std::make_shared<const sdk::topology_description>(x.previous_description);
                ev.topology = std::make_shared<const sdk::topology_description>(x.new_description);
                append_topology(b, "previousDescription", x.previous_description);
                append_topology(b, "newDescription", x.new_description);
            }
        },
        e);
    ev.detail = finish(b);
    return ev;
}

mon_event from_cmap(const cmap_event& e) {
    mon_event ev = base(event_family::cmap, event_name(e), event_address(e));
    // The pool counts need only the type; no detail document is made for these (they are many).
    return ev;
}

mon_event from_command(const command_event& e) {
    mon_event ev;
    std::visit(
        [&](const auto& x) {
            ev = base(event_family::command, std::decay_t<decltype(x)>::type_name, x.address);
            ev.command_name = QString::fromStdString(x.command_name);
            ev.is_write = is_write_command(x.command_name);
        },
        e);
    if (const auto* f = std::get_if<command_failed_event>(&e)) {
        ev.failed = true;
        ev.duration_ms = to_ms(f->duration);
        ev.server_code = f->server_code;
        ev.network_error = f->code != make_error_code(errc::operation_failure);
        ev.error = QString::fromStdString(f->failure.empty() ? f->code.message() : f->failure);
        if (!f->reply.empty())
            if (auto ce = sdam::command_error_of(f->reply.view())) ev.state_change = sdam::is_state_change(*ce);
        bson::builder b;
        b.append("address", f->address);
        b.append("commandName", f->command_name);
        b.append("databaseName", f->database_name);
        b.append("requestId", f->request_id);
        b.append("durationMS", *ev.duration_ms);
        b.append("failure", ev.error.toStdString());
        if (f->server_code != 0) b.append("code", f->server_code);
        if (!f->reply.empty()) b.append("reply", f->reply);
        ev.detail = finish(b);
    } else if (const auto* s = std::get_if<command_succeeded_event>(&e)) {
        ev.duration_ms = to_ms(s->duration);
    }
    return ev;
}

QString display_type(sdk::server_type t) {
    using st = sdk::server_type;
    switch (t) {
        case st::rs_primary: return QStringLiteral("PRIMARY");
        case st::rs_secondary: return QStringLiteral("SECONDARY");
        case st::rs_arbiter: return QStringLiteral("ARBITER");
        case st::mongos: return QStringLiteral("mongos");
        case st::standalone: return QStringLiteral("STANDALONE");
        case st::rs_other: return QStringLiteral("OTHER");
        case st::rs_ghost: return QStringLiteral("GHOST");
        case st::possible_primary: return QStringLiteral("PossiblePrimary");
        case st::load_balancer: return QStringLiteral("LoadBalancer");
        case st::unknown: return QStringLiteral("Unknown");
    }
    return QStringLiteral("Unknown");
}

std::optional<std::int64_t> term_of(const bson::oid& election_id) {
    const std::string hex = election_id.to_hex();
    if (hex.size() != 24 || hex.substr(0, 8) != "7fffffff") return std::nullopt;
    return static_cast<std::int64_t>(std::stoull(hex.substr(8), nullptr, 16));
}

QString iso_utc(const QDateTime& t) { return t.toUTC().toString(Qt::ISODateWithMs); }

}  // namespace trellis::monitor
