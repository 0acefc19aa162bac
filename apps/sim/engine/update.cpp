// Update operators and replacements, applied to a mutable copy of a document.
//
// Like mongod (5.0+), the modifications of one update are applied in the
// order of their paths (field names lexicographically, array indexes
// numerically), whatever order the update document lists them in; paths that
// overlap are a conflict (40).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "internal.hpp"

namespace trellis::sim::detail {

namespace {

enum class op_kind { set, unset, inc, mul, min, max, push, add_to_set, pop, pull, pull_all, rename, set_on_insert };

const std::pair<std::string_view, op_kind> op_names[] = {
    {"$set", op_kind::set},
    {"$unset", op_kind::unset},
    {"$inc", op_kind::inc},
    {"$mul", op_kind::mul},
    {"$min", op_kind::min},
    {"$max", op_kind::max},
    {"$push", op_kind::push},
    {"$addToSet", op_kind::add_to_set},
    {"$pop", op_kind::pop},
    {"$pull", op_kind::pull},
    {"$pullAll", op_kind::pull_all},
    {"$rename", op_kind::rename},
    {"$setOnInsert", op_kind::set_on_insert},
    {"$currentDate", op_kind::set},  // sets the time of the update (see current_date)
};

struct action {
    op_kind kind = op_kind::set;
    std::string op_name;
    std::string text;  // the path as written
    std::vector<std::string> path;
    std::vector<std::string> from;  // $rename: the source
    std::string from_text;
    value arg;
    // $push / $addToSet
    std::vector<value> each;
    std::optional<std::int64_t> position, slice;
    std::optional<value> sort;  // 1, -1 or {field: 1, ...}
    // $pull
    std::shared_ptr<filter> pull_filter;       // {field: cond}: elements that are matching documents
    std::shared_ptr<value_filter> pull_value;  // {$gte: 6}: elements satisfying the operators
};

bool path_less(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        if (a[i] == b[i]) continue;
        if (is_array_index(a[i]) && is_array_index(b[i])) return std::stoll(a[i]) < std::stoll(b[i]);
        return a[i] < b[i];
    }
    return a.size() < b.size();
}

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.size() > b.size()) return false;
    return std::equal(a.begin(), a.end(), b.begin());
}

std::string join(const std::vector<std::string>& path, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n && i < path.size(); ++i) {
        if (i != 0) out += '.';
        out += path[i];
    }
    return out;
}

// An update's arrayFilters: identifier -> a filter over {identifier: element}.
struct array_filter {
    filter match;
    bool used = false;
};
using array_filter_map = std::map<std::string, array_filter, std::less<>>;

// The identifier of a "$[name]" path part ("" for "$[]"), or nullopt for any other part.
std::optional<std::string_view> positional_identifier(std::string_view part) {
    if (part.size() < 3 || !part.starts_with("$[") || !part.ends_with(']')) return std::nullopt;
    return part.substr(2, part.size() - 3);
}

std::vector<std::string> check_path(std::string_view text, array_filter_map* filters) {
    if (text.empty()) fail(56, "An empty update path is not valid.");
    auto parts = split_path(text);
    for (const auto& p : parts) {
        if (p.empty())
            fail(56, "The update path '" + std::string(text) + "' contains an empty field name, which is not allowed.");
        const auto id = positional_identifier(p);
        if (!id || id->empty()) continue;
        const auto it = filters ? filters->find(*id) : array_filter_map::iterator();
        if (!filters || it == filters->end())
            fail(2, "No array filter found for identifier '" + std::string(*id) + "' in path '" + std::string(text) + "'");
        it->second.used = true;
    }
    return parts;
}

// The identifier a filter's top-level fields name ("i" of {"i.b": 1}); $and/$or/$nor look inside.
void filter_identifiers(bson::document_view f, std::vector<std::string>& out) {
    for (const bson::element& e : f) {
        const std::string_view key = e.key();
        if (key == "$and" || key == "$or" || key == "$nor") {
            if (e.type() == bson::type::array)
                for (const bson::element& x : e.get_array())
                    if (x.type() == bson::type::document) filter_identifiers(x.get_document(), out);
            continue;
        }
        if (key.starts_with('$')) continue;
        out.emplace_back(key.substr(0, key.find('.')));
    }
}

