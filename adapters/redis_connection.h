#pragma once

#include <ev.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/async_resolver.h"

struct redisReader;
struct redisReply;

namespace wsrelay {

// The byte stream under a RedisConnection: plain TCP, or TLS (adapters/redis_tls.h, OpenSSL over
// the same connected socket). The connection and the brokers only ever see these calls.
class RedisTransport {
public:
    enum class Io { Done, Again, Closed, Error };
    struct Result {
        Io io = Io::Done;
        size_t bytes = 0;  // moved, when io is Done
        int error = 0;     // errno, when io is Error (0: describe() says why)
    };
    virtual ~RedisTransport() = default;
    // The transport's own handshake (TLS), run once the socket is connected and before any read or
    // write: Again until it is done, with wantedEvents() saying what to wait for. TCP has none.
    virtual Result handshake() { return {}; }
    virtual Result read(char* buffer, size_t size) = 0;
    virtual Result write(const char* data, size_t size) = 0;
    // Events to watch besides EV_READ (always) and EV_WRITE (while output waits): during the
    // handshake its direction; afterwards a read that waits for writable, or a write that waits for
    // readable (TLS). When one of them fires, the connection retries both read and write.
    virtual int wantedEvents() const { return 0; }
    // True when read() has bytes that no socket event will announce (TLS records already taken
    // from the socket): a short read does not mean the stream is drained then.
    virtual bool buffered() const { return false; }
    // What a Closed or Error result means, for logs: strerror(error), "closed", or the TLS reason.
    virtual std::string describe(const Result& r) const;
    // Closes the socket; called once, by the connection.
    virtual void close() = 0;
};

class RedisTls;

// Credentials and the database, sent before any command of the owner.
struct RedisHandshake {
    std::string user;      // empty: AUTH with the password only (the default user)
    std::string password;  // empty: no AUTH
    int db = 0;            // SELECT only when not 0
};

// Redis reply status for a command callback: a reply (possibly an error reply), or the connection
// closed before the reply came (then `reply` is null and closeReason() says why).
enum class RedisStatus { Reply, Closed };

// One non-blocking connection to a Redis server (standalone, Sentinel or Cluster node) on a libev
// loop: the host name goes through AsyncResolver, the socket is driven by ev_io and bounded by a
// connect timer, and hiredis is used only to format commands and to parse RESP. On connect it sends
// AUTH and SELECT (RedisHandshake) ahead of whatever the owner queued, and reports onReady() when
// both were answered OK. Commands are pipelined: each gets its reply, in order, through its own
// callback. Pub/sub pushes (message, smessage, and the (s)(un)subscribe confirmations, which are
// replies to no single command) go to Handler::onPush once the connection subscribed to anything;
// subscribe commands are therefore sent without a callback. A reply no callback waits for also goes
// to onPush (a subscribe command refused, say). When the connection fails or close() is called,
// every callback still waiting is called with RedisStatus::Closed, in order, then onClosed once.
// The destructor calls nothing. Callbacks may destroy the connection.
class RedisConnection {
public:
    using Reply = std::function<void(RedisStatus status, const redisReply* reply)>;

    class Handler {
    public:
        virtual ~Handler() = default;
        virtual void onReady(RedisConnection& connection) = 0;
        // `reply` is freed when this returns.
        virtual void onPush(RedisConnection& connection, const redisReply& reply) = 0;
        // Once; the connection waits only to be destroyed (or connect()ed again) afterwards.
        virtual void onClosed(RedisConnection& connection, const std::string& reason) = 0;
    };

    // `tls` null: plain TCP; else every connect() speaks TLS with it (it must outlive the
    // connection).
    RedisConnection(struct ev_loop* loop, AsyncResolver& resolver, Handler& handler,
                    const RedisTls* tls = nullptr);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    // Starts resolving and connecting; commands may be queued at once. Failures, including the
    // timeout (which covers lookup, connect, the TLS handshake and AUTH/SELECT), arrive through
    // onClosed on a later turn.
    void connect(const std::string& host, int port, const RedisHandshake& handshake,
                 double timeout_s);
    // Queues one command; all commands queued in a loop turn leave in one write. `reply` empty: the
    // answer arrives through onPush (subscribe commands). On a connection that is not connecting
    // or connected, `reply` is called at once with RedisStatus::Closed.
    void command(const std::vector<std::string_view>& args, Reply reply = {});
    // Fails every waiting callback and reports onClosed, unless closed already.
    void close(const std::string& reason);

    bool ready() const { return state_ == State::Ready; }
    const std::string& host() const { return host_; }
    int port() const { return port_; }
    std::string name() const { return host_ + ":" + std::to_string(port_); }
    const std::string& closeReason() const { return close_reason_; }

private:
    enum class State { Idle, Resolving, Connecting, Handshake, Ready, Closed };

    static void onIo(struct ev_loop* loop, ev_io* w, int revents);
    static void onTimeout(struct ev_loop* loop, ev_timer* w, int revents);
    void onResolved(int error, std::vector<ResolvedAddress> addresses);
    void tryAddress();
    void onConnected();
    void shakeHands();  // the transport's handshake, then the session (onSecured)
    void onSecured();
    void handshakeReply(RedisStatus status, const redisReply* reply, const char* what);
    // False when the connection closed (or was destroyed) meanwhile.
    bool writeOut();
    bool readIn();
    void dispatch(redisReply* reply);
    void watch();
    void fail(const std::string& reason);
    void release();

    struct ev_loop* loop_;
    AsyncResolver& resolver_;
    Handler& handler_;
    const RedisTls* const tls_;
    State state_ = State::Idle;
    std::string host_;
    int port_ = 0;
    uint64_t lookup_ = 0;
    std::vector<ResolvedAddress> addresses_;
    size_t next_address_ = 0;
    std::string connect_errors_;
    int fd_ = -1;              // the socket; owned by transport_ once connected
    uint64_t generation_ = 0;  // bumped whenever the socket goes
    double timeout_s_ = 0;
    std::unique_ptr<RedisTransport> transport_;
    redisReader* reader_ = nullptr;
    std::string out_;        // formatted commands not yet written
    size_t out_offset_ = 0;  // bytes of out_ already written
    std::deque<Reply> waiting_;
    int handshake_pending_ = 0;
    bool subscribed_ = false;  // a subscribe command was sent: pushes may arrive
    std::string close_reason_;
    bool* alive_ = nullptr;  // set while a callback runs, cleared by the destructor
    ev_io io_{};
    ev_timer timer_{};
};

}  // namespace wsrelay
