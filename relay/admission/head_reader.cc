#include "relay/admission/head_reader.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "relay/auth/subprotocol_token.h"

namespace wsrelay {

HeadRead readHead(std::string_view peeked) {
    HeadRead out;
    const size_t end = peeked.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        out.outcome = peeked.size() > HeadReader::kMaxHeadBytes ? HeadRead::Outcome::TooLarge
                                                                : HeadRead::Outcome::Incomplete;
        return out;
    }
    std::string head(peeked.substr(0, end + 4));
    out.head = head;
    SubprotocolLift lift = liftSubprotocolToken(head, HeadReader::kMaxHeadBytes);
    switch (lift.result) {
        case SubprotocolLift::Result::Incomplete:  // not reached: the head is complete here
        case SubprotocolLift::Result::TooLarge:
            out.outcome = HeadRead::Outcome::TooLarge;
            return out;
        case SubprotocolLift::Result::BadRequest:
            out.outcome = HeadRead::Outcome::BadSubprotocol;
            return out;
        case SubprotocolLift::Result::Ready: break;
    }
    out.outcome = HeadRead::Outcome::Ready;
    if (!lift.token.empty()) {
        out.consumed = std::move(head);
        out.token = std::move(lift.token);
    }
    return out;
}

HeadReader::HeadReader(struct ev_loop* loop, Handoff handoff)
    : loop_(loop), handoff_(std::move(handoff)) {}

HeadReader::~HeadReader() {
    for (auto& [fd, p] : pending_) {
        ev_io_stop(loop_, &p->io);
        ::close(fd);
    }
}

void HeadReader::add(int fd) {
    auto p = std::make_unique<Pending>();
    p->owner = this;
    p->fd = fd;
    ev_io_init(&p->io, onReadable, fd, EV_READ);
    p->io.data = p.get();
    ev_io_start(loop_, &p->io);
    pending_[fd] = std::move(p);
}

void HeadReader::close(int fd) {
    auto it = pending_.find(fd);
    if (it == pending_.end()) return;
    ev_io_stop(loop_, &it->second->io);
    pending_.erase(it);
    ::close(fd);
}

void HeadReader::onReadable(struct ev_loop*, ev_io* w, int) {
    auto* p = static_cast<Pending*>(w->data);
    p->owner->read(*p);
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
        finish(fd,
               HeadRead{});  // closed by the client before its request was complete, or an error
        return;
    }
    const std::string_view peeked(buf, static_cast<size_t>(n));
    HeadRead read = readHead(peeked);
    if (read.outcome == HeadRead::Outcome::Incomplete) {
        // Level-triggered and peeked: without a low-water mark the loop would spin on the bytes
        // already here until the rest of the head arrives.
        const int lowat = static_cast<int>(n) + 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
        p.lowat_raised = true;
        return;
    }
    if (p.lowat_raised) {
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    }
    if (!read.consumed.empty()) {
        // Consume exactly the head (already in the socket buffer), to hand lws the rewritten one.
        const size_t head_len = read.head.size();
        if (recv(fd, buf, head_len, 0) != static_cast<ssize_t>(head_len)) read = HeadRead{};
    }
    finish(fd, std::move(read));
}

void HeadReader::finish(int fd, HeadRead&& read) {
    auto it = pending_.find(fd);
    if (it == pending_.end()) return;
    ev_io_stop(loop_, &it->second->io);
    pending_.erase(it);
    handoff_(fd, std::move(read));
}

}  // namespace wsrelay
