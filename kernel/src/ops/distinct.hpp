// distinct.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

struct distinct_op {
    std::string collection;
    std::string key;
    bson::document filter;
    distinct_options options;
    bson::document command() const;
    bson::array parse(bson::document_view reply) const;
};

}  // namespace trellis::ops
