#pragma once

#include <ev.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/broker.h"
#include "metrics/relay_metrics.h"
#include "relay/common/memory_budget.h"

namespace wsrelay {

class ChannelRules;
class Hub;

// A worker's way into its broker for everything that publishes (client commands, the HTTP API,
// hook answers): the size check every entry point makes first, the publish itself (stamped and
// counted), and the rate-limited warning for messages too large to deliver. Single-threaded.
class Publisher {
public:
    // `channels` gives each channel's history policy; `loop` only gives the time the too-large
    // and memory budget warnings are rate-limited by.
    Publisher(Hub& hub, const ChannelRules& channels, metrics::WorkerMetrics& metrics,
              uint64_t send_queue_bytes, struct ev_loop* loop, MemoryBudget& memory);
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    // The broker publishes go to; set once the worker made it (null before, and after stop).
    void setBroker(Broker* broker) { broker_ = broker; }
    // Whether the broker takes publishes now (Broker::usable).
    bool usable() const { return broker_ != nullptr && broker_->usable(); }
    // Whether `data` on `channel` can be delivered at all: its message frame, with room for a
    // position on a channel with history, fits in an empty send queue (Hub::fits). Every entry
    // point asks before publishing; a refusal is counted for `source` and, for a hook answer,
    // which has nobody to answer, logged.
    bool admit(std::string_view channel, std::string_view data, metrics::MessageSource source);
    // Whether the process's memory budget is full (MemoryBudget::full): every entry point asks
    // after admit(), and answers a full budget with 503 kMemoryBudgetFull (a hook answer, which
    // has nobody to answer, is logged). Counted for `entry`.
    bool budgetFull(metrics::PublishEntry entry);
    // Publishes through the broker with the channel's history policy (config `channels`), stamped
    // with the time the message entered the fleet and counted; the outcome comes back through
    // BrokerHandler::onPublishResult.
    void publish(std::string_view channel, std::string_view data, PublishTicket ticket);
    // A message from the broker no send queue could hold (published around the entry checks, by a
    // backend's own PUBLISH): counted once for this worker and for every subscriber not reached.
    void refusedFromBroker(std::string_view channel, std::string_view data, size_t subscribers);

private:
    // A warning for a message refused as too large, at most one per kTooLargeLogSeconds per worker
    // with the count of those not logged meanwhile: a backend publishing them in a loop must not
    // flood the log.
    void warnTooLarge(metrics::MessageSource source, std::string_view channel,
                      std::string_view data, size_t subscribers);

    Hub& hub_;
    const ChannelRules& channels_;
    metrics::WorkerMetrics& metrics_;
    const uint64_t send_queue_bytes_;
    struct ev_loop* const loop_;
    MemoryBudget& memory_;
    Broker* broker_ = nullptr;
    ev_tstamp budget_logged_at_ = -1e9;
    uint64_t budget_unlogged_ = 0;
    ev_tstamp too_large_logged_at_ = -1e9;
    uint64_t too_large_unlogged_ = 0;
};

}  // namespace wsrelay
