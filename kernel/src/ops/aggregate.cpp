#include "ops/aggregate.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

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

}  // namespace trellis::ops
