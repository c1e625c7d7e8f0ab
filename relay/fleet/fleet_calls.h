#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"

namespace wsrelay {

// A worker's fleet calls (Broker::fleetCall) and the callbacks their replies go to. Every part
// that keeps state in the fleet (the control channels, presence, occupancy, leases, the per-user
// limit) calls through it, so the worker has one place that routes onFleetReply. Single-threaded.
class FleetCalls {
public:
    using Callback = std::function<void(FleetReply&&)>;

    explicit FleetCalls(Broker* broker = nullptr) : broker_(broker) {}
    FleetCalls(const FleetCalls&) = delete;
    FleetCalls& operator=(const FleetCalls&) = delete;

    // The worker's broker, once made.
    void setBroker(Broker* broker) { broker_ = broker; }

    // Calls `function` on `key` with `args`; `done` gets the reply exactly once, on a later loop
    // turn (Unavailable when the broker is down or the call is lost with its connection). A
    // null `done` ignores the reply.
    void call(std::string function, std::string key, std::vector<std::string> args,
              Callback done = nullptr);
    // BrokerHandler::onFleetReply.
    void onReply(uint64_t token, FleetReply&& reply);
    // Calls whose reply has not come yet.
    size_t pending() const { return callbacks_.size(); }

private:
    Broker* broker_;
    uint64_t next_token_ = 1;
    std::unordered_map<uint64_t, Callback> callbacks_;
};

}  // namespace wsrelay
