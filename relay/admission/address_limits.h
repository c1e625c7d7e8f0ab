#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "adapters/client_address.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/common/address_counts.h"

namespace wsrelay {

struct RequestHead;

// Token buckets by client address: one worker's share of a per-address rate. Refilled from the
// loop clock on use (no timer). The map is bounded: an address whose bucket is full again is
// forgotten (it is the same as absent), and past `max_entries` an arbitrary one is, which only
// resets that address's budget. Single-threaded.
class AddressBuckets {
public:
    static constexpr size_t kMaxEntries = 65536;

    // `per_second` tokens a second, up to `burst` (at least 1).
    AddressBuckets(double per_second, double burst, size_t max_entries = kMaxEntries);

    // Takes a token of `key` if it has one; else false with `wait_s`, the seconds until it has.
    bool tryTake(const AddressKey& key, double now, double& wait_s);
    // Seconds until `key` has a token; 0 when it has one now. Takes nothing.
    double wait(const AddressKey& key, double now);
    // Takes a token of `key`, or what is left of one (never below empty).
    void take(const AddressKey& key, double now);
    size_t size() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens;
        double last;
    };
    struct Hash {
        size_t operator()(const AddressKey& a) const;
    };
    Bucket& bucketOf(const AddressKey& key, double now);
    void sweep(double now);

    const double per_second_;
    const double burst_;
    const size_t max_entries_;
    double last_sweep_ = 0;
    std::unordered_map<AddressKey, Bucket, Hash> buckets_;
};

// One connection's count in AddressCounts (limits.connections_per_ip), released exactly once:
// when it is destroyed or reset. It moves with the connection from the gate to its session.
class AddressSlot {
public:
    AddressSlot() = default;
    AddressSlot(AddressCounts& table, const AddressKey& key, metrics::Slot& entries)
        : table_(&table), key_(key), entries_(&entries) {}
    AddressSlot(AddressSlot&& other) noexcept { *this = std::move(other); }
    AddressSlot& operator=(AddressSlot&& other) noexcept;
    AddressSlot(const AddressSlot&) = delete;
    AddressSlot& operator=(const AddressSlot&) = delete;
    ~AddressSlot() { reset(); }

    void reset();
    bool held() const { return table_ != nullptr; }

private:
    AddressCounts* table_ = nullptr;
    AddressKey key_{};
    metrics::Slot* entries_ = nullptr;  // wsrelay_ip_table_entries of the worker that holds it
};

// The per-address limits a worker applies to each new connection, before its request head is read
// (or, from a trusted proxy, once it is: the client's address is in the head): the handshake rate
// (this worker's share) and the connection cap (exact across workers). Counted in
// wsrelay_ip_limited_total. One per worker, on its thread.
class AddressLimits {
public:
    AddressLimits(const Config& config, int workers, AddressCounts& counts,
                  metrics::WorkerMetrics& metrics);

    struct Decision {
        bool admitted = true;
        unsigned retry_after_s = 0;  // refused: the Retry-After to answer with
        std::string_view reason;     // refused: why, for the answer
        AddressSlot slot;            // admitted: the connection's count, if the cap is on
    };
    // A new connection of `client` (a limitKey()).
    Decision admit(const AddressKey& client, double now);
    // Whether a connection from `peer` names its client in its head (limits.trusted_proxies).
    bool fromTrustedProxy(const AddressKey& peer) const { return trusted_.contains(peer); }
    // The address a connection from trusted proxy `peer` is limited under: the client its head
    // reports, else `peer`.
    AddressKey clientOf(const RequestHead& request, const AddressKey& peer) const;
    bool readsHeads() const { return !trusted_.empty(); }

private:
    const Config::Limits& config_;
    CidrList trusted_;
    CidrList exempt_;
    AddressBuckets handshakes_;
    AddressCounts& counts_;
    metrics::WorkerMetrics& metrics_;
};

// limits.api_key_failures_per_ip_per_minute: an address that sent too many wrong or missing API
// keys is answered 429 without its key being checked. This worker's share of the rate. One per
// worker, on its thread.
class ApiKeyThrottle {
public:
    ApiKeyThrottle(const Config& config, int workers, metrics::WorkerMetrics& metrics);
    // 0: check the key; else refuse with 429 and this Retry-After, in seconds.
    unsigned refusal(const AddressKey& client, double now);
    // The key `client` sent was wrong or missing.
    void failed(const AddressKey& client, double now);

private:
    const bool on_;
    const bool dry_run_;
    CidrList exempt_;
    AddressBuckets failures_;
    metrics::WorkerMetrics& metrics_;
};

}  // namespace wsrelay
