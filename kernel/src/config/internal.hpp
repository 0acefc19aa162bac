// Pieces of the configuration reader shared by its source files. toml++ is visible here and in
// kernel/src/config only: the public header (trellis/config.hpp) never names it.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "trellis/bson/document.hpp"

namespace trellis::config_detail {

/// Where the text came from, for messages.
class source_file {
public:
    explicit source_file(std::string name) : name_(std::move(name)) {}

    const std::string& name() const noexcept { return name_; }

    /// Throws config_error "<name>:<line>:<column>: <message>" (just "<name>: <message>" when the
    /// position is unknown: toml++ gives line 0 for nodes it made up).
    [[noreturn]] void fail(const toml::source_position& at, std::string_view key_path,
                           const std::string& message) const;

private:
    std::string name_;
};

/// A value as the message "..., got X" shows it: strings quoted TOML-style, numbers and
/// booleans as written, "an array" / "a table" for containers.
std::string describe(const toml::node& node);

/// s in double quotes, with '"', '\' and control characters escaped as TOML basic strings are.
std::string quote(std::string_view s);

/// path + "." + key, with the key quoted when it is not a bare TOML key (letters, digits, '_'
/// and '-'), so that the path reads as the file would write it.
std::string join_key(std::string_view path, std::string_view key);

/// A table's entries in the order the file gives them: toml::table is a sorted map, and
/// messages, tag sets and plugin tables should follow the file, not the alphabet.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table);

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of neighbours each cost 1, so the common typo "szie" is one edit from "size".
std::size_t edit_distance(std::string_view a, std::string_view b);

/// A name a typo may have meant: compared is matched against the typo, shown is suggested.
/// The penalty is added to the distance, so that a key of another table ranks below an equally
/// close key of the table the typo is in.
struct candidate {
    std::string compared;
    std::string shown;
    std::size_t penalty = 0;
};

/// The shown name of the closest candidate, when it is close enough to be a likely typo (about
/// one edit in three characters, at least one); nullopt otherwise.
std::optional<std::string> closest(std::string_view word, std::span<const candidate> candidates);

/// Throws config_error (with the line and column) when tables and arrays nest deeper than a BSON
/// document may (bson::validation_options::max_depth, counting the root table as the top level).
/// Run on the text before toml++ parses it, since toml++ recurses into every level.
void check_nesting(std::string_view text, const std::string& source_name);

/// Converts a [plugins.<name>] table to BSON (see plugin_settings::tables). path is the table's
/// dotted key, for messages.
bson::document to_bson(const source_file& source, const toml::table& table, const std::string& path);

}  // namespace trellis::config_detail
