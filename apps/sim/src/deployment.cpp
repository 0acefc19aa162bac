#include <algorithm>
#include <future>
#include <mutex>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <openssl/crypto.h>

#include "auth_glue.hpp"
#include "session.hpp"
#include "trellis/errors.hpp"
#include "wire/frame_decoder.hpp"

namespace trellis::sim {

using asio::use_awaitable;

// ---------------------------------------------------------------- small pieces

std::string now_log_prefix() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::ostringstream os;
    os << std::put_time(&tm, "%H:%M:%S") << '.' << std::setw(3) << std::setfill('0') << ms;
    return os.str();
}

namespace {
std::mutex log_mutex;
std::deque<std::string> log_ring;
}  // namespace

std::string json_log_line(char severity, const std::string& msg) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::ostringstream os;
    os << R"({"t":{"$date":")" << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << '.' << std::setw(3) << std::setfill('0') << ms
       << R"(+00:00"},"s":")" << severity << R"(","c":"CONTROL","id":0,"ctx":"trellis-sim","msg":")";
    for (char ch : msg) {
        if (ch == '"' || ch == '\\') os << '\\' << ch;
        else if (static_cast<unsigned char>(ch) < 0x20) os << ' ';
        else os << ch;
    }
    os << R"("})";
    return os.str();
}

void log_line(const std::string& line) {
    const std::string text = now_log_prefix() + " trellis-sim: " + line + "\n";
    std::cerr << text;
    const std::lock_guard lock(log_mutex);
    log_ring.push_back(json_log_line('I', line));
    if (log_ring.size() > 1024) log_ring.pop_front();
}

std::vector<std::string> recent_log_lines() {
    const std::lock_guard lock(log_mutex);
    return {log_ring.begin(), log_ring.end()};
}

const char* role_name(role r) {
    switch (r) {
        case role::standalone: return "standalone";
        case role::primary: return "primary";
        case role::secondary: return "secondary";
        case role::arbiter: return "arbiter";
        case role::master: return "master";
        case role::slave: return "slave";
        case role::mongos: return "mongos";
    }
    return "?";
}

asio::awaitable<bool> signal::wait_until(steady::time_point deadline) {
    asio::steady_timer timer(io_, deadline);
    auto it = waiters_.insert(waiters_.end(), &timer);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    waiters_.erase(it);
    co_return ec == asio::error::operation_aborted;
}

void signal::notify() {
    for (auto* t : waiters_) t->cancel();
}

member::member(deployment::impl& d, int i, role r, member_config mc)
    : dep(d), index(i), current(r), config(std::move(mc)), host(d.cfg.host), changed(d.io), fsync_unlocked(d.io),
      rng(d.rng()) {
    if (config.hidden) config.priority = 0;
    if (config.arbiter) current = role::arbiter;
    data.set_max_document_size(static_cast<std::size_t>(d.cfg.max_bson_object_size));
}

void member::bump_topology_version() {
    ++tv_counter;
    changed.notify();
}

void member::close_all_sessions() {
    auto copy = sessions;
    for (const auto& s : copy) s->close();
}

// ---------------------------------------------------------------- construction

deployment::impl::impl(sim_config c) : cfg(std::move(c)), data_changed(io) {
    // The cluster time starts at the start time, as a new set's first optime would.
    ts_seconds = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    for (const auto& list : {cfg.members, cfg.routers})
        for (const auto& m : list)
            if (m.max_write_batch_size && *m.max_write_batch_size < 1)
                throw configuration_error("trellis-sim: a member's max_write_batch_size must be at least 1, got " +
                                          std::to_string(*m.max_write_batch_size));
    if (cfg.max_write_batch_size < 1)
        throw configuration_error("trellis-sim: max_write_batch_size must be at least 1, got " +
                                  std::to_string(cfg.max_write_batch_size));
    if (cfg.max_bson_object_size < 1024)
        throw configuration_error("trellis-sim: max_bson_object_size must be at least 1024, got " +
                                  std::to_string(cfg.max_bson_object_size));
    if (static_cast<std::int64_t>(cfg.max_message_size_bytes) < std::int64_t{cfg.max_bson_object_size} + 16 * 1024)
        throw configuration_error("trellis-sim: max_message_size_bytes must be at least max_bson_object_size + 16384 (" +
                                  std::to_string(std::int64_t{cfg.max_bson_object_size} + 16 * 1024) + "), got " +
                                  std::to_string(cfg.max_message_size_bytes));
    compressors = std::make_shared<wire::compressor_registry>(wire::compressor_registry::with_builtins());
    for (const auto& name : cfg.compressors) {
        auto c = make_compressor(name);
        if (!c)
            throw configuration_error("trellis-sim: unknown compressor \"" + name + "\" (it has " +
                                      known_compressors + ")");
        if (compressors->find(c->name())) throw configuration_error("trellis-sim: compressor \"" + name + "\" is listed twice");
        compressors->add(c);
        counted.push_back(std::move(c));
    }
    if (cfg.load_balancer && cfg.topology != topology_kind::sharded)
        throw configuration_error("trellis-sim: a load balancer stands in front of mongos routers: it needs the sharded "
                                  "topology");
    if (cfg.load_balancer && cfg.mongos < 1)
        throw configuration_error("trellis-sim: a load balancer needs at least one router (mongos)");
    auto member_cfg = [&](int i) {
        member_config mc = i < static_cast<int>(cfg.members.size()) ? cfg.members[static_cast<std::size_t>(i)] : member_config{};
        if (mc.lag.count() == 0) mc.lag = cfg.lag;
        return mc;
    };
    int index = 0;
    auto add = [&](role r, member_config mc) {
        members.push_back(std::make_unique<member>(*this, index++, r, std::move(mc)));
        members.back()->latency = cfg.latency;
    };
    switch (cfg.topology) {
        case topology_kind::standalone: add(role::standalone, member_cfg(0)); break;
        case topology_kind::replica_set:
            for (int i = 0; i < cfg.nodes; ++i) add(role::secondary, member_cfg(i));
            if (cfg.arbiter) {
                member_config mc = member_cfg(cfg.nodes);
                mc.arbiter = true;
                add(role::arbiter, mc);
            }
            break;
        case topology_kind::master_slave:
            add(role::master, member_cfg(0));
            for (int i = 1; i < std::max(cfg.nodes, 2); ++i) add(role::slave, member_cfg(i));
            break;
        case topology_kind::sharded:
            for (int i = 0; i < cfg.mongos; ++i) {
                member_config router;
                if (i < static_cast<int>(cfg.routers.size()))
                    router.max_write_batch_size = cfg.routers[static_cast<std::size_t>(i)].max_write_batch_size;
                add(role::mongos, router);
            }
            if (cfg.shard_is_replica_set) {
                for (int i = 0; i < cfg.nodes; ++i) add(role::secondary, member_cfg(i));
            } else {
                add(role::standalone, member_cfg(0));
            }
            break;
    }
}

