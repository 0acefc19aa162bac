// Round-trip statistics of one member: the last sample, the moving average (alpha 0.2, the
// first sample taken as it is, as the server selection spec does), the minimum over every sample
// kept, and percentiles over a sliding window of raw samples.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>

namespace trellis::monitor {

class latency_stats {
public:
    static constexpr double alpha = 0.2;

    explicit latency_stats(std::size_t window = 200) : window_(window == 0 ? 1 : window) {}

    void add(double ms);
    void clear();

    std::optional<double> last() const { return last_; }
    std::optional<double> average() const { return average_; }
    /// The minimum of the samples in the window.
    std::optional<double> minimum() const;
    /// Nearest-rank percentile (0 < p <= 100) over the window's samples.
    std::optional<double> percentile(double p) const;
    std::size_t count() const { return samples_.size(); }
    std::size_t window() const { return window_; }

private:
    std::size_t window_;
    std::deque<double> samples_;
    std::optional<double> last_, average_;
};

}  // namespace trellis::monitor
