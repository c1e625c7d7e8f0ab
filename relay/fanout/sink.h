#pragma once

#include "relay/protocol/frame.h"

namespace wsrelay {

// What the Hub writes to: one client connection. Session implements it; hub tests use a fake.
class Sink {
public:
    virtual ~Sink() = default;
    // Queues a frame shared with other subscribers. Must not subscribe, unsubscribe or destroy
    // anything in the Hub (it runs inside the fan-out loop): a sink that must go away because of
    // this frame (slow consumer) marks itself closing and leaves the Hub later.
    virtual void push(const FramePtr& frame) = 0;
};

}  // namespace wsrelay
