#pragma once

#include <time.h>

#include <cstdint>

namespace wsrelay {

// Wall-clock time in µs since the Unix epoch: what a message's entry stamp carries between
// instances (docs/metrics.md, wsrelay_delivery_latency_seconds). One vDSO call, no system call.
inline int64_t wallClockMicros() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace wsrelay
