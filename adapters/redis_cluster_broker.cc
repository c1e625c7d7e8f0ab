#include "adapters/redis_cluster_broker.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <map>

namespace wsrelay {
namespace {

// A probe channel is searched for by trying hash tags; a master owning very few slots may need
// many tries, and one whose slots no tag reaches within this bound gets no probe.
constexpr int kProbeTagTries = 1 << 16;

std::string_view textOf(const redisReply* r) { return std::string_view(r->str, r->len); }

// Nodes one attempt may open: the masters plus those redirects name. Far above any real cluster;
// it only bounds what a misbehaving one can make a worker open.
constexpr size_t kMaxNodes = 1024;

bool isRedirect(std::string_view error) {
    return error.starts_with("MOVED ") || error.starts_with("ASK ");
}

bool isTopologyError(std::string_view error) {
    return isRedirect(error) || error.starts_with("CLUSTERDOWN") || error.starts_with("TRYAGAIN");
}

// "MOVED <slot> <host>:<port>" or "ASK ...". An empty host means the node's own (`asked_host`).
bool parseRedirect(std::string_view error, const std::string& asked_host, uint16_t& slot,
                   ClusterNode& node) {
    const size_t first = error.find(' ');
    const size_t second = error.find(' ', first + 1);
    if (first == std::string_view::npos || second == std::string_view::npos) return false;
    const std::string_view digits = error.substr(first + 1, second - first - 1);
    unsigned value = 0;
    if (std::from_chars(digits.data(), digits.data() + digits.size(), value).ec != std::errc() ||
        value >= static_cast<unsigned>(kClusterSlots)) {
        return false;
    }
    slot = static_cast<uint16_t>(value);
    std::string address(error.substr(second + 1));
    if (address.starts_with(':')) address = asked_host + address;
    std::string ignored;
    return parseHostPort(address, node, ignored);
}

}  // namespace

RedisClusterBroker::RedisClusterBroker(const RedisBrokerOptions& options, int worker_index,
                                       struct ev_loop* loop, BrokerHandler& handler)
    : RedisBrokerCore(options, worker_index, loop, handler), resolver_(loop) {
    ev_init(&refresh_timer_, onRefreshTimer);
    refresh_timer_.data = this;
    startAttempt();
}

RedisClusterBroker::~RedisClusterBroker() {
    destroying_ = true;
    ev_timer_stop(loop_, &refresh_timer_);
    discovery_.reset();
    nodes_.clear();  // connections call nothing back from their destructors
}

std::vector<std::pair<std::string, std::string>> RedisClusterBroker::probeChannels() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].retired) continue;
        out.emplace_back(nodes_[i].address.name(), probeChannel(static_cast<uint16_t>(i)));
    }
    return out;
}

std::string RedisClusterBroker::routeOf(std::string_view channel) const {
    return shardName(shardOf(options_.prefix + std::string(channel)));
}

RedisHandshake RedisClusterBroker::handshake() const {
    RedisHandshake h;
    h.user = options_.url.user;
    h.password = options_.url.password;
    return h;  // a cluster has database 0 only
}

uint16_t RedisClusterBroker::shardOf(std::string_view redis_channel) const {
    return route_.empty() ? ClusterTopology::kNoOwner : route_[clusterKeySlot(redis_channel)];
}

std::string RedisClusterBroker::shardName(uint16_t shard) const {
    return shard < nodes_.size() ? nodes_[shard].address.name() : "";
}

std::string RedisClusterBroker::timeoutReason() const {
    std::string reason =
        "no cluster connection within " + std::to_string(options_.probe_timeout_ms) + " ms";
    if (!discovery_errors_.empty()) reason += " (" + discovery_errors_ + ")";
    return reason;
}

void RedisClusterBroker::connect() {
    // The seeds first, then every master last seen, in case the seeds are gone.
    candidates_ = options_.cluster;
    for (const ClusterNode& master : topology_.masters) {
        if (std::find(candidates_.begin(), candidates_.end(), master) == candidates_.end()) {
            candidates_.push_back(master);
        }
    }
    candidate_ = 0;
    discovery_errors_.clear();
    discoverNext();
}

