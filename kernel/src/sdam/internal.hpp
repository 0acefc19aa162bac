// Helpers shared by the SDAM sources (not installed).
#pragma once

#include <string>
#include <string_view>

namespace trellis::sdam::detail {

/// ASCII lower-case, as the spec's hostname normalization asks.
std::string lower(std::string_view s);

}  // namespace trellis::sdam::detail
