#include "ops/client_bulk_write.hpp"

#include <algorithm>
#include <utility>

#include "trellis/errors.hpp"

namespace trellis::ops {

namespace {

// The spec's allowance for what an OP_MSG carries besides the command and its sequences.
constexpr std::size_t message_overhead = 1000;

bool is_multi(const write_model& m) {
    return std::holds_alternative<update_many_model>(m) || std::holds_alternative<delete_many_model>(m);
}

std::int64_t int_of(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    return e && e->is_number() ? e->as_int64() : 0;
}

std::string string_of(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    return e && e->type() == bson::type::string ? std::string(e->get_string()) : std::string();
}

write_error_detail detail_of(bson::document_view d, std::int64_t index) {
    write_error_detail w;
    w.index = index;
    w.code = static_cast<int>(int_of(d, "code"));
    w.code_name = string_of(d, "codeName");
    w.message = string_of(d, "errmsg");
    if (auto info = d.find("errInfo"); info && info->type() == bson::type::document) w.details = bson::document(info->get_document());
    return w;
}

void append_update_mods(bson::builder& b, const update_spec& u) {
    if (const auto* d = std::get_if<bson::document>(&u)) b.append("updateMods", d->view());
    else b.append("updateMods", std::get<bson::array>(u).view());
}

template <class M>
void append_common(bson::builder& b, const M& m) {
    if (m.collation) b.append("collation", m.collation->view());
    append_hint(b, m.hint);
}

}  // namespace

client_bulk_write_op client_bulk_write_op::make(std::vector<namespace_write_model> models, client_bulk_write_options options,
                                                write_concern wc) {
    if (models.empty()) throw error(errc::invalid_argument, "bulk_write: no write models");
    if (unacknowledged(wc) && options.verbose_results)
        throw error(errc::invalid_argument, "bulk_write: Cannot request unacknowledged write concern and verbose results");
    if (unacknowledged(wc) && options.ordered)
        throw error(errc::invalid_argument,
                    "bulk_write: Cannot request unacknowledged write concern and ordered writes (set ordered to false)");
    client_bulk_write_op op;
    op.options = std::move(options);
    op.wc = std::move(wc);
    op.inserted_ids.resize(models.size());
    op.models.reserve(models.size());
    op.namespaces.reserve(models.size());
    for (std::size_t i = 0; i < models.size(); ++i) {
        auto& [ns, m] = models[i];
        const auto dot = ns.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 == ns.size())
            throw error(errc::invalid_name, "bulk_write: model " + std::to_string(i) + ": the namespace \"" + ns +
                                                "\" is not \"database.collection\"");
        op.inserted_ids[i] = prepare_write_model(m, i);
        op.namespaces.push_back({ns.substr(0, dot), ns.substr(dot + 1)});
        op.models.push_back(std::move(m));
    }
    return op;
}

bson::document client_bulk_write_op::base_command() const {
    bson::builder b;
    b.append("bulkWrite", 1).append("errorsOnly", !options.verbose_results).append("ordered", options.ordered);
    if (options.bypass_document_validation) b.append("bypassDocumentValidation", *options.bypass_document_validation);
    append_comment(b, options.comment);
    if (options.let) b.append("let", options.let->view());
    append_write_concern(b, wc);
    return b.extract();
}

bson::document client_bulk_write_op::op_document(std::size_t model, std::int32_t ns_index) const {
    bson::builder b;
    std::visit(
        [&](const auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, insert_one_model>) {
                b.append("insert", ns_index).append("document", m.document.view());
            } else if constexpr (std::is_same_v<T, delete_one_model> || std::is_same_v<T, delete_many_model>) {
                b.append("delete", ns_index).append("filter", m.filter.view());
                b.append("multi", std::is_same_v<T, delete_many_model>);
                append_common(b, m);
            } else {
                b.append("update", ns_index).append("filter", m.filter.view());
                if constexpr (std::is_same_v<T, replace_one_model>) b.append("updateMods", m.replacement.view());
                else append_update_mods(b, m.update);
                b.append("multi", std::is_same_v<T, update_many_model>);
                if (m.upsert) b.append("upsert", true);
                if constexpr (!std::is_same_v<T, replace_one_model>)
                    if (m.array_filters) b.append("arrayFilters", m.array_filters->view());
                if (m.sort) b.append("sort", m.sort->view());
                append_common(b, m);
            }
        },
        models[model]);
    return b.extract();
}

