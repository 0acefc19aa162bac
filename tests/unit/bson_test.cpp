// BSON views, builder, validation and ObjectId.
#include <QtTest/QtTest>

#include <set>
#include <thread>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"

using namespace trellis;
using namespace trellis::bson;

namespace {

std::vector<std::uint8_t> bytes_of(std::initializer_list<int> v) {
    std::vector<std::uint8_t> out;
    for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
    return out;
}

std::vector<std::uint8_t> copy(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

// Runs f, which must throw bson_error with this code; returns the error.
template <class F>
bson_error expect_error(F&& f, errc code) {
    try {
        f();
    } catch (const bson_error& e) {
        if (e.code() != code) qFatal("wrong error code %d: %s", e.code().value(), e.what());
        return e;
    }
    qFatal("expected a bson_error, none was thrown");
}

// Text of every length up to `longest` put in a document by `make` at byte `at_byte`: all
// ASCII it passes; a bad byte at any position is refused at that byte, with `why`; a good
// two-byte character at any position passes.
template <class Make>
void check_every_position(Make make, std::size_t at_byte, std::size_t longest, std::uint8_t bad_byte,
                          const char* why) {
    for (std::size_t length = 0; length <= longest; ++length) {
        const std::vector<std::uint8_t> text(length, 't');
        QVERIFY2(!find_error(make(text)), qPrintable(QString("ASCII text of %1 bytes").arg(length)));
        for (std::size_t at = 0; at < length; ++at) {
            auto bad = text;
            bad[at] = bad_byte;
            const auto failure = find_error(make(bad));
            QVERIFY2(failure, qPrintable(QString("a bad byte at %1 of %2").arg(at).arg(length)));
            QCOMPARE(failure->offset, at_byte + at);
            QVERIFY2(failure->message.find(why) != std::string::npos, failure->message.c_str());
            if (at + 1 < length) {
                auto good = text;
                good[at] = 0xC3;  // é
                good[at + 1] = 0xA9;
                QVERIFY2(!find_error(make(good)), qPrintable(QString("é at %1 of %2").arg(at).arg(length)));
            }
        }
    }
}

}  // namespace

class BsonTest : public QObject {
    Q_OBJECT

private slots:
    void make_document_bytes() {
        // {"a": 1, "tags": ["x", "y"]} written out by hand from the BSON spec.
        const auto expected = bytes_of({0x29, 0, 0, 0,                               // total 41 = 4 + 7 + 6 + 23 + 1
                                        0x10, 'a', 0, 1, 0, 0, 0,                    // int32 a: 1
                                        0x04, 't', 'a', 'g', 's', 0,                 // array tags
                                        0x17, 0, 0, 0,                               // 23 bytes
                                        0x02, '0', 0, 2, 0, 0, 0, 'x', 0,            // "0": "x"
                                        0x02, '1', 0, 2, 0, 0, 0, 'y', 0,            // "1": "y"
                                        0,                                           // end of array
                                        0});                                         // end of document
        const document d = make_document(kvp("a", 1), kvp("tags", make_array("x", "y")));
        QCOMPARE(copy(d.bytes()), expected);
        QVERIFY(!find_error(d.bytes()));
    }

    void streaming_builder_in_a_loop() {
        builder b;
        b.append("name", std::string("loop"));
        b.open_array("squares");
        for (int i = 0; i < 12; ++i) b.append(i * i);
        b.close_array();
        b.open_document("sub").append("ok", true).open_array("empty").close_array().close_document();
        const document d = b.extract();
        QVERIFY(!find_error(d.bytes()));
        QCOMPARE(d["name"].get_string(), std::string_view("loop"));
        const array_view squares = d["squares"].get_array();
        QCOMPARE(squares.size(), std::size_t(12));
        QCOMPARE(squares[11].get_int32(), 121);
        QCOMPARE(squares[10].key(), std::string_view("10"));
        QCOMPARE(d["sub"].get_document()["ok"].get_bool(), true);
        QVERIFY(d["sub"].get_document()["empty"].get_array().empty());
        // The builder starts over after extract().
        b.append("x", 1);
        QCOMPARE(b.extract().size(), std::size_t(12));
    }

