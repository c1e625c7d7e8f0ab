#pragma once

#include <chrono>

#include "adapters/broker.h"
#include "adapters/memory_fleet_occupancy.h"
#include "adapters/memory_fleet_presence.h"
#include "adapters/memory_fleet_user.h"

namespace wsrelay {

// The fleet's functions for the in-process broker (docs/scaling.md "The fleet"): in C++, what the
// wsrelay Redis Function library (adapters/redis_functions.lua) answers to FCALL
// wsrelay_<function>, for the workers of one instance. Owned by MemoryBrokerFactory and called
// only under its lock, so it takes none of its own. "publish" never comes here: the broker routes
// it as it routes a publish. Each feature adds its functions to call().
class MemoryFleet {
public:
    using Clock = std::chrono::steady_clock;

    // The reply to `call` (its function is not "publish") at `now`; an unknown function is Error
    // "unknown fleet function <name>".
    FleetReply call(const FleetCall& call, Clock::time_point now);

private:
    MemoryPresence presence_;    // presence_*
    MemoryUserSets users_;       // user_admit, user_leave
    MemoryOccupancy occupancy_;  // occupancy_update, occupancy_due
};

}  // namespace wsrelay
