// Suite unified: operations, as a table from (entity type, operation name) to a handler that
// drives the Trellis client API, and the format's special test runner operations.
//
// An operation the format defines but Trellis does not offer is a SKIP ("operation updateOne not
// implemented"); so is an argument the format defines that the API has no way to express
// ("option hint not supported"). A name the format does not define is a FAIL, as the format asks.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/client_bulk_write.hpp"
#include "trellis/errors.hpp"
#include "trellis/gridfs.hpp"
#include "../runner.hpp"
#include "unified.hpp"

namespace trellis::spec::unified {

namespace {

using namespace std::chrono_literals;

struct op_result {
    bool has = false;
    json::value value;      // canonical
    bool iterable = false;  // an iterable of root-level documents (find, listDatabases, ...)
    std::optional<entity> made;  // an entity to save (a cursor)
};

op_result value_result(json::value v, bool iterable = false) {
    op_result r;
    r.has = true;
    r.value = std::move(v);
    r.iterable = iterable;
    return r;
}

struct call {
    test_context& ctx;
    entity* object;  // nullptr for testRunner
    const json::object& args;
    const json::value* opt(std::string_view key) const { return args.if_contains(key); }
    const json::value& arg(std::string_view key) const { return args.at(key); }
};

struct op_spec {
    std::vector<std::string_view> required;
    std::vector<std::string_view> optional;
    op_result (*run)(call&);
};

// Every operation name the format (and the specifications' test files) use. A name in this
// list without a handler below is skipped as not implemented; any other name fails the test.
const std::set<std::string, std::less<>>& known_operations() {
    static const std::set<std::string, std::less<>> names = {
        // client, database, collection
        "abortTransaction", "aggregate", "appendMetadata", "bulkWrite", "clientBulkWrite", "close", "commitTransaction",
        "count", "countDocuments", "createChangeStream", "createCollection", "createCommandCursor", "createFindCursor",
        "createIndex", "createIndexes", "createSearchIndex", "createSearchIndexes", "deleteMany", "deleteOne", "distinct",
        "drop", "dropCollection", "dropIndex", "dropIndexes", "dropSearchIndex", "endSession", "estimatedDocumentCount",
        "find", "findOne", "findOneAndDelete", "findOneAndReplace", "findOneAndUpdate", "getSnapshotTime", "insertMany",
        "insertOne", "iterateOnce", "iterateUntilDocumentOrError", "listCollectionNames", "listCollectionObjects",
        "listCollections", "listDatabaseNames", "listDatabaseObjects", "listDatabases", "listIndexNames", "listIndexes",
        "listSearchIndexes", "mapReduce", "modifyCollection", "rename", "replaceOne", "runCommand", "runCursorCommand",
        "startTransaction", "updateMany", "updateOne", "updateSearchIndex", "watch", "withTransaction",
        // GridFS buckets
        "delete", "download", "downloadByName", "openDownloadStream", "openDownloadStreamByName", "openUploadStream",
        "openUploadStreamWithId", "upload", "uploadWithId", "downloadToStream", "downloadToStreamByName",
        "uploadFromStream", "uploadFromStreamWithId", "deleteByName", "renameByName",
        // clientEncryption
        "addKeyAltName", "createDataKey", "createEncryptedCollection", "decrypt", "deleteKey", "encrypt", "getKey",
        "getKeyByAltName", "getKeys", "removeKeyAltName", "rewrapManyDataKey",
        // testRunner
        "assertCollectionExists", "assertCollectionNotExists", "assertDifferentLsidOnLastTwoCommands", "assertEventCount",
        "assertIndexExists", "assertIndexNotExists", "assertNumberConnectionsCheckedOut", "assertSameLsidOnLastTwoCommands",
        "assertSessionDirty", "assertSessionNotDirty", "assertSessionPinned", "assertSessionTransactionState",
        "assertSessionUnpinned", "assertTopologyType", "createEntities", "failPoint", "loop", "recordTopologyDescription",
        "runOnThread", "targetedFailPoint", "wait", "waitForEvent", "waitForPrimaryChange", "waitForThread"};
    return names;
}

// Arguments the format defines for some operation: an unhandled one is "not supported" (SKIP).
const std::set<std::string, std::less<>>& known_arguments() {
    static const std::set<std::string, std::less<>> names = {
        "allowDiskUse", "allowPartialResults", "arrayFilters", "authorizedDatabases", "batchSize", "bypassDocumentValidation",
        "collation", "comment", "cursorType", "encryptedFields", "filter", "fullDocument", "fullDocumentBeforeChange",
        "hint", "let", "limit", "max", "maxAwaitTimeMS", "maxCommitTimeMS", "maxTimeMS", "min", "nameOnly",
        "noCursorTimeout", "oplogReplay", "ordered", "pipeline", "projection", "rawData", "readConcern", "readPreference",
        "resumeAfter", "returnDocument", "returnKey", "showExpandedEvents", "showRecordId", "skip", "sort", "startAfter",
        "startAtOperationTime", "timeoutMode", "timeoutMS", "upsert", "verboseResults", "writeConcern", "maxStalenessSeconds"};
    return names;
}

collection& coll_of(call& c) { return *c.object->coll; }

// ---------------------------------------------------------------- client operations

op_result list_database_names(call& c) {
    json::array names;
    for (const std::string& n : c.object->client->client->database_names()) names.emplace_back(n);
    return value_result(std::move(names));
}

op_result close_client(call& c) {
    c.object->client->client->close();
    return {};
}

// ---------------------------------------------------------------- database operations

op_result run_command(call& c) {
    const json::value& command = c.arg("command");
    const std::string name = string_of(c.arg("commandName"), "commandName");
    const json::object& o = object_of(command, "command");
    if (o.empty() || o.begin()->key() != name)
        fail("runCommand: commandName \"" + name + "\" is not the command's first key");
    bson::document reply = c.opt("readPreference")
                               ? c.object->db->run_command(to_bson(command), read_preference_of(c.arg("readPreference")))
                               : c.object->db->run_command(to_bson(command));
    return value_result(from_bson(reply));
}

std::optional<comment_type> comment_of(call& c);

// runCursorCommand and createCommandCursor: the command, and options for the cursor's getMores.
cursor run_cursor_command_of(call& c) {
    const json::value& command = c.arg("command");
    const std::string name = string_of(c.arg("commandName"), "commandName");
    const json::object& o = object_of(command, "command");
    if (o.empty() || o.begin()->key() != name)
        fail("runCursorCommand: commandName \"" + name + "\" is not the command's first key");
    run_cursor_command_options options;
    if (const auto* v = c.opt("readPreference")) options.read_preference = read_preference_of(*v);
    if (const auto* v = c.opt("batchSize")) options.batch_size = static_cast<std::int32_t>(integer_of(*v, "batchSize"));
    if (const auto* v = c.opt("maxTimeMS")) options.max_time = std::chrono::milliseconds(integer_of(*v, "maxTimeMS"));
    options.comment = comment_of(c);
    if (const auto* v = c.opt("cursorType")) {
        const std::string t = string_of(*v, "cursorType");
        if (t == "tailable") options.cursor_type = cursor_type::tailable;
        else if (t == "tailableAwait") options.cursor_type = cursor_type::tailable_await;
        else if (t == "nonTailable") options.cursor_type = cursor_type::non_tailable;
        else fail("cursorType \"" + t + "\" is not tailable, tailableAwait or nonTailable");
    }
    return c.object->db->run_cursor_command(to_bson(command), std::move(options));
}
const std::vector<std::string_view> cursor_command_arguments = {"readPreference", "batchSize", "maxTimeMS", "comment", "cursorType"};

// Not a name the format defines: Trellis's database::drop, for files written for Trellis.
op_result drop_database(call& c) {
    c.object->db->drop();
    return {};
}

// ---------------------------------------------------------------- collection operations

bson::array array_bson(const json::value& v, std::string_view what) {
    json::object wrapped;
    std::size_t i = 0;
    for (const auto& e : array_of(v, what)) wrapped[std::to_string(i++)] = e;
    return bson::array(to_bson(wrapped));
}

std::optional<hint_type> hint_in(const json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_string()) return hint_type(std::in_place_index<0>, std::string(v->get_string()));
    return hint_type(std::in_place_index<1>, to_bson(*v));
}
std::optional<hint_type> hint_of(call& c) { return hint_in(c.opt("hint")); }

std::optional<comment_type> comment_of(call& c) {
    const auto* v = c.opt("comment");
    if (!v) return std::nullopt;
    if (v->is_string()) return comment_type(std::in_place_index<0>, std::string(v->get_string()));
    if (v->is_object()) return comment_type(std::in_place_index<1>, to_bson(*v));
    skip("option comment of a type other than string or document not supported");
}

template <class T>
std::optional<T> doc_opt(call& c, std::string_view key) {
    if (const auto* v = c.opt(key)) return T(to_bson(*v));
    return std::nullopt;
}
std::optional<bool> bool_opt(call& c, std::string_view key) {
    if (const auto* v = c.opt(key)) return v->as_bool();
    return std::nullopt;
}
std::optional<std::chrono::milliseconds> max_time_of(call& c) {
    if (const auto* v = c.opt("maxTimeMS")) return std::chrono::milliseconds(integer_of(*v, "maxTimeMS"));
    return std::nullopt;
}

update_spec update_spec_of(const json::value& v) {
    if (v.is_array()) return update_spec(std::in_place_index<1>, array_bson(v, "update pipeline"));
    return update_spec(std::in_place_index<0>, to_bson(v));
}

json::value id_of(const bson::document& id_document) {
    const json::value id = from_bson(id_document);
    return id.as_object().at("_id");
}

json::value cursor_documents(cursor& cur) {
    json::array docs;
    while (auto d = cur.next()) docs.push_back(from_bson(*d));
    return docs;
}

op_result insert_one(call& c) {
    insert_one_options o;
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    const insert_one_result r = coll_of(c).insert_one(to_bson(c.arg("document")), o);
    json::object out;
    const json::value id = from_bson(r.inserted_id);
    if (const auto* v = id.as_object().if_contains("_id")) out["insertedId"] = *v;
    return value_result(std::move(out));
}

find_options find_options_of(call& c) {
    find_options o;
    if (const auto* v = c.opt("limit")) o.limit = integer_of(*v, "limit");
    if (const auto* v = c.opt("batchSize")) o.batch_size = static_cast<std::int32_t>(integer_of(*v, "batchSize"));
    if (const auto* v = c.opt("skip")) o.skip = integer_of(*v, "skip");
    o.sort = doc_opt<bson::document>(c, "sort");
    o.projection = doc_opt<bson::document>(c, "projection");
    o.hint = hint_of(c);
    o.max_time = max_time_of(c);
    o.comment = comment_of(c);
    o.collation = doc_opt<bson::document>(c, "collation");
    o.allow_disk_use = bool_opt(c, "allowDiskUse");
    o.no_cursor_timeout = bool_opt(c, "noCursorTimeout");
    o.let = doc_opt<bson::document>(c, "let");
    o.raw_data = bool_opt(c, "rawData");
    return o;
}
const std::vector<std::string_view> find_arguments = {"limit", "batchSize", "skip", "sort", "projection", "hint", "maxTimeMS",
                                                      "comment", "collation", "allowDiskUse", "noCursorTimeout", "let", "rawData"};

op_result find(call& c) {
    cursor cur = coll_of(c).find(to_bson(c.arg("filter")), find_options_of(c));
    return value_result(cursor_documents(cur), true);
}

op_result find_one(call& c) {
    std::optional<bson::document> d = coll_of(c).find_one(to_bson(c.arg("filter")), find_options_of(c));
    return value_result(d ? from_bson(*d) : json::value(nullptr));
}

op_result create_find_cursor(call& c) {
    auto cur = std::make_shared<cursor>(coll_of(c).find(to_bson(c.arg("filter")), find_options_of(c)));
    op_result r;
    entity e;
    e.k = entity::kind::cursor;
    e.cursor = std::move(cur);
    r.made = std::move(e);
    return r;
}

op_result run_cursor_command(call& c) {
    cursor cur = run_cursor_command_of(c);
    return value_result(cursor_documents(cur), true);
}

// The command has run (its reply is the cursor's first batch); nothing is iterated yet.
op_result create_command_cursor(call& c) {
    op_result r;
    entity e;
    e.k = entity::kind::cursor;
    e.cursor = std::make_shared<cursor>(run_cursor_command_of(c));
    r.made = std::move(e);
    return r;
}

op_result insert_many(call& c) {
    std::vector<bson::document> docs;
    for (const auto& d : array_of(c.arg("documents"), "documents")) docs.push_back(to_bson(d));
    insert_many_options o;
    if (const auto* v = c.opt("ordered")) o.ordered = v->as_bool();
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    const insert_many_result r = coll_of(c).insert_many(std::move(docs), o);
    json::object ids;
    for (std::size_t i = 0; i < r.inserted_ids.size(); ++i) ids[std::to_string(i)] = id_of(r.inserted_ids[i]);
    json::object out;
    out["insertedIds"] = std::move(ids);
    return value_result(std::move(out));
}

update_options update_options_of(call& c) {
    update_options o;
    if (const auto* v = c.opt("upsert")) o.upsert = v->as_bool();
    if (const auto* v = c.opt("arrayFilters")) o.array_filters = array_bson(*v, "arrayFilters");
    o.collation = doc_opt<bson::document>(c, "collation");
    o.let = doc_opt<bson::document>(c, "let");
    o.hint = hint_of(c);
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.comment = comment_of(c);
    o.sort = doc_opt<bson::document>(c, "sort");
    o.raw_data = bool_opt(c, "rawData");
    return o;
}

op_result update_result_of(const update_result& r) {
    json::object out;
    out["matchedCount"] = r.matched_count;
    out["modifiedCount"] = r.modified_count;
    out["upsertedCount"] = r.upserted_id ? 1 : 0;
    if (r.upserted_id) out["upsertedId"] = id_of(*r.upserted_id);
    return value_result(std::move(out));
}

op_result update_with(call& c, bool many) {
    auto coll = coll_of(c);
    const auto filter = to_bson(c.arg("filter"));
    const auto update = update_spec_of(c.arg("update"));
    return update_result_of(many ? coll.update_many(filter, update, update_options_of(c))
                                 : coll.update_one(filter, update, update_options_of(c)));
}
op_result update_one(call& c) { return update_with(c, false); }
op_result update_many(call& c) { return update_with(c, true); }
op_result replace_one(call& c) {
    return update_result_of(coll_of(c).replace_one(to_bson(c.arg("filter")), to_bson(c.arg("replacement")), update_options_of(c)));
}

op_result delete_with(call& c, bool many) {
    delete_options o;
    o.collation = doc_opt<bson::document>(c, "collation");
    o.hint = hint_of(c);
    o.let = doc_opt<bson::document>(c, "let");
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    const auto filter = to_bson(c.arg("filter"));
    const delete_result r = many ? coll_of(c).delete_many(filter, o) : coll_of(c).delete_one(filter, o);
    json::object out;
    out["deletedCount"] = r.deleted_count;
    return value_result(std::move(out));
}
op_result delete_one(call& c) { return delete_with(c, false); }
op_result delete_many(call& c) { return delete_with(c, true); }

// ---- bulkWrite

json::value bulk_result_json(const bulk_write_result& r) {
    json::object out;
    out["insertedCount"] = r.inserted_count;
    out["matchedCount"] = r.matched_count;
    out["modifiedCount"] = r.modified_count;
    out["deletedCount"] = r.deleted_count;
    out["upsertedCount"] = r.upserted_count;
    json::object inserted, upserted;
    for (const auto& [i, id] : r.inserted_ids) inserted[std::to_string(i)] = id_of(id);
    for (const auto& [i, id] : r.upserted_ids) upserted[std::to_string(i)] = id_of(id);
    out["insertedIds"] = std::move(inserted);
    out["upsertedIds"] = std::move(upserted);
    return out;
}

// A bulkWrite request ({"updateOne": {...}}); with `ns`, a clientBulkWrite model, whose namespace
// goes there.
write_model model_of(const json::value& request, std::string* ns = nullptr) {
    const json::object& r = object_of(request, "a bulkWrite request");
    if (r.size() != 1) fail("a bulkWrite request has exactly one key");
    const std::string kind(r.begin()->key());
    const json::object& a = object_of(r.begin()->value(), kind);
    std::set<std::string_view> allowed = kind == "insertOne"                           ? std::set<std::string_view>{"document"}
                                         : kind == "updateOne"                         ? std::set<std::string_view>{"filter", "update", "upsert", "arrayFilters", "collation", "hint", "sort"}
                                         : kind == "updateMany"                        ? std::set<std::string_view>{"filter", "update", "upsert", "arrayFilters", "collation", "hint"}
                                         : kind == "replaceOne"                        ? std::set<std::string_view>{"filter", "replacement", "upsert", "collation", "hint", "sort"}
                                         : kind == "deleteOne" || kind == "deleteMany" ? std::set<std::string_view>{"filter", "collation", "hint"}
                                                                                       : std::set<std::string_view>{};
    if (allowed.empty()) fail("unknown bulkWrite request " + kind);
    if (ns) {
        allowed.insert("namespace");
        *ns = string_of(field(a, "namespace"), kind + ".namespace");
    }
    for (const auto& [key, value] : a)
        if (!allowed.contains(key)) {
            if (known_arguments().contains(key)) skip("option " + kind + "." + std::string(key) + " not supported");
            fail("unsupported argument " + std::string(key) + " for bulkWrite request " + kind);
        }
    auto doc = [&](std::string_view key) { return to_bson(field(a, key)); };
    auto opt_doc = [&](std::string_view key) -> std::optional<bson::document> {
        if (const auto* v = a.if_contains(key)) return to_bson(*v);
        return std::nullopt;
    };
    const bool upsert = a.contains("upsert") && a.at("upsert").as_bool();
    std::optional<bson::array> filters;
    if (const auto* v = a.if_contains("arrayFilters")) filters = array_bson(*v, "arrayFilters");
    if (kind == "insertOne") return insert_one_model{doc("document")};
    if (kind == "updateOne")
        return update_one_model{doc("filter"), update_spec_of(field(a, "update")), upsert, filters, opt_doc("collation"),
                                hint_in(a.if_contains("hint")), opt_doc("sort")};
    if (kind == "updateMany")
        return update_many_model{doc("filter"), update_spec_of(field(a, "update")), upsert, filters, opt_doc("collation"),
                                 hint_in(a.if_contains("hint")), std::nullopt};
    if (kind == "replaceOne")
        return replace_one_model{doc("filter"), doc("replacement"), upsert, opt_doc("collation"), hint_in(a.if_contains("hint")),
                                 opt_doc("sort")};
    if (kind == "deleteOne") return delete_one_model{doc("filter"), opt_doc("collation"), hint_in(a.if_contains("hint"))};
    return delete_many_model{doc("filter"), opt_doc("collation"), hint_in(a.if_contains("hint"))};
}

op_result bulk_write(call& c) {
    std::vector<write_model> models;
    for (const auto& r : array_of(c.arg("requests"), "requests")) models.push_back(model_of(r));
    bulk_write_options o;
    if (const auto* v = c.opt("ordered")) o.ordered = v->as_bool();
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.let = doc_opt<bson::document>(c, "let");
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    return value_result(bulk_result_json(coll_of(c).bulk_write(std::move(models), o)));
}

// ---- clientBulkWrite

json::value client_bulk_result_json(const client_bulk_write_result& r) {
    json::object out;
    out["insertedCount"] = r.inserted_count;
    out["upsertedCount"] = r.upserted_count;
    out["matchedCount"] = r.matched_count;
    out["modifiedCount"] = r.modified_count;
    out["deletedCount"] = r.deleted_count;
    if (r.has_verbose_results) {  // summary results leave the maps unset
        json::object inserts, updates, deletes;
        for (const auto& [i, v] : r.insert_results) inserts[std::to_string(i)] = json::object{{"insertedId", id_of(v.inserted_id)}};
        for (const auto& [i, v] : r.update_results) {
            json::object u{{"matchedCount", v.matched_count}, {"modifiedCount", v.modified_count}};
            if (v.upserted_id) u["upsertedId"] = id_of(*v.upserted_id);
            updates[std::to_string(i)] = std::move(u);
        }
        for (const auto& [i, v] : r.delete_results) deletes[std::to_string(i)] = json::object{{"deletedCount", v.deleted_count}};
        out["insertResults"] = std::move(inserts);
        out["updateResults"] = std::move(updates);
        out["deleteResults"] = std::move(deletes);
    }
    return out;
}

// A write error or write concern error as expectError's writeErrors / writeConcernErrors see it.
json::value write_error_json(const write_error_detail& w) {
    json::object o{{"code", w.code}, {"message", w.message}};
    if (!w.code_name.empty()) o["codeName"] = w.code_name;
    if (!w.details.view().empty()) o["details"] = from_bson(w.details);
    return o;
}

op_result client_bulk_write(call& c) {
    std::vector<namespace_write_model> models;
    for (const auto& m : array_of(c.arg("models"), "models")) {
        namespace_write_model nm;
        nm.model = model_of(m, &nm.ns);
        models.push_back(std::move(nm));
    }
    client_bulk_write_options o;
    if (const auto* v = c.opt("ordered")) o.ordered = v->as_bool();
    if (const auto* v = c.opt("verboseResults")) o.verbose_results = v->as_bool();
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.let = doc_opt<bson::document>(c, "let");
    o.comment = comment_of(c);
    if (const auto* v = c.opt("writeConcern")) o.write_concern = write_concern_of(*v);
    o.raw_data = bool_opt(c, "rawData");
    return value_result(client_bulk_result_json(c.object->client->client->bulk_write(std::move(models), o)));
}

// ---- findOneAnd*

find_one_and_modify_options modify_options_of(call& c) {
    find_one_and_modify_options o;
    o.projection = doc_opt<bson::document>(c, "projection");
    o.sort = doc_opt<bson::document>(c, "sort");
    if (const auto* v = c.opt("upsert")) o.upsert = v->as_bool();
    if (const auto* v = c.opt("returnDocument"))
        o.return_document = v->get_string() == "After" ? return_document::after : return_document::before;
    if (const auto* v = c.opt("arrayFilters")) o.array_filters = array_bson(*v, "arrayFilters");
    o.collation = doc_opt<bson::document>(c, "collation");
    o.hint = hint_of(c);
    o.let = doc_opt<bson::document>(c, "let");
    o.max_time = max_time_of(c);
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    return o;
}
op_result document_or_null(const std::optional<bson::document>& d) { return value_result(d ? from_bson(*d) : json::value(nullptr)); }
op_result find_one_and_update(call& c) {
    return document_or_null(coll_of(c).find_one_and_update(to_bson(c.arg("filter")), update_spec_of(c.arg("update")), modify_options_of(c)));
}
op_result find_one_and_replace(call& c) {
    return document_or_null(coll_of(c).find_one_and_replace(to_bson(c.arg("filter")), to_bson(c.arg("replacement")), modify_options_of(c)));
}
op_result find_one_and_delete(call& c) {
    return document_or_null(coll_of(c).find_one_and_delete(to_bson(c.arg("filter")), modify_options_of(c)));
}

// countDocuments' and count's options.
count_options count_options_of(call& c) {
    count_options o;
    if (const auto* v = c.opt("skip")) o.skip = integer_of(*v, "skip");
    if (const auto* v = c.opt("limit")) o.limit = integer_of(*v, "limit");
    o.collation = doc_opt<bson::document>(c, "collation");
    o.hint = hint_of(c);
    o.max_time = max_time_of(c);
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    return o;
}

op_result count_documents(call& c) {
    const count_options o = count_options_of(c);
    return value_result(json::value(coll_of(c).count_documents(to_bson(c.arg("filter")), o)));
}

// The deprecated count helper, which the CRUD spec still tests.
op_result count(call& c) {
    const count_options o = count_options_of(c);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return value_result(json::value(coll_of(c).count(to_bson(c.arg("filter")), o)));
#pragma GCC diagnostic pop
}

op_result estimated_document_count(call& c) {
    estimated_count_options o;
    o.max_time = max_time_of(c);
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    return value_result(json::value(coll_of(c).estimated_document_count(o)));
}

op_result distinct(call& c) {
    distinct_options o;
    o.collation = doc_opt<bson::document>(c, "collation");
    o.hint = hint_of(c);
    o.max_time = max_time_of(c);
    o.comment = comment_of(c);
    o.raw_data = bool_opt(c, "rawData");
    const bson::array values = coll_of(c).distinct(string_of(c.arg("fieldName"), "fieldName"), to_bson(c.arg("filter")), o);
    bson::builder b;
    b.append("v", values.view());
    const json::value wrapped = from_bson(b.extract());
    return value_result(wrapped.as_object().at("v"));
}

op_result aggregate(call& c) {
    aggregate_options o;
    if (const auto* v = c.opt("batchSize")) o.batch_size = static_cast<std::int32_t>(integer_of(*v, "batchSize"));
    o.allow_disk_use = bool_opt(c, "allowDiskUse");
    o.collation = doc_opt<bson::document>(c, "collation");
    o.let = doc_opt<bson::document>(c, "let");
    o.hint = hint_of(c);
    o.max_time = max_time_of(c);
    o.comment = comment_of(c);
    o.bypass_document_validation = bool_opt(c, "bypassDocumentValidation");
    o.raw_data = bool_opt(c, "rawData");
    const auto pipeline = array_bson(c.arg("pipeline"), "pipeline");
    cursor cur = c.object->coll ? coll_of(c).aggregate(pipeline, o) : c.object->db->aggregate(pipeline, o);
    return value_result(cursor_documents(cur), true);
}

op_result create_index(call& c) {
    bson::builder b;
    if (const auto* v = c.opt("name")) b.append("name", string_of(*v, "name"));
    if (const auto* v = c.opt("unique")) b.append("unique", v->as_bool());
    return value_result(json::value(coll_of(c).create_index(to_bson(c.arg("keys")), b.extract())));
}

op_result list_indexes(call& c) {
    cursor cur = coll_of(c).list_indexes();
    return value_result(cursor_documents(cur), true);
}

op_result drop_index(call& c) {
    coll_of(c).drop_index(string_of(c.arg("name"), "name"));
    return {};
}

op_result drop_collection(call& c) {
    c.object->db->get_collection(string_of(c.arg("collection"), "collection")).drop();
    return {};
}

op_result rename_collection(call& c) {
    bool drop_target = false;
    if (const auto* v = c.opt("dropTarget")) drop_target = v->as_bool();
    coll_of(c).rename(string_of(c.arg("to"), "to"), drop_target);
    return {};
}

// ---- database and client listings

list_collections_options list_collections_options_of(call& c) {
    list_collections_options o;
    if (const auto* v = c.opt("filter")) o.filter = to_bson(*v);
    if (const auto* v = c.opt("batchSize")) o.batch_size = static_cast<std::int32_t>(integer_of(*v, "batchSize"));
    if (const auto* v = c.opt("nameOnly")) o.name_only = v->as_bool();
    o.authorized_collections = bool_opt(c, "authorizedCollections");
    o.comment = comment_of(c);
    return o;
}
op_result list_collections(call& c) {
    cursor cur = c.object->db->list_collections(list_collections_options_of(c));
    return value_result(cursor_documents(cur), true);
}
op_result list_collection_names(call& c) {
    json::array names;
    bson::document filter;
    if (const auto* v = c.opt("filter")) filter = to_bson(*v);
    for (const std::string& n : c.object->db->list_collection_names(std::move(filter))) names.emplace_back(n);
    return value_result(std::move(names), true);
}
op_result create_collection(call& c) {
    bson::builder b;
    for (const auto& [key, value] : c.args)
        if (key != "collection") b.append(key, to_bson(json::object{{"v", value}})["v"]);
    c.object->db->create_collection(string_of(c.arg("collection"), "collection"), b.extract());
    return {};
}
// modifyCollection: the collMod command with the operation's options.
op_result modify_collection(call& c) {
    bson::builder b;
    b.append("collMod", string_of(c.arg("collection"), "collection"));
    for (const auto& [key, value] : c.args)
        if (key != "collection") b.append(key, to_bson(json::object{{"v", value}})["v"]);
    c.object->db->run_command(b.extract());
    return {};
}

op_result list_databases(call& c) {
    bson::document filter;
    if (const auto* v = c.opt("filter")) filter = to_bson(*v);
    json::array dbs;
    for (const auto& d : c.object->client->client->list_databases(std::move(filter))) dbs.push_back(from_bson(d));
    return value_result(std::move(dbs), true);
}

// ---------------------------------------------------------------- cursor operations

op_result iterate_until_document(call& c) {
    // A tailable cursor answers nothing while it waits for data: it is asked again (for 10 s).
    std::optional<bson::document> d = c.object->cursor->next();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!d && c.object->cursor->alive() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
        d = c.object->cursor->next();
    }
    if (!d) fail("iterateUntilDocumentOrError: the cursor has no more documents");
    return value_result(from_bson(*d));
}

