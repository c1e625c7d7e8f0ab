#pragma once

#include <ev.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/redis_cluster.h"
#include "adapters/redis_link.h"

namespace wsrelay {

// Finds the master of a group that Redis Sentinel monitors, and follows it: the sentinel that
// answered stays connected, subscribed to +switch-master. If that connection drops, the
// sentinels are asked again (quietly: only a different master is reported), retrying every
// second while none answers. Sentinels are reached without AUTH. One per worker, on its loop.
class RedisSentinel final : private RedisLink::Handler {
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

    RedisSentinel(struct ev_loop* loop, std::string master_name,
                  std::vector<ClusterNode> sentinels, Listener& listener);
    ~RedisSentinel() override;
    RedisSentinel(const RedisSentinel&) = delete;
    RedisSentinel& operator=(const RedisSentinel&) = delete;

    // Asks the sentinels in turn: SENTINEL get-master-addr-by-name, then SUBSCRIBE +switch-master.
    void resolve();

private:
    enum class State { Idle, Asking, Watching };

    // RedisLink::Handler
    void onLinkConnected(RedisLink&) override {}
    void onLinkReply(RedisLink& link, redisReply* reply) override;
    void onLinkClosed(RedisLink& link, const std::string& reason) override;

    static void onRetryTimer(struct ev_loop* loop, ev_timer* w, int revents);
    void ask(bool quiet);
    void tryNext();
    void found(const ClusterNode& master);

    struct ev_loop* loop_;
    const std::string master_name_;
    const std::vector<ClusterNode> sentinels_;
    Listener& listener_;
    std::unique_ptr<RedisLink> link_;
    State state_ = State::Idle;
    bool quiet_ = false;  // a re-ask after a lost watch: report only a different master
    size_t next_ = 0;
    std::string errors_;
    ClusterNode current_;
    ev_timer retry_timer_{};
};

}  // namespace wsrelay
