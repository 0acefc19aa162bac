// Values: errors, comparison in mongod's order, numbers across the four
// numeric types (decimal128 included), dotted paths, printing and the
// mutable document tree.
#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "internal.hpp"

namespace trellis::sim {

namespace detail {

// ---------------------------------------------------------------- errors

std::string code_name(int code) {
    switch (code) {
        case 1: return "InternalError";
        case 2: return "BadValue";
        case 9: return "FailedToParse";
        case 14: return "TypeMismatch";
        case 15: return "Overflow";
        case 17: return "ProtocolError";
        case 26: return "NamespaceNotFound";
        case 27: return "IndexNotFound";
        case 28: return "PathNotViable";
        case 40: return "ConflictingUpdateOperators";
        case 48: return "NamespaceExists";
        case 52: return "DollarPrefixedFieldName";
        case 54: return "NotSingleValueField";
        case 56: return "EmptyFieldName";
        case 59: return "CommandNotFound";
        case 66: return "ImmutableField";
        case 67: return "CannotCreateIndex";
        case 72: return "InvalidOptions";
        case 73: return "InvalidNamespace";
        case 85: return "IndexOptionsConflict";
        case 86: return "IndexKeySpecsConflict";
        case 121: return "DocumentValidationFailure";
        case 136: return "CappedPositionLost";
        case 168: return "InvalidPipelineOperator";
        case 171: return "CannotIndexParallelArrays";
        case 10334: return "BSONObjectTooLarge";
        case 11000: return "DuplicateKey";
        default: return "Location" + std::to_string(code);
    }
}

void fail(int code, std::string message, bson::document extra) {
    throw command_error(code, code_name(code), std::move(message), std::move(extra));
}

std::string index_key(std::size_t i) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, i);
    (void)ec;
    return std::string(buf, end);
}

// ---------------------------------------------------------------- values

value::value() : value(value::of(bson::null)) {}

value::value(const bson::element& e) {
    writer w;
    w.append("", e);
    doc_ = w.extract();
}

int canonical_rank(bson::type t) {
    using bson::type;
    switch (t) {
        case type::min_key: return -1;
        case type::undefined: return 0;
        case type::null: return 5;
        case type::double_:
        case type::int32:
        case type::int64:
        case type::decimal128: return 10;
        case type::string:
        case type::symbol: return 15;
        case type::document: return 20;
        case type::array: return 25;
        case type::binary: return 30;
        case type::oid: return 35;
        case type::boolean: return 40;
        case type::date_time: return 45;
        case type::timestamp: return 47;
        case type::regex: return 50;
        case type::db_pointer: return 55;
        case type::code: return 60;
        case type::code_w_scope: return 65;
        case type::max_key: return 127;
    }
    return 0;
}

bool values_equal(const bson::element& a, const bson::element& b) {
    return canonical_rank(a.type()) == canonical_rank(b.type()) && compare_values(a, b) == 0;
}

std::string_view type_alias(bson::type t) {
    using bson::type;
    switch (t) {
        case type::double_: return "double";
        case type::string: return "string";
        case type::document: return "object";
        case type::array: return "array";
        case type::binary: return "binData";
        case type::undefined: return "undefined";
        case type::oid: return "objectId";
        case type::boolean: return "bool";
        case type::date_time: return "date";
        case type::null: return "null";
        case type::regex: return "regex";
        case type::db_pointer: return "dbPointer";
        case type::code: return "javascript";
        case type::symbol: return "symbol";
        case type::code_w_scope: return "javascriptWithScope";
        case type::int32: return "int";
        case type::timestamp: return "timestamp";
        case type::int64: return "long";
        case type::decimal128: return "decimal";
        case type::min_key: return "minKey";
        case type::max_key: return "maxKey";
    }
    return "unknown";
}

bool truthy(const bson::element& e) {
    switch (e.type()) {
        case bson::type::boolean: return e.get_bool();
        case bson::type::null:
        case bson::type::undefined: return false;
        case bson::type::int32:
        case bson::type::int64:
        case bson::type::double_:
        case bson::type::decimal128: return !number::of(e).is_zero();
        default: return true;
    }
}

// ---------------------------------------------------------------- decimal128 internals