array_filter_map compile_array_filters(bson::array_view specs, const variables* vars) {
    array_filter_map out;
    for (const bson::element& e : specs) {
        if (e.type() != bson::type::document)
            fail(14, "Each array filter must be an object, found " + std::string(type_alias(e.type())));
        std::vector<std::string> ids;
        filter_identifiers(e.get_document(), ids);
        if (ids.empty()) fail(9, "Cannot use an expression without a top-level field name in arrayFilters");
        for (const auto& id : ids)
            if (id != ids.front())
                fail(9, "Error parsing array filter :: caused by :: Expected a single top-level field name, found '" +
                            ids.front() + "' and '" + id + "'");
        const std::string& id = ids.front();
        const bool valid = !id.empty() && id[0] >= 'a' && id[0] <= 'z' &&
                           std::all_of(id.begin(), id.end(), [](char c) {
                               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                           });
        if (!valid)
            fail(2,
                 "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string "
                 "beginning with a lowercase letter, found '" + id + "'");
        if (out.count(id) != 0) fail(9, "Found multiple array filters with the same top-level field name " + id);
        out.emplace(id, array_filter{filter::compile(e.get_document(), vars), false});
    }
    return out;
}

std::int64_t integer_argument(const bson::element& e, const char* what) {
    if (!is_numeric(e.type()))
        fail(2, std::string("The value for ") + what +
                    " must be an integer value but was given type: " + std::string(type_alias(e.type())));
    const double d = number::of(e).to_double();
    if (std::trunc(d) != d)
        fail(2, std::string("The value for ") + what + " must be an integer value but was given a non-integer");
    return static_cast<std::int64_t>(d);
}

void parse_each(action& a, const bson::element& e) {
    const bool push = a.kind == op_kind::push;
    if (e.type() == bson::type::document) {
        const bson::document_view d = e.get_document();
        if (d.find("$each")) {
            for (const bson::element& m : d) {
                const std::string_view k = m.key();
                if (k == "$each") {
                    if (m.type() != bson::type::array)
                        fail(2, std::string("The argument to $each in ") + a.op_name +
                                    " must be an array but it was of type: " + std::string(type_alias(m.type())));
                    for (const bson::element& x : m.get_array()) a.each.emplace_back(x);
                } else if (push && k == "$position") {
                    a.position = integer_argument(m, "$position");
                } else if (push && k == "$slice") {
                    a.slice = integer_argument(m, "$slice");
                } else if (push && k == "$sort") {
                    const bool number_ok = is_numeric(m.type()) && std::fabs(number::of(m).to_double()) == 1;
                    bool doc_ok = m.type() == bson::type::document && !m.get_document().empty();
                    if (doc_ok) {
                        for (const bson::element& s : m.get_document())
                            doc_ok = doc_ok && is_numeric(s.type()) && std::fabs(number::of(s).to_double()) == 1;
                    }
                    if (!number_ok && !doc_ok)
                        fail(2,
                             "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort "
                             "embedded fields");
                    a.sort = value(m);
                } else if (push) {
                    fail(2, "Unrecognized clause in $push: " + std::string(k));
                } else {
                    fail(2, "Found unexpected fields after $each in $addToSet: " + shell(d));
                }
            }
            return;
        }
    }
    a.each.emplace_back(e);
}

struct context {
    std::string id;  // "{_id: 1}" for messages
    const array_filter_map* filters = nullptr;
};

bool element_matches(const array_filter_map* filters, std::string_view id, const node& element) {
    const array_filter& f = filters->find(id)->second;
    writer w;
    w.append(id, element.to_value().get());
    return f.match.matches(w.extract());
}

node null_node() { return node::of(value()); }

std::string element_text(const std::string& key, const node& n) {
    return "{" + key + ": " + shell(n.to_value().get()) + "}";
}

