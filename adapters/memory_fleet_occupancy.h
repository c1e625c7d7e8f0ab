#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "adapters/broker.h"

namespace wsrelay {

// Channel occupancy for the memory broker: wsrelay_occupancy_update and wsrelay_occupancy_due of
// adapters/redis_functions.lua, answered the same way in C++ (docs/scaling.md "Channel
// occupancy"). The process is the whole fleet, so there is no lost instance to drop. Not
// thread-safe: the memory broker's factory calls it under its lock.
class MemoryOccupancy {
public:
    using Clock = std::chrono::steady_clock;

    // The reply when `call` is occupancy_update or occupancy_due; nullopt for any other function.
    std::optional<FleetReply> call(const FleetCall& call, Clock::time_point now);

    // Channels with at least one holder (tests).
    size_t held() const { return holders_.size(); }

private:
    FleetReply update(const FleetCall& call, Clock::time_point now);
    FleetReply due(const FleetCall& call, Clock::time_point now);
    // As the Lua library's: the larger of the last one + 1 and the wall clock in µs, so that it
    // keeps growing across a restart of the relay.
    std::string nextSeq();

    std::unordered_map<std::string, std::unordered_set<std::string>>
        holders_;                                                 // channel -> holders
    std::unordered_set<std::string> occupied_;                    // reported occupied
    std::unordered_map<std::string, Clock::time_point> pending_;  // channel -> its vacate deadline
    std::multimap<Clock::time_point, std::string> deadlines_;     // the same, by deadline
    int64_t seq_ = 0;
};

}  // namespace wsrelay