op_result iterate_once(call& c) {
    std::optional<bson::document> d = c.object->cursor->next();
    if (!d) return {};
    return value_result(from_bson(*d));
}

op_result close_cursor(call& c) {
    c.object->cursor->close();
    return {};
}

// ---------------------------------------------------------------- change streams

op_result create_change_stream(call& c) {
    change_stream_options o;
    if (const auto* v = c.opt("batchSize")) o.batch_size = static_cast<std::int32_t>(integer_of(*v, "batchSize"));
    if (const auto* v = c.opt("fullDocument")) o.full_document = string_of(*v, "fullDocument");
    if (const auto* v = c.opt("fullDocumentBeforeChange")) o.full_document_before_change = string_of(*v, "fullDocumentBeforeChange");
    o.resume_after = doc_opt<bson::document>(c, "resumeAfter");
    o.start_after = doc_opt<bson::document>(c, "startAfter");
    if (const auto* v = c.opt("startAtOperationTime")) {
        const bson::document d = to_bson(json::object{{"v", *v}});
        if (d.view()["v"].type() != bson::type::timestamp) fail("startAtOperationTime must be a BSON timestamp: " + show(*v));
        o.start_at_operation_time = d.view()["v"].get_timestamp();
    }
    if (const auto* v = c.opt("maxAwaitTimeMS")) o.max_await_time = std::chrono::milliseconds(integer_of(*v, "maxAwaitTimeMS"));
    o.collation = doc_opt<bson::document>(c, "collation");
    o.comment = comment_of(c);
    o.show_expanded_events = bool_opt(c, "showExpandedEvents");
    const bson::array pipeline(bson::document(to_bson(json::object{{"p", c.arg("pipeline")}}).view()["p"].get_array()));
    entity e;
    e.k = entity::kind::change_stream;
    if (c.object->coll) e.stream = std::make_shared<change_stream>(coll_of(c).watch(pipeline, o));
    else if (c.object->db) e.stream = std::make_shared<change_stream>(c.object->db->watch(pipeline, o));
    else e.stream = std::make_shared<change_stream>(c.object->client->client->watch(pipeline, o));
    op_result r;
    r.made = std::move(e);
    return r;
}
const std::vector<std::string_view> change_stream_arguments = {
    "batchSize", "fullDocument", "fullDocumentBeforeChange", "resumeAfter", "startAfter", "startAtOperationTime",
    "maxAwaitTimeMS", "collation", "comment", "showExpandedEvents"};

