// Errors of trellis-sim's authentication layer, shaped as mongod's command
// errors ({ok: 0, errmsg, code, codeName}), and a small result type.
//
// mongod tells a client almost nothing about why authentication failed: every
// failure inside a SASL step becomes code 18 "Authentication failed." (wrong
// password and unknown user look the same on purpose). The detail is kept in
// auth_error::reason for the server's log; it is never put in a reply.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace trellis::sim::auth {

/// mongod's error codes used here (src/mongo/base/error_codes.yml).
namespace error_code {
inline constexpr int bad_value = 2;
inline constexpr int user_not_found = 11;
inline constexpr int protocol_error = 17;
inline constexpr int authentication_failed = 18;
inline constexpr int idl_failed_to_parse = 40414;
inline constexpr int user_already_exists = 51003;
}  // namespace error_code

struct auth_error {
    int code = error_code::authentication_failed;
    std::string code_name = "AuthenticationFailed";
    /// What the client is told (errmsg).
    std::string message = "Authentication failed.";
    /// Why, for the server's log only.
    std::string reason;
};

/// Code 18 "Authentication failed." with a private reason.
inline auth_error authentication_failed(std::string reason) {
    return auth_error{error_code::authentication_failed, "AuthenticationFailed", "Authentication failed.",
                      std::move(reason)};
}
/// 2 BadValue: the client sees the message (mongod does not hide these).
inline auth_error bad_value(std::string message) {
    auth_error e{error_code::bad_value, "BadValue", std::move(message), {}};
    e.reason = e.message;
    return e;
}
/// 17 ProtocolError.
inline auth_error protocol_error(std::string message) {
    auth_error e{error_code::protocol_error, "ProtocolError", std::move(message), {}};
    e.reason = e.message;
    return e;
}

/// Either a T or an auth_error. (std::expected is C++23.)
template <class T>
class result {
public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    result(auth_error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    /// Precondition: ok().
    const T& value() const& { return std::get<0>(v_); }
    T& value() & { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    const T& operator*() const& { return value(); }
    const T* operator->() const { return &value(); }

    /// Precondition: !ok().
    const auth_error& error() const& { return std::get<1>(v_); }

private:
    std::variant<T, auth_error> v_;
};

}  // namespace trellis::sim::auth
