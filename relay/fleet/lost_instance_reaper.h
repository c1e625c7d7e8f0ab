#pragma once

#include <simdjson.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/broker.h"
#include "metrics/relay_metrics.h"

namespace wsrelay {

class FleetCalls;

// Reports the connections of instances that died without draining (docs/scaling.md "Leases"),
// on the worker that keeps its instance's lease. The lease keeper hands it the lost instances this
// instance claimed (Redis gave each claim to exactly one instance); it reads each one's records
// in batches, sends the app a `disconnect` event with reason "instance_lost" per connection, and
// removes a record once its event was answered, then cleans what the record names (presence and
// the per-user count; its channel holds are dropped by the occupancy sweep, queued by lease_reap).
// One batch at a time, so at most `batch` events are under way. A batch with an event that was not
// answered (timeout, app unreachable, hook busy) leaves those records for the next claimed() call
// (the next lease period). Single-threaded.
class LostInstanceReaper {
public:
    // Sends one event body to the app; `done(true)` once the app answered it (any HTTP status),
    // `done(false)` when it did not (timeout, unreachable). False when the hook cannot take it now
    // (`done` is then never called).
    using SendEvent = std::function<bool(std::string body, std::function<void(bool answered)>)>;

    // `send` null: no events (the hook is off or does not send disconnect events); the records
    // are only cleaned up and removed.
    LostInstanceReaper(FleetCalls& calls, std::string claimer, SendEvent send, size_t batch,
                       metrics::WorkerMetrics& metrics);
    LostInstanceReaper(const LostInstanceReaper&) = delete;
    LostInstanceReaper& operator=(const LostInstanceReaper&) = delete;

    // The lost instances this instance is reaping (lease_reap's answer); starts on those not
    // under way already.
    void claimed(const std::vector<std::string>& instances);

    bool busy() const { return !queue_.empty(); }

    // The event's body for one record; false when the record is not a JSON object.
    static bool eventBody(std::string_view connection, std::string_view record,
                          simdjson::dom::parser& parser, std::string& padded, std::string& body);

private:
    void readBatch();
    void onRecords(FleetReply&& reply);
    void settled();
    void cleanUp();
    void next(bool retry_later);

    FleetCalls& calls_;
    const std::string claimer_;
    SendEvent send_;
    const size_t batch_;
    std::deque<std::string> queue_;  // claimed instances; the front one is under way
    bool reading_ = false;           // a lease_records call or a batch of events is under way
    bool stalled_ = false;           // the front instance waits for the next claimed() call

    // The batch under way.
    size_t waiting_ = 0;             // events sent, not yet settled
    bool batch_failed_ = false;      // some event of the batch was not answered
    std::vector<std::string> done_;  // connection ids whose event was answered
    struct Cleanup {
        std::string user;                   // "" when none
        std::vector<std::string> presence;  // its channels with presence
    };
    std::vector<Cleanup> cleanups_;  // parallel to done_
    std::vector<Cleanup> pending_;   // per record of the batch, by index
    std::vector<std::string> ids_;   // per record of the batch
    metrics::WorkerMetrics& metrics_;
    simdjson::dom::parser parser_;
    std::string padded_;
    std::string body_;
};

}  // namespace wsrelay
