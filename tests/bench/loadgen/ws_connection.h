#pragma once

// One client WebSocket on a Poller: non-blocking connect from a chosen loopback source address,
// the opening handshake, masked sends, ping -> pong, and the closing handshake. Everything the
// application sees arrives through ConnectionHandler on the Poller's thread.

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "poller.h"
#include "ws_codec.h"

namespace wsrelay::loadgen {

struct Endpoint {
    sockaddr_in addr{};
    std::string host;     // Host header: "127.0.0.1:8080"
    std::string path;     // "/ws"
    std::string headers;  // extra request header lines, CRLF-terminated
};

// Parses ws://HOST:PORT/PATH with an IPv4 literal host. False with `error` set otherwise.
bool parseWsUrl(std::string_view url, Endpoint& out, std::string& error);

class WsConnection;

class ConnectionHandler {
public:
    virtual ~ConnectionHandler() = default;
    virtual void onOpen(WsConnection& conn) = 0;
    virtual void onText(WsConnection& conn, std::string_view message) = 0;
    // The socket is closed. close_code is the relay's close code, or 1006 when none arrived;
    // error is empty after a clean closing handshake. The connection may be started again here.
    virtual void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) = 0;
};

class WsConnection : public PollTarget {
public:
    enum class State { Idle, Connecting, Handshaking, Open, Closing };

    WsConnection(Poller& poller, ConnectionHandler& handler, uint32_t index)
        : poller_(poller), handler_(handler), index_(index) {}
    ~WsConnection() override;
    WsConnection(const WsConnection&) = delete;
    WsConnection& operator=(const WsConnection&) = delete;

    // Starts a non-blocking connect from `source` (see openClientSocket). `query` (e.g.
    // "channel=bench") is appended to the endpoint's path. False with error() set on immediate
    // failure.
    bool start(const Endpoint& endpoint, in_addr source, std::string_view query = {});
    // Queues a masked text frame and writes what the socket takes now.
    void sendText(std::string_view payload);
    // Starts the closing handshake; the socket closes when the relay closes its side.
    void close(uint16_t code);
    // Closes the socket now, without a handshake and without calling the handler.
    void abort();

    State state() const { return state_; }
    uint32_t index() const { return index_; }
    const std::string& error() const { return error_; }
    // Bytes queued but not yet accepted by the kernel.
    size_t pendingBytes() const { return out_.size() - out_offset_; }

    void onEvents(uint32_t events) override;

private:
    void onConnected();
    void readAll(bool until_eof);
    // Consumes complete frames from data; returns the bytes consumed, or SIZE_MAX after the
    // connection ended inside a handler or on a protocol error.
    size_t consumeFrames(const uint8_t* data, size_t len);
    bool handleFrame(const FrameHeader& header, const uint8_t* payload);
    bool consumeHandshake(const uint8_t* data, size_t len, size_t& consumed);
    void queueFrame(Opcode opcode, std::string_view payload);
    void flush();
    void finish(uint16_t code, std::string error);
    uint32_t nextMask();

    Poller& poller_;
    ConnectionHandler& handler_;
    const uint32_t index_;
    int fd_ = -1;
    uint64_t generation_ = 0;
    State state_ = State::Idle;
    bool close_sent_ = false;
    bool assembling_ = false;
    uint16_t close_code_ = 1006;
    uint32_t rng_ = 0;
    std::string accept_;
    std::string out_;
    size_t out_offset_ = 0;
    std::string in_;       // an incomplete frame (or handshake) carried to the next read
    std::string message_;  // fragments of a message being assembled
    std::string error_;
};

}  // namespace wsrelay::loadgen
