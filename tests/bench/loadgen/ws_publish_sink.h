#pragma once

// --publish-via client: publishing over WebSocket. wsrelay: one connection sending
// {"op":"publish","channel":C,"data":PAYLOAD} without an id (so no ack comes back). Raw: one
// connection per channel, opened on ?channel=NAME, whose text frames the server publishes on
// that channel; being subscribed too, it receives every message of its channel and drops them.

#include <memory>
#include <string>
#include <vector>

#include "publish_sink.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {

class WsPublishSink : public PublishSink, public ConnectionHandler {
public:
    WsPublishSink(RunState& state, Poller& poller);

    // PublishSink
    bool start() override;
    bool ready() const override { return open_ == conns_.size(); }
    bool canPublish() const override { return true; }
    void publish(uint32_t channel, std::string_view payload) override;
    void flush() override {}
    bool settled() const override;
    uint64_t failures() const override { return failures_; }

    // ConnectionHandler
    void onOpen(WsConnection& conn) override;
    void onText(WsConnection& conn, std::string_view message) override;
    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override;

private:
    RunState& state_;
    std::vector<std::unique_ptr<WsConnection>> conns_;
    std::vector<bool> is_open_;
    size_t open_ = 0;
    uint64_t failures_ = 0;
    std::string frame_;
};

}  // namespace wsrelay::loadgen
