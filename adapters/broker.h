#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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
    // the message carried one, else 0.
    virtual void onBrokerMessage(std::string_view channel, std::string_view data,
                                 int64_t entered_us) = 0;

    // The worker's subscription to `channel` is live: a message published from now on reaches this
    // worker (Redis confirmed the SUBSCRIBE or SSUBSCRIBE; the memory broker on a later loop turn).
    // Called once per subscribe() that no unsubscribe() cancelled first, never from inside
    // subscribe(). A subscription lost with the connection is confirmed again after Up.
    virtual void onSubscribed(std::string_view channel) = 0;

    // The outcome of publish(). Called exactly once per publish, possibly before publish() returns
    // is NOT allowed: implementations report on a later loop turn or from flush().
    virtual void onPublishResult(const PublishTicket& ticket, PublishStatus status) = 0;

    // Connectivity changed. After Down → Up every channel the worker holds has been subscribed
    // again, and messages published in between may have been missed: `gap` says so. Up with
    // gap=true may also come while already Up: some subscriptions were moved (a Redis Cluster slot
    // move) and are live again, and messages on them may have been missed; publishes never failed.
    virtual void onBrokerState(BrokerState state, bool gap) = 0;

    // A delivery probe came back after `round_trip_s` seconds. Brokers without probes never call
    // it.
    virtual void onBrokerProbe(double round_trip_s) { (void)round_trip_s; }
};

// The pub/sub engine, one instance per worker, used only on that worker's loop thread.
// Delivery contract: at most once per subscribed worker; messages published by one publisher on one
// channel arrive in publish order; nothing is delivered for a channel the worker is not subscribed
// to. subscribe/unsubscribe/publish may be batched until flush(), which the worker calls once per
// loop turn before it sleeps.
class Broker {
public:
    virtual ~Broker() = default;

    // Starts delivering `channel` to this worker. Called once when the first local subscriber
    // appears.
    virtual void subscribe(std::string_view channel) = 0;
    // Stops delivering `channel`. Called once when the last local subscriber leaves.
    virtual void unsubscribe(std::string_view channel) = 0;
    // Queues a publish; the outcome arrives through BrokerHandler::onPublishResult.
    virtual void publish(std::string_view channel, std::string_view data,
                         const PublishTicket& ticket) = 0;
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
