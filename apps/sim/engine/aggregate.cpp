// The aggregation pipeline: each stage turns a vector of documents into the next.
#include <algorithm>
#include <cmath>
#include <map>

#include "internal.hpp"

namespace trellis::sim::detail {

namespace {

using docs_t = std::vector<bson::document>;

// ---------------------------------------------------------------- $addFields / $set

struct added_field {
    std::vector<std::string> path;
    std::unique_ptr<expression> expr;  // null for a nested object spec
    std::vector<added_field> nested;
};

std::vector<added_field> compile_added(bson::document_view spec, std::string_view stage, const variables* vars) {
    std::vector<added_field> out;
    for (const bson::element& e : spec) {
        if (e.key().empty() || e.key().starts_with('$'))
            fail(16410,
                 "Invalid " + std::string(stage) + " :: caused by :: FieldPath field names may not start with '$'.");
        added_field f;
        f.path = split_path(e.key());
        if (e.type() == bson::type::document && !e.get_document().empty() && !is_operator_document(e.get_document()))
            f.nested = compile_added(e.get_document(), stage, vars);
        else
            f.expr = std::make_unique<expression>(expression::compile(e, vars));
        out.push_back(std::move(f));
    }
    return out;
}

void add_field(node& cur, const added_field& f, std::size_t i, bson::document_view root) {
    const std::string& name = f.path[i];
    if (i + 1 < f.path.size()) {
        node* child = cur.field(name);
        if (child == nullptr || !child->is_document()) child = &cur.set(name, node{});
        add_field(*child, f, i + 1, root);
        return;
    }
    if (f.expr) {
        if (auto r = f.expr->eval(root))
            cur.set(name, node::of(*r));
        else
            cur.remove(name);  // assigning "missing" removes the field
        return;
    }
    // A nested object spec merges into an existing embedded document.
    node* child = cur.field(name);
    if (child == nullptr || !child->is_document()) child = &cur.set(name, node{});
    for (const auto& sub : f.nested) add_field(*child, sub, 0, root);
}

// ---------------------------------------------------------------- $group

enum class acc_kind { sum, avg, min, max, first, last, push, add_to_set, count };

struct accumulator {
    std::string name;
    acc_kind kind = acc_kind::sum;
    std::unique_ptr<expression> expr;
};

struct acc_state {
    number total = number::int32(0);
    std::int64_t count = 0;
    std::optional<value> v;
    bool seen = false;
    std::vector<value> items;
};

struct group {
    value key;
    std::vector<acc_state> states;
};

const std::pair<std::string_view, acc_kind> acc_names[] = {
    {"$sum", acc_kind::sum},     {"$avg", acc_kind::avg},
    {"$min", acc_kind::min},     {"$max", acc_kind::max},
    {"$first", acc_kind::first}, {"$last", acc_kind::last},
    {"$push", acc_kind::push},   {"$addToSet", acc_kind::add_to_set},
    {"$count", acc_kind::count},
};

void accumulate(const accumulator& a, acc_state& s, const std::optional<value>& r) {
    const bool present = r.has_value();
    const bool nullish = !present || r->type() == bson::type::null || r->type() == bson::type::undefined;
    switch (a.kind) {
        case acc_kind::count: ++s.count; break;
        case acc_kind::sum:
        case acc_kind::avg:
            // Non-numeric values (strings, arrays, missing) are ignored.
            if (present && is_numeric(r->type())) {
                s.total = add(s.total, number::of(r->get()));
                ++s.count;
            }
            break;
        case acc_kind::min:
        case acc_kind::max:
            if (nullish) break;
            if (!s.v) {
                s.v = *r;
            } else {
                const int c = compare_values(r->get(), s.v->get());
                if ((a.kind == acc_kind::min && c < 0) || (a.kind == acc_kind::max && c > 0)) s.v = *r;
            }
            break;
        case acc_kind::first:
            if (!s.seen) {
                s.v = present ? *r : value();
                s.seen = true;
            }
            break;
        case acc_kind::last: s.v = present ? *r : value(); break;
        case acc_kind::push:
            if (present) s.items.push_back(*r);
            break;
        case acc_kind::add_to_set:
            if (present && std::none_of(s.items.begin(), s.items.end(),
                                        [&](const value& x) { return compare_values(x.get(), r->get()) == 0; }))
                s.items.push_back(*r);
            break;
    }
}

void write_result(const accumulator& a, const acc_state& s, writer& w) {
    switch (a.kind) {
        case acc_kind::count: {
            if (s.count <= 0x7FFFFFFF)
                w.append(a.name, static_cast<std::int32_t>(s.count));
            else
                w.append(a.name, s.count);
            break;
        }
        case acc_kind::sum: s.total.write(w, a.name); break;
        case acc_kind::avg:
            if (s.count == 0)
                w.append(a.name, bson::null);
            else
                divide(s.total, number::int64(s.count)).write(w, a.name);
            break;
        case acc_kind::min:
        case acc_kind::max:
        case acc_kind::first:
        case acc_kind::last:
            if (s.v)
                w.append(a.name, s.v->get());
            else
                w.append(a.name, bson::null);
            break;
        case acc_kind::push:
        case acc_kind::add_to_set:
            w.open_array(a.name);
            for (std::size_t i = 0; i < s.items.size(); ++i) w.append(index_key(i), s.items[i].get());
            w.close();
            break;
    }
}

docs_t run_group(const docs_t& in, bson::document_view spec, const variables* vars) {
    const auto id_spec = spec.find("_id");
    if (!id_spec) fail(15955, "a group specification must include an _id");
    const expression id_expr = expression::compile(*id_spec, vars);
    std::vector<accumulator> accs;
    for (const bson::element& e : spec) {
        if (e.key() == "_id") continue;
        if (e.key().find('.') != std::string_view::npos)
            fail(40235, "The field name '" + std::string(e.key()) + "' cannot contain '.'");
        if (e.key().starts_with('$'))
            fail(40236, "The field name '" + std::string(e.key()) + "' cannot be an operator name");
        if (e.type() != bson::type::document || e.get_document().count() != 1)
            fail(40234, "The field '" + std::string(e.key()) + "' must be an accumulator object");
        const bson::element op = *e.get_document().begin();
        accumulator a;
        a.name = std::string(e.key());
        bool known = false;
        for (const auto& [n, k] : acc_names) {
            if (n == op.key()) {
                a.kind = k;
                known = true;
            }
        }
        if (!known) fail(15952, "unknown group operator '" + std::string(op.key()) + "'");
        if (a.kind == acc_kind::count) {
            if (op.type() != bson::type::document || !op.get_document().empty())
                fail(40238, "$count takes no arguments, i.e. $count:{}");
        } else {
            if (op.type() == bson::type::array)
                fail(40237, "The " + std::string(op.key()) + " accumulator is a unary operator");
            a.expr = std::make_unique<expression>(expression::compile(op, vars));
        }
        accs.push_back(std::move(a));
    }

    std::vector<group> groups;
    std::map<value, std::size_t, value_less> index;
    for (const auto& d : in) {
        std::optional<value> key = id_expr.eval(d);
        if (!key) key = value();
        auto it = index.find(*key);
        if (it == index.end()) {
            it = index.emplace(*key, groups.size()).first;
            groups.push_back({*key, std::vector<acc_state>(accs.size())});
        }
        group& g = groups[it->second];
        for (std::size_t i = 0; i < accs.size(); ++i)
            accumulate(accs[i], g.states[i], accs[i].expr ? accs[i].expr->eval(d) : std::nullopt);
    }
    docs_t out;
    for (const auto& g : groups) {
        writer w;
        w.append("_id", g.key.get());
        for (std::size_t i = 0; i < accs.size(); ++i) write_result(accs[i], g.states[i], w);
        out.push_back(w.extract());
    }
    return out;
}

// ---------------------------------------------------------------- $unwind

void set_at(node& root, const std::vector<std::string>& path, std::optional<value> v) {
    node* cur = &root;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
        node* next = cur->field(path[i]);
        if (next == nullptr || !next->is_document()) next = &cur->set(path[i], node{});
        cur = next;
    }
    if (v)
        cur->set(path.back(), node::of(*v));
    else
        cur->remove(path.back());
}

docs_t run_unwind(const docs_t& in, const bson::element& spec) {
    std::string path_text;
    std::string index_field;
    bool preserve = false;
    if (spec.type() == bson::type::string) {
        path_text = std::string(spec.get_string());
    } else if (spec.type() == bson::type::document) {
        for (const bson::element& e : spec.get_document()) {
            if (e.key() == "path") {
                if (e.type() != bson::type::string)
                    fail(28808,
                         "expected a string as the path for $unwind stage, got " + std::string(type_alias(e.type())));
                path_text = std::string(e.get_string());
            } else if (e.key() == "includeArrayIndex") {
                if (e.type() != bson::type::string)
                    fail(28810, "expected a non-empty string for the includeArrayIndex option to $unwind stage");
                index_field = std::string(e.get_string());
                if (index_field.empty() || index_field.starts_with('$'))
                    fail(28822,
                         "includeArrayIndex option to $unwind stage should not be prefixed with a '$': " + index_field);
            } else if (e.key() == "preserveNullAndEmptyArrays") {
                if (e.type() != bson::type::boolean)
                    fail(28809, "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage");
                preserve = e.get_bool();
            } else {
                fail(28811, "unrecognized option to $unwind stage: " + std::string(e.key()));
            }
        }
        if (path_text.empty()) fail(28812, "no path specified to $unwind stage");
    } else {
        fail(15981, "expected either a string or an object as specification for $unwind stage, got " +
                        std::string(type_alias(spec.type())));
    }
    if (!path_text.starts_with('$'))
        fail(28818, "path option to $unwind stage should be prefixed with a '$': " + path_text);
    const std::string field = path_text.substr(1);
    const auto path = split_path(field);
    const auto index_path = index_field.empty() ? std::vector<std::string>() : split_path(index_field);

    docs_t out;
    for (const auto& d : in) {
        const auto v = get_path(d, field);
        if (v && v->type() == bson::type::array && !v->get_array().empty()) {
            std::int64_t i = 0;
            for (const bson::element& x : v->get_array()) {
                node root = node::of(d.view());
                set_at(root, path, value(x));
                if (!index_path.empty()) set_at(root, index_path, value::of(i));
                out.push_back(root.to_document());
                ++i;
            }
            continue;
        }
        const bool empty_or_null =
            !v || v->type() == bson::type::null || v->type() == bson::type::undefined || v->type() == bson::type::array;
        if (empty_or_null && !preserve) continue;
        node root = node::of(d.view());
        if (v && v->type() == bson::type::array) set_at(root, path, std::nullopt);  // an empty array is dropped
        if (!index_path.empty()) set_at(root, index_path, value());
        out.push_back(root.to_document());
    }
    return out;
}

// ---------------------------------------------------------------- helpers

std::int64_t stage_integer(const bson::element& e, int code, const std::string& message) {
    if (!is_numeric(e.type())) fail(code, message);
    const double d = number::of(e).to_double();
    if (std::trunc(d) != d) fail(code, message);
    return static_cast<std::int64_t>(d);
}

}  // namespace