void RedisClusterBroker::discoverNext() {
    if (candidate_ >= candidates_.size()) {
        discovery_.reset();
        fail("no cluster node answered CLUSTER SLOTS: " + discovery_errors_);
        return;
    }
    const ClusterNode& seed = candidates_[candidate_++];
    discovery_ = std::make_unique<RedisConnection>(
        loop_, resolver_, static_cast<RedisConnection::Handler&>(*this), options_.tls.get());
    discovery_->connect(seed.host, seed.port, handshake(), options_.probe_timeout_ms / 1000.0);
    discovery_->command({"CLUSTER", "SLOTS"},
                        [this](RedisStatus s, const redisReply* r) { onDiscoveryReply(s, r); });
}

void RedisClusterBroker::onDiscoveryReply(RedisStatus status, const redisReply* reply) {
    if (status != RedisStatus::Reply) return;  // onClosed tries the next candidate
    ClusterTopology topology;
    std::string error;
    if (!parseClusterSlots(reply, discovery_->host(), topology, error)) {
        discovery_errors_ +=
            (discovery_errors_.empty() ? "" : "; ") + discovery_->name() + ": " + error;
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
    route_ = topology_.owner;
    std::vector<std::string> probes(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
        nodes_[i].address = topology_.masters[i];
        open(static_cast<uint16_t>(i));
        probes[i] = chooseProbe(static_cast<uint16_t>(i));
    }
    if (options_.cluster_refresh_ms > 0) {
        const double interval = options_.cluster_refresh_ms / 1000.0;
        ev_timer_set(&refresh_timer_, interval, interval);
        ev_timer_start(loop_, &refresh_timer_);
    }
    resubscribeAll(std::move(probes));
}

void RedisClusterBroker::open(uint16_t index) {
    Node& node = nodes_[index];
    node.retired = false;
    node.loading = false;
    for (std::unique_ptr<RedisConnection>* c : {&node.sub, &node.cmd}) {
        *c = std::make_unique<RedisConnection>(
            loop_, resolver_, static_cast<RedisConnection::Handler&>(*this), options_.tls.get());
        (*c)->connect(node.address.host, node.address.port, handshake(),
                      options_.probe_timeout_ms / 1000.0);
    }
    // Before any FCALL queued on this connection.
    loadFunctions(index);
}

void RedisClusterBroker::loadFunctions(uint16_t shard) {
    if (!options_.functions || shard >= nodes_.size()) return;
    Node& node = nodes_[shard];
    if (node.loading || !node.cmd) return;
    node.loading = true;
    node.cmd->command({"FUNCTION", "LOAD", "REPLACE", library()},
                      [this, shard](RedisStatus s, const redisReply* r) {
                          if (!functionsLoaded(shard, s, r)) return;
                          nodes_[shard].loading = false;
                          maybeUp();
                      });
}

std::string RedisClusterBroker::chooseProbe(uint16_t index) const {
    for (int tag = 0; tag < kProbeTagTries; ++tag) {
        std::string name = probeBase() + ":{" + std::to_string(tag) + "}";
        if (shardOf(name) == index) return name;
    }
    return "";
}

uint16_t RedisClusterBroker::nodeFor(const ClusterNode& address) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
        Node& node = nodes_[i];
        if (node.address != address) continue;
        if (node.retired && node.inflight.empty()) {
            open(static_cast<uint16_t>(i));  // closed when retired
        } else {
            node.retired = false;  // still open for what is in flight
        }
        return static_cast<uint16_t>(i);
    }
    if (nodes_.size() >= kMaxNodes) return ClusterTopology::kNoOwner;
    nodes_.emplace_back();
    nodes_.back().address = address;
    open(static_cast<uint16_t>(nodes_.size() - 1));
    return static_cast<uint16_t>(nodes_.size() - 1);
}

// A master left without slots: nothing is subscribed there any more (Redis dropped it with the
// slots), so its connections close once its last publish is answered.
void RedisClusterBroker::retire(uint16_t index) {
    Node& node = nodes_[index];
    node.retired = true;
    setProbe(index, "");
    subscriptionsGone(index, [](std::string_view) { return true; });
    if (!node.inflight.empty()) return;
    node.sub->close("it owns no slot any more");
    node.cmd->close("it owns no slot any more");
}

