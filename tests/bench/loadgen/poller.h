#pragma once

// One epoll instance per load-generator thread. Sockets are registered once, edge-triggered for
// both directions, so the data path makes no epoll_ctl calls.

#include <cstdint>
#include <vector>

namespace wsrelay::loadgen {

class PollTarget {
public:
    virtual ~PollTarget() = default;
    virtual void onEvents(uint32_t events) = 0;
};

class Poller {
public:
    Poller();
    ~Poller();
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;

    // False (errno set) when epoll_ctl fails.
    bool add(int fd, PollTarget* target);
    // Waits at most timeout_ms and dispatches every ready target; returns the number dispatched.
    int poll(int timeout_ms);

    // Scratch receive buffer shared by every connection of this thread: a connection only keeps
    // the bytes of an incomplete frame.
    std::vector<uint8_t>& rxBuffer() { return rx_; }

private:
    int epfd_;
    std::vector<uint8_t> rx_;
};

}  // namespace wsrelay::loadgen
