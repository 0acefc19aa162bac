// Pieces of the option checks that the connection string parser shares.
#pragma once

#include <string_view>

#include "trellis/options.hpp"

namespace trellis {

/// validate(), except that before_dns (a mongodb+srv:// string whose records are not yet
/// known) leaves out the checks the seedlist spec runs after the DNS lookups.
void validate_options(const client_options& options, bool before_dns);

/// The compressor names the compression spec defines.
bool known_compressor(std::string_view name) noexcept;

}  // namespace trellis
