#pragma once

// The fanout publisher: one WebSocket sending {"op":"publish"} at a fixed rate once every
// subscriber is acked. Message i goes to channel i % K with per-channel sequence number i / K and
// carries the CLOCK_MONOTONIC send time: data = {"s":SEQ,"t":NS,"p":"xxx..."}, padded so that
// data is --size bytes.

#include <cstdint>
#include <string>

#include "poller.h"
#include "run_state.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

class Publisher : public ConnectionHandler {
public:
    Publisher(RunState& state, Poller& poller);

    bool start();
    // Called on every turn of its thread's loop: starts publishing when everything is ready,
    // then sends whatever the rate says is due.
    void tick();

    bool publishing() const { return start_ns_ != 0 && !finished_; }
    uint64_t sent() const { return sent_; }
    uint64_t startNs() const { return start_ns_; }
    uint64_t errorFrames() const { return error_frames_; }
    double cpuAtStart() const { return cpu_at_start_; }
    double relayCpuAtStart() const { return relay_cpu_at_start_; }

    void onOpen(WsConnection& conn) override;
    void onText(WsConnection& conn, std::string_view message) override;
    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override;

private:
    void publishOne(uint64_t now);

    RunState& state_;
    WsConnection conn_;
    bool open_ = false;
    bool finished_ = false;
    uint64_t start_ns_ = 0;
    uint64_t sent_ = 0;
    uint64_t error_frames_ = 0;
    double cpu_at_start_ = 0;
    double relay_cpu_at_start_ = -1;
    std::string pad_;
    std::string frame_;
};

} // namespace wsrelay::loadgen
