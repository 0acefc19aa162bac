#include "ops/count.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

bson::document count_documents_op::command() const {
    bson::builder b;
    b.append("aggregate", collection).open_array("pipeline");
    b.open_document().append("$match", filter.view()).close_document();
    if (options.skip && *options.skip > 0) b.open_document().append("$skip", *options.skip).close_document();
    if (options.limit && *options.limit > 0) b.open_document().append("$limit", *options.limit).close_document();
    b.open_document().open_document("$group").append("_id", 1).open_document("n").append("$sum", 1).close_document()
        .close_document().close_document();
    b.close_array().open_document("cursor").close_document();
    append_hint(b, options.hint);
    if (options.collation) b.append("collation", options.collation->view());
    append_max_time(b, options.max_time);
    append_comment(b, options.comment);
    return b.extract();
}

std::int64_t count_documents_op::parse(bson::document_view reply) const {
    const auto batch = reply["cursor"].get_document()["firstBatch"].get_array();
    if (batch.empty()) return 0;
    return (*batch.begin()).get_document()["n"].as_int64();
}

bson::document estimated_count_op::command() const {
    bson::builder b;
    b.append("count", collection);
    append_max_time(b, options.max_time);
    append_comment(b, options.comment);
    return b.extract();
}

std::int64_t estimated_count_op::parse(bson::document_view reply) const { return int_field(reply, "n"); }

bson::document count_op::command() const {
    bson::builder b;
    b.append("count", collection).append("query", filter.view());
    if (options.skip && *options.skip != 0) b.append("skip", *options.skip);
    if (options.limit && *options.limit != 0) b.append("limit", *options.limit);
    append_hint(b, options.hint);
    if (options.collation) b.append("collation", options.collation->view());
    append_max_time(b, options.max_time);
    append_comment(b, options.comment);
    return b.extract();
}

std::int64_t count_op::parse(bson::document_view reply) const { return int_field(reply, "n"); }

}  // namespace trellis::ops
