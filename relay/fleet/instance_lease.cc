#include "relay/fleet/instance_lease.h"

#include <vector>

#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/lost_instance_reaper.h"

namespace wsrelay {
namespace {

// Lost instances one lease_reap claims at most; the rest are claimed on the next periods.
constexpr int kReapsPerPeriod = 8;

}  // namespace

InstanceLease::InstanceLease(struct ev_loop* loop, FleetCalls& calls, Options options,
                             std::atomic<uint64_t>& generation, LostInstanceReaper& reaper,
                             metrics::WorkerMetrics& metrics)
    : loop_(loop), calls_(calls), options_(std::move(options)), generation_(generation),
      reaper_(reaper), metrics_(metrics) {
    ev_timer_init(&timer_, onTimer, 0., options_.renew_ms / 1000.0);
    timer_.data = this;
}

InstanceLease::~InstanceLease() { ev_timer_stop(loop_, &timer_); }

void InstanceLease::start() {
    ev_timer_start(loop_, &timer_);  // fires at once, then every renew_ms
}

void InstanceLease::setBrokerUp(bool up) {
    const bool was = up_;
    up_ = up;
    if (up && !was && !released_) renew();
}

void InstanceLease::onTimer(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<InstanceLease*>(w->data);
    if (!self->up_ || self->released_) return;
    self->renew();
}

void InstanceLease::renew() {
    calls_.call("lease_renew", std::string(kFleetKey),
                {options_.instance, std::to_string(options_.ttl_ms)}, [this](FleetReply&& reply) {
                    if (reply.status == FleetStatus::Error) {
                        metrics_.fleet_lease_errors.add();
                        WSR_LOG(Warn, "lease: renewal refused (%s)", reply.error.c_str());
                        return;
                    }
                    if (reply.status != FleetStatus::Ok || released_) return;
                    if (reply.integer == 0) {
                        if (held_ || generation_.load() != 0) {
                            // Stalled (or cut off from Redis) longer than the lease: another
                            // instance told the app these connections were lost.
                            metrics_.fleet_lease_lost.add();
                            WSR_LOG(Error,
                                    "lease: this instance's lease had expired and was taken "
                                    "(it was reported lost); taken again, its connections are "
                                    "registered again");
                        }
                        generation_.fetch_add(1, std::memory_order_acq_rel);
                    }
                    held_ = true;
                    reap();
                });
}

void InstanceLease::reap() {
    calls_.call(
        "lease_reap", std::string(kFleetKey), {options_.instance, std::to_string(kReapsPerPeriod)},
        [this](FleetReply&& reply) {
            if (reply.status == FleetStatus::Error) {
                metrics_.fleet_lease_errors.add();
                WSR_LOG(Warn, "lease: lease_reap refused (%s)", reply.error.c_str());
                return;
            }
            if (reply.status != FleetStatus::Ok || reply.items.empty() || released_) return;
            size_t reaped = 0;
            const auto& items = reply.items;
            for (const char c : items[0]) reaped = reaped * 10 + static_cast<size_t>(c - '0');
            reaped = std::min(reaped, items.size() - 1);
            for (size_t i = 1; i <= reaped; ++i) {
                metrics_.fleet_instances_reaped.add();
                WSR_LOG(Warn,
                        "instance %s lost its lease (no renewal for %d ms): reporting its "
                        "connections to the app as instance_lost",
                        items[i].c_str(), options_.ttl_ms);
            }
            reaper_.claimed(std::vector<std::string>(items.begin() + 1 + reaped, items.end()));
        });
    // After the reap on the same connection, so that it already sees what this reap queued.
    if (on_period_) on_period_();
}

void InstanceLease::release() {
    if (released_) return;
    released_ = true;
    ev_timer_stop(loop_, &timer_);
    if (!up_) return;
    releasing_ = true;
    calls_.call("lease_release", std::string(kFleetKey), {options_.instance},
                [this](FleetReply&& reply) {
                    releasing_ = false;
                    if (reply.status == FleetStatus::Error) {
                        metrics_.fleet_lease_errors.add();
                        WSR_LOG(Warn, "lease: release refused (%s)", reply.error.c_str());
                    }
                });
}

}  // namespace wsrelay
