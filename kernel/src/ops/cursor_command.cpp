#include "ops/cursor_command.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

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

}  // namespace trellis::ops
