#pragma once

// What the threads of one fanout or idle run share: read-only setup, and atomics that change a
// handful of times per run (never per message).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "options.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

struct RunState {
    const Options& options;
    std::vector<Endpoint> endpoints;
    std::vector<std::string> channel_names; // subscriber g subscribes to channel g % size()
    uint32_t subscribers = 0;

    std::atomic<uint32_t> acked{0};       // subscriptions live
    std::atomic<bool> setup_failed{false};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> publish_start_ns{0};
    // Messages published once the publisher is done and flushed; UINT64_MAX before.
    std::atomic<uint64_t> final_sent{UINT64_MAX};
    std::atomic<int> threads_done{0};

    explicit RunState(const Options& o) : options(o) {}

    uint32_t channelOf(uint64_t subscriber) const {
        return uint32_t(subscriber % channel_names.size());
    }
    // Messages of the first `sent` that went to channel c: message i goes to channel i % K.
    uint64_t expectedFor(uint32_t c, uint64_t sent) const {
        uint64_t k = channel_names.size();
        return sent / k + (c < sent % k ? 1 : 0);
    }

    void reportError(const std::string& what) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++error_count_;
        if (first_error_.empty()) first_error_ = what;
    }
    std::string firstError() {
        std::lock_guard<std::mutex> lock(mutex_);
        return first_error_;
    }

private:
    std::mutex mutex_;
    std::string first_error_;
    uint64_t error_count_ = 0;
};

} // namespace wsrelay::loadgen
