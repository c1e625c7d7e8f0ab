#include "adapters/memory_broker.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace wsrelay {
namespace {

constexpr size_t kEpochChars = 8;

}  // namespace

MemoryBrokerFactory::MemoryBrokerFactory(int workers, std::chrono::milliseconds sweep_interval)
    : sweep_interval_(sweep_interval),
      epoch_rng_(std::random_device{}() ^ (static_cast<uint64_t>(getpid()) << 32)) {
    // One bit per worker in the subscriber masks.
    if (workers < 1 || workers > 64) throw std::invalid_argument("memory broker: 1..64 workers");
    endpoints_.resize(static_cast<size_t>(workers), nullptr);
}

MemoryBrokerFactory::~MemoryBrokerFactory() = default;

size_t MemoryBrokerFactory::historyChannels() {
    std::lock_guard lock(mutex_);
    return histories_.size();
}

// 8 of [a-z0-9]: random bits mixed with a count, so that two epochs of one process never repeat
// within 36^8 of them, and another process (a restarted relay) picks others.
std::string MemoryBrokerFactory::newEpoch() {
    uint64_t value = epoch_rng_() + 0x9E3779B97F4A7C15ull * ++epochs_made_;
    value ^= value >> 31;
    std::string epoch(kEpochChars, '0');
    for (char& c : epoch) {
        c = "0123456789abcdefghijklmnopqrstuvwxyz"[value % 36];
        value /= 36;
    }
    return epoch;
}

MemoryBrokerFactory::History& MemoryBrokerFactory::historyOf(const std::string& channel,
                                                             const HistoryPolicy& policy,
                                                             Clock::time_point now) {
    auto [it, made] = histories_.try_emplace(channel);
    History& h = it->second;
    if (made || now >= h.expires) {
        h.epoch = newEpoch();
        h.top = 0;
        h.kept.clear();
        h.expires = policy.ttl_ms > 0 ? now + std::chrono::milliseconds(policy.ttl_ms)
                                      : Clock::time_point::max();
    }
    if (next_sweep_.load(std::memory_order_relaxed) == INT64_MAX) {
        next_sweep_.store((now + sweep_interval_).time_since_epoch().count(),
                          std::memory_order_relaxed);
    }
    return h;
}

void MemoryBrokerFactory::sweep(Clock::time_point now) {
    if (histories_.empty()) {
        next_sweep_.store(INT64_MAX, std::memory_order_relaxed);
        return;
    }
    // Workers that saw it due together: the first one sweeps.
    if (now.time_since_epoch().count() < next_sweep_.load(std::memory_order_relaxed)) return;
    next_sweep_.store((now + sweep_interval_).time_since_epoch().count(),
                      std::memory_order_relaxed);
    // Bucket by bucket from where the last sweep stopped: erasing keeps the buckets, and a rehash
    // only makes one pass visit some entries twice or skip some until the next pass.
    size_t examined = 0;
    const size_t buckets = histories_.bucket_count();
    for (size_t visited = 0; visited < buckets && examined < kSweepEntries; ++visited) {
        sweep_bucket_ = (sweep_bucket_ + 1) % buckets;
        std::vector<std::string> expired;
        for (auto it = histories_.begin(sweep_bucket_); it != histories_.end(sweep_bucket_); ++it) {
            ++examined;
            if (now >= it->second.expires) expired.push_back(it->first);
        }
        for (const std::string& channel : expired) histories_.erase(channel);
    }
}

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
                           const PublishTicket& ticket, const HistoryPolicy& history) {
    if (history.enabled()) appends_.emplace_back(outbox_.size(), history);
    outbox_.push_back(std::make_shared<Message>(
        Message{std::string(channel), std::string(data), ticket.entered_us, 0, {}}));
    tickets_.push_back(ticket);
}

void MemoryBroker::readHistory(std::string_view channel, const HistoryRequest& request) {
    reads_.push_back(Read{std::string(channel), request});
}

