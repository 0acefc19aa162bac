#include "ops/distinct.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

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

}  // namespace trellis::ops
