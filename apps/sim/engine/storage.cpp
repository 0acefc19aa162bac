// Collections (documents in insertion order, unique indexes, the oplog of
// every change) and the catalog of databases that holds them.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "internal.hpp"

namespace trellis::sim {

using detail::fail;
using detail::value;
using detail::writer;

namespace {

// Index keys are documents {"": v1, "": v2, ...}, ordered value by value.
struct key_less {
    bool operator()(const bson::document& a, const bson::document& b) const {
        const collation_scope binary{collation{}};  // index order is the simple collation's, whatever the command's
        auto i = a.begin(), j = b.begin();
        for (; i != a.end() && j != b.end(); ++i, ++j) {
            const int c = compare_values(*i, *j);
            if (c != 0) return c < 0;
        }
        return i == a.end() && j != b.end();
    }
};

bool same_key_pattern(bson::document_view a, bson::document_view b) { return a == b; }

std::string index_name_for(bson::document_view key) {
    std::string name;
    for (const bson::element& e : key) {
        if (!name.empty()) name += '_';
        name += e.key();
        name += '_';
        if (e.type() == bson::type::string) {
            name += e.get_string();
        } else if (e.type() == bson::type::int32 || e.type() == bson::type::int64) {
            name += std::to_string(e.as_int64());
        } else {
            const double d = detail::number::of(e).to_double();
            name += d == std::trunc(d) ? std::to_string(static_cast<std::int64_t>(d)) : detail::shell(e);
        }
    }
    return name;
}

bson::document index_spec_text(const index_info& i) {
    return bson::make_document(bson::kvp("v", 2), bson::kvp("key", i.key), bson::kvp("name", i.name));
}

}  // namespace

// ---------------------------------------------------------------- collection state

namespace {
thread_local bool bypassing = false;  // a validation_bypass is alive on this thread
}

struct collection::state {
    struct index {
        index_info info;
        std::vector<std::vector<std::string>> paths;
        std::vector<std::string> names;  // the key's field names, for messages
        bool is_id = false;
        std::map<bson::document, std::size_t, key_less> entries;  // unique indexes only: key -> slot
    };

    std::string ns;
    std::vector<std::optional<bson::document>> slots;  // insertion order; nullopt: deleted
    std::size_t live = 0;
    std::size_t bytes = 0;
    std::vector<index> indexes;  // [0] is _id_
    std::optional<capped_options> capped;
    std::uint64_t inserted = 0;  // documents ever added (not replaced)
    validation_options validation;
    std::size_t max_document_size = default_max_document_size;

    void validate(const bson::document& doc, std::optional<std::size_t> at) const {
        if (validation.validator.empty() || validation.level == "off" || validation.action != "error" || bypassing) return;
        const matcher m = matcher::compile(validation.validator);
        if (at && validation.level == "moderate" && !m.matches(*slots[*at])) return;
        if (m.matches(doc)) return;
        bson::builder info;
        info.open_document("errInfo");
        if (auto id = doc.view().find("_id")) info.append("failingDocumentId", *id);
        const bson::element first = *validation.validator.view().begin();
        info.open_document("details").append("operatorName", first.key().starts_with("$") ? first.key() : std::string_view("$and"))
            .append("specifiedAs", validation.validator.view()).append("reason", "the document does not match the validator")
            .close_document();
        info.close_document();
        fail(121, "Document failed validation", info.extract());
    }

    explicit state(std::string n) : ns(std::move(n)) {
        index id;
        id.info = {"_id_", bson::make_document(bson::kvp("_id", 1)), true};
        id.paths = {{"_id"}};
        id.names = {"_id"};
        id.is_id = true;
        indexes.push_back(std::move(id));
    }

    // The keys a document has in an index: one per array element for a
    // multikey field, null for a missing field (so two documents without a
    // unique field collide, as in mongod).
    std::vector<bson::document> keys_of(const index& ix, bson::document_view doc) const {
        if (ix.is_id) {
            writer w;
            const auto id = doc.find("_id");
            if (id)
                w.append("", *id);
            else
                w.append("", bson::null);
            return {w.extract()};
        }
        std::vector<std::vector<value>> per_field;
        std::vector<std::string> array_fields;
        for (std::size_t f = 0; f < ix.paths.size(); ++f) {
            std::vector<detail::path_item> items;
            detail::collect_path(doc, ix.paths[f], items);
            std::vector<value> vals;
            bool is_array = false;
            for (const auto& it : items) {
                if (it.missing) {
                    vals.emplace_back();
                } else if (it.expanded) {
                    is_array = true;
                    if (it.e.get_array().empty()) vals.push_back(value::of(bson::undefined));
                } else {
                    vals.emplace_back(it.e);
                }
            }
            if (vals.empty()) vals.emplace_back();
            if (is_array || vals.size() > 1) array_fields.push_back(ix.names[f]);
            per_field.push_back(std::move(vals));
        }
        if (array_fields.size() > 1)
            fail(171, "cannot index parallel arrays [" + array_fields[1] + "] [" + array_fields[0] + "]");
        std::vector<bson::document> keys{bson::document()};
        for (const auto& vals : per_field) {
            std::vector<bson::document> next;
            for (const auto& k : keys) {
                for (const auto& v : vals) {
                    writer w;
                    for (const bson::element& e : k) w.append("", e);
                    w.append("", v.get());
                    next.push_back(w.extract());
                }
            }
            keys = std::move(next);
        }
        std::sort(keys.begin(), keys.end(), key_less{});
        keys.erase(std::unique(keys.begin(), keys.end(),
                               [](const bson::document& a, const bson::document& b) {
                                   return !key_less{}(a, b) && !key_less{}(b, a);
                               }),
                   keys.end());
        return keys;
    }

