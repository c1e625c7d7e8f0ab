#include "adapters/redis_broker.h"

#include <hiredis/hiredis.h>

#include "adapters/redis_cluster_broker.h"

namespace wsrelay {

RedisBrokerFactory::RedisBrokerFactory(RedisBrokerOptions options) : options_(std::move(options)) {}

BrokerPtr RedisBrokerFactory::create(int worker_index, struct ev_loop* loop,
                                     BrokerHandler& handler) {
    if (!options_.cluster.empty()) {
        return std::make_unique<RedisClusterBroker>(options_, worker_index, loop, handler);
    }
    return std::make_unique<RedisBroker>(options_, worker_index, loop, handler);
}

RedisBroker::RedisBroker(const RedisBrokerOptions& options, int worker_index, struct ev_loop* loop,
                         BrokerHandler& handler)
    : RedisBrokerCore(options, worker_index, loop, handler), resolver_(loop) {
    host_ = options_.url.host;
    port_ = options_.url.port;
    if (!options_.sentinel_master.empty()) {
        RedisHandshake auth;
        auth.user = options_.sentinel_user;
        auth.password = options_.sentinel_password;
        sentinel_ = std::make_unique<RedisSentinel>(
            loop_, resolver_, options_.sentinel_master, options_.sentinels, auth,
            options_.sentinel_tls.get(), options_.probe_timeout_ms / 1000.0,
            static_cast<RedisSentinel::Listener&>(*this));
    }
    startAttempt();
}

RedisBroker::~RedisBroker() {
    destroying_ = true;
    // Their destructors call nothing back.
    sub_.reset();
    cmd_.reset();
    sentinel_.reset();
}

void RedisBroker::connect() {
    if (sentinel_) {
        resolving_ = true;
        sentinel_->resolve();
        return;
    }
    openConnections();
}

void RedisBroker::openConnections() {
    RedisHandshake handshake;
    handshake.user = options_.url.user;
    handshake.password = options_.url.password;
    handshake.db = options_.url.db;
    for (std::unique_ptr<RedisConnection>* c : {&sub_, &cmd_}) {
        *c = std::make_unique<RedisConnection>(
            loop_, resolver_, static_cast<RedisConnection::Handler&>(*this), options_.tls.get());
        (*c)->connect(host_, port_, handshake, options_.probe_timeout_ms / 1000.0);
    }
    if (sentinel_) {
        // A sentinel cut off from the others may still name a demoted master: Up only on a master.
        role_pending_ = true;
        cmd_->command({"ROLE"}, [this](RedisStatus s, const redisReply* r) { onRoleReply(s, r); });
    }
    loadFunctions(0);
    resubscribeAll({probeBase()});
}

void RedisBroker::disconnect(std::vector<Awaited>& lost) {
    resolving_ = false;
    role_pending_ = false;
    loading_ = false;
    sub_.reset();
    cmd_.reset();
    lost.assign(inflight_.begin(), inflight_.end());
    inflight_.clear();
}

bool RedisBroker::connectionsReady() const {
    return sub_ && cmd_ && sub_->ready() && cmd_->ready() && !role_pending_ && !loading_;
}

void RedisBroker::sendSubscriptions(bool subscribe, const std::vector<Target>& targets) {
    std::vector<std::string_view> names;
    names.reserve(targets.size());
    for (const Target& t : targets) names.push_back(t.redis_channel);
    inBatches(subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", names,
              [this](const std::vector<std::string_view>& args) { sub_->command(args); });
}

bool RedisBroker::sendCommand(Outgoing& out) {
    if (!cmd_) return false;
    FcallNumbers numbers;
    cmd_->command(commandArgs(out, numbers),
                  [this](RedisStatus s, const redisReply* r) { onCommandReply(s, r); });
    inflight_.push_back(out.awaited);
    return true;
}

void RedisBroker::loadFunctions(uint16_t) {
    if (!options_.functions || !cmd_ || loading_) return;
    loading_ = true;
    cmd_->command({"FUNCTION", "LOAD", "REPLACE", library()},
                  [this](RedisStatus s, const redisReply* r) {
                      if (!functionsLoaded(0, s, r)) return;
                      loading_ = false;
                      maybeUp();
                  });
}

bool RedisBroker::sendProbe(uint16_t, const std::string& channel, const std::string& payload) {
    if (!cmd_) return false;
    // Its reply says nothing: the probe counts when it comes back on the subscriber connection.
    cmd_->command({"PUBLISH", channel, payload}, [](RedisStatus, const redisReply*) {});
    return true;
}

std::string RedisBroker::target() const {
    RedisUrl url = options_.url;
    url.host = host_;
    url.port = port_;
    return describeRedisUrl(url);
}

std::string RedisBroker::timeoutReason() const {
    return "no connection to " + target() + " within " + std::to_string(options_.probe_timeout_ms) +
           " ms";
}

void RedisBroker::onCommandReply(RedisStatus status, const redisReply* reply) {
    // A lost connection fails what is in flight through onClosed.
    if (status != RedisStatus::Reply || inflight_.empty()) return;
    const Awaited awaited = inflight_.front();
    inflight_.pop_front();
    complete(0, awaited, *reply);
}

void RedisBroker::onRoleReply(RedisStatus status, const redisReply* reply) {
    if (status != RedisStatus::Reply) return;
    const bool master =
        reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        std::string_view(reply->element[0]->str, reply->element[0]->len) == "master";
    if (!master) {
        fail("sentinel: " + target() + " is not a master (ROLE)");
        return;
    }
    role_pending_ = false;
    maybeUp();
}

void RedisBroker::onReady(RedisConnection&) { maybeUp(); }

void RedisBroker::onPush(RedisConnection& connection, const redisReply& reply) {
    if (&connection != sub_.get()) return;
    if (reply.type == REDIS_REPLY_ERROR) {
        fail("SUBSCRIBE refused by " + target() + ": " + std::string(reply.str, reply.len));
        return;
    }
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3 ||
        reply.element[0]->type != REDIS_REPLY_STRING ||
        reply.element[1]->type != REDIS_REPLY_STRING) {
        return;
    }
    const std::string_view kind(reply.element[0]->str, reply.element[0]->len);
    const std::string_view channel(reply.element[1]->str, reply.element[1]->len);
    const redisReply* third = reply.element[2];
    if (kind == "message" && third->type == REDIS_REPLY_STRING) {
        deliver(0, channel, std::string_view(third->str, third->len));
    } else if (kind == "subscribe") {
        subscribeConfirmed(channel);
    } else if (kind == "unsubscribe") {
        unsubscribeConfirmed(0, channel);
    }
}

void RedisBroker::onClosed(RedisConnection&, const std::string& reason) {
    fail("connection lost: " + reason);
}

void RedisBroker::onMasterFound(const ClusterNode& master) {
    if (!resolving_) return;  // the attempt that asked was given up meanwhile
    resolving_ = false;
    host_ = master.host;
    port_ = master.port;
    openConnections();
}

void RedisBroker::onMasterUnknown(const std::string& error) {
    if (!resolving_) return;
    fail("sentinel: " + error);
}

void RedisBroker::onMasterSwitched(const ClusterNode& master) {
    if (master.host == host_ && master.port == port_ && sub_) return;
    fail("sentinel: master switched to " + master.name());
}

}  // namespace wsrelay
