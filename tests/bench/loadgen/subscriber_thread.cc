#include "subscriber_thread.h"

#include <charconv>

#include "process_info.h"
#include "publisher.h"

namespace wsrelay::loadgen {
namespace {

bool parseNumberAfter(std::string_view text, std::string_view key, size_t from, uint64_t& value,
                      size_t& end) {
    size_t at = text.find(key, from);
    if (at == std::string_view::npos) return false;
    const char* first = text.data() + at + key.size();
    auto [ptr, ec] = std::from_chars(first, text.data() + text.size(), value);
    if (ec != std::errc()) return false;
    end = size_t(ptr - text.data());
    return true;
}

} // namespace

void SubscriberStats::merge(const SubscriberStats& o) {
    delivered += o.delivered;
    unique += o.unique;
    duplicates += o.duplicates;
    out_of_order += o.out_of_order;
    unexpected += o.unexpected;
    error_frames += o.error_frames;
    disconnects += o.disconnects;
    if (o.last_rx_ns > last_rx_ns) last_rx_ns = o.last_rx_ns;
    latency_us.merge(o.latency_us);
}

SubscriberThread::SubscriberThread(RunState& state, int thread_index)
    : state_(state), thread_index_(thread_index) {
    const int threads = state.options.threads;
    max_opening_ = std::max(1, state.options.connect_concurrency / threads);
    for (uint64_t g = uint64_t(thread_index); g < state.subscribers; g += uint64_t(threads)) {
        Subscriber sub;
        sub.global = g;
        sub.channel = state.channelOf(g);
        sub.conn = std::make_unique<WsConnection>(poller_, *this, uint32_t(subs_.size()));
        subs_.push_back(std::move(sub));
    }
}

SubscriberThread::~SubscriberThread() = default;

uint64_t SubscriberThread::expectedTotal(uint64_t sent) const {
    uint64_t total = 0;
    for (const Subscriber& sub : subs_) total += state_.expectedFor(sub.channel, sent);
    return total;
}

void SubscriberThread::openMore() {
    while (opening_ < max_opening_ && next_to_open_ < subs_.size() && !state_.setup_failed) {
        Subscriber& sub = subs_[next_to_open_++];
        const Endpoint& ep = state_.endpoints[sub.global % state_.endpoints.size()];
        if (!sub.conn->start(ep, sourceAddress(sub.global, state_.options.sources))) {
            state_.reportError("subscriber " + std::to_string(sub.global) + ": " +
                               sub.conn->error());
            state_.setup_failed = true;
            return;
        }
        ++opening_;
    }
}

void SubscriberThread::run(Publisher* publisher) {
    while (!state_.stop.load(std::memory_order_relaxed)) {
        openMore();
        int timeout_ms = 5;
        if (publisher != nullptr) {
            publisher->tick();
            if (publisher->publishing()) timeout_ms = 1;
        }
        poller_.poll(timeout_ms);
        checkDone();
    }
}

void SubscriberThread::checkDone() {
    if (done_) return;
    uint64_t sent = state_.final_sent.load(std::memory_order_acquire);
    if (sent == UINT64_MAX) return;
    if (stats_.unique >= expectedTotal(sent)) {
        done_ = true;
        state_.threads_done.fetch_add(1);
    }
}

void SubscriberThread::onOpen(WsConnection& conn) {
    const Subscriber& sub = subs_[conn.index()];
    std::string cmd = "{\"op\":\"subscribe\",\"channel\":\"";
    cmd += state_.channel_names[sub.channel];
    cmd += "\",\"id\":1}";
    conn.sendText(cmd);
}

void SubscriberThread::onText(WsConnection& conn, std::string_view message) {
    Subscriber& sub = subs_[conn.index()];
    if (sub.acked) {
        onMessage(sub, message);
        return;
    }
    if (message.find("\"op\":\"ack\"") != std::string_view::npos) {
        sub.acked = true;
        --opening_;
        state_.acked.fetch_add(1, std::memory_order_release);
        return;
    }
    state_.reportError("subscriber " + std::to_string(sub.global) + " before its ack: " +
                       std::string(message.substr(0, 200)));
    state_.setup_failed = true;
}

void SubscriberThread::onMessage(Subscriber& sub, std::string_view message) {
    if (message.find("\"op\":\"message\"") == std::string_view::npos) {
        if (message.find("\"op\":\"error\"") != std::string_view::npos) {
            ++stats_.error_frames;
            state_.reportError("error frame: " + std::string(message.substr(0, 200)));
        }
        return; // pong, reconnect, or an op this client does not know
    }
    uint64_t now = nowNs();
    const std::string& name = state_.channel_names[sub.channel];
    size_t at = message.find("\"channel\":\"");
    if (at == std::string_view::npos || message.substr(at + 11, name.size()) != name ||
        message.substr(at + 11 + name.size(), 1) != "\"") {
        ++stats_.unexpected;
        return;
    }
    size_t data = message.find("\"data\":");
    uint64_t seq = 0, sent_ns = 0;
    size_t end = 0;
    if (data == std::string_view::npos || !parseNumberAfter(message, "\"s\":", data, seq, end) ||
        !parseNumberAfter(message, "\"t\":", end, sent_ns, end)) {
        ++stats_.unexpected;
        return;
    }
    ++stats_.delivered;
    stats_.last_rx_ns = now;
    stats_.latency_us.record(now > sent_ns ? (now - sent_ns) / 1000 : 0);

    if (seq == sub.next) {
        ++sub.next;
        ++stats_.unique;
    } else if (seq > sub.next) {
        sub.gaps.emplace(sub.next, seq - 1);
        sub.next = seq + 1;
        ++stats_.unique;
    } else {
        // Behind the highest seen: either a late one filling a gap, or a duplicate.
        auto it = sub.gaps.upper_bound(seq);
        if (it == sub.gaps.begin() || (--it)->second < seq) {
            ++stats_.duplicates;
            return;
        }
        ++stats_.unique;
        ++stats_.out_of_order;
        uint64_t first = it->first, last = it->second;
        sub.gaps.erase(it);
        if (first < seq) sub.gaps.emplace(first, seq - 1);
        if (seq < last) sub.gaps.emplace(seq + 1, last);
    }
}

void SubscriberThread::onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) {
    Subscriber& sub = subs_[conn.index()];
    std::string what = "subscriber " + std::to_string(sub.global) + " closed (" +
                       std::to_string(close_code) + ")" +
                       (error.empty() ? "" : ": " + std::string(error));
    if (!sub.acked) {
        --opening_;
        state_.setup_failed = true;
    } else {
        ++stats_.disconnects;
    }
    state_.reportError(what);
}

} // namespace wsrelay::loadgen
