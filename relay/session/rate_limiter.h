#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/protocol/protocol.h"

// limits.rate (docs/protocol.md "Rate limits"): one token bucket per connection and command kind.
// Pure arithmetic on a time the caller passes in, so tests drive it with a fake clock; the session
// passes its loop's time (ev_now, read once per loop turn by libev). No timer and no allocation.
namespace wsrelay {

using metrics::RateKind;

// The kind a command is metered as; none for the two that are never refused (unsubscribe frees
// what the client holds, ping is how it checks the connection).
constexpr std::optional<RateKind> rateKindOf(protocol::Op op) {
    using protocol::Op;
    switch (op) {
        case Op::Publish: return RateKind::Publish;
        case Op::Subscribe: return RateKind::Subscribe;
        case Op::Send: return RateKind::Send;
        case Op::History: return RateKind::History;
        case Op::Presence: return RateKind::History;  // a read of Redis too: the same budget
        case Op::Refresh: return RateKind::Other;
        case Op::Unsubscribe:
        case Op::Ping: return std::nullopt;
    }
    return RateKind::Other;  // an op added later is metered until it gets a kind of its own
}

// One kind's limit in the two numbers a bucket check needs: a bucket of per_second ×
// burst_seconds tokens (at least one) that gains a token every `interval_us`.
struct RateRule {
    int64_t interval_us = 0;   // 0: the kind is not limited
    int64_t tolerance_us = 0;  // (tokens - 1) × interval_us: how far the bucket may be in debt

    static RateRule of(int per_second, int burst_seconds) {
        if (per_second <= 0) return {};
        const int64_t interval = std::max<int64_t>(1, 1000000 / per_second);
        const int64_t tokens = std::max<int64_t>(1, int64_t{per_second} * burst_seconds);
        return {interval, (tokens - 1) * interval};
    }
    static RateRule of(const Config::Limits::Rate& rate, RateKind kind) {
        switch (kind) {
            case RateKind::Publish: return of(rate.publish_per_second, rate.burst_seconds);
            case RateKind::Subscribe: return of(rate.subscribe_per_second, rate.burst_seconds);
            case RateKind::Send: return of(rate.send_per_second, rate.burst_seconds);
            case RateKind::History: return of(rate.history_per_second, rate.burst_seconds);
            case RateKind::Other:
            case RateKind::kCount: break;
        }
        return of(rate.other_per_second, rate.burst_seconds);
    }
};

// A token bucket kept as one number, the time at which it is full again (the "generic cell rate"
// form of a token bucket): full_at - now is what the bucket owes, in time. A command is admitted
// while that debt is within the rule's tolerance, and adds one interval to it; a refused command
// takes nothing, so a client that waits the advised time is admitted. Integer microseconds, so a
// burst of exactly the bucket's size is admitted whatever the clock reads.
class TokenBucket {
public:
    // 0 when a token was taken; otherwise the milliseconds until one is there (at least 1).
    uint32_t take(const RateRule& rule, int64_t now_us) {
        if (rule.interval_us == 0) return 0;
        // The loop's clock is the wall clock: stepped back, it would make every bucket owe the
        // step. A bucket never owes more than an empty one does, so the wait stays one interval.
        const int64_t debt =
            std::clamp<int64_t>(full_at_us_ - now_us, 0, rule.tolerance_us + rule.interval_us);
        const int64_t wait_us = debt - rule.tolerance_us;
        if (wait_us > 0) {
            full_at_us_ = now_us + debt;  // unchanged, unless a clock step was just forgotten
            return static_cast<uint32_t>((wait_us + 999) / 1000);
        }
        full_at_us_ = now_us + debt + rule.interval_us;
        return 0;
    }

private:
    int64_t full_at_us_ = 0;  // 0: full since forever
};

}  // namespace wsrelay
