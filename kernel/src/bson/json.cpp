#include "trellis/bson/json.hpp"
#include "trellis/base64.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "bson/hex.hpp"
#include "bson/utf8.hpp"
#include "trellis/bson/builder.hpp"

namespace trellis::bson {
namespace {

using detail::hex_digit;

// ============================================================== dates

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

// "YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|+HHMM|-...)" to milliseconds since the epoch.
std::optional<std::int64_t> parse_iso8601(std::string_view s) {
    auto digits = [&](std::size_t at, std::size_t n, int& out) {
        if (at + n > s.size()) return false;
        int v = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            v = v * 10 + (s[i] - '0');
        }
        out = v;
        return true;
    };
    int year, month, day, hour, minute, second = 0;
    if (!digits(0, 4, year) || s.size() < 16 || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' ||
        !digits(8, 2, day) || s[10] != 'T' || !digits(11, 2, hour) || s[13] != ':' || !digits(14, 2, minute))
        return std::nullopt;
    std::size_t i = 16;
    if (i < s.size() && s[i] == ':') {
        if (!digits(17, 2, second)) return std::nullopt;
        i = 19;
    }
    int millis = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const std::size_t start = i;
        int scale = 100;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            millis += (s[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        if (i == start) return std::nullopt;
    }
    int offset_minutes = 0;
    if (i < s.size() && s[i] == 'Z') {
        ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        const int sign = s[i] == '-' ? -1 : 1;
        int oh, om;
        if (!digits(i + 1, 2, oh)) return std::nullopt;
        std::size_t j = i + 3;
        if (j < s.size() && s[j] == ':') ++j;
        if (!digits(j, 2, om)) return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
        i = j + 2;
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    static constexpr int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] || hour > 23 || minute > 59 || second > 60)
        return std::nullopt;
    const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return ((days * 24 + hour) * 60 + minute - offset_minutes) * 60000 + second * 1000 + millis;
}

void format_iso8601(std::int64_t ms, std::string& out) {
    std::int64_t days = ms / 86400000;
    std::int64_t rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        --days;
    }
    std::int64_t y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    char buf[40];
    const int h = static_cast<int>(rem / 3600000), mi = static_cast<int>(rem / 60000 % 60),
              s = static_cast<int>(rem / 1000 % 60), milli = static_cast<int>(rem % 1000);
    int n = milli != 0 ? std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(y), m, d, h, mi, s, milli)
                       : std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(y), m, d, h, mi, s);
    out.append(buf, static_cast<std::size_t>(n));
}

// ============================================================== JSON text -> tree

struct jnode {
    enum kind_t : std::uint8_t { null, boolean, number, string, array, object };
    kind_t kind = null;
    bool flag = false;            // boolean value; for numbers: has a fraction or exponent
    std::string text;             // string contents (decoded) or number text
    std::vector<jnode> items;     // array items, or object values
    std::vector<std::string> keys;  // object keys
    std::size_t offset = 0;       // where the value starts in the input
    std::vector<std::size_t> key_offsets;

    const jnode* get(std::string_view key) const {
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }
};

const char* kind_name(jnode::kind_t k) {
    switch (k) {
        case jnode::null: return "null";
        case jnode::boolean: return "boolean";
        case jnode::number: return "number";
        case jnode::string: return "string";
        case jnode::array: return "array";
        case jnode::object: return "object";
    }
    return "?";
}

constexpr std::size_t max_json_depth = 200;

