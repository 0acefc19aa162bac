// The failover timeline: incidents measured from the events the client saw, to the
// millisecond (steady clock).
//
//   T0  the first sign of trouble on the writable server that was lost: a failed heartbeat, a
//       State Change Error or network error of a command sent to it, or a description of it
//       that is no longer writable (a stepdown seen by a heartbeat); at most T1
//   T1  the topology has no writable server (no primary; for sharded, no router left)
//   T2  a new primary seen: a member described as primary (with its electionId and term), or
//       named as primary by another member
//   T3  the topology is writable again
//   T4  the first successful write after T3 (after T0 when the topology never stopped being
//       writable): an insert/update/delete/findAndModify of the application, or a canary write
//   T5  the old primary back as a secondary (a router lost: back as a router; the same primary
//       re-elected: when it is primary again)
//
// write outage = T4 - T0, no primary = T3 - T1. An incident opens when a writable server
// leaves the writable set (the primary of a replica set, a router of a sharded cluster, a
// standalone or master); a later loss of the writable server starts the next incident.
#pragma once

#include <QAbstractTableModel>
#include <QDateTime>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "monitor_event.hpp"

namespace trellis::monitor {

struct incident {
    int number = 0;
    QString kind;         ///< "primary lost", "router lost", "writable server lost"
    QString old_primary;  ///< the server that stopped taking writes
    QString new_primary;  ///< the server that took writes afterwards (empty until T2)
    std::optional<std::int64_t> t0, t1, t2, t3, t4, t5;
    QDateTime t0_utc;     ///< the wall time of T0
    QString cause;        ///< the first error seen, when there was one
    std::optional<std::int64_t> new_term;
    QString new_election_id;
    std::optional<int> new_set_version;

    std::optional<std::int64_t> write_outage_ms() const {
        if (t0 && t4) return *t4 - *t0;
        return std::nullopt;
    }
    std::optional<std::int64_t> no_primary_ms() const {
        if (t1 && t3) return *t3 - *t1;
        return std::nullopt;
    }
    bool recovered() const { return t3.has_value() || (!t1 && t4.has_value()); }
};

class failover_timeline {
public:
    void apply(const mon_event& ev);
    const std::vector<incident>& incidents() const { return incidents_; }
    /// Times of topology changes (steady ms) that changed the writable set or the topology type.
    const std::vector<std::int64_t>& topology_changes() const { return changes_; }
    /// The server(s) taking writes now, as last seen.
    const std::set<QString>& writable() const { return writable_; }
    /// How long the topology has been without a writable server at `now`, if it is.
    std::optional<std::int64_t> no_primary_for(std::int64_t now_ms) const;

private:
    struct sighting {
        std::int64_t t;
        QString address;
        std::optional<bson::oid> election_id;
        std::optional<int> set_version;
    };
    void note_trouble(const QString& address, std::int64_t t, const QString& cause);
    void on_topology(const mon_event& ev);
    void on_primary_sighting(const sighting& s);
    void set_t2(incident& inc, const sighting& s);
    incident* open() { return open_ ? &incidents_[*open_] : nullptr; }

    std::vector<incident> incidents_;
    std::optional<std::size_t> open_;
    std::set<QString> writable_;
    bool ever_writable_ = false;
    std::optional<std::int64_t> unwritable_since_;
    sdk::topology_type type_ = sdk::topology_type::unknown;
    struct trouble {
        std::int64_t t;
        QString cause;
    };
    std::map<QString, trouble> trouble_;  ///< first sign per member since it was last fine
    std::optional<sighting> last_sighting_;
    std::vector<std::int64_t> changes_;
};

/// The incidents as a table: one row per incident.
class timeline_model : public QAbstractTableModel {
    Q_OBJECT
public:
    enum column {
        col_number,
        col_kind,
        col_old,
        col_new,
        col_t0,
        col_t1,
        col_t2,
        col_t3,
        col_t4,
        col_t5,
        col_write_outage,
        col_no_primary,
        col_term,
        col_cause,
        column_count
    };
    explicit timeline_model(QObject* parent = nullptr) : QAbstractTableModel(parent) {}

    void apply(const mon_event& ev);
    /// Forgets every incident (a new session).
    void clear();
    const failover_timeline& timeline() const { return timeline_; }
    static QString header(int col);
    /// What the column means (its tooltip).
    static QString description(int col);
    QString text(int row, int col) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    failover_timeline timeline_;
    std::size_t shown_ = 0;
};

}  // namespace trellis::monitor
