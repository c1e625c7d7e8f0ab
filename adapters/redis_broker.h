#pragma once

#include <ev.h>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/async_resolver.h"
#include "adapters/broker.h"
#include "adapters/redis_broker_core.h"
#include "adapters/redis_connection.h"
#include "adapters/redis_sentinel.h"

namespace wsrelay {

// Makes one RedisBroker (or RedisClusterBroker, with cluster seeds) per worker; it only copies
// the options, so create() is thread-safe.
class RedisBrokerFactory final : public BrokerFactory {
public:
    explicit RedisBrokerFactory(RedisBrokerOptions options);

    // adapters::BrokerFactory
    BrokerPtr create(int worker_index, struct ev_loop* loop, BrokerHandler& handler) override;

private:
    const RedisBrokerOptions options_;
};

// One worker's standalone Redis endpoint: a subscriber and a command connection (PUBLISH, FCALL),
// both RedisConnections on the worker's libev loop; subscriptions, the outbox, backoff and the
// probe are RedisBrokerCore's. Up waits for the function library's FUNCTION LOAD on the command
// connection, too. In sentinel mode every (re)connect first asks Sentinel for the master
// (and checks its ROLE); a +switch-master drops the connections, which then go to the new master
// (Down, then Up with gap).
class RedisBroker final : public RedisBrokerCore,
                          private RedisConnection::Handler,
                          private RedisSentinel::Listener {
public:
    RedisBroker(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                BrokerHandler& handler);
    ~RedisBroker() override;

    // The Redis channel of the delivery probe: <prefix>__wsrelay_probe:<pid>:<worker>.
    const std::string& probeChannel() const { return probeBase(); }

private:
    // RedisBrokerCore
    void connect() override;
    void disconnect(std::vector<Awaited>& lost) override;
    bool connectionsReady() const override;
    uint16_t shardOf(std::string_view) const override { return 0; }
    void sendSubscriptions(bool subscribe, const std::vector<Target>& targets) override;
    bool sendCommand(Outgoing& out) override;
    void loadFunctions(uint16_t shard) override;
    bool sendProbe(uint16_t shard, const std::string& channel, const std::string& payload) override;
    std::string shardName(uint16_t) const override { return ""; }
    std::string timeoutReason() const override;

    // RedisConnection::Handler
    void onReady(RedisConnection& connection) override;
    void onPush(RedisConnection& connection, const redisReply& reply) override;
    void onClosed(RedisConnection& connection, const std::string& reason) override;

    // RedisSentinel::Listener
    void onMasterFound(const ClusterNode& master) override;
    void onMasterUnknown(const std::string& error) override;
    void onMasterSwitched(const ClusterNode& master) override;

    void openConnections();
    void onCommandReply(RedisStatus status, const redisReply* reply);
    void onRoleReply(RedisStatus status, const redisReply* reply);
    // host:port/db of the server connected to (the master, in sentinel mode).
    std::string target() const;

    AsyncResolver resolver_;
    std::string host_;  // where the connections go: the URL's host, or the master Sentinel named
    int port_ = 0;
    std::unique_ptr<RedisSentinel> sentinel_;
    bool resolving_ = false;  // connect() asked Sentinel and waits for the answer
    bool role_pending_ = false;
    bool loading_ = false;  // FUNCTION LOAD in flight on cmd_
    std::unique_ptr<RedisConnection> sub_;
    std::unique_ptr<RedisConnection> cmd_;
    std::deque<Awaited> inflight_;  // replies arrive in order
};

}  // namespace wsrelay
