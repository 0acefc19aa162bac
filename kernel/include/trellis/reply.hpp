// The one rule for "did this command succeed": the reply's ok is a number other than zero or
// true. mongod sends 1.0; proxies and older servers send 1 or true. Every reply check in
// Trellis and its SDK (handshake, monitors, operations, authentication) uses it.
#pragma once

#include "trellis/bson/document.hpp"

namespace trellis {

inline bool reply_ok(bson::document_view reply) noexcept {
    try {
        const auto ok = reply.find("ok");
        if (!ok) return false;
        if (ok->type() == bson::type::boolean) return ok->get_bool();
        return ok->is_number() && ok->as_double() != 0.0;
    } catch (...) {
        return false;  // a malformed element is not a success
    }
}

}  // namespace trellis
