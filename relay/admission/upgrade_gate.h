#pragma once

#include <ev.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/relay_metrics.h"
#include "relay/admission/address_limits.h"
#include "relay/admission/head_reader.h"
#include "relay/admission/pending_connections.h"
#include "relay/admission/user_limit.h"
#include "relay/auth/permissions.h"
#include "relay/http/ports.h"

struct lws;

namespace wsrelay {

struct RequestHead;
struct WorkerContext;

// What the gate decided for a connection's one request, kept with the connection until lws
// upgrades it (then the session takes it) or closes it.
struct UpgradeGrant {
    bool upgrade = false;                // the request is the WebSocket upgrade the gate admitted
    bool decided = false;                // the connect hook allowed it: the app hears of its close
    uint64_t session_id = 0;             // 0: the session gets the next id when it opens
    std::unique_ptr<Identity> identity;  // auth on: the verified token's
    std::string hook_user;               // the connect answer's "user"
    std::string meta = "null";           // the connect answer's "meta"
    std::string info;                    // the connect answer's "info"; empty = none
    std::vector<std::string> channels;   // the connect answer's "subscribe"
    UserSlot user_slot;                  // its entry under limits.max_connections_per_user
};

// Admission: every socket a worker accepts passes here until it is a WebSocket session or closed.
// - All of them are counted (PendingConnections): a new one over its address's bound is closed, a
//   full table sheds its oldest, and one that has not finished a request in time is closed.
// - The per-address limits (AddressLimits) refuse a new one with 429 before anything of it is
//   read: over its address's handshake rate or connection cap. A connection from a trusted proxy
//   (limits.trusted_proxies) is limited under the client address its head reports, once the head
//   is read and before anything else is decided on it; with trusted proxies the gate reads heads.
// - With auth.enabled or a connect hook ("reading heads"), each connection's request head is read
//   here first (HeadReader), and the JWT and the app's connect hook decide on that request before
//   lws sees it; the socket is parked meanwhile. Then, with limits.max_connections_per_user, a
//   connection with a user asks the fleet for its place (UserLimit), parked again. A connection
//   then carries exactly that one request: every answer on the port says Connection: close, lws
//   upgrades only a request the gate admitted (confirm), and nothing decided for one request is
//   ever used for another.
// One per worker, on its thread. Construction needs no socket and no lws context.
class UpgradeGate {
public:
    explicit UpgradeGate(WorkerContext& ctx);
    ~UpgradeGate();
    UpgradeGate(const UpgradeGate&) = delete;
    UpgradeGate& operator=(const UpgradeGate&) = delete;

    // A socket the worker accepted from `peer` on `port`: counted, then read here or handed to
    // lws. Both ports are admitted alike; only what a request may reach differs (http/ports.h).
    void accept(int fd, const sockaddr_storage& peer, http::Port port = http::Port::Public);
    // The worker stops: sockets being read are closed, and connections the hook allows from now
    // on are closed instead of handed to lws.
    void shutDown();

    // lws events of a connection that is not a session yet (edge.cc).
    // LWS_CALLBACK_HTTP: 0 to serve the request, -1 to close instead (a second request on a
    // connection whose one request the gate read).
    int onHttpRequest(lws* wsi);
    // LWS_CALLBACK_HTTP_CONFIRM_UPGRADE at the WebSocket path: 0 lets it go on, 1 when a refusal
    // was written.
    int confirm(lws* wsi);
    // LWS_CALLBACK_ESTABLISHED: the connection is a session now; its grant (null when heads are
    // not read). Its count under limits.connections_per_ip moves to `slot` (released here when
    // null).
    std::unique_ptr<UpgradeGrant> take(lws* wsi, AddressSlot* slot = nullptr);
    // The address the per-address limits know a connection lws has by (the HTTP API's key
    // throttle): the client a trusted proxy reported, or its peer.
    AddressKey clientOf(lws* wsi);
    // The port a connection lws has came in on; Public for one the gate does not know (cannot
    // happen), which reaches the fewest endpoints when an internal port exists.
    http::Port portOf(lws* wsi);
    // LWS_CALLBACK_WSI_DESTROY, for every connection lws had: one the app heard of at connect but
    // that never became a session is announced as disconnected now.
    void destroyed(lws* wsi);

private:
    PendingConnection* entryOf(lws* wsi);
    void onHead(int fd, HeadRead&& read);
    // The request is an upgrade: 0 when it is a well-formed one at the WebSocket path, else the
    // HTTP status to refuse it with and `reason`.
    unsigned checkUpgrade(const RequestHead& request, http::Port port, std::string& reason) const;
    void askHook(int fd, std::string consumed, std::unique_ptr<UpgradeGrant> grant,
                 const RequestHead& request);
    // An admitted upgrade: asks the fleet for its user's place first when the per-user limit
    // applies, then adopts it.
    void admitUser(int fd, std::string consumed, std::unique_ptr<UpgradeGrant> grant);
    void adopt(int fd, std::string_view consumed, std::unique_ptr<UpgradeGrant> grant);
    // Writes a refusal on a socket lws never saw, and closes it.
    void refuse(int fd, unsigned status, std::string_view error, std::string_view reason,
                unsigned retry_after_s = 0);
    // Applies the per-address limits to `c` under `client`; false when it was refused (and closed).
    bool limit(PendingConnection& c, const AddressKey& client);
    // Closes a pending connection for `why` (shed, timed out).
    void closePending(PendingConnection& c, metrics::PendingClose why);
    void forget(PendingConnection& c);
    void announceDisconnect(const UpgradeGrant& grant, int code);
    void armTimeout();
    static void onTimeout(struct ev_loop* loop, ev_timer* w, int revents);

    WorkerContext& ctx_;
    const bool reads_heads_;
    const double timeout_s_;
    // Before pending_: the grants of pending connections hold slots of it. Null when
    // limits.max_connections_per_user is 0.
    std::unique_ptr<UserLimit> user_limit_;
    PendingConnections pending_;
    AddressLimits limits_;
    std::unique_ptr<HeadReader> head_reader_;
    PendingConnection* adopting_ = nullptr;  // the connection inside an lws adopt call
    ev_timer timeout_timer_{};
    bool shut_down_ = false;
};

}  // namespace wsrelay