// The slot a leaf update writes to, created when create is set.
node* slot(node& parent, const std::string& parent_key, const std::string& key, bool create, node fill = null_node()) {
    if (parent.is_document()) {
        if (node* n = parent.field(key)) return n;
        if (!create) return nullptr;
        return &parent.set(key, std::move(fill));
    }
    if (parent.is_array()) {
        if (!is_array_index(key)) {
            if (!create) return nullptr;
            fail(28, "Cannot create field '" + key + "' in element " + element_text(parent_key, parent));
        }
        const auto i = static_cast<std::size_t>(std::stoll(key));
        if (i < parent.kids.size()) return &parent.kids[i];
        if (!create) return nullptr;
        // mongod refuses to pad an array with this many nulls (the document would not fit anyway).
        if (i - parent.kids.size() > 1500000) fail(2, "can't backfill more than 1500000 elements");
        while (parent.kids.size() < i) parent.kids.push_back(null_node());
        parent.kids.push_back(std::move(fill));
        return &parent.kids[i];
    }
    if (!create) return nullptr;
    fail(28, "Cannot create field '" + key + "' in element " + element_text(parent_key, parent));
}

// $currentDate's argument: true, or {$type: "date" | "timestamp"}: the value it sets now.
value current_date(const bson::element& f) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
    if (f.type() == bson::type::boolean) return value::of(bson::date_time(ms));
    if (f.type() == bson::type::document) {
        const bson::document_view d = f.get_document();
        const auto t = d.find("$type");
        if (d.count() == 1 && t && t->type() == bson::type::string) {
            if (t->get_string() == "date") return value::of(bson::date_time(ms));
            if (t->get_string() == "timestamp")
                return value::of(bson::timestamp{static_cast<std::uint32_t>(ms / 1000), 1});
            fail(2, "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}");
        }
        fail(2, "Unrecognized $currentDate option: " + shell(f));
    }
    fail(2, std::string(type_alias(f.type())) + " is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).");
}

bool creates(op_kind k) {
    return k != op_kind::unset && k != op_kind::pop && k != op_kind::pull && k != op_kind::pull_all;
}

bool is_number_node(const node* n) { return n != nullptr && n->scalar && is_numeric(n->type); }

void apply_leaf(node& parent, const std::string& parent_key, const std::string& key, const action& a,
                const context& ctx);

// Follows path[i..] from cur (whose own name is cur_key), expanding $[] over arrays.
void apply_path(node& cur, const std::string& cur_key, const std::vector<std::string>& path, std::size_t i,
                const action& a, const context& ctx) {
    const std::string& part = path[i];
    const bool last = i + 1 == path.size();
    if (const auto id = positional_identifier(part)) {
        // $[] every element; $[name] the elements its array filter matches.
        if (!cur.is_array())
            fail(2, "Cannot apply array updates to non-array element " + cur_key + ": " + shell(cur.to_value().get()));
        for (std::size_t k = 0; k < cur.kids.size(); ++k) {
            if (!id->empty() && !element_matches(ctx.filters, *id, cur.kids[k])) continue;
            const std::string idx = index_key(k);
            if (last)
                apply_leaf(cur, cur_key, idx, a, ctx);
            else
                apply_path(cur.kids[k], idx, path, i + 1, a, ctx);
        }
        return;
    }
    if (last) {
        apply_leaf(cur, cur_key, part, a, ctx);
        return;
    }
    // Missing intermediate fields become documents; an existing scalar is left
    // for the next level to refuse (28 PathNotViable) or skip.
    if (positional_identifier(path[i + 1]) && creates(a.kind) && cur.is_document() && cur.field(part) == nullptr) {
        std::string prefix;
        for (std::size_t k = 0; k <= i; ++k) prefix += (k == 0 ? "" : ".") + path[k];
        fail(2, "The path '" + prefix + "' must exist in the document in order to apply array updates.");
    }
    node* next = slot(cur, cur_key, part, creates(a.kind), node{});
    if (next == nullptr) return;
    apply_path(*next, part, path, i + 1, a, ctx);
}

number to_num(const node& n) { return number::of(n.scalar->get()); }

