#include "adapters/redis_cluster_broker.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <map>

namespace wsrelay {
namespace {

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
    : RedisBrokerCore(options, worker_index, loop, handler), resolver_(loop) {
    startAttempt();
}

RedisClusterBroker::~RedisClusterBroker() {
    destroying_ = true;
    discovery_.reset();
    nodes_.clear();  // connections call nothing back from their destructors
}

std::vector<std::pair<std::string, std::string>> RedisClusterBroker::probeChannels() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (size_t i = 0; i < nodes_.size(); ++i) {
        out.emplace_back(nodes_[i].address.name(), probeChannel(static_cast<uint16_t>(i)));
    }
    return out;
}

RedisHandshake RedisClusterBroker::handshake() const {
    RedisHandshake h;
    h.user = options_.url.user;
    h.password = options_.url.password;
    return h;  // a cluster has database 0 only
}

uint16_t RedisClusterBroker::shardOf(std::string_view redis_channel) const {
    return topology_.ownerOf(clusterKeySlot(redis_channel));
}

std::string RedisClusterBroker::shardName(uint16_t shard) const {
    return shard < nodes_.size() ? nodes_[shard].address.name() : "";
}

std::string RedisClusterBroker::timeoutReason() const {
    std::string reason = "no cluster connection within " +
                         std::to_string(options_.probe_timeout_ms) + " ms";
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
    discovery_ = std::make_unique<RedisConnection>(loop_, resolver_,
                                                   static_cast<RedisConnection::Handler&>(*this));
    discovery_->connect(seed.host, seed.port, handshake(), options_.probe_timeout_ms / 1000.0);
    discovery_->command({"CLUSTER", "SLOTS"}, [this](RedisStatus s, const redisReply* r) {
        onDiscoveryReply(s, r);
    });
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
    std::vector<std::string> probes(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
        Node& node = nodes_[i];
        node.address = topology_.masters[i];
        for (int tag = 0; tag < kProbeTagTries; ++tag) {
            std::string name = probeBase() + ":{" + std::to_string(tag) + "}";
            if (shardOf(name) == i) {
                probes[i] = std::move(name);
                break;
            }
        }
        for (std::unique_ptr<RedisConnection>* c : {&node.sub, &node.cmd}) {
            *c = std::make_unique<RedisConnection>(loop_, resolver_,
                                                   static_cast<RedisConnection::Handler&>(*this));
            (*c)->connect(node.address.host, node.address.port, handshake(),
                          options_.probe_timeout_ms / 1000.0);
        }
    }
    resubscribeAll(std::move(probes));
}

void RedisClusterBroker::disconnect(std::vector<PublishTicket>& lost) {
    for (const Node& node : nodes_) lost.insert(lost.end(), node.inflight.begin(), node.inflight.end());
    discovery_.reset();
    nodes_.clear();
}

bool RedisClusterBroker::connectionsReady() const {
    if (nodes_.empty()) return false;
    for (const Node& node : nodes_) {
        if (!node.sub->ready() || !node.cmd->ready()) return false;
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

bool RedisClusterBroker::sendPublish(Outgoing& out) {
    const uint16_t shard = shardOf(out.channel);
    if (shard >= nodes_.size()) return false;
    Node& node = nodes_[shard];
    node.cmd->command({"SPUBLISH", out.channel, out.data},
                      [this, shard](RedisStatus s, const redisReply* r) {
                          onPublishReply(shard, s, r);
                      });
    node.inflight.push_back(out.ticket);
    return true;
}

bool RedisClusterBroker::sendProbe(uint16_t shard, const std::string& channel,
                                   const std::string& payload) {
    if (shard >= nodes_.size()) return false;
    const std::string where = nodes_[shard].address.name();
    nodes_[shard].cmd->command({"SPUBLISH", channel, payload},
                               [this, shard](RedisStatus s, const redisReply* r) {
                                   if (s == RedisStatus::Reply && r->type == REDIS_REPLY_ERROR) {
                                       fail("probe refused by " + shardName(shard) + ": " +
                                            std::string(textOf(r)));
                                   }
                               });
    return true;
}

void RedisClusterBroker::onPublishReply(uint16_t shard, RedisStatus status,
                                        const redisReply* reply) {
    // A lost connection fails what is in flight through onClosed.
    if (status != RedisStatus::Reply || shard >= nodes_.size()) return;
    Node& node = nodes_[shard];
    if (node.inflight.empty()) return;
    const PublishTicket ticket = node.inflight.front();
    node.inflight.pop_front();
    const bool error = reply->type == REDIS_REPLY_ERROR;
    if (error && isTopologyError(textOf(reply))) {
        fail("SPUBLISH to " + node.address.name() + ": " + std::string(textOf(reply)));
        handler_.onPublishResult(ticket, PublishStatus::Unavailable);
        return;
    }
    handler_.onPublishResult(ticket, error ? PublishStatus::Rejected : PublishStatus::Accepted);
}

int RedisClusterBroker::nodeOf(const RedisConnection& connection) const {
    for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].sub.get() == &connection || nodes_[i].cmd.get() == &connection) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

void RedisClusterBroker::onReady(RedisConnection&) { maybeUp(); }

void RedisClusterBroker::onPush(RedisConnection& connection, const redisReply& reply) {
    const int index = nodeOf(connection);
    if (index < 0 || nodes_[index].sub.get() != &connection) return;
    const Node& node = nodes_[index];
    if (reply.type == REDIS_REPLY_ERROR) {
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
        deliver(static_cast<uint16_t>(index), channel, textOf(third));
    } else if (kind == "ssubscribe") {
        subscribeConfirmed(channel);
    } else if (kind == "sunsubscribe" && !unsubscribeConfirmed(channel)) {
        // Not asked for: Redis drops shard subscribers of a slot that moved to another master.
        fail("the slot of " + std::string(channel) + " moved away from " + node.address.name());
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
    fail("connection to " + nodes_[index].address.name() + " lost: " + reason);
}

}  // namespace wsrelay