op_result iterate_stream_until_document(call& c) {
    // Empty getMores are answers: it asks again, for 10 s at most, while the stream lives.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::optional<bson::document> d = c.object->stream->try_next();
    while (!d && c.object->stream->alive() && std::chrono::steady_clock::now() < deadline) d = c.object->stream->try_next();
    if (!d) fail("iterateUntilDocumentOrError: the change stream has ended or gave no event in 10 s");
    return value_result(from_bson(*d));
}

op_result iterate_stream_once(call& c) {
    std::optional<bson::document> d = c.object->stream->try_next();
    if (!d) return {};
    return value_result(from_bson(*d));
}

op_result close_stream(call& c) {
    c.object->stream->close();
    return {};
}

op_result end_session(call& c) {
    c.object->session->end_session();
    return {};
}

// ---------------------------------------------------------------- bucket operations (GridFS)

gridfs::bucket& bucket_of(call& c) { return *c.object->bucket; }

gridfs::file_id file_id_of(call& c) {
    const bson::document wrapped = to_bson(json::object{{"id", c.arg("id")}});
    return gridfs::file_id(wrapped["id"]);
}

// upload's source: {$$hexBytes: "<even number of hex digits>"}, as the format asks.
std::vector<std::uint8_t> hex_bytes_of(const json::value& source) {
    const json::object& o = object_of(source, "source");
    if (o.size() != 1 || !o.contains("$$hexBytes")) fail("upload: source is not {$$hexBytes: ...}: " + show(source));
    const std::string hex = string_of(o.at("$$hexBytes"), "$$hexBytes");
    if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); }))
        fail("upload: $$hexBytes \"" + hex + "\" is not an even number of hexadecimal digits");
    return hex_decode(hex);
}

