#include "redis_publish_sink.h"

#include "process_info.h"
#include "socket_util.h"

namespace wsrelay::loadgen {
namespace {

// Bounds the memory a stalled Redis can make the publisher queue.
constexpr uint64_t kMaxOutstanding = 1 << 16;

}  // namespace

RedisPublishSink::RedisPublishSink(RunState& state, Poller& poller)
    : state_(state), conn_(poller, *this, 0) {
    if (!parseHostPort(state.options.redis, addr_, address_error_)) {
        address_error_ = "--redis: " + address_error_;
    }
}

bool RedisPublishSink::start() {
    if (!address_error_.empty()) {
        state_.reportError(address_error_);
        return false;
    }
    if (!conn_.start(addr_, sourceAddress(0, 1))) {
        state_.reportError("redis: " + conn_.error());
        return false;
    }
    return true;
}

bool RedisPublishSink::canPublish() const { return conn_.open() && outstanding_ < kMaxOutstanding; }

void RedisPublishSink::appendBulk(std::string_view s) {
    command_ += '$';
    command_ += std::to_string(s.size());
    command_ += "\r\n";
    command_ += s;
    command_ += "\r\n";
}

void RedisPublishSink::publish(uint32_t channel, std::string_view payload) {
    command_.clear();
    command_ += "*3\r\n$7\r\nPUBLISH\r\n";
    appendBulk(state_.channel_names[channel]);
    appendBulk(payload);
    conn_.queue(command_);
    ++outstanding_;
}

size_t RedisPublishSink::onTcpData(TcpConnection& conn, std::string_view data) {
    size_t pos = 0;
    for (;;) {
        const size_t eol = data.find("\r\n", pos);
        if (eol == std::string_view::npos) break;
        const std::string_view line = data.substr(pos, eol - pos);
        pos = eol + 2;
        // PUBLISH answers an integer (the receivers) or an error; anything else is a bug.
        if (line.empty() || (line[0] != ':' && line[0] != '-') || outstanding_ == 0) {
            state_.reportError("redis: unexpected reply " + std::string(line.substr(0, 200)));
            state_.setup_failed = true;
            conn.close();
            failures_ += outstanding_;
            outstanding_ = 0;
            return 0;
        }
        --outstanding_;
        if (line[0] == '-') {
            ++failures_;
            state_.reportError("redis: " + std::string(line.substr(0, 200)));
        }
    }
    return pos;
}

void RedisPublishSink::onTcpClosed(TcpConnection&, std::string_view error) {
    failures_ += outstanding_;
    outstanding_ = 0;
    state_.reportError("redis connection closed" +
                       (error.empty() ? "" : ": " + std::string(error)));
    state_.setup_failed = true;
}

}  // namespace wsrelay::loadgen
