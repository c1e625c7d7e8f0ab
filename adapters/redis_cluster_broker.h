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
#include "adapters/redis_link.h"
#include "adapters/redis_url.h"

namespace wsrelay {

struct RedisBrokerOptions;

// One worker's Redis Cluster endpoint, using sharded pub/sub: SSUBSCRIBE and SPUBLISH go to the
// master owning the channel's hash slot. The topology comes from CLUSTER SLOTS on any reachable
// seed (or master last seen); each master gets a subscriber and a command connection. Any sign
// that the topology moved (MOVED/ASK, a server-side SUNSUBSCRIBE after a slot migration, a lost
// connection, a late delivery probe) drops every connection, reports Down, and starts over from
// CLUSTER SLOTS after a backoff; the next Up carries gap=true, as in standalone mode. Each master
// gets its own delivery probe on a channel hashing to one of its slots.
// Must be destroyed on its loop thread, outside its own callbacks, while the loop still exists.
class RedisClusterBroker final : public Broker, private RedisLink::Handler {
public:
    RedisClusterBroker(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                       BrokerHandler& handler);
    ~RedisClusterBroker() override;
    RedisClusterBroker(const RedisClusterBroker&) = delete;
    RedisClusterBroker& operator=(const RedisClusterBroker&) = delete;

    // adapters::Broker
    void subscribe(std::string_view channel) override;
    void unsubscribe(std::string_view channel) override;
    void publish(std::string_view channel, std::string_view data,
                 const PublishTicket& ticket) override;
    void flush() override;
    bool usable() const override { return up_; }

    // Why the connections were last dropped (for logs and tests); empty if they never were.
    const std::string& lastError() const override { return last_error_; }
    // The probe channel of each master of the current topology ("host:port" -> channel).
    std::vector<std::pair<std::string, std::string>> probeChannels() const;

private:
    enum class Remote { None, Subscribing, Subscribed, Unsubscribing };
    struct Channel {
        bool wanted = false;
        bool queued = false;
        Remote remote = Remote::None;
        uint16_t node = 0;  // the master it is (being) subscribed on, while remote != None
    };
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using ChannelMap = std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>;
    // What the next reply on a command connection answers.
    struct Expect {
        enum Kind { Auth, Publish, Probe } kind;
        PublishTicket ticket;
    };
    struct Node {
        ClusterNode address;
        std::unique_ptr<RedisLink> sub;
        std::unique_ptr<RedisLink> cmd;
        int sub_auth_pending = 0;
        std::deque<Expect> expect;  // command connection replies, in order
        size_t pending_confirms = 0;
        std::string probe_channel;  // empty: no slot found for one (never in practice)
        std::deque<std::pair<uint64_t, ev_tstamp>> probes;  // seq, sent at
    };
    struct Outgoing {
        std::string channel;
        std::string data;
        PublishTicket ticket;
    };

    // RedisLink::Handler
    void onLinkConnected(RedisLink& link) override;
    void onLinkReply(RedisLink& link, redisReply* reply) override;
    void onLinkClosed(RedisLink& link, const std::string& reason) override;

    static void onReconnectTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static void onSetupTimeout(struct ev_loop* loop, ev_timer* w, int revents);
    static void onProbeTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static void onProbeDeadline(struct ev_loop* loop, ev_timer* w, int revents);

    void connect();
    bool discoverNext();
    void onDiscoveryReply(redisReply* reply);
    void startNodes();
    void sendAuth(RedisLink& link);
    void resubscribeAll();
    void applyChanges();
    void sendGrouped(const char* command, std::vector<std::pair<uint16_t, std::string>>& names);
    void maybeUp();
    void fail(std::string reason);
    void dropLinks();
    Node* nodeOfLink(const RedisLink& link, bool& is_sub);
    void onSubscriberReply(Node& node, redisReply* reply);
    void onCommandReply(Node& node, redisReply* reply);
    void onMessage(Node& node, std::string_view redis_channel, std::string_view payload);
    void onProbe(Node& node, std::string_view payload);
    void sendProbes();
    void armProbeDeadline();
    uint16_t ownerOf(std::string_view redis_channel) const;

    const std::string prefix_;
    const RedisUrl credentials_;
    const std::vector<ClusterNode> seeds_;
    const int reconnect_min_ms_;
    const int reconnect_max_ms_;
    const int probe_interval_ms_;
    const int probe_timeout_ms_;
    const bool timestamps_;
    const int worker_index_;
    struct ev_loop* loop_;
    BrokerHandler& handler_;
    std::string probe_base_;
    std::string probe_nonce_;

    // Discovery: CLUSTER SLOTS on one candidate at a time.
    std::unique_ptr<RedisLink> discovery_;
    std::vector<ClusterNode> candidates_;
    size_t candidate_ = 0;
    bool discovery_auth_pending_ = false;
    std::string discovery_errors_;

    ClusterTopology topology_;
    bool have_topology_ = false;
    std::vector<Node> nodes_;  // one per master of topology_, same index

    bool up_ = false;
    bool ever_up_ = false;
    bool destroying_ = false;
    std::string last_error_;

    ChannelMap channels_;
    std::vector<std::string> changed_;

    std::vector<Outgoing> outbox_;
    std::vector<Outgoing> sending_;

    uint64_t probe_seq_ = 0;
    ev_timer reconnect_timer_{};
    ev_timer setup_timer_{};
    ev_timer probe_timer_{};
    ev_timer probe_deadline_{};
    int attempts_ = 0;
    std::mt19937_64 rng_;

    RedisPayload payload_;
};

}  // namespace wsrelay
