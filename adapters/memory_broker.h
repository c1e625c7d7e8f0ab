#pragma once

#include <ev.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"
#include "adapters/memory_fleet.h"

namespace wsrelay {

class MemoryBroker;

// The in-process engine for a single instance: routes each publish to the workers that hold a
// subscription to its channel. Workers meet only here, and only once per loop turn: a worker's
// publishes are batched and handed over under one lock, with one wake-up per target worker.
//
// History lives here too, per channel under the same lock: an epoch, the top offset, the last
// history_size messages (shared with the deliveries, not copied) and an expiry time (last publish +
// ttl). Offsets are assigned in the pass that routes a batch to the inboxes, so every worker
// receives a channel's messages in offset order. Expiry is checked when a channel is touched, and
// a sweep (at most once per second, kSweepEntries entries) frees channels nobody touches any more.
//
// Fleet calls are answered here too, in the same pass and under the same lock: "publish" is
// routed as a publish of its channel and answers the number of workers it reached; any other
// function goes to the MemoryFleet. Their replies come on the caller's next loop turn.
class MemoryBrokerFactory final : public BrokerFactory {
public:
    // `sweep_interval`: how often expired histories may be swept (tests shorten it).
    explicit MemoryBrokerFactory(
        int workers, std::chrono::milliseconds sweep_interval = std::chrono::seconds(1));
    ~MemoryBrokerFactory() override;

    // adapters::BrokerFactory (subscribe() takes effect at once; onSubscribed follows on the next
    // flush() or inbox delivery, whichever comes first, so it precedes every message of the
    // channel)
    BrokerPtr create(int worker_index, struct ev_loop* loop, BrokerHandler& handler) override;

    // Channels whose history is kept right now (expired ones not yet swept included); for tests.
    size_t historyChannels();

    // Entries one sweep examines at most.
    static constexpr size_t kSweepEntries = 1024;

private:
    friend class MemoryBroker;
    struct Message {
        std::string channel;
        std::string data;
        int64_t entered_us;
        uint64_t offset = 0;  // with history; 0 otherwise
        std::string epoch;
    };
    using MessagePtr = std::shared_ptr<const Message>;
    using Clock = std::chrono::steady_clock;
    struct History {
        std::string epoch;
        uint64_t top = 0;
        std::deque<MessagePtr> kept;  // ascending offsets, the newest at the back
        Clock::time_point expires;    // time_point::max(): never (ttl 0)
    };

    // The live history of `channel` under `policy`: made (with a new epoch) when there is none or
    // it expired. Called under mutex_.
    History& historyOf(const std::string& channel, const HistoryPolicy& policy,
                       Clock::time_point now);
    // Frees expired histories, a bounded number of entries from where the last sweep stopped.
    void sweep(Clock::time_point now);
    std::string newEpoch();

    const std::chrono::milliseconds sweep_interval_;
    std::mutex mutex_;                                       // guards everything below
    std::unordered_map<std::string, uint64_t> subscribers_;  // channel -> bitmask of workers
    std::vector<MemoryBroker*> endpoints_;
    std::unordered_map<std::string, History> histories_;
    MemoryFleet fleet_;
    size_t sweep_bucket_ = 0;  // where the next sweep starts
    std::mt19937_64 epoch_rng_;
    uint64_t epochs_made_ = 0;
    // The next sweep's time (Clock ticks), read by flush() without the lock; max = none kept.
    std::atomic<int64_t> next_sweep_{INT64_MAX};
};

// One worker's endpoint. Lives on that worker's loop thread.
class MemoryBroker final : public Broker {
public:
    MemoryBroker(MemoryBrokerFactory& bus, int index, struct ev_loop* loop, BrokerHandler& handler);
    ~MemoryBroker() override;

    // adapters::Broker
    void subscribe(std::string_view channel) override;
    void unsubscribe(std::string_view channel) override;
    void publish(std::string_view channel, std::string_view data, const PublishTicket& ticket,
                 const HistoryPolicy& history) override;
    void readHistory(std::string_view channel, const HistoryRequest& request) override;
    void fleetCall(FleetCall&& call) override;
    void flush() override;
    bool usable() const override { return true; }
    const std::string& lastError() const override { return no_error_; }

private:
    friend class MemoryBrokerFactory;
    using MessagePtr = MemoryBrokerFactory::MessagePtr;
    using Message = MemoryBrokerFactory::Message;
    struct Read {
        std::string channel;
        HistoryRequest request;
    };
    static constexpr size_t kNoMessage = SIZE_MAX;
    struct Fleet {
        FleetCall call;
        size_t message = kNoMessage;  // "publish": its message's index in outbox_
    };
    static void onInbox(struct ev_loop* loop, ev_async* w, int revents);
    void deliver(const std::vector<MessagePtr>& batch);
    // Tells the handler of the subscriptions made since the last call.
    void confirmSubscriptions();
    // Gives the history publishes of outbox_ their offsets and makes the answers of reads_; under
    // the bus lock, in the pass that routes the batch. Returns the messages the publishes pushed
    // out of their histories by history_size.
    uint64_t applyHistory(MemoryBrokerFactory::Clock::time_point now);
    void answerReads();
    // Makes the replies of fleet_ once the batch is routed; under the bus lock.
    void applyFleet(MemoryBrokerFactory::Clock::time_point now);
    void answerFleet();

    MemoryBrokerFactory& bus_;
    const int index_;
    struct ev_loop* loop_;
    BrokerHandler& handler_;
    std::vector<std::shared_ptr<Message>> outbox_;
    std::vector<PublishTicket> tickets_;  // by outbox_ index; a fleet "publish"'s is unused
    // The publishes of outbox_ that go to a history: their index there, and the policy.
    std::vector<std::pair<size_t, HistoryPolicy>> appends_;
    std::vector<Read> reads_;  // read at the next flush()
    // Read under the lock, answered on the next loop turn (inbox wake-up), in request order.
    std::vector<std::pair<uint64_t, HistoryAnswer>> answers_;
    std::vector<Fleet> fleet_;            // called at the next flush(), in order
    std::vector<size_t> fleet_messages_;  // the outbox_ indices of fleet_'s "publish" calls
    // Made under the lock, answered on the next loop turn (inbox wake-up), in call order.
    std::vector<std::pair<uint64_t, FleetReply>> fleet_replies_;
    std::vector<std::string> confirming_;  // subscribed, not yet confirmed; one per subscribe()
    ev_async wake_{};
    std::mutex inbox_mutex_;
    std::vector<MessagePtr> inbox_;  // guarded by inbox_mutex_; filled by other workers
    const std::string no_error_;     // the in-process broker cannot go down
};

}  // namespace wsrelay
