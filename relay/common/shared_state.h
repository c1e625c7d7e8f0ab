#pragma once

#include <atomic>
#include <string>

#include "adapters/broker.h"
#include "adapters/jwt_verifier.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/common/address_counts.h"
#include "relay/common/memory_budget.h"

namespace wsrelay {

class ChannelRules;
namespace tls {
class CertStore;
}

// What the server shares with every worker. Read-mostly: the atomics change on connect, drain and
// broker state changes, and the memory budget's once per chunk of queued bytes; never per message.
struct SharedState {
    SharedState(const Config& cfg, const ChannelRules& rules, metrics::Registry& reg,
                BrokerFactory& factory, int worker_count, int connection_limit,
                int64_t memory_budget_bytes = 0)
        : config(cfg), channels(rules), registry(reg), brokers(factory), workers(worker_count),
          max_connections(connection_limit), memory(memory_budget_bytes, worker_count) {}

    const Config& config;
    const ChannelRules& channels;  // config.channels, built once (relay/fanout/channel_rules.h)
    metrics::Registry& registry;
    BrokerFactory& brokers;
    const int workers;
    // This process's name in the fleet (relay/fleet/fleet_id.h): set before the workers start.
    std::string instance_id;
    const int max_connections;
    // Bytes queued in the whole process against limits.memory_budget_*: written once per chunk of
    // a worker's queued bytes, never per message (relay/common/memory_budget.h).
    MemoryBudget memory;

    std::atomic<bool> draining{false};
    std::atomic<int> connections{0};
    std::atomic<int> brokers_down{0};     // workers whose broker is not usable
    std::atomic<int> workers_running{0};  // workers whose loop is serving
    // Raised each time the instance takes its lease in Redis (relay/fleet/instance_lease.h); 0
    // until the first time. Every worker's connection registry reads it.
    std::atomic<uint64_t> lease_generation{0};
    // Workers that stopped and sent their last registry and occupancy changes: worker 0 gives the
    // lease up only when every one has (relay/edge/worker.cc, stopLoop).
    std::atomic<int> workers_flushed{0};
    // auth.enabled: the keys tokens are checked against (set before the workers start).
    const jwt::KeySource* keys = nullptr;
    std::atomic<bool> auth_keys_missing{false};  // auth.jwt.jwks_url has never loaded
    // tls.cert_file set: the server context every worker's TLS front makes connections from.
    tls::CertStore* certs = nullptr;
    // limits.connections_per_ip: every worker's open connections by client address (connect and
    // close only).
    AddressCounts connections_per_address;

    // The answer /readyz gives: empty when ready, else the reason.
    std::string notReadyReason() const {
        if (draining.load(std::memory_order_relaxed)) return "draining";
        if (workers_running.load(std::memory_order_relaxed) < workers) return "starting";
        if (brokers_down.load(std::memory_order_relaxed) > 0) return "broker unavailable";
        if (auth_keys_missing.load(std::memory_order_relaxed)) return "signing keys not loaded";
        return {};
    }
};

}  // namespace wsrelay
