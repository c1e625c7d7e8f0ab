#pragma once

#include <ev.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace wsrelay {

// What HeadReader found at the start of a socket.
struct HeadRead {
    enum class Outcome {
        Incomplete,      // no end of head yet: read more (readHead only)
        Ready,           // a complete request head: `head` as sent, `consumed`/`token` below
        Gone,            // the client closed (or the socket failed) before its head was complete
        TooLarge,        // no end of head within kMaxHeadBytes
        BadSubprotocol,  // a bearer subprotocol entry offered without wsrelay.v1 to answer with
    };
    Outcome outcome = Outcome::Gone;
    // The head with the bearer subprotocol entry removed, consumed from the socket (lws is handed
    // these bytes); empty when nothing was consumed (lws reads the request itself).
    std::string consumed;
    std::string token;  // the token lifted out of Sec-WebSocket-Protocol, if any
    std::string head;   // the request head as the client sent it
};

// Reads each new connection's HTTP request head before libwebsockets sees it, for the upgrade
// gate: lws 4.1.6 copies Sec-WebSocket-Protocol into a 128-byte buffer and drops the connection
// when the header is longer, so a browser's token offered as a subprotocol would never reach the
// relay. The head is only peeked; when it offers the token as a subprotocol, exactly the head is
// consumed, to be handed to lws without the token entry (see subprotocol_token.h). Time limits
// are the caller's (PendingConnections). One per worker, on its loop.
class HeadReader {
public:
    // Called once per socket with what was read; the socket is the caller's from then on.
    using Handoff = std::function<void(int fd, HeadRead&& read)>;
    // A request head larger than this is refused (431); lws's own header buffer is set to match
    // (relay/edge/worker.cc).
    static constexpr size_t kMaxHeadBytes = 8192;

    HeadReader(struct ev_loop* loop, Handoff handoff);
    ~HeadReader();  // closes the sockets still being read
    HeadReader(const HeadReader&) = delete;
    HeadReader& operator=(const HeadReader&) = delete;

    // Takes ownership of a freshly accepted, non-blocking socket.
    void add(int fd);
    // Stops reading `fd` and closes it.
    void close(int fd);
    size_t pending() const { return pending_.size(); }

private:
    struct Pending {
        ev_io io{};
        HeadReader* owner = nullptr;
        int fd = -1;
        bool lowat_raised = false;
    };
    static void onReadable(struct ev_loop* loop, ev_io* w, int revents);
    void read(Pending& p);
    // Stops watching `fd` and hands it over with `read`.
    void finish(int fd, HeadRead&& read);

    struct ev_loop* loop_;
    Handoff handoff_;
    std::unordered_map<int, std::unique_ptr<Pending>> pending_;
};

// What HeadReader hands over for `peeked`, the bytes at the start of a socket (exposed for the
// fuzzer and the unit tests).
HeadRead readHead(std::string_view peeked);

}  // namespace wsrelay
