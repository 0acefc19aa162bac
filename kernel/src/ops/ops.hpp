// The operation layer: one value type per operation. Each builds its command from the selected
// connection's description (limits, wire version) and parses the reply into a typed result or
// a typed error. Pure: no I/O, tested without a network (tests/unit/ops_test.cpp). The client's
// execute() does the rest (selection, sessions, retries, SDAM feedback).
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

// ---- writes

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
/// A bulk write's model `index`, checked before anything is sent (update operators, a
/// replacement without them, no sort on update_many; errors name the model) and, for an insert,
/// given its _id. Returns {_id: v} for an insert, an empty document otherwise.
bson::document prepare_write_model(write_model& m, std::size_t index);

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

// ---- reads

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

struct distinct_op {
    std::string collection;
    std::string key;
    bson::document filter;
    distinct_options options;
    bson::document command() const;
    bson::array parse(bson::document_view reply) const;
};

/// aggregate: a cursor command; $out/$merge make it a write (sent to the primary).
struct aggregate_op {
    std::string collection;  // empty: a database aggregate ({aggregate: 1})
    bson::array pipeline;
    aggregate_options options;
    bson::document command() const;
    bool writes() const;
};

/// find: the command for find_options; the CRUD spec's batchSize/limit rules.
struct find_op {
    std::string collection;
    bson::document filter;
    find_options options;
    bool single_batch = false;  // find_one: {limit: 1, singleBatch: true}
    /// invalid_argument for combinations the server would misread (negative limit or batch size,
    /// max_await_time without tailable_await).
    void validate() const;
    bson::document command() const;
};

/// listCollections.
bson::document list_collections_command(const list_collections_options& options);

// ---- run_cursor_command

/// invalid_argument for an empty command, batch_size < 1 or a negative max_time.
void validate_cursor_command(bson::document_view command, const run_cursor_command_options& options);
/// A cursor command's reply holds cursor {id: int32 or int64, firstBatch: [documents], ns: "db.coll"
/// (optional)}: invalid_argument when it has no cursor document (the command returns none), an
/// operation_failure error naming the field when that document is malformed.
void check_cursor_reply(bson::document_view reply, std::string_view command_name);

// ---- indexes and collections

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
