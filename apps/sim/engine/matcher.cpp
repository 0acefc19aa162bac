// Query filters: compiled once into a tree of predicates over the values a
// dotted path reaches (see collect_path for mongod's array fan-out).
#include <boost/regex.hpp>

#include <cmath>
#include <set>

#include "internal.hpp"

namespace trellis::sim {

namespace detail {

namespace {

using items = std::vector<path_item>;

// ---------------------------------------------------------------- regular expressions

class compiled_regex {
public:
    compiled_regex(std::string_view pattern, std::string_view options) {
        boost::regex::flag_type flags = boost::regex::perl;
        bool multiline = false, dotall = false;
        for (char c : options) {
            switch (c) {
                case 'i': flags |= boost::regex::icase; break;
                case 'm': multiline = true; break;
                case 's': dotall = true; break;
                case 'x': flags |= boost::regex::mod_x; break;
                case 'u':
                case 'l': break;
                default: fail(51108, std::string("invalid flag in regex options: ") + c);
            }
        }
        // PCRE's defaults (what mongod uses) are the opposite of Boost's Perl mode for both.
        if (!multiline) flags |= boost::regex::no_mod_m;
        flags |= dotall ? boost::regex::mod_s : boost::regex::no_mod_s;
        try {
            re_ = std::make_shared<boost::regex>(pattern.begin(), pattern.end(), flags);
        } catch (const boost::regex_error& e) {
            fail(51091, std::string("Regular expression is invalid: ") + e.what());
        }
    }
    bool search(std::string_view text) const { return boost::regex_search(text.begin(), text.end(), *re_); }

private:
    std::shared_ptr<boost::regex> re_;
};

std::optional<std::string_view> text_of(const bson::element& e) {
    if (e.type() == bson::type::string) return e.get_string();
    if (e.type() == bson::type::symbol) return e.get_symbol().value;
    return std::nullopt;
}

// ---------------------------------------------------------------- predicates

struct pred {
    virtual ~pred() = default;
    // True when the values the path reached satisfy this condition. pos, when
    // given and still unset, receives the array position of the item that matched.
    virtual bool test(const items& in, std::size_t* pos) const = 0;
};
using pred_list = std::vector<std::unique_ptr<pred>>;

void note(std::size_t* pos, const path_item& it) {
    if (pos != nullptr && *pos == path_item::npos) *pos = it.array_pos;
}

bool all_of(const pred_list& preds, const items& in, std::size_t* pos) {
    for (const auto& p : preds)
        if (!p->test(in, pos)) return false;
    return true;
}

// Equality as queries do it: a null operand also matches missing fields and undefined.
bool item_equals(const path_item& it, const bson::element& v) {
    if (v.type() == bson::type::null) {
        if (it.missing) return true;
        if (it.e.type() == bson::type::null || it.e.type() == bson::type::undefined) return true;
        return false;
    }
    return !it.missing && values_equal(it.e, v);
}

struct eq_pred : pred {
    value operand;
    explicit eq_pred(value v) : operand(std::move(v)) {}
    bool test(const items& in, std::size_t* pos) const override {
        const bson::element v = operand.get();
        for (const auto& it : in) {
            if (item_equals(it, v)) {
                note(pos, it);
                return true;
            }
        }
        return false;
    }
};

enum class cmp_op { gt, gte, lt, lte };

struct cmp_pred : pred {
    cmp_op op;
    value operand;
    cmp_pred(cmp_op o, value v) : op(o), operand(std::move(v)) {}
    bool test(const items& in, std::size_t* pos) const override {
        const bson::element v = operand.get();
        const bool bounds = v.type() == bson::type::min_key || v.type() == bson::type::max_key;
        if (v.type() == bson::type::null && (op == cmp_op::gt || op == cmp_op::lt)) return false;
        for (const auto& it : in) {
            bool ok;
            if (v.type() == bson::type::null) {
                ok = item_equals(it, v);  // $gte/$lte null: null is the only value in null's bracket
            } else {
                if (it.missing) continue;
                // Type bracketing: only values of the operand's canonical type compare (MinKey/MaxKey compare to all).
                if (!bounds && canonical_rank(it.e.type()) != canonical_rank(v.type())) continue;
                const int c = compare_values(it.e, v);
                switch (op) {
                    case cmp_op::gt: ok = c > 0; break;
                    case cmp_op::gte: ok = c >= 0; break;
                    case cmp_op::lt: ok = c < 0; break;
                    case cmp_op::lte: ok = c <= 0; break;
                }
            }
            if (ok) {
                note(pos, it);
                return true;
            }
        }
        return false;
    }
};

struct regex_pred : pred {
    compiled_regex re;
    value regex;  // the operand as a BSON regex, for matching stored regexes by equality
    regex_pred(std::string_view pattern, std::string_view options)
        : re(pattern, options), regex(value::of(bson::regex{pattern, options})) {}
    bool matches(const bson::element& e) const {
        if (auto s = text_of(e)) return re.search(*s);
        if (e.type() == bson::type::regex) return compare_values(e, regex.get()) == 0;
        return false;
    }
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            if (!it.missing && matches(it.e)) {
                note(pos, it);
                return true;
            }
        }
        return false;
    }
};

struct in_pred : pred {
    std::vector<value> values;
    std::vector<std::unique_ptr<regex_pred>> regexes;
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            for (const auto& v : values) {
                if (item_equals(it, v.get())) {
                    note(pos, it);
                    return true;
                }
            }
            if (!it.missing) {
                for (const auto& r : regexes) {
                    if (r->matches(it.e)) {
                        note(pos, it);
                        return true;
                    }
                }
            }
        }
        return false;
    }
};

