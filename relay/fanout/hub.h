#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"
#include "relay/fanout/channel_history.h"
#include "relay/fanout/sink.h"
#include "relay/protocol/message_deflater.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {

class ChannelRules;
class HistoryReads;
class HubChannel;
class Membership;
namespace metrics {
struct WorkerMetrics;
}

// One connection's side of the index: which channels it is in. Lives inside the Session.
class Membership {
public:
    // `id` names the connection to the hub's presence listener (the session id); 0 in tests.
    explicit Membership(Sink& sink, uint64_t id = 0) : sink_(&sink), id_(id) {}
    Membership(const Membership&) = delete;
    Membership& operator=(const Membership&) = delete;

    size_t count() const { return entries_.size(); }
    // The connection negotiated permessage-deflate: the hub builds a compressed variant of the
    // messages of its channels (Frame::deflated). Set before the first subscribe.
    void setDeflate() {
        assert(entries_.empty());
        deflate_ = true;
    }
    bool deflate() const { return deflate_; }
    uint64_t id() const { return id_; }

private:
    friend class Hub;
    struct Entry {
        HubChannel* channel;
        uint32_t member_index;  // position of this membership in channel->members_
    };
    Sink* sink_;
    uint64_t id_;
    std::vector<Entry> entries_;
    bool deflate_ = false;
};

// What a subscriber is told once its subscription is live (Hub::subscribe).
struct SubscribeAck {
    enum class Kind : uint8_t {
        None,        // nothing (auth.permissions.auto_subscribe)
        Ack,         // {"op":"ack","id":id}: the client's own subscribe
        Subscribed,  // {"op":"subscribed","channel":...}: the app's grant
    };
    Kind kind = Kind::None;
    uint64_t id = 0;
};

// A channel with at least one local subscriber (there are no empty channels in the index).
class HubChannel {
public:
    explicit HubChannel(std::string name);
    ~HubChannel();

private:
    friend class Hub;
    static constexpr uint32_t kNoAck = static_cast<uint32_t>(-1);
    struct Member {
        Membership* membership;
        uint32_t entry_index;           // position of this channel in membership->entries_
        uint32_t pending_ack = kNoAck;  // position of its ack in pending_acks_ (same 16 bytes)
    };
    struct PendingAck {
        uint32_t member_index;  // position of its member in members_
        SubscribeAck ack;
    };
    std::string name_;
    std::vector<Member> members_;
    // The broker confirmed the worker's subscription: a message published now reaches it.
    bool live_ = false;
    // Acks of members that joined before then; empty once live. At most one per member, so a
    // session's are bounded by its subscription limit. On a channel with history also the members
    // waiting for the channel's position, or catching up with it (history_->waiters).
    std::vector<PendingAck> pending_acks_;
    std::unique_ptr<ChannelHistory> history_;  // null: the channel keeps no history
    uint32_t deflate_members_ = 0;             // members that negotiated permessage-deflate
    bool presence_ = false;  // the channel keeps presence: the hub's HubPresence hears its members
};

// What the hub needs for channels with history. Without rules no channel has any.
struct HubHistory {
    const ChannelRules* rules = nullptr;
    HistoryReads* reads = nullptr;  // required with rules
    uint32_t max_recover = 300;     // history.max_recover
    metrics::WorkerMetrics* metrics = nullptr;
};

// permessage-deflate (websocket.compression): the worker's compressor. Without one no message is
// compressed.
struct HubCompression {
    protocol::MessageDeflater* deflater = nullptr;
    metrics::WorkerMetrics* metrics = nullptr;  // compressed frames and bytes; may be null
};

// Told when a channel gains its first or loses its last local subscriber, so the worker holds a
// broker subscription exactly while someone here wants the channel.
class HubListener {
public:
    virtual ~HubListener() = default;
    virtual void onChannelOpened(std::string_view channel) = 0;
    virtual void onChannelClosed(std::string_view channel) = 0;
};

// Told when a member joins or leaves a channel that keeps presence (ChannelRules::presence), so
// the worker keeps the fleet's presence in step with its hub (docs/scaling.md "Presence"). Called
// from inside subscribe / unsubscribe / leaveAll; it must not touch the hub.
class HubPresence {
public:
    virtual ~HubPresence() = default;
    virtual void onPresenceJoin(const Membership& m, std::string_view channel) = 0;
    virtual void onPresenceLeave(const Membership& m, std::string_view channel) = 0;
};