std::vector<member*> deployment::impl::data_members() {
    std::vector<member*> out;
    for (auto& m : members)
        if (m->data_bearing() && !m->removed) out.push_back(m.get());
    return out;
}

member* deployment::impl::find_member(const std::string& address) {
    for (auto& m : members)
        if (m->address() == address && !m->removed) return m.get();
    return nullptr;
}

std::size_t deployment::impl::voters() const {
    std::size_t n = 0;
    for (const auto& m : members)
        if (m->voting() && m->current != role::mongos) ++n;
    return n;
}

optime deployment::impl::next_optime() {
    const auto secs = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    if (secs > ts_seconds) {
        ts_seconds = secs;
        ts_increment = 1;
    } else {
        ++ts_increment;
    }
    return {bson::timestamp{ts_seconds, ts_increment}, is_replica_set() ? term : -1};
}

// ---------------------------------------------------------------- listening

namespace {
asio::awaitable<void> accept_loop(member& m, tcp::acceptor& acceptor) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;  // closed
        if (!m.up || m.partitioned == partition_mode::refuse || m.removed) {
            socket.close(ec);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        std::shared_ptr<session> s;
        if (m.dep.tls) s = std::make_shared<session>(m, session::tls_stream(std::move(socket), *m.dep.tls));
        else s = std::make_shared<session>(m, std::move(socket));
        m.sessions.insert(s);
        s->start();
    }
}
}  // namespace

// The load balancer: each connection goes to the next router that is up, and becomes a session
// of that router (it sees the client's own address: the proxy protocol is not simulated).
member* deployment::impl::next_router() {
    std::vector<member*> routers;
    for (auto& m : members)
        if (m->current == role::mongos) routers.push_back(m.get());
    for (std::size_t i = 0; i < routers.size(); ++i) {
        member* r = routers[(lb_next + i) % routers.size()];
        if (r->up && !r->partitioned && !r->removed) {
            lb_next = (lb_next + i + 1) % routers.size();
            return r;
        }
    }
    return nullptr;
}

namespace {
asio::awaitable<void> lb_accept_loop(deployment::impl& d) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await d.lb->async_accept(asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;  // closed
        member* router = d.next_router();
        if (!router) {
            log_line("load balancer " + d.lb_addr + ": no router is up; connection closed");
            socket.close(ec);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        std::shared_ptr<session> s;
        if (d.tls) s = std::make_shared<session>(*router, session::tls_stream(std::move(socket), *d.tls));
        else s = std::make_shared<session>(*router, std::move(socket));
        s->via_load_balancer = true;
        ++router->lb_connections;
        router->sessions.insert(s);
        s->start();
    }
}
}  // namespace

