#include "main_window.hpp"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonDocument>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QSettings>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QScrollBar>
#include <QSplitter>
#include <QStatusBar>
#include <QTableView>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>

#include <thread>

#include "exports.hpp"
#include "phase_bar.hpp"
#include "rtt_chart.hpp"
#include "theme.hpp"

namespace trellis::monitor {
namespace {

constexpr int max_recent = 10;

QTableView* make_table(QAbstractItemModel* model, QWidget* parent) {
    auto* v = new QTableView(parent);
    v->setModel(model);
    v->setSelectionBehavior(QAbstractItemView::SelectRows);
    v->setSelectionMode(QAbstractItemView::SingleSelection);
    v->verticalHeader()->setVisible(false);
    v->verticalHeader()->setDefaultSectionSize(22);
    v->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    v->horizontalHeader()->setStretchLastSection(true);
    v->setAlternatingRowColors(true);
    v->setWordWrap(false);
    return v;
}

}  // namespace

main_window::main_window(QWidget* parent)
    : QMainWindow(parent),
      members_(new members_model(this)),
      timeline_(new timeline_model(this)),
      log_(new event_log_model(this)),
      log_filter_(new event_filter_model(this)),
      members_sorted_(new QSortFilterProxyModel(this)) {
    setWindowTitle(QStringLiteral("trellis-monitor"));
    members_sorted_->setSourceModel(members_);
    members_sorted_->setSortRole(members_model::sort_role);
    // Re-sorted on the tick, not on every change: rows do not jump under the pointer with every
    // heartbeat, and a stream of changes costs no sorting.
    members_sorted_->setDynamicSortFilter(false);
    log_filter_->setSourceModel(log_);
    build_ui();
    QSettings settings;
    set_dark(settings.value(QStringLiteral("theme/dark"), true).toBool());
    connect(members_, &members_model::rtt_sample, this,
            [this](const QString& address, qint64 t, double ms, double avg) { chart_->add_sample(address, t, ms, avg); });
    tick_.setInterval(500);
    connect(&tick_, &QTimer::timeout, this, &main_window::on_tick);
    tick_.start();
}

main_window::~main_window() {
    if (session_) {
        session_->disconnect(this);
        session_->stop();
    }
}

void main_window::build_ui() {
    auto* bar = addToolBar(QStringLiteral("Monitor"));
    bar->setObjectName(QStringLiteral("monitor-toolbar"));
    bar->addAction(QStringLiteral("Connect..."), this, &main_window::connect_dialog);
    bar->addAction(QStringLiteral("Open TOML..."), this, &main_window::open_config_dialog);
    auto* recent = new QToolButton(bar);
    recent->setText(QStringLiteral("Recent"));
    recent->setPopupMode(QToolButton::InstantPopup);
    auto* recent_menu = new QMenu(recent);
    recent->setMenu(recent_menu);
    connect(recent_menu, &QMenu::aboutToShow, this, [this, recent_menu] {
        recent_menu->clear();
        for (const QString& entry : QSettings().value(QStringLiteral("recent")).toStringList())
            recent_menu->addAction(entry, this, [this, entry] { open_recent(entry); });
        if (recent_menu->isEmpty()) recent_menu->addAction(QStringLiteral("(none yet)"))->setEnabled(false);
    });
    bar->addWidget(recent);
    bar->addSeparator();
    bar->addAction(QStringLiteral("Alerts..."), this, &main_window::alerts_dialog);
    bar->addSeparator();
    QAction* pause = bar->addAction(QStringLiteral("Pause chart"));
    pause->setCheckable(true);
    connect(pause, &QAction::toggled, this, [this](bool on) { chart_->set_paused(on); });
    QAction* dark = bar->addAction(QStringLiteral("Dark theme"));
    dark->setCheckable(true);
    dark->setObjectName(QStringLiteral("dark-action"));
    connect(dark, &QAction::toggled, this, [this](bool on) {
        set_dark(on);
        QSettings().setValue(QStringLiteral("theme/dark"), on);
    });
    bar->addSeparator();
    bar->addAction(QStringLiteral("Members CSV..."), this, [this] {
        export_dialog(QStringLiteral("Export members"), QStringLiteral("CSV (*.csv)"),
                      [this](const QString& p, QString* e) { return export_members_csv(p, e); });
    });
    bar->addAction(QStringLiteral("Events CSV..."), this, [this] {
        export_dialog(QStringLiteral("Export events"), QStringLiteral("CSV (*.csv)"),
                      [this](const QString& p, QString* e) { return export_events_csv(p, e); });
    });
    bar->addAction(QStringLiteral("Events JSONL..."), this, [this] {
        export_dialog(QStringLiteral("Export events"), QStringLiteral("JSON Lines (*.jsonl)"),
                      [this](const QString& p, QString* e) { return export_events_jsonl(p, e); });
    });
    bar->addAction(QStringLiteral("Incident report..."), this, [this] {
        export_dialog(QStringLiteral("Incident report"), QStringLiteral("Markdown (*.md)"),
                      [this](const QString& p, QString* e) { return export_incident_report(p, e); });
    });
    bar->addAction(QStringLiteral("PNG..."), this, [this] {
        export_dialog(QStringLiteral("Window as PNG"), QStringLiteral("PNG (*.png)"),
                      [this](const QString& p, QString* e) { return export_png(p, e); });
    });

    members_view_ = make_table(members_sorted_, this);
    members_view_->setSortingEnabled(true);
    members_view_->sortByColumn(members_model::col_address, Qt::AscendingOrder);
    // Sized to the contents now and then (on the tick), not on every change: measuring every
    // cell's text is most of the cost of a busy table.
    members_view_->horizontalHeader()->setStretchLastSection(false);

    chart_ = new rtt_chart(this);
    timeline_view_ = make_table(timeline_, this);


    auto* log_box = new QWidget(this);
    auto* log_layout = new QVBoxLayout(log_box);
    log_layout->setContentsMargins(0, 0, 0, 0);
    auto* filters = new QHBoxLayout;
    kind_filter_ = new QComboBox(log_box);
    kind_filter_->addItem(QStringLiteral("all kinds"), QString());
    member_filter_ = new QComboBox(log_box);
    member_filter_->addItem(QStringLiteral("all members"), QString());
    filters->addWidget(new QLabel(QStringLiteral("Event log"), log_box));
    filters->addWidget(kind_filter_);
    filters->addWidget(member_filter_);
    filters->addStretch();
    log_layout->addLayout(filters);
    log_view_ = make_table(log_filter_, log_box);
    log_view_->setColumnWidth(event_log_model::col_time, 190);
    log_view_->setColumnWidth(event_log_model::col_kind, 190);
    log_view_->setColumnWidth(event_log_model::col_member, 130);
    log_view_->setColumnWidth(event_log_model::col_summary, 330);
    log_layout->addWidget(log_view_);
    connect(kind_filter_, &QComboBox::currentIndexChanged, this,
            [this] { log_filter_->set_kind(kind_filter_->currentData().toString()); });
    connect(member_filter_, &QComboBox::currentIndexChanged, this,
            [this] { log_filter_->set_member(member_filter_->currentData().toString()); });

    auto* middle = new QSplitter(Qt::Horizontal, this);
    middle->addWidget(chart_);
    auto* timeline_box = new QWidget(this);
    auto* tl = new QVBoxLayout(timeline_box);
    tl->setContentsMargins(0, 0, 0, 0);
    auto* legend = new QLabel(QStringLiteral("Failover timeline: T0 first error, T1 no primary, T2 new primary seen, "
                                             "T3 writable, T4 first write, T5 old primary back (ms after T0)"),
                              timeline_box);
    legend->setWordWrap(true);
    tl->addWidget(legend);
    tl->addWidget(timeline_view_);
    phases_ = new phase_bar(timeline_box);
    tl->addWidget(phases_);
    // The selected incident, else the latest.
    connect(timeline_view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current) {
                const auto& incidents = timeline_->timeline().incidents();
                if (current.isValid() && static_cast<std::size_t>(current.row()) < incidents.size())
                    phases_->set_incident(incidents[static_cast<std::size_t>(current.row())]);
            });
    middle->addWidget(timeline_box);
    middle->setStretchFactor(0, 1);
    middle->setStretchFactor(1, 1);
    middle->setSizes({560, 720});

