#include "relay/tls/tls_front.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "metrics/relay_metrics.h"
#include "relay/common/log.h"

namespace wsrelay::tls {
namespace {

// One read of a pair: the session coalesces up to 64 KiB of frames into one send(), which
// becomes four TLS records and one send() to the client.
constexpr size_t kPairReadBytes = size_t{64} * 1024;
// One TLS record's plaintext: what may wait here for a pair that is full.
constexpr size_t kRecordBytes = size_t{16} * 1024;

// Sends what the socket takes now; `failed` when it is gone (EPIPE, ECONNRESET...).
size_t sendSome(int fd, const char* data, size_t size, bool& failed) {
    size_t done = 0;
    while (done < size) {
        const ssize_t n = send(fd, data + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        failed = true;
        break;
    }
    return done;
}

void setEvents(struct ev_loop* loop, ev_io& io, int& armed, int wanted) {
    if (armed == wanted) return;
    ev_io_stop(loop, &io);
    ev_io_set(&io, io.fd, wanted);
    if (wanted != 0) ev_io_start(loop, &io);
    armed = wanted;
}

}  // namespace

struct TlsFront::Conn {
    TlsFront* front = nullptr;
    int tcp = -1;
    int pair = -1;  // the front's end; the plain end went to the handoff
    SSL* ssl = nullptr;
    ev_io tcp_io{};
    ev_io pair_io{};
    int tcp_events = 0;
    int pair_events = 0;
    bool handshaken = false;
    bool counted = false;      // its handshake result is counted
    bool client_done = false;  // nothing more will come from the client
    bool pair_shut = false;    // the plain end was told: end of stream
    bool relay_done = false;   // the plain end is closed: nothing more to send
    bool dead = false;         // the TCP socket failed, or TLS did: close at once
    std::string to_pair;       // decrypted bytes the pair has not taken (<= one record)
    std::string out;           // TLS records the TCP socket has not taken
    Conn* prev = nullptr;
    Conn* next = nullptr;
};

// The write side of every connection's SSL: records are appended to the worker's scratch buffer
// (or behind what the connection already has waiting) and sent by flushOut() once the SSL call
// returns, so a write never blocks inside OpenSSL, a batch of records leaves in one send(), and a
// connection that keeps up holds no buffer of its own.
struct OutBio {
    static int write(BIO* bio, const char* data, size_t size, size_t* written) {
        auto* c = static_cast<TlsFront::Conn*>(BIO_get_data(bio));
        std::string& to = c->out.empty() ? c->front->records_ : c->out;
        to.append(data, size);
        *written = size;
        return 1;
    }
    static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }
    static const BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* made =
                BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wsrelay-tls-out");
            BIO_meth_set_write_ex(made, write);
            BIO_meth_set_ctrl(made, ctrl);
            BIO_meth_set_create(made, create);
            return made;
        }();
        return m;
    }
};

TlsFront::TlsFront(struct ev_loop* loop, CertStore& store, metrics::WorkerMetrics& metrics,
                   int pair_send_buffer_bytes, Handoff handoff)
    : loop_(loop), store_(store), metrics_(metrics),
      pair_send_buffer_bytes_(pair_send_buffer_bytes), handoff_(std::move(handoff)),
      buffer_(new char[kPairReadBytes]) {
    context_ = store_.context(generation_);
    ev_timer_init(&reload_, onReloadTimer, 0., 0.);
    reload_.data = this;
    const double interval = static_cast<double>(store_.reloadInterval().count()) / 1000.0;
    if (interval > 0) {
        ev_timer_set(&reload_, interval, interval);
        ev_timer_start(loop_, &reload_);
    }
}

TlsFront::~TlsFront() { shutDown(); }

SSL_CTX* TlsFront::currentContext() {
    if (store_.generation() != generation_) context_ = store_.context(generation_);
    return context_.get();
}

void TlsFront::onReloadTimer(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<TlsFront*>(w->data);
    self->store_.poll();
    // Let go of a replaced context now rather than at the next accept.
    self->currentContext();
}

