// delete (delete_one, delete_many).
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

/// delete: one statement (delete_one, delete_many).
struct delete_op {
    std::string collection;
    bson::document filter;
    bool multi = true;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<bson::document> let;
    std::optional<comment_type> comment;
    write_concern wc;

    bson::document command() const;
    delete_result parse(bson::document_view reply) const;
    bool retryable() const noexcept { return !multi; }
};

}  // namespace trellis::ops
