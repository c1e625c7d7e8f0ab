#include "adapters/redis_connection.h"

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "adapters/redis_tls.h"

namespace wsrelay {
namespace {

// Reads this much per read() call; the reader keeps what a reply still lacks.
constexpr size_t kReadChunk = 16 * 1024;

class TcpTransport final : public RedisTransport {
public:
    explicit TcpTransport(int fd) : fd_(fd) {}
    ~TcpTransport() override { close(); }

    Result read(char* buffer, size_t size) override {
        const ssize_t n = ::recv(fd_, buffer, size, 0);
        if (n > 0) return {Io::Done, static_cast<size_t>(n), 0};
        if (n == 0) return {Io::Closed, 0, 0};
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return {Io::Again, 0, 0};
        return {Io::Error, 0, errno};
    }
    Result write(const char* data, size_t size) override {
        const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
        if (n >= 0) return {Io::Done, static_cast<size_t>(n), 0};
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return {Io::Again, 0, 0};
        return {Io::Error, 0, errno};
    }
    void close() override {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

// The pub/sub replies that answer no single command.
bool isPush(const redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        return false;
    }
    const std::string_view kind(r->element[0]->str, r->element[0]->len);
    for (std::string_view push : {"message", "smessage", "pmessage", "subscribe", "ssubscribe",
                                  "psubscribe", "unsubscribe", "sunsubscribe", "punsubscribe"}) {
        if (kind == push) return true;
    }
    return false;
}

bool isSubscribe(std::string_view command) {
    for (std::string_view c : {"SUBSCRIBE", "SSUBSCRIBE", "PSUBSCRIBE"}) {
        if (command.size() == c.size() && strncasecmp(command.data(), c.data(), c.size()) == 0) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::string RedisTransport::describe(const Result& r) const {
    return r.io == Io::Error ? std::strerror(r.error) : "closed";
}

RedisConnection::RedisConnection(struct ev_loop* loop, AsyncResolver& resolver, Handler& handler,
                                 const RedisTls* tls)
    : loop_(loop), resolver_(resolver), handler_(handler), tls_(tls) {
    ev_init(&io_, onIo);
    io_.data = this;
    ev_init(&timer_, onTimeout);
    timer_.data = this;
}

RedisConnection::~RedisConnection() {
    if (alive_ != nullptr) *alive_ = false;
    release();
}

void RedisConnection::release() {
    ev_io_stop(loop_, &io_);
    ev_timer_stop(loop_, &timer_);
    if (lookup_ != 0) resolver_.cancel(lookup_);
    lookup_ = 0;
    if (transport_) {
        transport_->close();  // it owns fd_
    } else if (fd_ >= 0) {
        ::close(fd_);  // a socket still connecting
    }
    transport_.reset();
    fd_ = -1;
    ++generation_;
    if (reader_ != nullptr) redisReaderFree(reader_);
    reader_ = nullptr;
}

void RedisConnection::connect(const std::string& host, int port, const RedisHandshake& handshake,
                              double timeout_s) {
    release();
    host_ = host;
    port_ = port;
    out_.clear();
    out_offset_ = 0;
    waiting_.clear();
    subscribed_ = false;
    close_reason_.clear();
    connect_errors_.clear();
    handshake_pending_ = 0;
    state_ = State::Resolving;
    // Queued first, so they precede whatever the owner queues before the connection is up.
    if (!handshake.password.empty()) {
        std::vector<std::string_view> auth = {"AUTH"};
        if (!handshake.user.empty()) auth.push_back(handshake.user);
        auth.push_back(handshake.password);
        ++handshake_pending_;
        command(auth, [this](RedisStatus s, const redisReply* r) { handshakeReply(s, r, "AUTH"); });
    }
    if (handshake.db != 0) {
        const std::string db = std::to_string(handshake.db);
        ++handshake_pending_;
        command({"SELECT", db},
                [this](RedisStatus s, const redisReply* r) { handshakeReply(s, r, "SELECT"); });
    }
    timeout_s_ = timeout_s;
    ev_timer_set(&timer_, timeout_s, 0.);
    ev_timer_start(loop_, &timer_);
    lookup_ = resolver_.resolve(host, static_cast<uint16_t>(port),
                                [this](int error, std::vector<ResolvedAddress> addresses) {
                                    lookup_ = 0;
                                    onResolved(error, std::move(addresses));
                                });
}

void RedisConnection::onResolved(int error, std::vector<ResolvedAddress> addresses) {
    if (error != 0) {
        fail("resolve " + host_ + ": " + gai_strerror(error));
        return;
    }
    addresses_ = std::move(addresses);
    next_address_ = 0;
    state_ = State::Connecting;
    tryAddress();
}

void RedisConnection::tryAddress() {
    while (next_address_ < addresses_.size()) {
        const ResolvedAddress& a = addresses_[next_address_++];
        fd_ = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            connect_errors_ = std::strerror(errno);
            continue;
        }
        const int one = 1;
        setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0 ||
            errno == EINPROGRESS) {
            watch();  // writable = connected (or failed)
            return;
        }
        connect_errors_ = std::strerror(errno);
        ::close(fd_);
        fd_ = -1;
    }
    fail("connect to " + name() + ": " + connect_errors_);
}

void RedisConnection::onConnected() {
    if (tls_ != nullptr) {
        std::string error;
        transport_ = tls_->wrap(fd_, host_, error);
        if (!transport_) {
            fail("connect to " + name() + ": " + error);
            return;
        }
    } else {
        transport_ = std::make_unique<TcpTransport>(fd_);
    }
    shakeHands();
}

// Still State::Connecting: the connect timer bounds the TLS handshake too.
void RedisConnection::shakeHands() {
    const RedisTransport::Result r = transport_->handshake();
    if (r.io == RedisTransport::Io::Again) {
        watch();
        return;
    }
    if (r.io != RedisTransport::Io::Done) {
        fail("connect to " + name() + ": " + transport_->describe(r));
        return;
    }
    onSecured();
}

void RedisConnection::onSecured() {
    reader_ = redisReaderCreate();
    if (reader_ == nullptr) {
        fail("cannot allocate a Redis reader");
        return;
    }
    state_ = State::Handshake;
    if (handshake_pending_ == 0) {
        state_ = State::Ready;
        ev_timer_stop(loop_, &timer_);
        bool alive = true;
        alive_ = &alive;
        handler_.onReady(*this);
        if (!alive) return;
        alive_ = nullptr;
    }
    if (transport_) watch();
}

void RedisConnection::handshakeReply(RedisStatus status, const redisReply* reply,
                                     const char* what) {
    if (status != RedisStatus::Reply) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        fail(std::string(what) + " refused by " + name() + ": " +
             std::string(reply->str, reply->len));
        return;
    }
    if (--handshake_pending_ > 0) return;
    state_ = State::Ready;
    ev_timer_stop(loop_, &timer_);
    handler_.onReady(*this);
}

void RedisConnection::command(const std::vector<std::string_view>& args, Reply reply) {
    if (state_ == State::Idle || state_ == State::Closed || args.empty()) {
        if (reply) reply(RedisStatus::Closed, nullptr);
        return;
    }
    const char* argv[16];
    size_t lens[16];
    std::vector<const char*> many_argv;
    std::vector<size_t> many_lens;
    const char** av = argv;
    size_t* al = lens;
    if (args.size() > 16) {
        many_argv.resize(args.size());
        many_lens.resize(args.size());
        av = many_argv.data();
        al = many_lens.data();
    }
    for (size_t i = 0; i < args.size(); ++i) {
        av[i] = args[i].data();
        al[i] = args[i].size();
    }
    char* formatted = nullptr;
    const int len = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), av, al);
    if (len < 0) {
        if (reply) reply(RedisStatus::Closed, nullptr);
        return;
    }
    out_.append(formatted, static_cast<size_t>(len));
    std::free(formatted);
    if (reply) {
        waiting_.push_back(std::move(reply));
    } else if (isSubscribe(args[0])) {
        subscribed_ = true;
    }
    if (transport_) watch();
}

