// Internals shared by the engine's translation units: owned values, a BSON
// writer that can rename elements, numbers across the four numeric types,
// dotted-path traversal, a mutable document tree for updates, mongod's
// shell-like value printing and the compiled forms of filters, sorts,
// projections and expressions. Not part of the engine's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine.hpp"

namespace trellis::sim::detail {

// ---------------------------------------------------------------- errors

/// mongod's codeName for a code ("Location<code>" for assertion codes without a name).
std::string code_name(int code);
[[noreturn]] void fail(int code, std::string message, bson::document extra = {});

// ---------------------------------------------------------------- writing

/// A document writer over bson::builder's raw interface. Unlike builder it
/// takes explicit keys inside arrays too, so elements can be copied under new
/// names anywhere (the builder only copies an element under its own key).
class writer {
public:
    void append(std::string_view key, const bson::element& e) {
        header(e.type(), key);
        b_.write_raw(e.value_ptr(), e.raw_value().size());
    }
    template <class T>
    void append(std::string_view key, const T& v) {
        using traits = bson::value_traits<std::remove_cvref_t<T>>;
        header(traits::bson_type, key);
        traits::write(b_, v);
    }
    void append(std::string_view key, const char* v) { append(key, std::string_view(v)); }
    void open_document(std::string_view key) { open(bson::type::document, key); }
    void open_array(std::string_view key) { open(bson::type::array, key); }
    void close() {
        b_.write_byte(0);
        b_.patch_length(open_.back());
        open_.pop_back();
    }
    bson::document extract() {
        bson::document d = b_.extract();
        b_ = bson::builder();  // header() writes raw bytes: the next root must be open already
        return d;
    }

private:
    void header(bson::type t, std::string_view key) {
        b_.write_byte(static_cast<std::uint8_t>(t));
        b_.write_cstring(key, "field name");
    }
    void open(bson::type t, std::string_view key) {
        header(t, key);
        open_.push_back(b_.reserve_length());
    }

    bson::builder b_;
    std::vector<std::size_t> open_;
};

/// "0", "1", ...: array keys.
std::string index_key(std::size_t i);

// ---------------------------------------------------------------- values

/// One owned BSON value, kept as the single element of {"": value}.
class value {
public:
    value();  // null
    explicit value(const bson::element& e);
    template <class T>
    static value of(const T& v) {
        writer w;
        w.append("", v);
        return value(w.extract(), 0);
    }
    /// Takes a holder document {"": value} (as writer builds it).
    static value adopt(bson::document holder) { return value(std::move(holder), 0); }
    bson::element get() const { return *doc_.begin(); }
    bson::type type() const { return get().type(); }
    /// The value as a document view (documents and arrays only).
    bson::document_view doc() const {
        return get().type() == bson::type::array ? get().get_array() : get().get_document();
    }

private:
    value(bson::document d, int) : doc_(std::move(d)) {}
    bson::document doc_;
};

/// Less-than over compare_values, for maps keyed by values.
struct value_less {
    bool operator()(const value& a, const value& b) const { return compare_values(a.get(), b.get()) < 0; }
};

/// A command's user variables ($$name, from its let), each evaluated once; nullopt: missing.
using variables = std::map<std::string, std::optional<value>, std::less<>>;
/// Evaluates a let document: names checked as mongod does (16866, 16867, 16868), each value an
/// expression over no document.
variables evaluate_let(bson::document_view let);

/// mongod's canonical type rank (the first level of compare_values).
int canonical_rank(bson::type t);
/// Same rank, same value: the equality queries and $in use.
bool values_equal(const bson::element& a, const bson::element& b);
/// mongod's name of a type in messages and $type aliases ("int", "objectId", ...).
std::string_view type_alias(bson::type t);
/// Aggregation truthiness: false, 0, null, undefined and missing are false.
bool truthy(const bson::element& e);

// ---------------------------------------------------------------- numbers

bool is_numeric(bson::type t);

/// A number of one of BSON's four numeric types.
struct number {
    enum class kind { i32, i64, dbl, dec } k = kind::i32;
    std::int64_t i = 0;  // i32, i64
    double d = 0;        // dbl
    bson::decimal128 x;  // dec

