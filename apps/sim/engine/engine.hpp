// trellis-sim's storage and query engine: in-memory databases and
// collections, MongoDB's query, update, sort, projection and aggregation
// semantics, unique indexes and an oplog for replication.
//
// Pure: no I/O, no threads, no clocks. The server layer owns one catalog per
// simulated member and serializes access to it. Errors are command_error,
// which the server turns into a reply shaped as mongod's
// ({ok: 0, errmsg, code, codeName} plus any extra fields).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/document.hpp"

namespace trellis::sim {

namespace bson = trellis::bson;

namespace detail {
class filter;
class update_plan;
}

// ---------------------------------------------------------------- errors

/// A server error. code/code_name as mongod's (e.g. 11000 DuplicateKey,
/// 2 BadValue, 9 FailedToParse, 14 TypeMismatch, 26 NamespaceNotFound,
/// 27 IndexNotFound, 48 NamespaceExists, 85 IndexOptionsConflict).
/// extra holds additional reply fields (for 11000: keyPattern and keyValue).
class command_error : public std::exception {
public:
    command_error(int code, std::string code_name, std::string message, bson::document extra = {})
        : code_(code), code_name_(std::move(code_name)), message_(std::move(message)), extra_(std::move(extra)) {}
    int code() const noexcept { return code_; }
    const std::string& code_name() const noexcept { return code_name_; }
    const std::string& message() const noexcept { return message_; }
    const bson::document& extra() const noexcept { return extra_; }
    const char* what() const noexcept override { return message_.c_str(); }

private:
    int code_;
    std::string code_name_;
    std::string message_;
    bson::document extra_;
};

// ---------------------------------------------------------------- values

/// MongoDB's comparison order of BSON values (MinKey < null < numbers <
/// string/symbol < object < array < binary < ObjectId < bool < date <
/// timestamp < regex < MaxKey); numbers of different types compare by value.
/// Returns <0, 0, >0.
int compare_values(const bson::element& a, const bson::element& b);

/// A collation, as far as trellis-sim knows one: locale "simple" compares strings by their
/// bytes; any other locale compares them by letters, with strength 1 ignoring case and
/// diacritics (Latin-1 letters), 2 ignoring case, 3 to 5 as "simple" (no tie-breaking rules).
struct collation {
    bool simple = true;
    int strength = 3;
    /// From a command's collation document; errors as mongod's: 40414 without locale, 2 BadValue
    /// for an unknown field or a strength outside 1..5, 14 TypeMismatch for a mistyped field.
    static collation parse(const bson::element& spec);
};

/// While alive, this thread's string comparisons (matching, sorting, distinct, $group keys)
/// follow the collation. The server layer holds one only around synchronous engine calls.
class collation_scope {
public:
    explicit collation_scope(const collation& c);
    ~collation_scope();
    collation_scope(const collation_scope&) = delete;
    collation_scope& operator=(const collation_scope&) = delete;

private:
    collation previous_;
};

/// Looks up a dotted path ("a.b.c", "arr.0.x") in a document. Returns the
/// element, or nullopt when absent. (No array fan-out: see matcher for that.)
std::optional<bson::element> get_path(bson::document_view doc, std::string_view path);

// ---------------------------------------------------------------- queries

/// A compiled query filter. Operators: $eq $ne $gt $gte $lt $lte $in $nin
/// $exists $and $or $nor $not $regex (with $options) $elemMatch $size $type;
/// dotted paths; a field that is an array matches when any element matches
/// (and when the array as a whole equals the operand). Unknown operators:
/// command_error 2 BadValue "unknown operator: $foo".
class matcher {
public:
    static matcher compile(bson::document_view filter);
    bool matches(bson::document_view doc) const;

