#include "adapters/redis_broker_core.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

namespace wsrelay {
namespace {

// Redis takes any number of arguments, but one huge command delays every reply behind it and
// costs one big buffer: subscriptions go out in commands of at most this many names.
constexpr size_t kChannelsPerCommand = 512;
constexpr std::string_view kProbeChannel = "__wsrelay_probe:";

}  // namespace

ReconnectBackoff::ReconnectBackoff(int min_ms, int max_ms, uint64_t seed)
    : min_ms_(min_ms), max_ms_(std::max(min_ms, max_ms)), rng_(seed) {}

double ReconnectBackoff::nextSeconds() {
    const int64_t cap = std::min<int64_t>(max_ms_, int64_t{min_ms_} << std::min(attempts_, 20));
    std::uniform_int_distribution<int64_t> jitter(min_ms_, std::max<int64_t>(min_ms_, cap));
    ++attempts_;
    return static_cast<double>(jitter(rng_)) / 1000.0;
}

RedisBrokerCore::RedisBrokerCore(const RedisBrokerOptions& options, int worker_index,
                                 struct ev_loop* loop, BrokerHandler& handler)
    : options_(options), loop_(loop), handler_(handler), worker_index_(worker_index),
      backoff_(options.reconnect_min_ms, options.reconnect_max_ms,
               std::random_device{}() ^ (static_cast<uint64_t>(getpid()) << 20) ^
                   static_cast<uint64_t>(worker_index)),
      library_(redisFunctionLibrary(mode())) {
    probe_base_ = options_.prefix + std::string(kProbeChannel) + std::to_string(getpid()) + ":" +
                  std::to_string(worker_index_);
    // Containers often all run as pid 1: the nonce keeps another instance's probes apart.
    char nonce[17];
    const uint64_t value = backoff_.random();
    for (int i = 0; i < 16; ++i) nonce[i] = "0123456789abcdef"[(value >> (i * 4)) & 0xF];
    probe_nonce_.assign(nonce, 16);

    ev_init(&reconnect_timer_, onReconnectTimer);
    reconnect_timer_.data = this;
    ev_init(&setup_timer_, onSetupTimeout);
    setup_timer_.data = this;
    ev_init(&probe_timer_, onProbeTimer);
    probe_timer_.data = this;
    ev_init(&probe_deadline_, onProbeDeadline);
    probe_deadline_.data = this;
}

RedisBrokerCore::~RedisBrokerCore() {
    ev_timer_stop(loop_, &reconnect_timer_);
    ev_timer_stop(loop_, &setup_timer_);
    ev_timer_stop(loop_, &probe_timer_);
    ev_timer_stop(loop_, &probe_deadline_);
}

void RedisBrokerCore::queue(ChannelMap::iterator it) {
    if (it->second.queued) return;
    it->second.queued = true;
    changed_.push_back(it->first);
}

void RedisBrokerCore::subscribe(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), Channel{}).first;
    it->second.wanted = true;
    it->second.announce = true;
    queue(it);
}

void RedisBrokerCore::unsubscribe(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    it->second.wanted = false;
    it->second.announce = false;
    queue(it);
}

void RedisBrokerCore::publish(std::string_view channel, std::string_view data,
                              const PublishTicket& ticket, const HistoryPolicy& history) {
    Outgoing out;
    out.channel.reserve(options_.prefix.size() + channel.size());
    out.channel.append(options_.prefix).append(channel);
    if (options_.timestamps && ticket.entered_us != 0) {
        out.data.reserve(data.size() + 22);
        appendStamp(ticket.entered_us, out.data);
    }
    out.data.append(data);
    out.awaited.ticket = ticket;
    if (history.enabled()) {
        out.awaited.kind = Awaited::Kind::HistoryPublish;
        out.history = history;
    }
    outbox_.push_back(std::move(out));
}

