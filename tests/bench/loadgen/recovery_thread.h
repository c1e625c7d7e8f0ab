#pragma once

// The recovery mode's subscribers on one event-loop thread (connection g belongs to thread
// g % threads). Each subscribes to its channel (which must keep history: the ack carries the
// channel's offset and epoch), follows its position (the offset and epoch of the last message, or
// of the ack before any message), and checks every message's sequence number and offset. When its
// relay drains (close 1001, after {"op":"reconnect"}) it reconnects to a relay that is not
// draining and subscribes with "since" set to that position; the messages that arrive before the
// ack are the recovered ones, and the ack must say "recovered":true with the offset the client has
// reached. Any other close after the subscription counts as a disconnect and is recovered the same
// way.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "histogram.h"
#include "poller.h"
#include "run_state.h"
#include "sequence_tracker.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

class Publisher;

// What the recovery threads share with the coordinator beyond RunState.
struct RecoveryShared {
    explicit RecoveryShared(std::vector<Endpoint> all)
        : targets(std::move(all)), draining(new std::atomic<bool>[targets.size()]) {
        for (size_t i = 0; i < targets.size(); ++i) draining[i] = false;
    }

    // The --url endpoints (subscribers start on these, round-robin), then the --spare-url ones.
    const std::vector<Endpoint> targets;
    // A relay that closed a subscriber with 1001 drains: nobody reconnects to it.
    const std::unique_ptr<std::atomic<bool>[]> draining;
    // Subscribers between losing their connection and the ack of their recovering subscribe.
    std::atomic<int64_t> recovering{0};
};

struct RecoveryStats {
    uint64_t delivered = 0;  // message frames, recovered ones and duplicates included
    uint64_t unique = 0;
    uint64_t duplicates = 0;
    uint64_t out_of_order = 0;
    uint64_t unexpected = 0;
    uint64_t error_frames = 0;
    uint64_t offset_errors = 0;  // a message whose offset is not the previous one + 1 (same epoch)
    uint64_t epoch_changes = 0;
    uint64_t reconnect_notices = 0;   // {"op":"reconnect"}
    uint64_t drain_closes = 0;        // closes with 1001
    uint64_t disconnects = 0;         // other closes after the subscription
    uint64_t reconnect_failures = 0;  // a reconnect that did not reach its ack (then retried)
    uint64_t recovered = 0;           // acks of a subscribe with since saying "recovered":true
    uint64_t not_recovered = 0;       // ... saying false, or without "recovered"
    uint64_t no_position = 0;         // subscribers whose first ack carried no offset/epoch
    uint64_t ack_mismatches = 0;      // a recovered ack whose offset/epoch is not the client's
    uint64_t recovered_messages = 0;  // messages between a subscribe with since and its ack
    uint64_t first_close_ns = 0;      // 1001 closes: first and last
    uint64_t last_close_ns = 0;
    uint64_t last_recovered_ns = 0;  // the last recovering subscribe's ack
    uint64_t last_rx_ns = 0;
    Histogram latency_us;   // publish -> delivery, every message
    Histogram recovery_us;  // lost connection -> ack of the recovering subscribe

    void merge(const RecoveryStats& o);
};

class RecoveryThread : public ConnectionHandler {
public:
    RecoveryThread(RunState& state, RecoveryShared& shared, int thread_index);
    ~RecoveryThread() override;

    // Runs the loop until state.stop; ticks the publisher when given.
    void run(Publisher* publisher);

    Poller& poller() { return poller_; }
    const RecoveryStats& stats() const { return stats_; }
    uint64_t expectedTotal(uint64_t sent) const;

    // ConnectionHandler
    void onOpen(WsConnection& conn) override;
    void onText(WsConnection& conn, std::string_view message) override;
    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override;

private:
    enum class Step {
        Idle,
        Opening,     // first connection, before its ack
        Live,        // subscribed
        Waiting,     // lost its connection; reconnects at retry_ns
        Recovering,  // reconnected (or reconnecting), subscribe with since sent, before its ack
    };
    struct Subscriber {
        uint64_t global = 0;
        uint32_t channel = 0;
        uint32_t target = 0;  // index in RecoveryShared::targets
        Step step = Step::Idle;
        bool has_position = false;
        bool warmed = false;
        uint64_t offset = 0;
        std::string epoch;
        uint64_t next_id = 1;
        uint64_t lost_ns = 0;  // when the connection was lost (recovery_us starts here)
        uint64_t retry_ns = 0;
        uint32_t attempts = 0;
        std::unique_ptr<WsConnection> conn;
    };

    void openMore();
    void retryDue(uint64_t now);
    void reconnect(Subscriber& sub);
    void onAck(Subscriber& sub, std::string_view message);
    void onMessage(Subscriber& sub, std::string_view message);
    void lost(Subscriber& sub, uint16_t close_code, std::string_view error);
    void checkDone();

    RunState& state_;
    RecoveryShared& shared_;
    Poller poller_;
    std::vector<Subscriber> subs_;
    std::vector<uint32_t> waiting_;  // subscribers in Step::Waiting
    SequenceTracker tracker_;
    size_t next_to_open_ = 0;
    int opening_ = 0;
    int max_opening_;
    uint32_t rng_;
    bool done_ = false;
    RecoveryStats stats_;
};

}  // namespace wsrelay::loadgen
