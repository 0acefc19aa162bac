// trellis-sim's engine: value order, the matcher, sort, projection, updates,
// findAndModify, count, distinct, the pipeline, indexes, the oplog (and its
// replay on another catalog) and catalog clones.
//
// JSON in this file is written with single quotes (turned into double quotes
// by J()) so that no raw string literal confuses moc.
#include <QtTest/QtTest>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "trellis/bson/json.hpp"

using namespace trellis;
using namespace trellis::sim;

namespace {

bson::document J(std::string_view text) {
    std::string s(text);
    std::replace(s.begin(), s.end(), '\'', '"');
    return bson::from_json(s);
}

QString canon(bson::document_view d) { return QString::fromStdString(bson::to_json(d, bson::json_mode::canonical)); }

// A list of documents as the canonical JSON of {r: [...]}.
template <class Docs>
QString list(const Docs& docs) {
    bson::builder b;
    b.open_array("r");
    for (const auto& d : docs) b.append(bson::document_view(d));
    b.close_array();
    return canon(b.extract());
}
QString list(const bson::array& a) {
    bson::builder b;
    b.append("r", a);
    return canon(b.extract());
}
QString L(std::string_view json_array) { return canon(J("{'r': " + std::string(json_array) + "}")); }

#define SAME(actual, expected) QCOMPARE(canon(actual), canon(J(expected)))
#define SAME_LIST(actual, expected) QCOMPARE(list(actual), L(expected))

bool M(std::string_view filter, std::string_view doc) { return matcher::compile(J(filter)).matches(J(doc)); }

// {a: {$regex: pattern[, $options: options]}}, built by hand: Extended JSON reads
// {$regex, $options} as its legacy regex form.
template <class Pattern>
bson::document regex_filter(const Pattern& pattern, std::optional<std::string_view> options = std::nullopt) {
    bson::builder b;
    b.open_document("a");
    b.append("$regex", pattern);
    if (options) b.append("$options", *options);
    b.close_document();
    return b.extract();
}
bool MR(const bson::document& filter, std::string_view doc) { return matcher::compile(filter).matches(J(doc)); }

template <class F>
std::optional<command_error> error_of(F&& f) {
    try {
        f();
    } catch (const command_error& e) {
        return e;
    }
    return std::nullopt;
}

#define EXPECT_ERROR(expr, expected_code)                           \
    do {                                                            \
        const auto err_ = error_of([&] { (void)(expr); });          \
        QVERIFY2(err_.has_value(), "no command_error from " #expr); \
        QCOMPARE(err_->code(), expected_code);                      \
    } while (0)

#define EXPECT_MESSAGE(expr, expected_code, expected_message)                         \
    do {                                                                              \
        const auto err_ = error_of([&] { (void)(expr); });                            \
        QVERIFY2(err_.has_value(), "no command_error from " #expr);                   \
        QCOMPARE(err_->code(), expected_code);                                        \
        QCOMPARE(QString::fromStdString(err_->message()), QString(expected_message)); \
    } while (0)

collection with_docs(std::initializer_list<std::string_view> docs) {
    collection c("test.c");
    oplog log;
    for (auto d : docs) c.insert(J(d), log);
    return c;
}

std::vector<bson::document> find(const collection& c, std::string_view filter, std::string_view sort = "{}",
                                 std::string_view projection = "{}", std::int64_t skip = 0, std::int64_t limit = 0) {
    find_options o;
    o.filter = J(filter);
    o.sort = J(sort);
    o.projection = J(projection);
    o.skip = skip;
    o.limit = limit;
    return c.find(o);
}

// The _id values of documents, as relaxed JSON: [1, 2, 3].
QString join_values(bson::document_view values_or_docs, bool ids) {
    std::string out = "[";
    for (const bson::element& e : values_or_docs) {
        if (out.size() > 1) out += ", ";
        bson::to_json(ids ? *e.get_document().find("_id") : e, out);
    }
    return QString::fromStdString(out + "]");
}
template <class Docs>
QString ids(const Docs& docs) {
    bson::builder b;
    b.open_array("r");
    for (const auto& d : docs) b.append(bson::document_view(d));
    b.close_array();
    const bson::document wrapped = b.extract();
    return join_values(wrapped["r"].get_array(), true);
}
QString I(std::string_view json_array) {
    return join_values(J("{'r': " + std::string(json_array) + "}")["r"].get_array(), false);
}

// Compares every database, collection, document (in order) and index of two
// catalogs with QCOMPARE; returns the number of documents compared.
std::size_t compare_catalogs(const catalog& a, const catalog& b) {
    std::size_t compared = 0;
    [&] {
        QCOMPARE(b.database_names(), a.database_names());
        for (const auto& db : a.database_names()) {
            QCOMPARE(b.collection_names(db), a.collection_names(db));
            QCOMPARE(b.database_size(db), a.database_size(db));
            for (const auto& cn : a.collection_names(db)) {
                const collection* ca = a.find(db, cn);
                const collection* cb = b.find(db, cn);
                QVERIFY(cb != nullptr);
                QCOMPARE(list(cb->documents()), list(ca->documents()));
                compared += ca->size();
                const auto ia = ca->indexes(), ib = cb->indexes();
                QCOMPARE(ib.size(), ia.size());
                for (std::size_t i = 0; i < ia.size(); ++i) {
                    QCOMPARE(QString::fromStdString(ib[i].name), QString::fromStdString(ia[i].name));
                    QCOMPARE(canon(ib[i].key), canon(ia[i].key));
                    QCOMPARE(ib[i].unique, ia[i].unique);
                }
            }
        }
    }();
    return compared;
}

std::vector<bson::document> aggregate(const collection& c, std::string_view pipeline) {
    const bson::document p = J("{'p': " + std::string(pipeline) + "}");
    return c.aggregate(p["p"].get_array());
}

// A JSON array as an owned BSON array.
bson::array A(std::string_view json_array) {
    const bson::document d = J("{'a': " + std::string(json_array) + "}");
    return bson::array(bson::document(d["a"].get_array()));
}

std::vector<bson::document> aggregate_let(const collection& c, std::string_view pipeline, std::string_view let) {
    return c.aggregate(A(pipeline), J(let));
}

int cmp(std::string_view a, std::string_view b) {
    const bson::document x = J("{'v': " + std::string(a) + "}");
    const bson::document y = J("{'v': " + std::string(b) + "}");
    const int c = compare_values(x["v"], y["v"]);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace

class SimEngineTest : public QObject {
    Q_OBJECT

private slots:
    // ------------------------------------------------------------ values

    void compare_values_follows_the_cross_type_order() {
        const char* ascending[] = {
            "{'$minKey': 1}",
            "{'$undefined': true}",
            "null",
            "-5",
            "'abc'",
            "{'a': 1}",
            "[1]",
            "{'$binary': {'base64': 'AA==', 'subType': '00'}}",
            "{'$oid': '000000000000000000000001'}",
            "false",
            "{'$date': {'$numberLong': '0'}}",
            "{'$timestamp': {'t': 1, 'i': 1}}",
            "{'$regularExpression': {'pattern': 'a', 'options': ''}}",
            "{'$maxKey': 1}",
        };
        const int n = static_cast<int>(std::size(ascending));
        for (int i = 0; i < n; ++i) {
            QCOMPARE(cmp(ascending[i], ascending[i]), 0);
            for (int j = i + 1; j < n; ++j) {
                QVERIFY2(cmp(ascending[i], ascending[j]) < 0, ascending[j]);
                QVERIFY2(cmp(ascending[j], ascending[i]) > 0, ascending[i]);
            }
        }
    }

    void compare_values_orders_numbers_by_value_across_types() {
        QCOMPARE(cmp("1", "{'$numberLong': '1'}"), 0);
        QCOMPARE(cmp("1", "1.0"), 0);
        QCOMPARE(cmp("1", "{'$numberDecimal': '1.000'}"), 0);
        QCOMPARE(cmp("{'$numberDecimal': '0.5'}", "0.5"), 0);
        QCOMPARE(cmp("2", "1.5"), 1);
        QCOMPARE(cmp("{'$numberLong': '-3'}", "-2.5"), -1);
        QCOMPARE(cmp("{'$numberDecimal': '2.5'}", "{'$numberLong': '3'}"), -1);
        QCOMPARE(cmp("{'$numberDecimal': '1E+3'}", "999"), 1);
        QCOMPARE(cmp("{'$numberDecimal': '-1E+3'}", "{'$numberDecimal': '-999.99'}"), -1);
        // 2^53 + 1 is not a double: the int64 is larger than the double 2^53.
        QCOMPARE(cmp("{'$numberLong': '9007199254740993'}", "9007199254740992.0"), 1);
        QCOMPARE(cmp("{'$numberLong': '9223372036854775807'}", "9.3e18"), -1);
        // The double 0.1 is slightly above one tenth.
        QCOMPARE(cmp("{'$numberDecimal': '0.1'}", "0.1"), -1);
        // NaN sorts below every number and equals NaN of any type.
        QCOMPARE(cmp("{'$numberDouble': 'NaN'}", "{'$numberDouble': '-Infinity'}"), -1);
        QCOMPARE(cmp("{'$numberDouble': 'NaN'}", "{'$numberDecimal': 'NaN'}"), 0);
        QCOMPARE(cmp("{'$numberDecimal': 'Infinity'}", "1e308"), 1);
        QCOMPARE(cmp("-0.0", "0"), 0);
        // Strings byte-wise, documents field by field (names count), arrays element-wise.
        QCOMPARE(cmp("'a'", "'b'"), -1);
        QCOMPARE(cmp("'ab'", "'a'"), 1);
        QCOMPARE(cmp("'Z'", "'a'"), -1);
        QCOMPARE(cmp("{'a': 1}", "{'b': 0}"), -1);
        QCOMPARE(cmp("{'a': 1}", "{'a': 1, 'b': 1}"), -1);
        QCOMPARE(cmp("{'a': 2}", "{'a': 'x'}"), -1);
        QCOMPARE(cmp("[1, 2]", "[1, 3]"), -1);
        QCOMPARE(cmp("[1, 2]", "[1]"), 1);
        QCOMPARE(cmp("true", "false"), 1);
        QCOMPARE(cmp("{'$date': {'$numberLong': '-1'}}", "{'$date': {'$numberLong': '1'}}"), -1);
    }

    void get_path_follows_dots_and_array_indexes() {
        const bson::document d = J("{'a': {'b': {'c': 5}}, 'arr': [{'x': 1}, {'x': 2}], 's': 'str'}");
        QCOMPARE(get_path(d, "a.b.c")->get_int32(), 5);
        QCOMPARE(get_path(d, "arr.1.x")->get_int32(), 2);
        QCOMPARE(get_path(d, "a.b")->type(), bson::type::document);
        QVERIFY(!get_path(d, "a.x"));
        QVERIFY(!get_path(d, "arr.x"));  // no fan-out
        QVERIFY(!get_path(d, "arr.5.x"));
        QVERIFY(!get_path(d, "s.length"));
    }

    // ------------------------------------------------------------ matcher

    void matcher_equality_and_arrays() {
        QVERIFY(M("{}", "{'a': 1}"));
        QVERIFY(M("{'a': 5}", "{'a': 5}"));
        QVERIFY(M("{'a': 5}", "{'a': 5.0}"));
        QVERIFY(M("{'a': 5}", "{'a': {'$numberLong': '5'}}"));
        QVERIFY(!M("{'a': 5}", "{'a': '5'}"));
        QVERIFY(M("{'a': 5}", "{'a': [1, 5]}"));
        QVERIFY(!M("{'a': 5}", "{'a': [1, 6]}"));
        QVERIFY(M("{'a': [1, 5]}", "{'a': [1, 5]}"));
        QVERIFY(!M("{'a': [1, 5]}", "{'a': [5, 1]}"));
        QVERIFY(M("{'a': [1, 5]}", "{'a': [[1, 5], 2]}"));
        QVERIFY(M("{'a.b': 1}", "{'a': {'b': 1}}"));
        QVERIFY(M("{'a.b': 1}", "{'a': [{'b': 2}, {'b': 1}]}"));
        QVERIFY(M("{'a.b': 1}", "{'a': [{'b': [0, 1]}]}"));
        QVERIFY(!M("{'a.b': 1}", "{'a': [{'c': 1}]}"));
        QVERIFY(M("{'a.1': 7}", "{'a': [6, 7]}"));
        QVERIFY(M("{'a.0.b': 3}", "{'a': [{'b': 3}]}"));
        QVERIFY(M("{'a': {'b': 1}}", "{'a': {'b': 1}}"));
        QVERIFY(!M("{'a': {'b': 1}}", "{'a': {'b': 1, 'c': 2}}"));
        QVERIFY(!M("{'a': {'b': 1, 'c': 2}}", "{'a': {'c': 2, 'b': 1}}"));
        QVERIFY(M("{'a': null}", "{'b': 1}"));
        QVERIFY(M("{'a': null}", "{'a': null}"));
        QVERIFY(!M("{'a': null}", "{'a': 0}"));
        QVERIFY(M("{'a.b': null}", "{'a': [{'b': 1}, {'c': 1}]}"));
        QVERIFY(M("{'a': 1, 'b': 2}", "{'a': 1, 'b': 2}"));
        QVERIFY(!M("{'a': 1, 'b': 2}", "{'a': 1, 'b': 3}"));
        QVERIFY(M("{'a': {'$eq': [1, 5]}}", "{'a': [1, 5]}"));
        QVERIFY(M("{'a': {'$eq': 5}}", "{'a': [1, 5]}"));
    }

    void matcher_comparisons_bracket_types() {
        QVERIFY(M("{'a': {'$gt': 1}}", "{'a': 2}"));
        QVERIFY(!M("{'a': {'$gt': 2}}", "{'a': 2}"));
        QVERIFY(M("{'a': {'$gte': 2}}", "{'a': 2.0}"));
        QVERIFY(M("{'a': {'$lt': 2}}", "{'a': 1.5}"));
        QVERIFY(M("{'a': {'$lte': 2}}", "{'a': {'$numberDecimal': '2'}}"));
        QVERIFY(!M("{'a': {'$gt': 1}}", "{'a': 'x'}"));  // strings are not numbers
        QVERIFY(!M("{'a': {'$lt': 'x'}}", "{'a': 1}"));
        QVERIFY(M("{'a': {'$gt': 'abc'}}", "{'a': 'abd'}"));
        QVERIFY(!M("{'a': {'$gt': 1}}", "{}"));
        QVERIFY(M("{'a': {'$gt': 4, '$lt': 6}}", "{'a': 5}"));
        QVERIFY(!M("{'a': {'$gt': 4, '$lt': 6}}", "{'a': 7}"));
        // Each condition may be met by a different element.
        QVERIFY(M("{'a': {'$gt': 4, '$lt': 6}}", "{'a': [3, 7]}"));
        QVERIFY(M("{'a': {'$gt': 6}}", "{'a': [1, 7]}"));
        QVERIFY(M("{'a': {'$gte': null}}", "{}"));
        QVERIFY(M("{'a': {'$lte': null}}", "{'a': null}"));
        QVERIFY(!M("{'a': {'$gt': null}}", "{'a': 1}"));
        QVERIFY(M("{'a': {'$gt': {'$minKey': 1}}}", "{'a': 'anything'}"));
        QVERIFY(M("{'a': {'$lt': {'$maxKey': 1}}}", "{'a': {'x': 1}}"));
        QVERIFY(M("{'a': {'$gt': {'$date': {'$numberLong': '5'}}}}", "{'a': {'$date': {'$numberLong': '6'}}}"));
        QVERIFY(!M("{'a': {'$gt': {'$date': {'$numberLong': '5'}}}}", "{'a': 6}"));
        QVERIFY(M("{'a': {'$gt': [1, 1]}}", "{'a': [1, 2]}"));
    }

    void matcher_in_nin_ne_exists() {
        QVERIFY(M("{'a': {'$in': [1, 2]}}", "{'a': 2}"));
        QVERIFY(M("{'a': {'$in': [1, 2]}}", "{'a': [5, 2]}"));
        QVERIFY(!M("{'a': {'$in': [1, 2]}}", "{'a': 3}"));
        QVERIFY(!M("{'a': {'$in': []}}", "{'a': 3}"));
        QVERIFY(M("{'a': {'$in': [null]}}", "{}"));
        QVERIFY(M("{'a': {'$in': [{'$regularExpression': {'pattern': '^x', 'options': ''}}, 5]}}", "{'a': 'xyz'}"));
        QVERIFY(!M("{'a': {'$in': [{'$regularExpression': {'pattern': '^x', 'options': ''}}]}}", "{'a': 'yx'}"));
        QVERIFY(M("{'a': {'$nin': [1, 2]}}", "{'a': 3}"));
        QVERIFY(M("{'a': {'$nin': [1, 2]}}", "{}"));
        QVERIFY(!M("{'a': {'$nin': [1, 2]}}", "{'a': [3, 1]}"));
        QVERIFY(M("{'a': {'$ne': 1}}", "{}"));
        QVERIFY(M("{'a': {'$ne': 1}}", "{'a': 2}"));
        QVERIFY(!M("{'a': {'$ne': 1}}", "{'a': 1}"));
        QVERIFY(!M("{'a': {'$ne': 1}}", "{'a': [2, 1]}"));
        QVERIFY(!M("{'a': {'$ne': null}}", "{}"));
        QVERIFY(M("{'a': {'$exists': true}}", "{'a': null}"));
        QVERIFY(!M("{'a': {'$exists': true}}", "{'b': 1}"));
        QVERIFY(M("{'a': {'$exists': false}}", "{'b': 1}"));
        QVERIFY(!M("{'a': {'$exists': false}}", "{'a': 1}"));
        QVERIFY(M("{'a.b': {'$exists': true}}", "{'a': [{'c': 1}, {'b': 2}]}"));
        QVERIFY(M("{'a.b': {'$exists': false}}", "{'a': [{'c': 1}]}"));
        QVERIFY(M("{'a': {'$exists': 0}}", "{}"));
    }

    void matcher_logical_operators() {
        QVERIFY(M("{'$and': [{'a': 1}, {'b': 2}]}", "{'a': 1, 'b': 2}"));
        QVERIFY(!M("{'$and': [{'a': 1}, {'b': 2}]}", "{'a': 1, 'b': 3}"));
        QVERIFY(M("{'$or': [{'a': 1}, {'b': 2}]}", "{'a': 0, 'b': 2}"));
        QVERIFY(!M("{'$or': [{'a': 1}, {'b': 2}]}", "{'a': 0, 'b': 0}"));
        QVERIFY(M("{'$nor': [{'a': 1}, {'b': 2}]}", "{'a': 0, 'b': 0}"));
        QVERIFY(!M("{'$nor': [{'a': 1}, {'b': 2}]}", "{'a': 1}"));
        QVERIFY(M("{'a': {'$not': {'$gt': 5}}}", "{'a': 3}"));
        QVERIFY(M("{'a': {'$not': {'$gt': 5}}}", "{}"));
        QVERIFY(!M("{'a': {'$not': {'$gt': 5}}}", "{'a': 6}"));
        QVERIFY(M("{'a': {'$not': {'$regularExpression': {'pattern': '^a', 'options': ''}}}}", "{'a': 'ba'}"));
        QVERIFY(!M("{'a': {'$not': {'$regularExpression': {'pattern': '^a', 'options': ''}}}}", "{'a': 'ab'}"));
        QVERIFY(M("{'$or': [{'a': {'$in': [1]}}, {'$and': [{'b': 1}, {'c': {'$exists': false}}]}]}", "{'b': 1}"));
    }

    void matcher_regex_and_options() {
        QVERIFY(M("{'a': {'$regularExpression': {'pattern': 'b+c', 'options': ''}}}", "{'a': 'abbc'}"));
        QVERIFY(MR(regex_filter("^AB", "i"), "{'a': 'abc'}"));
        QVERIFY(!MR(regex_filter("^AB"), "{'a': 'abc'}"));
        QVERIFY(MR(regex_filter(bson::regex{"^ab", "i"}), "{'a': 'ABC'}"));
        QVERIFY(MR(regex_filter("^x"), "{'a': ['y', 'xz']}"));
        QVERIFY(!MR(regex_filter("^1"), "{'a': 12}"));
        // ^ and $ are per line only with m; . crosses newlines only with s.
        QVERIFY(!MR(regex_filter("^b"), "{'a': 'a\\nb'}"));
        QVERIFY(MR(regex_filter("^b", "m"), "{'a': 'a\\nb'}"));
        QVERIFY(!MR(regex_filter("a.b"), "{'a': 'a\\nb'}"));
        QVERIFY(MR(regex_filter("a.b", "s"), "{'a': 'a\\nb'}"));
        QVERIFY(MR(regex_filter("a b # comment", "x"), "{'a': 'ab'}"));
        // A stored regex matches by equality too.
        QVERIFY(MR(regex_filter("q"), "{'a': {'$regularExpression': {'pattern': 'q', 'options': ''}}}"));
    }

    void matcher_elem_match_size_type_all_mod() {
        QVERIFY(M("{'a': {'$elemMatch': {'$gt': 1, '$lt': 3}}}", "{'a': [0, 2, 4]}"));
        QVERIFY(!M("{'a': {'$elemMatch': {'$gt': 1, '$lt': 3}}}", "{'a': [0, 4]}"));
        QVERIFY(!M("{'a': {'$elemMatch': {'$gt': 1}}}", "{'a': 5}"));
        QVERIFY(M("{'a': {'$elemMatch': {'x': 1, 'y': 2}}}", "{'a': [{'x': 1, 'y': 1}, {'x': 1, 'y': 2}]}"));
        QVERIFY(!M("{'a': {'$elemMatch': {'x': 1, 'y': 2}}}", "{'a': [{'x': 1, 'y': 1}, {'x': 2, 'y': 2}]}"));
        QVERIFY(M("{'a': {'$elemMatch': {'$or': [{'x': 5}, {'y': 5}]}}}", "{'a': [{'y': 5}]}"));
        QVERIFY(M("{'a': {'$size': 2}}", "{'a': [1, [2, 3]]}"));
        QVERIFY(!M("{'a': {'$size': 3}}", "{'a': [1, [2, 3]]}"));
        QVERIFY(!M("{'a': {'$size': 0}}", "{}"));
        QVERIFY(M("{'a': {'$size': 0}}", "{'a': []}"));
        QVERIFY(M("{'a': {'$type': 'string'}}", "{'a': 'x'}"));
        QVERIFY(M("{'a': {'$type': 2}}", "{'a': ['x']}"));
        QVERIFY(M("{'a': {'$type': 'array'}}", "{'a': []}"));
        QVERIFY(!M("{'a': {'$type': 'array'}}", "{'a': 1}"));
        QVERIFY(M("{'a': {'$type': 'number'}}", "{'a': 1.5}"));
        QVERIFY(M("{'a': {'$type': 'long'}}", "{'a': {'$numberLong': '1'}}"));
        QVERIFY(!M("{'a': {'$type': 'int'}}", "{'a': {'$numberLong': '1'}}"));
        QVERIFY(M("{'a': {'$type': ['bool', 'null']}}", "{'a': null}"));
        QVERIFY(!M("{'a': {'$type': 'null'}}", "{}"));
        QVERIFY(M("{'a': {'$type': 'objectId'}}", "{'a': {'$oid': '000000000000000000000001'}}"));
        QVERIFY(M("{'a': {'$all': [1, 2]}}", "{'a': [2, 3, 1]}"));
        QVERIFY(!M("{'a': {'$all': [1, 2]}}", "{'a': [2, 3]}"));
        QVERIFY(!M("{'a': {'$all': []}}", "{'a': [2, 3]}"));
        QVERIFY(M("{'a': {'$mod': [4, 1]}}", "{'a': 9}"));
        QVERIFY(!M("{'a': {'$mod': [4, 1]}}", "{'a': 10}"));
    }

    void matcher_expr_compares_fields() {
        QVERIFY(M("{'$expr': {'$gt': ['$a', '$b']}}", "{'a': 3, 'b': 2}"));
        QVERIFY(!M("{'$expr': {'$gt': ['$a', '$b']}}", "{'a': 1, 'b': 2}"));
        QVERIFY(M("{'$expr': {'$eq': [{'$add': ['$a', 1]}, 4]}}", "{'a': 3}"));
    }

    void matcher_errors() {
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$foo': 1}}")), 2, "unknown operator: $foo");
        EXPECT_MESSAGE(matcher::compile(J("{'$foo': 1}")), 2, "unknown top level operator: $foo");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$in': 5}}")), 2, "$in needs an array");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$nin': 5}}")), 2, "$nin needs an array");
        EXPECT_MESSAGE(matcher::compile(J("{'$and': []}")), 2, "$and must be a nonempty array");
        EXPECT_MESSAGE(matcher::compile(J("{'$or': {}}")), 2, "$or must be a nonempty array");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$not': 5}}")), 2, "$not needs a regex or a document");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$options': 'i'}}")), 2, "$options needs a $regex");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$size': 'x'}}")), 2, "$size needs a number");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$type': 'nope'}}")), 2, "Unknown type name alias: nope");
        EXPECT_MESSAGE(matcher::compile(J("{'a': {'$elemMatch': 1}}")), 2, "$elemMatch needs an Object");
        EXPECT_ERROR(matcher::compile(regex_filter("(unclosed")), 51091);
        EXPECT_ERROR(matcher::compile(regex_filter("a", "z")), 51108);
        const auto e = error_of([] { matcher::compile(J("{'a': {'$foo': 1}}")); });
        QCOMPARE(QString::fromStdString(e->code_name()), QString("BadValue"));
    }

    // ------------------------------------------------------------ find: sort, projection, skip, limit

    void sort_by_several_keys_dotted_and_descending() {
        const collection c = with_docs({"{'_id': 1, 'a': 2, 'b': {'c': 1}}", "{'_id': 2, 'a': 1, 'b': {'c': 2}}",
                                        "{'_id': 3, 'a': 2, 'b': {'c': 3}}", "{'_id': 4, 'a': 1, 'b': {'c': 1}}"});
        QCOMPARE(ids(find(c, "{}", "{'a': 1, 'b.c': -1}")), I("[2, 4, 3, 1]"));
        QCOMPARE(ids(find(c, "{}", "{'a': -1, 'b.c': 1}")), I("[1, 3, 4, 2]"));
        QCOMPARE(ids(find(c, "{}", "{'b.c': 1}")), I("[1, 4, 2, 3]"));  // ties keep insertion order
        QCOMPARE(ids(find(c, "{}")), I("[1, 2, 3, 4]"));
        QCOMPARE(ids(find(c, "{}", "{'$natural': -1}")), I("[4, 3, 2, 1]"));
        QCOMPARE(ids(find(c, "{}", "{'a': 1, '$natural': -1}")), I("[4, 2, 3, 1]"));
        EXPECT_ERROR(find(c, "{}", "{'a': 0}"), 2);
        EXPECT_ERROR(find(c, "{}", "{'a': 'up'}"), 2);
    }

    void sort_across_types_and_arrays() {
        const collection c = with_docs({"{'_id': 1, 'a': 'str'}", "{'_id': 2, 'a': 5}", "{'_id': 3}",
                                        "{'_id': 4, 'a': {'x': 1}}", "{'_id': 5, 'a': null}", "{'_id': 6, 'a': 1.5}",
                                        "{'_id': 7, 'a': true}", "{'_id': 8, 'a': {'$numberLong': '3'}}"});
        // null and missing together, then numbers by value, strings, objects, booleans.
        QCOMPARE(ids(find(c, "{}", "{'a': 1}")), I("[3, 5, 6, 8, 2, 1, 4, 7]"));
        QCOMPARE(ids(find(c, "{}", "{'a': -1}")), I("[7, 4, 1, 2, 8, 6, 3, 5]"));

        // Arrays sort by their smallest element ascending and their largest descending.
        const collection arr = with_docs({"{'_id': 1, 'a': [5, 1]}", "{'_id': 2, 'a': [3]}", "{'_id': 3, 'a': 2}",
                                          "{'_id': 4, 'a': [0, 9]}", "{'_id': 5, 'a': []}"});
        QCOMPARE(ids(find(arr, "{}", "{'a': 1}")), I("[5, 4, 1, 3, 2]"));
        QCOMPARE(ids(find(arr, "{}", "{'a': -1}")), I("[4, 1, 2, 3, 5]"));
    }

    void projection_inclusion_exclusion_and_id() {
        const collection c = with_docs({"{'_id': 1, 'a': 1, 'b': {'c': 2, 'd': 3}, 'e': [{'c': 4, 'f': 5}, 6]}"});
        SAME_LIST(find(c, "{}", "{}", "{'a': 1}"), "[{'_id': 1, 'a': 1}]");
        SAME_LIST(find(c, "{}", "{}", "{'a': true, '_id': 0}"), "[{'a': 1}]");
        SAME_LIST(find(c, "{}", "{}", "{'a': 0}"), "[{'_id': 1, 'b': {'c': 2, 'd': 3}, 'e': [{'c': 4, 'f': 5}, 6]}]");
        SAME_LIST(find(c, "{}", "{}", "{'_id': 0}"), "[{'a': 1, 'b': {'c': 2, 'd': 3}, 'e': [{'c': 4, 'f': 5}, 6]}]");
        SAME_LIST(find(c, "{}", "{}", "{'_id': 1}"), "[{'_id': 1}]");
        SAME_LIST(find(c, "{}", "{}", "{'b.c': 1}"), "[{'_id': 1, 'b': {'c': 2}}]");
        SAME_LIST(find(c, "{}", "{}", "{'e.c': 1, '_id': 0}"), "[{'e': [{'c': 4}]}]");
        SAME_LIST(find(c, "{}", "{}", "{'b.c': 0, 'e.f': 0}"),
                  "[{'_id': 1, 'a': 1, 'b': {'d': 3}, 'e': [{'c': 4}, 6]}]");
        SAME_LIST(find(c, "{}", "{}", "{'b': {'d': 1}}"), "[{'_id': 1, 'b': {'d': 3}}]");
        SAME_LIST(find(c, "{}", "{}", "{'missing': 1}"), "[{'_id': 1}]");
        SAME_LIST(find(c, "{}", "{}", "{'x': '$a', 'a': 1}"), "[{'_id': 1, 'a': 1, 'x': 1}]");
        SAME_LIST(find(c, "{}", "{}", "{'e': {'$slice': 1}, 'a': 1}"), "[{'_id': 1, 'a': 1, 'e': [{'c': 4, 'f': 5}]}]");
        EXPECT_MESSAGE(find(c, "{}", "{}", "{'a': 1, 'b': 0}"), 2,
                       "Cannot do exclusion on field b in inclusion projection");
        EXPECT_MESSAGE(find(c, "{}", "{}", "{'a': 0, 'b': 1}"), 2,
                       "Cannot do inclusion on field b in exclusion projection");
    }

    void find_skip_and_limit() {
        const collection c = with_docs({"{'_id': 1}", "{'_id': 2}", "{'_id': 3}", "{'_id': 4}", "{'_id': 5}"});
        QCOMPARE(ids(find(c, "{}", "{}", "{}", 1, 2)), I("[2, 3]"));
        QCOMPARE(ids(find(c, "{}", "{'_id': -1}", "{}", 1, 0)), I("[4, 3, 2, 1]"));
        QCOMPARE(ids(find(c, "{}", "{}", "{}", 0, -2)), I("[1, 2]"));
        QCOMPARE(ids(find(c, "{}", "{}", "{}", 10, 0)), I("[]"));
        QCOMPARE(ids(find(c, "{'_id': {'$gt': 2}}", "{}", "{}", 0, 1)), I("[3]"));
    }

    void lookups_by_id_agree_with_the_matcher() {
        collection c = with_docs(
            {"{'_id': 1, 'a': 5}", "{'_id': 'k', 'a': 6}", "{'_id': 3, 'a': 7}", "{'_id': {'x': 1}, 'a': 8}"});
        QCOMPARE(ids(find(c, "{'_id': 3}")), I("[3]"));
        QCOMPARE(ids(find(c, "{'_id': 3.0}")), I("[3]"));
        QCOMPARE(ids(find(c, "{'_id': {'$numberLong': '1'}}")), I("[1]"));
        QCOMPARE(ids(find(c, "{'_id': {'$eq': 'k'}}")), I("['k']"));
        QCOMPARE(ids(find(c, "{'_id': {'$in': [3, 'k', 1, 99, 3]}}")), I("[1, 'k', 3]"));  // storage order, once each
        QCOMPARE(ids(find(c, "{'_id': {'x': 1}}")), I("[{'x': 1}]"));
        QCOMPARE(ids(find(c, "{'_id': 1, 'a': 6}")), I("[]"));
        QCOMPARE(ids(find(c, "{'_id': {'$gte': 3}}")), I("[3]"));
        QCOMPARE(ids(find(c, "{'_id': {'$in': [{'$regularExpression': {'pattern': '^k', 'options': ''}}]}}")),
                 I("['k']"));
        QCOMPARE(ids(find(c, "{'_id': null}")), I("[]"));
        QCOMPARE(c.count(J("{'_id': {'$in': [1, 3]}}"), 0, 0), std::int64_t(2));
        oplog log;
        QCOMPARE(c.update(J("{'_id': 3.0}"), J("{'$inc': {'a': 1}}"), false, false, log).modified, std::int64_t(1));
        QCOMPARE(c.remove(J("{'_id': {'$in': ['k', 1]}}"), false, log), std::int64_t(2));
        SAME_LIST(c.documents(), "[{'_id': 3, 'a': 8}, {'_id': {'x': 1}, 'a': 8}]");
    }

    // ------------------------------------------------------------ inserts and unique indexes

    void insert_adds_an_object_id_first() {
        collection c("test.c");
        oplog log;
        const bson::document& stored = c.insert(J("{'a': 1}"), log);
        QCOMPARE(stored.begin()->key(), std::string_view("_id"));
        QCOMPARE(stored.begin()->type(), bson::type::oid);
        QCOMPARE(stored["a"].get_int32(), 1);
        // An _id given anywhere is moved to the front, as mongod stores it.
        const bson::document& moved = c.insert(J("{'x': 1, '_id': 'k'}"), log);
        SAME(moved, "{'_id': 'k', 'x': 1}");
        QCOMPARE(c.size(), std::size_t(2));
        // Field names starting with $ are accepted (as by mongod 5.0+).
        c.insert(J("{'_id': 3, '$weird': 1}"), log);
        QCOMPARE(c.size(), std::size_t(3));
        EXPECT_MESSAGE(c.insert(J("{'_id': [1, 2]}"), log), 2, "can't use an array for _id");
        QCOMPARE(c.size(), std::size_t(3));
        QVERIFY(c.data_size() > 0);
    }

    void duplicate_key_errors_match_mongod() {
        collection c("test.c");
        oplog log;
        c.insert(J("{'_id': 1}"), log);
        auto e = error_of([&] { c.insert(J("{'_id': 1.0}"), log); });
        QVERIFY(e);
        QCOMPARE(e->code(), 11000);
        QCOMPARE(QString::fromStdString(e->code_name()), QString("DuplicateKey"));
        QCOMPARE(QString::fromStdString(e->message()),
                 QString("E11000 duplicate key error collection: test.c index: _id_ dup key: { _id: 1.0 }"));
        SAME(e->extra(), "{'keyPattern': {'_id': 1}, 'keyValue': {'_id': 1.0}}");

        c.insert(J("{'_id': 'x'}"), log);
        EXPECT_MESSAGE(c.insert(J("{'_id': 'x'}"), log), 11000,
                       "E11000 duplicate key error collection: test.c index: _id_ dup key: { _id: \"x\" }");
        c.insert(J("{'_id': {'$oid': '5f0000000000000000000001'}}"), log);
        EXPECT_MESSAGE(c.insert(J("{'_id': {'$oid': '5f0000000000000000000001'}}"), log), 11000,
                       "E11000 duplicate key error collection: test.c index: _id_ dup key: { _id: "
                       "ObjectId('5f0000000000000000000001') }");

        // Compound keys print every field, and keyPattern/keyValue name them.
        collection c2("test.c");
        c2.create_index({"", J("{'a': 1, 'b': -1}"), true}, log);
        c2.insert(J("{'_id': 10, 'a': 1, 'b': 'q'}"), log);
        e = error_of([&] { c2.insert(J("{'_id': 11, 'a': 1, 'b': 'q'}"), log); });
        QVERIFY(e);
        QCOMPARE(QString::fromStdString(e->message()),
                 QString("E11000 duplicate key error collection: test.c index: a_1_b_-1 dup key: { a: 1, b: \"q\" }"));
        SAME(e->extra(), "{'keyPattern': {'a': 1, 'b': -1}, 'keyValue': {'a': 1, 'b': 'q'}}");
        QCOMPARE(c.size(), std::size_t(3));
        QCOMPARE(c2.size(), std::size_t(1));
    }

    void unique_indexes_treat_missing_as_null() {
        collection c("test.c");
        oplog log;
        c.create_index({"a_1", J("{'a': 1}"), true}, log);
        c.insert(J("{'_id': 1}"), log);
        EXPECT_MESSAGE(c.insert(J("{'_id': 2}"), log), 11000,
                       "E11000 duplicate key error collection: test.c index: a_1 dup key: { a: null }");
        EXPECT_ERROR(c.insert(J("{'_id': 3, 'a': null}"), log), 11000);
        c.insert(J("{'_id': 4, 'a': [1, 2]}"), log);
        EXPECT_ERROR(c.insert(J("{'_id': 5, 'a': 2}"), log), 11000);  // multikey: each element is a key
        c.insert(J("{'_id': 6, 'a': [3, 3]}"), log);                  // repeats within one document are fine
        EXPECT_ERROR(c.update(J("{'_id': 6}"), J("{'$set': {'a': 1}}"), false, false, log), 11000);
        SAME_LIST(find(c, "{'_id': 6}"), "[{'_id': 6, 'a': [3, 3]}]");
        // A unique index over existing duplicates fails and is not created.
        collection d = with_docs({"{'_id': 1, 'b': 1}", "{'_id': 2, 'b': 1}"});
        EXPECT_MESSAGE(d.create_index({"b_1", J("{'b': 1}"), true}, log), 11000,
                       "E11000 duplicate key error collection: test.c index: b_1 dup key: { b: 1 }");
        QCOMPARE(d.indexes().size(), std::size_t(1));
        d.create_index({"b_1", J("{'b': 1}"), false}, log);  // not unique: fine
        QCOMPARE(d.indexes().size(), std::size_t(2));
        // Compound: only the whole key must be unique.
        collection e("test.e");
        e.create_index({"", J("{'x': 1, 'y': 1}"), true}, log);
        e.insert(J("{'_id': 1, 'x': 1, 'y': 1}"), log);
        e.insert(J("{'_id': 2, 'x': 1, 'y': 2}"), log);
        e.insert(J("{'_id': 3, 'x': 1}"), log);
        EXPECT_ERROR(e.insert(J("{'_id': 4, 'x': 1, 'y': null}"), log), 11000);
        EXPECT_ERROR(e.insert(J("{'_id': 5, 'x': 1.0, 'y': 2}"), log), 11000);
        QCOMPARE(e.size(), std::size_t(3));
        // Deleting frees the key.
        e.remove(J("{'_id': 2}"), true, log);
        e.insert(J("{'_id': 5, 'x': 1.0, 'y': 2}"), log);
        QCOMPARE(e.size(), std::size_t(3));
        // Compound indexes (unique or not) refuse documents with arrays in two of their fields.
        EXPECT_MESSAGE(e.insert(J("{'_id': 6, 'x': [1, 2], 'y': [3, 4]}"), log), 171,
                       "cannot index parallel arrays [y] [x]");
        e.insert(J("{'_id': 6, 'x': [7, 8], 'y': 3}"), log);
        EXPECT_ERROR(e.insert(J("{'_id': 7, 'x': 8, 'y': 3}"), log), 11000);
        collection p("test.p");
        p.create_index({"", J("{'m': 1, 'n': 1}"), false}, log);
        EXPECT_ERROR(p.insert(J("{'_id': 1, 'm': [1], 'n': [2]}"), log), 171);
        p.insert(J("{'_id': 1, 'm': [1], 'n': 2}"), log);
        EXPECT_ERROR(p.update(J("{}"), J("{'$set': {'n': [5]}}"), false, false, log), 171);
        QCOMPARE(p.size(), std::size_t(1));
    }

    void index_management() {
        collection c("test.c");
        oplog log;
        QCOMPARE(c.indexes().size(), std::size_t(1));
        QCOMPARE(QString::fromStdString(c.indexes()[0].name), QString("_id_"));
        SAME(c.indexes()[0].key, "{'_id': 1}");
        QVERIFY(c.indexes()[0].unique);
        c.create_index({"", J("{'a': 1, 'b': -1}"), false}, log);
        c.create_index({"", J("{'t': 'text'}"), false}, log);
        QCOMPARE(QString::fromStdString(c.indexes()[1].name), QString("a_1_b_-1"));
        QCOMPARE(QString::fromStdString(c.indexes()[2].name), QString("t_text"));
        const std::size_t logged = log.size();
        c.create_index({"a_1_b_-1", J("{'a': 1, 'b': -1}"), false}, log);  // identical: nothing happens
        QCOMPARE(log.size(), logged);
        QCOMPARE(c.indexes().size(), std::size_t(3));
        EXPECT_ERROR(c.create_index({"a_1_b_-1", J("{'a': 1}"), false}, log), 86);
        EXPECT_ERROR(c.create_index({"a_1_b_-1", J("{'a': 1, 'b': -1}"), true}, log), 85);
        EXPECT_MESSAGE(c.create_index({"other", J("{'a': 1, 'b': -1}"), false}, log), 85,
                       "Index already exists with a different name: a_1_b_-1");
        EXPECT_ERROR(c.create_index({"bad", J("{'a': 0}"), false}, log), 67);
        EXPECT_ERROR(c.create_index({"", J("{}"), false}, log), 67);
        c.create_index({"_id_", J("{'_id': 1}"), false}, log);  // the _id index exists already
        EXPECT_MESSAGE(c.drop_index("nope", log), 27, "index not found with name [nope]");
        EXPECT_ERROR(c.drop_index("_id_", log), 72);
        c.drop_index("t_text", log);
        QCOMPARE(c.indexes().size(), std::size_t(2));
        c.create_index({"z", J("{'z': 1}"), true}, log);
        c.drop_index("*", log);
        QCOMPARE(c.indexes().size(), std::size_t(1));
        QCOMPARE(QString::fromStdString(c.indexes()[0].name), QString("_id_"));
    }

    // ------------------------------------------------------------ updates

    void update_set_and_unset() {
        collection c = with_docs({"{'_id': 1, 'a': 1, 'arr': [1, 2, 3], 's': 5}"});
        oplog log;
        auto r = c.update(J("{'_id': 1}"), J("{'$set': {'b.c.d': 2, 'a': 'x', 'arr.1': 20, 'arr.5': 6}}"), false, false,
                          log);
        QCOMPARE(r.matched, std::int64_t(1));
        QCOMPARE(r.modified, std::int64_t(1));
        QVERIFY(!r.upserted_id);
        SAME_LIST(c.documents(),
                  "[{'_id': 1, 'a': 'x', 'arr': [1, 20, 3, null, null, 6], 's': 5, 'b': {'c': {'d': 2}}}]");
        c.update(J("{}"), J("{'$unset': {'a': '', 'arr.0': 1, 'nope': 1, 'b.c.d': 1}}"), false, false, log);
        SAME_LIST(c.documents(), "[{'_id': 1, 'arr': [null, 20, 3, null, null, 6], 's': 5, 'b': {'c': {}}}]");
        EXPECT_MESSAGE(c.update(J("{}"), J("{'$set': {'s.x': 1}}"), false, false, log), 28,
                       "Cannot create field 'x' in element {s: 5}");
        EXPECT_ERROR(c.update(J("{}"), J("{'$set': {'arr.x': 1}}"), false, false, log), 28);
        EXPECT_ERROR(c.update(J("{}"), J("{'$set': {'a..b': 1}}"), false, false, log), 56);
        // A failed update leaves the document alone.
        SAME_LIST(c.documents(), "[{'_id': 1, 'arr': [null, 20, 3, null, null, 6], 's': 5, 'b': {'c': {}}}]");
    }

    void update_applies_fields_in_name_order() {
        collection c = with_docs({"{'_id': 1}"});
        oplog log;
        c.update(J("{}"), J("{'$set': {'b': 1, 'a': 1}, '$inc': {'c': 1, 'B': 2}}"), false, false, log);
        SAME_LIST(c.documents(), "[{'_id': 1, 'B': 2, 'a': 1, 'b': 1, 'c': 1}]");
        c.update(J("{}"), J("{'$set': {'x.10': 1, 'x.9': 2}}"), false, false, log);
        SAME(c.documents()[0], "{'_id': 1, 'B': 2, 'a': 1, 'b': 1, 'c': 1, 'x': {'9': 2, '10': 1}}");
    }

    void update_inc_and_mul() {
        collection c =
            with_docs({"{'_id': 1, 'i': 1, 'l': {'$numberLong': '5'}, 'd': 1.5, 'big': 2147483647, 's': 'x'}"});
        oplog log;
        c.update(J("{}"), J("{'$inc': {'i': 2, 'l': 1, 'd': 1, 'big': 1, 'new': 3, 'n.m': {'$numberLong': '1'}}}"),
                 false, false, log);
        SAME(c.documents()[0],
             "{'_id': 1, 'i': 3, 'l': {'$numberLong': '6'}, 'd': 2.5, 'big': {'$numberLong': '2147483648'}, 's': 'x', "
             "'n': {'m': {'$numberLong': '1'}}, 'new': 3}");
        c.update(J("{}"), J("{'$mul': {'i': 2.0, 'l': 3, 'z': 5, 'zz': 1.5}}"), false, false, log);
        SAME(c.documents()[0],
             "{'_id': 1, 'i': 6.0, 'l': {'$numberLong': '18'}, 'd': 2.5, 'big': {'$numberLong': '2147483648'}, 's': "
             "'x', "
             "'n': {'m': {'$numberLong': '1'}}, 'new': 3, 'z': 0, 'zz': 0.0}");
        c.update(J("{}"), J("{'$inc': {'dec': {'$numberDecimal': '1.1'}}}"), false, false, log);
        c.update(J("{}"), J("{'$inc': {'dec': {'$numberDecimal': '2.25'}}}"), false, false, log);
        QCOMPARE(QString::fromStdString((*get_path(c.documents()[0], "dec")).get_decimal128().to_string()),
                 QString("3.35"));
        EXPECT_MESSAGE(
            c.update(J("{}"), J("{'$inc': {'s': 1}}"), false, false, log), 14,
            "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 's' of non-numeric type string");
        EXPECT_MESSAGE(c.update(J("{}"), J("{'$inc': {'i': 'a'}}"), false, false, log), 14,
                       "Cannot increment with non-numeric argument: {i: \"a\"}");
        EXPECT_ERROR(c.update(J("{}"), J("{'$mul': {'s': 2}}"), false, false, log), 14);
        c.update(J("{}"), J("{'$set': {'max': {'$numberLong': '9223372036854775807'}}}"), false, false, log);
        EXPECT_ERROR(c.update(J("{}"), J("{'$inc': {'max': 1}}"), false, false, log), 2);
    }

    void update_min_max_rename() {
        collection c = with_docs({"{'_id': 1, 'lo': 5, 'hi': 5, 'name': 'n', 'sub': {'x': 1}}"});
        oplog log;
        c.update(J("{}"), J("{'$min': {'lo': 3, 'hi': 3, 'm': 1}, '$max': {'hi2': 9}}"), false, false, log);
        SAME(c.documents()[0], "{'_id': 1, 'lo': 3, 'hi': 3, 'name': 'n', 'sub': {'x': 1}, 'hi2': 9, 'm': 1}");
        auto r = c.update(J("{}"), J("{'$max': {'hi': 1}}"), false, false, log);
        QCOMPARE(r.matched, std::int64_t(1));
        QCOMPARE(r.modified, std::int64_t(0));
        c.update(J("{}"), J("{'$max': {'hi': 'str'}}"), false, false, log);  // strings sort above numbers
        QCOMPARE(QString::fromStdString(std::string(get_path(c.documents()[0], "hi")->get_string())), QString("str"));
        c.update(J("{}"), J("{'$rename': {'name': 'title', 'sub.x': 'y.z', 'absent': 'q'}}"), false, false, log);
        SAME(c.documents()[0],
             "{'_id': 1, 'lo': 3, 'hi': 'str', 'sub': {}, 'hi2': 9, 'm': 1, 'title': 'n', 'y': {'z': 1}}");
        EXPECT_ERROR(c.update(J("{}"), J("{'$rename': {'a': 'a'}}"), false, false, log), 2);
        EXPECT_ERROR(c.update(J("{}"), J("{'$rename': {'a': 1}}"), false, false, log), 2);
        EXPECT_ERROR(c.update(J("{}"), J("{'$rename': {'a': 'a.b'}}"), false, false, log), 2);
    }

    void update_array_operators() {
        collection c = with_docs(
            {"{'_id': 1, 'a': [1, 2], 'n': 5, 'docs': [{'k': 1, 'v': 'a'}, {'k': 2, 'v': 'b'}, {'k': 3, 'v': 'c'}]}"});
        oplog log;
        c.update(J("{}"), J("{'$push': {'a': 3, 'new': {'x': 1}}}"), false, false, log);
        SAME(c.documents()[0],
             "{'_id': 1, 'a': [1, 2, 3], 'n': 5, 'docs': [{'k': 1, 'v': 'a'}, {'k': 2, 'v': 'b'}, "
             "{'k': 3, 'v': 'c'}], 'new': [{'x': 1}]}");
        c.update(J("{}"), J("{'$push': {'a': {'$each': [9, 0], '$position': 1}}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 1, '1': 9, '2': 0, '3': 2, '4': 3}")));
        c.update(J("{}"), J("{'$push': {'a': {'$each': [7], '$sort': -1, '$slice': 3}}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 9, '1': 7, '2': 3}")));
        c.update(J("{}"), J("{'$push': {'a': {'$each': [], '$slice': -2}}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 7, '1': 3}")));
        c.update(J("{}"), J("{'$push': {'docs': {'$each': [{'k': 0, 'v': 'z'}], '$sort': {'k': -1}}}}"), false, false,
                 log);
        QCOMPARE(canon(c.documents()[0]["docs"].get_array()),
                 canon(J("{'0': {'k': 3, 'v': 'c'}, '1': {'k': 2, 'v': 'b'}, '2': {'k': 1, 'v': 'a'}, '3': {'k': 0, "
                         "'v': 'z'}}")));
        c.update(J("{}"), J("{'$addToSet': {'a': 3, 'set': {'$each': [1, 1, 2]}}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 7, '1': 3}")));
        QCOMPARE(canon(c.documents()[0]["set"].get_array()), canon(J("{'0': 1, '1': 2}")));
        c.update(J("{}"), J("{'$addToSet': {'a': {'$each': [4, 3.0]}}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 7, '1': 3, '2': 4}")));
        c.update(J("{}"), J("{'$pop': {'a': -1, 'set': 1}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 3, '1': 4}")));
        QCOMPARE(canon(c.documents()[0]["set"].get_array()), canon(J("{'0': 1}")));
        c.update(J("{}"), J("{'$pull': {'docs': {'k': {'$gte': 2}}, 'a': 4}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["docs"].get_array()),
                 canon(J("{'0': {'k': 1, 'v': 'a'}, '1': {'k': 0, 'v': 'z'}}")));
        QCOMPARE(canon(c.documents()[0]["a"].get_array()), canon(J("{'0': 3}")));
        c.update(J("{}"), J("{'$set': {'nums': [1, 5, 6, 9, 5]}}"), false, false, log);
        c.update(J("{}"), J("{'$pull': {'nums': {'$gte': 6}}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["nums"].get_array()), canon(J("{'0': 1, '1': 5, '2': 5}")));
        c.update(J("{}"), J("{'$pullAll': {'nums': [5, 7]}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["nums"].get_array()), canon(J("{'0': 1}")));
        EXPECT_MESSAGE(c.update(J("{}"), J("{'$push': {'n': 1}}"), false, false, log), 2,
                       "The field 'n' must be an array but is of type int in document {_id: 1}");
        EXPECT_ERROR(c.update(J("{}"), J("{'$addToSet': {'n': 1}}"), false, false, log), 2);
        EXPECT_ERROR(c.update(J("{}"), J("{'$pop': {'n': 1}}"), false, false, log), 14);
        EXPECT_ERROR(c.update(J("{}"), J("{'$pop': {'a': 2}}"), false, false, log), 9);
        EXPECT_ERROR(c.update(J("{}"), J("{'$pull': {'n': 1}}"), false, false, log), 2);
        EXPECT_ERROR(c.update(J("{}"), J("{'$push': {'a': {'$each': 1}}}"), false, false, log), 2);
        EXPECT_ERROR(c.update(J("{}"), J("{'$pullAll': {'a': 1}}"), false, false, log), 2);
    }

    void update_positional_operators() {
        collection c = with_docs({"{'_id': 1, 'g': [70, 80, 90], 'd': [{'n': 'a', 'q': 1}, {'n': 'b', 'q': 2}]}"});
        oplog log;
        c.update(J("{'g': 80}"), J("{'$set': {'g.$': 85}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["g"].get_array()), canon(J("{'0': 70, '1': 85, '2': 90}")));
        c.update(J("{'d.n': 'b'}"), J("{'$inc': {'d.$.q': 10}}"), false, false, log);
        c.update(J("{'d': {'$elemMatch': {'n': 'a'}}}"), J("{'$set': {'d.$.n': 'A'}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["d"].get_array()),
                 canon(J("{'0': {'n': 'A', 'q': 1}, '1': {'n': 'b', 'q': 12}}")));
        c.update(J("{}"), J("{'$inc': {'g.$[]': 1, 'd.$[].q': 100}}"), false, false, log);
        QCOMPARE(canon(c.documents()[0]["g"].get_array()), canon(J("{'0': 71, '1': 86, '2': 91}")));
        QCOMPARE(canon(c.documents()[0]["d"].get_array()),
                 canon(J("{'0': {'n': 'A', 'q': 101}, '1': {'n': 'b', 'q': 112}}")));
        EXPECT_MESSAGE(c.update(J("{'_id': 1}"), J("{'$set': {'g.$': 1}}"), false, false, log), 2,
                       "The positional operator did not find the match needed from the query.");
        EXPECT_MESSAGE(c.update(J("{'_id': 1}"), J("{'$set': {'none.$[]': 1}}"), false, false, log), 2,
                       "The path 'none' must exist in the document in order to apply array updates.");
        EXPECT_ERROR(c.update(J("{'_id': 1}"), J("{'$set': {'g.$[].x': 1}}"), false, false, log), 28);
        EXPECT_ERROR(c.update(J("{'_id': 1}"), J("{'$set': {'g.$[x]': 1}}"), false, false, log), 2);
        EXPECT_MESSAGE(c.update(J("{'_id': 1}"), J("{'$set': {'g.2000000': 1}}"), false, false, log), 2,
                       "can't backfill more than 1500000 elements");
    }

    void update_pipelines() {
        collection c = with_docs({"{'_id': 1, 't': {'u': {'v': 1}}}", "{'_id': 2, 'x': 2, 'y': 1}"});
        oplog log;
        auto r = c.update_pipeline(J("{'_id': 1}"), A("[{'$replaceRoot': {'newRoot': '$t'}}, {'$addFields': {'foo': 1}}]"),
                                   false, false, log);
        QCOMPARE(r.matched, std::int64_t(1));
        QCOMPARE(r.modified, std::int64_t(1));
        // The new root has no _id: the old one stays, first.
        SAME_LIST(c.documents(), "[{'_id': 1, 'u': {'v': 1}, 'foo': 1}, {'_id': 2, 'x': 2, 'y': 1}]");
        r = c.update_pipeline(J("{}"), A("[{'$project': {'x': 1}}, {'$set': {'foo': 1}}]"), false, true, log);
        QCOMPARE(r.matched, std::int64_t(2));
        QCOMPARE(r.modified, std::int64_t(2));
        SAME_LIST(c.documents(), "[{'_id': 1, 'foo': 1}, {'_id': 2, 'x': 2, 'foo': 1}]");
        // The same document again is no modification.
        r = c.update_pipeline(J("{}"), A("[{'$set': {'foo': 1}}]"), false, true, log);
        QCOMPARE(r.modified, std::int64_t(0));
        // A stage that cannot compile fails before any document changes.
        EXPECT_ERROR(c.update_pipeline(J("{}"), A("[{'$unset': 'foo'}, {'$replaceWith': {'$nosuch': []}}]"), false,
                                       true, log),
                     168);
        SAME_LIST(c.documents(), "[{'_id': 1, 'foo': 1}, {'_id': 2, 'x': 2, 'foo': 1}]");
    }

    void update_pipeline_upserts_and_errors() {
        collection c = with_docs({"{'_id': 1, 'a': 1}"});
        oplog log;
        auto r = c.update_pipeline(J("{'_id': 5, 'k': 'x'}"), A("[{'$set': {'y': {'$concat': ['$k', '!']}}}]"), true,
                                   false, log);
        SAME(*r.upserted_id, "{'_id': 5}");
        SAME(c.documents()[1], "{'_id': 5, 'k': 'x', 'y': 'x!'}");
        EXPECT_MESSAGE(c.update_pipeline(J("{}"), A("[{'$match': {}}]"), false, false, log), 72,
                       "$match is not allowed to be used within an update");
        EXPECT_MESSAGE(c.update_pipeline(J("{}"), A("[{'$bogus': {}}]"), false, false, log), 40324,
                       "Unrecognized pipeline stage name: '$bogus'");
        EXPECT_MESSAGE(c.update_pipeline(J("{'_id': 1}"), A("[{'$replaceWith': {'_id': 9}}]"), false, false, log), 66,
                       "Performing an update on the path '_id' would modify the immutable field '_id'");
        EXPECT_MESSAGE(c.update_pipeline(J("{}"), A("[{'$set': {'a': 2}}]"), false, false, log,
                                         write_extras{A("[{'i': 1}]"), {}}),
                       9, "arrayFilters may not be specified for pipeline-syle updates");
        EXPECT_ERROR(c.update_pipeline(J("{}"), A("[{'$replaceWith': 1}]"), false, false, log), 40228);
        SAME(c.documents()[0], "{'_id': 1, 'a': 1}");
        // findAndModify with a pipeline.
        find_and_modify_options o;
        o.query = J("{'_id': 1}");
        o.update_pipeline = A("[{'$set': {'b': {'$add': ['$a', 10]}}}]");
        o.return_new = true;
        auto f = c.find_and_modify(o, log);
        SAME(*f.value, "{'_id': 1, 'a': 1, 'b': 11}");
        o.query = J("{'_id': 7}");
        o.upsert = true;
        f = c.find_and_modify(o, log);
        SAME(*f.value, "{'_id': 7, 'b': null}");
        find_and_modify_options both;
        both.remove = true;
        both.update_pipeline = A("[]");
        EXPECT_ERROR(c.find_and_modify(both, log), 9);
    }

    void set_field_and_get_field() {
        collection c = with_docs({"{'_id': 1, 'foo': {}}"});
        oplog log;
        c.update_pipeline(
            J("{'_id': 1}"),
            A("[{'$replaceWith': {'$setField': {'field': {'$literal': '$a'}, 'value': 1, 'input': '$$ROOT'}}}]"), false,
            false, log);
        c.update_pipeline(
            J("{'_id': 1}"),
            A("[{'$set': {'foo': {'$setField': {'field': {'$literal': 'a.b'}, 'value': 2, 'input': '$foo'}}}}]"),
            false, false, log);
        SAME(c.documents()[0], "{'_id': 1, 'foo': {'a.b': 2}, '$a': 1}");
        SAME_LIST(aggregate(c, "[{'$project': {'_id': 0, 'x': {'$getField': {'$literal': '$a'}}, "
                               "'y': {'$getField': {'field': 'a.b', 'input': '$foo'}}, 'z': {'$getField': 'nope'}}}]"),
                  "[{'x': 1, 'y': 2}]");
        // Replacing a field keeps its place; $$REMOVE drops it; null input gives null.
        SAME_LIST(aggregate(c, "[{'$project': {'_id': 0, "
                               "'r': {'$setField': {'field': '_id', 'value': 'first', 'input': '$$ROOT'}}, "
                               "'d': {'$setField': {'field': 'foo', 'value': '$$REMOVE', 'input': '$$ROOT'}}, "
                               "'n': {'$setField': {'field': 'q', 'value': 1, 'input': null}}}}]"),
                  "[{'r': {'_id': 'first', 'foo': {'a.b': 2}, '$a': 1}, 'd': {'_id': 1, '$a': 1}, 'n': null}]");
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$setField': {'field': '$foo', 'value': 1, 'input': {}}}}}]"),
                     4161106);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$setField': {'field': 'a', 'input': {}}}}}]"), 4161104);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$setField': {'field': 'a', 'value': 1, 'input': 3}}}}]"),
                     4161105);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$getField': {'field': 'a', 'bad': 1}}}}]"), 3041701);
    }

    void array_filters() {
        collection c = with_docs({"{'_id': 1, 'y': [{'b': 3}, {'b': 1}]}", "{'_id': 2, 'y': [{'b': 0}, {'b': 1}]}",
                                  "{'_id': 3, 'y': [{'b': 5, 'c': [{'d': 2}, {'d': 1}]}]}"});
        oplog log;
        const bson::array none = A("[{'i.b': 4}]"), one = A("[{'i.b': 1}]");
        auto r = c.update(J("{}"), J("{'$set': {'y.$[i].b': 2}}"), false, true, log, write_extras{none, {}});
        QCOMPARE(r.matched, std::int64_t(3));
        QCOMPARE(r.modified, std::int64_t(0));
        r = c.update(J("{}"), J("{'$set': {'y.$[i].b': 2}}"), false, true, log, write_extras{one, {}});
        QCOMPARE(r.modified, std::int64_t(2));
        const bson::array nested = A("[{'i.b': 5}, {'j.d': {'$lt': 2}}]");
        r = c.update(J("{'_id': 3}"), J("{'$inc': {'y.$[i].c.$[j].d': 10}}"), false, false, log,
                     write_extras{nested, {}});
        QCOMPARE(r.modified, std::int64_t(1));
        // A filter on the element itself, $or inside one identifier, $[] beside $[name].
        const bson::array scalar = A("[{'e': {'$gte': 2}}]"), either = A("[{'$or': [{'k.b': 0}, {'k.b': 3}]}]");
        collection s = with_docs({"{'_id': 1, 'g': [1, 2, 3], 'm': [[1, 5], [7]]}"});
        s.update(J("{}"), J("{'$set': {'g.$[e]': 0}}"), false, false, log, write_extras{scalar, {}});
        s.update(J("{}"), J("{'$inc': {'m.$[].$[e]': 100}}"), false, false, log, write_extras{scalar, {}});
        SAME(s.documents()[0], "{'_id': 1, 'g': [1, 0, 0], 'm': [[1, 105], [107]]}");
        c.update(J("{}"), J("{'$set': {'y.$[k].b': -1}}"), false, true, log, write_extras{either, {}});
        SAME_LIST(c.documents(), "[{'_id': 1, 'y': [{'b': -1}, {'b': 2}]}, {'_id': 2, 'y': [{'b': -1}, {'b': 2}]}, "
                                 "{'_id': 3, 'y': [{'b': 5, 'c': [{'d': 2}, {'d': 11}]}]}]");
        // findAndModify takes them too.
        find_and_modify_options o;
        o.query = J("{'_id': 2}");
        o.update = J("{'$set': {'y.$[i].b': 7}}");
        o.array_filters = A("[{'i.b': 2}]");
        o.return_new = true;
        SAME(*c.find_and_modify(o, log).value, "{'_id': 2, 'y': [{'b': -1}, {'b': 7}]}");
    }

    void array_filter_errors() {
        collection c = with_docs({"{'_id': 1, 'y': [{'b': 3}], 'n': 5}"});
        oplog log;
        auto upd = [&](std::string_view update, std::string_view filters) {
            const bson::array af = A(filters);
            return c.update(J("{}"), J(update), false, false, log, write_extras{af, {}});
        };
        EXPECT_MESSAGE(upd("{'$set': {'y.$[x].b': 1}}", "[{'i.b': 1}]"), 2,
                       "No array filter found for identifier 'x' in path 'y.$[x].b'");
        EXPECT_MESSAGE(upd("{'$set': {'y.$[i].b': 1}}", "[{'i.b': 1}, {'j.b': 1}]"), 9,
                       "The array filter for identifier 'j' was not used in the update { $set: { y.$[i].b: 1 } }");
        EXPECT_MESSAGE(upd("{'$set': {'y.$[i].b': 1}}", "[{'i.b': 1}, {'i.c': 1}]"), 9,
                       "Found multiple array filters with the same top-level field name i");
        EXPECT_MESSAGE(upd("{'$set': {'y.$[i].b': 1}}", "[{'i.b': 1, 'j.c': 1}]"), 9,
                       "Error parsing array filter :: caused by :: Expected a single top-level field name, found 'i' "
                       "and 'j'");
        EXPECT_MESSAGE(upd("{'$set': {'y.$[I].b': 1}}", "[{'I.b': 1}]"), 2,
                       "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric "
                       "string beginning with a lowercase letter, found 'I'");
        EXPECT_ERROR(upd("{'$set': {'y.$[i].b': 1}}", "[{}]"), 9);
        EXPECT_ERROR(upd("{'$set': {'y.$[i].b': 1}}", "[1]"), 14);
        EXPECT_MESSAGE(upd("{'z': 1}", "[{'i.b': 1}]"), 9,
                       "arrayFilters may not be specified for replacement-style updates");
        EXPECT_MESSAGE(upd("{'$set': {'n.$[i]': 1}}", "[{'i': 1}]"), 2,
                       "Cannot apply array updates to non-array element n: 5");
        EXPECT_MESSAGE(upd("{'$set': {'q.$[i]': 1}}", "[{'i': 1}]"), 2,
                       "The path 'q' must exist in the document in order to apply array updates.");
        SAME(c.documents()[0], "{'_id': 1, 'y': [{'b': 3}], 'n': 5}");
    }

    void let_variables() {
        collection c = with_docs({"{'_id': 1, 'name': 'a'}", "{'_id': 2, 'name': 'b'}", "{'_id': 3, 'name': 'a'}"});
        oplog log;
        find_options fo;
        fo.filter = J("{'$expr': {'$eq': ['$_id', '$$id']}}");
        fo.let = J("{'id': 2}");
        QCOMPARE(ids(c.find(fo)), I("[2]"));
        const auto docs = aggregate_let(
            c, "[{'$match': {'$expr': {'$eq': ['$_id', '$$id']}}}, "
               "{'$project': {'_id': 0, 'x': '$$x', 'y': '$$y', 'z': '$$doc.k', 'w': '$$x2', 'rand': '$$rand'}}]",
            "{'id': 1, 'x': 'foo', 'y': {'$literal': '$bar'}, 'doc': {'k': [1]}, 'x2': {'$concat': ['$$x', '2']}, "
            "'rand': {'$rand': {}}}");
        QCOMPARE(docs.size(), std::size_t(1));
        QCOMPARE(QString::fromStdString(std::string(docs[0]["y"].get_string())), QString("$bar"));
        QCOMPARE(canon(docs[0]["z"].get_array()), canon(J("{'0': 1}")));
        QCOMPARE(QString::fromStdString(std::string(docs[0]["w"].get_string())), QString("foo2"));
        QCOMPARE(docs[0]["rand"].type(), bson::type::double_);
        QVERIFY(docs[0]["rand"].get_double() >= 0 && docs[0]["rand"].get_double() < 1);
        const bson::document let = J("{'name': 'a', 'v': 'set'}");
        auto r = c.update_pipeline(J("{'$expr': {'$eq': ['$name', '$$name']}}"), A("[{'$set': {'v': '$$v'}}]"), false,
                                   true, log, write_extras{{}, let});
        QCOMPARE(r.modified, std::int64_t(2));
        r = c.update(J("{'$expr': {'$eq': ['$name', '$$name']}}"), J("{'$set': {'w': 1}}"), false, false, log,
                     write_extras{{}, let});
        QCOMPARE(r.modified, std::int64_t(1));
        find_and_modify_options o;
        o.query = J("{'$expr': {'$eq': ['$_id', '$$id']}}");
        o.update_pipeline = A("[{'$set': {'x': '$$x'}}]");
        o.let = J("{'id': 2, 'x': 'foo'}");
        o.return_new = true;
        SAME(*c.find_and_modify(o, log).value, "{'_id': 2, 'name': 'b', 'x': 'foo'}");
        QCOMPARE(c.remove(J("{'$expr': {'$eq': ['$name', '$$name']}}"), false, log, let), std::int64_t(2));
        QCOMPARE(ids(c.documents()), I("[2]"));
    }

    void let_errors() {
        collection c = with_docs({"{'_id': 1}"});
        find_options fo;
        fo.filter = J("{'$expr': {'$eq': ['$_id', '$$nope']}}");
        EXPECT_MESSAGE(c.find(fo), 17276, "Use of undefined variable: nope");
        fo.let = J("{'Bad': 1}");
        EXPECT_MESSAGE(c.find(fo), 16867, "'Bad' starts with an invalid character for a user variable name");
        fo.let = J("{'a-b': 1}");
        EXPECT_MESSAGE(c.find(fo), 16868, "'a-b' contains an invalid character for a variable name: '-'");
        fo.let = J("{'': 1}");
        EXPECT_ERROR(c.find(fo), 16866);
        EXPECT_ERROR(aggregate_let(c, "[{'$project': {'x': '$$later'}}]", "{'early': '$$later', 'later': 1}"), 17276);
        EXPECT_ERROR(aggregate_let(c, "[{'$project': {'x': {'$rand': {'a': 1}}}}]", "{}"), 3040501);
    }

    void views_in_the_catalog() {
        catalog primary;
        oplog log;
        primary.get_or_create("db", "c", log).insert(J("{'_id': 1}"), log);
        primary.create_view("db", "v", "c", A("[{'$match': {'_id': {'$gt': 1}}}]"), log);
        primary.create_view("db", "vv", "v", A("[{'$project': {'x': 1}}]"), log);
        QVERIFY(primary.find_view("db", "v") != nullptr);
        QVERIFY(primary.find("db", "v") == nullptr);
        QCOMPARE(primary.view_names("db"), (std::vector<std::string>{"v", "vv"}));
        const auto [source, stages] = primary.resolve_view("db", "vv");
        QCOMPARE(QString::fromStdString(source), QString("c"));
        QCOMPARE(list(stages), L("[{'$match': {'_id': {'$gt': 1}}}, {'$project': {'x': 1}}]"));
        SAME(log.back(), "{'op': 'c', 'ns': 'db.$cmd', 'o': {'create': 'vv', 'viewOn': 'v', 'pipeline': "
                         "[{'$project': {'x': 1}}]}}");
        EXPECT_MESSAGE(primary.create_view("db", "c", "v", A("[]"), log), 48, "Namespace db.c already exists");
        EXPECT_ERROR(primary.create("db", "v", log), 48);
        EXPECT_ERROR(primary.create_view("db", "w", "c", A("[1]"), log), 14);
        // A secondary replaying the oplog has the same views; a clone copies them.
        catalog secondary;
        for (const auto& e : log) secondary.apply(e);
        QCOMPARE(secondary.view_names("db"), primary.view_names("db"));
        QCOMPARE(QString::fromStdString(secondary.find_view("db", "vv")->view_on), QString("v"));
        catalog copy = primary.clone();
        QVERIFY(primary.drop("db", "vv", log));
        SAME(log.back(), "{'op': 'c', 'ns': 'db.$cmd', 'o': {'drop': 'vv'}}");
        QCOMPARE(copy.view_names("db"), (std::vector<std::string>{"v", "vv"}));
        QCOMPARE(primary.view_names("db"), (std::vector<std::string>{"v"}));
        secondary.apply(log.back());
        QCOMPARE(secondary.view_names("db"), primary.view_names("db"));
    }

    void run_pipeline_over_given_documents() {
        std::vector<bson::document> docs;
        docs.push_back(J("{'a': 1}"));
        docs.push_back(J("{'a': 2}"));
        SAME_LIST(run_pipeline(std::move(docs), A("[{'$match': {'$expr': {'$gt': ['$a', '$$min']}}}]"), J("{'min': 1}")),
                  "[{'a': 2}]");
    }

    void update_errors() {
        collection c = with_docs({"{'_id': 1, 'a': 1}"});
        oplog log;
        EXPECT_MESSAGE(
            c.update(J("{}"), J("{'$foo': {'a': 1}}"), false, false, log), 9,
            "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update specified as an array");
        EXPECT_ERROR(c.update(J("{}"), J("{'$set': 1}"), false, false, log), 9);
        EXPECT_MESSAGE(c.update(J("{}"), J("{'$set': {'a': 1}, '$inc': {'a': 1}}"), false, false, log), 40,
                       "Updating the path 'a' would create a conflict at 'a'");
        EXPECT_MESSAGE(c.update(J("{}"), J("{'$set': {'a.b': 1, 'a': 2}}"), false, false, log), 40,
                       "Updating the path 'a' would create a conflict at 'a'");
        EXPECT_MESSAGE(c.update(J("{}"), J("{'$set': {'_id': 2}}"), false, false, log), 66,
                       "Performing an update on the path '_id' would modify the immutable field '_id'");
        EXPECT_ERROR(c.update(J("{}"), J("{'$unset': {'_id': 1}}"), false, false, log), 66);
        EXPECT_MESSAGE(
            c.update(J("{}"), J("{'_id': 2, 'a': 1}"), false, false, log), 66,
            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2");
        EXPECT_ERROR(c.update(J("{}"), J("{'b': 1}"), false, true, log), 9);       // multi with a replacement
        auto r = c.update(J("{}"), J("{'$set': {'_id': 1}}"), false, false, log);  // same value: allowed
        QCOMPARE(r.modified, std::int64_t(0));
        QCOMPARE(log.size(), std::size_t(0));
        SAME_LIST(c.documents(), "[{'_id': 1, 'a': 1}]");
    }

    void update_counts_and_multi() {
        collection c = with_docs({"{'_id': 1, 'a': 1}", "{'_id': 2, 'a': 1}", "{'_id': 3, 'a': 2}"});
        oplog log;
        auto r = c.update(J("{'a': 1}"), J("{'$set': {'b': 1}}"), false, false, log);
        QCOMPARE(r.matched, std::int64_t(1));
        QCOMPARE(r.modified, std::int64_t(1));
        r = c.update(J("{'a': 1}"), J("{'$set': {'b': 1}}"), false, true, log);
        QCOMPARE(r.matched, std::int64_t(2));
        QCOMPARE(r.modified, std::int64_t(1));  // _id 1 already had b: 1
        r = c.update(J("{'a': 7}"), J("{'$set': {'b': 1}}"), false, true, log);
        QCOMPARE(r.matched, std::int64_t(0));
        QCOMPARE(r.modified, std::int64_t(0));
        QVERIFY(!r.upserted_id);
        QCOMPARE(c.size(), std::size_t(3));
        QCOMPARE(ids(find(c, "{'b': 1}")), I("[1, 2]"));
    }

    void replacement_keeps_id() {
        collection c = with_docs({"{'_id': 1, 'a': 1, 'b': 2}"});
        oplog log;
        auto r = c.update(J("{'a': 1}"), J("{'c': 3}"), false, false, log);
        QCOMPARE(r.modified, std::int64_t(1));
        SAME_LIST(c.documents(), "[{'_id': 1, 'c': 3}]");
        c.update(J("{}"), J("{'d': 4, '_id': 1}"), false, false, log);
        SAME_LIST(c.documents(), "[{'_id': 1, 'd': 4}]");
        c.update(J("{}"), J("{}"), false, false, log);
        SAME_LIST(c.documents(), "[{'_id': 1}]");
    }

    void upsert_builds_the_document_from_the_filter() {
        collection c("test.c");
        oplog log;
        auto r = c.update(J("{'a': 1, 'b.c': 'x', 'n': {'$gt': 5}, 'e': {'$eq': 3}}"),
                          J("{'$set': {'z': 1}, '$setOnInsert': {'created': true}}"), true, false, log);
        QCOMPARE(r.matched, std::int64_t(0));
        QCOMPARE(r.modified, std::int64_t(0));
        QVERIFY(r.upserted_id);
        const bson::document stored(c.documents()[0]);
        QCOMPARE(stored.begin()->key(), std::string_view("_id"));
        QCOMPARE(stored.begin()->type(), bson::type::oid);
        SAME(*r.upserted_id, "{'_id': {'$oid': '" + stored["_id"].get_oid().to_hex() + "'}}");
        SAME(stored, "{'_id': {'$oid': '" + stored["_id"].get_oid().to_hex() +
                         "'}, 'a': 1, 'b': {'c': 'x'}, 'e': 3, 'created': true, 'z': 1}");

        r = c.update(J("{'$and': [{'_id': 7}, {'k': 'v'}]}"), J("{'$inc': {'n': 1}}"), true, false, log);
        SAME(*r.upserted_id, "{'_id': 7}");
        SAME(c.documents()[1], "{'_id': 7, 'k': 'v', 'n': 1}");

        // The second time the document matches: $setOnInsert does nothing.
        r = c.update(J("{'_id': 7}"), J("{'$inc': {'n': 1}, '$setOnInsert': {'x': 1}}"), true, false, log);
        QCOMPARE(r.matched, std::int64_t(1));
        QVERIFY(!r.upserted_id);
        SAME(c.documents()[1], "{'_id': 7, 'k': 'v', 'n': 2}");

        // A replacement upsert takes only _id from the filter.
        r = c.update(J("{'_id': 8, 'q': 1}"), J("{'r': 2}"), true, false, log);
        SAME(*r.upserted_id, "{'_id': 8}");
        SAME(c.documents()[2], "{'_id': 8, 'r': 2}");
        r = c.update(J("{'q': 9}"), J("{'_id': 9, 'r': 3}"), true, false, log);
        SAME(*r.upserted_id, "{'_id': 9}");
        SAME(c.documents()[3], "{'_id': 9, 'r': 3}");
        // A regex is no equality.
        r = c.update(J("{'s': {'$regularExpression': {'pattern': 'x', 'options': ''}}, 't': 1}"),
                     J("{'$set': {'u': 1}}"), true, false, log);
        QVERIFY(!c.documents()[4].find("s"));
        QCOMPARE(c.documents()[4]["t"].get_int32(), 1);
    }

    void remove_one_or_all() {
        collection c =
            with_docs({"{'_id': 1, 'a': 1}", "{'_id': 2, 'a': 1}", "{'_id': 3, 'a': 2}", "{'_id': 4, 'a': 1}"});
        oplog log;
        QCOMPARE(c.remove(J("{'a': 1}"), true, log), std::int64_t(1));
        QCOMPARE(ids(c.documents()), I("[2, 3, 4]"));
        QCOMPARE(c.remove(J("{'a': 1}"), false, log), std::int64_t(2));
        QCOMPARE(ids(c.documents()), I("[3]"));
        QCOMPARE(c.remove(J("{'a': 9}"), false, log), std::int64_t(0));
        QCOMPARE(c.remove(J("{}"), false, log), std::int64_t(1));
        QCOMPARE(c.size(), std::size_t(0));
        QCOMPARE(c.data_size(), std::size_t(0));
        // Many deletes (slots get compacted) keep order and _id lookups right.
        for (int i = 0; i < 300; ++i) c.insert(bson::make_document(bson::kvp("_id", i)), log);
        QCOMPARE(c.remove(J("{'_id': {'$lt': 250}}"), false, log), std::int64_t(250));
        QCOMPARE(c.size(), std::size_t(50));
        QCOMPARE(c.documents()[0]["_id"].get_int32(), 250);
        EXPECT_ERROR(c.insert(J("{'_id': 260}"), log), 11000);
        c.insert(J("{'_id': 10}"), log);
        QCOMPARE(c.documents().back()["_id"].get_int32(), 10);
    }

    void find_and_modify_variants() {
        collection c =
            with_docs({"{'_id': 1, 'a': 5, 'g': 'x'}", "{'_id': 2, 'a': 3, 'g': 'x'}", "{'_id': 3, 'a': 9, 'g': 'y'}"});
        oplog log;
        find_and_modify_options o;
        o.query = J("{'g': 'x'}");
        o.sort = J("{'a': 1}");
        o.update = J("{'$inc': {'a': 100}}");
        auto r = c.find_and_modify(o, log);
        QCOMPARE(r.n, std::int64_t(1));
        QVERIFY(r.updated_existing);
        QVERIFY(!r.upserted_id);
        SAME(*r.value, "{'_id': 2, 'a': 3, 'g': 'x'}");  // the old document by default
        o.return_new = true;
        o.fields = J("{'a': 1, '_id': 0}");
        r = c.find_and_modify(o, log);
        SAME(*r.value, "{'a': 105}");  // _id 1 sorts first now
        // No match, no upsert: null value.
        o.query = J("{'g': 'none'}");
        r = c.find_and_modify(o, log);
        QVERIFY(!r.value);
        QCOMPARE(r.n, std::int64_t(0));
        QVERIFY(!r.updated_existing);
        // Upsert returning the new document.
        o.upsert = true;
        o.fields = J("{}");
        o.query = J("{'_id': 10}");
        o.update = J("{'$set': {'v': 1}}");
        r = c.find_and_modify(o, log);
        QCOMPARE(r.n, std::int64_t(1));
        QVERIFY(!r.updated_existing);
        SAME(*r.upserted_id, "{'_id': 10}");
        SAME(*r.value, "{'_id': 10, 'v': 1}");
        // Upsert returning the old document: null.
        o.return_new = false;
        o.query = J("{'_id': 11}");
        r = c.find_and_modify(o, log);
        QVERIFY(!r.value);
        SAME(*r.upserted_id, "{'_id': 11}");
        // Remove, sorted descending.
        find_and_modify_options rm;
        rm.sort = J("{'a': -1}");
        rm.remove = true;
        r = c.find_and_modify(rm, log);
        SAME(*r.value, "{'_id': 1, 'a': 105, 'g': 'x'}");
        QCOMPARE(r.n, std::int64_t(1));
        QCOMPARE(ids(c.documents()), I("[2, 3, 10, 11]"));
        // Replacement.
        find_and_modify_options rep;
        rep.query = J("{'_id': 3}");
        rep.update = J("{'only': true}");
        rep.return_new = true;
        r = c.find_and_modify(rep, log);
        SAME(*r.value, "{'_id': 3, 'only': true}");
        // Option errors.
        find_and_modify_options bad;
        EXPECT_ERROR(c.find_and_modify(bad, log), 9);
        bad.remove = true;
        bad.update = J("{'$set': {'a': 1}}");
        EXPECT_ERROR(c.find_and_modify(bad, log), 9);
        bad.update.reset();
        bad.return_new = true;
        EXPECT_ERROR(c.find_and_modify(bad, log), 9);
        bad.return_new = false;
        bad.upsert = true;
        EXPECT_ERROR(c.find_and_modify(bad, log), 9);
        QCOMPARE(c.size(), std::size_t(4));
    }

    void count_with_skip_and_limit() {
        const collection c = with_docs({"{'a': 1}", "{'a': 1}", "{'a': 1}", "{'a': 2}", "{'a': 1}"});
        QCOMPARE(c.count(J("{}"), 0, 0), std::int64_t(5));
        QCOMPARE(c.count(J("{'a': 1}"), 0, 0), std::int64_t(4));
        QCOMPARE(c.count(J("{'a': 1}"), 1, 0), std::int64_t(3));
        QCOMPARE(c.count(J("{'a': 1}"), 1, 2), std::int64_t(2));
        QCOMPARE(c.count(J("{'a': 1}"), 0, -3), std::int64_t(3));
        QCOMPARE(c.count(J("{'a': 1}"), 10, 0), std::int64_t(0));
        QCOMPARE(c.count(J("{'a': 3}"), 0, 0), std::int64_t(0));
    }

    void distinct_values_in_first_seen_order() {
        const collection c =
            with_docs({"{'a': 2, 'b': {'c': 'x'}, 'k': 1}", "{'a': [1, 2, [3]], 'b': [{'c': 'y'}, {'c': 'x'}], 'k': 1}",
                       "{'a': 1.0, 'k': 2}", "{'a': null, 'k': 1}", "{'k': 1}"});
        SAME_LIST(c.distinct("a", J("{}")), "[2, 1, [3], null]");
        SAME_LIST(c.distinct("b.c", J("{}")), "['x', 'y']");
        SAME_LIST(c.distinct("a", J("{'k': 2}")), "[1.0]");
        SAME_LIST(c.distinct("nope", J("{}")), "[]");
    }

    // ------------------------------------------------------------ aggregation

    void aggregate_match_project_sort_skip_limit() {
        const collection c = with_docs({"{'_id': 1, 'a': 5, 'b': 'x'}", "{'_id': 2, 'a': 3, 'b': 'y'}",
                                        "{'_id': 3, 'a': 9, 'b': 'x'}", "{'_id': 4, 'a': 1, 'b': 'x'}"});
        SAME_LIST(
            aggregate(
                c,
                "[{'$match': {'b': 'x'}}, {'$sort': {'a': -1}}, {'$skip': 1}, {'$limit': 1}, {'$project': {'a': 1}}]"),
            "[{'_id': 1, 'a': 5}]");
        SAME_LIST(aggregate(c, "[{'$project': {'_id': 0, 'twice': {'$multiply': ['$a', 2]}, 'b': 1}}, {'$limit': 2}]"),
                  "[{'b': 'x', 'twice': 10}, {'b': 'y', 'twice': 6}]");
        SAME_LIST(aggregate(c, "[{'$project': {'a': 0, 'b': 0}}, {'$sort': {'_id': -1}}]"),
                  "[{'_id': 4}, {'_id': 3}, {'_id': 2}, {'_id': 1}]");
        SAME_LIST(aggregate(c, "[]"),
                  "[{'_id': 1, 'a': 5, 'b': 'x'}, {'_id': 2, 'a': 3, 'b': 'y'}, "
                  "{'_id': 3, 'a': 9, 'b': 'x'}, {'_id': 4, 'a': 1, 'b': 'x'}]");
        SAME_LIST(aggregate(c, "[{'$match': {'a': {'$gt': 100}}}]"), "[]");
    }

    void aggregate_group_and_accumulators() {
        const collection c = with_docs({"{'_id': 1, 'g': 'b', 'v': 1, 's': 'x'}", "{'_id': 2, 'g': 'a', 'v': 2.5}",
                                        "{'_id': 3, 'g': 'b', 'v': 3, 's': 'y'}", "{'_id': 4, 'g': 'a', 'v': 'text'}",
                                        "{'_id': 5, 'g': 'c'}", "{'_id': 6, 'g': 'b', 'v': 1}"});
        SAME_LIST(
            aggregate(
                c,
                "[{'$group': {'_id': '$g', 'n': {'$sum': 1}, 'total': {'$sum': '$v'}, 'avg': {'$avg': '$v'}, "
                "'min': {'$min': '$v'}, 'max': {'$max': '$v'}, 'first': {'$first': '$s'}, 'last': {'$last': '$v'}, "
                "'all': {'$push': '$v'}, 'set': {'$addToSet': '$v'}, 'count': {'$count': {}}}}]"),
            "[{'_id': 'b', 'n': 3, 'total': 5, 'avg': 1.6666666666666667, 'min': 1, 'max': 3, 'first': 'x', 'last': 1, "
            "  'all': [1, 3, 1], 'set': [1, 3], 'count': 3},"
            " {'_id': 'a', 'n': 2, 'total': 2.5, 'avg': 2.5, 'min': 2.5, 'max': 'text', 'first': null, 'last': 'text', "
            "  'all': [2.5, 'text'], 'set': [2.5, 'text'], 'count': 2},"
            " {'_id': 'c', 'n': 1, 'total': 0, 'avg': null, 'min': null, 'max': null, 'first': null, 'last': null, "
            "  'all': [], 'set': [], 'count': 1}]");
        SAME_LIST(
            aggregate(c, "[{'$match': {'v': {'$type': 'number'}}}, {'$group': {'_id': null, 'sum': {'$sum': '$v'}}}]"),
            "[{'_id': null, 'sum': 7.5}]");
        SAME_LIST(aggregate(c, "[{'$group': {'_id': {'big': {'$gt': ['$_id', 3]}}, 'ids': {'$push': '$_id'}}}]"),
                  "[{'_id': {'big': false}, 'ids': [1, 2, 3]}, {'_id': {'big': true}, 'ids': [4, 5, 6]}]");
        SAME_LIST(aggregate(c, "[{'$group': {'_id': {'$gt': ['$_id', 4]}}}]"), "[{'_id': false}, {'_id': true}]");
        SAME_LIST(aggregate(c, "[{'$match': {'_id': {'$lt': 0}}}, {'$group': {'_id': null, 'n': {'$sum': 1}}}]"), "[]");
        // Sums keep integer types while they can.
        const collection n = with_docs({"{'v': 2147483647}", "{'v': 1}", "{'v': {'$numberLong': '5'}}"});
        SAME_LIST(aggregate(n, "[{'$limit': 1}, {'$group': {'_id': 0, 's': {'$sum': '$v'}}}]"),
                  "[{'_id': 0, 's': 2147483647}]");
        SAME_LIST(aggregate(n, "[{'$group': {'_id': 0, 's': {'$sum': '$v'}}}]"),
                  "[{'_id': 0, 's': {'$numberLong': '2147483653'}}]");
        SAME_LIST(aggregate(n, "[{'$group': {'_id': 0, 'a': {'$avg': '$v'}}}]"),
                  "[{'_id': 0, 'a': 715827884.3333334}]");
    }

    void aggregate_count_unwind_add_fields_unset() {
        const collection c = with_docs({"{'_id': 1, 'tags': ['a', 'b'], 'o': {'x': 1}}", "{'_id': 2, 'tags': []}",
                                        "{'_id': 3, 'tags': null}", "{'_id': 4}", "{'_id': 5, 'tags': 'solo'}"});
        SAME_LIST(aggregate(c, "[{'$count': 'n'}]"), "[{'n': 5}]");
        SAME_LIST(aggregate(c, "[{'$match': {'_id': 99}}, {'$count': 'n'}]"), "[]");
        SAME_LIST(aggregate(c, "[{'$unwind': '$tags'}, {'$project': {'tags': 1}}]"),
                  "[{'_id': 1, 'tags': 'a'}, {'_id': 1, 'tags': 'b'}, {'_id': 5, 'tags': 'solo'}]");
        SAME_LIST(
            aggregate(c,
                      "[{'$unwind': {'path': '$tags', 'includeArrayIndex': 'i', 'preserveNullAndEmptyArrays': true}}, "
                      "{'$project': {'o': 0}}]"),
            "[{'_id': 1, 'tags': 'a', 'i': {'$numberLong': '0'}}, {'_id': 1, 'tags': 'b', 'i': {'$numberLong': '1'}}, "
            " {'_id': 2, 'i': null}, {'_id': 3, 'tags': null, 'i': null}, {'_id': 4, 'i': null}, {'_id': 5, 'tags': "
            "'solo', 'i': null}]");
        SAME_LIST(aggregate(c,
                            "[{'$match': {'_id': 1}}, {'$addFields': {'n': {'$size': '$tags'}, 'o': {'y': 2}, 'p.q': "
                            "'lit', 'tags': '$$REMOVE'}}]"),
                  "[{'_id': 1, 'o': {'x': 1, 'y': 2}, 'n': 2, 'p': {'q': 'lit'}}]");
        SAME_LIST(aggregate(c, "[{'$match': {'_id': 1}}, {'$set': {'_id': 'new', 'z': {'$literal': '$notapath'}}}]"),
                  "[{'_id': 'new', 'tags': ['a', 'b'], 'o': {'x': 1}, 'z': '$notapath'}]");
        SAME_LIST(aggregate(c, "[{'$match': {'_id': 1}}, {'$unset': ['tags', 'o.x']}]"), "[{'_id': 1, 'o': {}}]");
        SAME_LIST(aggregate(c, "[{'$match': {'_id': 1}}, {'$unset': 'o'}]"), "[{'_id': 1, 'tags': ['a', 'b']}]");
        SAME_LIST(aggregate(c, "[{'$match': {'_id': 1}}, {'$replaceRoot': {'newRoot': '$o'}}]"), "[{'x': 1}]");
    }

    void aggregate_expressions() {
        const collection c =
            with_docs({"{'_id': 1, 'a': 7, 'b': 2, 'd': 1.5, 's': 'Hello', 'n': null, "
                       "'arr': [{'k': 1}, {'k': 2}, {'j': 3}], 'when': {'$date': {'$numberLong': '1000'}}}"});
        const auto r = aggregate(
            c,
            "[{'$project': {'_id': 0, "
            "'add': {'$add': ['$a', '$b', 1]}, 'addd': {'$add': ['$a', '$d']}, 'addnull': {'$add': ['$a', '$n']}, "
            "'adddate': {'$add': ['$when', 500]}, 'sub': {'$subtract': ['$a', '$b']}, "
            "'subdate': {'$subtract': ['$when', {'$date': {'$numberLong': '400'}}]}, "
            "'mul': {'$multiply': ['$a', '$b', '$d']}, 'div': {'$divide': ['$a', '$b']}, "
            "'mod': {'$mod': ['$a', '$b']}, 'concat': {'$concat': ['$s', ', ', 'world']}, "
            "'concatnull': {'$concat': ['$s', '$missing']}, 'up': {'$toUpper': '$s'}, 'low': {'$toLower': '$s'}, "
            "'eq': {'$eq': ['$a', 7.0]}, 'ne': {'$ne': ['$a', 7]}, 'gt': {'$gt': ['$a', '$b']}, "
            "'gte': {'$gte': ['$b', 2]}, 'lt': {'$lt': ['$s', 5]}, 'lte': {'$lte': ['$missing', null]}, "
            "'cond': {'$cond': [{'$gt': ['$a', 5]}, 'big', 'small']}, "
            "'cond2': {'$cond': {'if': '$n', 'then': 1, 'else': 2}}, "
            "'ifnull': {'$ifNull': ['$n', 'dflt']}, 'ifnull2': {'$ifNull': ['$a', 'dflt']}, "
            "'ks': '$arr.k', 'lit': {'$literal': {'$add': 1}}, 'cmp': {'$cmp': ['$b', '$a']}, "
            "'and': {'$and': [1, '$a']}, 'or': {'$or': [0, '$n']}, 'not': {'$not': ['$n']}, "
            "'size': {'$size': '$arr'}, 'in': {'$in': [2, '$arr.k']}, 'at': {'$arrayElemAt': ['$arr.k', -1]}, "
            "'abs': {'$abs': {'$subtract': ['$b', '$a']}}, 'obj': {'x': '$a', 'y': '$missing'}, "
            "'array': ['$a', '$missing'], 'root': '$$ROOT.b', 'gone': '$missing'}}]");
        SAME_LIST(
            r,
            "[{'add': 10, 'addd': 8.5, 'addnull': null, 'adddate': {'$date': {'$numberLong': '1500'}}, 'sub': 5, "
            "'subdate': {'$numberLong': '600'}, 'mul': 21.0, 'div': 3.5, 'mod': 1, 'concat': 'Hello, world', "
            "'concatnull': null, 'up': 'HELLO', 'low': 'hello', 'eq': true, 'ne': false, 'gt': true, 'gte': true, "
            "'lt': false, 'lte': true, 'cond': 'big', 'cond2': 2, 'ifnull': 'dflt', 'ifnull2': 7, 'ks': [1, 2], "
            "'lit': {'$add': 1}, 'cmp': -1, 'and': true, 'or': false, 'not': true, 'size': 3, 'in': true, 'at': 2, "
            "'abs': 5, 'obj': {'x': 7}, 'array': [7, null], 'root': 2}]");
        EXPECT_MESSAGE(aggregate(c, "[{'$project': {'x': {'$divide': ['$a', 0]}}}]"), 2, "can't $divide by zero");
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$add': ['$s', 1]}}}]"), 16554);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$concat': ['$s', 1]}}}]"), 16702);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$size': '$a'}}}]"), 17124);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'x': {'$subtract': ['$a']}}}]"), 16020);
    }

    void aggregate_errors() {
        const collection c = with_docs({"{'_id': 1}"});
        EXPECT_MESSAGE(aggregate(c, "[{'$foo': {}}]"), 40324, "Unrecognized pipeline stage name: '$foo'");
        const auto e = error_of([&] { aggregate(c, "[{'$foo': {}}]"); });
        QCOMPARE(QString::fromStdString(e->code_name()), QString("Location40324"));
        EXPECT_MESSAGE(aggregate(c, "[{'$project': {'x': {'$nope': 1}}}]"), 168, "Unrecognized expression '$nope'");
        EXPECT_MESSAGE(aggregate(c, "[{'$group': {'n': {'$sum': 1}}}]"), 15955,
                       "a group specification must include an _id");
        EXPECT_ERROR(aggregate(c, "[{'$group': {'_id': null, 'n': {'$bogus': 1}}}]"), 15952);
        EXPECT_ERROR(aggregate(c, "[{'$group': {'_id': null, 'n': 1}}]"), 40234);
        EXPECT_ERROR(aggregate(c, "[{'$match': {}, '$limit': 1}]"), 40323);
        EXPECT_ERROR(aggregate(c, "[{'$limit': 0}]"), 15958);
        EXPECT_ERROR(aggregate(c, "[{'$skip': -1}]"), 5107200);
        EXPECT_ERROR(aggregate(c, "[{'$sort': {'a': 2}}]"), 15975);
        EXPECT_ERROR(aggregate(c, "[{'$count': ''}]"), 40156);
        EXPECT_ERROR(aggregate(c, "[{'$unwind': 'tags'}]"), 28818);
        EXPECT_ERROR(aggregate(c, "[{'$project': {'a': 1, 'b': 0}}]"), 2);
        EXPECT_ERROR(aggregate(c, "[{'$project': {}}]"), 51272);
        EXPECT_ERROR(aggregate(c, "[{'$match': {'a': {'$bad': 1}}}]"), 2);
    }

    // ------------------------------------------------------------ oplog

    void oplog_entries_have_mongod_shapes() {
        catalog cat;
        oplog log;
        collection& c = cat.get_or_create("db", "c", log);
        c.insert(J("{'_id': 1, 'a': 1}"), log);
        c.update(J("{'_id': 1}"), J("{'$set': {'b': 2}}"), false, false, log);
        c.update(J("{'_id': 2}"), J("{'$set': {'b': 3}}"), true, false, log);
        c.remove(J("{'_id': 1}"), true, log);
        c.create_index({"b_1", J("{'b': 1}"), true}, log);
        c.drop_index("b_1", log);
        find_and_modify_options o;
        o.query = J("{'_id': 2}");
        o.update = J("{'$inc': {'b': 1}}");
        c.find_and_modify(o, log);
        o.update.reset();
        o.remove = true;
        c.find_and_modify(o, log);
        cat.create("db", "d", log);
        cat.drop("db", "d", log);
        cat.drop_database("db", log);
        SAME_LIST(log,
                  "[{'op': 'c', 'ns': 'db.$cmd', 'o': {'create': 'c'}},"
                  " {'op': 'i', 'ns': 'db.c', 'o': {'_id': 1, 'a': 1}},"
                  " {'op': 'u', 'ns': 'db.c', 'o2': {'_id': 1}, 'o': {'_id': 1, 'a': 1, 'b': 2}, 'pre': {'_id': 1, 'a': 1}},"
                  " {'op': 'i', 'ns': 'db.c', 'o': {'_id': 2, 'b': 3}},"
                  " {'op': 'd', 'ns': 'db.c', 'o': {'_id': 1}, 'pre': {'_id': 1, 'a': 1, 'b': 2}},"
                  " {'op': 'c', 'ns': 'db.$cmd', 'o': {'createIndexes': 'c', 'key': {'b': 1}, 'name': 'b_1', 'unique': "
                  "true}},"
                  " {'op': 'c', 'ns': 'db.$cmd', 'o': {'dropIndexes': 'c', 'index': 'b_1'}},"
                  " {'op': 'u', 'ns': 'db.c', 'o2': {'_id': 2}, 'o': {'_id': 2, 'b': 4}, 'pre': {'_id': 2, 'b': 3}},"
                  " {'op': 'd', 'ns': 'db.c', 'o': {'_id': 2}, 'pre': {'_id': 2, 'b': 4}},"
                  " {'op': 'c', 'ns': 'db.$cmd', 'o': {'create': 'd'}},"
                  " {'op': 'c', 'ns': 'db.$cmd', 'o': {'drop': 'd'}},"
                  " {'op': 'c', 'ns': 'db.$cmd', 'o': {'drop': 'c'}},"
                  " {'op': 'c', 'ns': 'db.$cmd', 'o': {'dropDatabase': 1}}]");
        // Nothing changed, nothing logged; failures log nothing either.
        oplog quiet;
        collection& q = cat.get_or_create("db2", "q", quiet);
        q.insert(J("{'_id': 1}"), quiet);
        quiet.clear();
        q.update(J("{'_id': 1}"), J("{'$set': {'_id': 1}}"), false, false, quiet);
        q.update(J("{'_id': 5}"), J("{'$set': {'x': 1}}"), false, false, quiet);
        q.remove(J("{'_id': 5}"), false, quiet);
        (void)error_of([&] { q.insert(J("{'_id': 1}"), quiet); });
        QVERIFY(!cat.drop("db2", "nope", quiet));
        QVERIFY(!cat.drop_database("nodb", quiet));
        QCOMPARE(quiet.size(), std::size_t(0));
    }

    void oplog_replay_reproduces_the_primary() {
        // A fixed-seed random mix of every mutation; B replays A's oplog.
        std::mt19937 rng(20240607);
        auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
        catalog a;
        oplog log;
        const char* dbs[] = {"d1", "d2"};
        const char* colls[] = {"x", "y", "z.sub"};
        const char* fields[] = {"f", "g", "h.i"};
        int ok = 0, failed = 0;
        std::vector<std::pair<std::size_t, catalog>> checkpoints;  // (log length, A's state then)
        for (int step = 0; step < 800; ++step) {
            if (step % 200 == 100) checkpoints.emplace_back(log.size(), a.clone());
            const std::string db = dbs[pick(2)];
            const std::string cn = colls[pick(3)];
            const std::string field = fields[pick(3)];
            const int id = pick(40);
            const int v = pick(5);
            try {
                switch (pick(14)) {
                    case 0:
                    case 1:
                    case 2: {
                        collection& c = a.get_or_create(db, cn, log);
                        bson::builder b;
                        if (pick(4) != 0) b.append("_id", id);  // some get ObjectIds
                        b.append(field, v);
                        b.append("n", step);
                        c.insert(b.extract(), log);
                        break;
                    }
                    case 3:
                    case 4: {
                        collection& c = a.get_or_create(db, cn, log);
                        const auto upd =
                            pick(2) == 0
                                ? bson::make_document(bson::kvp("$inc", bson::make_document(bson::kvp(field, 1))))
                                : bson::make_document(bson::kvp("$push", bson::make_document(bson::kvp("list", v))));
                        c.update(bson::make_document(bson::kvp("_id", bson::make_document(bson::kvp("$gte", id)))), upd,
                                 pick(2) == 0, pick(2) == 0, log);
                        break;
                    }
                    case 5: {
                        collection& c = a.get_or_create(db, cn, log);
                        c.update(bson::make_document(bson::kvp("_id", id)),
                                 bson::make_document(bson::kvp("replaced", step)), pick(2) == 0, false, log);
                        break;
                    }
                    case 6:
                    case 7: {
                        if (collection* c = a.find(db, cn))
                            c->remove(
                                bson::make_document(bson::kvp(field, bson::make_document(bson::kvp("$lte", v / 2)))),
                                pick(3) != 0, log);
                        break;
                    }
                    case 8: {
                        collection& c = a.get_or_create(db, cn, log);
                        c.create_index({"", bson::make_document(bson::kvp(field, pick(2) == 0 ? 1 : -1)), pick(3) == 0},
                                       log);
                        break;
                    }
                    case 9: {
                        if (collection* c = a.find(db, cn)) {
                            const auto list = c->indexes();
                            c->drop_index(
                                pick(4) == 0 ? std::string("*")
                                             : list[static_cast<std::size_t>(pick(static_cast<int>(list.size())))].name,
                                log);
                        }
                        break;
                    }
                    case 10: {
                        const int r = pick(20);
                        if (r == 0)
                            a.drop_database(db, log);
                        else if (r < 5)
                            a.drop(db, cn, log);
                        break;
                    }
                    case 11: {
                        a.create(db, cn, log);
                        break;
                    }
                    case 12: {
                        collection& c = a.get_or_create(db, cn, log);
                        find_and_modify_options o;
                        o.query = bson::make_document(bson::kvp(field, v));
                        o.sort = bson::make_document(bson::kvp("n", -1));
                        if (pick(3) == 0)
                            o.remove = true;
                        else
                            o.update =
                                bson::make_document(bson::kvp("$set", bson::make_document(bson::kvp("fam", step))));
                        o.upsert = !o.remove && pick(2) == 0;
                        c.find_and_modify(o, log);
                        break;
                    }
                    default: {
                        collection& c = a.get_or_create(db, cn, log);
                        c.update(bson::make_document(),
                                 bson::make_document(bson::kvp("$set", bson::make_document(bson::kvp("all", step)))),
                                 false, true, log);
                        break;
                    }
                }
                ++ok;
            } catch (const command_error&) {
                // A failed operation has logged what it did change before failing (a collection it
                // created, documents a multi update had already changed): the replay must agree.
                ++failed;
            }
        }
        QVERIFY(ok > 300);
        QVERIFY(failed > 5);  // duplicate keys, 48s, 27s, 72s, unique index builds over duplicates
        QVERIFY(log.size() > 500);
        // Every kind of entry occurs.
        std::map<std::string, int> kinds;
        for (const auto& e : log) {
            const std::string op(e["op"].get_string());
            ++kinds[op == "c" ? std::string(e["o"].get_document().begin()->key()) : op];
        }
        for (const char* k : {"i", "u", "d", "create", "drop", "dropDatabase", "createIndexes", "dropIndexes"})
            QVERIFY2(kinds[k] > 0, k);

        checkpoints.emplace_back(log.size(), a.clone());
        for (const auto& [length, expected] : checkpoints) {
            catalog b;
            for (std::size_t i = 0; i < length; ++i) b.apply(log[i]);
            const std::size_t docs = compare_catalogs(expected, b);
            if (QTest::currentTestFailed()) return;
            QVERIFY(docs > 20);
        }
    }

    void apply_is_idempotent_per_entry() {
        catalog b;
        b.apply(J("{'op': 'i', 'ns': 'db.c', 'o': {'_id': 1, 'a': 1}}"));
        b.apply(J("{'op': 'i', 'ns': 'db.c', 'o': {'_id': 2, 'a': 2}}"));
        b.apply(J("{'op': 'i', 'ns': 'db.c', 'o': {'_id': 1, 'a': 10}}"));  // replaces in place
        SAME_LIST(b.find("db", "c")->documents(), "[{'_id': 1, 'a': 10}, {'_id': 2, 'a': 2}]");
        b.apply(J("{'op': 'u', 'ns': 'db.c', 'o2': {'_id': 2}, 'o': {'_id': 2, 'b': 1}}"));
        b.apply(J("{'op': 'u', 'ns': 'db.c', 'o2': {'_id': 3}, 'o': {'_id': 3, 'c': 1}}"));  // upserts
        b.apply(J("{'op': 'u', 'ns': 'db.c', 'o2': {'_id': 3}, 'o': {'_id': 3, 'c': 2}}"));  // o2 finds the document
        b.apply(J("{'op': 'd', 'ns': 'db.c', 'o': {'_id': 1}}"));
        b.apply(J("{'op': 'd', 'ns': 'db.c', 'o': {'_id': 1}}"));
        SAME_LIST(b.find("db", "c")->documents(), "[{'_id': 2, 'b': 1}, {'_id': 3, 'c': 2}]");
        b.apply(
            J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'createIndexes': 'c', 'key': {'b': 1}, 'name': 'b_1', 'unique': "
              "true}}"));
        b.apply(
            J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'createIndexes': 'c', 'key': {'b': 1}, 'name': 'b_1', 'unique': "
              "true}}"));
        QCOMPARE(b.find("db", "c")->indexes().size(), std::size_t(2));
        b.apply(J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'dropIndexes': 'c', 'index': 'b_1'}}"));
        b.apply(J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'dropIndexes': 'c', 'index': 'b_1'}}"));
        QCOMPARE(b.find("db", "c")->indexes().size(), std::size_t(1));
        b.apply(J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'create': 'c'}}"));  // exists: fine
        b.apply(J("{'op': 'n', 'ns': '', 'o': {'msg': 'noop'}}"));
        b.apply(J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'drop': 'c'}}"));
        b.apply(J("{'op': 'c', 'ns': 'db.$cmd', 'o': {'drop': 'c'}}"));
        QVERIFY(b.find("db", "c") == nullptr);
        QVERIFY(b.database_names().empty());
    }

    // ------------------------------------------------------------ catalog

    void catalog_names_sizes_and_errors() {
        catalog cat;
        oplog log;
        cat.get_or_create("zeta", "b", log).insert(J("{'_id': 1, 's': 'xxxxxxxx'}"), log);
        cat.get_or_create("alpha", "c2", log);
        cat.get_or_create("alpha", "c1", log).insert(J("{'_id': 1}"), log);
        QCOMPARE(cat.database_names(), (std::vector<std::string>{"alpha", "zeta"}));
        QCOMPARE(cat.collection_names("alpha"), (std::vector<std::string>{"c1", "c2"}));
        QVERIFY(cat.collection_names("none").empty());
        QCOMPARE(cat.database_size("zeta"), cat.find("zeta", "b")->data_size());
        QCOMPARE(cat.database_size("none"), std::size_t(0));
        QCOMPARE(&cat.get_or_create("alpha", "c1", log), cat.find("alpha", "c1"));
        EXPECT_MESSAGE(cat.create("alpha", "c1", log), 48, "Collection alpha.c1 already exists.");
        const auto e = error_of([&] { cat.create("alpha", "c1", log); });
        QCOMPARE(QString::fromStdString(e->code_name()), QString("NamespaceExists"));
        EXPECT_ERROR(cat.create("alpha", "", log), 73);
        EXPECT_ERROR(cat.create("alpha", "a$b", log), 73);
        EXPECT_ERROR(cat.create("", "c", log), 73);
        EXPECT_ERROR(cat.create("a.b", "c", log), 73);
        EXPECT_ERROR(cat.create("a b", "c", log), 73);
        EXPECT_ERROR(cat.get_or_create("a/b", "c", log), 73);
        EXPECT_ERROR(cat.create("ok", std::string("a\0b", 3), log), 73);
        cat.create("ok", "dotted.name", log);
        QVERIFY(cat.find("ok", "dotted.name") != nullptr);
        QVERIFY(cat.drop("alpha", "c1", log));
        QVERIFY(!cat.drop("alpha", "c1", log));
        QCOMPARE(cat.collection_names("alpha"), (std::vector<std::string>{"c2"}));
        QVERIFY(cat.drop_database("alpha", log));
        QCOMPARE(cat.database_names(), (std::vector<std::string>{"ok", "zeta"}));
        QVERIFY(cat.find("alpha", "c2") == nullptr);
    }

    void clone_is_a_deep_independent_copy() {
        catalog original;
        oplog log;
        collection& c = original.get_or_create("db", "c", log);
        c.insert(J("{'_id': 1, 'a': 1}"), log);
        c.insert(J("{'_id': 2, 'a': 2}"), log);
        c.create_index({"a_1", J("{'a': 1}"), true}, log);

        catalog copy = original.clone();
        collection* cc = copy.find("db", "c");
        QVERIFY(cc != nullptr);
        QVERIFY(cc != &c);
        SAME_LIST(cc->documents(), "[{'_id': 1, 'a': 1}, {'_id': 2, 'a': 2}]");
        QCOMPARE(cc->indexes().size(), std::size_t(2));

        oplog scratch;
        cc->insert(J("{'_id': 3, 'a': 3}"), scratch);
        cc->update(J("{'_id': 1}"), J("{'$set': {'a': 10}}"), false, false, scratch);
        cc->remove(J("{'_id': 2}"), true, scratch);
        cc->drop_index("a_1", scratch);
        copy.get_or_create("db", "extra", scratch);
        copy.create("other", "c", scratch);

        SAME_LIST(c.documents(), "[{'_id': 1, 'a': 1}, {'_id': 2, 'a': 2}]");
        QCOMPARE(c.indexes().size(), std::size_t(2));
        QCOMPARE(original.collection_names("db"), (std::vector<std::string>{"c"}));
        QCOMPARE(original.database_names(), (std::vector<std::string>{"db"}));
        // The original's unique index still works, and knows nothing of the clone's _id 3.
        EXPECT_ERROR(c.insert(J("{'_id': 9, 'a': 2}"), log), 11000);
        c.insert(J("{'_id': 3, 'a': 30}"), log);
        SAME_LIST(cc->documents(), "[{'_id': 1, 'a': 10}, {'_id': 3, 'a': 3}]");
        // And the other way round.
        c.remove(J("{}"), false, log);
        QCOMPARE(cc->size(), std::size_t(2));
    }
};

QTEST_APPLESS_MAIN(SimEngineTest)
#include "sim_engine_test.moc"
