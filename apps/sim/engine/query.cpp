// Sorting and projection, shared by find, findAndModify and the pipeline.
#include <algorithm>
#include <numeric>

#include "internal.hpp"

namespace trellis::sim::detail {

// ---------------------------------------------------------------- sort

sorter sorter::compile(bson::document_view spec, bool in_pipeline) {
    const int code = in_pipeline ? 15975 : 2;
    sorter s;
    for (const bson::element& e : spec) {
        if (e.type() == bson::type::document) fail(code, "$meta sort is not supported by trellis-sim");
        if (!is_numeric(e.type())) fail(code, "$sort key ordering must be 1 (for ascending) or -1 (for descending)");
        const double d = number::of(e).to_double();
        if (d != 1 && d != -1) fail(code, "$sort key ordering must be 1 (for ascending) or -1 (for descending)");
        s.fields_.push_back({split_path(e.key()), d > 0});
    }
    if (in_pipeline && s.fields_.empty()) fail(15976, "$sort stage must have at least one sort key");
    return s;
}

// The value a document sorts by: for arrays the smallest element ascending,
// the largest descending; missing is null; an empty array sorts below null.
value sorter::key_of(bson::document_view doc, const field& f) const {
    static const value null_value = value::of(bson::null);
    static const value undefined_value = value::of(bson::undefined);
    std::vector<path_item> in;
    collect_path(doc, f.path, in);
    const value* best = nullptr;
    std::optional<value> holder;
    bool empty_array = false;
    auto consider = [&](const bson::element& e) {
        if (best == nullptr) {
            holder = value(e);
            best = &*holder;
            return;
        }
        const int c = compare_values(e, best->get());
        if ((f.ascending && c < 0) || (!f.ascending && c > 0)) {
            holder = value(e);
            best = &*holder;
        }
    };
    for (const auto& it : in) {
        if (it.missing) {
            consider(null_value.get());
        } else if (it.expanded) {
            if (it.e.get_array().empty()) empty_array = true;
        } else {
            consider(it.e);
        }
    }
    if (best != nullptr) return *best;
    return empty_array ? undefined_value : null_value;
}

void sorter::sort(std::vector<bson::document_view>& docs) const {
    if (fields_.empty() || docs.size() < 2) return;
    std::vector<bson::document_view> sorted;
    sorted.reserve(docs.size());
    for (std::size_t i : order(docs)) sorted.push_back(docs[i]);
    docs = std::move(sorted);
}

std::vector<std::size_t> sorter::order(const std::vector<bson::document_view>& docs) const {
    std::vector<std::size_t> order(docs.size());
    std::iota(order.begin(), order.end(), 0);
    if (fields_.empty()) return order;
    std::vector<std::vector<value>> keys(docs.size());
    for (std::size_t i = 0; i < docs.size(); ++i) {
        for (const auto& f : fields_) {
            // {$natural: 1 | -1}: the order documents are stored in (which docs arrive in).
            if (f.path.size() == 1 && f.path[0] == "$natural")
                keys[i].push_back(value::of(static_cast<std::int64_t>(i)));
            else
                keys[i].push_back(key_of(docs[i], f));
        }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        for (std::size_t k = 0; k < fields_.size(); ++k) {
            const int c = compare_values(keys[a][k].get(), keys[b][k].get());
            if (c != 0) return fields_[k].ascending ? c < 0 : c > 0;
        }
        return false;
    });
    return order;
}

// ---------------------------------------------------------------- projection

namespace {

struct proj_tree;

struct proj_entry {
    enum class kind { include, exclude, computed, sub, slice } k = kind::include;
    std::unique_ptr<expression> expr;
    std::unique_ptr<proj_tree> sub;
    std::int64_t skip = 0;   // $slice: [skip, limit]; skip < 0 counts from the end
    std::int64_t limit = 0;  // $slice: n (n < 0: the last -n)
    bool has_skip = false;
};

struct proj_tree {
    std::vector<std::string> names;
    std::vector<proj_entry> entries;

    const proj_entry* find(std::string_view name) const {
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == name) return &entries[i];
        return nullptr;
    }
    proj_entry* find(std::string_view name) {
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == name) return &entries[i];
        return nullptr;
    }
    proj_entry& add(std::string_view name) {
        names.emplace_back(name);
        entries.emplace_back();
        return entries.back();
    }
};

}  // namespace

struct projection_impl {
    enum class mode { none, inclusion, exclusion } m = mode::none;
    proj_tree root;
    bool empty = true;
    bool in_pipeline = false;
    const variables* vars = nullptr;