class json_parser {
public:
    explicit json_parser(std::string_view text, std::size_t pos = 0) : s_(text), pos_(pos) {}

    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        std::size_t line = 1, col = 1;
        for (std::size_t i = 0; i < at && i < s_.size(); ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) {
                ++col;
            }
        }
        throw bson_error(errc::json_invalid,
                         "Extended JSON line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what, at);
    }

    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    bool at_end() const { return pos_ >= s_.size(); }
    std::size_t pos() const { return pos_; }

    jnode parse_value(std::size_t depth) {
        skip_ws();
        if (at_end()) fail(pos_, "unexpected end of input, expected a value");
        if (depth > max_json_depth) fail(pos_, "nesting deeper than " + std::to_string(max_json_depth) + " levels");
        jnode n;
        n.offset = pos_;
        const char c = s_[pos_];
        if (c == '{') {
            n.kind = jnode::object;
            ++pos_;
            skip_ws();
            if (peek('}')) return n;
            for (;;) {
                skip_ws();
                if (at_end() || s_[pos_] != '"') fail(pos_, "expected a quoted key");
                n.key_offsets.push_back(pos_);
                n.keys.push_back(parse_string());
                skip_ws();
                if (!peek(':')) fail(pos_, "expected ':' after key \"" + n.keys.back() + "\"");
                n.items.push_back(parse_value(depth + 1));
                skip_ws();
                if (peek(',')) continue;
                if (peek('}')) return n;
                fail(pos_, "expected ',' or '}' in object");
            }
        }
        if (c == '[') {
            n.kind = jnode::array;
            ++pos_;
            skip_ws();
            if (peek(']')) return n;
            for (;;) {
                n.items.push_back(parse_value(depth + 1));
                skip_ws();
                if (peek(',')) continue;
                if (peek(']')) return n;
                fail(pos_, "expected ',' or ']' in array");
            }
        }
        if (c == '"') {
            n.kind = jnode::string;
            n.text = parse_string();
            return n;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            n.kind = jnode::number;
            parse_number(n);
            return n;
        }
        if (literal("true")) {
            n.kind = jnode::boolean;
            n.flag = true;
            return n;
        }
        if (literal("false")) {
            n.kind = jnode::boolean;
            return n;
        }
        if (literal("null")) return n;
        fail(pos_, std::string("unexpected character '") + c + "'");
    }

private:
    bool peek(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) == word) {
            pos_ += word.size();
            return true;
        }
        return false;
    }

    unsigned hex4(std::size_t at) {
        if (at + 4 > s_.size()) fail(at, "truncated \\u escape");
        unsigned v = 0;
        for (std::size_t i = at; i < at + 4; ++i) {
            const int d = hex_digit(s_[i]);
            if (d < 0) fail(i, "invalid hex digit in \\u escape");
            v = v << 4 | static_cast<unsigned>(d);
        }
        return v;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | cp >> 6);
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | cp >> 12);
            out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | cp >> 18);
            out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
            out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string parse_string() {
        const std::size_t start = pos_;
        ++pos_;  // opening quote
        std::string out;
        for (;;) {
            // Copy a run of plain bytes at once.
            std::size_t run = pos_;
            while (run < s_.size() && s_[run] != '"' && s_[run] != '\\' && static_cast<unsigned char>(s_[run]) >= 0x20) ++run;
            const auto* bytes = reinterpret_cast<const std::uint8_t*>(s_.data() + pos_);
            const std::size_t valid = detail::utf8_valid_prefix(bytes, run - pos_);
            if (valid != run - pos_) fail(pos_ + valid, "invalid UTF-8 in string");
            out.append(s_.data() + pos_, run - pos_);
            pos_ = run;
            if (pos_ >= s_.size()) fail(start, "unterminated string");
            const char c = s_[pos_];
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c != '\\') fail(pos_, "unescaped control character in string");
            if (pos_ + 1 >= s_.size()) fail(pos_, "unterminated escape");
            const char e = s_[pos_ + 1];
            pos_ += 2;
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4(pos_);
                    const std::size_t esc = pos_ - 2;
                    pos_ += 4;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (pos_ + 6 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
                            fail(esc, "high surrogate \\u escape without a low surrogate");
                        const unsigned lo = hex4(pos_ + 2);
                        if (lo < 0xDC00 || lo > 0xDFFF) fail(pos_, "high surrogate followed by a non-low-surrogate");
                        pos_ += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail(esc, "lone low surrogate \\u escape");
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail(pos_ - 2, std::string("invalid escape '\\") + e + "'");
            }
        }
    }

    void parse_number(jnode& n) {
        const std::size_t start = pos_;
        if (s_[pos_] == '-') ++pos_;
        auto digits = [&] {
            const std::size_t d = pos_;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
            return pos_ - d;
        };
        const std::size_t int_start = pos_;
        const std::size_t int_digits = digits();
        if (int_digits == 0) fail(pos_, "expected digits in number");
        if (int_digits > 1 && s_[int_start] == '0') fail(int_start, "number with a leading zero");
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            n.flag = true;
            if (digits() == 0) fail(pos_, "expected digits after the decimal point");
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            n.flag = true;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            if (digits() == 0) fail(pos_, "expected digits in the exponent");
        }
        n.text.assign(s_.substr(start, pos_ - start));
    }

    std::string_view s_;
    std::size_t pos_;
};

