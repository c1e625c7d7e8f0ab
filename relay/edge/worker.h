#pragma once

#include <ev.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "adapters/broker.h"
#include "relay/common/shared_state.h"
#include "relay/edge/http_api.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/hub.h"
#include "relay/fanout/publisher.h"
#include "relay/fleet/channel_presence.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_commands.h"
#include "relay/fleet/fleet_control.h"
#include "relay/protocol/protocol.h"
#include "relay/session/flush_scheduler.h"
#include "relay/session/memory_shedder.h"
#include "relay/session/session_table.h"
#include "relay/session/worker_context.h"

struct lws;
struct lws_context;

namespace wsrelay {

class Authenticator;
class ChannelOccupancy;
class ConnectionRegistry;
class InstanceLease;
class LostInstanceReaper;
class Hook;
class HookBridge;
class Session;
class UpgradeGate;

namespace edge {
struct WebSocket;
}
namespace tls {
class TlsFront;
}

// One core's share of the relay: a thread with its own libev loop carrying its lws context, its
// SO_REUSEPORT listener, its sessions, its channel index and its broker connection. Nothing on the
// per-message path is shared with other workers. It owns the parts its connections use and hands
// them out as one WorkerContext; it hears the broker (BrokerHandler) and the hub (HubListener).
// Public methods run on the worker's thread unless they say "any thread".
class Worker final : public BrokerHandler, public HubListener {
public:
    Worker(int index, SharedState& shared);
    ~Worker() override;
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Builds the context, listener and broker on the calling thread; false with `error` set
    // when any of them fails. Then run() serves until the worker stops.
    bool setUp(std::string& error);
    void run();

    // Any thread: start the graceful drain / stop at once. Both only wake the loop.
    void requestDrain();
    void requestStop();

    // Edge events (edge.cc, http_routes.cc).
    WorkerContext& context() { return ctx_; }
    HttpApi& httpApi() { return http_api_; }
    UpgradeGate& gate() { return *gate_; }
    // Null before setUp() made it (lws may call back while a failed setUp is undone).
    UpgradeGate* gateIfSetUp() { return gate_.get(); }
    // A new WebSocket connection; it is refused (with a close code) when the origin was rejected,
    // the worker is draining or the instance is at limits.max_connections.
    edge::WebSocket* openSession(lws* wsi, bool origin_rejected, bool deflate);
    void closeSession(edge::WebSocket* socket);
    // `listener`: the descriptor of the listening socket that is readable.
    void onListenerReadable(int listener);

    // BrokerHandler
    void onBrokerMessage(std::string_view channel, std::string_view data, int64_t entered_us,
                         uint64_t offset, std::string_view epoch) override;
    void onSubscribed(std::string_view channel) override;
    void onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset,
                         std::string_view epoch) override;
    void onHistory(uint64_t token, HistoryAnswer&& answer) override;
    void onBrokerState(BrokerState state, bool gap) override;
    void onBrokerProbe(double round_trip_s) override;
    void onHistoryTrimmed(uint64_t messages) override;
    void onBrokerAttemptFailed(std::string_view reason) override;
    void onFleetReply(uint64_t token, FleetReply&& reply) override;
    // HubListener
    void onChannelOpened(std::string_view channel) override;
    void onChannelClosed(std::string_view channel) override;

private:
    static void onControl(struct ev_loop* loop, ev_async* w, int revents);
    static void onPrepare(struct ev_loop* loop, ev_prepare* w, int revents);
    static void onDrainCheck(struct ev_loop* loop, ev_timer* w, int revents);
    // Opens a listener on listen.host:`port` and hands it to lws, which owns it from then on.
    int openListener(int port, std::string& error);
    void beginDrain();
    void stopLoop();

    // The loop outlives every other member: their destructors stop their watchers on it.
    struct Loop {
        struct ev_loop* loop;
        ~Loop();
    };

    const int index_;
    SharedState& shared_;
    metrics::WorkerMetrics& metrics_;
    std::string thread_name_;
    Loop loop_;
    HistoryReads history_;  // before the hub, which cancels its reads when it goes
    // websocket.compression: the one compressor of the worker's messages; null when off.
    std::unique_ptr<protocol::MessageDeflater> deflater_;
    Hub hub_;
    protocol::Parser parser_;
    MemoryCredit memory_;  // before everything that counts against it
    Publisher publisher_;
    FlushScheduler flush_;
    SessionTable sessions_;
    MemoryShedder shedder_;
    FleetCalls fleet_calls_;
    FleetControl fleet_;
    FleetCommands fleet_commands_;  // the server API's commands on this worker's connections
    ChannelPresence presence_;      // channels with presence: their members in the fleet's presence
    WorkerContext ctx_;
    HttpApi http_api_;
    lws_context* context_ = nullptr;
    // The lws protocol table and the timer tick (worker.cc): lws types stay out of this header.
    struct LwsParts;
    std::unique_ptr<LwsParts> lws_;
    int listen_fd_ = -1;
    int internal_fd_ = -1;  // listen.internal_port's listener; -1 when it is 0
    int spare_fd_ = -1;     // given up to accept-and-close when the process is out of descriptors
    BrokerPtr broker_;
    std::unique_ptr<Authenticator> auth_;
    std::unique_ptr<Hook> hook_;
    std::unique_ptr<HookBridge> hook_bridge_;
    // The instance's lease (docs/scaling.md "Leases"), when leasesNeeded(): every worker keeps
    // its connections' records; worker 0 also renews the lease and reports lost instances.
    std::unique_ptr<ConnectionRegistry> registry_;
    std::unique_ptr<LostInstanceReaper> reaper_;
    std::unique_ptr<InstanceLease> lease_;
    void setUpLease();
    // Occupied and vacated events (docs/scaling.md "Channel occupancy"), when hook.events lists
    // either; `leases`: the instance keeps a lease (whose period sweeps the fleet's vacates).
    std::unique_ptr<ChannelOccupancy> occupancy_;
    void setUpOccupancy(bool leases);
    // A session's record in the registry (JSON); false when it has gone.
    bool registryRecord(uint64_t session, std::string& record);
    ev_timer hook_flush_{};  // at stop: lets the connections' last hook events reach the app
    double hook_flush_deadline_ = 0;
    static void onHookFlush(struct ev_loop* loop, ev_timer* w, int revents);
    // At stop, worker 0: releases the lease once every worker has flushed; true when there is no
    // lease or Redis has the release.
    bool leaseSettled();
    void finishStop();
    std::unique_ptr<UpgradeGate> gate_;
    // tls.cert_file set: every accepted socket goes through it, its plaintext end to the gate.
    std::unique_ptr<tls::TlsFront> tls_;
    bool broker_up_ = true;
    bool reached_broker_ = false;  // the broker was up at least once (Up after that = reconnect)
    std::string attempt_error_;    // the last failed attempt's reason that was logged

    ev_async control_{};
    ev_prepare prepare_{};
    ev_timer drain_check_{};
    std::atomic<bool> drain_requested_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> accepting_control_{false};  // control_ is live on the loop
    bool stopped_ = false;
};

}  // namespace wsrelay