    void builder_misuse_is_reported() {
        builder b;
        expect_error([&] { b.append(1); }, errc::bson_invalid);          // no key in a document
        expect_error([&] { b.close_document(); }, errc::bson_invalid);   // nothing open
        b.open_array("a");
        expect_error([&] { b.append("k", 1); }, errc::bson_invalid);     // key inside an array
        expect_error([&] { b.close_document(); }, errc::bson_invalid);   // wrong kind closed
        expect_error([&] { b.extract(); }, errc::bson_invalid);          // still open
        b.close_array();
        QVERIFY(!find_error(b.extract().bytes()));
    }

    void every_type_round_trips_through_accessors() {
        const oid id = oid::from_hex("57e193d7a9cc81b4027498b5");
        const std::uint8_t raw[] = {1, 2, 3};
        const document scope = make_document(kvp("x", 1));
        builder b;
        b.append("double", 1.5)
            .append("string", "s")
            .append("binary", binary{binary_subtype::generic, raw})
            .append("old", binary{binary_subtype::binary_old, raw})
            .append("undefined", bson::undefined)
            .append("oid", id)
            .append("bool", false)
            .append("date", date_time(1356351330501))
            .append("null", bson::null)
            .append("regex", regex{"^a", "mi"})
            .append("dbptr", db_pointer{"db.c", id})
            .append("code", code{"f()"})
            .append("symbol", symbol{"sym"})
            .append("cws", code_w_scope{"g()", scope.view()})
            .append("int32", std::int32_t{-7})
            .append("ts", timestamp{42, 7})
            .append("int64", std::int64_t{1} << 40)
            .append("dec", decimal128::from_string("1.23E+5"))
            .append("min", bson::min_key)
            .append("max", bson::max_key);
        const document d = b.extract();
        QVERIFY(!find_error(d.bytes()));
        QCOMPARE(d.view().count(), std::size_t(20));
        QCOMPARE(d["double"].get_double(), 1.5);
        QCOMPARE(d["binary"].get_binary().bytes.size(), std::size_t(3));
        // The old subtype carries its inner length on the wire but not in the value.
        QCOMPARE(d["old"].raw_value().size(), std::size_t(4 + 1 + 4 + 3));
        QCOMPARE(d["old"].get_binary().bytes[2], std::uint8_t(3));
        QCOMPARE(d["undefined"].type(), type::undefined);
        QCOMPARE(d["oid"].get_oid(), id);
        QCOMPARE(d["bool"].get_bool(), false);
        QCOMPARE(d["date"].get_date_time().milliseconds, std::int64_t(1356351330501));
        QVERIFY(d["null"].is_null());
        QCOMPARE(d["regex"].get_regex().options, std::string_view("im"));  // sorted on write
        QCOMPARE(d["dbptr"].get_db_pointer().collection, std::string_view("db.c"));
        QCOMPARE(d["code"].get_code().javascript, std::string_view("f()"));
        QCOMPARE(d["symbol"].get_symbol().value, std::string_view("sym"));
        QCOMPARE(d["cws"].get_code_w_scope().scope["x"].get_int32(), 1);
        QCOMPARE(d["int32"].get_int32(), -7);
        QCOMPARE(d["ts"].get_timestamp().seconds, 42u);
        QCOMPARE(d["ts"].get_timestamp().increment, 7u);
        QCOMPARE(d["int64"].get_int64(), std::int64_t(1) << 40);
        QCOMPARE(d["dec"].get_decimal128().to_string(), std::string("1.23E+5"));
        QCOMPARE(d["min"].type(), type::min_key);
        QCOMPARE(d["max"].type(), type::max_key);
    }

