#include "ops/delete.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

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

}  // namespace trellis::ops
