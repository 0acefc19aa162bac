// BSON validation that can stop where the bytes received so far end and go on when more have
// come: find_error() gives it a whole document, a connection the part of a large reply received
// so far, so that most of the reply is checked while the rest is still on its way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "trellis/bson/document.hpp"

namespace trellis::bson::detail {

class validator {
public:
    enum class status { incomplete, valid, invalid };

    explicit validator(const validation_options& options = {}) : options_(options) {}

    /// Checks the document that `received` begins (the same document at each call, with more of
    /// it, at the same or another address) as far as those bytes go, from where the last call
    /// stopped. `limit`: the most bytes the document may span (its length must not say more).
    /// A document given whole reports the fault find_error() reports; one given in pieces may
    /// report another of its faults first.
    status advance(std::span<const std::uint8_t> received, std::size_t limit);
    /// Whether advance() found the whole document valid.
    bool accepted() const noexcept { return done_; }
    /// Why the document is invalid (after status::invalid).
    const std::optional<validation_failure>& failure() const noexcept { return failure_; }
    /// For another document.
    void reset() noexcept;

private:
    struct frame {
        std::size_t end = 0;  // one past the terminator of a document entered before all of it came
    };
    bool walk(std::span<const std::uint8_t> received);
    void push(frame f) {
        if (depth_ < shallow_.size()) shallow_[depth_] = f;
        else deep_.push_back(f);
        ++depth_;
    }
    void pop() noexcept {
        if (depth_ > shallow_.size()) deep_.pop_back();
        --depth_;
    }
    const frame& top() const noexcept {
        return depth_ <= shallow_.size() ? shallow_[depth_ - 1] : deep_[depth_ - 1 - shallow_.size()];
    }

    validation_options options_;
    std::optional<validation_failure> failure_;
    std::size_t pos_ = 0;    // the next element (or terminator) of the innermost entered document
    std::size_t depth_ = 0;  // documents entered, not yet closed
    bool done_ = false;
    std::array<frame, 16> shallow_{};
    std::vector<frame> deep_;  // beyond 16 levels
};

}  // namespace trellis::bson::detail
