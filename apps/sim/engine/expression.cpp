// Aggregation expressions: compiled into a small tree, evaluated against one
// document. "Missing" (a path that leads nowhere) is distinct from null, as
// in mongod: object expressions drop missing fields, arrays turn them into null.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

#include "internal.hpp"

namespace trellis::sim {

namespace detail {

enum class op_code {
    add,
    subtract,
    multiply,
    divide,
    mod,
    abs,
    concat,
    to_upper,
    to_lower,
    eq,
    ne,
    gt,
    gte,
    lt,
    lte,
    cmp,
    cond,
    if_null,
    and_,
    or_,
    not_,
    size,
    in,
    array_elem_at,
    set_field,
    get_field,
    rand,
    filter,
};

struct expr_node {
    enum class kind { literal, path, object, array, op, remove, local } k = kind::literal;
    value literal;
    std::vector<std::string> path;   // field path from the root document; empty: the root itself
    std::vector<std::string> names;  // object field names
    std::vector<expr_node> args;     // object values, array elements or operator arguments
    op_code op = op_code::add;
    std::string op_name;
    std::string field;  // $setField / $getField: the field name; local: the variable; $filter: `as`
};

namespace {

using result = std::optional<value>;

struct op_info {
    std::string_view name;
    op_code op;
    int min_args;
    int max_args;  // -1: any
};

const op_info operators[] = {
    {"$add", op_code::add, 0, -1},
    {"$subtract", op_code::subtract, 2, 2},
    {"$multiply", op_code::multiply, 0, -1},
    {"$divide", op_code::divide, 2, 2},
    {"$mod", op_code::mod, 2, 2},
    {"$abs", op_code::abs, 1, 1},
    {"$concat", op_code::concat, 0, -1},
    {"$toUpper", op_code::to_upper, 1, 1},
    {"$toLower", op_code::to_lower, 1, 1},
    {"$eq", op_code::eq, 2, 2},
    {"$ne", op_code::ne, 2, 2},
    {"$gt", op_code::gt, 2, 2},
    {"$gte", op_code::gte, 2, 2},
    {"$lt", op_code::lt, 2, 2},
    {"$lte", op_code::lte, 2, 2},
    {"$cmp", op_code::cmp, 2, 2},
    {"$cond", op_code::cond, 3, 3},
    {"$ifNull", op_code::if_null, 2, -1},
    {"$and", op_code::and_, 0, -1},
    {"$or", op_code::or_, 0, -1},
    {"$not", op_code::not_, 1, 1},
    {"$size", op_code::size, 1, 1},
    {"$in", op_code::in, 2, 2},
    {"$arrayElemAt", op_code::array_elem_at, 2, 2},
    {"$setField", op_code::set_field, 0, 0},
    {"$getField", op_code::get_field, 0, 0},
    {"$rand", op_code::rand, 0, 0},
    {"$filter", op_code::filter, 0, 0},
};

expr_node compile_node(const bson::element& spec, const variables* vars);
result eval_path(const bson::element& cur, const std::vector<std::string>& path, std::size_t i);

// Variables an enclosing operator binds per element ($filter's `as`, "this" by default): the
// names in scope while compiling, and their values while evaluating (innermost last).
thread_local std::vector<std::string> compile_locals;
thread_local std::vector<std::pair<std::string_view, const value*>> eval_locals;

expr_node compile_string(std::string_view s, const variables* vars) {
    expr_node n;
    if (s.size() >= 2 && s[0] == '$' && s[1] == '$') {
        const std::string_view rest = s.substr(2);
        const std::string_view var = rest.substr(0, rest.find('.'));
        if (var == "REMOVE") {
            n.k = expr_node::kind::remove;
            return n;
        }
        std::vector<std::string> path;
        if (var.size() < rest.size()) path = split_path(rest.substr(var.size() + 1));
        if (std::find(compile_locals.begin(), compile_locals.end(), var) != compile_locals.end()) {
            n.k = expr_node::kind::local;
            n.field = std::string(var);
            n.path = std::move(path);
            return n;
        }
        if (var != "ROOT" && var != "CURRENT") {
            // A user variable is constant for the command: its value (or the path below it) is a literal.
            const auto it = vars ? vars->find(var) : variables::const_iterator();
            if (!vars || it == vars->end()) fail(17276, "Use of undefined variable: " + std::string(var));
            const result r = it->second ? eval_path(it->second->get(), path, 0) : std::nullopt;
            if (!r) n.k = expr_node::kind::remove;
            else n.literal = *r;
            return n;
        }
        n.k = expr_node::kind::path;
        n.path = std::move(path);
        return n;
    }
    if (!s.empty() && s[0] == '$') {
        if (s.size() == 1) fail(16872, "'$' by itself is not a valid FieldPath");
        n.k = expr_node::kind::path;
        n.path = split_path(s.substr(1));
        for (const auto& part : n.path)
            if (part.empty()) fail(15998, "FieldPath field names may not be empty strings.");
        return n;
    }
    n.literal = value::of(s);
    return n;
}

// The field argument of $setField / $getField: a constant string.
std::string constant_field(const expr_node& f, std::string_view op, int code) {
    if (f.k != expr_node::kind::literal || f.literal.type() != bson::type::string)
        fail(code, std::string(op) + " requires 'field' to evaluate to a constant, but got a non-constant argument");
    return std::string(f.literal.get().get_string());
}

// {$setField: {field, input, value}} and {$getField: {field, input} | field}.
void compile_field_op(expr_node& n, const bson::element& arg, const variables* vars) {
    const bool set = n.op == op_code::set_field;
    const std::string_view op = n.op_name;
    std::optional<expr_node> field, input, val;
    if (arg.type() == bson::type::document && !is_operator_document(arg.get_document())) {
        for (const bson::element& x : arg.get_document()) {
            if (x.key() == "field") field = compile_node(x, vars);
            else if (x.key() == "input") input = compile_node(x, vars);
            else if (set && x.key() == "value") val = compile_node(x, vars);
            else fail(set ? 4161101 : 3041701, std::string(op) + " found an unknown argument: " + std::string(x.key()));
        }
    } else if (!set) {
        field = compile_node(arg, vars);  // {$getField: "name"}: the field of $$CURRENT
    } else {
        fail(4161100, "$setField only supports an object as its argument");
    }
    if (!field) fail(set ? 4161102 : 3041702, std::string(op) + " requires 'field' to be specified");
    if (set && !input) fail(4161103, "$setField requires 'input' to be specified");
    if (set && !val) fail(4161104, "$setField requires 'value' to be specified");
    n.field = constant_field(*field, op, set ? 4161106 : 5654602);
    if (!input) {
        input = expr_node{};
        input->k = expr_node::kind::path;  // $$CURRENT
    }
    n.args.push_back(std::move(*input));
    if (set) n.args.push_back(std::move(*val));
}

expr_node compile_node(const bson::element& spec, const variables* vars) {
    expr_node n;
    switch (spec.type()) {
        case bson::type::string: return compile_string(spec.get_string(), vars);
        case bson::type::array:
            n.k = expr_node::kind::array;
            for (const bson::element& x : spec.get_array()) n.args.push_back(compile_node(x, vars));
            return n;
        case bson::type::document: break;
        default: n.literal = value(spec); return n;
    }
    const bson::document_view d = spec.get_document();
    if (!d.empty() && d.begin()->key().starts_with('$')) {
        if (d.count() != 1)
            fail(15983, "An object representing an expression must have exactly one field: " + shell(d));
        const bson::element arg = *d.begin();
        const std::string_view name = arg.key();
        if (name == "$literal") {
            n.literal = value(arg);
            return n;
        }
        const op_info* info = nullptr;
        for (const auto& o : operators)
            if (o.name == name) info = &o;
        if (info == nullptr) fail(168, "Unrecognized expression '" + std::string(name) + "'");
        n.k = expr_node::kind::op;
        n.op = info->op;
        n.op_name = std::string(name);
        if (info->op == op_code::set_field || info->op == op_code::get_field) {
            compile_field_op(n, arg, vars);
            return n;
        }
        if (info->op == op_code::filter) {
            // {$filter: {input, as, cond, limit}}
            if (arg.type() != bson::type::document) fail(28646, "$filter only supports an object as its argument");
            const bson::document_view f = arg.get_document();
            std::string as = "this";
            for (const bson::element& x : f) {
                if (x.key() == "as") {
                    if (x.type() != bson::type::string) fail(28647, "$filter 'as' must be a string");
                    as = std::string(x.get_string());
                } else if (x.key() != "input" && x.key() != "cond" && x.key() != "limit") {
                    fail(28647, "Unrecognized parameter to $filter: " + std::string(x.key()));
                }
            }
            const auto input = f.find("input"), cond = f.find("cond");
            if (!input) fail(28648, "Missing 'input' parameter to $filter");
            if (!cond) fail(28650, "Missing 'cond' parameter to $filter");
            n.field = as;
            n.args.push_back(compile_node(*input, vars));
            compile_locals.push_back(as);
            try {
                n.args.push_back(compile_node(*cond, vars));
            } catch (...) {
                compile_locals.pop_back();
                throw;
            }
            compile_locals.pop_back();
            if (const auto limit = f.find("limit")) n.args.push_back(compile_node(*limit, vars));
            return n;
        }
        if (info->op == op_code::rand) {
            if (arg.type() != bson::type::document || !arg.get_document().empty())
                fail(3040501, "$rand does not currently accept arguments");
            return n;
        }
        if (info->op == op_code::cond && arg.type() == bson::type::document) {
            // {$cond: {if, then, else}}
            const bson::document_view c = arg.get_document();
            for (const char* part : {"if", "then", "else"}) {
                const auto x = c.find(part);
                if (!x) fail(17080, std::string("Missing '") + part + "' parameter to $cond");
                n.args.push_back(compile_node(*x, vars));
            }
            for (const bson::element& x : c)
                if (x.key() != "if" && x.key() != "then" && x.key() != "else")
                    fail(17083, "Unrecognized parameter to $cond: " + std::string(x.key()));
            return n;
        }
        if (arg.type() == bson::type::array) {
            for (const bson::element& x : arg.get_array()) n.args.push_back(compile_node(x, vars));
        } else {
            n.args.push_back(compile_node(arg, vars));
        }
        const int count = static_cast<int>(n.args.size());
        if (count < info->min_args || (info->max_args >= 0 && count > info->max_args)) {
            if (info->min_args == info->max_args)
                fail(16020, "Expression " + n.op_name + " takes exactly " + std::to_string(info->min_args) +
                                " arguments. " + std::to_string(count) + " were passed in.");
            fail(16021, "Expression " + n.op_name + " takes at least " + std::to_string(info->min_args) +
                            " arguments, and at most " + std::to_string(info->max_args) + ".");
        }
        return n;
    }
    n.k = expr_node::kind::object;
    for (const bson::element& x : d) {
        if (x.key().find('.') != std::string_view::npos)
            fail(16412, "FieldPath field names may not contain '.'. Consider using $getField or $setField.");
        if (x.key().starts_with('$')) fail(16410, "FieldPath field names may not start with '$'.");
        n.names.emplace_back(x.key());
        n.args.push_back(compile_node(x, vars));
    }
    return n;
}

// Evaluates a field path below an element; arrays map over their elements.
result eval_path(const bson::element& cur, const std::vector<std::string>& path, std::size_t i) {
    if (i == path.size()) return value(cur);
    if (cur.type() == bson::type::document) {
        const auto next = cur.get_document().find(path[i]);
        if (!next) return std::nullopt;
        return eval_path(*next, path, i + 1);
    }
    if (cur.type() == bson::type::array) {
        writer w;
        w.open_array("");
        std::size_t k = 0;
        for (const bson::element& x : cur.get_array()) {
            if (x.type() != bson::type::document && x.type() != bson::type::array) continue;
            if (auto r = eval_path(x, path, i)) w.append(index_key(k++), r->get());
        }
        w.close();
        return value::adopt(w.extract());
    }
    return std::nullopt;
}

bool nullish(const result& r) { return !r || r->type() == bson::type::null || r->type() == bson::type::undefined; }

value null_value() { return value(); }

std::string type_of(const result& r) { return r ? std::string(type_alias(r->type())) : std::string("missing"); }

result eval(const expr_node& n, bson::document_view root);

value array_of(const std::vector<value>& items) {
    writer w;
    w.open_array("");
    for (std::size_t i = 0; i < items.size(); ++i) w.append(index_key(i), items[i].get());
    w.close();
    return value::adopt(w.extract());
}

// Comparison treats missing as undefined, which sorts below null, as mongod's does.
int compare_results(const result& a, const result& b) {
    static const value undefined_value = value::of(bson::undefined);
    return compare_values(a ? a->get() : undefined_value.get(), b ? b->get() : undefined_value.get());
}

result eval_op(const expr_node& n, bson::document_view root) {
    auto arg = [&](std::size_t i) { return eval(n.args[i], root); };
    switch (n.op) {
        case op_code::add: {
            number total = number::int32(0);
            std::optional<std::int64_t> date;
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                const result r = arg(i);
                if (nullish(r)) return null_value();
                if (r->type() == bson::type::date_time) {
                    if (date) fail(16612, "only one date allowed in an $add expression");
                    date = r->get().get_date_time().milliseconds;
                } else if (is_numeric(r->type())) {
                    total = add(total, number::of(r->get()));
                } else {
                    fail(16554, "$add only supports numeric or date types, not " + type_of(r));
                }
            }
            if (date) return value::of(bson::date_time(*date + std::llround(total.to_double())));
            return total.to_value();
        }
        case op_code::subtract: {
            const result a = arg(0), b = arg(1);
            if (nullish(a) || nullish(b)) return null_value();
            if (is_numeric(a->type()) && is_numeric(b->type()))
                return subtract(number::of(a->get()), number::of(b->get())).to_value();
            if (a->type() == bson::type::date_time && b->type() == bson::type::date_time)
                return value::of(static_cast<std::int64_t>(a->get().get_date_time().milliseconds -
                                                           b->get().get_date_time().milliseconds));
            if (a->type() == bson::type::date_time && is_numeric(b->type()))
                return value::of(bson::date_time(a->get().get_date_time().milliseconds -
                                                 std::llround(number::of(b->get()).to_double())));
            fail(16556, "can't $subtract " + type_of(b) + " from " + type_of(a));
        }
        case op_code::multiply: {
            number total = number::int32(1);
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                const result r = arg(i);
                if (nullish(r)) return null_value();
                if (!is_numeric(r->type())) fail(16555, "$multiply only supports numeric types, not " + type_of(r));
                total = multiply(total, number::of(r->get()));
            }
            return total.to_value();
        }
        case op_code::divide: {
            const result a = arg(0), b = arg(1);
            if (nullish(a) || nullish(b)) return null_value();
            if (!is_numeric(a->type()) || !is_numeric(b->type()))
                fail(16609, "$divide only supports numeric types, not " + type_of(a) + " and " + type_of(b));
            if (number::of(b->get()).is_zero()) fail(2, "can't $divide by zero");
            return divide(number::of(a->get()), number::of(b->get())).to_value();
        }
        case op_code::mod: {
            const result a = arg(0), b = arg(1);
            if (nullish(a) || nullish(b)) return null_value();
            if (!is_numeric(a->type()) || !is_numeric(b->type()))
                fail(16611, "$mod only supports numeric types, not " + type_of(a) + " and " + type_of(b));
            const number x = number::of(a->get()), y = number::of(b->get());
            if (y.is_zero()) fail(16610, "can't $mod by 0");
            using k = number::kind;
            if ((x.k == k::i32 || x.k == k::i64) && (y.k == k::i32 || y.k == k::i64)) {
                // INT64_MIN % -1 overflows in C++; the answer is 0.
                const std::int64_t r = y.i == -1 ? 0 : x.i % y.i;
                return (x.k == k::i32 && y.k == k::i32 ? number::int32(static_cast<std::int32_t>(r)) : number::int64(r))
                    .to_value();
            }
            const double r = std::fmod(x.to_double(), y.to_double());
            if (x.k == k::dec || y.k == k::dec) return number::decimal(number::dbl(r).to_decimal()).to_value();
            return number::dbl(r).to_value();
        }
        case op_code::abs: {
            const result a = arg(0);
            if (nullish(a)) return null_value();
            if (!is_numeric(a->type())) fail(28765, "$abs only supports numeric types, not " + type_of(a));
            const number x = number::of(a->get());
            if (compare_numbers(x, number::int32(0)) >= 0) return a;
            return subtract(x.k == number::kind::dec ? number::decimal(bson::decimal128()) : number::int32(0), x)
                .to_value();
        }
        case op_code::concat: {
            std::string out;
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                const result r = arg(i);
                if (nullish(r)) return null_value();
                if (r->type() != bson::type::string) fail(16702, "$concat only supports strings, not " + type_of(r));
                out += r->get().get_string();
            }
            return value::of(out);
        }
        case op_code::to_upper:
        case op_code::to_lower: {
            const result r = arg(0);
            std::string s;
            if (nullish(r)) {
                // missing and null become ""
            } else if (r->type() == bson::type::string) {
                s = std::string(r->get().get_string());
            } else if (r->type() == bson::type::int32 || r->type() == bson::type::int64) {
                s = std::to_string(number::of(r->get()).i);
            } else if (is_numeric(r->type())) {
                s = shell(r->get());
            } else {
                fail(16007, "can't convert from BSON type " + type_of(r) + " to String");
            }
            // ASCII only, as mongod's $toUpper/$toLower.
            for (char& c : s) {
                if (c >= 0) c = static_cast<char>(n.op == op_code::to_upper ? std::toupper(c) : std::tolower(c));
            }
            return value::of(s);
        }
        case op_code::eq:
        case op_code::ne:
        case op_code::gt:
        case op_code::gte:
        case op_code::lt:
        case op_code::lte:
        case op_code::cmp: {
            const int c = compare_results(arg(0), arg(1));
            switch (n.op) {
                case op_code::eq: return value::of(c == 0);
                case op_code::ne: return value::of(c != 0);
                case op_code::gt: return value::of(c > 0);
                case op_code::gte: return value::of(c >= 0);
                case op_code::lt: return value::of(c < 0);
                case op_code::lte: return value::of(c <= 0);
                default: return value::of(static_cast<std::int32_t>(c));
            }
        }
        case op_code::cond: {
            const result c = arg(0);
            return (c && truthy(c->get())) ? arg(1) : arg(2);
        }
        case op_code::if_null: {
            for (std::size_t i = 0; i + 1 < n.args.size(); ++i) {
                result r = arg(i);
                if (!nullish(r)) return r;
            }
            return arg(n.args.size() - 1);
        }
        case op_code::and_:
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                const result r = arg(i);
                if (!r || !truthy(r->get())) return value::of(false);
            }
            return value::of(true);
        case op_code::or_:
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                const result r = arg(i);
                if (r && truthy(r->get())) return value::of(true);
            }
            return value::of(false);
        case op_code::not_: {
            const result r = arg(0);
            return value::of(!(r && truthy(r->get())));
        }
        case op_code::size: {
            const result r = arg(0);
            if (!r || r->type() != bson::type::array)
                fail(17124, "The argument to $size must be an array. Type of argument was: " + type_of(r));
            return value::of(static_cast<std::int32_t>(r->get().get_array().count()));
        }
        case op_code::in: {
            const result needle = arg(0), hay = arg(1);
            if (!hay || hay->type() != bson::type::array)
                fail(40081, "$in requires an array as a second argument, found: " + type_of(hay));
            for (const bson::element& x : hay->get().get_array())
                if (compare_results(needle, value(x)) == 0) return value::of(true);
            return value::of(false);
        }
        case op_code::array_elem_at: {
            const result arr = arg(0), idx = arg(1);
            if (nullish(arr) || nullish(idx)) return null_value();
            if (arr->type() != bson::type::array)
                fail(28689, "$arrayElemAt's first argument must be an array, but is " + type_of(arr));
            if (!is_numeric(idx->type()))
                fail(28690, "$arrayElemAt's second argument must be a numeric value, but is " + type_of(idx));
            const double d = number::of(idx->get()).to_double();
            if (std::trunc(d) != d)
                fail(28691, "$arrayElemAt's second argument must be representable as a 32-bit integer");
            const bson::array_view a = arr->get().get_array();
            const auto size = static_cast<std::int64_t>(a.count());
            auto i = static_cast<std::int64_t>(d);
            if (i < 0) i += size;
            if (i < 0 || i >= size) return std::nullopt;
            return value(a[static_cast<std::size_t>(i)]);
        }
        case op_code::set_field: {
            const result input = arg(0);
            if (nullish(input)) return null_value();
            if (input->type() != bson::type::document)
                fail(4161105, "$setField requires 'input' to evaluate to type Object");
            const result v = arg(1);  // missing ($$REMOVE): the field goes away
            writer w;
            w.open_document("");
            bool done = false;
            for (const bson::element& x : input->get().get_document()) {
                if (x.key() != n.field) {
                    w.append(x.key(), x);
                } else if (v && !done) {
                    w.append(n.field, v->get());
                    done = true;
                }
            }
            if (v && !done) w.append(n.field, v->get());
            w.close();
            return value::adopt(w.extract());
        }
        case op_code::get_field: {
            const result input = arg(0);
            if (nullish(input)) return null_value();
            if (input->type() != bson::type::document) return std::nullopt;
            const auto x = input->get().get_document().find(n.field);
            if (!x) return std::nullopt;
            return value(*x);
        }
        case op_code::filter: {
            const result input = arg(0);
            if (nullish(input)) return null_value();
            if (input->type() != bson::type::array)
                fail(28651, "input to $filter must be an array not " + type_of(input));
            std::optional<std::int64_t> limit;
            if (n.args.size() > 2) {
                const result l = arg(2);
                if (!nullish(l)) {
                    if (!is_numeric(l->type())) fail(327391, "$filter: limit must be a number, got " + type_of(l));
                    limit = static_cast<std::int64_t>(number::of(l->get()).to_double());
                    if (*limit < 1) fail(327392, "$filter: limit must be greater than 0");
                }
            }
            std::vector<value> kept;
            for (const bson::element& x : input->get().get_array()) {
                if (limit && static_cast<std::int64_t>(kept.size()) >= *limit) break;
                value item(x);
                eval_locals.emplace_back(n.field, &item);
                result keep;
                try {
                    keep = eval(n.args[1], root);
                } catch (...) {
                    eval_locals.pop_back();
                    throw;
                }
                eval_locals.pop_back();
                if (keep && truthy(keep->get())) kept.push_back(std::move(item));
            }
            return array_of(kept);
        }
        case op_code::rand: {
            thread_local std::mt19937_64 gen{std::random_device{}()};
            return value::of(std::uniform_real_distribution<double>(0.0, 1.0)(gen));
        }
    }
    return std::nullopt;
}

