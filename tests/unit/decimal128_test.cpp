// Unit tests for trellis::bson::decimal128 (BSON type 0x13, IEEE 754-2008 BID).
//
// Expected bit patterns come from the bson-corpus and from an independent
// encoder (a decimal context with 34 digits, exponents -6176..6111, clamping),
// so they check the encoding itself rather than round trips alone.
#include <QtTest/QtTest>

#include <array>
#include <cstdint>
#include <string>

#include "trellis/bson/decimal128.hpp"
#include "trellis/errors.hpp"

using trellis::bson::decimal128;

namespace {

QByteArray str(const decimal128& d) { return QByteArray::fromStdString(d.to_string()); }

// Parses text and fails the current test when it is rejected.
decimal128 parsed(const QByteArray& text) {
    const auto d = decimal128::parse(std::string_view(text.constData(), static_cast<std::size_t>(text.size())));
    if (!d) {
        QTest::qFail(("unexpectedly rejected: " + text).constData(), __FILE__, __LINE__);
        return decimal128(0xDEADBEEFDEADBEEFULL, 0xDEADBEEFDEADBEEFULL);
    }
    return *d;
}

// The default value and the raw constructor are usable at compile time.
static_assert(decimal128{} == decimal128(0x3040000000000000ULL, 0));
static_assert(decimal128(1, 2).high() == 1 && decimal128(1, 2).low() == 2);
static_assert(!(decimal128(0x3040000000000000ULL, 1) == decimal128{}));

}  // namespace

class Decimal128Test : public QObject {
    Q_OBJECT

private slots:
    void default_is_zero();

    // Strings with their exact bits and canonical form.
    void parse_valid_data();
    void parse_valid();

    // Bits (including non-canonical ones) to their string.
    void format_data();
    void format();

    void nan();
    void infinity();
    void zero_sign();
    void clamping();
    void exact_rounding();

    void parse_errors_data();
    void parse_errors();
    void from_string_throws();

    void bytes_order();
    void bytes_round_trip();
    void canonical_round_trip();
};

void Decimal128Test::default_is_zero() {
    const decimal128 zero;
    QCOMPARE(quint64(zero.high()), 0x3040000000000000ULL);
    QCOMPARE(quint64(zero.low()), 0ULL);
    QVERIFY(zero == decimal128::from_string("0"));
    QCOMPARE(str(zero), QByteArray("0"));
    QVERIFY(!zero.is_nan());
    QVERIFY(!zero.is_infinite());
    QVERIFY(!zero.is_negative());
}

