// Alerts: conditions checked against the members and the timeline, raised once when they
// start and cleared when they end (each as an "AlertRaised"/"AlertCleared" event).
#pragma once

#include <QString>

#include <map>
#include <optional>
#include <vector>

#include "members_model.hpp"
#include "timeline.hpp"

namespace trellis::monitor {

struct alert_rules {
    std::optional<double> no_primary_s;     ///< no writable server for longer than this
    std::optional<double> rtt_p99_ms;       ///< a member's RTT p99 above this
    std::optional<int> failed_heartbeats;   ///< this many failed heartbeats in a row (or more)
    bool any() const { return no_primary_s || rtt_p99_ms || failed_heartbeats; }
};

class alert_engine {
public:
    explicit alert_engine(alert_rules rules = {}) : rules_(rules) {}
    void set_rules(alert_rules rules) { rules_ = rules; }
    const alert_rules& rules() const { return rules_; }

    /// The events for alerts that started or ended since the last call.
    std::vector<mon_event> evaluate(std::int64_t now_ms, const members_model& members, const failover_timeline& timeline);
    /// The alerts active now: key -> message.
    const std::map<QString, QString>& active() const { return active_; }

private:
    alert_rules rules_;
    std::map<QString, QString> active_;
};

}  // namespace trellis::monitor