    proj_entry& place(const std::vector<std::string>& parts, const std::string& full) {
        proj_tree* t = &root;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            proj_entry* e = t->find(parts[i]);
            if (e == nullptr) {
                e = &t->add(parts[i]);
                e->k = proj_entry::kind::sub;
                e->sub = std::make_unique<proj_tree>();
            } else if (e->k != proj_entry::kind::sub) {
                fail(31250, "Path collision at " + full);
            }
            t = e->sub.get();
        }
        if (t->find(parts.back()) != nullptr) fail(31250, "Path collision at " + full);
        return t->add(parts.back());
    }

    void set_mode(mode wanted, const std::string& field) {
        if (m == mode::none) {
            m = wanted;
            return;
        }
        if (m == wanted) return;
        if (wanted == mode::exclusion) fail(2, "Cannot do exclusion on field " + field + " in inclusion projection");
        fail(2, "Cannot do inclusion on field " + field + " in exclusion projection");
    }

    void compile(bson::document_view spec, const std::string& prefix) {
        for (const bson::element& e : spec) {
            const std::string full = prefix.empty() ? std::string(e.key()) : prefix + "." + std::string(e.key());
            if (e.key().empty() || e.key().starts_with('$'))
                fail(e.key().empty() ? 2 : 31252, "Invalid projection field name: '" + full + "'");
            const bool is_id = full == "_id";
            if (is_numeric(e.type()) || e.type() == bson::type::boolean) {
                const bool include = truthy(e);
                if (!is_id) set_mode(include ? mode::inclusion : mode::exclusion, full);
                place(split_path(full), full).k = include ? proj_entry::kind::include : proj_entry::kind::exclude;
                continue;
            }
            if (e.type() == bson::type::document && !is_operator_document(e.get_document())) {
                if (e.get_document().empty())
                    fail(51270, "An empty sub-projection is not a valid value. Found empty object at path " + full);
                compile(e.get_document(), full);
                continue;
            }
            if (!in_pipeline && e.type() == bson::type::document && e.get_document().begin()->key() == "$slice") {
                const bson::element arg = *e.get_document().begin();
                proj_entry& p = place(split_path(full), full);
                p.k = proj_entry::kind::slice;
                if (is_numeric(arg.type())) {
                    p.limit =
                        static_cast<std::int64_t>(number::of(arg).to_double());  // truncates toward zero either way
                } else if (arg.type() == bson::type::array && arg.get_array().count() == 2 &&
                           is_numeric(arg.get_array()[0].type()) && is_numeric(arg.get_array()[1].type())) {
                    p.has_skip = true;
                    p.skip = static_cast<std::int64_t>(number::of(arg.get_array()[0]).to_double());
                    p.limit = static_cast<std::int64_t>(number::of(arg.get_array()[1]).to_double());
                    if (p.limit <= 0) fail(28724, "Second argument to $slice must be a positive number");
                } else {
                    fail(2, "$slice only supports numbers and [skip, limit] arrays");
                }
                continue;
            }
            // Anything else is an expression: "$path", a literal, or {$op: ...}.
            if (!is_id) set_mode(mode::inclusion, full);
            proj_entry& p = place(split_path(full), full);
            p.k = proj_entry::kind::computed;
            p.expr = std::make_unique<expression>(expression::compile(e, vars));
        }
    }
};