// ============================================================== tree -> BSON

template <class T>
void put(builder& b, const std::string* key, const T& v) {
    if (key) b.append(*key, v);
    else b.append(v);
}

class converter {
public:
    converter(const json_parser& p, const json_parse_options& options) : p_(p), options_(options) {}

    void document(const jnode& obj, builder& b) {
        for (std::size_t i = 0; i < obj.keys.size(); ++i) {
            const std::string& key = obj.keys[i];
            if (key.find('\0') != std::string::npos)
                p_.fail(obj.key_offsets[i], "key \"" + key.substr(0, key.find('\0')) + "\\u0000...\" contains a NUL character");
            value(&key, obj.items[i], b);
        }
    }

    void value(const std::string* key, const jnode& n, builder& b) {
        switch (n.kind) {
            case jnode::null: put(b, key, bson::null); return;
            case jnode::boolean: put(b, key, n.flag); return;
            case jnode::string: put(b, key, std::string_view(n.text)); return;
            case jnode::number: number(key, n, b); return;
            case jnode::array:
                if (key) b.open_array(*key);
                else b.open_array();
                for (const jnode& item : n.items) value(nullptr, item, b);
                b.close_array();
                return;
            case jnode::object:
                if (wrapper(key, n, b)) return;
                if (key) b.open_document(*key);
                else b.open_document();
                document(n, b);
                b.close_document();
                return;
        }
    }

private:
    [[noreturn]] void fail(const jnode& n, const std::string& what) const { p_.fail(n.offset, what); }