struct not_pred : pred {
    pred_list inner;
    bool test(const items& in, std::size_t*) const override { return !all_of(inner, in, nullptr); }
};

struct exists_pred : pred {
    bool want;
    explicit exists_pred(bool w) : want(w) {}
    bool test(const items& in, std::size_t*) const override {
        bool found = false;
        for (const auto& it : in) found = found || !it.missing;
        return found == want;
    }
};

struct size_pred : pred {
    std::int64_t n;
    explicit size_pred(std::int64_t v) : n(v) {}
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            // Only arrays the path ends at: not arrays nested inside them.
            if (it.missing || it.from_expansion || it.e.type() != bson::type::array) continue;
            if (static_cast<std::int64_t>(it.e.get_array().count()) == n) {
                note(pos, it);
                return true;
            }
        }
        return false;
    }
};

struct type_pred : pred {
    std::set<int> types;  // BSON type bytes
    bool any_number = false;
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            if (it.missing) continue;
            const bool ok =
                types.count(static_cast<std::uint8_t>(it.e.type())) != 0 || (any_number && is_numeric(it.e.type()));
            if (ok) {
                note(pos, it);
                return true;
            }
        }
        return false;
    }
};

struct mod_pred : pred {
    std::int64_t divisor, remainder;
    mod_pred(std::int64_t d, std::int64_t r) : divisor(d), remainder(r) {}
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            if (it.missing || !is_numeric(it.e.type())) continue;
            const double d = number::of(it.e).to_double();
            if (!std::isfinite(d)) continue;
            const auto v = static_cast<std::int64_t>(std::trunc(d));
            if (v % divisor == remainder) {
                note(pos, it);
                return true;
            }
        }
        return false;
    }
};

struct all_pred : pred {
    std::vector<std::unique_ptr<pred>> each;  // one equality (or regex) per $all element
    bool test(const items& in, std::size_t* pos) const override {
        if (each.empty()) return false;
        for (const auto& p : each)
            if (!p->test(in, pos)) return false;
        return true;
    }
};

struct elem_match_object_pred : pred {
    filter sub;
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            if (it.missing || it.from_expansion || it.e.type() != bson::type::array) continue;
            std::size_t k = 0;
            for (const bson::element& x : it.e.get_array()) {
                if (x.type() == bson::type::document || x.type() == bson::type::array) {
                    const bson::document_view d = x.type() == bson::type::document ? x.get_document() : x.get_array();
                    if (sub.matches(d)) {
                        if (pos != nullptr && *pos == path_item::npos)
                            *pos = it.array_pos != path_item::npos ? it.array_pos : k;
                        return true;
                    }
                }
                ++k;
            }
        }
        return false;
    }
};

struct elem_match_value_pred : pred {
    pred_list preds;
    bool test(const items& in, std::size_t* pos) const override {
        for (const auto& it : in) {
            if (it.missing || it.from_expansion || it.e.type() != bson::type::array) continue;
            std::size_t k = 0;
            for (const bson::element& x : it.e.get_array()) {
                const items one{path_item{x, false, false, false, path_item::npos}};
                if (all_of(preds, one, nullptr)) {
                    if (pos != nullptr && *pos == path_item::npos)
                        *pos = it.array_pos != path_item::npos ? it.array_pos : k;
                    return true;
                }
                ++k;
            }
        }
        return false;
    }
};

