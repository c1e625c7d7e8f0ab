#include "relay/fanout/hub.h"

#include <cassert>

#include "metrics/relay_metrics.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/history_reads.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {

HubChannel::HubChannel(std::string name) : name_(std::move(name)) {}
HubChannel::~HubChannel() = default;

Hub::Hub(HubListener& listener, uint64_t max_frame_bytes, HubHistory history,
         HubCompression compression)
    : listener_(listener), max_frame_bytes_(max_frame_bytes), history_(history),
      compression_(compression) {}

Hub::~Hub() {
    for (auto& [name, channel] : channels_) {
        if (channel->history_ && channel->history_->reading) {
            history_.reads->cancel(channel->history_->read_token);
        }
    }
}

HistoryPolicy Hub::historyPolicy(std::string_view channel) const {
    return history_.rules != nullptr ? history_.rules->history(channel) : HistoryPolicy{};
}

HubChannel* Hub::find(std::string_view channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? nullptr : it->second.get();
}

size_t Hub::subscriberCount(std::string_view channel) const {
    const HubChannel* ch = find(channel);
    return ch == nullptr ? 0 : ch->members_.size();
}

bool Hub::isSubscribed(const Membership& m, std::string_view channel) const {
    HubChannel* ch = find(channel);
    if (ch == nullptr) return false;
    // Scan the smaller side: a connection has few channels, a channel may have many members.
    for (const auto& e : m.entries_) {
        if (e.channel == ch) return true;
    }
    return false;
}

Hub::SubscribeResult Hub::subscribe(Membership& m, std::string_view channel,
                                    size_t max_subscriptions, SubscribeAck ack,
                                    std::optional<protocol::Position> since) {
    HubChannel* ch = find(channel);
    if (ch != nullptr) {
        for (const auto& e : m.entries_) {
            if (e.channel == ch) return SubscribeResult::AlreadySubscribed;
        }
    }
    if (m.entries_.size() >= max_subscriptions) return SubscribeResult::LimitReached;
    bool opened = false;
    if (ch == nullptr) {
        auto owned = std::make_unique<HubChannel>(std::string(channel));
        ch = owned.get();
        if (history_.reads != nullptr) {
            const HistoryPolicy policy = historyPolicy(channel);
            if (policy.enabled()) {
                ch->history_ = std::make_unique<ChannelHistory>(policy, history_.max_recover);
            }
        }
        ch->presence_ = presence_ != nullptr && presence_rules_->presence(channel).enabled;
        channels_.emplace(ch->name_, std::move(owned));
        opened = true;
    }
    ch->members_.push_back({&m, static_cast<uint32_t>(m.entries_.size())});
    m.entries_.push_back({ch, static_cast<uint32_t>(ch->members_.size() - 1)});
    ++subscriptions_;
    if (m.deflate_) ++ch->deflate_members_;
    if (opened) listener_.onChannelOpened(ch->name_);
    if (ch->presence_) presence_->onPresenceJoin(m, ch->name_);
    // Without an ack nothing waits, unless messages are to be recovered first.
    if (ack.kind == SubscribeAck::Kind::None && !(ch->history_ && since)) {
        return SubscribeResult::Subscribed;
    }
    if (ch->history_) {
        subscribeWithHistory(*ch, ack, since);
    } else if (ch->live_ || !broker_up_) {
        sendAck(*ch, m, ack);
    } else {
        ch->members_.back().pending_ack = static_cast<uint32_t>(ch->pending_acks_.size());
        ch->pending_acks_.push_back({static_cast<uint32_t>(ch->members_.size() - 1), ack});
    }
    return SubscribeResult::Subscribed;
}

void Hub::sendAck(HubChannel& ch, Membership& m, SubscribeAck ack) {
    m.sink_->push(ack.kind == SubscribeAck::Kind::Ack ? protocol::encodeAck(ack.id)
                                                      : protocol::encodeSubscribed(ch.name_));
}

void Hub::releaseAcks(HubChannel& ch, bool live) {
    ch.live_ = ch.live_ || live;
    // Sinks never touch the index from push(), so the lists stay as they are while walked.
    for (const HubChannel::PendingAck& pending : ch.pending_acks_) {
        HubChannel::Member& member = ch.members_[pending.member_index];
        member.pending_ack = HubChannel::kNoAck;
        sendAck(ch, *member.membership, pending.ack);
    }
    ch.pending_acks_.clear();
}

void Hub::confirm(std::string_view channel) {
    HubChannel* ch = find(channel);
    if (ch == nullptr || ch->live_) return;
    if (ch->history_) {
        ch->live_ = true;
        serveWaiters(*ch, false);
        return;
    }
    releaseAcks(*ch, true);
}

void Hub::setBrokerUp(bool up, bool gap) {
    if (!up && !broker_up_) return;
    broker_up_ = up;
    // Down: nothing confirms until Up, and a subscribe is acknowledged at once meanwhile. Up: the
    // broker re-established every channel it holds before it said so.
    for (auto& [name, channel] : channels_) {
        HubChannel& ch = *channel;
        if (!ch.history_) {
            if (up && gap) {
                // So clients can fetch what they may have missed from the app.
                const FramePtr frame = protocol::encodeResubscribed(name);
                for (const auto& member : ch.members_) member.membership->sink_->push(frame);
            }
            releaseAcks(ch, up);
        } else if (!up) {
            historyDown(ch);
        } else {
            ch.live_ = true;
            if (gap) beginChannelRecovery(ch);
            serveWaiters(ch, false);
        }
    }
}