void apply_push(node* target, const std::string& text, const action& a, const context& ctx) {
    if (!target->is_array())
        fail(2, "The field '" + text + "' must be an array but is of type " + std::string(type_alias(target->type)) +
                    " in document " + ctx.id);
    auto& kids = target->kids;
    const auto size = static_cast<std::int64_t>(kids.size());
    std::int64_t at = size;
    if (a.position) at = *a.position < 0 ? std::max<std::int64_t>(0, size + *a.position) : std::min(*a.position, size);
    std::vector<node> added;
    for (const auto& v : a.each) added.push_back(node::of(v));
    kids.insert(kids.begin() + at, std::make_move_iterator(added.begin()), std::make_move_iterator(added.end()));
    if (a.sort) {
        std::vector<value> vals;
        for (const auto& k : kids) vals.push_back(k.to_value());
        std::vector<std::size_t> order(vals.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        const bson::element spec = a.sort->get();
        static const value null_value;
        auto field_of = [&](const value& v, std::string_view path) -> bson::element {
            if (v.type() != bson::type::document) return null_value.get();
            const auto e = get_path(v.get().get_document(), path);
            return e ? *e : null_value.get();
        };
        std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
            if (spec.type() != bson::type::document) {
                const int c = compare_values(vals[x].get(), vals[y].get());
                return number::of(spec).to_double() > 0 ? c < 0 : c > 0;
            }
            for (const bson::element& s : spec.get_document()) {
                const int c = compare_values(field_of(vals[x], s.key()), field_of(vals[y], s.key()));
                if (c != 0) return number::of(s).to_double() > 0 ? c < 0 : c > 0;
            }
            return false;
        });
        std::vector<node> sorted;
        for (std::size_t i : order) sorted.push_back(std::move(kids[i]));
        kids = std::move(sorted);
    }
    if (a.slice) {
        const auto n = static_cast<std::int64_t>(kids.size());
        if (*a.slice >= 0 && *a.slice < n) {
            kids.erase(kids.begin() + *a.slice, kids.end());
        } else if (*a.slice < 0 && -*a.slice < n) {
            kids.erase(kids.begin(), kids.begin() + (n + *a.slice));
        }
    }
}

