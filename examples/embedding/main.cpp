// inventory-report CONFIG.toml: an application that embeds Trellis and is configured by a TOML
// file only (connection, pool, plugins). It stocks a collection, reads part of a report
// through a cursor and closes it early, then watches what the configured cursor manager does
// with the server's cursor: with the example `delayed` plugin, the cursor outlives its close by
// [plugins.delayed] delay_ms, then one killCursors removes it.
//
// Exit status: 0 when the cursor was killed, 1 when it was not within 10 s, 2 for bad usage
// or configuration.
#include <chrono>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include <trellis/bson/builder.hpp>
#include <trellis/client.hpp>
#include <trellis/errors.hpp>

using namespace std::chrono;
namespace bson = trellis::bson;

namespace {

// true while the server still has the cursor (getMore answers), false once it is gone.
bool server_has_cursor(trellis::client& c, std::int64_t id) {
    try {
        c.run_command("shop", bson::make_document(bson::kvp("getMore", id), bson::kvp("collection", "stock"),
                                                  bson::kvp("batchSize", 1)));
        return true;
    } catch (const trellis::operation_failure& e) {
        if (e.server_code() == 43) return false;  // CursorNotFound
        throw;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: inventory-report CONFIG.toml\n";
        return 2;
    }
    std::mutex m;
    std::optional<steady_clock::time_point> killed_at;
    trellis::client_settings handlers;
    handlers.on_command = [&](const trellis::command_event& e) {
        if (const auto* s = std::get_if<trellis::command_started_event>(&e); s && s->command_name == "killCursors") {
            std::lock_guard lock(m);
            if (!killed_at) killed_at = steady_clock::now();
        }
    };
    std::optional<trellis::client> client;
    try {
        client.emplace(trellis::client::from_config_file(argv[1], std::move(handlers)));
    } catch (const trellis::error& e) {
        std::cerr << "inventory-report: " << e.what() << '\n';
        return 2;
    }
    auto stock = (*client)["shop"]["stock"];
    stock.delete_many({});
    for (int i = 0; i < 200; ++i)
        stock.insert_one(bson::make_document(bson::kvp("sku", "item-" + std::to_string(i)), bson::kvp("count", i * 3)));

    trellis::find_options page;
    page.batch_size = 5;
    auto cursor = stock.find({}, page);
    for (int i = 0; i < 3; ++i) std::cout << "  " << (*cursor.next())["sku"].get_string() << '\n';
    const std::int64_t id = cursor.id();
    cursor.close();  // the report stops early: the manager decides when the server's cursor goes
    const auto closed_at = steady_clock::now();
    std::cout << "closed cursor " << id << " after 3 of 200 documents\n";

    std::this_thread::sleep_for(milliseconds(200));
    std::cout << "server still has the cursor 200 ms later: " << (server_has_cursor(*client, id) ? "yes" : "no") << '\n';
    while (steady_clock::now() - closed_at < seconds(10)) {
        if (!server_has_cursor(*client, id)) {
            std::lock_guard lock(m);
            if (!killed_at) {
                std::cout << "the server cursor is gone, but no killCursors was sent\n";
                return 1;
            }
            const auto after = duration_cast<milliseconds>(*killed_at - closed_at);
            std::cout << "killCursors sent " << after.count() << " ms after close; server cursor gone\n";
            return 0;
        }
        std::this_thread::sleep_for(milliseconds(100));
    }
    std::cout << "the server still has the cursor 10 s after close\n";
    return 1;
}