    matcher();
    ~matcher();
    matcher(matcher&&) noexcept;
    matcher& operator=(matcher&&) noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

struct find_options {
    bson::document filter;      // {} matches everything
    bson::document sort;        // {} keeps insertion order
    bson::document projection;  // {} returns whole documents
    std::int64_t skip = 0;
    std::int64_t limit = 0;     // 0: no limit
    bson::document let;         // user variables for $expr ($$name)
};

// ---------------------------------------------------------------- oplog

/// One replicated change, as mongod's oplog shapes it:
///   {op: "i", ns: "db.coll", o: <document>}
///   {op: "u", ns, o2: {_id: ...}, o: <the whole new document>}
///   {op: "d", ns, o: {_id: ...}}
///   {op: "c", ns: "db.$cmd", o: {create: "coll"} | {drop: "coll"} | {dropDatabase: 1}
///                             | {createIndexes: "coll", key: {...}, name: "...", unique: bool}
///                             | {dropIndexes: "coll", index: "name"}}
/// Every mutating call appends the entries of what it changed, in order; a
/// secondary's catalog::apply() of those entries reproduces the primary's state.
using oplog = std::vector<bson::document>;

/// The largest document a collection stores unless its catalog says otherwise (mongod's
/// BSONObjMaxUserSize, 16 MiB): a larger one, inserted or produced by an update, is refused with
/// 10334 BSONObjectTooLarge.
inline constexpr std::size_t default_max_document_size = 16 * 1024 * 1024;

// ---------------------------------------------------------------- collections

struct index_info {
    std::string name;    // "_id_", "a_1_b_-1", or as given
    bson::document key;  // {a: 1, b: -1}
    bool unique = false;
};

struct update_result {
    std::int64_t matched = 0;
    std::int64_t modified = 0;
    std::optional<bson::document> upserted_id;  // {_id: <value>} when an upsert inserted
};

struct find_and_modify_options {
    bson::document query;
    bson::document sort;
    bson::document fields;      // projection of the returned document
    std::optional<bson::document> update;  // update operators, or a replacement
    std::optional<bson::array> update_pipeline;  // or a pipeline-style update
    bson::array array_filters;
    bson::document let;
    bool remove = false;
    bool return_new = false;    // "new": return the document after the change
    bool upsert = false;
};

struct find_and_modify_result {
    std::optional<bson::document> value;  // null when nothing matched (and no upsert)
    bool updated_existing = false;
    std::optional<bson::document> upserted_id;  // {_id: <value>}
    std::int64_t n = 0;
};

/// A capped collection's limits (create's capped, size, max): inserting past either evicts the
/// oldest documents. size is in bytes, as mongod rounds it: at least 4096, else a multiple of 256.
struct capped_options {
    std::int64_t size = 0;
    std::int64_t max = 0;  // 0: no document count limit
};

/// A collection's document validation (create's or collMod's validator, validationLevel,
/// validationAction). A document stored against it fails with 121 DocumentValidationFailure,
/// errInfo {failingDocumentId, details: {operatorName, specifiedAs, reason}}; "moderate" checks
/// only updates of documents that were valid; action "warn" stores it anyway.
struct validation_options {
    bson::document validator;  // a query filter; empty: none
    std::string level = "strict";
    std::string action = "error";
};

/// While alive, this thread's writes skip document validation (bypassDocumentValidation, and a
/// secondary applying its primary's oplog).
class validation_bypass {
public:
    validation_bypass();
    ~validation_bypass();
    validation_bypass(const validation_bypass&) = delete;
    validation_bypass& operator=(const validation_bypass&) = delete;

private:
    bool previous_;
};

/// What an update or delete statement may add: arrayFilters (updates only) and the command's let.
struct write_extras {
    bson::array_view array_filters;
    bson::document_view let;
};

class collection {
public:
    explicit collection(std::string ns);  // "db.coll"

    const std::string& ns() const noexcept { return ns_; }

    /// Inserts one document; adds an ObjectId _id first when it has none.
    /// Returns the stored document. Duplicate key (on _id or a unique index):
    /// command_error 11000 "E11000 duplicate key error collection: db.coll
    /// index: <name> dup key: { <field>: <value> }" with extra
    /// {keyPattern: {...}, keyValue: {...}}.
    const bson::document& insert(bson::document doc, oplog& log);

    /// Matching documents, sorted, skipped, limited and projected.
    std::vector<bson::document> find(const find_options& options) const;

    /// Update operators $set $unset $inc $push (with $each) $setOnInsert
    /// (and $min $max $mul $rename $addToSet $pull $pop where simple), or a
    /// replacement document (no operators; _id kept). Dotted paths create
    /// intermediate documents. Upsert: a new document from the filter's
    /// equality fields plus the update (plus $setOnInsert). Errors: 9
    /// FailedToParse for a malformed update, 14 TypeMismatch for $inc on a
    /// non-number, 66 ImmutableField for changing _id, 11000 for duplicates.
    /// $[identifier] paths take their elements from extras.array_filters; $$name in a filter's
    /// $expr comes from extras.let.
    update_result update(bson::document_view filter, bson::document_view update, bool upsert, bool multi, oplog& log,
                         const write_extras& extras = {});
    /// A pipeline-style update: stages $addFields/$set, $project/$unset, $replaceRoot/$replaceWith
    /// (others: 72 InvalidOptions); the result keeps the old _id (66 ImmutableField when changed).
    update_result update_pipeline(bson::document_view filter, bson::array_view pipeline, bool upsert, bool multi,
                                  oplog& log, const write_extras& extras = {});

    /// Deletes the first match (limit 1) or all matches (limit 0). Returns n.
    std::int64_t remove(bson::document_view filter, bool just_one, oplog& log, bson::document_view let = {});

    find_and_modify_result find_and_modify(const find_and_modify_options& options, oplog& log);

    std::int64_t count(bson::document_view filter, std::int64_t skip, std::int64_t limit) const;

    /// Distinct values of a (dotted) key among matching documents; array
    /// values contribute their elements. Returned as an array, in first-seen order.
    bson::array distinct(std::string_view key, bson::document_view filter) const;

