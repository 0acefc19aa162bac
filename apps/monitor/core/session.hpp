// A monitoring session: a trellis::client on its own thread (and, in demo mode, an in-process
// trellis-sim deployment and a workload writing and reading), whose SDAM, CMAP and command
// events are converted to mon_events on the client's strand and handed to the GUI thread.
//
// Nothing here blocks the caller: start() returns at once, the deployment, the client and the
// workload are made and driven on the session's own worker thread, and actions (step down,
// kill, ...) are queued to it. events_ready() is emitted from other threads when events wait
// and none were waiting before (one emission per batch); a receiver on the GUI thread gets it
// as a queued signal and calls take_events().
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "monitor_config.hpp"
#include "monitor_event.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis::monitor {

struct session_options {
    QString uri;          ///< a connection string (unless demo or config_file)
    QString config_file;  ///< a TOML file (with an optional [monitor] table)
    std::vector<std::string> dns_servers;  ///< for a mongodb+srv:// uri (--dns-server); empty: the default
    bool demo = false;
    sim::topology_kind demo_topology = sim::topology_kind::replica_set;
    int demo_nodes = 3;
    int demo_mongos = 2;
    /// Demo: a client thread writing (insert_one, every write_interval_ms) and another reading.
    bool workload = true;
    int write_interval_ms = 100;
    int read_interval_ms = 200;
    monitor_settings monitor;
};

enum class action_kind { step_down, kill, restart, partition, heal, latency };

struct action {
    action_kind kind = action_kind::step_down;
    /// The member by host:port; empty: by index (1-based, in the deployment's order), or for a
    /// step down with index 0 the current primary.
    QString member;
    int index = 0;
    int latency_ms = 0;
};

/// Parses one script step ("stepdown", "kill:2", "restart:2", "partition:1", "heal:1",
/// "latency:3:80"); nullopt when it is not one.
std::optional<action> parse_action(const QString& text);
QString describe(const action& a);

struct script_step {
    int at_ms = 0;  ///< after the start of monitoring
    action what;
};
/// "stepdown@3s,kill:2@8s,restart:2@12.5s,latency:1:80@500ms": steps in time order. Times in
/// s (the default unit) or ms. nullopt with `error` set for anything else.
std::optional<std::vector<script_step>> parse_script(const QString& text, QString* error = nullptr);

class session : public QObject {
    Q_OBJECT
public:
    explicit session(session_options options, QObject* parent = nullptr);
    ~session() override;

    void start();
    /// Stops the workload, closes the client, stops the simulation; joins the worker.
    void stop();
    void request(const action& a);
    std::vector<mon_event> take_events();

    bool demo() const { return options_.demo; }
    const session_options& options() const { return options_; }
    /// Steady ms when monitoring started (0 before).
    std::int64_t origin_ms() const { return origin_ms_.load(); }
    /// The connection string in use, once started.
    QString uri() const;
    /// The simulated deployment's members, in its order (demo mode).
    QStringList sim_members() const;

Q_SIGNALS:
    void events_ready();
    void started(const QString& uri);
    void failed(const QString& message);

private:
    void run();
    void push(mon_event ev);
    void perform(const action& a);

    session_options options_;
    std::atomic<std::int64_t> origin_ms_{0};
    mutable std::mutex mutex_;  // guards everything below
    std::condition_variable wake_;
    std::vector<mon_event> pending_;
    bool notified_ = false;
    std::deque<action> actions_;
    bool stopping_ = false;
    QString uri_;
    QStringList sim_members_;
    std::set<std::string> awaited_;  // members whose last heartbeat was awaited
    std::thread worker_;
};

}  // namespace trellis::monitor
