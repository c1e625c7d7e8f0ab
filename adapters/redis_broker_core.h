#pragma once

#include <ev.h>

#include <array>
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
#include "adapters/redis_connection.h"
#include "adapters/redis_functions.h"
#include "adapters/redis_payload.h"
#include "adapters/redis_tls.h"
#include "adapters/redis_url.h"

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
    std::string sentinel_user;      // AUTH to the sentinels: empty user = the default user
    std::string sentinel_password;  // empty = no AUTH to the sentinels
    // TLS (one context for every worker, built at startup) to the data nodes: the standalone
    // server, the master Sentinel names, every Cluster node (a rediss:// URL); and to the sentinels
    // (broker.redis.sentinel.tls). Null = plain TCP.
    std::shared_ptr<const RedisTls> tls;
    std::shared_ptr<const RedisTls> sentinel_tls;
    std::string prefix;  // prepended to every client channel name to get the Redis channel name
    int reconnect_min_ms = 100;
    int reconnect_max_ms = 5000;
    int probe_interval_ms = 1000;  // 0 = no delivery probe
    int probe_timeout_ms = 3000;   // also bounds connecting + AUTH + SELECT + SUBSCRIBE
    bool timestamps = true;        // stamp what this relay publishes with its entry time
    // Load the function library on every connection to a master before Up (the config uses it:
    // needsRedisFunctions() in conf/redis_functions_needed.h). Without it the relay sends no FCALL,
    // so nothing is loaded (and no extra round trip is made).
    bool functions = true;
    // Cluster: CLUSTER SLOTS reload period (broker.redis.cluster_refresh_ms); 0 = off.
    int cluster_refresh_ms = 0;
};

// Reconnect delays: doubling from min to max per failed attempt, with full jitter (a uniform pick
// between min and the current cap), so workers and relays that lost Redis together do not return
// together.
class ReconnectBackoff {
public:
    ReconnectBackoff(int min_ms, int max_ms, uint64_t seed);
    double nextSeconds();
    void reset() { attempts_ = 0; }
    uint64_t random() { return rng_(); }

private:
    const int min_ms_;
    const int max_ms_;
    int attempts_ = 0;
    std::mt19937_64 rng_;
};

// What the standalone and the Cluster broker share; each adds only how it reaches Redis.
//  - Desired subscriptions: subscribe()/unsubscribe() record what the worker wants; flush()
//    reconciles that with Redis (wanted / queued / in flight / confirmed per channel), batched;
//    after a reconnect everything wanted is subscribed again (resubscribeAll), probes first.
//  - The publish outbox: publish() stamps and queues, flush() sends it or fails it Unavailable.
//    History reads and fleet calls go through it too, after the publishes queued before them, so
//    a read sees them; a publish with history, a read and a fleet call other than "publish" are
//    FCALLs of the `wsrelay` function library (adapters/redis_functions.h), which every attempt
//    loads on every master before Up (when the config needs it).
//  - Up and Down: Up once the connections are ready, every subscription is confirmed and (with
//    probes on) a first probe has come back through every shard, so a server that takes
//    SUBSCRIBE but holds PUBLISH (CLIENT PAUSE WRITE, a wedged replica link) stays Down instead
//    of flapping Up and Down at every attempt; any
//    failure drops every connection (fail), reports Down, fails what is in flight and retries
//    after a ReconnectBackoff delay.
//  - The delivery probe: a PUBLISH to an internal channel this worker subscribes, one per shard
//    (the Cluster's masters; standalone has one), with a deadline.
// Must be destroyed on its loop thread, outside its own callbacks, while the loop still exists.
class RedisBrokerCore : public Broker {
public:
    ~RedisBrokerCore() override;
    RedisBrokerCore(const RedisBrokerCore&) = delete;
    RedisBrokerCore& operator=(const RedisBrokerCore&) = delete;

    // adapters::Broker
    void subscribe(std::string_view channel) override;
    void unsubscribe(std::string_view channel) override;
    void publish(std::string_view channel, std::string_view data, const PublishTicket& ticket,
                 const HistoryPolicy& history) override;
    void readHistory(std::string_view channel, const HistoryRequest& request) override;
    void fleetCall(FleetCall&& call) override;
    void flush() override;
    bool usable() const override { return up_; }
    // Why the connections were last dropped (for logs and tests); empty if they never were.
    const std::string& lastError() const override { return last_error_; }