std::vector<bson::document> run_pipeline(std::vector<bson::document> docs, bson::array_view pipeline,
                                         std::size_t first, const variables* vars) {
    std::size_t n = 0;
    for (const bson::element& stage : pipeline) {
        if (n++ < first) continue;
        if (stage.type() != bson::type::document) fail(14, "Each element of the 'pipeline' array must be an object");
        const bson::document_view sd = stage.get_document();
        if (sd.count() != 1) fail(40323, "A pipeline stage specification object must contain exactly one field.");
        const bson::element arg = *sd.begin();
        const std::string_view name = arg.key();
        docs_t out;
        if (name == "$match") {
            if (arg.type() != bson::type::document) fail(15959, "the match filter must be an expression in an object");
            const filter f = filter::compile(arg.get_document(), vars);
            for (auto& d : docs)
                if (f.matches(d)) out.push_back(std::move(d));
        } else if (name == "$project") {
            if (arg.type() != bson::type::document) fail(15969, "$project specification must be an object");
            const projection p = projection::compile(arg.get_document(), true, vars);
            for (const auto& d : docs) out.push_back(p.apply(d));
        } else if (name == "$addFields" || name == "$set") {
            if (arg.type() != bson::type::document)
                fail(40272, std::string(name) + " specification stage must be an object, got " +
                                std::string(type_alias(arg.type())));
            const auto fields = compile_added(arg.get_document(), name, vars);
            for (const auto& d : docs) {
                node root = node::of(d.view());
                for (const auto& f : fields) add_field(root, f, 0, d);
                out.push_back(root.to_document());
            }
        } else if (name == "$unset") {
            std::vector<std::string> fields;
            if (arg.type() == bson::type::string) {
                fields.emplace_back(arg.get_string());
            } else if (arg.type() == bson::type::array && !arg.get_array().empty()) {
                for (const bson::element& x : arg.get_array()) {
                    if (x.type() != bson::type::string)
                        fail(31120, "$unset specification must be a string or an array containing only string values");
                    fields.emplace_back(x.get_string());
                }
            } else {
                fail(31002, "$unset specification must be a string or an array with at least one field");
            }
            const projection p = projection::exclusion(fields);
            for (const auto& d : docs) out.push_back(p.apply(d));
        } else if (name == "$sort") {
            if (arg.type() != bson::type::document) fail(15973, "the $sort key specification must be an object");
            const sorter s = sorter::compile(arg.get_document(), true);
            std::vector<bson::document_view> views(docs.begin(), docs.end());
            for (std::size_t i : s.order(views)) out.push_back(std::move(docs[i]));
        } else if (name == "$skip") {
            const std::int64_t k = stage_integer(arg, 15972, "Argument to $skip must be a number");
            if (k < 0)
                fail(5107200, "invalid argument to $skip stage: Cannot skip a negative number of documents: " +
                                  std::to_string(k));
            for (std::size_t i = static_cast<std::size_t>(k); i < docs.size(); ++i) out.push_back(std::move(docs[i]));
        } else if (name == "$limit") {
            const std::int64_t k = stage_integer(arg, 15957, "the limit must be specified as a number");
            if (k <= 0) fail(15958, "the limit must be positive");
            for (std::size_t i = 0; i < docs.size() && i < static_cast<std::size_t>(k); ++i)
                out.push_back(std::move(docs[i]));
        } else if (name == "$count") {
            if (arg.type() != bson::type::string || arg.get_string().empty())
                fail(40156, "the count field must be a non-empty string");
            const std::string_view field = arg.get_string();
            if (field.starts_with('$')) fail(40158, "the count field cannot be a $-prefixed path");
            if (field.find('.') != std::string_view::npos) fail(40160, "the count field cannot contain '.'");
            if (!docs.empty()) {
                writer w;
                if (docs.size() <= 0x7FFFFFFF)
                    w.append(field, static_cast<std::int32_t>(docs.size()));
                else
                    w.append(field, static_cast<std::int64_t>(docs.size()));
                out.push_back(w.extract());
            }
        } else if (name == "$group") {
            if (arg.type() != bson::type::document) fail(15947, "a group's fields must be specified in an object");
            out = run_group(docs, arg.get_document(), vars);
        } else if (name == "$unwind") {
            out = run_unwind(docs, arg);
        } else if (name == "$replaceRoot" || name == "$replaceWith") {
            std::optional<bson::element> root_spec;
            if (name == "$replaceWith") {
                root_spec = arg;
            } else {
                if (arg.type() != bson::type::document)
                    fail(40228, "expected an object as specification for $replaceRoot stage");
                root_spec = arg.get_document().find("newRoot");
                if (!root_spec) fail(40231, "no newRoot specified for the $replaceRoot stage");
            }
            const expression e = expression::compile(*root_spec, vars);
            for (const auto& d : docs) {
                const auto r = e.eval(d);
                if (!r || r->type() != bson::type::document)
                    fail(40228, "'newRoot' expression must evaluate to an object, but resulting value was: " +
                                    (r ? shell(r->get()) : std::string("MISSING")) + ". Type of resulting value: '" +
                                    (r ? std::string(type_alias(r->type())) : std::string("missing")) +
                                    "'. Input document: " + shell(d));
                out.emplace_back(r->get().get_document());
            }
        } else {
            fail(40324, "Unrecognized pipeline stage name: '" + std::string(name) + "'");
        }
        docs = std::move(out);
    }
    return docs;
}

}  // namespace trellis::sim::detail
