#pragma once

// A WorkerContext built from fakes at the seams (Broker, Hook, Wire) and the real per-worker parts,
// with no socket, no lws context and no worker thread: what the per-connection classes' unit tests
// construct them from. The ev_loop only gives the clock and timers; tests run it by hand.

#include <ev.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/broker.h"
#include "adapters/hook.h"
#include "adapters/memory_broker.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/common/shared_state.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/hub.h"
#include "relay/fanout/publisher.h"
#include "relay/protocol/protocol.h"
#include "relay/session/flush_scheduler.h"
#include "relay/session/session.h"
#include "relay/session/session_table.h"
#include "relay/session/wire.h"
#include "relay/session/worker_context.h"

namespace wsrelay::testing {

// Records what the worker asked of its broker; answers nothing by itself.
class FakeBroker : public Broker {
public:
    void subscribe(std::string_view channel) override { subscribed.emplace_back(channel); }
    void unsubscribe(std::string_view channel) override { unsubscribed.emplace_back(channel); }
    void publish(std::string_view channel, std::string_view data, const PublishTicket& ticket,
                 const HistoryPolicy& history) override {
        published.push_back({std::string(channel), std::string(data), ticket, history});
    }
    void readHistory(std::string_view channel, const HistoryRequest& request) override {
        reads.push_back({std::string(channel), request});
    }
    void fleetCall(FleetCall&& call) override { fleet_calls.push_back(std::move(call)); }
    void flush() override {}
    bool usable() const override { return up; }
    const std::string& lastError() const override { return error; }

    struct Published {
        std::string channel;
        std::string data;
        PublishTicket ticket;
        HistoryPolicy history;
    };
    struct Read {
        std::string channel;
        HistoryRequest request;
    };
    std::vector<std::string> subscribed;
    std::vector<std::string> unsubscribed;
    std::vector<Published> published;
    std::vector<Read> reads;
    std::vector<FleetCall> fleet_calls;
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

// Records what a session did to its connection. `next` is what write() answers (Taken keeps the
// bytes); timer, close and writable requests are only recorded: the test fires the session's
// onTimer / onWriteable itself, as the edge would.
class FakeWire : public Wire {
public:
    Write write(const char* data, size_t len) override {
        ++write_calls;
        if (next != Write::Taken) return next;
        bytes.append(data, len);
        return Write::Taken;
    }
    void askWritable() override { ++writable_asks; }
    void setTimer(int64_t usecs) override { timer_usecs = usecs; }
    void closeWithin(int seconds) override { close_within_s = seconds; }
    void setCloseReason(int code, std::string_view reason) override {
        close_code = code;
        close_reason = reason;
    }

    struct WireFrame {
        int opcode;
        std::string payload;
    };
    // The frames in `bytes` (unmasked server frames, as the relay writes them).
    std::vector<WireFrame> frames() const {
        std::vector<WireFrame> out;
        size_t i = 0;
        while (i + 2 <= bytes.size()) {
            const auto b = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
            const int opcode = b(i) & 0x0F;
            uint64_t len = b(i + 1) & 0x7F;
            size_t at = i + 2;
            if (len == 126 || len == 127) {
                const size_t n = len == 126 ? 2 : 8;
                len = 0;
                for (size_t k = 0; k < n; ++k) len = len << 8 | b(at + k);
                at += n;
            }
            out.push_back({opcode, bytes.substr(at, static_cast<size_t>(len))});
            i = at + static_cast<size_t>(len);
        }
        return out;
    }
    // The payloads of the text frames written, in order.
    std::vector<std::string> texts() const {
        std::vector<std::string> out;
        for (const WireFrame& f : frames()) {
            if (f.opcode == 1) out.push_back(f.payload);
        }
        return out;
    }

    Write next = Write::Taken;
    std::string bytes;
    int write_calls = 0;
    int writable_asks = 0;
    int64_t timer_usecs = -1;  // -1: never set
    int close_within_s = 0;
    int close_code = 0;  // set with the close reason
    std::string close_reason;
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
    // The instance id its connections' fleet ids start with (`unit0000.<session id>`).
    static constexpr std::string_view kInstance = "unit0000";
    explicit WorkerParts(Config cfg = defaultConfig())
        : config(std::move(cfg)), channels(config.channels), loop(ev_loop_new(EVFLAG_AUTO)),
          registry(1), brokers(1),
          shared(config, channels, registry, brokers, 1, 100, config.limits.memory_budget_bytes),
          metrics(registry.worker(0)), listener(broker),
          history(metrics, static_cast<size_t>(config.history.max_reads_in_flight)),
          hub(listener, static_cast<uint64_t>(config.limits.send_queue_bytes),
              HubHistory{&channels, &history, static_cast<uint32_t>(config.history.max_recover),
                         &metrics}),
          parser(static_cast<size_t>(config.websocket.max_message_bytes),
                 static_cast<size_t>(config.limits.max_channel_bytes)),
          memory(shared.memory),
          publisher(hub, channels, metrics, static_cast<uint64_t>(config.limits.send_queue_bytes),
                    loop, shared.memory),
          flush(loop, config.websocket.write_coalesce_ms / 1000.0),
          sessions(0), ctx{shared,    config, channels, metrics,  loop,  hub,
                           publisher, parser, flush,    sessions, memory} {
        publisher.setBroker(&broker);
        history.setBroker(&broker);
        ctx.history = &history;
        shared.instance_id = std::string(kInstance);
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
    ChannelRules channels;
    struct ev_loop* loop;
    metrics::Registry registry;
    MemoryBrokerFactory brokers;  // SharedState wants one; the worker's broker is `broker`
    SharedState shared;
    metrics::WorkerMetrics& metrics;
    FakeBroker broker;
    BrokerListener listener;
    HistoryReads history;  // the worker's onHistory answers through history.onAnswer
    Hub hub;
    protocol::Parser parser;
    MemoryCredit memory;  // limits.memory_budget_bytes is the budget (0: none)
    Publisher publisher;
    FlushScheduler flush;
    SessionTable sessions;
    WorkerContext ctx;
};

// A session on a FakeWire, added to the worker's table as the worker does; close() undoes both as
// the worker's closeSession does.
struct TestSession {
    TestSession(WorkerParts& w, uint64_t id, std::unique_ptr<Identity> identity = nullptr)
        : parts(w), session(std::make_unique<Session>(w.ctx, wire, id, std::move(identity))) {
        w.sessions.add(id, session.get());
    }
    ~TestSession() { close(); }
    void close() {
        if (!session) return;
        parts.flush.cancel(*session);
        session->onClosed();
        parts.sessions.remove(session->id());
        session.reset();
    }
    Session* operator->() { return session.get(); }
    Session& operator*() { return *session; }

    WorkerParts& parts;
    FakeWire wire;
    std::unique_ptr<Session> session;
};

}  // namespace wsrelay::testing
