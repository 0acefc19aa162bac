// The Extended JSON reader. Input: the first byte chooses the parse options (bit 0:
// legacy_date_numbers), the rest is text read with json_reader (a sequence of objects).
//   - the reader fails only with bson_error(errc::json_invalid), at an offset inside the text;
//   - every document it returns is valid BSON (the validator accepts it);
//   - the document's canonical Extended JSON reads back to the same bytes, wherever canonical
//     JSON is lossless (see bson_walk.hpp), and to the same canonical text always;
//   - from_json() on a text holding exactly one object agrees with the reader.
#include "bson_walk.hpp"
#include "fuzz_check.hpp"
#include "trellis/bson/json.hpp"

namespace bson = trellis::bson;
using trellis::fuzz::hex;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    bson::json_parse_options options;
    options.legacy_date_numbers = (data[0] & 1) != 0;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    std::vector<bson::document> docs;
    bool failed = false;
    bson::json_reader reader(text, options);
    try {
        while (auto d = reader.next()) {
            docs.push_back(std::move(*d));
            FUZZ_CHECK(docs.size() <= text.size(), "more documents than bytes");
        }
    } catch (const trellis::bson_error& e) {
        failed = true;
        FUZZ_CHECK(e.code() == trellis::errc::json_invalid, std::string("reader failed with another code: ") + e.what());
        FUZZ_CHECK(e.offset() == trellis::bson_error::npos || e.offset() <= text.size(),
                   "error offset " + std::to_string(e.offset()) + " beyond the text of " + std::to_string(text.size()));
    }

    for (const bson::document& doc : docs) {
        const auto failure = bson::find_error(doc.bytes());
        FUZZ_CHECK(!failure, "the reader made invalid BSON (" + (failure ? failure->message : std::string()) +
                                 "): " + hex(doc.bytes()));
        trellis::fuzz::findings found;
        trellis::fuzz::walk(doc.view(), found);
        const std::string canonical = bson::to_json(doc, bson::json_mode::canonical);
        try {
            const bson::document back = bson::from_json(canonical);
            const std::string again = bson::to_json(back, bson::json_mode::canonical);
            FUZZ_CHECK(again == canonical, "canonical JSON changed on reading back:\n  " + canonical + "\n  " + again);
            if (found.exact)
                FUZZ_CHECK(back == doc, "canonical JSON " + canonical + " read back as " + hex(back.bytes()) + ", not " +
                                            hex(doc.bytes()));
        } catch (const trellis::bson_error& e) {
            FUZZ_CHECK(found.dollar_keys, "canonical JSON " + canonical + " of a document the reader made does not read back: " +
                                              e.what());
        }
    }

    // One object alone: from_json() and the reader agree.
    if (!failed && docs.size() == 1) {
        try {
            const bson::document one = bson::from_json(text, options);
            FUZZ_CHECK(one == docs[0], "from_json() and json_reader disagree on " + std::string(text));
        } catch (const trellis::bson_error& e) {
            FUZZ_CHECK(false, std::string("from_json() refused what json_reader read: ") + e.what());
        }
    }
    return 0;
}
