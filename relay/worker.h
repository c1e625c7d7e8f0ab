#pragma once

#include <ev.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <libwebsockets.h>

#include "adapters/broker.h"
#include "relay/authenticator.h"
#include "relay/hook_bridge.h"
#include "relay/upgrade_gate.h"
#include "relay/http_api.h"
#include "relay/hub.h"
#include "relay/protocol.h"
#include "relay/shared_state.h"

namespace wsrelay {

class Session;

// One core's share of the relay: a thread with its own libev loop carrying its lws context, its
// SO_REUSEPORT listener, its sessions, its channel index and its broker connection. Nothing on the
// per-message path is shared with other workers. Public methods run on the worker's thread unless
// they say "any thread".
class Worker final : public BrokerHandler, public HubListener {
public:
    Worker(int index, SharedState& shared);
    ~Worker() override;
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Builds the loop, context, listener and broker on the calling thread; false with `error` set
    // when any of them fails. Then run() serves until the worker stops.
    bool setUp(std::string& error);
    void run();

    // Any thread: start the graceful drain / stop at once. Both only wake the loop.
    void requestDrain();
    void requestStop();

    int index() const { return index_; }
    int workerCount() const { return shared_.workers; }
    // The instance's connection limit in force (limits.max_connections, or what descriptors allow).
    int maxConnections() const { return shared_.max_connections; }
    const Config& config() const { return shared_.config; }
    SharedState& shared() { return shared_; }
    metrics::WorkerMetrics& metrics() { return metrics_; }
    Hub& hub() { return hub_; }
    Broker& broker() { return *broker_; }
    // Publishes through the broker, stamped with the time the message entered the fleet and
    // counted; the outcome comes back through onPublishResult.
    void publish(std::string_view channel, std::string_view data, PublishTicket ticket);
    // Whether `data` on `channel` can be delivered at all: its message frame fits in an empty send
    // queue (Hub::fits). Every entry point asks before publishing; a refusal is counted for `source`
    // and, for a hook answer, which has nobody to answer, logged.
    bool admit(std::string_view channel, std::string_view data, metrics::MessageSource source);
    protocol::Parser& parser() { return parser_; }
    HttpApi& httpApi() { return http_api_; }
    bool draining() const { return draining_; }
    struct ev_loop* loop() const { return loop_; }
    // Null when auth.enabled is false.
    Authenticator* authenticator() { return auth_.get(); }
    // Null when hook.url is empty.
    HookBridge* hookBridge() { return hook_bridge_.get(); }
    Session* findSession(uint64_t id) {
        auto it = sessions_.find(id);
        return it == sessions_.end() ? nullptr : it->second;
    }
    // Per-worker buffer for coalescing queued frames into one socket write.
    char* writeBuffer() { return write_buffer_.data(); }
    size_t writeBufferSize() const { return write_buffer_.size(); }

    // Edge events (edge.cc).
    UpgradeGate& gate() { return *gate_; }
    // Null before setUp() made it (lws may call back while a failed setUp is undone).
    UpgradeGate* gateIfSetUp() { return gate_.get(); }
    lws_vhost* vhost() const { return vhost_; }
    uint64_t allocateSessionId() { return next_session_id_++; }
    // A new WebSocket connection; it is refused (with a close code) when the origin was rejected,
    // the worker is draining or the instance is at limits.max_connections.
    Session* openSession(lws* wsi, bool origin_rejected);
    void closeSession(Session* session);
    // `session` got frames to send: written before the loop sleeps (Session::flushQueued).
    void scheduleFlush(Session& session);
    void onListenerReadable();

    // BrokerHandler
    void onBrokerMessage(std::string_view channel, std::string_view data,
                         int64_t entered_us) override;
    void onPublishResult(const PublishTicket& ticket, PublishStatus status) override;
    void onBrokerState(BrokerState state, bool gap) override;
    void onBrokerProbe(double round_trip_s) override;
    void onSubscribed(std::string_view) override {}
    // HubListener
    void onChannelOpened(std::string_view channel) override;
    void onChannelClosed(std::string_view channel) override;

private:
    static void onControl(struct ev_loop* loop, ev_async* w, int revents);
    static void onPrepare(struct ev_loop* loop, ev_prepare* w, int revents);
    static void onDrainCheck(struct ev_loop* loop, ev_timer* w, int revents);
    void beginDrain();
    void stopLoop();
    // A warning for a message refused as too large, at most one per kTooLargeLogSeconds per worker
    // with the count of those not logged meanwhile: a backend publishing them in a loop must not
    // flood the log.
    void warnTooLarge(metrics::MessageSource source, std::string_view channel,
                      std::string_view data, size_t subscribers);
    ev_tstamp too_large_logged_at_ = -1e9;
    uint64_t too_large_unlogged_ = 0;


    const int index_;
    SharedState& shared_;
    metrics::WorkerMetrics& metrics_;
    std::string thread_name_;
    struct ev_loop* loop_ = nullptr;
    lws_context* context_ = nullptr;
    std::array<lws_protocols, 3> protocols_{};
    int listen_fd_ = -1;
    int spare_fd_ = -1;  // given up to accept-and-close when the process is out of descriptors
    BrokerPtr broker_;
    Hub hub_;
    protocol::Parser parser_;
    HttpApi http_api_;
    std::vector<char> write_buffer_;
    std::unordered_map<uint64_t, Session*> sessions_;
    std::vector<Session*> flush_list_;  // sessions with frames queued this turn; null = closed
    // Sessions written less than websocket.write_coalesce_ms ago when their frames came: all of
    // them are written when coalesce_timer_ fires, armed for the first one's window to end. A
    // frame so waits less than one window, and a hot socket takes a window's frames per write.
    std::vector<Session*> deferred_;  // null = closed
    ev_timer coalesce_timer_{};
    ev_tstamp coalesce_window_ = 0;
    static void onCoalesceTimer(struct ev_loop* loop, ev_timer* w, int revents);
    void defer(Session& session, ev_tstamp now);
    std::unique_ptr<Authenticator> auth_;
    std::unique_ptr<Hook> hook_;
    std::unique_ptr<HookBridge> hook_bridge_;
    ev_timer hook_flush_{};  // at stop: lets the connections' last hook events reach the app
    double hook_flush_deadline_ = 0;
    static void onHookFlush(struct ev_loop* loop, ev_timer* w, int revents);
    void finishStop();
    std::unique_ptr<UpgradeGate> gate_;
    lws_vhost* vhost_ = nullptr;
    uint64_t next_session_id_;
    bool broker_up_ = true;
    bool reached_broker_ = false;  // the broker was up at least once (Up after that = reconnect)

    // lws 4.1.6's libev plugin re-arms its one ev_timer with ev_timer_set() while the watcher is
    // still active, which libev ignores: a deadline earlier than the armed one (a ping, a drain
    // jitter, a close timeout) waits until the armed one fires. A self-rescheduling tick bounds
    // that wait to kLwsTimerTickUs for every lws timer, ours and lws's own.
    struct LwsTick {
        lws_sorted_usec_list_t sul;  // first member: the callback casts back from it
        lws_context* context;
    } tick_{};
    static void onLwsTick(lws_sorted_usec_list_t* sul);

    ev_async control_{};
    ev_prepare prepare_{};
    ev_timer drain_check_{};
    std::atomic<bool> drain_requested_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> accepting_control_{false};  // control_ is live on the loop
    bool draining_ = false;
    bool stopped_ = false;
};

}  // namespace wsrelay