void RedisBrokerCore::readHistory(std::string_view channel, const HistoryRequest& request) {
    Outgoing out;
    out.channel.reserve(options_.prefix.size() + channel.size());
    out.channel.append(options_.prefix).append(channel);
    out.awaited.kind = Awaited::Kind::HistoryRead;
    out.awaited.token = request.token;
    out.awaited.after = request.after;
    out.awaited.limit = request.limit;
    out.history = request.policy;
    out.newest = request.newest;
    outbox_.push_back(std::move(out));
}

void RedisBrokerCore::fleetCall(FleetCall&& call) {
    Outgoing out;
    out.channel.reserve(options_.prefix.size() + call.key.size());
    out.channel.append(options_.prefix).append(call.key);
    out.awaited.kind = Awaited::Kind::Fleet;
    out.awaited.token = call.token;
    if (call.function != "publish") out.function = "wsrelay_" + call.function;
    out.args = std::move(call.args);
    outbox_.push_back(std::move(out));
}

void RedisBrokerCore::flush() {
    if (!changed_.empty()) applyChanges();
    if (outbox_.empty()) return;
    sending_.swap(outbox_);
    std::vector<Awaited> unavailable;
    for (Outgoing& out : sending_) {
        // Sent in one loop turn, these leave in one write per connection.
        if (!up_ || !sendCommand(out)) unavailable.push_back(out.awaited);
    }
    sending_.clear();
    for (const Awaited& a : unavailable) this->unavailable(a);
}

std::vector<std::string_view> RedisBrokerCore::commandArgs(const Outgoing& out,
                                                           FcallNumbers& numbers) const {
    const std::string_view publish = mode() == RedisMode::Cluster ? "SPUBLISH" : "PUBLISH";
    switch (out.awaited.kind) {
        case Awaited::Kind::Publish: return {publish, out.channel, out.data};
        case Awaited::Kind::Fleet: {
            // "publish" with other than one argument: Redis refuses it, and says why.
            std::vector<std::string_view> args;
            args.reserve(out.args.size() + 4);
            if (out.function.empty()) {
                args.insert(args.end(), {publish, out.channel});
            } else {
                args.insert(args.end(), {"FCALL", out.function, "1", out.channel});
            }
            args.insert(args.end(), out.args.begin(), out.args.end());
            return args;
        }
        case Awaited::Kind::HistoryPublish:
        case Awaited::Kind::HistoryRead: break;
    }
    numbers[0] = std::to_string(out.history.size);
    numbers[1] = std::to_string(out.history.ttl_ms);
    if (out.awaited.kind == Awaited::Kind::HistoryPublish) {
        return {"FCALL", "wsrelay_publish", "1", out.channel, out.data, numbers[0], numbers[1]};
    }
    numbers[2] = std::to_string(out.awaited.after);
    numbers[3] = std::to_string(out.awaited.limit);
    return {"FCALL",    "wsrelay_history",      "1",        out.channel, numbers[2],
            numbers[3], out.newest ? "1" : "0", numbers[0], numbers[1]};
}

std::string_view RedisBrokerCore::commandName(const Outgoing& out) const {
    const bool publish = out.awaited.kind == Awaited::Kind::Publish ||
                         (out.awaited.kind == Awaited::Kind::Fleet && out.function.empty());
    if (!publish) return "FCALL";
    return mode() == RedisMode::Cluster ? "SPUBLISH" : "PUBLISH";
}

void RedisBrokerCore::unavailable(const Awaited& a) {
    if (a.kind == Awaited::Kind::Fleet) {
        handler_.onFleetReply(a.token, FleetReply{FleetStatus::Unavailable, 0, {}, {}});
    } else if (a.kind == Awaited::Kind::HistoryRead) {
        handler_.onHistory(a.token, HistoryAnswer{HistoryStatus::Unavailable, {}, {}});
    } else {
        handler_.onPublishResult(a.ticket, PublishStatus::Unavailable, 0, {});
    }
}