void Decimal128Test::parse_valid_data() {
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<quint64>("high");
    QTest::addColumn<quint64>("low");
    QTest::addColumn<QByteArray>("canonical");

    auto row = [](const char* text, quint64 high, quint64 low, const char* canonical) {
        QTest::newRow(text) << QByteArray(text) << high << low << QByteArray(canonical);
    };
    // Zeros keep their exponent and sign.
    row("0", 0x3040000000000000ULL, 0, "0");
    row("-0", 0xB040000000000000ULL, 0, "-0");
    row("0.00", 0x303C000000000000ULL, 0, "0.00");
    row("-0.0", 0xB03E000000000000ULL, 0, "-0.0");
    row("0E+3", 0x3046000000000000ULL, 0, "0E+3");
    // Plain integers and the spec's example strings.
    row("1", 0x3040000000000000ULL, 1, "1");
    row("-1", 0xB040000000000000ULL, 1, "-1");
    row("123", 0x3040000000000000ULL, 123, "123");
    row("12.70", 0x303C000000000000ULL, 1270, "12.70");
    row("+0.003", 0x303A000000000000ULL, 3, "0.003");
    row("017.", 0x3040000000000000ULL, 17, "17");
    row("-.5", 0xB03E000000000000ULL, 5, "-0.5");
    row("4E+9", 0x3052000000000000ULL, 4, "4E+9");
    row("0.73e-7", 0x302E000000000000ULL, 73, "7.3E-8");
    row("-1.23E-12", 0xB024000000000000ULL, 123, "-1.23E-12");
    // Exponent zero prints plainly, any positive exponent switches to E form.
    row("5E+0", 0x3040000000000000ULL, 5, "5");
    row("1E+1", 0x3042000000000000ULL, 1, "1E+1");
    row("123E1", 0x3042000000000000ULL, 123, "1.23E+3");
    row("50E-1", 0x303E000000000000ULL, 50, "5.0");
    // Plain form down to adjusted exponent -6, E form below it.
    row("0.000001", 0x3034000000000000ULL, 1, "0.000001");
    row("1234567E-12", 0x3028000000000000ULL, 1234567, "0.000001234567");
    row("0E-6", 0x3034000000000000ULL, 0, "0.000000");
    row("0.0000001", 0x3032000000000000ULL, 1, "1E-7");
    row("0.00000012", 0x3030000000000000ULL, 12, "1.2E-7");
    row("123E-9", 0x302E000000000000ULL, 123, "1.23E-7");
    row("0E-7", 0x3032000000000000ULL, 0, "0E-7");
    // Largest and smallest magnitudes.
    row("9999999999999999999999999999999999E+6111", 0x5FFFED09BEAD87C0ULL, 0x378D8E63FFFFFFFFULL,
        "9.999999999999999999999999999999999E+6144");
    row("-9.999999999999999999999999999999999E+6144", 0xDFFFED09BEAD87C0ULL, 0x378D8E63FFFFFFFFULL,
        "-9.999999999999999999999999999999999E+6144");
    row("1E-6176", 0, 1, "1E-6176");
    row("-1E-6176", 0x8000000000000000ULL, 1, "-1E-6176");
    row("1.000000000000000000000000000000000E-6143", 0x0000314DC6448D93ULL, 0x38C15B0A00000000ULL,
        "1.000000000000000000000000000000000E-6143");
    // Many leading zeros are insignificant; a trailing zero after them is kept.
    row("0.0000000000000000000000000000000000000000000000000000000001000", 0x2FC6000000000000ULL, 1000,
        "1.000E-58");
}

void Decimal128Test::parse_valid() {
    QFETCH(QByteArray, text);
    QFETCH(quint64, high);
    QFETCH(quint64, low);
    QFETCH(QByteArray, canonical);

    const decimal128 d = parsed(text);
    QCOMPARE(quint64(d.high()), high);
    QCOMPARE(quint64(d.low()), low);
    QCOMPARE(str(d), canonical);
    QVERIFY(d == decimal128::from_string(text.toStdString()));
}

