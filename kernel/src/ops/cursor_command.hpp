// listCollections and run_cursor_command: commands that answer with a cursor.
#pragma once

#include "ops/common.hpp"

namespace trellis::ops {

/// listCollections.
bson::document list_collections_command(const list_collections_options& options);

/// invalid_argument for an empty command, batch_size < 1 or a negative max_time.
void validate_cursor_command(bson::document_view command, const run_cursor_command_options& options);
/// A cursor command's reply holds cursor {id: int32 or int64, firstBatch: [documents], ns: "db.coll"
/// (optional)}: invalid_argument when it has no cursor document (the command returns none), an
/// operation_failure error naming the field when that document is malformed.
void check_cursor_reply(bson::document_view reply, std::string_view command_name);

}  // namespace trellis::ops
