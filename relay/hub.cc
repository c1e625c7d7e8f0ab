#include "relay/hub.h"

#include <cassert>

#include "relay/protocol.h"

namespace wsrelay {

Hub::~Hub() = default;

HubChannel* Hub::find(std::string_view channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? nullptr : it->second.get();
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
                                    size_t max_subscriptions) {
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
        channels_.emplace(ch->name_, std::move(owned));
        opened = true;
    }
    ch->members_.push_back({&m, static_cast<uint32_t>(m.entries_.size())});
    m.entries_.push_back({ch, static_cast<uint32_t>(ch->members_.size() - 1)});
    ++subscriptions_;
    if (opened) listener_.onChannelOpened(ch->name_);
    return SubscribeResult::Subscribed;
}

void Hub::removeEntry(Membership& m, size_t entry_index) {
    Membership::Entry entry = m.entries_[entry_index];
    HubChannel* ch = entry.channel;

    // Swap-remove from the channel's member list, fixing the back-index of the member moved.
    auto& members = ch->members_;
    assert(members[entry.member_index].membership == &m);
    if (entry.member_index + 1 != members.size()) {
        HubChannel::Member moved = members.back();
        members[entry.member_index] = moved;
        moved.membership->entries_[moved.entry_index].member_index = entry.member_index;
    }
    members.pop_back();

    // Swap-remove from the membership's entry list, likewise.
    auto& entries = m.entries_;
    if (entry_index + 1 != entries.size()) {
        Membership::Entry moved = entries.back();
        entries[entry_index] = moved;
        moved.channel->members_[moved.member_index].entry_index = static_cast<uint32_t>(entry_index);
    }
    entries.pop_back();
    --subscriptions_;

    if (members.empty()) {
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

void Hub::leaveAll(Membership& m) {
    while (!m.entries_.empty()) removeEntry(m, m.entries_.size() - 1);
}

Hub::Delivery Hub::deliver(std::string_view channel, std::string_view data, int64_t entered_us) {
    HubChannel* ch = find(channel);
    if (ch == nullptr) return {};
    if (!fits(ch->name_, data)) return {0, ch->members_.size()};
    FramePtr frame = protocol::encodeMessage(ch->name_, data);
    frame->setEnteredMicros(entered_us);
    // Sinks never touch the index from push(), so iterating the vector directly is safe.
    for (const auto& member : ch->members_) member.membership->sink_->push(frame);
    return {ch->members_.size(), 0};
}

std::vector<std::string> Hub::channelsOf(const Membership& m) const {
    std::vector<std::string> out;
    out.reserve(m.entries_.size());
    for (const auto& entry : m.entries_) out.push_back(entry.channel->name_);
    return out;
}

}  // namespace wsrelay
