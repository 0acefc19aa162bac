// update (update_one, update_many, replace_one): the statement and its checks.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

struct update_statement {
    bson::document filter;
    update_spec update;  // update operators, a pipeline, or a replacement
    bool multi = false;
    bool upsert = false;
    std::optional<bson::array> array_filters;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<bson::document> sort;  // update_one and replace_one (8.0+)
};

/// Appends one update statement's fields ({q, u, multi, upsert, ...}) to an open document.
void append_statement(bson::builder& b, const update_statement& statement);

/// update: one statement (update_one, update_many, replace_one).
struct update_op {
    std::string collection;
    update_statement statement;
    std::optional<bson::document> let;
    std::optional<bool> bypass_document_validation;
    std::optional<comment_type> comment;
    write_concern wc;

    bson::document command() const;
    update_result parse(bson::document_view reply) const;
    /// Retryable as a write: one document at most (not multi).
    bool retryable() const noexcept { return !statement.multi; }
};

/// Checks an update: a document whose every top-level key is an operator ($set, ...), and there
/// is one; or a pipeline that is not empty.
void validate_update(const update_spec& update);
/// Checks a replacement: no top-level key is an operator.
void validate_replacement(bson::document_view replacement);

}  // namespace trellis::ops