json::value bytes_json(const std::vector<std::uint8_t>& bytes) {
    bson::builder b;
    b.append("v", bson::binary{bson::binary_subtype::generic, bytes});
    return from_bson(b.extract()).as_object().at("v");
}

op_result upload_with(call& c, std::optional<gridfs::file_id> id) {
    // contentType and aliases are deprecated and not offered; MD5 is never computed, so
    // disableMD5 changes nothing.
    if (c.opt("contentType")) skip("option contentType not supported");
    if (c.opt("aliases")) skip("option aliases not supported");
    const std::vector<std::uint8_t> bytes = hex_bytes_of(c.arg("source"));
    gridfs::upload_options o;
    o.id = std::move(id);
    if (const auto* v = c.opt("chunkSizeBytes")) o.chunk_size_bytes = static_cast<std::int32_t>(integer_of(*v, "chunkSizeBytes"));
    o.metadata = doc_opt<bson::document>(c, "metadata");
    const gridfs::file_id made = bucket_of(c).upload_from_bytes(string_of(c.arg("filename"), "filename"), bytes, std::move(o));
    return value_result(from_bson(made.document()).as_object().at("_id"));
}
op_result upload(call& c) { return upload_with(c, std::nullopt); }
op_result upload_with_id(call& c) { return upload_with(c, file_id_of(c)); }
const std::vector<std::string_view> upload_arguments = {"chunkSizeBytes", "metadata", "contentType", "aliases", "disableMD5"};

op_result download(call& c) { return value_result(bytes_json(bucket_of(c).download(file_id_of(c)))); }

op_result download_by_name(call& c) {
    gridfs::download_by_name_options o;
    if (const auto* v = c.opt("revision")) o.revision = static_cast<std::int32_t>(integer_of(*v, "revision"));
    return value_result(bytes_json(bucket_of(c).download_by_name(string_of(c.arg("filename"), "filename"), o)));
}

op_result delete_file(call& c) {
    bucket_of(c).delete_file(file_id_of(c));
    return {};
}
op_result delete_by_name(call& c) {
    bucket_of(c).delete_by_name(string_of(c.arg("filename"), "filename"));
    return {};
}
op_result rename_file(call& c) {
    bucket_of(c).rename(file_id_of(c), string_of(c.arg("newFilename"), "newFilename"));
    return {};
}
op_result rename_by_name(call& c) {
    bucket_of(c).rename_by_name(string_of(c.arg("filename"), "filename"), string_of(c.arg("newFilename"), "newFilename"));
    return {};
}
op_result drop_bucket(call& c) {
    bucket_of(c).drop();
    return {};
}
op_result find_files(call& c) {
    cursor cur = bucket_of(c).find(to_bson(c.arg("filter")), find_options_of(c));
    return value_result(cursor_documents(cur), true);
}

// ---------------------------------------------------------------- transactions

op_result start_transaction(call& c) {
    c.object->session->start_transaction(transaction_options_of(c.args, "startTransaction"));
    return {};
}

op_result commit_transaction(call& c) {
    c.object->session->commit_transaction();
    return {};
}

op_result abort_transaction(call& c) {
    c.object->session->abort_transaction();
    return {};
}

op_result with_transaction(call& c) {
    const json::array& ops = array_of(c.arg("callback"), "callback");
    const trellis::transaction_options o = transaction_options_of(c.args, "withTransaction");
    c.object->session->with_transaction([&](client_session&) {
        const bool outer = std::exchange(c.ctx.rethrow_errors, true);
        try {
            for (const auto& op : ops) run_operation(c.ctx, object_of(op, "callback operation"));
        } catch (...) {
            c.ctx.rethrow_errors = outer;
            throw;
        }
        c.ctx.rethrow_errors = outer;
    }, o);
    return {};
}

// ---------------------------------------------------------------- test runner operations

client_entity& client_arg(call& c) {
    return *c.ctx.entities.get(string_of(c.arg("client"), "client"), entity::kind::client).client;
}

trellis::client_session& session_arg(call& c) {
    return *c.ctx.entities.get(string_of(c.arg("session"), "session"), entity::kind::session).session;
}

