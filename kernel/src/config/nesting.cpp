// The nesting check run on a configuration file's text before toml++ parses it: toml++ builds
// and destroys nested tables and arrays recursively, so a key 20,000 levels deep overflows the
// stack, and one of 10,000 would become a BSON document far deeper than BSON allows.
//
// The scanner follows TOML's structure only as far as depth needs: table headers ([a.b],
// [[a.b]], counting the arrays of tables among their prefixes), dotted keys, and the arrays and
// inline tables of values; strings and comments are skipped. It does not judge syntax: what it
// does not understand it leaves to toml++, which reports it (and stops) there.
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/internal.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/config.hpp"

namespace trellis::config_detail {

namespace {

class nesting_scanner {
public:
    nesting_scanner(std::string_view text, const std::string& source, std::size_t limit)
        : s_(text), source_(source), limit_(limit) {}

    void run() {
        while (pos_ < s_.size()) {
            skip_blank_lines();
            if (pos_ >= s_.size()) return;
            if (s_[pos_] == '[') {
                if (!header()) return;
            } else if (!key_value(header_depth_)) {
                return;
            }
            if (!end_of_line()) return;
        }
    }

private:
    struct frame {
        char kind;               // '[' or '{'
        std::size_t level;       // this container's level (the root table is level 0)
        std::size_t key_extra;   // '{': tables the current dotted key opens
    };

    // ---- characters

    bool at_end() const noexcept { return pos_ >= s_.size(); }
    char peek(std::size_t ahead = 0) const noexcept { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
    void advance() {
        if (s_[pos_] == '\n') {
            ++line_;
            line_start_ = pos_ + 1;
        }
        ++pos_;
    }
    void skip_spaces() {
        while (!at_end() && (peek() == ' ' || peek() == '\t')) advance();
    }
    void skip_comment() {
        while (!at_end() && peek() != '\n') advance();
    }
    void skip_blank_lines() {
        for (;;) {
            skip_spaces();
            if (peek() == '#') skip_comment();
            if (peek() == '\n' || (peek() == '\r' && peek(1) == '\n')) {
                while (peek() != '\n') advance();
                advance();
                continue;
            }
            return;
        }
    }
    // After a statement: spaces, a comment, the end of the line. false for anything else.
    bool end_of_line() {
        skip_spaces();
        if (peek() == '#') skip_comment();
        if (peek() == '\r') advance();
        if (at_end()) return true;
        if (peek() != '\n') return false;
        advance();
        return true;
    }

    [[noreturn]] void too_deep(std::size_t at) const {
        std::size_t column = 1;
        for (std::size_t i = line_start_; i < at && i < s_.size(); ++i)
            if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) ++column;
        throw config_error(source_, line_, column, "",
                           "tables and arrays nest more than " + std::to_string(limit_) +
                               " levels deep here (BSON's limit: " + std::to_string(limit_ + 1) +
                               " levels, counting the top-level table)");
    }
    void check(std::size_t level, std::size_t at) const {
        if (level > limit_) too_deep(at);
    }

    // ---- strings and keys

    // Skips a string starting at pos_ (' or "), single- or multi-line. false when it does not end.
    bool skip_string() {
        const char quote = peek();
        const bool basic = quote == '"';
        if (peek(1) == quote && peek(2) == quote) {  // multi-line
            for (int i = 0; i < 3; ++i) advance();
            while (!at_end()) {
                if (basic && peek() == '\\') {
                    advance();
                    if (!at_end()) advance();
                    continue;
                }
                if (peek() == quote && peek(1) == quote && peek(2) == quote) {
                    for (int i = 0; i < 3; ++i) advance();
                    for (int extra = 0; extra < 2 && peek() == quote; ++extra) advance();  // """a"""" ends in a quote
                    return true;
                }
                advance();
            }
            return false;
        }
        advance();
        while (!at_end() && peek() != '\n') {
            if (basic && peek() == '\\') {
                advance();
                if (!at_end() && peek() != '\n') advance();
                continue;
            }
            if (peek() == quote) {
                advance();
                return true;
            }
            advance();
        }
        return false;
    }

    static bool bare_key_char(char c) noexcept {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    }