namespace {

__extension__ typedef unsigned __int128 u128;

// 10^34 - 1: the largest coefficient decimal128 holds.
const u128 max_coefficient = [] {
    u128 v = 1;
    for (int i = 0; i < 34; ++i) v *= 10;
    return v - 1;
}();

u128 pow10(int n) {
    u128 v = 1;
    for (int i = 0; i < n; ++i) v *= 10;
    return v;
}

int digits(u128 v) {
    int n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

struct dec {
    enum class kind { finite, inf, nan } k = kind::finite;
    bool neg = false;
    u128 coeff = 0;
    int exp = 0;
    bool is_zero() const { return k == kind::finite && coeff == 0; }
};

dec decode(bson::decimal128 x) {
    const std::uint64_t hi = x.high();
    dec d;
    d.neg = (hi >> 63) != 0;
    const unsigned top5 = static_cast<unsigned>((hi >> 58) & 0x1F);
    if (top5 == 0x1F) {
        d.k = dec::kind::nan;
    } else if (top5 == 0x1E) {
        d.k = dec::kind::inf;
    } else if (((hi >> 61) & 3) == 3) {
        // The second encoding form only holds coefficients >= 2^113 > 10^34: non-canonical, i.e. zero.
        d.exp = static_cast<int>((hi >> 47) & 0x3FFF) - 6176;
    } else {
        d.exp = static_cast<int>((hi >> 49) & 0x3FFF) - 6176;
        d.coeff = (static_cast<u128>(hi & ((std::uint64_t{1} << 49) - 1)) << 64) | x.low();
        if (d.coeff > max_coefficient) d.coeff = 0;
    }
    return d;
}

// Drops the lowest n digits of v, rounding half to even.
u128 round_digits(u128 v, int n) {
    if (n <= 0) return v;
    if (n > 38) return 0;
    const u128 div = pow10(n);
    u128 q = v / div;
    const u128 r = v % div;
    const u128 half = div / 2;
    if (r > half || (r == half && (q & 1) != 0)) ++q;
    return q;
}

bson::decimal128 encode(dec d) {
    if (d.k == dec::kind::nan) return bson::decimal128(0x7C00000000000000ULL, 0);
    if (d.k == dec::kind::inf) return bson::decimal128(d.neg ? 0xF800000000000000ULL : 0x7800000000000000ULL, 0);
    if (d.coeff > max_coefficient) {
        const int excess = digits(d.coeff) - 34;
        d.coeff = round_digits(d.coeff, excess);
        d.exp += excess;
        if (d.coeff > max_coefficient) {
            d.coeff /= 10;
            ++d.exp;
        }
    }
    while (d.exp > 6111 && d.coeff != 0 && d.coeff * 10 <= max_coefficient) {
        d.coeff *= 10;
        --d.exp;
    }
    if (d.exp > 6111) {
        if (d.coeff == 0) {
            d.exp = 6111;
        } else {
            d.k = dec::kind::inf;
            return encode(d);
        }
    }
    if (d.exp < -6176) {
        d.coeff = round_digits(d.coeff, -6176 - d.exp);
        d.exp = -6176;
    }
    const std::uint64_t hi = (d.neg ? (std::uint64_t{1} << 63) : 0) | (static_cast<std::uint64_t>(d.exp + 6176) << 49) |
                             static_cast<std::uint64_t>(d.coeff >> 64);
    return bson::decimal128(hi, static_cast<std::uint64_t>(d.coeff));
}

// A double as a decimal of `precision` significant digits (mongod rounds to
// 15 digits for arithmetic and to 34 for comparisons).
dec from_double(double v, int precision) {
    dec d;
    if (std::isnan(v)) {
        d.k = dec::kind::nan;
        return d;
    }
    d.neg = std::signbit(v);
    if (std::isinf(v)) {
        d.k = dec::kind::inf;
        return d;
    }
    if (v == 0) return d;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, std::fabs(v));
    // d.ddddde[+-]xx
    int ndigits = 0;
    const char* p = buf;
    for (; *p != 'e'; ++p) {
        if (*p >= '0' && *p <= '9') {
            d.coeff = d.coeff * 10 + static_cast<unsigned>(*p - '0');
            ++ndigits;
        }
    }
    d.exp = std::atoi(p + 1) - (ndigits - 1);
    // Trailing zeros from the fixed precision carry no information for comparison, but mongod keeps
    // them in arithmetic results (1.1 + 1.0 is 2.10000000000000), so they stay.
    return d;
}

dec from_int(std::int64_t v) {
    dec d;
    d.neg = v < 0;
    d.coeff = v < 0 ? static_cast<u128>(-(v + 1)) + 1 : static_cast<u128>(v);
    return d;
}

int compare_magnitude(const dec& a, const dec& b) {
    if (a.coeff == 0 || b.coeff == 0) return (a.coeff != 0) - (b.coeff != 0);
    const int da = digits(a.coeff), db = digits(b.coeff);
    const int adj_a = a.exp + da, adj_b = b.exp + db;
    if (adj_a != adj_b) return adj_a < adj_b ? -1 : 1;
    const u128 ca = a.coeff * pow10(std::max(da, db) - da);
    const u128 cb = b.coeff * pow10(std::max(da, db) - db);
    return ca < cb ? -1 : ca > cb ? 1 : 0;
}

int compare_dec(const dec& a, const dec& b) {
    using k = dec::kind;
    // NaN sorts below every other number and equals itself (as in mongod).
    if (a.k == k::nan || b.k == k::nan) return (a.k != k::nan) - (b.k != k::nan);
    auto sign = [](const dec& d) { return d.is_zero() ? 0 : d.neg ? -1 : 1; };
    const int sa = sign(a), sb = sign(b);
    if (sa != sb) return sa < sb ? -1 : 1;
    if (sa == 0) return 0;
    int m;
    if (a.k == k::inf || b.k == k::inf)
        m = (a.k == k::inf) - (b.k == k::inf);
    else
        m = compare_magnitude(a, b);
    return sa < 0 ? -m : m;
}

// |a| + |b| or |a| - |b| with a's exponent >= b's, exactly when the aligned
// coefficients fit in 128 bits; otherwise b's lowest digits are dropped first
// (they lie far below the 34 digits the result keeps).
dec add_dec(dec a, dec b) {
    using k = dec::kind;
    if (a.k == k::nan || b.k == k::nan) return dec{k::nan};
    if (a.k == k::inf || b.k == k::inf) {
        if (a.k == k::inf && b.k == k::inf && a.neg != b.neg) return dec{k::nan};
        return a.k == k::inf ? a : b;
    }
    if (a.coeff == 0 && b.coeff != 0) return b;
    if (b.coeff == 0 && a.coeff != 0) return a;
    if (a.exp < b.exp) std::swap(a, b);
    const u128 limit = pow10(37);
    int diff = a.exp - b.exp;
    while (diff > 0 && (diff > 37 || a.coeff > limit / pow10(diff))) {
        if (b.coeff == 0) {
            b.exp = a.exp;
            diff = 0;
            break;
        }
        b.coeff = round_digits(b.coeff, 1);
        ++b.exp;
        --diff;
    }
    const u128 ca = a.coeff * pow10(diff);
    dec r;
    r.exp = b.exp;
    if (a.neg == b.neg) {
        r.neg = a.neg;
        r.coeff = ca + b.coeff;
    } else if (ca >= b.coeff) {
        r.neg = a.neg;
        r.coeff = ca - b.coeff;
    } else {
        r.neg = b.neg;
        r.coeff = b.coeff - ca;
    }
    if (r.coeff == 0) r.neg = false;
    return r;
}

dec multiply_dec(dec a, dec b) {
    using k = dec::kind;
    if (a.k == k::nan || b.k == k::nan) return dec{k::nan};
    const bool neg = a.neg != b.neg;
    if (a.k == k::inf || b.k == k::inf) {
        if (a.is_zero() || b.is_zero()) return dec{k::nan};
        dec r{k::inf};
        r.neg = neg;
        return r;
    }
    const u128 max128 = ~static_cast<u128>(0);
    while (a.coeff != 0 && b.coeff > max128 / a.coeff) {
        dec& bigger = a.coeff > b.coeff ? a : b;
        bigger.coeff = round_digits(bigger.coeff, 1);
        ++bigger.exp;
    }
    dec r;
    r.neg = neg;
    r.coeff = a.coeff * b.coeff;
    r.exp = a.exp + b.exp;
    if (r.coeff == 0) r.neg = false;
    return r;
}

dec divide_dec(const dec& a, const dec& b) {
    using k = dec::kind;
    if (a.k == k::nan || b.k == k::nan) return dec{k::nan};
    const bool neg = a.neg != b.neg;
    if (a.k == k::inf) {
        if (b.k == k::inf) return dec{k::nan};
        dec r{k::inf};
        r.neg = neg;
        return r;
    }
    if (b.k == k::inf) return dec{};
    if (b.coeff == 0) {
        if (a.coeff == 0) return dec{k::nan};
        dec r{k::inf};
        r.neg = neg;
        return r;
    }
    // Long division, one digit at a time, until 35 digits or no remainder.
    dec r;
    r.neg = neg;
    r.exp = a.exp - b.exp;
    u128 q = a.coeff / b.coeff;
    u128 rem = a.coeff % b.coeff;
    while (rem != 0 && (q == 0 || digits(q) < 35)) {
        rem *= 10;
        q = q * 10 + rem / b.coeff;
        rem %= b.coeff;
        --r.exp;
    }
    r.coeff = q;
    if (r.coeff == 0) r.neg = false;
    return r;
}

dec to_dec(const number& n, int double_precision) {
    switch (n.k) {
        case number::kind::i32:
        case number::kind::i64: return from_int(n.i);
        case number::kind::dbl: return from_double(n.d, double_precision);
        case number::kind::dec: return decode(n.x);
    }
    return {};
}

bool add_overflows(std::int64_t a, std::int64_t b, std::int64_t& out) { return __builtin_add_overflow(a, b, &out); }
bool mul_overflows(std::int64_t a, std::int64_t b, std::int64_t& out) { return __builtin_mul_overflow(a, b, &out); }

number int_result(std::int64_t v, bool both_int32) {
    if (both_int32 && v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max())
        return number::int32(static_cast<std::int32_t>(v));
    return number::int64(v);
}

}  // namespace

