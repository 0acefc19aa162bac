#include "ops/indexes.hpp"

#include <stdexcept>

#include "trellis/bson/json.hpp"
#include "trellis/errors.hpp"

namespace trellis::ops {

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
