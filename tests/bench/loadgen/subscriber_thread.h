#pragma once

// One event-loop thread's share of the subscribers: opens them at a bounded pace, subscribes each
// to its channel and waits for the ack, then checks every delivered message's sequence number
// and latency. Connection g belongs to thread g % threads.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "histogram.h"
#include "poller.h"
#include "run_state.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

class Publisher;

struct SubscriberStats {
    uint64_t delivered = 0;   // message frames received, duplicates included
    uint64_t unique = 0;
    uint64_t duplicates = 0;
    uint64_t out_of_order = 0;
    uint64_t unexpected = 0;  // frames that are not ours: wrong channel, unparseable data
    uint64_t error_frames = 0;
    uint64_t disconnects = 0; // subscribers lost after their ack
    uint64_t last_rx_ns = 0;
    Histogram latency_us;

    void merge(const SubscriberStats& o);
};

class SubscriberThread : public ConnectionHandler {
public:
    SubscriberThread(RunState& state, int thread_index);
    ~SubscriberThread() override;

    // Runs the loop until state.stop. The publisher, when given, is ticked on this loop.
    void run(Publisher* publisher);

    Poller& poller() { return poller_; }
    const SubscriberStats& stats() const { return stats_; }
    uint64_t expectedTotal(uint64_t sent) const;

    void onOpen(WsConnection& conn) override;
    void onText(WsConnection& conn, std::string_view message) override;
    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override;

private:
    struct Subscriber {
        uint64_t global = 0;
        uint32_t channel = 0;
        bool acked = false;
        uint64_t next = 0;                  // one past the highest sequence number seen
        std::map<uint64_t, uint64_t> gaps;  // missing [first, last] below `next`
        std::unique_ptr<WsConnection> conn;
    };

    void openMore();
    void onMessage(Subscriber& sub, std::string_view message);
    void checkDone();

    RunState& state_;
    const int thread_index_;
    Poller poller_;
    std::vector<Subscriber> subs_;
    size_t next_to_open_ = 0;
    int opening_ = 0;
    int max_opening_;
    bool done_ = false;
    SubscriberStats stats_;
};

} // namespace wsrelay::loadgen
