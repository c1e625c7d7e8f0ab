#pragma once

#include <ev.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"

namespace wsrelay {

class MemoryBroker;

// The in-process engine for a single instance: routes each publish to the workers that hold a
// subscription to its channel. Workers meet only here, and only once per loop turn: a worker's
// publishes are batched and handed over under one lock, with one wake-up per target worker.
class MemoryBrokerFactory final : public BrokerFactory {
public:
    explicit MemoryBrokerFactory(int workers);
    ~MemoryBrokerFactory() override;

    // adapters::Broker (subscribe() takes effect at once; onSubscribed follows on the next flush()
    // or inbox delivery, whichever comes first, so it precedes every message of the channel)Factory
    BrokerPtr create(int worker_index, struct ev_loop* loop, BrokerHandler& handler) override;

private:
    friend class MemoryBroker;
    struct Message {
        std::string channel;
        std::string data;
        int64_t entered_us;
    };
    using MessagePtr = std::shared_ptr<const Message>;

    std::mutex mutex_;                                       // guards everything below
    std::unordered_map<std::string, uint64_t> subscribers_;  // channel -> bitmask of workers
    std::vector<MemoryBroker*> endpoints_;
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
    void flush() override;
    bool usable() const override { return true; }
    const std::string& lastError() const override { return no_error_; }

private:
    friend class MemoryBrokerFactory;
    using MessagePtr = MemoryBrokerFactory::MessagePtr;
    static void onInbox(struct ev_loop* loop, ev_async* w, int revents);
    void deliver(const std::vector<MessagePtr>& batch);
    // Tells the handler of the subscriptions made since the last call.
    void confirmSubscriptions();

    MemoryBrokerFactory& bus_;
    const int index_;
    struct ev_loop* loop_;
    BrokerHandler& handler_;
    std::vector<MessagePtr> outbox_;
    std::vector<PublishTicket> tickets_;
    std::vector<uint64_t> unread_;         // history reads, answered Unavailable (no history yet)
    std::vector<std::string> confirming_;  // subscribed, not yet confirmed; one per subscribe()
    ev_async wake_{};
    std::mutex inbox_mutex_;
    std::vector<MessagePtr> inbox_;  // guarded by inbox_mutex_; filled by other workers
    const std::string no_error_;     // the in-process broker cannot go down
};

}  // namespace wsrelay
