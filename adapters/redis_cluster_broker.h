#pragma once

#include <ev.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
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
// probes are RedisBrokerCore's.
//
// History publishes and reads (FCALL of the function library, which every master's command
// connection loads first; Up waits for it) and fleet calls (SPUBLISH or FCALL on their key's
// slot: the fleet's keys share the `{fleet}` tag's) go the way SPUBLISH goes, slot flows and
// redirects included, so a read or a call never overtakes a publish of its slot.
//
// Slot moves are followed without a reconnect. A MOVED or ASK reply to an SPUBLISH sends it again
// to the node named (ASK: behind ASKING), opening connections to a master not known yet, at most
// kMaxRedirects times; a publish of a slot never overtakes one of the same slot being redirected
// (it waits in that slot's SlotFlow). A MOVED reloads CLUSTER SLOTS in the background on a live
// command connection, as do a server-side SUNSUBSCRIBE (the slot of a subscribed channel moved)
// and, every cluster_refresh_ms, a timer. A reloaded map moves each subscription to its new owner
// (RedisBrokerCore::rehome), opens new masters and closes masters left without slots; channels
// that were live and moved make the handler hear Up with gap once they are live again (the only
// gap notice the contract has), never Down. A lost connection to a master that owns slots, a late
// probe or CLUSTERDOWN still drop every connection, report Down, and start over from CLUSTER
// SLOTS after a backoff; the next Up carries gap=true, as in standalone mode.
class RedisClusterBroker final : public RedisBrokerCore, private RedisConnection::Handler {
public:
    RedisClusterBroker(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                       BrokerHandler& handler);
    ~RedisClusterBroker() override;

    // The probe channel of each master of the current topology ("host:port" -> channel).
    std::vector<std::pair<std::string, std::string>> probeChannels() const;
    // Where a publish on client channel `channel` goes now ("host:port"; "" while not connected).
    std::string routeOf(std::string_view channel) const;

    // Redirects (MOVED or ASK) one publish may follow; one more reports it Unavailable.
    static constexpr int kMaxRedirects = 3;
    // Publishes of one slot that may wait behind a redirect; more are reported Unavailable.
    static constexpr size_t kMaxHeldPerSlot = 10000;

private:
    // An SPUBLISH (or FCALL) waiting for its reply, kept whole so that a redirect can send it
    // again.
    struct Pending {
        Outgoing out;
        uint16_t slot = 0;
        int hops = 0;
    };
    struct Node {
        ClusterNode address;
        std::unique_ptr<RedisConnection> sub;
        std::unique_ptr<RedisConnection> cmd;
        std::deque<Pending> inflight;  // SPUBLISH replies arrive in order
        bool retired = false;          // owns no slot: closed, opened again if a redirect names it
        bool loading = false;          // FUNCTION LOAD in flight on cmd
    };
    // The publishes of one slot while any is in flight. Once one is redirected, later ones wait
    // in `held` until every one in flight is answered, so none overtakes an earlier one.
    struct SlotFlow {
        uint16_t node = 0;  // where the ones in flight were sent, unless redirected
        size_t inflight = 0;
        bool redirected = false;
        std::deque<Pending> held;
    };

    // RedisBrokerCore
    void connect() override;
    void disconnect(std::vector<Awaited>& lost) override;
    bool connectionsReady() const override;
    uint16_t shardOf(std::string_view redis_channel) const override;
    void sendSubscriptions(bool subscribe, const std::vector<Target>& targets) override;
    bool sendCommand(Outgoing& out) override;
    void loadFunctions(uint16_t shard) override;
    bool sendProbe(uint16_t shard, const std::string& channel, const std::string& payload) override;
    std::string shardName(uint16_t shard) const override;
    std::string timeoutReason() const override;

    // RedisConnection::Handler
    void onReady(RedisConnection& connection) override;
    void onPush(RedisConnection& connection, const redisReply& reply) override;
    void onClosed(RedisConnection& connection, const std::string& reason) override;

    void discoverNext();
    void onDiscoveryReply(RedisStatus status, const redisReply* reply);
    void startNodes();
    // The index of the node at `address`, opened (again) if needed; kNoOwner past kMaxNodes.
    uint16_t nodeFor(const ClusterNode& address);
    void open(uint16_t index);
    void retire(uint16_t index);
    // A channel of this worker's probe base hashing to a slot `index` owns; "" if none is found.
    std::string chooseProbe(uint16_t index) const;
    // CLUSTER SLOTS on a live command connection, then adopt(); coalesced while one is in flight.
    void requestReload();
    void onReloadReply(uint16_t index, RedisStatus status, const redisReply* reply);
    void adopt(ClusterTopology topology);
    static void onRefreshTimer(struct ev_loop* loop, ev_timer* w, int revents);

    // False when the publish can wait no more (its slot's queue is full).
    bool route(Pending&& pending);
    void transmit(uint16_t index, Pending&& pending, bool asking);
    // `from` answered MOVED or ASK (`error`).
    void redirect(uint16_t from, Pending&& pending, std::string_view error);
    // Reports a command (`reply` null: Unavailable) and lets its slot's waiting commands go once
    // none is in flight.
    void finish(uint16_t shard, Pending&& pending, const redisReply* reply);
    void onPublishReply(uint16_t index, RedisStatus status, const redisReply* reply);
    // The index of the node `connection` belongs to, or -1.
    int nodeOf(const RedisConnection& connection) const;
    RedisHandshake handshake() const;

    AsyncResolver resolver_;

    // Discovery: CLUSTER SLOTS on one candidate at a time.
    std::unique_ptr<RedisConnection> discovery_;
    std::vector<ClusterNode> candidates_;
    size_t candidate_ = 0;
    std::string discovery_errors_;

    ClusterTopology topology_;  // as last read: its masters are the candidates of a reconnect
    // Every node of this attempt; an index (the core's shard) stays valid until disconnect().
    std::deque<Node> nodes_;
    std::vector<uint16_t> route_;  // slot -> index into nodes_; empty while not connected
    std::unordered_map<uint16_t, SlotFlow> flows_;  // by slot, while a publish is in flight
    bool reloading_ = false;
    bool reload_again_ = false;  // asked for while one was in flight, or with no live connection
    ev_timer refresh_timer_{};
};

}  // namespace wsrelay
