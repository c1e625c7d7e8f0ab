#include "relay/session/session.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "relay/common/clock.h"
#include "relay/common/log.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/publisher.h"
#include "relay/fleet/connection_registry.h"
#include "relay/fleet/fleet_id.h"
#include "relay/session/worker_context.h"

namespace wsrelay {

using protocol::ErrorCode;

namespace {
// A graceful close waits this long for the socket to take the close frame before it is dropped:
// a slow consumer with full buffers may never read it.
constexpr int kCloseGraceSeconds = 3;
constexpr size_t kKeepRxCapacity = 4096;
// FIN + ping with a 2-byte payload: lws 4.1.6 drops empty pongs before the RECEIVE_PONG callback,
// so an empty ping's answer would never reach us.
constexpr unsigned char kPingFrame[4] = {0x89, 0x02, 'k', 'a'};
}  // namespace

Session::Session(WorkerContext& ctx, Wire& wire, uint64_t id, std::unique_ptr<Identity> identity)
    : ctx_(ctx), wire_(wire), id_(id), membership_(*this, id), identity_(std::move(identity)) {
    ctx_.metrics.connections.add();
    ev_timer_init(&auth_timer_, onAuthTimer, 0., 0.);
    auth_timer_.data = this;
}

Session::~Session() { ev_timer_stop(ctx_.loop, &auth_timer_); }

void Session::start(const std::vector<std::string>& hook_channels) {
    armPingTimer();
    announced_ = true;
    for (const std::string& channel : hook_channels) join(channel);
    if (!identity_) return;
    const auto max = static_cast<size_t>(ctx_.config.limits.max_subscriptions);
    for (const std::string& channel : identity_->permissions.auto_subscribe) {
        if (ctx_.hub.subscribe(membership_, channel, max) == Hub::SubscribeResult::Subscribed) {
            ctx_.metrics.subscriptions.add();
            recordChanged();
        }
    }
    armAuthTimer();
}

// Receive: lws hands a message over in pieces; a whole one is checked, then parsed.

int Session::onReceive(const char* data, size_t len, const Piece& piece) {
    // See refuseInput(): lws may go on calling back with what it still inflates.
    if (refused_) return -1;
    if (close_code_ != 0) return 0;  // closing: input no longer matters
    const auto max = static_cast<size_t>(ctx_.config.websocket.max_message_bytes);
    if (piece.binary) return refuseInput(CloseCode::UnsupportedData);

    const size_t remaining = piece.remaining;
    const bool complete = piece.final && remaining == 0;
    // With permessage-deflate lws hands over inflated pieces (of at most 1 KiB) while `remaining`
    // counts compressed bytes: only what was inflated so far is counted then, so a message that
    // inflates past the limit (a zip bomb) is refused after at most that much inflating work.
    const size_t announced = deflate_ ? 0 : remaining;
    if (rx_.size() + len + announced > max) {
        clearRx();
        return refuseInput(CloseCode::MessageTooBig);
    }
    if (rx_.empty() && complete) return handleMessage({data, len});

    rx_.append(data, len);
    ctx_.memory.add(static_cast<int64_t>(len));
    if (!complete) return 0;
    int rc = handleMessage(rx_);
    clearRx();
    if (rx_.capacity() > kKeepRxCapacity) std::string().swap(rx_);
    return rc;
}

int Session::handleMessage(std::string_view message) {
    auto& m = ctx_.metrics;
    m.messages_received.add();
    m.bytes_received.add(static_cast<int64_t>(message.size()));
    // Checked here, on the whole message, rather than by lws: we choose the close and count it.
    if (!simdjson::validate_utf8(message.data(), message.size())) {
        return refuseInput(CloseCode::InvalidPayload);
    }
    protocol::ParseResult result = ctx_.parser.parse(message);
    if (!result.ok) {
        sendError(result.id, result.error, result.reason);
        countBadCommand();
        return 0;
    }
    runCommand(result.command);
    return 0;
}

void Session::countBadCommand() {
    if (++bad_commands_ > static_cast<uint32_t>(ctx_.config.limits.max_bad_commands)) {
        closeAfterFlush(CloseCode::TooManyBadCommands);
    }
}

void Session::sendError(std::optional<uint64_t> id, ErrorCode code, std::string_view reason,
                        std::optional<uint64_t> retry_after_ms) {
    ctx_.metrics.errors[metrics::errorCodeIndex(static_cast<int>(code))].add();
    reply(protocol::encodeError(id, code, reason, retry_after_ms));
}

// Over its kind's bucket a command is not run: the client hears when it would be admitted, and
// one that keeps going anyway is closed. A few integer operations per command; the clock is the
// loop's, which libev reads once per turn.
bool Session::admitRate(const protocol::Command& cmd) {
    const std::optional<RateKind> kind = rateKindOf(cmd.op);
    if (!kind) return true;
    const Config::Limits::Rate& rate = ctx_.config.limits.rate;
    const auto now_us = static_cast<int64_t>(ev_now(ctx_.loop) * 1e6);
    const uint32_t wait_ms = rate_buckets_[*kind].take(RateRule::of(rate, *kind), now_us);
    if (wait_ms == 0) {
        rate_refusals_ = 0;
        return true;
    }
    auto& counted = ctx_.metrics.rate_limited[*kind];
    if (rate.dry_run) {
        counted[metrics::RateResult::DryRun].add();
        return true;
    }
    counted[metrics::RateResult::Refused].add();
    sendError(cmd.id, ErrorCode::RateLimited, protocol::kRateLimited, wait_ms);
    if (rate.max_refusals > 0 && ++rate_refusals_ >= static_cast<uint32_t>(rate.max_refusals)) {
        ctx_.metrics.rate_limit_closes.add();
        closeAfterFlush(CloseCode::RateLimited);
    }
    return false;
}

// Commands: what the client asks for, and what the app's answers do to the session.

void Session::runCommand(const protocol::Command& cmd) {
    using protocol::Op;
    if (!admitRate(cmd)) return;
    HookBridge* hook = ctx_.hook;
    switch (cmd.op) {
        case Op::Subscribe:
            if (identity_ && !identity_->permissions.subscribe.matches(cmd.channel)) {
                sendError(cmd.id, ErrorCode::Forbidden, "not allowed to subscribe to this channel");
                return;
            }
            if (cmd.since) {
                // Recovering needs the history, and a broker that can read it.
                if (!ctx_.channels.history(cmd.channel).enabled()) {
                    sendError(cmd.id, ErrorCode::NoHistory, protocol::kNoHistory);
                    return;
                }
                if (!ctx_.publisher.usable()) {
                    sendError(cmd.id, ErrorCode::BrokerUnavailable, "broker unavailable");
                    return;
                }
            }
            if (hook != nullptr && hook->sends(HookEvent::Subscribe)) {
                if (ctx_.hub.isSubscribed(membership_, cmd.channel)) {
                    sendError(cmd.id, ErrorCode::Conflict, "already subscribed");
                    return;
                }
                hook->subscribe(*this, cmd.channel, cmd.id, cmd.since);
                return;
            }
            subscribeAndAnswer(cmd.channel, cmd.id, cmd.since);
            return;
        case Op::Unsubscribe:
            switch (leave(cmd.channel, LeaveReason::Client)) {
                case LeaveResult::Left:
                    if (cmd.id) reply(protocol::encodeAck(*cmd.id));
                    break;
                case LeaveResult::NotSubscribed:
                    sendError(cmd.id, ErrorCode::Conflict, "not subscribed");
                    break;
                case LeaveResult::HookBusy:
                    sendError(cmd.id, ErrorCode::BrokerUnavailable, "hook busy");
                    break;
            }
            return;
        case Op::Publish: {
            if (identity_ && !identity_->permissions.publish.matches(cmd.channel)) {
                sendError(cmd.id, ErrorCode::Forbidden, "not allowed to publish to this channel");
                return;
            }
            const PublishRoute route =
                hook != nullptr ? hook->routeFor(cmd.channel) : PublishRoute::Broker;
            if (route == PublishRoute::Broker) {
                publishNow(cmd.channel, cmd.data, cmd.id);
            } else if (ctx_.publisher.budgetFull(metrics::PublishEntry::Client)) {
                sendError(cmd.id, ErrorCode::BrokerUnavailable, protocol::kMemoryBudgetFull);
            } else {
                hook->message(*this, cmd.channel, cmd.data, cmd.id, route);
            }
            return;
        }
        case Op::History: readHistory(cmd); return;
        case Op::Presence: readPresence(cmd); return;
        case Op::Send:
            if (hook == nullptr) {
                sendError(cmd.id, ErrorCode::BadRequest, "no hook is configured (hook.url)");
                return;
            }
            hook->send(*this, cmd.data, cmd.id);
            return;
        case Op::Ping: reply(protocol::encodePong(cmd.id)); return;
        case Op::Refresh: refresh(cmd); return;
    }
}

void Session::subscribeAndAnswer(std::string_view channel, std::optional<uint64_t> id,
                                 std::optional<protocol::Position> since) {
    auto max = static_cast<size_t>(ctx_.config.limits.max_subscriptions);
    // The hub sends the ack once the subscription is live everywhere (and, with history, once it
    // knows the channel's position, after the messages recovered).
    const SubscribeAck ack = id ? SubscribeAck{SubscribeAck::Kind::Ack, *id} : SubscribeAck{};
    switch (ctx_.hub.subscribe(membership_, channel, max, ack, since)) {
        case Hub::SubscribeResult::Subscribed:
            ctx_.metrics.subscriptions.add();
            recordChanged();
            break;
        case Hub::SubscribeResult::AlreadySubscribed:
            sendError(id, ErrorCode::Conflict, "already subscribed");
            break;
        case Hub::SubscribeResult::LimitReached:
            sendError(id, ErrorCode::LimitExceeded, "subscription limit reached");
            break;
    }
}

void Session::publishNow(std::string_view channel, std::string_view data,
                         std::optional<uint64_t> id) {
    auto& m = ctx_.metrics;
    if (!ctx_.publisher.admit(channel, data, metrics::MessageSource::Client)) {
        sendError(id, ErrorCode::LimitExceeded, protocol::kTooLargeToDeliver);
        return;
    }
    if (ctx_.publisher.budgetFull(metrics::PublishEntry::Client)) {
        sendError(id, ErrorCode::BrokerUnavailable, protocol::kMemoryBudgetFull);
        return;
    }
    if (!ctx_.publisher.usable()) {
        m.broker_publish_failures.add();
        sendError(id, ErrorCode::BrokerUnavailable, "broker unavailable");
        return;
    }
    ctx_.publisher.publish(channel, data, PublishTicket{id_, id.value_or(0), id.has_value()});
}

void Session::join(std::string_view channel) {
    if (!protocol::validChannel(channel,
                                static_cast<size_t>(ctx_.config.limits.max_channel_bytes))) {
        return;
    }
    auto max = static_cast<size_t>(ctx_.config.limits.max_subscriptions);
    // {"op":"subscribed"} goes once the subscription is live everywhere (the hub sends it).
    const Hub::SubscribeResult result =
        ctx_.hub.subscribe(membership_, channel, max, {SubscribeAck::Kind::Subscribed, 0});
    if (result == Hub::SubscribeResult::Subscribed) {
        ctx_.metrics.subscriptions.add();
        recordChanged();
    }
    // Also a channel the client was in already: from now on the app vouches for it.
    if (identity_ && result != Hub::SubscribeResult::LimitReached) app_grants_.add(channel);
}

Session::LeaveResult Session::leave(std::string_view channel, LeaveReason reason) {
    HookBridge* hook = ctx_.hook;
    // A closing connection's channels go in its disconnect event instead.
    if (hook != nullptr && hook->sends(HookEvent::Unsubscribe) && close_code_ == 0 &&
        ctx_.hub.isSubscribed(membership_, channel) && !hook->unsubscribe(*this, channel, reason)) {
        if (reason == LeaveReason::Client) return LeaveResult::HookBusy;
        WSR_LOG(Warn,
                "connection %s left channel %.*s (%s) and the app cannot be told: its hook "
                "queue is full",
                fleet::connectionId(ctx_.shared.instance_id, id_).c_str(),
                static_cast<int>(channel.size()), channel.data(), leaveReasonName(reason));
    }
    app_grants_.remove(channel);
    if (!ctx_.hub.unsubscribe(membership_, channel)) return LeaveResult::NotSubscribed;
    ctx_.metrics.subscriptions.sub();
    recordChanged();
    switch (reason) {
        case LeaveReason::Client: break;  // the caller acks the client's own command
        case LeaveReason::Token: reply(protocol::encodeUnsubscribed(channel, "forbidden")); break;
        default: reply(protocol::encodeUnsubscribed(channel, leaveReasonName(reason))); break;
    }
    return LeaveResult::Left;
}

void Session::recordChanged() {
    if (ctx_.registry != nullptr) ctx_.registry->changed(id_);
}

const std::string& Session::userId() const { return identity_ ? identity_->user : hook_.user; }

// Push: every frame for this client enters its bounded queue here.

void Session::useDeflate() {
    deflate_ = true;
    membership_.setDeflate();
    ctx_.metrics.deflate_connections.add();
}

void Session::push(const FramePtr& shared) {
    // A client that negotiated permessage-deflate gets the compressed variant when there is one.
    const FramePtr& frame = deflate_ && shared->deflated() ? shared->deflated() : shared;
    auto& m = ctx_.metrics;
    if (close_code_ != 0) {
        m.dropped[metrics::DropReason::ClientGone].add();
        return;
    }
    const auto& limits = ctx_.config.limits;
    const size_t max_frames = static_cast<size_t>(limits.send_queue_messages);
    const uint64_t max_bytes = static_cast<uint64_t>(limits.send_queue_bytes);
    if (!queue_.fits(frame->size(), max_frames, max_bytes)) {
        if (limits.slow_consumer == SlowConsumerPolicy::Close) {
            m.dropped[metrics::DropReason::SlowConsumerClose].add(
                static_cast<int64_t>(queue_.size() + 1));
            closeNow(CloseCode::SlowConsumer);
            return;
        }
        auto& dropped = m.dropped[metrics::DropReason::SlowConsumerDropOldest];
        while (!queue_.empty() && !queue_.fits(frame->size(), max_frames, max_bytes)) {
            unqueued(static_cast<int64_t>(queue_.front()->size()));
            queue_.pop();
            dropped.add();
        }
        if (!queue_.fits(frame->size(), max_frames, max_bytes)) {  // larger than the whole queue
            dropped.add();
            return;
        }
    }
    queue_.push(frame);
    queued(static_cast<int64_t>(frame->size()));
    if (queue_.size() == 1) ctx_.flush.schedule(*this);
}

void Session::queued(int64_t bytes) {
    ctx_.metrics.send_queue_bytes.add(bytes);
    ctx_.memory.add(bytes);
}

void Session::unqueued(int64_t bytes) {
    ctx_.metrics.send_queue_bytes.sub(bytes);
    ctx_.memory.sub(bytes);
}

void Session::clearRx() {
    ctx_.memory.sub(static_cast<int64_t>(rx_.size()));
    rx_.clear();
}

// Flush and write: the queue leaves in coalesced writes when the FlushScheduler says so.

void Session::flushQueued() {
    if (queue_.empty() && !ping_due_) return;
    // Closing: the close waits for a WRITEABLE callback.
    if (close_code_ != 0) {
        requestWrite();
        return;
    }
    // The wire still holding part of an earlier write asks for WRITEABLE itself (writeQueued).
    if (writeQueued() < 0) {
        // The socket is gone; the WRITEABLE callback (or lws's error handling) closes it.
        close_code_ = 1006;
        requestWrite();
    }
}

int Session::onWriteable() {
    if (close_code_ != 0 && (!close_after_flush_ || queue_.empty())) {
        return closeImmediately(static_cast<CloseCode>(close_code_));
    }
    if (writeQueued() < 0) {
        close_code_ = close_code_ != 0 ? close_code_ : 1006;
        return -1;
    }
    return 0;
}

int Session::writeQueued() {
    // Coalesce what is queued into one raw write: the frames are complete WebSocket frames already
    // (server frames are unmasked, and a compressed one was compressed by the hub), so lws need
    // not frame them; nor may it: its own deflater would compress them again.
    char* buf = ctx_.flush.buffer();
    const size_t cap = ctx_.flush.bufferSize();
    size_t len = 0;
    size_t frames = 0;
    const char* out = buf;
    bool ping = false;
    if (ping_due_) {
        std::memcpy(buf, kPingFrame, sizeof kPingFrame);
        len = sizeof kPingFrame;
        ping = true;
    }
    if (!ping && !queue_.empty() && (queue_.size() == 1 || queue_.front()->size() >= cap)) {
        out = queue_.front()->data();  // one frame: write it from the shared buffer, no copy
        len = queue_.front()->size();
        frames = 1;
    } else {
        while (frames < queue_.size() && len + queue_.at(frames)->size() <= cap) {
            const Frame* f = queue_.at(frames).get();
            std::memcpy(buf + len, f->data(), f->size());
            len += f->size();
            ++frames;
        }
    }
    if (len == 0) return 0;

    // The one call to the wire per write (LwsWire: send() straight to the socket). Held is rare (a
    // slow socket): the coalescing above is then done again at the next WRITEABLE.
    switch (wire_.write(out, len)) {
        case Wire::Write::Taken: break;
        case Wire::Write::Held: requestWrite(); return 0;
        case Wire::Write::Gone: return -1;
    }
    ctx_.flush.wrote(flush_slot_);
    auto& m = ctx_.metrics;
    m.socket_writes.add();
    m.bytes_sent.add(static_cast<int64_t>(len));
    m.messages_sent.add(static_cast<int64_t>(frames));
    int64_t now_us = 0;  // read once per write, and only when a stamped message went out
    int64_t written = 0;
    for (size_t i = 0; i < frames; ++i) {
        const Frame& f = *queue_.front().get();
        if (f.enteredMicros() != 0) {
            if (now_us == 0) now_us = wallClockMicros();
            m.delivery_latency.observeMicros(now_us - f.enteredMicros());
        }
        written += static_cast<int64_t>(f.size());
        queue_.pop();
    }
    unqueued(written);
    if (ping) {
        ping_due_ = false;
        awaiting_pong_ = true;
        if (!drain_scheduled_) {
            wire_.setTimer(int64_t{ctx_.config.websocket.pong_timeout_ms} * 1000);
        }
    }
    if (!queue_.empty() || close_code_ != 0) requestWrite();
    return 0;
}

void Session::requestWrite() { wire_.askWritable(); }

// Timers: keepalive and the drain deadline share the connection's one timer (an lws timer).

void Session::armPingTimer() {
    int interval = ctx_.config.websocket.ping_interval_ms;
    if (interval > 0 && !drain_scheduled_) wire_.setTimer(int64_t{interval} * 1000);
}

int Session::onTimer() {
    if (close_code_ != 0) return 0;
    if (drain_scheduled_) {
        // The advice must not be dropped by the queue limits: it is the last frame this client
        // gets.
        queue_.push(protocol::encodeReconnect());
        queued(static_cast<int64_t>(queue_.at(queue_.size() - 1)->size()));
        closeAfterFlush(CloseCode::GoingAway);
        return 0;
    }
    if (awaiting_pong_) {
        closeNow(CloseCode::PingTimeout);
        return 0;
    }
    ping_due_ = true;
    requestWrite();
    return 0;
}

void Session::onPong() {
    if (!awaiting_pong_) return;
    awaiting_pong_ = false;
    armPingTimer();
}

void Session::scheduleDrain(int64_t delay_us) {
    drain_scheduled_ = true;
    // One timer per connection serves keepalive and drain: the drain deadline replaces the
    // next ping, which no longer matters.
    wire_.setTimer(delay_us > 0 ? delay_us : 1);
}

// Close.

void Session::closeWith(int code, std::string_view reason) {
    if (close_code_ != 0) return;
    // RFC 6455: a close reason fits in 123 bytes; cut on a UTF-8 boundary.
    size_t n = std::min<size_t>(reason.size(), 123);
    while (n > 0 && n < reason.size() && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80)
        --n;
    close_reason_.assign(reason.substr(0, n));
    close_code_ = code;
    close_after_flush_ = true;
    wire_.closeWithin(kCloseGraceSeconds);
    requestWrite();
}

void Session::closeAfterFlush(CloseCode code) {
    if (close_code_ != 0) return;
    close_code_ = static_cast<int>(code);
    close_after_flush_ = true;
    wire_.closeWithin(kCloseGraceSeconds);
    requestWrite();
}

void Session::closeNow(CloseCode code) {
    if (close_code_ != 0 && !close_after_flush_) return;
    close_code_ = static_cast<int>(code);
    close_after_flush_ = false;
    unqueued(static_cast<int64_t>(queue_.bytes()));
    queue_.clear();
    clearRx();
    wire_.closeWithin(kCloseGraceSeconds);
    requestWrite();
}

void Session::shedForMemory() {
    auto& m = ctx_.metrics;
    m.memory_shed.add();
    m.dropped[metrics::DropReason::MemoryBudget].add(static_cast<int64_t>(queue_.size()));
    close_reason_ = kMemoryBudgetReason;
    closeNow(CloseCode::SlowConsumer);
}

// lws 4.1.6 inflates a compressed message in 1 KiB pieces, and most of them come from its drain
// of the inflater, which loops over the input it has, keeps only the last callback's answer and
// then throws that away: a -1 from there closes nothing, and the client would stay. So a refusal
// also asks for WRITEABLE, whose -1 lws does act on (onWriteable closes with the code set here),
// and every later piece is answered -1 too, for the paths that do read the answer. What lws still
// inflates meanwhile comes from one socket read (websocket.rx_buffer_bytes, at most 4 KiB): at
// DEFLATE's best ratio (about 1:1000) 1 MiB with the default 1 KiB buffer, 4 MiB at most.
int Session::refuseInput(CloseCode code) {
    requestWrite();
    return closeImmediately(code);
}

int Session::closeImmediately(CloseCode code) {
    close_code_ = static_cast<int>(code);
    refused_ = true;
    wire_.setCloseReason(static_cast<int>(code), closeReason(close_code_));
    return -1;  // what the lws callback returns to have the close frame sent now
}

std::string_view Session::closeReason(int code) const {
    return close_reason_.empty() ? closeInfo(static_cast<CloseCode>(code)).reason
                                 : std::string_view(close_reason_);
}

void Session::onPeerClose(const unsigned char* payload, size_t len) {
    peer_closed_ = true;
    if (close_code_ == 0) {
        close_code_ = len >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
        client_closed_ = true;
    }
}

void Session::onClosed() {
    ev_timer_stop(ctx_.loop, &auth_timer_);
    if (reading_history_) ctx_.history->cancelOwner(id_);
    auto& m = ctx_.metrics;
    if (HookBridge* hook = ctx_.hook) {
        // Events this connection queued for the app still go, then its disconnect: the code, the
        // reason the relay closed with (none when the client closed, or the socket just went),
        // and the channels it leaves now.
        std::optional<HookBridge::Farewell> farewell;
        if (announced_ && hook->sends(HookEvent::Disconnect)) {
            farewell.emplace();
            farewell->code = close_code_ != 0 ? close_code_ : 1006;
            if (!client_closed_ && farewell->code != 1006) {
                farewell->reason = closeReason(farewell->code);
            }
            farewell->channels = ctx_.hub.channelsOf(membership_);
        }
        hook->closed(id_, userId(), hook_.meta, std::move(farewell));
    }
    m.subscriptions.sub(static_cast<int64_t>(membership_.count()));
    ctx_.hub.leaveAll(membership_);
    unqueued(static_cast<int64_t>(queue_.bytes()));
    queue_.clear();
    clearRx();
    int code = close_code_ != 0 ? close_code_ : 1006;
    m.disconnects[metrics::closeCodeIndex(code)].add();
    m.connections.sub();
    if (deflate_) m.deflate_connections.sub();
}

}  // namespace wsrelay
