#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "metrics/relay_metrics.h"

namespace wsrelay {

class FleetCalls;
struct FleetReply;

// One worker's share of its instance's connection registry (docs/scaling.md "Leases"): a record
// per connection in Redis, so that should this instance die without draining, another one can
// tell the app of each connection it held. Changes are batched: a connection opened, changed
// (channels, meta) or closed during a loop turn is written (or deleted) once, by flush().
// Single-threaded.
class ConnectionRegistry {
public:
    // Writes `session`'s record (JSON) into `record`; false when the session has gone.
    using RecordOf = std::function<bool(uint64_t session, std::string& record)>;
    // Records written in one fleet call, at most.
    static constexpr size_t kBatch = 256;

    // `lease_generation`: 0 until the instance first holds its lease, then raised by the lease
    // keeper each time it (re)takes it (relay/fleet/instance_lease.h); a raise after the first
    // means the records were taken by a reaper, so every one is written again.
    ConnectionRegistry(FleetCalls& calls, std::string instance,
                       const std::atomic<uint64_t>& lease_generation, RecordOf record_of,
                       metrics::WorkerMetrics& metrics);
    ConnectionRegistry(const ConnectionRegistry&) = delete;
    ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

    // `session` opened, changed, or closed: its record is written or deleted at the next flush().
    void changed(uint64_t session) { dirty_.insert(session); }
    // The broker's state: nothing is sent while it is down; Up after Down writes every record
    // again (Redis may have lost them).
    void setBrokerUp(bool up);
    // Once per loop turn: sends the turn's puts and deletes.
    void flush();
    size_t dirty() const { return dirty_.size(); }

private:
    void markAll();
    void sendPuts(std::vector<std::string> args, std::vector<uint64_t> sessions,
                  uint64_t generation);
    void sendDeletes(std::vector<std::string> args);
    void onError(const FleetReply& reply, const char* what);

    FleetCalls& calls_;
    const std::string instance_;
    const std::atomic<uint64_t>& generation_;
    RecordOf record_of_;
    std::unordered_set<uint64_t> dirty_;
    std::unordered_set<uint64_t> written_;  // sessions whose record was sent and not deleted
    bool up_ = true;
    uint64_t seen_generation_ = 0;
    uint64_t refused_generation_ = 0;  // puts were refused (no lease) under this generation
    metrics::WorkerMetrics& metrics_;
    std::string record_;  // reused
};

}  // namespace wsrelay
