#include "relay/fanout/history_reads.h"

#include <algorithm>
#include <utility>

namespace wsrelay {

std::vector<protocol::HistoryItem> historyItems(const HistoryAnswer& answer,
                                                const std::optional<std::string>& since_epoch) {
    std::vector<protocol::HistoryItem> items;
    if (since_epoch && *since_epoch != answer.top.epoch) return items;
    items.reserve(answer.entries.size());
    for (const HistoryEntry& entry : answer.entries) items.push_back({entry.offset, entry.data});
    return items;
}

HistoryQuery historyQuery(const HistoryPolicy& policy, uint64_t max_limit,
                          std::optional<uint64_t> limit,
                          const std::optional<protocol::Position>& since) {
    HistoryQuery q;
    if (!policy.enabled()) {
        q.refusal = HistoryQuery::Refusal::NoHistory;
        return q;
    }
    if (limit && *limit > max_limit) {
        q.refusal = HistoryQuery::Refusal::LimitOverMax;
        return q;
    }
    q.request.policy = policy;
    q.request.limit = static_cast<uint32_t>(limit.value_or(max_limit));
    if (since) {
        q.request.after = since->offset;
        q.since_epoch.emplace(since->epoch);
    } else {
        q.request.newest = true;
    }
    return q;
}

HistoryReads::HistoryReads(metrics::WorkerMetrics& metrics, size_t max_in_flight)
    : metrics_(metrics), max_in_flight_(std::max<size_t>(1, max_in_flight)) {}

void HistoryReads::setBroker(Broker* broker) {
    broker_ = broker;
    sendWaiting();
}

uint64_t HistoryReads::read(std::string_view channel, HistoryRequest request, Done done,
                            uint64_t owner) {
    request.token = next_token_++;
    if (broker_ != nullptr && in_flight_.size() < max_in_flight_) {
        send(std::string(channel), request, {std::move(done), owner});
    } else {
        waiting_.push_back({std::string(channel), request, {std::move(done), owner}});
    }
    return request.token;
}

void HistoryReads::send(const std::string& channel, const HistoryRequest& request, Reader reader) {
    in_flight_.emplace(request.token, std::move(reader));
    metrics_.history_reads_in_flight.add();
    broker_->readHistory(channel, request);
}

void HistoryReads::sendWaiting() {
    while (broker_ != nullptr && !waiting_.empty() && in_flight_.size() < max_in_flight_) {
        Waiting next = std::move(waiting_.front());
        waiting_.pop_front();
        send(next.channel, next.request, std::move(next.reader));
    }
}

void HistoryReads::cancel(uint64_t token) {
    if (auto it = in_flight_.find(token); it != in_flight_.end()) {
        it->second.done = nullptr;
        return;
    }
    auto it = std::find_if(waiting_.begin(), waiting_.end(),
                           [token](const Waiting& w) { return w.request.token == token; });
    if (it != waiting_.end()) waiting_.erase(it);
}

void HistoryReads::cancelOwner(uint64_t owner) {
    if (owner == 0) return;
    // At most max_in_flight under way; the queue holds one per reader at most.
    for (auto& [token, reader] : in_flight_) {
        if (reader.owner == owner) reader.done = nullptr;
    }
    std::erase_if(waiting_, [owner](const Waiting& w) { return w.reader.owner == owner; });
}

void HistoryReads::onAnswer(uint64_t token, HistoryAnswer&& answer) {
    auto it = in_flight_.find(token);
    if (it == in_flight_.end()) return;
    Done done = std::move(it->second.done);
    in_flight_.erase(it);
    metrics_.history_reads_in_flight.sub();
    metrics_
        .history_reads[answer.status == HistoryStatus::Ok ? metrics::HistoryReadResult::Ok
                                                          : metrics::HistoryReadResult::Unavailable]
        .add();
    // The next read goes before `done` runs: a reader that reads again from it queues behind the
    // ones that waited.
    sendWaiting();
    if (done) done(token, std::move(answer));
}

}  // namespace wsrelay
