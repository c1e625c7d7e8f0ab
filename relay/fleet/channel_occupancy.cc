#include "relay/fleet/channel_occupancy.h"

#include <algorithm>
#include <utility>

#include "adapters/broker.h"
#include "adapters/redis_payload.h"
#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"

namespace wsrelay {
namespace {

// A hook slot is looked for again this often while events wait for one.
constexpr double kRetrySeconds = 0.05;
// A timer fires this long after a deadline, so that Redis's clock has passed it too.
constexpr double kDueSlackSeconds = 0.02;

metrics::OccupancyEvent metricOf(HookEvent event) {
    return event == HookEvent::Occupied ? metrics::OccupancyEvent::Occupied
                                        : metrics::OccupancyEvent::Vacated;
}

}  // namespace

ChannelOccupancy::ChannelOccupancy(struct ev_loop* loop, FleetCalls& calls, SendEvent send,
                                   Options options, const std::atomic<uint64_t>* lease_generation,
                                   metrics::WorkerMetrics& metrics)
    : loop_(loop), calls_(calls), send_(std::move(send)), options_(std::move(options)),
      generation_(lease_generation), metrics_(metrics) {
    ev_timer_init(&due_, onDue, 0., 0.);
    due_.data = this;
    ev_timer_init(&retry_, onRetry, kRetrySeconds, kRetrySeconds);
    retry_.data = this;
}

ChannelOccupancy::~ChannelOccupancy() { stop(); }

std::string ChannelOccupancy::eventBody(HookEvent event, std::string_view channel,
                                        std::string_view seq) {
    std::string body = R"({"event":")";
    body += hookEventName(event);
    body += R"(","channel":)";
    appendJsonString(channel, body);
    body += R"(,"seq":)";
    body += seq;
    body += '}';
    return body;
}

void ChannelOccupancy::opened(std::string_view channel) {
    std::string name(channel);
    ops_.push_back('+' + name);
    held_.insert(std::move(name));
}

void ChannelOccupancy::closed(std::string_view channel) {
    std::string name(channel);
    held_.erase(name);
    ops_.push_back('-' + std::move(name));
}

void ChannelOccupancy::setBrokerUp(bool up) {
    if (up && !up_) resync_ = true;
    up_ = up;
}

void ChannelOccupancy::flush() {
    if (!up_) {
        // Nothing reaches the fleet now: the holds are set again at Up.
        ops_.clear();
        resync_ = true;
        return;
    }
    if (generation_ != nullptr) {
        const uint64_t generation = generation_->load(std::memory_order_acquire);
        // No lease yet: a hold written now could outlive a crash with no lease to expire. The
        // turn's changes wait for it; past a batch of them, the holds are set again instead.
        if (generation == 0) {
            if (ops_.size() > kBatch) {
                ops_.clear();
                resync_ = true;
            }
            return;
        }
        if (generation != seen_generation_) {
            // Taken again after a reaper had the lease: the holds were dropped with it.
            if (seen_generation_ != 0) resync_ = true;
            seen_generation_ = generation;
        }
    }
    if (resync_) return resync();
    sendInBatches(ops_);
    ops_.clear();
}

void ChannelOccupancy::resync() {
    resync_ = false;
    ops_.clear();
    // "*" releases every hold of this worker the fleet has; the holds then taken again in the
    // same order cancel the vacates that made pending, so only channels no longer held go.
    std::vector<std::string> ops{"*"};
    for (const std::string& channel : held_) ops.push_back('+' + channel);
    sendInBatches(ops);
}

void ChannelOccupancy::sendInBatches(std::vector<std::string>& ops) {
    for (size_t first = 0; first < ops.size(); first += kBatch) {
        const size_t last = std::min(ops.size(), first + kBatch);
        send({std::make_move_iterator(ops.begin() + static_cast<ptrdiff_t>(first)),
              std::make_move_iterator(ops.begin() + static_cast<ptrdiff_t>(last))});
    }
}

