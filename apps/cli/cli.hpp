// The trellis command-line tool: shared conventions.
// Exit status: 0 ok, 1 operation (data, server, network) error, 2 usage or configuration error.
// Errors: one line on stderr.
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

/// Bad input on the command line that is not a usage mistake (an Extended JSON argument that
/// does not parse, a connection string that is invalid): main prints "trellis: <message>"
/// without the hint, and exits 2.
struct input_error {
    std::string message;
};

/// A data or operation error: main prints "trellis: <message>" and exits 1.
struct data_error {
    std::string message;
};

using args = std::span<const std::string_view>;

int bson_command(args a);
int config_command(args a);
int plugins_command(args a);
// Network commands (client_commands.cpp).
int ping_command(args a);
int hello_command(args a);
int run_command(args a);
int find_command(args a);
int insert_command(args a);
// topology_command.cpp, demo_command.cpp.
int topology_command(args a);
int demo_command(args a);

/// Removes the global option --dns-server ADDR / --dns-server=ADDR (repeatable, or a comma
/// list) from the arguments; the network commands' clients use those servers.
std::vector<std::string_view> take_dns_servers(std::vector<std::string_view> a);

/// Replaces line breaks (and other control characters) so a message stays on one line.
std::string one_line(std::string_view text);

}  // namespace trellis::cli