// ---------------------------------------------------------------- compiling operators

const std::pair<std::string_view, int> type_aliases[] = {
    {"double", 1},    {"string", 2},     {"object", 3},      {"array", 4},    {"binData", 5},
    {"undefined", 6}, {"objectId", 7},   {"bool", 8},        {"date", 9},     {"null", 10},
    {"regex", 11},    {"dbPointer", 12}, {"javascript", 13}, {"symbol", 14},  {"javascriptWithScope", 15},
    {"int", 16},      {"timestamp", 17}, {"long", 18},       {"decimal", 19}, {"minKey", -1},
    {"maxKey", 127},
};

void add_type(type_pred& p, const bson::element& e) {
    if (e.type() == bson::type::string) {
        const std::string_view name = e.get_string();
        if (name == "number") {
            p.any_number = true;
            return;
        }
        for (const auto& [alias, code] : type_aliases) {
            if (alias == name) {
                p.types.insert(code == -1 ? 0xFF : code);
                return;
            }
        }
        fail(2, "Unknown type name alias: " + std::string(name));
    }
    if (!is_numeric(e.type())) fail(2, "type must be represented as a number or a string");
    const double d = number::of(e).to_double();
    const auto code = static_cast<int>(d);
    if (d != code || !((code >= 1 && code <= 19) || code == -1 || code == 127))
        fail(2, "Invalid numerical type code: " + shell(e));
    p.types.insert(code == -1 ? 0xFF : code);
}

std::unique_ptr<pred> make_equality(const bson::element& e);
pred_list compile_operators(bson::document_view ops);

std::unique_ptr<regex_pred> make_regex(const bson::element& e, std::optional<std::string_view> options) {
    if (e.type() == bson::type::regex) {
        const auto r = e.get_regex();
        if (options && !r.options.empty()) fail(51075, "options set in both $regex and $options");
        return std::make_unique<regex_pred>(r.pattern, options ? *options : r.options);
    }
    if (e.type() == bson::type::string) return std::make_unique<regex_pred>(e.get_string(), options.value_or(""));
    fail(2, "$regex has to be a string");
}

std::unique_ptr<pred> make_equality(const bson::element& e) {
    if (e.type() == bson::type::regex) return make_regex(e, std::nullopt);
    return std::make_unique<eq_pred>(value(e));
}

std::unique_ptr<in_pred> make_in(const bson::element& e, std::string_view op) {
    if (e.type() != bson::type::array) fail(2, std::string(op) + " needs an array");
    auto p = std::make_unique<in_pred>();
    for (const bson::element& x : e.get_array()) {
        if (x.type() == bson::type::regex) {
            p->regexes.push_back(make_regex(x, std::nullopt));
        } else {
            if (x.type() == bson::type::document && is_operator_document(x.get_document()))
                fail(2, "cannot nest $ under " + std::string(op));
            p->values.emplace_back(x);
        }
    }
    return p;
}

std::int64_t whole_number(const bson::element& e, const char* what) {
    if (!is_numeric(e.type())) fail(2, std::string(what) + " needs a number");
    const double d = number::of(e).to_double();
    if (std::trunc(d) != d || !std::isfinite(d)) fail(2, std::string(what) + " must be a whole number");
    return static_cast<std::int64_t>(d);
}

