// BSON validation and the Extended JSON round trip. Input: any bytes, taken as one BSON document.
//   - find_error() and validate() agree; a failure names an offset inside the input;
//   - the validator fed the input in pieces (one byte, then pieces of 1 to 40 bytes chosen by
//     the input itself) accepts exactly what find_error() accepts, and only at the last piece;
//   - a document the validator accepts never makes a typed accessor or the JSON writer fail;
//   - what Trellis writes it reads back: canonical Extended JSON -> BSON -> canonical Extended
//     JSON gives the same text, and the same bytes wherever the corpus spec says canonical JSON
//     is lossless (no key starting with '$', which Extended JSON reserves; array keys "0", "1", ...
//     in order; no NaN, whose payload JSON drops; regex options sorted; Decimal128 in the form its
//     text gives back);
//   - relaxed Extended JSON reads back without error.
#include <cmath>
#include <cstring>

#include "bson/validator.hpp"
#include "bson_walk.hpp"
#include "fuzz_check.hpp"
#include "trellis/bson/json.hpp"

namespace bson = trellis::bson;
using trellis::fuzz::hex;


namespace {

// The validator as a connection runs it: the bytes received so far, a longer prefix each time.
void check_in_pieces(std::span<const std::uint8_t> in, bool valid) {
    for (const bool bytewise : {true, false}) {
        bson::detail::validator v;
        std::size_t given = 0, step = 0;
        auto status = bson::detail::validator::status::incomplete;
        while (given < in.size()) {
            const std::size_t piece = bytewise ? 1 : 1 + (in[step++ % in.size()] + given) % 40;
            given = std::min(in.size(), given + piece);
            status = v.advance(in.first(given), in.size());
            if (status == bson::detail::validator::status::invalid) break;
            FUZZ_CHECK(status != bson::detail::validator::status::valid || given == in.size(),
                       "the validator accepted " + std::to_string(given) + " of " + std::to_string(in.size()) +
                           " bytes as a whole document: " + hex(in));
        }
        if (valid)
            FUZZ_CHECK(status == bson::detail::validator::status::valid,
                       std::string("in pieces, the validator did not accept a valid document (") +
                           (v.failure() ? v.failure()->message : "incomplete") + "): " + hex(in));
        else
            FUZZ_CHECK(status == bson::detail::validator::status::invalid,
                       "in pieces, the validator accepted what find_error() refuses: " + hex(in));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    const auto failure = bson::find_error(in);
    // Pieces of a document whose stated length is the input's (a frame sets the length apart).
    if (size >= 5 && size <= 0x7FFFFFFF && trellis::bson::detail::load_le<std::int32_t>(data) == static_cast<std::int32_t>(size))
        check_in_pieces(in, !failure);
    bool threw = false;
    try {
        bson::validate(in);
    } catch (const trellis::bson_error& e) {
        threw = true;
        FUZZ_CHECK(failure.has_value(), std::string("validate() threw but find_error() found nothing: ") + e.what());
    }
    if (failure) {
        FUZZ_CHECK(threw, "find_error() found \"" + failure->message + "\" but validate() accepted " + hex(in));
        FUZZ_CHECK(failure->offset <= size, "failure offset " + std::to_string(failure->offset) + " beyond the input");
        FUZZ_CHECK(!failure->message.empty(), "a failure without a message");
        return 0;
    }

    const bson::document_view doc(data, size);
    trellis::fuzz::findings found;
    trellis::fuzz::walk(doc, found);
    const bool exact = found.exact;

    std::string canonical, relaxed;
    try {
        canonical = bson::to_json(doc, bson::json_mode::canonical);
        relaxed = bson::to_json(doc, bson::json_mode::relaxed);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, std::string("to_json of a valid document threw: ") + e.what() + " for " + hex(in));
    }

    // Keys starting with '$' are Extended JSON's type wrappers: a document holding such keys is
    // not always representable, so only there may reading back fail (and then with bson_error).
    const bool dollar_keys = found.dollar_keys;

    for (const auto* text : {&canonical, &relaxed}) {
        const bool is_canonical = text == &canonical;
        try {
            const bson::document back = bson::from_json(*text);
            if (dollar_keys) continue;
            if (is_canonical) {
                const std::string again = bson::to_json(back, bson::json_mode::canonical);
                FUZZ_CHECK(again == canonical, "canonical JSON changed on reading back:\n  " + canonical + "\n  " + again);
                if (exact)
                    FUZZ_CHECK(back.view() == doc, "canonical JSON " + canonical + " read back as " + hex(back.bytes()) +
                                                       ", written from " + hex(in));
            }
        } catch (const trellis::bson_error& e) {
            FUZZ_CHECK(dollar_keys, std::string(is_canonical ? "canonical" : "relaxed") + " JSON " + *text +
                                        " written by Trellis does not read back: " + e.what());
        }
    }
    return 0;
}
