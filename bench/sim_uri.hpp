// A connection string with options appended, for the benches that drive an in-process
// trellis-sim deployment (failover, chaos).
#pragma once

#include <string>

namespace trellis_bench {

/// `uri` with `options` ("a=1&b=2") added to its query: after '&' when it has one, else
/// after '?' (adding the "/" path when it has none).
inline std::string with_options(std::string uri, const std::string& options) {
    const bool has_query = uri.find('?') != std::string::npos;
    const bool has_path = uri.find('/', 10) != std::string::npos;
    return uri + (has_query ? "&" : has_path ? "?" : "/?") + options;
}

}  // namespace trellis_bench
