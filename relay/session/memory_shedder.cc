#include "relay/session/memory_shedder.h"

#include <algorithm>

#include "relay/session/session.h"
#include "relay/session/session_table.h"

namespace wsrelay {

size_t MemoryShedder::onTurn(ev_tstamp now) {
    metrics_.queued_bytes.set(memory_.used());
    if (!memory_.full()) {
        if (!heads_.empty()) heads_.clear();
        looked_at_ = -1;
        return 0;
    }
    if (looked_at_ >= 0 && now - looked_at_ < kStallSeconds) return 0;
    looked_at_ = now;

    candidates_.clear();
    next_heads_.clear();
    uint64_t stalled_bytes = 0;
    sessions_.forSome(kScanPerTurn, [this, &stalled_bytes](Session& session) {
        const void* head = session.queueHead();
        if (head == nullptr || session.closing()) return;
        next_heads_.emplace(session.id(), head);
        auto it = heads_.find(session.id());
        if (it == heads_.end() || it->second != head) return;  // new, or it wrote since
        const uint64_t bytes = session.queuedBytes();
        candidates_.emplace_back(bytes, &session);
        stalled_bytes += bytes;
    });
    heads_.swap(next_heads_);
    if (candidates_.empty()) return 0;

    const MemoryBudget& budget = memory_.budget();
    const int64_t reserved = budget.reserved();
    const int64_t excess = reserved - budget.lowMark();
    if (excess <= 0 || reserved <= 0) return 0;
    // This worker's share of the excess (double: the product of two byte counts may not fit in
    // 64 bits); below what its stalled sessions hold, as excess < reserved.
    const auto share =
        static_cast<int64_t>(static_cast<double>(excess) * static_cast<double>(stalled_bytes) /
                             static_cast<double>(reserved));
    const int64_t target = std::max<int64_t>(share, 1);

    const size_t n = std::min(candidates_.size(), kShedPerTurn);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(n),
                      candidates_.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    int64_t freed = 0;
    size_t shed = 0;
    while (shed < n && freed < target) {
        auto [bytes, session] = candidates_[shed++];
        session->shedForMemory();
        freed += static_cast<int64_t>(bytes);
    }
    metrics_.queued_bytes.set(memory_.used());
    return shed;
}

}  // namespace wsrelay
