#include "relay/admission/address_limits.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "relay/admission/forwarded_for.h"
#include "relay/common/log.h"

namespace wsrelay {
namespace {

// How often the bucket map is swept of addresses whose bucket is full again, at most.
constexpr double kSweepSeconds = 10.0;
constexpr size_t kSweepAbove = 1024;
// limits.connections_per_ip gives no time at which a connection frees up: a client told to come
// back is told to come back later than a rate refusal would.
constexpr unsigned kCapRetryAfterSeconds = 10;

unsigned retryAfter(double wait_s) {
    // Less a microsecond: a wait of 20.000000000000004 s is 20 s, not 21.
    return static_cast<unsigned>(std::max(1.0, std::ceil(wait_s - 1e-6)));
}

double perWorker(double total, int workers) { return total / std::max(1, workers); }
double burstPerWorker(double total, int workers) {
    return std::max(1.0, std::ceil(perWorker(total, workers)));
}

}  // namespace

size_t AddressBuckets::Hash::operator()(const AddressKey& a) const {
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
}

AddressBuckets::AddressBuckets(double per_second, double burst, size_t max_entries)
    : per_second_(per_second), burst_(std::max(1.0, burst)),
      max_entries_(std::max<size_t>(1, max_entries)) {}

AddressBuckets::Bucket& AddressBuckets::bucketOf(const AddressKey& key, double now) {
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_entries_ ||
            (buckets_.size() > kSweepAbove && now - last_sweep_ >= kSweepSeconds)) {
            sweep(now);
        }
        if (buckets_.size() >= max_entries_) buckets_.erase(buckets_.begin());
        return buckets_.emplace(key, Bucket{burst_, now}).first->second;
    }
    Bucket& b = it->second;
    if (now > b.last) {
        b.tokens = std::min(burst_, b.tokens + (now - b.last) * per_second_);
        b.last = now;
    }
    return b;
}

void AddressBuckets::sweep(double now) {
    last_sweep_ = now;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        const Bucket& b = it->second;
        if (b.tokens + (now - b.last) * per_second_ >= burst_) {
            it = buckets_.erase(it);
        } else {
            ++it;
        }
    }
}

bool AddressBuckets::tryTake(const AddressKey& key, double now, double& wait_s) {
    Bucket& b = bucketOf(key, now);
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return true;
    }
    wait_s = per_second_ > 0 ? (1.0 - b.tokens) / per_second_ : 60.0;
    return false;
}

double AddressBuckets::wait(const AddressKey& key, double now) {
    if (buckets_.find(key) == buckets_.end()) return 0;  // a full bucket
    const Bucket& b = bucketOf(key, now);
    if (b.tokens >= 1.0) return 0;
    return per_second_ > 0 ? (1.0 - b.tokens) / per_second_ : 60.0;
}

void AddressBuckets::take(const AddressKey& key, double now) {
    Bucket& b = bucketOf(key, now);
    b.tokens = std::max(0.0, b.tokens - 1.0);
}

AddressSlot& AddressSlot::operator=(AddressSlot&& other) noexcept {
    if (this == &other) return *this;
    reset();
    table_ = other.table_;
    key_ = other.key_;
    entries_ = other.entries_;
    other.table_ = nullptr;
    other.entries_ = nullptr;
    return *this;
}

void AddressSlot::reset() {
    if (table_ == nullptr) return;
    if (table_->release(key_)) entries_->sub();
    table_ = nullptr;
    entries_ = nullptr;
}

AddressLimits::AddressLimits(const Config& config, int workers, AddressCounts& counts,
                             metrics::WorkerMetrics& metrics)
    : config_(config.limits), trusted_(config.limits.trusted_proxies),
      exempt_(config.limits.per_ip_exempt),
      handshakes_(perWorker(config.limits.handshakes_per_ip_per_second, workers),
                  burstPerWorker(config.limits.handshakes_per_ip_burst, workers)),
      counts_(counts), metrics_(metrics) {}

AddressLimits::Decision AddressLimits::admit(const AddressKey& client, double now) {
    using metrics::IpLimit;
    using metrics::IpLimitResult;
    Decision d;
    if (exempt_.contains(client)) return d;
    const bool dry_run = config_.per_ip_dry_run;
    double wait_s = 0;
    if (config_.handshakes_per_ip_per_second > 0 && !handshakes_.tryTake(client, now, wait_s)) {
        if (!dry_run) {
            metrics_.ip_limited[IpLimit::HandshakeRate][IpLimitResult::Refused].add();
            WSR_LOG(Debug, "refused a connection of %s: over limits.handshakes_per_ip_per_second",
                    addressText(client).c_str());
            d.admitted = false;
            d.retry_after_s = retryAfter(wait_s);
            d.reason = "too many new connections from this address";
            return d;
        }
        metrics_.ip_limited[IpLimit::HandshakeRate][IpLimitResult::DryRun].add();
    }
    if (config_.connections_per_ip > 0) {
        const AddressCounts::Acquired a =
            counts_.acquire(client, static_cast<uint32_t>(config_.connections_per_ip), !dry_run);
        if (a.over) {
            metrics_
                .ip_limited[IpLimit::Connections]
                           [a.counted ? IpLimitResult::DryRun : IpLimitResult::Refused]
                .add();
        }
        if (!a.counted) {
            WSR_LOG(Debug, "refused a connection of %s: at limits.connections_per_ip",
                    addressText(client).c_str());
            d.admitted = false;
            d.retry_after_s = kCapRetryAfterSeconds;
            d.reason = "too many open connections from this address";
            return d;
        }
        if (a.new_entry) metrics_.ip_table_entries.add();
        d.slot = AddressSlot(counts_, client, metrics_.ip_table_entries);
    }
    return d;
}

AddressKey AddressLimits::clientOf(const RequestHead& request, const AddressKey& peer) const {
    const auto client = forwardedClient(request, config_.client_address_header, trusted_);
    return client ? limitKey(*client) : peer;
}

ApiKeyThrottle::ApiKeyThrottle(const Config& config, int workers, metrics::WorkerMetrics& metrics)
    : on_(config.limits.api_key_failures_per_ip_per_minute > 0),
      dry_run_(config.limits.per_ip_dry_run), exempt_(config.limits.per_ip_exempt),
      failures_(perWorker(config.limits.api_key_failures_per_ip_per_minute / 60.0, workers),
                burstPerWorker(config.limits.api_key_failures_per_ip_per_minute, workers)),
      metrics_(metrics) {}

unsigned ApiKeyThrottle::refusal(const AddressKey& client, double now) {
    using metrics::IpLimit;
    using metrics::IpLimitResult;
    if (!on_ || exempt_.contains(client)) return 0;
    const double wait_s = failures_.wait(client, now);
    if (wait_s <= 0) return 0;
    if (dry_run_) {
        metrics_.ip_limited[IpLimit::ApiKey][IpLimitResult::DryRun].add();
        return 0;
    }
    metrics_.ip_limited[IpLimit::ApiKey][IpLimitResult::Refused].add();
    return retryAfter(wait_s);
}

void ApiKeyThrottle::failed(const AddressKey& client, double now) {
    if (!on_ || exempt_.contains(client)) return;
    failures_.take(client, now);
}

}  // namespace wsrelay
