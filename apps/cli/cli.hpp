// The trellis command-line tool: shared conventions.
// Exit status: 0 ok, 1 data error, 2 usage error. Errors: one line on stderr.
#pragma once

#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_data_error = 1;
inline constexpr int exit_usage = 2;

/// A usage error: main prints "trellis: <message>" and a hint, and exits 2.
struct usage_error {
    std::string message;
};

/// A data error: main prints "trellis: <message>" and exits 1.
struct data_error {
    std::string message;
};

using args = std::span<const std::string_view>;

int bson_command(args a);
int config_command(args a);
int plugins_command(args a);

}  // namespace trellis::cli
