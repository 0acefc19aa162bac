// The in-memory form both encoders start from: a plain tree that belongs to
// neither library, built once per data file by walking the document
// trellis::bson::from_json produced.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "trellis/bson/document.hpp"

namespace trellis_bench {

struct node {
    trellis::bson::type type = trellis::bson::type::null;
    /// The field name; for array elements the index as stored ("0", "1", ...),
    /// which the encoders ignore (each library numbers array elements itself).
    std::string key;
    /// string, code, symbol: the text; regex: the pattern; binary: the payload;
    /// code_w_scope: the JavaScript; db_pointer: the collection.
    std::string text;
    /// regex: the options.
    std::string text2;
    double number = 0;         // double
    std::int64_t integer = 0;  // int32, int64, date_time (milliseconds), boolean (0 or 1)
    std::uint32_t ts_seconds = 0, ts_increment = 0;  // timestamp
    std::uint64_t dec_high = 0, dec_low = 0;          // decimal128
    std::array<std::uint8_t, 12> oid{};               // oid, db_pointer
    std::uint8_t subtype = 0;                         // binary
    /// document, array: the elements; code_w_scope: the elements of the scope.
    std::vector<node> children;
};

/// The tree of a document (the root's type is document, its key empty).
node tree_from(trellis::bson::document_view doc);

}  // namespace trellis_bench