    // Times a master answered that the function library was missing while connected (a FUNCTION
    // FLUSH, say): the call was refused and the library loaded again on that connection.
    uint64_t functionReloads() const { return function_reloads_; }
    // Replies of the function library that were not of the shape it answers (another library
    // loaded under its name?): publishes reported without a position, reads Unavailable, fleet
    // calls Error.
    uint64_t malformedReplies() const { return malformed_replies_; }

protected:
    // A Redis channel and the shard (Cluster master index; 0 standalone) it lives on.
    struct Target {
        uint16_t shard = 0;
        std::string redis_channel;
    };
    // What a command's reply completes.
    struct Awaited {
        enum class Kind : uint8_t { Publish, HistoryPublish, HistoryRead, Fleet };
        Kind kind = Kind::Publish;
        PublishTicket ticket;  // publishes
        uint64_t token = 0;    // reads, fleet calls
        uint64_t after = 0;    // reads
        uint32_t limit = 0;    // reads
    };
    // A publish (PUBLISH, or FCALL wsrelay_publish with history), a history read (FCALL
    // wsrelay_history) or a fleet call ((S)PUBLISH, or FCALL wsrelay_<function>).
    struct Outgoing {
        std::string channel;  // Redis channel name, or a fleet call's key (prefixed)
        std::string data;     // publishes
        Awaited awaited;
        HistoryPolicy history;  // a publish's with history, or the read's
        bool newest = false;    // reads
        // Fleet calls: "" for "publish", else the Redis function's name (wsrelay_<function>).
        std::string function;
        std::vector<std::string> args;  // fleet calls
    };
    // Numbers of an FCALL, formatted.
    using FcallNumbers = std::array<std::string, 4>;

    RedisBrokerCore(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                    BrokerHandler& handler);

    // ---- What a broker implements; none of these may call the handler.
    // Starts one attempt: find the server(s), open the connections, then resubscribeAll().
    virtual void connect() = 0;
    // Drops every connection (calling nothing back) and hands over the commands in flight.
    virtual void disconnect(std::vector<Awaited>& lost) = 0;
    // Every connection completed its handshake (and anything else Up waits for).
    virtual bool connectionsReady() const = 0;
    virtual uint16_t shardOf(std::string_view redis_channel) const = 0;
    // Sends (S)SUBSCRIBE or (S)UNSUBSCRIBE for `targets` (use inBatches).
    virtual void sendSubscriptions(bool subscribe, const std::vector<Target>& targets) = 0;
    // Sends one publish or read; false when it cannot (it is then reported Unavailable). Its reply
    // goes to complete().
    virtual bool sendCommand(Outgoing& out) = 0;
    // Sends FUNCTION LOAD REPLACE of the library to `shard`'s command connection (once: a load
    // already in flight there covers it); the reply goes to functionsLoaded().
    virtual void loadFunctions(uint16_t shard) = 0;
    virtual bool sendProbe(uint16_t shard, const std::string& channel,
                           const std::string& payload) = 0;
    // For messages: where a shard is ("" standalone).
    virtual std::string shardName(uint16_t shard) const = 0;
    // The reason given when an attempt is not up within probe_timeout_ms.
    virtual std::string timeoutReason() const = 0;

    // ---- What the core gives a broker.
    // Begins an attempt now (stops the reconnect timer, arms the setup deadline).
    void startAttempt();
    // Everything that goes wrong ends here.
    void fail(std::string reason);
    void maybeUp();
    // Sets each shard's probe channel (empty: none) and subscribes them, then every wanted channel.
    void resubscribeAll(std::vector<std::string> probe_channels);
    // Redis confirmed a subscription (a subscribe/ssubscribe push).
    void subscribeConfirmed(std::string_view redis_channel);
    // `shard` confirmed an unsubscription; false when nobody asked for it while the channel (or
    // that shard's probe channel) was held there: Redis dropped it by itself.
    bool unsubscribeConfirmed(uint16_t shard, std::string_view redis_channel);