// ---------------------------------------------------------------- numbers

bool is_numeric(bson::type t) {
    return t == bson::type::int32 || t == bson::type::int64 || t == bson::type::double_ || t == bson::type::decimal128;
}

number number::of(const bson::element& e) {
    switch (e.type()) {
        case bson::type::int32: return int32(e.get_int32());
        case bson::type::int64: return int64(e.get_int64());
        case bson::type::double_: return dbl(e.get_double());
        case bson::type::decimal128: return decimal(e.get_decimal128());
        default: return int32(0);
    }
}

double number::to_double() const {
    switch (k) {
        case kind::i32:
        case kind::i64: return static_cast<double>(i);
        case kind::dbl: return d;
        case kind::dec: {
            const dec v = decode(x);
            if (v.k == dec::kind::nan) return std::numeric_limits<double>::quiet_NaN();
            if (v.k == dec::kind::inf) return v.neg ? -HUGE_VAL : HUGE_VAL;
            return std::strtod(x.to_string().c_str(), nullptr);
        }
    }
    return 0;
}

bson::decimal128 number::to_decimal() const { return k == kind::dec ? x : encode(to_dec(*this, 15)); }

bool number::is_zero() const {
    switch (k) {
        case kind::i32:
        case kind::i64: return i == 0;
        case kind::dbl: return d == 0;
        case kind::dec: return decode(x).is_zero();
    }
    return false;
}

