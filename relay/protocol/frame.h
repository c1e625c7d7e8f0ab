#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>
#include <utility>

namespace wsrelay {

class Frame;

// Owning handle to a Frame.
class FramePtr {
public:
    FramePtr() = default;
    explicit FramePtr(Frame* adopted) : f_(adopted) {}
    FramePtr(const FramePtr& o);
    FramePtr(FramePtr&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
    FramePtr& operator=(FramePtr o) noexcept {
        std::swap(f_, o.f_);
        return *this;
    }
    ~FramePtr();

    Frame* get() const { return f_; }
    Frame* operator->() const { return f_; }
    Frame& operator*() const { return *f_; }
    explicit operator bool() const { return f_ != nullptr; }

private:
    Frame* f_ = nullptr;
};

// A complete server-to-client WebSocket frame (header + payload), immutable once built and shared
// by every local subscriber of a message: server frames are unmasked, so the bytes are identical
// for all of them. The count is not atomic: a Frame never leaves the worker that built it.
class Frame {
public:
    static Frame* allocate(size_t capacity) {
        void* mem = std::malloc(sizeof(Frame) + capacity);
        if (mem == nullptr) throw std::bad_alloc();  // OOM is the one crash we accept
        return new (mem) Frame(capacity);
    }

    char* data() { return reinterpret_cast<char*>(this + 1); }
    const char* data() const { return reinterpret_cast<const char*>(this + 1); }
    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    void setSize(size_t n) { size_ = static_cast<uint32_t>(n); }
    std::string_view bytes() const { return {data(), size_}; }
    // When the message in this frame entered the relay fleet (wall clock, µs); 0 = not a stamped
    // message. Read at the socket write for wsrelay_delivery_latency_seconds.
    int64_t enteredMicros() const { return entered_us_; }
    void setEnteredMicros(int64_t us) { entered_us_ = us; }
    // The same message compressed (permessage-deflate, RFC 7692: RSV1 set), for the subscribers
    // that negotiated it; null when none was built (no such subscriber, too small, or not smaller).
    // Built once per worker and message, and shared like the frame itself.
    const FramePtr& deflated() const { return deflated_; }
    void setDeflated(FramePtr deflated) { deflated_ = std::move(deflated); }

    void ref() { ++refs_; }
    void unref() {
        if (--refs_ == 0) {
            this->~Frame();
            std::free(this);
        }
    }

private:
    explicit Frame(size_t capacity) : capacity_(static_cast<uint32_t>(capacity)) {}
    int64_t entered_us_ = 0;
    FramePtr deflated_;
    uint32_t refs_ = 1;
    uint32_t size_ = 0;
    uint32_t capacity_;
};

inline FramePtr::FramePtr(const FramePtr& o) : f_(o.f_) {
    if (f_) f_->ref();
}
inline FramePtr::~FramePtr() {
    if (f_) f_->unref();
}

}  // namespace wsrelay
