// The members table: one row per server the client monitors, fed with mon_events on the GUI
// thread (or directly by a test).
#pragma once

#include <QAbstractTableModel>
#include <QDateTime>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "latency_stats.hpp"
#include "monitor_event.hpp"

namespace trellis::monitor {

struct member_row {
    QString address;
    sdk::server_type type = sdk::server_type::unknown;
    QString set_name;
    latency_stats rtt;
    std::optional<std::int64_t> last_ok_ms;  ///< steady clock
    QDateTime last_ok_utc;
    int consecutive_failures = 0;
    std::optional<bool> awaited;  ///< the last heartbeat's kind
    QString last_error;
    std::map<std::string, std::string> tags;
    int pool_total = 0;   ///< open connections of the pool (CMAP created - closed)
    int pool_in_use = 0;  ///< checked out
    bool in_window = false;
    int available() const { return pool_total > pool_in_use ? pool_total - pool_in_use : 0; }
};

class members_model : public QAbstractTableModel {
    Q_OBJECT
public:
    enum column {
        col_address,
        col_type,
        col_set,
        col_rtt_last,
        col_rtt_avg,
        col_rtt_min,
        col_rtt_p50,
        col_rtt_p95,
        col_rtt_p99,
        col_since_ok,
        col_failures,
        col_mode,
        col_error,
        col_tags,
        col_pool_in_use,
        col_pool_available,
        col_in_window,
        column_count
    };
    /// The value the column sorts by (a number where the column is one).
    static constexpr int sort_role = Qt::UserRole;

    explicit members_model(QObject* parent = nullptr, std::size_t rtt_window = 200);

    void apply(const mon_event& ev);
    /// Between begin_batch() and end_batch(), changes of existing rows are announced once, at
    /// end_batch(), as one dataChanged() over the rows touched (rows added or removed are
    /// announced at once, as always). For a stream of events: far less work for views.
    void begin_batch();
    void end_batch();
    /// Forgets every member (a new session).
    void clear();
    /// The present, for the "since last OK heartbeat" column (steady ms).
    void set_now(std::int64_t now_ms);
    /// localThresholdMS: a readable member is in the window when its average is at most this
    /// much above the fastest readable member's.
    void set_local_threshold_ms(double ms);

    const std::vector<member_row>& rows() const { return rows_; }
    const member_row* find(const QString& address) const;
    /// The cell's text as shown and exported.
    QString text(int row, int col) const;
    static QString header(int col);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    void sort(int column, Qt::SortOrder order = Qt::AscendingOrder) override;

Q_SIGNALS:
    /// A member's RTT got a sample (for the chart): the sample in ms (a polled heartbeat's
    /// duration, or for a streaming member the driver's own average) and the moving average.
    void rtt_sample(const QString& address, qint64 t_ms, double ms, double average);

private:
    int ensure_row(const QString& address);
    void row_changed(int row);
    void update_window();
    QVariant sort_value(const member_row& m, int col) const;
    QString text_of(const member_row& m, int col) const;

    std::vector<member_row> rows_;
    bool batching_ = false;
    int dirty_first_ = -1, dirty_last_ = -1;
    std::size_t rtt_window_;
    std::int64_t now_ms_ = 0;
    double local_threshold_ms_ = 15.0;
};

}  // namespace trellis::monitor
