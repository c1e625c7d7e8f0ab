#pragma once

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/hook.h"
#include "metrics/relay_metrics.h"
#include "relay/auth/permissions.h"
#include "relay/fleet/fleet_api.h"
#include "relay/hook/hook_answer.h"
#include "relay/hook/hook_queues.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {

class Session;
struct WorkerContext;

// What the hook knows about one connection, kept in its Session. Its events wait in the
// HookBridge's queues, which outlive it.
struct HookSessionState {
    std::string user;           // set by the connect answer when there is no JWT user
    std::string meta = "null";  // JSON set by "meta" in an answer
    std::string info;           // the connect answer's "info" (presence); empty = none
};

// A worker's side of the hook: keeps each connection's events in order (HookQueues), builds each
// event's JSON when it is sent, and carries out the commands in the app's answers (docs/hook.md).
// Single-threaded.
class HookBridge {
public:
    HookBridge(WorkerContext& ctx, Hook& hook);
    ~HookBridge();
    HookBridge(const HookBridge&) = delete;
    HookBridge& operator=(const HookBridge&) = delete;

    bool sends(HookEvent event) const {
        return (events_ & (1u << static_cast<unsigned>(event))) != 0;
    }
    PublishRoute routeFor(std::string_view channel) const;

    // Client commands that wait for the app. Each answers the client itself (ack, reply, error).
    void subscribe(Session& session, std::string_view channel, std::optional<uint64_t> id,
                   std::optional<protocol::Position> since = std::nullopt);
    void message(Session& session, std::string_view channel, std::string_view data,
                 std::optional<uint64_t> id, PublishRoute route);
    void send(Session& session, std::string_view data, std::optional<uint64_t> id);
    // The connection left `channel` and stays connected: its unsubscribe event, queued behind
    // its other events (fire and forget, like disconnect). False, counted as `overflow`, when the
    // connection's or the worker's queue is full: the caller refuses a client's command then, and
    // logs the others.
    bool unsubscribe(Session& session, std::string_view channel, LeaveReason reason);
    // What a disconnect event tells besides the connection (docs/hook.md).
    struct Farewell {
        int code = 1006;
        std::string reason;                 // the close reason the client was given; "" if none
        std::vector<std::string> channels;  // its channels at close
    };
    // The connection is gone. What it had queued still goes to the app, in order, and then its
    // disconnect event when `farewell` is set (fire and forget; publishes in the answers still
    // run). `user` and `meta` are what its remaining events carry.
    void closed(uint64_t connection, std::string user, std::string meta,
                std::optional<Farewell> farewell);
    // A connection the app allowed at connect that never became a WebSocket: no reason, no
    // channels.
    void disconnect(uint64_t connection, const std::string& user, const std::string& meta,
                    int code) {
        closed(connection, user, meta, Farewell{code, {}, {}});
    }
    // Before the upgrade: asks the app whether connection `connection` may open. False when the
    // hook is at max_in_flight (`decide` is then never called).
    bool connect(uint64_t connection, const std::string& user, const std::string& headers_json,
                 std::function<void(ConnectDecision&&)> decide);

    // An event of no local connection (a lost instance's `disconnect`, docs/scaling.md "Leases"):
    // `body` goes as is, within hook.max_in_flight; `done(true)` once the app answered it (any
    // HTTP status; publishes in a 2xx answer run), `done(false)` when it did not. False when the
    // hook is at max_in_flight (`done` is then never called): the caller tries again later.
    bool sendDetached(HookEvent event, std::string body, std::function<void(bool)> done);

    // Nothing waits for the app: no event queued or under way, connects included.
    bool idle() const {
        return queues_.empty() && connects_in_flight_ == 0 && detached_in_flight_ == 0;
    }
    // At stop, when the wait for the app is over: counts what was never sent or never answered
    // (result "abandoned") and logs it; returns how many events that was.
    size_t abandon();

private:
    void enqueue(Session& session, PendingHookEvent event);
    // Sends `connection`'s current event; false when the hook is at max_in_flight.
    bool sendCurrent(uint64_t connection);
    // Sends the current events waiting for a request slot, oldest first, while the hook takes them.
    void sendReady();
    void onAnswer(uint64_t connection, HookResult&& result);
    // Carries out the answer's commands for `session` (null when it has gone meanwhile).
    void apply(Session* session, const PendingHookEvent& pending, simdjson::dom::object answer);
    // Hands the answer's publishes to the broker; returns how many it could not take (down), and
    // adds to `over_budget` those refused because the memory budget is full.
    size_t publishFromAnswer(simdjson::dom::element list, size_t& over_budget);
    // Runs the answer's "commands" on the fleet (docs/hook.md): nobody waits for their answers, so
    // a refusal or failure is logged.
    void runCommands(simdjson::dom::element list);
    // Logs publishes of an answer to `event` that failed when no client hears of it.
    void warnUnpublished(HookEvent event, size_t count);
    std::string body(uint64_t connection, const PendingHookEvent& event);
    std::string baseBody(uint64_t connection, const std::string& user, const std::string& meta,
                         HookEvent event) const;
    void count(HookEvent event, metrics::HookResult result);
    void syncQueuedBytes();      // wsrelay_hook_queued_bytes, and the worker's memory credit
    int64_t counted_bytes_ = 0;  // what syncQueuedBytes last told the memory credit

    WorkerContext& ctx_;
    Hook& hook_;
    unsigned events_ = 0;
    struct Route {
        ChannelPatterns pattern;
        PublishRoute target;
    };
    std::vector<Route> routes_;
    HookQueues queues_;
    size_t connects_in_flight_ = 0;
    size_t detached_in_flight_ = 0;
    simdjson::dom::parser parser_;
    std::string padded_;
    FleetApi fleet_api_;
};

}  // namespace wsrelay
