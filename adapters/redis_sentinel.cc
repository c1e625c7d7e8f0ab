#include "adapters/redis_sentinel.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <sstream>

namespace wsrelay {
namespace {

constexpr std::string_view kSwitchChannel = "+switch-master";
constexpr double kRetrySeconds = 1.0;

std::string_view textOf(const redisReply* r) { return std::string_view(r->str, r->len); }

}  // namespace

RedisSentinel::RedisSentinel(struct ev_loop* loop, AsyncResolver& resolver, std::string master_name,
                             std::vector<ClusterNode> sentinels, RedisHandshake auth,
                             const RedisTls* tls, double timeout_s, Listener& listener)
    : loop_(loop), resolver_(resolver), master_name_(std::move(master_name)),
      sentinels_(std::move(sentinels)), auth_(std::move(auth)), tls_(tls), timeout_s_(timeout_s),
      listener_(listener) {
    ev_init(&retry_timer_, onRetryTimer);
    retry_timer_.data = this;
}

RedisSentinel::~RedisSentinel() { ev_timer_stop(loop_, &retry_timer_); }

void RedisSentinel::resolve() { ask(false); }

void RedisSentinel::ask(bool quiet) {
    ev_timer_stop(loop_, &retry_timer_);
    quiet_ = quiet;
    next_ = 0;
    errors_.clear();
    state_ = State::Asking;
    tryNext();
}

void RedisSentinel::tryNext() {
    while (next_ < sentinels_.size()) {
        const ClusterNode& sentinel = sentinels_[next_++];
        link_ = std::make_unique<RedisConnection>(
            loop_, resolver_, static_cast<RedisConnection::Handler&>(*this), tls_);
        RedisHandshake auth = auth_;
        auth.db = 0;  // a sentinel has no databases
        link_->connect(sentinel.host, sentinel.port, auth, timeout_s_);
        link_->command({"SENTINEL", "get-master-addr-by-name", master_name_},
                       [this](RedisStatus s, const redisReply* r) { onMasterReply(s, r); });
        link_->command({"SUBSCRIBE", kSwitchChannel});
        return;
    }
    link_.reset();
    state_ = State::Idle;
    if (quiet_) {
        ev_timer_set(&retry_timer_, kRetrySeconds, 0.);
        ev_timer_start(loop_, &retry_timer_);
        return;
    }
    listener_.onMasterUnknown("no sentinel knows master '" + master_name_ + "': " + errors_);
}

void RedisSentinel::found(const ClusterNode& master) {
    state_ = State::Watching;
    const bool changed = !(master == current_);
    current_ = master;
    if (!quiet_) {
        listener_.onMasterFound(master);
    } else if (changed) {
        listener_.onMasterSwitched(master);
    }
}

void RedisSentinel::onMasterReply(RedisStatus status, const redisReply* reply) {
    // A lost connection is handled by onClosed.
    if (status != RedisStatus::Reply || state_ != State::Asking) return;
    const std::string where = link_->name();
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        ClusterNode master;
        master.host.assign(textOf(reply->element[0]));
        const std::string_view port = textOf(reply->element[1]);
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), master.port);
        if (ec == std::errc() && end == port.data() + port.size() && master.port > 0 &&
            master.port <= 65535 && !master.host.empty()) {
            found(master);
            return;
        }
    }
    std::string error = where + ": ";
    if (reply->type == REDIS_REPLY_ERROR) {
        error += std::string(textOf(reply));
    } else if (reply->type == REDIS_REPLY_NIL) {
        error += "unknown master";
    } else {
        error += "unexpected reply";
    }
    errors_ += (errors_.empty() ? "" : "; ") + error;
    tryNext();  // replaces (destroys) this connection
}

void RedisSentinel::onPush(RedisConnection&, const redisReply& reply) {
    if (state_ != State::Watching || reply.type != REDIS_REPLY_ARRAY || reply.elements != 3 ||
        reply.element[0]->type != REDIS_REPLY_STRING ||
        reply.element[2]->type != REDIS_REPLY_STRING || textOf(reply.element[0]) != "message") {
        return;
    }
    // "<name> <old-ip> <old-port> <new-ip> <new-port>"
    std::istringstream in{std::string(textOf(reply.element[2]))};
    std::string name;
    std::string old_host;
    int old_port = 0;
    ClusterNode master;
    if (!(in >> name >> old_host >> old_port >> master.host >> master.port) ||
        name != master_name_ || master == current_) {
        return;
    }
    current_ = master;
    listener_.onMasterSwitched(master);
}

void RedisSentinel::onClosed(RedisConnection&, const std::string& reason) {
    if (state_ == State::Asking) {
        errors_ += (errors_.empty() ? "" : "; ") + reason;
        tryNext();
        return;
    }
    // The watch is gone: ask again, quietly, so a switch missed meanwhile is still noticed.
    ask(true);
}

void RedisSentinel::onRetryTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<RedisSentinel*>(w->data)->ask(true);
}

}  // namespace wsrelay
