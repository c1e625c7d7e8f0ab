#include "adapters/memory_fleet.h"

namespace wsrelay {

FleetReply MemoryFleet::call(const FleetCall& call, Clock::time_point now) {
    if (std::optional<FleetReply> reply = presence_.call(call, now)) return std::move(*reply);
    if (FleetReply reply; users_.call(call, reply)) return reply;
    if (std::optional<FleetReply> reply = occupancy_.call(call, now)) return std::move(*reply);
    return FleetReply{FleetStatus::Error, 0, {}, "unknown fleet function " + call.function};
}

}  // namespace wsrelay
