#include "conf/redis_functions_needed.h"

#include <algorithm>

namespace wsrelay {

bool needsRedisFunctions(const Config& config) {
    // The per-user limit: wsrelay_user_admit and wsrelay_user_leave.
    if (config.limits.max_connections_per_user > 0) return true;
    // Leases: wsrelay_lease_* and wsrelay_conn_*.
    if (leasesNeeded(config)) return true;
    // History: wsrelay_publish and wsrelay_history. Presence: wsrelay_presence_*.
    return std::any_of(config.channels.begin(), config.channels.end(),
                       [](const Config::Channel& c) { return c.history_size > 0 || c.presence; });
}

bool leasesNeeded(const Config& config) {
    if (config.broker.type != BrokerType::Redis || config.hook.url.empty()) return false;
    return std::any_of(config.hook.events.begin(), config.hook.events.end(),
                       [](const std::string& e) {
                           return e == "disconnect" || e == "occupied" || e == "vacated";
                       });
}

}  // namespace wsrelay
