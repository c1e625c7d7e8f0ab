#pragma once

// Where the fanout publisher hands its messages: a WebSocket client of the server under test, a
// Redis connection (PUBLISH) or the server's HTTP publish endpoint. All of a sink's sockets live
// on the publisher's thread. Failures are counted and reported through RunState; losing a sink
// connection fails the run (RunState::setup_failed) since the publishes would be lost unseen.

#include <cstdint>
#include <memory>
#include <string_view>

#include "poller.h"
#include "run_state.h"

namespace wsrelay::loadgen {

class PublishSink {
public:
    virtual ~PublishSink() = default;

    // Starts connecting. False (the error reported) on immediate failure.
    virtual bool start() = 0;
    // Every connection is up.
    virtual bool ready() const = 0;
    // Whether one more message can be handed to a socket now (an HTTP connection without
    // pipelining takes one request at a time).
    virtual bool canPublish() const = 0;
    // Hands `payload` for channel index `channel` over; it reaches the socket by flush() at the
    // latest.
    virtual void publish(uint32_t channel, std::string_view payload) = 0;
    virtual void flush() = 0;
    // Everything written, and every reply the sink waits for (Redis, HTTP) received.
    virtual bool settled() const = 0;
    // Publishes the server refused (an {"op":"error"}, a Redis error reply, a non-2xx answer) or
    // whose answer was lost with its connection.
    virtual uint64_t failures() const = 0;
};

// The sink --publish-via selects.
std::unique_ptr<PublishSink> makePublishSink(RunState& state, Poller& poller);

}  // namespace wsrelay::loadgen
