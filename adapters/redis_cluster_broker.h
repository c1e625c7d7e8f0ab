#pragma once

#include <ev.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/async_resolver.h"
#include "adapters/redis_broker_core.h"
#include "adapters/redis_cluster.h"
#include "adapters/redis_connection.h"

namespace wsrelay {

// One worker's Redis Cluster endpoint, using sharded pub/sub: SSUBSCRIBE and SPUBLISH go to the
// master owning the channel's hash slot. The topology comes from CLUSTER SLOTS on any reachable
// seed (or master last seen); each master gets a subscriber and a command connection, and its own
// delivery probe on a channel hashing to one of its slots. Subscriptions, the outbox, backoff and
// probes are RedisBrokerCore's. Losing a subscription (a server-side SUNSUBSCRIBE after a slot
// migration, a lost connection, a late probe) drops every connection, reports Down, and starts
// over from CLUSTER SLOTS after a backoff; the next Up carries gap=true, as in standalone mode.
class RedisClusterBroker final : public RedisBrokerCore, private RedisConnection::Handler {
public:
    RedisClusterBroker(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                       BrokerHandler& handler);
    ~RedisClusterBroker() override;

    // The probe channel of each master of the current topology ("host:port" -> channel).
    std::vector<std::pair<std::string, std::string>> probeChannels() const;

private:
    struct Node {
        ClusterNode address;
        std::unique_ptr<RedisConnection> sub;
        std::unique_ptr<RedisConnection> cmd;
        std::deque<PublishTicket> inflight;  // SPUBLISH replies arrive in order
    };

    // RedisBrokerCore
    void connect() override;
    void disconnect(std::vector<PublishTicket>& lost) override;
    bool connectionsReady() const override;
    uint16_t shardOf(std::string_view redis_channel) const override;
    void sendSubscriptions(bool subscribe, const std::vector<Target>& targets) override;
    bool sendPublish(Outgoing& out) override;
    bool sendProbe(uint16_t shard, const std::string& channel,
                   const std::string& payload) override;
    std::string shardName(uint16_t shard) const override;
    std::string timeoutReason() const override;

    // RedisConnection::Handler
    void onReady(RedisConnection& connection) override;
    void onPush(RedisConnection& connection, const redisReply& reply) override;
    void onClosed(RedisConnection& connection, const std::string& reason) override;

    void discoverNext();
    void onDiscoveryReply(RedisStatus status, const redisReply* reply);
    void startNodes();
    void onPublishReply(uint16_t shard, RedisStatus status, const redisReply* reply);
    // The index of the node `connection` belongs to, or -1.
    int nodeOf(const RedisConnection& connection) const;
    RedisHandshake handshake() const;

    AsyncResolver resolver_;

    // Discovery: CLUSTER SLOTS on one candidate at a time.
    std::unique_ptr<RedisConnection> discovery_;
    std::vector<ClusterNode> candidates_;
    size_t candidate_ = 0;
    std::string discovery_errors_;

    ClusterTopology topology_;
    std::vector<Node> nodes_;  // one per master of topology_, same index
};

}  // namespace wsrelay
