#include "alerts.hpp"

#include "trellis/bson/builder.hpp"

namespace trellis::monitor {

std::vector<mon_event> alert_engine::evaluate(std::int64_t now_ms, const members_model& members,
                                              const failover_timeline& timeline) {
    struct condition {
        QString member;
        QString message;
    };
    std::map<QString, condition> now;
    if (rules_.no_primary_s)
        if (auto d = timeline.no_primary_for(now_ms); d && static_cast<double>(*d) > *rules_.no_primary_s * 1000.0)
            now[QStringLiteral("no-primary")] = {
                {}, QStringLiteral("no primary for %1 s (limit %2 s)").arg(static_cast<double>(*d) / 1000.0, 0, 'f', 1).arg(*rules_.no_primary_s)};
    for (const auto& m : members.rows()) {
        if (rules_.rtt_p99_ms)
            if (auto p = m.rtt.percentile(99); p && *p > *rules_.rtt_p99_ms)
                now[QStringLiteral("rtt-p99:") + m.address] = {
                    m.address, QStringLiteral("%1: RTT p99 %2 ms above %3 ms").arg(m.address).arg(*p, 0, 'f', 1).arg(*rules_.rtt_p99_ms)};
        if (rules_.failed_heartbeats && m.consecutive_failures >= *rules_.failed_heartbeats)
            now[QStringLiteral("heartbeats:") + m.address] = {
                m.address, QStringLiteral("%1: %2 failed heartbeats in a row (%3)").arg(m.address).arg(m.consecutive_failures).arg(m.last_error)};
    }
    std::vector<mon_event> out;
    auto make = [&](const QString& type, const QString& key, const QString& member, const QString& message) {
        mon_event ev;
        ev.t_ms = now_ms;
        ev.utc = QDateTime::currentDateTimeUtc();
        ev.family = event_family::alert;
        ev.type = type;
        ev.address = member;
        ev.error = message;
        ev.detail = std::make_shared<const bson::document>(
            bson::make_document(bson::kvp("alert", key.toStdString()), bson::kvp("message", message.toStdString())));
        out.push_back(std::move(ev));
    };
    for (auto it = active_.begin(); it != active_.end();) {
        if (!now.contains(it->first)) {
            const QString member = it->first.contains(QLatin1Char(':')) ? it->first.section(QLatin1Char(':'), 1) : QString();
            make(QStringLiteral("AlertCleared"), it->first, member, it->second);
            it = active_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& [key, c] : now) {
        if (!active_.contains(key)) make(QStringLiteral("AlertRaised"), key, c.member, c.message);
        active_[key] = c.message;
    }
    return out;
}

}  // namespace trellis::monitor