void RedisConnection::close(const std::string& reason) {
    if (state_ == State::Idle || state_ == State::Closed) return;
    fail(reason);
}

void RedisConnection::watch() {
    if (fd_ < 0) return;
    int events = EV_WRITE;  // connecting: writable = connected (or failed)
    if (transport_ && state_ == State::Connecting) {
        events = transport_->wantedEvents();  // the transport's handshake
    } else if (transport_) {
        events = EV_READ | (out_offset_ < out_.size() ? EV_WRITE : 0) | transport_->wantedEvents();
    }
    if (ev_is_active(&io_) && io_.fd == fd_ && (io_.events & (EV_READ | EV_WRITE)) == events) {
        return;
    }
    ev_io_stop(loop_, &io_);
    ev_io_set(&io_, fd_, events);
    ev_io_start(loop_, &io_);
}

void RedisConnection::onIo(struct ev_loop*, ev_io* w, int revents) {
    auto* self = static_cast<RedisConnection*>(w->data);
    if (self->state_ == State::Connecting && !self->transport_) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
            self->connect_errors_ = std::strerror(err);
            ev_io_stop(self->loop_, &self->io_);
            ::close(self->fd_);
            self->fd_ = -1;
            self->tryAddress();
            return;
        }
        self->onConnected();
        return;
    }
    if (self->state_ == State::Connecting) {
        self->shakeHands();
        return;
    }
    // An event the transport asked for beyond the usual ones: retry both directions.
    const bool crossed = (revents & self->transport_->wantedEvents()) != 0;
    if (((revents & EV_READ) != 0 || crossed) && !self->readIn()) return;
    if (((revents & EV_WRITE) != 0 || crossed) && !self->writeOut()) return;
    self->watch();
}

