#pragma once

#include "conf/config.h"

namespace wsrelay {

// Whether this configuration makes the relay call the wsrelay Redis Function library
// (adapters/redis_functions.lua): then the Redis brokers load it on every master before they
// report Up (RedisBrokerOptions::functions), and a Redis without Functions (before 7.0), or a user
// not allowed FUNCTION and FCALL, keeps them down. Every feature that calls the library adds its
// condition here, and only here. Fleet calls named "publish" need no function.
bool needsRedisFunctions(const Config& config);

// Whether the relay keeps a lease and a connection registry in Redis (docs/scaling.md "Leases"):
// only with a Redis broker (a memory broker has no other instance to notice) and when something
// needs the records or the lease period: a hook that sends disconnect, occupied or vacated events
// (the occupancy sweep runs on the lease period and drops a lost instance's channel holds).
bool leasesNeeded(const Config& config);

}  // namespace wsrelay