op_result assert_session_dirty(call& c) {
    if (!session_arg(c).dirty()) fail("session " + string_of(c.arg("session"), "session") + " is not dirty");
    return {};
}
op_result assert_session_not_dirty(call& c) {
    if (session_arg(c).dirty()) fail("session " + string_of(c.arg("session"), "session") + " is dirty");
    return {};
}

op_result assert_transaction_state(call& c) {
    const std::string want = string_of(c.arg("state"), "state");
    const char* got = "none";
    switch (session_arg(c).transaction()) {
        case transaction_state::none: got = "none"; break;
        case transaction_state::starting: got = "starting"; break;
        case transaction_state::in_progress: got = "in_progress"; break;
        case transaction_state::committed: got = "committed"; break;
        case transaction_state::aborted: got = "aborted"; break;
    }
    if (want != "none" && want != "starting" && want != "in_progress" && want != "committed" && want != "aborted")
        fail("assertSessionTransactionState: unknown state \"" + want + "\"");
    if (want != got) fail("session " + string_of(c.arg("session"), "session") + " is in transaction state " + got + ", expected " + want);
    return {};
}

op_result assert_session_pinned(call& c) {
    if (!session_arg(c).pinned_server()) fail("session " + string_of(c.arg("session"), "session") + " is not pinned");
    return {};
}

op_result assert_session_unpinned(call& c) {
    if (auto p = session_arg(c).pinned_server())
        fail("session " + string_of(c.arg("session"), "session") + " is pinned to " + *p);
    return {};
}

// A fail point on the mongos the session is pinned to.
op_result targeted_fail_point(call& c) {
    const auto address = session_arg(c).pinned_server();
    if (!address) fail("targetedFailPoint: session " + string_of(c.arg("session"), "session") + " is not pinned");
    const json::object& fp = object_of(c.arg("failPoint"), "failPoint");
    const std::string name = string_of(field(fp, "configureFailPoint"), "failPoint.configureFailPoint");
    if (c.ctx.where.sim && name != "failCommand") skip("fail point " + name + " not supported by trellis-sim");
    c.ctx.where.direct_client(*address).run_command("admin", to_bson(c.arg("failPoint")));
    c.ctx.failpoints.push_back({*address, name});
    return {};
}

op_result fail_point(call& c) {
    client_entity& ce = client_arg(c);
    const json::object& fp = object_of(c.arg("failPoint"), "failPoint");
    const std::string name = string_of(field(fp, "configureFailPoint"),
                                       "failPoint.configureFailPoint");
    if (c.ctx.where.sim && name != "failCommand" && name != "onPrimaryTransactionalWrite")
        skip("fail point " + name + " not supported by trellis-sim");
    {
        std::lock_guard lock(ce.log->mutex);
        ce.log->last_configure_fail_point_address.clear();
    }
    ce.client->run_command("admin", to_bson(c.arg("failPoint")));
    std::string address;
    {
        std::lock_guard lock(ce.log->mutex);
        address = ce.log->last_configure_fail_point_address;
    }
    c.ctx.failpoints.push_back({address, name});
    return {};
}

