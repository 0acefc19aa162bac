#include "timeline.hpp"

#include <algorithm>

namespace trellis::monitor {
namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

std::set<QString> writable_servers(const sdk::topology_description& t) {
    std::set<QString> out;
    for (const auto& s : t.servers)
        if (s.is_writable()) out.insert(q(s.address));
    return out;
}

QString kind_for(sdk::topology_type t) {
    switch (t) {
        case sdk::topology_type::sharded: return QStringLiteral("router lost");
        case sdk::topology_type::replica_set_no_primary:
        case sdk::topology_type::replica_set_with_primary: return QStringLiteral("primary lost");
        default: return QStringLiteral("writable server lost");
    }
}

}  // namespace

void failover_timeline::note_trouble(const QString& address, std::int64_t t, const QString& cause) {
    if (!trouble_.contains(address)) trouble_[address] = trouble{t, cause};
}

std::optional<std::int64_t> failover_timeline::no_primary_for(std::int64_t now_ms) const {
    if (!unwritable_since_ || now_ms < *unwritable_since_) return std::nullopt;
    return now_ms - *unwritable_since_;
}

void failover_timeline::set_t2(incident& inc, const sighting& s) {
    std::int64_t t = s.t;
    if (inc.t1) t = std::max(t, *inc.t1);
    if (inc.t3) t = std::min(t, *inc.t3);
    inc.t2 = t;
    if (inc.new_primary.isEmpty()) inc.new_primary = s.address;
    if (s.election_id) {
        inc.new_election_id = QString::fromStdString(s.election_id->to_hex());
        inc.new_term = term_of(*s.election_id);
    }
    if (s.set_version) inc.new_set_version = s.set_version;
}

void failover_timeline::on_primary_sighting(const sighting& s) {
    last_sighting_ = s;
    incident* inc = open();
    if (!inc || !inc->t0 || s.t < *inc->t0) return;
    if (!inc->t2) {
        if (s.address != inc->old_primary || inc->t3) set_t2(*inc, s);
    } else if (inc->new_election_id.isEmpty() && s.election_id && s.address == inc->new_primary) {
        inc->new_election_id = QString::fromStdString(s.election_id->to_hex());
        inc->new_term = term_of(*s.election_id);
        if (s.set_version) inc->new_set_version = s.set_version;
    }
}

void failover_timeline::on_topology(const mon_event& ev) {
    const auto& topo = *ev.topology;
    const std::int64_t t = ev.t_ms;
    const std::set<QString> now_writable = writable_servers(topo);
    std::vector<QString> lost, gained;
    std::set_difference(writable_.begin(), writable_.end(), now_writable.begin(), now_writable.end(),
                        std::back_inserter(lost));
    std::set_difference(now_writable.begin(), now_writable.end(), writable_.begin(), writable_.end(),
                        std::back_inserter(gained));
    if (!lost.empty() || !gained.empty() || topo.type != type_) changes_.push_back(t);
    const auto previous_type = type_;
    type_ = topo.type;

    if (!lost.empty()) {
        incident inc;
        inc.number = static_cast<int>(incidents_.size()) + 1;
        inc.kind = kind_for(previous_type == sdk::topology_type::unknown ? topo.type : previous_type);
        inc.old_primary = lost.front();
        inc.t0 = t;
        for (const QString& x : lost)
            if (auto it = trouble_.find(x); it != trouble_.end() && it->second.t < *inc.t0) {
                inc.t0 = it->second.t;
                inc.cause = it->second.cause;
            }
        if (auto it = trouble_.find(inc.old_primary); inc.cause.isEmpty() && it != trouble_.end())
            inc.cause = it->second.cause;
        for (const QString& x : lost) trouble_.erase(x);
        inc.t0_utc = ev.utc.addMSecs(-(t - *inc.t0));
        if (now_writable.empty()) inc.t1 = t;
        // A stepdown: the old primary is already a secondary in this very description (its
        // ServerDescriptionChanged came just before).
        for (const auto& s : topo.servers)
            if (q(s.address) == inc.old_primary && s.type == sdk::server_type::rs_secondary) inc.t5 = t;
        incidents_.push_back(std::move(inc));
        open_ = incidents_.size() - 1;
    }

    if (now_writable.empty()) {
        if (!unwritable_since_ && ever_writable_) unwritable_since_ = t;
    } else {
        unwritable_since_.reset();
        ever_writable_ = true;
    }

    if (incident* inc = open(); inc && !gained.empty()) {
        // A primary rather than any writable server, when the topology has one.
        QString y = gained.front();
        const sdk::server_description* yd = nullptr;
        for (const auto& s : topo.servers)
            if (q(s.address) == y) yd = &s;
        const bool replica_set = topo.type == sdk::topology_type::replica_set_with_primary ||
                                 topo.type == sdk::topology_type::replica_set_no_primary;
        if (!inc->t3 && (inc->t1 || replica_set)) {
            // Writable again; a replica set whose primary changed in one step (the topology never
            // without a writable server) had no primary for 0 ms. Elsewhere (routers, a master
            // and its slaves) other writable servers may remain: then there is no T1..T3, and
            // T4 tells when writes worked again.
            if (!inc->t1) inc->t1 = t;
            inc->t3 = t;
            inc->new_primary = y;
            if (!inc->t2 || inc->new_election_id.isEmpty()) {
                sighting s{t, y, yd ? yd->election_id : std::nullopt, yd ? yd->set_version : std::nullopt};
                if (last_sighting_ && last_sighting_->address == y && last_sighting_->t >= *inc->t0 &&
                    last_sighting_->t <= t)
                    s.t = last_sighting_->t;
                if (!inc->t2)
                    set_t2(*inc, s);
                else if (s.election_id) {
                    inc->new_election_id = QString::fromStdString(s.election_id->to_hex());
                    inc->new_term = term_of(*s.election_id);
                    inc->new_set_version = s.set_version;
                }
            }
            if (inc->t2 && *inc->t2 > t) inc->t2 = t;
            if (y == inc->old_primary && !inc->t5) inc->t5 = t;  // the same server took writes again
        }
        if (!replica_set && std::find(gained.begin(), gained.end(), inc->old_primary) != gained.end() && !inc->t5)
            inc->t5 = t;  // the lost router (or master) is back
    }
}

