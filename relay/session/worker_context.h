#pragma once

#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/common/shared_state.h"

struct ev_loop;
struct lws_vhost;

namespace wsrelay {

class Authenticator;
class ChannelRules;
class FleetCalls;
class FleetControl;
class FlushScheduler;
class HistoryReads;
class HookBridge;
class Hub;
class Publisher;
class SessionTable;
namespace protocol {
class Parser;
}

// What a worker gives the classes that serve its connections (Session, UpgradeGate, HookBridge,
// HttpApi), and nothing more: they never see the Worker, its lws context or its listener. The
// worker owns every part and this struct; a unit test builds one from its own parts (a fake
// Broker behind the Publisher, a fake Hook behind the HookBridge, its own ev_loop for the clock).
// Everything here is used on the worker's thread only.
struct WorkerContext {
    SharedState& shared;  // the instance: worker count, connection limit, key state, readiness
    const Config& config;
    const ChannelRules& channels;  // config.channels: each channel's history policy
    metrics::WorkerMetrics& metrics;
    struct ev_loop* loop;  // the clock (ev_now) and every libev timer
    Hub& hub;
    Publisher& publisher;  // broker publish, and the size check before it
    protocol::Parser& parser;
    FlushScheduler& flush;  // write batching, and the buffer writes coalesce into
    SessionTable& sessions;
    // The worker's queued bytes against the process's memory budget: every send queue, hook
    // queue, partial message and write handed to lws adds and subtracts here.
    MemoryCredit& memory;
    Authenticator* authenticator = nullptr;  // null when auth.enabled is false
    HookBridge* hook = nullptr;              // null when hook.url is empty
    HistoryReads* history = nullptr;         // history reads (the history command); the worker's
    lws_vhost* vhost = nullptr;              // where the gate hands sockets to lws
    FleetCalls* fleet_calls = nullptr;       // the worker's fleet calls (Broker::fleetCall)
    FleetControl* fleet = nullptr;           // commands to and from the fleet's workers
    bool draining = false;                   // the worker is draining: new sessions are told to go
};

}  // namespace wsrelay