void RedisClusterBroker::requestReload() {
    if (reloading_) {
        reload_again_ = true;
        return;
    }
    for (size_t i = 0; i < nodes_.size(); ++i) {
        Node& node = nodes_[i];
        if (node.retired || !node.cmd->ready()) continue;
        reloading_ = true;
        reload_again_ = false;
        const auto index = static_cast<uint16_t>(i);
        node.cmd->command({"CLUSTER", "SLOTS"}, [this, index](RedisStatus s, const redisReply* r) {
            onReloadReply(index, s, r);
        });
        return;
    }
    reload_again_ = true;  // no live connection yet: onReady asks again
}

void RedisClusterBroker::onReloadReply(uint16_t index, RedisStatus status,
                                       const redisReply* reply) {
    reloading_ = false;
    if (status != RedisStatus::Reply) {
        reload_again_ = true;  // onClosed decides what the lost connection means
        return;
    }
    ClusterTopology topology;
    std::string error;
    if (parseClusterSlots(reply, nodes_[index].address.host, topology, error)) {
        adopt(std::move(topology));
    } else {
        setLastError("CLUSTER SLOTS reload from " + nodes_[index].address.name() + ": " + error);
    }
    if (reload_again_ && !nodes_.empty()) {
        reload_again_ = false;
        requestReload();
    }
}

void RedisClusterBroker::adopt(ClusterTopology topology) {
    std::vector<uint16_t> index_of(topology.masters.size());
    for (size_t m = 0; m < topology.masters.size(); ++m) {
        index_of[m] = nodeFor(topology.masters[m]);
        if (index_of[m] == ClusterTopology::kNoOwner) {
            fail("more than " + std::to_string(kMaxNodes) + " cluster nodes");
            return;
        }
    }
    std::vector<bool> owns(nodes_.size(), false);
    for (int slot = 0; slot < kClusterSlots; ++slot) {
        route_[slot] = index_of[topology.owner[slot]];
        owns[route_[slot]] = true;
    }
    topology_ = std::move(topology);
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const auto index = static_cast<uint16_t>(i);
        if (!owns[i]) {
            if (!nodes_[i].retired) retire(index);
            continue;
        }
        const std::string& probe = probeChannel(index);
        if (probe.empty() || shardOf(probe) != index) setProbe(index, chooseProbe(index));
    }
    rehome();
}

void RedisClusterBroker::onRefreshTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisClusterBroker*>(w->data)->requestReload();
}

void RedisClusterBroker::disconnect(std::vector<Awaited>& lost) {
    // In the order they were published, as far as it is known: in flight first, then waiting.
    for (const Node& node : nodes_) {
        for (const Pending& p : node.inflight) lost.push_back(p.out.awaited);
    }
    for (const auto& [slot, flow] : flows_) {
        for (const Pending& p : flow.held) lost.push_back(p.out.awaited);
    }
    ev_timer_stop(loop_, &refresh_timer_);
    flows_.clear();
    reloading_ = false;
    reload_again_ = false;
    discovery_.reset();
    nodes_.clear();
    route_.clear();
}

bool RedisClusterBroker::connectionsReady() const {
    if (nodes_.empty()) return false;
    for (const Node& node : nodes_) {
        if (!node.retired && (!node.sub->ready() || !node.cmd->ready() || node.loading)) {
            return false;
        }
    }
    return true;
}

// SSUBSCRIBE needs every name of one command in one slot (CROSSSLOT otherwise): grouped by
// master and slot, then batched.
void RedisClusterBroker::sendSubscriptions(bool subscribe, const std::vector<Target>& targets) {
    std::map<std::pair<uint16_t, uint16_t>, std::vector<std::string_view>> groups;
    for (const Target& t : targets) {
        groups[{t.shard, clusterKeySlot(t.redis_channel)}].push_back(t.redis_channel);
    }
    for (const auto& [key, names] : groups) {
        RedisConnection& sub = *nodes_[key.first].sub;
        inBatches(subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE", names,
                  [&sub](const std::vector<std::string_view>& args) { sub.command(args); });
    }
}

bool RedisClusterBroker::sendCommand(Outgoing& out) {
    if (route_.empty()) return false;
    Pending pending;
    pending.slot = clusterKeySlot(out.channel);
    pending.out = std::move(out);
    if (route(std::move(pending))) return true;
    out.awaited = pending.out.awaited;  // route() leaves a refused command whole
    return false;
}

