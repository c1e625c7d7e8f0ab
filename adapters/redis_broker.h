#pragma once

#include <ev.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adapters/broker.h"
#include "adapters/redis_payload.h"
#include "adapters/redis_cluster.h"
#include "adapters/redis_sentinel.h"
#include "adapters/redis_url.h"

struct redisAsyncContext;

namespace wsrelay {

struct RedisBrokerOptions {
    RedisUrl url;  // in cluster and sentinel mode, its host and port are not used
    // Seed nodes of a Redis Cluster; non-empty = cluster mode (sharded pub/sub, see
    // adapters/redis_cluster_broker.h).
    std::vector<ClusterNode> cluster;
    // Sentinel mode when sentinel_master is not empty: the master's address comes from these
    // sentinels (see adapters/redis_sentinel.h).
    std::string sentinel_master;
    std::vector<ClusterNode> sentinels;
    std::string prefix;  // prepended to every client channel name to get the Redis channel name
    int reconnect_min_ms = 100;
    int reconnect_max_ms = 5000;
    int probe_interval_ms = 1000;  // 0 = no delivery probe
    int probe_timeout_ms = 3000;   // also bounds connecting + AUTH + SELECT + SUBSCRIBE
    bool timestamps = true;        // stamp what this relay publishes with its entry time
};

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

// One worker's Redis endpoint: a subscriber connection and a command connection (PUBLISH), both
// hiredis async contexts on the worker's libev loop. Subscriptions are desired state, reconciled
// with Redis once per loop turn in flush() and replayed in full after every reconnect. A delivery
// probe (a PUBLISH to an internal channel this worker subscribes) catches a subscription that
// looks connected but no longer delivers. In sentinel mode every (re)connect first asks Sentinel
// for the master (and checks its ROLE); a +switch-master drops the connections, which then go to
// the new master (Down, then Up with gap). Must be destroyed on its loop thread, outside any of
// its own callbacks, while the loop still exists.
class RedisBroker final : public Broker, private RedisSentinel::Listener {
public:
    RedisBroker(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                BrokerHandler& handler);
    ~RedisBroker() override;
    RedisBroker(const RedisBroker&) = delete;
    RedisBroker& operator=(const RedisBroker&) = delete;

    // adapters::Broker
    void subscribe(std::string_view channel) override;
    void unsubscribe(std::string_view channel) override;
    void publish(std::string_view channel, std::string_view data,
                 const PublishTicket& ticket) override;
    void flush() override;
    bool usable() const override { return up_; }

    // Why the connections were last dropped (for logs and tests); empty if they never were.
    const std::string& lastError() const override { return last_error_; }
    // The Redis channel of the delivery probe: <prefix>__wsrelay_probe:<pid>:<worker>.
    const std::string& probeChannel() const { return probe_channel_; }

private:
    enum class Remote { None, Subscribing, Subscribed, Unsubscribing };
    struct Channel {
        bool wanted = false;
        bool queued = false;  // listed in changed_
        Remote remote = Remote::None;
    };
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using ChannelMap = std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>;
    struct Link {
        redisAsyncContext* ac = nullptr;
        bool connected = false;
        int setup_pending = 0;  // AUTH / SELECT replies still awaited
    };
    struct Outgoing {
        std::string channel;  // Redis channel name (prefixed)
        std::string data;
        PublishTicket ticket;
    };

    // RedisSentinel::Listener
    void onMasterFound(const ClusterNode& master) override;
    void onMasterUnknown(const std::string& error) override;
    void onMasterSwitched(const ClusterNode& master) override;

    static void onConnect(const redisAsyncContext* ac, int status);
    static void onDisconnect(const redisAsyncContext* ac, int status);
    static void onSetupReply(redisAsyncContext* ac, void* reply, void* privdata);
    static void onRoleReply(redisAsyncContext* ac, void* reply, void* privdata);
    static void onPublishReply(redisAsyncContext* ac, void* reply, void* privdata);
    static void onProbeReply(redisAsyncContext* ac, void* reply, void* privdata);
    static void onSubscriberReply(redisAsyncContext* ac, void* reply, void* privdata);
    static void onReconnectTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static void onSetupTimeout(struct ev_loop* loop, ev_timer* w, int revents);
    static void onProbeTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static void onProbeDeadline(struct ev_loop* loop, ev_timer* w, int revents);

    void connect();
    void openLinks();
    bool openLink(Link& link);
    // host:port/db of the server connected to (the master, in sentinel mode).
    std::string target() const;
    void resubscribeAll();
    void sendChannelCommand(const char* command, const std::vector<std::string>& names);
    void applyChanges();
    void maybeUp();
    // hiredis gave up `ac` (it frees it itself): forget it and drop everything.
    void linkLost(const redisAsyncContext* ac, const char* what);
    // The broker a reply belongs to, or null when it is gone or the reply reports a lost link
    // (then already handled).
    static RedisBroker* replyTarget(redisAsyncContext* ac, void* reply);
    void fail(std::string reason);
    void dropLinks();
    Link* linkOf(const redisAsyncContext* ac);
    void onSubscribed(std::string_view redis_channel);
    void onUnsubscribed(std::string_view redis_channel);
    void onMessage(std::string_view redis_channel, std::string_view payload);
    void onProbe(std::string_view payload);
    void sendProbe();
    bool isProbe(std::string_view client_channel) const;

    const RedisBrokerOptions options_;
    const int worker_index_;
    struct ev_loop* loop_;
    BrokerHandler& handler_;
    std::string probe_channel_;
    std::string probe_nonce_;

    std::string host_;  // where the links go: the URL's host, or the master Sentinel named
    int port_ = 0;
    std::unique_ptr<RedisSentinel> sentinel_;
    bool resolving_ = false;  // connect() asked Sentinel and waits for the answer
    Link sub_;
    Link cmd_;
    bool up_ = false;
    bool ever_up_ = false;
    bool destroying_ = false;
    std::string last_error_;

    ChannelMap channels_;  // keyed by client channel name
    std::vector<std::string> changed_;
    size_t pending_confirms_ = 0;  // SUBSCRIBE arguments Redis has not confirmed yet

    std::vector<Outgoing> outbox_;
    std::vector<Outgoing> sending_;
    std::deque<PublishTicket> inflight_;  // PUBLISH replies arrive in order

    uint64_t probe_seq_ = 0;
    std::deque<std::pair<uint64_t, ev_tstamp>> probes_outstanding_;  // seq, sent at

    ev_timer reconnect_timer_{};
    ev_timer setup_timer_{};
    ev_timer probe_timer_{};
    ev_timer probe_deadline_{};
    int attempts_ = 0;
    std::mt19937_64 rng_;

    RedisPayload payload_;
};

}  // namespace wsrelay
