// Suite unified: the MongoDB unified test format (schema 1.0 to 1.28), the runner.
//
// Each file's tests run against an in-process trellis::sim deployment of a topology their
// runOnRequirements accept (single, then replicaset, then sharded, then a replica set with a
// SCRAM user for "auth": true: the first that satisfies both the file's and the test's
// requirements; trellis-sim reports server version 7.0.0), started once per process and reused by
// every test that needs it; initialData resets the collections a test uses, and the fail points a
// test set are turned off after it on the server they were set on. With --uri (or
// TRELLIS_TEST_URI) the tests run against that deployment instead. load-balanced and
// sharded-replicaset topologies, serverless, CSFLE and serverParameters are not available in the
// simulator: such tests are skipped with the requirement named.
//
// A test file that breaks the format's rules (an unsupported schemaVersion, an entity that
// refers to an undefined one, malformed KMS providers, an unknown API version) fails every
// test before requirements are considered: such a file is wrong wherever it runs.
//
// TRELLIS_SPEC_TIMING=1 prints the time each test's phases took, on stderr.
#include <openssl/crypto.h>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <iostream>
#include <thread>

#include "../runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"
#include "unified.hpp"

namespace trellis::spec {
namespace unified {
namespace {

constexpr int supported_minor = 28;  // schema 1.28

// ---------------------------------------------------------------- targets

struct owned_target {
    std::unique_ptr<sim::deployment> deployment;  // destroyed after the clients in t
    target t;
};

std::map<std::string, std::unique_ptr<owned_target>>& targets() {
    // The sims live until exit. OpenSSL frees a thread's state when the thread ends, unless its
    // own exit handler (OPENSSL_cleanup) already ran: initialised first, that handler runs after
    // this map is destroyed and the sims' threads have ended (else LeakSanitizer reports them).
    [[maybe_unused]] static const int openssl = OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr);
    static std::map<std::string, std::unique_ptr<owned_target>> all;
    return all;
}

std::string test_uri() {
    if (!options().uri.empty()) return options().uri;
    const char* env = std::getenv("TRELLIS_TEST_URI");
    return env && *env ? std::string(env) : std::string();
}

std::string server_version(trellis::client& c) {
    const json::value info = from_bson(c.server_info());
    if (const auto* v = info.as_object().if_contains("version"); v && v->is_string()) return std::string(v->get_string());
    return "0.0.0";
}

std::unique_ptr<trellis::client> internal_client(const std::string& uri) {
    std::string u = uri;
    u += u.find('?') == std::string::npos ? (u.find('/', u.find("://") + 3) == std::string::npos ? "/?" : "?") : "&";
    u += "serverSelectionTimeoutMS=10000";
    return std::make_unique<trellis::client>(u);
}

// The user of the deployments that require authentication ("auth": true in runOnRequirements).
constexpr const char* auth_user = "unified";
constexpr const char* auth_password = "unified-pencil";

// mongodb://user:password@hosts... (the URI's authSource defaults to admin for SCRAM).
std::string with_credentials(const std::string& uri, const std::string& credentials) {
    const auto scheme = uri.find("://");
    if (credentials.empty() || scheme == std::string::npos) return uri;
    return uri.substr(0, scheme + 3) + credentials + uri.substr(scheme + 3);
}

// topology: "single", "replicaset", "sharded", or "replicaset+auth" (a replica set with a user).
// The wire version trellis-sim announces for a server version it can play.
int wire_version_of(std::string_view version) {
    if (version.starts_with("4.2")) return 8;
    if (version.starts_with("4.4")) return 9;
    if (version.starts_with("7.1")) return 22;
    if (version.starts_with("8.0")) return 25;
    if (version.starts_with("8.2")) return 27;
    return 21;  // 7.0
}

// key: topology, then "+auth", then "@version" when not 7.0.0 (candidate::key()).
target& sim_target(const std::string& key) {
    auto& slot = targets()[key];
    if (slot) return slot->t;
    const auto at = key.find('@');
    const std::string base = key.substr(0, at);
    const bool auth = base.ends_with("+auth");
    const std::string topology = auth ? base.substr(0, base.size() - 5) : base;
    auto owned = std::make_unique<owned_target>();
    sim::sim_config cfg;
    if (at != std::string::npos) cfg.max_wire_version = wire_version_of(std::string_view(key).substr(at + 1));
    if (auth) cfg.users.push_back({auth_user, auth_password, "admin"});
    if (topology == "single") {
        cfg.topology = sim::topology_kind::standalone;
        cfg.nodes = 1;
    } else if (topology == "replicaset") {
        cfg.topology = sim::topology_kind::replica_set;
        cfg.nodes = 3;
        cfg.election_delay = std::chrono::milliseconds(50);
    } else {
        cfg.topology = sim::topology_kind::sharded;
        cfg.mongos = 2;
        cfg.nodes = 1;
    }
    owned->deployment = std::make_unique<sim::deployment>(cfg);
    owned->deployment->start();
    if (topology == "replicaset" && !owned->deployment->wait_for_primary(std::chrono::seconds(10)))
        throw std::runtime_error("the simulated replica set elected no primary");
    target& t = owned->t;
    t.name = "trellis-sim " + key;
    t.topology = topology;
    t.auth = auth;
    if (auth) t.credentials = std::string(auth_user) + ":" + auth_password + "@";
    t.uri = with_credentials(owned->deployment->uri(), t.credentials);
    if (topology == "sharded") {
        const auto members = owned->deployment->members();
        for (int i = 0; i < cfg.mongos && i < static_cast<int>(members.size()); ++i) t.mongoses.push_back(members[static_cast<std::size_t>(i)]);
    }
    t.internal = internal_client(topology == "sharded" && !t.mongoses.empty() ? t.uri_for(t.mongoses.front(), false) : t.uri);
    t.version = server_version(*t.internal);
    slot = std::move(owned);
    return slot->t;
}

target& uri_target() {
    auto& slot = targets()["uri"];
    if (slot) return slot->t;
    auto owned = std::make_unique<owned_target>();
    target& t = owned->t;
    t.uri = test_uri();
    t.name = t.uri;
    t.sim = false;
    t.internal = internal_client(t.uri);
    const auto topo = t.internal->wait_for_discovery();
    switch (topo->type) {
        case sdk::topology_type::single: t.topology = "single"; break;
        case sdk::topology_type::replica_set_no_primary:
        case sdk::topology_type::replica_set_with_primary: t.topology = "replicaset"; break;
        case sdk::topology_type::sharded: t.topology = "sharded"; break;
        case sdk::topology_type::load_balanced: t.topology = "load-balanced"; break;
        case sdk::topology_type::unknown: t.topology = "unknown"; break;
    }
    if (t.topology == "sharded")
        for (const auto& s : topo->servers) t.mongoses.push_back(s.address);
    t.version = server_version(*t.internal);
    // Credentials in the URI: the direct connections that disable fail points need them too.
    if (const auto scheme = t.uri.find("://"); scheme != std::string::npos) {
        const auto hosts_end = t.uri.find_first_of("/?", scheme + 3);
        const auto at = t.uri.rfind('@', hosts_end == std::string::npos ? std::string::npos : hosts_end);
        if (at != std::string::npos && at > scheme) t.credentials = t.uri.substr(scheme + 3, at - scheme - 2);
    }
    t.auth = !t.credentials.empty();
    slot = std::move(owned);
    return slot->t;
}

// ---------------------------------------------------------------- runOnRequirements

std::vector<int> version_parts(std::string_view v) {
    std::vector<int> out;
    std::size_t i = 0;
    while (i < v.size()) {
        int n = 0;
        bool digits = false;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
            n = n * 10 + (v[i++] - '0');
            digits = true;
        }
        if (!digits) break;
        out.push_back(n);
        if (i < v.size() && v[i] == '.') ++i;
        else break;
    }
    while (out.size() < 3) out.push_back(0);
    return out;
}

// What a candidate deployment offers, before it is started.
struct candidate {
    std::string topology;
    std::string version;
    bool auth = false;
    bool sim = true;
    target* started = nullptr;  // --uri: the deployment, to ask serverParameters
    std::string key() const { return (auth ? topology + "+auth" : topology) + (version == "7.0.0" ? "" : "@" + version); }
};

struct verdict {
    bool ok = true;
    bool topology_mismatch = false;
    std::string reason;
};

verdict check(const json::object& req, const candidate& c) {
    verdict v;
    auto no = [&](std::string reason, bool topology = false) {
        v.ok = false;
        v.topology_mismatch = topology;
        v.reason = "runOnRequirements: " + std::move(reason);
        return v;
    };
    if (const auto* t = req.if_contains("topologies")) {
        bool found = false;
        std::string names;
        for (const auto& n : array_of(*t, "topologies")) {
            const std::string name = string_of(n, "topology");
            names += (names.empty() ? "" : ", ") + name;
            if (name == c.topology) found = true;
        }
        if (!found) return no("topologies [" + names + "] not available" + (c.sim ? " in trellis-sim" : ""), true);
    }
    if (const auto* m = req.if_contains("minServerVersion")) {
        const std::string want = string_of(*m, "minServerVersion");
        if (version_parts(c.version) < version_parts(want)) return no("minServerVersion " + want + " (server is " + c.version + ")");
    }
    if (const auto* m = req.if_contains("maxServerVersion")) {
        const std::string want = string_of(*m, "maxServerVersion");
        if (version_parts(c.version) > version_parts(want)) return no("maxServerVersion " + want + " (server is " + c.version + ")");
    }
    if (const auto* s = req.if_contains("serverless")) {
        if (string_of(*s, "serverless") == "require") return no("serverless required");
    }
    if (const auto* a = req.if_contains("auth"); a && a->is_bool() && a->get_bool() != c.auth)
        return no(a->get_bool() ? "auth required" : "auth must be off");
    if (req.contains("authMechanism")) return no("authMechanism not checkable");
    // csfle: explicit encryption (client_encryption, libmongocrypt) is here; automatic encryption
    // is not, and entities that need it skip themselves (autoEncryptOpts).
    if (const auto* e = req.if_contains("csfle")) {
        if (e->is_bool() && !e->get_bool()) return no("csfle: false, but client-side encryption is supported");
        if (e->is_object())
            if (const auto* min = e->get_object().if_contains("minLibmongocryptVersion")) {
                const std::string have = trellis::client_encryption::libmongocrypt_version();
                const std::string want = string_of(*min, "minLibmongocryptVersion");
                if (version_parts(have) < version_parts(want))
                    return no("csfle: minLibmongocryptVersion " + want + " (this build has libmongocrypt " + have + ")");
            }
    }
    if (const auto* p = req.if_contains("serverParameters")) {
        if (c.sim || !c.started) return no("serverParameters not available from trellis-sim");
        for (const auto& [name, value] : object_of(*p, "serverParameters")) {
            bson::builder b;
            b.append("getParameter", 1).append(name, 1);
            try {
                const json::value reply = from_bson(c.started->internal->run_command("admin", b.extract()));
                entity_map none;
                match(canonical(value), reply.as_object().if_contains(name), false, none, std::string(name));
            } catch (const std::exception&) {
                return no("serverParameters." + std::string(name));
            }
        }
    }
    for (const auto& [key, value] : req)
        if (key != "topologies" && key != "minServerVersion" && key != "maxServerVersion" && key != "serverless" &&
            key != "auth" && key != "authMechanism" && key != "csfle" && key != "serverParameters")
            return no("unknown requirement " + std::string(key));
    return v;
}

// Any of the requirements (none: satisfied).
verdict any_of(const json::value* reqs, const candidate& c) {
    if (!reqs) return {};
    verdict first_fail;
    bool have = false;
    for (const auto& r : array_of(*reqs, "runOnRequirements")) {
        verdict v = check(object_of(r, "a runOnRequirement"), c);
        if (v.ok) return v;
        // A reason other than the topology says more.
        if (!have || (first_fail.topology_mismatch && !v.topology_mismatch)) {
            first_fail = v;
            have = true;
        }
    }
    if (!have) return {};
    return first_fail;
}

// The target for a test, or the reason to skip it.
target* choose(const json::value* file_reqs, const json::value* test_reqs, std::string& reason) {
    std::vector<candidate> candidates;
    if (!test_uri().empty()) {
        target& t = uri_target();
        candidates.push_back({t.topology, t.version, t.auth, false, &t});
    } else {
        for (const char* topology : {"single", "replicaset", "sharded"}) candidates.push_back({topology, "7.0.0", false, true, nullptr});
        candidates.push_back({"replicaset", "7.0.0", true, true, nullptr});  // for "auth": true
        // Older servers, for the tests of what they refuse (trellis-sim plays their differences),
        // then newer ones, for the tests of what they add (the oldest that qualifies is chosen).
        for (const char* version : {"4.4.0", "4.2.0", "7.1.0"})
            for (const char* topology : {"single", "replicaset", "sharded"}) candidates.push_back({topology, version, false, true, nullptr});
        // 8.0, for its features (client bulkWrite, an update's sort); after 7.0, which the others keep.
        for (const char* topology : {"single", "replicaset", "sharded"}) candidates.push_back({topology, "8.0.0", false, true, nullptr});
        candidates.push_back({"replicaset", "8.0.0", true, true, nullptr});
        for (const char* topology : {"single", "replicaset", "sharded"}) candidates.push_back({topology, "8.2.0", false, true, nullptr});
    }
    // The reason to give: from the candidate that came closest (a test's own requirements over
    // the file's, a version or auth over a topology).
    verdict best;
    int best_score = -1;
    for (const candidate& c : candidates) {
        verdict f = any_of(file_reqs, c);
        verdict t = f.ok ? any_of(test_reqs, c) : f;
        if (t.ok) return c.started ? c.started : &sim_target(c.key());
        const int score = (f.ok ? 2 : 0) + (t.topology_mismatch ? 0 : 1);
        if (score > best_score) {
            best = t;
            best_score = score;
        }
    }
    reason = best.reason;
    return nullptr;
}

// ---------------------------------------------------------------- data

json::array read_collection(target& t, const std::string& db, const std::string& coll) {
    json::object cmd;
    cmd["find"] = coll;
    cmd["filter"] = json::object();
    cmd["sort"] = json::object{{"_id", 1}};
    json::value reply = from_bson(t.internal->get_database(db).run_command(to_bson(cmd), trellis::read_preference{}));
    json::array docs = reply.at("cursor").at("firstBatch").as_array();
    json::value id = reply.at("cursor").at("id");
    while (auto n = number_of(id)) {
        if (n->i == 0) break;
        json::object more;
        more["getMore"] = id;
        more["collection"] = coll;
        reply = from_bson(t.internal->run_command(db, to_bson(more)));
        for (const auto& d : reply.at("cursor").at("nextBatch").as_array()) docs.push_back(d);
        id = reply.at("cursor").at("id");
    }
    return docs;
}

void run_ignoring_missing(target& t, const std::string& db, const json::object& cmd) {
    try {
        t.internal->run_command(db, to_bson(cmd));
    } catch (const operation_failure& e) {
        if (e.server_code() != 26) throw;  // NamespaceNotFound
    }
}

void load_initial_data(target& t, const json::array& data) {
    const json::object majority{{"w", "majority"}};
    for (const auto& item : data) {
        const json::object& cd = object_of(item, "initialData item");
        const std::string coll = string_of(field(cd, "collectionName"), "collectionName");
        const std::string db = string_of(field(cd, "databaseName"), "databaseName");
        run_ignoring_missing(t, db, json::object{{"drop", coll}, {"writeConcern", majority}});
        const json::array& docs = array_of(field(cd, "documents", empty_array()), "documents");
        if (const auto* opts = cd.if_contains("createOptions")) {
            json::object create{{"create", coll}};
            for (const auto& [k, v] : object_of(*opts, "createOptions")) create[k] = v;
            create["writeConcern"] = majority;
            t.internal->run_command(db, to_bson(create));
        } else if (docs.empty()) {
            t.internal->run_command(db, to_bson(json::object{{"create", coll}, {"writeConcern", majority}}));
        }
        if (!docs.empty())
            t.internal->run_command(db, to_bson(json::object{{"insert", coll}, {"documents", docs}, {"writeConcern", majority}}));
    }
}

// A file's tests run on whichever sims their requirements choose (7.0, 8.2, ...), so one sim
// may see a file's tests without the files in between that a single server would also run:
// data a file left behind there is dropped before the next file uses that sim (files are
// independent; the databases are those its entities and initialData name).
void start_file_on_sim(target& t, std::string_view file, const json::object& root) {
    if (!t.sim || t.last_file == file) return;
    t.last_file = std::string(file);
    std::set<std::string> dbs;
    const auto note = [&](const json::value* name) {
        if (name && name->is_string()) dbs.insert(std::string(name->get_string()));
    };
    if (const auto* list = root.if_contains("createEntities"); list && list->is_array())
        for (const auto& e : list->get_array())
            if (e.is_object())
                if (const auto* d = e.as_object().if_contains("database"); d && d->is_object()) note(d->as_object().if_contains("databaseName"));
    if (const auto* data = root.if_contains("initialData"); data && data->is_array())
        for (const auto& item : data->get_array())
            if (item.is_object()) note(item.as_object().if_contains("databaseName"));
    for (const auto& db : dbs)
        if (db != "admin" && db != "config" && db != "local")
            t.internal->run_command(db, to_bson(json::object{{"dropDatabase", 1}}));
}

void check_outcome(target& t, const json::array& outcome) {
    for (const auto& item : outcome) {
        const json::object& cd = object_of(item, "outcome item");
        const std::string coll = string_of(cd.at("collectionName"), "collectionName");
        const std::string db = string_of(cd.at("databaseName"), "databaseName");
        const json::value expected = canonical(field(cd, "documents", empty_array()));
        const json::array actual = read_collection(t, db, coll);
        const std::string where = "outcome " + db + "." + coll;
        if (actual.size() != expected.as_array().size())
            fail(where + " has " + std::to_string(actual.size()) + " documents, expected " +
                 std::to_string(expected.as_array().size()) + ": " + show(actual));
        for (std::size_t i = 0; i < actual.size(); ++i) match_exact(expected.as_array()[i], actual[i], where + "[" + std::to_string(i) + "]");
    }
}

void check_events(test_context& ctx, const json::array& expectations) {
    for (const auto& item : expectations) {
        const json::object& ex = object_of(item, "expectEvents item");
        const std::string id = string_of(field(ex, "client"), "expectEvents.client");
        client_entity& ce = *ctx.entities.get(id, entity::kind::client).client;
        const std::string type = ex.contains("eventType") ? string_of(ex.at("eventType"), "eventType") : "command";
        std::vector<json::object> actual;
        {
            std::lock_guard lock(ce.log->mutex);
            if (type == "command") actual = ce.log->command;
            else if (type == "cmap") actual = ce.log->cmap;
            else if (type == "sdam") actual = ce.log->sdam;
            else fail("unknown eventType " + type);
        }
        const json::value expected = canonical(field(ex, "events"));
        const json::array& events = array_of(expected, "expectEvents.events");
        const bool extra_ok = ex.contains("ignoreExtraEvents") && ex.at("ignoreExtraEvents").is_bool() && ex.at("ignoreExtraEvents").get_bool();
        auto listing = [&] {
            std::string s;
            for (const auto& e : actual) s += (s.empty() ? "" : ", ") + std::string(e.begin()->key()) + " " + show(e.begin()->value());
            return s;
        };
        if (actual.size() < events.size() || (!extra_ok && actual.size() != events.size()))
            fail(id + " observed " + std::to_string(actual.size()) + " " + type + " events, expected " + std::to_string(events.size()) +
                 ": " + listing());
        for (std::size_t i = 0; i < events.size(); ++i)
            match_event(events[i], actual[i], ctx.entities, id + " events[" + std::to_string(i) + "]");
    }
}

// Events that belong to the last operation may come after it returned: a connection checked
// back in, the killCursors a cursor manager sends for a closed cursor. Waits (briefly) until every
// client has its connections back and its event lists have stopped growing.
void settle(test_context& ctx) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::seconds(1);
    auto snapshot = [&] {
        std::size_t n = 0;
        bool idle = true;
        for (const auto& ce : ctx.entities.clients()) {
            std::lock_guard lock(ce->log->mutex);
            n += ce->log->command.size() + ce->log->cmap.size();
            idle = idle && ce->log->checked_out <= 0;
        }
        return std::pair(n, idle);
    };
    auto last = snapshot();
    int quiet = 0;
    while (clock::now() < deadline && (quiet < 4 || !last.second)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const auto now = snapshot();
        quiet = now.first == last.first ? quiet + 1 : 0;
        last = now;
    }
}

