#include "latency_stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace trellis::monitor {

void latency_stats::add(double ms) {
    last_ = ms;
    average_ = average_ ? alpha * ms + (1.0 - alpha) * *average_ : ms;
    samples_.push_back(ms);
    while (samples_.size() > window_) samples_.pop_front();
}

void latency_stats::clear() {
    samples_.clear();
    last_.reset();
    average_.reset();
}

std::optional<double> latency_stats::minimum() const {
    if (samples_.empty()) return std::nullopt;
    return *std::min_element(samples_.begin(), samples_.end());
}

std::optional<double> latency_stats::percentile(double p) const {
    if (samples_.empty() || !(p > 0.0) || p > 100.0) return std::nullopt;
    std::vector<double> sorted(samples_.begin(), samples_.end());
    std::sort(sorted.begin(), sorted.end());
    // Nearest rank: the smallest sample with at least p% of the samples at or below it.
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace trellis::monitor