    auto* main = new QSplitter(Qt::Vertical, this);
    main->addWidget(members_view_);
    main->addWidget(middle);
    main->addWidget(log_box);
    main->setStretchFactor(0, 2);
    main->setStretchFactor(1, 4);
    main->setStretchFactor(2, 3);
    setCentralWidget(main);

    status_ = new QLabel(QStringLiteral("not connected"), this);
    alert_label_ = new QLabel(this);
    statusBar()->addWidget(status_, 1);
    statusBar()->addPermanentWidget(alert_label_);
    resize(1280, 800);
}

void main_window::build_demo_toolbar() {
    if (demo_bar_) return;
    demo_bar_ = addToolBar(QStringLiteral("Demo"));
    demo_bar_->setObjectName(QStringLiteral("demo-toolbar"));
    demo_bar_->addAction(QStringLiteral("Step down primary"), this, [this] { act(action_kind::step_down); });
    demo_bar_->addAction(QStringLiteral("Kill"), this, [this] { act(action_kind::kill); });
    demo_bar_->addAction(QStringLiteral("Restart"), this, [this] { act(action_kind::restart); });
    demo_bar_->addAction(QStringLiteral("Partition"), this, [this] { act(action_kind::partition); });
    demo_bar_->addAction(QStringLiteral("Heal"), this, [this] { act(action_kind::heal); });
    demo_bar_->addAction(QStringLiteral("+50 ms latency"), this, [this] { act(action_kind::latency, 50); });
    demo_bar_->addAction(QStringLiteral("No latency"), this, [this] { act(action_kind::latency, 0); });
}