// A worker's channel -> local subscribers index and its fan-out. Single-threaded, no locks.
// Subscribe, unsubscribe and leaving are O(1) (swap-remove with back-indices on both sides), so a
// client leaving a channel of 100k members costs the same as leaving one of 2.
class Hub {
public:
    enum class SubscribeResult { Subscribed, AlreadySubscribed, LimitReached };

    // `max_frame_bytes` is the largest message frame deliver() builds (limits.send_queue_bytes): a
    // larger one could never enter a send queue, and every subscriber would be closed for it.
    Hub(HubListener& listener, uint64_t max_frame_bytes, HubHistory history = {},
        HubCompression compression = {});
    ~Hub();
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    // Joins `channel`. The ack goes once the broker confirmed the worker's subscription to the
    // channel ("live everywhere": a message published after the ack reaches this subscriber): at
    // once when it is live already, else from confirm(). While the broker is down it goes at once
    // (the client hears of the outage from the resubscribed notice at Up). A member that leaves
    // first is told nothing.
    // On a channel with history the ack also waits for the channel's position, and carries it; a
    // member that gave `since` first gets the messages after it when the worker's cache or a read
    // of the history holds them all ("recovered"). Until then the member gets no live message.
    SubscribeResult subscribe(Membership& m, std::string_view channel, size_t max_subscriptions,
                              SubscribeAck ack = {},
                              std::optional<protocol::Position> since = std::nullopt);
    bool unsubscribe(Membership& m, std::string_view channel);  // false when not subscribed
    // Channels that keep presence (`rules`) report their members' joins and leaves to `presence`
    // from now on; set before the first subscribe. Null `presence`: none do.
    void setPresence(HubPresence* presence, const ChannelRules* rules) {
        assert(channels_.empty());
        presence_ = presence;
        presence_rules_ = rules;
    }
    // Pushes `frame` (join/leave frames of presence) to every member of `channel` whose
    // subscription was acknowledged; false when the channel has no local member.
    bool notify(std::string_view channel, const FramePtr& frame);
    void leaveAll(Membership& m);
    bool isSubscribed(const Membership& m, std::string_view channel) const;

    // The broker confirmed the subscription to `channel` (BrokerHandler::onSubscribed): it is live,
    // and the acks waiting for it go now. Ignored for a channel not in the index, or live already.
    void confirm(std::string_view channel);
    // The broker's state. Down: acks go at once, and those waiting go now. Up: the broker has
    // subscribed every channel again (BrokerHandler::onBrokerState), so every channel is live.
    // Up with `gap`: messages may have been missed. A channel without history tells its members
    // ({"op":"resubscribed"}); one with history reads what its members missed and sends it, or
    // tells them with the position they can recover from when the history no longer holds it.
    void setBrokerUp(bool up, bool gap = false);
    // Whether the broker confirmed `channel` (false when no local subscriber holds it).
    bool isLive(std::string_view channel) const;
    // Copies, so the caller may unsubscribe while walking them.
    std::vector<std::string> channelsOf(const Membership& m) const;

    // The largest message frame of `data` on `channel`: its frame, plus room for a position when
    // the channel keeps history (its messages carry their offset and epoch).
    static size_t frameBytes(std::string_view channel, std::string_view data,
                             const HistoryPolicy& history) {
        return protocol::messageFrameSize(channel, data) +
               (history.enabled() ? protocol::kMaxPositionBytes : 0);
    }
    // Whether frameBytes() is at most max_frame_bytes: what deliver() requires, for entry points
    // to refuse a message before it is published. The one size rule of both.
    bool fits(std::string_view channel, std::string_view data, const HistoryPolicy& history) const {
        return frameBytes(channel, data, history) <= max_frame_bytes_;
    }

