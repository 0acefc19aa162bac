// trellis-sim: run a simulated MongoDB deployment, or control a running one.
#include <malloc.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <toml++/toml.h>

#include "session.hpp"
#include "trellis/bson/json.hpp"
#include "wire/frame_decoder.hpp"

using namespace trellis;
using namespace trellis::sim;

namespace {

constexpr const char* usage_text =
    "usage: trellis-sim [OPTIONS]\n"
    "       trellis-sim ctl --control HOST:PORT COMMAND [ARGS]\n"
    "\n"
    "Runs a simulated MongoDB deployment on 127.0.0.1, each member on its own port.\n"
    "  --topology standalone|replset|master-slave|sharded   (default standalone)\n"
    "  --nodes N                 replica set members, master+slaves, or shard members (default 3)\n"
    "  --arbiter                 add an arbiter to the replica set\n"
    "  --set-name NAME           replica set name (default rs0)\n"
    "  --mongos N                sharded: number of routers (default 2)\n"
    "  --shard-replset           sharded: the shard is a replica set (default: a standalone)\n"
    "  --load-balancer           sharded: a load balancer in front of the routers (its own port;\n"
    "                            the printed URI is then mongodb://LB/?loadBalanced=true)\n"
    "  --election-delay-ms N     time to elect a new primary (default 200)\n"
    "  --lag-ms N                replication delay of every secondary/slave (default 0)\n"
    "  --latency-ms N            delay added to every reply (default 0)\n"
    "  --cursor-timeout-ms N     idle cursors are killed after this (default 600000)\n"
    "  --max-wire-version N      (default 21)\n"
    "  --max-write-batch-size N  hello's maxWriteBatchSize, enforced (default 100000)\n"
    "  --max-bson-object-size N  hello's maxBsonObjectSize, enforced on inserts (default 16777216)\n"
    "  --max-message-size-bytes N  hello's maxMessageSizeBytes, enforced (default 48000000)\n"
    "  --user NAME:PASSWORD[@DB] a user (repeatable); with users, commands need authentication\n"
    "  --tls-cert FILE --tls-key FILE [--tls-ca FILE] [--tls-require-client-cert]\n"
    "  --tls-max-version V       newest TLS version offered: 1.0, 1.1, 1.2 or 1.3 (default: newest)\n"
    "  --compressors LIST        what hello may negotiate, e.g. zstd,zlib (default snappy,zlib,zstd;\n"
    "                            \"\" for none)\n"
    "  --port P                  first port (0, the default: the OS picks every port)\n"
    "  --config FILE             TOML file with the same settings (flags win)\n"
    "  --ready-file FILE         write {\"uri\", \"control\", \"members\"} (and \"loadBalancer\") as JSON\n"
    "                            when listening\n"
    "  --verbose                 log every command\n"
    "Prints 'ready <uri> control=<host:port>' when listening; stops on SIGINT or SIGTERM.\n"
    "\n"
    "ctl commands: status | kill H | restart H | stepdown H [SECS] | partition H [refuse|hang|drop]\n"
    "              | heal H | latency H MS [JITTER_MS] | add-member | remove-member H\n";

struct usage_error {
    std::string message;
};

int to_int(const std::string& flag, const std::string& v) {
    try {
        std::size_t used = 0;
        const int n = std::stoi(v, &used);
        if (used != v.size() || n < 0) throw std::invalid_argument("");
        return n;
    } catch (const std::exception&) {
        throw usage_error{flag + " needs a non-negative integer, got \"" + v + "\""};
    }
}

user_config parse_user(const std::string& spec, const std::string& where) {
    const auto colon = spec.find(':');
    if (colon == std::string::npos || colon == 0)
        throw usage_error{where + ": user must be NAME:PASSWORD[@DB], got \"" + spec + "\""};
    user_config u;
    u.name = spec.substr(0, colon);
    std::string rest = spec.substr(colon + 1);
    if (const auto at = rest.rfind('@'); at != std::string::npos) {
        u.db = rest.substr(at + 1);
        rest = rest.substr(0, at);
    }
    u.password = rest;
    return u;
}

topology_kind parse_topology(const std::string& v, const std::string& where) {
    if (v == "standalone") return topology_kind::standalone;
    if (v == "replset" || v == "replica_set" || v == "replicaset") return topology_kind::replica_set;
    if (v == "master-slave" || v == "master_slave") return topology_kind::master_slave;
    if (v == "sharded") return topology_kind::sharded;
    throw usage_error{where + ": topology must be standalone, replset, master-slave or sharded, got \"" + v + "\""};
}

// The TOML file: the same settings as the flags, key for key (dashes or underscores).
void apply_toml(const std::string& path, sim_config& cfg) {
    toml::table t;
    try {
        t = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        const auto& b = e.source().begin;
        throw usage_error{path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " + std::string(e.description())};
    }
    auto where = [&](const toml::node& n, const std::string& key) {
        const auto& b = n.source().begin;
        return path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " + key;
    };
    auto integer = [&](const toml::node& n, const std::string& key) {
        auto v = n.value<std::int64_t>();
        if (!v || *v < 0) throw usage_error{where(n, key) + " must be a non-negative integer"};
        return *v;
    };
    for (const auto& [k, node] : t) {
        std::string key(k.str());
        std::replace(key.begin(), key.end(), '-', '_');
        if (key == "topology") cfg.topology = parse_topology(node.value_or(std::string()), where(node, key));
        else if (key == "nodes") cfg.nodes = static_cast<int>(integer(node, key));
        else if (key == "arbiter") cfg.arbiter = node.value_or(false);
        else if (key == "set_name") cfg.set_name = node.value_or(std::string("rs0"));
        else if (key == "mongos") cfg.mongos = static_cast<int>(integer(node, key));
        else if (key == "shard_replset") cfg.shard_is_replica_set = node.value_or(false);
        else if (key == "load_balancer") cfg.load_balancer = node.value_or(false);
        else if (key == "election_delay_ms") cfg.election_delay = std::chrono::milliseconds(integer(node, key));
        else if (key == "lag_ms") cfg.lag = std::chrono::milliseconds(integer(node, key));
        else if (key == "latency_ms") cfg.latency = std::chrono::milliseconds(integer(node, key));
        else if (key == "cursor_timeout_ms") cfg.cursor_timeout = std::chrono::milliseconds(integer(node, key));
        else if (key == "max_wire_version") cfg.max_wire_version = static_cast<int>(integer(node, key));
        else if (key == "max_write_batch_size") cfg.max_write_batch_size = static_cast<std::int32_t>(integer(node, key));
        else if (key == "max_bson_object_size") cfg.max_bson_object_size = static_cast<std::int32_t>(integer(node, key));
        else if (key == "max_message_size_bytes") cfg.max_message_size_bytes = static_cast<std::int32_t>(integer(node, key));
        else if (key == "port") cfg.port = static_cast<std::uint16_t>(integer(node, key));
        else if (key == "verbose") cfg.verbose = node.value_or(false);
        else if (key == "compressors") {
            const toml::array* arr = node.as_array();
            if (!arr) throw usage_error{where(node, key) + " must be an array of names"};
            cfg.compressors.clear();
            for (const auto& c : *arr) {
                auto name = c.value<std::string>();
                if (!name) throw usage_error{where(c, key) + " entries must be strings"};
                cfg.compressors.push_back(*name);
            }
        }
        else if (key == "users") {
            const toml::array* arr = node.as_array();
            if (!arr) throw usage_error{where(node, key) + " must be an array"};
            for (const auto& u : *arr) {
                if (auto s = u.value<std::string>()) cfg.users.push_back(parse_user(*s, where(u, key)));
                else if (const toml::table* ut = u.as_table()) {
                    user_config uc;
                    uc.name = (*ut)["name"].value_or(std::string());
                    uc.password = (*ut)["password"].value_or(std::string());
                    uc.db = (*ut)["db"].value_or(std::string("admin"));
                    if (uc.name.empty()) throw usage_error{where(u, key) + " entry needs a name"};
                    cfg.users.push_back(uc);
                } else {
                    throw usage_error{where(u, key) + " entries are \"name:password[@db]\" or {name, password, db}"};
                }
            }
        } else if (key == "tls") {
            const toml::table* tt = node.as_table();
            if (!tt) throw usage_error{where(node, key) + " must be a table"};
            cfg.tls.cert_file = (*tt)["cert"].value_or(std::string());
            cfg.tls.key_file = (*tt)["key"].value_or(std::string());
            cfg.tls.ca_file = (*tt)["ca"].value_or(std::string());
            cfg.tls.require_client_cert = (*tt)["require_client_cert"].value_or(false);
            cfg.tls.max_version = (*tt)["max_version"].value_or(std::string());
        } else if (key == "members") {
            const toml::array* arr = node.as_array();
            if (!arr) throw usage_error{where(node, key) + " must be an array of tables"};
            for (const auto& mnode : *arr) {
                const toml::table* mt = mnode.as_table();
                if (!mt) throw usage_error{where(mnode, key) + " entries must be tables"};
                member_config mc;
                mc.priority = static_cast<int>((*mt)["priority"].value_or(std::int64_t{1}));
                mc.hidden = (*mt)["hidden"].value_or(false);
                mc.lag = std::chrono::milliseconds((*mt)["lag_ms"].value_or(std::int64_t{0}));
                if (const toml::table* tags = (*mt)["tags"].as_table())
                    for (const auto& [tk, tv] : *tags) mc.tags[std::string(tk.str())] = tv.value_or(std::string());
                cfg.members.push_back(mc);
            }
        } else {
            throw usage_error{where(node, key) + " is not a trellis-sim setting"};
        }
    }
}

struct cli_options {
    sim_config cfg;
    std::string ready_file;
};

cli_options parse_args(int argc, char** argv) {
    cli_options o;
    std::vector<std::string> a(argv + 1, argv + argc);
    // The config file first, so that flags override it.
    for (std::size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == "--config") apply_toml(a[i + 1], o.cfg);
    auto value = [&](std::size_t& i) -> std::string {
        if (i + 1 >= a.size()) throw usage_error{a[i] + " needs a value"};
        return a[++i];
    };
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::string& f = a[i];
        if (f == "--config") ++i;
        else if (f == "--topology") o.cfg.topology = parse_topology(value(i), "--topology");
        else if (f == "--nodes") o.cfg.nodes = to_int(f, value(i));
        else if (f == "--arbiter") o.cfg.arbiter = true;
        else if (f == "--set-name") o.cfg.set_name = value(i);
        else if (f == "--mongos") o.cfg.mongos = to_int(f, value(i));
        else if (f == "--shard-replset") o.cfg.shard_is_replica_set = true;
        else if (f == "--load-balancer") o.cfg.load_balancer = true;
        else if (f == "--election-delay-ms") o.cfg.election_delay = std::chrono::milliseconds(to_int(f, value(i)));
        else if (f == "--lag-ms") o.cfg.lag = std::chrono::milliseconds(to_int(f, value(i)));
        else if (f == "--latency-ms") o.cfg.latency = std::chrono::milliseconds(to_int(f, value(i)));
        else if (f == "--cursor-timeout-ms") o.cfg.cursor_timeout = std::chrono::milliseconds(to_int(f, value(i)));
        else if (f == "--max-wire-version") o.cfg.max_wire_version = to_int(f, value(i));
        else if (f == "--max-write-batch-size") o.cfg.max_write_batch_size = to_int(f, value(i));
        else if (f == "--max-bson-object-size") o.cfg.max_bson_object_size = to_int(f, value(i));
        else if (f == "--max-message-size-bytes") o.cfg.max_message_size_bytes = to_int(f, value(i));
        else if (f == "--user") o.cfg.users.push_back(parse_user(value(i), "--user"));
        else if (f == "--tls-cert") o.cfg.tls.cert_file = value(i);
        else if (f == "--tls-key") o.cfg.tls.key_file = value(i);
        else if (f == "--tls-ca") o.cfg.tls.ca_file = value(i);
        else if (f == "--tls-require-client-cert") o.cfg.tls.require_client_cert = true;
        else if (f == "--tls-max-version") o.cfg.tls.max_version = value(i);
        else if (f == "--port") o.cfg.port = static_cast<std::uint16_t>(to_int(f, value(i)));
        else if (f == "--ready-file") o.ready_file = value(i);
        else if (f == "--verbose") o.cfg.verbose = true;
        else if (f == "--compressors") {
            o.cfg.compressors.clear();
            const std::string list = value(i);
            for (std::size_t at = 0; at < list.size();) {
                const std::size_t comma = std::min(list.find(',', at), list.size());
                o.cfg.compressors.push_back(list.substr(at, comma - at));
                at = comma + 1;
            }
        }
        else throw usage_error{"unknown option \"" + f + "\""};
    }
    if (o.cfg.nodes < 1) throw usage_error{"--nodes must be at least 1"};
    if (o.cfg.load_balancer && o.cfg.topology != topology_kind::sharded)
        throw usage_error{"--load-balancer needs --topology sharded (it stands in front of the routers)"};
    for (std::size_t i = 0; i < o.cfg.compressors.size(); ++i) {
        const std::string& c = o.cfg.compressors[i];
        if (c != "snappy" && c != "zlib" && c != "zstd")
            throw usage_error{"--compressors: unknown compressor \"" + c + "\" (snappy, zlib or zstd)"};
        if (std::find(o.cfg.compressors.begin(), o.cfg.compressors.begin() + static_cast<long>(i), c) !=
            o.cfg.compressors.begin() + static_cast<long>(i))
            throw usage_error{"--compressors: \"" + c + "\" is listed twice"};
    }
    if (o.cfg.tls.cert_file.empty() != o.cfg.tls.key_file.empty()) throw usage_error{"--tls-cert and --tls-key go together"};
    return o;
}

// ---------------------------------------------------------------- ctl

bson::document control_round_trip(const std::string& address, const bson::document& cmd) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) throw usage_error{"--control needs HOST:PORT, got \"" + address + "\""};
    asio::io_context io;
    tcp::socket socket(io);
    tcp::resolver resolver(io);
    asio::connect(socket, resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
    bson::builder b;
    b.concat(cmd).append("$db", "admin");
    const bson::document body = b.extract();
    std::vector<std::uint8_t> out;
    const std::int32_t id = wire::next_request_id();
    wire::encode_op_msg(out, id, 0, 0, body.bytes());
    asio::write(socket, asio::buffer(out));
    wire::frame_decoder decoder;
    for (;;) {
        if (auto msg = decoder.next()) {
            wire::check_response_to(*msg, id);
            if (const auto* m = msg->as_msg()) return bson::document::from_bytes(m->body);
            throw std::runtime_error("unexpected reply type from the control port");
        }
        auto buffer = decoder.prepare(65536);
        decoder.commit(socket.read_some(asio::buffer(buffer.data(), buffer.size())));
    }
}

