#include "ops/ops.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

namespace {

std::string string_field(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    return e && e->type() == bson::type::string ? std::string(e->get_string()) : std::string();
}

std::int64_t int_field(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    return e && e->is_number() ? e->as_int64() : 0;
}

write_error_detail detail_of(bson::document_view e) {
    write_error_detail d;
    d.index = int_field(e, "index");
    d.code = static_cast<int>(int_field(e, "code"));
    d.code_name = string_field(e, "codeName");
    d.message = string_field(e, "errmsg");
    if (auto info = e.find("errInfo"); info && info->type() == bson::type::document) d.details = bson::document(info->get_document());
    return d;
}

bool is_operator(std::string_view key) { return !key.empty() && key.front() == '$'; }

void append_update(bson::builder& b, std::string_view key, const update_spec& u) {
    if (const auto* d = std::get_if<bson::document>(&u)) b.append(key, d->view());
    else b.append(key, std::get<bson::array>(u).view());
}

}  // namespace

void append_hint(bson::builder& b, const std::optional<hint_type>& hint) {
    if (!hint) return;
    if (const auto* name = std::get_if<std::string>(&*hint)) b.append("hint", *name);
    else b.append("hint", std::get<bson::document>(*hint).view());
}

void append_comment(bson::builder& b, const std::optional<comment_type>& comment) {
    if (!comment) return;
    if (const auto* text = std::get_if<std::string>(&*comment)) b.append("comment", *text);
    else b.append("comment", std::get<bson::document>(*comment).view());
}

void append_max_time(bson::builder& b, const std::optional<std::chrono::milliseconds>& max_time) {
    if (max_time) b.append("maxTimeMS", static_cast<std::int64_t>(max_time->count()));
}

void append_write_concern(bson::builder& b, const write_concern& wc) {
    const auto d = write_concern_document(wc);
    if (!d.view().empty()) b.append("writeConcern", d.view());
}

bson::document write_concern_document(const write_concern& wc) {
    bson::builder b;
    if (wc.w) {
        if (const auto* n = std::get_if<std::int32_t>(&*wc.w)) b.append("w", *n);
        else b.append("w", std::get<std::string>(*wc.w));
    }
    if (wc.journal) b.append("j", *wc.journal);
    if (wc.wtimeout) b.append("wtimeout", static_cast<std::int64_t>(wc.wtimeout->count()));
    if (wc.fsync) b.append("fsync", *wc.fsync);
    return b.extract();
}

bool unacknowledged(const write_concern& wc) {
    const auto* n = wc.w ? std::get_if<std::int32_t>(&*wc.w) : nullptr;
    return n && *n == 0 && !wc.journal.value_or(false);
}

std::vector<std::string> error_labels(bson::document_view reply) {
    std::vector<std::string> out;
    auto collect = [&out](bson::document_view d) {
        if (auto l = d.find("errorLabels"); l && l->type() == bson::type::array)
            for (const auto& e : l->get_array())
                if (e.type() == bson::type::string) out.emplace_back(e.get_string());
    };
    collect(reply);
    if (auto w = reply.find("writeConcernError"); w && w->type() == bson::type::document) collect(w->get_document());
    return out;
}

std::vector<write_error_detail> write_errors_of(bson::document_view reply) {
    std::vector<write_error_detail> errors;
    if (auto we = reply.find("writeErrors"); we && we->type() == bson::type::array)
        for (const auto& e : we->get_array())
            if (e.type() == bson::type::document) errors.push_back(detail_of(e.get_document()));
    return errors;
}

std::optional<write_error_detail> write_concern_error_of(bson::document_view reply) {
    if (auto w = reply.find("writeConcernError"); w && w->type() == bson::type::document) return detail_of(w->get_document());
    return std::nullopt;
}

bulk_write_error write_failure(std::vector<write_error_detail> errors, std::optional<write_error_detail> wce,
                               std::vector<std::string> labels, bson::document reply, const std::string& where,
                               std::optional<bulk_write_result> partial) {
    std::string text = where + ": ";
    if (!errors.empty()) {
        const auto& first = errors.front();
        text += first.message.empty() ? std::string("write error") : first.message;
        text += " (code " + std::to_string(first.code) + (first.code_name.empty() ? "" : " " + first.code_name) +
                ", write " + std::to_string(first.index) + ")";
        if (errors.size() > 1) text += " and " + std::to_string(errors.size() - 1) + " more write error(s)";
        if (wce) text += "; ";
    }
    if (wce) text += "write concern error: " + wce->message + " (code " + std::to_string(wce->code) + ")";
    return bulk_write_error(std::move(errors), std::move(wce), std::move(labels), std::move(reply), text, std::move(partial));
}

void check_write_reply(bson::document_view reply, const std::string& where) {
    auto errors = write_errors_of(reply);
    auto wce = write_concern_error_of(reply);
    if (errors.empty() && !wce) return;
    throw write_failure(std::move(errors), std::move(wce), error_labels(reply), bson::document(reply), where, std::nullopt);
}

