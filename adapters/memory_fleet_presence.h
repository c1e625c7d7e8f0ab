#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "adapters/broker.h"

namespace wsrelay {

// Presence for the in-process broker: the wsrelay_presence_* functions of
// adapters/redis_functions.lua in C++, with the same arguments and replies (docs/scaling.md
// "Presence"). Part of MemoryFleet, so called only under the memory broker factory's lock.
class MemoryPresence {
public:
    using Clock = std::chrono::steady_clock;

    // The reply to `call` at `now` when its function is one of presence_join, presence_leave,
    // presence_get and presence_stats; nullopt for any other function.
    std::optional<FleetReply> call(const FleetCall& call, Clock::time_point now);

    // Channels that hold members (expired ones included until a call on them prunes them).
    size_t channelCount() const { return channels_.size(); }

private:
    struct Member {
        std::string json;
        int64_t expires_ms = 0;
    };
    struct Channel {
        std::unordered_map<std::string, Member> members;  // by connection id
        std::set<std::pair<int64_t, std::string>> expiries;
    };
    static void prune(Channel& channel, int64_t now_ms);
    static void remove(Channel& channel, const std::string& connection, size_t& removed);
    FleetReply join(const FleetCall& call, int64_t now_ms);
    FleetReply leave(const FleetCall& call);
    FleetReply get(const FleetCall& call, int64_t now_ms);
    FleetReply stats(const FleetCall& call, int64_t now_ms);
    // Forgets a channel left without members, as Redis forgets an empty key.
    void dropIfEmpty(const std::string& key);

    std::unordered_map<std::string, Channel> channels_;
};

}  // namespace wsrelay
