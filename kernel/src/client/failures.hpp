// Kinds of failure the operation path tells apart.
#pragma once

#include <exception>

namespace trellis::detail {

/// A failure of the connection during an operation (network error or timeout, a broken frame,
/// a cleared pool): the server session it used is dirty and is not pooled again.
bool network_failure(const std::exception_ptr& e);

}  // namespace trellis::detail
