#include "ops/find.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

void find_op::validate() const {
    if (options.limit && *options.limit < 0)
        throw error(errc::invalid_argument, "find: limit must not be negative (got " + std::to_string(*options.limit) + ")");
    if (options.batch_size && *options.batch_size < 0)
        throw error(errc::invalid_argument,
                    "find: batch_size must not be negative (got " + std::to_string(*options.batch_size) + ")");
    if (options.skip && *options.skip < 0)
        throw error(errc::invalid_argument, "find: skip must not be negative (got " + std::to_string(*options.skip) + ")");
    if (options.max_await_time && options.cursor_type != cursor_type::tailable_await)
        throw error(errc::invalid_argument, "find: max_await_time applies to a tailable_await cursor only");
}

bson::document find_op::command() const {
    bson::builder b;
    b.append("find", collection).append("filter", filter.view());
    if (options.sort) b.append("sort", options.sort->view());
    if (options.projection) b.append("projection", options.projection->view());
    append_hint(b, options.hint);
    if (options.skip && *options.skip > 0) b.append("skip", *options.skip);
    if (options.limit && *options.limit > 0) b.append("limit", *options.limit);
    // The CRUD spec: a batchSize equal to the limit is sent as limit + 1, so that the server
    // closes the cursor with the last batch instead of leaving one to kill.
    if (options.batch_size)
        b.append("batchSize", options.limit && *options.limit > 0 && *options.batch_size == *options.limit
                                  ? static_cast<std::int64_t>(*options.batch_size) + 1
                                  : static_cast<std::int64_t>(*options.batch_size));
    if (single_batch) b.append("singleBatch", true);
    append_comment(b, options.comment);
    append_max_time(b, options.max_time);
    if (options.cursor_type != cursor_type::non_tailable) b.append("tailable", true);
    if (options.cursor_type == cursor_type::tailable_await) b.append("awaitData", true);
    if (options.no_cursor_timeout) b.append("noCursorTimeout", *options.no_cursor_timeout);
    if (options.allow_disk_use) b.append("allowDiskUse", *options.allow_disk_use);
    if (options.collation) b.append("collation", options.collation->view());
    if (options.let) b.append("let", options.let->view());
    return b.extract();
}

}  // namespace trellis::ops
