// The operation layer: one value type per operation. Each builds its command from the selected
// connection's description (limits, wire version) and parses the reply into a typed result or
// a typed error. Pure: no I/O, tested without a network (tests/unit/ops_test.cpp). The client's
// execute() does the rest (selection, sessions, retries, SDAM feedback).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/collection.hpp"
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

/// {w, j, wtimeout, fsync}; empty for the server's default.
bson::document write_concern_document(const write_concern& wc);
/// w: 0 without j: the server sends nothing back worth reading.
bool unacknowledged(const write_concern& wc);

/// The reply's errorLabels and its writeConcernError's, in that order.
std::vector<std::string> error_labels(bson::document_view reply);

/// Throws bulk_write_error when the reply carries writeErrors or a writeConcernError; `offset`
/// is added to each error's index (a later batch of an insert_many). `where` prefixes the message.
void check_write_reply(bson::document_view reply, std::int64_t offset, const std::string& where);

// ---- writes

/// insert: the documents with their _id (one generated where missing), split into batches that
/// respect maxWriteBatchSize and maxBsonObjectSize.
struct insert_op {
    std::string collection;
    std::vector<bson::document> documents;  // each with its _id first
    std::vector<bson::document> ids;        // {_id: v}, parallel to documents
    bool ordered = true;
    std::optional<bool> bypass_document_validation;
    write_concern wc;

    /// Gives every document an _id (an ObjectId first when it has none).
    static insert_op make(std::string collection, std::vector<bson::document> docs, bool ordered, write_concern wc);
    /// [first, last) of each batch for these limits.
    std::vector<std::pair<std::size_t, std::size_t>> batches(const connection_limits& limits) const;
    bson::document command(std::size_t first, std::size_t last) const;
};

struct update_statement {
    bson::document filter;
    bson::document update;  // an update document or a replacement
    bool multi = false;
    bool upsert = false;
    std::optional<bson::array> array_filters;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
};

/// update: one statement (update_one, update_many, replace_one).
struct update_op {
    std::string collection;
    update_statement statement;
    std::optional<bson::document> let;
    write_concern wc;

    bson::document command() const;
    update_result parse(bson::document_view reply) const;
    /// Retryable as a write: one document at most (not multi).
    bool retryable() const noexcept { return !statement.multi; }
};

/// Checks an update document: every top-level key is an operator ($set, ...), and there is one.
void validate_update(bson::document_view update);
/// Checks a replacement: no top-level key is an operator.
void validate_replacement(bson::document_view replacement);

/// delete: one statement (delete_one, delete_many).
struct delete_op {
    std::string collection;
    bson::document filter;
    bool multi = true;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
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
    bson::document command() const;
    std::int64_t parse(bson::document_view reply) const;
};

struct distinct_op {
    std::string collection;
    std::string key;
    bson::document filter;
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
