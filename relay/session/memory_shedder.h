#pragma once

#include <ev.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metrics/relay_metrics.h"
#include "relay/common/memory_budget.h"

namespace wsrelay {

class Session;
class SessionTable;

// Brings a worker's share of the process's queued bytes back under the memory budget by closing
// its slowest, largest consumers. Nothing runs per message, and nothing at all while the budget
// has room (MemoryBudget::full, with its hysteresis). While it is full, every kStallSeconds it
// looks at about kScanPerTurn of the worker's sessions (all when it has fewer; the next ones each
// time otherwise): a session whose send queue has the same frame at its head as the time before
// has written nothing since, so it is stalled. It closes the stalled ones holding the most (send
// queue and partial message) with 4001 "memory budget", largest first, at most kShedPerTurn,
// until it has freed this worker's share of the excess over the budget's low mark (the excess in
// proportion to the bytes its stalled sessions hold, so no worker closes more than it must).
// A reader that keeps up is never stalled; partial messages and hook queues are counted but not
// shed (their own bounds hold them). Single-threaded, on the worker's loop.
class MemoryShedder {
public:
    static constexpr size_t kScanPerTurn = 16384;
    static constexpr size_t kShedPerTurn = 256;
    static constexpr ev_tstamp kStallSeconds = 0.05;

    MemoryShedder(MemoryCredit& memory, SessionTable& sessions, metrics::WorkerMetrics& metrics)
        : memory_(memory), sessions_(sessions), metrics_(metrics) {}
    MemoryShedder(const MemoryShedder&) = delete;
    MemoryShedder& operator=(const MemoryShedder&) = delete;

    // Once per loop turn, after the turn's writes (`now`: the loop's time): sets
    // wsrelay_queued_bytes and, while the budget is full, sheds. Returns how many it closed.
    size_t onTurn(ev_tstamp now);

private:
    MemoryCredit& memory_;
    SessionTable& sessions_;
    metrics::WorkerMetrics& metrics_;
    ev_tstamp looked_at_ = -1;
    // The head of each queue looked at last time, by session id; empty while the budget has room.
    std::unordered_map<uint64_t, const void*> heads_;
    std::unordered_map<uint64_t, const void*> next_heads_;
    std::vector<std::pair<uint64_t, Session*>> candidates_;  // reused
};

}  // namespace wsrelay
