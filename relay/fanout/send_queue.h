#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "relay/protocol/frame.h"

namespace wsrelay {

// A connection's outbound frames: a ring of shared frames, bounded by count and bytes. Empty
// queues own no memory, which keeps idle connections small; the ring doubles up to `max_frames`.
class SendQueue {
public:
    SendQueue() = default;
    SendQueue(const SendQueue&) = delete;
    SendQueue& operator=(const SendQueue&) = delete;

    size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    uint64_t bytes() const { return bytes_; }
    // Starts loading the head's slot, for a caller about to write this queue.
    void prefetchHead() const {
        if (count_ != 0) __builtin_prefetch(&ring_[head_]);
    }

    // Whether one more frame of `frame_bytes` fits under both limits.
    bool fits(size_t frame_bytes, size_t max_frames, uint64_t max_bytes) const {
        return count_ < max_frames && bytes_ + frame_bytes <= max_bytes;
    }

    void push(FramePtr frame) {
        if (count_ == capacity_) grow();
        bytes_ += frame->size();
        ring_[(head_ + count_) & (capacity_ - 1)] = std::move(frame);
        ++count_;
    }

    const FramePtr& at(size_t i) const { return ring_[(head_ + i) & (capacity_ - 1)]; }
    const FramePtr& front() const { return at(0); }

    void pop() {
        FramePtr& slot = ring_[head_];
        bytes_ -= slot->size();
        slot = FramePtr();
        head_ = (head_ + 1) & (capacity_ - 1);
        if (--count_ == 0) shrink();
    }

    void clear() {
        while (count_ > 0) pop();
    }

private:
    void grow() {
        size_t cap = capacity_ == 0 ? 4 : capacity_ * 2;
        auto ring = std::make_unique<FramePtr[]>(cap);
        for (size_t i = 0; i < count_; ++i)
            ring[i] = std::move(ring_[(head_ + i) & (capacity_ - 1)]);
        ring_ = std::move(ring);
        capacity_ = cap;
        head_ = 0;
    }

    // Give a burst's ring back once it has drained, so a connection that was busy once does not
    // keep its high-water mark for life.
    void shrink() {
        head_ = 0;
        if (capacity_ > 64) {
            ring_.reset();
            capacity_ = 0;
        }
    }

    std::unique_ptr<FramePtr[]> ring_;
    size_t capacity_ = 0;  // a power of two
    size_t head_ = 0;
    size_t count_ = 0;
    uint64_t bytes_ = 0;
};

}  // namespace wsrelay
