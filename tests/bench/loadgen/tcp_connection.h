#pragma once

// A plain client TCP connection on a Poller, for the Redis and HTTP publishers: non-blocking
// connect, an output buffer written on flush(), and received bytes handed to the handler until
// it has consumed them.

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "poller.h"

namespace wsrelay::loadgen {

class TcpConnection;

class TcpHandler {
public:
    virtual ~TcpHandler() = default;
    virtual void onTcpOpen(TcpConnection& conn) = 0;
    // Everything received and not consumed yet; returns how many bytes it consumed. The
    // connection may be closed or restarted inside.
    virtual size_t onTcpData(TcpConnection& conn, std::string_view data) = 0;
    // The socket is closed: the peer closed it (error empty) or it failed.
    virtual void onTcpClosed(TcpConnection& conn, std::string_view error) = 0;
};

class TcpConnection : public PollTarget {
public:
    TcpConnection(Poller& poller, TcpHandler& handler, uint32_t index)
        : poller_(poller), handler_(handler), index_(index) {}
    ~TcpConnection() override;
    TcpConnection(const TcpConnection&) = delete;
    TcpConnection& operator=(const TcpConnection&) = delete;

    // False with error() set on immediate failure.
    bool start(const sockaddr_in& to, in_addr source);
    // Appends to the output buffer; nothing is written before flush().
    void queue(std::string_view bytes) { out_.append(bytes); }
    // Writes what the socket takes now; the rest goes when it is writable again.
    void flush();
    // Closes the socket now, without calling the handler.
    void close();

    bool open() const { return open_; }
    bool started() const { return fd_ >= 0; }
    uint32_t index() const { return index_; }
    const std::string& error() const { return error_; }
    size_t pendingBytes() const { return out_.size() - out_offset_; }

    void onEvents(uint32_t events) override;

private:
    void readAll();
    void finish(std::string error);

    Poller& poller_;
    TcpHandler& handler_;
    const uint32_t index_;
    int fd_ = -1;
    bool open_ = false;
    uint64_t generation_ = 0;
    std::string out_;
    size_t out_offset_ = 0;
    std::string in_;
    std::string error_;
};

}  // namespace wsrelay::loadgen
