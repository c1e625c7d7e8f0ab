#include "conf/redis_functions_needed.h"

#include <algorithm>

namespace wsrelay {

bool needsRedisFunctions(const Config& config) {
    // The per-user limit: wsrelay_user_admit and wsrelay_user_leave.
    if (config.limits.max_connections_per_user > 0) return true;
    // History: wsrelay_publish and wsrelay_history.
    return std::any_of(config.channels.begin(), config.channels.end(),
                       [](const Config::Channel& c) { return c.history_size > 0; });
}

}  // namespace wsrelay