    void type_mismatch_names_key_and_types() {
        const document d = make_document(kvp("n", 5));
        const auto e = expect_error([&] { (void)d["n"].get_string(); }, errc::bson_type_mismatch);
        QVERIFY(std::string(e.what()).find("field \"n\" is int, not string") != std::string::npos);
        const auto missing = expect_error([&] { (void)d["zz"]; }, errc::bson_key_not_found);
        QVERIFY(std::string(missing.what()).find("\"zz\"") != std::string::npos);
        QVERIFY(!d.find("zz"));
        QCOMPARE(d["n"].as_double(), 5.0);
        QCOMPARE(d["n"].as_int64(), std::int64_t(5));
        QVERIFY(d["n"].as_bool());
    }

    void numeric_conversions() {
        const document d = make_document(kvp("d", 3.0), kvp("f", 2.5), kvp("l", std::int64_t(9)), kvp("s", "x"));
        QCOMPARE(d["d"].as_int64(), std::int64_t(3));
        expect_error([&] { (void)d["f"].as_int64(); }, errc::bson_type_mismatch);
        QCOMPARE(d["l"].as_double(), 9.0);
        expect_error([&] { (void)d["s"].as_double(); }, errc::bson_type_mismatch);
    }

    void views_do_not_copy() {
        const document d = make_document(kvp("sub", make_document(kvp("s", "text"))));
        const document_view sub = d["sub"].get_document();
        QVERIFY(sub.data() > d.data() && sub.data() < d.data() + d.size());
        const std::string_view s = sub["s"].get_string();
        QVERIFY(reinterpret_cast<const std::uint8_t*>(s.data()) > sub.data());
        QVERIFY(reinterpret_cast<const std::uint8_t*>(s.data()) < sub.data() + sub.size());
    }

    void validation_reports_offsets() {
        // {"a": "bc"} with the string length claiming 9 bytes.
        auto bad = bytes_of({0x0F, 0, 0, 0, 0x02, 'a', 0, 9, 0, 0, 0, 'b', 'c', 0, 0});
        auto failure = find_error(bad);
        QVERIFY(failure);
        QCOMPARE(failure->offset, std::size_t(7));
        QVERIFY(failure->message.find("length 9") != std::string::npos);

        // Invalid UTF-8 inside a string: the offset is the bad byte.
        auto utf8 = bytes_of({0x0F, 0, 0, 0, 0x02, 'a', 0, 3, 0, 0, 0, 'b', 0xC3, 0, 0});
        failure = find_error(utf8);
        QVERIFY(failure);
        QCOMPARE(failure->offset, std::size_t(12));
        QVERIFY(failure->message.find("UTF-8") != std::string::npos);

        // Overlong encoding and surrogates are invalid too.
        auto overlong = bytes_of({0x10, 0, 0, 0, 0x02, 'a', 0, 3, 0, 0, 0, 0xC0, 0xAF, 0, 0, 0});
        overlong[0] = 0x0F;
        overlong.pop_back();
        QVERIFY(find_error(overlong));
        auto surrogate = bytes_of({0x10, 0, 0, 0, 0x02, 'a', 0, 4, 0, 0, 0, 0xED, 0xA0, 0x80, 0, 0});
        QVERIFY(find_error(surrogate));

        // A bad boolean byte.
        auto boolean = bytes_of({0x09, 0, 0, 0, 0x08, 'b', 0, 2, 0});
        failure = find_error(boolean);
        QVERIFY(failure);
        QCOMPARE(failure->offset, std::size_t(7));

        // validate() throws with the offset.
        const auto e = expect_error([&] { validate(bad); }, errc::bson_invalid);
        QCOMPARE(e.offset(), std::size_t(7));
        QVERIFY(std::string(e.what()).find("at byte 7") != std::string::npos);
    }

