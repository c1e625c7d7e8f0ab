#pragma once

// --publish-via redis: one plain TCP connection to Redis speaking RESP. Everything due in one
// publisher tick is queued as PUBLISH commands and goes out in one write; each reply is read and
// checked (an error reply is a failed publish). Redis channel = the channel name, so a relay must
// run with an empty broker.redis.prefix.

#include <netinet/in.h>

#include <string>

#include "publish_sink.h"
#include "tcp_connection.h"

namespace wsrelay::loadgen {

class RedisPublishSink : public PublishSink, public TcpHandler {
public:
    RedisPublishSink(RunState& state, Poller& poller);

    // PublishSink
    bool start() override;
    bool ready() const override { return conn_.open(); }
    bool canPublish() const override;
    void publish(uint32_t channel, std::string_view payload) override;
    void flush() override { conn_.flush(); }
    bool settled() const override { return outstanding_ == 0; }
    uint64_t failures() const override { return failures_; }

    // TcpHandler
    void onTcpOpen(TcpConnection&) override {}
    size_t onTcpData(TcpConnection& conn, std::string_view data) override;
    void onTcpClosed(TcpConnection& conn, std::string_view error) override;

private:
    void appendBulk(std::string_view s);

    RunState& state_;
    TcpConnection conn_;
    sockaddr_in addr_{};
    std::string address_error_;
    uint64_t outstanding_ = 0;  // commands queued or sent whose reply has not arrived
    uint64_t failures_ = 0;
    std::string command_;
};

}  // namespace wsrelay::loadgen
