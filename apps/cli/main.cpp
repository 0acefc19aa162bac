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
    "  ping URI                                ping the server in use, print its address and round trip\n"
    "  hello URI                               the hello reply of the server in use\n"
    "  run URI DB COMMAND_JSON                 run a command, print the reply\n"
    "  find URI DB.COLL [FILTER_JSON] [--limit N]\n"
    "                                          the matching documents, one per line\n"
    "  insert URI DB.COLL DOC_JSON...          insert documents, print each _id\n"
    "  topology URI [--json] [--watch SECONDS] the servers of the deployment; then, with --watch,\n"
    "                                          every change as it happens\n"
    "  demo                                    a simulated replica set taken through a failover\n"
    "\n"
    "Options of the network commands (read preference, timeouts, TLS, credentials, ...) come\n"
    "through the URI, e.g. mongodb://h1,h2/?replicaSet=rs0&readPreference=secondary.\n"
    "  --dns-server ADDR[:PORT][,...]          the DNS servers for mongodb+srv:// (SRV, TXT and the\n"
    "                                          targets' A records); default $TRELLIS_DNS_SERVER,\n"
    "                                          else /etc/resolv.conf\n"
    "Documents are printed as relaxed Extended JSON.\n"
    "Run 'trellis COMMAND --help' for a command's options.\n"
    "Exit status: 0 ok, 1 operation error (data, server, network), 2 usage or configuration error.\n";

}  // namespace

namespace trellis::cli {

std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\n' || c == '\r') {
            while (!out.empty() && out.back() == ' ') out.pop_back();
            if (!out.empty() && out.back() != ';') out += ';';
            out += ' ';
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += ' ';
        } else {
            out += c;
        }
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
    return out;
}

}  // namespace trellis::cli

int main(int argc, char** argv) {
    std::vector<std::string_view> a(argv + 1, argv + argc);
    try {
        a = take_dns_servers(std::move(a));
        if (a.empty()) throw usage_error{"no command given"};
        if (a[0] == "--help" || a[0] == "-h" || a[0] == "help") {
            std::cout << usage_text;
            return exit_ok;
        }
        const args rest = args(a).subspan(1);
        if (a[0] == "bson") return bson_command(rest);
        if (a[0] == "config") return config_command(rest);
        if (a[0] == "plugins") return plugins_command(rest);
        if (a[0] == "ping") return ping_command(rest);
        if (a[0] == "hello") return hello_command(rest);
        if (a[0] == "run") return run_command(rest);
        if (a[0] == "find") return find_command(rest);
        if (a[0] == "insert") return insert_command(rest);
        if (a[0] == "topology") return topology_command(rest);
        if (a[0] == "demo") return demo_command(rest);
        throw usage_error{"unknown command \"" + std::string(a[0]) + "\""};
    } catch (const usage_error& e) {
        std::cout.flush();
        std::cerr << "trellis: " << one_line(e.message) << " (see 'trellis --help')\n";
        return exit_usage;
    } catch (const input_error& e) {
        std::cout.flush();
        std::cerr << "trellis: " << one_line(e.message) << '\n';
        return exit_usage;
    } catch (const data_error& e) {
        std::cout.flush();
        std::cerr << "trellis: " << one_line(e.message) << '\n';
        return exit_data_error;
    } catch (const trellis::configuration_error& e) {
        std::cout.flush();
        std::cerr << "trellis: " << one_line(e.what()) << '\n';
        return exit_usage;
    } catch (const trellis::error& e) {
        // A configuration_error or invalid_name code thrown as a plain trellis::error is still
        // the caller's mistake, not the deployment's.
        std::cout.flush();
        std::cerr << "trellis: " << one_line(e.what()) << '\n';
        const bool caller = e.code() == trellis::errc::configuration_error || e.code() == trellis::errc::invalid_name;
        return caller ? exit_usage : exit_data_error;
    } catch (const std::exception& e) {
        std::cout.flush();
        std::cerr << "trellis: " << one_line(e.what()) << '\n';
        return exit_data_error;
    }
}
