#include "ops/bulk_write.hpp"

#include <algorithm>
#include <set>

#include "trellis/errors.hpp"

namespace trellis::ops {

namespace {

using kind = bulk_write_op::kind;

kind kind_of(const write_model& m) {
    switch (m.index()) {
        case 0: return kind::insert;
        case 1: case 2: case 3: return kind::update;
        default: return kind::remove;
    }
}

bool multi(const write_model& m) {
    return std::holds_alternative<update_many_model>(m) || std::holds_alternative<delete_many_model>(m);
}

template <class M>
update_statement statement_of(const M& m, bool is_multi) {
    update_statement s;
    s.filter = m.filter;
    s.update = m.update;
    s.multi = is_multi;
    s.upsert = m.upsert;
    s.array_filters = m.array_filters;
    s.collation = m.collation;
    s.hint = m.hint;
    s.sort = m.sort;
    return s;
}

update_statement statement_of(const write_model& m) {
    if (const auto* u = std::get_if<update_one_model>(&m)) return statement_of(*u, false);
    if (const auto* u = std::get_if<update_many_model>(&m)) return statement_of(*u, true);
    const auto& r = std::get<replace_one_model>(m);
    update_statement s;
    s.filter = r.filter;
    s.update = r.replacement;
    s.upsert = r.upsert;
    s.collation = r.collation;
    s.hint = r.hint;
    s.sort = r.sort;
    return s;
}

// The bytes a model adds to its command (its statement, with the array key and type byte).
std::size_t cost_of(const write_model& m) {
    constexpr std::size_t overhead = 64;  // keys and flags of a statement ({q, u, multi, upsert, limit})
    return std::visit(
        [](const auto& v) -> std::size_t {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, insert_one_model>) {
                return v.document.view().size() + 8;
            } else {
                std::size_t n = v.filter.view().size() + overhead;
                if constexpr (std::is_same_v<T, replace_one_model>) n += v.replacement.view().size();
                if constexpr (std::is_same_v<T, update_one_model> || std::is_same_v<T, update_many_model>)
                    n += std::visit([](const auto& u) { return u.view().size(); }, v.update);
                return n;
            }
        },
        m);
}

}  // namespace

bson::document prepare_write_model(write_model& m, std::size_t index) {
    try {
        if (auto* ins = std::get_if<insert_one_model>(&m)) {
            auto [doc, id] = with_id(std::move(ins->document));
            ins->document = std::move(doc);
            return std::move(id);
        }
        if (const auto* u = std::get_if<update_one_model>(&m)) {
            validate_update(u->update);
        } else if (const auto* um = std::get_if<update_many_model>(&m)) {
            validate_update(um->update);
            if (um->sort) throw error(errc::invalid_argument, "sort applies to update_one and replace_one, not update_many");
        } else if (const auto* r = std::get_if<replace_one_model>(&m)) {
            validate_replacement(r->replacement.view());
        }
    } catch (const error& e) {
        throw error(e.code(), "bulk_write: model " + std::to_string(index) + ": " + e.what());
    }
    return {};
}

bulk_write_op bulk_write_op::make(std::string collection, std::vector<write_model> models, bulk_write_options options,
                                  write_concern wc) {
    if (models.empty()) throw error(errc::invalid_argument, "bulk_write: no write models");
    bulk_write_op op;
    op.collection = std::move(collection);
    op.options = std::move(options);
    op.wc = std::move(wc);
    op.inserted_ids.resize(models.size());
    for (std::size_t i = 0; i < models.size(); ++i) op.inserted_ids[i] = prepare_write_model(models[i], i);
    op.models = std::move(models);
    // Ordered: the models in order, a new command at each change of kind. Unordered: inserts,
    // then updates, then deletes, each kind in the models' order.
    op.order.resize(op.models.size());
    for (std::size_t i = 0; i < op.order.size(); ++i) op.order[i] = i;
    if (!op.options.ordered)
        std::stable_sort(op.order.begin(), op.order.end(),
                         [&](std::size_t a, std::size_t b) { return kind_of(op.models[a]) < kind_of(op.models[b]); });
    return op;
}

bulk_write_op::batch bulk_write_op::next_batch(const connection_limits& limits, std::size_t from) const {
    const std::size_t max_count = limits.max_write_batch_size > 0 ? static_cast<std::size_t>(limits.max_write_batch_size) : 100'000;
    const std::size_t max_bytes = static_cast<std::size_t>(limits.max_bson_object_size);
    batch out;
    std::size_t bytes = 0;
    for (std::size_t at = from; at < order.size(); ++at) {
        const std::size_t i = order[at];
        const auto* insert = std::get_if<insert_one_model>(&models[i]);
        if (insert && insert->document.view().size() > max_bytes)
            throw error(errc::invalid_argument, "bulk_write: document " + std::to_string(i) + " is " +
                                                    std::to_string(insert->document.view().size()) +
                                                    " bytes, more than the server's maxBsonObjectSize of " +
                                                    std::to_string(max_bytes));
        const std::size_t cost = cost_of(models[i]);
        const kind k = kind_of(models[i]);
        if (!out.models.empty() && (out.what != k || out.models.size() >= max_count || bytes + cost > max_bytes)) break;
        out.what = k;
        out.models.push_back(i);
        if (multi(models[i])) out.retryable = false;
        std::visit([&](const auto& m) {
            if constexpr (requires { m.hint; }) if (m.hint) out.hinted = true;
        }, models[i]);
        bytes += cost;
    }
    return out;
}

