#include "members_model.hpp"

#include <algorithm>
#include <limits>

namespace trellis::monitor {
namespace {

QString ms_text(std::optional<double> v) { return v ? QString::number(*v, 'f', 1) : QStringLiteral("-"); }

QVariant ms_value(std::optional<double> v) {
    return v ? QVariant(*v) : QVariant(std::numeric_limits<double>::infinity());
}

}  // namespace

members_model::members_model(QObject* parent, std::size_t rtt_window)
    : QAbstractTableModel(parent), rtt_window_(rtt_window) {}

const member_row* members_model::find(const QString& address) const {
    for (const auto& m : rows_)
        if (m.address == address) return &m;
    return nullptr;
}

int members_model::ensure_row(const QString& address) {
    for (std::size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i].address == address) return static_cast<int>(i);
    const int row = static_cast<int>(rows_.size());
    beginInsertRows({}, row, row);
    member_row m;
    m.address = address;
    m.rtt = latency_stats(rtt_window_);
    rows_.push_back(std::move(m));
    endInsertRows();
    return row;
}

void members_model::row_changed(int row) {
    if (batching_) {
        dirty_first_ = dirty_first_ < 0 ? row : std::min(dirty_first_, row);
        dirty_last_ = std::max(dirty_last_, row);
        return;
    }
    Q_EMIT dataChanged(index(row, 0), index(row, column_count - 1));
}

void members_model::begin_batch() { batching_ = true; }

void members_model::clear() {
    beginResetModel();
    rows_.clear();
    dirty_first_ = dirty_last_ = -1;
    endResetModel();
}

void members_model::end_batch() {
    batching_ = false;
    if (dirty_first_ >= 0 && dirty_last_ < rowCount())
        Q_EMIT dataChanged(index(dirty_first_, 0), index(dirty_last_, column_count - 1));
    dirty_first_ = dirty_last_ = -1;
}

void members_model::apply(const mon_event& ev) {
    const QString& t = ev.type;
    if (ev.family == event_family::sdam) {
        if (t == QLatin1String("ServerOpening")) {
            ensure_row(ev.address);
        } else if (t == QLatin1String("ServerClosed")) {
            for (std::size_t i = 0; i < rows_.size(); ++i)
                if (rows_[i].address == ev.address) {
                    if (batching_) {
                        end_batch();
                        begin_batch();
                    }
                    beginRemoveRows({}, static_cast<int>(i), static_cast<int>(i));
                    rows_.erase(rows_.begin() + static_cast<std::ptrdiff_t>(i));
                    endRemoveRows();
                    break;
                }
            update_window();
        } else if (t == QLatin1String("ServerHeartbeatSucceeded")) {
            const int row = ensure_row(ev.address);
            member_row& m = rows_[static_cast<std::size_t>(row)];
            m.last_ok_ms = ev.t_ms;
            m.last_ok_utc = ev.utc;
            m.consecutive_failures = 0;
            m.awaited = ev.awaited;
            // An awaited hello's duration includes the server's wait: not a round trip.
            if (!ev.awaited && ev.duration_ms) {
                m.rtt.add(*ev.duration_ms);
                Q_EMIT rtt_sample(m.address, ev.t_ms, *ev.duration_ms, *m.rtt.average());
                update_window();
            }
            row_changed(row);
        } else if (t == QLatin1String("ServerHeartbeatFailed")) {
            const int row = ensure_row(ev.address);
            member_row& m = rows_[static_cast<std::size_t>(row)];
            ++m.consecutive_failures;
            m.awaited = ev.awaited;
            m.last_error = ev.error;
            row_changed(row);
        } else if (t == QLatin1String("ServerDescriptionChanged") && ev.server) {
            const int row = ensure_row(ev.address);
            member_row& m = rows_[static_cast<std::size_t>(row)];
            const auto& s = *ev.server;
            m.type = s.type;
            if (s.set_name) m.set_name = QString::fromStdString(*s.set_name);
            m.tags = s.tags;
            if (s.error) m.last_error = QString::fromStdString(*s.error);
            update_window();
            row_changed(row);
        } else if (t == QLatin1String("TopologyDescriptionChanged") && ev.topology) {
            for (const auto& s : ev.topology->servers) {
                const int row = ensure_row(QString::fromStdString(s.address));
                member_row& m = rows_[static_cast<std::size_t>(row)];
                m.type = s.type;
                if (s.set_name) m.set_name = QString::fromStdString(*s.set_name);
                m.tags = s.tags;
            }
            update_window();
            for (int r = 0; r < rowCount(); ++r) row_changed(r);
        }
    } else if (ev.family == event_family::rtt && ev.duration_ms) {
        const int row = ensure_row(ev.address);
        member_row& m = rows_[static_cast<std::size_t>(row)];
        m.rtt.add(*ev.duration_ms);
        Q_EMIT rtt_sample(m.address, ev.t_ms, *ev.duration_ms, *m.rtt.average());
        update_window();
        row_changed(row);
    } else if (ev.family == event_family::cmap) {
        const member_row* known = find(ev.address);
        if (!known) return;  // a pool of a server no longer monitored
        const int row = ensure_row(ev.address);
        member_row& m = rows_[static_cast<std::size_t>(row)];
        if (t == QLatin1String("ConnectionCreated"))
            ++m.pool_total;
        else if (t == QLatin1String("ConnectionClosed"))
            m.pool_total = std::max(0, m.pool_total - 1);
        else if (t == QLatin1String("ConnectionCheckedOut"))
            ++m.pool_in_use;
        else if (t == QLatin1String("ConnectionCheckedIn"))
            m.pool_in_use = std::max(0, m.pool_in_use - 1);
        else if (t == QLatin1String("ConnectionPoolClosed") || t == QLatin1String("ConnectionPoolCreated"))
            m.pool_total = m.pool_in_use = 0;
        else
            return;
        row_changed(row);
    }
}