QString main_window::selected_member() const {
    const auto rows = members_view_->selectionModel()->selectedRows(members_model::col_address);
    return rows.isEmpty() ? QString() : rows.front().data().toString();
}

void main_window::act(action_kind kind, int latency_ms) {
    if (!session_ || !session_->demo()) return;
    action a;
    a.kind = kind;
    a.latency_ms = latency_ms;
    a.member = selected_member();
    if (a.member.isEmpty() && kind != action_kind::step_down) {
        statusBar()->showMessage(QStringLiteral("select a member in the table first"), 4000);
        return;
    }
    if (kind == action_kind::step_down) a.member.clear();  // the primary, whichever it is
    session_->request(a);
}

void main_window::start_session(session_options options) {
    if (session_) {
        // Shutting a session down joins its threads, which may wait for the network: never on
        // the GUI thread.
        session_->disconnect(this);
        std::thread([old = std::move(session_)]() mutable { old.reset(); }).detach();
    }
    // A new deployment: nothing of the old one stays on screen.
    log_->clear();
    members_->clear();
    timeline_->clear();
    phases_->set_incident(std::nullopt);
    chart_->clear();
    markers_seen_ = 0;
    while (kind_filter_->count() > 1) kind_filter_->removeItem(1);
    while (member_filter_->count() > 1) member_filter_->removeItem(1);
    session_ = std::make_unique<session>(options);
    connect(session_.get(), &session::events_ready, this, &main_window::drain, Qt::QueuedConnection);
    connect(session_.get(), &session::started, this, [this](const QString& uri) {
        status_->setText(QStringLiteral("monitoring ") + without_password(uri));
        Q_EMIT session_started(uri);
    }, Qt::QueuedConnection);
    connect(session_.get(), &session::failed, this, [this](const QString& message) {
        status_->setText(QStringLiteral("failed: ") + message);
        Q_EMIT session_failed(message);
    }, Qt::QueuedConnection);
    // Rules given with the connection (flags, a [monitor] table) replace those set in the window.
    if (options.monitor.alerts.any()) alerts_.set_rules(options.monitor.alerts);
    if (options.demo) build_demo_toolbar();
    if (demo_bar_) demo_bar_->setVisible(options.demo);
    status_->setText(QStringLiteral("connecting..."));
    session_->start();
}

void main_window::drain() {
    if (!session_) return;
    std::vector<mon_event> events = session_->take_events();
    if (events.empty()) return;
    members_->begin_batch();
    for (const auto& ev : events) {
        members_->apply(ev);
        timeline_->apply(ev);
        if (event_log_model::logged(ev)) {
            if (kind_filter_->findData(ev.type) < 0) kind_filter_->addItem(ev.type, ev.type);
            if (!ev.address.isEmpty() && member_filter_->findData(ev.address) < 0)
                member_filter_->addItem(ev.address, ev.address);
        }
    }
    members_->end_batch();
    // Follow the newest events while the view is at its end.
    auto* bar = log_view_->verticalScrollBar();
    const bool at_end = bar->value() >= bar->maximum() - 2;
    log_->add(events);
    if (at_end) log_view_->scrollToBottom();
    const auto& incidents = timeline_->timeline().incidents();
    if (!incidents.empty()) {
        const QModelIndex current = timeline_view_->currentIndex();
        const std::size_t shown = current.isValid() ? static_cast<std::size_t>(current.row()) : incidents.size() - 1;
        phases_->set_incident(incidents[std::min(shown, incidents.size() - 1)]);
    }
    const auto& changes = timeline_->timeline().topology_changes();
    for (; markers_seen_ < changes.size(); ++markers_seen_) chart_->add_marker(changes[markers_seen_]);
}