void TlsFront::accept(int fd, const sockaddr_storage& peer) {
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) != 0) {
        const int err = errno;
        close(fd);
        metrics_.tls_handshakes[metrics::TlsHandshakeResult::Closed].add();
        WSR_LOG(Warn, "tls: cannot pair a new connection (%s): closed", strerror(err));
        return;
    }
    SSL* ssl = SSL_new(currentContext());
    BIO* in = ssl != nullptr ? BIO_new_socket(fd, BIO_NOCLOSE) : nullptr;
    BIO* out = in != nullptr ? BIO_new(OutBio::method()) : nullptr;
    if (out == nullptr) {
        BIO_free(in);
        SSL_free(ssl);
        close(fd);
        close(ends[0]);
        close(ends[1]);
        ERR_clear_error();
        metrics_.tls_handshakes[metrics::TlsHandshakeResult::Closed].add();
        WSR_LOG(Warn, "tls: out of memory for a new connection: closed");
        return;
    }
    auto* c = new Conn;
    c->front = this;
    c->tcp = fd;
    c->pair = ends[0];
    c->ssl = ssl;
    BIO_set_data(out, c);
    SSL_set_bio(ssl, in, out);
    SSL_set_accept_state(ssl);
    if (pair_send_buffer_bytes_ > 0) {
        setsockopt(ends[1], SOL_SOCKET, SO_SNDBUF, &pair_send_buffer_bytes_,
                   sizeof pair_send_buffer_bytes_);
    }
    ev_io_init(&c->tcp_io, onTcp, fd, 0);
    c->tcp_io.data = c;
    ev_io_init(&c->pair_io, onPair, ends[0], 0);
    c->pair_io.data = c;
    c->next = head_;
    if (head_ != nullptr) head_->prev = c;
    head_ = c;
    ++count_;
    metrics_.tls_connections.add();
    arm(*c);
    // The gate may refuse and close the plain end inside the call: the pair then reads its end.
    handoff_(ends[1], peer);
}

void TlsFront::onTcp(struct ev_loop*, ev_io* w, int) {
    auto* c = static_cast<Conn*>(w->data);
    c->front->drive(*c);
}

void TlsFront::onPair(struct ev_loop*, ev_io* w, int) {
    auto* c = static_cast<Conn*>(w->data);
    if (!c->handshaken) {
        // Before the handshake the relay has nothing to say to the client: the plain end
        // becoming readable means it was closed (the gate's timeout or one of its bounds), with
        // or without a refusal the client could not read anyway.
        char byte;
        const ssize_t n = recv(c->pair, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        c->front->destroy(*c);
        return;
    }
    c->front->drive(*c);
}

void TlsFront::drive(Conn& c) {
    if (!c.handshaken) handshake(c);
    if (c.handshaken && !c.dead) {
        pumpIn(c);
        if (!c.dead) pumpOut(c);
    }
    if (c.dead) {
        destroy(c);
    } else if (c.relay_done) {
        finish(c);
    } else {
        arm(c);
    }
}

void TlsFront::handshake(Conn& c) {
    using metrics::TlsHandshakeResult;
    ERR_clear_error();
    const int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
        c.handshaken = true;
        c.counted = true;
        metrics_.tls_handshakes[TlsHandshakeResult::Ok].add();
        flushOut(c);
        return;
    }
    const int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        flushOut(c);
        return;
    }
    // The alert OpenSSL wrote (a protocol version below tls.min_version...) goes out first.
    flushOut(c);
    const unsigned long err = ERR_peek_last_error();
    const bool gone = e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
                      (ERR_GET_LIB(err) == ERR_LIB_SSL &&
                       ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
    c.counted = true;
    metrics_.tls_handshakes[gone ? TlsHandshakeResult::Closed : TlsHandshakeResult::Error].add();
    if (!gone && log::enabled(LogLevel::Debug)) {
        const char* reason = ERR_reason_error_string(err);
        WSR_LOG(Debug, "tls: handshake refused: %s", reason != nullptr ? reason : "unknown");
    }
    ERR_clear_error();
    c.dead = true;
}

