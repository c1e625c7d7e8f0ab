#pragma once

#include <ev.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "relay/tls/cert_store.h"

namespace wsrelay::metrics {
struct WorkerMetrics;
}

namespace wsrelay::tls {

// wss:// for one worker: the TLS side of every client connection it accepts.
//
// Each accepted TCP socket is paired with a socketpair. The pair's other end (the "plain" end)
// is handed off at once, with the client's address, to the worker's ordinary plaintext path (the
// UpgradeGate, lws, the Session and its LwsWire), which cannot tell it from a client's socket:
// the gate peeks request heads on it, the session send()s frames to it. The front moves bytes
// between the two on the worker's loop: TLS records in, plaintext out to the pair; plaintext in
// from the pair, TLS records out to the client.
//
// Bounded both ways, so that backpressure reaches where it is handled today:
// - to the client: the pair is read only when every TLS record made from earlier reads has been
//   taken by the kernel. What a slow client does not take stays in the pair (its send buffer) and
//   then, as with plain TCP, in the session's send queue, where limits.slow_consumer applies. At
//   most one read of the pair (64 KiB) plus its TLS framing waits here per connection.
// - from the client: TLS is read only when the pair took everything decrypted before; at most
//   one record (16 KiB) waits here per connection.
// Buffers are per worker while a connection keeps up, per connection only while it lags.
//
// Closing mirrors TCP: the client's end of stream (or a TLS error after the handshake) becomes
// an end of stream on the pair (lws then closes as it would a TCP socket); the pair closed by the
// relay (a session ended, a refusal written, the gate's timeout) sends close_notify after what it
// had written and closes the TCP socket. A handshake has the gate's limits.handshake_timeout_ms:
// the gate counts the plain end from its accept and closes it when the time is up.
//
// One per worker, on its loop thread.
class TlsFront {
public:
    // Takes the plain end of a new connection and the client's address, as the worker's
    // listener would hand over a TCP socket.
    using Handoff = std::function<void(int fd, const sockaddr_storage& peer)>;

    // `pair_send_buffer_bytes` > 0 sets SO_SNDBUF on the plain end
    // (limits.socket_send_buffer_bytes: what the relay may have written that the front has not
    // read).
    TlsFront(struct ev_loop* loop, CertStore& store, metrics::WorkerMetrics& metrics,
             int pair_send_buffer_bytes, Handoff handoff);
    ~TlsFront();
    TlsFront(const TlsFront&) = delete;
    TlsFront& operator=(const TlsFront&) = delete;

    // A TCP socket the worker accepted from `peer`; owned from now on. Its TLS handshake starts
    // and its plain end goes to the handoff before this returns.
    void accept(int fd, const sockaddr_storage& peer);
    // The worker stops: what each pair still holds is encrypted and written without waiting,
    // close_notify sent, and every connection closed.
    void shutDown();
    size_t size() const { return count_; }

    struct Conn;

private:
    static void onTcp(struct ev_loop* loop, ev_io* w, int revents);
    static void onPair(struct ev_loop* loop, ev_io* w, int revents);
    static void onReloadTimer(struct ev_loop* loop, ev_timer* w, int revents);

    void drive(Conn& c);
    void handshake(Conn& c);
    void pumpIn(Conn& c);
    void pumpOut(Conn& c);
    void flushOut(Conn& c);
    void arm(Conn& c);
    void finish(Conn& c);  // close_notify, then close
    void destroy(Conn& c);
    SSL_CTX* currentContext();

    struct ev_loop* loop_;
    CertStore& store_;
    metrics::WorkerMetrics& metrics_;
    const int pair_send_buffer_bytes_;
    Handoff handoff_;
    std::shared_ptr<SSL_CTX> context_;
    uint64_t generation_ = 0;
    Conn* head_ = nullptr;  // every connection, in a list through Conn::prev/next
    size_t count_ = 0;
    // Scratch, shared by the worker's connections: the records of one write (the write BIO
    // appends here while a connection has nothing waiting), one read of a pair, one TLS record.
    std::string records_;
    std::unique_ptr<char[]> buffer_;
    ev_timer reload_{};

    friend struct OutBio;
};

}  // namespace wsrelay::tls
