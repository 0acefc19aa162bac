// Test plugin: a cursor manager that kills closed cursors in batches of
// settings.batch (default 1), per server and namespace.
#include <map>

#include "trellis/sdk/cursor_manager.hpp"

namespace {
using namespace trellis::sdk;

class counting final : public cursor_manager {
public:
    explicit counting(const plugin_context& ctx) {
        if (auto b = ctx.settings.find("batch"); b && b->is_number()) batch_ = static_cast<std::size_t>(b->as_int64());
    }
    void on_cursor_closed(const closed_cursor& c, cursor_killer& killer) override {
        auto& pending = pending_[{c.server_address, c.ns}];
        pending.push_back(c.id);
        if (pending.size() >= batch_) {
            killer.kill_cursors(c.server_address, c.ns, pending);
            pending.clear();
        }
    }
    void flush(cursor_killer& killer) override {
        for (auto& [where, ids] : pending_)
            if (!ids.empty()) killer.kill_cursors(where.first, where.second, ids);
        pending_.clear();
    }

private:
    std::size_t batch_ = 1;
    std::map<std::pair<std::string, std::string>, std::vector<std::int64_t>> pending_;
};
}  // namespace

TRELLIS_PLUGIN(cursor_manager, "counting", "0.1.0", "test: batches killCursors", counting)
