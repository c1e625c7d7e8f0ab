#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "adapters/hook_event.h"
#include "metrics/enum_array.h"

namespace wsrelay::metrics {

// Label values are closed sets, so no label ever carries a channel name or a user id. A family
// labelled by an enum is an EnumArray indexed by it: m.dropped[DropReason::TooLarge].add().
enum class HandshakeResult : uint8_t {
    Ok,
    Origin,
    Limit,
    Path,
    Draining,
    Auth,
    Hook,
    BadRequest,
    UserLimit,  // limits.max_connections_per_user refused it (policy refuse)
    kCount
};
inline constexpr EnumArray<HandshakeResult, const char*> kHandshakeResultNames = {
    "ok", "origin", "limit", "path", "draining", "auth", "hook", "bad_request", "user_limit"};

enum class DropReason : uint8_t {
    SlowConsumerDropOldest,
    SlowConsumerClose,
    ClientGone,
    TooLarge,
    MemoryBudget,
    kCount
};
inline constexpr EnumArray<DropReason, const char*> kDropReasonNames = {
    "slow_consumer_drop", "slow_consumer_close", "client_gone", "too_large", "memory_budget"};

// Why a connection was closed before it became a WebSocket session
// (relay/admission/pending_connections.h).
enum class PendingClose : uint8_t { Shed, Full, PerAddress, Timeout, kCount };
inline constexpr EnumArray<PendingClose, const char*> kPendingCloseNames = {
    "shed", "full", "per_address", "timeout"};

// Where a message too large to deliver (its frame over limits.send_queue_bytes) came in.
enum class MessageSource : uint8_t { Client, Api, Hook, Broker, kCount };
inline constexpr EnumArray<MessageSource, const char*> kMessageSourceNames = {"client", "api",
                                                                              "hook", "broker"};

// The command kinds limits.rate.* meters per connection (relay/session/rate_limiter.h), and what
// became of a command over its kind's rate: refused with 429, or only counted
// (limits.rate.dry_run).
enum class RateKind : uint8_t { Publish, Subscribe, Send, History, Other, kCount };
inline constexpr EnumArray<RateKind, const char*> kRateKindNames = {"publish", "subscribe", "send",
                                                                    "history", "other"};
enum class RateResult : uint8_t { Refused, DryRun, kCount };
inline constexpr EnumArray<RateResult, const char*> kRateResultNames = {"refused", "dry_run"};
// Where a publish refused because the memory budget is full came in.
enum class PublishEntry : uint8_t { Client, Api, Hook, kCount };
inline constexpr EnumArray<PublishEntry, const char*> kPublishEntryNames = {"client", "api",
                                                                            "hook"};

// Close codes worth a series of their own; anything else counts as "other" (the last entry, whose
// code 0 is a placeholder).
inline constexpr std::array<int, 17> kCloseCodes = {1000, 1001, 1002, 1003, 1006, 1007,
                                                    1008, 1009, 1011, 1013, 4001, 4002,
                                                    4003, 4429, 4500, 4501, 0};
inline constexpr std::array<const char*, 17> kCloseCodeNames = {
    "1000", "1001", "1002", "1003", "1006", "1007", "1008", "1009", "1011",
    "1013", "4001", "4002", "4003", "4429", "4500", "4501", "other"};
static_assert(kCloseCodes.size() == kCloseCodeNames.size());
// Index into kCloseCodes/kCloseCodeNames for `code`; the last index ("other") for any other code.
size_t closeCodeIndex(int code);

// Error frames sent, by protocol error code (docs/protocol.md).
inline constexpr std::array<int, 12> kErrorCodes = {400, 401, 403, 404, 405, 409,
                                                    413, 422, 429, 502, 503, 500};
inline constexpr std::array<const char*, 12> kErrorCodeNames = {
    "400", "401", "403", "404", "405", "409", "413", "422", "429", "502", "503", "500"};
static_assert(kErrorCodes.size() == kErrorCodeNames.size());
// Index into kErrorCodes/kErrorCodeNames for `code`; the index of 500 for any other code.
size_t errorCodeIndex(int code);

// Why a handshake's token was refused: jwt::Failure without its None, in the same order
// (relay/auth/authenticator.cc checks the names and converts).
enum class AuthFailure : uint8_t {
    Missing,
    Malformed,
    Algorithm,
    UnknownKey,
    BadSignature,
    Expired,
    MissingExp,
    NotYetValid,
    Issuer,
    Audience,
    Claims,
    KeysUnavailable,
    kCount
};
inline constexpr EnumArray<AuthFailure, const char*> kAuthFailureNames = {
    "missing",       "malformed", "algorithm",   "unknown_key",
    "bad_signature", "expired",   "missing_exp", "not_yet_valid",
    "issuer",        "audience",  "claims",      "keys_unavailable"};

enum class RefreshResult : uint8_t { Ok, Rejected, kCount };
inline constexpr EnumArray<RefreshResult, const char*> kRefreshResultNames = {"ok", "rejected"};

// Hook requests (docs/hook.md), by event (HookEvent, adapters/hook_event.h) and by outcome.
enum class HookResult : uint8_t {
    Ok,
    Denied,
    Error,
    Timeout,
    Unavailable,
    Overflow,
    Abandoned,
    kCount
};
inline constexpr EnumArray<HookResult, const char*> kHookResultNames = {
    "ok", "denied", "error", "timeout", "unavailable", "overflow", "abandoned"};

// Upper bounds of the latency histograms' buckets, in seconds and in microseconds (+Inf is
// implicit).
inline constexpr std::array<double, 13> kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
inline constexpr std::array<int64_t, 13> kLatencyBucketsMicros = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000};
enum class FetchResult : uint8_t { Ok, Error, kCount };

