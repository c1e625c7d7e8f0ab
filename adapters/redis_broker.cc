#include "adapters/redis_broker.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "adapters/redis_cluster_broker.h"

namespace wsrelay {
namespace {

// Redis takes any number of arguments, but one huge command delays every reply behind it and
// costs hiredis one big buffer: subscriptions go out in commands of at most this many names.
constexpr size_t kChannelsPerCommand = 512;
constexpr std::string_view kProbeChannel = "__wsrelay_probe:";

RedisBroker* brokerOf(const redisAsyncContext* ac) { return static_cast<RedisBroker*>(ac->data); }

std::string errorText(const redisAsyncContext* ac) {
    return ac->errstr[0] != '\0' ? std::string(ac->errstr) : std::string("connection closed");
}

}  // namespace


RedisBrokerFactory::RedisBrokerFactory(RedisBrokerOptions options) : options_(std::move(options)) {}

BrokerPtr RedisBrokerFactory::create(int worker_index, struct ev_loop* loop,
                                     BrokerHandler& handler) {
    if (!options_.cluster.empty()) {
        return std::make_unique<RedisClusterBroker>(options_, worker_index, loop, handler);
    }
    return std::make_unique<RedisBroker>(options_, worker_index, loop, handler);
}

RedisBroker::RedisBroker(const RedisBrokerOptions& options, int worker_index,
                         struct ev_loop* loop, BrokerHandler& handler)
    : options_(options), worker_index_(worker_index), loop_(loop), handler_(handler),
      rng_(std::random_device{}() ^ (static_cast<uint64_t>(getpid()) << 20) ^
           static_cast<uint64_t>(worker_index)) {
    probe_channel_ = options_.prefix + std::string(kProbeChannel) + std::to_string(getpid()) +
                     ":" + std::to_string(worker_index_);
    // Containers often all run as pid 1: the nonce keeps another instance's probes apart.
    char nonce[17];
    const uint64_t value = rng_();
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
    host_ = options_.url.host;
    port_ = options_.url.port;
    if (!options_.sentinel_master.empty()) {
        sentinel_ = std::make_unique<RedisSentinel>(
            loop_, options_.sentinel_master, options_.sentinels,
            static_cast<RedisSentinel::Listener&>(*this));
    }
    connect();
}

RedisBroker::~RedisBroker() {
    destroying_ = true;
    ev_timer_stop(loop_, &reconnect_timer_);
    ev_timer_stop(loop_, &setup_timer_);
    ev_timer_stop(loop_, &probe_timer_);
    ev_timer_stop(loop_, &probe_deadline_);
    // Detached contexts call back into nothing: every callback checks ac->data first.
    dropLinks();
}

void RedisBroker::subscribe(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), Channel{}).first;
    it->second.wanted = true;
    if (!it->second.queued) {
        it->second.queued = true;
        changed_.push_back(it->first);
    }
}

void RedisBroker::unsubscribe(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    it->second.wanted = false;
    if (!it->second.queued) {
        it->second.queued = true;
        changed_.push_back(it->first);
    }
}

void RedisBroker::publish(std::string_view channel, std::string_view data,
                          const PublishTicket& ticket) {
    Outgoing out;
    out.channel.reserve(options_.prefix.size() + channel.size());
    out.channel.append(options_.prefix).append(channel);
    if (options_.timestamps && ticket.entered_us != 0) {
        out.data.reserve(data.size() + 22);
        appendStamp(ticket.entered_us, out.data);
    }
    out.data.append(data);
    out.ticket = ticket;
    outbox_.push_back(std::move(out));
}

void RedisBroker::flush() {
    if (!changed_.empty()) applyChanges();
    if (outbox_.empty()) return;
    sending_.swap(outbox_);
    std::vector<PublishTicket> unavailable;
    for (Outgoing& out : sending_) {
        if (!up_) {
            unavailable.push_back(out.ticket);
            continue;
        }
        const char* argv[3] = {"PUBLISH", out.channel.data(), out.data.data()};
        const size_t lens[3] = {7, out.channel.size(), out.data.size()};
        // Issued in one loop turn, these leave in one write.
        if (redisAsyncCommandArgv(cmd_.ac, onPublishReply, nullptr, 3, argv, lens) == REDIS_OK) {
            inflight_.push_back(out.ticket);
        } else {
            unavailable.push_back(out.ticket);
        }
    }
    sending_.clear();
    for (const PublishTicket& t : unavailable) {
        handler_.onPublishResult(t, PublishStatus::Unavailable);
    }
}

