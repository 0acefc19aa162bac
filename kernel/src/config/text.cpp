// Messages of the configuration reader: locations, values as messages show them, and the
// "did you mean" suggestions for misspelt keys and values.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <sstream>

#include "config/internal.hpp"
#include "trellis/config.hpp"

namespace trellis {

namespace {

std::string located(const std::string& file, std::size_t line, std::size_t column, const std::string& message) {
    if (line == 0) return file + ": " + message;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

}  // namespace

config_error::config_error(std::string file, std::size_t line, std::size_t column, std::string key_path,
                           std::string message)
    : configuration_error(located(file, line, column, message)),
      file_(std::move(file)),
      line_(line),
      column_(line == 0 ? 0 : column),
      key_path_(std::move(key_path)),
      message_(std::move(message)),
      diagnostic_(located(file_, line_, column_, message_)) {}

namespace config_detail {

void source_file::fail(const toml::source_position& at, std::string_view key_path, const std::string& message) const {
    throw config_error(name_, at.line, at.column, std::string(key_path), message);
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    constexpr char hex[] = "0123456789ABCDEF";
                    out += "\\u00";
                    out += hex[u >> 4];
                    out += hex[u & 0xf];
                } else {
                    out += c;
                }
        }
    }
    return out + '"';
}

std::string describe(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string: return quote(node.as_string()->get());
        case toml::node_type::integer: return std::to_string(node.as_integer()->get());
        case toml::node_type::floating_point: {
            const double d = node.as_floating_point()->get();
            if (std::isnan(d)) return "nan";
            if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
            char buffer[32];
            const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
            std::string text(buffer, ec == std::errc() ? end : buffer);
            // Keep it recognisably a float, as TOML writes it: 2.0, not 2.
            if (text.find_first_of(".eE") == std::string::npos) text += ".0";
            return text;
        }
        case toml::node_type::boolean: return node.as_boolean()->get() ? "true" : "false";
        case toml::node_type::array: return "an array";
        case toml::node_type::table: return "a table";
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time: {
            std::ostringstream out;
            if (const auto* d = node.as_date()) out << d->get();
            if (const auto* t = node.as_time()) out << t->get();
            if (const auto* dt = node.as_date_time()) out << dt->get();
            return out.str();
        }
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::string join_key(std::string_view path, std::string_view key) {
    const auto bare = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    };
    std::string out(path);
    if (!out.empty()) out += '.';
    if (!key.empty() && std::all_of(key.begin(), key.end(), bare)) out += key;
    else out += quote(key);
    return out;
}

std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table) {
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [key, node] : table) entries.emplace_back(&key, &node);
    const auto before = [](const auto& a, const auto& b) {
        const toml::source_position pa = a.first->source().begin, pb = b.first->source().begin;
        return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    };
    std::stable_sort(entries.begin(), entries.end(), before);
    return entries;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Three rows of the dynamic programme: the transposition case looks two rows back.
    std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
    std::iota(previous.begin(), previous.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                current[j] = std::min(current[j], before[j - 2] + 1);
        }
        std::swap(before, previous);
        std::swap(previous, current);
    }
    return previous[b.size()];
}

std::optional<std::string> closest(std::string_view word, std::span<const candidate> candidates) {
    const std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, word.size() / 3));
    std::optional<std::string> best;
    std::size_t best_distance = limit + 1;
    for (const candidate& c : candidates) {
        const std::size_t d = edit_distance(word, c.compared) + c.penalty;
        if (d < best_distance) {
            best_distance = d;
            best = c.shown;
        }
    }
    return best;
}

}  // namespace config_detail
}  // namespace trellis
