#pragma once

// A log-linear latency histogram in microseconds: exact below 128 µs, then 64 sub-buckets per
// power of two (under 1.6 % error), so percentiles cost no per-sample allocation or sorting.

#include <bit>
#include <cstdint>
#include <vector>

namespace wsrelay::loadgen {

class Histogram {
public:
    Histogram() : counts_(kBuckets, 0) {}

    void record(uint64_t us) {
        ++counts_[index(us)];
        ++total_;
        if (us > max_) max_ = us;
    }

    void merge(const Histogram& other) {
        for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
        total_ += other.total_;
        if (other.max_ > max_) max_ = other.max_;
    }

    uint64_t count() const { return total_; }
    uint64_t max() const { return max_; }

    // The smallest recorded bucket value v such that at least q of the samples are <= v
    // (reported as the bucket's upper bound, never above the maximum seen).
    uint64_t quantile(double q) const {
        if (total_ == 0) return 0;
        uint64_t rank = uint64_t(q * double(total_) + 0.999999);
        if (rank == 0) rank = 1;
        uint64_t seen = 0;
        for (size_t i = 0; i < kBuckets; ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                uint64_t v = upperBound(i);
                return v < max_ ? v : max_;
            }
        }
        return max_;
    }

private:
    static constexpr size_t kBuckets = 128 + 58 * 64;

    static size_t index(uint64_t v) {
        if (v < 128) return size_t(v);
        int e = std::bit_width(v) - 7;  // v >> e lies in [64, 128)
        size_t i = 128 + size_t(e - 1) * 64 + size_t((v >> e) - 64);
        return i < kBuckets ? i : kBuckets - 1;
    }

    static uint64_t upperBound(size_t i) {
        if (i < 128) return i;
        size_t e = (i - 128) / 64 + 1;
        uint64_t sub = (i - 128) % 64 + 64;
        return ((sub + 1) << e) - 1;
    }

    std::vector<uint64_t> counts_;
    uint64_t total_ = 0;
    uint64_t max_ = 0;
};

}  // namespace wsrelay::loadgen
