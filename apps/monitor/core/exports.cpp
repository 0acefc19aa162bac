#include "exports.hpp"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace trellis::monitor {

QString csv_field(const QString& field) {
    const bool quote = field.contains(QLatin1Char(',')) || field.contains(QLatin1Char('"')) ||
                       field.contains(QLatin1Char('\r')) || field.contains(QLatin1Char('\n'));
    if (!quote) return field;
    QString out = field;
    out.replace(QLatin1String("\""), QLatin1String("\"\""));
    return QLatin1Char('"') + out + QLatin1Char('"');
}

QString csv_line(const QStringList& fields) {
    QStringList quoted;
    for (const QString& f : fields) quoted << csv_field(f);
    return quoted.join(QLatin1Char(',')) + QStringLiteral("\r\n");
}

std::vector<QStringList> parse_csv(const QString& text) {
    std::vector<QStringList> records;
    QStringList record;
    QString field;
    bool quoted = false, field_started = false;
    for (qsizetype i = 0; i < text.size(); ++i) {
        const QChar c = text[i];
        if (quoted) {
            if (c == QLatin1Char('"')) {
                if (i + 1 < text.size() && text[i + 1] == QLatin1Char('"')) {
                    field += QLatin1Char('"');
                    ++i;
                } else {
                    quoted = false;
                }
            } else {
                field += c;
            }
        } else if (c == QLatin1Char('"') && !field_started) {
            quoted = field_started = true;
        } else if (c == QLatin1Char(',')) {
            record << field;
            field.clear();
            field_started = false;
        } else if (c == QLatin1Char('\r') && i + 1 < text.size() && text[i + 1] == QLatin1Char('\n')) {
            record << field;
            records.push_back(record);
            record.clear();
            field.clear();
            field_started = false;
            ++i;
        } else {
            field += c;
            field_started = true;
        }
    }
    if (quoted) throw std::runtime_error("CSV: unterminated quoted field");
    if (field_started || !record.isEmpty()) {
        record << field;
        records.push_back(record);
    }
    return records;
}

QString members_csv(const members_model& members) {
    QStringList head;
    for (int c = 0; c < members_model::column_count; ++c) head << members_model::header(c);
    head << QStringLiteral("Last OK (UTC)");
    QString out = csv_line(head);
    for (int r = 0; r < members.rowCount(); ++r) {
        QStringList row;
        for (int c = 0; c < members_model::column_count; ++c) row << members.text(r, c);
        const auto& m = members.rows()[static_cast<std::size_t>(r)];
        row << (m.last_ok_utc.isValid() ? iso_utc(m.last_ok_utc) : QString());
        out += csv_line(row);
    }
    return out;
}

QString events_csv(const std::deque<mon_event>& events) {
    QString out = csv_line({QStringLiteral("time_utc"), QStringLiteral("kind"), QStringLiteral("member"),
                            QStringLiteral("summary"), QStringLiteral("detail")});
    for (const auto& ev : events)
        out += csv_line({iso_utc(ev.utc), ev.type, ev.address, event_log_model::summary(ev), ev.detail_json()});
    return out;
}

QString events_jsonl(const std::deque<mon_event>& events) {
    QString out;
    for (const auto& ev : events) {
        QJsonObject o;
        o[QStringLiteral("time")] = iso_utc(ev.utc);
        o[QStringLiteral("t_ms")] = static_cast<qint64>(ev.t_ms);
        o[QStringLiteral("kind")] = ev.type;
        o[QStringLiteral("family")] = QString::fromUtf8(to_string(ev.family).data());
        o[QStringLiteral("member")] = ev.address;
        o[QStringLiteral("summary")] = event_log_model::summary(ev);
        o[QStringLiteral("detail")] = QJsonDocument::fromJson(ev.detail_json().toUtf8()).object();
        out += QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact)) + QLatin1Char('\n');
    }
    return out;
}

namespace {
QJsonValue opt(const std::optional<std::int64_t>& v) { return v ? QJsonValue(static_cast<qint64>(*v)) : QJsonValue(); }
QJsonValue opt(const std::optional<double>& v) { return v ? QJsonValue(std::round(*v * 100.0) / 100.0) : QJsonValue(); }
}  // namespace