bulk_write_op::kind bulk_write_op::kind_at(std::size_t from) const { return kind_of(models[order.at(from)]); }

std::vector<bulk_write_op::batch> bulk_write_op::batches(const connection_limits& limits) const {
    std::vector<batch> out;
    for (std::size_t from = 0; from < order.size(); from += out.back().models.size()) out.push_back(next_batch(limits, from));
    return out;
}

std::vector<bson::document> bulk_write_op::statements(const batch& b) const {
    std::vector<bson::document> out;
    out.reserve(b.models.size());
    for (auto i : b.models) {
        std::visit(
            [&](const auto& m) {
                using T = std::decay_t<decltype(m)>;
                if constexpr (std::is_same_v<T, insert_one_model>) {
                    // The model's own bytes, not a copy: the batch is sent while this op lives.
                    out.push_back(bson::detail::borrow(m.document.view()));
                } else if constexpr (std::is_same_v<T, delete_one_model> || std::is_same_v<T, delete_many_model>) {
                    bson::builder c;
                    c.append("q", m.filter.view());
                    c.append("limit", std::is_same_v<T, delete_many_model> ? 0 : 1);
                    if (m.collation) c.append("collation", m.collation->view());
                    append_hint(c, m.hint);
                    out.push_back(c.extract());
                } else {
                    bson::builder c;
                    append_statement(c, statement_of(models[i]));
                    out.push_back(c.extract());
                }
            },
            models[i]);
    }
    return out;
}

const char* bulk_write_op::sequence_of(kind k) {
    return k == kind::insert ? "documents" : k == kind::update ? "updates" : "deletes";
}

bson::document bulk_write_op::head(kind k) const {
    bson::builder c;
    c.append(k == kind::insert ? "insert" : k == kind::update ? "update" : "delete", collection);
    c.append("ordered", options.ordered);
    if (k != kind::insert && options.let) c.append("let", options.let->view());
    if (k != kind::remove && options.bypass_document_validation)
        c.append("bypassDocumentValidation", *options.bypass_document_validation);
    append_comment(c, options.comment);
    append_write_concern(c, wc);
    return c.extract();
}

bson::document bulk_write_op::command(const batch& b) const {
    bson::builder c;
    const auto h = head(b.what);
    auto it = h.view().begin();
    c.append(*it);  // the command's name first
    c.open_array(sequence_of(b.what));
    for (const auto& d : statements(b)) c.append(d.view());
    c.close_array();
    for (++it; it != h.view().end(); ++it) c.append(*it);
    return c.extract();
}

void bulk_write_op::merge(const batch& b, bson::document_view reply, const std::vector<write_error_detail>& batch_errors,
                          bulk_write_result& into) const {
    into.acknowledged = !unacknowledged(wc);
    if (!into.acknowledged) return;
    const auto n = reply.find("n");
    const std::int64_t count = n && n->is_number() ? n->as_int64() : 0;
    switch (b.what) {
        case kind::insert: {
            into.inserted_count += count;
            std::set<std::int64_t> failed;
            for (const auto& e : batch_errors) failed.insert(e.index);
            const std::int64_t stop = options.ordered && !failed.empty() ? *failed.begin() : static_cast<std::int64_t>(b.models.size());
            for (std::int64_t k = 0; k < stop; ++k)
                if (!failed.contains(k)) into.inserted_ids[static_cast<std::int64_t>(b.models[static_cast<std::size_t>(k)])] =
                    inserted_ids[b.models[static_cast<std::size_t>(k)]];
            break;
        }
        case kind::update: {
            std::int64_t upserted = 0;
            if (auto up = reply.find("upserted"); up && up->type() == bson::type::array)
                for (const auto& e : up->get_array()) {
                    if (e.type() != bson::type::document) continue;
                    const auto d = e.get_document();
                    const auto index = d.find("index");
                    const auto id = d.find("_id");
                    if (!index || !index->is_number() || !id) continue;
                    const auto local = index->as_int64();
                    if (local < 0 || static_cast<std::size_t>(local) >= b.models.size()) continue;
                    bson::builder idb;
                    idb.append(*id);
                    into.upserted_ids[static_cast<std::int64_t>(b.models[static_cast<std::size_t>(local)])] = idb.extract();
                    ++upserted;
                }
            into.upserted_count += upserted;
            into.matched_count += std::max<std::int64_t>(0, count - upserted);  // n counts upserts too
            if (auto m = reply.find("nModified"); m && m->is_number()) into.modified_count += m->as_int64();
            break;
        }
        case kind::remove: into.deleted_count += count; break;
    }
}

}  // namespace trellis::ops