void Decimal128Test::format_data() {
    QTest::addColumn<quint64>("high");
    QTest::addColumn<quint64>("low");
    QTest::addColumn<QByteArray>("expected");

    QTest::newRow("one") << quint64(0x3040000000000000ULL) << quint64(1) << QByteArray("1");
    QTest::newRow("34 digits") << quint64(0x3040314DC6448D93ULL) << quint64(0x38C15B0A00000000ULL)
                               << QByteArray("1000000000000000000000000000000000");
    QTest::newRow("max coefficient E0") << quint64(0x3041ED09BEAD87C0ULL) << quint64(0x378D8E63FFFFFFFFULL)
                                        << QByteArray("9999999999999999999999999999999999");
    QTest::newRow("largest exponent zero") << quint64(0x5FFE000000000000ULL) << quint64(0)
                                           << QByteArray("0E+6111");
    QTest::newRow("smallest exponent zero") << quint64(0) << quint64(0) << QByteArray("0E-6176");
    QTest::newRow("negative smallest exponent zero") << quint64(0x8000000000000000ULL) << quint64(0)
                                                     << QByteArray("-0E-6176");
    // Coefficient above 10^34 - 1 is non-canonical and reads as zero (corpus).
    QTest::newRow("coefficient 10^34 is zero") << quint64(0x3041ED09BEAD87C0ULL) << quint64(0x378D8E6400000000ULL)
                                               << QByteArray("0");
    // Combination bits 11 (but not a special) imply a too-large coefficient:
    // zero, with the exponent read from the shifted position (corpus).
    QTest::newRow("invalid treated as 0") << quint64(0x6C10000000000000ULL) << quint64(0) << QByteArray("0");
    QTest::newRow("invalid treated as -0") << quint64(0xEC10000000EFBEADULL) << quint64(0xDE1032547698BADCULL)
                                           << QByteArray("-0");
    QTest::newRow("invalid treated as 0E3") << quint64(0x6C11FFFFFFFFFFFFULL) << quint64(0xFFFFFFFFFFFFFFFFULL)
                                            << QByteArray("0E+3");
    QTest::newRow("snan") << quint64(0x7E00000000000000ULL) << quint64(0) << QByteArray("NaN");
    QTest::newRow("negative snan") << quint64(0xFE00000000000000ULL) << quint64(0) << QByteArray("NaN");
    QTest::newRow("nan payload") << quint64(0x7E00000000000000ULL) << quint64(0x12) << QByteArray("NaN");
    QTest::newRow("infinity with junk bits") << quint64(0x7800000000000123ULL) << quint64(7)
                                             << QByteArray("Infinity");
}

void Decimal128Test::format() {
    QFETCH(quint64, high);
    QFETCH(quint64, low);
    QFETCH(QByteArray, expected);
    QCOMPARE(str(decimal128(high, low)), expected);
}

void Decimal128Test::nan() {
    for (const char* text : {"NaN", "nan", "NAN", "nAn", "+NaN"}) {
        const decimal128 d = parsed(text);
        QCOMPARE(quint64(d.high()), 0x7C00000000000000ULL);
        QCOMPARE(quint64(d.low()), 0ULL);
        QVERIFY(d.is_nan());
        QVERIFY(!d.is_infinite());
        QVERIFY(!d.is_negative());
        QCOMPARE(str(d), QByteArray("NaN"));
    }
    // The corpus's degenerate "-NaN" maps to the negative NaN 0xFC00...; the
    // sign is kept in the bits but never printed.
    const decimal128 negative = parsed("-NaN");
    QCOMPARE(quint64(negative.high()), 0xFC00000000000000ULL);
    QCOMPARE(quint64(negative.low()), 0ULL);
    QVERIFY(negative.is_nan());
    QVERIFY(negative.is_negative());
    QCOMPARE(str(negative), QByteArray("NaN"));
    QVERIFY(parsed("-nan") == negative);
    // A signalling NaN is still a NaN.
    QVERIFY(decimal128(0x7E00000000000000ULL, 0).is_nan());
    QVERIFY(!decimal128(0x7800000000000000ULL, 0).is_nan());
}

void Decimal128Test::infinity() {
    for (const char* text : {"Infinity", "infinity", "INFINITY", "Inf", "inf", "iNf", "+Infinity", "+inf"}) {
        const decimal128 d = parsed(text);
        QCOMPARE(quint64(d.high()), 0x7800000000000000ULL);
        QCOMPARE(quint64(d.low()), 0ULL);
        QVERIFY(d.is_infinite());
        QVERIFY(!d.is_nan());
        QVERIFY(!d.is_negative());
        QCOMPARE(str(d), QByteArray("Infinity"));
    }
    for (const char* text : {"-Infinity", "-inf", "-INF", "-iNfInItY"}) {
        const decimal128 d = parsed(text);
        QCOMPARE(quint64(d.high()), 0xF800000000000000ULL);
        QCOMPARE(quint64(d.low()), 0ULL);
        QVERIFY(d.is_infinite());
        QVERIFY(d.is_negative());
        QCOMPARE(str(d), QByteArray("-Infinity"));
    }
}