    void keys_of_every_length_are_checked_byte_by_byte() {
        // The key scan reads eight bytes at a time, up to the NUL; the value after it has bytes
        // of 0x80 and more, which must not count as the key's.
        check_every_position(
            [](const std::vector<std::uint8_t>& key) {
                std::vector<std::uint8_t> d(key.size() + 11, 0x80);  // {key: int32 0x80808080}
                d[0] = static_cast<std::uint8_t>(d.size());
                d[1] = d[2] = d[3] = 0;
                d[4] = 0x10;
                std::copy(key.begin(), key.end(), d.begin() + 5);
                d[5 + key.size()] = 0;
                d.back() = 0;
                return d;
            },
            5, 19, 0xFF, "key is not valid UTF-8");
        // A key that runs to the end of its document.
        auto unterminated = bytes_of({0x10, 0, 0, 0, 0x0A, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 0});
        const auto failure = find_error(unterminated);
        QVERIFY(failure);
        QVERIFY(failure->message.find("not terminated") != std::string::npos);
    }

    void strings_of_every_length_are_checked_byte_by_byte() {
        // The ASCII test reads eight (or four) bytes at a time, the last word overlapping.
        check_every_position(
            [](const std::vector<std::uint8_t>& text) {
                std::vector<std::uint8_t> d(text.size() + 13, 0);  // {"s": text}
                d[0] = static_cast<std::uint8_t>(d.size());
                d[4] = 0x02;
                d[5] = 's';
                d[7] = static_cast<std::uint8_t>(text.size() + 1);
                std::copy(text.begin(), text.end(), d.begin() + 11);
                return d;
            },
            11, 20, 0x80, "is not valid UTF-8");
    }

    void every_type_byte_is_sized_or_refused() {
        // {"k": value, "z": null}: a fixed-size value of the wrong size would put "z" elsewhere.
        const std::pair<type, std::size_t> fixed[] = {
            {type::double_, 8}, {type::undefined, 0}, {type::oid, 12}, {type::boolean, 1},  {type::date_time, 8},
            {type::null, 0},    {type::int32, 4},     {type::timestamp, 8}, {type::int64, 8}, {type::decimal128, 16},
            {type::min_key, 0}, {type::max_key, 0}};
        for (const auto& [t, n] : fixed) {
            std::vector<std::uint8_t> d{0, 0, 0, 0, static_cast<std::uint8_t>(t), 'k', 0};
            d.insert(d.end(), n, t == type::boolean ? 1 : 0x20);  // 0x20 is no type
            d.insert(d.end(), {0x0A, 'z', 0, 0});
            d[0] = static_cast<std::uint8_t>(d.size());
            QVERIFY2(!find_error(d), qPrintable(QString("type 0x%1").arg(static_cast<int>(t), 2, 16, QChar('0'))));
            const document_view v(d.data(), d.size());
            QCOMPARE(v.count(), std::size_t(2));
            QCOMPARE((*v.begin()).raw_value().size(), n);
            QVERIFY(v["z"].is_null());
        }
        // Every byte that is no type, and 0x00 where an element should start.
        for (int b = 0; b < 256; ++b) {
            if (b != 0 && is_known_type(static_cast<std::uint8_t>(b))) continue;
            const auto d = bytes_of({0x0C, 0, 0, 0, b, 'k', 0, 0, 0, 0, 0, 0});
            const auto failure = find_error(d);
            QVERIFY2(failure, qPrintable(QString("byte 0x%1").arg(b, 2, 16, QChar('0'))));
            QCOMPARE(failure->offset, std::size_t(4));
            const std::string why = b == 0 ? "unexpected 0x00" : "unknown element type 0x";
            QVERIFY2(failure->message.find(why) != std::string::npos, failure->message.c_str());
        }
    }