// History (docs/protocol.md "History and recovery"): reads of a channel's history by outcome, and
// what became of recoveries: a client's subscribe with "since", or a channel's after a broker gap.
enum class HistoryReadResult : uint8_t { Ok, Unavailable, kCount };
inline constexpr EnumArray<HistoryReadResult, const char*> kHistoryReadResultNames = {
    "ok", "unavailable"};
enum class RecoveryResult : uint8_t { Recovered, NotRecovered, kCount };
inline constexpr EnumArray<RecoveryResult, const char*> kRecoveryResultNames = {"recovered",
                                                                                "not_recovered"};
// Where a client's recovered messages came from: the worker's cache of recent frames, or a read.
enum class RecoverySource : uint8_t { Cache, Read, kCount };
inline constexpr EnumArray<RecoverySource, const char*> kRecoverySourceNames = {"cache", "read"};
inline constexpr EnumArray<FetchResult, const char*> kFetchResultNames = {"ok", "error"};
// permessage-deflate: payload bytes given to the compressor, and what came out of it.
enum class CompressionStage : uint8_t { In, Out, kCount };
inline constexpr EnumArray<CompressionStage, const char*> kCompressionStageNames = {"in", "out"};

// TLS handshakes with clients (tls.cert_file): done, refused by TLS (an alert: a version below
// tls.min_version, no common cipher, not TLS at all), or the connection gone before the end.
enum class TlsHandshakeResult : uint8_t { Ok, Error, Closed, kCount };
inline constexpr EnumArray<TlsHandshakeResult, const char*> kTlsHandshakeResultNames = {
    "ok", "error", "closed"};
// The per-address limits (docs/security.md "Per-address limits"), and what each did: refused,
// or only counted under limits.per_ip_dry_run.
enum class IpLimit : uint8_t { HandshakeRate, Connections, ApiKey, kCount };
inline constexpr EnumArray<IpLimit, const char*> kIpLimitNames = {"handshake_rate", "connections",
                                                                  "api_key"};
enum class IpLimitResult : uint8_t { Refused, DryRun, kCount };
inline constexpr EnumArray<IpLimitResult, const char*> kIpLimitResultNames = {"refused", "dry_run"};

// Fleet commands (docs/scaling.md "The fleet"): what became of this worker's asks (every worker
// reached answered; some did not within fleet.command_timeout_ms; the broker was down; refused
// at fleet.max_pending_commands), and of the control messages it received.
enum class FleetAskResult : uint8_t { Complete, Timeout, Unavailable, Busy, kCount };
inline constexpr EnumArray<FleetAskResult, const char*> kFleetAskResultNames = {
    "complete", "timeout", "unavailable", "busy"};