bool RedisBroker::isProbe(std::string_view client_channel) const {
    const std::string_view probe = probe_channel_;
    return probe.size() == options_.prefix.size() + client_channel.size() &&
           probe.substr(options_.prefix.size()) == client_channel;
}

// Sends what changed since the last turn: one SUBSCRIBE for channels newly wanted, one UNSUBSCRIBE
// for channels no longer wanted. A channel whose UNSUBSCRIBE is unconfirmed is subscribed again
// only once Redis confirmed it (onUnsubscribed), so the remote state is always known.
void RedisBroker::applyChanges() {
    std::vector<std::string> subs;
    std::vector<std::string> unsubs;
    std::vector<std::string> changed;
    std::vector<std::string> confirmed;
    changed.swap(changed_);
    const bool live = sub_.ac != nullptr;
    for (const std::string& name : changed) {
        auto it = channels_.find(name);
        if (it == channels_.end()) continue;
        Channel& ch = it->second;
        ch.queued = false;
        if (isProbe(name)) {
            // Always subscribed, as the probe channel; its messages are never delivered.
            if (!ch.wanted) channels_.erase(it);
            continue;
        }
        if (ch.wanted && ch.remote == Remote::None) {
            if (!live) continue;  // resubscribeAll() sends it once connected
            ch.remote = Remote::Subscribing;
            subs.push_back(options_.prefix + name);
        } else if (!ch.wanted && ch.remote == Remote::None) {
            channels_.erase(it);
        } else if (!ch.wanted &&
                   (ch.remote == Remote::Subscribing || ch.remote == Remote::Subscribed)) {
            ch.remote = Remote::Unsubscribing;
            unsubs.push_back(options_.prefix + name);
        } else if (ch.wanted && ch.remote == Remote::Subscribed) {
            confirmed.push_back(name);  // unsubscribed and subscribed again within the turn
        }
    }
    for (const std::string& name : confirmed) handler_.onSubscribed(name);
    if (!subs.empty()) {
        pending_confirms_ += subs.size();
        sendChannelCommand("SUBSCRIBE", subs);
    }
    if (!unsubs.empty()) sendChannelCommand("UNSUBSCRIBE", unsubs);
}

void RedisBroker::sendChannelCommand(const char* command, const std::vector<std::string>& names) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (size_t begin = 0; begin < names.size(); begin += kChannelsPerCommand) {
        const size_t end = std::min(names.size(), begin + kChannelsPerCommand);
        argv.assign(1, command);
        lens.assign(1, std::strlen(command));
        for (size_t i = begin; i < end; ++i) {
            argv.push_back(names[i].data());
            lens.push_back(names[i].size());
        }
        // A failure here means the context is being torn down; the reconnect replays everything.
        redisAsyncCommandArgv(sub_.ac, onSubscriberReply, nullptr, static_cast<int>(argv.size()),
                              argv.data(), lens.data());
    }
}

void RedisBroker::connect() {
    ev_timer_stop(loop_, &reconnect_timer_);
    // Bounds asking Sentinel too.
    ev_timer_set(&setup_timer_, options_.probe_timeout_ms / 1000.0, 0.);
    ev_timer_start(loop_, &setup_timer_);
    if (sentinel_) {
        resolving_ = true;
        sentinel_->resolve();
        return;
    }
    openLinks();
}

void RedisBroker::openLinks() {
    if (!openLink(sub_) || !openLink(cmd_)) return;
    resubscribeAll();
}

std::string RedisBroker::target() const {
    RedisUrl url = options_.url;
    url.host = host_;
    url.port = port_;
    return describeRedisUrl(url);
}

void RedisBroker::onMasterFound(const ClusterNode& master) {
    if (!resolving_) return;  // the attempt that asked was given up meanwhile
    resolving_ = false;
    host_ = master.host;
    port_ = master.port;
    openLinks();
    if (cmd_.ac == nullptr) return;
    // A sentinel cut off from the others may still name a demoted master: Up only on a master.
    redisAsyncCommand(cmd_.ac, onRoleReply, nullptr, "ROLE");
    ++cmd_.setup_pending;
}

void RedisBroker::onMasterUnknown(const std::string& error) {
    if (!resolving_) return;
    fail("sentinel: " + error);
}

void RedisBroker::onMasterSwitched(const ClusterNode& master) {
    if (master.host == host_ && master.port == port_ && sub_.ac != nullptr) return;
    fail("sentinel: master switched to " + master.name());
}

