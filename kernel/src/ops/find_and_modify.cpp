#include "ops/find_and_modify.hpp"

#include "trellis/errors.hpp"

namespace trellis::ops {

void find_and_modify_op::validate() const {
    const std::string where = what == kind::update ? "find_one_and_update" : what == kind::replace ? "find_one_and_replace"
                                                                                                  : "find_one_and_delete";
    auto refuse = [&](const std::string& why) { throw error(errc::invalid_argument, where + ": " + why); };
    try {
        if (what == kind::update) validate_update(change);
        if (what == kind::replace) {
            if (!std::holds_alternative<bson::document>(change)) refuse("the replacement must be a document, not a pipeline");
            validate_replacement(std::get<bson::document>(change).view());
        }
    } catch (const error& e) {
        if (e.code() != errc::invalid_argument) throw;
        refuse(e.what());
    }
    if (what != kind::update && options.array_filters) refuse("array_filters applies to an update only");
    if (what == kind::remove) {
        if (options.upsert) refuse("upsert does not apply to a delete");
        if (options.return_document == return_document::after) refuse("return_document after does not apply to a delete");
        if (options.bypass_document_validation) refuse("bypass_document_validation does not apply to a delete");
    }
}

bson::document find_and_modify_op::command() const {
    bson::builder b;
    b.append("findAndModify", collection).append("query", filter.view());
    if (options.sort) b.append("sort", options.sort->view());
    if (what == kind::remove) {
        b.append("remove", true);
    } else {
        if (const auto* d = std::get_if<bson::document>(&change)) b.append("update", d->view());
        else b.append("update", std::get<bson::array>(change).view());
        if (options.return_document == return_document::after) b.append("new", true);
        if (options.upsert) b.append("upsert", true);
    }
    if (options.projection) b.append("fields", options.projection->view());
    if (options.array_filters) b.append("arrayFilters", options.array_filters->view());
    if (options.bypass_document_validation) b.append("bypassDocumentValidation", *options.bypass_document_validation);
    if (options.collation) b.append("collation", options.collation->view());
    append_hint(b, options.hint);
    if (options.let) b.append("let", options.let->view());
    append_max_time(b, options.max_time);
    append_comment(b, options.comment);
    append_write_concern(b, wc);
    return b.extract();
}

std::optional<bson::document> find_and_modify_op::parse(bson::document_view reply) const {
    if (unacknowledged(wc)) return std::nullopt;  // w: 0: what the server sent back is not an answer
    const auto value = reply.find("value");
    if (!value || value->type() != bson::type::document) return std::nullopt;  // null: nothing matched
    return bson::document(value->get_document());
}

}  // namespace trellis::ops
