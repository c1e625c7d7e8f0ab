#pragma once

#include <ev.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "adapters/broker.h"
#include "metrics/relay_metrics.h"

namespace wsrelay {

class FleetCalls;
class LostInstanceReaper;

// The instance's lease in Redis (docs/scaling.md "Leases"), kept by one worker (worker 0): renewed
// every `renew_ms` to `ttl_ms` ahead; on the same period it looks for instances whose lease has
// expired, claims them (lease_reap: one claimer each, atomically) and hands what it reaps to the
// reaper. Single-threaded, on its worker's loop.
class InstanceLease {
public:
    struct Options {
        std::string instance;
        int ttl_ms = 15000;
        int renew_ms = 5000;
    };
    // `generation` is raised each time this instance takes its lease (the first time included):
    // the registries of every worker read it (relay/fleet/connection_registry.h).
    InstanceLease(struct ev_loop* loop, FleetCalls& calls, Options options,
                  std::atomic<uint64_t>& generation, LostInstanceReaper& reaper,
                  metrics::WorkerMetrics& metrics);
    ~InstanceLease();
    InstanceLease(const InstanceLease&) = delete;
    InstanceLease& operator=(const InstanceLease&) = delete;

    // Renews at once, then every renew_ms.
    void start();
    // Also called every renew_ms while the lease is held, right after the reap is sent (the
    // occupancy sweep, docs/scaling.md "Channel occupancy"): the period every instance keeps.
    void onPeriod(std::function<void()> f) { on_period_ = std::move(f); }
    // Nothing is sent while the broker is down; Up renews at once.
    void setBrokerUp(bool up);
    // A drained instance: stops renewing and gives its lease and records up (lease_release).
    void release();
    // release() was sent and Redis has not answered yet.
    bool releasing() const { return releasing_; }
    bool released() const { return released_; }

private:
    static void onTimer(struct ev_loop* loop, ev_timer* w, int revents);
    void renew();
    void reap();

    struct ev_loop* loop_;
    FleetCalls& calls_;
    const Options options_;
    std::atomic<uint64_t>& generation_;
    LostInstanceReaper& reaper_;
    ev_timer timer_{};
    std::function<void()> on_period_;
    bool up_ = true;
    bool held_ = false;  // the last renewal found the lease ours
    bool released_ = false;
    bool releasing_ = false;
    metrics::WorkerMetrics& metrics_;
};

}  // namespace wsrelay
