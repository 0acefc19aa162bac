// find and find_one.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

/// find: the command for find_options; the CRUD spec's batchSize/limit rules.
struct find_op {
    std::string collection;
    bson::document filter;
    find_options options;
    bool single_batch = false;  // find_one: {limit: 1, singleBatch: true}
    /// invalid_argument for combinations the server would misread (negative limit or batch size,
    /// max_await_time without tailable_await).
    void validate() const;
    bson::document command() const;
};

}  // namespace trellis::ops
