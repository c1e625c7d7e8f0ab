#include "relay/common/memory_budget.h"

#include <algorithm>

#include "relay/common/log.h"

namespace wsrelay {

MemoryBudget::MemoryBudget(int64_t limit_bytes, int workers)
    : limit_(std::max<int64_t>(limit_bytes, 0)),
      low_(limit_ / 100 * kLowPercent + limit_ % 100 * kLowPercent / 100),
      chunk_(limit_ == 0 ? kMaxChunkBytes
                         : std::clamp<int64_t>(limit_ / (64 * std::max(workers, 1)), kMinChunkBytes,
                                               kMaxChunkBytes)) {}

bool MemoryBudget::full() {
    if (limit_ == 0) return false;
    const int64_t reserved = reserved_.load(std::memory_order_relaxed);
    const bool was = full_.load(std::memory_order_relaxed);
    if (!was && reserved >= limit_) {
        if (!full_.exchange(true, std::memory_order_relaxed)) {
            WSR_LOG(Warn,
                    "memory budget full: %lld of %lld bytes queued; refusing publishes (503) and "
                    "closing the largest stalled send queues (4001) until under %lld",
                    static_cast<long long>(reserved), static_cast<long long>(limit_),
                    static_cast<long long>(low_));
        }
        return true;
    }
    if (was && reserved < low_) {
        if (full_.exchange(false, std::memory_order_relaxed)) {
            WSR_LOG(Info, "memory budget: back under %lld bytes queued (%lld); publishes accepted",
                    static_cast<long long>(low_), static_cast<long long>(reserved));
        }
        return false;
    }
    return was;
}

void MemoryCredit::take() {
    const int64_t chunk = budget_.chunk();
    const int64_t wanted = (used_ - credit_ + chunk - 1) / chunk * chunk;
    credit_ += wanted;
    budget_.reserve(wanted);
}

void MemoryCredit::giveBack() {
    // Keep one chunk of headroom above what is used.
    const int64_t chunk = budget_.chunk();
    const int64_t keep = std::max<int64_t>(used_, 0) / chunk * chunk + chunk;
    const int64_t spare = credit_ - keep;
    if (spare <= 0) return;
    credit_ = keep;
    budget_.release(spare);
}

}  // namespace wsrelay