void TlsFront::pumpIn(Conn& c) {
    if (!c.to_pair.empty()) {
        bool failed = false;
        const size_t sent = sendSome(c.pair, c.to_pair.data(), c.to_pair.size(), failed);
        c.to_pair.erase(0, sent);
        if (failed) {
            c.relay_done = true;
            return;
        }
    }
    char* buf = buffer_.get();
    while (c.to_pair.empty() && !c.client_done) {
        ERR_clear_error();
        const int n = SSL_read(c.ssl, buf, static_cast<int>(kRecordBytes));
        if (n > 0) {
            bool failed = false;
            const size_t sent = sendSome(c.pair, buf, static_cast<size_t>(n), failed);
            if (failed) {
                c.relay_done = true;
                break;
            }
            if (sent < static_cast<size_t>(n)) {
                c.to_pair.assign(buf + sent, static_cast<size_t>(n) - sent);
            }
            continue;
        }
        const int e = SSL_get_error(c.ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        // close_notify, the end of the TCP stream, or a TLS error: the client has finished.
        ERR_clear_error();
        c.client_done = true;
    }
    flushOut(c);  // a read may answer (a TLS 1.3 key update)
    if (c.client_done && c.to_pair.empty() && !c.pair_shut && !c.relay_done) {
        // As a TCP end of stream: lws, or the gate reading a head, closes the connection.
        shutdown(c.pair, SHUT_WR);
        c.pair_shut = true;
    }
}

void TlsFront::pumpOut(Conn& c) {
    flushOut(c);
    char* buf = buffer_.get();
    while (!c.dead && c.out.empty() && !c.relay_done) {
        const ssize_t n = recv(c.pair, buf, kPairReadBytes, MSG_DONTWAIT);
        if (n > 0) {
            ERR_clear_error();
            // Never short: the write BIO takes everything.
            if (SSL_write(c.ssl, buf, static_cast<int>(n)) != static_cast<int>(n)) {
                ERR_clear_error();
                c.dead = true;
                return;
            }
            flushOut(c);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c.relay_done = true;  // closed (ECONNRESET: closed with our bytes unread)
    }
}

void TlsFront::flushOut(Conn& c) {
    bool failed = false;
    if (!c.out.empty()) {
        // records_ is empty: the write BIO appended behind c.out.
        const size_t sent = sendSome(c.tcp, c.out.data(), c.out.size(), failed);
        c.out.erase(0, sent);
        // A connection that caught up gives its buffer back.
        if (c.out.empty()) std::string().swap(c.out);
    } else if (!records_.empty()) {
        const size_t sent = sendSome(c.tcp, records_.data(), records_.size(), failed);
        if (sent < records_.size()) c.out.assign(records_, sent);
        records_.clear();
    }
    if (failed) c.dead = true;
}

void TlsFront::arm(Conn& c) {
    int tcp = 0;
    int pair = 0;
    if (!c.handshaken) {
        tcp = EV_READ | (c.out.empty() ? 0 : EV_WRITE);
        pair = EV_READ;
    } else {
        if (c.to_pair.empty() && !c.client_done) tcp |= EV_READ;
        if (!c.out.empty()) tcp |= EV_WRITE;
        if (c.out.empty() && !c.relay_done) pair |= EV_READ;
        if (!c.to_pair.empty()) pair |= EV_WRITE;
    }
    setEvents(loop_, c.tcp_io, c.tcp_events, tcp);
    setEvents(loop_, c.pair_io, c.pair_events, pair);
}

void TlsFront::finish(Conn& c) {
    if (c.handshaken && !c.dead) {
        ERR_clear_error();
        SSL_shutdown(c.ssl);
        ERR_clear_error();
        flushOut(c);
        // Bytes left unread make close() send a reset, which the client may see before the last
        // records (a refusal, a close frame).
        char* buf = buffer_.get();
        for (int i = 0; i < 4 && recv(c.tcp, buf, kPairReadBytes, MSG_DONTWAIT) > 0; ++i) {
        }
    }
    destroy(c);
}

void TlsFront::destroy(Conn& c) {
    ev_io_stop(loop_, &c.tcp_io);
    ev_io_stop(loop_, &c.pair_io);
    if (!c.counted) metrics_.tls_handshakes[metrics::TlsHandshakeResult::Closed].add();
    SSL_free(c.ssl);
    close(c.tcp);
    close(c.pair);
    if (c.prev != nullptr) c.prev->next = c.next;
    if (c.next != nullptr) c.next->prev = c.prev;
    if (head_ == &c) head_ = c.next;
    --count_;
    metrics_.tls_connections.sub();
    records_.clear();
    delete &c;
}

void TlsFront::shutDown() {
    ev_timer_stop(loop_, &reload_);
    while (head_ != nullptr) {
        Conn& c = *head_;
        if (c.handshaken && !c.dead) pumpOut(c);  // a last close frame, without waiting
        c.relay_done = true;
        finish(c);
    }
}

}  // namespace wsrelay::tls