QJsonObject incident_json(const incident& inc, std::int64_t origin_ms) {
    QJsonObject o;
    o[QStringLiteral("number")] = inc.number;
    o[QStringLiteral("kind")] = inc.kind;
    o[QStringLiteral("t0_utc")] = iso_utc(inc.t0_utc);
    // Phases in ms from the origin (the start of monitoring).
    auto rel = [&](const std::optional<std::int64_t>& x) -> QJsonValue {
        return x ? QJsonValue(static_cast<qint64>(*x - origin_ms)) : QJsonValue();
    };
    o[QStringLiteral("t0_ms")] = rel(inc.t0);
    o[QStringLiteral("t1_ms")] = rel(inc.t1);
    o[QStringLiteral("t2_ms")] = rel(inc.t2);
    o[QStringLiteral("t3_ms")] = rel(inc.t3);
    o[QStringLiteral("t4_ms")] = rel(inc.t4);
    o[QStringLiteral("t5_ms")] = rel(inc.t5);
    o[QStringLiteral("write_outage_ms")] = opt(inc.write_outage_ms());
    o[QStringLiteral("no_primary_ms")] = opt(inc.no_primary_ms());
    o[QStringLiteral("old_primary")] = inc.old_primary;
    o[QStringLiteral("new_primary")] = inc.new_primary.isEmpty() ? QJsonValue() : QJsonValue(inc.new_primary);
    o[QStringLiteral("new_term")] = opt(inc.new_term);
    o[QStringLiteral("new_election_id")] = inc.new_election_id.isEmpty() ? QJsonValue() : QJsonValue(inc.new_election_id);
    o[QStringLiteral("cause")] = inc.cause;
    return o;
}

QJsonObject member_json(const member_row& m, std::int64_t now_ms) {
    QJsonObject o;
    o[QStringLiteral("address")] = m.address;
    o[QStringLiteral("type")] = display_type(m.type);
    o[QStringLiteral("set_name")] = m.set_name;
    o[QStringLiteral("rtt_last_ms")] = opt(m.rtt.last());
    o[QStringLiteral("rtt_avg_ms")] = opt(m.rtt.average());
    o[QStringLiteral("rtt_min_ms")] = opt(m.rtt.minimum());
    o[QStringLiteral("rtt_p50_ms")] = opt(m.rtt.percentile(50));
    o[QStringLiteral("rtt_p95_ms")] = opt(m.rtt.percentile(95));
    o[QStringLiteral("rtt_p99_ms")] = opt(m.rtt.percentile(99));
    o[QStringLiteral("rtt_samples")] = static_cast<qint64>(m.rtt.count());
    o[QStringLiteral("since_last_ok_ms")] =
        m.last_ok_ms ? QJsonValue(static_cast<qint64>(now_ms - *m.last_ok_ms)) : QJsonValue();
    o[QStringLiteral("consecutive_failures")] = m.consecutive_failures;
    o[QStringLiteral("mode")] = m.awaited ? QJsonValue(*m.awaited ? QStringLiteral("awaited") : QStringLiteral("polled"))
                                          : QJsonValue();
    o[QStringLiteral("last_error")] = m.last_error.isEmpty() ? QJsonValue() : QJsonValue(m.last_error);
    QJsonObject tags;
    for (const auto& [k, v] : m.tags) tags[QString::fromStdString(k)] = QString::fromStdString(v);
    o[QStringLiteral("tags")] = tags;
    o[QStringLiteral("pool_in_use")] = m.pool_in_use;
    o[QStringLiteral("pool_available")] = m.available();
    o[QStringLiteral("in_latency_window")] = m.in_window;
    return o;
}

