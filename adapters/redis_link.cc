#include "adapters/redis_link.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace wsrelay {

RedisLink::RedisLink(struct ev_loop* loop, Handler& handler) : loop_(loop), handler_(handler) {
    ev_init(&read_io_, onReadable);
    read_io_.data = this;
    ev_init(&write_io_, onWritable);
    write_io_.data = this;
}

RedisLink::~RedisLink() {
    if (alive_ != nullptr) *alive_ = false;
    stop();
}

void RedisLink::stop() {
    ev_io_stop(loop_, &read_io_);
    ev_io_stop(loop_, &write_io_);
    if (context_ != nullptr) redisFree(context_);
    context_ = nullptr;
}

bool RedisLink::connect(const std::string& host, int port, std::string& error) {
    stop();
    host_ = host;
    port_ = port;
    const std::string where = host + ":" + std::to_string(port);
    context_ = redisConnectNonBlock(host.c_str(), port);
    if (context_ == nullptr) {
        error = "cannot allocate a Redis connection";
        return false;
    }
    if (context_->err != 0) {
        error = "connect to " + where + ": " + context_->errstr;
        stop();
        return false;
    }
    connecting_ = true;
    ev_io_set(&read_io_, context_->fd, EV_READ);
    ev_io_set(&write_io_, context_->fd, EV_WRITE);
    ev_io_start(loop_, &write_io_);  // writable = the connection completed (or failed)
    return true;
}

void RedisLink::command(const std::vector<std::string_view>& args) {
    if (context_ == nullptr) return;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (std::string_view a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lens.data());
    ev_io_start(loop_, &write_io_);
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): a copy, as the handler may destroy the link.
void RedisLink::close(std::string reason) {
    stop();
    bool alive = true;
    alive_ = &alive;
    handler_.onLinkClosed(*this, reason);
    if (alive) alive_ = nullptr;
}

void RedisLink::onWritable(struct ev_loop*, ev_io* w, int) {
    auto* self = static_cast<RedisLink*>(w->data);
    if (self->connecting_) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(self->context_->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
            self->close("connect to " + self->host_ + ":" + std::to_string(self->port_) + ": " +
                        std::strerror(err));
            return;
        }
        self->connecting_ = false;
        ev_io_start(self->loop_, &self->read_io_);
        bool alive = true;
        self->alive_ = &alive;
        self->handler_.onLinkConnected(*self);
        if (!alive) return;
        self->alive_ = nullptr;
        if (self->context_ == nullptr) return;
    }
    int done = 0;
    if (redisBufferWrite(self->context_, &done) != REDIS_OK) {
        self->close(self->context_->errstr);
        return;
    }
    if (done) ev_io_stop(self->loop_, &self->write_io_);
}

void RedisLink::onReadable(struct ev_loop*, ev_io* w, int) {
    auto* self = static_cast<RedisLink*>(w->data);
    if (redisBufferRead(self->context_) != REDIS_OK) {
        self->close(self->context_->errstr[0] != '\0' ? std::string(self->context_->errstr)
                                                      : std::string("connection closed"));
        return;
    }
    bool alive = true;
    self->alive_ = &alive;
    for (;;) {
        void* reply = nullptr;
        if (redisReaderGetReply(self->context_->reader, &reply) != REDIS_OK) {
            self->alive_ = nullptr;
            self->close("protocol error");
            return;
        }
        if (reply == nullptr) break;
        self->handler_.onLinkReply(*self, static_cast<redisReply*>(reply));
        freeReplyObject(reply);
        if (!alive) return;
        if (self->context_ == nullptr) break;  // closed from the callback
    }
    self->alive_ = nullptr;
}

}  // namespace wsrelay
