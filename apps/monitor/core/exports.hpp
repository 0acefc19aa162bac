// What the monitor writes out: CSV (RFC 4180: CRLF line ends, fields quoted when they hold a
// comma, quote, CR or LF, quotes doubled; times UTC ISO 8601 with milliseconds), JSON Lines,
// the timeline JSON of the headless face, and the Markdown incident report.
#pragma once

#include <QJsonObject>
#include <QString>
#include <QStringList>

#include <deque>

#include "event_log_model.hpp"
#include "members_model.hpp"
#include "timeline.hpp"

namespace trellis::monitor {

QString csv_field(const QString& field);
QString csv_line(const QStringList& fields);
/// Parses RFC 4180 text back into records (for tests and round trips). Throws
/// std::runtime_error for an unterminated quoted field.
std::vector<QStringList> parse_csv(const QString& text);

/// One line per member: the table's columns and last_ok_utc.
QString members_csv(const members_model& members);
/// time_utc, kind, member, summary, detail (Extended JSON).
QString events_csv(const std::deque<mon_event>& events);
/// One JSON object per line: {"time", "t_ms", "kind", "family", "member", "summary", "detail"}
/// with detail the event's Extended JSON as an object.
QString events_jsonl(const std::deque<mon_event>& events);

/// Phases t0_ms..t5_ms in ms since `origin_ms` (steady clock: the start of monitoring), the
/// durations, the old and new primary, the new term and electionId, the cause.
QJsonObject incident_json(const incident& inc, std::int64_t origin_ms);
QJsonObject member_json(const member_row& m, std::int64_t now_ms);
/// {"incidents": [...], "members": [...]}.
QJsonObject timeline_json(const failover_timeline& timeline, const members_model& members, std::int64_t origin_ms,
                          std::int64_t now_ms);

/// A Markdown report of one incident: its phases, the logged events from 2 s before T0 to 2 s
/// after its last phase, and the chart image when one is given (a path relative to the report).
QString incident_markdown(const incident& inc, const std::deque<mon_event>& events, const QString& chart_image);

/// Writes UTF-8 text; false with `error` set when it cannot.
bool write_text_file(const QString& path, const QString& text, QString* error = nullptr);

}  // namespace trellis::monitor