void Decimal128Test::zero_sign() {
    const decimal128 negative = parsed("-0");
    QVERIFY(negative.is_negative());
    QVERIFY(!(negative == decimal128{}));  // bitwise equality: -0 is not 0
    QCOMPARE(quint64(parsed("-0E+3").high()), 0xB046000000000000ULL);
    QCOMPARE(str(parsed("-0E+3")), QByteArray("-0E+3"));
    QCOMPARE(str(parsed("-0.000000")), QByteArray("-0.000000"));
    QCOMPARE(str(parsed("-0E-7")), QByteArray("-0E-7"));
    QVERIFY(!parsed("+0").is_negative());
    QCOMPARE(str(parsed("000000.000")), QByteArray("0.000"));
}

void Decimal128Test::clamping() {
    // Exponent above 6111: pad the coefficient with zeros (exact, no error).
    decimal128 d = parsed("1E+6112");
    QCOMPARE(quint64(d.high()), 0x5FFE000000000000ULL);
    QCOMPARE(quint64(d.low()), 10ULL);
    QCOMPARE(str(d), QByteArray("1.0E+6112"));

    d = parsed("1E+6144");  // needs all 34 digits
    QCOMPARE(quint64(d.high()), 0x5FFE314DC6448D93ULL);
    QCOMPARE(quint64(d.low()), 0x38C15B0A00000000ULL);
    QCOMPARE(str(d), QByteArray("1.000000000000000000000000000000000E+6144"));

    QVERIFY(!decimal128::parse("1E+6145"));  // 35 digits needed: overflow
    QVERIFY(!decimal128::parse("10E+6144"));
    QVERIFY(!decimal128::parse("-7e10000"));

    // Zeros clamp at either end, however large the written exponent.
    QCOMPARE(quint64(parsed("0E+9999").high()), 0x5FFE000000000000ULL);
    QCOMPARE(str(parsed("0e6111")), QByteArray("0E+6111"));
    QCOMPARE(str(parsed("0E+99999999999999999999999999")), QByteArray("0E+6111"));
    QCOMPARE(quint64(parsed("0E-9999").high()), 0ULL);
    QCOMPARE(quint64(parsed("-0E-9999").high()), 0x8000000000000000ULL);
    QCOMPARE(str(parsed("0E-6177")), QByteArray("0E-6176"));
    QCOMPARE(str(parsed("-0E-99999999999999999999999999")), QByteArray("-0E-6176"));

    // Exponent below -6176: drop trailing zeros of the coefficient if any.
    d = parsed("10E-6177");
    QCOMPARE(quint64(d.high()), 0ULL);
    QCOMPARE(quint64(d.low()), 1ULL);
    QVERIFY(parsed("1000E-6179") == d);
    QVERIFY(parsed("0.0001E-6172") == d);
}

void Decimal128Test::exact_rounding() {
    // More than 34 digits is fine when only zeros are dropped.
    decimal128 d = parsed("12345678901234567890123456789012340");
    QCOMPARE(quint64(d.high()), 0x30423CDE6FFF9732ULL);
    QCOMPARE(quint64(d.low()), 0xDE825CD07E96AFF2ULL);
    QCOMPARE(str(d), QByteArray("1.234567890123456789012345678901234E+34"));

    d = parsed("100000000000000000000000000000000000000000000000000000000000");
    QCOMPARE(quint64(d.high()), 0x3074314DC6448D93ULL);
    QCOMPARE(quint64(d.low()), 0x38C15B0A00000000ULL);
    QCOMPARE(str(d), QByteArray("1.000000000000000000000000000000000E+59"));

    // Zeros after the point are dropped the same way.
    QCOMPARE(str(parsed("1.0000000000000000000000000000000000000")),
             QByteArray("1.000000000000000000000000000000000"));

    // Any non-zero digit that would be dropped is inexact: rejected.
    QVERIFY(!decimal128::parse("12345678901234567890123456789012345"));
    QVERIFY(!decimal128::parse("100000000000000000000000000000000000000000000000000000000001"));
    QVERIFY(!decimal128::parse("1.11111111111111111111111111111234550"));
    QVERIFY(!decimal128::parse("-1.11111111111111111111111111111234549"));
    QVERIFY(!decimal128::parse("1E-6177"));        // underflow
    QVERIFY(!decimal128::parse("11E-6177"));
    QVERIFY(!decimal128::parse("1E-99999999999"));
}