void number::write(writer& w, std::string_view key) const {
    switch (k) {
        case kind::i32: w.append(key, static_cast<std::int32_t>(i)); break;
        case kind::i64: w.append(key, static_cast<std::int64_t>(i)); break;
        case kind::dbl: w.append(key, d); break;
        case kind::dec: w.append(key, x); break;
    }
}

value number::to_value() const {
    writer w;
    write(w, "");
    return value::adopt(w.extract());
}

number add(const number& a, const number& b, bool* overflow) {
    using k = number::kind;
    if (a.k == k::dec || b.k == k::dec) return number::decimal(encode(add_dec(to_dec(a, 15), to_dec(b, 15))));
    if (a.k == k::dbl || b.k == k::dbl) return number::dbl(a.to_double() + b.to_double());
    std::int64_t r;
    if (add_overflows(a.i, b.i, r)) {
        if (overflow != nullptr) *overflow = true;
        return number::dbl(static_cast<double>(a.i) + static_cast<double>(b.i));
    }
    return int_result(r, a.k == k::i32 && b.k == k::i32);
}

number subtract(const number& a, const number& b) {
    using k = number::kind;
    if (a.k == k::dec || b.k == k::dec) {
        dec nb = to_dec(b, 15);
        nb.neg = !nb.neg;
        return number::decimal(encode(add_dec(to_dec(a, 15), nb)));
    }
    if (a.k == k::dbl || b.k == k::dbl) return number::dbl(a.to_double() - b.to_double());
    std::int64_t r;
    if (__builtin_sub_overflow(a.i, b.i, &r)) return number::dbl(static_cast<double>(a.i) - static_cast<double>(b.i));
    return int_result(r, a.k == k::i32 && b.k == k::i32);
}

