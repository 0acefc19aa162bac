// Documents from JSON text, and the sim's failCommand fail point, for tests that script a
// server's failures.
#pragma once

#include <string_view>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"

namespace trellis_test {

/// A document from (relaxed or canonical) Extended JSON text.
inline trellis::bson::document doc(std::string_view json) { return trellis::bson::from_json(json); }

/// configureFailPoint failCommand through `c`: `data` and `mode` as JSON text.
inline void fail_command(trellis::client& c, std::string_view data, std::string_view mode = R"({"times": 1})") {
    trellis::bson::builder b;
    b.append("configureFailPoint", "failCommand").append("mode", doc(mode).view()).append("data", doc(data).view());
    c.run_command("admin", b.extract());
}

/// Turns the failCommand fail point off.
inline void fail_command_off(trellis::client& c) {
    c.run_command("admin", doc(R"({"configureFailPoint": "failCommand", "mode": "off"})"));
}

}  // namespace trellis_test