enum class FleetMessageResult : uint8_t { Handled, Unknown, Malformed, Late, kCount };
inline constexpr EnumArray<FleetMessageResult, const char*> kFleetMessageResultNames = {
    "handled", "unknown", "malformed", "late"};

// Channel occupancy (docs/scaling.md "Channel occupancy"): the hook events it decides.
enum class OccupancyEvent : uint8_t { Occupied, Vacated, kCount };
inline constexpr EnumArray<OccupancyEvent, const char*> kOccupancyEventNames = {"occupied",
                                                                                "vacated"};

enum class Type : uint8_t { Counter, Gauge, Histogram };

// The one list of per-worker metrics. X(field, type, name, help) is unlabelled;
// L(field, type, name, help, label, names-array) has one label with a closed set of values.
// Help texts must not contain '\\' or newlines (prometheus-cpp 1.0.1 writes HELP unescaped).
// The process-level metrics rendered next to these are listed by describeMetrics().
#define WSRELAY_METRICS(X, L)                                                                      \
    X(connections, Gauge, "wsrelay_connections", "Open WebSocket connections")                     \
    L(handshakes, Counter, "wsrelay_handshakes_total", "WebSocket upgrade attempts by result",     \
      "result", kHandshakeResultNames)                                                             \
    X(pending_connections, Gauge, "wsrelay_pending_connections",                                   \
      "Accepted connections that are not WebSocket sessions yet (request head being read, "        \
      "waiting "                                                                                   \
      "for the connect hook, upgrade under way, plain HTTP)")                                      \
    L(pending_closed, Counter, "wsrelay_pending_closed_total",                                     \
      "Connections closed before becoming WebSocket sessions, by the bound that closed them",      \
      "reason", kPendingCloseNames)                                                                \
    X(messages_received, Counter, "wsrelay_messages_received_total",                               \
      "WebSocket messages received from clients")                                                  \
    X(bytes_received, Counter, "wsrelay_received_bytes_total",                                     \
      "Payload bytes of WebSocket messages received from clients")                                 \
    X(messages_sent, Counter, "wsrelay_messages_sent_total",                                       \
      "WebSocket messages written to clients")                                                     \
    X(bytes_sent, Counter, "wsrelay_sent_bytes_total",                                             \
      "Bytes written to client sockets, WebSocket framing included")                               \
    X(socket_writes, Counter, "wsrelay_socket_writes_total",                                       \
      "Socket writes to clients; below messages_sent when queued frames are coalesced")            \
    X(subscriptions, Gauge, "wsrelay_subscriptions", "Client channel subscriptions")               \
    X(channels, Gauge, "wsrelay_channels",                                                         \
      "Channels with at least one local subscriber, counted per worker "                           \
      "(broker subscriptions held)")                                                               \
    X(send_queue_bytes, Gauge, "wsrelay_send_queue_bytes",                                         \
      "Bytes queued for clients and not yet written")                                              \
    L(dropped, Counter, "wsrelay_dropped_messages_total",                                          \
      "Messages not delivered to a client, by reason", "reason", kDropReasonNames)                 \
    L(too_large, Counter, "wsrelay_too_large_messages_total",                                      \
      "Messages refused because their frame would exceed limits.send_queue_bytes, by where they "  \
      "came in (broker: once per worker)",                                                         \
      "source", kMessageSourceNames)                                                               \
    L(disconnects, Counter, "wsrelay_disconnects_total",                                           \
      "Closed WebSocket connections by close code (1006: no close frame)", "code",                 \
      kCloseCodeNames)                                                                             \
    L(errors, Counter, "wsrelay_error_frames_total", "Error frames sent to clients, by code",      \
      "code", kErrorCodeNames)                                                                     \
    X(broker_publishes, Counter, "wsrelay_broker_publishes_total",                                 \
      "Messages published to the broker")                                                          \
    X(broker_publish_failures, Counter, "wsrelay_broker_publish_failures_total",                   \
      "Publishes the broker could not accept: clients', the HTTP API's and hook answers'")         \
    X(broker_messages, Counter, "wsrelay_broker_messages_total",                                   \
      "Messages received from the broker, once per worker")                                        \
    X(broker_reconnects, Counter, "wsrelay_broker_reconnects_total",                               \
      "Broker connections re-established after a loss, once per worker")                           \
    L(auth_failures, Counter, "wsrelay_auth_failures_total",                                       \
      "Handshakes refused because of the token, by reason", "reason", kAuthFailureNames)           \
    L(token_refreshes, Counter, "wsrelay_token_refreshes_total",                                   \
      "In-band token refreshes by result", "result", kRefreshResultNames)                          \
    L(jwks_fetches, Counter, "wsrelay_jwks_refreshes_total",                                       \
      "Fetches of auth.jwt.jwks_url by result", "result", kFetchResultNames)                       \
    X(jwks_keys, Gauge, "wsrelay_jwks_keys", "Keys in the current JWT key set")                    \
    X(jwks_skipped_keys, Gauge, "wsrelay_jwks_skipped_keys",                                       \
      "Keys of the last loaded JWK Set left out (unusable, or RSA under 2048 bits)")               \
    X(hook_in_flight, Gauge, "wsrelay_hook_in_flight", "Hook requests under way")                  \
    X(hook_queued_bytes, Gauge, "wsrelay_hook_queued_bytes",                                       \
      "Bytes of hook events waiting for the app behind their connection's request under way")      \
    L(history_reads, Counter, "wsrelay_history_reads_total",                                       \
      "Reads of channel histories by result (recoveries, history commands, /api/history)",         \
      "result", kHistoryReadResultNames)                                                           \
    X(history_reads_in_flight, Gauge, "wsrelay_history_reads_in_flight",                           \
      "History reads sent to the broker and not answered yet")                                     \
    X(history_trimmed, Counter, "wsrelay_history_trimmed_total",                                   \
      "Messages pushed out of channel histories by history_size, by this instance's publishes")    \
    L(recoveries, Counter, "wsrelay_recoveries_total",                                             \
      "Subscribes with since by outcome: every message after since delivered, or not", "result",   \
      kRecoveryResultNames)                                                                        \
    L(recovered_from, Counter, "wsrelay_recovered_from_total",                                     \
      "Recovered subscribes by where their messages came from", "source", kRecoverySourceNames)    \
    L(channel_recoveries, Counter, "wsrelay_channel_recoveries_total",                             \
      "Channels with history caught up after a broker gap, or resubscribed with a gap", "result",  \
      kRecoveryResultNames)                                                                        \
    X(tls_connections, Gauge, "wsrelay_tls_connections",                                           \
      "Client connections over TLS, from accept to close (handshakes under way included)")         \
    L(tls_handshakes, Counter, "wsrelay_tls_handshakes_total",                                     \
      "TLS handshakes with clients by result", "result", kTlsHandshakeResultNames)                 \
    L(tls_cert_reloads, Counter, "wsrelay_tls_cert_reloads_total",                                 \
      "Reloads of tls.cert_file and tls.key_file after they changed, by result (error: the "       \
      "previous certificate is still served)",                                                     \
      "result", kFetchResultNames)                                                                 \
    X(tls_cert_expiry, Gauge, "wsrelay_tls_cert_expiry_timestamp_seconds",                         \
      "Unix time at which the served certificate expires; 0 without TLS")                          \
    X(ip_table_entries, Gauge, "wsrelay_ip_table_entries",                                         \
      "Client addresses holding at least one open connection (limits.connections_per_ip)")         \
    X(rate_limit_closes, Counter, "wsrelay_rate_limit_closes_total",                               \
      "Connections closed with 4429 after limits.rate.max_refusals refused commands in a row")     \
    X(queued_bytes, Gauge, "wsrelay_queued_bytes",                                                 \
      "Bytes counted against the memory budget: send and hook queues, partial client messages, "   \
      "writes handed to libwebsockets (a shared frame once per queue)")                            \
    X(memory_shed, Counter, "wsrelay_memory_shed_total",                                           \
      "Connections closed with 4001 to bring the queued bytes back under the memory budget")       \
    L(memory_refused, Counter, "wsrelay_memory_refused_total",                                     \
      "Publishes refused with 503 while the memory budget was full, by where they came in",        \
      "entry", kPublishEntryNames)                                                                 \
    X(compressed_frames, Counter, "wsrelay_compressed_frames_total",                               \
      "Message frames built compressed (permessage-deflate), once per worker and message")         \
    L(compression_bytes, Counter, "wsrelay_compression_bytes_total",                               \
      "Payload bytes into and out of the message compressor, once per worker and message "         \
      "(also the messages then sent plain because they did not come out smaller)",                 \
      "stage", kCompressionStageNames)                                                             \
    X(deflate_connections, Gauge, "wsrelay_deflate_connections",                                   \
      "Open WebSocket connections that negotiated permessage-deflate")                             \
    L(fleet_asks, Counter, "wsrelay_fleet_commands_total",                                         \
      "Fleet commands this worker sent (the server API), by outcome", "result",                    \
      kFleetAskResultNames)                                                                        \
    L(fleet_messages, Counter, "wsrelay_fleet_messages_total",                                     \
      "Control messages received from the fleet by what became of them (late: a reply after its "  \
      "command timed out)",                                                                        \
      "result", kFleetMessageResultNames)                                                          \
    X(fleet_instances_reaped, Counter, "wsrelay_fleet_instances_reaped_total",                     \
      "Instances whose lease expired that this one claimed, to report their connections lost")     \
    X(fleet_instance_lost_events, Counter, "wsrelay_fleet_instance_lost_events_total",             \
      "Connections of lost instances reported to the app (disconnect events with reason "          \
      "instance_lost it answered)")                                                                \
    X(fleet_instance_lost_retries, Counter, "wsrelay_fleet_instance_lost_retries_total",           \
      "instance_lost events the app did not answer (timeout, unreachable, hook busy): sent again " \
      "in the next lease period")                                                                  \
    X(fleet_lease_lost, Counter, "wsrelay_fleet_lease_lost_total",                                 \
      "Times this instance found its own lease taken (it was reported lost) and took it again")    \
    X(fleet_lease_errors, Counter, "wsrelay_fleet_lease_errors_total",                             \
      "Lease, connection registry, lost-instance cleanup and channel occupancy calls Redis "       \
      "refused with an error")                                                                     \
    X(user_limit_evictions, Counter, "wsrelay_user_limit_evictions_total",                         \
      "Older connections this instance told to close with 4501 to admit a newer one of the same "  \
      "user (limits.per_user_policy evict_oldest)")                                                \
    X(user_limit_unchecked, Counter, "wsrelay_user_limit_unchecked_total",                         \
      "Connections admitted without the per-user check because the fleet could not answer it "     \
      "(broker down or the call failed)")                                                          \
    L(occupancy_events, Counter, "wsrelay_channel_occupancy_events_total",                         \
      "Channel occupied and vacated events this instance decided and handed to the hook", "event", \
      kOccupancyEventNames)