void RedisBrokerCore::complete(uint16_t shard, const Awaited& a, const redisReply& reply) {
    if (a.kind == Awaited::Kind::Fleet) {
        completeFleet(shard, a, reply);
        return;
    }
    if (a.kind == Awaited::Kind::Publish) {
        handler_.onPublishResult(
            a.ticket,
            reply.type == REDIS_REPLY_ERROR ? PublishStatus::Rejected : PublishStatus::Accepted, 0,
            {});
        return;
    }
    const char* what = a.kind == Awaited::Kind::HistoryRead ? "wsrelay_history" : "wsrelay_publish";
    auto where = [&] {
        const std::string name = shardName(shard);
        return name.empty() ? std::string() : " on " + name;
    };
    if (reply.type == REDIS_REPLY_ERROR) {
        const std::string_view error(reply.str, reply.len);
        setLastError(std::string("FCALL ") + what + where() + ": " + std::string(error));
        if (isMissingFunction(error)) {
            // Loaded at connect, so it was flushed since: this call is refused, the next find it.
            ++function_reloads_;
            last_error_ += " (function library missing; loading it again)";
            loadFunctions(shard);
        }
        if (a.kind == Awaited::Kind::HistoryPublish) {
            handler_.onPublishResult(a.ticket, PublishStatus::Rejected, 0, {});
        } else {
            handler_.onHistory(a.token, HistoryAnswer{HistoryStatus::Unavailable, {}, {}});
        }
        return;
    }
    if (a.kind == Awaited::Kind::HistoryPublish) {
        uint64_t offset = 0;
        std::string_view epoch;
        uint64_t trimmed = 0;
        if (!parsePublishReply(reply, offset, epoch, trimmed)) {
            // It ran, so the message went out; only its position is unknown.
            ++malformed_replies_;
            setLastError(std::string("FCALL wsrelay_publish") + where() +
                         ": a reply without a position");
            handler_.onPublishResult(a.ticket, PublishStatus::Accepted, 0, {});
            return;
        }
        if (trimmed > 0) handler_.onHistoryTrimmed(trimmed);
        handler_.onPublishResult(a.ticket, PublishStatus::Accepted, offset, epoch);
        return;
    }
    HistoryAnswer answer;
    std::vector<HistoryReplyEntry> entries;
    std::string error;
    if (!parseHistoryReply(reply, a.after, a.limit, answer.top, entries, error)) {
        ++malformed_replies_;
        setLastError(std::string("FCALL wsrelay_history") + where() + ": malformed reply (" +
                     error + ")");
        handler_.onHistory(a.token, HistoryAnswer{HistoryStatus::Unavailable, {}, {}});
        return;
    }
    answer.entries.reserve(entries.size());
    for (const HistoryReplyEntry& entry : entries) {
        std::string_view data = entry.data;
        takeStamp(data);  // stored as published, stamp included
        answer.entries.push_back(HistoryEntry{entry.offset, std::string(payload_.toJson(data))});
    }
    handler_.onHistory(a.token, std::move(answer));
}

// A fleet call's reply, as FleetReply carries it: an integer, or a flat array of strings,
// integers (decimal) and nils (""); a lone string is an array of one, a lone nil an empty one.
// An error is Error with Redis's text, except a missing library: loaded again, and the call
// Unavailable, as a history read is. Anything else (a nested array) is malformed: Error.
void RedisBrokerCore::completeFleet(uint16_t shard, const Awaited& a, const redisReply& reply) {
    FleetReply answer;
    auto itemOf = [](const redisReply& r, std::string& item) {
        switch (r.type) {
            case REDIS_REPLY_STRING:
            case REDIS_REPLY_STATUS: item.assign(r.str, r.len); return true;
            case REDIS_REPLY_INTEGER: item = std::to_string(r.integer); return true;
            case REDIS_REPLY_NIL: item.clear(); return true;
            default: return false;
        }
    };
    bool ok = true;
    switch (reply.type) {
        case REDIS_REPLY_ERROR: {
            const std::string_view error(reply.str, reply.len);
            if (isMissingFunction(error)) {
                const std::string name = shardName(shard);
                setLastError("FCALL" + (name.empty() ? std::string() : " on " + name) + ": " +
                             std::string(error) + " (function library missing; loading it again)");
                ++function_reloads_;
                loadFunctions(shard);
                answer.status = FleetStatus::Unavailable;
            } else {
                answer.status = FleetStatus::Error;
                answer.error.assign(error);
            }
            break;
        }
        case REDIS_REPLY_INTEGER: answer.integer = reply.integer; break;
        case REDIS_REPLY_ARRAY:
            answer.items.resize(reply.elements);
            for (size_t i = 0; i < reply.elements && ok; ++i) {
                ok = itemOf(*reply.element[i], answer.items[i]);
            }
            break;
        case REDIS_REPLY_NIL: break;
        default:
            answer.items.resize(1);
            ok = itemOf(reply, answer.items[0]);
            break;
    }
    if (!ok) {
        ++malformed_replies_;
        answer = FleetReply{FleetStatus::Error, 0, {}, "malformed reply: a nested array"};
        setLastError("fleet call" + std::string(shardName(shard).empty() ? "" : " on ") +
                     shardName(shard) + ": " + answer.error);
    }
    handler_.onFleetReply(a.token, std::move(answer));
}