int ctl(const std::vector<std::string>& a) {
    std::string control;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i] == "--control") {
            if (i + 1 >= a.size()) throw usage_error{"--control needs HOST:PORT"};
            control = a[++i];
        } else {
            rest.push_back(a[i]);
        }
    }
    if (control.empty()) throw usage_error{"ctl needs --control HOST:PORT"};
    if (rest.empty()) throw usage_error{"ctl needs a command"};
    const std::string& c = rest[0];
    auto arg = [&](std::size_t i) -> const std::string& {
        if (rest.size() <= i) throw usage_error{"ctl " + c + " needs more arguments"};
        return rest[i];
    };
    bson::builder b;
    if (c == "status") b.append("simStatus", 1);
    else if (c == "kill") b.append("simKill", arg(1));
    else if (c == "restart") b.append("simRestart", arg(1));
    else if (c == "stepdown") {
        b.append("simStepDown", arg(1));
        if (rest.size() > 2) b.append("secs", to_int("stepdown SECS", rest[2]));
    } else if (c == "partition") {
        b.append("simPartition", arg(1));
        if (rest.size() > 2) b.append("mode", rest[2]);
    } else if (c == "heal") b.append("simHeal", arg(1));
    else if (c == "latency") {
        b.append("simLatency", arg(1)).append("ms", to_int("latency MS", arg(2)));
        if (rest.size() > 3) b.append("jitterMs", to_int("latency JITTER_MS", rest[3]));
    } else if (c == "add-member") b.append("simAddMember", 1);
    else if (c == "remove-member") b.append("simRemoveMember", arg(1));
    else throw usage_error{"unknown ctl command \"" + c + "\""};
    const bson::document reply = control_round_trip(control, b.extract());
    std::cout << bson::to_json(reply) << '\n';
    return reply["ok"].as_bool() ? 0 : 1;
}

