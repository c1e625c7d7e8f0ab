#include "adapters/redis_cluster_broker.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>

#include "adapters/redis_broker.h"

namespace wsrelay {
namespace {

// As in standalone mode: bounded commands. SSUBSCRIBE also needs every name of one command in one
// slot (CROSSSLOT otherwise), so names are grouped by slot first.
constexpr size_t kChannelsPerCommand = 512;
constexpr std::string_view kProbeChannel = "__wsrelay_probe:";
// A probe channel is searched for by trying hash tags; a master owning very few slots may need
// many tries, and one whose slots no tag reaches within this bound gets no probe.
constexpr int kProbeTagTries = 1 << 16;

std::string_view textOf(const redisReply* r) { return std::string_view(r->str, r->len); }

bool isTopologyError(std::string_view error) {
    return error.starts_with("MOVED ") || error.starts_with("ASK ") ||
           error.starts_with("CLUSTERDOWN") || error.starts_with("TRYAGAIN");
}

}  // namespace

RedisClusterBroker::RedisClusterBroker(const RedisBrokerOptions& options, int worker_index,
                                       struct ev_loop* loop, BrokerHandler& handler)
    : prefix_(options.prefix), credentials_(options.url), seeds_(options.cluster),
      reconnect_min_ms_(options.reconnect_min_ms), reconnect_max_ms_(options.reconnect_max_ms),
      probe_interval_ms_(options.probe_interval_ms), probe_timeout_ms_(options.probe_timeout_ms),
      timestamps_(options.timestamps),
      worker_index_(worker_index), loop_(loop), handler_(handler),
      rng_(std::random_device{}() ^ (static_cast<uint64_t>(getpid()) << 20) ^
           static_cast<uint64_t>(worker_index)) {
    probe_base_ = prefix_ + std::string(kProbeChannel) + std::to_string(getpid()) + ":" +
                  std::to_string(worker_index_) + ":";
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
    connect();
}

RedisClusterBroker::~RedisClusterBroker() {
    destroying_ = true;
    ev_timer_stop(loop_, &reconnect_timer_);
    ev_timer_stop(loop_, &setup_timer_);
    ev_timer_stop(loop_, &probe_timer_);
    ev_timer_stop(loop_, &probe_deadline_);
    dropLinks();
}

std::vector<std::pair<std::string, std::string>> RedisClusterBroker::probeChannels() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Node& node : nodes_) out.emplace_back(node.address.name(), node.probe_channel);
    return out;
}

void RedisClusterBroker::subscribe(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), Channel{}).first;
    it->second.wanted = true;
    if (!it->second.queued) {
        it->second.queued = true;
        changed_.push_back(it->first);
    }
}

void RedisClusterBroker::unsubscribe(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    it->second.wanted = false;
    if (!it->second.queued) {
        it->second.queued = true;
        changed_.push_back(it->first);
    }
}

void RedisClusterBroker::publish(std::string_view channel, std::string_view data,
                                 const PublishTicket& ticket) {
    Outgoing out;
    out.channel.reserve(prefix_.size() + channel.size());
    out.channel.append(prefix_).append(channel);
    if (timestamps_ && ticket.entered_us != 0) {
        out.data.reserve(data.size() + 22);
        appendStamp(ticket.entered_us, out.data);
    }
    out.data.append(data);
    out.ticket = ticket;
    outbox_.push_back(std::move(out));
}

void RedisClusterBroker::flush() {
    if (!changed_.empty()) applyChanges();
    if (outbox_.empty()) return;
    sending_.swap(outbox_);
    std::vector<PublishTicket> unavailable;
    for (Outgoing& out : sending_) {
        if (!up_) {
            unavailable.push_back(out.ticket);
            continue;
        }
        Node& node = nodes_[ownerOf(out.channel)];
        node.cmd->command({"SPUBLISH", out.channel, out.data});
        node.expect.push_back(Expect{Expect::Publish, out.ticket});
    }
    sending_.clear();
    for (const PublishTicket& t : unavailable) {
        handler_.onPublishResult(t, PublishStatus::Unavailable);
    }
}

uint16_t RedisClusterBroker::ownerOf(std::string_view redis_channel) const {
    return topology_.ownerOf(clusterKeySlot(redis_channel));
}

