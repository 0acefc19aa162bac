// A cursor manager that kills closed cursors only after they have been closed for a delay
// (default 5 s), batched per server and namespace: an application that closes and reopens
// the same queries in bursts sends one killCursors per burst instead of one per cursor.
//
// TOML:
//   [plugins]
//   cursor_manager = "delayed"
//   [plugins.delayed]
//   delay_ms = 1500     # how long a closed cursor waits before it is killed
//   log = true          # one line on stderr per killCursors sent
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <trellis/sdk/cursor_manager.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

class delayed final : public trellis::sdk::cursor_manager {
public:
    explicit delayed(const trellis::sdk::plugin_context& context) {
        if (auto d = context.settings.find("delay_ms")) {
            if (!d->is_number() || d->as_int64() < 0)
                throw std::invalid_argument("[plugins.delayed] delay_ms must be a non-negative integer");
            delay_ = std::chrono::milliseconds(d->as_int64());
        }
        if (auto l = context.settings.find("log")) log_ = l->get_bool();
    }

    // Runs on the client's strand: record the cursor, kill nothing yet.
    void on_cursor_closed(const trellis::sdk::closed_cursor& cursor, trellis::sdk::cursor_killer&) override {
        waiting_[{cursor.server_address, cursor.ns}].push_back({cursor.id, clock_type::now()});
    }

    // Runs on the client's strand about once a second: kill what has waited long enough.
    void flush(trellis::sdk::cursor_killer& killer) override {
        const auto now = clock_type::now();
        for (auto& [where, cursors] : waiting_) {
            std::vector<std::int64_t> due;
            std::erase_if(cursors, [&](const closed& c) {
                if (now - c.at < delay_) return false;
                due.push_back(c.id);
                return true;
            });
            if (due.empty()) continue;
            killer.kill_cursors(where.first, where.second, due);  // queued by the client: never blocks
            if (log_) std::fprintf(stderr, "delayed: killCursors %s on %s: %zu cursor(s)\n", where.second.c_str(),
                                   where.first.c_str(), due.size());
        }
        std::erase_if(waiting_, [](const auto& entry) { return entry.second.empty(); });
    }

private:
    struct closed {
        std::int64_t id;
        clock_type::time_point at;
    };
    std::chrono::milliseconds delay_{5000};
    bool log_ = false;
    std::map<std::pair<std::string, std::string>, std::vector<closed>> waiting_;  // by (server, namespace)
};

}  // namespace

TRELLIS_PLUGIN(cursor_manager, "delayed", "1.0.0", "kills closed cursors after [plugins.delayed] delay_ms", delayed)
