// Internal knobs of a client_session, for tests (not part of the public API; include through
// the trellis_internal target).
#pragma once

#include <chrono>

#include "trellis/session.hpp"

namespace trellis::detail {

/// with_transaction's limit on retries for this session (the convenient API spec's 120 s), so
/// that a test of the limit runs in milliseconds. Set it before the session is used.
void set_with_transaction_limit(client_session& s, std::chrono::steady_clock::duration limit);

}  // namespace trellis::detail