void deployment::impl::start_load_balancer(std::uint16_t port) {
    tcp::endpoint ep(asio::ip::make_address(cfg.host), port);
    tcp::acceptor acceptor(io);
    acceptor.open(ep.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    boost::system::error_code ec;
    acceptor.bind(ep, ec);
    if (ec)
        throw trellis::error(errc::connection_failure, "trellis-sim: cannot listen on " + cfg.host + ":" +
                                                           std::to_string(port) + " (load balancer): " + ec.message());
    acceptor.listen();
    lb_addr = cfg.host + ":" + std::to_string(acceptor.local_endpoint().port());
    lb.emplace(std::move(acceptor));
    asio::co_spawn(io, lb_accept_loop(*this), asio::detached);
}

void deployment::impl::start_listening(member& m) {
    if (m.acceptor) return;
    tcp::endpoint ep(asio::ip::make_address(cfg.host), m.port);
    tcp::acceptor acceptor(io);
    acceptor.open(ep.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    boost::system::error_code ec;
    acceptor.bind(ep, ec);
    if (ec) throw trellis::error(errc::connection_failure, "trellis-sim: cannot listen on " + cfg.host + ":" +
                                                               std::to_string(m.port) + ": " + ec.message());
    acceptor.listen();
    m.port = acceptor.local_endpoint().port();
    m.acceptor.emplace(std::move(acceptor));
    asio::co_spawn(io, accept_loop(m, *m.acceptor), asio::detached);
}

void deployment::impl::stop_listening(member& m) {
    if (m.acceptor) {
        boost::system::error_code ec;
        m.acceptor->close(ec);
        m.acceptor.reset();
    }
    m.close_all_sessions();
}

// ---------------------------------------------------------------- elections

void deployment::impl::become_secondary(member& m) {
    if (m.current == role::primary) {
        m.current = role::secondary;
        if (primary == &m) primary = nullptr;
        m.bump_topology_version();
    }
}

void deployment::impl::schedule_election(std::chrono::milliseconds delay) {
    if (!is_replica_set() || !running) return;
    election_timer.emplace(io, delay);
    election_timer->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) run_election();
    });
}

void deployment::impl::run_election() {
    if (primary && primary->reachable() && primary->current == role::primary) return;
    std::size_t reachable_voters = 0;
    for (auto& m : members)
        if (m->voting() && m->current != role::mongos && m->reachable()) ++reachable_voters;
    const auto now = steady::now();
    member* best = nullptr;
    steady::time_point next_eligible = steady::time_point::max();
    for (member* m : data_members()) {
        if (!m->reachable() || !m->electable()) continue;
        if (m->stepdown_until > now) {
            next_eligible = std::min(next_eligible, m->stepdown_until);
            continue;
        }
        if (!best || std::make_tuple(m->applied(), m->config.priority) > std::make_tuple(best->applied(), best->config.priority))
            best = m;
    }
    // A primary that lost its majority (partitioned) steps down, as a real one does.
    if (primary && (!primary->reachable() || reachable_voters < majority())) become_secondary(*primary);
    if (reachable_voters < majority() || best == nullptr) {
        if (next_eligible != steady::time_point::max())
            schedule_election(std::chrono::duration_cast<std::chrono::milliseconds>(next_eligible - now) +
                              std::chrono::milliseconds(1));
        log_line("no primary: " + std::to_string(reachable_voters) + " of " + std::to_string(voters()) +
                 " voters reachable" + (best ? "" : ", no electable member"));
        data_changed.notify();
        return;
    }
    // A voter grants its vote only to a candidate at least as up to date as itself (an arbiter
    // has no data and always does): a stale member cannot win while a fresher one waits out
    // its step-down period, so no majority-acknowledged write is rolled back.
    std::size_t votes = 0;
    for (auto& m : members)
        if (m->voting() && m->current != role::mongos && m->reachable() &&
            (m->current == role::arbiter || m->applied() <= best->applied()))
            ++votes;
    if (votes < majority()) {
        if (next_eligible != steady::time_point::max())
            schedule_election(std::chrono::duration_cast<std::chrono::milliseconds>(next_eligible - now) +
                              std::chrono::milliseconds(1));
        log_line("no primary: " + best->address() + " has " + std::to_string(votes) + " of " +
                 std::to_string(majority()) + " votes needed (a voter is more up to date)");
        data_changed.notify();
        return;
    }
    ++term;
    // electionId as servers since 4.x: 0x7fffffff, then the term, big-endian.
    std::array<std::uint8_t, 12> id{0x7f, 0xff, 0xff, 0xff};
    for (int i = 0; i < 8; ++i) id[static_cast<std::size_t>(11 - i)] = static_cast<std::uint8_t>(term >> (8 * i));
    election_id = bson::oid(id);
    for (member* m : data_members())
        if (m != best) become_secondary(*m);
    best->current = role::primary;
    primary = best;
    election_date = std::chrono::system_clock::now();
    election_reason = "electionTimeout";
    for (auto& m : members) m->bump_topology_version();
    log_line(best->address() + " is primary (term " + std::to_string(term) + ")");
    data_changed.notify();
}

// ---------------------------------------------------------------- replication

member* deployment::impl::sync_source(const member& m) {
    if (m.current == role::slave) {
        for (auto& x : members)
            if (x->current == role::master && x->reachable()) return x.get();
        return nullptr;
    }
    if (primary && primary != &m && primary->reachable() && m.reachable()) return primary;
    return nullptr;
}