void apply_leaf(node& parent, const std::string& parent_key, const std::string& key, const action& a,
                const context& ctx) {
    if (a.kind == op_kind::unset) {
        if (parent.is_document()) {
            parent.remove(key);
        } else if (parent.is_array() && is_array_index(key)) {
            const auto i = static_cast<std::size_t>(std::stoll(key));
            if (i < parent.kids.size())
                parent.kids[i] = null_node();  // arrays keep their length: the slot becomes null
        }
        return;
    }
    // Whether the slot existed before: a missing field behaves differently from a null one.
    const bool existed = slot(parent, parent_key, key, false) != nullptr;
    node* target = slot(parent, parent_key, key, creates(a.kind));
    if (target == nullptr) return;
    switch (a.kind) {
        case op_kind::set:
        case op_kind::set_on_insert: *target = node::of(a.arg); break;
        case op_kind::inc:
        case op_kind::mul: {
            const bool inc = a.kind == op_kind::inc;
            const number operand = number::of(a.arg.get());
            if (!existed) {
                // $mul on a missing field stores 0 of the operand's type.
                *target = node::of(inc ? operand.to_value() : multiply(operand, number::int32(0)).to_value());
                break;
            }
            if (!is_number_node(target))
                fail(14, std::string("Cannot apply ") + a.op_name + " to a value of non-numeric type. " + ctx.id +
                             " has the field '" + key + "' of non-numeric type " +
                             std::string(type_alias(target->type)));
            bool overflow = false;
            const number current = to_num(*target);
            const number r = inc ? add(current, operand, &overflow) : multiply(current, operand, &overflow);
            if (overflow)
                fail(2, std::string("Failed to apply ") + a.op_name + " operations to current value (" +
                            shell(target->scalar->get()) + ") for document " + ctx.id);
            *target = node::of(r.to_value());
            break;
        }
        case op_kind::min:
        case op_kind::max: {
            if (!existed) {
                *target = node::of(a.arg);
                break;
            }
            const int c = compare_values(a.arg.get(), target->to_value().get());
            if ((a.kind == op_kind::min && c < 0) || (a.kind == op_kind::max && c > 0)) *target = node::of(a.arg);
            break;
        }
        case op_kind::push: {
            if (!existed) *target = node::empty_array();
            apply_push(target, a.text, a, ctx);
            break;
        }
        case op_kind::add_to_set: {
            if (!existed) *target = node::empty_array();
            if (!target->is_array())
                fail(2, "Cannot apply $addToSet to non-array field. Field named '" + key + "' has non-array type " +
                            std::string(type_alias(target->type)));
            std::vector<value> present;
            for (const auto& k : target->kids) present.push_back(k.to_value());
            for (const auto& v : a.each) {
                bool found = false;
                for (const auto& p : present) found = found || compare_values(p.get(), v.get()) == 0;
                if (!found) {
                    target->kids.push_back(node::of(v));
                    present.push_back(v);
                }
            }
            break;
        }
        case op_kind::pop: {
            if (!target->is_array())
                fail(14, "Path '" + a.text + "' contains an element of non-array type '" +
                             std::string(type_alias(target->type)) + "'");
            if (target->kids.empty()) break;
            if (number::of(a.arg.get()).to_double() < 0)
                target->kids.erase(target->kids.begin());
            else
                target->kids.pop_back();
            break;
        }
        case op_kind::pull:
        case op_kind::pull_all: {
            if (!target->is_array()) {
                if (a.kind == op_kind::pull) fail(2, "Cannot apply $pull to a non-array value");
                fail(2, "$pullAll requires an array argument but was given a " + std::string(type_alias(target->type)));
            }
            std::vector<node> kept;
            for (auto& k : target->kids) {
                const value v = k.to_value();
                const bson::element e = v.get();
                bool remove = false;
                if (a.kind == op_kind::pull_all) {
                    for (const bson::element& x : a.arg.get().get_array()) remove = remove || compare_values(e, x) == 0;
                } else if (a.pull_filter) {
                    remove = e.type() == bson::type::document && a.pull_filter->matches(e.get_document());
                } else if (a.pull_value) {
                    remove = a.pull_value->matches(e);
                } else if (a.arg.type() == bson::type::regex) {
                    remove = e.type() == bson::type::string && regex_matches(a.arg.get(), e.get_string());
                } else {
                    remove = compare_values(e, a.arg.get()) == 0;
                }
                if (!remove) kept.push_back(std::move(k));
            }
            target->kids = std::move(kept);
            break;
        }
        default: break;
    }
}

}  // namespace

struct update_plan_impl {
    bool replacement = true;
    bson::document replacement_doc;
    std::vector<action> actions;
    array_filter_map filters;
    std::optional<bson::array> pipeline;
    const variables* vars = nullptr;
};

update_plan::update_plan() : impl_(std::make_unique<update_plan_impl>()) {}
update_plan::~update_plan() = default;
update_plan::update_plan(update_plan&&) noexcept = default;
update_plan& update_plan::operator=(update_plan&&) noexcept = default;

bool update_plan::is_replacement() const { return impl_->replacement; }

