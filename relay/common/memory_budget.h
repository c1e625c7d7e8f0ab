#pragma once

#include <atomic>
#include <cstdint>

namespace wsrelay {

// The process's budget for queued bytes (docs/architecture.md "Memory budget"): what every
// worker's send queues, hook queues, partial inbound messages and bytes handed to lws hold, summed.
// Workers do not add each message here: each keeps an exact count of its own (MemoryCredit) and
// reserves credit from this one counter in chunks, so the shared cache line is written about once
// per chunk, not per message. The total here is therefore the sum of the workers' credit: at
// least what they hold, at most two chunks per worker more.
//
// full() has hysteresis: it turns true when the reserved total reaches the budget and false only
// once it is back under kLowPercent of it, so publishes are not refused and accepted in turns.
// Thread-safe; every method is lock-free.
class MemoryBudget {
public:
    static constexpr int64_t kLowPercent = 90;
    static constexpr int64_t kMaxChunkBytes = 256 * 1024;
    static constexpr int64_t kMinChunkBytes = 4 * 1024;

    // `limit_bytes` 0: no budget (counted, never full). The chunk is small against the budget, so
    // the workers' unreported slack (two chunks each) stays under about 3 % of it.
    MemoryBudget(int64_t limit_bytes, int workers);
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    int64_t limit() const { return limit_; }
    int64_t lowMark() const { return low_; }
    int64_t chunk() const { return chunk_; }
    // What the workers reserved: the queued bytes, rounded up to whole chunks per worker.
    int64_t reserved() const { return reserved_.load(std::memory_order_relaxed); }

    // True while the budget is full (see above). The first caller to see a change logs it.
    bool full();

    // MemoryCredit only.
    void reserve(int64_t bytes) { reserved_.fetch_add(bytes, std::memory_order_relaxed); }
    void release(int64_t bytes) { reserved_.fetch_sub(bytes, std::memory_order_relaxed); }

private:
    const int64_t limit_;
    const int64_t low_;
    const int64_t chunk_;
    // Apart from the constants: written once per chunk by any worker.
    alignas(64) std::atomic<int64_t> reserved_{0};
    std::atomic<bool> full_{false};
};

// One worker's queued bytes, counted exactly on its own thread, and the credit it holds in the
// MemoryBudget to cover them: add() takes another chunk when the count passes the credit, sub()
// gives credit back once more than two chunks are unused (two, so a count moving around a chunk
// boundary does not touch the shared counter every time). Single-threaded.
class MemoryCredit {
public:
    explicit MemoryCredit(MemoryBudget& budget) : budget_(budget) {}
    ~MemoryCredit() {
        if (credit_ != 0) budget_.release(credit_);
    }
    MemoryCredit(const MemoryCredit&) = delete;
    MemoryCredit& operator=(const MemoryCredit&) = delete;

    void add(int64_t bytes) {
        used_ += bytes;
        if (used_ > credit_) take();
    }
    void sub(int64_t bytes) {
        used_ -= bytes;
        if (credit_ - used_ > 2 * budget_.chunk()) giveBack();
    }
    // This worker's queued bytes (exact).
    int64_t used() const { return used_; }
    int64_t credit() const { return credit_; }
    bool full() { return budget_.full(); }
    MemoryBudget& budget() { return budget_; }

private:
    void take();
    void giveBack();

    MemoryBudget& budget_;
    int64_t used_ = 0;
    int64_t credit_ = 0;
};

}  // namespace wsrelay