void main_window::on_tick() {
    const auto now = steady_now_ms();
    members_->set_now(now);
    if (++ticks_ % 4 == 1) {  // every 2 s
        members_sorted_->sort(members_sorted_->sortColumn(), members_sorted_->sortOrder());
        if (ticks_ < 40 || ticks_ % 20 == 1) {  // the first 20 s, then every 10 s
            members_view_->resizeColumnsToContents();
            timeline_view_->resizeColumnsToContents();
        }
    }
    auto raised = alerts_.evaluate(now, *members_, timeline_->timeline());
    if (!raised.empty()) log_->add(raised);
    if (alerts_.active().empty()) {
        alert_label_->clear();
    } else {
        alert_label_->setText(QStringLiteral("<b style='color:#e04040'>%1 alert(s):</b> %2")
                                  .arg(alerts_.active().size())
                                  .arg(alerts_.active().begin()->second.toHtmlEscaped()));
    }
}

void main_window::set_dark(bool dark) {
    dark_ = dark;
    if (auto* app = qobject_cast<QApplication*>(QCoreApplication::instance())) apply_theme(*app, dark);
    chart_->set_dark(dark);
    if (auto* a = findChild<QAction*>(QStringLiteral("dark-action")); a && a->isChecked() != dark) {
        const QSignalBlocker block(a);
        a->setChecked(dark);
    }
}

QString main_window::without_password(const QString& uri) {
    // By hand: QUrl does not take a multi-host authority. The user information is what comes
    // before the last '@' of the authority (the text up to the first '/' after the scheme).
    const qsizetype scheme_end = uri.indexOf(QLatin1String("://"));
    if (scheme_end < 0) return uri;
    const qsizetype start = scheme_end + 3;
    qsizetype end = uri.indexOf(QLatin1Char('/'), start);
    if (end < 0) end = uri.size();
    const qsizetype at = uri.lastIndexOf(QLatin1Char('@'), end - 1);
    if (at < start) return uri;
    const qsizetype colon = uri.indexOf(QLatin1Char(':'), start);
    if (colon < 0 || colon > at) return uri;
    return uri.left(colon) + uri.mid(at);
}

void main_window::remember(const QString& entry) {
    QSettings settings;
    QStringList recent = settings.value(QStringLiteral("recent")).toStringList();
    recent.removeAll(entry);
    recent.prepend(entry);
    while (recent.size() > max_recent) recent.removeLast();
    settings.setValue(QStringLiteral("recent"), recent);
}

void main_window::connect_dialog() {
    QDialog dialog(this);
    dialog.setWindowTitle(QStringLiteral("Connect"));
    auto* form = new QFormLayout(&dialog);
    auto* uri = new QComboBox(&dialog);
    uri->setEditable(true);
    uri->setMinimumWidth(520);
    for (const QString& r : QSettings().value(QStringLiteral("recent")).toStringList())
        if (!r.startsWith(QLatin1String("file:"))) uri->addItem(r);
    uri->setCurrentText(uri->count() ? uri->itemText(0) : QStringLiteral("mongodb://localhost:27017/"));
    form->addRow(QStringLiteral("Connection string"), uri);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    form->addRow(buttons);
    connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    if (dialog.exec() != QDialog::Accepted) return;
    session_options o;
    o.uri = uri->currentText().trimmed();
    remember(without_password(o.uri));
    start_session(o);
}

void main_window::open_recent(const QString& entry) {
    session_options o;
    if (entry.startsWith(QLatin1String("file:"))) {
        o.config_file = entry.mid(5);
        try {
            o.monitor = load_monitor_config(o.config_file.toStdString()).monitor;
        } catch (const std::exception& e) {
            QMessageBox::warning(this, QStringLiteral("Configuration"), QString::fromUtf8(e.what()));
            return;
        }
    } else {
        o.uri = entry;  // kept without its password: one that needs it is to be typed again
        o.monitor.alerts = alerts_.rules();
    }
    remember(entry);
    start_session(o);
}

