// SASLprep (RFC 4013): the stringprep (RFC 3454) profile SCRAM-SHA-256 applies
// to passwords. MongoDB applies it to SCRAM-SHA-256 passwords only: never to
// user names, never to SCRAM-SHA-1 (whose "password" is a hex MD5 digest).
#pragma once

#include <string>
#include <string_view>

#include "auth/errors.hpp"

namespace trellis::sim::auth {

struct saslprep_options {
    /// Stringprep's "queries" profile lets code points unassigned in Unicode 3.2 through; "stored strings"
    /// refuse them. mongod (ICU's USPREP_DEFAULT) and PyMongo both refuse them, so the default refuses.
    bool allow_unassigned = false;
};

/// Prepares UTF-8 text:
///  1. map: "commonly mapped to nothing" characters (B.1, e.g. U+00AD SOFT HYPHEN) are removed, non-ASCII
///     spaces (C.1.2, e.g. U+00A0) become U+0020;
///  2. normalize to NFKC (utf8proc);
///  3. refuse prohibited output (C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9) and, unless allowed,
///     code points unassigned in Unicode 3.2 (A.1);
///  4. bidi (RFC 3454 section 6): a string with a RandALCat character (D.1) must not hold an LCat one (D.2),
///     and must start and end with a RandALCat character.
/// Printable ASCII is returned as is without further work. Errors: 2 BadValue naming the problem (invalid
/// UTF-8, the prohibited code point, or the bidi rule broken).
result<std::string> saslprep(std::string_view utf8, const saslprep_options& options = {});

}  // namespace trellis::sim::auth
