// The monitor's window: the members table, the RTT chart, the failover timeline and the event
// log, a toolbar to connect (URI or TOML file), pause the chart, switch the theme and export,
// and in demo mode a toolbar acting on the simulated deployment.
//
// The window never waits on the network: it owns a session (whose client runs on its own
// thread), receives its events by a queued signal and drains them on the GUI thread.
#pragma once

#include <QMainWindow>
#include <QPointer>
#include <QTimer>

#include <memory>

#include "alerts.hpp"
#include "event_log_model.hpp"
#include "members_model.hpp"
#include "session.hpp"
#include "timeline.hpp"

class QComboBox;
class QLabel;
class QSortFilterProxyModel;
class QTableView;
class QToolBar;

namespace trellis::monitor {

class phase_bar;
class rtt_chart;

class main_window : public QMainWindow {
    Q_OBJECT
public:
    explicit main_window(QWidget* parent = nullptr);
    ~main_window() override;

    /// Starts monitoring with these options (a URI, a TOML file or a demo), replacing any
    /// session (the old one is shut down on another thread).
    void start_session(session_options options);
    session* current_session() const { return session_.get(); }

    members_model& members() { return *members_; }
    timeline_model& timeline() { return *timeline_; }
    event_log_model& log() { return *log_; }
    rtt_chart& chart() { return *chart_; }
    phase_bar& phases() { return *phases_; }
    alert_engine& alerts() { return alerts_; }

    /// Takes the session's waiting events into the models now (the queued signal does it
    /// otherwise).
    void drain();
    void set_dark(bool dark);
    bool dark() const { return dark_; }

    // Exports; each returns false with a message in `error` when the file cannot be written.
    bool export_members_csv(const QString& path, QString* error = nullptr);
    bool export_events_csv(const QString& path, QString* error = nullptr);
    bool export_events_jsonl(const QString& path, QString* error = nullptr);
    bool export_timeline_json(const QString& path, QString* error = nullptr);
    /// The window as a PNG (QWidget::grab).
    bool export_png(const QString& path, QString* error = nullptr);
    /// A Markdown report of the latest incident, with the chart as PNG beside it
    /// (<path without .md>-chart.png).
    bool export_incident_report(const QString& path, QString* error = nullptr);

    /// Connection strings without their passwords (for the recent list).
    static QString without_password(const QString& uri);

Q_SIGNALS:
    void session_started(const QString& uri);
    void session_failed(const QString& message);

private:
    void build_ui();
    void build_demo_toolbar();
    void on_tick();
    void act(action_kind kind, int latency_ms = 0);
    QString selected_member() const;
    void remember(const QString& entry);
    void connect_dialog();
    void open_config_dialog();
    void open_recent(const QString& entry);
    void alerts_dialog();
    template <class F>
    void export_dialog(const QString& title, const QString& filter, F&& write);

    std::unique_ptr<session> session_;
    members_model* members_;
    timeline_model* timeline_;
    event_log_model* log_;
    event_filter_model* log_filter_;
    QSortFilterProxyModel* members_sorted_;
    alert_engine alerts_;
    rtt_chart* chart_ = nullptr;
    phase_bar* phases_ = nullptr;
    QTableView* members_view_ = nullptr;
    QTableView* timeline_view_ = nullptr;
    QTableView* log_view_ = nullptr;
    QComboBox* kind_filter_ = nullptr;
    QComboBox* member_filter_ = nullptr;
    QToolBar* demo_bar_ = nullptr;
    QLabel* status_ = nullptr;
    QLabel* alert_label_ = nullptr;
    QTimer tick_;
    bool dark_ = true;
    std::size_t markers_seen_ = 0;
    unsigned ticks_ = 0;
};

}  // namespace trellis::monitor
