#pragma once

// One event-loop thread's share of the subscribers (fanout, idle) or clients (chat): opens them at
// a bounded pace and subscribes each to its channel (wsrelay: subscribe op, then the ack; raw: the
// channel is in the URL and the open connection counts), notes the warm-up message, then checks
// every delivered message's sequence number per (sender, receiver) and its latency. Connection g
// belongs to thread g % threads. In chat mode the thread also sends its clients' messages.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chat_sender.h"
#include "histogram.h"
#include "poller.h"
#include "run_state.h"
#include "sequence_tracker.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

class Publisher;

struct SubscriberStats {
    uint64_t delivered = 0;  // message frames received, duplicates included
    uint64_t unique = 0;
    uint64_t duplicates = 0;
    uint64_t out_of_order = 0;
    uint64_t unexpected = 0;  // frames that are not ours: wrong channel, unparseable data
    uint64_t error_frames = 0;
    uint64_t disconnects = 0;  // subscribers lost after their ack
    uint64_t unsent = 0;       // chat: messages due from a client whose connection was down
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
    // Statistics; the chat sender's unsent count is folded in once run() returned.
    const SubscriberStats& stats() const { return stats_; }
    uint64_t expectedTotal(uint64_t sent) const;
    // Chat: the message indexes this thread's sender has gone through.
    uint64_t chatProgress() const { return chat_sender_ ? chat_sender_->progress() : 0; }

    // ConnectionHandler
    void onOpen(WsConnection& conn) override;
    void onText(WsConnection& conn, std::string_view message) override;
    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override;

private:
    struct Subscriber {
        uint64_t global = 0;
        uint32_t channel = 0;
        bool acked = false;
        bool warmed = false;
        size_t first_stream = 0;  // in tracker_: one stream per sender this subscriber hears
        std::unique_ptr<WsConnection> conn;
    };

    void openMore();
    void subscribed(Subscriber& sub);
    void onMessage(Subscriber& sub, std::string_view message);
    void checkDone();

    RunState& state_;
    const bool chat_;
    Poller poller_;
    std::vector<Subscriber> subs_;
    SequenceTracker tracker_;
    std::unique_ptr<ChatSender> chat_sender_;
    size_t next_to_open_ = 0;
    int opening_ = 0;
    int max_opening_;
    bool done_ = false;
    SubscriberStats stats_;
};

}  // namespace wsrelay::loadgen
