// count_documents, estimated_document_count and the deprecated count.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

/// count_documents: aggregate [{$match}, {$skip}, {$limit}, {$group: {_id: 1, n: {$sum: 1}}}].
struct count_documents_op {
    std::string collection;
    bson::document filter;
    count_options options;
    bson::document command() const;
    std::int64_t parse(bson::document_view reply) const;
};

/// estimated_document_count: the count command (what 4.9+ drivers send again since 5.0.9).
struct estimated_count_op {
    std::string collection;
    estimated_count_options options;
    bson::document command() const;
    std::int64_t parse(bson::document_view reply) const;
};

/// count (deprecated): {count, query, skip, limit, hint, collation, maxTimeMS, comment}.
struct count_op {
    std::string collection;
    bson::document filter;
    count_options options;
    bson::document command() const;
    std::int64_t parse(bson::document_view reply) const;
};

}  // namespace trellis::ops