bool RedisConnection::writeOut() {
    while (out_offset_ < out_.size()) {
        const RedisTransport::Result r =
            transport_->write(out_.data() + out_offset_, out_.size() - out_offset_);
        if (r.io == RedisTransport::Io::Again) return true;
        if (r.io != RedisTransport::Io::Done) {
            fail("write to " + name() + ": " + transport_->describe(r));
            return false;
        }
        out_offset_ += r.bytes;
    }
    out_.clear();
    out_offset_ = 0;
    return true;
}

bool RedisConnection::readIn() {
    char buffer[kReadChunk];
    std::string eof;
    for (;;) {
        const RedisTransport::Result r = transport_->read(buffer, sizeof(buffer));
        if (r.io == RedisTransport::Io::Again) break;
        if (r.io == RedisTransport::Io::Closed) {
            // TLS may know more (a client certificate refused right after the handshake).
            const std::string why = transport_->describe(r);
            eof = why == "closed" ? "connection to " + name() + " closed by the server"
                                  : "read from " + name() + ": " + why;
            break;
        }
        if (r.io == RedisTransport::Io::Error) {
            eof = "read from " + name() + ": " + transport_->describe(r);
            break;
        }
        if (redisReaderFeed(reader_, buffer, r.bytes) != REDIS_OK) {
            fail("protocol error from " + name());
            return false;
        }
        if (r.bytes < sizeof(buffer) && !transport_->buffered()) break;
    }
    // Replies read before an end of stream are still delivered.
    const uint64_t generation = generation_;
    bool alive = true;
    alive_ = &alive;
    for (;;) {
        void* reply = nullptr;
        if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
            alive_ = nullptr;
            fail("protocol error from " + name());
            return false;
        }
        if (reply == nullptr) break;
        dispatch(static_cast<redisReply*>(reply));
        if (!alive) return false;
        if (generation != generation_) {  // closed (or reconnected) by a callback
            alive_ = nullptr;
            return false;
        }
    }
    alive_ = nullptr;
    if (!eof.empty()) {
        fail(eof);
        return false;
    }
    return true;
}

// Hands one reply to whoever waits for it; the callback may close or destroy the connection.
void RedisConnection::dispatch(redisReply* reply) {
    if ((subscribed_ && isPush(reply)) || waiting_.empty()) {
        handler_.onPush(*this, *reply);
    } else {
        Reply callback = std::move(waiting_.front());
        waiting_.pop_front();
        callback(RedisStatus::Reply, reply);
    }
    freeReplyObject(reply);
}

void RedisConnection::fail(const std::string& reason) {
    release();
    state_ = State::Closed;
    close_reason_ = reason;
    out_.clear();
    out_offset_ = 0;
    std::deque<Reply> waiting;
    waiting.swap(waiting_);
    bool alive = true;
    bool* outer = alive_;
    alive_ = &alive;
    for (Reply& callback : waiting) {
        callback(RedisStatus::Closed, nullptr);
        if (!alive) {
            if (outer != nullptr) *outer = false;
            return;
        }
    }
    handler_.onClosed(*this, reason);
    if (!alive) {
        if (outer != nullptr) *outer = false;
        return;
    }
    alive_ = outer;
}

void RedisConnection::onTimeout(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<RedisConnection*>(w->data);
    self->fail("no connection to " + self->name() + " within " +
               std::to_string(static_cast<int>(self->timeout_s_ * 1000)) + " ms");
}

}  // namespace wsrelay