    void iteration_reads_keys_of_every_length_up_to_the_last_byte() {
        // The iterator reads a key eight bytes at a time while eight remain: keys of every length
        // as the last element of an exactly sized buffer (ASan sees any read past it), with the
        // bytes after their NUL non-zero.
        for (std::size_t length = 0; length <= 20; ++length) {
            std::string key;
            for (std::size_t i = 0; i < length; ++i) key += static_cast<char>('a' + i % 26);
            for (const bool boolean : {false, true}) {
                builder b;
                b.append("first", std::int32_t{-1});
                if (boolean) b.append(key, true);
                else b.append(key, bson::null);
                const document doc = b.extract();
                const std::vector<std::uint8_t> exact(doc.bytes().begin(), doc.bytes().end());
                const document_view v(exact.data(), exact.size());
                std::vector<std::string_view> keys;
                std::size_t bytes = 0;
                for (const element& e : v) {
                    keys.push_back(e.key());
                    bytes += e.raw().size();
                }
                QCOMPARE(keys.size(), std::size_t(2));
                QCOMPARE(keys[1], std::string_view(key));
                QCOMPARE(bytes, exact.size() - 5);
                QVERIFY(v.find(key).has_value());
                QCOMPARE(v["first"].get_int32(), -1);
            }
        }
    }

    void validation_limits_depth_and_size() {
        builder b;
        for (int i = 0; i < 30; ++i) b.open_document("d");
        for (int i = 0; i < 30; ++i) b.close_document();
        const document deep = b.extract();
        QVERIFY(!find_error(deep.bytes()));
        validation_options shallow;
        shallow.max_depth = 10;
        auto failure = find_error(deep.bytes(), shallow);
        QVERIFY(failure);
        QVERIFY(failure->message.find("depth") != std::string::npos);

        validation_options small;
        small.max_size = 16;
        const document big = make_document(kvp("s", std::string(100, 'x')));
        failure = find_error(big.bytes(), small);
        QVERIFY(failure);
        QCOMPARE(failure->code, errc::bson_too_large);
    }

    void negative_and_absurd_lengths_are_errors() {
        auto negative = bytes_of({0xFF, 0xFF, 0xFF, 0xFF, 0});
        QVERIFY(find_error(negative));
        // A nested document claiming 2 GiB inside a 13-byte buffer.
        auto nested = bytes_of({0x0D, 0, 0, 0, 0x03, 'a', 0, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0});
        const auto failure = find_error(nested);
        QVERIFY(failure);
        QCOMPARE(failure->offset, std::size_t(7));
    }

    void nul_bytes_refused_in_keys_and_regex() {
        // Prose test 1 of the corpus spec.
        builder b;
        expect_error([&] { b.append(std::string_view("a\0b", 3), 1); }, errc::bson_invalid);
        builder c;
        c.open_document("sub");
        expect_error([&] { c.append(std::string_view("x\0", 2), 1); }, errc::bson_invalid);
        builder r;
        expect_error([&] { r.append("r", regex{std::string_view("a\0", 2), "i"}); }, errc::bson_invalid);
        builder o;
        expect_error([&] { o.append("r", regex{"a", std::string_view("i\0", 2)}); }, errc::bson_invalid);
    }

    void duplicate_keys_are_kept_in_order() {
        // Prose test 2 of the corpus spec: our choice is "both values preserved in order",
        // lookup takes the first.
        builder b;
        b.append("foo", 1).append("foo", 2);
        const document d = b.extract();
        const auto data = bytes_of({0x17, 0, 0, 0, 0x10, 'f', 'o', 'o', 0, 1, 0, 0, 0, 0x10, 'f', 'o', 'o', 0, 2, 0, 0, 0, 0});
        QCOMPARE(copy(d.bytes()), data);
        const document_view v = document_view::validated(data);
        std::vector<int> values;
        for (const element& e : v) values.push_back(e.get_int32());
        QCOMPARE(values, (std::vector<int>{1, 2}));
        QCOMPARE(v["foo"].get_int32(), 1);
        QCOMPARE(to_json(v), std::string(R"({"foo": 1, "foo": 2})"));
        QCOMPARE(copy(from_json(R"({"foo": 1, "foo": 2})").bytes()), data);
    }