    struct Delivery {
        size_t reached = 0;    // local subscribers the frame was pushed to
        size_t too_large = 0;  // local subscribers not reached because the frame would not fit
    };
    // Encodes the message once and pushes the same frame to every local subscriber; a message that
    // does not fit() is not encoded, and reaches none of them. When a member negotiated
    // permessage-deflate the frame also carries its compressed variant, built once here too
    // (Frame::deflated; the sink picks which one its client gets). `position` is the message's
    // place in the channel's history (offset 0: none); a channel with history puts it in the frame.
    Delivery deliver(std::string_view channel, std::string_view data, int64_t entered_us = 0,
                     protocol::Position position = {});

    // Pushes to every member of every channel a frame built once per channel by make(name).
    template <class Make>
    void notifyEveryChannel(Make&& make);

    size_t channelCount() const { return channels_.size(); }
    // Local subscribers of `channel` (0 when none here), those still waiting for their ack too.
    size_t subscriberCount(std::string_view channel) const;
    // Calls f(name, local subscribers) for every channel in the index (the server API's channel
    // listing). `f` must not subscribe or unsubscribe.
    template <class F>
    void forEachChannel(F&& f) const {
        for (const auto& [name, channel] : channels_) {
            f(std::string_view(name), channel->members_.size());
        }
    }
    size_t subscriptionCount() const { return subscriptions_; }

private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    HubChannel* find(std::string_view channel) const;
    // What the broker keeps of `channel` (HubHistory::rules; size 0 without).
    HistoryPolicy historyPolicy(std::string_view channel) const;
    void removeEntry(Membership& m, size_t entry_index);
    void removePending(HubChannel& ch, uint32_t pending_index);
    void sendAck(HubChannel& ch, Membership& m, SubscribeAck ack);
    // Sends the acks waiting on `ch` and marks it live (`live`) or leaves it waiting.
    void releaseAcks(HubChannel& ch, bool live);

    // Channels with history (hub_history.cc).
    void subscribeWithHistory(HubChannel& ch, SubscribeAck ack,
                              const std::optional<protocol::Position>& since);
    Delivery deliverWithHistory(HubChannel& ch, std::string_view data, int64_t entered_us,
                                protocol::Position position);
    // Serves the waiters the cache can serve, or that `answered` (a read's answer) served, and
    // sends the next read when some still wait.
    void serveWaiters(HubChannel& ch, bool answered);
    // Pushes waiter `index` the frames after its since when `recovered`, then its ack with the
    // channel's position; it catches up with the live messages, or is a plain member, from then.
    void serve(HubChannel& ch, uint32_t index, bool recovered, bool from_read);
    // Sends the next read `ch` needs, if any and none is under way.
    void advance(HubChannel& ch);
    void onHistory(const std::string& channel, uint64_t token, HistoryAnswer&& answer);
    void answerMembers(HubChannel& ch, HistoryAnswer&& answer);
    void answerChannel(HubChannel& ch, HistoryAnswer&& answer);
    void historyDown(HubChannel& ch);
    void beginChannelRecovery(HubChannel& ch);
    void endCatchingUp(HubChannel& ch);
    // Builds `frame`'s compressed variant when a member of `ch` negotiated permessage-deflate.
    void compress(const HubChannel& ch, Frame& frame) const;
    // Pushes `frame` to every member not waiting for its ack.
    size_t pushToMembers(HubChannel& ch, const FramePtr& frame);
    FramePtr encodeEntry(const HubChannel& ch, const HistoryEntry& entry,
                         std::string_view epoch) const;
    FrameRun merge(const HubChannel& ch, const HistoryAnswer& answer, size_t& arrived_from) const;
    void countRecovery(bool recovered, bool from_read);

    HubListener& listener_;
    HubPresence* presence_ = nullptr;
    const ChannelRules* presence_rules_ = nullptr;
    const uint64_t max_frame_bytes_;
    const HubHistory history_;
    const HubCompression compression_;
    std::unordered_map<std::string, std::unique_ptr<HubChannel>, Hash, std::equal_to<>> channels_;
    size_t subscriptions_ = 0;
    bool broker_up_ = true;
};

template <class Make>
void Hub::notifyEveryChannel(Make&& make) {
    for (const auto& [name, channel] : channels_) {
        FramePtr frame = make(std::string_view(name));
        for (const auto& member : channel->members_) member.membership->sink_->push(frame);
    }
}

}  // namespace wsrelay
