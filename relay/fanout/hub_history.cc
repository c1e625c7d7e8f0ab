// The hub's channels with history: positions, the cache of recent frames, reads, recoveries
// (docs/architecture.md "History and recovery on the relay side").
#include <algorithm>
#include <cassert>

#include "metrics/relay_metrics.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/hub.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {

namespace {

using Waiter = ChannelHistory::Waiter;

// A cached frame handed to a client that recovers: the live frame carries the time its message
// entered the fleet, and writing it again now would count hours-old messages in
// wsrelay_delivery_latency_seconds. The copy without the stamp replaces it in the cache, so it is
// made once per frame (and its compressed variant with it).
FramePtr copyUnstamped(const Frame& frame) {
    Frame* copy = Frame::allocate(frame.size());
    std::copy_n(frame.data(), frame.size(), copy->data());
    copy->setSize(frame.size());
    if (frame.deflated()) copy->setDeflated(copyUnstamped(*frame.deflated()));
    return FramePtr(copy);
}

const FramePtr& unstamped(FramePtr& frame) {
    if (frame && frame->enteredMicros() != 0) frame = copyUnstamped(*frame);
    return frame;
}

void appendArrived(ChannelHistory& h, uint64_t offset, std::string_view epoch,
                   const FramePtr& frame) {
    // The newest ones: a read that answers after more than history.max_recover came cannot join
    // its entries to them, and the merge shows that as a gap.
    if (h.arrived.size() == h.arrived_limit) h.arrived.pop_front();
    h.arrived.push_back({offset, std::string(epoch), frame});
}

}  // namespace

void Hub::subscribeWithHistory(HubChannel& ch, SubscribeAck ack,
                               const std::optional<protocol::Position>& since) {
    ChannelHistory& h = *ch.history_;
    const auto index = static_cast<uint32_t>(ch.pending_acks_.size());
    ch.members_.back().pending_ack = index;
    ch.pending_acks_.push_back({static_cast<uint32_t>(ch.members_.size() - 1), ack});
    Waiter& w = h.waiters.emplace_back();
    if (since) {
        w.has_since = true;
        w.since = since->offset;
        w.since_epoch.assign(since->epoch);
    }
    if (!broker_up_) {
        // As on any channel while the broker is down: the ack goes at once (with the position the
        // members have, when the worker has one); the channel's recovery at Up follows.
        serve(ch, index, false, false);
        return;
    }
    serveWaiters(ch, false);
}

void Hub::serveWaiters(HubChannel& ch, bool answered) {
    ChannelHistory& h = *ch.history_;
    if (ch.live_) {
        // From the back: serve() swap-removes, which moves an entry already looked at.
        for (size_t i = h.waiters.size(); i-- > 0;) {
            const Waiter& w = h.waiters[i];
            if (w.state != Waiter::State::Waiting) continue;
            const bool from_read = answered && w.in_read;
            const auto index = static_cast<uint32_t>(i);
            if (h.known && !h.hold_all) {
                if (!w.has_since) {
                    serve(ch, index, false, from_read);
                } else if (h.recent.holdsAfter(w.since, w.since_epoch)) {
                    serve(ch, index, true, from_read);
                } else if (w.since_epoch != h.recent.epoch || from_read) {
                    // Another epoch: that history is gone, and no read brings it back.
                    serve(ch, index, false, from_read);
                }
            } else if (from_read) {
                serve(ch, index, false, true);
            }
        }
    }
    advance(ch);
}