asio::awaitable<void> deployment::impl::replicate(member& m) {
    while (running && !m.removed) {
        member* src = m.current == role::arbiter ? nullptr : sync_source(m);
        if (!src || m.current == role::primary || m.current == role::master) {
            co_await data_changed.wait_until(steady::now() + std::chrono::milliseconds(200));
            continue;
        }
        // Where are we in the source's log? A record of ours it does not have means we
        // diverged (a write we took as primary that never replicated): roll back by resync.
        std::size_t next = 0;
        if (!m.log.empty()) {
            const optime last = m.log.back().op;
            auto it = std::lower_bound(src->log.begin(), src->log.end(), last,
                                       [](const oplog_record& r, const optime& o) { return r.op < o; });
            if (it == src->log.end() || it->op != last) {
                log_line(m.address() + ": rolling back to " + src->address() + "'s history (" +
                         std::to_string(m.log.size()) + " records, source has " + std::to_string(src->log.size()) + ")");
                m.data = src->data.clone();
                m.log = src->log;
                m.retries = src->retries;
                m.cursors.clear();
                m.snapshots.clear();
                data_changed.notify();
                continue;
            }
            next = static_cast<std::size_t>(it - src->log.begin()) + 1;
        }
        if (next >= src->log.size()) {
            co_await data_changed.wait_until(steady::now() + std::chrono::milliseconds(500));
            continue;
        }
        const oplog_record& rec = src->log[next];
        const auto due = rec.written + m.config.lag;
        if (steady::now() < due) {
            co_await data_changed.wait_until(due);
            continue;
        }
        for (const auto& entry : rec.entries) {
            m.data.apply(entry);
            if (auto op = entry.view().find("op"); op && op->type() == bson::type::string && op->get_string() != "n") {
                const auto o = op->get_string();
                ++m.opcounters_repl[o == "i" ? "insert" : o == "u" ? "update" : o == "d" ? "delete" : "command"];
            }
        }
        if (rec.retry) remember_retry(m.retries, rec.retry->first, rec.retry->second);
        m.log.push_back(rec);
        data_changed.notify();
    }
}

std::string doc_key(std::string_view ns, const bson::element& id) {
    std::string k(ns);
    k.push_back('\0');
    k.push_back(static_cast<char>(id.type()));
    const auto v = id.raw_value();
    k.append(reinterpret_cast<const char*>(v.data()), v.size());
    return k;
}

std::vector<std::string> written_keys(const std::vector<bson::document>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) {
        const auto op = e.view().find("op");
        const auto ns = e.view().find("ns");
        if (!op || op->type() != bson::type::string || !ns || ns->type() != bson::type::string) continue;
        const std::string_view kind = op->get_string();
        // The _id: o's for an insert or a delete, o2's for an update.
        const char* holder = kind == "u" ? "o2" : (kind == "i" || kind == "d") ? "o" : nullptr;
        if (!holder) continue;
        const auto doc = e.view().find(holder);
        if (!doc || doc->type() != bson::type::document) continue;
        if (const auto id = doc->get_document().find("_id")) out.push_back(doc_key(ns->get_string(), *id));
    }
    return out;
}

optime deployment::impl::record_write(member& p, std::vector<bson::document> entries,
                                      std::optional<std::pair<retry_key, bson::document>> retry) {
    oplog_record rec;
    rec.op = next_optime();
    rec.written = steady::now();
    rec.wall = std::chrono::system_clock::now();
    rec.entries = std::move(entries);
    // Write conflicts: the documents written after an open transaction's snapshot (none kept
    // while no transaction is open).
    ++p.write_seq;
    const bool open = std::any_of(p.transactions.begin(), p.transactions.end(), [](const auto& t) {
        return t.second.state == transaction::state_kind::in_progress;
    });
    if (!open) p.doc_writes.clear();
    else
        for (auto& k : written_keys(rec.entries)) p.doc_writes[std::move(k)] = p.write_seq;
    if (retry) remember_retry(p.retries, retry->first, retry->second);
    rec.retry = std::move(retry);
    // A standalone has no oplog (as mongod): it keeps its last record only, for the optime and
    // wall time its replies carry. Kept whole, its memory grew with every write, without end.
    if (cfg.topology == topology_kind::standalone && !p.log.empty()) p.log.clear();
    p.log.push_back(std::move(rec));
    data_changed.notify();
    return p.log.back().op;
}

