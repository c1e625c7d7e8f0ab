#include "relay/admission/upgrade_gate.h"

#include <libwebsockets.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "adapters/redis_payload.h"
#include "relay/auth/authenticator.h"
#include "relay/auth/subprotocol_token.h"
#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_control.h"
#include "relay/fleet/fleet_id.h"
#include "relay/hook/hook_bridge.h"
#include "relay/http/http_answer.h"
#include "relay/http/request_head.h"
#include "relay/protocol/close_codes.h"
#include "relay/session/session_table.h"
#include "relay/session/worker_context.h"

namespace wsrelay {
namespace {

// lws 4.1.6 copies Connection and Sec-WebSocket-Protocol into 128-byte buffers and drops the
// upgrade when either is longer, and refuses a Sec-WebSocket-Key of 128 bytes or more: such
// requests are refused here, with a reason, before anyone is asked about them.
constexpr size_t kLwsHeaderBuffer = 127;
// The name of the listener's lws protocol: a client offering it as a subprotocol would be bound
// to it by lws.
constexpr std::string_view kListenerProtocol = "wsrelay-listener";
// limits.max_pending_handshakes: 0 means a quarter of the connection limit, at least this.
constexpr size_t kMinPendingBound = 16;

void countHandshake(metrics::WorkerMetrics& m, metrics::HandshakeResult result) {
    m.handshakes[result].add();
}

void countAuthFailure(metrics::WorkerMetrics& m, jwt::Failure failure) {
    WSR_LOG(Debug, "upgrade refused: %s", std::string(jwt::failureText(failure)).c_str());
    countHandshake(m, metrics::HandshakeResult::Auth);
    m.auth_failures[authFailureLabel(failure)].add();
}

size_t perWorker(size_t total, int workers) {
    const auto n = static_cast<size_t>(std::max(1, workers));
    return (total + n - 1) / n;
}

size_t pendingBound(const WorkerContext& ctx) {
    const auto& limits = ctx.config.limits;
    const size_t total =
        limits.max_pending_handshakes > 0
            ? static_cast<size_t>(limits.max_pending_handshakes)
            : std::max<size_t>(kMinPendingBound,
                               static_cast<size_t>(ctx.shared.max_connections) / 4);
    return perWorker(total, ctx.shared.workers);
}

// Every entry of every Sec-WebSocket-Protocol header, for the checks lws would otherwise make
// after the app was asked.
bool subprotocolsAcceptable(const RequestHead& request, std::string& reason) {
    bool offered = false;
    bool ours = false;
    for (const auto& [name, value] : request.headers) {
        if (!equalsIgnoreCase(name, "sec-websocket-protocol")) continue;
        if (value.size() > kLwsHeaderBuffer) {
            reason = "Sec-WebSocket-Protocol is too long";
            return false;
        }
        offered = true;
        if (listHasToken(value, kListenerProtocol)) {
            reason = "unsupported subprotocol";
            return false;
        }
        ours = ours || listHasToken(value, kSubprotocol);
    }
    if (offered && !ours) {
        reason = "offer the wsrelay.v1 subprotocol (or none)";
        return false;
    }
    return true;
}

// A socket parked while the app or the fleet decides: what it goes on with. std::function needs a
// copyable callable, so it travels in a shared_ptr.
struct Parked {
    std::string consumed;
    std::unique_ptr<UpgradeGrant> grant;
};

std::unique_ptr<UserLimit> makeUserLimit(WorkerContext& ctx) {
    if (ctx.config.limits.max_connections_per_user == 0 || ctx.fleet_calls == nullptr) {
        return nullptr;
    }
    FleetControl* fleet = ctx.fleet;
    return std::make_unique<UserLimit>(
        ctx.config.limits, *ctx.fleet_calls,
        [fleet](std::string_view target, std::string_view cmd, std::string_view fields) {
            if (fleet != nullptr) fleet->tell(target, cmd, fields);
        },
        ctx.metrics);
}

}  // namespace

UpgradeGate::UpgradeGate(WorkerContext& ctx)
    : ctx_(ctx), reads_heads_(ctx.authenticator != nullptr ||
                              (ctx.hook != nullptr && ctx.hook->sends(HookEvent::Connect)) ||
                              !ctx.config.limits.trusted_proxies.empty()),
      timeout_s_(ctx.config.limits.handshake_timeout_ms / 1000.0), user_limit_(makeUserLimit(ctx)),
      pending_(pendingBound(ctx),
               perWorker(static_cast<size_t>(ctx.config.limits.max_pending_handshakes_per_ip),
                         ctx.shared.workers)),
      limits_(ctx.config, ctx.shared.workers, ctx.shared.connections_per_address, ctx.metrics) {
    if (reads_heads_) {
        head_reader_ = std::make_unique<HeadReader>(
            ctx.loop, [this](int fd, HeadRead&& read) { onHead(fd, std::move(read)); });
    }
    ev_timer_init(&timeout_timer_, onTimeout, 0., 0.);
    timeout_timer_.data = this;
}

UpgradeGate::~UpgradeGate() {
    ev_timer_stop(ctx_.loop, &timeout_timer_);
    if (user_limit_) user_limit_->abandon();
}

void UpgradeGate::shutDown() {
    shut_down_ = true;
    ev_timer_stop(ctx_.loop, &timeout_timer_);
    head_reader_.reset();  // closes the sockets being read
    // What lws holds is closed with the lws context, each through destroyed().
    while (PendingConnection* c = pending_.oldest()) {
        if (c->stage != PendingConnection::Stage::ReadingHead) {
            pending_.setStage(*c, PendingConnection::Stage::Closing, 0);
            continue;
        }
        forget(*c);
    }
}

void UpgradeGate::accept(int fd, const sockaddr_storage& peer, http::Port port) {
    auto& m = ctx_.metrics;
    const double now = ev_now(ctx_.loop);
    const AddressKey address = addressKey(peer);
    // Before anything of the connection is read: the cheapest refusal there is.
    const bool client_in_head = limits_.fromTrustedProxy(address);
    AddressLimits::Decision decision;
    if (!client_in_head) {
        decision = limits_.admit(limitKey(address), now);
        if (!decision.admitted) {
            refuse(fd, 429, "too many requests", decision.reason, decision.retry_after_s);
            return;
        }
    }
    auto verdict = pending_.add(fd, address, now);
    if (verdict == PendingConnections::Admit::Full && pending_.oldest() != nullptr) {
        // The oldest makes room: a flood of idle sockets must not keep a health probe out.
        closePending(*pending_.oldest(), metrics::PendingClose::Shed);
        verdict = pending_.add(fd, address, now);
    }
    if (verdict != PendingConnections::Admit::Added) {
        m.pending_closed[verdict == PendingConnections::Admit::Full
                             ? metrics::PendingClose::Full
                             : metrics::PendingClose::PerAddress]
            .add();
        close(fd);
        return;  // its count under limits.connections_per_ip goes with `decision`
    }
    PendingConnection& c = *pending_.find(fd);
    c.client = limitKey(address);
    c.slot = std::move(decision.slot);
    c.client_in_head = client_in_head;
    c.port = port;
    m.pending_connections.add();
    armTimeout();
    if (reads_heads_) {
        head_reader_->add(fd);
        return;
    }
    adopt(fd, {}, nullptr);
}

PendingConnection* UpgradeGate::entryOf(lws* wsi) {
    if (PendingConnection* c = pending_.find(wsi)) return c;
    // lws may call back for a socket inside the adopt call, before it returned the wsi.
    if (adopting_ != nullptr && adopting_->wsi == nullptr) {
        pending_.attach(*adopting_, wsi);
        return adopting_;
    }
    return nullptr;
}

void UpgradeGate::onHead(int fd, HeadRead&& read) {
    using Outcome = HeadRead::Outcome;
    auto& m = ctx_.metrics;
    PendingConnection* c = pending_.find(fd);
    if (c == nullptr) {  // cannot happen: every socket being read is pending
        close(fd);
        return;
    }
    switch (read.outcome) {
        case Outcome::Incomplete:
        case Outcome::Gone:
            forget(*c);
            close(fd);
            return;
        case Outcome::TooLarge:
            countHandshake(m, metrics::HandshakeResult::BadRequest);
            refuse(fd, 431, "bad request", "request head too large");
            return;
        case Outcome::BadSubprotocol:
            countHandshake(m, metrics::HandshakeResult::BadRequest);
            refuse(fd, 400, "bad request",
                   "offer the wsrelay.v1 subprotocol next to wsrelay.bearer.<token>");
            return;
        case Outcome::Ready: break;
    }
    // The head lws will read: the one sent, or the one without the bearer entry.
    const std::string& seen = read.consumed.empty() ? read.head : read.consumed;
    RequestHead request;
    if (!parseRequestHead(seen, request)) {
        countHandshake(m, metrics::HandshakeResult::BadRequest);
        refuse(fd, 400, "bad request", "malformed request head");
        return;
    }
    if (c->client_in_head && !limit(*c, limits_.clientOf(request, c->client))) return;
    auto grant = std::make_unique<UpgradeGrant>();
    if (request.headerCount("upgrade") == 0) {
        // Plain HTTP: lws serves it, and the connection closes after its answer.
        adopt(fd, read.consumed, std::move(grant));
        return;
    }
    std::string reason;
    if (const unsigned status = checkUpgrade(request, c->port, reason); status != 0) {
        countHandshake(m, status == 404 ? metrics::HandshakeResult::Path
                                        : metrics::HandshakeResult::BadRequest);
        refuse(fd, status, status == 404 ? "not found" : "bad request", reason);
        return;
    }
    grant->upgrade = true;
    if (Authenticator* auth = ctx_.authenticator) {
        jwt::Failure failure = jwt::Failure::KeysUnavailable;
        grant->identity = std::make_unique<Identity>();
        if (!ctx_.shared.auth_keys_missing.load(std::memory_order_relaxed)) {
            failure = auth->verify(auth->findToken(request, read.token), *grant->identity);
        }
        if (failure != jwt::Failure::None) {
            countAuthFailure(m, failure);
            const bool unavailable = failure == jwt::Failure::KeysUnavailable;
            refuse(fd, unavailable ? 503 : 401, unavailable ? "unavailable" : "unauthorized",
                   jwt::failureText(failure));
            return;
        }
    }
    HookBridge* hook = ctx_.hook;
    if (hook != nullptr && hook->sends(HookEvent::Connect)) {
        askHook(fd, std::move(read.consumed), std::move(grant), request);
        return;
    }
    admitUser(fd, std::move(read.consumed), std::move(grant));
}

unsigned UpgradeGate::checkUpgrade(const RequestHead& request, http::Port port,
                                   std::string& reason) const {
    if (request.headerCount("upgrade") != 1 ||
        !equalsIgnoreCase(request.header("upgrade"), "websocket")) {
        reason = "only the websocket upgrade is supported";
        return 400;
    }
    std::string path;
    if (!normalizedPath(request.target, path)) {
        reason = "malformed request path";
        return 400;
    }
    if (path != ctx_.config.websocket.path) {
        reason = "no WebSocket endpoint at this path";
        return 404;
    }
    if (!http::serves(port, http::Endpoint::WebSocket, ctx_.config.listen.internal_port != 0)) {
        reason = http::kNoWebSocketHere;
        return 404;
    }
    if (request.method != "GET") {
        reason = "a WebSocket upgrade is a GET";
        return 400;
    }
    const std::string_view connection = request.header("connection");
    if (request.headerCount("connection") != 1 || connection.size() > kLwsHeaderBuffer ||
        !listHasToken(connection, "upgrade")) {
        reason = "Connection: Upgrade is missing";
        return 400;
    }
    const std::string_view key = request.header("sec-websocket-key");
    if (request.headerCount("sec-websocket-key") != 1 || key.empty() ||
        key.size() > kLwsHeaderBuffer || request.header("host").empty()) {
        reason = "Host or Sec-WebSocket-Key is missing";
        return 400;
    }
    if (request.header("sec-websocket-version") != "13") {
        reason = "Sec-WebSocket-Version must be 13";
        return 400;
    }
    if (request.headerCount("authorization") > 1) {
        reason = "more than one Authorization header";
        return 400;
    }
    if (!subprotocolsAcceptable(request, reason)) return 400;
    return 0;
}

void UpgradeGate::askHook(int fd, std::string consumed, std::unique_ptr<UpgradeGrant> grant,
                          const RequestHead& request) {
    auto& m = ctx_.metrics;
    std::string headers = "{";
    for (const std::string& name : ctx_.config.hook.forward_headers) {
        const std::string_view value = request.header(name);
        if (value.empty()) continue;
        if (headers.size() > 1) headers += ',';
        appendJsonString(name, headers);
        headers += ':';
        appendJsonString(value, headers);
    }
    headers += '}';

    grant->session_id = ctx_.sessions.allocateId();
    const uint64_t id = grant->session_id;
    const std::string user = grant->identity ? grant->identity->user : std::string();
    auto parked = std::make_shared<Parked>(Parked{std::move(consumed), std::move(grant)});
    const bool sent =
        ctx_.hook->connect(id, user, headers, [this, fd, parked](ConnectDecision&& d) {
            if (d.kind != ConnectDecision::Kind::Allow) {
                countHandshake(ctx_.metrics, metrics::HandshakeResult::Hook);
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
            g.info = std::move(d.info);
            g.channels = std::move(d.channels);
            admitUser(fd, std::move(parked->consumed), std::move(parked->grant));
        });
    if (!sent) {
        countHandshake(m, metrics::HandshakeResult::Hook);
        refuse(fd, 503, "unavailable", "hook busy");
        return;
    }
    if (PendingConnection* c = pending_.find(fd)) {
        pending_.setStage(*c, PendingConnection::Stage::Parked, ev_now(ctx_.loop));
    }
}

void UpgradeGate::admitUser(int fd, std::string consumed, std::unique_ptr<UpgradeGrant> grant) {
    const std::string& user = grant->identity ? grant->identity->user : grant->hook_user;
    if (!user_limit_ || !user_limit_->applies(user) || shut_down_) {
        adopt(fd, consumed, std::move(grant));
        return;
    }
    // The connection's fleet id is its session's: the session is made with this id.
    if (grant->session_id == 0) grant->session_id = ctx_.sessions.allocateId();
    std::string connection = fleet::connectionId(ctx_.shared.instance_id, grant->session_id);
    std::string name = user;
    auto parked = std::make_shared<Parked>(Parked{std::move(consumed), std::move(grant)});
    user_limit_->admit(
        std::move(name), std::move(connection), [this, fd, parked](UserLimit::Admission&& a) {
            UpgradeGrant& g = *parked->grant;
            if (!a.admitted) {
                countHandshake(ctx_.metrics, metrics::HandshakeResult::UserLimit);
                // The app heard of its connect: it hears that it ended, as for a connection
                // refused at limits.max_connections.
                if (g.decided) announceDisconnect(g, static_cast<int>(CloseCode::TryAgainLater));
                refuse(fd, 429, "too many connections",
                       "this user holds " + std::to_string(a.held) +
                           " connections (limits.max_connections_per_user)");
                return;
            }
            g.user_slot = std::move(a.slot);
            adopt(fd, parked->consumed, std::move(parked->grant));
        });
    if (PendingConnection* c = pending_.find(fd)) {
        pending_.setStage(*c, PendingConnection::Stage::Parked, ev_now(ctx_.loop));
    }
}

void UpgradeGate::adopt(int fd, std::string_view consumed, std::unique_ptr<UpgradeGrant> grant) {
    PendingConnection* c = pending_.find(fd);
    if (shut_down_ || c == nullptr) {
        refuse(fd, 503, "unavailable", "server shutting down");
        if (grant && grant->decided) announceDisconnect(*grant, 1001);
        return;
    }
    c->grant = std::move(grant);
    pending_.setStage(*c, PendingConnection::Stage::Lws, ev_now(ctx_.loop));
    armTimeout();
    lws_vhost* vhost = ctx_.vhost;
    adopting_ = c;
    lws* wsi = consumed.empty()
                   ? lws_adopt_socket_vhost(vhost, fd)
                   : lws_adopt_socket_vhost_readbuf(vhost, fd, consumed.data(), consumed.size());
    // lws may have upgraded the connection (take) or closed it (destroyed) inside the call.
    c = adopting_;
    adopting_ = nullptr;
    if (c == nullptr) return;
    if (wsi == nullptr) {  // lws closed the socket
        if (c->grant && c->grant->decided) announceDisconnect(*c->grant, 1006);
        forget(*c);
        return;
    }
    if (c->wsi == nullptr) pending_.attach(*c, wsi);
}

bool UpgradeGate::limit(PendingConnection& c, const AddressKey& client) {
    c.client_in_head = false;
    c.client = client;
    AddressLimits::Decision decision = limits_.admit(client, ev_now(ctx_.loop));
    if (!decision.admitted) {
        refuse(c.fd, 429, "too many requests", decision.reason, decision.retry_after_s);
        return false;
    }
    c.slot = std::move(decision.slot);
    return true;
}

void UpgradeGate::refuse(int fd, unsigned status, std::string_view error, std::string_view reason,
                         unsigned retry_after_s) {
    if (PendingConnection* c = pending_.find(fd)) forget(*c);
    const std::string response = http::refusalResponse(status, error, reason, retry_after_s);
    // The head was only peeked: closing with unread bytes would send a reset, which clients may
    // see before the answer.
    char sink[4096];
    for (int i = 0; i < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    // Best effort: a fresh socket's send buffer takes a few hundred bytes at once.
    (void)!send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

void UpgradeGate::closePending(PendingConnection& c, metrics::PendingClose why) {
    ctx_.metrics.pending_closed[why].add();
    switch (c.stage) {
        case PendingConnection::Stage::ReadingHead: {
            const int fd = c.fd;
            forget(c);
            head_reader_->close(fd);
            return;
        }
        case PendingConnection::Stage::Lws: {
            // Closed now, not on lws's next turn: a burst of new sockets sheds one each, and
            // descriptors of asynchronous kills would pile up meanwhile. lws calls back
            // destroyed(), which forgets `c`; it stays Closing only if lws still has bytes to send.
            lws* wsi = c.wsi;
            pending_.setStage(c, PendingConnection::Stage::Closing, 0);
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
            return;
        }
        case PendingConnection::Stage::Parked:
        case PendingConnection::Stage::Closing: return;  // not in the age order: never chosen
    }
}

void UpgradeGate::forget(PendingConnection& c) {
    if (adopting_ == &c) adopting_ = nullptr;
    pending_.remove(c);
    ctx_.metrics.pending_connections.sub();
}

void UpgradeGate::announceDisconnect(const UpgradeGrant& grant, int code) {
    HookBridge* hook = ctx_.hook;
    if (hook == nullptr || !hook->sends(HookEvent::Disconnect)) return;
    const std::string& user = grant.identity ? grant.identity->user : grant.hook_user;
    hook->disconnect(grant.session_id, user, grant.meta, code);
}

void UpgradeGate::armTimeout() {
    if (ev_is_active(&timeout_timer_) || shut_down_) return;
    const PendingConnection* oldest = pending_.oldest();
    if (oldest == nullptr) return;
    const double due = oldest->since + timeout_s_ - ev_now(ctx_.loop);
    ev_timer_set(&timeout_timer_, std::max(due, 0.001), 0.);
    ev_timer_start(ctx_.loop, &timeout_timer_);
}

void UpgradeGate::onTimeout(struct ev_loop* loop, ev_timer* w, int) {
    auto* self = static_cast<UpgradeGate*>(w->data);
    const double now = ev_now(loop);
    while (PendingConnection* c = self->pending_.oldest()) {
        if (c->since + self->timeout_s_ > now) break;
        self->closePending(*c, metrics::PendingClose::Timeout);
    }
    self->armTimeout();
}

int UpgradeGate::onHttpRequest(lws* wsi) {
    PendingConnection* c = entryOf(wsi);
    if (c == nullptr) return 0;
    // One request per connection (its answer says Connection: close): anything after it is not
    // the request the gate read, so it is not served.
    if (c->request_seen) return -1;
    c->request_seen = true;
    if (c->grant && c->grant->decided) {
        // Admitted as an upgrade, served as plain HTTP (cannot happen while the gate and lws
        // agree on what an upgrade is): the app heard of its connect, so it hears of its end.
        announceDisconnect(*c->grant, 1006);
        c->grant.reset();
    }
    return 0;
}

int UpgradeGate::confirm(lws* wsi) {
    PendingConnection* c = entryOf(wsi);
    // Without the gate reading heads lws's own reading decides: only the one request counts.
    const bool admitted =
        c != nullptr && !c->request_seen && (!reads_heads_ || (c->grant && c->grant->upgrade));
    if (c != nullptr) c->request_seen = true;
    if (admitted) return 0;
    // Not the request the gate read and admitted (cannot happen while the gate and lws agree on
    // where a request ends and which path it names): refused, never let through.
    countHandshake(ctx_.metrics, metrics::HandshakeResult::BadRequest);
    return http::refuseUpgrade(wsi, 400, "bad request", "upgrade not admitted");
}

std::unique_ptr<UpgradeGrant> UpgradeGate::take(lws* wsi, AddressSlot* slot) {
    PendingConnection* c = entryOf(wsi);
    if (c == nullptr) return nullptr;
    if (slot != nullptr) *slot = std::move(c->slot);
    std::unique_ptr<UpgradeGrant> grant = std::move(c->grant);
    forget(*c);
    return grant;
}

AddressKey UpgradeGate::clientOf(lws* wsi) {
    if (PendingConnection* c = entryOf(wsi)) return c->client;
    // Cannot happen for a request lws is serving: it is pending until it closes.
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    getpeername(lws_get_socket_fd(wsi), reinterpret_cast<sockaddr*>(&peer), &length);
    return limitKey(addressKey(peer));
}

http::Port UpgradeGate::portOf(lws* wsi) {
    const PendingConnection* c = entryOf(wsi);
    return c != nullptr ? c->port : http::Port::Public;
}

void UpgradeGate::destroyed(lws* wsi) {
    PendingConnection* c = entryOf(wsi);
    if (c == nullptr) return;
    if (c->grant && c->grant->decided) announceDisconnect(*c->grant, 1006);
    forget(*c);
}

}  // namespace wsrelay
