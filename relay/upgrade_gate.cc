#include "relay/upgrade_gate.h"

#include <libwebsockets.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapters/redis_payload.h"
#include "relay/authenticator.h"
#include "relay/http_routes.h"
#include "relay/log.h"
#include "relay/request_head.h"
#include "relay/worker.h"

namespace wsrelay {
namespace {

void countAuthFailure(metrics::WorkerMetrics& m, jwt::Failure failure) {
    WSR_LOG(Debug, "upgrade refused: %s", std::string(jwt::failureText(failure)).c_str());
    m.handshakes[static_cast<size_t>(metrics::HandshakeResult::Auth)].add();
    m.auth_failures[static_cast<size_t>(failure) - 1].add();
}

}  // namespace

UpgradeGate::UpgradeGate(Worker& worker) : worker_(worker) {
    HookBridge* hook = worker.hookBridge();
    if (worker.authenticator() != nullptr || (hook != nullptr && hook->sends(HookEvent::Connect))) {
        head_reader_ = std::make_unique<HeadReader>(
            worker.loop(), [this](int fd, std::string consumed, std::string token, std::string head) {
                onHead(fd, std::move(consumed), std::move(token), std::move(head));
            });
    }
}

UpgradeGate::~UpgradeGate() = default;

void UpgradeGate::shutDown() {
    shut_down_ = true;
    head_reader_.reset();
}

void UpgradeGate::onHead(int fd, std::string consumed, std::string token, std::string head) {
    auto grant = std::make_unique<UpgradeGrant>();
    grant->subprotocol_token = std::move(token);
    HookBridge* hook = worker_.hookBridge();
    RequestHead request;
    if (hook != nullptr && hook->sends(HookEvent::Connect) && parseRequestHead(head, request) &&
        request.isWebSocketUpgrade() && request.path() == worker_.config().websocket.path) {
        askHook(fd, std::move(consumed), std::move(grant), request);
        return;
    }
    adopt(fd, consumed, std::move(grant));
}

void UpgradeGate::askHook(int fd, std::string consumed, std::unique_ptr<UpgradeGrant> grant,
                          const RequestHead& request) {
    auto& m = worker_.metrics();
    // The token first: the app's connect event names the verified user.
    if (Authenticator* auth = worker_.authenticator()) {
        std::string token;
        constexpr std::string_view kBearer = "bearer ";
        const std::string_view authorization = request.header("authorization");
        if (authorization.size() > kBearer.size() &&
            strncasecmp(authorization.data(), kBearer.data(), kBearer.size()) == 0) {
            token = authorization.substr(kBearer.size());
        } else if (!grant->subprotocol_token.empty()) {
            token = grant->subprotocol_token;
        } else if (worker_.config().auth.jwt.allow_query_token) {
            token = request.query("token");
        }
        jwt::Failure failure = jwt::Failure::KeysUnavailable;
        grant->identity = std::make_unique<Identity>();
        if (!worker_.shared().auth_keys_missing.load(std::memory_order_relaxed)) {
            failure = auth->verify(token, *grant->identity);
        }
        if (failure != jwt::Failure::None) {
            countAuthFailure(m, failure);
            const bool unavailable = failure == jwt::Failure::KeysUnavailable;
            refuse(fd, unavailable ? 503 : 401, unavailable ? "unavailable" : "unauthorized",
                   jwt::failureText(failure));
            return;
        }
    }
    std::string headers = "{";
    for (const std::string& name : worker_.config().hook.forward_headers) {
        const std::string_view value = request.header(name);
        if (value.empty()) continue;
        if (headers.size() > 1) headers += ',';
        appendJsonString(name, headers);
        headers += ':';
        appendJsonString(value, headers);
    }
    headers += '}';

    grant->session_id = worker_.allocateSessionId();
    const uint64_t id = grant->session_id;
    const std::string user = grant->identity ? grant->identity->user : std::string();
    // std::function needs a copyable callable: the grant and the bytes travel in a shared_ptr.
    struct Parked {
        std::string consumed;
        std::unique_ptr<UpgradeGrant> grant;
    };
    auto parked = std::make_shared<Parked>(Parked{std::move(consumed), std::move(grant)});
    const bool sent = worker_.hookBridge()->connect(
        id, user, headers, [this, fd, parked](ConnectDecision&& d) {
            auto& metrics = worker_.metrics();
            if (d.kind != ConnectDecision::Kind::Allow) {
                metrics.handshakes[static_cast<size_t>(metrics::HandshakeResult::Hook)].add();
                if (d.kind == ConnectDecision::Kind::Deny) {
                    refuse(fd, 403, "forbidden", d.message);
                } else {
                    refuse(fd, 503, "unavailable", d.message);
                }
                return;
            }
            UpgradeGrant& g = *parked->grant;
            g.decided = true;
            if (!g.identity) g.hook_user = std::move(d.user);
            g.meta = std::move(d.meta);
            g.channels = std::move(d.channels);
            adopt(fd, parked->consumed, std::move(parked->grant));
        });
    if (!sent) {
        m.handshakes[static_cast<size_t>(metrics::HandshakeResult::Hook)].add();
        refuse(fd, 503, "unavailable", "hook busy");
    }
}

void UpgradeGate::adopt(int fd, const std::string& consumed, std::unique_ptr<UpgradeGrant> grant) {
    if (shut_down_) {
        refuse(fd, 503, "unavailable", "server shutting down");
        HookBridge* hook = worker_.hookBridge();
        if (grant->decided && hook != nullptr && hook->sends(HookEvent::Disconnect)) {
            const std::string& user = grant->identity ? grant->identity->user : grant->hook_user;
            hook->disconnect(grant->session_id, user, grant->meta, 1001);
        }
        return;
    }
    // Stored first: lws may parse the head, and call confirm(), inside the adopt call.
    grants_[fd] = std::move(grant);
    lws_vhost* vhost = worker_.vhost();
    lws* wsi = consumed.empty()
                   ? lws_adopt_socket_vhost(vhost, fd)
                   : lws_adopt_socket_vhost_readbuf(vhost, fd, consumed.data(), consumed.size());
    if (wsi == nullptr) grants_.erase(fd);  // lws closed the socket
}

void UpgradeGate::refuse(int fd, unsigned status, std::string_view error, std::string_view reason) {
    const std::string response = http::refusalResponse(status, error, reason);
    // The head was only peeked: closing with unread bytes would send a reset, which clients may
    // see before the answer.
    char sink[4096];
    for (int i = 0; i < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    // Best effort: a fresh socket's send buffer takes a few hundred bytes at once.
    (void)!send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

int UpgradeGate::confirm(lws* wsi) {
    pending_wsi_ = nullptr;
    pending_.reset();
    std::unique_ptr<UpgradeGrant> grant;
    if (auto it = grants_.find(lws_get_socket_fd(wsi)); it != grants_.end()) {
        grant = std::move(it->second);
        grants_.erase(it);
    }
    Authenticator* auth = worker_.authenticator();
    if ((grant && grant->decided) || auth == nullptr) {
        pending_wsi_ = wsi;
        pending_ = std::move(grant);
        return 0;
    }
    if (!grant) grant = std::make_unique<UpgradeGrant>();
    jwt::Failure failure = jwt::Failure::KeysUnavailable;
    grant->identity = std::make_unique<Identity>();
    if (!worker_.shared().auth_keys_missing.load(std::memory_order_relaxed)) {
        failure = auth->verify(auth->findToken(wsi, grant->subprotocol_token), *grant->identity);
    }
    if (failure == jwt::Failure::None) {
        pending_wsi_ = wsi;
        pending_ = std::move(grant);
        return 0;
    }
    countAuthFailure(worker_.metrics(), failure);
    const bool unavailable = failure == jwt::Failure::KeysUnavailable;
    return http::refuseUpgrade(wsi, unavailable ? 503 : 401,
                               unavailable ? "unavailable" : "unauthorized",
                               jwt::failureText(failure));
}

std::unique_ptr<UpgradeGrant> UpgradeGate::take(lws* wsi) {
    std::unique_ptr<UpgradeGrant> grant;
    if (pending_wsi_ == wsi) grant = std::move(pending_);
    pending_wsi_ = nullptr;
    pending_.reset();
    return grant;
}

void UpgradeGate::closed(lws* wsi) {
    auto it = grants_.find(lws_get_socket_fd(wsi));
    if (it == grants_.end()) return;
    std::unique_ptr<UpgradeGrant> grant = std::move(it->second);
    grants_.erase(it);
    HookBridge* hook = worker_.hookBridge();
    if (grant->decided && hook != nullptr && hook->sends(HookEvent::Disconnect)) {
        const std::string& user = grant->identity ? grant->identity->user : grant->hook_user;
        hook->disconnect(grant->session_id, user, grant->meta, 1006);
    }
}

}  // namespace wsrelay