namespace {

void write_sliced(const proj_entry& p, const bson::element& x, writer& w) {
    if (x.type() != bson::type::array) {
        w.append(x.key(), x);
        return;
    }
    std::vector<bson::element> items(x.get_array().begin(), x.get_array().end());
    const auto n = static_cast<std::int64_t>(items.size());
    std::int64_t from, count;
    if (p.has_skip) {
        from = p.skip < 0 ? std::max<std::int64_t>(0, n + p.skip) : std::min(p.skip, n);
        count = p.limit;
    } else if (p.limit >= 0) {
        from = 0;
        count = p.limit;
    } else {
        from = std::max<std::int64_t>(0, n + p.limit);
        count = n;
    }
    w.open_array(x.key());
    std::size_t k = 0;
    for (std::int64_t i = from; i < n && i < from + count; ++i)
        w.append(index_key(k++), items[static_cast<std::size_t>(i)]);
    w.close();
}

void include_fields(const proj_tree& t, bson::document_view doc, bson::document_view root, writer& w);
void computed_fields(const proj_tree& t, bson::document_view doc, bson::document_view root, writer& w);

bool has_computed(const proj_tree& t) {
    for (const auto& e : t.entries)
        if (e.k == proj_entry::kind::computed || (e.k == proj_entry::kind::sub && has_computed(*e.sub))) return true;
    return false;
}

void include_array(const proj_tree& t, bson::array_view arr, bson::document_view root, writer& w) {
    std::size_t k = 0;
    for (const bson::element& y : arr) {
        if (y.type() == bson::type::document) {
            w.open_document(index_key(k++));
            include_fields(t, y.get_document(), root, w);
            w.close();
        } else if (y.type() == bson::type::array) {
            w.open_array(index_key(k++));
            include_array(t, y.get_array(), root, w);
            w.close();
        }
        // Scalars have none of the projected subfields: dropped, as mongod does.
    }
}

void include_fields(const proj_tree& t, bson::document_view doc, bson::document_view root, writer& w) {
    for (const bson::element& x : doc) {
        const proj_entry* p = t.find(x.key());
        if (p == nullptr) continue;
        switch (p->k) {
            case proj_entry::kind::include: w.append(x.key(), x); break;
            case proj_entry::kind::slice: write_sliced(*p, x, w); break;
            case proj_entry::kind::sub:
                if (x.type() == bson::type::document) {
                    w.open_document(x.key());
                    include_fields(*p->sub, x.get_document(), root, w);
                    w.close();
                } else if (x.type() == bson::type::array) {
                    w.open_array(x.key());
                    include_array(*p->sub, x.get_array(), root, w);
                    w.close();
                }
                break;
            default: break;
        }
    }
    computed_fields(t, doc, root, w);
}

// Computed fields follow the included ones, in the projection's order.
void computed_fields(const proj_tree& t, bson::document_view doc, bson::document_view root, writer& w) {
    for (std::size_t i = 0; i < t.entries.size(); ++i) {
        const proj_entry& p = t.entries[i];
        if (p.k == proj_entry::kind::computed) {
            if (const auto r = p.expr->eval(root)) w.append(t.names[i], r->get());
        } else if (p.k == proj_entry::kind::sub && has_computed(*p.sub)) {
            const auto existing = doc.find(t.names[i]);
            if (existing && (existing->type() == bson::type::document || existing->type() == bson::type::array))
                continue;  // written by include_fields, computed subfields included
            w.open_document(t.names[i]);
            computed_fields(*p.sub, bson::document_view(), root, w);
            w.close();
        }
    }
}

void exclude_fields(const proj_tree& t, bson::document_view doc, writer& w);

void exclude_array(const proj_tree& t, bson::array_view arr, writer& w) {
    std::size_t k = 0;
    for (const bson::element& y : arr) {
        if (y.type() == bson::type::document) {
            w.open_document(index_key(k++));
            exclude_fields(t, y.get_document(), w);
            w.close();
        } else if (y.type() == bson::type::array) {
            w.open_array(index_key(k++));
            exclude_array(t, y.get_array(), w);
            w.close();
        } else {
            w.append(index_key(k++), y);
        }
    }
}

void exclude_fields(const proj_tree& t, bson::document_view doc, writer& w) {
    for (const bson::element& x : doc) {
        const proj_entry* p = t.find(x.key());
        if (p == nullptr || p->k == proj_entry::kind::include) {
            w.append(x.key(), x);
            continue;
        }
        switch (p->k) {
            case proj_entry::kind::exclude: break;
            case proj_entry::kind::slice: write_sliced(*p, x, w); break;
            case proj_entry::kind::sub:
                if (x.type() == bson::type::document) {
                    w.open_document(x.key());
                    exclude_fields(*p->sub, x.get_document(), w);
                    w.close();
                } else if (x.type() == bson::type::array) {
                    w.open_array(x.key());
                    exclude_array(*p->sub, x.get_array(), w);
                    w.close();
                } else {
                    w.append(x.key(), x);
                }
                break;
            default: w.append(x.key(), x); break;
        }
    }
}

}  // namespace

projection::projection() : impl_(std::make_unique<projection_impl>()) {}
projection::~projection() = default;
projection::projection(projection&&) noexcept = default;
projection& projection::operator=(projection&&) noexcept = default;

projection projection::compile(bson::document_view spec, bool in_pipeline, const variables* vars) {
    projection p;
    projection_impl& impl = *p.impl_;
    impl.in_pipeline = in_pipeline;
    impl.vars = vars;
    if (spec.empty()) {
        if (in_pipeline)
            fail(51272, "Invalid $project :: caused by :: projection specification must have at least one field");
        return p;
    }
    impl.empty = false;
    impl.compile(spec, "");
    const proj_entry* id = impl.root.find("_id");
    if (impl.m == projection_impl::mode::none && id != nullptr) {
        // Only _id was named: {_id: 0} keeps everything else; {_id: 1} keeps only _id.
        impl.m =
            id->k == proj_entry::kind::exclude ? projection_impl::mode::exclusion : projection_impl::mode::inclusion;
    }
    if (impl.m == projection_impl::mode::inclusion && id == nullptr) {
        // _id comes along unless excluded; it goes first, where it sits in stored documents.
        impl.root.names.insert(impl.root.names.begin(), "_id");
        impl.root.entries.insert(impl.root.entries.begin(), proj_entry{});
    }
    return p;
}

projection projection::exclusion(const std::vector<std::string>& fields) {
    projection p;
    projection_impl& impl = *p.impl_;
    impl.in_pipeline = true;
    impl.empty = false;
    impl.m = projection_impl::mode::exclusion;
    for (const auto& f : fields) {
        if (f.empty() || f.starts_with('$'))
            fail(31252, "Invalid $unset :: caused by :: FieldPath field names may not start with '$'.");
        impl.place(split_path(f), f).k = proj_entry::kind::exclude;
    }
    return p;
}

bson::document projection::apply(bson::document_view doc) const {
    if (impl_->empty) return bson::document(doc);
    writer w;
    if (impl_->m == projection_impl::mode::inclusion)
        include_fields(impl_->root, doc, doc, w);
    else
        exclude_fields(impl_->root, doc, w);
    return w.extract();
}

}  // namespace trellis::sim::detail