void Hub::serve(HubChannel& ch, uint32_t index, bool recovered, bool from_read) {
    ChannelHistory& h = *ch.history_;
    Waiter& w = h.waiters[index];
    const SubscribeAck ack = ch.pending_acks_[index].ack;
    Sink& sink = *ch.members_[ch.pending_acks_[index].member_index].membership->sink_;
    if (w.has_since) countRecovery(recovered, from_read);
    if (!h.continuous) {
        // No position to give (the broker cannot be read): acknowledged as without history.
        if (ack.kind != SubscribeAck::Kind::None) {
            sendAck(ch, *ch.members_[ch.pending_acks_[index].member_index].membership, ack);
        }
        removePending(ch, index);
        return;
    }
    FrameRun& run = h.recent;
    if (recovered) {
        for (size_t i = static_cast<size_t>(w.since + 1 - run.first()); i < run.frames.size();
             ++i) {
            if (run.frames[i]) sink.push(unstamped(run.frames[i]));
        }
    }
    const protocol::Position top{run.top, run.epoch};
    if (ack.kind == SubscribeAck::Kind::Ack) {
        const auto how = !w.has_since ? protocol::Recovered::NotAsked
                         : recovered  ? protocol::Recovered::Yes
                                      : protocol::Recovered::No;
        sink.push(protocol::encodeAck(ack.id, top, how));
    } else if (ack.kind == SubscribeAck::Kind::Subscribed) {
        sink.push(protocol::encodeSubscribed(ch.name_, top));
    }
    if (h.live_epoch == run.epoch && h.live_top >= run.top) {
        removePending(ch, index);
        return;
    }
    // The position came from a read: messages up to it may still come live, and this member has
    // them (or was told it starts after them).
    w.state = Waiter::State::CatchingUp;
    w.in_read = false;
    w.through = run.top;
    ch.pending_acks_[index].ack = {};
    ++h.catching_up;
}

void Hub::advance(HubChannel& ch) {
    ChannelHistory& h = *ch.history_;
    if (h.reading || !ch.live_ || !broker_up_) return;
    HistoryRequest request;
    request.policy = h.policy;
    request.limit = history_.max_recover;
    request.newest = true;
    if (h.hold_all) {
        // What the members missed since the position they have, when they have one; otherwise the
        // position (and a fresh cache) alone.
        request.after = h.continuous ? h.recent.top : 0;
    } else {
        // One read for every member waiting now, of the whole window a member can recover from
        // (the newest max_recover), not just what follows the oldest since among them: in a
        // reconnect storm the members arriving after the read with an older since (closed
        // earlier, waited longer) are then served from the cache it fills instead of each
        // needing a read of its own.
        bool waiting = false;
        for (Waiter& w : h.waiters) {
            if (w.state != Waiter::State::Waiting) continue;
            waiting = true;
            w.in_read = true;
        }
        if (!waiting) return;
        request.after = 0;
        h.arrived.clear();
    }
    h.reading = true;
    h.stale = false;
    h.read_token = history_.reads->read(
        ch.name_, request, [this, name = ch.name_](uint64_t token, HistoryAnswer&& answer) {
            onHistory(name, token, std::move(answer));
        });
}

void Hub::onHistory(const std::string& channel, uint64_t token, HistoryAnswer&& answer) {
    HubChannel* ch = find(channel);
    if (ch == nullptr || !ch->history_) return;
    ChannelHistory& h = *ch->history_;
    if (!h.reading || h.read_token != token) return;  // a closed channel's, opened again since
    h.reading = false;
    if (h.stale) {
        // An outage or a gap began meanwhile: this answer says nothing of what came since.
        h.stale = false;
        if (!h.hold_all) h.arrived.clear();
        advance(*ch);
        return;
    }
    if (h.hold_all) {
        answerChannel(*ch, std::move(answer));
    } else {
        answerMembers(*ch, std::move(answer));
    }
}

FramePtr Hub::encodeEntry(const HubChannel& ch, const HistoryEntry& entry,
                          std::string_view epoch) const {
    const protocol::Position position{entry.offset, epoch};
    if (protocol::messageFrameSize(ch.name_, entry.data, position) > max_frame_bytes_) return {};
    FramePtr frame = protocol::encodeMessage(ch.name_, entry.data, position);
    compress(ch, *frame);
    return frame;
}

FrameRun Hub::merge(const HubChannel& ch, const HistoryAnswer& answer, size_t& arrived_from) const {
    const ChannelHistory& h = *ch.history_;
    FrameRun run;
    run.epoch = answer.top.epoch;
    run.top = answer.top.offset;
    const auto& entries = answer.entries;
    if (!entries.empty() && entries.back().offset == run.top) {
        // The consecutive entries that end at the top (a broker sends nothing else).
        size_t start = entries.size() - 1;
        while (start > 0 && entries[start - 1].offset + 1 == entries[start].offset) --start;
        for (size_t i = start; i < entries.size(); ++i) {
            run.frames.push_back(encodeEntry(ch, entries[i], run.epoch));
        }
    }
    // The live frames that came meanwhile: the ones the answer holds already are dropped; after a
    // gap or an epoch change the run starts again at the frame after it.
    arrived_from = run.frames.size();
    for (const ArrivedFrame& a : h.arrived) {
        if (a.epoch == run.epoch && a.offset <= run.top) continue;
        if (a.epoch != run.epoch || a.offset != run.top + 1) {
            run.restart(a.offset, a.epoch);
            arrived_from = 0;
            run.frames.push_back(a.frame);
            continue;
        }
        run.frames.push_back(a.frame);
        run.top = a.offset;
    }
    return run;
}

