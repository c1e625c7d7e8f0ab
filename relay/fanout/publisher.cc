#include "relay/fanout/publisher.h"

#include "relay/common/clock.h"
#include "relay/common/log.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/hub.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {
constexpr ev_tstamp kTooLargeLogSeconds = 10.0;
}  // namespace

Publisher::Publisher(Hub& hub, const ChannelRules& channels, metrics::WorkerMetrics& metrics,
                     uint64_t send_queue_bytes, struct ev_loop* loop, MemoryBudget& memory)
    : hub_(hub), channels_(channels), metrics_(metrics), send_queue_bytes_(send_queue_bytes),
      loop_(loop), memory_(memory) {}

bool Publisher::admit(std::string_view channel, std::string_view data,
                      metrics::MessageSource source) {
    if (hub_.fits(channel, data, channels_.history(channel))) return true;
    metrics_.too_large[source].add();
    if (source == metrics::MessageSource::Hook) {
        warnTooLarge(source, channel, data, 0);
    }
    return false;
}

bool Publisher::budgetFull(metrics::PublishEntry entry) {
    if (!memory_.full()) return false;
    metrics_.memory_refused[entry].add();
    if (entry == metrics::PublishEntry::Hook) {
        // The app hears nothing of it: say so, at most once per kTooLargeLogSeconds per worker.
        const ev_tstamp now = ev_now(loop_);
        if (now - budget_logged_at_ < kTooLargeLogSeconds) {
            ++budget_unlogged_;
        } else {
            WSR_LOG(Warn,
                    "dropped a publish in a hook answer: the memory budget is full; %llu more "
                    "dropped since the last such warning",
                    static_cast<unsigned long long>(budget_unlogged_));
            budget_logged_at_ = now;
            budget_unlogged_ = 0;
        }
    }
    return true;
}

void Publisher::publish(std::string_view channel, std::string_view data, PublishTicket ticket) {
    ticket.entered_us = wallClockMicros();
    metrics_.broker_publishes.add();
    broker_->publish(channel, data, ticket, channels_.history(channel));
}

void Publisher::refusedFromBroker(std::string_view channel, std::string_view data,
                                  size_t subscribers) {
    metrics_.too_large[metrics::MessageSource::Broker].add();
    metrics_.dropped[metrics::DropReason::TooLarge].add(static_cast<int64_t>(subscribers));
    warnTooLarge(metrics::MessageSource::Broker, channel, data, subscribers);
}

void Publisher::warnTooLarge(metrics::MessageSource source, std::string_view channel,
                             std::string_view data, size_t subscribers) {
    const ev_tstamp now = ev_now(loop_);
    if (now - too_large_logged_at_ < kTooLargeLogSeconds) {
        ++too_large_unlogged_;
        return;
    }
    const auto limit = static_cast<long long>(send_queue_bytes_);
    const auto unlogged = static_cast<unsigned long long>(too_large_unlogged_);
    const int n = static_cast<int>(channel.size());
    const size_t frame_bytes = Hub::frameBytes(channel, data, channels_.history(channel));
    if (source == metrics::MessageSource::Hook) {
        WSR_LOG(Warn,
                "dropped a publish in a hook answer on channel %.*s: its %zu-byte frame exceeds "
                "limits.send_queue_bytes (%lld); %llu more dropped since the last such warning",
                n, channel.data(), frame_bytes, limit, unlogged);
    } else {
        WSR_LOG(Warn,
                "dropped a message from the broker on channel %.*s: its %zu-byte frame exceeds "
                "limits.send_queue_bytes (%lld), %zu local subscriber(s) not reached; %llu more "
                "dropped since the last such warning",
                n, channel.data(), frame_bytes, limit, subscribers, unlogged);
    }
    too_large_logged_at_ = now;
    too_large_unlogged_ = 0;
}

}  // namespace wsrelay
