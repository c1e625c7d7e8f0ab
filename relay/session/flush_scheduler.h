#pragma once

#include <ev.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wsrelay {

class Session;

// What the flush scheduler keeps in each session: where it is listed, and when its socket was last
// written. A session holds one at the front of its object, next to what a write reads.
struct FlushSlot {
    static constexpr uint32_t kNotListed = static_cast<uint32_t>(-1);
    uint32_t turn = kNotListed;      // index in the list written at the end of this loop turn
    uint32_t deferred = kNotListed;  // index in the list the coalescing timer writes
    ev_tstamp last_write_at = 0;     // loop time of the last socket write
};

// A worker's write batching, end to end. A session that gets frames is listed once
// (schedule()); just before the loop sleeps (flushTurn(), after the broker's flush) each listed
// session writes its queue in one coalesced write (Session::flushQueued). A socket written less
// than websocket.write_coalesce_ms ago is deferred instead: one timer, armed for the end of the
// first deferred socket's window, writes the whole deferred list. A message to a quiet socket so
// leaves at once, and a hot socket takes a window's worth of frames per write, waiting at most one
// window more. It also owns the buffer those writes coalesce frames into. Single-threaded.
class FlushScheduler {
public:
    static constexpr size_t kWriteBufferBytes = 64 * 1024;

    FlushScheduler(struct ev_loop* loop, double coalesce_window_s);
    ~FlushScheduler();
    FlushScheduler(const FlushScheduler&) = delete;
    FlushScheduler& operator=(const FlushScheduler&) = delete;

    // `session` got frames to send: written at the end of this turn, or with the deferred ones.
    void schedule(Session& session);
    // `session` is going away: it is written by neither list.
    void cancel(Session& session);
    // Once per loop turn, just before the loop sleeps.
    void flushTurn();
    // The worker stops: the coalescing timer no longer fires.
    void stop();
    // A session wrote its socket now (what the coalescing window is measured from).
    void wrote(FlushSlot& slot) const { slot.last_write_at = ev_now(loop_); }

    // Per-worker buffer for coalescing queued frames into one socket write.
    char* buffer() { return buffer_.data(); }
    size_t bufferSize() const { return buffer_.size(); }

    size_t listedThisTurn() const { return turn_.size(); }
    size_t deferredCount() const { return deferred_.size(); }

private:
    void defer(Session& session, ev_tstamp now);
    static void onCoalesceTimer(struct ev_loop* loop, ev_timer* w, int revents);

    struct ev_loop* const loop_;
    const ev_tstamp window_;
    std::vector<Session*> turn_;      // sessions with frames queued this turn; null = gone
    std::vector<Session*> deferred_;  // sessions waiting for coalesce_timer_; null = gone
    ev_timer coalesce_timer_{};
    std::vector<char> buffer_;
};

}  // namespace wsrelay
