#pragma once

#include <ev.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"
#include "relay/fanout/hub.h"

namespace wsrelay {

class ChannelRules;
class FleetCalls;

// A worker's side of presence (docs/scaling.md "Presence"): it keeps the fleet's member list of
// each presence channel in step with its hub. A member joins when its subscription is accepted
// (HubPresence), leaves when it unsubscribes or closes, and every presence.refresh_ms each local
// member is joined again, one call per channel (in slices of kRefreshSlice members), so its
// expiry (presence.ttl_ms) moves on while its relay lives. With join_leave the worker also
// publishes join/leave frames on the channel's internal join/leave channel and hands those it
// hears to its local subscribers. Single-threaded: the worker's loop.
class ChannelPresence final : public HubPresence {
public:
    // What a member shows of its connection: the user (empty: none) and client-visible info (JSON
    // text; empty: null). False when the session is not known.
    using Facts = std::function<bool(uint64_t session, std::string& user, std::string& info)>;

    struct Options {
        std::string instance;  // this instance's id (connection ids are <instance>.<session>)
        int64_t ttl_ms = 25000;
        int64_t refresh_ms = 10000;
        int64_t max_join_leave_members = 100;
    };

    ChannelPresence(struct ev_loop* loop, const ChannelRules& rules, FleetCalls& calls, Facts facts,
                    Options options);
    ~ChannelPresence() override;
    ChannelPresence(const ChannelPresence&) = delete;
    ChannelPresence& operator=(const ChannelPresence&) = delete;

    // The worker's broker, for the join/leave channels' subscriptions; null stops using it.
    void setBroker(Broker* broker) { broker_ = broker; }
    // Starts the refresh timer (when a channel keeps presence); stop() ends it.
    void start();
    void stop();

    // HubPresence
    void onPresenceJoin(const Membership& m, std::string_view channel) override;
    void onPresenceLeave(const Membership& m, std::string_view channel) override;

    // The hub opened / closed `channel` (HubListener): a join_leave channel's internal channel is
    // subscribed while the worker holds the channel.
    void onChannelOpened(std::string_view channel);
    void onChannelClosed(std::string_view channel);
    // A broker message: true when it was a join/leave frame for a local channel's subscribers
    // (handed to `hub`), so the worker does nothing else with it.
    bool onBrokerMessage(std::string_view channel, std::string_view data, Hub& hub);
    // The broker is up again after it was down: the members may have been lost with Redis, so
    // every local member is joined again now rather than at the next refresh.
    void refreshNow() { refreshAll(); }

    // Reads of the fleet's presence. `done` gets the answer once, on a later loop turn.
    struct Members {
        FleetStatus status = FleetStatus::Ok;
        std::vector<std::string> members;  // each a member's JSON text
        bool cut = false;                  // more than `max` members: the rest left out
    };
    void members(std::string_view channel, int max, std::function<void(Members&&)> done);
    struct Stats {
        FleetStatus status = FleetStatus::Ok;
        int64_t clients = 0;
        int64_t users = 0;
    };
    void stats(std::string_view channel, std::function<void(Stats&&)> done);

    // Local members of `channel` (0 when none).
    size_t localMembers(std::string_view channel) const;

    // The internal channel that carries `channel`'s join/leave frames: wsrelay:pj:{<channel>}. Its
    // braces keep clients out (a client channel name has none) and put it in the channel's
    // Cluster slot.
    static std::string joinLeaveChannel(std::string_view channel);
    // Refresh calls carry at most this many members each.
    static constexpr size_t kRefreshSlice = 256;

private:
    struct Channel {
        std::unordered_map<uint64_t, std::string> members;  // session -> member JSON
        int64_t clients = 0;  // the fleet's members at the last join's reply
        bool join_leave = false;
    };
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::string connectionId(uint64_t session) const;
    std::string memberJson(uint64_t session) const;
    void join(std::string_view channel, std::vector<std::string> args, bool announce,
              std::string member);
    void publishFrame(std::string_view channel, std::string_view op, std::string_view member);
    void refreshAll();
    static void onRefresh(struct ev_loop* loop, ev_timer* w, int revents);

    struct ev_loop* loop_;
    const ChannelRules& rules_;
    FleetCalls& calls_;
    Facts facts_;
    const Options options_;
    Broker* broker_ = nullptr;
    ev_timer refresh_{};
    std::unordered_map<std::string, Channel, Hash, std::equal_to<>> channels_;
};

}  // namespace wsrelay