void MemoryBroker::fleetCall(FleetCall&& call) {
    Fleet fleet;
    if (call.function == "publish" && call.args.size() == 1) {
        fleet.message = outbox_.size();
        fleet_messages_.push_back(fleet.message);
        outbox_.push_back(
            std::make_shared<Message>(Message{call.key, std::move(call.args.front()), 0, 0, {}}));
        tickets_.emplace_back();
    }
    fleet.call = std::move(call);
    fleet_.push_back(std::move(fleet));
}

uint64_t MemoryBroker::applyHistory(MemoryBrokerFactory::Clock::time_point now) {
    uint64_t trimmed = 0;
    for (const auto& [index, policy] : appends_) {
        Message& msg = *outbox_[index];
        MemoryBrokerFactory::History& h = bus_.historyOf(msg.channel, policy, now);
        msg.offset = ++h.top;
        msg.epoch = h.epoch;
        h.kept.push_back(outbox_[index]);
        while (h.kept.size() > static_cast<size_t>(policy.size)) {
            h.kept.pop_front();
            ++trimmed;
        }
        if (policy.ttl_ms > 0) h.expires = now + std::chrono::milliseconds(policy.ttl_ms);
    }
    appends_.clear();
    // After the publishes: a read sees what this worker published before it, as on Redis.
    for (const Read& read : reads_) {
        const HistoryRequest& r = read.request;
        MemoryBrokerFactory::History& h = bus_.historyOf(read.channel, r.policy, now);
        HistoryAnswer answer{HistoryStatus::Ok, StreamPosition{h.top, h.epoch}, {}};
        if (r.limit > 0) {
            auto first = std::find_if(h.kept.begin(), h.kept.end(),
                                      [&](const MessagePtr& m) { return m->offset > r.after; });
            auto last = h.kept.end();
            const auto available = static_cast<size_t>(last - first);
            if (available > r.limit) {
                if (r.newest) {
                    first = last - r.limit;
                } else {
                    last = first + r.limit;
                }
            }
            answer.entries.reserve(static_cast<size_t>(last - first));
            for (auto it = first; it != last; ++it) {
                answer.entries.push_back(HistoryEntry{(*it)->offset, (*it)->data});
            }
        }
        answers_.emplace_back(r.token, std::move(answer));
    }
    reads_.clear();
    return trimmed;
}

void MemoryBroker::answerReads() {
    std::vector<std::pair<uint64_t, HistoryAnswer>> answers;
    answers.swap(answers_);
    for (auto& [token, answer] : answers) handler_.onHistory(token, std::move(answer));
}

void MemoryBroker::applyFleet(MemoryBrokerFactory::Clock::time_point now) {
    fleet_replies_.reserve(fleet_replies_.size() + fleet_.size());
    for (const Fleet& f : fleet_) {
        FleetReply reply;
        if (f.message != kNoMessage) {
            // Routed in this pass, under this lock: exactly the workers it was handed to.
            auto it = bus_.subscribers_.find(f.call.key);
            reply.integer = it == bus_.subscribers_.end() ? 0 : std::popcount(it->second);
        } else if (f.call.function == "publish") {
            reply.status = FleetStatus::Error;
            reply.error =
                "publish takes one argument, the data; got " + std::to_string(f.call.args.size());
        } else {
            reply = bus_.fleet_.call(f.call, now);
        }
        fleet_replies_.emplace_back(f.call.token, std::move(reply));
    }
    fleet_.clear();
}

void MemoryBroker::answerFleet() {
    std::vector<std::pair<uint64_t, FleetReply>> replies;
    replies.swap(fleet_replies_);
    for (auto& [token, reply] : replies) handler_.onFleetReply(token, std::move(reply));
}

void MemoryBroker::confirmSubscriptions() {
    std::vector<std::string> confirmed;
    confirmed.swap(confirming_);
    for (const std::string& channel : confirmed) handler_.onSubscribed(channel);
}

