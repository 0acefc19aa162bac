#include "rtt_chart.hpp"

#include <QChart>
#include <QDateTime>
#include <QDateTimeAxis>
#include <QLegendMarker>
#include <QLineSeries>
#include <QPainter>
#include <QScatterSeries>
#include <QTimeZone>
#include <QValueAxis>

#include <algorithm>
#include <chrono>

#include "monitor_event.hpp"

namespace trellis::monitor {

// The chart is given to the base's constructor: QChartView(parent) makes a default chart of its
// own, which setChart() would release without deleting (a leak LeakSanitizer found).
rtt_chart::rtt_chart(QWidget* parent)
    : QChartView(new QChart, parent), chart_(chart()), x_(new QDateTimeAxis), y_(new QValueAxis) {
    chart_->setTitle(QStringLiteral("Heartbeat RTT (ms): moving average, raw samples as dots"));
    chart_->legend()->setAlignment(Qt::AlignBottom);
    x_->setFormat(QStringLiteral("HH:mm:ss"));
    x_->setTitleText(QStringLiteral("UTC"));
    x_->setTickCount(6);
    y_->setTitleText(QStringLiteral("ms"));
    y_->setLabelFormat(QStringLiteral("%.1f"));
    y_->setRange(0, 1);
    chart_->addAxis(x_, Qt::AlignBottom);
    chart_->addAxis(y_, Qt::AlignLeft);
    setRenderHint(QPainter::Antialiasing);
    setMinimumSize(320, 200);
    timer_.setInterval(500);
    connect(&timer_, &QTimer::timeout, this, [this] {
        if (!paused_) refresh();
    });
    timer_.start();
}

qint64 rtt_chart::to_wall(std::int64_t t_ms) {
    return QDateTime::currentMSecsSinceEpoch() - (steady_now_ms() - t_ms);
}

void rtt_chart::add_sample(const QString& member, std::int64_t t_ms, double ms, double average) {
    line& l = lines_[member];
    if (!l.average) {
        l.average = new QLineSeries(chart_);
        l.average->setName(member);
        l.raw = new QScatterSeries(chart_);
        l.raw->setMarkerSize(4);
        l.raw->setMarkerShape(QScatterSeries::MarkerShapeRectangle);  // squares: far cheaper to draw than circles
        l.raw->setBorderColor(Qt::transparent);
        chart_->addSeries(l.average);
        chart_->addSeries(l.raw);
        for (auto* s : {static_cast<QAbstractSeries*>(l.average), static_cast<QAbstractSeries*>(l.raw)}) {
            s->attachAxis(x_);
            s->attachAxis(y_);
        }
        l.raw->setColor(l.average->color());
        // One legend entry per member: the line's. Past 12 members a legend is only a row of
        // colours without room for names: hidden then (the table names them).
        const auto markers = chart_->legend()->markers(l.raw);
        for (auto* m : markers) m->setVisible(false);
        chart_->legend()->setVisible(lines_.size() <= 12);
    }
    const qint64 wall = to_wall(t_ms);
    l.samples.push_back({wall, ms, average});
    while (!l.samples.empty() && l.samples.front().wall_ms < wall - keep_ms) l.samples.pop_front();
    dirty_ = true;
}

void rtt_chart::add_marker(std::int64_t t_ms) {
    const qint64 wall = to_wall(t_ms);
    markers_.push_back(wall);
    while (!markers_.empty() && markers_.front() < wall - keep_ms) markers_.pop_front();
    dirty_ = true;
}

void rtt_chart::clear() {
    for (auto& [name, l] : lines_) {
        chart_->removeSeries(l.average);
        chart_->removeSeries(l.raw);
        delete l.average;
        delete l.raw;
    }
    lines_.clear();
    markers_.clear();
    dirty_ = true;
    chart_->legend()->setVisible(true);
}

std::size_t rtt_chart::kept(const QString& member) const {
    auto it = lines_.find(member);
    return it == lines_.end() ? 0 : it->second.samples.size();
}

void rtt_chart::set_paused(bool paused) {
    paused_ = paused;
    if (!paused_) refresh();
}

void rtt_chart::set_dark(bool dark) {
    chart_->setTheme(dark ? QChart::ChartThemeDark : QChart::ChartThemeLight);
    // A theme resets the series' colours: the dots follow their line again.
    for (auto& [name, l] : lines_) {
        if (!l.raw) continue;
        l.raw->setColor(l.average->color());
        l.raw->setBorderColor(Qt::transparent);
    }
}

void rtt_chart::set_window_seconds(int seconds) {
    window_s_ = std::max(10, seconds);
    dirty_ = true;
}

void rtt_chart::refresh() {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    // The rolling window; while the samples span less than it, from the first one (less 2 s),
    // so that a short run fills the plot.
    qint64 first = now;
    for (const auto& [name, l] : lines_)
        if (!l.samples.empty()) first = std::min(first, l.samples.front().wall_ms);
    const qint64 from = std::max(now - static_cast<qint64>(window_s_) * 1000, std::min(first - 2000, now - 10000));
    if (!dirty_ && now - shown_until_ < 1000) return;
    double top = 1.0;
    for (auto& [name, l] : lines_) {
        QList<QPointF> avg, raw;
        auto first = std::lower_bound(l.samples.begin(), l.samples.end(), from,
                                      [](const sample& s, qint64 t) { return s.wall_ms < t; });
        for (auto it = first; it != l.samples.end(); ++it) {
            avg.append(QPointF(static_cast<qreal>(it->wall_ms), it->average));
            raw.append(QPointF(static_cast<qreal>(it->wall_ms), it->ms));
            top = std::max({top, it->ms, it->average});
        }
        l.average->replace(avg);
        l.raw->replace(raw);
    }
    x_->setRange(QDateTime::fromMSecsSinceEpoch(from, QTimeZone::utc()), QDateTime::fromMSecsSinceEpoch(now, QTimeZone::utc()));
    y_->setRange(0, top * 1.15);
    shown_until_ = now;
    dirty_ = false;
    viewport()->update();
}

void rtt_chart::drawForeground(QPainter* painter, const QRectF& rect) {
    QChartView::drawForeground(painter, rect);
    const QRectF area = chart_->plotArea();
    painter->save();
    QPen pen(QColor(230, 120, 40));
    pen.setStyle(Qt::DashLine);
    pen.setWidthF(1.5);
    painter->setPen(pen);
    const qreal lo = static_cast<qreal>(x_->min().toMSecsSinceEpoch());
    const qreal hi = static_cast<qreal>(x_->max().toMSecsSinceEpoch());
    for (qint64 m : markers_) {
        if (m < lo || m > hi || hi <= lo) continue;
        const qreal x = area.left() + (static_cast<qreal>(m) - lo) / (hi - lo) * area.width();
        // The painter works in scene coordinates; the plot area is in the chart's.
        painter->drawLine(chart_->mapToScene(QPointF(x, area.top())), chart_->mapToScene(QPointF(x, area.bottom())));
    }
    painter->restore();
}

}  // namespace trellis::monitor