void RedisClusterBroker::applyChanges() {
    std::vector<std::pair<uint16_t, std::string>> subs;
    std::vector<std::pair<uint16_t, std::string>> unsubs;
    std::vector<std::string> changed;
    std::vector<std::string> confirmed;
    changed.swap(changed_);
    const bool live = !nodes_.empty();
    for (const std::string& name : changed) {
        auto it = channels_.find(name);
        if (it == channels_.end()) continue;
        Channel& ch = it->second;
        ch.queued = false;
        if (ch.wanted && ch.remote == Remote::None) {
            if (!live) continue;  // resubscribeAll() sends it once the topology is known
            std::string redis_channel = prefix_ + name;
            ch.node = ownerOf(redis_channel);
            ch.remote = Remote::Subscribing;
            subs.emplace_back(ch.node, std::move(redis_channel));
        } else if (!ch.wanted && ch.remote == Remote::None) {
            channels_.erase(it);
        } else if (!ch.wanted &&
                   (ch.remote == Remote::Subscribing || ch.remote == Remote::Subscribed)) {
            ch.remote = Remote::Unsubscribing;
            unsubs.emplace_back(ch.node, prefix_ + name);
        } else if (ch.wanted && ch.remote == Remote::Subscribed) {
            confirmed.push_back(name);  // unsubscribed and subscribed again within the turn
        }
    }
    for (const std::string& name : confirmed) handler_.onSubscribed(name);
    if (!subs.empty()) sendGrouped("SSUBSCRIBE", subs);
    if (!unsubs.empty()) sendGrouped("SUNSUBSCRIBE", unsubs);
}

void RedisClusterBroker::sendGrouped(const char* command,
                                     std::vector<std::pair<uint16_t, std::string>>& names) {
    const bool subscribing = std::strcmp(command, "SSUBSCRIBE") == 0;
    std::map<std::pair<uint16_t, uint16_t>, std::vector<std::string_view>> groups;
    for (const auto& [node, name] : names) {
        groups[{node, clusterKeySlot(name)}].push_back(name);
    }
    std::vector<std::string_view> args;
    for (const auto& [key, group] : groups) {
        Node& node = nodes_[key.first];
        for (size_t begin = 0; begin < group.size(); begin += kChannelsPerCommand) {
            const size_t end = std::min(group.size(), begin + kChannelsPerCommand);
            args.assign(1, command);
            args.insert(args.end(), group.begin() + static_cast<ptrdiff_t>(begin),
                        group.begin() + static_cast<ptrdiff_t>(end));
            node.sub->command(args);
        }
        if (subscribing) node.pending_confirms += group.size();
    }
}

void RedisClusterBroker::connect() {
    ev_timer_stop(loop_, &reconnect_timer_);
    // The seeds first, then every master last seen, in case the seeds are gone.
    candidates_ = seeds_;
    for (const ClusterNode& master : topology_.masters) {
        if (std::find(candidates_.begin(), candidates_.end(), master) == candidates_.end()) {
            candidates_.push_back(master);
        }
    }
    candidate_ = 0;
    discovery_errors_.clear();
    ev_timer_set(&setup_timer_, probe_timeout_ms_ / 1000.0, 0.);
    ev_timer_start(loop_, &setup_timer_);
    discoverNext();
}

bool RedisClusterBroker::discoverNext() {
    while (candidate_ < candidates_.size()) {
        const ClusterNode& seed = candidates_[candidate_++];
        discovery_ = std::make_unique<RedisLink>(loop_, static_cast<RedisLink::Handler&>(*this));
        std::string error;
        if (!discovery_->connect(seed.host, seed.port, error)) {
            discovery_errors_ += (discovery_errors_.empty() ? "" : "; ") + error;
            continue;
        }
        sendAuth(*discovery_);
        discovery_auth_pending_ = !credentials_.password.empty();
        discovery_->command({"CLUSTER", "SLOTS"});
        return true;
    }
    discovery_.reset();
    fail("no cluster node answered CLUSTER SLOTS: " + discovery_errors_);
    return false;
}

void RedisClusterBroker::sendAuth(RedisLink& link) {
    if (credentials_.password.empty()) return;
    if (credentials_.user.empty()) {
        link.command({"AUTH", credentials_.password});
    } else {
        link.command({"AUTH", credentials_.user, credentials_.password});
    }
}