void Decimal128Test::parse_errors_data() {
    QTest::addColumn<QByteArray>("text");
    const char* bad[] = {
        "", "+", "-", ".", "..", "-.", "+.", "..3", ".13.3", "1..3", "1.3.4", "1.34.", "0000..", "00..00",
        "e", "E", ".e", "-.e", "E01", "e100", "E+1", ".E+1", "+.E+1", "1e", "1E", "1e-", "1e+", "12e++",
        "1ee", "1e1.0", "1e.1", "1e1.", "1E+1.2", "1e123e", "111E1e+3", "1E++1", "1E--1", "1E+-1", "1E-+1",
        "32.4E-2-1", "++1", "--1", "+-1", "-+1", "+-32.4", "--32.4", "-32.-4", "32.0-", "3+", "12-",
        " 1", "1 ", " -1", " + 1", "1\t", "1\n", "12f4", "123,65", "1_000", "0x10", "1.23abc",
        "1.23E+0aabs2", "7e99999a", "7e12356789012x", "Inf ", "Infi", "Infin", "Infinit", "-Infinit",
        "Infinityy", "infinite", ".Infinity", "+.Inf", "9Inf", "-0Inf", "Na", "-Na", "NaNq", "NaNs",
        "NaN1", "sNaN", "-sNaN", "qNaN", "xNaN", ".NaN", "0sNaN", "nan.", "i", "in", "-in", "x", "ONE",
        "ten", "invalid", "\xEF\xBC\x91",  // fullwidth digit one
    };
    for (const char* text : bad) {
        const QByteArray tag = *text ? QByteArray(text).toPercentEncoding() : QByteArray("(empty)");
        QTest::newRow(tag.constData()) << QByteArray(text);
    }
    // An embedded NUL must not end the string early.
    QTest::newRow("1 NUL 2") << QByteArray("1\0" "2", 3);
}

void Decimal128Test::parse_errors() {
    QFETCH(QByteArray, text);
    const std::string_view view(text.constData(), static_cast<std::size_t>(text.size()));
    QVERIFY(!decimal128::parse(view).has_value());
    QVERIFY_THROWS_EXCEPTION(trellis::bson_error, decimal128::from_string(view));
}

void Decimal128Test::from_string_throws() {
    try {
        (void)decimal128::from_string("1.2.3");
        QFAIL("from_string accepted 1.2.3");
    } catch (const trellis::bson_error& e) {
        QVERIFY(e.code() == trellis::make_error_code(trellis::errc::bson_invalid));
        const QByteArray what(e.what());
        QVERIFY2(what.contains("1.2.3"), what.constData());
        QVERIFY2(what.contains("decimal point"), what.constData());
        QCOMPARE(e.offset(), trellis::bson_error::npos);
    }
    try {
        (void)decimal128::from_string("1E-6177");
        QFAIL("from_string accepted 1E-6177");
    } catch (const trellis::bson_error& e) {
        const QByteArray what(e.what());
        QVERIFY2(what.contains("1E-6177") && what.contains("inexact"), what.constData());
    }
    try {
        (void)decimal128::from_string("12345678901234567890123456789012345");
        QFAIL("from_string accepted 35 significant digits");
    } catch (const trellis::bson_error& e) {
        const QByteArray what(e.what());
        QVERIFY2(what.contains("inexact") && what.contains("34 significant digits"), what.constData());
    }
    try {
        (void)decimal128::from_string("1E+6145");
        QFAIL("from_string accepted 1E+6145");
    } catch (const trellis::bson_error& e) {
        const QByteArray what(e.what());
        QVERIFY2(what.contains("overflow"), what.constData());
    }
    // A huge input is quoted only in part.
    const std::string huge(10000, '1');
    try {
        (void)decimal128::from_string(huge);
        QFAIL("from_string accepted 10000 digits");
    } catch (const trellis::bson_error& e) {
        QVERIFY(std::string_view(e.what()).size() < 300);
    }
}