void failover_timeline::apply(const mon_event& ev) {
    const QString& type = ev.type;
    const std::int64_t t = ev.t_ms;
    if (ev.family == event_family::sdam) {
        if (type == QLatin1String("ServerHeartbeatFailed")) {
            note_trouble(ev.address, t, ev.error);
        } else if (type == QLatin1String("ServerHeartbeatSucceeded")) {
            if (ev.writable.value_or(false) || !writable_.contains(ev.address))
                trouble_.erase(ev.address);
            else
                note_trouble(ev.address, t, QStringLiteral("heartbeat reply: no longer writable"));
        } else if (type == QLatin1String("ServerDescriptionChanged") && ev.server) {
            const auto& s = *ev.server;
            const bool was_writable = ev.previous_server && ev.previous_server->is_writable();
            if (was_writable && !s.is_writable())
                note_trouble(ev.address, t,
                             s.error ? q(*s.error) : QStringLiteral("now ") + display_type(s.type));
            if (s.is_writable()) trouble_.erase(ev.address);
            if (s.type == sdk::server_type::rs_primary)
                on_primary_sighting({t, ev.address, s.election_id, s.set_version});
            else if (s.type == sdk::server_type::rs_secondary && s.primary)
                on_primary_sighting({t, q(*s.primary), std::nullopt, std::nullopt});
            // The old primary back as a secondary (or, for a router or standalone, back as itself).
            const bool back = s.type == sdk::server_type::rs_secondary || s.type == sdk::server_type::mongos ||
                              s.type == sdk::server_type::standalone;
            if (back)
                for (auto& inc : incidents_)
                    if (inc.old_primary == ev.address && !inc.t5 && inc.t0 && t >= *inc.t0) inc.t5 = t;
        } else if (type == QLatin1String("TopologyDescriptionChanged") && ev.topology) {
            on_topology(ev);
            writable_ = writable_servers(*ev.topology);
        }
    } else if (ev.family == event_family::command) {
        if (ev.failed && (ev.state_change || ev.network_error)) note_trouble(ev.address, t, ev.error);
        if (!ev.failed && ev.is_write && ev.type == QLatin1String("CommandSucceeded")) {
            if (incident* inc = open(); inc && !inc->t4) {
                const bool after = inc->t1 ? (inc->t3 && t >= *inc->t3) : (inc->t0 && t >= *inc->t0);
                if (after) {
                    inc->t4 = t;
                    if (inc->new_primary.isEmpty()) inc->new_primary = ev.address;
                }
            }
        }
    } else if (ev.family == event_family::workload && !ev.failed && ev.is_write) {
        if (incident* inc = open(); inc && !inc->t4) {
            const bool after = inc->t1 ? (inc->t3 && t >= *inc->t3) : (inc->t0 && t >= *inc->t0);
            if (after) inc->t4 = t;
        }
    }
}

// ---------------------------------------------------------------- timeline_model