asio::awaitable<std::optional<bson::document>> deployment::impl::await_write_concern(member& m, optime op,
                                                                                       bson::document_view wc,
                                                                                       const running_op* op_state) {
    std::size_t needed = 1;
    bool majority_wanted = false;
    std::chrono::milliseconds wtimeout{0};
    if (auto w = wc.find("w")) {
        if (w->type() == bson::type::string) majority_wanted = true;  // "majority" (tags are treated alike)
        else if (w->is_number()) needed = static_cast<std::size_t>(std::max<std::int64_t>(w->as_int64(), 0));
    }
    if (auto t = wc.find("wtimeout"); t && t->is_number()) wtimeout = std::chrono::milliseconds(t->as_int64());
    if (auto t = wc.find("wtimeoutMS"); t && t->is_number()) wtimeout = std::chrono::milliseconds(t->as_int64());
    const bool replicated = is_replica_set() || cfg.topology == topology_kind::master_slave;
    if (!replicated) co_return std::nullopt;
    if (majority_wanted) needed = majority();
    if (needed <= 1) co_return std::nullopt;
    const auto deadline = wtimeout.count() > 0 ? steady::now() + wtimeout : steady::time_point::max();
    for (;;) {
        std::size_t acked = 0;
        // A member that has applied nothing yet is at optime zero: a write that replicated
        // nothing (dropping a database that does not exist) is acknowledged by it.
        for (member* x : data_members())
            if (x->up && (x->log.empty() ? optime{} : x->log.back().op) >= op) ++acked;
        if (acked >= needed) co_return std::nullopt;
        if (m.current != role::primary && m.current != role::master) {
            bson::builder b;
            b.append("code", 11602).append("codeName", "InterruptedDueToReplStateChange")
                .append("errmsg", "operation was interrupted because of a replica set state change");
            co_return b.extract();
        }
        if (steady::now() >= deadline) {
            bson::builder b;
            b.append("code", 64).append("codeName", "WriteConcernFailed").append("errmsg", "waiting for replication timed out");
            b.open_document("errInfo").append("wtimeout", true).append("writeConcern", bson::document(wc)).close_document();
            co_return b.extract();
        }
        if (op_state && op_state->killed) {
            bson::builder b;
            b.append("code", 11601).append("codeName", "Interrupted").append("errmsg", "operation was interrupted");
            co_return b.extract();
        }
        if (!running) {
            bson::builder b;
            b.append("code", 11600).append("codeName", "InterruptedAtShutdown")
                .append("errmsg", "interrupted at shutdown");
            co_return b.extract();
        }
        co_await data_changed.wait_until(std::min(deadline, steady::now() + std::chrono::seconds(1)));
    }
}

asio::awaitable<void> deployment::impl::pause(steady::duration d) {
    const auto deadline = steady::now() + d;
    // data_changed is notified by stop() (and by every write; the loop waits again then).
    while (running && steady::now() < deadline) co_await data_changed.wait_until(deadline);
}

// ---------------------------------------------------------------- control

bson::document deployment::impl::status_document() const {
    bson::builder b;
    b.open_array("members");
    for (const auto& m : members) {
        if (m->removed) continue;
        b.open_document()
            .append("host", m->address())
            .append("role", role_name(m->current))
            .append("state", !m->up ? "down" : m->partitioned ? "partitioned" : "up")
            .append("priority", m->config.priority)
            .append("hidden", m->config.hidden)
            .append("lagMs", static_cast<std::int64_t>(m->config.lag.count()))
            .append("latencyMs", static_cast<std::int64_t>(m->latency.count()))
            .append("oplogSize", static_cast<std::int64_t>(m->log.size()))
            .append("connections", static_cast<std::int64_t>(m->sessions.size()));
        b.open_document("opcounters");
        for (const char* k : {"insert", "query", "update", "delete", "getmore", "command"}) b.append(k, m->opcounters[k]);
        b.close_document();
        if (lb && m->current == role::mongos)
            b.append("serviceId", m->service_id).append("lbConnections", m->lb_connections);
        b.close_document();
    }
    b.close_array();
    if (primary) b.append("primary", primary->address());
    else b.append("primary", bson::null);
    b.append("setVersion", set_version).append("term", term).append("ok", 1.0);
    return b.extract();
}

namespace {
bson::document control_error(int code, const std::string& code_name, const std::string& msg) {
    bson::builder b;
    b.append("ok", 0.0).append("errmsg", msg).append("code", code).append("codeName", code_name);
    return b.extract();
}
bson::document ok_reply() {
    bson::builder b;
    b.append("ok", 1.0);
    return b.extract();
}
}  // namespace