bool RedisBroker::openLink(Link& link) {
    redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
    if (ac == nullptr) {
        fail("cannot allocate a Redis connection");
        return false;
    }
    if (ac->err != 0) {
        std::string error = "connect to " + target() + ": " + ac->errstr;
        redisAsyncFree(ac);
        fail(std::move(error));
        return false;
    }
    ac->data = this;
    redisLibevAttach(loop_, ac);
    redisAsyncSetConnectCallback(ac, onConnect);
    redisAsyncSetDisconnectCallback(ac, onDisconnect);
    link = Link{};
    link.ac = ac;
    // Queued before the connection completes: hiredis writes them once it does.
    if (!options_.url.password.empty()) {
        const RedisUrl& url = options_.url;
        const char* argv[3] = {"AUTH", url.user.data(), url.password.data()};
        size_t lens[3] = {4, url.user.size(), url.password.size()};
        if (url.user.empty()) {
            argv[1] = url.password.data();
            lens[1] = url.password.size();
        }
        redisAsyncCommandArgv(ac, onSetupReply, nullptr, url.user.empty() ? 2 : 3, argv, lens);
        ++link.setup_pending;
    }
    if (options_.url.db != 0) {
        const std::string db = std::to_string(options_.url.db);
        const char* argv[2] = {"SELECT", db.data()};
        const size_t lens[2] = {6, db.size()};
        redisAsyncCommandArgv(ac, onSetupReply, nullptr, 2, argv, lens);
        ++link.setup_pending;
    }
    return true;
}

// After a (re)connect: the probe channel first, then every channel a local subscriber holds.
void RedisBroker::resubscribeAll() {
    std::vector<std::string> names;
    names.reserve(channels_.size() + 1);
    names.push_back(probe_channel_);
    for (auto it = channels_.begin(); it != channels_.end();) {
        Channel& ch = it->second;
        if (!ch.wanted) {
            it = channels_.erase(it);
            continue;
        }
        ch.queued = false;
        ch.remote = isProbe(it->first) ? Remote::Subscribed : Remote::Subscribing;
        if (!isProbe(it->first)) names.push_back(options_.prefix + it->first);
        ++it;
    }
    changed_.clear();
    pending_confirms_ = names.size();
    sendChannelCommand("SUBSCRIBE", names);
}

void RedisBroker::maybeUp() {
    if (up_ || sub_.ac == nullptr || cmd_.ac == nullptr || !sub_.connected || !cmd_.connected ||
        sub_.setup_pending > 0 || cmd_.setup_pending > 0 || pending_confirms_ > 0) {
        return;
    }
    up_ = true;
    attempts_ = 0;
    ev_timer_stop(loop_, &setup_timer_);
    if (options_.probe_interval_ms > 0) {
        const double interval = options_.probe_interval_ms / 1000.0;
        ev_timer_set(&probe_timer_, interval, interval);
        ev_timer_start(loop_, &probe_timer_);
    }
    const bool gap = ever_up_;
    ever_up_ = true;
    handler_.onBrokerState(BrokerState::Up, gap);
}

RedisBroker::Link* RedisBroker::linkOf(const redisAsyncContext* ac) {
    if (ac == sub_.ac) return &sub_;
    if (ac == cmd_.ac) return &cmd_;
    return nullptr;
}

void RedisBroker::linkLost(const redisAsyncContext* ac, const char* what) {
    Link* link = linkOf(ac);
    std::string reason = std::string(what) + ": " + errorText(ac);
    // hiredis is freeing this context and calls back for each of its pending commands: detach it
    // so those calls, and its disconnect callback, find no broker.
    const_cast<redisAsyncContext*>(ac)->data = nullptr;
    if (link != nullptr) *link = Link{};
    fail(std::move(reason));
}

// Everything that goes wrong ends here: drop both connections (a half-working pair would deliver
// without publishing or the reverse), fail what is in flight, and retry after a backoff.
void RedisBroker::fail(std::string reason) {
    if (destroying_) return;
    last_error_ = std::move(reason);
    resolving_ = false;
    dropLinks();
    ev_timer_stop(loop_, &setup_timer_);
    ev_timer_stop(loop_, &probe_timer_);
    ev_timer_stop(loop_, &probe_deadline_);
    probes_outstanding_.clear();
    for (auto it = channels_.begin(); it != channels_.end();) {
        if (!it->second.wanted) {
            it = channels_.erase(it);
            continue;
        }
        it->second.remote = Remote::None;
        it->second.queued = false;
        ++it;
    }
    changed_.clear();
    pending_confirms_ = 0;

    if (!ev_is_active(&reconnect_timer_)) {
        const int min_ms = options_.reconnect_min_ms;
        const int max_ms = std::max(min_ms, options_.reconnect_max_ms);
        const int64_t cap = std::min<int64_t>(max_ms, int64_t{min_ms} << std::min(attempts_, 20));
        std::uniform_int_distribution<int64_t> jitter(min_ms, std::max<int64_t>(min_ms, cap));
        ++attempts_;
        ev_timer_set(&reconnect_timer_, static_cast<double>(jitter(rng_)) / 1000.0, 0.);
        ev_timer_start(loop_, &reconnect_timer_);
    }

    std::deque<PublishTicket> lost;
    lost.swap(inflight_);
    const bool was_up = up_;
    up_ = false;
    if (was_up) handler_.onBrokerState(BrokerState::Down, false);
    for (const PublishTicket& t : lost) handler_.onPublishResult(t, PublishStatus::Unavailable);
}