bool RedisBrokerCore::functionsLoaded(uint16_t shard, RedisStatus status, const redisReply* reply) {
    if (status != RedisStatus::Reply) return false;  // the lost connection is reported apart
    if (reply->type != REDIS_REPLY_ERROR) return true;
    const std::string name = shardName(shard);
    fail("FUNCTION LOAD of the wsrelay library refused" + (name.empty() ? "" : " by " + name) +
         ": " + std::string(reply->str, reply->len) +
         " (history and the fleet need Redis 7.0 or later, and a user allowed FUNCTION and "
         "FCALL)");
    return false;
}

bool RedisBrokerCore::isProbe(std::string_view client_channel) const {
    for (const Probe& probe : probes_) {
        const std::string_view name = probe.channel;
        if (name.size() == options_.prefix.size() + client_channel.size() &&
            name.substr(options_.prefix.size()) == client_channel) {
            return true;
        }
    }
    return false;
}

const std::string& RedisBrokerCore::probeChannel(uint16_t shard) const {
    static const std::string none;
    return shard < probes_.size() ? probes_[shard].channel : none;
}

// Sends what changed since the last turn: one SUBSCRIBE for channels newly wanted, one UNSUBSCRIBE
// for channels no longer wanted. A channel whose UNSUBSCRIBE is unconfirmed is subscribed again
// only once Redis confirmed it (unsubscribeConfirmed), so the remote state is always known.
void RedisBrokerCore::applyChanges() {
    std::vector<Target> subs;
    std::vector<Target> unsubs;
    std::vector<std::string> announce;
    std::vector<std::string> changed;
    changed.swap(changed_);
    for (const std::string& name : changed) {
        auto it = channels_.find(name);
        if (it == channels_.end()) continue;
        Channel& ch = it->second;
        ch.queued = false;
        if (isProbe(name)) {
            // The probe channel is always subscribed, and its messages are never delivered.
            if (!ch.wanted) {
                clearMoved(ch);
                channels_.erase(it);
            }
            continue;
        }
        if (ch.wanted && ch.remote == Remote::None) {
            if (!live_) continue;  // resubscribeAll() sends it once connected
            std::string redis_channel = options_.prefix + name;
            ch.shard = shardOf(redis_channel);
            ch.remote = Remote::Subscribing;
            subs.push_back(Target{ch.shard, std::move(redis_channel)});
        } else if (ch.wanted && ch.remote == Remote::Subscribed && ch.announce && up_) {
            // Unsubscribed and subscribed again within one turn: it never stopped being live.
            ch.announce = false;
            announce.push_back(name);
        } else if (!ch.wanted && ch.remote == Remote::None) {
            clearMoved(ch);
            channels_.erase(it);
        } else if (!ch.wanted &&
                   (ch.remote == Remote::Subscribing || ch.remote == Remote::Subscribed)) {
            ch.remote = Remote::Unsubscribing;
            unsubs.push_back(Target{ch.shard, options_.prefix + name});
        }
    }
    if (!subs.empty()) {
        pending_confirms_ += subs.size();
        sendSubscriptions(true, subs);
    }
    if (!unsubs.empty()) sendSubscriptions(false, unsubs);
    for (const std::string& name : announce) handler_.onSubscribed(name);
    maybeMovedDone();
}