    [[noreturn]] void duplicate(const index& ix, const bson::document& key) const {
        writer kv;
        std::string text = "{ ";
        auto k = key.begin();
        bool first = true;
        for (const bson::element& field : ix.info.key.view()) {
            if (!first) text += ", ";
            first = false;
            text += std::string(field.key()) + ": " + detail::shell(*k);
            kv.append(field.key(), *k);
            ++k;
        }
        text += " }";
        writer extra;
        extra.append("keyPattern", ix.info.key);
        extra.append("keyValue", kv.extract());
        fail(11000, "E11000 duplicate key error collection: " + ns + " index: " + ix.info.name + " dup key: " + text,
             extra.extract());
    }

    std::optional<std::size_t> slot_of_id(const bson::element& id) const {
        writer w;
        w.append("", id);
        const auto it = indexes[0].entries.find(w.extract());
        if (it == indexes[0].entries.end()) return std::nullopt;
        return it->second;
    }

    // Puts doc into slot `at` (a new slot at the end when nullopt), keeping the
    // unique indexes; throws 11000 before changing anything.
    std::size_t store(bson::document doc, std::optional<std::size_t> at) {
        // mongod's BSONObjMaxUserSize: an inserted document, or one an update produced.
        if (doc.size() > max_document_size)
            fail(10334, std::string(at ? "Resulting document after update is larger than " : "object to insert too large, max size: ") +
                            std::to_string(max_document_size) + " (size in bytes: " + std::to_string(doc.size()) + ")");
        validate(doc, at);
        std::vector<std::vector<bson::document>> new_keys(indexes.size());
        for (std::size_t i = 0; i < indexes.size(); ++i) {
            if (!indexes[i].info.unique) {
                // Only unique indexes keep keys; compound ones still refuse parallel arrays (171).
                if (indexes[i].paths.size() > 1) (void)keys_of(indexes[i], doc);
                continue;
            }
            new_keys[i] = keys_of(indexes[i], doc);
            for (const auto& k : new_keys[i]) {
                const auto it = indexes[i].entries.find(k);
                if (it != indexes[i].entries.end() && (!at || it->second != *at)) duplicate(indexes[i], k);
            }
        }
        std::size_t slot;
        if (at) {
            slot = *at;
            unindex(slot);
            bytes -= slots[slot]->size();
            --live;
        } else {
            slot = slots.size();
            slots.emplace_back();
        }
        for (std::size_t i = 0; i < indexes.size(); ++i)
            for (auto& k : new_keys[i]) indexes[i].entries.emplace(std::move(k), slot);
        bytes += doc.size();
        ++live;
        slots[slot] = std::move(doc);
        if (!at) {
            ++inserted;
            evict(slot);
        }
        return slot;
    }

    // A capped collection over its size or count drops its oldest documents (never `keep`, the
    // one just added), as mongod's; secondaries applying the same inserts drop the same ones.
    void evict(std::size_t keep) {
        if (!capped) return;
        const auto over = [&] {
            return (capped->max > 0 && live > static_cast<std::size_t>(capped->max)) ||
                   bytes > static_cast<std::size_t>(capped->size);
        };
        for (std::size_t i = 0; i < slots.size() && live > 1 && over(); ++i)
            if (slots[i] && i != keep) erase(i);
    }

    void unindex(std::size_t slot) {
        for (auto& ix : indexes) {
            if (!ix.info.unique) continue;
            for (const auto& k : keys_of(ix, *slots[slot])) {
                const auto it = ix.entries.find(k);
                if (it != ix.entries.end() && it->second == slot) ix.entries.erase(it);
            }
        }
    }

    void erase(std::size_t slot) {
        unindex(slot);
        bytes -= slots[slot]->size();
        --live;
        slots[slot].reset();
    }

    // Deleted slots are squeezed out once they outnumber the live ones, so
    // scans stay linear in the live documents.
    void compact() {
        const std::size_t dead = slots.size() - live;
        if (dead < 64 || dead < live) return;
        std::vector<std::size_t> moved(slots.size(), 0);
        std::vector<std::optional<bson::document>> kept;
        kept.reserve(live);
        for (std::size_t i = 0; i < slots.size(); ++i) {
            if (!slots[i]) continue;
            moved[i] = kept.size();
            kept.push_back(std::move(slots[i]));
        }
        slots = std::move(kept);
        for (auto& ix : indexes)
            for (auto& [k, s] : ix.entries) s = moved[s];
    }