bool RedisClusterBroker::route(Pending&& pending) {
    const uint16_t target = route_[pending.slot];
    auto it = flows_.find(pending.slot);
    if (it == flows_.end()) {
        it = flows_.emplace(pending.slot, SlotFlow{}).first;
    } else if (SlotFlow& flow = it->second;
               flow.redirected || !flow.held.empty() || flow.node != target) {
        // Earlier publishes of this slot are redirected, or went to the slot's previous owner
        // (which may redirect them): this one waits until they are all answered.
        if (flow.held.size() >= kMaxHeldPerSlot) {
            setLastError("SPUBLISH " + pending.out.channel + ": more than " +
                         std::to_string(kMaxHeldPerSlot) +
                         " publishes of its slot wait behind a redirect");
            return false;
        }
        flow.held.push_back(std::move(pending));
        return true;
    }
    it->second.node = target;
    ++it->second.inflight;
    transmit(target, std::move(pending), false);
    return true;
}

void RedisClusterBroker::transmit(uint16_t index, Pending&& pending, bool asking) {
    Node& node = nodes_[index];
    node.inflight.push_back(std::move(pending));
    const Outgoing& out = node.inflight.back().out;
    // ASKING lets the importing node serve the next command of this connection, that one only.
    if (asking) node.cmd->command({"ASKING"}, [](RedisStatus, const redisReply*) {});
    FcallNumbers numbers;
    node.cmd->command(commandArgs(out, numbers), [this, index](RedisStatus s, const redisReply* r) {
        onPublishReply(index, s, r);
    });
}

void RedisClusterBroker::onPublishReply(uint16_t index, RedisStatus status,
                                        const redisReply* reply) {
    // A lost connection fails what is in flight through onClosed.
    if (status != RedisStatus::Reply || index >= nodes_.size()) return;
    Node& node = nodes_[index];
    if (node.inflight.empty()) return;
    Pending pending = std::move(node.inflight.front());
    node.inflight.pop_front();
    if (node.retired && node.inflight.empty()) {
        node.sub->close("it owns no slot any more");
        node.cmd->close("it owns no slot any more");
    }
    const bool error = reply->type == REDIS_REPLY_ERROR;
    if (error && isRedirect(textOf(reply))) {
        redirect(index, std::move(pending), textOf(reply));
        return;
    }
    if (error && isTopologyError(textOf(reply))) {
        fail(std::string(commandName(pending.out)) + " to " + node.address.name() + ": " +
             std::string(textOf(reply)));
        unavailable(pending.out.awaited);
        return;
    }
    finish(index, std::move(pending), reply);
}

void RedisClusterBroker::redirect(uint16_t from, Pending&& pending, std::string_view error) {
    const std::string what = std::string(commandName(pending.out)) + " " + pending.out.channel +
                             ": " + std::string(error);
    if (++pending.hops > kMaxRedirects) {
        setLastError(what + " (more than " + std::to_string(kMaxRedirects) + " redirects)");
        finish(from, std::move(pending), nullptr);
        return;
    }
    uint16_t slot = 0;
    ClusterNode address;
    if (!parseRedirect(error, nodes_[from].address.host, slot, address)) {
        setLastError(what + " (unreadable redirect)");
        finish(from, std::move(pending), nullptr);
        return;
    }
    const uint16_t target = nodeFor(address);
    if (target == ClusterTopology::kNoOwner) {
        setLastError(what + " (more than " + std::to_string(kMaxNodes) + " cluster nodes)");
        finish(from, std::move(pending), nullptr);
        return;
    }
    const bool ask = error.starts_with("ASK ");
    if (!ask) {
        // The slot moved for good: later publishes go there at once, the rest of the map follows.
        route_[slot] = target;
        requestReload();
    }
    auto flow = flows_.find(pending.slot);
    if (flow != flows_.end()) flow->second.redirected = true;
    transmit(target, std::move(pending), ask);
}