void members_model::update_window() {
    std::optional<double> fastest;
    for (const auto& m : rows_) {
        const bool readable = m.type == sdk::server_type::rs_primary || m.type == sdk::server_type::rs_secondary ||
                              m.type == sdk::server_type::mongos || m.type == sdk::server_type::standalone ||
                              m.type == sdk::server_type::load_balancer;
        if (readable && m.rtt.average()) fastest = fastest ? std::min(*fastest, *m.rtt.average()) : *m.rtt.average();
    }
    for (std::size_t i = 0; i < rows_.size(); ++i) {
        member_row& m = rows_[i];
        const bool readable = m.type == sdk::server_type::rs_primary || m.type == sdk::server_type::rs_secondary ||
                              m.type == sdk::server_type::mongos || m.type == sdk::server_type::standalone ||
                              m.type == sdk::server_type::load_balancer;
        const bool in = readable && fastest && m.rtt.average() && *m.rtt.average() <= *fastest + local_threshold_ms_;
        if (in != m.in_window) {
            m.in_window = in;
            row_changed(static_cast<int>(i));
        }
    }
}

void members_model::set_now(std::int64_t now_ms) {
    now_ms_ = now_ms;
    if (!rows_.empty()) Q_EMIT dataChanged(index(0, col_since_ok), index(rowCount() - 1, col_since_ok));
}

void members_model::set_local_threshold_ms(double ms) {
    local_threshold_ms_ = ms;
    update_window();
}

int members_model::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int members_model::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : column_count; }

QString members_model::header(int col) {
    switch (col) {
        case col_address: return QStringLiteral("Address");
        case col_type: return QStringLiteral("Type");
        case col_set: return QStringLiteral("Set");
        case col_rtt_last: return QStringLiteral("RTT last ms");
        case col_rtt_avg: return QStringLiteral("RTT avg ms");
        case col_rtt_min: return QStringLiteral("RTT min ms");
        case col_rtt_p50: return QStringLiteral("p50 ms");
        case col_rtt_p95: return QStringLiteral("p95 ms");
        case col_rtt_p99: return QStringLiteral("p99 ms");
        case col_since_ok: return QStringLiteral("Since OK s");
        case col_failures: return QStringLiteral("Failures");
        case col_mode: return QStringLiteral("Mode");
        case col_error: return QStringLiteral("Last error");
        case col_tags: return QStringLiteral("Tags");
        case col_pool_in_use: return QStringLiteral("Pool in use");
        case col_pool_available: return QStringLiteral("Pool avail.");
        case col_in_window: return QStringLiteral("In window");
        default: return {};
    }
}

QString members_model::text(int row, int col) const {
    if (row < 0 || row >= rowCount()) return {};
    return text_of(rows_[static_cast<std::size_t>(row)], col);
}