void RedisBroker::dropLinks() {
    for (Link* link : {&sub_, &cmd_}) {
        redisAsyncContext* ac = link->ac;
        *link = Link{};
        if (ac == nullptr) continue;
        ac->data = nullptr;
        // From inside one of ac's reply callbacks hiredis defers this until the callback returns.
        redisAsyncFree(ac);
    }
}

void RedisBroker::onConnect(const redisAsyncContext* ac, int status) {
    RedisBroker* self = brokerOf(ac);
    if (self == nullptr) return;
    if (status != REDIS_OK) {
        // hiredis frees the context right after this callback.
        self->linkLost(ac, "connect");
        return;
    }
    if (Link* link = self->linkOf(ac)) link->connected = true;
    self->maybeUp();
}

void RedisBroker::onDisconnect(const redisAsyncContext* ac, int) {
    RedisBroker* self = brokerOf(ac);
    if (self == nullptr) return;
    self->linkLost(ac, "connection lost");
}

RedisBroker* RedisBroker::replyTarget(redisAsyncContext* ac, void* reply) {
    RedisBroker* self = brokerOf(ac);
    if (self == nullptr) return nullptr;
    // hiredis answers pending commands with a null reply when the connection goes away.
    if (reply == nullptr) {
        self->linkLost(ac, "connection lost");
        return nullptr;
    }
    return self;
}

void RedisBroker::onSetupReply(redisAsyncContext* ac, void* r, void*) {
    RedisBroker* self = replyTarget(ac, r);
    if (self == nullptr) return;
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type == REDIS_REPLY_ERROR) {
        self->fail("AUTH/SELECT refused: " + std::string(reply->str, reply->len));
        return;
    }
    Link* link = self->linkOf(ac);
    if (link == nullptr) return;
    --link->setup_pending;
    self->maybeUp();
}

void RedisBroker::onRoleReply(redisAsyncContext* ac, void* r, void*) {
    RedisBroker* self = replyTarget(ac, r);
    if (self == nullptr) return;
    auto* reply = static_cast<redisReply*>(r);
    const bool master = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                        reply->element[0]->type == REDIS_REPLY_STRING &&
                        std::string_view(reply->element[0]->str, reply->element[0]->len) ==
                            "master";
    if (!master) {
        self->fail("sentinel: " + self->target() + " is not a master (ROLE)");
        return;
    }
    Link* link = self->linkOf(ac);
    if (link == nullptr) return;
    --link->setup_pending;
    self->maybeUp();
}

void RedisBroker::onPublishReply(redisAsyncContext* ac, void* r, void*) {
    RedisBroker* self = replyTarget(ac, r);
    if (self == nullptr) return;
    auto* reply = static_cast<redisReply*>(r);
    if (self->inflight_.empty()) return;
    const PublishTicket ticket = self->inflight_.front();
    self->inflight_.pop_front();
    self->handler_.onPublishResult(ticket, reply->type == REDIS_REPLY_ERROR
                                               ? PublishStatus::Rejected
                                               : PublishStatus::Accepted);
}

void RedisBroker::onProbeReply(redisAsyncContext* ac, void* r, void*) {
    RedisBroker* self = brokerOf(ac);
    if (self == nullptr) return;
    if (r == nullptr) self->linkLost(ac, "connection lost");
}

void RedisBroker::onSubscriberReply(redisAsyncContext* ac, void* r, void*) {
    RedisBroker* self = replyTarget(ac, r);
    if (self == nullptr) return;
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const std::string_view kind(reply->element[0]->str, reply->element[0]->len);
    const std::string_view channel(reply->element[1]->str, reply->element[1]->len);
    const redisReply* third = reply->element[2];
    if (kind == "message" && third->type == REDIS_REPLY_STRING) {
        self->onMessage(channel, std::string_view(third->str, third->len));
    } else if (kind == "subscribe") {
        self->onSubscribed(channel);
    } else if (kind == "unsubscribe") {
        self->onUnsubscribed(channel);
    }
}

