// The Trellis half of `trellis-bench failover`, following the procedure in failover.hpp step
// for step, as pymongo_failover.py does for PyMongo.
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "failover.hpp"
#include "sim_uri.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis_bench::failover {

namespace {

using clock = std::chrono::steady_clock;
namespace bson = trellis::bson;

struct writer {
    trellis::client client;
    trellis::collection coll;
    std::mutex mutex;
    std::string last_acknowledged_by;  // address on the last insert's CommandSucceeded
    std::int64_t next_id = 0;
    std::set<std::int64_t> acknowledged;

    static trellis::client_settings settings(writer* self) {
        trellis::client_settings s;
        s.on_command = [self](const trellis::command_event& e) {
            if (const auto* ok = std::get_if<trellis::command_succeeded_event>(&e); ok && ok->command_name == "insert") {
                std::lock_guard lock(self->mutex);
                self->last_acknowledged_by = ok->address;
            }
        };
        return s;
    }

    explicit writer(const std::string& uri)
        : client(uri, settings(this)), coll(client["bench"]["failover_trellis"]) {
        trellis::write_concern wc;
        wc.w = std::string(write_concern_w);
        wc.wtimeout = std::chrono::milliseconds(30'000);
        coll.set_write_concern(wc);
    }

    // One insert; returns the member that acknowledged it. Throws on failure.
    std::string insert() {
        const std::int64_t id = next_id++;
        coll.insert_one(bson::make_document(bson::kvp("_id", id), bson::kvp("x", 1)));
        acknowledged.insert(id);
        std::lock_guard lock(mutex);
        return last_acknowledged_by;
    }
};

}  // namespace

std::vector<double> measure_trellis(trellis::sim::deployment& deployment, int stepdowns) {
    const auto uri = with_options(deployment.uri(), "heartbeatFrequencyMS=" + std::to_string(heartbeat_frequency.count()) +
                                                        "&retryWrites=true&serverSelectionTimeoutMS=" +
                                                        std::to_string(std::chrono::milliseconds(phase_timeout).count()));
    writer w(uri);
    try {
        w.client["bench"].run_command(bson::make_document(bson::kvp("drop", "failover_trellis")));
    } catch (const trellis::operation_failure& e) {
        if (e.server_code() != 26) throw;  // NamespaceNotFound: nothing to drop
    }
    std::map<std::string, clock::time_point> stepped_down;  // by us; PyMongo's are long enough ago

    // Inserts until the set is stable; returns its primary.
    auto settle_on_primary = [&]() -> std::string {
        const auto deadline = clock::now() + phase_timeout;
        std::string primary;
        clock::time_point since{};
        while (clock::now() < deadline) {
            const auto by = w.insert();
            const auto sim_primary = deployment.primary();
            const auto topo = w.client.topology();
            const auto* seen = sim_primary ? topo->find(*sim_primary) : nullptr;
            bool others_ready = true;
            for (const auto& [member, at] : stepped_down)
                if (member != by && clock::now() - at < no_reelect + std::chrono::milliseconds(100)) others_ready = false;
            const bool stable = sim_primary && seen && seen->type == trellis::sdk::server_type::rs_primary && by == *sim_primary &&
                                others_ready;
            if (!stable) {
                primary.clear();
                continue;
            }
            if (primary != by) {
                primary = by;
                since = clock::now();
            }
            if (clock::now() - since >= settle) return primary;
        }
        throw std::runtime_error("trellis: the replica set did not settle within " + std::to_string(phase_timeout.count()) + " s");
    };

    std::vector<double> samples;
    for (int i = 0; i < stepdowns; ++i) {
        const std::string old_primary = settle_on_primary();
        const auto t0 = clock::now();
        deployment.step_down(old_primary, no_reelect);
        stepped_down[old_primary] = t0;
        const auto deadline = t0 + phase_timeout;
        for (;;) {
            if (clock::now() > deadline) throw std::runtime_error("trellis: no successful write after a stepdown");
            try {
                const auto by = w.insert();
                if (by != old_primary) break;
            } catch (const trellis::error&) {
                // A failure the caller sees; the next insert is the next try.
            }
        }
        samples.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    }

    // Nothing acknowledged may be missing.
    settle_on_primary();
    std::set<std::int64_t> found;
    for (auto cur = w.coll.find(); auto d = cur.next();) found.insert((*d)["_id"].as_int64());
    std::size_t lost = 0;
    for (auto id : w.acknowledged)
        if (!found.count(id)) ++lost;
    if (lost != 0)
        throw std::runtime_error("trellis: " + std::to_string(lost) + " acknowledged writes of " +
                                 std::to_string(w.acknowledged.size()) + " are missing");
    return samples;
}

}  // namespace trellis_bench::failover
