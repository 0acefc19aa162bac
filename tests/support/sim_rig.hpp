// A trellis-sim deployment and a client of it that records the commands it sends.
#pragma once

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "command_recorder.hpp"
#include "trellis/client.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis_test {

struct sim_rig {
    std::unique_ptr<trellis::sim::deployment> deployment;
    command_recorder rec;  // outlives the client
    std::unique_ptr<trellis::client> client;

    explicit sim_rig(trellis::sim::sim_config cfg = {}) {
        deployment = std::make_unique<trellis::sim::deployment>(std::move(cfg));
        deployment->start();
        client = std::make_unique<trellis::client>(deployment->uri(), rec.settings());
    }
    ~sim_rig() {
        client.reset();
        deployment->stop();
    }
    std::vector<trellis::bson::document> sent(std::string_view name) const { return rec.sent(name); }
    std::size_t count() const { return rec.count(); }
    bool wait_for(std::string_view name) const { return rec.wait_for(name); }
    void forget() { rec.clear(); }
};

}  // namespace trellis_test
