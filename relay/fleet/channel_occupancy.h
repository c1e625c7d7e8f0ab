#pragma once

#include <ev.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "adapters/hook_event.h"
#include "metrics/relay_metrics.h"

namespace wsrelay {

class FleetCalls;
struct FleetReply;

// A worker's side of channel occupancy (docs/scaling.md "Channel occupancy"): it tells the fleet
// which channels it holds (its hub has them open) and hands the app the occupied and vacated
// events the fleet's functions decide. Opens and closes of a loop turn leave in one call at
// flush(); a close that leaves a channel empty everywhere makes it pending, and after the delay
// whoever calls occupancy_due first (this worker's timer, or any instance's sweep on the lease
// period) gets its vacated event, once. Single-threaded: the worker's loop.
class ChannelOccupancy {
public:
    // Hands one event body to the hook; `done(answered)` once it is settled. False when the hook
    // cannot take it now (`done` is then never called).
    using SendEvent =
        std::function<bool(HookEvent event, std::string body, std::function<void(bool)> done)>;

    struct Options {
        std::string holder;  // this worker's address, <instance>.<worker>
        int64_t vacated_delay_ms = 5000;
        bool send_occupied = true;  // hook.events lists occupied
        bool send_vacated = true;   // hook.events lists vacated
    };
    // Calls in one fleet call, at most; events this worker keeps for a busy hook, at most.
    static constexpr size_t kBatch = 256;
    static constexpr size_t kMaxUnsent = 1024;

    // `lease_generation`: null without leases; else a raise after the first means this instance
    // was reaped while alive (its holds were dropped), so every hold is sent again.
    ChannelOccupancy(struct ev_loop* loop, FleetCalls& calls, SendEvent send, Options options,
                     const std::atomic<uint64_t>* lease_generation,
                     metrics::WorkerMetrics& metrics);
    ~ChannelOccupancy();
    ChannelOccupancy(const ChannelOccupancy&) = delete;
    ChannelOccupancy& operator=(const ChannelOccupancy&) = delete;

    // The hub opened / closed `channel` (HubListener).
    void opened(std::string_view channel);
    void closed(std::string_view channel);
    // Once per loop turn: sends the turn's opens and closes.
    void flush();
    // Nothing is sent while the broker is down; Up after Down sets this worker's holds in the
    // fleet again (Redis may have lost them, or never got the changes made meanwhile).
    void setBrokerUp(bool up);
    // Asks the fleet for due vacates now (the lease period's sweep, and this worker's timer).
    void sweep();
    // Stops the timers; what is pending is left to the fleet's sweep.
    void stop();

    size_t held() const { return held_.size(); }

    // The event's body: {"event":"occupied","channel":"room1","seq":17}.
    static std::string eventBody(HookEvent event, std::string_view channel, std::string_view seq);

private:
    void send(std::vector<std::string> args);
    // send() in calls of at most kBatch ops, in order; the ops are moved from.
    void sendInBatches(std::vector<std::string>& ops);
    void resync();
    void onEvents(HookEvent event, FleetReply& reply);
    void deliver(HookEvent event, std::string body);
    void sendUnsent();
    void onError(const FleetReply& reply, const char* what);
    static void onDue(struct ev_loop* loop, ev_timer* w, int revents);
    static void onRetry(struct ev_loop* loop, ev_timer* w, int revents);

    struct ev_loop* loop_;
    FleetCalls& calls_;
    SendEvent send_;
    const Options options_;
    const std::atomic<uint64_t>* generation_;
    metrics::WorkerMetrics& metrics_;
    std::vector<std::string> ops_;          // this turn's +channel / -channel
    std::unordered_set<std::string> held_;  // channels open in the hub
    bool up_ = true;
    bool resync_ = false;  // at the next flush: every hold again
    uint64_t seen_generation_ = 0;
    std::deque<double> deadlines_;  // when pending vacates this worker made fall due
    bool sweeping_ = false;         // an occupancy_due call is under way
    bool sweep_again_ = false;      // asked for one meanwhile
    std::deque<std::pair<HookEvent, std::string>> unsent_;  // waiting for a hook slot
    ev_timer due_{};
    ev_timer retry_{};
};

}  // namespace wsrelay