// A server keeps the memory it has used, as mongod's allocator does. With glibc's defaults, after
// a run of small writes, every find's 16 MB reply faulted its pages in again (the heap's top went
// back to the kernel in between): the sim spent 6x the CPU per byte served (docs/performance.md,
// find_many). Here blocks up to 32 MB (the most glibc allows) come from the heap, and the heap is
// trimmed only beyond 1 GB free.
void keep_heap() {
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 1 << 30) != 1)
        std::cerr << "trellis-sim: glibc refused the heap settings (mallopt); replies may be slower\n";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::vector<std::string> a(argv + 1, argv + argc);
        for (const auto& s : a)
            if (s == "--help" || s == "-h") {
                std::cout << usage_text;
                return 0;
            }
        if (!a.empty() && a[0] == "ctl") return ctl(std::vector<std::string>(a.begin() + 1, a.end()));
        cli_options o = parse_args(argc, argv);
        o.cfg.argv.assign(argv, argv + argc);

        // Signals are taken by this thread only (sigwait), so block them before any thread starts.
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &signals, nullptr);

        keep_heap();
        deployment d(o.cfg);
        d.start();
        const auto members = d.members();
        std::cout << "ready " << d.uri() << " control=" << d.control_address() << std::endl;
        if (!o.ready_file.empty()) {
            bson::builder b;
            b.append("uri", d.uri()).append("control", d.control_address());
            if (!d.load_balancer_address().empty()) b.append("loadBalancer", d.load_balancer_address());
            b.open_array("members");
            for (const auto& m : members) b.append(m);
            b.close_array();
            const std::string tmp = o.ready_file + ".tmp";
            {
                std::ofstream f(tmp);
                f << bson::to_json(b.extract()) << '\n';
                if (!f) throw std::runtime_error("cannot write " + tmp);
            }
            std::rename(tmp.c_str(), o.ready_file.c_str());  // readers never see a partial file
        }
        int sig = 0;
        sigwait(&signals, &sig);
        log_line(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
        d.stop();
        return 0;
    } catch (const usage_error& e) {
        std::cerr << "trellis-sim: " << e.message << " (see trellis-sim --help)\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "trellis-sim: " << e.what() << '\n';
        return 1;
    }
}