void ChannelOccupancy::send(std::vector<std::string> ops) {
    std::vector<std::string> args;
    args.reserve(2 + ops.size());
    args.push_back(options_.holder);
    args.push_back(std::to_string(options_.vacated_delay_ms));
    std::move(ops.begin(), ops.end(), std::back_inserter(args));
    calls_.call(
        "occupancy_update", std::string(kFleetKey), std::move(args), [this](FleetReply&& reply) {
            if (reply.status == FleetStatus::Error) {
                return onError(reply, "occupancy_update");
            }
            if (reply.status != FleetStatus::Ok) {
                // Lost with the connection: the holds are set again at Up.
                resync_ = true;
                return;
            }
            if (!reply.items.empty() && reply.items[0] != "0") {
                deadlines_.push_back(ev_now(loop_) +
                                     static_cast<double>(options_.vacated_delay_ms) / 1000.0 +
                                     kDueSlackSeconds);
                if (!ev_is_active(&due_)) {
                    ev_timer_set(&due_, deadlines_.front() - ev_now(loop_), 0.);
                    ev_timer_start(loop_, &due_);
                }
            }
            onEvents(HookEvent::Occupied, reply);
        });
}

void ChannelOccupancy::sweep() {
    if (!up_) return;
    if (sweeping_) {
        sweep_again_ = true;
        return;
    }
    sweeping_ = true;
    calls_.call("occupancy_due", std::string(kFleetKey),
                {std::to_string(options_.vacated_delay_ms), std::to_string(kBatch)},
                [this](FleetReply&& reply) {
                    sweeping_ = false;
                    if (reply.status == FleetStatus::Error) onError(reply, "occupancy_due");
                    if (reply.status != FleetStatus::Ok) return;  // the next period sweeps
                    onEvents(HookEvent::Vacated, reply);
                    const bool more = !reply.items.empty() && reply.items[0] == "1";
                    const bool asked = std::exchange(sweep_again_, false);
                    if (more || asked) sweep();
                });
}

void ChannelOccupancy::onEvents(HookEvent event, FleetReply& reply) {
    const bool listed =
        event == HookEvent::Occupied ? options_.send_occupied : options_.send_vacated;
    if (!listed) return;
    for (size_t i = 1; i + 1 < reply.items.size(); i += 2) {
        metrics_.occupancy_events[metricOf(event)].add();
        deliver(event, eventBody(event, reply.items[i], reply.items[i + 1]));
    }
}

void ChannelOccupancy::deliver(HookEvent event, std::string body) {
    // In order: behind any event still waiting for a slot.
    if (unsent_.empty() && send_(event, body, [](bool) {})) return;
    if (unsent_.size() >= kMaxUnsent) {
        metrics_.hook_requests[event][metrics::HookResult::Overflow].add();
        WSR_LOG(Warn, "hook: %s event dropped: %zu occupancy events already wait for a slot (%s)",
                hookEventName(event), unsent_.size(), body.c_str());
        return;
    }
    unsent_.emplace_back(event, std::move(body));
    if (!ev_is_active(&retry_)) ev_timer_start(loop_, &retry_);
}

void ChannelOccupancy::sendUnsent() {
    while (!unsent_.empty()) {
        auto& [event, body] = unsent_.front();
        if (!send_(event, body, [](bool) {})) return;
        unsent_.pop_front();
    }
    ev_timer_stop(loop_, &retry_);
}

void ChannelOccupancy::stop() {
    if (loop_ == nullptr) return;
    ev_timer_stop(loop_, &due_);
    ev_timer_stop(loop_, &retry_);
    for (const auto& [event, body] : unsent_) {
        metrics_.hook_requests[event][metrics::HookResult::Abandoned].add();
        WSR_LOG(Warn, "hook: %s event never sent (stopping): %s", hookEventName(event),
                body.c_str());
    }
    unsent_.clear();
}

void ChannelOccupancy::onError(const FleetReply& reply, const char* what) {
    metrics_.fleet_lease_errors.add();
    WSR_LOG(Warn, "channel occupancy: %s refused by the broker (%s)", what, reply.error.c_str());
}

void ChannelOccupancy::onDue(struct ev_loop* loop, ev_timer* w, int) {
    auto* self = static_cast<ChannelOccupancy*>(w->data);
    const double now = ev_now(loop);
    while (!self->deadlines_.empty() && self->deadlines_.front() <= now) {
        self->deadlines_.pop_front();
    }
    self->sweep();
    if (!self->deadlines_.empty()) {
        ev_timer_set(w, self->deadlines_.front() - now, 0.);
        ev_timer_start(loop, w);
    }
}

void ChannelOccupancy::onRetry(struct ev_loop*, ev_timer* w, int) {
    static_cast<ChannelOccupancy*>(w->data)->sendUnsent();
}

}  // namespace wsrelay