    // A relaxed number: int32 when it fits, else int64, else double.
    void number(const std::string* key, const jnode& n, builder& b) {
        if (!n.flag) {
            std::int64_t v;
            const auto [end, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), v);
            if (ec == std::errc() && end == n.text.data() + n.text.size()) {
                if (v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max())
                    put(b, key, static_cast<std::int32_t>(v));
                else
                    put(b, key, v);
                return;
            }
        }
        put(b, key, parse_double_text(n, n.text));
    }

    double parse_double_text(const jnode& n, std::string_view text) const {
        double d;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
        if (end != text.data() + text.size() || (ec != std::errc() && ec != std::errc::result_out_of_range))
            fail(n, "\"" + std::string(text) + "\" is not a valid double");
        if (ec == std::errc::result_out_of_range) {
            // from_chars reports overflow and underflow without a value: keep IEEE semantics.
            const bool negative = text.front() == '-';
            const bool tiny = text.find_first_of("eE") != std::string_view::npos &&
                              text[text.find_first_of("eE") + 1] == '-';
            d = tiny ? (negative ? -0.0 : 0.0)
                     : (negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity());
        }
        return d;
    }

    const std::string& want_string(const jnode& n, const std::string& what) const {
        if (n.kind != jnode::string)
            fail(n, what + " must be a string, got " + kind_name(n.kind));
        return n.text;
    }

    void only_keys(const jnode& obj, std::initializer_list<std::string_view> allowed, const std::string& what) const {
        for (std::size_t i = 0; i < obj.keys.size(); ++i)
            if (std::find(allowed.begin(), allowed.end(), obj.keys[i]) == allowed.end())
                p_.fail(obj.key_offsets[i], "unexpected key \"" + obj.keys[i] + "\" in " + what);
        for (std::size_t i = 0; i < obj.keys.size(); ++i)
            for (std::size_t j = i + 1; j < obj.keys.size(); ++j)
                if (obj.keys[i] == obj.keys[j]) p_.fail(obj.key_offsets[j], "duplicate key \"" + obj.keys[j] + "\" in " + what);
    }

    const jnode& need(const jnode& obj, std::string_view key, const std::string& what) const {
        const jnode* v = obj.get(key);
        if (!v) fail(obj, what + " is missing \"" + std::string(key) + "\"");
        return *v;
    }

    std::uint32_t uint32_of(const jnode& n, const std::string& what) const {
        if (n.kind != jnode::number || n.flag || n.text.front() == '-')
            fail(n, what + " must be a non-negative integer");
        std::uint32_t v;
        const auto [end, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), v);
        if (ec != std::errc() || end != n.text.data() + n.text.size()) fail(n, what + " does not fit in 32 bits");
        return v;
    }

    static bool is_wrapper_key(const std::string& k, const jnode& v) {
        if (k.size() < 2 || k[0] != '$') return false;
        static constexpr std::string_view keys[] = {
            "$oid",      "$symbol", "$numberInt", "$numberLong",     "$numberDouble", "$numberDecimal",
            "$binary",   "$uuid",   "$code",      "$timestamp",      "$regularExpression", "$dbPointer",
            "$date",     "$minKey", "$maxKey",    "$undefined"};
        if (k == "$regex") return v.kind != jnode::object;  // {"$regex": {...}} is a query operator
        return std::find(std::begin(keys), std::end(keys), k) != std::end(keys);
    }

    // Recognizes a type wrapper object; returns false for a plain document.
    bool wrapper(const std::string* key, const jnode& obj, builder& b) {
        std::string kw;
        for (std::size_t i = 0; i < obj.keys.size(); ++i)
            if (is_wrapper_key(obj.keys[i], obj.items[i])) {
                kw = obj.keys[i];
                break;
            }
        if (kw.empty()) return false;
        const jnode& v = *obj.get(kw);
        const std::string what = "\"" + kw + "\"";

        if (kw == "$oid") {
            only_keys(obj, {"$oid"}, what);
            auto id = oid::parse(want_string(v, what));
            if (!id) fail(v, what + " must be 24 hex digits, got \"" + v.text + "\"");
            put(b, key, *id);
        } else if (kw == "$symbol") {
            only_keys(obj, {"$symbol"}, what);
            put(b, key, symbol{want_string(v, what)});
        } else if (kw == "$numberInt") {
            only_keys(obj, {"$numberInt"}, what);
            const std::string& t = want_string(v, what);
            std::int32_t x;
            const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), x);
            if (t.empty() || ec != std::errc() || end != t.data() + t.size())
                fail(v, what + " must hold a 32-bit integer, got \"" + t + "\"");
            put(b, key, x);
        } else if (kw == "$numberLong") {
            only_keys(obj, {"$numberLong"}, what);
            put(b, key, int64_of(v, what));
        } else if (kw == "$numberDouble") {
            only_keys(obj, {"$numberDouble"}, what);
            const std::string& t = want_string(v, what);
            double d;
            if (t == "Infinity") d = std::numeric_limits<double>::infinity();
            else if (t == "-Infinity") d = -std::numeric_limits<double>::infinity();
            else if (t == "NaN") d = std::numeric_limits<double>::quiet_NaN();
            else if (t.empty() || !(t[0] == '-' || (t[0] >= '0' && t[0] <= '9') || t[0] == '.'))
                fail(v, what + " must hold a number, Infinity, -Infinity or NaN, got \"" + t + "\"");
            else d = parse_double_text(v, t);
            put(b, key, d);
        } else if (kw == "$numberDecimal") {
            only_keys(obj, {"$numberDecimal"}, what);
            const std::string& t = want_string(v, what);
            auto d = decimal128::parse(t);
            if (!d) fail(v, what + " is not a valid Decimal128: \"" + t + "\"");
            put(b, key, *d);
        } else if (kw == "$binary") {
            binary_value(key, obj, v, b);
        } else if (kw == "$uuid") {
            only_keys(obj, {"$uuid"}, what);
            const std::string& t = want_string(v, what);
            const auto u = uuid::parse(t);
            if (!u) fail(v, what + " must be a UUID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, got \"" + t + "\"");
            put(b, key, *u);
        } else if (kw == "$code") {
            const std::string& js = want_string(v, what);
            if (const jnode* scope = obj.get("$scope")) {
                only_keys(obj, {"$code", "$scope"}, what);
                if (scope->kind != jnode::object) fail(*scope, "\"$scope\" must be an object, got " + std::string(kind_name(scope->kind)));
                builder sb;
                document(*scope, sb);
                const bson::document sd = sb.extract();
                put(b, key, code_w_scope{js, sd.view()});
            } else {
                only_keys(obj, {"$code"}, what);
                put(b, key, code{js});
            }
        } else if (kw == "$timestamp") {
            only_keys(obj, {"$timestamp"}, what);
            if (v.kind != jnode::object) fail(v, what + " must be an object {t, i}, got " + kind_name(v.kind));
            only_keys(v, {"t", "i"}, what);
            const std::uint32_t t = uint32_of(need(v, "t", what), "\"$timestamp.t\"");
            const std::uint32_t i = uint32_of(need(v, "i", what), "\"$timestamp.i\"");
            put(b, key, timestamp{t, i});
        } else if (kw == "$regularExpression") {
            only_keys(obj, {"$regularExpression"}, what);
            if (v.kind != jnode::object) fail(v, what + " must be an object {pattern, options}, got " + kind_name(v.kind));
            only_keys(v, {"pattern", "options"}, what);
            regex_value(key, need(v, "pattern", what), need(v, "options", what), b);
        } else if (kw == "$regex") {
            only_keys(obj, {"$regex", "$options"}, what);
            const jnode* options = obj.get("$options");
            if (!options) fail(obj, "legacy \"$regex\" is missing \"$options\"");
            regex_value(key, v, *options, b);
        } else if (kw == "$dbPointer") {
            only_keys(obj, {"$dbPointer"}, what);
            if (v.kind != jnode::object) fail(v, what + " must be an object {$ref, $id}, got " + kind_name(v.kind));
            only_keys(v, {"$ref", "$id"}, what);
            const std::string& ref = want_string(need(v, "$ref", what), "\"$dbPointer.$ref\"");
            const jnode& id = need(v, "$id", what);
            const jnode* hex = id.kind == jnode::object ? id.get("$oid") : nullptr;
            if (!hex || id.keys.size() != 1 || hex->kind != jnode::string || !oid::parse(hex->text))
                fail(id, "\"$dbPointer.$id\" must be an {\"$oid\": ...} ObjectId");
            put(b, key, db_pointer{ref, *oid::parse(hex->text)});
        } else if (kw == "$date") {
            only_keys(obj, {"$date"}, what);
            if (v.kind == jnode::string) {
                auto ms = parse_iso8601(v.text);
                if (!ms) fail(v, what + " string must be an ISO-8601 date such as 2012-12-24T12:15:30.501Z, got \"" + v.text + "\"");
                put(b, key, date_time(*ms));
            } else if (v.kind == jnode::object) {
                only_keys(v, {"$numberLong"}, what);
                put(b, key, date_time(int64_of(need(v, "$numberLong", what), "\"$date.$numberLong\"")));
            } else if (v.kind == jnode::number && options_.legacy_date_numbers) {
                std::int64_t ms;
                const auto [end, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), ms);
                if (v.flag || ec != std::errc() || end != v.text.data() + v.text.size())
                    fail(v, what + " number must be an integer count of milliseconds, got " + v.text);
                put(b, key, date_time(ms));
            } else {
                fail(v, what + " must be an ISO-8601 string or {\"$numberLong\": ...}, got " + kind_name(v.kind) +
                            (v.kind == jnode::number ? " (the old shell form {\"$date\": <milliseconds>} is accepted "
                                                       "with json_parse_options::legacy_date_numbers)"
                                                     : ""));
            }
        } else if (kw == "$minKey" || kw == "$maxKey") {
            only_keys(obj, {kw}, what);
            if (v.kind != jnode::number || v.text != "1") fail(v, what + " must be the number 1");
            if (kw == "$minKey") put(b, key, bson::min_key);
            else put(b, key, bson::max_key);
        } else if (kw == "$undefined") {
            only_keys(obj, {"$undefined"}, what);
            if (v.kind != jnode::boolean || !v.flag) fail(v, what + " must be true");
            put(b, key, bson::undefined);
        } else {
            return false;
        }
        return true;
    }

    std::int64_t int64_of(const jnode& v, const std::string& what) const {
        const std::string& t = want_string(v, what);
        std::int64_t x;
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), x);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size())
            fail(v, what + " must hold a 64-bit integer, got \"" + t + "\"");
        return x;
    }

    std::uint8_t subtype_of(const jnode& n, const std::string& what) const {
        const std::string& t = want_string(n, what);
        if (t.empty() || t.size() > 2 || hex_digit(t[0]) < 0 || (t.size() == 2 && hex_digit(t[1]) < 0))
            fail(n, what + " must be one or two hex digits, got \"" + t + "\"");
        return static_cast<std::uint8_t>(t.size() == 1 ? hex_digit(t[0]) : hex_digit(t[0]) << 4 | hex_digit(t[1]));
    }

    void binary_value(const std::string* key, const jnode& obj, const jnode& v, builder& b) {
        const jnode* data;
        std::uint8_t subtype;
        if (v.kind == jnode::object) {  // canonical {"$binary": {"base64": ..., "subType": ...}}
            only_keys(obj, {"$binary"}, "\"$binary\"");
            only_keys(v, {"base64", "subType"}, "\"$binary\"");
            data = &need(v, "base64", "\"$binary\"");
            want_string(*data, "\"$binary.base64\"");
            subtype = subtype_of(need(v, "subType", "\"$binary\""), "\"$binary.subType\"");
        } else {  // legacy {"$binary": "...", "$type": "..."}
            only_keys(obj, {"$binary", "$type"}, "legacy \"$binary\"");
            data = &v;
            want_string(v, "legacy \"$binary\"");
            const jnode* t = obj.get("$type");
            if (!t) fail(obj, "legacy \"$binary\" is missing \"$type\"");
            subtype = subtype_of(*t, "\"$type\"");
        }
        std::vector<std::uint8_t> bytes;
        if (auto decoded = base64::decode(data->text)) bytes = std::move(*decoded);
        else fail(*data, "invalid (or unpadded) base64 in \"$binary\"");
        // Any length, subtype 4 included: BSON does not fix one, validation accepts every length,
        // and to_json writes them so. Only "$uuid" (its text form) is always 16 bytes.
        put(b, key, binary{subtype, bytes});
    }

    void regex_value(const std::string* key, const jnode& pattern, const jnode& options, builder& b) {
        const std::string& p = want_string(pattern, "regex pattern");
        const std::string& o = want_string(options, "regex options");
        if (p.find('\0') != std::string::npos) fail(pattern, "regex pattern contains a NUL character");
        if (o.find('\0') != std::string::npos) fail(options, "regex options contain a NUL character");
        put(b, key, regex{p, o});
    }

    const json_parser& p_;
    const json_parse_options& options_;
};

