#include "relay/hook/hook_queues.h"

#include <utility>

namespace wsrelay {

HookQueues::Push HookQueues::push(uint64_t connection, PendingHookEvent event) {
    const uint64_t bytes = event.bytes();
    auto it = connections_.find(connection);
    if (it == connections_.end()) {
        it = connections_.emplace(connection, Connection{}).first;
    } else if (event.event != HookEvent::Disconnect) {
        const Connection& c = it->second;
        if (c.events.size() > limits_.events_per_connection ||
            c.bytes + bytes > limits_.bytes_per_connection || bytes_ + bytes > limits_.bytes) {
            return Push::Full;
        }
    }
    Connection& c = it->second;
    c.events.push_back(std::move(event));
    c.bytes += bytes;
    bytes_ += bytes;
    return c.events.size() == 1 ? Push::Current : Push::Queued;
}

bool HookQueues::close(uint64_t connection, std::string user, std::string meta,
                       std::optional<PendingHookEvent> disconnect) {
    auto it = connections_.find(connection);
    if (it == connections_.end() && !disconnect) return false;
    if (it == connections_.end()) it = connections_.emplace(connection, Connection{}).first;
    it->second.closed = Closed{std::move(user), std::move(meta)};
    if (!disconnect) return false;
    return push(connection, std::move(*disconnect)) == Push::Current;
}

PendingHookEvent* HookQueues::current(uint64_t connection) {
    auto it = connections_.find(connection);
    return it == connections_.end() ? nullptr : &it->second.events.front();
}

const HookQueues::Closed* HookQueues::closed(uint64_t connection) const {
    auto it = connections_.find(connection);
    return it == connections_.end() || !it->second.closed ? nullptr : &*it->second.closed;
}

void HookQueues::sent(uint64_t connection) {
    Connection& c = connections_.at(connection);
    const uint64_t bytes = c.events.front().bytes();
    c.current_sent = true;
    c.bytes -= bytes;
    bytes_ -= bytes;
}

PendingHookEvent HookQueues::finish(uint64_t connection) {
    auto it = connections_.find(connection);
    Connection& c = it->second;
    PendingHookEvent done = std::move(c.events.front());
    c.events.pop_front();
    if (!c.current_sent) {
        c.bytes -= done.bytes();
        bytes_ -= done.bytes();
    }
    c.current_sent = false;
    c.current_waiting = false;
    if (c.events.empty()) connections_.erase(it);
    return done;
}

size_t HookQueues::abandon(const std::function<void(const PendingHookEvent&, bool)>& f) {
    size_t count = 0;
    for (const auto& [id, c] : connections_) {
        bool in_flight = c.current_sent;
        for (const PendingHookEvent& e : c.events) {
            f(e, in_flight);
            in_flight = false;
            ++count;
        }
    }
    connections_.clear();
    ready_.clear();
    bytes_ = 0;
    return count;
}

}  // namespace wsrelay