void RedisClusterBroker::onDiscoveryReply(redisReply* reply) {
    const std::string where = discovery_->host() + ":" + std::to_string(discovery_->port());
    if (discovery_auth_pending_) {
        discovery_auth_pending_ = false;
        if (reply->type == REDIS_REPLY_ERROR) {
            fail("AUTH refused by " + where + ": " + std::string(textOf(reply)));
        }
        return;
    }
    ClusterTopology topology;
    std::string error;
    if (!parseClusterSlots(reply, discovery_->host(), topology, error)) {
        discovery_errors_ += (discovery_errors_.empty() ? "" : "; ") + where + ": " + error;
        discoverNext();
        return;
    }
    discovery_.reset();
    topology_ = std::move(topology);
    startNodes();
}

void RedisClusterBroker::startNodes() {
    nodes_.clear();
    nodes_.resize(topology_.masters.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
        Node& node = nodes_[i];
        node.address = topology_.masters[i];
        for (int tag = 0; tag < kProbeTagTries; ++tag) {
            std::string name = probe_base_ + "{" + std::to_string(tag) + "}";
            if (ownerOf(name) == i) {
                node.probe_channel = std::move(name);
                break;
            }
        }
        for (std::unique_ptr<RedisLink>* link : {&node.sub, &node.cmd}) {
            *link = std::make_unique<RedisLink>(loop_, static_cast<RedisLink::Handler&>(*this));
            std::string error;
            if (!(*link)->connect(node.address.host, node.address.port, error)) {
                fail(std::move(error));
                return;
            }
            sendAuth(**link);
        }
        if (!credentials_.password.empty()) {
            node.sub_auth_pending = 1;
            node.expect.push_back(Expect{Expect::Auth, {}});
        }
    }
    resubscribeAll();
}

// After the topology was (re)read: each master's probe channel, then every channel a local
// subscriber holds, on the master owning it now.
void RedisClusterBroker::resubscribeAll() {
    std::vector<std::pair<uint16_t, std::string>> names;
    names.reserve(channels_.size() + nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i].probe_channel.empty()) {
            names.emplace_back(static_cast<uint16_t>(i), nodes_[i].probe_channel);
        }
    }
    for (auto it = channels_.begin(); it != channels_.end();) {
        Channel& ch = it->second;
        if (!ch.wanted) {
            it = channels_.erase(it);
            continue;
        }
        std::string redis_channel = prefix_ + it->first;
        ch.queued = false;
        ch.remote = Remote::Subscribing;
        ch.node = ownerOf(redis_channel);
        names.emplace_back(ch.node, std::move(redis_channel));
        ++it;
    }
    changed_.clear();
    sendGrouped("SSUBSCRIBE", names);
}

void RedisClusterBroker::maybeUp() {
    if (up_ || nodes_.empty()) return;
    for (const Node& node : nodes_) {
        if (!node.sub->connected() || !node.cmd->connected() || node.sub_auth_pending > 0 ||
            node.pending_confirms > 0 ||
            (!node.expect.empty() && node.expect.front().kind == Expect::Auth)) {
            return;
        }
    }
    up_ = true;
    attempts_ = 0;
    ev_timer_stop(loop_, &setup_timer_);
    if (probe_interval_ms_ > 0) {
        const double interval = probe_interval_ms_ / 1000.0;
        ev_timer_set(&probe_timer_, interval, interval);
        ev_timer_start(loop_, &probe_timer_);
    }
    const bool gap = ever_up_;
    ever_up_ = true;
    handler_.onBrokerState(BrokerState::Up, gap);
}

RedisClusterBroker::Node* RedisClusterBroker::nodeOfLink(const RedisLink& link, bool& is_sub) {
    for (Node& node : nodes_) {
        if (node.sub.get() == &link || node.cmd.get() == &link) {
            is_sub = node.sub.get() == &link;
            return &node;
        }
    }
    return nullptr;
}

void RedisClusterBroker::onLinkConnected(RedisLink&) { maybeUp(); }

void RedisClusterBroker::onLinkReply(RedisLink& link, redisReply* reply) {
    if (&link == discovery_.get()) {
        onDiscoveryReply(reply);
        return;
    }
    bool is_sub = false;
    Node* node = nodeOfLink(link, is_sub);
    if (node == nullptr) return;
    if (is_sub) {
        onSubscriberReply(*node, reply);
    } else {
        onCommandReply(*node, reply);
    }
}

