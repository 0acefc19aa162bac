// Extended JSON: the parts the corpus does not pin down (error positions,
// legacy input forms, streams of documents, double and date formatting).
#include <QtTest/QtTest>

#include <cmath>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"

using namespace trellis;
using namespace trellis::bson;

namespace {
bson_error parse_error(std::string_view text, const json_parse_options& options = {}) {
    try {
        from_json(text, options);
    } catch (const bson_error& e) {
        if (e.code() != errc::json_invalid) qFatal("wrong error code: %s", e.what());
        return e;
    }
    qFatal("no error for: %.*s", static_cast<int>(text.size()), text.data());
}
bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }
}  // namespace

class JsonTest : public QObject {
    Q_OBJECT

private slots:
    void relaxed_and_canonical_numbers() {
        const document d = make_document(kvp("i", 1), kvp("l", std::int64_t(1) << 40), kvp("d", 1.0), kvp("e", 1e20),
                                         kvp("s", 0.0001), kvp("n", -2.5));
        QCOMPARE(to_json(d), std::string(R"({"i": 1, "l": 1099511627776, "d": 1.0, "e": 1.0E+20, "s": 0.0001, "n": -2.5})"));
        QCOMPARE(to_json(d, json_mode::canonical),
                 std::string(R"({"i": {"$numberInt": "1"}, "l": {"$numberLong": "1099511627776"}, )"
                             R"("d": {"$numberDouble": "1.0"}, "e": {"$numberDouble": "1.0E+20"}, )"
                             R"("s": {"$numberDouble": "0.0001"}, "n": {"$numberDouble": "-2.5"}})"));
    }

    void doubles_round_trip_exactly() {
        const double values[] = {0.1, 1.0 / 3, 5e-324, 1.7976931348623157e308, -0.0, 123456789012345680.0, 1e-5, 9.5e15};
        for (double v : values) {
            const document d = make_document(kvp("v", v));
            for (auto mode : {json_mode::relaxed, json_mode::canonical}) {
                const document back = from_json(to_json(d, mode));
                QCOMPARE(back["v"].type(), type::double_);
                const double got = back["v"].get_double();
                QVERIFY2(got == v && std::signbit(got) == std::signbit(v), to_json(d, mode).c_str());
            }
        }
    }

    void relaxed_integers_pick_the_narrowest_type() {
        const document d = from_json(R"({"a": 2147483647, "b": 2147483648, "c": -2147483649, "d": 9223372036854775808})");
        QCOMPARE(d["a"].type(), type::int32);
        QCOMPARE(d["b"].type(), type::int64);
        QCOMPARE(d["c"].type(), type::int64);
        QCOMPARE(d["d"].type(), type::double_);  // beyond int64: a double, as the spec says
    }

    void dates() {
        const document d = from_json(R"({"a": {"$date": "2012-12-24T12:15:30.501Z"}, "b": {"$date": "1970-01-01T01:00:00+01:00"},)"
                                     R"( "c": {"$date": "2012-12-24T12:15:30.5+0000"}, "d": {"$date": {"$numberLong": "-1"}}})");
        QCOMPARE(d["a"].get_date_time().milliseconds, std::int64_t(1356351330501));
        QCOMPARE(d["b"].get_date_time().milliseconds, std::int64_t(0));
        QCOMPARE(d["c"].get_date_time().milliseconds, std::int64_t(1356351330500));
        QCOMPARE(to_json(d), std::string(R"({"a": {"$date": "2012-12-24T12:15:30.501Z"}, "b": {"$date": "1970-01-01T00:00:00Z"}, )"
                                         R"("c": {"$date": "2012-12-24T12:15:30.500Z"}, "d": {"$date": {"$numberLong": "-1"}}})"));
        const auto e = parse_error(R"({"a": {"$date": "2012-13-24T12:15:30Z"}})");
        QVERIFY(contains(e.what(), "ISO-8601"));
    }

    void legacy_date_numbers_only_when_asked() {
        const auto e = parse_error(R"({"a": {"$date": 1356351330501}})");
        QVERIFY(contains(e.what(), "legacy_date_numbers"));
        json_parse_options legacy;
        legacy.legacy_date_numbers = true;
        QCOMPARE(from_json(R"({"a": {"$date": 1356351330501}})", legacy)["a"].get_date_time().milliseconds,
                 std::int64_t(1356351330501));
        parse_error(R"({"a": {"$date": 1.5}})", legacy);
    }

