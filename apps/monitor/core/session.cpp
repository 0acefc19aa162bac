#include "session.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <stop_token>

#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace trellis::monitor {
namespace {

using namespace std::chrono_literals;

std::string with_options(std::string uri, const std::string& options) {
    if (uri.find('?') == std::string::npos) {
        if (uri.find('/', std::string("mongodb://").size()) == std::string::npos) uri += '/';
        return uri + "?" + options;
    }
    return uri + "&" + options;
}

mon_event action_event(const QString& text, const QString& member, bool failed, const QString& error) {
    mon_event ev;
    ev.t_ms = steady_now_ms();
    ev.utc = QDateTime::currentDateTimeUtc();
    ev.family = event_family::action;
    ev.type = QStringLiteral("Action");
    ev.address = member;
    ev.failed = failed;
    ev.error = failed ? text + QStringLiteral(" failed: ") + error : text;
    bson::builder b;
    b.append("action", text.toStdString());
    if (!member.isEmpty()) b.append("member", member.toStdString());
    if (failed) b.append("error", error.toStdString());
    ev.detail = std::make_shared<const bson::document>(b.extract());
    return ev;
}

// Sleeps up to `d`, in slices, until stop is requested.
void nap(std::stop_token stop, std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(20ms, until - std::chrono::steady_clock::now()));
}

}  // namespace

std::optional<action> parse_action(const QString& text) {
    const QStringList parts = text.trimmed().split(QLatin1Char(':'));
    if (parts.isEmpty()) return std::nullopt;
    const QString verb = parts[0].toLower();
    action a;
    auto index = [&](int i) -> bool {
        if (parts.size() <= i) return false;
        bool ok = false;
        a.index = parts[i].toInt(&ok);
        return ok && a.index >= 1;
    };
    if (verb == QLatin1String("stepdown")) {
        a.kind = action_kind::step_down;
        if (parts.size() == 1) return a;
        return parts.size() == 2 && index(1) ? std::optional(a) : std::nullopt;
    }
    static const std::map<QString, action_kind> by_index{{QStringLiteral("kill"), action_kind::kill},
                                                         {QStringLiteral("restart"), action_kind::restart},
                                                         {QStringLiteral("partition"), action_kind::partition},
                                                         {QStringLiteral("heal"), action_kind::heal}};
    if (auto it = by_index.find(verb); it != by_index.end()) {
        a.kind = it->second;
        return parts.size() == 2 && index(1) ? std::optional(a) : std::nullopt;
    }
    if (verb == QLatin1String("latency")) {
        a.kind = action_kind::latency;
        if (parts.size() != 3 || !index(1)) return std::nullopt;
        bool ok = false;
        a.latency_ms = parts[2].toInt(&ok);
        return ok && a.latency_ms >= 0 ? std::optional(a) : std::nullopt;
    }
    return std::nullopt;
}

QString describe(const action& a) {
    const QString who = !a.member.isEmpty() ? a.member
                        : a.index > 0       ? QStringLiteral("member %1").arg(a.index)
                                            : QStringLiteral("the primary");
    switch (a.kind) {
        case action_kind::step_down: return QStringLiteral("step down ") + who;
        case action_kind::kill: return QStringLiteral("kill ") + who;
        case action_kind::restart: return QStringLiteral("restart ") + who;
        case action_kind::partition: return QStringLiteral("partition ") + who;
        case action_kind::heal: return QStringLiteral("heal ") + who;
        case action_kind::latency: return QStringLiteral("latency %1 ms on ").arg(a.latency_ms) + who;
    }
    return {};
}

std::optional<std::vector<script_step>> parse_script(const QString& text, QString* error) {
    std::vector<script_step> steps;
    for (const QString& part : text.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        const QStringList halves = part.trimmed().split(QLatin1Char('@'));
        auto bad = [&](const QString& why) {
            if (error) *error = QStringLiteral("script step \"%1\": %2").arg(part.trimmed(), why);
            return std::nullopt;
        };
        if (halves.size() != 2) return bad(QStringLiteral("expected ACTION@TIME"));
        auto a = parse_action(halves[0]);
        if (!a) return bad(QStringLiteral("unknown action (stepdown, stepdown:N, kill:N, restart:N, partition:N, heal:N, latency:N:MS)"));
        QString t = halves[1].trimmed().toLower();
        double scale = 1000.0;
        if (t.endsWith(QLatin1String("ms"))) {
            scale = 1.0;
            t.chop(2);
        } else if (t.endsWith(QLatin1Char('s'))) {
            t.chop(1);
        }
        bool ok = false;
        const double v = t.toDouble(&ok);
        if (!ok || v < 0 || v > 86400.0 * 1000.0 / scale) return bad(QStringLiteral("bad time"));
        steps.push_back({static_cast<int>(v * scale), *a});
    }
    if (steps.empty()) {
        if (error) *error = QStringLiteral("empty script");
        return std::nullopt;
    }
    std::stable_sort(steps.begin(), steps.end(), [](const script_step& x, const script_step& y) { return x.at_ms < y.at_ms; });
    return steps;
}

