// cursor_manager "batched": collects closed cursors per (server, namespace) and kills each
// group with one killCursors, when it reaches batch_size ids or when the kernel calls flush()
// (periodically, and when the client closes).
//
// Settings: batch_size, an integer from 1 to 500000 (default 100; 500000 ids keep one
// killCursors command far below 16 MiB). A value of another type or out of range is a
// configuration_error from the constructor; other keys are left alone (the settings table is
// the plugin's, and may carry keys for other tools).
//
// Thread-safe: the pending ids are guarded by a mutex, and the killer is called outside it (it
// only queues a command). flush() sends the groups in (server, namespace) order; if the killer
// throws, the group it was given is dropped (a server kills idle cursors itself, after
// cursorTimeoutMillis), the groups not yet sent stay pending, and the exception propagates. A
// cursor id of 0 names no server cursor: it is ignored.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/bson/types.hpp"
#include "trellis/errors.hpp"
#include "trellis/sdk/cursor_manager.hpp"

namespace {

using namespace trellis;
using namespace trellis::sdk;

constexpr std::int64_t default_batch_size = 100;
constexpr std::int64_t max_batch_size = 500'000;

std::size_t batch_size_setting(bson::document_view settings) {
    const auto e = settings.find("batch_size");
    if (!e) return default_batch_size;
    const std::string rule = "batched: batch_size must be an integer from 1 to " + std::to_string(max_batch_size);
    if (e->type() != bson::type::int32 && e->type() != bson::type::int64)
        throw configuration_error(rule + ", got " + std::string(bson::type_name(e->type())));
    const std::int64_t n = e->as_int64();
    if (n < 1 || n > max_batch_size) throw configuration_error(rule + ", got " + std::to_string(n));
    return static_cast<std::size_t>(n);
}

class batched_manager final : public cursor_manager {
public:
    explicit batched_manager(const plugin_context& context) : batch_size_(batch_size_setting(context.settings)) {}

    void on_cursor_closed(const closed_cursor& cursor, cursor_killer& killer) override {
        if (cursor.id == 0) return;
        std::vector<std::int64_t> full;
        {
            std::lock_guard lock(mutex_);
            const auto it = pending_.try_emplace({cursor.server_address, cursor.ns}).first;
            it->second.push_back(cursor.id);
            if (it->second.size() < batch_size_) return;
            full = std::move(it->second);
            pending_.erase(it);
        }
        killer.kill_cursors(cursor.server_address, cursor.ns, full);
    }

    void flush(cursor_killer& killer) override {
        std::map<key, std::vector<std::int64_t>> sending;
        {
            std::lock_guard lock(mutex_);
            sending.swap(pending_);
        }
        for (auto it = sending.begin(); it != sending.end(); ++it) {
            try {
                killer.kill_cursors(it->first.first, it->first.second, it->second);
            } catch (...) {
                requeue(std::next(it), sending.end());
                throw;
            }
        }
    }

private:
    using key = std::pair<std::string, std::string>;  // (server address, namespace)

    // Puts groups back in front of whatever was closed meanwhile.
    template <class It>
    void requeue(It first, It last) {
        std::lock_guard lock(mutex_);
        for (; first != last; ++first) {
            std::vector<std::int64_t>& ids = pending_[first->first];
            ids.insert(ids.begin(), first->second.begin(), first->second.end());
        }
    }

    const std::size_t batch_size_;
    std::mutex mutex_;
    std::map<key, std::vector<std::int64_t>> pending_;
};

}  // namespace

TRELLIS_PLUGIN(cursor_manager, "batched", "1.0.0",
               "collects closed cursors per server and namespace, kills them in batches (batch_size, default 100)",
               batched_manager)