void RedisBrokerCore::inBatches(
    std::string_view command, const std::vector<std::string_view>& names,
    const std::function<void(const std::vector<std::string_view>&)>& send) {
    std::vector<std::string_view> args;
    for (size_t begin = 0; begin < names.size(); begin += kChannelsPerCommand) {
        const size_t end = std::min(names.size(), begin + kChannelsPerCommand);
        args.assign(1, command);
        args.insert(args.end(), names.begin() + static_cast<ptrdiff_t>(begin),
                    names.begin() + static_cast<ptrdiff_t>(end));
        send(args);
    }
}

void RedisBrokerCore::startAttempt() {
    ev_timer_stop(loop_, &reconnect_timer_);
    ev_timer_set(&setup_timer_, options_.probe_timeout_ms / 1000.0, 0.);
    ev_timer_start(loop_, &setup_timer_);
    connect();
}

// After a (re)connect: the probe channels first, then every channel a local subscriber holds.
void RedisBrokerCore::resubscribeAll(std::vector<std::string> probe_channels) {
    probes_.clear();
    std::vector<Target> targets;
    targets.reserve(channels_.size() + probe_channels.size());
    for (size_t shard = 0; shard < probe_channels.size(); ++shard) {
        probes_.push_back(Probe{probe_channels[shard], {}});
        if (probe_channels[shard].empty()) continue;
        targets.push_back(Target{static_cast<uint16_t>(shard), probe_channels[shard]});
    }
    for (auto it = channels_.begin(); it != channels_.end();) {
        Channel& ch = it->second;
        ch.moved = false;
        if (!ch.wanted) {
            it = channels_.erase(it);
            continue;
        }
        ch.queued = false;
        if (isProbe(it->first)) {
            ch.remote = Remote::Subscribed;
        } else {
            std::string redis_channel = options_.prefix + it->first;
            ch.shard = shardOf(redis_channel);
            ch.remote = Remote::Subscribing;
            targets.push_back(Target{ch.shard, std::move(redis_channel)});
        }
        ++it;
    }
    changed_.clear();
    moving_ = 0;
    moved_gap_ = false;
    live_ = true;
    pending_confirms_ = targets.size();
    sendSubscriptions(true, targets);
}

void RedisBrokerCore::maybeUp() {
    if (up_ || !live_ || pending_confirms_ > 0 || !connectionsReady()) return;
    if (options_.probe_interval_ms > 0 && !firstProbesThrough()) return;
    up_ = true;
    backoff_.reset();
    ev_timer_stop(loop_, &setup_timer_);
    if (options_.probe_interval_ms > 0) {
        const double interval = options_.probe_interval_ms / 1000.0;
        ev_timer_set(&probe_timer_, interval, interval);
        ev_timer_start(loop_, &probe_timer_);
    }
    const bool gap = ever_up_;
    ever_up_ = true;
    moved_gap_ = false;  // this Up carries it
    handler_.onBrokerState(BrokerState::Up, gap);
    announceConfirmed();
}

void RedisBrokerCore::announceConfirmed() {
    std::vector<std::string> names;
    for (const auto& [name, ch] : channels_) {
        if (ch.wanted && ch.announce && ch.remote == Remote::Subscribed) names.push_back(name);
    }
    // The handler may subscribe or unsubscribe meanwhile: each one is checked again.
    for (const std::string& name : names) {
        auto it = channels_.find(name);
        if (it == channels_.end() || !it->second.wanted || !it->second.announce ||
            it->second.remote != Remote::Subscribed || !up_) {
            continue;
        }
        it->second.announce = false;
        handler_.onSubscribed(name);
    }
}