client_bulk_write_op::batch client_bulk_write_op::next_batch(const connection_limits& limits, std::size_t from) const {
    const std::size_t max_count = limits.max_write_batch_size > 0 ? static_cast<std::size_t>(limits.max_write_batch_size) : 100'000;
    const std::size_t command_bytes = base_command().view().size();
    const std::size_t message = static_cast<std::size_t>(limits.max_message_size_bytes);
    if (message <= message_overhead + command_bytes)
        throw error(errc::invalid_argument, "bulk_write: the server's maxMessageSizeBytes (" + std::to_string(message) +
                                                ") leaves no room for any write");
    const std::size_t max_bytes = message - message_overhead - command_bytes;
    batch out{from, 0, true};
    std::vector<std::string> names;  // the batch's nsInfo
    std::size_t bytes = 0;
    for (std::size_t i = from; i < models.size(); ++i) {
        if (const auto* ins = std::get_if<insert_one_model>(&models[i]);
            ins && ins->document.view().size() > static_cast<std::size_t>(limits.max_bson_object_size))
            throw error(errc::invalid_argument, "bulk_write: model " + std::to_string(i) + ": the document is " +
                                                    std::to_string(ins->document.view().size()) +
                                                    " bytes, more than the server's maxBsonObjectSize of " +
                                                    std::to_string(limits.max_bson_object_size));
        const std::string ns = namespaces[i].db + "." + namespaces[i].coll;
        const std::size_t op_bytes = op_document(i, 0).view().size();
        const std::size_t ns_bytes = 4 + 1 + 3 + 4 + ns.size() + 1 + 1;  // {ns: "<ns>"}
        if (op_bytes + ns_bytes > max_bytes)
            throw error(errc::invalid_argument, "bulk_write: model " + std::to_string(i) + " is " + std::to_string(op_bytes) +
                                                    " bytes as an operation, more than a message can carry (" +
                                                    std::to_string(max_bytes) + " bytes after the command, of maxMessageSizeBytes " +
                                                    std::to_string(message) + ")");
        const bool known = std::find(names.begin(), names.end(), ns) != names.end();
        const std::size_t added = op_bytes + (known ? 0 : ns_bytes);
        if (out.count > 0 && (out.count >= max_count || bytes + added > max_bytes)) break;
        if (!known) names.push_back(ns);
        bytes += added;
        ++out.count;
        if (is_multi(models[i])) out.retryable = false;
    }
    return out;
}

std::vector<client_bulk_write_op::batch> client_bulk_write_op::batches(const connection_limits& limits) const {
    std::vector<batch> out;
    for (std::size_t from = 0; from < models.size(); from += out.back().count) out.push_back(next_batch(limits, from));
    return out;
}

client_bulk_write_op::sequences client_bulk_write_op::sequences_of(const batch& b) const {
    sequences out;
    std::vector<std::string> names;
    out.ops.reserve(b.count);
    for (std::size_t i = b.first; i < b.first + b.count; ++i) {
        const std::string ns = namespaces[i].db + "." + namespaces[i].coll;
        auto at = std::find(names.begin(), names.end(), ns);
        if (at == names.end()) at = names.insert(names.end(), ns);
        out.ops.push_back(op_document(i, static_cast<std::int32_t>(at - names.begin())));
    }
    for (const auto& n : names) out.ns_info.push_back(bson::make_document(bson::kvp("ns", n)));
    return out;
}

bson::document client_bulk_write_op::command(const batch& b) const {
    const auto seq = sequences_of(b);
    bson::builder c;
    c.concat(base_command().view());
    c.open_array("ops");
    for (const auto& d : seq.ops) c.append(d.view());
    c.close_array().open_array("nsInfo");
    for (const auto& d : seq.ns_info) c.append(d.view());
    c.close_array();
    return c.extract();
}

// ---------------------------------------------------------------- results

client_bulk_write_results::client_bulk_write_results(const client_bulk_write_op& op) : op_(op) {
    result_.has_verbose_results = op.options.verbose_results;
}

void client_bulk_write_results::reply(const client_bulk_write_op::batch&, bson::document_view reply) {
    result_.inserted_count += int_of(reply, "nInserted");
    result_.upserted_count += int_of(reply, "nUpserted");
    result_.matched_count += int_of(reply, "nMatched");
    result_.modified_count += int_of(reply, "nModified");
    result_.deleted_count += int_of(reply, "nDeleted");
    batch_errors_ = int_of(reply, "nErrors");
    first_error_idx_.reset();
    if (auto w = write_concern_error_of(reply)) write_concern_errors_.push_back(std::move(*w));
    for (auto& l : error_labels(reply))
        if (std::find(labels_.begin(), labels_.end(), l) == labels_.end()) labels_.push_back(std::move(l));
}

