#pragma once

#include <ev.h>

#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace wsrelay {

// One non-blocking Redis connection on a libev loop that hands every reply, in arrival order, to
// its owner, whatever command (if any) it answers. hiredis 0.14's async API cannot be used for
// sharded pub/sub: it knows SUBSCRIBE but not SSUBSCRIBE, so the several replies of one
// SSUBSCRIBE, and every pushed smessage, would have no callback. The owner matches replies to its
// commands itself. Callbacks may destroy the link; nothing is called after the destructor.
class RedisLink {
public:
    class Handler {
    public:
        virtual ~Handler() = default;
        virtual void onLinkConnected(RedisLink& link) = 0;
        // `reply` is freed when this returns.
        virtual void onLinkReply(RedisLink& link, redisReply* reply) = 0;
        // Called once; the link is closed afterwards and only waits to be destroyed.
        virtual void onLinkClosed(RedisLink& link, const std::string& reason) = 0;
    };

    RedisLink(struct ev_loop* loop, Handler& handler);
    ~RedisLink();
    RedisLink(const RedisLink&) = delete;
    RedisLink& operator=(const RedisLink&) = delete;

    // Starts connecting; false (and `error`) when it cannot even start. Commands may be queued at
    // once: they are written when the connection completes.
    bool connect(const std::string& host, int port, std::string& error);
    // Queues one command; all commands queued in a loop turn leave in one write.
    void command(const std::vector<std::string_view>& args);
    bool connected() const { return context_ != nullptr && !connecting_; }
    const std::string& host() const { return host_; }
    int port() const { return port_; }

private:
    static void onWritable(struct ev_loop* loop, ev_io* w, int revents);
    static void onReadable(struct ev_loop* loop, ev_io* w, int revents);
    void close(std::string reason);
    void stop();

    struct ev_loop* loop_;
    Handler& handler_;
    redisContext* context_ = nullptr;
    bool connecting_ = false;
    bool* alive_ = nullptr;  // set while a callback runs, cleared by the destructor
    std::string host_;
    int port_ = 0;
    ev_io read_io_{};
    ev_io write_io_{};
};

}  // namespace wsrelay
