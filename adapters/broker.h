#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ev_loop;

namespace wsrelay {

// Identifies one client publish so its outcome can be reported back to the session that sent it.
// Plain data, so publishing never allocates a callback.
struct PublishTicket {
    uint64_t session_id = 0;
    uint64_t request_id = 0;
    bool has_request_id = false;
    // When the message entered the relay fleet (wall clock, µs since the epoch; 0 = unknown). A
    // broker carries it to every worker that delivers the message (docs/metrics.md, delivery
    // latency), and it times the publish itself.
    int64_t entered_us = 0;
};

enum class PublishStatus { Accepted, Unavailable, Rejected };

// History (docs/protocol.md "History and recovery", docs/scaling.md "History"). A channel with
// history numbers its messages: `offset` counts from 1, +1 per message, no gaps; `epoch` names the
// history's incarnation and changes when the history was lost (expired, or Redis restarted without
// persistence), so an offset is meaningful only together with its epoch.
struct StreamPosition {
    uint64_t offset = 0;  // the last message's; 0 = none published in this epoch yet
    std::string epoch;    // 1..32 of [A-Za-z0-9]
    bool operator==(const StreamPosition&) const = default;
};

// What a broker keeps of a channel: the `channels` entry of the config that matches it.
struct HistoryPolicy {
    int size = 0;        // messages kept; 0 = no history: a plain publish, no offset
    int64_t ttl_ms = 0;  // the history (and its epoch) expires this long after the last publish
    bool enabled() const { return size > 0; }
    bool operator==(const HistoryPolicy&) const = default;
};

// A read of one channel's history (Broker::readHistory). Reading creates the channel's epoch when
// it has none, so a position handed to a subscriber stays valid for the first publish after it.
struct HistoryRequest {
    uint64_t token = 0;  // handed back with the answer
    HistoryPolicy policy;
    uint64_t after = 0;  // only entries with a larger offset (0: from the oldest kept)
    uint32_t limit = 0;  // at most this many entries; 0: the position only
    // When more than `limit` entries follow `after`: the newest `limit` (a recovery, which needs
    // the end) rather than the oldest (paging forward).
    bool newest = false;
};

struct HistoryEntry {
    uint64_t offset = 0;
    std::string data;  // JSON text, as onBrokerMessage's `data`
    bool operator==(const HistoryEntry&) const = default;
};

enum class HistoryStatus { Ok, Unavailable };

struct HistoryAnswer {
    HistoryStatus status = HistoryStatus::Ok;
    StreamPosition top;                 // the channel's position when it was read
    std::vector<HistoryEntry> entries;  // ascending offsets, each > after and <= top.offset
};

// Fleet calls (docs/scaling.md "The fleet"): one named operation on one Redis key, answered once.
// The fleet's own keys live under this base; its `{fleet}` hash tag puts them all in one Cluster
// slot, and its braces keep them apart from client channels (a client channel name holds none).
inline constexpr std::string_view kFleetKey = "wsrelay:{fleet}";

struct FleetCall {
    uint64_t token = 0;  // handed back with the reply
    // "publish", or a function of the wsrelay library named wsrelay_<function>
    // (FCALL wsrelay_<function> 1 <key> <args...>).
    std::string function;
    // A channel name as subscribe() takes it, or kFleetKey (or a key under it); the Redis brokers
    // prepend broker.redis.prefix. It decides the Cluster slot the call goes to.
    std::string key;
    std::vector<std::string> args;
};

enum class FleetStatus : uint8_t {
    Ok,
    Unavailable,  // not sent, or sent and not answered: the broker is down or the connection lost
    Error,        // answered with an error (Redis's, or the memory broker's)
};

struct FleetReply {
    FleetStatus status = FleetStatus::Ok;
    int64_t integer = 0;             // an integer reply
    std::vector<std::string> items;  // an array reply, flat: integers as decimal text, nil as ""
    std::string error;               // Error: Redis's (or the memory broker's) error text
};

enum class BrokerState {
    Up,    // subscriptions are live; messages flow
    Down,  // messages may be lost until the next Up; publishes fail
};

// What a Broker calls back into. Always called on the owning worker's loop thread.
class BrokerHandler {
public:
    virtual ~BrokerHandler() = default;

    // A message for a channel this worker subscribed to. `data` is JSON text (already validated or
    // wrapped as a JSON string by the broker). Called once per worker per message, whatever the
    // number of local subscribers. `entered_us` is the publisher's PublishTicket::entered_us when
    // the message carried one, else 0. A message published with history carries its `offset` and
    // `epoch`; any other has offset 0 and an empty epoch (a plain PUBLISH by a backend, say).
    virtual void onBrokerMessage(std::string_view channel, std::string_view data,
                                 int64_t entered_us, uint64_t offset, std::string_view epoch) = 0;