void RedisBrokerCore::subscribeConfirmed(std::string_view redis_channel) {
    if (pending_confirms_ > 0) --pending_confirms_;
    if (redis_channel.starts_with(options_.prefix)) {
        auto it = channels_.find(redis_channel.substr(options_.prefix.size()));
        if (it != channels_.end() && it->second.remote == Remote::Subscribing) {
            Channel& ch = it->second;
            ch.remote = Remote::Subscribed;
            clearMoved(ch);
            // Before Up, maybeUp() announces it together with the others.
            if (up_ && ch.wanted && ch.announce && !isProbe(it->first)) {
                ch.announce = false;
                handler_.onSubscribed(it->first);
            }
        }
    }
    maybeUp();
    maybeMovedDone();
}

bool RedisBrokerCore::unsubscribeConfirmed(uint16_t shard, std::string_view redis_channel) {
    if (shard < probes_.size() && probes_[shard].channel == redis_channel) return false;
    if (!redis_channel.starts_with(options_.prefix)) return true;
    auto it = channels_.find(redis_channel.substr(options_.prefix.size()));
    if (it == channels_.end()) return true;
    Channel& ch = it->second;
    // An old owner dropping a channel already subscribed elsewhere (rehome() came first).
    if (ch.remote != Remote::None && ch.shard != shard) return true;
    if (ch.remote != Remote::Unsubscribing) return ch.remote == Remote::None;
    ch.remote = Remote::None;
    if (!ch.wanted) {
        if (!ch.queued) {
            clearMoved(ch);
            channels_.erase(it);
        }
    } else {
        // Wanted again while the UNSUBSCRIBE was in flight: subscribe it on the next flush.
        queue(it);
    }
    return true;
}

void RedisBrokerCore::setProbe(uint16_t shard, std::string channel) {
    if (probes_.size() <= shard) probes_.resize(shard + 1u);
    Probe& probe = probes_[shard];
    if (probe.channel == channel) return;
    probe.channel = std::move(channel);
    probe.sent.clear();  // what went to the old channel never comes back
    probe.through = false;
    if (!probe.channel.empty() && live_) {
        ++pending_confirms_;
        sendSubscriptions(true, {Target{shard, probe.channel}});
    }
    armProbeDeadline();
}

void RedisBrokerCore::markMoved(Channel& ch, bool was_live) {
    if (was_live) moved_gap_ = true;
    if (ch.moved) return;
    ch.moved = true;
    ++moving_;
}

void RedisBrokerCore::clearMoved(Channel& ch) {
    if (!ch.moved) return;
    ch.moved = false;
    --moving_;
}

void RedisBrokerCore::maybeMovedDone() {
    if (moving_ > 0 || !moved_gap_ || !up_) return;
    moved_gap_ = false;
    // Only onBrokerState carries a gap, and only for every channel of the worker: Up again,
    // without a Down, since publishes and the other subscriptions never stopped.
    handler_.onBrokerState(BrokerState::Up, true);
}

void RedisBrokerCore::subscriptionLost(uint16_t shard, std::string_view redis_channel) {
    if (!redis_channel.starts_with(options_.prefix)) return;
    auto it = channels_.find(redis_channel.substr(options_.prefix.size()));
    if (it == channels_.end() || it->second.shard != shard) return;
    Channel& ch = it->second;
    if (ch.remote != Remote::Subscribing && ch.remote != Remote::Subscribed) return;
    const bool was_live = ch.remote == Remote::Subscribed || !ch.announce;
    if (ch.remote == Remote::Subscribing && pending_confirms_ > 0) --pending_confirms_;
    ch.remote = Remote::None;
    if (ch.wanted) {
        markMoved(ch, was_live);
    } else if (!ch.queued) {
        clearMoved(ch);
        channels_.erase(it);
    }
}