void RedisClusterBroker::onLinkClosed(RedisLink& link, const std::string& reason) {
    if (&link == discovery_.get()) {
        discovery_errors_ += (discovery_errors_.empty() ? "" : "; ") + reason;
        discoverNext();
        return;
    }
    bool is_sub = false;
    Node* node = nodeOfLink(link, is_sub);
    if (node == nullptr) return;
    fail("connection to " + node->address.name() + " lost: " + reason);
}

void RedisClusterBroker::onSubscriberReply(Node& node, redisReply* reply) {
    if (reply->type == REDIS_REPLY_ERROR) {
        const std::string what = node.sub_auth_pending > 0 ? "AUTH" : "SSUBSCRIBE";
        fail(what + " refused by " + node.address.name() + ": " + std::string(textOf(reply)));
        return;
    }
    if (reply->type == REDIS_REPLY_STATUS) {  // AUTH's +OK
        if (node.sub_auth_pending > 0) --node.sub_auth_pending;
        maybeUp();
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const std::string_view kind = textOf(reply->element[0]);
    const std::string_view channel = textOf(reply->element[1]);
    const redisReply* third = reply->element[2];
    if (kind == "smessage" && third->type == REDIS_REPLY_STRING) {
        onMessage(node, channel, textOf(third));
        return;
    }
    const bool is_probe = channel == node.probe_channel;
    Channel* ch = nullptr;
    if (!is_probe && channel.starts_with(prefix_)) {
        auto it = channels_.find(channel.substr(prefix_.size()));
        if (it != channels_.end()) ch = &it->second;
    }
    if (kind == "ssubscribe") {
        if (node.pending_confirms > 0) --node.pending_confirms;
        if (ch != nullptr && ch->remote == Remote::Subscribing) {
            ch->remote = Remote::Subscribed;
            handler_.onSubscribed(channel.substr(prefix_.size()));
        }
        maybeUp();
    } else if (kind == "sunsubscribe") {
        if (ch != nullptr && ch->remote == Remote::Unsubscribing) {
            ch->remote = Remote::None;
            if (!ch->wanted) {
                if (!ch->queued) channels_.erase(std::string(channel.substr(prefix_.size())));
            } else if (!ch->queued) {
                ch->queued = true;
                changed_.emplace_back(channel.substr(prefix_.size()));
            }
            return;
        }
        if (is_probe || (ch != nullptr && ch->remote != Remote::None)) {
            // Not asked for: Redis drops shard subscribers of a slot that moved to another master.
            fail("the slot of " + std::string(channel) + " moved away from " +
                 node.address.name());
        }
    }
}

void RedisClusterBroker::onCommandReply(Node& node, redisReply* reply) {
    if (node.expect.empty()) return;
    const Expect expect = node.expect.front();
    node.expect.pop_front();
    const bool error = reply->type == REDIS_REPLY_ERROR;
    const std::string_view text = error ? textOf(reply) : std::string_view();
    switch (expect.kind) {
        case Expect::Auth:
            if (error) {
                fail("AUTH refused by " + node.address.name() + ": " + std::string(text));
                return;
            }
            maybeUp();
            return;
        case Expect::Probe:
            if (error) {
                fail("probe refused by " + node.address.name() + ": " + std::string(text));
            }
            return;
        case Expect::Publish:
            if (error && isTopologyError(text)) {
                fail("SPUBLISH to " + node.address.name() + ": " + std::string(text));
                handler_.onPublishResult(expect.ticket, PublishStatus::Unavailable);
                return;
            }
            handler_.onPublishResult(expect.ticket,
                                     error ? PublishStatus::Rejected : PublishStatus::Accepted);
            return;
    }
}

void RedisClusterBroker::onMessage(Node& node, std::string_view redis_channel,
                                   std::string_view payload) {
    if (redis_channel == node.probe_channel) {
        onProbe(node, payload);
        return;
    }
    if (!redis_channel.starts_with(prefix_)) return;
    const std::string_view channel = redis_channel.substr(prefix_.size());
    auto it = channels_.find(channel);
    if (it == channels_.end() || !it->second.wanted) return;
    const int64_t entered_us = takeStamp(payload);
    handler_.onBrokerMessage(channel, payload_.toJson(payload), entered_us);
}


void RedisClusterBroker::sendProbes() {
    if (!up_) return;
    for (Node& node : nodes_) {
        if (node.probe_channel.empty()) continue;
        const uint64_t seq = ++probe_seq_;
        const std::string payload = probe_nonce_ + ":" + std::to_string(seq);
        node.cmd->command({"SPUBLISH", node.probe_channel, payload});
        node.expect.push_back(Expect{Expect::Probe, {}});
        node.probes.emplace_back(seq, ev_now(loop_));
    }
    armProbeDeadline();
}

void RedisClusterBroker::armProbeDeadline() {
    ev_timer_stop(loop_, &probe_deadline_);
    bool any = false;
    ev_tstamp oldest = 0;
    for (const Node& node : nodes_) {
        if (node.probes.empty()) continue;
        if (!any || node.probes.front().second < oldest) oldest = node.probes.front().second;
        any = true;
    }
    if (!any) return;
    const double due = oldest + probe_timeout_ms_ / 1000.0 - ev_now(loop_);
    ev_timer_set(&probe_deadline_, std::max(0.0, due), 0.);
    ev_timer_start(loop_, &probe_deadline_);
}

void RedisClusterBroker::onProbe(Node& node, std::string_view payload) {
    const size_t colon = payload.find(':');
    if (colon == std::string_view::npos || payload.substr(0, colon) != probe_nonce_) return;
    uint64_t seq = 0;
    const std::string_view digits = payload.substr(colon + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), seq).ec != std::errc()) {
        return;
    }
    while (!node.probes.empty() && node.probes.front().first <= seq) {
        if (node.probes.front().first == seq) {
            handler_.onBrokerProbe(ev_now(loop_) - node.probes.front().second);
        }
        node.probes.pop_front();
    }
    armProbeDeadline();
}