session::session(session_options options, QObject* parent) : QObject(parent), options_(std::move(options)) {}

session::~session() { stop(); }

void session::start() {
    if (worker_.joinable()) return;
    worker_ = std::thread([this] { run(); });
}

void session::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) worker_.join();
}

void session::request(const action& a) {
    {
        std::lock_guard lock(mutex_);
        actions_.push_back(a);
    }
    wake_.notify_all();
}

std::vector<mon_event> session::take_events() {
    std::lock_guard lock(mutex_);
    notified_ = false;
    return std::exchange(pending_, {});
}

QString session::uri() const {
    std::lock_guard lock(mutex_);
    return uri_;
}

QStringList session::sim_members() const {
    std::lock_guard lock(mutex_);
    return sim_members_;
}

void session::push(mon_event ev) {
    bool notify = false;
    {
        std::lock_guard lock(mutex_);
        if (ev.family == event_family::sdam && ev.type.startsWith(QLatin1String("ServerHeartbeat")) &&
            ev.type != QLatin1String("ServerHeartbeatStarted")) {
            if (ev.awaited)
                awaited_.insert(ev.address.toStdString());
            else
                awaited_.erase(ev.address.toStdString());
        }
        pending_.push_back(std::move(ev));
        notify = !notified_;
        notified_ = true;
    }
    if (notify) Q_EMIT events_ready();
}

