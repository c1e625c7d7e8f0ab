#include "relay/fleet/fleet_calls.h"

#include <utility>

namespace wsrelay {

void FleetCalls::call(std::string function, std::string key, std::vector<std::string> args,
                      Callback done) {
    const uint64_t token = next_token_++;
    if (done) callbacks_.emplace(token, std::move(done));
    broker_->fleetCall(FleetCall{token, std::move(function), std::move(key), std::move(args)});
}

void FleetCalls::onReply(uint64_t token, FleetReply&& reply) {
    auto it = callbacks_.find(token);
    if (it == callbacks_.end()) return;  // nobody waits for it
    Callback done = std::move(it->second);
    callbacks_.erase(it);
    done(std::move(reply));
}

}  // namespace wsrelay