    static number of(const bson::element& e);  // e must be numeric
    static number int32(std::int32_t v) { return {kind::i32, v, 0, {}}; }
    static number int64(std::int64_t v) { return {kind::i64, v, 0, {}}; }
    static number dbl(double v) { return {kind::dbl, 0, v, {}}; }
    static number decimal(bson::decimal128 v) { return {kind::dec, 0, 0, v}; }

    double to_double() const;
    bson::decimal128 to_decimal() const;
    bool is_zero() const;
    value to_value() const;
    void write(writer& w, std::string_view key) const;
};

/// Arithmetic with mongod's type promotion: int32 widens to int64 on
/// overflow; int64 overflow widens to double and sets *overflow when given
/// (so $inc can refuse it, as mongod does); double and decimal128 are contagious.
number add(const number& a, const number& b, bool* overflow = nullptr);
number subtract(const number& a, const number& b);
number multiply(const number& a, const number& b, bool* overflow = nullptr);
/// Always double (or decimal128); the caller checks for a zero divisor.
number divide(const number& a, const number& b);
int compare_numbers(const number& a, const number& b);

// ---------------------------------------------------------------- paths

std::vector<std::string> split_path(std::string_view path);
bool is_array_index(std::string_view part);

/// A value a dotted path reaches, mongod-style (arrays fan out).
struct path_item {
    bson::element e;
    bool missing = false;          // the path ended before its last part
    bool expanded = false;         // an array at the leaf whose elements follow as items of their own
    bool from_expansion = false;   // an element of such an array
    std::size_t array_pos = npos;  // index in the first array traversed, for the positional $ operator
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
};

/// Every value the path reaches in doc: documents inside arrays are looked
/// into, numeric parts index arrays, and a leaf array is reported together
/// with its elements. Parts that run into a scalar or a document without
/// the field are reported as missing.
void collect_path(bson::document_view doc, const std::vector<std::string>& path, std::vector<path_item>& out);

// ---------------------------------------------------------------- printing

/// mongod's shell-like rendering used in error messages: { a: 1, b: "x" }.
std::string shell(const bson::element& e);
std::string shell(bson::document_view d);

// ---------------------------------------------------------------- mutable documents

/// A document (or array, or scalar) that updates can edit in place.
struct node {
    bson::type type = bson::type::document;
    std::optional<value> scalar;    // for every type but document and array
    std::vector<std::string> keys;  // documents: field names; arrays: unused
    std::vector<node> kids;

    static node of(const bson::element& e);
    static node of(bson::document_view d);
    static node of(const value& v) { return of(v.get()); }
    static node empty_array() {
        node n;
        n.type = bson::type::array;
        return n;
    }

    bool is_document() const { return type == bson::type::document; }
    bool is_array() const { return type == bson::type::array; }
    /// The child of a document with this name, or nullptr.
    node* field(std::string_view name);
    const node* field(std::string_view name) const;
    /// Appends (or replaces) a field of a document.
    node& set(std::string_view name, node value);
    bool remove(std::string_view name);

    void write(writer& w, std::string_view key) const;
    bson::document to_document() const;  // for documents
    value to_value() const;
};

// ---------------------------------------------------------------- filters

struct filter_impl;
/// A compiled query filter (matcher is a thin wrapper around it).
class filter {
public:
    filter();
    ~filter();
    filter(filter&&) noexcept;
    filter& operator=(filter&&) noexcept;

    /// vars: the user variables $expr may refer to.
    static filter compile(bson::document_view spec, const variables* vars = nullptr);
    /// When array_pos is given and the match went through an array, it
    /// receives the index of the matching element in the first array on the
    /// path (what the positional $ update operator refers to).
    bool matches(bson::document_view doc, std::size_t* array_pos = nullptr) const;

private:
    std::unique_ptr<filter_impl> impl_;
};

struct value_filter_impl;
/// Conditions on a single value, as in {$elemMatch: {$gt: 1}} and {$pull: {a: {$gte: 6}}}.
class value_filter {
public:
    value_filter();
    ~value_filter();
    value_filter(value_filter&&) noexcept;
    value_filter& operator=(value_filter&&) noexcept;