void main_window::alerts_dialog() {
    QDialog dialog(this);
    dialog.setWindowTitle(QStringLiteral("Alerts"));
    auto* form = new QFormLayout(&dialog);
    const alert_rules current = alerts_.rules();
    auto* no_primary = new QDoubleSpinBox(&dialog);
    no_primary->setRange(0, 3600);
    no_primary->setSpecialValueText(QStringLiteral("off"));
    no_primary->setSuffix(QStringLiteral(" s"));
    no_primary->setValue(current.no_primary_s.value_or(0));
    auto* p99 = new QDoubleSpinBox(&dialog);
    p99->setRange(0, 100000);
    p99->setSpecialValueText(QStringLiteral("off"));
    p99->setSuffix(QStringLiteral(" ms"));
    p99->setValue(current.rtt_p99_ms.value_or(0));
    auto* failures = new QSpinBox(&dialog);
    failures->setRange(0, 1000);
    failures->setSpecialValueText(QStringLiteral("off"));
    failures->setValue(current.failed_heartbeats.value_or(0));
    form->addRow(QStringLiteral("No primary for longer than"), no_primary);
    form->addRow(QStringLiteral("RTT p99 above"), p99);
    form->addRow(QStringLiteral("Failed heartbeats in a row"), failures);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    form->addRow(buttons);
    connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    if (dialog.exec() != QDialog::Accepted) return;
    alert_rules rules;
    if (no_primary->value() > 0) rules.no_primary_s = no_primary->value();
    if (p99->value() > 0) rules.rtt_p99_ms = p99->value();
    if (failures->value() > 0) rules.failed_heartbeats = failures->value();
    alerts_.set_rules(rules);
}

void main_window::open_config_dialog() {
    const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Open a TOML configuration"), {},
                                                      QStringLiteral("TOML (*.toml);;All files (*)"));
    if (path.isEmpty()) return;
    session_options o;
    try {
        o.monitor = load_monitor_config(path.toStdString()).monitor;
    } catch (const std::exception& e) {
        QMessageBox::warning(this, QStringLiteral("Configuration"), QString::fromUtf8(e.what()));
        return;
    }
    o.config_file = path;
    remember(QStringLiteral("file:") + path);
    start_session(o);
}

template <class F>
void main_window::export_dialog(const QString& title, const QString& filter, F&& write) {
    const QString path = QFileDialog::getSaveFileName(this, title, {}, filter);
    if (path.isEmpty()) return;
    QString error;
    if (!write(path, &error)) QMessageBox::warning(this, title, path + QStringLiteral(": ") + error);
}

bool main_window::export_members_csv(const QString& path, QString* error) {
    return write_text_file(path, members_csv(*members_), error);
}

bool main_window::export_events_csv(const QString& path, QString* error) {
    return write_text_file(path, events_csv(log_->events()), error);
}

bool main_window::export_events_jsonl(const QString& path, QString* error) {
    return write_text_file(path, events_jsonl(log_->events()), error);
}

bool main_window::export_timeline_json(const QString& path, QString* error) {
    const auto now = steady_now_ms();
    const auto origin = session_ ? session_->origin_ms() : now;
    const QJsonObject o = timeline_json(timeline_->timeline(), *members_, origin, now);
    return write_text_file(path, QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Indented)), error);
}

bool main_window::export_png(const QString& path, QString* error) {
    members_->set_now(steady_now_ms());
    chart_->refresh();
    const QPixmap pixmap = grab();
    if (pixmap.isNull() || !pixmap.save(path, "PNG")) {
        if (error) *error = QStringLiteral("cannot write the image");
        return false;
    }
    return true;
}

bool main_window::export_incident_report(const QString& path, QString* error) {
    const auto& incidents = timeline_->timeline().incidents();
    if (incidents.empty()) {
        if (error) *error = QStringLiteral("no incident yet");
        return false;
    }
    QFileInfo info(path);
    const QString chart_name = info.completeBaseName() + QStringLiteral("-chart.png");
    chart_->refresh();
    if (!chart_->grab().save(info.dir().filePath(chart_name), "PNG")) {
        if (error) *error = QStringLiteral("cannot write the chart image");
        return false;
    }
    return write_text_file(path, incident_markdown(incidents.back(), log_->events(), chart_name), error);
}

}  // namespace trellis::monitor