// One worker's series. Exactly one thread writes a WorkerMetrics; the scrape reads it from another,
// so each slot is an atomic written with a plain load+store (no lock prefix on the hot path).
class Slot {
public:
    void add(int64_t n = 1) {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void sub(int64_t n = 1) { add(-n); }
    void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
    int64_t value() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<int64_t> v_{0};
};

// A latency histogram over kLatencyBuckets, single writer like Slot.
class Histogram {
public:
    // +0.5 rounds to the nearest microsecond; it is wrong only for a negative duration (a clock
    // step), which counts as 0 anyway.
    // NOLINTNEXTLINE(bugprone-incorrect-roundings)
    void observe(double seconds) { observeMicros(static_cast<int64_t>(seconds * 1e6 + 0.5)); }
    // Negative durations (a clock stepped back, or two hosts' clocks apart) count as 0.
    void observeMicros(int64_t us) {
        if (us < 0) us = 0;
        size_t i = 0;
        while (i < kLatencyBucketsMicros.size() && us > kLatencyBucketsMicros[i]) ++i;
        counts_[i].add();
        sum_us_.add(us);
    }
    // Observations in bucket i alone (not cumulative); i == kLatencyBuckets.size() is +Inf.
    int64_t count(size_t i) const { return counts_[i].value(); }
    int64_t sumMicros() const { return sum_us_.value(); }

private:
    std::array<Slot, kLatencyBuckets.size() + 1> counts_;
    Slot sum_us_;
};

// The series of a family labelled by `Names`: indexed by its enum when the names are an
// EnumArray, by position (closeCodeIndex(), errorCodeIndex()) when they are a plain array.
template <class Names>
struct SeriesOf;
template <class E>
struct SeriesOf<EnumArray<E, const char*>> {
    using type = EnumArray<E, Slot>;
};
template <size_t N>
struct SeriesOf<std::array<const char*, N>> {
    using type = std::array<Slot, N>;
};
template <const auto& Names>
using Series = typename SeriesOf<std::remove_cvref_t<decltype(Names)>>::type;

// alignas(64): workers' series never share a cache line.
struct alignas(64) WorkerMetrics {
#define WSRELAY_FIELD_X(field, type, name, help) Slot field;
#define WSRELAY_FIELD_L(field, type, name, help, label, names) Series<names> field;
    WSRELAY_METRICS(WSRELAY_FIELD_X, WSRELAY_FIELD_L)
    // Families with two labels or buckets, rendered by hand (relay_metrics.cc).
    EnumArray<HookEvent, EnumArray<HookResult, Slot>> hook_requests;
    EnumArray<HookEvent, Histogram> hook_duration;
    EnumArray<IpLimit, EnumArray<IpLimitResult, Slot>> ip_limited;
    EnumArray<RateKind, EnumArray<RateResult, Slot>> rate_limited;
    Histogram broker_publish_duration;
    Histogram broker_probe_duration;
    Histogram delivery_latency;
    // Wall-clock µs of this worker's last delivery probe that came back, or of its broker's start;
    // 0 when its broker sends no probes. Rendered as wsrelay_broker_probe_age_seconds.
    Slot probe_last_ok_us;
#undef WSRELAY_FIELD_X
#undef WSRELAY_FIELD_L
};

// One metric family as exposed on /metrics; `label` is empty for unlabelled families, otherwise
// `label_values` is the complete set of values it takes (every one is always rendered).
struct MetricInfo {
    std::string name;
    Type type;
    std::string help;
    std::string label;
    std::vector<std::string> label_values;
    std::string label2;  // a second label, crossed with the first (every pair is rendered)
    std::vector<std::string> label2_values;
    // Histograms: _bucket{le} for each bound and +Inf, _sum and _count, per label value.
    std::vector<double> buckets;
};

// Every family render() emits, per-worker ones first, then the process-level ones.
std::vector<MetricInfo> describeMetrics();

// What the server reports through wsrelay_ready, wsrelay_draining and wsrelay_broker_up.
struct ReadyState {
    bool ready = false;      // /readyz would answer 200
    bool draining = false;   // the server is draining
    bool broker_up = false;  // every worker's broker is usable
};
using ReadyProbe = std::function<ReadyState()>;

// Owns every worker's series and renders them, summed across workers, with the process metrics
// (build info, memory, CPU, open files, readiness) in the Prometheus text format.
class Registry {
public:
    // Throws std::invalid_argument unless workers >= 1 (startup only).
    explicit Registry(int workers);
    WorkerMetrics& worker(int index) { return *workers_[static_cast<size_t>(index)]; }
    const WorkerMetrics& worker(int index) const { return *workers_[static_cast<size_t>(index)]; }
    int workerCount() const { return worker_count_; }
    // The series of the one thread that is not a worker and writes metrics: the JWKS fetcher.
    WorkerMetrics& control() { return *workers_.back(); }

    // Set once before any render(); not synchronised with render(). The probe runs on whichever
    // thread renders (any worker), so it must be safe to call from there. Without a probe the
    // gauges read 0.
    void setReadyProbe(ReadyProbe probe) { ready_probe_ = std::move(probe); }

    // The process's memory budget in bytes (0: none), rendered as wsrelay_memory_budget_bytes.
    // Set once before any render().
    void setMemoryBudget(int64_t bytes) { memory_budget_bytes_ = bytes; }

    // Safe to call from any thread while workers bump their series; takes no lock.
    std::string render() const;

private:
    std::vector<std::unique_ptr<WorkerMetrics>> workers_;  // the workers', then control()
    int worker_count_;
    ReadyProbe ready_probe_;
    int64_t memory_budget_bytes_ = 0;
    double start_time_seconds_;
};

}  // namespace wsrelay::metrics