// As in standalone mode, everything that goes wrong ends here: drop every connection, fail what
// is in flight, and start over from CLUSTER SLOTS after a backoff.
void RedisClusterBroker::fail(std::string reason) {
    if (destroying_) return;
    last_error_ = std::move(reason);
    std::vector<PublishTicket> lost;
    for (const Node& node : nodes_) {
        for (const Expect& e : node.expect) {
            if (e.kind == Expect::Publish) lost.push_back(e.ticket);
        }
    }
    dropLinks();
    ev_timer_stop(loop_, &setup_timer_);
    ev_timer_stop(loop_, &probe_timer_);
    ev_timer_stop(loop_, &probe_deadline_);
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

    if (!ev_is_active(&reconnect_timer_)) {
        const int min_ms = reconnect_min_ms_;
        const int max_ms = std::max(min_ms, reconnect_max_ms_);
        const int64_t cap = std::min<int64_t>(max_ms, int64_t{min_ms} << std::min(attempts_, 20));
        std::uniform_int_distribution<int64_t> jitter(min_ms, std::max<int64_t>(min_ms, cap));
        ++attempts_;
        ev_timer_set(&reconnect_timer_, static_cast<double>(jitter(rng_)) / 1000.0, 0.);
        ev_timer_start(loop_, &reconnect_timer_);
    }

    const bool was_up = up_;
    up_ = false;
    if (was_up) handler_.onBrokerState(BrokerState::Down, false);
    for (const PublishTicket& t : lost) handler_.onPublishResult(t, PublishStatus::Unavailable);
}

// Safe from inside a link's callback: RedisLink notices its own destruction.
void RedisClusterBroker::dropLinks() {
    discovery_.reset();
    nodes_.clear();
}

void RedisClusterBroker::onReconnectTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisClusterBroker*>(w->data)->connect();
}

void RedisClusterBroker::onSetupTimeout(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisClusterBroker*>(w->data);
    std::string reason = "no cluster connection within " +
                         std::to_string(self->probe_timeout_ms_) + " ms";
    if (!self->discovery_errors_.empty()) reason += " (" + self->discovery_errors_ + ")";
    self->fail(std::move(reason));
}

void RedisClusterBroker::onProbeTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisClusterBroker*>(w->data)->sendProbes();
}

void RedisClusterBroker::onProbeDeadline(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisClusterBroker*>(w->data);
    std::string where;
    ev_tstamp oldest = 0;
    for (const Node& node : self->nodes_) {
        if (!node.probes.empty() && (where.empty() || node.probes.front().second < oldest)) {
            oldest = node.probes.front().second;
            where = node.address.name();
        }
    }
    self->fail("delivery probe through " + where + " not received within " +
               std::to_string(self->probe_timeout_ms_) + " ms");
}

}  // namespace wsrelay