bson::document deployment::impl::control_command(bson::document_view cmd) {
    if (cmd.empty()) return control_error(59, "CommandNotFound", "empty command");
    const bson::element first = *cmd.begin();
    const std::string name(first.key());
    auto target = [&]() -> member& {
        if (first.type() != bson::type::string)
            throw command_error(2, "BadValue", name + " takes a \"host:port\" string");
        member* m = find_member(std::string(first.get_string()));
        if (!m) throw command_error(2, "BadValue", "no member " + std::string(first.get_string()));
        return *m;
    };
    try {
        if (name == "hello" || name == "isMaster" || name == "ismaster") {
            bson::builder b;
            b.append(name == "hello" ? "isWritablePrimary" : "ismaster", true)
                .append("maxBsonObjectSize", 16 * 1024 * 1024)
                .append("maxMessageSizeBytes", 48000000)
                .append("maxWriteBatchSize", 100000)
                .append("localTime", bson::date_time(std::chrono::system_clock::now()))
                .append("minWireVersion", 0)
                .append("maxWireVersion", cfg.max_wire_version)
                .append("msg", "trellis-sim control")
                .append("ok", 1.0);
            return b.extract();
        }
        if (name == "ping" || name == "buildInfo" || name == "buildinfo" || name == "endSessions") return ok_reply();
        if (name == "simStatus") return status_document();
        if (name == "simKill") {
            member& m = target();
            m.up = false;
            stop_listening(m);
            log_line(m.address() + " killed");
            if (primary == &m) schedule_election(cfg.election_delay);
            for (auto& x : members) x->bump_topology_version();
            return ok_reply();
        }
        if (name == "simRestart") {
            member& m = target();
            if (m.up) return ok_reply();
            m.up = true;
            m.process_id = bson::oid::generate();
            m.service_id = bson::oid::generate();  // a new process behind the load balancer
            m.tv_counter = 0;
            if (m.current == role::primary) m.current = role::secondary;
            if (primary == &m) primary = nullptr;
            m.cursors.clear();
            if (!m.partitioned || *m.partitioned != partition_mode::refuse) start_listening(m);
            log_line(m.address() + " restarted");
            schedule_election(cfg.election_delay);
            data_changed.notify();
            return ok_reply();
        }
        if (name == "simStepDown") {
            member& m = target();
            std::int64_t secs = 10;
            if (auto s = cmd.find("secs"); s && s->is_number()) secs = s->as_int64();
            if (m.current != role::primary) return control_error(10107, "NotWritablePrimary", m.address() + " is not primary");
            m.stepdown_until = steady::now() + std::chrono::seconds(secs);
            become_secondary(m);
            for (auto& x : members) x->bump_topology_version();
            log_line(m.address() + " stepped down");
            schedule_election(cfg.election_delay);
            return ok_reply();
        }
        if (name == "simPartition") {
            member& m = target();
            partition_mode mode = partition_mode::refuse;
            if (auto s = cmd.find("mode"); s && s->type() == bson::type::string) {
                const auto v = s->get_string();
                if (v == "hang") mode = partition_mode::hang;
                else if (v == "drop") mode = partition_mode::drop_replies;
                else if (v != "refuse") return control_error(2, "BadValue", "mode must be refuse, hang or drop");
            }
            m.partitioned = mode;
            if (mode == partition_mode::refuse) stop_listening(m);
            m.bump_topology_version();
            log_line(m.address() + " partitioned");
            schedule_election(cfg.election_delay);
            return ok_reply();
        }
        if (name == "simHeal") {
            member& m = target();
            const bool was_refusing = m.partitioned == partition_mode::refuse;
            m.partitioned.reset();
            if (was_refusing && m.up) start_listening(m);
            m.bump_topology_version();
            log_line(m.address() + " healed");
            schedule_election(cfg.election_delay);
            data_changed.notify();
            return ok_reply();
        }
        if (name == "simLatency") {
            member& m = target();
            m.latency = std::chrono::milliseconds(cmd.find("ms") ? cmd["ms"].as_int64() : 0);
            m.jitter = std::chrono::milliseconds(cmd.find("jitterMs") ? cmd["jitterMs"].as_int64() : 0);
            return ok_reply();
        }
        if (name == "simAddMember") {
            if (!is_replica_set()) return control_error(76, "NoReplicationEnabled", "not a replica set");
            member_config mc;
            mc.lag = cfg.lag;
            members.push_back(std::make_unique<member>(*this, static_cast<int>(members.size()), role::secondary, mc));
            member& m = *members.back();
            m.latency = cfg.latency;
            start_listening(m);
            asio::co_spawn(io, replicate(m), asio::detached);
            ++set_version;
            for (auto& x : members) x->bump_topology_version();
            bson::builder b;
            b.append("host", m.address()).append("ok", 1.0);
            return b.extract();
        }
        if (name == "simRemoveMember") {
            member& m = target();
            if (!is_replica_set()) return control_error(76, "NoReplicationEnabled", "not a replica set");
            m.removed = true;
            stop_listening(m);
            if (primary == &m) {
                m.current = role::secondary;
                primary = nullptr;
                schedule_election(cfg.election_delay);
            }
            ++set_version;
            for (auto& x : members) x->bump_topology_version();
            return ok_reply();
        }
    } catch (const command_error& e) {
        return control_error(e.code(), e.code_name(), e.message());
    }
    return control_error(59, "CommandNotFound", "no such control command: '" + name + "'");
}

asio::awaitable<void> deployment::impl::serve_control(tcp::socket socket) {
    wire::frame_decoder decoder;
    control_sockets.insert(&socket);
    try {
        for (;;) {
            while (auto msg = decoder.next()) {
                std::vector<std::uint8_t> out;
                if (const auto* m = msg->as_msg()) {
                    const bson::document reply = control_command(bson::document_view::validated(m->body));
                    wire::encode_op_msg(out, wire::next_request_id(), msg->header.request_id, 0, reply.bytes());
                } else if (const auto* q = msg->as_query()) {
                    bson::document_view query = bson::document_view::validated(q->query);
                    if (auto inner = query.find("$query"); inner && inner->type() == bson::type::document)
                        query = inner->get_document();
                    const bson::document reply = control_command(query);
                    wire::op_reply r;
                    r.documents.push_back(reply.bytes());
                    wire::encode_op_reply(out, wire::next_request_id(), msg->header.request_id, r);
                } else {
                    control_sockets.erase(&socket);
                    co_return;
                }
                co_await asio::async_write(socket, asio::buffer(out), use_awaitable);
            }
            auto buffer = decoder.prepare(64 * 1024);
            decoder.commit(co_await socket.async_read_some(asio::buffer(buffer.data(), buffer.size()), use_awaitable));
        }
    } catch (const std::exception&) {
        // Disconnected or garbage: drop the control connection.
    }
    control_sockets.erase(&socket);
}

// ---------------------------------------------------------------- thread plumbing

template <class F>
auto deployment::impl::on_io(F&& f) -> decltype(f()) {
    using R = decltype(f());
    if (!running) return f();
    std::packaged_task<R()> task(std::forward<F>(f));
    auto result = task.get_future();
    asio::post(io, [&task] { task(); });
    return result.get();
}

