// MongoDB Extended JSON v2: canonical and relaxed output; input in either
// form plus the legacy forms the BSON corpus lists ($binary with $type,
// $regex with $options, $uuid, $date as ISO-8601 text).
//
// Errors are trellis::bson_error with code errc::json_invalid, naming the line,
// the column and what was wrong; offset() is the byte offset in the text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "trellis/bson/document.hpp"

namespace trellis::bson {

enum class json_mode {
    canonical,  // every type preserved: {"$numberInt": "1"}
    relaxed,    // numbers and dates as plain JSON where that loses nothing a reader needs
};

/// Appends the Extended JSON of a document to out.
void to_json(document_view doc, std::string& out, json_mode mode = json_mode::relaxed);
std::string to_json(document_view doc, json_mode mode = json_mode::relaxed);
/// A top-level array as a JSON array.
std::string to_json(array_view arr, json_mode mode = json_mode::relaxed);
/// One value as Extended JSON (without its key).
void to_json(const element& e, std::string& out, json_mode mode = json_mode::relaxed);

struct json_parse_options {
    /// Accept {"$date": <number of milliseconds>}, which old mongo shells and
    /// mongoexport wrote (the benchmark data sets use it). Off by default: the
    /// Extended JSON spec and its corpus reject it.
    bool legacy_date_numbers = false;
};

/// Parses exactly one Extended JSON object (surrounding whitespace allowed).
document from_json(std::string_view text, const json_parse_options& options = {});

/// Reads a sequence of Extended JSON objects, one after another (one per line,
/// or pretty-printed over several lines, or several on a line).
class json_reader {
public:
    explicit json_reader(std::string_view text, json_parse_options options = {}) noexcept
        : text_(text), options_(options) {}
    /// The next document, or nullopt at the end of the text. Throws bson_error.
    std::optional<document> next();
    /// Byte offset of the next unread character.
    std::size_t offset() const noexcept { return pos_; }

private:
    std::string_view text_;
    json_parse_options options_;
    std::size_t pos_ = 0;
};

}  // namespace trellis::bson