void RedisBrokerCore::subscriptionsGone(uint16_t shard,
                                        const std::function<bool(std::string_view)>& gone) {
    for (auto it = channels_.begin(); it != channels_.end();) {
        Channel& ch = it->second;
        if (ch.shard != shard || ch.remote == Remote::None || isProbe(it->first) ||
            !gone(options_.prefix + it->first)) {
            ++it;
            continue;
        }
        if (ch.remote == Remote::Subscribing || ch.remote == Remote::Subscribed) {
            const bool was_live = ch.remote == Remote::Subscribed || !ch.announce;
            if (ch.remote == Remote::Subscribing && pending_confirms_ > 0) --pending_confirms_;
            if (ch.wanted) markMoved(ch, was_live);
        }
        ch.remote = Remote::None;  // an UNSUBSCRIBE refused there is done too
        if (!ch.wanted && !ch.queued) {
            clearMoved(ch);
            it = channels_.erase(it);
            continue;
        }
        ++it;
    }
}

void RedisBrokerCore::rehome() {
    for (auto it = channels_.begin(); it != channels_.end(); ++it) {
        Channel& ch = it->second;
        if (!ch.wanted || isProbe(it->first)) continue;
        if (ch.remote == Remote::Subscribing || ch.remote == Remote::Subscribed) {
            if (ch.shard == shardOf(options_.prefix + it->first)) continue;
            const bool was_live = ch.remote == Remote::Subscribed || !ch.announce;
            if (ch.remote == Remote::Subscribing && pending_confirms_ > 0) --pending_confirms_;
            ch.remote = Remote::None;
            markMoved(ch, was_live);
        }
        if (ch.remote == Remote::None && live_) queue(it);
    }
}

void RedisBrokerCore::deliver(uint16_t shard, std::string_view redis_channel,
                              std::string_view payload) {
    if (shard < probes_.size() && redis_channel == probes_[shard].channel) {
        probeReceived(probes_[shard], payload);
        return;
    }
    if (!redis_channel.starts_with(options_.prefix)) return;
    const std::string_view channel = redis_channel.substr(options_.prefix.size());
    auto it = channels_.find(channel);
    if (it == channels_.end() || !it->second.wanted) return;
    // The position comes first (the function library puts it in front of what the relay passed).
    std::string_view epoch;
    const uint64_t offset = takePosition(payload, epoch);
    const int64_t entered_us = takeStamp(payload);
    handler_.onBrokerMessage(channel, payload_.toJson(payload), entered_us, offset, epoch);
}

// Drops every connection (a half-working set would deliver without publishing or the reverse),
// fails what is in flight, and retries after a backoff.
void RedisBrokerCore::fail(std::string reason) {
    if (destroying_) return;
    last_error_ = std::move(reason);
    std::vector<Awaited> lost;
    disconnect(lost);
    live_ = false;
    ev_timer_stop(loop_, &setup_timer_);
    ev_timer_stop(loop_, &probe_timer_);
    ev_timer_stop(loop_, &probe_deadline_);
    for (Probe& probe : probes_) probe.sent.clear();
    for (auto it = channels_.begin(); it != channels_.end();) {
        Channel& ch = it->second;
        ch.moved = false;
        if (!ch.wanted) {
            it = channels_.erase(it);
            continue;
        }
        ch.remote = Remote::None;
        ch.queued = false;
        ch.announce = true;  // confirmed again once subscribed again
        ++it;
    }
    changed_.clear();
    pending_confirms_ = 0;
    moving_ = 0;
    moved_gap_ = false;  // the next Up carries the gap

    if (!ev_is_active(&reconnect_timer_)) {
        ev_timer_set(&reconnect_timer_, backoff_.nextSeconds(), 0.);
        ev_timer_start(loop_, &reconnect_timer_);
    }
    const bool was_up = up_;
    up_ = false;
    if (was_up) {
        handler_.onBrokerState(BrokerState::Down, false);
    } else {
        handler_.onBrokerAttemptFailed(last_error_);
    }
    for (const Awaited& a : lost) unavailable(a);
}