void client_bulk_write_results::result(const client_bulk_write_op::batch& b, bson::document_view doc) {
    const std::int64_t idx = int_of(doc, "idx");
    if (idx < 0 || static_cast<std::size_t>(idx) >= b.count)
        throw error(errc::protocol_error, "bulk_write: a result for operation " + std::to_string(idx) + " of a batch of " +
                                              std::to_string(b.count));
    const std::size_t model = b.first + static_cast<std::size_t>(idx);
    const auto ok = doc.find("ok");
    if (!ok || !ok->is_number() || ok->as_double() == 0) {
        write_errors_[model] = detail_of(doc, static_cast<std::int64_t>(model));
        if (!first_error_idx_ || idx < *first_error_idx_) first_error_idx_ = idx;
        return;
    }
    if (!op_.options.verbose_results) return;
    const write_model& m = op_.models[model];
    if (std::holds_alternative<insert_one_model>(m)) {
        if (int_of(doc, "n") == 1) result_.insert_results[model] = client_insert_one_result{op_.inserted_ids[model]};
    } else if (std::holds_alternative<delete_one_model>(m) || std::holds_alternative<delete_many_model>(m)) {
        result_.delete_results[model] = client_delete_result{int_of(doc, "n")};
    } else {
        client_update_result u;
        u.matched_count = int_of(doc, "n");
        u.modified_count = int_of(doc, "nModified");
        if (auto up = doc.find("upserted"); up && up->type() == bson::type::document)
            if (auto id = up->get_document().find("_id")) {
                bson::builder idb;
                idb.append(*id);
                u.upserted_id = idb.extract();
            }
        result_.update_results[model] = std::move(u);
    }
}

void client_bulk_write_results::end_batch(const client_bulk_write_op::batch& b) {
    // The spec's test of whether anything in the batch succeeded.
    const bool any = op_.options.ordered ? batch_errors_ == 0 || (first_error_idx_ && *first_error_idx_ > 0)
                                         : batch_errors_ < static_cast<std::int64_t>(b.count);
    if (any) succeeded_ = true;
}

client_bulk_write_error client_bulk_write_results::failure(std::exception_ptr top) const {
    std::optional<client_bulk_write_result> partial;
    if (succeeded_) partial = result_;
    std::string text = "bulk_write: ";
    errc kind = errc::write_error;
    int code = 0;
    std::string code_name;
    std::vector<std::string> labels = labels_;
    if (top) {
        try {
            std::rethrow_exception(top);
        } catch (const operation_failure& e) {
            code = e.server_code();
            code_name = e.code_name();
            for (const auto& l : e.error_labels())
                if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
            kind = &e.code().category() == &error_category() ? static_cast<errc>(e.code().value()) : errc::operation_failure;
            text += e.what();
        } catch (const error& e) {
            kind = &e.code().category() == &error_category() ? static_cast<errc>(e.code().value()) : errc::operation_failure;
            text += e.what();
        } catch (const std::exception& e) {
            kind = errc::operation_failure;
            text += e.what();
        }
        text += " (after some writes succeeded or failed: see partial_result and write_errors)";
    } else {
        if (!write_errors_.empty()) {
            const auto& [index, first] = *write_errors_.begin();
            code = first.code;
            code_name = first.code_name;
            kind = first.code == 11000 ? errc::duplicate_key : errc::write_error;
            text += (first.message.empty() ? std::string("write error") : first.message) + " (code " +
                    std::to_string(first.code) + (first.code_name.empty() ? "" : " " + first.code_name) + ", model " +
                    std::to_string(index) + ")";
            if (write_errors_.size() > 1) text += " and " + std::to_string(write_errors_.size() - 1) + " more write error(s)";
        } else if (!write_concern_errors_.empty()) {
            code = write_concern_errors_.front().code;
            code_name = write_concern_errors_.front().code_name;
        }
        bool first = write_errors_.empty();
        for (const auto& w : write_concern_errors_) {
            text += std::exchange(first, false) ? "" : "; ";
            text += "write concern error: " + w.message + " (code " + std::to_string(w.code) + ")";
        }
    }
    return client_bulk_write_error(kind, code, code_name, std::move(labels), text, std::move(top), write_errors_,
                                   write_concern_errors_, std::move(partial));
}

client_bulk_write_result client_bulk_write_results::finish() const {
    if (!write_errors_.empty() || !write_concern_errors_.empty()) throw failure(nullptr);
    return result_;
}

std::exception_ptr client_bulk_write_results::top_level(std::exception_ptr e) const {
    if (!succeeded_ && write_errors_.empty() && write_concern_errors_.empty()) return e;
    return std::make_exception_ptr(failure(std::move(e)));
}

}  // namespace trellis::ops