void RedisClusterBroker::finish(uint16_t shard, Pending&& pending, const redisReply* reply) {
    if (reply != nullptr) {
        complete(shard, pending.out.awaited, *reply);
    } else {
        unavailable(pending.out.awaited);
    }
    auto it = flows_.find(pending.slot);
    if (it == flows_.end()) return;
    SlotFlow& flow = it->second;
    if (flow.inflight > 0) --flow.inflight;
    if (flow.inflight > 0) return;
    std::deque<Pending> held = std::move(flow.held);
    flows_.erase(it);
    for (Pending& p : held) {
        if (!route(std::move(p))) unavailable(p.out.awaited);
    }
}

bool RedisClusterBroker::sendProbe(uint16_t shard, const std::string& channel,
                                   const std::string& payload) {
    if (shard >= nodes_.size()) return false;
    nodes_[shard].cmd->command(
        {"SPUBLISH", channel, payload}, [this, shard](RedisStatus s, const redisReply* r) {
            if (s != RedisStatus::Reply || r->type != REDIS_REPLY_ERROR) {
                return;
            }
            if (isRedirect(textOf(r))) {
                // Its slot moved: the reloaded map gives it a new one.
                requestReload();
                return;
            }
            fail("probe refused by " + shardName(shard) + ": " + std::string(textOf(r)));
        });
    return true;
}

int RedisClusterBroker::nodeOf(const RedisConnection& connection) const {
    for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].sub.get() == &connection || nodes_[i].cmd.get() == &connection) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

void RedisClusterBroker::onReady(RedisConnection&) {
    if (reload_again_ && !reloading_) requestReload();
    maybeUp();
}

void RedisClusterBroker::onPush(RedisConnection& connection, const redisReply& reply) {
    const int index = nodeOf(connection);
    if (index < 0 || nodes_[index].sub.get() != &connection) return;
    const Node& node = nodes_[index];
    const auto shard = static_cast<uint16_t>(index);
    if (reply.type == REDIS_REPLY_ERROR) {
        uint16_t slot = 0;
        ClusterNode ignored;
        if (isRedirect(textOf(&reply)) &&
            parseRedirect(textOf(&reply), node.address.host, slot, ignored)) {
            // An (S)SUBSCRIBE sent by a map older than the move: every name of one command is in
            // one slot, so those of that slot are subscribed again once the map is reloaded.
            subscriptionsGone(shard, [slot](std::string_view redis_channel) {
                return clusterKeySlot(redis_channel) == slot;
            });
            requestReload();
            return;
        }
        fail("SSUBSCRIBE refused by " + node.address.name() + ": " + std::string(textOf(&reply)));
        return;
    }
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3 ||
        reply.element[0]->type != REDIS_REPLY_STRING ||
        reply.element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const std::string_view kind = textOf(reply.element[0]);
    const std::string_view channel = textOf(reply.element[1]);
    const redisReply* third = reply.element[2];
    if (kind == "smessage" && third->type == REDIS_REPLY_STRING) {
        deliver(shard, channel, textOf(third));
    } else if (kind == "ssubscribe") {
        subscribeConfirmed(channel);
    } else if (kind == "sunsubscribe" && !unsubscribeConfirmed(shard, channel)) {
        // Not asked for: Redis drops shard subscribers of a slot that moved to another master.
        if (channel == probeChannel(shard)) {
            setProbe(shard, "");  // adopt() picks one in a slot the node still owns
        } else {
            subscriptionLost(shard, channel);
        }
        requestReload();
    }
}

void RedisClusterBroker::onClosed(RedisConnection& connection, const std::string& reason) {
    if (&connection == discovery_.get()) {
        discovery_errors_ += (discovery_errors_.empty() ? "" : "; ") + reason;
        discoverNext();
        return;
    }
    const int index = nodeOf(connection);
    if (index < 0) return;
    Node& node = nodes_[index];
    if (node.retired) {
        // Nothing is subscribed there; what was still in flight is lost.
        std::deque<Pending> lost = std::move(node.inflight);
        node.inflight.clear();
        if (!lost.empty()) {
            setLastError("connection to " + node.address.name() + " lost: " + reason);
        }
        for (Pending& p : lost) finish(static_cast<uint16_t>(index), std::move(p), nullptr);
        return;
    }
    fail("connection to " + node.address.name() + " lost: " + reason);
}

}  // namespace wsrelay