void RedisBrokerCore::sendProbes() {
    if (!up_) return;
    for (size_t shard = 0; shard < probes_.size(); ++shard) {
        if (!probes_[shard].channel.empty()) sendProbeTo(static_cast<uint16_t>(shard));
    }
    armProbeDeadline();
}

void RedisBrokerCore::sendProbeTo(uint16_t shard) {
    Probe& probe = probes_[shard];
    const uint64_t seq = ++probe_seq_;
    const std::string payload = probe_nonce_ + ":" + std::to_string(seq);
    if (sendProbe(shard, probe.channel, payload)) probe.sent.emplace_back(seq, ev_now(loop_));
}

// Before Up: sends a first probe on every shard that has not had one through yet (and none is on
// its way), and answers whether all have. The setup deadline bounds the wait.
bool RedisBrokerCore::firstProbesThrough() {
    bool through = true;
    bool sent = false;
    for (size_t shard = 0; shard < probes_.size(); ++shard) {
        Probe& probe = probes_[shard];
        if (probe.channel.empty() || probe.through) continue;
        through = false;
        if (probe.sent.empty()) {
            sendProbeTo(static_cast<uint16_t>(shard));
            sent = true;
        }
    }
    if (sent) armProbeDeadline();
    return through;
}

void RedisBrokerCore::probeReceived(Probe& probe, std::string_view payload) {
    const size_t colon = payload.find(':');
    if (colon == std::string_view::npos || payload.substr(0, colon) != probe_nonce_) return;
    uint64_t seq = 0;
    const std::string_view digits = payload.substr(colon + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), seq).ec != std::errc()) {
        return;
    }
    while (!probe.sent.empty() && probe.sent.front().first <= seq) {
        if (probe.sent.front().first == seq) {
            handler_.onBrokerProbe(ev_now(loop_) - probe.sent.front().second);
            probe.through = true;
        }
        probe.sent.pop_front();
    }
    armProbeDeadline();
    if (!up_) maybeUp();
}

// The deadline is that of the oldest probe not yet back, on any shard.
void RedisBrokerCore::armProbeDeadline() {
    ev_timer_stop(loop_, &probe_deadline_);
    bool any = false;
    ev_tstamp oldest = 0;
    for (const Probe& probe : probes_) {
        if (probe.sent.empty()) continue;
        if (!any || probe.sent.front().second < oldest) oldest = probe.sent.front().second;
        any = true;
    }
    if (!any) return;
    const double due = oldest + options_.probe_timeout_ms / 1000.0 - ev_now(loop_);
    ev_timer_set(&probe_deadline_, std::max(0.0, due), 0.);
    ev_timer_start(loop_, &probe_deadline_);
}

void RedisBrokerCore::onReconnectTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisBrokerCore*>(w->data)->startAttempt();
}

void RedisBrokerCore::onSetupTimeout(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisBrokerCore*>(w->data);
    // Connected and subscribed, only the first probe missing: say so, not "no connection".
    const bool probing = self->live_ && self->pending_confirms_ == 0 && self->connectionsReady();
    self->fail(probing ? self->lateProbeReason() : self->timeoutReason());
}

void RedisBrokerCore::onProbeTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisBrokerCore*>(w->data)->sendProbes();
}

void RedisBrokerCore::onProbeDeadline(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisBrokerCore*>(w->data);
    self->fail(self->lateProbeReason());
}

// Names the shard of the oldest probe not yet back.
std::string RedisBrokerCore::lateProbeReason() const {
    std::string where;
    ev_tstamp oldest = 0;
    bool any = false;
    for (size_t shard = 0; shard < probes_.size(); ++shard) {
        const Probe& probe = probes_[shard];
        if (!probe.sent.empty() && (!any || probe.sent.front().second < oldest)) {
            oldest = probe.sent.front().second;
            where = shardName(static_cast<uint16_t>(shard));
            any = true;
        }
    }
    return "delivery probe" + (where.empty() ? std::string() : " through " + where) +
           " not received within " + std::to_string(options_.probe_timeout_ms) + " ms";
}

}  // namespace wsrelay