number multiply(const number& a, const number& b, bool* overflow) {
    using k = number::kind;
    if (a.k == k::dec || b.k == k::dec) return number::decimal(encode(multiply_dec(to_dec(a, 15), to_dec(b, 15))));
    if (a.k == k::dbl || b.k == k::dbl) return number::dbl(a.to_double() * b.to_double());
    std::int64_t r;
    if (mul_overflows(a.i, b.i, r)) {
        if (overflow != nullptr) *overflow = true;
        return number::dbl(static_cast<double>(a.i) * static_cast<double>(b.i));
    }
    return int_result(r, a.k == k::i32 && b.k == k::i32);
}

number divide(const number& a, const number& b) {
    using k = number::kind;
    if (a.k == k::dec || b.k == k::dec) return number::decimal(encode(divide_dec(to_dec(a, 15), to_dec(b, 15))));
    return number::dbl(a.to_double() / b.to_double());
}

int compare_numbers(const number& a, const number& b) {
    using k = number::kind;
    if (a.k == k::dec || b.k == k::dec) return compare_dec(to_dec(a, 34), to_dec(b, 34));
    if (a.k == k::dbl || b.k == k::dbl) {
        const bool an = a.k == k::dbl && std::isnan(a.d), bn = b.k == k::dbl && std::isnan(b.d);
        if (an || bn) return (!an) - (!bn);
        // long double holds every int64 and every double exactly (x86-64 and AArch64 alike).
        const long double x = a.k == k::dbl ? static_cast<long double>(a.d) : static_cast<long double>(a.i);
        const long double y = b.k == k::dbl ? static_cast<long double>(b.d) : static_cast<long double>(b.i);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
}

// ---------------------------------------------------------------- paths

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = path.find('.', start);
        parts.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return parts;
}

bool is_array_index(std::string_view part) {
    if (part.empty() || part.size() > 9) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    return std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
}

namespace {

void walk(bson::document_view doc, const std::vector<std::string>& path, std::size_t i, std::size_t pos, bool quiet,
          std::vector<path_item>& out);

// e is the value of path[i - 1]; continues with path[i].
void descend(const bson::element& e, const std::vector<std::string>& path, std::size_t i, std::size_t pos,
             std::vector<path_item>& out) {
    if (i == path.size()) {
        if (e.type() == bson::type::array) {
            out.push_back({e, false, true, false, pos});
            std::size_t k = 0;
            for (const bson::element& x : e.get_array()) {
                out.push_back({x, false, false, true, pos == path_item::npos ? k : pos});
                ++k;
            }
        } else {
            out.push_back({e, false, false, false, pos});
        }
        return;
    }
    if (e.type() == bson::type::document) {
        walk(e.get_document(), path, i, pos, false, out);
        return;
    }
    if (e.type() == bson::type::array) {
        const bson::array_view arr = e.get_array();
        const bool numeric = is_array_index(path[i]);
        if (numeric) {
            if (auto x = arr.find(path[i]))
                descend(*x, path, i + 1, pos, out);
            else
                out.push_back({{}, true, false, false, pos});
        }
        // Documents inside the array are looked into; for a numeric part they
        // only count when they hold that field (the index already answered).
        std::size_t k = 0;
        for (const bson::element& x : arr) {
            if (x.type() == bson::type::document)
                walk(x.get_document(), path, i, pos == path_item::npos ? k : pos, numeric, out);
            ++k;
        }
        return;
    }
    out.push_back({{}, true, false, false, pos});
}

void walk(bson::document_view doc, const std::vector<std::string>& path, std::size_t i, std::size_t pos, bool quiet,
          std::vector<path_item>& out) {
    const auto e = doc.find(path[i]);
    if (!e) {
        if (!quiet) out.push_back({{}, true, false, false, pos});
        return;
    }
    descend(*e, path, i + 1, pos, out);
}

}  // namespace

