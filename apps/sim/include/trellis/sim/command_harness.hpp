// One simulated member driven in the calling thread, without sockets: a command document goes
// through the same dispatch a client's OP_MSG reaches (the command table, fail points, sessions,
// the storage engine) and its reply comes back as a value. For fuzzing and tests of the dispatch.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "trellis/bson/document.hpp"
#include "trellis/sim/deployment.hpp"

namespace trellis::sim {

class command_harness {
public:
    /// A deployment of config's topology (standalone by default) that never listens; commands
    /// run on its first member, each as the request of one connection that stays open.
    explicit command_harness(sim_config config = {});
    ~command_harness();
    command_harness(const command_harness&) = delete;
    command_harness& operator=(const command_harness&) = delete;

    struct outcome {
        /// The reply the connection would send; unset when it closed the connection instead, or
        /// the command is still waiting.
        std::optional<bson::document> reply;
        /// The member closed the connection (a fail point's closeConnection, a hostile request).
        bool closed = false;
        /// Still waiting after the budget (an awaitable hello, blockConnection, a write concern).
        /// The harness is then stopped: every later run() reports closed.
        bool waiting = false;
    };

    /// Runs one command, an OP_MSG body: its first key names the command, "$db" the database.
    /// An exception the dispatch lets out (the session would log it and close the connection)
    /// is rethrown.
    outcome run(bson::document_view command, std::chrono::milliseconds budget = std::chrono::milliseconds(200));

private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace trellis::sim
