#pragma once

// One client WebSocket on a Poller: non-blocking connect from a chosen loopback source address,
// the opening handshake, masked sends, ping -> pong, and the closing handshake. Everything the
// application sees arrives through ConnectionHandler on the Poller's thread.

#include <netinet/in.h>

#include <cstdint>
#include <memory>
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

// The upgrade request header that offers permessage-deflate (--deflate), as browsers send it.
inline constexpr std::string_view kDeflateOffer =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

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
    // The server accepted permessage-deflate: compressed messages (RSV1) are inflated with zlib
    // before the handler sees them. What this client sends is never compressed.
    bool deflate() const { return inflater_ != nullptr; }

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
    // Inflates a compressed message (RFC 7692: the 00 00 ff ff tail appended) into inflated_.
    bool inflate(std::string_view compressed);

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
    bool message_compressed_ = false;
    std::string error_;
    struct Inflater;
    struct InflaterFree {
        void operator()(Inflater* i) const;
    };
    // One per connection, kept across messages (a client that keeps its context, as RFC 7692
    // allows unless it asked for server_no_context_takeover).
    std::unique_ptr<Inflater, InflaterFree> inflater_;
    std::string inflated_;
};

}  // namespace wsrelay::loadgen