document parse_document_at(std::string_view text, std::size_t& pos, const json_parse_options& options) {
    json_parser parser(text, pos);
    parser.skip_ws();
    if (parser.at_end() || text[parser.pos()] != '{')
        parser.fail(parser.pos(), parser.at_end() ? "expected a JSON object, got end of input" : "expected a JSON object");
    const jnode root = parser.parse_value(1);
    builder b;
    converter(parser, options).document(root, b);
    parser.skip_ws();
    pos = parser.pos();
    return b.extract();
}

// ============================================================== BSON -> JSON text

void write_escaped(std::string& out, std::string_view s) {
    out += '"';
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: {
                out += "\\u00";
                out += detail::hex_lower[c >> 4];
                out += detail::hex_lower[c & 0xF];
            }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

// Shortest text that reads back as the same double, always with a '.' or an
// exponent so that it reads back as a double and not an integer.
void write_double_text(std::string& out, double d) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    (void)ec;
    // buf = [-]D[.DDD]e[+-]XX
    std::string_view sci(buf, static_cast<std::size_t>(end - buf));
    const std::size_t e = sci.find('e');
    std::string_view mantissa = sci.substr(0, e);
    int exponent = 0;
    const char* exp_begin = sci.data() + e + 1;
    if (*exp_begin == '+') ++exp_begin;
    std::from_chars(exp_begin, sci.data() + sci.size(), exponent);
    const bool negative = mantissa.front() == '-';
    if (negative) mantissa.remove_prefix(1);
    std::string digits;
    digits += mantissa[0];
    if (mantissa.size() > 2) digits.append(mantissa.substr(2));
    if (negative) out += '-';
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            out += "0.";
            out.append(static_cast<std::size_t>(-exponent - 1), '0');
            out += digits;
        } else if (static_cast<std::size_t>(exponent) + 1 >= digits.size()) {
            out += digits;
            out.append(static_cast<std::size_t>(exponent) + 1 - digits.size(), '0');
            out += ".0";
        } else {
            out.append(digits, 0, static_cast<std::size_t>(exponent) + 1);
            out += '.';
            out.append(digits, static_cast<std::size_t>(exponent) + 1);
        }
    } else {
        out += digits[0];
        out += '.';
        if (digits.size() > 1) out.append(digits, 1);
        else out += '0';
        out += 'E';
        out += exponent < 0 ? '-' : '+';
        out += std::to_string(exponent < 0 ? -exponent : exponent);
    }
}

