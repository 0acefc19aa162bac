#include "ops/common.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

namespace {

std::string string_field(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    return e && e->type() == bson::type::string ? std::string(e->get_string()) : std::string();
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

}  // namespace

std::int64_t int_field(bson::document_view d, std::string_view key) {
    const auto e = d.find(key);
    return e && e->is_number() ? e->as_int64() : 0;
}

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
    // The server's default: nothing to send, nothing to build. Any field set makes the document.
    if (wc != write_concern{}) b.append("writeConcern", write_concern_document(wc).view());
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
    // Room for the _id element too (type, "_id\0", 12 bytes), so the buffer never grows.
    bson::builder b(bson::builder::root::document, doc.size() + 1 + 4 + 12);
    b.append("_id", oid).concat(doc.view());
    id.append("_id", oid);
    return {b.extract(), id.extract()};
}

}  // namespace trellis::ops