void session::run() {
    std::unique_ptr<sim::deployment> deployment;
    std::optional<trellis::client> client;
    std::vector<std::jthread> workers;
    try {
        client_settings settings;
        settings.on_sdam = [this](const sdam_event& e) { push(from_sdam(e)); };
        settings.on_cmap = [this](const cmap_event& e) { push(from_cmap(e)); };
        settings.on_command = [this](const command_event& e) {
            // Started events carry nothing the monitor shows; the others feed T0 and T4.
            if (!std::holds_alternative<command_started_event>(e)) push(from_command(e));
        };
        std::string uri;
        const std::string demo_options =
            "heartbeatFrequencyMS=500&serverMonitoringMode=poll&serverSelectionTimeoutMS=3000&connectTimeoutMS=2000"
            "&retryWrites=true&appName=trellis-monitor";
        if (options_.demo) {
            sim::sim_config config;
            config.topology = options_.demo_topology;
            config.nodes = options_.demo_nodes;
            config.mongos = options_.demo_mongos;
            config.election_delay = 300ms;
            deployment = std::make_unique<sim::deployment>(config);
            deployment->start();
            if (config.topology == sim::topology_kind::replica_set && !deployment->wait_for_primary(5s))
                throw std::runtime_error("the simulated replica set elected no primary within 5 s");
            QStringList members;
            for (const auto& m : deployment->members()) members << QString::fromStdString(m);
            {
                std::lock_guard lock(mutex_);
                sim_members_ = members;
            }
            if (config.topology == sim::topology_kind::master_slave) {
                const auto all = deployment->members();
                client_options o = parse_uri("mongodb://" + all.front() + "/?" + demo_options).options;
                std::vector<server_address> slaves;
                for (std::size_t i = 1; i < all.size(); ++i) slaves.push_back(parse_uri("mongodb://" + all[i]).options.hosts.front());
                uri = "master/slave: " + all.front();
                origin_ms_ = steady_now_ms();
                client.emplace(trellis::client::master_slave(o.hosts.front(), slaves, o, std::move(settings)));
            } else {
                uri = with_options(deployment->uri(), demo_options);
                origin_ms_ = steady_now_ms();
                client.emplace(uri, std::move(settings));
            }
        } else if (!options_.config_file.isEmpty()) {
            monitor_file file = load_monitor_config(options_.config_file.toStdString());
            settings.topology = file.client.topology;
            settings.plugins = file.client.plugins;
            uri = "config: " + options_.config_file.toStdString();
            origin_ms_ = steady_now_ms();
            client.emplace(file.client.options, std::move(settings));
        } else {
            uri = options_.uri.toStdString();
            client_options o = parse_uri(uri).options;
            if (!options_.dns_servers.empty()) o.dns_servers = options_.dns_servers;
            origin_ms_ = steady_now_ms();
            client.emplace(std::move(o), std::move(settings));
        }
        {
            std::lock_guard lock(mutex_);
            uri_ = QString::fromStdString(uri);
        }
        Q_EMIT started(QString::fromStdString(uri));

        if (options_.demo && options_.workload) {
            collection coll = (*client)["trellis_monitor"]["workload"];
            const auto write_every = std::chrono::milliseconds(options_.write_interval_ms);
            const auto read_every = std::chrono::milliseconds(options_.read_interval_ms);
            workers.emplace_back([coll, write_every](std::stop_token stop) mutable {
                for (std::int64_t seq = 1; !stop.stop_requested(); ++seq) {
                    try {
                        coll.insert_one(bson::make_document(bson::kvp("seq", seq)));
                    } catch (const std::exception&) {
                        // The command events report it (CommandFailed); the writer goes on.
                    }
                    nap(stop, write_every);
                }
            });
            workers.emplace_back([coll, read_every](std::stop_token stop) mutable {
                while (!stop.stop_requested()) {
                    try {
                        find_options o;
                        o.limit = 1;
                        o.read_preference = trellis::read_preference{read_preference_mode::primary_preferred, {}, {}};
                        cursor cur = coll.find({}, o);
                        cur.next();
                    } catch (const std::exception&) {
                    }
                    nap(stop, read_every);
                }
            });
        }
        if (options_.monitor.canary_writes) {
            collection canary = (*client)["trellis_monitor"]["canary"];
            trellis::write_concern wc;
            wc.w = std::string("majority");
            canary.set_write_concern(wc);
            const auto every = std::chrono::milliseconds(options_.monitor.canary_interval_ms);
            workers.emplace_back([this, canary, every](std::stop_token stop) mutable {
                while (!stop.stop_requested()) {
                    mon_event ev;
                    try {
                        canary.insert_one(bson::make_document(bson::kvp("at", std::chrono::system_clock::now())));
                        ev.failed = false;
                    } catch (const std::exception& e) {
                        ev.failed = true;
                        ev.error = QString::fromUtf8(e.what());
                    }
                    ev.t_ms = steady_now_ms();
                    ev.utc = QDateTime::currentDateTimeUtc();
                    ev.family = event_family::workload;
                    ev.type = QStringLiteral("CanaryWrite");
                    ev.is_write = true;
                    bson::builder b;
                    b.append("writeConcern", "majority");
                    b.append("ok", !ev.failed);
                    if (ev.failed) b.append("error", ev.error.toStdString());
                    ev.detail = std::make_shared<const bson::document>(b.extract());
                    push(std::move(ev));
                    nap(stop, every);
                }
            });
        }

        // The worker's loop: actions, and the RTT of streaming members (whose heartbeats carry
        // no round trip) from the driver's own average twice a second.
        auto next_poll = std::chrono::steady_clock::now();
        std::map<std::string, std::chrono::microseconds> last_polled;
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            if (!actions_.empty()) {
                action a = actions_.front();
                actions_.pop_front();
                lock.unlock();
                if (deployment) {
                    QString member = a.member;
                    try {
                        const auto members = deployment->members();
                        if (member.isEmpty() && a.index > 0) {
                            if (static_cast<std::size_t>(a.index) > members.size())
                                throw std::runtime_error("no member " + std::to_string(a.index) + " (the deployment has " +
                                                         std::to_string(members.size()) + ")");
                            member = QString::fromStdString(members[static_cast<std::size_t>(a.index) - 1]);
                        }
                        if (member.isEmpty() && a.kind == action_kind::step_down) {
                            auto p = deployment->primary();
                            if (!p) throw std::runtime_error("the deployment has no primary");
                            member = QString::fromStdString(*p);
                        }
                        const std::string m = member.toStdString();
                        switch (a.kind) {
                            case action_kind::step_down: deployment->step_down(m); break;
                            case action_kind::kill: deployment->kill(m); break;
                            case action_kind::restart: deployment->restart(m); break;
                            case action_kind::partition: deployment->partition(m); break;
                            case action_kind::heal: deployment->heal(m); break;
                            case action_kind::latency:
                                deployment->set_latency(m, std::chrono::milliseconds(a.latency_ms));
                                break;
                        }
                        action named = a;
                        named.member = member;
                        push(action_event(describe(named), member, false, {}));
                    } catch (const std::exception& e) {
                        push(action_event(describe(a), member, true, QString::fromUtf8(e.what())));
                    }
                } else {
                    push(action_event(describe(a), a.member, true, QStringLiteral("not a simulated deployment")));
                }
                lock.lock();
                continue;
            }
            if (std::chrono::steady_clock::now() >= next_poll) {
                next_poll = std::chrono::steady_clock::now() + 500ms;
                const auto streaming = awaited_;
                lock.unlock();
                if (!streaming.empty()) {
                    const auto topo = client->topology();
                    for (const auto& s : topo->servers) {
                        if (!streaming.contains(s.address) || !s.round_trip_time) continue;
                        // A new value only: the RTT monitor measures once per heartbeat interval.
                        auto& last = last_polled[s.address];
                        if (last == *s.round_trip_time) continue;
                        last = *s.round_trip_time;
                        mon_event ev;
                        ev.t_ms = steady_now_ms();
                        ev.utc = QDateTime::currentDateTimeUtc();
                        ev.family = event_family::rtt;
                        ev.type = QStringLiteral("RttSample");
                        ev.address = QString::fromStdString(s.address);
                        ev.duration_ms = static_cast<double>(s.round_trip_time->count()) / 1000.0;
                        push(std::move(ev));
                    }
                }
                lock.lock();
                continue;
            }
            wake_.wait_until(lock, next_poll);
        }
        lock.unlock();
    } catch (const std::exception& e) {
        Q_EMIT failed(QString::fromUtf8(e.what()));
    }
    for (auto& w : workers) w.request_stop();
    workers.clear();  // joins
    client.reset();
    if (deployment) deployment->stop();
}

}  // namespace trellis::monitor