// ---------------------------------------------------------------- public API

deployment::deployment(sim_config config) : impl_(std::make_unique<impl>(std::move(config))) {}

deployment::~deployment() { stop(); }

void deployment::start() {
    impl& d = *impl_;
    if (d.running) return;
    // OpenSSL initialises itself on first use; done on the deployment's thread, the error state
    // it sets up there outlives the thread (LeakSanitizer reports it). Here, on the caller's.
    OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr);
    d.startup_warnings = {json_log_line('W', "This is trellis-sim, a simulated deployment: data lives in memory only and is lost when it stops")};
    if (!d.auth_enabled())
        d.startup_warnings.push_back(json_log_line('W', "Access control is not enabled for the database. Read and write access to data and configuration is unrestricted"));
    configure_users(d);
    if (d.cfg.tls.enabled()) {
        d.tls.emplace(asio::ssl::context::tls_server);
        SSL_CTX_set_min_proto_version(d.tls->native_handle(), TLS1_2_VERSION);
        if (const std::string& v = d.cfg.tls.max_version; !v.empty()) {
            const int max = v == "1.0" ? TLS1_VERSION : v == "1.1" ? TLS1_1_VERSION : v == "1.2" ? TLS1_2_VERSION
                          : v == "1.3" ? TLS1_3_VERSION : 0;
            if (max == 0) throw configuration_error("tls max_version \"" + v + "\": expected 1.0, 1.1, 1.2 or 1.3");
            if (max < TLS1_2_VERSION) {
                SSL_CTX_set_min_proto_version(d.tls->native_handle(), TLS1_VERSION);
                SSL_CTX_set_security_level(d.tls->native_handle(), 0);
            }
            SSL_CTX_set_max_proto_version(d.tls->native_handle(), max);
        }
        d.tls->use_certificate_chain_file(d.cfg.tls.cert_file.string());
        d.tls->use_private_key_file(d.cfg.tls.key_file.string(), asio::ssl::context::pem);
        if (!d.cfg.tls.ca_file.empty()) {
            d.tls->load_verify_file(d.cfg.tls.ca_file.string());
            d.tls->set_verify_mode(asio::ssl::verify_peer |
                                   (d.cfg.tls.require_client_cert ? asio::ssl::verify_fail_if_no_peer_cert : 0));
        }
    }
    std::uint16_t port = d.cfg.port;
    for (auto& m : d.members) {
        m->port = port;
        d.start_listening(*m);
        if (port != 0) ++port;
    }
    if (d.cfg.load_balancer) {
        d.start_load_balancer(port);
        if (port != 0) ++port;
    }
    {
        tcp::endpoint ep(asio::ip::make_address(d.cfg.host), port);
        tcp::acceptor acceptor(d.io);
        acceptor.open(ep.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        boost::system::error_code ec;
        acceptor.bind(ep, ec);
        if (ec) throw trellis::error(errc::connection_failure, "trellis-sim: cannot listen on the control port: " + ec.message());
        acceptor.listen();
        d.control_addr = d.cfg.host + ":" + std::to_string(acceptor.local_endpoint().port());
        d.control.emplace(std::move(acceptor));
        asio::co_spawn(
            d.io,
            [&d]() -> asio::awaitable<void> {
                for (;;) {
                    boost::system::error_code ec;
                    tcp::socket s = co_await d.control->async_accept(asio::redirect_error(use_awaitable, ec));
                    if (ec) co_return;
                    asio::co_spawn(d.io, d.serve_control(std::move(s)), asio::detached);
                }
            },
            asio::detached);
    }
    d.running = true;
    // Roles at start: the first electable member of a replica set is primary at once
    // (a real set takes seconds; tests and demos want to start working immediately).
    if (d.is_replica_set()) {
        d.run_election();
    } else {
        for (auto& m : d.members)
            if (m->current == role::master || m->current == role::standalone) d.primary = m.get();
    }
    for (auto& m : d.members)
        if (m->current != role::mongos && m->current != role::standalone && m->current != role::master)
            asio::co_spawn(d.io, d.replicate(*m), asio::detached);
    d.work.emplace(d.io.get_executor());
    d.thread = std::thread([&d] {
        for (;;) {
            try {
                d.io.run();
                break;
            } catch (const std::exception& e) {
                log_line(std::string("internal error (continuing): ") + e.what());
            }
        }
    });
}

void deployment::impl::begin_stop() {
    running = false;
    boost::system::error_code ec;
    if (control) control->close(ec);
    if (lb) lb->close(ec);
    for (tcp::socket* s : control_sockets) {
        s->shutdown(tcp::socket::shutdown_both, ec);
        s->close(ec);
    }
    if (election_timer) election_timer->cancel();
    for (auto& m : members) stop_listening(*m);
    data_changed.notify();
    for (auto& m : members) {
        m->changed.notify();
        m->fsync_unlocked.notify();
    }
    work.reset();
}

