// find_one_and_update / _replace / _delete: one findAndModify command.
#pragma once

#include <optional>
#include <string>

#include "ops/update.hpp"

namespace trellis::ops {

struct find_and_modify_op {
    enum class kind { update, replace, remove };
    std::string collection;
    bson::document filter;
    update_spec change;  // the update or the replacement; unused for remove
    find_one_and_modify_options options;
    kind what = kind::update;
    write_concern wc;

    /// invalid_argument for an update without operators, a replacement with them, and options
    /// that do not apply (array_filters with replace; upsert or return_document after with remove).
    void validate() const;
    bson::document command() const;
    /// The reply's value: the document, or nullopt when none matched (and nothing was upserted).
    std::optional<bson::document> parse(bson::document_view reply) const;
};

}  // namespace trellis::ops