void RedisBroker::onSubscribed(std::string_view redis_channel) {
    if (pending_confirms_ > 0) --pending_confirms_;
    if (redis_channel.starts_with(options_.prefix)) {
        auto it = channels_.find(redis_channel.substr(options_.prefix.size()));
        if (it != channels_.end() && it->second.remote == Remote::Subscribing) {
            it->second.remote = Remote::Subscribed;
            handler_.onSubscribed(it->first);
        }
    }
    maybeUp();
}

void RedisBroker::onUnsubscribed(std::string_view redis_channel) {
    if (!redis_channel.starts_with(options_.prefix)) return;
    auto it = channels_.find(redis_channel.substr(options_.prefix.size()));
    if (it == channels_.end() || it->second.remote != Remote::Unsubscribing) return;
    Channel& ch = it->second;
    ch.remote = Remote::None;
    if (!ch.wanted) {
        if (!ch.queued) channels_.erase(it);
    } else if (!ch.queued) {
        // Wanted again while the UNSUBSCRIBE was in flight: subscribe it on the next flush.
        ch.queued = true;
        changed_.push_back(it->first);
    }
}

void RedisBroker::onMessage(std::string_view redis_channel, std::string_view payload) {
    if (redis_channel == probe_channel_) {
        onProbe(payload);
        return;
    }
    if (!redis_channel.starts_with(options_.prefix)) return;
    const std::string_view channel = redis_channel.substr(options_.prefix.size());
    auto it = channels_.find(channel);
    if (it == channels_.end() || !it->second.wanted) return;
    const int64_t entered_us = takeStamp(payload);
    handler_.onBrokerMessage(channel, payload_.toJson(payload), entered_us);
}


void RedisBroker::sendProbe() {
    if (!up_ || cmd_.ac == nullptr) return;
    const uint64_t seq = ++probe_seq_;
    const std::string payload = probe_nonce_ + ":" + std::to_string(seq);
    const char* argv[3] = {"PUBLISH", probe_channel_.data(), payload.data()};
    const size_t lens[3] = {7, probe_channel_.size(), payload.size()};
    if (redisAsyncCommandArgv(cmd_.ac, onProbeReply, nullptr, 3, argv, lens) != REDIS_OK) return;
    probes_outstanding_.emplace_back(seq, ev_now(loop_));
    if (!ev_is_active(&probe_deadline_)) {
        ev_timer_set(&probe_deadline_, options_.probe_timeout_ms / 1000.0, 0.);
        ev_timer_start(loop_, &probe_deadline_);
    }
}

void RedisBroker::onProbe(std::string_view payload) {
    const size_t colon = payload.find(':');
    if (colon == std::string_view::npos || payload.substr(0, colon) != probe_nonce_) return;
    uint64_t seq = 0;
    const std::string_view digits = payload.substr(colon + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), seq).ec != std::errc()) {
        return;
    }
    while (!probes_outstanding_.empty() && probes_outstanding_.front().first <= seq) {
        if (probes_outstanding_.front().first == seq) {
            handler_.onBrokerProbe(ev_now(loop_) - probes_outstanding_.front().second);
        }
        probes_outstanding_.pop_front();
    }
    ev_timer_stop(loop_, &probe_deadline_);
    if (!probes_outstanding_.empty()) {
        // The next one is due probe_timeout_ms after it was sent.
        const double due = probes_outstanding_.front().second +
                           options_.probe_timeout_ms / 1000.0 - ev_now(loop_);
        ev_timer_set(&probe_deadline_, std::max(0.0, due), 0.);
        ev_timer_start(loop_, &probe_deadline_);
    }
}

void RedisBroker::onReconnectTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisBroker*>(w->data)->connect();
}

void RedisBroker::onSetupTimeout(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisBroker*>(w->data);
    self->fail("no connection to " + self->target() + " within " +
               std::to_string(self->options_.probe_timeout_ms) + " ms");
}

void RedisBroker::onProbeTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisBroker*>(w->data)->sendProbe();
}

void RedisBroker::onProbeDeadline(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisBroker*>(w->data);
    self->fail("delivery probe not received within " +
               std::to_string(self->options_.probe_timeout_ms) + " ms");
}

}  // namespace wsrelay