QString members_model::text_of(const member_row& m, int col) const {
    switch (col) {
        case col_address: return m.address;
        case col_type: return display_type(m.type);
        case col_set: return m.set_name;
        case col_rtt_last: return ms_text(m.rtt.last());
        case col_rtt_avg: return ms_text(m.rtt.average());
        case col_rtt_min: return ms_text(m.rtt.minimum());
        case col_rtt_p50: return ms_text(m.rtt.percentile(50));
        case col_rtt_p95: return ms_text(m.rtt.percentile(95));
        case col_rtt_p99: return ms_text(m.rtt.percentile(99));
        case col_since_ok:
            // A heartbeat newer than the last set_now() is 0 s old.
            return m.last_ok_ms ? QString::number(static_cast<double>(std::max<std::int64_t>(0, now_ms_ - *m.last_ok_ms)) / 1000.0, 'f', 1)
                                : QStringLiteral("-");
        case col_failures: return QString::number(m.consecutive_failures);
        case col_mode: return m.awaited ? (*m.awaited ? QStringLiteral("awaited") : QStringLiteral("polled")) : QString();
        case col_error: return m.last_error;
        case col_tags: {
            QStringList parts;
            for (const auto& [k, v] : m.tags) parts << QString::fromStdString(k + ":" + v);
            return parts.join(QLatin1Char(','));
        }
        case col_pool_in_use: return QString::number(m.pool_in_use);
        case col_pool_available: return QString::number(m.available());
        case col_in_window: return m.in_window ? QStringLiteral("yes") : QStringLiteral("no");
        default: return {};
    }
}

QVariant members_model::sort_value(const member_row& m, int col) const {
    switch (col) {
        case col_rtt_last: return ms_value(m.rtt.last());
        case col_rtt_avg: return ms_value(m.rtt.average());
        case col_rtt_min: return ms_value(m.rtt.minimum());
        case col_rtt_p50: return ms_value(m.rtt.percentile(50));
        case col_rtt_p95: return ms_value(m.rtt.percentile(95));
        case col_rtt_p99: return ms_value(m.rtt.percentile(99));
        case col_since_ok:
            return m.last_ok_ms ? QVariant(static_cast<qlonglong>(now_ms_ - *m.last_ok_ms))
                                : QVariant(std::numeric_limits<qlonglong>::max());
        case col_failures: return m.consecutive_failures;
        case col_pool_in_use: return m.pool_in_use;
        case col_pool_available: return m.available();
        case col_in_window: return m.in_window ? 1 : 0;
        default: return text_of(m, col);
    }
}

QVariant members_model::data(const QModelIndex& idx, int role) const {
    if (!checkIndex(idx, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const member_row& m = rows_[static_cast<std::size_t>(idx.row())];
    if (role == Qt::DisplayRole) return text(idx.row(), idx.column());
    if (role == sort_role) return sort_value(m, idx.column());
    if (role == Qt::ToolTipRole && idx.column() == col_error) return m.last_error;
    if (role == Qt::TextAlignmentRole && idx.column() >= col_rtt_last && idx.column() != col_mode &&
        idx.column() != col_error && idx.column() != col_tags)
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant members_model::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation == Qt::Horizontal && role == Qt::DisplayRole) return header(section);
    if (orientation == Qt::Vertical && role == Qt::DisplayRole) return section + 1;
    return {};
}

void members_model::sort(int column, Qt::SortOrder order) {
    if (column < 0 || column >= column_count) return;
    Q_EMIT layoutAboutToBeChanged({}, QAbstractItemModel::VerticalSortHint);
    const QModelIndexList before = persistentIndexList();
    std::vector<QString> addresses;
    for (const auto& p : before) addresses.push_back(rows_[static_cast<std::size_t>(p.row())].address);
    std::vector<std::pair<QVariant, member_row>> keyed;
    for (auto& m : rows_) keyed.emplace_back(sort_value(m, column), std::move(m));
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
        const auto c = QVariant::compare(a.first, b.first);
        return order == Qt::AscendingOrder ? c == QPartialOrdering::Less : c == QPartialOrdering::Greater;
    });
    rows_.clear();
    for (auto& [k, m] : keyed) rows_.push_back(std::move(m));
    QModelIndexList after;
    for (qsizetype i = 0; i < before.size(); ++i) {
        int row = 0;
        while (rows_[static_cast<std::size_t>(row)].address != addresses[static_cast<std::size_t>(i)]) ++row;
        after << index(row, before[i].column());
    }
    changePersistentIndexList(before, after);
    Q_EMIT layoutChanged({}, QAbstractItemModel::VerticalSortHint);
}

}  // namespace trellis::monitor
