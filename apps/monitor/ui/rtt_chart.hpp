// The RTT chart: one line per member (its moving average) with its raw samples as dots, a
// rolling window (5 minutes by default) over a ring buffer of at least an hour, vertical
// markers at topology changes. Samples are collected always; the series are redrawn on a timer
// (twice a second, one replace() per series) unless paused.
#pragma once

#include <QChartView>
#include <QTimer>

#include <cstdint>
#include <deque>
#include <map>

class QChart;
class QDateTimeAxis;
class QLineSeries;
class QScatterSeries;
class QValueAxis;

namespace trellis::monitor {

class rtt_chart : public QChartView {
    Q_OBJECT
public:
    explicit rtt_chart(QWidget* parent = nullptr);

    /// t_ms on the steady clock.
    void add_sample(const QString& member, std::int64_t t_ms, double ms, double average);
    void add_marker(std::int64_t t_ms);
    /// Forgets every member's samples and every marker (a new session).
    void clear();
    void set_paused(bool paused);
    bool paused() const { return paused_; }
    void set_dark(bool dark);
    void set_window_seconds(int seconds);
    /// Redraws now (the timer does it otherwise).
    void refresh();
    /// Samples kept for a member (for tests).
    std::size_t kept(const QString& member) const;

    static constexpr std::int64_t keep_ms = 3600 * 1000 + 60 * 1000;  ///< an hour and a minute

protected:
    void drawForeground(QPainter* painter, const QRectF& rect) override;

private:
    struct sample {
        qint64 wall_ms;
        double ms, average;
    };
    struct line {
        QLineSeries* average = nullptr;
        QScatterSeries* raw = nullptr;
        std::deque<sample> samples;
    };
    static qint64 to_wall(std::int64_t t_ms);

    QChart* chart_;
    QDateTimeAxis* x_;
    QValueAxis* y_;
    std::map<QString, line> lines_;
    std::deque<qint64> markers_;
    QTimer timer_;
    bool paused_ = false;
    bool dirty_ = false;
    int window_s_ = 300;
    qint64 shown_until_ = 0;
};

}  // namespace trellis::monitor