op_result assert_connections_checked_out(call& c) {
    client_entity& ce = client_arg(c);
    const std::int64_t want = integer_of(c.arg("connections"), "connections");
    // A connection goes back to its pool just after the operation that used it returns.
    std::int64_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    for (;;) {
        {
            std::lock_guard lock(ce.log->mutex);
            got = ce.log->checked_out;
        }
        if (got == want || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(5ms);
    }
    if (got != want) fail(std::to_string(got) + " connections checked out, expected " + std::to_string(want));
    return {};
}

bool collection_exists(test_context& ctx, const std::string& db, const std::string& coll) {
    bson::builder filter;
    filter.append("name", coll);
    bson::builder b;
    b.append("listCollections", 1).append("filter", filter.extract()).append("nameOnly", true);
    const json::value reply = from_bson(ctx.where.internal->run_command(db, b.extract()));
    return !reply.at("cursor").at("firstBatch").as_array().empty();
}

op_result assert_collection(call& c, bool exists) {
    const std::string db = string_of(c.arg("databaseName"), "databaseName");
    const std::string coll = string_of(c.arg("collectionName"), "collectionName");
    if (collection_exists(c.ctx, db, coll) != exists)
        fail("collection " + db + "." + coll + (exists ? " does not exist" : " exists"));
    return {};
}
op_result assert_collection_exists(call& c) { return assert_collection(c, true); }
op_result assert_collection_not_exists(call& c) { return assert_collection(c, false); }

op_result assert_index(call& c, bool exists) {
    const std::string db = string_of(c.arg("databaseName"), "databaseName");
    const std::string coll = string_of(c.arg("collectionName"), "collectionName");
    const std::string index = string_of(c.arg("indexName"), "indexName");
    bool found = false;
    try {
        bson::builder b;
        b.append("listIndexes", coll);
        const json::value reply = from_bson(c.ctx.where.internal->run_command(db, b.extract()));
        for (const auto& spec : reply.at("cursor").at("firstBatch").as_array())
            if (const auto* n = spec.as_object().if_contains("name"); n && n->is_string() && n->get_string() == index) found = true;
    } catch (const operation_failure& e) {
        if (e.server_code() != 26) throw;  // NamespaceNotFound: no collection, no index
    }
    if (found != exists) fail("index " + index + " on " + db + "." + coll + (exists ? " does not exist" : " exists"));
    return {};
}
op_result assert_index_exists(call& c) { return assert_index(c, true); }
op_result assert_index_not_exists(call& c) { return assert_index(c, false); }

op_result create_entities_op(call& c) {
    create_entities(c.ctx, array_of(c.arg("entities"), "entities"));
    return {};
}

op_result wait_op(call& c) {
    std::this_thread::sleep_for(std::chrono::milliseconds(integer_of(c.arg("ms"), "ms")));
    return {};
}

std::vector<json::object> started_events(client_entity& ce) {
    std::lock_guard lock(ce.log->mutex);
    std::vector<json::object> out;
    for (const auto& e : ce.log->command)
        if (e.contains("commandStartedEvent")) out.push_back(e);
    return out;
}

op_result assert_lsid(call& c, bool same) {
    const auto events = started_events(client_arg(c));
    if (events.size() < 2) fail("fewer than two commandStartedEvents were observed");
    const auto& a = events[events.size() - 2].at("commandStartedEvent").at("command").as_object();
    const auto& b = events.back().at("commandStartedEvent").at("command").as_object();
    const auto* la = a.if_contains("lsid");
    const auto* lb = b.if_contains("lsid");
    if (!la || !lb) fail("a command of the last two has no lsid");
    if ((*la == *lb) != same) fail(std::string("the last two commands have ") + (same ? "different" : "the same") + " lsids");
    return {};
}
op_result assert_same_lsid(call& c) { return assert_lsid(c, true); }
op_result assert_different_lsid(call& c) { return assert_lsid(c, false); }

std::size_t count_matching(call& c) {
    client_entity& ce = client_arg(c);
    const json::value expected = canonical(c.arg("event"));
    const json::object& eo = object_of(expected, "event");
    if (eo.size() != 1) fail("event must have exactly one key");
    const std::string name(eo.begin()->key());
    const bool sdam = name.find("erver") != std::string::npos || name.find("opology") != std::string::npos;
    std::vector<json::object> events;
    {
        std::lock_guard lock(ce.log->mutex);
        events = name.starts_with("command") ? ce.log->command : sdam ? ce.log->sdam : ce.log->cmap;
    }
    std::size_t n = 0;
    for (const auto& e : events) {
        try {
            match_event(expected, e, c.ctx.entities, "event");
            ++n;
        } catch (const test_failure&) {
        }
    }
    return n;
}

op_result wait_for_event(call& c) {
    const std::int64_t want = integer_of(c.arg("count"), "count");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (static_cast<std::int64_t>(count_matching(c)) < want) {
        if (std::chrono::steady_clock::now() > deadline) fail("waitForEvent: fewer than " + std::to_string(want) + " events after 10 s");
        std::this_thread::sleep_for(10ms);
    }
    return {};
}

op_result assert_event_count(call& c) {
    const std::int64_t want = integer_of(c.arg("count"), "count");
    const auto got = static_cast<std::int64_t>(count_matching(c));
    if (got != want) fail("assertEventCount: " + std::to_string(got) + " matching events, expected " + std::to_string(want));
    return {};
}

// ---------------------------------------------------------------- the tables

// ---------------------------------------------------------------- clientEncryption operations

trellis::client_encryption& encryption_of(call& c) { return *c.object->encryption; }

// A single value argument as BSON ({v: value}).
bson::document boxed(const json::value& v) { return to_bson(json::object{{"v", v}}); }

bson::uuid key_id_of(const json::value& v, std::string_view what) {
    const bson::document box = boxed(v);
    if (box["v"].type() != bson::type::binary || box["v"].get_binary().subtype != bson::binary_subtype::uuid)
        fail(std::string(what) + " is not a UUID (binary subtype 4): " + show(v));
    return box["v"].get_uuid();
}

json::value optional_doc(const std::optional<bson::document>& d) { return d ? from_bson(*d) : json::value(nullptr); }

op_result create_data_key(call& c) {
    trellis::data_key_options o;
    if (const auto* opts = c.opt("opts")) {
        for (const auto& [key, value] : object_of(*opts, "opts")) {
            if (key == "masterKey") {
                o.master_key = to_bson(object_of(value, "masterKey"));
            } else if (key == "keyAltNames") {
                for (const auto& n : array_of(value, "keyAltNames")) o.key_alt_names.push_back(string_of(n, "keyAltNames"));
            } else if (key == "keyMaterial") {
                const bson::document box = boxed(value);
                if (box["v"].type() != bson::type::binary) fail("keyMaterial is not binary");
                const auto b = box["v"].get_binary();
                o.key_material = std::vector<std::uint8_t>(b.bytes.begin(), b.bytes.end());
            } else {
                skip("createDataKey option " + std::string(key) + " not supported");
            }
        }
    }
    const bson::uuid id = encryption_of(c).create_data_key(string_of(c.arg("kmsProvider"), "kmsProvider"), o);
    bson::builder b;
    b.append("v", id);
    return value_result(from_bson(b.extract()).as_object().at("v"));
}

op_result encrypt_value(call& c) {
    trellis::encrypt_options o;
    for (const auto& [key, value] : object_of(c.arg("opts"), "opts")) {
        if (key == "keyId") o.key_id = key_id_of(value, "opts.keyId");
        else if (key == "keyAltName") o.key_alt_name = string_of(value, "opts.keyAltName");
        else if (key == "algorithm") o.algorithm = string_of(value, "opts.algorithm");
        else skip("encrypt option " + std::string(key) + " not supported (queryable encryption)");
    }
    const bson::document box = boxed(c.arg("value"));
    const auto out = encryption_of(c).encrypt(box["v"], o);
    return value_result(from_bson(out.box()).as_object().at("v"));
}

op_result decrypt_value(call& c) {
    const bson::document box = boxed(c.arg("value"));
    if (box["v"].type() != bson::type::binary) fail("decrypt: value is not binary: " + show(c.arg("value")));
    const auto out = encryption_of(c).decrypt(box["v"].get_binary());
    return value_result(from_bson(out.box()).as_object().at("v"));
}

op_result get_key(call& c) { return value_result(optional_doc(encryption_of(c).get_key(key_id_of(c.arg("id"), "id")))); }

op_result get_keys(call& c) {
    cursor cur = encryption_of(c).get_keys();
    return value_result(cursor_documents(cur), true);
}

op_result delete_key(call& c) {
    const delete_result r = encryption_of(c).delete_key(key_id_of(c.arg("id"), "id"));
    return value_result(json::object{{"deletedCount", r.deleted_count}});
}

op_result add_key_alt_name(call& c) {
    return value_result(optional_doc(
        encryption_of(c).add_key_alt_name(key_id_of(c.arg("id"), "id"), string_of(c.arg("keyAltName"), "keyAltName"))));
}

op_result remove_key_alt_name(call& c) {
    return value_result(optional_doc(
        encryption_of(c).remove_key_alt_name(key_id_of(c.arg("id"), "id"), string_of(c.arg("keyAltName"), "keyAltName"))));
}

op_result get_key_by_alt_name(call& c) {
    return value_result(optional_doc(encryption_of(c).get_key_by_alt_name(string_of(c.arg("keyAltName"), "keyAltName"))));
}

op_result rewrap_many_data_key(call& c) {
    trellis::rewrap_many_data_key_options o;
    if (const auto* opts = c.opt("opts"))
        for (const auto& [key, value] : object_of(*opts, "opts")) {
            if (key == "provider") o.provider = string_of(value, "opts.provider");
            else if (key == "masterKey") o.master_key = to_bson(object_of(value, "opts.masterKey"));
            else skip("rewrapManyDataKey option " + std::string(key) + " not supported");
        }
    const auto r = encryption_of(c).rewrap_many_data_key(to_bson(c.arg("filter")), o);
    json::object out;
    if (r.bulk_write_result) out["bulkWriteResult"] = bulk_result_json(*r.bulk_write_result);
    return value_result(std::move(out));
}

// To map a new client API call (collection::update_one, ...): write a handler that takes its
// arguments from call::arg/opt and returns the result as the format describes it (e.g.
// {matchedCount, modifiedCount, upsertedId} for updateOne; value_result(docs, true) for an
// iterable), then add a row with the required and optional argument names it understands. Any
// other argument the format defines is reported as "option X not supported" (SKIP).
using table = std::map<std::pair<entity::kind, std::string>, op_spec, std::less<>>;

const table& entity_operations() {
    using k = entity::kind;
    static const table t = {
        {{k::client, "listDatabaseNames"}, {{}, {}, list_database_names}},
        {{k::client, "close"}, {{}, {}, close_client}},
        {{k::database, "runCommand"}, {{"command", "commandName"}, {"readPreference"}, run_command}},
        {{k::database, "dropDatabase"}, {{}, {}, drop_database}},
        {{k::database, "runCursorCommand"}, {{"command", "commandName"}, cursor_command_arguments, run_cursor_command}},
        {{k::database, "createCommandCursor"}, {{"command", "commandName"}, cursor_command_arguments, create_command_cursor}},
        {{k::collection, "insertOne"}, {{"document"}, {"bypassDocumentValidation", "comment", "rawData"}, insert_one}},
        {{k::collection, "find"}, {{"filter"}, find_arguments, find}},
        {{k::collection, "findOne"}, {{"filter"}, find_arguments, find_one}},
        {{k::collection, "createFindCursor"}, {{"filter"}, find_arguments, create_find_cursor}},
        {{k::collection, "insertMany"}, {{"documents"}, {"ordered", "bypassDocumentValidation", "comment", "rawData"}, insert_many}},
        {{k::collection, "updateOne"}, {{"filter", "update"}, {"upsert", "arrayFilters", "collation", "hint", "let", "bypassDocumentValidation", "comment", "sort", "rawData"}, update_one}},
        {{k::collection, "updateMany"}, {{"filter", "update"}, {"upsert", "arrayFilters", "collation", "hint", "let", "bypassDocumentValidation", "comment", "rawData"}, update_many}},
        {{k::collection, "replaceOne"}, {{"filter", "replacement"}, {"upsert", "collation", "hint", "let", "bypassDocumentValidation", "comment", "sort", "rawData"}, replace_one}},
        {{k::collection, "deleteOne"}, {{"filter"}, {"collation", "hint", "let", "comment", "rawData"}, delete_one}},
        {{k::collection, "deleteMany"}, {{"filter"}, {"collation", "hint", "let", "comment", "rawData"}, delete_many}},
        {{k::collection, "bulkWrite"}, {{"requests"}, {"ordered", "bypassDocumentValidation", "let", "comment", "rawData"}, bulk_write}},
        {{k::collection, "findOneAndUpdate"}, {{"filter", "update"}, {"projection", "sort", "upsert", "returnDocument", "arrayFilters", "collation", "hint", "let", "maxTimeMS", "bypassDocumentValidation", "comment", "rawData"}, find_one_and_update}},
        {{k::collection, "findOneAndReplace"}, {{"filter", "replacement"}, {"projection", "sort", "upsert", "returnDocument", "collation", "hint", "let", "maxTimeMS", "bypassDocumentValidation", "comment", "rawData"}, find_one_and_replace}},
        {{k::collection, "findOneAndDelete"}, {{"filter"}, {"projection", "sort", "collation", "hint", "let", "maxTimeMS", "comment", "rawData"}, find_one_and_delete}},
        {{k::collection, "countDocuments"}, {{"filter"}, {"skip", "limit", "collation", "hint", "maxTimeMS", "comment", "rawData"}, count_documents}},
        {{k::collection, "count"}, {{"filter"}, {"skip", "limit", "collation", "hint", "maxTimeMS", "comment", "rawData"}, count}},
        {{k::collection, "estimatedDocumentCount"}, {{}, {"maxTimeMS", "comment", "rawData"}, estimated_document_count}},
        {{k::collection, "distinct"}, {{"fieldName", "filter"}, {"collation", "hint", "maxTimeMS", "comment", "rawData"}, distinct}},
        {{k::collection, "aggregate"}, {{"pipeline"}, {"batchSize", "allowDiskUse", "collation", "hint", "let", "maxTimeMS", "comment", "bypassDocumentValidation", "rawData"}, aggregate}},
        {{k::database, "aggregate"}, {{"pipeline"}, {"batchSize", "allowDiskUse", "collation", "hint", "let", "maxTimeMS", "comment", "rawData"}, aggregate}},
        {{k::database, "listCollections"}, {{}, {"filter", "batchSize", "nameOnly", "authorizedCollections", "comment"}, list_collections}},
        {{k::database, "listCollectionNames"}, {{}, {"filter"}, list_collection_names}},
        {{k::database, "createCollection"}, {{"collection"}, {"capped", "size", "max", "validator", "validationLevel", "validationAction", "indexOptionDefaults", "viewOn", "pipeline", "collation", "expireAfterSeconds", "timeseries", "clusteredIndex", "changeStreamPreAndPostImages"}, create_collection}},
        {{k::database, "modifyCollection"}, {{"collection"}, {"validator", "validationLevel", "validationAction", "index", "changeStreamPreAndPostImages", "expireAfterSeconds", "timeseries"}, modify_collection}},
        {{k::client, "listDatabases"}, {{}, {"filter"}, list_databases}},
        {{k::client, "clientBulkWrite"}, {{"models"}, {"ordered", "verboseResults", "bypassDocumentValidation", "let", "comment", "writeConcern", "rawData"}, client_bulk_write}},
        {{k::collection, "createIndex"}, {{"keys"}, {"name", "unique"}, create_index}},
        {{k::collection, "listIndexes"}, {{}, {}, list_indexes}},
        {{k::collection, "dropIndex"}, {{"name"}, {}, drop_index}},
        {{k::collection, "rename"}, {{"to"}, {"dropTarget"}, rename_collection}},
        {{k::database, "dropCollection"}, {{"collection"}, {}, drop_collection}},
        {{k::cursor, "iterateUntilDocumentOrError"}, {{}, {}, iterate_until_document}},
        {{k::cursor, "iterateOnce"}, {{}, {}, iterate_once}},
        {{k::cursor, "close"}, {{}, {}, close_cursor}},
        {{k::client, "createChangeStream"}, {{"pipeline"}, change_stream_arguments, create_change_stream}},
        {{k::database, "createChangeStream"}, {{"pipeline"}, change_stream_arguments, create_change_stream}},
        {{k::collection, "createChangeStream"}, {{"pipeline"}, change_stream_arguments, create_change_stream}},
        {{k::change_stream, "iterateUntilDocumentOrError"}, {{}, {}, iterate_stream_until_document}},
        {{k::change_stream, "iterateOnce"}, {{}, {}, iterate_stream_once}},
        {{k::change_stream, "close"}, {{}, {}, close_stream}},
        {{k::session, "endSession"}, {{}, {}, end_session}},
        {{k::bucket, "upload"}, {{"filename", "source"}, upload_arguments, upload}},
        {{k::bucket, "uploadWithId"}, {{"id", "filename", "source"}, upload_arguments, upload_with_id}},
        {{k::bucket, "download"}, {{"id"}, {}, download}},
        {{k::bucket, "downloadByName"}, {{"filename"}, {"revision"}, download_by_name}},
        {{k::bucket, "delete"}, {{"id"}, {}, delete_file}},
        {{k::bucket, "deleteByName"}, {{"filename"}, {}, delete_by_name}},
        {{k::bucket, "rename"}, {{"id", "newFilename"}, {}, rename_file}},
        {{k::bucket, "renameByName"}, {{"filename", "newFilename"}, {}, rename_by_name}},
        {{k::bucket, "drop"}, {{}, {}, drop_bucket}},
        {{k::bucket, "find"}, {{"filter"}, find_arguments, find_files}},
        {{k::client_encryption, "createDataKey"}, {{"kmsProvider"}, {"opts"}, create_data_key}},
        {{k::client_encryption, "encrypt"}, {{"value", "opts"}, {}, encrypt_value}},
        {{k::client_encryption, "decrypt"}, {{"value"}, {}, decrypt_value}},
        {{k::client_encryption, "getKey"}, {{"id"}, {}, get_key}},
        {{k::client_encryption, "getKeys"}, {{}, {}, get_keys}},
        {{k::client_encryption, "deleteKey"}, {{"id"}, {}, delete_key}},
        {{k::client_encryption, "addKeyAltName"}, {{"id", "keyAltName"}, {}, add_key_alt_name}},
        {{k::client_encryption, "removeKeyAltName"}, {{"id", "keyAltName"}, {}, remove_key_alt_name}},
        {{k::client_encryption, "getKeyByAltName"}, {{"keyAltName"}, {}, get_key_by_alt_name}},
        {{k::client_encryption, "rewrapManyDataKey"}, {{"filter"}, {"opts"}, rewrap_many_data_key}},

        {{k::session, "startTransaction"}, {{}, {"readConcern", "writeConcern", "readPreference", "maxCommitTimeMS"}, start_transaction}},
        {{k::session, "commitTransaction"}, {{}, {}, commit_transaction}},
        {{k::session, "abortTransaction"}, {{}, {}, abort_transaction}},
        {{k::session, "withTransaction"}, {{"callback"}, {"readConcern", "writeConcern", "readPreference", "maxCommitTimeMS"}, with_transaction}},
    };
    return t;
}

const std::map<std::string, op_spec, std::less<>>& runner_operations() {
    static const std::map<std::string, op_spec, std::less<>> t = {
        {"failPoint", {{"client", "failPoint"}, {}, fail_point}},
        {"assertNumberConnectionsCheckedOut", {{"client", "connections"}, {}, assert_connections_checked_out}},
        {"assertCollectionExists", {{"databaseName", "collectionName"}, {}, assert_collection_exists}},
        {"assertCollectionNotExists", {{"databaseName", "collectionName"}, {}, assert_collection_not_exists}},
        {"assertIndexExists", {{"databaseName", "collectionName", "indexName"}, {}, assert_index_exists}},
        {"assertIndexNotExists", {{"databaseName", "collectionName", "indexName"}, {}, assert_index_not_exists}},
        {"createEntities", {{"entities"}, {}, create_entities_op}},
        {"wait", {{"ms"}, {}, wait_op}},
        {"assertSameLsidOnLastTwoCommands", {{"client"}, {}, assert_same_lsid}},
        {"assertDifferentLsidOnLastTwoCommands", {{"client"}, {}, assert_different_lsid}},
        {"assertSessionDirty", {{"session"}, {}, assert_session_dirty}},
        {"assertSessionNotDirty", {{"session"}, {}, assert_session_not_dirty}},
        {"assertSessionTransactionState", {{"session", "state"}, {}, assert_transaction_state}},
        {"assertSessionPinned", {{"session"}, {}, assert_session_pinned}},
        {"assertSessionUnpinned", {{"session"}, {}, assert_session_unpinned}},
        {"targetedFailPoint", {{"session", "failPoint"}, {}, targeted_fail_point}},
        {"waitForEvent", {{"client", "event", "count"}, {}, wait_for_event}},
        {"assertEventCount", {{"client", "event", "count"}, {}, assert_event_count}},
    };
    return t;
}

// ---------------------------------------------------------------- errors

struct caught {
    std::string message;
    bool from_server = false;
    int code = 0;
    std::string code_name;
    std::vector<std::string> labels;
    std::optional<json::value> partial;  // a bulk write's partial result, as the format writes it
    std::optional<json::value> response;  // the server's reply (a write error: its writeErrors entry)
    // A client bulk write's: write errors by model index, write concern errors (canonical).
    std::optional<json::object> write_errors;
    std::optional<json::array> write_concern_errors;
    bool timeout = false;  // trellis::operation_timeout (isTimeoutError)
};

// The server answered (a command or write error), as opposed to a network, pool or client-side
// failure, which may carry labels and so be an operation_failure too.
bool server_answered(const operation_failure& e) {
    if (&e.code().category() != &error_category()) return false;
    const auto k = static_cast<errc>(e.code().value());
    return k == errc::operation_failure || k == errc::not_primary || k == errc::write_error || k == errc::duplicate_key;
}

// The server response errorResponse matches: the reply of a command error; of a write error, the
// write error's own document (keyPattern, keyValue, errInfo), as drivers expose it.
std::optional<json::value> response_of(const operation_failure& e) {
    const auto* with_reply = dynamic_cast<const command_failure*>(&e);
    if (!with_reply) return std::nullopt;
    const bson::document& reply = with_reply->reply();
    if (reply.view().empty()) return std::nullopt;
    if (auto we = reply.view().find("writeErrors"); we && we->type() == bson::type::array && !we->get_array().empty()) {
        const bson::element first = *we->get_array().begin();
        if (first.type() == bson::type::document) return from_bson(bson::document(first.get_document()));
    }
    return from_bson(reply);
}

bool contains_nocase(std::string_view hay, std::string_view needle) {
    auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
    return it != hay.end();
}

bool equal_nocase(std::string_view a, std::string_view b) { return a.size() == b.size() && contains_nocase(a, b); }

void check_error(test_context& ctx, const json::object& expected, const caught& e) {
    for (const auto& [key, value] : expected) {
        if (key == "isError") continue;
        if (key == "isClientError") {
            const bool want = value.is_bool() && value.get_bool();
            if (want == e.from_server)
                fail(std::string("expected ") + (want ? "a client" : "a server") + " error, got: " + e.message);
        } else if (key == "isTimeoutError") {
            const bool want = value.is_bool() && value.get_bool();
            if (want != e.timeout)
                fail(std::string("expected ") + (want ? "a timeout error" : "an error other than a timeout") + ", got: " + e.message);
        } else if (key == "errorContains") {
            const std::string s = string_of(value, "errorContains");
            if (!contains_nocase(e.message, s)) fail("the error \"" + e.message + "\" does not contain \"" + s + "\"");
        } else if (key == "errorCode") {
            const std::int64_t code = integer_of(value, "errorCode");
            if (!e.from_server || e.code != code)
                fail("the error has code " + std::to_string(e.code) + ", expected " + std::to_string(code) + ": " + e.message);
        } else if (key == "errorCodeName") {
            const std::string name = string_of(value, "errorCodeName");
            if (!e.from_server || !equal_nocase(e.code_name, name))
                fail("the error has code name \"" + e.code_name + "\", expected \"" + name + "\": " + e.message);
        } else if (key == "errorLabelsContain") {
            for (const auto& l : array_of(value, "errorLabelsContain")) {
                const std::string label = string_of(l, "a label");
                if (std::find(e.labels.begin(), e.labels.end(), label) == e.labels.end())
                    fail("the error lacks the label " + label + ": " + e.message);
            }
        } else if (key == "errorLabelsOmit") {
            for (const auto& l : array_of(value, "errorLabelsOmit")) {
                const std::string label = string_of(l, "a label");
                if (std::find(e.labels.begin(), e.labels.end(), label) != e.labels.end())
                    fail("the error has the label " + label + ": " + e.message);
            }
        } else if (key == "expectResult") {
            // A bulk write's partial result (bulk_write_error::partial_result()).
            match(canonical(value), e.partial ? &*e.partial : nullptr, true, ctx.entities, "error result");
        } else if (key == "errorResponse") {
            match(canonical(value), e.response ? &*e.response : nullptr, true, ctx.entities, "errorResponse");
        } else if (key == "writeErrors") {
            // Each expected index present and matching, and no other.
            const json::object& want = object_of(value, "writeErrors");
            const json::object none;
            const json::object& got = e.write_errors ? *e.write_errors : none;
            for (const auto& [index, w] : want)
                match(canonical(w), got.if_contains(index), true, ctx.entities, "writeErrors." + std::string(index));
            for (const auto& [index, w] : got)
                if (!want.contains(index)) fail("an unexpected write error at index " + std::string(index) + ": " + show(w));
        } else if (key == "writeConcernErrors") {
            const json::array& want = array_of(value, "writeConcernErrors");
            const json::array none;
            const json::array& got = e.write_concern_errors ? *e.write_concern_errors : none;
            if (got.size() != want.size())
                fail("the error has " + std::to_string(got.size()) + " write concern error(s), expected " + std::to_string(want.size()));
            for (std::size_t i = 0; i < want.size(); ++i)
                match(canonical(want[i]), &got[i], true, ctx.entities, "writeConcernErrors." + std::to_string(i));
        } else {
            fail("unknown expectError field " + std::string(key));
        }
    }
}

}  // namespace

