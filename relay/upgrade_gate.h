#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "relay/head_reader.h"
#include "relay/permissions.h"

struct lws;

namespace wsrelay {

class Worker;
struct RequestHead;

// What an upgrade was granted before its session exists.
struct UpgradeGrant {
    uint64_t session_id = 0;             // 0: the session gets the next id when it opens
    std::unique_ptr<Identity> identity;  // auth on: the verified token's
    bool decided = false;                // the connect hook already allowed it (auth included)
    std::string subprotocol_token;       // lifted out of Sec-WebSocket-Protocol
    std::string hook_user;               // the connect answer's "user"
    std::string meta = "null";           // the connect answer's "meta"
    std::vector<std::string> channels;   // the connect answer's "subscribe"
};

// Decides whether a WebSocket upgrade may go on: the JWT (auth.enabled) and the app's connect
// hook, both before the upgrade, so a refusal is a plain HTTP answer. With either on, each new
// connection's request head is read first (HeadReader); the connect hook's answer is awaited with
// the socket parked, and lws only gets the connection once it is allowed. One per worker.
class UpgradeGate {
public:
    explicit UpgradeGate(Worker& worker);
    ~UpgradeGate();
    UpgradeGate(const UpgradeGate&) = delete;
    UpgradeGate& operator=(const UpgradeGate&) = delete;

    // True when new sockets must come here rather than straight to lws.
    bool readsHeads() const { return head_reader_ != nullptr; }
    // The worker stops: sockets being read are closed, and connections the hook allows from now
    // on are closed instead of handed to lws.
    void shutDown();
    void add(int fd) { head_reader_->add(fd); }

    // LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for the WebSocket path: 0 lets it go on, 1 when a refusal
    // was written. The grant waits for take() in the same lws call.
    int confirm(lws* wsi);
    // LWS_CALLBACK_ESTABLISHED: the grant confirm() made for `wsi` (null without auth or hook).
    std::unique_ptr<UpgradeGrant> take(lws* wsi);
    // An HTTP connection closed: if the app heard of its connect but it never became a session,
    // it hears of the disconnect now.
    void closed(lws* wsi);

private:
    void onHead(int fd, std::string consumed, std::string token, std::string head);
    void askHook(int fd, std::string consumed, std::unique_ptr<UpgradeGrant> grant,
                 const RequestHead& request);
    void adopt(int fd, const std::string& consumed, std::unique_ptr<UpgradeGrant> grant);
    // Writes a refusal on a socket lws never saw, and closes it.
    void refuse(int fd, unsigned status, std::string_view error, std::string_view reason);

    Worker& worker_;
    std::unique_ptr<HeadReader> head_reader_;
    std::unordered_map<int, std::unique_ptr<UpgradeGrant>> grants_;  // by socket, until confirm()
    bool shut_down_ = false;
    lws* pending_wsi_ = nullptr;
    std::unique_ptr<UpgradeGrant> pending_;
};

}  // namespace wsrelay
