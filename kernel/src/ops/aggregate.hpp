// aggregate, on a collection or a database.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

/// aggregate: a cursor command; $out/$merge make it a write (sent to the primary).
struct aggregate_op {
    std::string collection;  // empty: a database aggregate ({aggregate: 1})
    bson::array pipeline;
    aggregate_options options;
    bson::document command() const;
    bool writes() const;
};

}  // namespace trellis::ops
