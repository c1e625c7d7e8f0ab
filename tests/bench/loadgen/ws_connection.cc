#include "ws_connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "socket_util.h"

namespace wsrelay::loadgen {

bool parseWsUrl(std::string_view url, Endpoint& out, std::string& error) {
    return parseUrl(url, "ws", out.addr, out.host, out.path, error);
}

WsConnection::~WsConnection() {
    if (fd_ >= 0) ::close(fd_);
}

struct WsConnection::Inflater {
    z_stream z{};
};

void WsConnection::InflaterFree::operator()(Inflater* i) const {
    inflateEnd(&i->z);
    delete i;
}

bool WsConnection::inflate(std::string_view compressed) {
    static const unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
    z_stream& z = inflater_->z;
    inflated_.clear();
    char buf[16384];
    for (int part = 0; part < 2; ++part) {
        z.next_in = part == 0 ? reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()))
                              : const_cast<Bytef*>(kTail);
        z.avail_in = part == 0 ? uInt(compressed.size()) : uInt(sizeof kTail);
        do {
            z.next_out = reinterpret_cast<Bytef*>(buf);
            z.avail_out = sizeof buf;
            const int rc = ::inflate(&z, Z_SYNC_FLUSH);
            if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
            inflated_.append(buf, sizeof buf - z.avail_out);
        } while (z.avail_in > 0 || z.avail_out == 0);
    }
    return true;
}

uint32_t WsConnection::nextMask() {
    // xorshift32: masks only need to be unpredictable to proxies, not to an attacker.
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 17;
    rng_ ^= rng_ << 5;
    return rng_;
}

bool WsConnection::start(const Endpoint& endpoint, in_addr source, std::string_view query) {
    if (fd_ >= 0) abort();
    ++generation_;
    error_.clear();
    in_.clear();
    message_.clear();
    assembling_ = false;
    inflater_.reset();
    out_.clear();
    out_offset_ = 0;
    close_sent_ = false;
    close_code_ = 1006;
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rng_ = uint32_t(ts.tv_nsec) ^ (index_ * 2654435761u) ^ uint32_t(generation_ << 20) ^ 1u;

    int fd = openClientSocket(endpoint.addr, source, error_);
    if (fd < 0) return false;
    if (!poller_.add(fd, this)) {
        error_ = std::string("epoll_ctl: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    fd_ = fd;
    state_ = State::Connecting;

    uint8_t key_bytes[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t v = nextMask();
        std::memcpy(key_bytes + i, &v, 4);
    }
    std::string key = base64(key_bytes, sizeof key_bytes);
    accept_ = acceptFor(key);
    if (query.empty()) {
        out_ = handshakeRequest(endpoint.host, endpoint.path, key, endpoint.headers);
    } else {
        std::string path = endpoint.path;
        path += path.find('?') == std::string::npos ? '?' : '&';
        path += query;
        out_ = handshakeRequest(endpoint.host, path, key, endpoint.headers);
    }
    return true;
}

void WsConnection::abort() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ++generation_;
    state_ = State::Idle;
}

void WsConnection::finish(uint16_t code, std::string error) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ++generation_;
    state_ = State::Idle;
    out_.clear();
    out_offset_ = 0;
    error_ = std::move(error);
    handler_.onClosed(*this, code, error_);
}

void WsConnection::sendText(std::string_view payload) {
    if (state_ != State::Open) return;
    queueFrame(Opcode::Text, payload);
    flush();
}

void WsConnection::close(uint16_t code) {
    if (state_ != State::Open) return;
    uint8_t body[2] = {uint8_t(code >> 8), uint8_t(code)};
    queueFrame(Opcode::Close, std::string_view(reinterpret_cast<char*>(body), 2));
    close_sent_ = true;
    state_ = State::Closing;
    flush();
}

void WsConnection::queueFrame(Opcode opcode, std::string_view payload) {
    appendClientFrame(out_, opcode, payload, nextMask());
}

