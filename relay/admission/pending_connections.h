#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "adapters/client_address.h"
#include "relay/admission/address_limits.h"
#include "relay/http/ports.h"

struct lws;

namespace wsrelay {

struct UpgradeGrant;

// A client's address as a map key (adapters/client_address.h).
AddressKey addressKey(const sockaddr_storage& peer);

// One accepted socket that is not a WebSocket session yet.
struct PendingConnection {
    enum class Stage : uint8_t {
        ReadingHead,  // the upgrade gate is reading its request head
        Parked,       // the gate waits for the connect hook's answer: neither shed nor timed out
        Lws,          // libwebsockets has it: an upgrade under way, or plain HTTP
        Closing,      // shed or timed out; counted until its descriptor is gone
    };
    int fd = -1;
    lws* wsi = nullptr;  // once libwebsockets has it
    AddressKey address{};
    double since = 0;  // loop time it was accepted (or left the connect hook's parking)
    Stage stage = Stage::ReadingHead;
    bool request_seen = false;             // lws has called back for its (first) request
    http::Port port = http::Port::Public;  // the listener that accepted it
    // The address the per-address limits count it under (limitKey() of the peer, or of the client
    // a trusted proxy reports), and its count under limits.connections_per_ip.
    AddressKey client{};
    AddressSlot slot;
    bool client_in_head = false;  // from a trusted proxy: limited once its head is read
    // The gate's decision on the connection's one request (with the gate reading heads).
    std::unique_ptr<UpgradeGrant> grant;
    // The age order of the connections that may be shed or timed out (not Parked, not Closing).
    PendingConnection* older = nullptr;
    PendingConnection* newer = nullptr;
    bool listed = false;
};

// Every socket a worker accepted until it becomes a WebSocket session or closes: each holds a
// descriptor and memory before any limit on sessions applies. The table counts them in total and
// per client address and keeps them in age order, so the gate can refuse a new one over its
// address's bound, shed the oldest when full, and time out the ones that never finish a request.
// Bookkeeping only (it closes nothing itself), single-threaded, one per worker.
class PendingConnections {
public:
    enum class Admit { Added, OverAddressLimit, Full };

    // `max_per_address` 0: no per-address bound.
    PendingConnections(size_t max, size_t max_per_address)
        : max_(max), max_per_address_(max_per_address) {}
    ~PendingConnections();
    PendingConnections(const PendingConnections&) = delete;
    PendingConnections& operator=(const PendingConnections&) = delete;

    // Adds `fd` as the newest connection, unless its address is at its bound or the table is
    // full (connections being closed do not count): the caller may then shed oldest() and retry.
    Admit add(int fd, const AddressKey& address, double now);
    PendingConnection* find(int fd);
    PendingConnection* find(lws* wsi);
    // lws has the connection now (looked up by `wsi` from here on).
    void attach(PendingConnection& c, lws* wsi);
    // The oldest connection that may be shed or timed out; null when none.
    PendingConnection* oldest() const { return oldest_; }
    // Moves `c` to the new stage; Parked and Closing leave the age order, anything else joins it
    // as the newest, aged from `now`.
    void setStage(PendingConnection& c, PendingConnection::Stage stage, double now);
    // Forgets `c` (it became a session, or its socket is closed); `c` is destroyed.
    void remove(PendingConnection& c);

    size_t size() const { return by_fd_.size(); }
    size_t closing() const { return closing_; }

private:
    struct AddressHash {
        size_t operator()(const AddressKey& a) const;
    };
    void link(PendingConnection& c);
    void unlink(PendingConnection& c);

    const size_t max_;
    const size_t max_per_address_;
    std::unordered_map<int, std::unique_ptr<PendingConnection>> by_fd_;
    std::unordered_map<lws*, PendingConnection*> by_wsi_;
    std::unordered_map<AddressKey, uint32_t, AddressHash> per_address_;
    PendingConnection* oldest_ = nullptr;
    PendingConnection* newest_ = nullptr;
    size_t closing_ = 0;
};

}  // namespace wsrelay