template <class Int>
void write_int(std::string& out, Int v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    out.append(buf, static_cast<std::size_t>(end - buf));
}

void write_document(document_view doc, std::string& out, json_mode mode, bool is_array);

void write_value(const element& e, std::string& out, json_mode mode) {
    const bool canonical = mode == json_mode::canonical;
    switch (e.type()) {
        case type::double_: {
            const double d = e.get_double();
            if (std::isnan(d)) {
                out += R"({"$numberDouble": "NaN"})";
            } else if (std::isinf(d)) {
                out += d > 0 ? R"({"$numberDouble": "Infinity"})" : R"({"$numberDouble": "-Infinity"})";
            } else if (canonical) {
                out += R"({"$numberDouble": ")";
                write_double_text(out, d);
                out += "\"}";
            } else {
                write_double_text(out, d);
            }
            return;
        }
        case type::string: write_escaped(out, e.get_string()); return;
        case type::document: write_document(e.get_document(), out, mode, false); return;
        case type::array: write_document(e.get_array(), out, mode, true); return;
        case type::binary: {
            const binary bin = e.get_binary();
            out += R"({"$binary": {"base64": ")";
            base64::append(bin.bytes, out);
            out += R"(", "subType": ")";
            out += detail::hex_lower[bin.subtype >> 4];
            out += detail::hex_lower[bin.subtype & 0xF];
            out += "\"}}";
            return;
        }
        case type::undefined: out += R"({"$undefined": true})"; return;
        case type::oid: {
            char hex[24];
            e.get_oid().to_hex(hex);
            out += R"({"$oid": ")";
            out.append(hex, 24);
            out += "\"}";
            return;
        }
        case type::boolean: out += e.get_bool() ? "true" : "false"; return;
        case type::date_time: {
            const std::int64_t ms = e.get_date_time().milliseconds;
            // Relaxed form uses ISO-8601 for years 1970 through 9999 only.
            if (!canonical && ms >= 0 && ms <= 253402300799999) {
                out += R"({"$date": ")";
                format_iso8601(ms, out);
                out += "\"}";
            } else {
                out += R"({"$date": {"$numberLong": ")";
                write_int(out, ms);
                out += "\"}}";
            }
            return;
        }
        case type::null: out += "null"; return;
        case type::regex: {
            const regex r = e.get_regex();
            const std::string options = detail::sorted_regex_options(r.options);
            out += R"({"$regularExpression": {"pattern": )";
            write_escaped(out, r.pattern);
            out += R"(, "options": )";
            write_escaped(out, options);
            out += "}}";
            return;
        }
        case type::db_pointer: {
            const db_pointer p = e.get_db_pointer();
            out += R"({"$dbPointer": {"$ref": )";
            write_escaped(out, p.collection);
            out += R"(, "$id": {"$oid": ")";
            out += p.id.to_hex();
            out += "\"}}}";
            return;
        }
        case type::code:
            out += R"({"$code": )";
            write_escaped(out, e.get_code().javascript);
            out += '}';
            return;
        case type::symbol:
            out += R"({"$symbol": )";
            write_escaped(out, e.get_symbol().value);
            out += '}';
            return;
        case type::code_w_scope: {
            const code_w_scope c = e.get_code_w_scope();
            out += R"({"$code": )";
            write_escaped(out, c.javascript);
            out += R"(, "$scope": )";
            write_document(c.scope, out, mode, false);
            out += '}';
            return;
        }
        case type::int32:
            if (canonical) {
                out += R"({"$numberInt": ")";
                write_int(out, e.get_int32());
                out += "\"}";
            } else {
                write_int(out, e.get_int32());
            }
            return;
        case type::timestamp: {
            const timestamp ts = e.get_timestamp();
            out += R"({"$timestamp": {"t": )";
            write_int(out, ts.seconds);
            out += R"(, "i": )";
            write_int(out, ts.increment);
            out += "}}";
            return;
        }
        case type::int64:
            if (canonical) {
                out += R"({"$numberLong": ")";
                write_int(out, e.get_int64());
                out += "\"}";
            } else {
                write_int(out, e.get_int64());
            }
            return;
        case type::decimal128:
            out += R"({"$numberDecimal": ")";
            out += e.get_decimal128().to_string();
            out += "\"}";
            return;
        case type::min_key: out += R"({"$minKey": 1})"; return;
        case type::max_key: out += R"({"$maxKey": 1})"; return;
    }
}

