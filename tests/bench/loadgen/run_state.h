#pragma once

// What the threads of one fanout, chat or idle run share: read-only setup, and atomics that change
// a handful of times per run (never per message).

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "first_error.h"
#include "options.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

// Setup: connections open and subscribe. WarmUp: warm-up messages go out every 50 ms until every
// subscriber has received one. Measure: the counted messages; warm-up stragglers are ignored.
enum class Phase { Setup, WarmUp, Measure };

struct RunState {
    const Options& options;
    std::vector<Endpoint> endpoints;
    std::vector<std::string> channel_names;  // subscriber g subscribes to channel g % size()
    uint32_t subscribers = 0;

    std::atomic<Phase> phase{Phase::Setup};
    std::atomic<uint32_t> acked{0};   // subscriptions live (raw: connections open)
    std::atomic<uint32_t> warmed{0};  // subscribers that received a warm-up message
    std::atomic<bool> publisher_ready{false};
    std::atomic<bool> setup_failed{false};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> measure_start_ns{0};
    // Messages published once every publisher is done and flushed; UINT64_MAX before.
    std::atomic<uint64_t> final_sent{UINT64_MAX};
    std::atomic<int> senders_done{0};  // chat: threads that sent their share
    std::atomic<int> threads_done{0};

    explicit RunState(const Options& o) : options(o) {}

    uint32_t channelOf(uint64_t subscriber) const {
        return uint32_t(subscriber % channel_names.size());
    }
    // Chat: the clients on channel c (c, c + K, c + 2K, ... below N).
    uint64_t membersOf(uint32_t c) const {
        const uint64_t k = channel_names.size();
        return c < subscribers ? (subscribers - c + k - 1) / k : 0;
    }
    // Messages of the first `sent` that a subscriber of channel c expects. Fanout: message i goes
    // to channel i % K. Chat: message m is sent by client m % N on its channel, and every client
    // of that channel, the sender included, gets it.
    uint64_t expectedFor(uint32_t c, uint64_t sent) const {
        const uint64_t k = channel_names.size();
        if (options.mode != Mode::Chat) return sent / k + (c < sent % k ? 1 : 0);
        const uint64_t n = subscribers;
        const uint64_t rest = sent % n;  // clients below `rest` sent one more than the others
        const uint64_t senders_with_extra = rest > c ? (rest - c + k - 1) / k : 0;
        return membersOf(c) * (sent / n) + senders_with_extra;
    }

    void reportError(const std::string& what) { first_error_.note(what); }
    std::string firstError() { return first_error_.get(); }

private:
    FirstError first_error_;
};

}  // namespace wsrelay::loadgen
