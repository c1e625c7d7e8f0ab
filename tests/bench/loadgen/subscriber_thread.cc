#include "subscriber_thread.h"

#include "message_format.h"
#include "process_info.h"
#include "publisher.h"

namespace wsrelay::loadgen {

void SubscriberStats::merge(const SubscriberStats& o) {
    delivered += o.delivered;
    unique += o.unique;
    duplicates += o.duplicates;
    out_of_order += o.out_of_order;
    unexpected += o.unexpected;
    error_frames += o.error_frames;
    disconnects += o.disconnects;
    unsent += o.unsent;
    if (o.last_rx_ns > last_rx_ns) last_rx_ns = o.last_rx_ns;
    latency_us.merge(o.latency_us);
}

SubscriberThread::SubscriberThread(RunState& state, int thread_index)
    : state_(state), chat_(state.options.mode == Mode::Chat) {
    const int threads = state.options.threads;
    max_opening_ = std::max(1, state.options.connect_concurrency / threads);
    for (uint64_t g = uint64_t(thread_index); g < state.subscribers; g += uint64_t(threads)) {
        Subscriber sub;
        sub.global = g;
        sub.channel = state.channelOf(g);
        sub.first_stream = tracker_.addStreams(chat_ ? state.membersOf(sub.channel) : 1);
        sub.conn = std::make_unique<WsConnection>(poller_, *this, uint32_t(subs_.size()));
        subs_.push_back(std::move(sub));
    }
    if (chat_) {
        chat_sender_ = std::make_unique<ChatSender>(
            state, thread_index, [this, threads](uint64_t client) -> WsConnection& {
                return *subs_[client / uint64_t(threads)].conn;
            });
    }
}

SubscriberThread::~SubscriberThread() = default;

uint64_t SubscriberThread::expectedTotal(uint64_t sent) const {
    uint64_t total = 0;
    for (const Subscriber& sub : subs_) total += state_.expectedFor(sub.channel, sent);
    return total;
}

void SubscriberThread::openMore() {
    const bool raw = state_.options.protocol == Protocol::Raw;
    while (opening_ < max_opening_ && next_to_open_ < subs_.size() && !state_.setup_failed) {
        Subscriber& sub = subs_[next_to_open_++];
        const Endpoint& ep = state_.endpoints[sub.global % state_.endpoints.size()];
        const std::string query =
            raw ? "channel=" + state_.channel_names[sub.channel] : std::string();
        if (!sub.conn->start(ep, sourceAddress(sub.global, state_.options.sources), query)) {
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
            if (publisher->active()) timeout_ms = 1;
        }
        if (chat_sender_) {
            chat_sender_->tick();
            if (chat_sender_->active()) timeout_ms = 1;
        }
        poller_.poll(timeout_ms);
        checkDone();
    }
    if (chat_sender_) stats_.unsent = chat_sender_->unsent();
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

void SubscriberThread::subscribed(Subscriber& sub) {
    sub.acked = true;
    --opening_;
    state_.acked.fetch_add(1, std::memory_order_release);
}

void SubscriberThread::onOpen(WsConnection& conn) {
    Subscriber& sub = subs_[conn.index()];
    if (state_.options.protocol == Protocol::Raw) {
        subscribed(sub);
        return;
    }
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
        subscribed(sub);
        return;
    }
    state_.reportError("subscriber " + std::to_string(sub.global) +
                       " before its ack: " + std::string(message.substr(0, 200)));
    state_.setup_failed = true;
}

void SubscriberThread::onMessage(Subscriber& sub, std::string_view message) {
    const Delivery d =
        classifyFrame(message, state_.options.protocol, state_.channel_names[sub.channel], chat_);
    switch (d.kind) {
        case Delivery::Kind::Control:
            return;  // pong, reconnect, or an op this client does not know
        case Delivery::Kind::ErrorFrame:
            ++stats_.error_frames;
            state_.reportError("error frame: " + std::string(message.substr(0, 200)));
            return;
        case Delivery::Kind::Unexpected: ++stats_.unexpected; return;
        case Delivery::Kind::Warmup:
            if (!sub.warmed) {
                sub.warmed = true;
                state_.warmed.fetch_add(1, std::memory_order_release);
            }
            return;
        case Delivery::Kind::Measured: break;
    }
    size_t stream = sub.first_stream;
    if (chat_) {
        const uint64_t k = state_.channel_names.size();
        if (d.sender >= state_.subscribers || d.sender % k != sub.channel) {
            ++stats_.unexpected;
            return;
        }
        stream += d.sender / k;
    }
    const SequenceTracker::Result result = tracker_.record(stream, d.seq);
    if (result == SequenceTracker::Result::OutOfRange) {
        ++stats_.unexpected;
        return;
    }
    const uint64_t now = nowNs();
    ++stats_.delivered;
    stats_.last_rx_ns = now;
    stats_.latency_us.record(now > d.sent_ns ? (now - d.sent_ns) / 1000 : 0);
    switch (result) {
        case SequenceTracker::Result::InOrder: ++stats_.unique; break;
        case SequenceTracker::Result::Late:
            ++stats_.unique;
            ++stats_.out_of_order;
            break;
        case SequenceTracker::Result::Duplicate: ++stats_.duplicates; break;
        case SequenceTracker::Result::OutOfRange: break;
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

}  // namespace wsrelay::loadgen
