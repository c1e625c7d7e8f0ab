#include "conf/redis_functions_needed.h"

#include <algorithm>

namespace wsrelay {

bool needsRedisFunctions(const Config& config) {
    // Leases: wsrelay_lease_* and wsrelay_conn_*.
    if (leasesNeeded(config)) return true;
    // History: wsrelay_publish and wsrelay_history. Presence: wsrelay_presence_*.
    return std::any_of(config.channels.begin(), config.channels.end(),
                       [](const Config::Channel& c) { return c.history_size > 0 || c.presence; });
}

bool leasesNeeded(const Config& config) {
    if (config.broker.type != BrokerType::Redis || config.hook.url.empty()) return false;
    return std::find(config.hook.events.begin(), config.hook.events.end(), "disconnect") !=
           config.hook.events.end();
}

}  // namespace wsrelay