QJsonObject timeline_json(const failover_timeline& timeline, const members_model& members, std::int64_t origin_ms,
                          std::int64_t now_ms) {
    QJsonArray incidents, rows;
    for (const auto& inc : timeline.incidents()) incidents.append(incident_json(inc, origin_ms));
    for (const auto& m : members.rows()) rows.append(member_json(m, now_ms));
    QJsonObject o;
    o[QStringLiteral("incidents")] = incidents;
    o[QStringLiteral("members")] = rows;
    return o;
}

QString incident_markdown(const incident& inc, const std::deque<mon_event>& events, const QString& chart_image) {
    auto rel = [&](const std::optional<std::int64_t>& x) {
        return x && inc.t0 ? QStringLiteral("+%1 ms").arg(*x - *inc.t0) : QStringLiteral("not seen");
    };
    QString md;
    md += QStringLiteral("# Incident %1: %2\n\n").arg(inc.number).arg(inc.kind);
    md += QStringLiteral("- old primary: `%1`\n").arg(inc.old_primary);
    md += QStringLiteral("- new primary: `%1`").arg(inc.new_primary.isEmpty() ? QStringLiteral("none") : inc.new_primary);
    if (inc.new_term) md += QStringLiteral(" (term %1, electionId %2)").arg(*inc.new_term).arg(inc.new_election_id);
    md += QStringLiteral("\n- T0 at %1 UTC\n").arg(iso_utc(inc.t0_utc));
    if (!inc.cause.isEmpty()) md += QStringLiteral("- first error: %1\n").arg(inc.cause);
    const auto wo = inc.write_outage_ms();
    const auto np = inc.no_primary_ms();
    md += QStringLiteral("- write outage (T4 - T0): %1\n").arg(wo ? QStringLiteral("%1 ms").arg(*wo) : QStringLiteral("unknown"));
    md += QStringLiteral("- no primary (T3 - T1): %1\n\n").arg(np ? QStringLiteral("%1 ms").arg(*np) : QStringLiteral("unknown"));
    md += QStringLiteral("| phase | what | at |\n|---|---|---|\n");
    md += QStringLiteral("| T0 | first failed heartbeat or state-change error | %1 |\n").arg(rel(inc.t0));
    md += QStringLiteral("| T1 | topology without a primary | %1 |\n").arg(rel(inc.t1));
    md += QStringLiteral("| T2 | new primary seen | %1 |\n").arg(rel(inc.t2));
    md += QStringLiteral("| T3 | writable again | %1 |\n").arg(rel(inc.t3));
    md += QStringLiteral("| T4 | first successful write | %1 |\n").arg(rel(inc.t4));
    md += QStringLiteral("| T5 | old primary back as a secondary | %1 |\n\n").arg(rel(inc.t5));
    if (!chart_image.isEmpty()) md += QStringLiteral("![RTT chart](%1)\n\n").arg(chart_image);
    std::int64_t last = *inc.t0;
    for (const auto& p : {inc.t1, inc.t2, inc.t3, inc.t4, inc.t5})
        if (p) last = std::max(last, *p);
    md += QStringLiteral("## Events\n\n| time (UTC) | +ms | kind | member | summary |\n|---|---|---|---|---|\n");
    for (const auto& ev : events) {
        if (!event_log_model::logged(ev) || ev.t_ms < *inc.t0 - 2000 || ev.t_ms > last + 2000) continue;
        if (ev.type == QLatin1String("ServerHeartbeatStarted")) continue;
        QString summary = event_log_model::summary(ev);
        summary.replace(QLatin1Char('|'), QLatin1Char('/'));
        summary.replace(QLatin1Char('\n'), QLatin1Char(' '));
        md += QStringLiteral("| %1 | %2 | %3 | %4 | %5 |\n")
                  .arg(iso_utc(ev.utc))
                  .arg(ev.t_ms - *inc.t0)
                  .arg(ev.type, ev.address, summary);
    }
    return md;
}

bool write_text_file(const QString& path, const QString& text, QString* error) {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
        if (error) *error = f.errorString();
        return false;
    }
    const QByteArray bytes = text.toUtf8();
    if (f.write(bytes) != bytes.size()) {
        if (error) *error = f.errorString();
        return false;
    }
    return true;
}

}  // namespace trellis::monitor