void collect_path(bson::document_view doc, const std::vector<std::string>& path, std::vector<path_item>& out) {
    walk(doc, path, 0, path_item::npos, false, out);
}

// ---------------------------------------------------------------- printing

namespace {

void shell_to(const bson::element& e, std::string& out);

void shell_fields(bson::document_view d, bool is_array, std::string& out) {
    if (d.empty()) {
        out += is_array ? "[]" : "{}";
        return;
    }
    out += is_array ? "[ " : "{ ";
    bool first = true;
    for (const bson::element& x : d) {
        if (!first) out += ", ";
        first = false;
        if (!is_array) {
            out += x.key();
            out += ": ";
        }
        shell_to(x, out);
    }
    out += is_array ? " ]" : " }";
}

std::string format_double(double v) {
    if (std::isnan(v)) return "nan.0";
    if (std::isinf(v)) return v < 0 ? "-inf.0" : "inf.0";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.16g", v);
    std::string s = buf;
    // mongod marks doubles holding whole numbers with ".0" to tell them from integers.
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
}

void shell_to(const bson::element& e, std::string& out) {
    using bson::type;
    char buf[64];
    switch (e.type()) {
        case type::double_: out += format_double(e.get_double()); break;
        case type::string:
            out += '"';
            out += e.get_string();
            out += '"';
            break;
        case type::symbol:
            out += '"';
            out += e.get_symbol().value;
            out += '"';
            break;
        case type::document: shell_fields(e.get_document(), false, out); break;
        case type::array: shell_fields(e.get_array(), true, out); break;
        case type::binary: {
            const auto b = e.get_binary();
            out += "BinData(" + std::to_string(b.subtype) + ", ";
            static const char hex[] = "0123456789ABCDEF";
            for (std::uint8_t c : b.bytes) {
                out += hex[c >> 4];
                out += hex[c & 15];
            }
            out += ')';
            break;
        }
        case type::undefined: out += "undefined"; break;
        case type::oid: out += "ObjectId('" + e.get_oid().to_hex() + "')"; break;
        case type::boolean: out += e.get_bool() ? "true" : "false"; break;
        case type::date_time: out += "new Date(" + std::to_string(e.get_date_time().milliseconds) + ")"; break;
        case type::null: out += "null"; break;
        case type::regex: {
            const auto r = e.get_regex();
            out += '/';
            out += r.pattern;
            out += '/';
            out += r.options;
            break;
        }
        case type::db_pointer: {
            const auto p = e.get_db_pointer();
            out += "DBRef('" + std::string(p.collection) + "', " + p.id.to_hex() + ")";
            break;
        }
        case type::code: out += e.get_code().javascript; break;
        case type::code_w_scope: out += e.get_code_w_scope().javascript; break;
        case type::int32: out += std::to_string(e.get_int32()); break;
        case type::timestamp: {
            const auto t = e.get_timestamp();
            std::snprintf(buf, sizeof buf, "Timestamp(%u, %u)", t.seconds, t.increment);
            out += buf;
            break;
        }
        case type::int64: out += std::to_string(e.get_int64()); break;
        case type::decimal128: out += "NumberDecimal(\"" + e.get_decimal128().to_string() + "\")"; break;
        case type::min_key: out += "MinKey"; break;
        case type::max_key: out += "MaxKey"; break;
    }
}

}  // namespace

std::string shell(const bson::element& e) {
    std::string out;
    shell_to(e, out);
    return out;
}

std::string shell(bson::document_view d) {
    std::string out;
    shell_fields(d, false, out);
    return out;
}

// ---------------------------------------------------------------- mutable documents

node node::of(const bson::element& e) {
    node n;
    n.type = e.type();
    if (e.type() == bson::type::document) {
        for (const bson::element& x : e.get_document()) {
            n.keys.emplace_back(x.key());
            n.kids.push_back(of(x));
        }
    } else if (e.type() == bson::type::array) {
        for (const bson::element& x : e.get_array()) n.kids.push_back(of(x));
    } else {
        n.scalar = value(e);
    }
    return n;
}

node node::of(bson::document_view d) {
    node n;
    for (const bson::element& x : d) {
        n.keys.emplace_back(x.key());
        n.kids.push_back(of(x));
    }
    return n;
}

node* node::field(std::string_view name) {
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == name) return &kids[i];
    return nullptr;
}

const node* node::field(std::string_view name) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == name) return &kids[i];
    return nullptr;
}