    void document_copies_and_views() {
        const document a = make_document(kvp("x", 1));
        document b = a;
        QVERIFY(a == b);
        QVERIFY(a.data() != b.data());
        document c = std::move(b);
        QVERIFY(c == a);
        QVERIFY(document().empty());
        QCOMPARE(document_view().size(), std::size_t(5));
        const document from = document::from_bytes(a.bytes());
        QVERIFY(from == a);
        const auto bad = bytes_of({6, 0, 0, 0, 0, 0});
        expect_error([&] { (void)document::from_bytes(bad); }, errc::bson_invalid);
    }

    void borrowed_documents() {
        // The library's blocking calls pass a caller's view down as a document that does not own it.
        const document owner = make_document(kvp("x", 1), kvp("s", "text"));
        document b = bson::detail::borrow(owner.view());
        QCOMPARE(b.data(), owner.data());  // no copy
        QVERIFY(b == owner);
        const document copied = b;  // a copy owns its bytes
        QVERIFY(copied.data() != owner.data());
        QVERIFY(copied == owner);
        document moved = std::move(b);  // a move carries the borrow
        QCOMPARE(moved.data(), owner.data());
        QVERIFY(b.empty());
        document assigned = make_document(kvp("y", 2));
        assigned = std::move(moved);  // frees its own bytes (ASan: no leak), takes the borrow
        QCOMPARE(assigned.data(), owner.data());
        assigned = std::move(assigned);  // self-move: unchanged
        QCOMPARE(assigned.data(), owner.data());
        auto released = assigned.release();  // a borrowed buffer cannot be given away: a copy
        QVERIFY(released.get() != owner.data());
        QVERIFY(std::memcmp(released.get(), owner.data(), owner.size()) == 0);
        QVERIFY(assigned.empty());
        const document retaken(std::move(released), owner.size());
        QVERIFY(retaken == owner);
        auto from_empty = document().release();  // {} gives five bytes of its own
        QCOMPARE(from_empty[0], std::uint8_t{5});
        QCOMPARE(bson::detail::borrow(document_view()).size(), std::size_t{5});
        // An array over borrowed bytes.
        const array owned_array = make_array(1, 2, 3);
        const array borrowed_array(bson::detail::borrow(owned_array.view()));
        QCOMPARE(borrowed_array.bytes().data(), owned_array.bytes().data());
        QCOMPARE(borrowed_array.size(), std::size_t{3});
    }

    void builder_view_while_building() {
        builder b;
        b.append("a", 1);
        QCOMPARE(b.view()["a"].get_int32(), 1);
        b.append("b", 2);
        const document d = b.extract();
        QCOMPARE(d.view().count(), std::size_t(2));
        QVERIFY(!find_error(d.bytes()));
    }

    void concat_and_element_copy() {
        const document src = make_document(kvp("a", 1), kvp("b", "two"));
        builder b;
        b.append("first", true).concat(src).append(src["b"]);
        const document d = b.extract();
        QVERIFY(!find_error(d.bytes()));
        QCOMPARE(to_json(d), std::string(R"({"first": true, "a": 1, "b": "two", "b": "two"})"));
    }

    void element_values_under_new_keys() {
        const document src = make_document(kvp("a", 1), kvp("s", "text"), kvp("d", make_document(kvp("x", 2))));
        builder b;
        b.append("renamed", src["s"]).open_array("values");
        for (const element& e : src) b.append_value(e);
        b.close_array();
        const document d = b.extract();
        QVERIFY(!find_error(d.bytes()));
        QCOMPARE(to_json(d), std::string(R"({"renamed": "text", "values": [1, "text", {"x": 2}]})"));
        builder wrong;
        expect_error([&] { wrong.append_value(src["a"]); }, errc::bson_invalid);  // no array open
    }