void Decimal128Test::bytes_order() {
    // {"d": 1} from the corpus: the decimal's 16 bytes are the low word then
    // the high word, each little-endian.
    const std::array<std::uint8_t, 16> one = {0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x30};
    decimal128 d = decimal128::from_bytes(one.data());
    QCOMPARE(quint64(d.high()), 0x3040000000000000ULL);
    QCOMPARE(quint64(d.low()), 1ULL);
    QCOMPARE(str(d), QByteArray("1"));

    // Every byte distinct, so any swap shows up.
    const std::array<std::uint8_t, 16> distinct = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                                   0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10};
    d = decimal128::from_bytes(distinct.data());
    QCOMPARE(quint64(d.low()), 0x0807060504030201ULL);
    QCOMPARE(quint64(d.high()), 0x100F0E0D0C0B0A09ULL);

    std::array<std::uint8_t, 16> out{};
    decimal128(0x5FFFED09BEAD87C0ULL, 0x378D8E63FFFFFFFFULL).to_bytes(out.data());
    const std::array<std::uint8_t, 16> max_bytes = {0xFF, 0xFF, 0xFF, 0xFF, 0x63, 0x8E, 0x8D, 0x37,
                                                    0xC0, 0x87, 0xAD, 0xBE, 0x09, 0xED, 0xFF, 0x5F};
    QVERIFY(out == max_bytes);

    decimal128::from_string("-Infinity").to_bytes(out.data());
    const std::array<std::uint8_t, 16> negative_infinity = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xF8};
    QVERIFY(out == negative_infinity);
}

void Decimal128Test::bytes_round_trip() {
    // Non-canonical bit patterns survive bytes untouched.
    const decimal128 values[] = {
        decimal128{},
        decimal128(0x7E00000000000000ULL, 0x12),
        decimal128(0xEC10000000EFBEADULL, 0xDE1032547698BADCULL),
        decimal128(0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL),
        decimal128(0x0123456789ABCDEFULL, 0xFEDCBA9876543210ULL),
    };
    for (const decimal128& v : values) {
        std::array<std::uint8_t, 16> bytes{};
        v.to_bytes(bytes.data());
        QVERIFY(decimal128::from_bytes(bytes.data()) == v);
    }
}

void Decimal128Test::canonical_round_trip() {
    // The canonical string of a finite value parses back to the same bits.
    const decimal128 values[] = {
        decimal128(0x3040000000000000ULL, 0),
        decimal128(0xB03E000000000000ULL, 0),
        decimal128(0x5FFFED09BEAD87C0ULL, 0x378D8E63FFFFFFFFULL),
        decimal128(0x0000000000000000ULL, 1),
        decimal128(0x302E000000000000ULL, 123),
        decimal128(0x3034000000000000ULL, 1),
        decimal128(0x3032000000000000ULL, 1),
        decimal128(0x30423CDE6FFF9732ULL, 0xDE825CD07E96AFF2ULL),
        decimal128(0x2FC6000000000000ULL, 1000),
        decimal128(0x5FFE000000000000ULL, 0),
        decimal128(0x0000000000000000ULL, 0),
    };
    for (const decimal128& v : values) {
        const std::string text = v.to_string();
        const auto back = decimal128::parse(text);
        QVERIFY2(back.has_value(), text.c_str());
        QVERIFY2(*back == v, text.c_str());
    }
}

QTEST_APPLESS_MAIN(Decimal128Test)
#include "decimal128_test.moc"
