// hello replies into a ServerDescription, and that description into a TopologyDescription.
// Input: byte 0 chooses the topology the reply arrives in, the rest is the reply (BSON; bytes
// the validator refuses are dropped, as the connection does).
//   - parse_hello() never throws; the address is the normalized one; Unknown always says why;
//     hosts, passives, arbiters, me and primary come out lower-case (socket paths as they are);
//   - update() throws nothing but configuration_error (a malformed address in the reply), and
//     its result keeps the spec's invariants: servers ordered by address without repeats, at
//     most one RSPrimary (exactly one in ReplicaSetWithPrimary), a server of this address only
//     when the topology still has it.
#include <algorithm>

#include "fuzz_check.hpp"
#include "trellis/sdam.hpp"

namespace sdam = trellis::sdam;
using trellis::fuzz::hex;

namespace {

// Socket paths (holding a '/') keep their case: paths are case-sensitive.
bool lower_case(std::string_view s) {
    if (s.find('/') != std::string_view::npos) return true;
    return std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

sdam::topology_description topology_for(std::uint8_t choice) {
    switch (choice % 5) {
        case 0: return sdam::initial_topology({"a:27017"}, std::nullopt, false);
        case 1: return sdam::initial_topology({"a:27017", "b:27017", "c:27017"}, std::nullopt, false);
        case 2: return sdam::initial_topology({"a:27017", "b:27017"}, std::string("rs"), false);
        case 3: return sdam::initial_topology({"a:27017"}, std::string("rs"), true);
        default: return sdam::initial_topology({"a:27017"}, std::nullopt, true);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::span<const std::uint8_t> reply_bytes(data + 1, size - 1);
    if (trellis::bson::find_error(reply_bytes)) return 0;
    const trellis::bson::document_view reply(reply_bytes.data(), reply_bytes.size());

    sdam::server_description d;
    try {
        d = sdam::parse_hello("A:27017", reply, std::chrono::microseconds(1500), sdam::clock::now());
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, std::string("parse_hello threw: ") + e.what() + " for " + hex(reply_bytes));
    }
    FUZZ_CHECK(d.address == "a:27017", "address " + d.address);
    FUZZ_CHECK(d.type != sdam::server_type::unknown || d.error.has_value(), "Unknown without a reason for " + hex(reply_bytes));
    for (const auto* list : {&d.hosts, &d.passives, &d.arbiters})
        for (const auto& h : *list) FUZZ_CHECK(lower_case(h), "host not lower-cased: " + h);
    if (d.me) FUZZ_CHECK(lower_case(*d.me), "me not lower-cased: " + *d.me);
    if (d.primary) FUZZ_CHECK(lower_case(*d.primary), "primary not lower-cased: " + *d.primary);
    FUZZ_CHECK(sdam::same_description(d, d), "a description differs from itself");

    const sdam::topology_description before = topology_for(data[0]);
    sdam::update_result r;
    try {
        r = sdam::update(before, d);
    } catch (const trellis::configuration_error&) {
        return 0;
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, std::string("update threw something else than configuration_error: ") + e.what());
    }
    const auto& servers = r.topology.servers;
    for (std::size_t i = 1; i < servers.size(); ++i)
        FUZZ_CHECK(servers[i - 1].address < servers[i].address,
                   "servers not ordered or repeated: " + servers[i - 1].address + ", " + servers[i].address);
    const auto primaries = std::count_if(servers.begin(), servers.end(),
                                         [](const auto& s) { return s.type == sdam::server_type::rs_primary; });
    FUZZ_CHECK(primaries <= 1, std::to_string(primaries) + " primaries");
    if (r.topology.type == sdam::topology_type::replica_set_with_primary) FUZZ_CHECK(primaries == 1, "ReplicaSetWithPrimary without a primary");
    if (r.topology.type == sdam::topology_type::replica_set_no_primary) FUZZ_CHECK(primaries == 0, "ReplicaSetNoPrimary with a primary");
    if (!r.applied) FUZZ_CHECK(sdam::same_topology(r.topology, before), "a dropped description changed the topology");
    return 0;
}