void Hub::answerMembers(HubChannel& ch, HistoryAnswer&& answer) {
    ChannelHistory& h = *ch.history_;
    if (answer.status == HistoryStatus::Ok) {
        size_t arrived_from = 0;
        FrameRun run = merge(ch, answer, arrived_from);
        if (run.epoch != h.recent.epoch) {
            // What catches up, catches up with the other epoch's messages.
            endCatchingUp(ch);
            h.skip_through = 0;
        }
        while (run.frames.size() > h.capacity) run.frames.pop_front();
        h.recent = std::move(run);
        h.continuous = h.known = true;
    }
    h.arrived.clear();
    serveWaiters(ch, true);
}

void Hub::answerChannel(HubChannel& ch, HistoryAnswer&& answer) {
    ChannelHistory& h = *ch.history_;
    const bool had_position = h.continuous;
    const uint64_t origin = h.recent.top;
    const std::string origin_epoch = h.recent.epoch;
    h.hold_all = false;
    metrics::WorkerMetrics* m = history_.metrics;
    if (answer.status != HistoryStatus::Ok) {
        // Not read: the members hear of the gap as on a channel without history, then get the
        // messages held meanwhile.
        pushToMembers(ch, protocol::encodeResubscribed(ch.name_));
        for (const ArrivedFrame& a : h.arrived) {
            if (a.frame) pushToMembers(ch, a.frame);
        }
        h.arrived.clear();
        h.continuous = h.known = false;
        h.recent = {};
        if (m != nullptr) m->channel_recoveries[metrics::RecoveryResult::NotRecovered].add();
        serveWaiters(ch, false);
        return;
    }
    size_t arrived_from = 0;
    FrameRun run = merge(ch, answer, arrived_from);
    h.arrived.clear();
    const bool recovered = had_position && run.holdsAfter(origin, origin_epoch) &&
                           run.top - origin <= history_.max_recover;
    if (recovered) {
        // Everything after the members' position, the missed messages and the held ones.
        for (size_t i = static_cast<size_t>(origin + 1 - run.first()); i < run.frames.size(); ++i) {
            if (run.frames[i]) pushToMembers(ch, run.frames[i]);
        }
    } else {
        // The history no longer holds what they missed: they hear of the gap, with the position
        // from which they get everything, the held messages.
        const uint64_t from = run.first() + arrived_from - 1;
        pushToMembers(ch, protocol::encodeResubscribed(ch.name_, {from, run.epoch}));
        for (size_t i = arrived_from; i < run.frames.size(); ++i) {
            if (run.frames[i]) pushToMembers(ch, run.frames[i]);
        }
    }
    if (m != nullptr) {
        m->channel_recoveries[recovered ? metrics::RecoveryResult::Recovered
                                        : metrics::RecoveryResult::NotRecovered]
            .add();
    }
    while (run.frames.size() > h.capacity) run.frames.pop_front();
    h.recent = std::move(run);
    h.continuous = h.known = true;
    // The members have every message up to the top now, also those still to come live.
    const bool live_behind = !(h.live_epoch == h.recent.epoch && h.live_top >= h.recent.top);
    h.skip_through = live_behind ? h.recent.top : 0;
    serveWaiters(ch, false);
}

void Hub::historyDown(HubChannel& ch) {
    ChannelHistory& h = *ch.history_;
    h.known = false;
    if (h.reading) h.stale = true;
    for (size_t i = h.waiters.size(); i-- > 0;) {
        h.waiters[i].in_read = false;
        if (h.waiters[i].state == Waiter::State::Waiting)
            serve(ch, static_cast<uint32_t>(i), false, false);
    }
}