pred_list compile_operators(bson::document_view ops) {
    pred_list out;
    std::optional<bson::element> regex_operand;
    std::optional<std::string_view> regex_options;
    for (const bson::element& e : ops) {
        const std::string_view op = e.key();
        if (op == "$eq") {
            out.push_back(std::make_unique<eq_pred>(value(e)));
        } else if (op == "$ne") {
            if (e.type() == bson::type::regex) fail(2, "Can't have regex as arg to $ne.");
            auto p = std::make_unique<not_pred>();
            p->inner.push_back(std::make_unique<eq_pred>(value(e)));
            out.push_back(std::move(p));
        } else if (op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
            const cmp_op c = op == "$gt"    ? cmp_op::gt
                             : op == "$gte" ? cmp_op::gte
                             : op == "$lt"  ? cmp_op::lt
                                            : cmp_op::lte;
            out.push_back(std::make_unique<cmp_pred>(c, value(e)));
        } else if (op == "$in") {
            out.push_back(make_in(e, "$in"));
        } else if (op == "$nin") {
            auto p = std::make_unique<not_pred>();
            p->inner.push_back(make_in(e, "$nin"));
            out.push_back(std::move(p));
        } else if (op == "$exists") {
            out.push_back(std::make_unique<exists_pred>(truthy(e)));
        } else if (op == "$regex") {
            regex_operand = e;
        } else if (op == "$options") {
            if (e.type() != bson::type::string) fail(2, "$options has to be a string");
            regex_options = e.get_string();
        } else if (op == "$size") {
            const std::int64_t n = whole_number(e, "$size");
            if (n < 0) fail(2, "$size may not be negative");
            out.push_back(std::make_unique<size_pred>(n));
        } else if (op == "$type") {
            auto p = std::make_unique<type_pred>();
            if (e.type() == bson::type::array) {
                for (const bson::element& x : e.get_array()) add_type(*p, x);
            } else {
                add_type(*p, e);
            }
            out.push_back(std::move(p));
        } else if (op == "$not") {
            auto p = std::make_unique<not_pred>();
            if (e.type() == bson::type::regex) {
                p->inner.push_back(make_regex(e, std::nullopt));
            } else if (e.type() == bson::type::document) {
                const bson::document_view d = e.get_document();
                if (d.empty()) fail(2, "$not cannot be empty");
                if (!is_operator_document(d)) fail(2, "unknown operator: " + std::string(d.begin()->key()));
                p->inner = compile_operators(d);
            } else {
                fail(2, "$not needs a regex or a document");
            }
            out.push_back(std::move(p));
        } else if (op == "$elemMatch") {
            if (e.type() != bson::type::document) fail(2, "$elemMatch needs an Object");
            const bson::document_view d = e.get_document();
            const std::string_view first = d.empty() ? std::string_view() : d.begin()->key();
            if (is_operator_document(d) && first != "$and" && first != "$or" && first != "$nor" && first != "$expr") {
                auto p = std::make_unique<elem_match_value_pred>();
                p->preds = compile_operators(d);
                out.push_back(std::move(p));
            } else {
                auto p = std::make_unique<elem_match_object_pred>();
                p->sub = filter::compile(d);
                out.push_back(std::move(p));
            }
        } else if (op == "$all") {
            if (e.type() != bson::type::array) fail(2, "$all needs an array");
            auto p = std::make_unique<all_pred>();
            for (const bson::element& x : e.get_array()) {
                if (x.type() == bson::type::document && is_operator_document(x.get_document())) {
                    const bson::document_view d = x.get_document();
                    if (d.begin()->key() != "$elemMatch") fail(2, "no $ expressions in $all");
                    auto sub = compile_operators(d);
                    p->each.push_back(std::move(sub.front()));
                } else {
                    p->each.push_back(make_equality(x));
                }
            }
            out.push_back(std::move(p));
        } else if (op == "$mod") {
            if (e.type() != bson::type::array) fail(2, "malformed mod, needs to be an array");
            const bson::array_view a = e.get_array();
            if (a.size() != 2)
                fail(2, a.size() < 2 ? "malformed mod, not enough elements" : "malformed mod, too many elements");
            const std::int64_t d = whole_number(a[0], "$mod divisor"), r = whole_number(a[1], "$mod remainder");
            if (d == 0) fail(2, "divisor cannot be 0");
            out.push_back(std::make_unique<mod_pred>(d, r));
        } else if (op == "$comment") {
            // ignored, as mongod does
        } else {
            fail(2, "unknown operator: " + std::string(op));
        }
    }
    if (regex_options && !regex_operand) fail(2, "$options needs a $regex");
    if (regex_operand) out.push_back(make_regex(*regex_operand, regex_options));
    return out;
}

}  // namespace

// ---------------------------------------------------------------- document-level nodes

struct filter_impl {
    enum class kind { all, field, and_, or_, nor, expr } k = kind::all;
    std::vector<std::string> path;
    pred_list preds;
    std::vector<filter_impl> children;
    std::unique_ptr<expression> expr;

