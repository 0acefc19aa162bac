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

void append_hint(bson::builder& b, const std::optional<hint_type>& hint) {
    if (!hint) return;
    if (const auto* name = std::get_if<std::string>(&*hint)) b.append("hint", *name);
    else b.append("hint", std::get<bson::document>(*hint).view());
}

void append_write_concern(bson::builder& b, const write_concern& wc) {
    const auto d = write_concern_document(wc);
    if (!d.view().empty()) b.append("writeConcern", d.view());
}

bool is_operator(std::string_view key) { return !key.empty() && key.front() == '$'; }

}  // namespace

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

void check_write_reply(bson::document_view reply, std::int64_t offset, const std::string& where) {
    std::vector<write_error_detail> errors;
    if (auto we = reply.find("writeErrors"); we && we->type() == bson::type::array)
        for (const auto& e : we->get_array())
            if (e.type() == bson::type::document) {
                errors.push_back(detail_of(e.get_document()));
                errors.back().index += offset;
            }
    std::optional<write_error_detail> wce;
    if (auto w = reply.find("writeConcernError"); w && w->type() == bson::type::document) wce = detail_of(w->get_document());
    if (errors.empty() && !wce) return;
    std::vector<std::string> labels = error_labels(reply);
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
    throw bulk_write_error(std::move(errors), std::move(wce), std::move(labels), bson::document(reply), text);
}

// ---------------------------------------------------------------- insert

insert_op insert_op::make(std::string collection, std::vector<bson::document> docs, bool ordered, write_concern wc) {
    insert_op op;
    op.collection = std::move(collection);
    op.ordered = ordered;
    op.wc = std::move(wc);
    op.documents.reserve(docs.size());
    op.ids.reserve(docs.size());
    for (auto& doc : docs) {
        if (auto id = doc.find("_id")) {
            bson::builder b;
            b.append(*id);
            op.ids.push_back(b.extract());
            op.documents.push_back(std::move(doc));
        } else {
            const auto oid = bson::oid::generate();
            bson::builder b;
            b.append("_id", oid).concat(doc.view());
            op.documents.push_back(b.extract());
            op.ids.push_back(bson::make_document(bson::kvp("_id", oid)));
        }
    }
    return op;
}

std::vector<std::pair<std::size_t, std::size_t>> insert_op::batches(const connection_limits& limits) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    const std::size_t max_count = limits.max_write_batch_size > 0 ? static_cast<std::size_t>(limits.max_write_batch_size) : 100'000;
    // The command document may exceed maxBsonObjectSize by 16 KiB for its own fields; the
    // documents array is kept under maxBsonObjectSize (each element costs its key and type too).
    const std::size_t max_bytes = static_cast<std::size_t>(limits.max_bson_object_size);
    std::size_t first = 0, bytes = 0;
    for (std::size_t i = 0; i < documents.size(); ++i) {
        const std::size_t size = documents[i].view().size();
        if (size > max_bytes)
            throw error(errc::invalid_argument, "document " + std::to_string(i) + " is " + std::to_string(size) +
                                                    " bytes, more than the server's maxBsonObjectSize of " +
                                                    std::to_string(max_bytes));
        const std::size_t cost = size + 2 + std::to_string(i - first).size();
        if (i > first && (i - first >= max_count || bytes + cost > max_bytes)) {
            out.emplace_back(first, i);
            first = i;
            bytes = 0;
        }
        bytes += size + 2 + std::to_string(i - first).size();
    }
    if (first < documents.size()) out.emplace_back(first, documents.size());
    return out;
}

bson::document insert_op::command(std::size_t first, std::size_t last) const {
    bson::builder b;
    b.append("insert", collection).open_array("documents");
    for (std::size_t i = first; i < last; ++i) b.append(documents[i].view());
    b.close_array().append("ordered", ordered);
    if (bypass_document_validation) b.append("bypassDocumentValidation", *bypass_document_validation);
    append_write_concern(b, wc);
    return b.extract();
}

// ---------------------------------------------------------------- update

void validate_update(bson::document_view update) {
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

bson::document update_op::command() const {
    bson::builder b;
    b.append("update", collection).open_array("updates").open_document();
    b.append("q", statement.filter.view()).append("u", statement.update.view());
    if (statement.multi) b.append("multi", true);
    if (statement.upsert) b.append("upsert", true);
    if (statement.array_filters) b.append("arrayFilters", statement.array_filters->view());
    if (statement.collation) b.append("collation", statement.collation->view());
    append_hint(b, statement.hint);
    b.close_document().close_array().append("ordered", true);
    if (let) b.append("let", let->view());
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
    if (options.max_time) b.append("maxTimeMS", static_cast<std::int64_t>(options.max_time->count()));
    return b.extract();
}

std::int64_t count_documents_op::parse(bson::document_view reply) const {
    const auto batch = reply["cursor"].get_document()["firstBatch"].get_array();
    if (batch.empty()) return 0;
    return (*batch.begin()).get_document()["n"].as_int64();
}

bson::document estimated_count_op::command() const {
    return bson::make_document(bson::kvp("count", collection));
}

std::int64_t estimated_count_op::parse(bson::document_view reply) const { return int_field(reply, "n"); }

bson::document distinct_op::command() const {
    bson::builder b;
    b.append("distinct", collection).append("key", key);
    if (!filter.view().empty()) b.append("query", filter.view());
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
    if (options.max_time) b.append("maxTimeMS", static_cast<std::int64_t>(options.max_time->count()));
    if (options.collation) b.append("collation", options.collation->view());
    append_hint(b, options.hint);
    if (options.comment) b.append("comment", *options.comment);
    if (options.let) b.append("let", options.let->view());
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