    /// ops: a document of operators ({$gt: 1, $lt: 5}).
    static value_filter compile(bson::document_view ops);
    bool matches(const bson::element& e) const;

private:
    std::unique_ptr<value_filter_impl> impl_;
};

/// True when a document's first key is a query operator ({$gt: 1}) rather than a field.
bool is_operator_document(bson::document_view d);
/// True when a regex element matches a string.
bool regex_matches(const bson::element& regex, std::string_view text);

// ---------------------------------------------------------------- sorting

class sorter {
public:
    /// spec: {field: 1 | -1, ...}; throws 2 BadValue (or 15975 in pipelines) otherwise.
    static sorter compile(bson::document_view spec, bool in_pipeline = false);
    bool empty() const { return fields_.empty(); }
    /// Stable sort of documents by the spec.
    void sort(std::vector<bson::document_view>& docs) const;
    /// The positions of docs in sorted order (stable).
    std::vector<std::size_t> order(const std::vector<bson::document_view>& docs) const;

private:
    struct field {
        std::vector<std::string> path;
        bool ascending = true;
    };
    value key_of(bson::document_view doc, const field& f) const;
    std::vector<field> fields_;
};

// ---------------------------------------------------------------- expressions

struct expr_node;
/// A compiled aggregation expression.
class expression {
public:
    expression();
    ~expression();
    expression(expression&&) noexcept;
    expression& operator=(expression&&) noexcept;
    expression(const expression&) = delete;

    /// vars: the user variables in scope; $$name resolves to its value when compiled.
    static expression compile(const bson::element& spec, const variables* vars = nullptr);
    /// The result, or nullopt for "missing".
    std::optional<value> eval(bson::document_view root) const;

private:
    std::unique_ptr<expr_node> node_;
};

// ---------------------------------------------------------------- projections

struct projection_impl;
/// A find() projection or a $project stage (both take inclusion, exclusion and computed fields).
class projection {
public:
    projection();
    ~projection();
    projection(projection&&) noexcept;
    projection& operator=(projection&&) noexcept;

    static projection compile(bson::document_view spec, bool in_pipeline = false, const variables* vars = nullptr);
    /// An exclusion projection of these (dotted) fields, as $unset builds.
    static projection exclusion(const std::vector<std::string>& fields);
    bson::document apply(bson::document_view doc) const;

private:
    std::unique_ptr<projection_impl> impl_;
};

// ---------------------------------------------------------------- updates

/// What an update does, compiled once and applied to each matched document.
struct update_plan_impl;
class update_plan {
public:
    update_plan();
    ~update_plan();
    update_plan(update_plan&&) noexcept;
    update_plan& operator=(update_plan&&) noexcept;

    /// Operators or a replacement. array_filters: the update's arrayFilters, one filter per
    /// $[identifier] (9 FailedToParse or 2 BadValue when malformed, unused or missing).
    static update_plan compile(bson::document_view update, bson::array_view array_filters = {},
                               const variables* vars = nullptr);
    /// A pipeline update ($addFields/$set, $project/$unset, $replaceRoot/$replaceWith).
    /// vars must outlive the plan.
    static update_plan compile_pipeline(bson::array_view pipeline, bson::array_view array_filters = {},
                                        const variables* vars = nullptr);
    bool is_replacement() const;
    /// The updated document. for_insert: applying to a new upsert document ($setOnInsert applies).
    /// array_pos: what the positional $ stands for, when the filter matched through an array.
    bson::document apply(bson::document_view doc, bool for_insert, std::optional<std::size_t> array_pos) const;

private:
    std::unique_ptr<update_plan_impl> impl_;
};

// ---------------------------------------------------------------- pipelines

/// Runs pipeline stages [first, end) over docs.
std::vector<bson::document> run_pipeline(std::vector<bson::document> docs, bson::array_view pipeline,
                                         std::size_t first, const variables* vars = nullptr);

/// The document an upsert starts from: the filter's equality conditions
/// (dotted paths expanded, $and flattened).
bson::document upsert_seed(bson::document_view filter);
/// The same document with _id moved to the front (mongod stores _id first).
bson::document id_first(bson::document_view doc);

}  // namespace trellis::sim::detail
