// A blocking call's views and models, passed down the operation path without copying their
// bytes: the call returns only once its operation is done with them (detail::wait).
#pragma once

#include <optional>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/client_bulk_write.hpp"
#include "trellis/collection.hpp"

namespace trellis::detail {

inline bson::document borrowed(bson::document_view v) noexcept { return bson::detail::borrow(v); }
inline bson::array borrowed(bson::array_view v) noexcept { return bson::array(bson::detail::borrow(v)); }
inline update_spec borrowed(const update_view& u) {
    if (const auto* d = std::get_if<bson::document_view>(&u.get())) return borrowed(*d);
    return borrowed(std::get<bson::array_view>(u.get()));
}
inline std::optional<bson::document> borrowed(const std::optional<bson::document>& d) {
    if (!d) return std::nullopt;
    return borrowed(d->view());
}
inline std::optional<bson::array> borrowed(const std::optional<bson::array>& a) {
    if (!a) return std::nullopt;
    return borrowed(a->view());
}
inline std::optional<hint_type> borrowed(const std::optional<hint_type>& h) {
    if (!h) return std::nullopt;
    if (const auto* keys = std::get_if<bson::document>(&*h)) return hint_type(borrowed(keys->view()));
    return h;  // an index name
}

inline write_model borrowed(const write_model& m) {
    return std::visit(
        [](const auto& x) -> write_model {
            using model = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<model, insert_one_model>) {
                return insert_one_model{borrowed(x.document.view())};
            } else if constexpr (std::is_same_v<model, replace_one_model>) {
                return replace_one_model{borrowed(x.filter.view()), borrowed(x.replacement.view()), x.upsert,
                                         borrowed(x.collation), borrowed(x.hint), borrowed(x.sort)};
            } else if constexpr (std::is_same_v<model, delete_one_model> || std::is_same_v<model, delete_many_model>) {
                return model{borrowed(x.filter.view()), borrowed(x.collation), borrowed(x.hint)};
            } else {  // update_one_model, update_many_model
                return model{borrowed(x.filter.view()), borrowed(update_view(x.update)), x.upsert, borrowed(x.array_filters),
                             borrowed(x.collation), borrowed(x.hint), borrowed(x.sort)};
            }
        },
        m);
}
inline index_model borrowed(const index_model& m) { return index_model{borrowed(m.keys.view()), borrowed(m.options.view())}; }
inline namespace_write_model borrowed(const namespace_write_model& m) { return namespace_write_model{m.ns, borrowed(m.model)}; }

template <typename Model>
std::vector<Model> borrowed(std::span<const Model> models) {
    std::vector<Model> out;
    out.reserve(models.size());
    for (const auto& m : models) out.push_back(borrowed(m));
    return out;
}

}  // namespace trellis::detail