update_plan update_plan::compile(bson::document_view update, bson::array_view array_filters, const variables* vars) {
    update_plan plan;
    update_plan_impl& p = *plan.impl_;
    p.filters = compile_array_filters(array_filters, vars);
    const bool operators = !update.empty() && update.begin()->key().starts_with('$');
    if (!operators) {
        if (!array_filters.empty()) fail(9, "arrayFilters may not be specified for replacement-style updates");
        for (const bson::element& e : update) {
            if (e.key().starts_with('$'))
                fail(52, "The dollar ($) prefixed field '" + std::string(e.key()) + "' in '" + std::string(e.key()) +
                             "' is not allowed in the context of an update's replacement document. Consider using an "
                             "aggregation pipeline with $replaceWith.");
        }
        p.replacement_doc = bson::document(update);
        return plan;
    }
    p.replacement = false;
    for (const bson::element& e : update) {
        std::optional<op_kind> kind;
        for (const auto& [name, k] : op_names)
            if (name == e.key()) kind = k;
        if (!kind)
            fail(9, "Unknown modifier: " + std::string(e.key()) +
                        ". Expected a valid update modifier or pipeline-style update specified as an array");
        if (e.type() != bson::type::document)
            fail(9, "Modifiers operate on fields but we found type " + std::string(type_alias(e.type())) +
                        " instead. For example: {$mod: {<field>: ...}} not {" + std::string(e.key()) + ": " + shell(e) +
                        "}");
        for (const bson::element& f : e.get_document()) {
            action a;
            a.kind = *kind;
            a.op_name = std::string(e.key());
            a.text = std::string(f.key());
            a.path = check_path(f.key(), &p.filters);
            a.arg = e.key() == "$currentDate" ? current_date(f) : value(f);
            switch (a.kind) {
                case op_kind::inc:
                case op_kind::mul:
                    if (!is_numeric(f.type())) {
                        fail(14, std::string("Cannot ") + (a.kind == op_kind::inc ? "increment" : "multiply") +
                                     " with non-numeric argument: {" + a.text + ": " + shell(f) + "}");
                    }
                    break;
                case op_kind::pop: {
                    const bool ok = is_numeric(f.type()) && std::fabs(number::of(f).to_double()) == 1;
                    if (!ok) fail(9, "$pop expects 1 or -1, found: " + shell(f));
                    break;
                }
                case op_kind::push:
                case op_kind::add_to_set: parse_each(a, f); break;
                case op_kind::pull_all:
                    if (f.type() != bson::type::array)
                        fail(2, "$pullAll requires an array argument but was given a " +
                                    std::string(type_alias(f.type())));
                    break;
                case op_kind::pull:
                    if (f.type() == bson::type::document) {
                        const bson::document_view d = f.get_document();
                        if (is_operator_document(d) && d.begin()->key() != "$and" && d.begin()->key() != "$or" &&
                            d.begin()->key() != "$nor")
                            a.pull_value = std::make_shared<value_filter>(value_filter::compile(d));
                        else
                            a.pull_filter = std::make_shared<filter>(filter::compile(d));
                    }
                    break;
                case op_kind::rename: {
                    if (f.type() != bson::type::string)
                        fail(2, "The 'to' field for $rename must be a string: " + a.text + ": " + shell(f));
                    a.from = a.path;
                    a.from_text = a.text;
                    a.text = std::string(f.get_string());
                    a.path = check_path(a.text, &p.filters);
                    if (a.text == a.from_text)
                        fail(2,
                             "The source and target field for $rename must differ: " + a.from_text + ": " + shell(f));
                    if (is_prefix(a.from, a.path) || is_prefix(a.path, a.from))
                        fail(2, "The source and target field for $rename must not be on the same path: " + a.from_text +
                                    ": " + shell(f));
                    for (const auto* path : {&a.from, &a.path})
                        for (const auto& part : *path)
                            if (part.starts_with('$'))
                                fail(2,
                                     "The source and target field for $rename must not contain positional operators");
                    break;
                }
                default: break;
            }
            p.actions.push_back(std::move(a));
        }
    }
    // Overlapping paths within one update are refused, whichever operators they belong to.
    std::vector<const std::vector<std::string>*> paths;
    for (const auto& a : p.actions) {
        paths.push_back(&a.path);
        if (a.kind == op_kind::rename) paths.push_back(&a.from);
    }
    for (std::size_t i = 0; i < paths.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            const auto& a = *paths[j];
            const auto& b = *paths[i];
            if (is_prefix(a, b) || is_prefix(b, a)) {
                const auto& shorter = a.size() <= b.size() ? a : b;
                fail(40, "Updating the path '" + join(b, b.size()) + "' would create a conflict at '" +
                             join(shorter, shorter.size()) + "'");
            }
        }
    }
    std::stable_sort(p.actions.begin(), p.actions.end(),
                     [](const action& x, const action& y) { return path_less(x.path, y.path); });
    for (const auto& [id, f] : p.filters)
        if (!f.used)
            fail(9, "The array filter for identifier '" + id + "' was not used in the update " + shell(update));
    return plan;
}