    void oid_format_and_parse() {
        const oid id = oid::from_hex("000102030405060708090A0B");
        QCOMPARE(id.to_hex(), std::string("000102030405060708090a0b"));
        QVERIFY(!oid::parse("xyz"));
        QVERIFY(!oid::parse("000102030405060708090a0g"));
        expect_error([] { (void)oid::from_hex("123"); }, errc::bson_invalid);
    }

    void oid_generation_follows_the_spec() {
        const auto now = std::chrono::system_clock::now();
        const oid a = oid::generate(now), b = oid::generate(now);
        // Same process: the same five random bytes.
        QVERIFY(std::equal(a.bytes().begin() + 4, a.bytes().begin() + 9, b.bytes().begin() + 4));
        // The counter is big-endian and increases by one.
        auto counter = [](const oid& o) { return o.bytes()[9] << 16 | o.bytes()[10] << 8 | o.bytes()[11]; };
        QCOMPARE((counter(a) + 1) & 0xFFFFFF, counter(b));
        // Seconds, big-endian.
        QCOMPARE(std::chrono::duration_cast<std::chrono::seconds>(a.timestamp().time_since_epoch()).count(),
                 std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
        const oid fixed = oid::generate(std::chrono::system_clock::time_point(std::chrono::seconds(0x01020304)));
        QCOMPARE(fixed.bytes()[0], std::uint8_t(1));
        QCOMPARE(fixed.bytes()[3], std::uint8_t(4));
    }

    void oid_generation_is_thread_safe() {
        std::vector<std::vector<oid>> per_thread(4);
        std::vector<std::thread> threads;
        for (auto& ids : per_thread)
            threads.emplace_back([&ids] {
                for (int i = 0; i < 5000; ++i) ids.push_back(oid::generate());
            });
        for (auto& t : threads) t.join();
        std::set<oid> all;
        for (const auto& ids : per_thread) all.insert(ids.begin(), ids.end());
        QCOMPARE(all.size(), std::size_t(20000));
    }

    void uuid_to_and_from_16_bytes() {
        const auto u = uuid::parse("73FFD264-44b3-4c69-90e8-e7d1dfc035d4");
        QVERIFY(u);
        QCOMPARE(u->bytes[0], std::uint8_t(0x73));
        QCOMPARE(u->to_string(), std::string("73ffd264-44b3-4c69-90e8-e7d1dfc035d4"));
        const document d = make_document(kvp("u", *u), kvp("short", binary{binary_subtype::uuid, std::span(u->bytes).first(8)}),
                                         kvp("legacy", binary{binary_subtype::uuid_old, u->bytes}));
        QCOMPARE(d["u"].get_binary().subtype, binary_subtype::uuid);
        QCOMPARE(d["u"].get_binary().bytes.size(), std::size_t(16));
        QVERIFY(d["u"].get_uuid() == *u);
        expect_error([&] { (void)d["short"].get_uuid(); }, errc::bson_type_mismatch);
        expect_error([&] { (void)d["legacy"].get_uuid(); }, errc::bson_type_mismatch);
        QVERIFY(!uuid::parse("73ffd264-44b3-4c69-90e8-e7d1dfc035d"));
        QVERIFY(!uuid::parse("73ffd26444b3-4c69-90e8-e7d1dfc035d4-"));
    }

    void date_time_from_chrono() {
        const auto tp = std::chrono::system_clock::time_point(std::chrono::milliseconds(1500));
        const document d = make_document(kvp("t", tp));
        QCOMPARE(d["t"].get_date_time().milliseconds, std::int64_t(1500));
        QVERIFY(d["t"].get_date_time().time_point() == tp);
    }
};

QTEST_APPLESS_MAIN(BsonTest)
#include "bson_test.moc"