    // A dotted key: its parts (quotes removed, escapes left as written). Empty when there is no
    // key here.
    std::vector<std::string_view> key() {
        std::vector<std::string_view> parts;
        for (;;) {
            skip_spaces();
            const std::size_t begin = pos_;
            if (peek() == '"' || peek() == '\'') {
                if (peek(1) == peek() && peek(2) == peek()) return {};  // a multi-line string is no key
                if (!skip_string()) return {};
                parts.push_back(s_.substr(begin + 1, pos_ - begin - 2));
            } else {
                while (!at_end() && bare_key_char(peek())) advance();
                if (pos_ == begin) return {};
                parts.push_back(s_.substr(begin, pos_ - begin));
            }
            skip_spaces();
            if (peek() != '.') return parts;
            advance();
        }
    }

    // ---- statements

    // [a.b] or [[a.b]]: the level of the table it opens.
    bool header() {
        const std::size_t at = pos_;
        advance();
        const bool array_of_tables = peek() == '[';
        if (array_of_tables) advance();
        const std::vector<std::string_view> parts = key();
        if (parts.empty()) return false;
        check(parts.size(), at);  // each part is a table at least
        std::string path;
        std::size_t level = 0;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            path += parts[i];
            ++level;
            if (i + 1 < parts.size() && arrays_of_tables_.count(path)) ++level;  // [[a]] then [a.b]: a's last element
            check(level, at);
            path += '\x1f';
        }
        path.pop_back();
        if (array_of_tables) {
            arrays_of_tables_.insert(path);
            ++level;  // the array, then its element table
            check(level, at);
        }
        if (peek() != ']') return false;
        advance();
        if (array_of_tables) {
            if (peek() != ']') return false;
            advance();
        }
        header_depth_ = level;
        return true;
    }

    // key = value, its tables starting below `table_level`.
    bool key_value(std::size_t table_level) {
        const std::size_t at = pos_;
        const std::vector<std::string_view> parts = key();
        if (parts.empty() || peek() != '=') return false;
        check(table_level + parts.size() - 1, at);  // a.b.c = 1: a and b are tables
        advance();
        return value(table_level + parts.size() - 1);
    }

    // One value whose container (if it is one) is at level + 1, with everything inside it.
    bool value(std::size_t level) {
        std::vector<frame> open;
        const auto level_here = [&] {
            if (open.empty()) return level;
            const frame& f = open.back();
            return f.kind == '[' ? f.level : f.level + f.key_extra;
        };
        bool expect_key = false;  // inside {}, after '{' or ','
        for (;;) {
            if (open.empty()) skip_spaces();
            else skip_blank_lines();  // arrays may span lines
            if (at_end()) return open.empty();
            const char c = peek();
            if (expect_key) {
                if (c == '}') {
                    expect_key = false;
                    continue;
                }
                const std::size_t at = pos_;
                const std::vector<std::string_view> parts = key();
                if (parts.empty() || peek() != '=') return false;
                open.back().key_extra = parts.size() - 1;
                check(open.back().level + open.back().key_extra, at);
                advance();
                expect_key = false;
                continue;
            }
            if (c == '[' || c == '{') {
                const std::size_t at = pos_;
                open.push_back({c, level_here() + 1, 0});
                check(open.back().level, at);
                advance();
                expect_key = c == '{';
            } else if (c == ']' || c == '}') {
                if (open.empty() || open.back().kind != (c == ']' ? '[' : '{')) return false;
                open.pop_back();
                advance();
            } else if (c == ',') {
                if (open.empty()) return false;
                advance();
                expect_key = open.back().kind == '{';
            } else if (c == '"' || c == '\'') {
                if (!skip_string()) return false;
            } else if (c == '\n' || c == '#' || c == '\r') {
                return open.empty();  // the end of the statement (inside arrays, skipped above)
            } else {
                advance();  // a number, a date, true, false
            }
            if (open.empty() && !expect_key) {
                // A scalar or a closed container at the top: the value ends at the next separator.
                skip_spaces();
                if (at_end() || peek() == '\n' || peek() == '#' || peek() == '\r') return true;
                if (peek() == '[' || peek() == '{' || peek() == ']' || peek() == '}' || peek() == ',') return false;
            }
        }
    }

    std::string_view s_;
    const std::string& source_;
    std::size_t limit_;
    std::size_t pos_ = 0;
    std::size_t line_ = 1;
    std::size_t line_start_ = 0;
    std::size_t header_depth_ = 0;
    std::set<std::string> arrays_of_tables_;
};

}  // namespace

void check_nesting(std::string_view text, const std::string& source_name) {
    // The root table is a BSON document's top level (depth 1).
    nesting_scanner(text, source_name, bson::validation_options{}.max_depth - 1).run();
}

}  // namespace trellis::config_detail