std::pair<bson::document, bson::document> with_id(bson::document doc) {
    bson::builder id;
    if (auto e = doc.find("_id")) {
        id.append(*e);
        return {std::move(doc), id.extract()};
    }
    const auto oid = bson::oid::generate();
    bson::builder b;
    b.append("_id", oid).concat(doc.view());
    id.append("_id", oid);
    return {b.extract(), id.extract()};
}

// ---------------------------------------------------------------- update

void validate_update(const update_spec& spec) {
    if (const auto* pipeline = std::get_if<bson::array>(&spec)) {
        if (pipeline->view().empty()) throw error(errc::invalid_argument, "an update pipeline must not be empty");
        return;
    }
    const auto update = std::get<bson::document>(spec).view();
    if (update.empty()) throw error(errc::invalid_argument, "an update document must not be empty");
    for (const auto& e : update)
        if (!is_operator(e.key()))
            throw error(errc::invalid_argument, "an update document's keys must be operators ($set, $inc, ...); got \"" +
                                                    std::string(e.key()) + "\" (use replace_one to replace a document)");
}

void validate_replacement(bson::document_view replacement) {
    for (const auto& e : replacement)
        if (is_operator(e.key()))
            throw error(errc::invalid_argument, "a replacement document must not contain operators; got \"" +
                                                    std::string(e.key()) + "\" (use update_one to apply operators)");
}

void append_statement(bson::builder& b, const update_statement& statement) {
    b.append("q", statement.filter.view());
    append_update(b, "u", statement.update);
    if (statement.multi) b.append("multi", true);
    if (statement.upsert) b.append("upsert", true);
    if (statement.array_filters) b.append("arrayFilters", statement.array_filters->view());
    if (statement.collation) b.append("collation", statement.collation->view());
    append_hint(b, statement.hint);
    if (statement.sort) b.append("sort", statement.sort->view());
}

bson::document update_op::command() const {
    bson::builder b;
    b.append("update", collection).open_array("updates").open_document();
    append_statement(b, statement);
    b.close_document().close_array().append("ordered", true);
    if (let) b.append("let", let->view());
    if (bypass_document_validation) b.append("bypassDocumentValidation", *bypass_document_validation);
    append_comment(b, comment);
    append_write_concern(b, wc);
    return b.extract();
}

update_result update_op::parse(bson::document_view reply) const {
    update_result r;
    r.acknowledged = !unacknowledged(wc);
    if (!r.acknowledged) return r;
    r.matched_count = int_field(reply, "n");
    r.modified_count = int_field(reply, "nModified");
    if (auto up = reply.find("upserted"); up && up->type() == bson::type::array && !up->get_array().empty()) {
        const auto first = (*up->get_array().begin()).get_document();
        if (auto id = first.find("_id")) {
            bson::builder b;
            b.append(*id);
            r.upserted_id = b.extract();
        }
        r.matched_count -= 1;  // n counts the upserted document too
        if (r.matched_count < 0) r.matched_count = 0;
    }
    return r;
}

// ---------------------------------------------------------------- delete

bson::document delete_op::command() const {
    bson::builder b;
    b.append("delete", collection).open_array("deletes").open_document();
    b.append("q", filter.view()).append("limit", multi ? 0 : 1);
    if (collation) b.append("collation", collation->view());
    append_hint(b, hint);
    b.close_document().close_array().append("ordered", true);
    if (let) b.append("let", let->view());
    append_comment(b, comment);
    append_write_concern(b, wc);
    return b.extract();
}

delete_result delete_op::parse(bson::document_view reply) const {
    delete_result r;
    r.acknowledged = !unacknowledged(wc);
    if (r.acknowledged) r.deleted_count = int_field(reply, "n");
    return r;
}

// ---------------------------------------------------------------- reads

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

bson::document distinct_op::command() const {
    bson::builder b;
    b.append("distinct", collection).append("key", key);
    b.append("query", filter.view());
    if (options.collation) b.append("collation", options.collation->view());
    append_hint(b, options.hint);
    append_max_time(b, options.max_time);
    append_comment(b, options.comment);
    return b.extract();
}

bson::array distinct_op::parse(bson::document_view reply) const {
    const auto values = reply.find("values");
    if (!values || values->type() != bson::type::array)
        throw error(errc::operation_failure, "distinct: the reply has no values array");
    bson::builder b;
    for (const auto& e : values->get_array()) b.append(std::string_view(e.key()), e);
    return bson::array(b.extract());
}

bson::document aggregate_op::command() const {
    bson::builder b;
    if (collection.empty()) b.append("aggregate", 1);
    else b.append("aggregate", collection);
    b.append("pipeline", pipeline.view()).open_document("cursor");
    if (options.batch_size && !writes()) b.append("batchSize", *options.batch_size);
    b.close_document();
    if (options.allow_disk_use) b.append("allowDiskUse", *options.allow_disk_use);
    append_max_time(b, options.max_time);
    if (options.collation) b.append("collation", options.collation->view());
    append_hint(b, options.hint);
    append_comment(b, options.comment);
    if (options.let) b.append("let", options.let->view());
    if (options.bypass_document_validation && writes())
        b.append("bypassDocumentValidation", *options.bypass_document_validation);
    if (writes() && options.write_concern) append_write_concern(b, *options.write_concern);
    return b.extract();
}

