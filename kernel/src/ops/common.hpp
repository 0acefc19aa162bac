// What the operations (one per file in this directory) share: the connection's limits, write
// concerns, the fields every command may carry, and the parsing of write errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/collection.hpp"
#include "trellis/database.hpp"
#include "trellis/options.hpp"
#include "trellis/write_error.hpp"

namespace trellis::ops {

/// What an operation may depend on of the connection it goes out on.
struct connection_limits {
    int max_wire_version = 0;
    std::int32_t max_bson_object_size = 16 * 1024 * 1024;
    std::int32_t max_message_size_bytes = 48'000'000;
    std::int32_t max_write_batch_size = 100'000;
};

enum class op_kind { read, write, command };

/// The wire version of MongoDB 8.2: rawData is sent from it on.
inline constexpr int wire_version_8_2 = 27;

/// {w, j, wtimeout, fsync}; empty for the server's default.
bson::document write_concern_document(const write_concern& wc);
/// w: 0 without j: the server sends nothing back worth reading.
bool unacknowledged(const write_concern& wc);

/// Appends `hint`, `comment`, `maxTimeMS`, `writeConcern` when set (the fields every command shares).
void append_hint(bson::builder& b, const std::optional<hint_type>& hint);
void append_comment(bson::builder& b, const std::optional<comment_type>& comment);
void append_max_time(bson::builder& b, const std::optional<std::chrono::milliseconds>& max_time);
void append_write_concern(bson::builder& b, const write_concern& wc);

/// The reply's errorLabels and its writeConcernError's, in that order.
std::vector<std::string> error_labels(bson::document_view reply);

/// writeErrors and writeConcernError of a reply, as the server sent them.
std::vector<write_error_detail> write_errors_of(bson::document_view reply);
std::optional<write_error_detail> write_concern_error_of(bson::document_view reply);
/// The error for these write errors: its message names the first (and counts the others).
bulk_write_error write_failure(std::vector<write_error_detail> errors, std::optional<write_error_detail> wce,
                               std::vector<std::string> labels, bson::document reply, const std::string& where,
                               std::optional<bulk_write_result> partial);
/// Throws bulk_write_error when the reply carries writeErrors or a writeConcernError; `where`
/// prefixes the message.
void check_write_reply(bson::document_view reply, const std::string& where);

/// The document with an _id (an ObjectId first when it has none), and {_id: value}.
std::pair<bson::document, bson::document> with_id(bson::document doc);

/// A number field as an int64; 0 when it is missing or not a number.
std::int64_t int_field(bson::document_view d, std::string_view key);

/// A bulk write's model `index`, checked before anything is sent (update operators, a
/// replacement without them, no sort on update_many; errors name the model) and, for an insert,
/// given its _id. Returns {_id: v} for an insert, an empty document otherwise.
bson::document prepare_write_model(write_model& m, std::size_t index);

}  // namespace trellis::ops