    // The slots a filter can match, in storage order. A top-level _id equality
    // (or $in of plain values) is answered from the _id index, so operations
    // by _id do not scan the collection.
    std::vector<std::size_t> candidates(bson::document_view filter) const {
        std::vector<std::size_t> out;
        std::vector<bson::element> ids;
        bool indexed = false;
        if (const auto id = filter.find("_id"); id && id->type() != bson::type::regex) {
            if (id->type() != bson::type::document || !detail::is_operator_document(id->get_document())) {
                ids.push_back(*id);
                indexed = true;
            } else if (const bson::document_view ops = id->get_document(); ops.count() == 1) {
                const bson::element op = *ops.begin();
                if (op.key() == "$eq" && op.type() != bson::type::regex) {
                    ids.push_back(op);
                    indexed = true;
                } else if (op.key() == "$in" && op.type() == bson::type::array) {
                    indexed = true;
                    for (const bson::element& x : op.get_array()) {
                        if (x.type() == bson::type::regex) indexed = false;
                        ids.push_back(x);
                    }
                }
            }
        }
        if (!indexed) {
            for (std::size_t i = 0; i < slots.size(); ++i)
                if (slots[i]) out.push_back(i);
            return out;
        }
        for (const bson::element& id : ids)
            if (const auto slot = slot_of_id(id)) out.push_back(*slot);
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
        return out;
    }

