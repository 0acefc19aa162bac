// Scripted SDAM/command event sequences for the monitor's tests: no network, times chosen by
// the test (steady ms).
#pragma once

#include <QString>
#include <QTimeZone>

#include <array>
#include <string>
#include <vector>

#include "monitor_event.hpp"

namespace trellis::monitor::testing {

using sdk::server_type;
using sdk::topology_type;

inline bson::oid election_id(std::int64_t term) {
    std::array<std::uint8_t, 12> id{0x7f, 0xff, 0xff, 0xff};
    for (int i = 0; i < 8; ++i) id[static_cast<std::size_t>(11 - i)] = static_cast<std::uint8_t>(term >> (8 * i));
    return bson::oid(id);
}

inline mon_event make(std::int64_t t, event_family f, const char* type, const std::string& address = {}) {
    mon_event ev;
    ev.t_ms = t;
    ev.utc = QDateTime::fromMSecsSinceEpoch(1'800'000'000'000 + t, QTimeZone::utc());
    ev.family = f;
    ev.type = QString::fromLatin1(type);
    ev.address = QString::fromStdString(address);
    return ev;
}

inline mon_event hb_ok(std::int64_t t, const std::string& a, double ms, bool writable, bool awaited = false) {
    mon_event ev = make(t, event_family::sdam, "ServerHeartbeatSucceeded", a);
    ev.duration_ms = ms;
    ev.writable = writable;
    ev.awaited = awaited;
    return ev;
}

inline mon_event hb_failed(std::int64_t t, const std::string& a, const char* why = "connection refused") {
    mon_event ev = make(t, event_family::sdam, "ServerHeartbeatFailed", a);
    ev.failed = true;
    ev.error = QString::fromLatin1(why);
    ev.duration_ms = 1.0;
    return ev;
}

inline mon_event command_ok(std::int64_t t, const std::string& a, const char* name = "insert") {
    mon_event ev = make(t, event_family::command, "CommandSucceeded", a);
    ev.command_name = QString::fromLatin1(name);
    ev.is_write = ev.command_name == QLatin1String("insert");
    return ev;
}

inline mon_event command_failed(std::int64_t t, const std::string& a, bool state_change, const char* name = "insert") {
    mon_event ev = make(t, event_family::command, "CommandFailed", a);
    ev.command_name = QString::fromLatin1(name);
    ev.failed = true;
    ev.state_change = state_change;
    ev.server_code = state_change ? 10107 : 0;
    ev.network_error = !state_change;
    ev.error = QString::fromLatin1(state_change ? "not primary" : "connection reset");
    return ev;
}

/// A deployment whose members change state: each change gives the ServerDescriptionChanged
/// and TopologyDescriptionChanged events a client would publish.
class deployment_script {
public:
    deployment_script(topology_type type, std::vector<std::string> members, const char* set_name = "rs0")
        : sharded_(type == topology_type::sharded),
          replica_set_(type == topology_type::replica_set_no_primary || type == topology_type::replica_set_with_primary) {
        topology_.type = type;
        if (replica_set_) topology_.set_name = set_name;
        for (auto& m : members) {
            sdk::server_description s;
            s.address = m;
            topology_.servers.push_back(s);
        }
        set_name_ = set_name;
    }

    /// Sets a member's type (with a term for a primary) at time t; a secondary names the
    /// current primary, if any.
    std::vector<mon_event> set(std::int64_t t, const std::string& address, server_type type, std::int64_t term = 0,
                               const char* error = nullptr) {
        sdk::topology_description next = topology_;
        sdk::server_description* s = nullptr;
        for (auto& x : next.servers)
            if (x.address == address) s = &x;
        const sdk::server_description previous = *s;
        s->type = type;
        s->error = error ? std::optional<std::string>(error) : std::nullopt;
        s->set_name = !replica_set_ || type == server_type::unknown ? std::nullopt : std::optional<std::string>(set_name_);
        s->election_id = type == server_type::rs_primary ? std::optional(election_id(term)) : std::nullopt;
        s->set_version = type == server_type::rs_primary ? std::optional(1) : std::nullopt;
        s->primary.reset();
        if (replica_set_) {
            bool has_primary = false;
            for (const auto& x : next.servers)
                if (x.type == server_type::rs_primary) has_primary = true;
            next.type = has_primary ? topology_type::replica_set_with_primary : topology_type::replica_set_no_primary;
            for (const auto& x : next.servers)
                if (x.type == server_type::rs_primary && type == server_type::rs_secondary) s->primary = x.address;
        }
        std::vector<mon_event> out;
        mon_event sd = make(t, event_family::sdam, "ServerDescriptionChanged", address);
        sd.previous_server = std::make_shared<const sdk::server_description>(previous);
        sd.server = std::make_shared<const sdk::server_description>(*s);
        if (error) sd.error = QString::fromLatin1(error);
        out.push_back(sd);
        mon_event td = make(t, event_family::sdam, "TopologyDescriptionChanged");
        td.previous_topology = std::make_shared<const sdk::topology_description>(topology_);
        td.topology = std::make_shared<const sdk::topology_description>(next);
        out.push_back(td);
        topology_ = next;
        return out;
    }

    /// Several members at once, in one topology change (e.g. a primary replaced by another in a
    /// single step).
    std::vector<mon_event> swap(std::int64_t t, const std::string& old_primary, const std::string& new_primary,
                                std::int64_t term) {
        auto a = set(t, new_primary, server_type::rs_primary, term);
        // Re-make the events so that only one topology change is published: the old primary is
        // a secondary in the same new description.
        auto b = set(t, old_primary, server_type::rs_secondary);
        std::vector<mon_event> out{a[0], b[0]};
        mon_event td = b[1];
        td.previous_topology = a[1].previous_topology;
        out.push_back(td);
        return out;
    }

    const sdk::topology_description& topology() const { return topology_; }

private:
    sdk::topology_description topology_;
    std::string set_name_;
    bool sharded_;
    bool replica_set_;
};

}  // namespace trellis::monitor::testing
