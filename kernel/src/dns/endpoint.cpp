// DNS server endpoints: "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353".
#include <charconv>

#include "trellis/dns.hpp"
#include "trellis/errors.hpp"

namespace trellis::dns {
namespace {

[[noreturn]] void bad(std::string_view text, const std::string& why) {
    throw configuration_error("DNS server '" + std::string(text) + "': " + why);
}

boost::asio::ip::address parse_address(std::string_view full, std::string_view address) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(std::string(address), ec);
    if (ec) bad(full, "not an IPv4 or IPv6 address (a DNS server is given by address, not by name)");
    return a;
}

}  // namespace

endpoint endpoint::parse(std::string_view text) {
    endpoint e;
    std::string_view address = text, port;
    if (text.starts_with('[')) {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) bad(text, "'[' without ']'");
        address = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (!rest.starts_with(':')) bad(text, "expected ':port' after ']'");
            port = rest.substr(1);
            if (port.empty()) bad(text, "empty port");
        }
        if (!parse_address(text, address).is_v6()) bad(text, "only an IPv6 address goes in brackets");
    } else if (text.find(':') != text.rfind(':')) {
        // Two colons or more: an IPv6 address without brackets, hence without a port.
    } else if (const std::size_t colon = text.find(':'); colon != std::string_view::npos) {
        address = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) bad(text, "empty port");
    }
    if (address.empty()) bad(text, "empty address");
    e.address = parse_address(text, address);
    if (!port.empty()) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
            bad(text, "the port must be a number from 1 to 65535");
        e.port = static_cast<std::uint16_t>(value);
    }
    return e;
}

std::string endpoint::to_string() const {
    const std::string a = address.to_string();
    return (address.is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

}  // namespace trellis::dns
