#pragma once

#include <simdjson.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/hook.h"
#include "relay/permissions.h"

namespace wsrelay {

class Session;
class Worker;

// Where a client publish on a channel goes (hook.routes).
enum class PublishRoute : uint8_t { Broker, Hook, Both };

// What the hook knows about one connection, kept in its Session. Events of one connection go to
// the app one at a time, in order: the next waits for the previous answer.
struct HookSessionState {
    struct Pending {
        HookEvent event;
        std::string body;
        // What to do with the answer.
        std::string channel;             // subscribe, routed publish
        std::string data;                // routed publish: the client's data
        std::optional<uint64_t> id;      // the client's command id
        PublishRoute route = PublishRoute::Hook;
        bool rpc = false;
    };
    std::deque<Pending> queue;  // waiting behind the one in flight
    bool busy = false;
    std::string user;           // set by the connect answer when there is no JWT user
    std::string meta = "null";  // JSON set by "meta" in an answer
};

// The app's answer to a connect event.
struct ConnectDecision {
    enum class Kind { Allow, Deny, Fail } kind = Kind::Fail;
    std::string message;                // Deny: the app's message; Fail: what went wrong
    std::string user;                   // "user" from the answer
    std::string meta = "null";
    std::vector<std::string> channels;  // "subscribe" from the answer
};

// A worker's side of the hook: builds each event's JSON, keeps each connection's events in order,
// and carries out the commands in the app's answers (docs/hook.md). Single-threaded.
class HookBridge {
public:
    HookBridge(Worker& worker, Hook& hook);
    ~HookBridge();
    HookBridge(const HookBridge&) = delete;
    HookBridge& operator=(const HookBridge&) = delete;

    bool sends(HookEvent event) const { return (events_ & (1u << static_cast<unsigned>(event))) != 0; }
    PublishRoute routeFor(std::string_view channel) const;

    // Client commands that wait for the app. Each answers the client itself (ack, reply, error).
    void subscribe(Session& session, std::string_view channel, std::optional<uint64_t> id);
    void message(Session& session, std::string_view channel, std::string_view data,
                 std::optional<uint64_t> id, PublishRoute route);
    void send(Session& session, std::string_view data, std::optional<uint64_t> id);
    // The connection is gone: tells the app (fire and forget; publishes in the answer still run).
    void disconnect(Session& session, int code);
    void disconnect(uint64_t connection, const std::string& user, const std::string& meta, int code);
    // Before the upgrade: asks the app whether connection `connection` may open. False when the
    // hook is at max_in_flight (`decide` is then never called).
    bool connect(uint64_t connection, const std::string& user, const std::string& headers_json,
                 std::function<void(ConnectDecision&&)> decide);

private:
    void enqueue(Session& session, HookSessionState::Pending pending);
    void startNext(Session& session);
    void onAnswer(uint64_t session_id, const HookSessionState::Pending& pending,
                  HookResult&& result);
    // Carries out the answer's commands for `session` (null when it has gone meanwhile).
    void apply(Session* session, const HookSessionState::Pending& pending,
               simdjson::dom::object answer);
    void publishFromAnswer(simdjson::dom::element list);
    std::string baseBody(Session& session, HookEvent event) const;
    std::string baseBody(uint64_t connection, const std::string& user, const std::string& meta,
                         HookEvent event) const;

    Worker& worker_;
    Hook& hook_;
    unsigned events_ = 0;
    struct Route {
        ChannelPatterns pattern;
        PublishRoute target;
    };
    std::vector<Route> routes_;
    simdjson::dom::parser parser_;
    std::string padded_;
};

}  // namespace wsrelay