void Hub::beginChannelRecovery(HubChannel& ch) {
    ChannelHistory& h = *ch.history_;
    h.known = false;
    if (!h.hold_all) {
        // Frames that came before now reached the members already.
        h.hold_all = true;
        h.arrived.clear();
    }
    endCatchingUp(ch);
    h.skip_through = 0;
    if (h.reading) h.stale = true;
    for (Waiter& w : h.waiters) w.in_read = false;
}

void Hub::endCatchingUp(HubChannel& ch) {
    ChannelHistory& h = *ch.history_;
    for (size_t i = h.waiters.size(); h.catching_up > 0 && i-- > 0;) {
        if (h.waiters[i].state == Waiter::State::CatchingUp) {
            removePending(ch, static_cast<uint32_t>(i));
        }
    }
}

size_t Hub::pushToMembers(HubChannel& ch, const FramePtr& frame) {
    size_t reached = 0;
    for (const auto& member : ch.members_) {
        if (member.pending_ack != HubChannel::kNoAck &&
            ch.history_->waiters[member.pending_ack].state == Waiter::State::Waiting) {
            continue;
        }
        member.membership->sink_->push(frame);
        ++reached;
    }
    return reached;
}

Hub::Delivery Hub::deliverWithHistory(HubChannel& ch, std::string_view data, int64_t entered_us,
                                      protocol::Position position) {
    ChannelHistory& h = *ch.history_;
    FramePtr frame;
    if (position.offset == 0) {
        if (protocol::messageFrameSize(ch.name_, data) <= max_frame_bytes_) {
            frame = protocol::encodeMessage(ch.name_, data);
        }
    } else if (protocol::messageFrameSize(ch.name_, data, position) <= max_frame_bytes_) {
        frame = protocol::encodeMessage(ch.name_, data, position);
    }
    if (frame) {
        frame->setEnteredMicros(entered_us);
        compress(ch, *frame);
    }
    const size_t too_large = frame ? 0 : ch.members_.size();
    if (position.offset == 0) {
        // Not in the history (a backend's plain PUBLISH): to every member not waiting, as on a
        // channel without history.
        return {frame ? pushToMembers(ch, frame) : 0, too_large};
    }
    h.live_top = position.offset;
    if (h.live_epoch != position.epoch) h.live_epoch.assign(position.epoch);
    if (h.hold_all) {
        appendArrived(h, position.offset, position.epoch, frame);
        return {0, too_large};
    }
    if (h.reading) appendArrived(h, position.offset, position.epoch, frame);

    FrameRun& run = h.recent;
    const bool same_epoch = h.continuous && position.epoch == run.epoch;
    // Delivered before, by a read's answer, to some: the others still need it.
    const bool old = same_epoch && position.offset <= run.top;
    if (!old) {
        if (same_epoch && position.offset == run.top + 1) {
            run.append(position.offset, frame, h.capacity);
        } else {
            h.continuous = h.known = false;
            run = {};
        }
        if (h.catching_up > 0) endCatchingUp(ch);
        h.skip_through = 0;
    }
    if (!frame) return {0, too_large};
    if (old && position.offset <= h.skip_through) return {};

    size_t reached = 0;
    if (ch.pending_acks_.empty()) {
        for (const auto& member : ch.members_) member.membership->sink_->push(frame);
        reached = ch.members_.size();
    } else {
        // Members waiting for their ack get nothing live; members catching up skip what they got.
        for (const auto& member : ch.members_) {
            if (member.pending_ack != HubChannel::kNoAck) {
                const Waiter& w = h.waiters[member.pending_ack];
                if (w.state == Waiter::State::Waiting) continue;
                if (old && position.offset <= w.through) continue;
            }
            member.membership->sink_->push(frame);
            ++reached;
        }
    }
    return {reached, 0};
}

void Hub::countRecovery(bool recovered, bool from_read) {
    metrics::WorkerMetrics* m = history_.metrics;
    if (m == nullptr) return;
    m->recoveries[recovered ? metrics::RecoveryResult::Recovered
                            : metrics::RecoveryResult::NotRecovered]
        .add();
    if (recovered) {
        m->recovered_from[from_read ? metrics::RecoverySource::Read
                                    : metrics::RecoverySource::Cache]
            .add();
    }
}

}  // namespace wsrelay