    bool matches(bson::document_view doc, std::size_t* pos) const {
        switch (k) {
            case kind::all: return true;
            case kind::field: {
                items in;
                collect_path(doc, path, in);
                return all_of(preds, in, pos);
            }
            case kind::and_:
                for (const auto& c : children)
                    if (!c.matches(doc, pos)) return false;
                return true;
            case kind::or_:
                for (const auto& c : children)
                    if (c.matches(doc, pos)) return true;
                return false;
            case kind::nor:
                for (const auto& c : children)
                    if (c.matches(doc, nullptr)) return false;
                return true;
            case kind::expr: {
                const auto v = expr->eval(doc);
                return v && truthy(v->get());
            }
        }
        return false;
    }

    static filter_impl compile(bson::document_view spec, const variables* vars) {
        filter_impl root;
        root.k = kind::and_;
        for (const bson::element& e : spec) {
            const std::string_view key = e.key();
            if (!key.empty() && key[0] == '$') {
                if (key == "$and" || key == "$or" || key == "$nor") {
                    if (e.type() != bson::type::array || e.get_array().empty())
                        fail(2, std::string(key) + " must be a nonempty array");
                    filter_impl group;
                    group.k = key == "$and" ? kind::and_ : key == "$or" ? kind::or_ : kind::nor;
                    for (const bson::element& x : e.get_array()) {
                        if (x.type() != bson::type::document)
                            fail(2, std::string(key) + " argument's entries must be objects");
                        group.children.push_back(compile(x.get_document(), vars));
                    }
                    root.children.push_back(std::move(group));
                } else if (key == "$expr") {
                    filter_impl node;
                    node.k = kind::expr;
                    node.expr = std::make_unique<expression>(expression::compile(e, vars));
                    root.children.push_back(std::move(node));
                } else if (key == "$comment") {
                    // ignored
                } else {
                    fail(2, "unknown top level operator: " + std::string(key));
                }
                continue;
            }
            filter_impl node;
            node.k = kind::field;
            node.path = split_path(key);
            if (e.type() == bson::type::document && is_operator_document(e.get_document()))
                node.preds = compile_operators(e.get_document());
            else
                node.preds.push_back(make_equality(e));
            root.children.push_back(std::move(node));
        }
        if (root.children.empty()) root.k = kind::all;
        return root;
    }
};

filter::filter() : impl_(std::make_unique<filter_impl>()) {}
filter::~filter() = default;
filter::filter(filter&&) noexcept = default;
filter& filter::operator=(filter&&) noexcept = default;

filter filter::compile(bson::document_view spec, const variables* vars) {
    filter f;
    *f.impl_ = filter_impl::compile(spec, vars);
    return f;
}

bool filter::matches(bson::document_view doc, std::size_t* array_pos) const { return impl_->matches(doc, array_pos); }

struct value_filter_impl {
    pred_list preds;
};

value_filter::value_filter() : impl_(std::make_unique<value_filter_impl>()) {}
value_filter::~value_filter() = default;
value_filter::value_filter(value_filter&&) noexcept = default;
value_filter& value_filter::operator=(value_filter&&) noexcept = default;

value_filter value_filter::compile(bson::document_view ops) {
    value_filter f;
    f.impl_->preds = compile_operators(ops);
    return f;
}

bool value_filter::matches(const bson::element& e) const {
    // The value itself, and for an array its elements too, as a field would be.
    items in{path_item{e, false, e.type() == bson::type::array, false, path_item::npos}};
    if (e.type() == bson::type::array)
        for (const bson::element& x : e.get_array()) in.push_back({x, false, false, true, path_item::npos});
    return all_of(impl_->preds, in, nullptr);
}

bool is_operator_document(bson::document_view d) {
    if (d.empty()) return false;
    const std::string_view first = d.begin()->key();
    // DBRefs ({$ref, $id, $db}) are values, not operators.
    return !first.empty() && first[0] == '$' && first != "$ref" && first != "$id" && first != "$db";
}

bool regex_matches(const bson::element& regex, std::string_view text) {
    const auto r = regex.get_regex();
    return compiled_regex(r.pattern, r.options).search(text);
}

}  // namespace detail

// ---------------------------------------------------------------- matcher

struct matcher::impl {
    detail::filter f;
};

matcher::matcher() : impl_(std::make_unique<impl>()) {}
matcher::~matcher() = default;
matcher::matcher(matcher&&) noexcept = default;
matcher& matcher::operator=(matcher&&) noexcept = default;

matcher matcher::compile(bson::document_view filter) {
    matcher m;
    m.impl_->f = detail::filter::compile(filter);
    return m;
}

bool matcher::matches(bson::document_view doc) const { return impl_->f.matches(doc); }

}  // namespace trellis::sim