bool Hub::isLive(std::string_view channel) const {
    const HubChannel* ch = find(channel);
    return ch != nullptr && ch->live_;
}

void Hub::removeEntry(Membership& m, size_t entry_index) {
    Membership::Entry entry = m.entries_[entry_index];
    HubChannel* ch = entry.channel;
    if (ch->presence_) presence_->onPresenceLeave(m, ch->name_);

    // Swap-remove from the channel's member list, fixing the back-index of the member moved; an
    // ack still waiting for the broker is dropped with its member, likewise.
    auto& members = ch->members_;
    assert(members[entry.member_index].membership == &m);
    if (const uint32_t p = members[entry.member_index].pending_ack; p != HubChannel::kNoAck) {
        removePending(*ch, p);
    }
    if (entry.member_index + 1 != members.size()) {
        HubChannel::Member moved = members.back();
        members[entry.member_index] = moved;
        moved.membership->entries_[moved.entry_index].member_index = entry.member_index;
        if (moved.pending_ack != HubChannel::kNoAck) {
            ch->pending_acks_[moved.pending_ack].member_index = entry.member_index;
        }
    }
    members.pop_back();
    if (m.deflate_) --ch->deflate_members_;

    // Swap-remove from the membership's entry list, likewise.
    auto& entries = m.entries_;
    if (entry_index + 1 != entries.size()) {
        Membership::Entry moved = entries.back();
        entries[entry_index] = moved;
        moved.channel->members_[moved.member_index].entry_index =
            static_cast<uint32_t>(entry_index);
    }
    entries.pop_back();
    --subscriptions_;

    if (members.empty()) {
        if (ch->history_ && ch->history_->reading) history_.reads->cancel(ch->history_->read_token);
        // Tell the listener before the name dies with the channel.
        listener_.onChannelClosed(ch->name_);
        channels_.erase(channels_.find(std::string_view(ch->name_)));
    }
}

bool Hub::unsubscribe(Membership& m, std::string_view channel) {
    HubChannel* ch = find(channel);
    if (ch == nullptr) return false;
    for (size_t i = 0; i < m.entries_.size(); ++i) {
        if (m.entries_[i].channel == ch) {
            removeEntry(m, i);
            return true;
        }
    }
    return false;
}

bool Hub::notify(std::string_view channel, const FramePtr& frame) {
    HubChannel* ch = find(channel);
    if (ch == nullptr) return false;
    // A member whose ack has not gone yet hears of the channel from its ack onwards.
    for (const auto& member : ch->members_) {
        if (member.pending_ack == HubChannel::kNoAck) member.membership->sink_->push(frame);
    }
    return true;
}

void Hub::leaveAll(Membership& m) {
    while (!m.entries_.empty()) removeEntry(m, m.entries_.size() - 1);
}

void Hub::removePending(HubChannel& ch, uint32_t p) {
    auto& acks = ch.pending_acks_;
    ch.members_[acks[p].member_index].pending_ack = HubChannel::kNoAck;
    if (ch.history_) {
        auto& waiters = ch.history_->waiters;
        if (waiters[p].state == ChannelHistory::Waiter::State::CatchingUp) {
            --ch.history_->catching_up;
        }
        if (p + 1 != waiters.size()) waiters[p] = std::move(waiters.back());
        waiters.pop_back();
    }
    if (p + 1 != acks.size()) {
        acks[p] = acks.back();
        ch.members_[acks[p].member_index].pending_ack = p;
    }
    acks.pop_back();
}

Hub::Delivery Hub::deliver(std::string_view channel, std::string_view data, int64_t entered_us,
                           protocol::Position position) {
    HubChannel* ch = find(channel);
    if (ch == nullptr) return {};
    if (ch->history_) return deliverWithHistory(*ch, data, entered_us, position);
    // The frame built here carries no position.
    if (!fits(ch->name_, data, HistoryPolicy{})) return {0, ch->members_.size()};
    FramePtr frame = protocol::encodeMessage(ch->name_, data);
    frame->setEnteredMicros(entered_us);
    compress(*ch, *frame);
    // Sinks never touch the index from push(), so iterating the vector directly is safe.
    for (const auto& member : ch->members_) member.membership->sink_->push(frame);
    return {ch->members_.size(), 0};
}

void Hub::compress(const HubChannel& ch, Frame& frame) const {
    if (compression_.deflater == nullptr || ch.deflate_members_ == 0) return;
    protocol::MessageDeflater::Result r = compression_.deflater->compress(frame);
    if (r.in_bytes == 0) return;
    if (metrics::WorkerMetrics* m = compression_.metrics) {
        m->compression_bytes[metrics::CompressionStage::In].add(static_cast<int64_t>(r.in_bytes));
        m->compression_bytes[metrics::CompressionStage::Out].add(static_cast<int64_t>(r.out_bytes));
        if (r.frame) m->compressed_frames.add();
    }
    frame.setDeflated(std::move(r.frame));
}

std::vector<std::string> Hub::channelsOf(const Membership& m) const {
    std::vector<std::string> out;
    out.reserve(m.entries_.size());
    for (const auto& entry : m.entries_) out.push_back(entry.channel->name_);
    return out;
}

}  // namespace wsrelay