void disable_failpoints(test_context& ctx) {
    for (const failpoint_record& fp : ctx.failpoints) {
        bson::builder b;
        b.append("configureFailPoint", fp.name).append("mode", "off");
        if (fp.address.empty())
            ctx.where.internal->run_command("admin", b.extract());
        else
            ctx.where.direct_client(fp.address).run_command("admin", b.extract());
    }
    ctx.failpoints.clear();
}

// ---------------------------------------------------------------- one test

void run_test(std::string_view file, const json::object& root, const json::object& test, reporter& out) {
    const std::string description = string_of(field(test, "description", empty_string()), "description");
    if (const auto* reason = test.if_contains("skipReason")) {
        out.skip(file, description, "skipReason: " + string_of(*reason, "skipReason"));
        return;
    }
    std::string why;
    target* t = nullptr;
    try {
        t = choose(root.if_contains("runOnRequirements"), test.if_contains("runOnRequirements"), why);
    } catch (const test_failure& e) {
        out.fail(file, description, e.what());
        return;
    } catch (const std::exception& e) {
        out.fail(file, description, std::string("no deployment to run on: ") + e.what());
        return;
    }
    if (!t) {
        out.skip(file, description, why);
        return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto lap = [&](const char* what) {
        if (std::getenv("TRELLIS_SPEC_TIMING"))
            std::cerr << "  [" << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
                      << " ms] " << what << '\n';
    };
    test_context ctx{*t, {}, {}, string_of(root.at("schemaVersion"), "schemaVersion")};
    enum { passed, failed, skipped } result = passed;
    std::string reason;
    try {
        start_file_on_sim(*t, file, root);
        if (const auto* data = root.if_contains("initialData")) load_initial_data(*t, array_of(*data, "initialData"));
        lap("initialData");
        if (const auto* list = root.if_contains("createEntities")) create_entities(ctx, array_of(*list, "createEntities"));
        lap("createEntities");
        const json::array& ops = array_of(field(test, "operations"), "operations");
        for (std::size_t i = 0; i < ops.size(); ++i) {
            try {
                run_operation(ctx, object_of(ops[i], "an operation"));
            } catch (const test_failure& e) {
                throw test_failure("operation " + std::to_string(i) + " (" + string_of(ops[i].at("name"), "name") + "): " + e.what());
            }
        }
        lap("operations");
        if (test.contains("expectEvents")) settle(ctx);
        for (const auto& ce : ctx.entities.clients()) {
            std::lock_guard lock(ce->log->mutex);
            ce->log->listening = false;
        }
        disable_failpoints(ctx);
        if (const auto* ev = test.if_contains("expectEvents")) check_events(ctx, array_of(*ev, "expectEvents"));
        if (const auto* oc = test.if_contains("outcome")) check_outcome(*t, array_of(*oc, "outcome"));
    } catch (const test_skip& e) {
        result = skipped;
        reason = e.what();
    } catch (const test_failure& e) {
        result = failed;
        reason = e.what();
    } catch (const std::exception& e) {
        result = failed;
        reason = std::string("unexpected error: ") + e.what();
    }
    try {
        disable_failpoints(ctx);
    } catch (const std::exception& e) {
        if (result == passed) {
            result = failed;
            reason = std::string("disabling a fail point: ") + e.what();
        }
    }
    lap("checks");
    ctx.entities.clear();
    lap("entities cleared");
    if (result == passed) out.pass(file, description);
    else if (result == failed) out.fail(file, description, reason);
    else out.skip(file, description, reason);
}

// ---------------------------------------------------------------- one file

// Checks that hold wherever the file runs. Empty: the file is well formed.
std::string file_problem(const json::object& root) {
    try {
        const std::string v = string_of(field(root, "schemaVersion"), "schemaVersion");
        const std::vector<int> parts = version_parts(v);
        if (parts[0] != 1 || parts[1] > supported_minor)
            return "schemaVersion " + v + " not supported (1.0 to 1." + std::to_string(supported_minor) + ")";
        if (const auto* list = root.if_contains("createEntities")) validate_entities(array_of(*list, "createEntities"));
        array_of(field(root, "tests"), "tests");
    } catch (const test_failure& e) {
        return e.what();
    }
    return {};
}

void run_file(std::string_view file, const boost::json::value& test, reporter& out) {
    const auto* root = test.if_object();
    if (!root) {
        out.fail(file, "(file)", "not a JSON object");
        return;
    }
    const std::string problem = file_problem(*root);
    const auto* tests = root->if_contains("tests");
    if (!problem.empty()) {
        if (tests && tests->is_array() && !tests->get_array().empty()) {
            for (const auto& t : tests->get_array()) out.fail(file, spec::string_of(t, "description", "(test)"), problem);
        } else {
            out.fail(file, "(file)", problem);
        }
        return;
    }
    for (const auto& t : tests->get_array()) {
        if (!t.is_object()) {
            out.fail(file, "(test)", "a test is not an object");
            continue;
        }
        run_test(file, *root, t.get_object(), out);
    }
}

}  // namespace
}  // namespace unified

extern const suite unified_suite;
const suite unified_suite{"unified", "MongoDB unified test format (schema 1.x) against trellis-sim or --uri", unified::run_file};

}  // namespace trellis::spec
