// createIndexes and the default index names.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

struct create_indexes_op {
    std::string collection;
    std::vector<index_model> indexes;
    write_concern wc;
    bson::document command() const;
    /// The names, given or generated ("a_1_b_-1"), in order.
    std::vector<std::string> names() const;
};
/// "a_1_b_-1" for {a: 1, b: -1}: the server's default index name.
std::string default_index_name(bson::document_view keys);

}  // namespace trellis::ops