void MemoryBroker::flush() {
    confirmSubscriptions();
    // This worker's own history messages go through its inbox, behind those other workers
    // routed to it before: in offset order.
    const bool ordered = !appends_.empty();
    const bool history = ordered || !reads_.empty();
    const bool fleet = !fleet_.empty();
    // Without history or fleet calls this is one relaxed load per turn, and the clock is not read.
    const int64_t next_sweep = bus_.next_sweep_.load(std::memory_order_relaxed);
    if (outbox_.empty() && !history && !fleet && next_sweep == INT64_MAX) return;
    const auto now = next_sweep != INT64_MAX || history || fleet
                         ? MemoryBrokerFactory::Clock::now()
                         : MemoryBrokerFactory::Clock::time_point();
    if (outbox_.empty() && !history && !fleet) {
        if (now.time_since_epoch().count() < next_sweep) return;
        std::lock_guard lock(bus_.mutex_);
        bus_.sweep(now);
        return;
    }
    std::vector<MessagePtr> local;
    std::vector<StreamPosition> positions;
    uint64_t trimmed = 0;
    {
        // One lock for the whole turn's batch; per-target inbox locks nest inside it (the inbox
        // side never takes the bus lock, so the order is fixed).
        std::lock_guard lock(bus_.mutex_);
        if (history) {
            // Offsets are given in the same pass that routes the batch, under the same lock: a
            // channel's messages reach every inbox in offset order.
            trimmed = applyHistory(now);
            positions.reserve(outbox_.size());
            for (const auto& msg : outbox_) positions.push_back({msg->offset, msg->epoch});
        }
        if (next_sweep != INT64_MAX && now.time_since_epoch().count() >= next_sweep) {
            bus_.sweep(now);
        }
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
                if (ordered) {
                    // What other workers routed here before is older: it goes first.
                    std::lock_guard inbox_lock(inbox_mutex_);
                    local.swap(inbox_);
                    local.insert(local.end(), per_target[t].begin(), per_target[t].end());
                } else {
                    local = std::move(per_target[t]);
                }
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
        if (fleet) applyFleet(now);
    }
    outbox_.clear();
    // Taken before the handler runs: what it publishes or calls now belongs to the next flush.
    std::vector<PublishTicket> tickets;
    tickets.swap(tickets_);
    std::vector<size_t> fleet_messages;
    fleet_messages.swap(fleet_messages_);
    // Never from inside flush() either: the handler hears them on the next loop turn.
    if (!answers_.empty() || !fleet_replies_.empty()) ev_async_send(loop_, &wake_);
    deliver(local);
    if (trimmed > 0) handler_.onHistoryTrimmed(trimmed);
    // Accepted means handed to every subscribed worker; results go out after the local delivery
    // so a publisher subscribed to its own channel sees its message before the ack.
    size_t next_fleet = 0;  // fleet_messages is ascending
    for (size_t i = 0; i < tickets.size(); ++i) {
        if (next_fleet < fleet_messages.size() && fleet_messages[next_fleet] == i) {
            ++next_fleet;  // a fleet "publish": answered with the fleet replies
            continue;
        }
        if (positions.empty() || positions[i].offset == 0) {
            handler_.onPublishResult(tickets[i], PublishStatus::Accepted, 0, {});
        } else {
            handler_.onPublishResult(tickets[i], PublishStatus::Accepted, positions[i].offset,
                                     positions[i].epoch);
        }
    }
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
    // After them: messages routed before a read or a fleet call are older than its answer.
    self->answerReads();
    self->answerFleet();
}

void MemoryBroker::deliver(const std::vector<MessagePtr>& batch) {
    for (const auto& msg : batch) {
        handler_.onBrokerMessage(msg->channel, msg->data, msg->entered_us, msg->offset, msg->epoch);
    }
}

}  // namespace wsrelay