update_plan update_plan::compile_pipeline(bson::array_view pipeline, bson::array_view array_filters,
                                          const variables* vars) {
    if (!array_filters.empty()) fail(9, "arrayFilters may not be specified for pipeline-syle updates");
    static constexpr std::string_view allowed[] = {"$addFields", "$set", "$project", "$unset", "$replaceRoot",
                                                   "$replaceWith"};
    for (const bson::element& stage : pipeline) {
        if (stage.type() != bson::type::document || stage.get_document().count() != 1)
            fail(40323, "A pipeline stage specification object must contain exactly one field.");
        const std::string_view name = stage.get_document().begin()->key();
        if (std::find(std::begin(allowed), std::end(allowed), name) == std::end(allowed)) {
            // An unknown stage is 40324 (from the pipeline's own parse); a known one is refused here.
            writer one;
            one.append("0", stage);
            const bson::document single = one.extract();
            (void)run_pipeline({}, bson::array_view(single.view()), 0, vars);
            fail(72, std::string(name) + " is not allowed to be used within an update");
        }
    }
    update_plan plan;
    update_plan_impl& p = *plan.impl_;
    p.replacement = false;
    p.pipeline = bson::array(bson::document(pipeline));
    p.vars = vars;
    // Stages are compiled now too, so a malformed one fails before any document changes.
    (void)run_pipeline({}, pipeline, 0, vars);
    return plan;
}

namespace {

bool same_bytes(const bson::element& a, const bson::element& b) {
    return a.type() == b.type() && a.raw_value().size() == b.raw_value().size() &&
           std::equal(a.raw_value().begin(), a.raw_value().end(), b.raw_value().begin());
}

std::vector<std::string> resolve_positional(const std::vector<std::string>& path, std::optional<std::size_t> pos) {
    std::vector<std::string> out = path;
    for (auto& part : out) {
        if (part == "$") {
            if (!pos) fail(2, "The positional operator did not find the match needed from the query.");
            part = index_key(*pos);
        }
    }
    return out;
}

// Looks a path up without creating anything; nullptr when absent. in_array reports an array on the way.
node* lookup(node& root, const std::vector<std::string>& path, bool& through_array, node** parent_out) {
    node* cur = &root;
    node* parent = nullptr;
    for (std::size_t i = 0; i < path.size(); ++i) {
        parent = cur;
        if (cur->is_document()) {
            cur = cur->field(path[i]);
        } else if (cur->is_array()) {
            through_array = true;
            if (!is_array_index(path[i])) return nullptr;
            const auto k = static_cast<std::size_t>(std::stoll(path[i]));
            cur = k < cur->kids.size() ? &cur->kids[k] : nullptr;
        } else {
            return nullptr;
        }
        if (cur == nullptr) return nullptr;
    }
    if (parent_out != nullptr) *parent_out = parent;
    return cur;
}

void apply_rename(node& root, const action& a, const context& ctx) {
    bool through_array = false;
    node* parent = nullptr;
    node* source = lookup(root, a.from, through_array, &parent);
    if (source == nullptr) return;
    if (through_array)
        fail(2, "The source field cannot be an array element, '" + a.from_text + "' in doc with " + ctx.id);
    node moved = std::move(*source);
    parent->remove(a.from.back());
    // The destination may not run through an array either.
    bool dest_array = false;
    node* d = &root;
    for (std::size_t i = 0; i + 1 < a.path.size() && d != nullptr; ++i) {
        d = d->is_document() ? d->field(a.path[i]) : nullptr;
        if (d != nullptr && d->is_array()) dest_array = true;
    }
    if (dest_array) fail(2, "The destination field cannot be an array element, '" + a.text + "' in doc with " + ctx.id);
    action set;
    set.kind = op_kind::set;
    set.op_name = "$set";
    set.text = a.text;
    set.path = a.path;
    set.arg = moved.to_value();
    apply_path(root, "", a.path, 0, set, ctx);
}

}  // namespace

