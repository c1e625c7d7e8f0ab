#pragma once

// Several broker endpoints (tests/redis/broker_endpoint.h), each on its own libev loop, driven from
// the test thread one turn at a time until a condition holds or a deadline passes. Every broker
// test uses this one rig, so "pump until" means the same thing everywhere.
#include <ev.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/redis/broker_endpoint.h"

namespace wsrelay::testing {

class BrokerRig {
public:
    using Clock = std::chrono::steady_clock;

    explicit BrokerRig(Clock::duration deadline) : deadline_(deadline) {}

    // A new endpoint of `factory`, with the next worker index.
    Endpoint& add(BrokerFactory& factory) {
        endpoints_.push_back(
            std::make_unique<Endpoint>(factory, static_cast<int>(endpoints_.size())));
        return *endpoints_.back();
    }
    void clear() { endpoints_.clear(); }

    // Runs every endpoint's loop one turn at a time until `done` or the deadline.
    bool pumpUntil(const std::function<bool()>& done) { return pumpUntil(done, deadline_); }
    bool pumpUntil(const std::function<bool()>& done, Clock::duration limit) {
        const auto deadline = Clock::now() + limit;
        while (!done()) {
            if (Clock::now() > deadline) return false;
            turn();
        }
        return true;
    }
    // Runs every loop for `duration` whatever happens (for "nothing bad happens" checks).
    void pumpFor(Clock::duration duration, const std::function<void()>& each_turn = {}) {
        const auto end = Clock::now() + duration;
        while (Clock::now() < end) {
            turn();
            if (each_turn) each_turn();
        }
    }
    bool allUp() {
        return pumpUntil([this] {
            for (auto& e : endpoints_) {
                if (!e->up()) return false;
            }
            return true;
        });
    }
    // Once `channel` (which `e` subscribes) delivered `marker`, everything published before it
    // by the same publisher on that channel has been delivered too.
    bool syncedThrough(Endpoint& e, const std::string& channel, const std::string& marker) {
        return pumpUntil([&] {
            const auto data = e.dataOf(channel);
            return !data.empty() && data.back() == marker;
        });
    }
    // Until the broker confirmed `channel` to `e` `times` times in all (onSubscribed).
    bool confirmed(Endpoint& e, const std::string& channel, int times = 1) {
        return pumpUntil([&] { return e.confirmations(channel) >= times; });
    }

private:
    void turn() {
        // EVRUN_ONCE blocks until an event; each endpoint's 5 ms tick bounds that wait.
        for (auto& e : endpoints_) ev_run(e->loop, EVRUN_ONCE);
    }

    const Clock::duration deadline_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

}  // namespace wsrelay::testing