void deployment::stop() {
    impl& d = *impl_;
    if (!d.running) return;
    // Every connection is closed and every waiter woken, so the io thread runs out of work
    // within a few milliseconds. Should some handler still hold it, stop() does not wait
    // for it: the deployment must be gone within a second whatever clients do.
    std::promise<void> drained;
    auto done = drained.get_future();
    asio::post(d.io, [&d] { d.begin_stop(); });
    std::thread waiter([&] {
        if (d.thread.joinable()) d.thread.join();
        drained.set_value();
    });
    if (done.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) {
        log_line("stop: work still pending after 500 ms; abandoning it");
        d.io.stop();
    }
    waiter.join();
    d.io.stop();
}

// On the io thread, as members(): a member added through the control port changes the list
// (found by TSan: main() printing the URI while simAddMember ran).
std::string deployment::uri() const {
    return impl_->on_io([this] { return uri_on_io(); });
}

std::string deployment::uri_on_io() const {
    const impl& d = *impl_;
    if (!d.lb_addr.empty()) return "mongodb://" + d.lb_addr + "/?loadBalanced=true" + (d.cfg.tls.enabled() ? "&tls=true" : "");
    std::string hosts;
    std::size_t count = 0;
    for (const auto& m : d.members) {
        if (m->removed) continue;
        if (d.cfg.topology == topology_kind::sharded && m->current != role::mongos) continue;
        if (!hosts.empty()) hosts += ',';
        hosts += m->address();
        ++count;
        if (d.cfg.topology == topology_kind::standalone || d.cfg.topology == topology_kind::master_slave) break;
    }
    std::string uri = "mongodb://" + hosts + "/";
    std::vector<std::string> options;
    if (d.cfg.topology == topology_kind::replica_set) options.push_back("replicaSet=" + d.cfg.set_name);
    if (d.cfg.topology == topology_kind::master_slave) options.push_back("directConnection=true");
    if (d.cfg.tls.enabled()) options.push_back("tls=true");
    for (std::size_t i = 0; i < options.size(); ++i) uri += (i == 0 ? "?" : "&") + options[i];
    (void)count;
    return uri;
}

std::string deployment::load_balancer_address() const { return impl_->lb_addr; }

std::string deployment::control_address() const { return impl_->control_addr; }

std::vector<std::string> deployment::members() const {
    return impl_->on_io([this] {
        std::vector<std::string> out;
        for (const auto& m : impl_->members)
            if (!m->removed) out.push_back(m->address());
        return out;
    });
}

std::optional<std::string> deployment::primary() const {
    return impl_->on_io([this]() -> std::optional<std::string> {
        if (impl_->primary && impl_->primary->reachable()) return impl_->primary->address();
        return std::nullopt;
    });
}

namespace {
void check(const bson::document& reply) {
    if (!reply["ok"].as_bool()) throw trellis::error(errc::configuration_error, std::string(reply["errmsg"].get_string()));
}
bson::document one(const char* name, const std::string& host) {
    bson::builder b;
    b.append(name, host);
    return b.extract();
}
}  // namespace

void deployment::kill(const std::string& m) {
    check(impl_->on_io([&] { return impl_->control_command(one("simKill", m)); }));
}
void deployment::restart(const std::string& m) {
    check(impl_->on_io([&] { return impl_->control_command(one("simRestart", m)); }));
}
void deployment::step_down(const std::string& m, std::chrono::seconds no_reelect) {
    bson::builder b;
    b.append("simStepDown", m).append("secs", static_cast<std::int64_t>(no_reelect.count()));
    const bson::document cmd = b.extract();
    check(impl_->on_io([&] { return impl_->control_command(cmd); }));
}
void deployment::partition(const std::string& m, partition_mode mode) {
    bson::builder b;
    b.append("simPartition", m).append("mode", mode == partition_mode::hang ? "hang" : mode == partition_mode::drop_replies ? "drop" : "refuse");
    const bson::document cmd = b.extract();
    check(impl_->on_io([&] { return impl_->control_command(cmd); }));
}
void deployment::heal(const std::string& m) {
    check(impl_->on_io([&] { return impl_->control_command(one("simHeal", m)); }));
}
void deployment::set_latency(const std::string& m, std::chrono::milliseconds fixed, std::chrono::milliseconds jitter) {
    bson::builder b;
    b.append("simLatency", m).append("ms", static_cast<std::int64_t>(fixed.count())).append("jitterMs", static_cast<std::int64_t>(jitter.count()));
    const bson::document cmd = b.extract();
    check(impl_->on_io([&] { return impl_->control_command(cmd); }));
}
std::string deployment::add_member() {
    bson::builder b;
    b.append("simAddMember", 1);
    const bson::document cmd = b.extract();
    const bson::document reply = impl_->on_io([&] { return impl_->control_command(cmd); });
    check(reply);
    return std::string(reply["host"].get_string());
}
void deployment::remove_member(const std::string& m) {
    check(impl_->on_io([&] { return impl_->control_command(one("simRemoveMember", m)); }));
}
bson::document deployment::status() const {
    return impl_->on_io([this] { return impl_->status_document(); });
}

std::optional<std::string> deployment::wait_for_primary(std::chrono::milliseconds timeout) const {
    const auto deadline = steady::now() + timeout;
    for (;;) {
        if (auto p = primary()) return p;
        if (steady::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

}  // namespace trellis::sim
