#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/broker.h"
#include "relay/protocol/frame.h"

namespace wsrelay {

// Message frames of one channel with consecutive offsets, ending at `top` of `epoch`: the hub's
// cache of what it delivered last, and what a read's answer and the frames that arrived while it
// was under way merge into. Without frames it is a position alone.
struct FrameRun {
    std::string epoch;
    uint64_t top = 0;
    std::deque<FramePtr> frames;  // offsets first()..top; null: a frame too large to deliver

    uint64_t first() const { return top + 1 - frames.size(); }
    // Whether every message after `since` of `since_epoch` is in the run (none follow: since ==
    // top).
    bool holdsAfter(uint64_t since, std::string_view since_epoch) const {
        return since_epoch == epoch && since <= top && since + 1 >= first();
    }
    // Appends the frame of `offset`, which must be top + 1 (or any offset when the run is empty
    // and has no epoch yet).
    void append(uint64_t offset, FramePtr frame, size_t capacity) {
        top = offset;
        frames.push_back(std::move(frame));
        while (frames.size() > capacity) frames.pop_front();
    }
    void restart(uint64_t offset, std::string_view new_epoch) {
        frames.clear();
        epoch.assign(new_epoch);
        top = offset;
    }
};

// A live message that came while the channel's read was under way (or while the channel was held).
struct ArrivedFrame {
    uint64_t offset = 0;
    std::string epoch;
    FramePtr frame;  // null: too large to deliver
};

// The hub's state of a channel whose messages carry positions (HistoryPolicy::enabled()), kept in
// its HubChannel. docs/architecture.md "History and recovery on the relay side".
struct ChannelHistory {
    ChannelHistory(const HistoryPolicy& p, size_t max_recover)
        : policy(p), capacity(std::min<size_t>(max_recover, static_cast<size_t>(p.size))),
          arrived_limit(std::max<size_t>(1, max_recover)) {}

    const HistoryPolicy policy;
    const size_t
        capacity;  // frames `recent` keeps: history.max_recover, at most the history's size
    const size_t arrived_limit;  // frames `arrived` keeps: history.max_recover

    // `recent.top` is the position up to which every member that is not waiting got every message
    // (`continuous`), and it is the channel's current one as far as the worker knows (`known`:
    // false from a broker outage until the channel's recovery). A gap or another epoch among the
    // live messages clears both, and the cache.
    bool continuous = false;
    bool known = false;
    FrameRun recent;

    // The last positioned message that came live, whatever else happened.
    uint64_t live_top = 0;
    std::string live_epoch;

    // The read under way. A stale one (a broker outage or gap began meanwhile) serves nobody.
    bool reading = false;
    bool stale = false;
    uint64_t read_token = 0;
    std::deque<ArrivedFrame> arrived;  // live frames since the read was sent, the newest capacity

    // After a broker gap: every member is held (live frames wait in `arrived`) until the channel's
    // read answers; `recent` stays what the members had.
    bool hold_all = false;
    // Members that got frames up to a position a read gave before that message came live skip it
    // when it does: nobody (skip_through, after a channel's recovery), or one member (Waiter).
    uint64_t skip_through = 0;

    // One per HubChannel::pending_acks_ entry, at the same index.
    struct Waiter {
        enum class State : uint8_t {
            Waiting,     // held: gets no live frame until served (its ack is pending)
            CatchingUp,  // served up to `through`: skips live frames up to it, then normal
        };
        State state = State::Waiting;
        bool in_read = false;  // the read under way serves it
        bool has_since = false;
        uint64_t since = 0;
        std::string since_epoch;
        uint64_t through = 0;
    };
    std::vector<Waiter> waiters;
    size_t catching_up = 0;  // waiters in State::CatchingUp
};

}  // namespace wsrelay
