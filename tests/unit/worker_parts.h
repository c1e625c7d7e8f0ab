#pragma once

// A WorkerContext built from fakes at the seams (Broker, Hook) and the real per-worker parts, with
// no socket, no lws context and no worker thread: what the per-connection classes' unit tests
// construct them from. The ev_loop only gives the clock and timers; tests run it by hand.

#include <ev.h>

#include <string>
#include <utility>
#include <vector>

#include "adapters/broker.h"
#include "adapters/hook.h"
#include "adapters/memory_broker.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/session/flush_scheduler.h"
#include "relay/fanout/hub.h"
#include "relay/protocol/protocol.h"
#include "relay/fanout/publisher.h"
#include "relay/session/session_table.h"
#include "relay/common/shared_state.h"
#include "relay/session/worker_context.h"

namespace wsrelay::testing {

// Records what the worker asked of its broker; answers nothing by itself.
class FakeBroker : public Broker {
public:
    void subscribe(std::string_view channel) override { subscribed.emplace_back(channel); }
    void unsubscribe(std::string_view channel) override { unsubscribed.emplace_back(channel); }
    void publish(std::string_view channel, std::string_view data,
                 const PublishTicket& ticket) override {
        published.push_back({std::string(channel), std::string(data), ticket});
    }
    void flush() override {}
    bool usable() const override { return up; }
    const std::string& lastError() const override { return error; }

    struct Published {
        std::string channel;
        std::string data;
        PublishTicket ticket;
    };
    std::vector<std::string> subscribed;
    std::vector<std::string> unsubscribed;
    std::vector<Published> published;
    bool up = true;
    std::string error;
};

// Keeps each request and its `done`, for the test to answer.
class FakeHook : public Hook {
public:
    bool send(HookEvent event, std::string body, HookDone done) override {
        if (!accepting) return false;
        requests.push_back({event, std::move(body), std::move(done)});
        return true;
    }
    size_t inFlight() const override { return requests.size(); }

    struct Request {
        HookEvent event;
        std::string body;
        HookDone done;
    };
    std::vector<Request> requests;
    bool accepting = true;
};

// The hub's listener, as the worker is: a channel's first subscriber subscribes at the broker.
class BrokerListener : public HubListener {
public:
    explicit BrokerListener(Broker& broker) : broker_(broker) {}
    void onChannelOpened(std::string_view channel) override { broker_.subscribe(channel); }
    void onChannelClosed(std::string_view channel) override { broker_.unsubscribe(channel); }

private:
    Broker& broker_;
};

// Configure `config` before the first use of ctx() (the parts read it when built).
struct WorkerParts {
    explicit WorkerParts(Config cfg = defaultConfig())
        : config(std::move(cfg)),
          loop(ev_loop_new(EVFLAG_AUTO)),
          registry(1),
          brokers(1),
          shared(config, registry, brokers, 1, 100),
          metrics(registry.worker(0)),
          listener(broker),
          hub(listener, static_cast<uint64_t>(config.limits.send_queue_bytes)),
          parser(static_cast<size_t>(config.websocket.max_message_bytes),
                 static_cast<size_t>(config.limits.max_channel_bytes)),
          publisher(hub, metrics, static_cast<uint64_t>(config.limits.send_queue_bytes), loop),
          flush(loop, config.websocket.write_coalesce_ms / 1000.0),
          sessions(0),
          ctx{shared, config, metrics, loop, hub, publisher, parser, flush, sessions} {
        publisher.setBroker(&broker);
    }
    ~WorkerParts() {
        flush.stop();
        ev_loop_destroy(loop);
    }

    // No keepalive: a test decides when time passes.
    static Config defaultConfig() {
        Config c;
        c.websocket.ping_interval_ms = 0;
        return c;
    }

    Config config;
    struct ev_loop* loop;
    metrics::Registry registry;
    MemoryBrokerFactory brokers;  // SharedState wants one; the worker's broker is `broker`
    SharedState shared;
    metrics::WorkerMetrics& metrics;
    FakeBroker broker;
    BrokerListener listener;
    Hub hub;
    protocol::Parser parser;
    Publisher publisher;
    FlushScheduler flush;
    SessionTable sessions;
    WorkerContext ctx;
};

}  // namespace wsrelay::testing