    /// Stages $match $project $sort $skip $limit $group $count $unwind $addFields/$set
    /// $unset; $group accumulators $sum $avg $min $max $first $last $push $addToSet $count;
    /// expressions: "$field.path" references, literals, and simple operators
    /// ($add $subtract $multiply $divide $concat $toUpper $toLower $eq $ne $gt $gte
    /// $lt $lte $cond $ifNull). Unknown stage: command_error 40324
    /// "Unrecognized pipeline stage name: '$foo'".
    std::vector<bson::document> aggregate(bson::array_view pipeline, bson::document_view let = {}) const;

    /// Creates an index; an existing identical one is fine; same name with a
    /// different key or options: 85 IndexOptionsConflict; a unique index over
    /// existing duplicates: 11000.
    void create_index(const index_info& index, oplog& log);
    /// Drops by name ("*" drops all but _id_); 27 IndexNotFound.
    void drop_index(std::string_view name, oplog& log);
    std::vector<index_info> indexes() const;

    /// Set for a capped collection (catalog::create with capped options).
    const std::optional<capped_options>& capped() const noexcept;
    const validation_options& validation() const noexcept;
    /// How many documents were ever inserted: a tailable cursor's position.
    std::uint64_t inserted_total() const noexcept;
    /// A tailable cursor's next documents: those inserted after `position` (an inserted_total())
    /// that match options.filter, projected by options.projection, oldest first. Some evicted
    /// before they were read: command_error 136 CappedPositionLost.
    std::vector<bson::document> inserted_since(std::uint64_t position, const find_options& options) const;

    std::size_t size() const noexcept;
    /// Approximate data size in bytes (sum of document sizes).
    std::size_t data_size() const noexcept;
    /// All documents in insertion order (for snapshots and tests).
    std::vector<bson::document_view> documents() const;

private:
    friend class catalog;
    struct state;
    update_result update_with(bson::document_view filter, const detail::filter& f, const detail::update_plan& plan,
                              bool upsert, bool multi, oplog& log);
    std::string ns_;
    std::shared_ptr<state> state_;  // copy-on-write friendly; catalog::clone deep-copies
};

/// Runs pipeline stages over documents that come from no collection (a database-level
/// aggregate's first stage, $collStats): the stages collection::aggregate runs.
std::vector<bson::document> run_pipeline(std::vector<bson::document> docs, bson::array_view pipeline,
                                         bson::document_view let = {});

// ---------------------------------------------------------------- catalog

/// A read-only view: a pipeline over another collection or view of the same database.
struct view_info {
    std::string view_on;
    bson::array pipeline;
};

/// All databases of one member.
class catalog {
public:
    catalog();
    ~catalog();
    catalog(catalog&&) noexcept;
    catalog& operator=(catalog&&) noexcept;

    /// A deep, independent copy (initial sync, rollback by resync).
    catalog clone() const;

    /// The largest document this catalog's collections store (a deployment's maxBsonObjectSize),
    /// for the collections there are and those to come.
    void set_max_document_size(std::size_t bytes);

    /// The collection, or nullptr.
    collection* find(std::string_view db, std::string_view coll);
    const collection* find(std::string_view db, std::string_view coll) const;
    /// The collection, created (with its _id_ index, logged as {create}) when absent.
    collection& get_or_create(std::string_view db, std::string_view coll, oplog& log);
    /// Explicit create: 48 NamespaceExists when present. Invalid names
    /// (empty, containing '$' or '\0', db names with '/\\. "'): 73 InvalidNamespace.
    collection& create(std::string_view db, std::string_view coll, oplog& log,
                       const std::optional<capped_options>& capped = std::nullopt);
    /// Creates a view (logged as {create, viewOn, pipeline}); 48 NamespaceExists when the name is taken.
    void create_view(std::string_view db, std::string_view name, std::string_view view_on, bson::array_view pipeline,
                     oplog& log);
    /// The view, or nullptr.
    const view_info* find_view(std::string_view db, std::string_view name) const;
    std::vector<std::string> view_names(std::string_view db) const;
    /// The collection a view reads and its whole pipeline (views on views unfolded).
    std::pair<std::string, bson::array> resolve_view(std::string_view db, std::string_view name) const;
    /// Drops a collection or a view. Returns false when neither existed.
    bool drop(std::string_view db, std::string_view coll, oplog& log);
    /// collMod's validator, validationLevel and validationAction (logged as {collMod, ...});
    /// 26 NamespaceNotFound when the collection does not exist.
    void modify(std::string_view db, std::string_view coll, const validation_options& validation, oplog& log);
    /// Returns false when the database did not exist.
    bool drop_database(std::string_view db, oplog& log);

    /// Databases that hold at least one collection, sorted by name.
    std::vector<std::string> database_names() const;
    std::vector<std::string> collection_names(std::string_view db) const;
    std::size_t database_size(std::string_view db) const;

    /// Applies one oplog entry as a secondary does. Idempotent for "i"
    /// (replaces an existing _id), "u", "d" and "c" entries.
    void apply(bson::document_view entry);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace trellis::sim
