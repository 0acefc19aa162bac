// The phases of one incident drawn to scale: T0..T5 as ticks on one line, the stretch without
// a primary (T1..T3) red, the wait for the first write after it (T3..T4, or T0..T4 where the
// topology stayed writable) amber, the rest of the outage (T0..T1) grey.
#pragma once

#include <QWidget>

#include <optional>

#include "timeline.hpp"

namespace trellis::monitor {

class phase_bar : public QWidget {
    Q_OBJECT
public:
    explicit phase_bar(QWidget* parent = nullptr);
    void set_incident(std::optional<incident> inc);
    QSize sizeHint() const override { return {420, 64}; }

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    std::optional<incident> incident_;
};

}  // namespace trellis::monitor