void timeline_model::apply(const mon_event& ev) {
    timeline_.apply(ev);
    // rowCount() reports the rows announced so far: the incidents are added first, announced
    // here.
    const auto after = timeline_.incidents().size();
    if (after > shown_) {
        beginInsertRows({}, static_cast<int>(shown_), static_cast<int>(after) - 1);
        shown_ = after;
        endInsertRows();
    }
    // Phases of earlier incidents may fill in too (a T5 long after, a T4).
    if (after > 0 && (ev.family == event_family::sdam || ev.family == event_family::command ||
                      ev.family == event_family::workload))
        Q_EMIT dataChanged(index(0, 0), index(static_cast<int>(after) - 1, column_count - 1));
}

void timeline_model::clear() {
    beginResetModel();
    timeline_ = failover_timeline{};
    shown_ = 0;
    endResetModel();
}

int timeline_model::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(shown_);
}

int timeline_model::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : column_count; }

QString timeline_model::header(int col) {
    switch (col) {
        case col_number: return QStringLiteral("#");
        case col_kind: return QStringLiteral("Incident");
        case col_old: return QStringLiteral("Old primary");
        case col_new: return QStringLiteral("New primary");
        case col_t0: return QStringLiteral("T0 (UTC)");
        case col_t1: return QStringLiteral("T1");
        case col_t2: return QStringLiteral("T2");
        case col_t3: return QStringLiteral("T3");
        case col_t4: return QStringLiteral("T4");
        case col_t5: return QStringLiteral("T5");
        case col_write_outage: return QStringLiteral("Write outage ms");
        case col_no_primary: return QStringLiteral("No primary ms");
        case col_term: return QStringLiteral("Term");
        case col_cause: return QStringLiteral("Cause");
        default: return {};
    }
}

QString timeline_model::description(int col) {
    switch (col) {
        case col_t0: return QStringLiteral("T0: first failed heartbeat or state-change error (wall clock, UTC)");
        case col_t1: return QStringLiteral("T1: topology without a primary (ms after T0)");
        case col_t2: return QStringLiteral("T2: a new primary seen (ms after T0)");
        case col_t3: return QStringLiteral("T3: writable again (ms after T0)");
        case col_t4: return QStringLiteral("T4: first successful write (ms after T0)");
        case col_t5: return QStringLiteral("T5: old primary back as a secondary (ms after T0)");
        case col_write_outage: return QStringLiteral("T4 - T0");
        case col_no_primary: return QStringLiteral("T3 - T1");
        default: return header(col);
    }
}

QString timeline_model::text(int row, int col) const {
    if (row < 0 || row >= rowCount()) return {};
    const incident& inc = timeline_.incidents()[static_cast<std::size_t>(row)];
    auto rel = [&](const std::optional<std::int64_t>& x) {
        return x && inc.t0 ? QStringLiteral("+%1 ms").arg(*x - *inc.t0) : QStringLiteral("-");
    };
    auto num = [](const std::optional<std::int64_t>& x) { return x ? QString::number(*x) : QStringLiteral("-"); };
    switch (col) {
        case col_number: return QString::number(inc.number);
        case col_kind: return inc.kind;
        case col_old: return inc.old_primary;
        case col_new: return inc.new_primary;
        case col_t0: return inc.t0_utc.toUTC().toString(QStringLiteral("HH:mm:ss.zzz"));
        case col_t1: return rel(inc.t1);
        case col_t2: return rel(inc.t2);
        case col_t3: return rel(inc.t3);
        case col_t4: return rel(inc.t4);
        case col_t5: return rel(inc.t5);
        case col_write_outage: return num(inc.write_outage_ms());
        case col_no_primary: return num(inc.no_primary_ms());
        case col_term: return inc.new_term ? QString::number(*inc.new_term) : QString();
        case col_cause: return inc.cause;
        default: return {};
    }
}

QVariant timeline_model::data(const QModelIndex& idx, int role) const {
    if (!checkIndex(idx, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    if (role == Qt::DisplayRole) return text(idx.row(), idx.column());
    if (role == Qt::ToolTipRole) {
        const incident& inc = timeline_.incidents()[static_cast<std::size_t>(idx.row())];
        return QStringLiteral("electionId %1, setVersion %2")
            .arg(inc.new_election_id.isEmpty() ? QStringLiteral("-") : inc.new_election_id,
                 inc.new_set_version ? QString::number(*inc.new_set_version) : QStringLiteral("-"));
    }
    return {};
}

QVariant timeline_model::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation == Qt::Horizontal && role == Qt::DisplayRole) return header(section);
    if (orientation == Qt::Horizontal && role == Qt::ToolTipRole) return description(section);
    return {};
}

}  // namespace trellis::monitor
