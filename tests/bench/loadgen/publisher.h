#pragma once

// The fanout publisher: once the coordinator starts the measured phase, hands --count messages to
// its sink at --rate; message i goes to channel i % K with per-channel sequence number i / K (see
// message_format.h for the payload). During the warm-up it publishes the warm-up payload on every
// channel every 50 ms.

#include <cstdint>
#include <memory>

#include "message_format.h"
#include "poller.h"
#include "publish_sink.h"
#include "run_state.h"

namespace wsrelay::loadgen {

class Publisher {
public:
    Publisher(RunState& state, Poller& poller);

    bool start();
    // Called on every turn of its thread's loop.
    void tick();

    bool active() const;
    uint64_t sent() const { return sent_; }
    uint64_t startNs() const { return start_ns_; }
    uint64_t failures() const { return sink_->failures(); }

private:
    RunState& state_;
    std::unique_ptr<PublishSink> sink_;
    PayloadWriter writer_;
    bool finished_ = false;
    uint64_t start_ns_ = 0;
    uint64_t sent_ = 0;
    uint64_t next_warmup_ns_ = 0;
    size_t warmup_cursor_ = SIZE_MAX;  // the next channel of the current warm-up round
    std::string payload_;
};

}  // namespace wsrelay::loadgen
