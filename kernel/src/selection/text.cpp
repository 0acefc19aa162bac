// Text for error messages and why-not lines: tag sets and read preferences.
#include "selection_internal.hpp"

namespace trellis::selection {

namespace {

// "{dc: ny, rack: 1}" for any sequence of name/value pairs (a tag set, a server's tags).
template <class Pairs>
std::string pairs_text(const Pairs& tags) {
    std::string out = "{";
    bool first = true;
    for (const auto& [name, value] : tags) {
        if (!first) out += ", ";
        first = false;
        out += name;
        out += ": ";
        out += value;
    }
    out += '}';
    return out;
}

}  // namespace

std::string to_string(const tag_set& tags) { return pairs_text(tags); }

std::string to_string(const read_preference& preference) {
    std::string out(trellis::to_string(preference.mode));
    if (!preference.tag_sets.empty()) out += ", tag sets " + detail::tag_sets_text(preference.tag_sets);
    if (preference.max_staleness) out += ", maxStalenessSeconds " + std::to_string(preference.max_staleness->count());
    return out;
}

namespace detail {

std::string tags_text(const std::map<std::string, std::string>& tags) { return pairs_text(tags); }

std::string tag_sets_text(const std::vector<tag_set>& sets) {
    std::string out = "[";
    for (std::size_t i = 0; i < sets.size(); ++i) {
        if (i != 0) out += ", ";
        out += selection::to_string(sets[i]);
    }
    out += ']';
    return out;
}

bool has_tags(const read_preference& preference) noexcept {
    for (const tag_set& s : preference.tag_sets)
        if (!s.empty()) return true;
    return false;
}

}  // namespace detail
}  // namespace trellis::selection