result eval(const expr_node& n, bson::document_view root) {
    switch (n.k) {
        case expr_node::kind::literal: return n.literal;
        case expr_node::kind::remove: return std::nullopt;
        case expr_node::kind::path: {
            if (n.path.empty()) return value::of(root);
            const auto first = root.find(n.path[0]);
            if (!first) return std::nullopt;
            return eval_path(*first, n.path, 1);
        }
        case expr_node::kind::object: {
            writer w;
            w.open_document("");
            for (std::size_t i = 0; i < n.args.size(); ++i)
                if (const result r = eval(n.args[i], root)) w.append(n.names[i], r->get());
            w.close();
            return value::adopt(w.extract());
        }
        case expr_node::kind::array: {
            std::vector<value> items;
            for (const auto& a : n.args) {
                result r = eval(a, root);
                items.push_back(r ? std::move(*r) : null_value());
            }
            return array_of(items);
        }
        case expr_node::kind::op: return eval_op(n, root);
        case expr_node::kind::local:
            for (auto it = eval_locals.rbegin(); it != eval_locals.rend(); ++it)
                if (it->first == n.field) {
                    if (n.path.empty()) return *it->second;
                    return eval_path(it->second->get(), n.path, 0);
                }
            fail(17276, "Use of undefined variable: " + n.field);
    }
    return std::nullopt;
}

}  // namespace

