// The two contestants, behind the same four calls: encode a tree to BSON, and
// decode BSON (validate, then visit and convert every element).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tree.hpp"

namespace trellis_bench {

/// What an encoder keeps from one document to the next. Both libraries
/// always get the same mode.
enum class encode_mode {
    /// One builder (Trellis: builder::clear(), the bytes read with view()) or
    /// one bson_t (libbson: bson_reinit(), the bytes read with bson_get_data())
    /// serves every document, as in a loop that encodes and sends: the buffer
    /// is allocated once. The scratch documents code_w_scope scopes are built
    /// in are kept the same way.
    reuse,
    /// A new builder per document, finished with extract() (Trellis), or a new
    /// bson_t per document, bson_init() on the stack and bson_destroy()
    /// (libbson); likewise for code_w_scope scopes.
    fresh,
};

class trellis_encoder {
public:
    explicit trellis_encoder(encode_mode mode);
    ~trellis_encoder();
    trellis_encoder(const trellis_encoder&) = delete;
    trellis_encoder& operator=(const trellis_encoder&) = delete;

    /// Encodes the tree; returns the size of the BSON document.
    std::size_t encode(const node& root);
    /// As encode(), and returns a copy of the bytes (for the pre-timing check).
    std::vector<std::uint8_t> encode_copy(const node& root);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

class libbson_encoder {
public:
    explicit libbson_encoder(encode_mode mode);
    ~libbson_encoder();
    libbson_encoder(const libbson_encoder&) = delete;
    libbson_encoder& operator=(const libbson_encoder&) = delete;

    /// Encodes the tree; returns the size of the BSON document. Throws
    /// std::runtime_error when libbson refuses an append.
    std::size_t encode(const node& root);
    std::vector<std::uint8_t> encode_copy(const node& root);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// Decoding: full validation (UTF-8 included), then a walk that reads every
// element through the library's typed accessor. The result is a checksum
// over every value read (key lengths, numbers, string lengths, ...); both
// functions compute the same checksum from the same bytes, so it doubles as a
// check that they read the same values.

/// Throws trellis::bson_error when the bytes are invalid.
std::uint64_t trellis_decode(std::span<const std::uint8_t> bytes);
/// Throws std::runtime_error when the bytes are invalid.
std::uint64_t libbson_decode(std::span<const std::uint8_t> bytes);

// Validation alone (the decoders' first step; what a driver does to a reply before it hands out
// its documents): structure and UTF-8. Both return 1, or throw as the decoders do.

std::uint64_t trellis_validate(std::span<const std::uint8_t> bytes);
std::uint64_t libbson_validate(std::span<const std::uint8_t> bytes);

/// "1.23.1", from bson_get_version().
std::string libbson_version();

}  // namespace trellis_bench
