// The commands a client sent (command monitoring's started events), in order, for tests that
// check what went on the wire. Attach it to the settings of a client it outlives.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "trellis/client.hpp"

namespace trellis_test {

class command_recorder {
public:
    /// Sets settings.on_command to record every command started.
    void attach(trellis::client_settings& settings) {
        settings.on_command = [this](const trellis::command_event& e) {
            if (const auto* s = std::get_if<trellis::command_started_event>(&e)) {
                std::lock_guard lock(m_);
                started_.emplace_back(s->address, s->command);
            }
        };
    }
    /// New settings with only the recorder attached.
    trellis::client_settings settings() {
        trellis::client_settings s;
        attach(s);
        return s;
    }

    /// The commands of that name (the command document's first key), as sent.
    std::vector<trellis::bson::document> sent(std::string_view name) const {
        std::lock_guard lock(m_);
        std::vector<trellis::bson::document> out;
        for (const auto& [address, c] : started_)
            if (!c.empty() && (*c.view().begin()).key() == name) out.push_back(c);
        return out;
    }
    /// The servers ("host:port") the commands of that name went to, in order.
    std::vector<std::string> addresses(std::string_view name) const {
        std::lock_guard lock(m_);
        std::vector<std::string> out;
        for (const auto& [address, c] : started_)
            if (!c.empty() && (*c.view().begin()).key() == name) out.push_back(address);
        return out;
    }
    /// The last command of that name; std::runtime_error when none was sent.
    trellis::bson::document last(std::string_view name) const {
        auto all = sent(name);
        if (all.empty()) throw std::runtime_error("no " + std::string(name) + " command was sent");
        return all.back();
    }
    /// How many commands were sent, of any name.
    std::size_t count() const {
        std::lock_guard lock(m_);
        return started_.size();
    }
    void clear() {
        std::lock_guard lock(m_);
        started_.clear();
    }
    /// Waits until at least `n` commands of that name were sent; false after `timeout`.
    bool wait_for(std::string_view name, std::size_t n = 1, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (sent(name).size() < n) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return true;
    }

private:
    mutable std::mutex m_;
    std::vector<std::pair<std::string, trellis::bson::document>> started_;  // address, command
};

}  // namespace trellis_test
