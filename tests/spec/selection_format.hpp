// The parts of the server selection test format (server-selection/tests/README) that the
// suites server-selection, max-staleness and in-window share: topology descriptions and
// read preferences read from JSON. Throw std::runtime_error on a value the format does not allow.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>

#include "trellis/selection.hpp"

namespace trellis::spec {

/// `topology_description`: type and servers (address, avg_rtt_ms, type, tags, lastUpdateTime,
/// lastWrite.lastWriteDate, maxWireVersion). Servers end up ordered by address.
sdk::topology_description parse_topology(const boost::json::value& description);

/// Why a file cannot be run under the current specifications (a server field from a draft,
/// a pre-3.4 wire version), or nullopt.
std::optional<std::string> unsupported_server_fields(const boost::json::value& description);

}  // namespace trellis::spec
