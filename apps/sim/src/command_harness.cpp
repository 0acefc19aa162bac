#include "trellis/sim/command_harness.hpp"

#include "auth_glue.hpp"
#include "session.hpp"

namespace trellis::sim {

struct command_harness::state {
    explicit state(sim_config c) : dep(std::move(c)) {}
    deployment::impl dep;
    std::shared_ptr<session> connection;
    bool stopped = false;

    // Wakes every waiter and lets the io_context drain, so nothing suspended outlives the members.
    void stop() {
        if (stopped) return;
        stopped = true;
        dep.begin_stop();
        if (connection) connection->close();
        dep.io.restart();
        dep.io.run_for(std::chrono::milliseconds(500));
    }
};

command_harness::command_harness(sim_config config) : state_(std::make_unique<state>(std::move(config))) {
    deployment::impl& d = state_->dep;
    configure_users(d);
    d.running = true;
    state_->connection = std::make_shared<session>(*d.members.front(), tcp::socket(d.io));
}

command_harness::~command_harness() { state_->stop(); }

command_harness::outcome command_harness::run(bson::document_view command, std::chrono::milliseconds budget) {
    outcome out;
    if (state_->stopped) {
        out.closed = true;
        return out;
    }
    deployment::impl& d = state_->dep;
    request req;
    req.body = bson::document(command);
    if (!req.body.empty()) req.name = std::string(req.body.begin()->key());
    if (auto db = req.body.find("$db"); db && db->type() == bson::type::string) req.db = std::string(db->get_string());
    if (auto rp = req.body.find("$readPreference"); rp && rp->type() == bson::type::document)
        if (auto mode = rp->get_document().find("mode"); mode && mode->type() == bson::type::string)
            req.secondary_ok = mode->get_string() != "primary";

    bool done = false;
    std::exception_ptr failure;
    command_result result;
    auto& s = *state_->connection;
    asio::co_spawn(
        d.io, [&]() -> asio::awaitable<void> { result = co_await execute(s, req); },
        [&](std::exception_ptr e) {
            failure = e;
            done = true;
        });
    d.io.restart();
    const auto deadline = steady::now() + budget;
    while (!done && steady::now() < deadline) d.io.run_one_until(deadline);
    if (!done) {
        state_->stop();
        out.waiting = true;
        return out;
    }
    if (failure) std::rethrow_exception(failure);
    if (result.close_connection) {
        out.closed = true;
        return out;
    }
    out.reply = std::move(result.reply);
    return out;
}

}  // namespace trellis::sim
