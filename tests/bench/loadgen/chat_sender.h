#pragma once

// One thread's share of the chat traffic. Message m (of --count, at --rate in total from the
// start of the measured phase) is sent by client m % N over its own connection, with sequence
// number m / N (so each sender numbers its messages 0, 1, 2...); a thread sends the messages of
// its own clients. During the warm-up, client c sends the warm-up payload on channel c (c < K)
// every 50 ms.

#include <cstdint>
#include <functional>
#include <string>

#include "message_format.h"
#include "run_state.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

class ChatSender {
public:
    ChatSender(RunState& state, int thread_index,
               std::function<WsConnection&(uint64_t client)> connection);

    // Called on every turn of the thread's loop.
    void tick();

    bool active() const;
    // Messages due from this thread's clients while their connection was down.
    uint64_t unsent() const { return unsent_; }
    // Message indexes considered so far (this thread sent its own among them).
    uint64_t progress() const { return next_; }

private:
    bool owns(uint64_t client) const { return client % threads_ == thread_; }
    void send(uint64_t client, std::string_view payload);
    bool flushed() const;

    RunState& state_;
    const uint64_t thread_;
    const uint64_t threads_;
    std::function<WsConnection&(uint64_t)> connection_;
    PayloadWriter writer_;
    uint64_t next_ = 0;  // the first message index not yet considered
    uint64_t next_warmup_ns_ = 0;
    uint64_t unsent_ = 0;
    bool finished_ = false;
    std::string payload_;
    std::string frame_;
};

}  // namespace wsrelay::loadgen