    void legacy_binary_and_regex_forms() {
        const document d = from_json(R"({"b": {"$binary": "AQID", "$type": "80"}, "r": {"$regex": "^x", "$options": "si"},)"
                                     R"( "q": {"$regex": {"$regularExpression": {"pattern": "a", "options": ""}}}})");
        QCOMPARE(d["b"].get_binary().subtype, std::uint8_t(0x80));
        QCOMPARE(d["b"].get_binary().bytes.size(), std::size_t(3));
        QCOMPARE(d["r"].get_regex().options, std::string_view("is"));
        // {"$regex": {...}} is a query operator, a plain document.
        QCOMPARE(d["q"].type(), type::document);
        QCOMPARE(d["q"].get_document()["$regex"].type(), type::regex);
    }

    // Options are sorted by code point, never byte by byte: a non-ASCII option stays valid UTF-8,
    // so what from_json writes validates and what to_json prints parses back.
    void regex_options_sort_by_code_point() {
        const document d = from_json(R"({"a": {"$regularExpression": {"pattern": "x", "options": "éim"}}})");
        QCOMPARE(d["a"].get_regex().options, std::string_view("imé"));
        const document_view checked = document_view::validated({d.data(), d.size()});
        QCOMPARE(checked.size(), d.size());
        const std::string json = to_json(d, json_mode::canonical);
        QCOMPARE(json, std::string(R"({"a": {"$regularExpression": {"pattern": "x", "options": "imé"}}})"));
        QCOMPARE(from_json(json).view().size(), d.size());

        // Unsorted options in BSON someone else wrote (the corpus's "flags not alphabetized",
        // with a non-ASCII flag): printed sorted and valid.
        const std::uint8_t degenerate[] = {0x0F, 0, 0, 0, 0x0B, 'a', 0, 'x', 0, 0xC3, 0xA9, 'm', 'i', 0, 0};
        const document_view raw = document_view::validated(degenerate);
        QCOMPARE(to_json(raw, json_mode::canonical),
                 std::string(R"({"a": {"$regularExpression": {"pattern": "x", "options": "imé"}}})"));

        // The builder: a four-byte sequence after ASCII letters, given first.
        const document built = make_document(kvp("r", regex{"p", "\xF0\x9F\x98\x80sa"}));
        QCOMPARE(built["r"].get_regex().options, std::string_view("as\xF0\x9F\x98\x80"));
        QCOMPARE(document_view::validated({built.data(), built.size()}).size(), built.size());
        // ASCII options sort as before.
        QCOMPARE(from_json(R"({"r": {"$regularExpression": {"pattern": "a", "options": "xsmi"}}})")["r"].get_regex().options,
                 std::string_view("imsx"));
    }

    void uuid_form() {
        const document d = from_json(R"({"u": {"$uuid": "73ffd264-44b3-4c69-90e8-e7d1dfc035d4"}})");
        QCOMPARE(d["u"].get_binary().subtype, binary_subtype::uuid);
        QCOMPARE(d["u"].get_binary().bytes[0], std::uint8_t(0x73));
        QCOMPARE(d["u"].get_binary().bytes[15], std::uint8_t(0xd4));
    }

    // Subtype 4 of another length than 16: valid BSON (the spec fixes no length), so what
    // to_json writes for it, from_json must read back, byte for byte.
    void uuid_subtype_of_any_length_round_trips() {
        for (const std::size_t n : {std::size_t{0}, std::size_t{2}, std::size_t{15}, std::size_t{17}}) {
            const std::vector<std::uint8_t> bytes(n, 0xAB);
            const document d = make_document(kvp("u", binary{binary_subtype::uuid, bytes}));
            QCOMPARE(document_view::validated({d.data(), d.size()}).size(), d.size());
            for (const json_mode mode : {json_mode::canonical, json_mode::relaxed}) {
                const std::string json = to_json(d, mode);
                QVERIFY2(contains(json, R"("subType": "04")"), json.c_str());
                const document back = from_json(json);
                QCOMPARE(std::vector<std::uint8_t>(back.data(), back.data() + back.size()),
                         std::vector<std::uint8_t>(d.data(), d.data() + d.size()));
            }
        }
        QCOMPARE(from_json(R"({"u": {"$binary": {"base64": "q6s=", "subType": "04"}}})")["u"].get_binary().bytes.size(),
                 std::size_t{2});
        // The typed UUID accessor still wants 16 bytes, and "$uuid" text still means 16 bytes.
        QVERIFY_THROWS_EXCEPTION(bson_error, from_json(R"({"u": {"$binary": {"base64": "q6s=", "subType": "04"}}})")["u"].get_uuid());
        QVERIFY(contains(parse_error(R"({"u": {"$uuid": "73ffd264-44b3-90e8-e7d1dfc035d4"}})").what(), "uuid"));
    }

