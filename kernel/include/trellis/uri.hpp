// mongodb:// and mongodb+srv:// connection strings (the connection string, URI options and
// initial DNS seedlist discovery specs).
//
// parse_uri() turns the text into client_options. A mongodb+srv:// string then needs two DNS
// answers: the SRV records of srv_query_name() and the TXT records of srv_host. The lookups
// are the caller's (they are I/O); resolve_srv() takes their results as values, checks them
// and returns the options with the seed list filled in.
//
//     trellis::connection_string cs = trellis::parse_uri("mongodb+srv://cluster0.example.net/app");
//     for (const std::string& w : cs.warnings) log(w);
//     if (cs.options.is_srv) cs = trellis::resolve_srv(cs, srv_answers, txt_answers, rng);
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/options.hpp"

namespace trellis {

struct connection_string {
    client_options options;
    /// What the specs say to log rather than reject: unknown options, values of the wrong type
    /// or range (the option is then ignored), repeated keys, deprecated spellings. One sentence
    /// each, naming the option.
    std::vector<std::string> warnings;
};

/// Parses a connection string. Option names are case-insensitive; values are percent-decoded.
/// Throws configuration_error, naming the offending part (scheme, host, user information,
/// database, option) and the reason, for a malformed string and for everything validate()
/// rejects. Error messages never quote the user information.
connection_string parse_uri(std::string_view uri);

/// One SRV answer. Priority and weight are left out: the spec says to ignore them.
struct srv_record {
    std::string target;  ///< a trailing '.' is allowed
    std::uint16_t port = 0;
};

/// One TXT answer: its character strings in order (they are joined, per the spec).
using txt_record = std::vector<std::string>;

/// The SRV query name: "_" + srvServiceName + "._tcp." + srv_host.
std::string srv_query_name(const client_options& options);

/// Whether an SRV target may be used for srv_host: it must lie in srv_host's domain (srv_host
/// without its first label when it has three or more, else srv_host itself) and have more
/// labels than that domain. ASCII case and a trailing '.' are ignored. SRV polling uses it too.
bool srv_target_allowed(std::string_view srv_host, std::string_view target) noexcept;

/// The seeds the SRV answers give for srv_host: every target checked with srv_target_allowed,
/// every port nonzero, at least one answer. Throws configuration_error otherwise.
std::vector<server_address> srv_seeds(std::string_view srv_host, std::span<const srv_record> records);

namespace detail {
/// random_below(n) returns a uniformly chosen index in [0, n).
connection_string resolve_srv(const connection_string& parsed, std::span<const srv_record> records,
                              std::span<const txt_record> txt_records,
                              const std::function<std::size_t(std::size_t)>& random_below);
}  // namespace detail

/// Applies the DNS answers to a parsed mongodb+srv:// connection string:
/// - the SRV answers become the seed list (srv_seeds); when srvMaxHosts is positive and smaller
///   than their number, that many are picked at random (a partial Fisher-Yates shuffle drawing
///   from `random`, so that tests can fix the choice);
/// - at most one TXT record, holding only authSource, replicaSet and loadBalanced; an option the
///   connection string itself gives wins over the TXT one;
/// - then validate() runs again, since the new values can break a rule (loadBalanced with
///   several hosts, srvMaxHosts with replicaSet, an authSource MONGODB-X509 refuses, ...).
/// Throws configuration_error. Warnings from the TXT record are appended to the result's.
template <std::uniform_random_bit_generator Random>
connection_string resolve_srv(const connection_string& parsed, std::span<const srv_record> records,
                              std::span<const txt_record> txt_records, Random& random) {
    return detail::resolve_srv(parsed, records, txt_records, [&random](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
    });
}

}  // namespace trellis
