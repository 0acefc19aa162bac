// trellis: the command-line face of the driver.
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "trellis/errors.hpp"

using namespace trellis::cli;

namespace {

constexpr const char* usage_text =
    "usage: trellis COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  bson dump FILE.bson [--canonical]       print each document as Extended JSON\n"
    "  bson from-json FILE.json -o FILE.bson   convert Extended JSON documents to BSON\n"
    "  bson validate FILE.bson                 check a BSON file, report the first invalid byte\n"
    "  config check FILE                       check a TOML configuration, print the effective options\n"
    "  plugins [--json]                        list the plugins found and their state\n"
    "\n"
    "Run 'trellis COMMAND --help' for a command's options.\n"
    "Exit status: 0 ok, 1 data error, 2 usage error.\n";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> a(argv + 1, argv + argc);
    try {
        if (a.empty()) throw usage_error{"no command given"};
        if (a[0] == "--help" || a[0] == "-h" || a[0] == "help") {
            std::cout << usage_text;
            return exit_ok;
        }
        if (a[0] == "bson") return bson_command(args(a).subspan(1));
        if (a[0] == "config") return config_command(args(a).subspan(1));
        if (a[0] == "plugins") return plugins_command(args(a).subspan(1));
        throw usage_error{"unknown command \"" + std::string(a[0]) + "\""};
    } catch (const usage_error& e) {
        std::cerr << "trellis: " << e.message << " (see 'trellis --help')\n";
        return exit_usage;
    } catch (const data_error& e) {
        std::cerr << "trellis: " << e.message << '\n';
        return exit_data_error;
    } catch (const trellis::error& e) {
        std::cerr << "trellis: " << e.what() << '\n';
        return exit_data_error;
    } catch (const std::exception& e) {
        std::cerr << "trellis: " << e.what() << '\n';
        return exit_data_error;
    }
}
