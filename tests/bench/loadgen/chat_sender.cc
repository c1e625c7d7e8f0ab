#include "chat_sender.h"

#include "process_info.h"

namespace wsrelay::loadgen {
namespace {

constexpr uint64_t kWarmupIntervalNs = 50'000'000;

}  // namespace

ChatSender::ChatSender(RunState& state, int thread_index,
                       std::function<WsConnection&(uint64_t client)> connection)
    : state_(state), thread_(uint64_t(thread_index)), threads_(uint64_t(state.options.threads)),
      connection_(std::move(connection)), writer_(state.options.size, state.options.words) {}

bool ChatSender::active() const {
    return !finished_ && state_.phase.load(std::memory_order_relaxed) != Phase::Setup;
}

void ChatSender::send(uint64_t client, std::string_view payload) {
    WsConnection& conn = connection_(client);
    if (conn.state() != WsConnection::State::Open) {
        ++unsent_;
        return;
    }
    if (state_.options.protocol == Protocol::Raw) {
        conn.sendText(payload);
        return;
    }
    frame_.clear();
    frame_ += "{\"op\":\"publish\",\"channel\":\"";
    frame_ += state_.channel_names[state_.channelOf(client)];
    frame_ += "\",\"data\":";
    frame_ += payload;
    frame_ += '}';
    conn.sendText(frame_);
}

bool ChatSender::flushed() const {
    for (uint64_t client = thread_; client < state_.subscribers; client += threads_) {
        if (connection_(client).pendingBytes() != 0) return false;
    }
    return true;
}

void ChatSender::tick() {
    if (finished_) return;
    const Phase phase = state_.phase.load(std::memory_order_acquire);
    if (phase == Phase::Setup) return;
    const uint64_t now = nowNs();
    if (phase == Phase::WarmUp) {
        if (now < next_warmup_ns_) return;
        next_warmup_ns_ = now + kWarmupIntervalNs;
        const uint64_t k = state_.channel_names.size();
        for (uint64_t c = thread_; c < k; c += threads_) send(c, kWarmupPayload);
        return;
    }
    const uint64_t count = state_.options.count;
    const uint64_t start = state_.measure_start_ns.load(std::memory_order_acquire);
    const double elapsed_s = now > start ? double(now - start) / 1e9 : 0;
    uint64_t due = uint64_t(elapsed_s * state_.options.rate) + 1;
    if (due > count) due = count;
    const uint64_t n = state_.subscribers;
    for (; next_ < due; ++next_) {
        const uint64_t client = next_ % n;
        if (!owns(client)) continue;
        payload_.clear();
        writer_.append(payload_, next_ / n, now, int64_t(client));
        send(client, payload_);
    }
    if (next_ == count && flushed()) {
        finished_ = true;
        if (state_.senders_done.fetch_add(1) + 1 == state_.options.threads) {
            state_.final_sent.store(count, std::memory_order_release);
        }
    }
}

}  // namespace wsrelay::loadgen