    void build_index(index& ix) const {
        ix.entries.clear();
        if (!ix.info.unique && ix.paths.size() < 2) return;
        for (std::size_t s = 0; s < slots.size(); ++s) {
            if (!slots[s]) continue;
            auto keys = keys_of(ix, *slots[s]);
            if (!ix.info.unique) continue;
            for (auto& k : keys) {
                if (ix.entries.count(k) != 0) duplicate(ix, k);
                ix.entries.emplace(std::move(k), s);
            }
        }
    }
};

namespace {

std::pair<std::string_view, std::string_view> split_ns(std::string_view ns) {
    const std::size_t dot = ns.find('.');
    if (dot == std::string_view::npos) return {ns, {}};
    return {ns.substr(0, dot), ns.substr(dot + 1)};
}

bson::document entry(std::string_view op, std::string_view ns, bson::document_view o) {
    return bson::make_document(bson::kvp("op", op), bson::kvp("ns", ns), bson::kvp("o", o));
}

bson::document id_document(const bson::element& id) {
    writer w;
    w.append("_id", id);
    return w.extract();
}

// An update's entry also keeps the document before it (pre) and whether it was a replacement:
// change streams read them; a secondary's apply() ignores them.
void log_update(oplog& log, std::string_view ns, const bson::document& doc, const bson::document& pre, bool replacement) {
    const bson::document id = id_document(*doc.find("_id"));
    writer w;
    w.append("op", "u");
    w.append("ns", ns);
    w.append("o2", id);
    w.append("o", doc);
    w.append("pre", pre);
    if (replacement) w.append("replace", true);
    log.push_back(w.extract());
}

// A delete's entry, with the deleted document (pre) for change streams.
bson::document delete_entry(std::string_view ns, const bson::document& old) {
    writer w;
    w.append("op", "d");
    w.append("ns", ns);
    w.append("o", id_document(*old.find("_id")));
    w.append("pre", old);
    return w.extract();
}

void check_id(bson::document_view doc) {
    const auto id = doc.find("_id");
    if (!id) return;
    switch (id->type()) {
        case bson::type::array: fail(2, "can't use an array for _id");
        case bson::type::regex: fail(2, "can't use a regex for _id");
        case bson::type::undefined: fail(2, "can't use a undefined for _id");
        case bson::type::document:
            // mongod refuses to store an _id whose top-level fields start with '$'.
            for (const bson::element& e : id->get_document())
                if (e.key().starts_with('$'))
                    fail(52, "_id fields may not contain '$'-prefixed fields: " + std::string(e.key()) + " is not valid for storage.");
            break;
        default: break;
    }
}

// The stored form of a new document: _id first, generated when absent.
bson::document prepare_insert(bson::document_view doc) {
    check_id(doc);
    if (doc.find("_id")) return detail::id_first(doc);
    writer w;
    w.append("_id", bson::oid::generate());
    for (const bson::element& e : doc) w.append(e.key(), e);
    return w.extract();
}

}  // namespace

// ---------------------------------------------------------------- collection

collection::collection(std::string ns) : ns_(ns), state_(std::make_shared<state>(std::move(ns))) {}

const bson::document& collection::insert(bson::document doc, oplog& log) {
    bson::document stored = prepare_insert(doc);
    const std::size_t slot = state_->store(std::move(stored), std::nullopt);
    const bson::document& result = *state_->slots[slot];
    log.push_back(entry("i", ns_, result));
    return result;
}

validation_bypass::validation_bypass() : previous_(bypassing) { bypassing = true; }
validation_bypass::~validation_bypass() { bypassing = previous_; }

const validation_options& collection::validation() const noexcept { return state_->validation; }
const std::optional<capped_options>& collection::capped() const noexcept { return state_->capped; }
std::uint64_t collection::inserted_total() const noexcept { return state_->inserted; }

std::vector<bson::document> collection::inserted_since(std::uint64_t position, const find_options& options) const {
    const state& st = *state_;
    const std::uint64_t fresh = st.inserted - std::min(position, st.inserted);
    if (fresh > st.live)
        fail(136, "CollectionScan died due to position in capped collection being deleted. Last seen record id: " +
                      std::to_string(position));
    const detail::variables vars = detail::evaluate_let(options.let);
    const detail::filter f = detail::filter::compile(options.filter, &vars);
    const detail::projection p = detail::projection::compile(options.projection, false, &vars);
    std::vector<bson::document_view> newest;  // the last `fresh` live documents, newest first
    for (std::size_t i = st.slots.size(); i > 0 && newest.size() < fresh; --i)
        if (st.slots[i - 1]) newest.push_back(*st.slots[i - 1]);
    std::vector<bson::document> out;
    for (auto it = newest.rbegin(); it != newest.rend(); ++it)
        if (f.matches(*it)) out.push_back(p.apply(*it));
    return out;
}

std::vector<bson::document> collection::find(const find_options& options) const {
    const detail::variables vars = detail::evaluate_let(options.let);
    const detail::filter f = detail::filter::compile(options.filter, &vars);
    const detail::sorter s = detail::sorter::compile(options.sort);
    const detail::projection p = detail::projection::compile(options.projection, false, &vars);
    if (options.skip < 0)
        fail(51024, "BSON field 'skip' value must be >= 0, actual value '" + std::to_string(options.skip) + "'");
    std::vector<bson::document_view> matches;
    for (std::size_t i : state_->candidates(options.filter))
        if (f.matches(*state_->slots[i])) matches.push_back(*state_->slots[i]);
    s.sort(matches);
    std::vector<bson::document> out;
    const std::uint64_t limit = options.limit == 0
                                    ? UINT64_MAX
                                    : static_cast<std::uint64_t>(options.limit < 0 ? -options.limit : options.limit);
    for (std::size_t i = static_cast<std::size_t>(options.skip); i < matches.size() && out.size() < limit; ++i)
        out.push_back(p.apply(matches[i]));
    return out;
}

update_result collection::update(bson::document_view filter, bson::document_view update, bool upsert, bool multi,
                                 oplog& log, const write_extras& extras) {
    const detail::variables vars = detail::evaluate_let(extras.let);
    const detail::update_plan plan = detail::update_plan::compile(update, extras.array_filters, &vars);
    if (multi && plan.is_replacement()) fail(9, "multi update is not supported for replacement-style update");
    return update_with(filter, detail::filter::compile(filter, &vars), plan, upsert, multi, log);
}

update_result collection::update_pipeline(bson::document_view filter, bson::array_view pipeline, bool upsert,
                                          bool multi, oplog& log, const write_extras& extras) {
    const detail::variables vars = detail::evaluate_let(extras.let);
    const detail::update_plan plan = detail::update_plan::compile_pipeline(pipeline, extras.array_filters, &vars);
    return update_with(filter, detail::filter::compile(filter, &vars), plan, upsert, multi, log);
}

update_result collection::update_with(bson::document_view filter, const detail::filter& f,
                                      const detail::update_plan& plan, bool upsert, bool multi, oplog& log) {
    update_result r;
    state& st = *state_;
    for (std::size_t i : st.candidates(filter)) {
        std::size_t pos = detail::path_item::npos;
        if (!f.matches(*st.slots[i], &pos)) continue;
        ++r.matched;
        bson::document changed = plan.apply(
            *st.slots[i], false, pos == detail::path_item::npos ? std::nullopt : std::optional<std::size_t>(pos));
        if (changed != *st.slots[i]) {
            check_id(changed);
            const bson::document pre = *st.slots[i];
            st.store(std::move(changed), i);
            log_update(log, ns_, *st.slots[i], pre, plan.is_replacement());
            ++r.modified;
        }
        if (!multi) break;
    }
    if (r.matched == 0 && upsert) {
        bson::document doc = prepare_insert(plan.apply(detail::upsert_seed(filter), true, std::nullopt));
        const bson::document& stored = insert(std::move(doc), log);
        r.upserted_id = id_document(*stored.find("_id"));
    }
    return r;
}

std::int64_t collection::remove(bson::document_view filter, bool just_one, oplog& log, bson::document_view let) {
    const detail::variables vars = detail::evaluate_let(let);
    const detail::filter f = detail::filter::compile(filter, &vars);
    state& st = *state_;
    std::int64_t n = 0;
    for (std::size_t i : st.candidates(filter)) {
        if (!f.matches(*st.slots[i])) continue;
        bson::document e = delete_entry(ns_, *st.slots[i]);
        st.erase(i);
        log.push_back(std::move(e));
        ++n;
        if (just_one) break;
    }
    st.compact();
    return n;
}

find_and_modify_result collection::find_and_modify(const find_and_modify_options& options, oplog& log) {
    const bool updates = options.update || options.update_pipeline;
    if (options.remove && updates) fail(9, "Cannot specify both an update and remove=true");
    if (!options.remove && !updates) fail(9, "Either an update or remove=true must be specified");
    if (options.remove && options.return_new)
        fail(9, "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document");
    if (options.remove && options.upsert) fail(9, "Cannot specify both upsert=true and remove=true");
    if (options.remove && !options.array_filters.empty())
        fail(9, "Cannot specify arrayFilters and remove=true");
    const detail::variables vars = detail::evaluate_let(options.let);
    const detail::filter f = detail::filter::compile(options.query, &vars);
    const detail::sorter s = detail::sorter::compile(options.sort);
    const detail::projection p = detail::projection::compile(options.fields);
    std::optional<detail::update_plan> plan;
    if (options.update) plan = detail::update_plan::compile(*options.update, options.array_filters, &vars);
    if (options.update_pipeline)
        plan = detail::update_plan::compile_pipeline(*options.update_pipeline, options.array_filters, &vars);

    state& st = *state_;
    std::optional<std::size_t> target;
    const std::vector<std::size_t> candidates = st.candidates(options.query);
    if (s.empty()) {
        for (std::size_t i : candidates) {
            if (f.matches(*st.slots[i])) {
                target = i;
                break;
            }
        }
    } else {
        std::vector<bson::document_view> views;
        std::vector<std::size_t> where;
        for (std::size_t i : candidates) {
            if (f.matches(*st.slots[i])) {
                views.push_back(*st.slots[i]);
                where.push_back(i);
            }
        }
        if (!views.empty()) target = where[s.order(views).front()];
    }

    find_and_modify_result r;
    if (target) {
        const bson::document old = *st.slots[*target];
        r.n = 1;
        if (options.remove) {
            r.value = p.apply(old);
            st.erase(*target);
            log.push_back(delete_entry(ns_, old));
            st.compact();
            return r;
        }
        std::size_t pos = detail::path_item::npos;
        f.matches(old, &pos);
        bson::document changed =
            plan->apply(old, false, pos == detail::path_item::npos ? std::nullopt : std::optional<std::size_t>(pos));
        if (changed != old) {
            check_id(changed);
            st.store(std::move(changed), *target);
            log_update(log, ns_, *st.slots[*target], old, plan->is_replacement());
        }
        r.updated_existing = true;
        r.value = p.apply(options.return_new ? *st.slots[*target] : old);
        return r;
    }
    if (options.upsert) {
        bson::document doc = prepare_insert(plan->apply(detail::upsert_seed(options.query), true, std::nullopt));
        const bson::document& stored = insert(std::move(doc), log);
        r.n = 1;
        r.upserted_id = id_document(*stored.find("_id"));
        if (options.return_new) r.value = p.apply(stored);
    }
    return r;
}

std::int64_t collection::count(bson::document_view filter, std::int64_t skip, std::int64_t limit) const {
    const detail::filter f = detail::filter::compile(filter);
    std::int64_t n = 0;
    for (std::size_t i : state_->candidates(filter))
        if (f.matches(*state_->slots[i])) ++n;
    if (skip < 0) fail(2, "skip value is negative in count query");
    n = std::max<std::int64_t>(0, n - skip);
    if (limit != 0) n = std::min(n, limit < 0 ? -limit : limit);
    return n;
}

bson::array collection::distinct(std::string_view key, bson::document_view filter) const {
    if (key.empty()) fail(2, "key cannot be an empty string");
    const detail::filter f = detail::filter::compile(filter);
    const auto path = detail::split_path(key);
    std::set<value, detail::value_less> seen;
    writer w;
    std::size_t k = 0;
    for (const auto& slot : state_->slots) {
        if (!slot || !f.matches(*slot)) continue;
        std::vector<detail::path_item> items;
        detail::collect_path(*slot, path, items);
        for (const auto& it : items) {
            if (it.missing || it.expanded) continue;  // an array contributes its elements
            value v(it.e);
            if (seen.insert(v).second) w.append(detail::index_key(k++), it.e);
        }
    }
    return bson::array(w.extract());
}

std::vector<bson::document> collection::aggregate(bson::array_view pipeline, bson::document_view let) const {
    const detail::variables vars = detail::evaluate_let(let);
    // A leading $match filters while copying, so only matching documents are copied.
    std::size_t first = 0;
    std::optional<detail::filter> leading;
    if (!pipeline.empty()) {
        const bson::element s = *pipeline.begin();
        if (s.type() == bson::type::document && s.get_document().count() == 1 &&
            s.get_document().begin()->key() == "$match" && s.get_document().begin()->type() == bson::type::document) {
            leading = detail::filter::compile(s.get_document().begin()->get_document(), &vars);
            first = 1;
        }
    }
    std::vector<bson::document> docs;
    for (const auto& slot : state_->slots)
        if (slot && (!leading || leading->matches(*slot))) docs.push_back(*slot);
    return detail::run_pipeline(std::move(docs), pipeline, first, &vars);
}

std::vector<bson::document> run_pipeline(std::vector<bson::document> docs, bson::array_view pipeline,
                                         bson::document_view let) {
    const detail::variables vars = detail::evaluate_let(let);
    return detail::run_pipeline(std::move(docs), pipeline, 0, &vars);
}

void collection::create_index(const index_info& requested, oplog& log) {
    index_info info = requested;
    if (info.key.empty()) fail(67, "Index keys cannot be an empty field.");
    for (const bson::element& e : info.key.view()) {
        if (e.key().empty()) fail(67, "Index keys cannot be an empty field.");
        const bool number_ok = detail::is_numeric(e.type()) && !detail::number::of(e).is_zero();
        const bool string_ok =
            e.type() == bson::type::string && (e.get_string() == "text" || e.get_string() == "hashed" ||
                                               e.get_string() == "2d" || e.get_string() == "2dsphere");
        if (!number_ok && !string_ok)
            fail(67,
                 "Values in the index key pattern can only be positive or negative numbers, or the strings "
                 "\"text\", \"hashed\", \"2d\" or \"2dsphere\": " +
                     detail::shell(info.key));
    }
    if (info.name.empty()) info.name = index_name_for(info.key);
    state& st = *state_;
    const bool is_id_key = info.key.view().count() == 1 && info.key.view().begin()->key() == "_id" &&
                           detail::is_numeric(info.key.view().begin()->type()) &&
                           detail::number::of(*info.key.view().begin()).to_double() == 1;
    for (const auto& ix : st.indexes) {
        if (ix.info.name == info.name) {
            if (!same_key_pattern(ix.info.key, info.key))
                fail(86,
                     "An existing index has the same name as the requested index. When index names are not "
                     "specified, they are auto generated and can cause conflicts. Please refer to our documentation. "
                     "Requested index: " +
                         detail::shell(index_spec_text(info)) +
                         ", existing index: " + detail::shell(index_spec_text(ix.info)));
            if (ix.info.unique != info.unique && !ix.is_id)
                fail(85,
                     "An equivalent index already exists with the same name but different options. Requested index: " +
                         detail::shell(index_spec_text(info)) +
                         ", existing index: " + detail::shell(index_spec_text(ix.info)));
            return;  // already there
        }
        if (same_key_pattern(ix.info.key, info.key) || (ix.is_id && is_id_key))
            fail(85, "Index already exists with a different name: " + ix.info.name);
    }
    state::index ix;
    ix.info = info;
    for (const bson::element& e : info.key.view()) {
        ix.paths.push_back(detail::split_path(e.key()));
        ix.names.emplace_back(e.key());
    }
    st.build_index(ix);
    st.indexes.push_back(std::move(ix));
    const auto [db, coll] = split_ns(ns_);
    log.push_back(entry("c", std::string(db) + ".$cmd",
                        bson::make_document(bson::kvp("createIndexes", coll), bson::kvp("key", info.key),
                                            bson::kvp("name", info.name), bson::kvp("unique", info.unique))));
}

void collection::drop_index(std::string_view name, oplog& log) {
    state& st = *state_;
    const auto [db, coll] = split_ns(ns_);
    auto log_drop = [&, db = db, coll = coll](const std::string& n) {
        log.push_back(entry("c", std::string(db) + ".$cmd",
                            bson::make_document(bson::kvp("dropIndexes", coll), bson::kvp("index", n))));
    };
    if (name == "*") {
        // One entry per index, so a secondary replays exactly what went away.
        while (st.indexes.size() > 1) {
            const std::string n = st.indexes[1].info.name;
            st.indexes.erase(st.indexes.begin() + 1);
            log_drop(n);
        }
        return;
    }
    if (name == "_id_") fail(72, "cannot drop _id index");
    for (std::size_t i = 1; i < st.indexes.size(); ++i) {
        if (st.indexes[i].info.name == name) {
            st.indexes.erase(st.indexes.begin() + static_cast<std::ptrdiff_t>(i));
            log_drop(std::string(name));
            return;
        }
    }
    fail(27, "index not found with name [" + std::string(name) + "]");
}

std::vector<index_info> collection::indexes() const {
    std::vector<index_info> out;
    for (const auto& ix : state_->indexes) out.push_back(ix.info);
    return out;
}

std::size_t collection::size() const noexcept { return state_->live; }
std::size_t collection::data_size() const noexcept { return state_->bytes; }

std::vector<bson::document_view> collection::documents() const {
    std::vector<bson::document_view> out;
    out.reserve(state_->live);
    for (const auto& slot : state_->slots)
        if (slot) out.push_back(*slot);
    return out;
}

// ---------------------------------------------------------------- catalog

struct catalog::impl {
    std::map<std::string, std::map<std::string, collection, std::less<>>, std::less<>> dbs;
    std::map<std::string, std::map<std::string, view_info, std::less<>>, std::less<>> views;
    std::size_t max_document_size = default_max_document_size;
};

namespace {

void check_db_name(std::string_view db) {
    if (db.empty() || db.size() >= 64 || db.find_first_of(std::string_view("/\\. \"$\0", 7)) != std::string_view::npos)
        fail(73, "Invalid database name: '" + std::string(db) + "'");
}

void check_collection_name(std::string_view db, std::string_view coll) {
    check_db_name(db);
    if (coll.empty() || coll.find('$') != std::string_view::npos || coll.find('\0') != std::string_view::npos ||
        coll.front() == '.')
        fail(73, "Invalid collection name: " + std::string(db) + "." + std::string(coll));
}

bson::document command(std::string_view name, std::string_view arg) {
    return bson::make_document(bson::kvp(name, arg));
}

}  // namespace

catalog::catalog() : impl_(std::make_unique<impl>()) {}
catalog::~catalog() = default;
catalog::catalog(catalog&&) noexcept = default;
catalog& catalog::operator=(catalog&&) noexcept = default;

catalog catalog::clone() const {
    catalog copy;
    copy.impl_->max_document_size = impl_->max_document_size;
    for (const auto& [db, views] : impl_->views)
        for (const auto& [name, v] : views)
            copy.impl_->views[db].emplace(name, view_info{v.view_on, bson::array(bson::document(v.pipeline.view()))});
    for (const auto& [db, colls] : impl_->dbs) {
        auto& target = copy.impl_->dbs[db];
        for (const auto& [name, c] : colls) {
            collection fresh(c.ns());
            fresh.state_ = std::make_shared<collection::state>(*c.state_);
            target.emplace(name, std::move(fresh));
        }
    }
    return copy;
}

void catalog::set_max_document_size(std::size_t bytes) {
    impl_->max_document_size = bytes;
    for (auto& [db, colls] : impl_->dbs)
        for (auto& [name, c] : colls) c.state_->max_document_size = bytes;
}

collection* catalog::find(std::string_view db, std::string_view coll) {
    const auto d = impl_->dbs.find(db);
    if (d == impl_->dbs.end()) return nullptr;
    const auto c = d->second.find(coll);
    return c == d->second.end() ? nullptr : &c->second;
}

const collection* catalog::find(std::string_view db, std::string_view coll) const {
    return const_cast<catalog*>(this)->find(db, coll);
}

collection& catalog::get_or_create(std::string_view db, std::string_view coll, oplog& log) {
    if (collection* c = find(db, coll)) return *c;
    return create(db, coll, log);
}

collection& catalog::create(std::string_view db, std::string_view coll, oplog& log,
                            const std::optional<capped_options>& capped) {
    check_collection_name(db, coll);
    if (find(db, coll) != nullptr || find_view(db, coll) != nullptr)
        fail(48, "Collection " + std::string(db) + "." + std::string(coll) + " already exists.");
    auto& colls = impl_->dbs[std::string(db)];
    collection& c =
        colls.emplace(std::string(coll), collection(std::string(db) + "." + std::string(coll))).first->second;
    c.state_->capped = capped;
    c.state_->max_document_size = impl_->max_document_size;
    if (capped) {
        bson::builder b;
        b.append("create", coll).append("capped", true).append("size", capped->size);
        if (capped->max > 0) b.append("max", capped->max);
        log.push_back(entry("c", std::string(db) + ".$cmd", b.extract()));
    } else {
        log.push_back(entry("c", std::string(db) + ".$cmd", command("create", coll)));
    }
    return c;
}

void catalog::create_view(std::string_view db, std::string_view name, std::string_view view_on,
                          bson::array_view pipeline, oplog& log) {
    check_collection_name(db, name);
    if (view_on.empty()) fail(73, "Invalid viewOn: the source collection name is empty");
    if (find(db, name) != nullptr || find_view(db, name) != nullptr)
        fail(48, "Namespace " + std::string(db) + "." + std::string(name) + " already exists");
    for (const bson::element& stage : pipeline)
        if (stage.type() != bson::type::document) fail(14, "Each element of the 'pipeline' array must be an object");
    impl_->views[std::string(db)].emplace(std::string(name),
                                          view_info{std::string(view_on), bson::array(bson::document(pipeline))});
    writer o;
    o.append("create", name);
    o.append("viewOn", view_on);
    o.append("pipeline", bson::array(bson::document(pipeline)));
    log.push_back(entry("c", std::string(db) + ".$cmd", o.extract()));
}

const view_info* catalog::find_view(std::string_view db, std::string_view name) const {
    const auto d = impl_->views.find(db);
    if (d == impl_->views.end()) return nullptr;
    const auto v = d->second.find(name);
    return v == d->second.end() ? nullptr : &v->second;
}

std::vector<std::string> catalog::view_names(std::string_view db) const {
    std::vector<std::string> out;
    if (const auto d = impl_->views.find(db); d != impl_->views.end())
        for (const auto& [name, v] : d->second) out.push_back(name);
    return out;
}

std::pair<std::string, bson::array> catalog::resolve_view(std::string_view db, std::string_view name) const {
    std::vector<const view_info*> chain;
    std::string source(name);
    while (const view_info* v = find_view(db, source)) {
        if (chain.size() > 20) fail(12, "View depth too deep or view cycle detected; maximum depth is 20");
        chain.push_back(v);
        source = v->view_on;
    }
    writer w;
    std::size_t k = 0;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
        for (const bson::element& stage : (*it)->pipeline) w.append(detail::index_key(k++), stage);
    return {source, bson::array(w.extract())};
}

void catalog::modify(std::string_view db, std::string_view coll, const validation_options& validation, oplog& log) {
    collection* c = find(db, coll);
    if (c == nullptr) fail(26, "ns does not exist: " + std::string(db) + "." + std::string(coll));
    c->state_->validation = validation;
    bson::builder b;
    b.append("collMod", coll).append("validator", validation.validator.view()).append("validationLevel", validation.level)
        .append("validationAction", validation.action);
    log.push_back(entry("c", std::string(db) + ".$cmd", b.extract()));
}

bool catalog::drop(std::string_view db, std::string_view coll, oplog& log) {
    if (const auto vd = impl_->views.find(db); vd != impl_->views.end() && vd->second.find(coll) != vd->second.end()) {
        vd->second.erase(vd->second.find(coll));
        if (vd->second.empty()) impl_->views.erase(vd);
        log.push_back(entry("c", std::string(db) + ".$cmd", command("drop", coll)));
        return true;
    }
    const auto d = impl_->dbs.find(db);
    if (d == impl_->dbs.end()) return false;
    const auto c = d->second.find(coll);
    if (c == d->second.end()) return false;
    d->second.erase(c);
    if (d->second.empty()) impl_->dbs.erase(d);
    log.push_back(entry("c", std::string(db) + ".$cmd", command("drop", coll)));
    return true;
}

bool catalog::drop_database(std::string_view db, oplog& log) {
    const auto vd = impl_->views.find(db);
    const bool had_views = vd != impl_->views.end();
    if (had_views) impl_->views.erase(vd);
    const auto d = impl_->dbs.find(db);
    if (d == impl_->dbs.end() && !had_views) return false;
    if (d != impl_->dbs.end()) {
        // Each collection's drop first, as mongod logs them (change streams see each one).
        for (const auto& [name, c] : d->second)
            log.push_back(entry("c", std::string(db) + ".$cmd", command("drop", name)));
        impl_->dbs.erase(d);
    }
    log.push_back(entry("c", std::string(db) + ".$cmd", bson::make_document(bson::kvp("dropDatabase", 1))));
    return true;
}

std::vector<std::string> catalog::database_names() const {
    std::vector<std::string> out;
    for (const auto& [db, colls] : impl_->dbs)
        if (!colls.empty()) out.push_back(db);
    return out;
}

std::vector<std::string> catalog::collection_names(std::string_view db) const {
    std::vector<std::string> out;
    const auto d = impl_->dbs.find(db);
    if (d == impl_->dbs.end()) return out;
    for (const auto& [name, c] : d->second) out.push_back(name);
    return out;
}

std::size_t catalog::database_size(std::string_view db) const {
    std::size_t n = 0;
    const auto d = impl_->dbs.find(db);
    if (d == impl_->dbs.end()) return 0;
    for (const auto& [name, c] : d->second) n += c.data_size();
    return n;
}

void catalog::apply(bson::document_view e) {
    const auto op_field = e.find("op");
    const auto ns_field = e.find("ns");
    if (!op_field || op_field->type() != bson::type::string || !ns_field || ns_field->type() != bson::type::string)
        fail(2, "oplog entry needs string fields op and ns: " + detail::shell(e));
    const std::string_view op = op_field->get_string();
    const auto [db, coll] = split_ns(ns_field->get_string());
    oplog scratch;  // a secondary applies; it does not log
    const validation_bypass applying;  // the primary validated
    if (op == "n") return;
    const auto o_field = e.find("o");
    if (!o_field || o_field->type() != bson::type::document)
        fail(2, "oplog entry without an o document: " + detail::shell(e));
    const bson::document_view o = o_field->get_document();
    if (op == "i" || op == "u") {
        collection::state& st = *get_or_create(db, coll, scratch).state_;
        const auto o2 = e.find("o2");
        const auto id =
            op == "u" && o2 && o2->type() == bson::type::document ? o2->get_document().find("_id") : o.find("_id");
        if (!id) fail(2, "oplog entry without _id: " + detail::shell(e));
        // Idempotent: an existing _id is replaced where it stands, a missing one is added.
        st.store(bson::document(o), st.slot_of_id(*id));
        return;
    }
    if (op == "d") {
        collection* c = find(db, coll);
        const auto id = o.find("_id");
        if (c == nullptr || !id) return;
        if (const auto slot = c->state_->slot_of_id(*id)) {
            c->state_->erase(*slot);
            c->state_->compact();
        }
        return;
    }
    if (op != "c") fail(2, "unknown oplog op: " + std::string(op));
    if (o.empty()) fail(2, "empty command in oplog entry");
    const bson::element cmd = *o.begin();
    const std::string_view name = cmd.key();
    const std::string_view target = cmd.type() == bson::type::string ? cmd.get_string() : std::string_view();
    if (name == "create" && o.find("viewOn")) {
        const auto on = o.find("viewOn");
        const auto pipeline = o.find("pipeline");
        if (find_view(db, target) == nullptr)
            create_view(db, target, on->type() == bson::type::string ? on->get_string() : std::string_view(),
                        pipeline && pipeline->type() == bson::type::array ? pipeline->get_array() : bson::array_view(),
                        scratch);
    } else if (name == "create") {
        std::optional<capped_options> capped;
        if (const auto cap = o.find("capped"); cap && cap->type() == bson::type::boolean && cap->get_bool()) {
            capped.emplace();
            if (const auto size = o.find("size"); size && size->is_number()) capped->size = size->as_int64();
            if (const auto max = o.find("max"); max && max->is_number()) capped->max = max->as_int64();
        }
        if (find(db, target) == nullptr) create(db, target, scratch, capped);
    } else if (name == "collMod") {
        validation_options v;
        if (const auto x = o.find("validator"); x && x->type() == bson::type::document) v.validator = bson::document(x->get_document());
        if (const auto x = o.find("validationLevel"); x && x->type() == bson::type::string) v.level = std::string(x->get_string());
        if (const auto x = o.find("validationAction"); x && x->type() == bson::type::string) v.action = std::string(x->get_string());
        if (find(db, target) != nullptr) modify(db, target, v, scratch);
    } else if (name == "drop") {
        drop(db, target, scratch);
    } else if (name == "dropDatabase") {
        drop_database(db, scratch);
    } else if (name == "createIndexes") {
        index_info info;
        if (const auto k = o.find("key"); k && k->type() == bson::type::document)
            info.key = bson::document(k->get_document());
        if (const auto n = o.find("name"); n && n->type() == bson::type::string)
            info.name = std::string(n->get_string());
        if (const auto u = o.find("unique"); u && u->type() == bson::type::boolean) info.unique = u->get_bool();
        get_or_create(db, target, scratch).create_index(info, scratch);
    } else if (name == "dropIndexes") {
        collection* c = find(db, target);
        const auto index = o.find("index");
        if (c == nullptr || !index || index->type() != bson::type::string) return;
        const std::string_view index_name = index->get_string();
        const auto current = c->indexes();
        if (index_name == "*" ||
            std::any_of(current.begin(), current.end(), [&](const index_info& i) { return i.name == index_name; }))
            c->drop_index(index_name, scratch);
    } else {
        fail(2, "unknown command in oplog entry: " + std::string(name));
    }
}

}  // namespace trellis::sim