node& node::set(std::string_view name, node v) {
    if (node* existing = field(name)) {
        *existing = std::move(v);
        return *existing;
    }
    keys.emplace_back(name);
    kids.push_back(std::move(v));
    return kids.back();
}

bool node::remove(std::string_view name) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i] == name) {
            keys.erase(keys.begin() + static_cast<std::ptrdiff_t>(i));
            kids.erase(kids.begin() + static_cast<std::ptrdiff_t>(i));
            return true;
        }
    }
    return false;
}

void node::write(writer& w, std::string_view key) const {
    if (type == bson::type::document) {
        w.open_document(key);
        for (std::size_t i = 0; i < kids.size(); ++i) kids[i].write(w, keys[i]);
        w.close();
    } else if (type == bson::type::array) {
        w.open_array(key);
        for (std::size_t i = 0; i < kids.size(); ++i) kids[i].write(w, index_key(i));
        w.close();
    } else {
        w.append(key, scalar->get());
    }
}

bson::document node::to_document() const {
    writer w;
    for (std::size_t i = 0; i < kids.size(); ++i) kids[i].write(w, type == bson::type::array ? index_key(i) : keys[i]);
    return w.extract();
}

value node::to_value() const {
    writer w;
    write(w, "");
    return value::adopt(w.extract());
}

}  // namespace detail

// ---------------------------------------------------------------- public

namespace {

int compare_bytes(std::string_view a, std::string_view b) {
    const int c = a.compare(b);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int compare_documents(bson::document_view a, bson::document_view b, bool field_names) {
    auto i = a.begin(), j = b.begin();
    for (; i != a.end() && j != b.end(); ++i, ++j) {
        const int ra = detail::canonical_rank(i->type()), rb = detail::canonical_rank(j->type());
        if (ra != rb) return ra < rb ? -1 : 1;
        if (field_names) {
            const int k = compare_bytes(i->key(), j->key());
            if (k != 0) return k;
        }
        const int v = compare_values(*i, *j);
        if (v != 0) return v;
    }
    if (i == a.end() && j == b.end()) return 0;
    return i == a.end() ? -1 : 1;
}

}  // namespace

namespace {

thread_local collation active_collation;

// Folds a UTF-8 string for a non-simple collation: case (ASCII and Latin-1) always; diacritics of
// Latin-1 letters at strength 1. Other bytes are kept as they are.
std::string fold(std::string_view in, int strength) {
    static constexpr std::string_view base = "aaaaaaaceeeeiiiidnooooo\xd7ouuuuyps";  // U+00C0..U+00DF (lower-cased base)
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x80) {
            out += static_cast<char>(std::tolower(c));
            continue;
        }
        if ((c == 0xC3) && i + 1 < in.size()) {  // U+00C0..U+00FF
            unsigned cp = 0xC0 + (static_cast<unsigned char>(in[i + 1]) & 0x3F);
            ++i;
            if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) cp += 0x20;  // upper to lower case
            if (strength == 1 && cp >= 0xE0 && cp != 0xF7 && cp != 0xFE) {
                out += cp == 0xFF ? 'y' : base[cp - 0xE0];
                continue;
            }
            out += static_cast<char>(0xC3);
            out += static_cast<char>(0x80 | (cp & 0x3F));
            continue;
        }
        out += static_cast<char>(c);
    }
    return out;
}

}  // namespace

collation collation::parse(const bson::element& spec) {
    if (spec.type() != bson::type::document)
        throw command_error(14, "TypeMismatch", "collation must be of type object, not " + std::string(bson::type_name(spec.type())));
    collation c;
    const bson::document_view d = spec.get_document();
    auto locale = d.find("locale");
    if (!locale) throw command_error(40414, "Location40414", "BSON field 'locale' is missing but a required field");
    if (locale->type() != bson::type::string)
        throw command_error(14, "TypeMismatch", "BSON field 'locale' is the wrong type '" + std::string(bson::type_name(locale->type())) +
                                                    "', expected type 'string'");
    c.simple = locale->get_string() == "simple";
    for (const auto& e : d) {
        const auto key = e.key();
        if (key == "locale") continue;
        if (key == "strength") {
            if (!e.is_number()) throw command_error(14, "TypeMismatch", "BSON field 'strength' must be a number");
            c.strength = static_cast<int>(e.as_int64());
            if (c.strength < 1 || c.strength > 5)
                throw command_error(2, "BadValue", "Enumeration value '" + std::to_string(c.strength) + "' for field 'strength' is not a valid value.");
        } else if (key != "caseLevel" && key != "caseFirst" && key != "numericOrdering" && key != "alternate" && key != "maxVariable" &&
                   key != "normalization" && key != "backwards" && key != "version") {
            throw command_error(40415, "Location40415", "BSON field 'collation." + std::string(key) + "' is an unknown field.");
        }
    }
    return c;
}