    // ---- Topology changes without a reconnect (Cluster slot moves).
    // Sets (or clears, with "") the probe channel of `shard`, subscribing it when live.
    void setProbe(uint16_t shard, std::string channel);
    // `shard` dropped `redis_channel` by itself (its slot moved): the next rehome() subscribes it
    // again, and once every channel moved this way is live again the handler hears Up with gap
    // (the contract has no narrower gap notice).
    void subscriptionLost(uint16_t shard, std::string_view redis_channel);
    // `shard` no longer holds, and will not confirm, what was (un)subscribed there for the
    // channels `gone` selects (a MOVED reply, or the node left the topology).
    void subscriptionsGone(uint16_t shard, const std::function<bool(std::string_view)>& gone);
    // After shardOf() changed: subscribes every wanted channel that is not held where it belongs
    // now on its new shard (Redis drops it on the old one by itself).
    void rehome();
    // Records why something failed that did not take the connections down (a publish reported
    // Unavailable after a redirect, say), for lastError().
    void setLastError(std::string reason) { last_error_ = std::move(reason); }
    // A message pushed on `shard`'s subscriber connection.
    void deliver(uint16_t shard, std::string_view redis_channel, std::string_view payload);
    // The command that sends `out` ((S)PUBLISH or FCALL; `numbers` holds the text of its
    // numbers), and its name for messages.
    std::vector<std::string_view> commandArgs(const Outgoing& out, FcallNumbers& numbers) const;
    std::string_view commandName(const Outgoing& out) const;
    // Reports a command `shard` answered: the publish result or the history answer.
    void complete(uint16_t shard, const Awaited& awaited, const redisReply& reply);
    // Reports a command that got no answer: Unavailable.
    void unavailable(const Awaited& awaited);
    // FUNCTION LOAD's reply from `shard`: true when it loaded. A refusal fails the attempt; a
    // lost connection is reported apart.
    bool functionsLoaded(uint16_t shard, RedisStatus status, const redisReply* reply);
    RedisMode mode() const {
        return options_.cluster.empty() ? RedisMode::Standalone : RedisMode::Cluster;
    }
    // Calls `send` with the arguments of each command: `command` then at most a bounded number of
    // names, so no single command delays every reply behind it.
    static void inBatches(std::string_view command, const std::vector<std::string_view>& names,
                          const std::function<void(const std::vector<std::string_view>&)>& send);
    const std::string& probeBase() const { return probe_base_; }
    const std::string& library() const { return library_; }
    const std::string& probeChannel(uint16_t shard) const;
    bool up() const { return up_; }

    const RedisBrokerOptions options_;
    struct ev_loop* const loop_;
    BrokerHandler& handler_;
    bool destroying_ = false;  // set by the broker's destructor: fail() does nothing

private:
    enum class Remote { None, Subscribing, Subscribed, Unsubscribing };
    struct Channel {
        bool wanted = false;
        bool queued = false;    // listed in changed_
        bool announce = false;  // a subscribe() still waits for its onSubscribed
        Remote remote = Remote::None;
        uint16_t shard = 0;  // where it is (being) subscribed, while remote != None
        bool moved = false;  // lost to a slot move, not yet live again (counted in moving_)
    };
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using ChannelMap = std::unordered_map<std::string, Channel, StringHash, std::equal_to<>>;
    struct Probe {
        std::string channel;
        std::deque<std::pair<uint64_t, ev_tstamp>> sent;  // seq, sent at
        bool through = false;  // one has come back since this attempt subscribed the channel
    };

    static void onReconnectTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static void onSetupTimeout(struct ev_loop* loop, ev_timer* w, int revents);
    static void onProbeTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static void onProbeDeadline(struct ev_loop* loop, ev_timer* w, int revents);

    void applyChanges();
    // Reports a fleet call's reply (from complete()).
    void completeFleet(uint16_t shard, const Awaited& awaited, const redisReply& reply);
    void queue(ChannelMap::iterator it);
    bool isProbe(std::string_view client_channel) const;
    // Tells the handler of every live subscription still waiting for its onSubscribed.
    void announceConfirmed();
    void sendProbes();
    void sendProbeTo(uint16_t shard);
    bool firstProbesThrough();
    std::string lateProbeReason() const;
    void probeReceived(Probe& probe, std::string_view payload);
    void armProbeDeadline();
    // A channel lost to a slot move; `was_live`: messages may have been missed.
    void markMoved(Channel& ch, bool was_live);
    void clearMoved(Channel& ch);
    // Reports the gap of channels lost to slot moves once they are all live again.
    void maybeMovedDone();

    const int worker_index_;
    std::string probe_base_;
    std::string probe_nonce_;
    bool up_ = false;
    bool ever_up_ = false;
    bool live_ = false;  // resubscribeAll() ran for this attempt: changes go out at once
    std::string last_error_;

    ChannelMap channels_;  // keyed by client channel name
    std::vector<std::string> changed_;
    size_t pending_confirms_ = 0;  // subscribe arguments Redis has not confirmed yet
    size_t moving_ = 0;            // channels with `moved` set
    bool moved_gap_ = false;       // one of them was live: Up with gap once they are all back

    std::vector<Outgoing> outbox_;
    std::vector<Outgoing> sending_;

    std::vector<Probe> probes_;  // by shard
    uint64_t probe_seq_ = 0;

    ReconnectBackoff backoff_;
    ev_timer reconnect_timer_{};
    ev_timer setup_timer_{};
    ev_timer probe_timer_{};
    ev_timer probe_deadline_{};

    RedisPayload payload_;
    const std::string library_;  // the function library's source for this mode
    uint64_t function_reloads_ = 0;
    uint64_t malformed_replies_ = 0;
};

}  // namespace wsrelay
