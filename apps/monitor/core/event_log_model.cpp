#include "event_log_model.hpp"

namespace trellis::monitor {

event_log_model::event_log_model(QObject* parent, std::size_t capacity)
    : QAbstractTableModel(parent), capacity_(capacity == 0 ? 1 : capacity) {}

bool event_log_model::logged(const mon_event& ev) {
    switch (ev.family) {
        case event_family::sdam:
        case event_family::action:
        case event_family::alert: return true;
        case event_family::command: return ev.failed;
        case event_family::workload: return ev.failed;
        case event_family::cmap:
        case event_family::rtt: return false;
    }
    return false;
}

void event_log_model::add(const std::vector<mon_event>& events) {
    std::vector<const mon_event*> keep;
    for (const auto& ev : events)
        if (logged(ev)) keep.push_back(&ev);
    if (keep.empty()) return;
    if (keep.size() > capacity_) keep.erase(keep.begin(), keep.end() - static_cast<std::ptrdiff_t>(capacity_));
    const std::size_t overflow = events_.size() + keep.size() > capacity_ ? events_.size() + keep.size() - capacity_ : 0;
    if (overflow > 0) {
        beginRemoveRows({}, 0, static_cast<int>(overflow) - 1);
        events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(overflow));
        endRemoveRows();
    }
    const int first = static_cast<int>(events_.size());
    beginInsertRows({}, first, first + static_cast<int>(keep.size()) - 1);
    for (const mon_event* ev : keep) events_.push_back(*ev);
    endInsertRows();
}

void event_log_model::clear() {
    beginResetModel();
    events_.clear();
    endResetModel();
}

QString event_log_model::summary(const mon_event& ev) {
    const QString& t = ev.type;
    if (t == QLatin1String("ServerHeartbeatSucceeded") && ev.duration_ms)
        return QStringLiteral("%1 ms%2").arg(*ev.duration_ms, 0, 'f', 1).arg(ev.awaited ? QStringLiteral(", awaited") : QString());
    if (t == QLatin1String("ServerHeartbeatStarted")) return ev.awaited ? QStringLiteral("awaited") : QStringLiteral("polled");
    if (t == QLatin1String("ServerDescriptionChanged") && ev.server) {
        QString s = (ev.previous_server ? display_type(ev.previous_server->type) : QStringLiteral("?")) +
                    QStringLiteral(" -> ") + display_type(ev.server->type);
        if (ev.server->error) s += QStringLiteral(": ") + QString::fromStdString(*ev.server->error);
        return s;
    }
    if (t == QLatin1String("TopologyDescriptionChanged") && ev.topology)
        return (ev.previous_topology ? QString::fromUtf8(sdk::to_string(ev.previous_topology->type).data())
                                     : QStringLiteral("?")) +
               QStringLiteral(" -> ") + QString::fromUtf8(sdk::to_string(ev.topology->type).data());
    if (ev.family == event_family::command)
        return ev.command_name + QStringLiteral(": ") + ev.error;
    return ev.error;
}

int event_log_model::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(events_.size());
}

int event_log_model::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : column_count; }

QString event_log_model::header(int col) {
    switch (col) {
        case col_time: return QStringLiteral("Time (UTC)");
        case col_kind: return QStringLiteral("Kind");
        case col_member: return QStringLiteral("Member");
        case col_summary: return QStringLiteral("Summary");
        case col_detail: return QStringLiteral("Detail (Extended JSON)");
        default: return {};
    }
}

QVariant event_log_model::data(const QModelIndex& idx, int role) const {
    if (!checkIndex(idx, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const mon_event& ev = events_[static_cast<std::size_t>(idx.row())];
    if (role == kind_role) return ev.type;
    if (role == member_role) return ev.address;
    if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
    switch (idx.column()) {
        case col_time: return iso_utc(ev.utc);
        case col_kind: return ev.type;
        case col_member: return ev.address;
        case col_summary: return summary(ev);
        case col_detail: {
            QString json = ev.detail_json();
            if (role == Qt::DisplayRole && json.size() > 300) json = json.left(300) + QStringLiteral("...");
            return json;
        }
        default: return {};
    }
}

QVariant event_log_model::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation == Qt::Horizontal && role == Qt::DisplayRole) return header(section);
    return {};
}

void event_filter_model::set_kind(const QString& kind) {
    kind_ = kind;
    invalidateFilter();
}

void event_filter_model::set_member(const QString& member) {
    member_ = member;
    invalidateFilter();
}

bool event_filter_model::filterAcceptsRow(int source_row, const QModelIndex& source_parent) const {
    const QModelIndex i = sourceModel()->index(source_row, 0, source_parent);
    if (!kind_.isEmpty() && i.data(event_log_model::kind_role).toString() != kind_) return false;
    if (!member_.isEmpty() && i.data(event_log_model::member_role).toString() != member_) return false;
    return true;
}

}  // namespace trellis::monitor