collation_scope::collation_scope(const collation& c) : previous_(active_collation) { active_collation = c; }
collation_scope::~collation_scope() { active_collation = previous_; }

int compare_values(const bson::element& a, const bson::element& b) {
    using bson::type;
    const int ra = detail::canonical_rank(a.type()), rb = detail::canonical_rank(b.type());
    if (ra != rb) return ra < rb ? -1 : 1;
    switch (a.type()) {
        case type::min_key:
        case type::max_key:
        case type::undefined:
        case type::null: return 0;
        case type::double_:
        case type::int32:
        case type::int64:
        case type::decimal128: return detail::compare_numbers(detail::number::of(a), detail::number::of(b));
        case type::string:
        case type::symbol: {
            auto text = [](const bson::element& e) {
                return e.type() == type::string ? e.get_string() : e.get_symbol().value;
            };
            if (!active_collation.simple && active_collation.strength <= 2)
                return compare_bytes(fold(text(a), active_collation.strength), fold(text(b), active_collation.strength));
            return compare_bytes(text(a), text(b));
        }
        case type::document: return compare_documents(a.get_document(), b.get_document(), true);
        case type::array: return compare_documents(a.get_array(), b.get_array(), false);
        case type::binary: {
            const auto x = a.get_binary(), y = b.get_binary();
            if (x.bytes.size() != y.bytes.size()) return x.bytes.size() < y.bytes.size() ? -1 : 1;
            if (x.subtype != y.subtype) return x.subtype < y.subtype ? -1 : 1;
            if (x.bytes.empty()) return 0;
            const int c = std::memcmp(x.bytes.data(), y.bytes.data(), x.bytes.size());
            return c < 0 ? -1 : c > 0 ? 1 : 0;
        }
        case type::oid: {
            const auto x = a.get_oid(), y = b.get_oid();
            return x < y ? -1 : x > y ? 1 : 0;
        }
        case type::boolean: return static_cast<int>(a.get_bool()) - static_cast<int>(b.get_bool());
        case type::date_time: {
            const auto x = a.get_date_time().milliseconds, y = b.get_date_time().milliseconds;
            return x < y ? -1 : x > y ? 1 : 0;
        }
        case type::timestamp: {
            const auto x = a.get_timestamp(), y = b.get_timestamp();
            return x < y ? -1 : x > y ? 1 : 0;
        }
        case type::regex: {
            const auto x = a.get_regex(), y = b.get_regex();
            const int c = compare_bytes(x.pattern, y.pattern);
            return c != 0 ? c : compare_bytes(x.options, y.options);
        }
        case type::db_pointer: {
            const auto x = a.get_db_pointer(), y = b.get_db_pointer();
            if (x.collection.size() != y.collection.size()) return x.collection.size() < y.collection.size() ? -1 : 1;
            const int c = compare_bytes(x.collection, y.collection);
            if (c != 0) return c;
            return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
        }
        case type::code: return compare_bytes(a.get_code().javascript, b.get_code().javascript);
        case type::code_w_scope: {
            const auto x = a.get_code_w_scope(), y = b.get_code_w_scope();
            const int c = compare_bytes(x.javascript, y.javascript);
            return c != 0 ? c : compare_documents(x.scope, y.scope, true);
        }
    }
    return 0;
}

std::optional<bson::element> get_path(bson::document_view doc, std::string_view path) {
    std::optional<bson::element> cur;
    bson::document_view scope = doc;
    for (const std::string& part : detail::split_path(path)) {
        if (cur) {
            if (cur->type() == bson::type::document)
                scope = cur->get_document();
            else if (cur->type() == bson::type::array)
                scope = cur->get_array();
            else
                return std::nullopt;
        }
        cur = scope.find(part);
        if (!cur) return std::nullopt;
    }
    return cur;
}

}  // namespace trellis::sim
