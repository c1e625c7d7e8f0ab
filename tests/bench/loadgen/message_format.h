#pragma once

// The bytes the load generator publishes and how a subscriber reads them back.
//
// Measured payload: {"s":SEQ,"t":NS,"p":"xxx..."} (chat adds the sender: "f":CLIENT after "t"),
// padded with p to --size bytes; t is the CLOCK_MONOTONIC time the publish was handed to the
// socket. Warm-up payload: {"w":1}. With --protocol wsrelay the payload arrives as the data of
// {"op":"message","channel":C,"data":...}, on a channel with history as the data of
// {"op":"message","channel":C,"offset":N,"epoch":"E","data":...}; with raw it is the whole frame.

#include <cstdint>
#include <string>
#include <string_view>

#include "options.h"

namespace wsrelay::loadgen {

inline constexpr std::string_view kWarmupPayload = R"({"w":1})";

class PayloadWriter {
public:
    // words: pad with text that compresses about as well as JSON (words, numbers, spaces; no
    // quote or backslash, so it stays one JSON string) instead of x's, which compress 100-fold.
    PayloadWriter(uint32_t size, bool words) : size_(size), words_(words) {}

    // sender < 0: no "f" field (fanout).
    void append(std::string& out, uint64_t seq, uint64_t sent_ns, int64_t sender = -1);

private:
    uint32_t size_;
    bool words_;
    std::string pad_;
};

struct Delivery {
    enum class Kind {
        Measured,  // seq, sent_ns (and sender when asked for) are set
        Warmup,
        Control,     // wsrelay: another op (ack, pong, reconnect...): not a delivery
        ErrorFrame,  // wsrelay: {"op":"error"}
        Unexpected,  // another channel's message, or a payload that is not ours
    };
    Kind kind = Kind::Unexpected;
    uint64_t seq = 0;
    uint64_t sent_ns = 0;
    uint64_t sender = 0;
    // wsrelay, a channel with history: the message's place in it (0 and empty without one). The
    // epoch is a view into the frame.
    uint64_t offset = 0;
    std::string_view epoch;
};

// Classifies one text frame received by a subscriber of `channel`.
Delivery classifyFrame(std::string_view frame, Protocol protocol, std::string_view channel,
                       bool with_sender);

}  // namespace wsrelay::loadgen