// ---------------------------------------------------------------- events

void match_event(const json::value& expected, const json::object& actual, entity_map& entities, const std::string& path) {
    const json::object& eo = object_of(expected, path);
    if (eo.size() != 1) fail(path + ": an expected event has exactly one key");
    const std::string name(eo.begin()->key());
    const auto* body = actual.if_contains(name);
    if (!body) fail(path + " is " + show(actual) + ", expected a " + name);
    const json::object& ab = body->as_object();
    for (const auto& [key, value] : object_of(eo.begin()->value(), path)) {
        const std::string where = path + "." + name + "." + std::string(key);
        if (key == "command" || key == "reply") match(value, ab.if_contains(key), true, entities, where);
        else match(value, ab.if_contains(key), false, entities, where);
    }
}

// ---------------------------------------------------------------- running one operation

void run_operation(test_context& ctx, const json::object& op) {
    const std::string name = string_of(field(op, "name"), "operation.name");
    const std::string object = string_of(field(op, "object"), "operation.object");
    static const json::object no_args;
    const json::object& args = op.contains("arguments") ? object_of(op.at("arguments"), "arguments") : no_args;
    for (const auto& [key, value] : op)
        if (key != "name" && key != "object" && key != "arguments" && key != "expectError" && key != "expectResult" &&
            key != "saveResultAsEntity" && key != "ignoreResultAndError")
            fail("unknown operation field " + std::string(key));

    // Enumerations the format defines are checked whether or not the operation exists here.
    if (const auto* rd = args.if_contains("returnDocument")) {
        const std::string v = string_of(*rd, "returnDocument");
        if (v != "Before" && v != "After") fail("returnDocument \"" + v + "\" is neither Before nor After");
    }

    const op_spec* spec = nullptr;
    entity* target = nullptr;
    if (object == "testRunner") {
        auto it = runner_operations().find(name);
        if (it == runner_operations().end()) {
            if (!known_operations().contains(name)) fail("unsupported test runner operation " + name);
            skip("operation " + name + " not implemented");
        }
        spec = &it->second;
    } else {
        target = ctx.entities.find(object);
        if (!target) fail("operation " + name + " on an undefined entity \"" + object + "\"");
        auto it = entity_operations().find(std::pair(target->k, name));
        if (it == entity_operations().end()) {
            if (!known_operations().contains(name)) fail("unsupported operation " + name + " on " + object);
            skip("operation " + name + " not implemented");
        }
        spec = &it->second;
    }
    for (std::string_view r : spec->required)
        if (!args.contains(r)) fail("operation " + name + " lacks the required argument " + std::string(r));
    for (const auto& [key, value] : args) {
        if (std::find(spec->required.begin(), spec->required.end(), key) != spec->required.end()) continue;
        if (std::find(spec->optional.begin(), spec->optional.end(), key) != spec->optional.end()) continue;
        if (key == "session" && target) continue;  // bound to the handle below
        if (key == "timeoutMS" && target && (target->coll || target->db)) continue;  // the handle's, below
        if (known_arguments().contains(key)) skip("option " + std::string(key) + " not supported");
        fail("unsupported argument " + std::string(key) + " for operation " + name);
    }

    // An operation in a session runs on a copy of the handle bound to it (binding is where a
    // session of another client or an ended one is refused).
    entity bound;
    const json::value* in_session = target ? args.if_contains("session") : nullptr;
    if (in_session) {
        bound = *target;
        if (!bound.coll && !bound.db) skip("operations of a client entity in a session not supported");
    }
    // An operation's timeoutMS: on a copy of its handle (the operation's own beats the handle's,
    // as a handle override does).
    const json::value* op_timeout = target && (target->coll || target->db) ? args.if_contains("timeoutMS") : nullptr;
    if (op_timeout) {
        if (!in_session) bound = *target;
        trellis::handle_options t;
        t.timeout = std::chrono::milliseconds(integer_of(*op_timeout, "timeoutMS"));
        if (bound.coll) bound.coll = bound.coll->with_options(t);
        else bound.db = bound.db->with_options(t);
    }
    call c{ctx, in_session || op_timeout ? &bound : target, args};
    op_result result;
    std::optional<caught> error;
    std::exception_ptr raw;  // the error as thrown (rethrown inside withTransaction's callback)
    try {
        if (in_session) {
            const trellis::client_session& s =
                *ctx.entities.get(string_of(*in_session, "session"), entity::kind::session).session;
            if (bound.coll) bound.coll = bound.coll->with_session(s);
            else bound.db = bound.db->with_session(s);
        }
        result = spec->run(c);
    } catch (const test_failure&) {
        throw;
    } catch (const test_skip&) {
        throw;
    } catch (const client_bulk_write_error& e) {
        raw = std::current_exception();
        // The top-level error, when there is one, is what errorCode, errorContains and errorResponse see.
        error = caught{e.what(), server_answered(e), e.server_code(), e.code_name(), e.error_labels(), std::nullopt, std::nullopt, {}, {}};
        if (e.top_level_error()) {
            try {
                std::rethrow_exception(e.top_level_error());
            } catch (const operation_failure& top) {
                error->response = response_of(top);
            } catch (...) {
            }
        }
        if (e.partial_result()) error->partial = client_bulk_result_json(*e.partial_result());
        json::object we;
        for (const auto& [i, w] : e.write_errors()) we[std::to_string(i)] = write_error_json(w);
        error->write_errors = std::move(we);
        json::array wce;
        for (const auto& w : e.write_concern_errors()) wce.push_back(write_error_json(w));
        error->write_concern_errors = std::move(wce);
    } catch (const bulk_write_error& e) {
        raw = std::current_exception();
        error = caught{e.what(), true, e.server_code(), e.code_name(), e.error_labels(), std::nullopt, response_of(e), {}, {}};
        if (e.partial_result()) error->partial = bulk_result_json(*e.partial_result());
    } catch (const operation_failure& e) {
        raw = std::current_exception();
        error = caught{e.what(), server_answered(e), e.server_code(), e.code_name(), e.error_labels(), std::nullopt, response_of(e), {}, {}};
    } catch (const std::exception& e) {
        raw = std::current_exception();
        error = caught{e.what(), false, 0, "", {}, std::nullopt, std::nullopt, {}, {}};
    }
    if (error && raw) {
        try {
            std::rethrow_exception(raw);
        } catch (const trellis::operation_timeout&) {
            error->timeout = true;
        } catch (...) {
        }
    }

    if (const auto* ignore = op.if_contains("ignoreResultAndError"); ignore && ignore->is_bool() && ignore->get_bool()) return;

    if (const auto* expect_error = op.if_contains("expectError")) {
        if (!error) fail("operation " + name + " succeeded, expected an error" + (result.has ? ": got " + show(result.value) : ""));
        check_error(ctx, object_of(*expect_error, "expectError"), *error);
        if (ctx.rethrow_errors && raw) std::rethrow_exception(raw);
        return;
    }
    if (error) fail("operation " + name + " failed: " + error->message);

    if (const auto* expect = op.if_contains("expectResult")) {
        const json::value expected = canonical(*expect);
        if (result.iterable)
            match_documents(expected, result.value, ctx.entities, "result");
        else
            match(expected, result.has ? &result.value : nullptr, true, ctx.entities, "result");
    }
    if (const auto* save = op.if_contains("saveResultAsEntity")) {
        const std::string id = string_of(*save, "saveResultAsEntity");
        if (result.made) {
            ctx.entities.add(id, std::move(*result.made));
        } else if (result.has) {
            entity e;
            e.k = entity::kind::value;
            e.value = result.value;
            ctx.entities.add(id, std::move(e));
        } else {
            fail("operation " + name + " returned nothing to save as " + id);
        }
    }
}

}  // namespace trellis::spec::unified
