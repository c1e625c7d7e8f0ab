#pragma once

#include <ev.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/async_resolver.h"
#include "adapters/redis_cluster.h"
#include "adapters/redis_connection.h"

namespace wsrelay {

// Finds the master of a group that Redis Sentinel monitors, and follows it: the sentinel that
// answered stays connected, subscribed to +switch-master. If that connection drops, the
// sentinels are asked again (quietly: only a different master is reported), retrying every
// second while none answers. Sentinels that require a password get AUTH (RedisHandshake; no
// SELECT), and TLS when `tls` is set (broker.redis.sentinel.tls). One per worker, on its loop; its
// destructor calls nothing back.
class RedisSentinel final : private RedisConnection::Handler {
public:
    class Listener {
    public:
        virtual ~Listener() = default;
        // The answer to resolve(): exactly one of these two, possibly before resolve() returns.
        virtual void onMasterFound(const ClusterNode& master) = 0;
        virtual void onMasterUnknown(const std::string& error) = 0;
        // Sentinel promoted another node (or a re-ask after a lost watch found another one).
        virtual void onMasterSwitched(const ClusterNode& master) = 0;
    };

    RedisSentinel(struct ev_loop* loop, AsyncResolver& resolver, std::string master_name,
                  std::vector<ClusterNode> sentinels, RedisHandshake auth, const RedisTls* tls,
                  double timeout_s, Listener& listener);
    ~RedisSentinel() override;
    RedisSentinel(const RedisSentinel&) = delete;
    RedisSentinel& operator=(const RedisSentinel&) = delete;

    // Asks the sentinels in turn: SENTINEL get-master-addr-by-name, then SUBSCRIBE +switch-master.
    void resolve();

private:
    enum class State { Idle, Asking, Watching };

    // RedisConnection::Handler
    void onReady(RedisConnection&) override {}
    void onPush(RedisConnection& connection, const redisReply& reply) override;
    void onClosed(RedisConnection& connection, const std::string& reason) override;

    static void onRetryTimer(struct ev_loop* loop, ev_timer* w, int revents);
    void ask(bool quiet);
    void tryNext();
    void found(const ClusterNode& master);
    void onMasterReply(RedisStatus status, const redisReply* reply);

    struct ev_loop* loop_;
    AsyncResolver& resolver_;
    const std::string master_name_;
    const std::vector<ClusterNode> sentinels_;
    const RedisHandshake auth_;
    const RedisTls* const tls_;
    const double timeout_s_;
    Listener& listener_;
    std::unique_ptr<RedisConnection> link_;
    State state_ = State::Idle;
    bool quiet_ = false;  // a re-ask after a lost watch: report only a different master
    size_t next_ = 0;
    std::string errors_;
    ClusterNode current_;
    ev_timer retry_timer_{};
};

}  // namespace wsrelay
