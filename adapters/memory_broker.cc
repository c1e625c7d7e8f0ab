#include "adapters/memory_broker.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace wsrelay {

MemoryBrokerFactory::MemoryBrokerFactory(int workers) {
    // One bit per worker in the subscriber masks.
    if (workers < 1 || workers > 64) throw std::invalid_argument("memory broker: 1..64 workers");
    endpoints_.resize(static_cast<size_t>(workers), nullptr);
}

MemoryBrokerFactory::~MemoryBrokerFactory() = default;

BrokerPtr MemoryBrokerFactory::create(int worker_index, struct ev_loop* loop,
                                      BrokerHandler& handler) {
    auto broker = std::make_unique<MemoryBroker>(*this, worker_index, loop, handler);
    std::lock_guard lock(mutex_);
    endpoints_[static_cast<size_t>(worker_index)] = broker.get();
    return broker;
}

MemoryBroker::MemoryBroker(MemoryBrokerFactory& bus, int index, struct ev_loop* loop,
                           BrokerHandler& handler)
    : bus_(bus), index_(index), loop_(loop), handler_(handler) {
    ev_async_init(&wake_, onInbox);
    wake_.data = this;
    ev_async_start(loop_, &wake_);
}

MemoryBroker::~MemoryBroker() {
    {
        std::lock_guard lock(bus_.mutex_);
        bus_.endpoints_[static_cast<size_t>(index_)] = nullptr;
        const uint64_t bit = uint64_t{1} << index_;
        for (auto it = bus_.subscribers_.begin(); it != bus_.subscribers_.end();) {
            it->second &= ~bit;
            it = it->second == 0 ? bus_.subscribers_.erase(it) : std::next(it);
        }
    }
    ev_async_stop(loop_, &wake_);
}

// Subscriptions change the shared map at once, under the lock, so a publish from any worker that
// follows the confirmation reaches it. They happen per channel per worker, not per message.
void MemoryBroker::subscribe(std::string_view channel) {
    {
        std::lock_guard lock(bus_.mutex_);
        bus_.subscribers_[std::string(channel)] |= uint64_t{1} << index_;
    }
    confirming_.emplace_back(channel);
}

void MemoryBroker::unsubscribe(std::string_view channel) {
    // A subscription cancelled before it was confirmed is never confirmed.
    auto pending = std::find(confirming_.begin(), confirming_.end(), channel);
    if (pending != confirming_.end()) confirming_.erase(pending);
    std::lock_guard lock(bus_.mutex_);
    auto it = bus_.subscribers_.find(std::string(channel));
    if (it == bus_.subscribers_.end()) return;
    it->second &= ~(uint64_t{1} << index_);
    if (it->second == 0) bus_.subscribers_.erase(it);
}

void MemoryBroker::publish(std::string_view channel, std::string_view data,
                           const PublishTicket& ticket, const HistoryPolicy& /*history*/) {
    outbox_.push_back(std::make_shared<const MemoryBrokerFactory::Message>(
        MemoryBrokerFactory::Message{std::string(channel), std::string(data), ticket.entered_us}));
    tickets_.push_back(ticket);
}

void MemoryBroker::readHistory(std::string_view /*channel*/, const HistoryRequest& request) {
    unread_.push_back(request.token);
}

void MemoryBroker::confirmSubscriptions() {
    std::vector<std::string> confirmed;
    confirmed.swap(confirming_);
    for (const std::string& channel : confirmed) handler_.onSubscribed(channel);
}

void MemoryBroker::flush() {
    confirmSubscriptions();
    if (!unread_.empty()) {
        std::vector<uint64_t> tokens;
        tokens.swap(unread_);
        for (uint64_t token : tokens) {
            handler_.onHistory(token, HistoryAnswer{HistoryStatus::Unavailable, {}, {}});
        }
    }
    if (outbox_.empty()) return;
    std::vector<MessagePtr> local;
    {
        // One lock for the whole turn's batch; per-target inbox locks nest inside it (the inbox
        // side never takes the bus lock, so the order is fixed).
        std::lock_guard lock(bus_.mutex_);
        std::vector<std::vector<MessagePtr>> per_target(bus_.endpoints_.size());
        for (const auto& msg : outbox_) {
            auto it = bus_.subscribers_.find(msg->channel);
            if (it == bus_.subscribers_.end()) continue;
            for (uint64_t mask = it->second; mask != 0; mask &= mask - 1) {
                per_target[static_cast<size_t>(std::countr_zero(mask))].push_back(msg);
            }
        }
        for (size_t t = 0; t < per_target.size(); ++t) {
            if (per_target[t].empty()) continue;
            if (static_cast<int>(t) == index_) {
                local = std::move(per_target[t]);
                continue;
            }
            MemoryBroker* target = bus_.endpoints_[t];
            if (target == nullptr) continue;  // that worker has stopped
            bool was_empty;
            {
                std::lock_guard inbox_lock(target->inbox_mutex_);
                was_empty = target->inbox_.empty();
                auto& in = target->inbox_;
                in.insert(in.end(), per_target[t].begin(), per_target[t].end());
            }
            if (was_empty) ev_async_send(target->loop_, &target->wake_);
        }
    }
    outbox_.clear();
    deliver(local);
    // Accepted means handed to every subscribed worker; results go out after the local delivery
    // so a publisher subscribed to its own channel sees its message before the ack.
    std::vector<PublishTicket> tickets;
    tickets.swap(tickets_);
    for (const auto& t : tickets) handler_.onPublishResult(t, PublishStatus::Accepted, 0, {});
}

void MemoryBroker::onInbox(struct ev_loop*, ev_async* w, int) {
    auto* self = static_cast<MemoryBroker*>(w->data);
    std::vector<MessagePtr> batch;
    {
        std::lock_guard lock(self->inbox_mutex_);
        batch.swap(self->inbox_);
    }
    // Before the messages: a subscriber is told its subscription is live before any of them.
    self->confirmSubscriptions();
    self->deliver(batch);
}

void MemoryBroker::deliver(const std::vector<MessagePtr>& batch) {
    for (const auto& msg : batch) {
        handler_.onBrokerMessage(msg->channel, msg->data, msg->entered_us, 0, {});
    }
}

}  // namespace wsrelay
