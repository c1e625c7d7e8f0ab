#include "relay/fleet/connection_registry.h"

#include "adapters/broker.h"
#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_id.h"

namespace wsrelay {

ConnectionRegistry::ConnectionRegistry(FleetCalls& calls, std::string instance,
                                       const std::atomic<uint64_t>& lease_generation,
                                       RecordOf record_of, metrics::WorkerMetrics& metrics)
    : calls_(calls), instance_(std::move(instance)), generation_(lease_generation),
      record_of_(std::move(record_of)), metrics_(metrics) {}

void ConnectionRegistry::setBrokerUp(bool up) {
    if (up && !up_) markAll();
    up_ = up;
}

void ConnectionRegistry::markAll() { dirty_.insert(written_.begin(), written_.end()); }

void ConnectionRegistry::flush() {
    if (!up_ || dirty_.empty()) return;
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    // No lease yet: a record written now could outlive a crash with no lease to expire.
    if (generation == 0 || generation == refused_generation_) return;
    if (generation != seen_generation_) {
        // The lease was taken again after a reaper had it: the records went with it.
        if (seen_generation_ != 0) markAll();
        seen_generation_ = generation;
    }
    std::vector<std::string> puts{instance_};
    std::vector<uint64_t> put_sessions;
    std::vector<std::string> deletes{instance_};
    for (const uint64_t session : dirty_) {
        if (record_of_(session, record_)) {
            written_.insert(session);
            puts.push_back(fleet::connectionId(instance_, session));
            puts.push_back(record_);
            put_sessions.push_back(session);
            if (put_sessions.size() == kBatch) {
                sendPuts(std::move(puts), std::move(put_sessions), generation);
                puts = {instance_};
                put_sessions.clear();
            }
        } else if (written_.erase(session) != 0) {
            deletes.push_back(fleet::connectionId(instance_, session));
            if (deletes.size() > kBatch) {
                sendDeletes(std::move(deletes));
                deletes = {instance_};
            }
        }
    }
    dirty_.clear();
    if (!put_sessions.empty()) sendPuts(std::move(puts), std::move(put_sessions), generation);
    if (deletes.size() > 1) sendDeletes(std::move(deletes));
}

void ConnectionRegistry::sendPuts(std::vector<std::string> args, std::vector<uint64_t> sessions,
                                  uint64_t generation) {
    calls_.call("conn_put", std::string(kFleetKey), std::move(args),
                [this, sessions = std::move(sessions), generation](FleetReply&& reply) {
                    if (reply.status == FleetStatus::Error) return onError(reply, "conn_put");
                    // Unavailable: the broker went down; every record is written again at Up.
                    if (reply.status != FleetStatus::Ok || reply.integer >= 0) return;
                    // No lease (not yet taken again after a reaper had it): written once the
                    // lease keeper holds it again and raises the generation.
                    refused_generation_ = generation;
                    for (const uint64_t session : sessions) {
                        if (written_.erase(session) != 0) dirty_.insert(session);
                    }
                });
}

void ConnectionRegistry::sendDeletes(std::vector<std::string> args) {
    calls_.call("conn_del", std::string(kFleetKey), std::move(args), [this](FleetReply&& reply) {
        if (reply.status == FleetStatus::Error) onError(reply, "conn_del");
    });
}

void ConnectionRegistry::onError(const FleetReply& reply, const char* what) {
    metrics_.fleet_lease_errors.add();
    WSR_LOG(Warn, "connection registry: %s refused by the broker (%s)", what, reply.error.c_str());
}

}  // namespace wsrelay