bson::document update_plan::apply(bson::document_view doc, bool for_insert,
                                  std::optional<std::size_t> array_pos) const {
    const update_plan_impl& p = *impl_;
    const auto old_id = doc.find("_id");
    if (p.replacement) {
        const auto new_id = p.replacement_doc.find("_id");
        if (old_id && new_id && !same_bytes(*old_id, *new_id) && !for_insert)
            fail(66, "After applying the update, the (immutable) field '_id' was found to have been altered to _id: " +
                         shell(*new_id));
        writer w;
        if (new_id)
            w.append("_id", *new_id);
        else if (old_id)
            w.append("_id", *old_id);
        for (const bson::element& e : p.replacement_doc.view())
            if (e.key() != "_id") w.append(e.key(), e);
        return w.extract();
    }
    if (p.pipeline) {
        std::vector<bson::document> in;
        in.emplace_back(doc);
        auto out = run_pipeline(std::move(in), p.pipeline->view(), 0, p.vars);
        if (out.size() != 1) fail(2, "An update pipeline must produce exactly one document");
        // A result without _id keeps the old one; changing it is refused.
        const auto new_id = out.front().find("_id");
        if (old_id && new_id && !same_bytes(*old_id, *new_id) && !for_insert)
            fail(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
        if (new_id || !old_id) return id_first(out.front());
        writer w;
        w.append("_id", *old_id);
        for (const bson::element& e : out.front().view()) w.append(e.key(), e);
        return w.extract();
    }
    context ctx;
    ctx.id = old_id ? "{_id: " + shell(*old_id) + "}" : "{}";
    ctx.filters = &p.filters;
    node root = node::of(doc);
    for (const action& a : p.actions) {
        if (a.kind == op_kind::set_on_insert && !for_insert) continue;
        if (a.kind == op_kind::rename) {
            apply_rename(root, a, ctx);
            continue;
        }
        const auto path = resolve_positional(a.path, array_pos);
        apply_path(root, "", path, 0, a, ctx);
    }
    bson::document out = root.to_document();
    if (old_id && !for_insert) {
        const auto new_id = out.find("_id");
        if (!new_id || !same_bytes(*old_id, *new_id))
            fail(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
    }
    return out;
}

// ---------------------------------------------------------------- upserts

namespace {

void seed_path(node& root, const std::vector<std::string>& path, const bson::element& v, std::string_view text) {
    node* cur = &root;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
        node* next = cur->field(path[i]);
        if (next == nullptr) {
            next = &cur->set(path[i], node{});
        } else if (!next->is_document()) {
            fail(54, "cannot infer query fields to set, path '" + std::string(text) + "' is matched twice");
        }
        cur = next;
    }
    if (cur->field(path.back()) != nullptr)
        fail(54, "cannot infer query fields to set, path '" + std::string(text) + "' is matched twice");
    cur->set(path.back(), node::of(v));
}

void seed_from(node& root, bson::document_view filter) {
    for (const bson::element& e : filter) {
        const std::string_view key = e.key();
        if (key == "$and") {
            if (e.type() == bson::type::array)
                for (const bson::element& x : e.get_array())
                    if (x.type() == bson::type::document) seed_from(root, x.get_document());
            continue;
        }
        if (key.starts_with('$')) continue;
        if (e.type() == bson::type::regex) continue;
        if (e.type() == bson::type::document && is_operator_document(e.get_document())) {
            if (const auto eq = e.get_document().find("$eq")) seed_path(root, split_path(key), *eq, key);
            continue;
        }
        seed_path(root, split_path(key), e, key);
    }
}

}  // namespace

bson::document upsert_seed(bson::document_view filter) {
    node root;
    seed_from(root, filter);
    return root.to_document();
}

bson::document id_first(bson::document_view doc) {
    const auto id = doc.find("_id");
    if (!id || doc.begin()->key() == "_id") return bson::document(doc);
    writer w;
    w.append("_id", *id);
    for (const bson::element& e : doc)
        if (e.key() != "_id") w.append(e.key(), e);
    return w.extract();
}

}  // namespace trellis::sim::detail
