// Command-line pieces shared by trellis-bench's subcommands: the failure they throw, counts,
// and walking "--name value" / "--name=value" arguments.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trellis_bench {

inline constexpr int exit_usage_error = 2;

/// A failure with an exit status and a one-line message.
struct failure {
    int status;
    std::string message;
};

/// A decimal count of at least `minimum` (and at most 12 digits); a usage failure otherwise.
inline std::size_t parse_count(std::string_view option, std::string_view text, std::size_t minimum) {
    std::size_t value = 0;
    bool ok = !text.empty() && text.size() <= 12;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            ok = false;
            break;
        }
        value = value * 10 + static_cast<std::size_t>(c - '0');
    }
    if (!ok || value < minimum)
        throw failure{exit_usage_error, std::string(option) + " needs an integer of at least " + std::to_string(minimum) +
                                            ", got \"" + std::string(text) + "\""};
    return value;
}

/// Walks arguments: next() moves to the next one and splits "--name=value".
class arg_walker {
public:
    arg_walker(std::vector<std::string_view> args, std::size_t first) : args_(std::move(args)), i_(first) {}

    bool next() {
        if (started_) ++i_;
        started_ = true;
        if (i_ >= args_.size()) return false;
        name_ = args_[i_];
        value_.reset();
        if (const auto eq = name_.find('='); name_.starts_with("--") && eq != std::string_view::npos) {
            value_ = name_.substr(eq + 1);
            name_ = name_.substr(0, eq);
        }
        return true;
    }
    std::string_view name() const noexcept { return name_; }
    bool has_inline_value() const noexcept { return value_.has_value(); }
    /// The option's value: after '=', or the next argument.
    std::string_view take_value() {
        if (value_) return *value_;
        if (i_ + 1 >= args_.size()) throw failure{exit_usage_error, std::string(name_) + " needs a value"};
        return args_[++i_];
    }

private:
    std::vector<std::string_view> args_;
    std::size_t i_;
    bool started_ = false;
    std::string_view name_;
    std::optional<std::string_view> value_;
};

}  // namespace trellis_bench
