#include "relay/head_reader.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "relay/subprotocol_token.h"

namespace wsrelay {
namespace {

// A request head larger than this gets 431; lws's own header buffer is set to match
// (relay/worker.cc).
constexpr size_t kMaxHeadBytes = 8192;
// A client that has not sent its whole request head by then is closed (slowloris).
constexpr double kHeadTimeoutSeconds = 10.0;

void answer(int fd, std::string_view status, std::string_view reason) {
    // The head was only peeked: closing with unread bytes would send a reset, which clients may
    // see before the answer.
    char sink[4096];
    for (int i = 0; i < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    const std::string body = R"({"error":"bad request","reason":")" + std::string(reason) + "\"}";
    const std::string response = "HTTP/1.1 " + std::string(status) +
                                 "\r\ncontent-type: application/json\r\ncontent-length: " +
                                 std::to_string(body.size()) + "\r\nconnection: close\r\n\r\n" +
                                 body;
    // Best effort: a fresh socket's send buffer takes a few hundred bytes at once.
    (void)!send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

HeadReader::HeadReader(struct ev_loop* loop, Handoff handoff)
    : loop_(loop), handoff_(std::move(handoff)) {}

HeadReader::~HeadReader() {
    for (auto& [fd, p] : pending_) {
        ev_io_stop(loop_, &p->io);
        ev_timer_stop(loop_, &p->timer);
        close(fd);
    }
}

void HeadReader::add(int fd) {
    auto p = std::make_unique<Pending>();
    p->owner = this;
    p->fd = fd;
    ev_io_init(&p->io, onReadable, fd, EV_READ);
    p->io.data = p.get();
    ev_timer_init(&p->timer, onTimeout, kHeadTimeoutSeconds, 0.);
    p->timer.data = p.get();
    ev_io_start(loop_, &p->io);
    ev_timer_start(loop_, &p->timer);
    pending_[fd] = std::move(p);
}

void HeadReader::onReadable(struct ev_loop*, ev_io* w, int) {
    auto* p = static_cast<Pending*>(w->data);
    p->owner->read(*p);
}

void HeadReader::onTimeout(struct ev_loop*, ev_timer* w, int) {
    auto* p = static_cast<Pending*>(w->data);
    p->owner->drop(p->fd, true);
}

void HeadReader::read(Pending& p) {
    // Peeked, not read: unless the head carries a bearer subprotocol, lws reads the request itself.
    // (lws 4.1.6 loops forever on a read buffer that holds a request body, so only a bodiless
    // upgrade head is ever handed over as bytes.)
    char buf[kMaxHeadBytes + 1];
    const int fd = p.fd;
    ssize_t n;
    do {
        n = recv(fd, buf, sizeof buf, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
        drop(fd, true);  // closed by the client before its request was complete, or an error
        return;
    }
    const std::string_view peeked(buf, static_cast<size_t>(n));
    const size_t end = peeked.find("\r\n\r\n");
    if (end == std::string_view::npos && peeked.size() <= kMaxHeadBytes) {
        // Level-triggered and peeked: without a low-water mark the loop would spin on the bytes
        // already here until the rest of the head arrives.
        const int lowat = static_cast<int>(n) + 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
        p.lowat_raised = true;
        return;
    }
    std::string head(peeked.substr(0, end == std::string_view::npos ? peeked.size() : end + 4));
    std::string original = head;
    SubprotocolLift lift = liftSubprotocolToken(head, kMaxHeadBytes);
    switch (lift.result) {
        case SubprotocolLift::Result::Incomplete:  // not reached: the head is complete here
        case SubprotocolLift::Result::TooLarge:
            answer(fd, "431 Request Header Fields Too Large", "request head too large");
            drop(fd, true);
            return;
        case SubprotocolLift::Result::BadRequest:
            answer(fd, "400 Bad Request",
                   "offer the wsrelay.v1 subprotocol next to wsrelay.bearer.<token>");
            drop(fd, true);
            return;
        case SubprotocolLift::Result::Ready:
            break;
    }
    if (p.lowat_raised) {
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    }
    if (lift.token.empty()) {
        drop(fd, false);
        handoff_(fd, {}, {}, std::move(original));
        return;
    }
    // Consume exactly the head (already in the socket buffer), to hand lws the rewritten one.
    const size_t head_len = end + 4;
    if (recv(fd, buf, head_len, 0) != static_cast<ssize_t>(head_len)) {
        drop(fd, true);
        return;
    }
    drop(fd, false);
    handoff_(fd, std::move(head), std::move(lift.token), std::move(original));
}

void HeadReader::drop(int fd, bool close_fd) {
    auto it = pending_.find(fd);
    if (it == pending_.end()) return;
    ev_io_stop(loop_, &it->second->io);
    ev_timer_stop(loop_, &it->second->timer);
    pending_.erase(it);
    if (close_fd) close(fd);
}

}  // namespace wsrelay