expression::expression() : node_(std::make_unique<expr_node>()) {}
expression::~expression() = default;
expression::expression(expression&&) noexcept = default;
expression& expression::operator=(expression&&) noexcept = default;

expression expression::compile(const bson::element& spec, const variables* vars) {
    expression e;
    *e.node_ = compile_node(spec, vars);
    return e;
}

variables evaluate_let(bson::document_view let) {
    variables out;
    for (const bson::element& e : let) {
        const std::string_view name = e.key();
        if (name.empty()) fail(16866, "empty variable names are not allowed");
        const auto c = static_cast<unsigned char>(name[0]);
        if (!(c >= 'a' && c <= 'z') && c < 0x80)
            fail(16867, "'" + std::string(name) + "' starts with an invalid character for a user variable name");
        for (const char ch : name) {
            const auto u = static_cast<unsigned char>(ch);
            if (!std::isalnum(u) && ch != '_' && u < 0x80)
                fail(16868, "'" + std::string(name) + "' contains an invalid character for a variable name: '" +
                                std::string(1, ch) + "'");
        }
        // Earlier variables are in scope for later ones.
        out[std::string(name)] = expression::compile(e, &out).eval(bson::document_view());
    }
    return out;
}

std::optional<value> expression::eval(bson::document_view root) const { return detail::eval(*node_, root); }

}  // namespace detail

}  // namespace trellis::sim
