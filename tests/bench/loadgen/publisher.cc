#include "publisher.h"

#include <cstdio>

#include "process_info.h"

namespace wsrelay::loadgen {

Publisher::Publisher(RunState& state, Poller& poller)
    : state_(state), conn_(poller, *this, 0) {}

bool Publisher::start() {
    if (!conn_.start(state_.endpoints[0], sourceAddress(0, 1))) {
        state_.reportError("publisher: " + conn_.error());
        return false;
    }
    return true;
}

void Publisher::onOpen(WsConnection&) { open_ = true; }

void Publisher::onText(WsConnection&, std::string_view message) {
    if (message.find("\"op\":\"error\"") != std::string_view::npos) {
        ++error_frames_;
        state_.reportError("publisher got " + std::string(message.substr(0, 200)));
    }
}

void Publisher::onClosed(WsConnection&, uint16_t close_code, std::string_view error) {
    open_ = false;
    state_.reportError("publisher closed (" + std::to_string(close_code) + ") " +
                       std::string(error));
    state_.setup_failed = true;
}

void Publisher::tick() {
    if (finished_ || !open_) return;
    uint64_t now = nowNs();
    const Options& o = state_.options;
    if (start_ns_ == 0) {
        if (state_.acked.load(std::memory_order_acquire) < state_.subscribers) return;
        cpu_at_start_ = selfCpuSeconds();
        if (o.relay_pid > 0) relay_cpu_at_start_ = processCpuSeconds(o.relay_pid);
        now = nowNs();
        start_ns_ = now;
        state_.publish_start_ns.store(now, std::memory_order_release);
    }
    if (sent_ < o.count) {
        double elapsed_s = double(now - start_ns_) / 1e9;
        uint64_t due = uint64_t(elapsed_s * o.rate) + 1;
        if (due > o.count) due = o.count;
        while (sent_ < due) publishOne(now);
    }
    if (sent_ == o.count && conn_.pendingBytes() == 0) {
        finished_ = true;
        state_.final_sent.store(sent_, std::memory_order_release);
    }
}

void Publisher::publishOne(uint64_t now) {
    const uint64_t k = state_.channel_names.size();
    const uint64_t channel = sent_ % k;
    const uint64_t seq = sent_ / k;
    char head[64];
    int n = std::snprintf(head, sizeof head, "{\"s\":%llu,\"t\":%llu,\"p\":\"",
                          static_cast<unsigned long long>(seq),
                          static_cast<unsigned long long>(now));
    size_t base = size_t(n) + 2; // + "\"}"
    size_t pad = state_.options.size > base ? state_.options.size - base : 0;
    if (pad_.size() < pad) pad_.assign(pad, 'x');
    frame_.clear();
    frame_ += "{\"op\":\"publish\",\"channel\":\"";
    frame_ += state_.channel_names[channel];
    frame_ += "\",\"data\":";
    frame_.append(head, size_t(n));
    frame_.append(pad_, 0, pad);
    frame_ += "\"}}";
    conn_.sendText(frame_);
    ++sent_;
}

} // namespace wsrelay::loadgen