    void errors_name_line_column_and_offset() {
        const std::string text = "{\n  \"a\": 1,\n  \"b\": {\"$numberInt\": 42}\n}";
        const auto e = parse_error(text);
        QVERIFY2(contains(e.what(), "line 3, column 23"), e.what());
        QVERIFY(contains(e.what(), "must be a string, got number"));
        QCOMPARE(e.offset(), text.find("42"));

        QVERIFY(contains(parse_error(R"({"a": 01})").what(), "leading zero"));
        QVERIFY(contains(parse_error("{\"a\": \"x").what(), "unterminated string"));
        QVERIFY(contains(parse_error(R"({"a": 1,})").what(), "expected a quoted key"));
        QVERIFY(contains(parse_error(R"({"a": 1} x)").what(), "after the document"));
        QVERIFY(contains(parse_error(R"([1, 2])").what(), "expected a JSON object"));
        QVERIFY(contains(parse_error(R"({"a": "\ud800"})").what(), "surrogate"));
        QVERIFY(contains(parse_error("{\"a\": \"\x01\"}").what(), "control character"));
        QVERIFY(contains(parse_error("{\"a\": \"\xC3\x28\"}").what(), "invalid UTF-8"));
        QVERIFY(contains(parse_error(R"({"a": {"$oid": "1234"}})").what(), "24 hex digits"));
        QVERIFY(contains(parse_error(R"({"a": {"$binary": {"base64": "AQI", "subType": "00"}}})").what(), "base64"));
        QVERIFY(contains(parse_error(R"({"a": {"$numberInt": "2147483648"}})").what(), "32-bit"));
    }

    void nesting_is_bounded() {
        std::string deep;
        for (int i = 0; i < 300; ++i) deep += "{\"a\": ";
        deep += "1";
        for (int i = 0; i < 300; ++i) deep += "}";
        QVERIFY(contains(parse_error(deep).what(), "nesting deeper"));
    }

    void escapes_and_unicode() {
        const document d = from_json("{\"s\": \"tab\\there \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\/\"}");
        QCOMPARE(d["s"].get_string(), std::string_view("tab\there \"q\" \xC3\xA9 \xF0\x9F\x98\x80 /"));
        QCOMPARE(to_json(d), std::string("{\"s\": \"tab\\there \\\"q\\\" \xC3\xA9 \xF0\x9F\x98\x80 /\"}"));
        const document ctl = make_document(kvp("c", std::string("\x01\x1f", 2)));
        QCOMPARE(to_json(ctl), std::string(R"({"c": "\u0001\u001f"})"));
    }

    void reader_yields_each_document() {
        const std::string text = "{\"a\": 1}\n{\"a\": 2}\n\n  {\n \"a\": 3\n}\n";
        json_reader reader(text);
        std::vector<int> seen;
        while (auto d = reader.next()) seen.push_back((*d)["a"].get_int32());
        QCOMPARE(seen, (std::vector<int>{1, 2, 3}));

        json_reader broken("{\"a\": 1}\n{\"a\": }\n");
        QVERIFY(broken.next());
        try {
            broken.next();
            QFAIL("no error for the second document");
        } catch (const bson_error& e) {
            QVERIFY2(contains(e.what(), "line 2, column 7"), e.what());
        }
    }

    void arrays_and_nested_wrappers() {
        const document d = from_json(R"({"a": [1, {"$numberLong": "2"}, [], {"x": null}], "m": {"$minKey": 1}})");
        QCOMPARE(d["a"].get_array()[1].type(), type::int64);
        QCOMPARE(d["a"].get_array()[3].get_document()["x"].type(), type::null);
        QCOMPARE(to_json(d, json_mode::canonical),
                 std::string(R"({"a": [{"$numberInt": "1"}, {"$numberLong": "2"}, [], {"x": null}], "m": {"$minKey": 1}})"));
        QCOMPARE(to_json(d["a"].get_array()), std::string(R"([1, 2, [], {"x": null}])"));
    }
};

QTEST_APPLESS_MAIN(JsonTest)
#include "json_test.moc"