void write_document(document_view doc, std::string& out, json_mode mode, bool is_array) {
    out += is_array ? '[' : '{';
    bool first = true;
    for (const element& e : doc) {
        if (!first) out += ", ";
        first = false;
        if (!is_array) {
            write_escaped(out, e.key());
            out += ": ";
        }
        write_value(e, out, mode);
    }
    out += is_array ? ']' : '}';
}

}  // namespace

void to_json(document_view doc, std::string& out, json_mode mode) { write_document(doc, out, mode, false); }

std::string to_json(document_view doc, json_mode mode) {
    std::string out;
    out.reserve(doc.size() * 2);
    write_document(doc, out, mode, false);
    return out;
}

std::string to_json(array_view arr, json_mode mode) {
    std::string out;
    write_document(arr, out, mode, true);
    return out;
}

void to_json(const element& e, std::string& out, json_mode mode) { write_value(e, out, mode); }

document from_json(std::string_view text, const json_parse_options& options) {
    std::size_t pos = 0;
    document doc = parse_document_at(text, pos, options);
    if (pos != text.size()) json_parser(text).fail(pos, "unexpected text after the document");
    return doc;
}

std::optional<document> json_reader::next() {
    json_parser p(text_, pos_);
    p.skip_ws();
    pos_ = p.pos();
    if (p.at_end()) return std::nullopt;
    return parse_document_at(text_, pos_, options_);
}

}  // namespace trellis::bson