bool aggregate_op::writes() const {
    std::string_view last;
    for (const auto& stage : pipeline)
        if (stage.type() == bson::type::document && !stage.get_document().empty())
            last = (*stage.get_document().begin()).key();
    return last == "$out" || last == "$merge";
}

// ---------------------------------------------------------------- find

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

bson::document list_collections_command(const list_collections_options& options) {
    bson::builder b;
    b.append("listCollections", 1);
    if (!options.filter.view().empty()) b.append("filter", options.filter.view());
    if (options.name_only) b.append("nameOnly", true);
    if (options.authorized_collections) b.append("authorizedCollections", *options.authorized_collections);
    b.open_document("cursor");
    if (options.batch_size) b.append("batchSize", *options.batch_size);
    b.close_document();
    append_comment(b, options.comment);
    return b.extract();
}

// ---------------------------------------------------------------- run_cursor_command

void validate_cursor_command(bson::document_view command, const run_cursor_command_options& options) {
    if (command.empty()) throw error(errc::invalid_argument, "run_cursor_command: the command is an empty document");
    if (options.batch_size && *options.batch_size < 1)
        throw error(errc::invalid_argument, "run_cursor_command: batch_size (getMore's batchSize) must be positive, got " +
                                                std::to_string(*options.batch_size));
    if (options.max_time && options.max_time->count() < 0)
        throw error(errc::invalid_argument, "run_cursor_command: max_time (getMore's maxTimeMS) must not be negative, got " +
                                                std::to_string(options.max_time->count()) + " ms");
}

void check_cursor_reply(bson::document_view reply, std::string_view command_name) {
    const std::string where = "run_cursor_command: the reply to \"" + std::string(command_name) + "\"";
    // "missing" or "of type int", for the messages below.
    const auto what_is = [](const std::optional<bson::element>& e) {
        return e ? "of type " + std::string(bson::type_name(e->type())) : std::string("missing");
    };
    const auto cur = reply.find("cursor");
    if (!cur)
        throw error(errc::invalid_argument, where + " has no cursor document: the command does not return a cursor "
                                                   "(use run_command)");
    if (cur->type() != bson::type::document)
        throw error(errc::operation_failure, where + ": cursor is " + what_is(cur) + ", not a document");
    const bson::document_view c = cur->get_document();
    const auto id = c.find("id");
    if (!id || (id->type() != bson::type::int64 && id->type() != bson::type::int32))
        throw error(errc::operation_failure, where + ": cursor.id is " + what_is(id) + ", not an integer");
    const auto batch = c.find("firstBatch");
    if (!batch || batch->type() != bson::type::array)
        throw error(errc::operation_failure, where + ": cursor.firstBatch is " + what_is(batch) + ", not an array");
    std::size_t i = 0;
    for (const auto& d : batch->get_array()) {
        if (d.type() != bson::type::document)
            throw error(errc::operation_failure, where + ": cursor.firstBatch." + std::to_string(i) + " is of type " +
                                                     std::string(bson::type_name(d.type())) + ", not a document");
        ++i;
    }
    if (const auto ns = c.find("ns"); ns && (ns->type() != bson::type::string || ns->get_string().find('.') == std::string_view::npos))
        throw error(errc::operation_failure, where + ": cursor.ns is not a \"db.collection\" string");
}

// ---------------------------------------------------------------- indexes

std::string default_index_name(bson::document_view keys) {
    std::string name;
    for (const auto& k : keys) {
        if (!name.empty()) name += '_';
        name += std::string(k.key()) + '_';
        if (k.type() == bson::type::string) name += std::string(k.get_string());
        else if (k.is_number()) {
            const double v = k.as_double();
            name += v == static_cast<double>(static_cast<std::int64_t>(v)) ? std::to_string(static_cast<std::int64_t>(v))
                                                                          : std::to_string(v);
        } else
            name += "1";
    }
    return name;
}

std::vector<std::string> create_indexes_op::names() const {
    std::vector<std::string> out;
    for (const auto& m : indexes) {
        if (auto n = m.options.find("name"); n && n->type() == bson::type::string) out.emplace_back(n->get_string());
        else out.push_back(default_index_name(m.keys.view()));
    }
    return out;
}

bson::document create_indexes_op::command() const {
    const auto n = names();
    bson::builder b;
    b.append("createIndexes", collection).open_array("indexes");
    for (std::size_t i = 0; i < indexes.size(); ++i) {
        b.open_document().append("key", indexes[i].keys.view());
        if (!indexes[i].options.contains("name")) b.append("name", n[i]);
        b.concat(indexes[i].options.view()).close_document();
    }
    b.close_array();
    append_write_concern(b, wc);
    return b.extract();
}

}  // namespace trellis::ops
