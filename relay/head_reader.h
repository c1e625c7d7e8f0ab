#pragma once

#include <ev.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace wsrelay {

// With auth on, reads each new connection's HTTP request head before libwebsockets sees it: lws
// 4.1.6 copies Sec-WebSocket-Protocol into a 128-byte buffer and drops the connection when the
// header is longer, so a browser's token offered as a subprotocol would never reach the relay.
// The head is only peeked; when it offers the token as a subprotocol, exactly the head is consumed
// and handed to lws without the token entry (see subprotocol_token.h). One per worker, on its loop.
class HeadReader {
public:
    // `consumed`: the rewritten request head, consumed from the socket; empty when nothing was
    // consumed (no token offered as a subprotocol: lws reads the request itself). `head`: the
    // request head as the client sent it, for the caller to look at.
    using Handoff =
        std::function<void(int fd, std::string consumed, std::string token, std::string head)>;

    HeadReader(struct ev_loop* loop, Handoff handoff);
    ~HeadReader();  // closes the sockets still being read
    HeadReader(const HeadReader&) = delete;
    HeadReader& operator=(const HeadReader&) = delete;

    // Takes ownership of a freshly accepted, non-blocking socket.
    void add(int fd);
    size_t pending() const { return pending_.size(); }

private:
    struct Pending {
        ev_io io{};
        ev_timer timer{};
        HeadReader* owner = nullptr;
        int fd = -1;
        bool lowat_raised = false;
    };
    static void onReadable(struct ev_loop* loop, ev_io* w, int revents);
    static void onTimeout(struct ev_loop* loop, ev_timer* w, int revents);
    void read(Pending& p);
    // Stops watching `fd`; closes it unless handed off.
    void drop(int fd, bool close_fd);

    struct ev_loop* loop_;
    Handoff handoff_;
    std::unordered_map<int, std::unique_ptr<Pending>> pending_;
};

}  // namespace wsrelay
