#include "phase_bar.hpp"

#include <QPainter>

#include <algorithm>
#include <array>

namespace trellis::monitor {

phase_bar::phase_bar(QWidget* parent) : QWidget(parent) {
    setMinimumHeight(56);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
}

void phase_bar::set_incident(std::optional<incident> inc) {
    incident_ = std::move(inc);
    update();
}

void phase_bar::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const QPalette& pal = palette();
    p.setPen(pal.color(QPalette::WindowText));
    if (!incident_ || !incident_->t0) {
        p.drawText(rect(), Qt::AlignCenter, QStringLiteral("no incident yet"));
        return;
    }
    const incident& inc = *incident_;
    const std::int64_t t0 = *inc.t0;
    const std::array<std::optional<std::int64_t>, 6> phases{inc.t0, inc.t1, inc.t2, inc.t3, inc.t4, inc.t5};
    std::int64_t end = t0;
    for (const auto& ph : phases)
        if (ph) end = std::max(end, *ph);
    const std::int64_t span = std::max<std::int64_t>(end - t0, 1);
    const QFontMetrics fm(font());
    const qreal left = 12, right = width() - 12 - fm.horizontalAdvance(QStringLiteral("+00000 ms"));
    const qreal y = height() / 2.0 - 2, bar = 12;
    auto x_of = [&](std::int64_t t) { return left + (right - left) * static_cast<qreal>(t - t0) / static_cast<qreal>(span); };
    auto segment = [&](std::optional<std::int64_t> a, std::optional<std::int64_t> b, QColor c) {
        if (!a || !b || *b < *a) return;
        p.fillRect(QRectF(x_of(*a), y - bar / 2, std::max<qreal>(2.0, x_of(*b) - x_of(*a)), bar), c);
    };
    p.fillRect(QRectF(left, y - 1, right - left, 2), pal.color(QPalette::Mid));
    segment(inc.t0, inc.t1 ? inc.t1 : inc.t4, QColor(140, 140, 140));
    segment(inc.t1, inc.t3, QColor(210, 60, 60));
    segment(inc.t3 ? inc.t3 : (inc.t1 ? std::nullopt : inc.t0), inc.t4, QColor(225, 160, 40));
    segment(inc.t4, inc.t5, QColor(70, 170, 90));
    // One tick per distinct time, its phases named together ("T2=T3=T4"); labels alternate above
    // and below so that ticks close together stay readable.
    int group = 0;
    for (std::size_t i = 0; i < phases.size(); ++i) {
        if (!phases[i]) continue;
        bool seen = false;
        for (std::size_t j = 0; j < i; ++j) seen = seen || (phases[j] && *phases[j] == *phases[i]);
        if (seen) continue;
        QString label = QStringLiteral("T%1").arg(i);
        for (std::size_t j = i + 1; j < phases.size(); ++j)
            if (phases[j] && *phases[j] == *phases[i]) label += QStringLiteral("=T%1").arg(j);
        const qreal x = x_of(*phases[i]);
        p.drawLine(QPointF(x, y - bar / 2 - 4), QPointF(x, y + bar / 2 + 4));
        const qreal ly = group % 2 == 0 ? y - bar / 2 - 6 : y + bar / 2 + 6 + fm.ascent();
        const qreal lx = std::clamp(x - fm.horizontalAdvance(label) / 2.0, 0.0, static_cast<qreal>(width()) - fm.horizontalAdvance(label));
        p.drawText(QPointF(lx, ly), label);
        ++group;
    }
    p.drawText(QPointF(right + 6, y + fm.ascent() / 2.0), QStringLiteral("+%1 ms").arg(span));
}

}  // namespace trellis::monitor
