#include "relay/session/flush_scheduler.h"

#include "relay/session/session.h"

namespace wsrelay {
namespace {

// While session i is written: session i + 4's object and session i + 2's queue are fetched. Each
// write is a system call that pushes the turn's other sessions out of the cache.
void prefetchAhead(const std::vector<Session*>& list, size_t i) {
    if (i + 4 < list.size() && list[i + 4] != nullptr) list[i + 4]->prefetchState();
    if (i + 2 < list.size() && list[i + 2] != nullptr) list[i + 2]->prefetchQueue();
}

}  // namespace

FlushScheduler::FlushScheduler(struct ev_loop* loop, double coalesce_window_s)
    : loop_(loop), window_(coalesce_window_s), buffer_(kWriteBufferBytes) {
    ev_timer_init(&coalesce_timer_, onCoalesceTimer, 0., 0.);
    coalesce_timer_.data = this;
}

FlushScheduler::~FlushScheduler() { stop(); }

void FlushScheduler::stop() { ev_timer_stop(loop_, &coalesce_timer_); }

void FlushScheduler::schedule(Session& session) {
    FlushSlot& slot = session.flushSlot();
    // A deferred session is written by the coalescing timer, with whatever it got meanwhile.
    if (slot.turn != FlushSlot::kNotListed || slot.deferred != FlushSlot::kNotListed) return;
    slot.turn = static_cast<uint32_t>(turn_.size());
    turn_.push_back(&session);
}

void FlushScheduler::cancel(Session& session) {
    FlushSlot& slot = session.flushSlot();
    if (slot.turn != FlushSlot::kNotListed) turn_[slot.turn] = nullptr;
    if (slot.deferred != FlushSlot::kNotListed) deferred_[slot.deferred] = nullptr;
    slot.turn = FlushSlot::kNotListed;
    slot.deferred = FlushSlot::kNotListed;
}

void FlushScheduler::flushTurn() {
    const ev_tstamp now = ev_now(loop_);
    // Indexed, not iterated: a write that fails may close its session, which nulls its entry.
    for (size_t i = 0; i < turn_.size(); ++i) {
        prefetchAhead(turn_, i);
        Session* session = turn_[i];
        if (session == nullptr) continue;
        FlushSlot& slot = session->flushSlot();
        slot.turn = FlushSlot::kNotListed;
        if (now - slot.last_write_at < window_) {
            defer(*session, now);
        } else {
            session->flushQueued();
        }
    }
    turn_.clear();
}

void FlushScheduler::defer(Session& session, ev_tstamp now) {
    FlushSlot& slot = session.flushSlot();
    slot.deferred = static_cast<uint32_t>(deferred_.size());
    deferred_.push_back(&session);
    if (!ev_is_active(&coalesce_timer_)) {
        ev_timer_set(&coalesce_timer_, slot.last_write_at + window_ - now, 0.);
        ev_timer_start(loop_, &coalesce_timer_);
    }
}

void FlushScheduler::onCoalesceTimer(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<FlushScheduler*>(w->data);
    for (size_t i = 0; i < self->deferred_.size(); ++i) {
        prefetchAhead(self->deferred_, i);
        Session* session = self->deferred_[i];
        if (session == nullptr) continue;
        session->flushSlot().deferred = FlushSlot::kNotListed;
        session->flushQueued();
    }
    self->deferred_.clear();
}

}  // namespace wsrelay
