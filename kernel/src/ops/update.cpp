#include "ops/update.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

namespace {

bool is_operator(std::string_view key) { return !key.empty() && key.front() == '$'; }

void append_update(bson::builder& b, std::string_view key, const update_spec& u) {
    if (const auto* d = std::get_if<bson::document>(&u)) b.append(key, d->view());
    else b.append(key, std::get<bson::array>(u).view());
}

}  // namespace

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

}  // namespace trellis::ops
