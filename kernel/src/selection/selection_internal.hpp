// Helpers shared by the selection sources; not installed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "trellis/selection.hpp"

namespace trellis::selection::detail {

/// A server's tags as "{dc: ny, rack: 2}".
std::string tags_text(const std::map<std::string, std::string>& tags);
/// "[{dc: ny}, {}]".
std::string tag_sets_text(const std::vector<tag_set>& sets);
/// Whether some tag set of the read preference is non-empty ([{}] asks for nothing).
bool has_tags(const read_preference& preference) noexcept;

}  // namespace trellis::selection::detail
