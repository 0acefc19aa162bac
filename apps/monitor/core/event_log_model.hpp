// The event log: every SDAM event, every failed command, canary failures, the user's actions
// and alerts, newest last, at most `capacity` rows (the oldest go first).
#pragma once

#include <QAbstractTableModel>
#include <QSortFilterProxyModel>

#include <deque>
#include <vector>

#include "monitor_event.hpp"

namespace trellis::monitor {

class event_log_model : public QAbstractTableModel {
    Q_OBJECT
public:
    enum column { col_time, col_kind, col_member, col_summary, col_detail, column_count };
    static constexpr int kind_role = Qt::UserRole;
    static constexpr int member_role = Qt::UserRole + 1;

    explicit event_log_model(QObject* parent = nullptr, std::size_t capacity = 50000);

    /// Whether the log keeps events of this kind.
    static bool logged(const mon_event& ev);
    /// Appends the logged ones among `events`, in one insertion.
    void add(const std::vector<mon_event>& events);
    void add(const mon_event& ev) { add(std::vector<mon_event>{ev}); }
    void clear();

    const std::deque<mon_event>& events() const { return events_; }
    static QString summary(const mon_event& ev);
    static QString header(int col);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::deque<mon_event> events_;
    std::size_t capacity_;
};

/// The log filtered by kind (the event's type name, empty: any) and member (empty: any).
class event_filter_model : public QSortFilterProxyModel {
    Q_OBJECT
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;
    void set_kind(const QString& kind);
    void set_member(const QString& member);

protected:
    bool filterAcceptsRow(int source_row, const QModelIndex& source_parent) const override;

private:
    QString kind_, member_;
};

}  // namespace trellis::monitor
