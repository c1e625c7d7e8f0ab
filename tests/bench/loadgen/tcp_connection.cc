#include "tcp_connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "socket_util.h"

namespace wsrelay::loadgen {

TcpConnection::~TcpConnection() {
    if (fd_ >= 0) ::close(fd_);
}

bool TcpConnection::start(const sockaddr_in& to, in_addr source) {
    close();
    error_.clear();
    int fd = openClientSocket(to, source, error_);
    if (fd < 0) return false;
    if (!poller_.add(fd, this)) {
        error_ = std::string("epoll_ctl: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    fd_ = fd;
    return true;
}

void TcpConnection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    open_ = false;
    ++generation_;
    out_.clear();
    out_offset_ = 0;
    in_.clear();
}

void TcpConnection::finish(std::string error) {
    close();
    error_ = std::move(error);
    handler_.onTcpClosed(*this, error_);
}

void TcpConnection::flush() {
    while (open_ && out_offset_ < out_.size()) {
        ssize_t n = send(fd_, out_.data() + out_offset_, out_.size() - out_offset_,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            out_offset_ += size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        finish(std::string("send: ") + std::strerror(errno));
        return;
    }
    if (out_offset_ == out_.size()) {
        out_.clear();
        out_offset_ = 0;
    }
}

void TcpConnection::onEvents(uint32_t events) {
    const uint64_t gen = generation_;
    if (!open_) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            finish(std::string("connect: ") + std::strerror(err));
            return;
        }
        open_ = true;
        handler_.onTcpOpen(*this);
        if (gen != generation_) return;
    }
    if (events & EPOLLOUT) {
        flush();
        if (gen != generation_) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readAll();
}

void TcpConnection::readAll() {
    std::vector<uint8_t>& rx = poller_.rxBuffer();
    const uint64_t gen = generation_;
    for (;;) {
        ssize_t n = recv(fd_, rx.data(), rx.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            finish(std::string("recv: ") + std::strerror(errno));
            return;
        }
        if (n == 0) {
            finish("");
            return;
        }
        // The handler may close or restart this connection: it works on a buffer it cannot touch.
        std::string buf = std::move(in_);
        in_.clear();
        buf.append(reinterpret_cast<const char*>(rx.data()), size_t(n));
        size_t used = handler_.onTcpData(*this, buf);
        if (gen != generation_) return;
        in_.assign(buf, used);
    }
}

}  // namespace wsrelay::loadgen