void WsConnection::flush() {
    while (fd_ >= 0 && out_offset_ < out_.size()) {
        ssize_t n = send(fd_, out_.data() + out_offset_, out_.size() - out_offset_,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            out_offset_ += size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        finish(1006, std::string("send: ") + std::strerror(errno));
        return;
    }
    out_.clear();
    out_offset_ = 0;
}

void WsConnection::onEvents(uint32_t events) {
    uint64_t gen = generation_;
    if (state_ == State::Connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            finish(1006, std::string("connect: ") + std::strerror(err));
            return;
        }
        onConnected();
        if (gen != generation_) return;
    }
    if (events & EPOLLOUT) {
        flush();
        if (gen != generation_) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        readAll((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }
}

void WsConnection::onConnected() {
    state_ = State::Handshaking;
    flush();
}

void WsConnection::readAll(bool until_eof) {
    std::vector<uint8_t>& rx = poller_.rxBuffer();
    const uint64_t gen = generation_;
    for (;;) {
        ssize_t n = recv(fd_, rx.data(), rx.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            finish(1006, std::string("recv: ") + std::strerror(errno));
            return;
        }
        if (n == 0) {
            if (state_ == State::Closing) {
                finish(close_code_, "");
            } else {
                finish(1006, "the relay closed the connection without a close frame");
            }
            return;
        }
        size_t len = size_t(n);
        if (in_.empty()) {
            size_t used = consumeFrames(rx.data(), len);
            if (used == SIZE_MAX || gen != generation_) return;
            in_.assign(reinterpret_cast<const char*>(rx.data()) + used, len - used);
        } else {
            // Handlers may restart this connection, so work on a buffer they cannot touch.
            std::string buf = std::move(in_);
            in_.clear();
            buf.append(reinterpret_cast<const char*>(rx.data()), len);
            size_t used = consumeFrames(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
            if (used == SIZE_MAX || gen != generation_) return;
            in_.assign(buf, used);
        }
        // A short read emptied the socket: data arriving later raises a new edge, so the extra
        // recv() that would return EAGAIN (one per delivery with sparse traffic) is skipped. A
        // FIN already reported must still be read, hence until_eof.
        if (len < rx.size() && !until_eof) return;
    }
}

bool WsConnection::consumeHandshake(const uint8_t* data, size_t len, size_t& consumed) {
    size_t header_len = 0;
    std::string error;
    std::string_view view(reinterpret_cast<const char*>(data), len);
    switch (parseHandshakeResponse(view, accept_, header_len, error)) {
        case ParseStatus::Incomplete: consumed = 0; return true;
        case ParseStatus::Failed: finish(1006, error); return false;
        case ParseStatus::Ok: break;
    }
    consumed = header_len;
    // Only the permessage-deflate answer names it; any other extension would have failed above
    // on its reserved bits soon enough.
    std::string head(view.substr(0, header_len));
    for (char& c : head) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (head.find("\r\nsec-websocket-extensions: permessage-deflate") != std::string::npos) {
        inflater_.reset(new Inflater);
        if (inflateInit2(&inflater_->z, -15) != Z_OK) {
            inflater_.reset();
            finish(1006, "inflateInit2 failed");
            return false;
        }
    }
    state_ = State::Open;
    uint64_t gen = generation_;
    handler_.onOpen(*this);
    return gen == generation_;
}

size_t WsConnection::consumeFrames(const uint8_t* data, size_t len) {
    size_t pos = 0;
    const uint64_t gen = generation_;
    if (state_ == State::Handshaking) {
        size_t used = 0;
        if (!consumeHandshake(data, len, used)) return SIZE_MAX;
        if (state_ == State::Handshaking) return 0;  // keep everything until the header is whole
        pos = used;
    }
    while (pos < len) {
        FrameHeader header;
        ParseStatus status = decodeFrameHeader(data + pos, len - pos, header);
        if (status == ParseStatus::Incomplete) break;
        if (status == ParseStatus::Failed || header.masked || (header.rsv1 && !deflate())) {
            finish(1002,
                   header.masked ? "masked frame from the relay" : "bad frame from the relay");
            return SIZE_MAX;
        }
        if (header.length > len - pos - header.header_bytes) break;
        if (!handleFrame(header, data + pos + header.header_bytes)) return SIZE_MAX;
        if (gen != generation_) return SIZE_MAX;
        pos += header.header_bytes + header.length;
    }
    return pos;
}

bool WsConnection::handleFrame(const FrameHeader& header, const uint8_t* payload) {
    std::string_view body(reinterpret_cast<const char*>(payload), size_t(header.length));
    const uint64_t gen = generation_;
    switch (header.opcode) {
        case Opcode::Ping:
            if (!close_sent_) {
                queueFrame(Opcode::Pong, body);
                flush();
            }
            return gen == generation_;
        case Opcode::Pong: return true;
        case Opcode::Close:
            close_code_ =
                body.size() >= 2 ? uint16_t(uint8_t(body[0]) << 8 | uint8_t(body[1])) : 1005;
            if (!close_sent_) {
                queueFrame(Opcode::Close, body.substr(0, 2));
                close_sent_ = true;
                flush();
                if (gen != generation_) return false;
            }
            state_ = State::Closing;
            return true;
        case Opcode::Text:
        case Opcode::Binary:
            if (assembling_) {
                finish(1002, "new message inside a fragmented one");
                return false;
            }
            if (header.fin) {
                if (header.rsv1) {
                    if (!inflate(body)) {
                        finish(1002, "a compressed message that does not inflate");
                        return false;
                    }
                    body = inflated_;
                }
                if (state_ == State::Open) handler_.onText(*this, body);
            } else {
                message_.assign(body);
                message_compressed_ = header.rsv1;
                assembling_ = true;
            }
            return gen == generation_;
        case Opcode::Continuation:
            if (!assembling_) {
                finish(1002, "continuation without a message");
                return false;
            }
            message_.append(body);
            if (header.fin) {
                std::string whole = std::move(message_);
                message_.clear();
                assembling_ = false;
                if (message_compressed_) {
                    if (!inflate(whole)) {
                        finish(1002, "a compressed message that does not inflate");
                        return false;
                    }
                    whole = std::move(inflated_);
                }
                if (state_ == State::Open) handler_.onText(*this, whole);
            }
            return gen == generation_;
    }
    return true;
}

}  // namespace wsrelay::loadgen