    // The worker's subscription to `channel` is live: a message published from now on reaches this
    // worker (Redis confirmed the SUBSCRIBE or SSUBSCRIBE; the memory broker on a later loop turn).
    // Called once per subscribe() that no unsubscribe() cancelled first, never from inside
    // subscribe(). A subscription lost with the connection is confirmed again after Up.
    virtual void onSubscribed(std::string_view channel) = 0;

    // The outcome of publish(). Called exactly once per publish, possibly before publish() returns
    // is NOT allowed: implementations report on a later loop turn or from flush(). An Accepted
    // publish with history says where the message went (`offset`, `epoch`); else 0 and "".
    virtual void onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset,
                                 std::string_view epoch) = 0;

    // The answer to readHistory(), exactly once per request, never from inside readHistory().
    // Unavailable when the broker could not read (down, or Redis refused): `top` and `entries`
    // are then empty.
    virtual void onHistory(uint64_t token, HistoryAnswer&& answer) = 0;

    // The reply to fleetCall(), exactly once per call, never from inside fleetCall(); in the order
    // the calls were made as far as one Redis node (or the memory broker) answers them.
    // Unavailable when the broker is down or the connection was lost with the call in flight.
    virtual void onFleetReply(uint64_t token, FleetReply&& reply) {
        (void)token;
        (void)reply;
    }

    // Connectivity changed. After Down → Up every channel the worker holds has been subscribed
    // again, and messages published in between may have been missed: `gap` says so. Up with
    // gap=true may also come while already Up: some subscriptions were moved (a Redis Cluster slot
    // move) and are live again, and messages on them may have been missed; publishes never failed.
    virtual void onBrokerState(BrokerState state, bool gap) = 0;

    // A delivery probe came back after `round_trip_s` seconds. Brokers without probes never call
    // it.
    virtual void onBrokerProbe(double round_trip_s) { (void)round_trip_s; }

    // `messages` (> 0) were pushed out of channel histories by their history_size through this
    // worker's own publishes (never by expiry). Reported with, or on the same loop turn as, the
    // publish results that caused it, never from inside publish().
    virtual void onHistoryTrimmed(uint64_t messages) { (void)messages; }

    // An attempt to reach the broker failed while it was not up (before it was ever up, or while
    // reconnecting), for `reason`. A broker that was up reports the loss as Down instead.
    virtual void onBrokerAttemptFailed(std::string_view reason) { (void)reason; }
};

// The pub/sub engine, one instance per worker, used only on that worker's loop thread.
// Delivery contract: at most once per subscribed worker; messages published by one publisher on one
// channel arrive in publish order; messages with history arrive in offset order (a worker may miss
// some, during an outage, and then hears Up with gap); nothing is delivered for a channel the
// worker is not subscribed to. subscribe/unsubscribe/publish/readHistory/fleetCall may be batched
// until flush(), which the worker calls once per loop turn before it sleeps.
class Broker {
public:
    virtual ~Broker() = default;

    // Starts delivering `channel` to this worker. Called once when the first local subscriber
    // appears.
    virtual void subscribe(std::string_view channel) = 0;
    // Stops delivering `channel`. Called once when the last local subscriber leaves.
    virtual void unsubscribe(std::string_view channel) = 0;
    // Queues a publish; the outcome arrives through BrokerHandler::onPublishResult. With
    // `history` enabled the message is appended to the channel's history and delivered with its
    // position, in one atomic step; messages of one channel get offsets in the order they are
    // delivered.
    virtual void publish(std::string_view channel, std::string_view data,
                         const PublishTicket& ticket, const HistoryPolicy& history) = 0;
    // Reads `channel`'s history; the answer arrives through BrokerHandler::onHistory. Sent with
    // the next flush(), like a publish.
    virtual void readHistory(std::string_view channel, const HistoryRequest& request) = 0;
    // Queues a fleet call; the reply arrives through BrokerHandler::onFleetReply. Sent with the
    // next flush(), in order with this worker's publishes and reads (a "publish" call made after
    // a publish on the same channel is delivered after it). "publish" publishes args[0] on the
    // channel `key` (delivered as onBrokerMessage(key, args[0]) to every subscribed worker) and
    // answers, as `integer`, how many subscribed workers it reached; any other function runs the
    // wsrelay library's wsrelay_<function> on `key` (the memory broker: the same in C++).
    virtual void fleetCall(FleetCall&& call) = 0;
    // Sends what was batched this loop turn.
    virtual void flush() = 0;
    // True while publishes can be accepted and subscriptions are live (feeds /readyz).
    virtual bool usable() const = 0;
    // Why the broker last went down, for the log line that reports it; empty if it never did.
    virtual const std::string& lastError() const = 0;
};

using BrokerPtr = std::unique_ptr<Broker>;

// Makes the per-worker Broker instances. Created once at startup, shared by the workers, so its
// create() must be thread-safe; everything a Broker does afterwards stays on its worker's loop.
class BrokerFactory {
public:
    virtual ~BrokerFactory() = default;
    virtual BrokerPtr create(int worker_index, struct ev_loop* loop, BrokerHandler& handler) = 0;
};

}  // namespace wsrelay
