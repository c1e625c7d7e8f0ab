#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "adapters/hook.h"

namespace wsrelay {

// Where a client publish on a channel goes (hook.routes).
enum class PublishRoute : uint8_t { Broker, Hook, Both };

// Why a connection left a channel while it stays connected: the `reason` of its unsubscribe event
// (docs/hook.md). Client: its own unsubscribe command; Hook: a hook answer's `unsubscribe`; Token:
// a refreshed token no longer allows the channel; Server: the server API.
enum class LeaveReason : uint8_t { Client, Hook, Token, Server, kCount };
inline constexpr std::array<const char*, 4> kLeaveReasonNames = {"client", "hook", "token",
                                                                 "server"};
static_assert(kLeaveReasonNames.size() == static_cast<size_t>(LeaveReason::kCount));
constexpr const char* leaveReasonName(LeaveReason reason) {
    return kLeaveReasonNames[static_cast<size_t>(reason)];
}

// One event of a connection for the app. Its request body is built when it is sent, so it carries
// the connection's metadata of that moment (docs/hook.md: "meta").
struct PendingHookEvent {
    HookEvent event = HookEvent::Message;
    std::string channel;         // subscribe, routed publish, unsubscribe
    std::string data;            // message: the client's data, as sent
    std::optional<uint64_t> id;  // the client's command id
    // subscribe: the client's "since" (offset and epoch), for the subscribe the answer allows
    std::optional<uint64_t> since;
    std::string since_epoch;
    PublishRoute route = PublishRoute::Hook;
    bool rpc = false;
    int code = 0;                             // disconnect: the close code
    LeaveReason leave = LeaveReason::Client;  // unsubscribe: why
    // disconnect: the close reason the client was given ("" when it closed), and the channels it
    // was in, as a JSON array (at most limits.max_subscriptions of them)
    std::string reason;
    std::string channels;

    // What it counts against hook.max_queued_bytes*: its data and channels, and a fixed share for
    // the rest (the event's own memory), so that many small events count too.
    static constexpr size_t kOverheadBytes = 256;
    size_t bytes() const {
        return data.size() + channel.size() + reason.size() + channels.size() + kOverheadBytes;
    }
};

// Every connection's events for the app on one worker, kept in order (docs/hook.md#order): each
// connection has at most one current event (being sent, or waiting for a free request slot) and
// the rest wait behind it. Kept apart from the Session so that they outlive it: what a client
// sent before it closed still reaches the app, followed by its disconnect. Single-threaded; no I/O.
//
// Bounds: a client's event that cannot go at once waits only while its connection has fewer than
// `events_per_connection` waiting, and while its bytes fit under both `bytes_per_connection` and
// the worker's `bytes`; otherwise push() refuses it and keeps nothing. A disconnect is never
// refused: it is small, and the app must hear of every close.
class HookQueues {
public:
    struct Limits {
        size_t events_per_connection = 64;
        uint64_t bytes_per_connection = 1 << 20;
        uint64_t bytes = 64 << 20;  // the worker's share of hook.max_queued_bytes
    };
    enum class Push : uint8_t {
        Current,  // the connection had nothing pending: this is its current event, to send now
        Queued,   // it waits behind the connection's current event
        Full,     // refused: a bound was reached
    };
    // What a closed connection's remaining events carry as its user and metadata.
    struct Closed {
        std::string user;
        std::string meta;
    };

    explicit HookQueues(Limits limits) : limits_(limits) {}

    Push push(uint64_t connection, PendingHookEvent event);
    // The connection is gone: its queued events stay, carrying `user` and `meta` from now on, and
    // `disconnect` (when given) is queued after them. True when the disconnect became the
    // current event (nothing else was pending): the caller sends it.
    bool close(uint64_t connection, std::string user, std::string meta,
               std::optional<PendingHookEvent> disconnect);

    // The connection's current event; null when it has none.
    PendingHookEvent* current(uint64_t connection);
    // Non-null once the connection has closed.
    const Closed* closed(uint64_t connection) const;
    // The current event was handed to the hook: its bytes no longer count as queued (the hook's
    // in-flight bound holds it now).
    void sent(uint64_t connection);
    // The current event is done (answered, or refused unsent): returns it; the next one, if any,
    // becomes current and must be sent (or waited for, with wait()) by the caller.
    PendingHookEvent finish(uint64_t connection);

    // The connection's current event waits for a free request slot; ready() lists them in the
    // order they began to wait.
    void wait(uint64_t connection) {
        auto it = connections_.find(connection);
        if (it != connections_.end()) it->second.current_waiting = true;
        ready_.push_back(connection);
    }
    // The connection has a current event neither handed to the hook nor waiting for a slot: the
    // caller sends it or has it wait. False once either was done (an event queued while the
    // previous one's answer is carried out may have become current and gone already).
    bool undispatched(uint64_t connection) const {
        auto it = connections_.find(connection);
        return it != connections_.end() && !it->second.current_sent && !it->second.current_waiting;
    }
    std::optional<uint64_t> firstReady() const {
        return ready_.empty() ? std::nullopt : std::optional<uint64_t>(ready_.front());
    }
    void popReady() { ready_.pop_front(); }
    bool anyReady() const { return !ready_.empty(); }

    // Bytes of the events not handed to the hook yet, on this worker.
    uint64_t bytes() const { return bytes_; }
    // True when no connection has an event pending.
    bool empty() const { return connections_.empty(); }
    // Drops everything, calling `f` for each event left (in flight or not) in each connection's
    // order; returns how many there were.
    size_t abandon(const std::function<void(const PendingHookEvent&, bool in_flight)>& f);

private:
    struct Connection {
        std::deque<PendingHookEvent> events;  // front() is the current event
        uint64_t bytes = 0;                   // of the events not sent yet
        bool current_sent = false;
        bool current_waiting = false;  // in ready_
        std::optional<Closed> closed;
    };

    Limits limits_;
    std::unordered_map<uint64_t, Connection> connections_;
    std::deque<uint64_t> ready_;
    uint64_t bytes_ = 0;
};

}  // namespace wsrelay
