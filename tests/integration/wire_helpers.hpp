// Blocking helpers for tests that drive one connection directly: establish it, run a command
// on it, each by running the test's io_context until done.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "connection/establisher.hpp"

namespace trellis::test {

struct established {
    conn::establish_failure failure;
    std::unique_ptr<conn::connection> connection;
};

struct ran {
    std::error_code ec;
    conn::command_reply reply;
};

inline established establish(boost::asio::io_context& io, std::shared_ptr<const conn::establish_settings> s) {
    established out;
    conn::async_establish(io.get_executor(), std::move(s), 1, [&out](conn::establish_failure f, std::unique_ptr<conn::connection> c) {
        out.failure = std::move(f);
        out.connection = std::move(c);
    });
    io.restart();
    io.run();
    return out;
}

inline ran run(boost::asio::io_context& io, conn::connection& c, const std::string& db, bson::document cmd,
               std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    ran out;
    conn::command_request r;
    r.database = db;
    r.command = std::move(cmd);
    r.timeout = timeout;
    c.async_run_command(std::move(r), [&out](std::error_code ec, conn::command_reply reply) {
        out.ec = ec;
        out.reply = std::move(reply);
    });
    io.restart();
    io.run();
    return out;
}

}  // namespace trellis::test
