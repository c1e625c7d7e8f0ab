#include "publisher.h"

#include "process_info.h"

namespace wsrelay::loadgen {
namespace {

constexpr uint64_t kWarmupIntervalNs = 50'000'000;

}  // namespace

Publisher::Publisher(RunState& state, Poller& poller)
    : state_(state), sink_(makePublishSink(state, poller)),
      writer_(state.options.size, state.options.words) {}

bool Publisher::start() { return sink_->start(); }

bool Publisher::active() const {
    return !finished_ && state_.phase.load(std::memory_order_relaxed) != Phase::Setup;
}

void Publisher::tick() {
    if (finished_) return;
    const Phase phase = state_.phase.load(std::memory_order_acquire);
    const uint64_t now = nowNs();
    const uint64_t k = state_.channel_names.size();
    if (phase == Phase::Setup) {
        if (sink_->ready()) state_.publisher_ready.store(true, std::memory_order_release);
    } else if (phase == Phase::WarmUp) {
        if (now >= next_warmup_ns_) {
            warmup_cursor_ = 0;
            next_warmup_ns_ = now + kWarmupIntervalNs;
        }
        while (warmup_cursor_ < k && sink_->canPublish()) {
            sink_->publish(uint32_t(warmup_cursor_++), kWarmupPayload);
        }
    } else {
        if (start_ns_ == 0) start_ns_ = now;
        const uint64_t count = state_.options.count;
        const double elapsed_s = double(now - start_ns_) / 1e9;
        uint64_t due = uint64_t(elapsed_s * state_.options.rate) + 1;
        if (due > count) due = count;
        while (sent_ < due && sink_->canPublish()) {
            payload_.clear();
            writer_.append(payload_, sent_ / k, now);
            sink_->publish(uint32_t(sent_ % k), payload_);
            ++sent_;
        }
    }
    sink_->flush();
    if (phase == Phase::Measure && sent_ == state_.options.count && sink_->settled()) {
        finished_ = true;
        state_.final_sent.store(sent_, std::memory_order_release);
    }
}

}  // namespace wsrelay::loadgen
