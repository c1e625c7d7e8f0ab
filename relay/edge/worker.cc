#include "relay/edge/worker.h"

#include <fcntl.h>
#include <libwebsockets.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <random>

#include "adapters/http_hook.h"
#include "adapters/redis_payload.h"
#include "conf/redis_functions_needed.h"
#include "relay/admission/upgrade_gate.h"
#include "relay/auth/authenticator.h"
#include "relay/auth/subprotocol_token.h"
#include "relay/common/clock.h"
#include "relay/common/log.h"
#include "relay/edge/edge.h"
#include "relay/edge/http_routes.h"
#include "relay/edge/listener.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fleet/channel_occupancy.h"
#include "relay/fleet/connection_registry.h"
#include "relay/fleet/fleet_id.h"
#include "relay/fleet/instance_lease.h"
#include "relay/fleet/lost_instance_reaper.h"
#include "relay/hook/hook_bridge.h"
#include "relay/session/session.h"
#include "relay/tls/tls_front.h"

namespace wsrelay {
namespace {

// Lets lws hand a whole coalesced batch (or one large frame) to send() in one call; it otherwise
// caps each send at the receive buffer size and copies the rest aside.
constexpr size_t kTxPacketBytes = size_t{64} * 1024 * 1024;
constexpr int kAcceptsPerWakeup = 64;
constexpr double kDrainGraceSeconds = 5.0;
constexpr lws_usec_t kLwsTimerTickUs = lws_usec_t{100} * 1000;
// Records of a lost instance read (and events under way) at once; within hook.max_in_flight's
// share of one worker at the default settings.
constexpr size_t kLostRecordsPerBatch = 64;
// At stop, how long worker 0 waits for Redis to take its lease's release.
constexpr double kLeaseReleaseWaitSeconds = 1.0;

}  // namespace

struct Worker::LwsParts {
    std::array<lws_protocols, 3> protocols{};
    // websocket.compression: permessage-deflate, as lws's own example servers declare it. lws only
    // negotiates it and inflates what clients send; the relay compresses its frames itself.
    std::array<lws_extension, 2> extensions{};
    // lws 4.1.6's libev plugin re-arms its one ev_timer with ev_timer_set() while the watcher is
    // still active, which libev ignores: a deadline earlier than the armed one (a ping, a drain
    // jitter, a close timeout) waits until the armed one fires. A self-rescheduling tick bounds
    // that wait to kLwsTimerTickUs for every lws timer, ours and lws's own.
    struct Tick {
        lws_sorted_usec_list_t sul;  // first member: the callback casts back from it
        lws_context* context;
    } tick{};
    static void onTick(lws_sorted_usec_list_t* sul) {
        auto* tick = reinterpret_cast<Tick*>(sul);
        lws_sul_schedule(tick->context, 0, &tick->sul, onTick, kLwsTimerTickUs);
    }
};

Worker::Loop::~Loop() {
    if (loop != nullptr) ev_loop_destroy(loop);
}

// The loop is made here, not in setUp(), so that every part of the context exists as soon as the
// worker does; it is only run on the worker's thread.
Worker::Worker(int index, SharedState& shared)
    : index_(index), shared_(shared), metrics_(shared.registry.worker(index)),
      thread_name_("w" + std::to_string(index)), loop_{ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK)},
      history_(metrics_, static_cast<size_t>(shared.config.history.max_reads_in_flight)),
      deflater_(shared.config.websocket.compression
                    ? std::make_unique<protocol::MessageDeflater>(
                          shared.config.websocket.compression_level,
                          static_cast<size_t>(shared.config.websocket.compression_min_bytes))
                    : nullptr),
      hub_(*this, static_cast<uint64_t>(shared.config.limits.send_queue_bytes),
           HubHistory{&shared.channels, &history_,
                      static_cast<uint32_t>(shared.config.history.max_recover), &metrics_},
           HubCompression{deflater_.get(), &metrics_}),
      parser_(static_cast<size_t>(shared.config.websocket.max_message_bytes),
              static_cast<size_t>(shared.config.limits.max_channel_bytes)),
      memory_(shared.memory),
      publisher_(hub_, shared.channels, metrics_,
                 static_cast<uint64_t>(shared.config.limits.send_queue_bytes), loop_.loop,
                 shared.memory),
      flush_(loop_.loop, shared.config.websocket.write_coalesce_ms / 1000.0), sessions_(index),
      shedder_(memory_, sessions_, metrics_),
      fleet_(loop_.loop, fleet_calls_,
             FleetControl::Options{shared.instance_id, index,
                                   shared.config.fleet.command_timeout_ms / 1000.0,
                                   static_cast<size_t>(shared.config.fleet.max_pending_commands)},
             &metrics_),
      fleet_commands_(sessions_, hub_, shared.instance_id),
      presence_(
          loop_.loop, shared.channels, fleet_calls_,
          [this](uint64_t session, std::string& user, std::string& info) {
              const Session* s = sessions_.find(session);
              if (s == nullptr) return false;
              user = s->userId();
              info = s->presenceInfo();
              return true;
          },
          ChannelPresence::Options{shared.instance_id, shared.config.presence.ttl_ms,
                                   shared.config.presence.refresh_ms,
                                   shared.config.presence.max_join_leave_members}),
      ctx_{shared,     shared.config, shared.channels, metrics_,  loop_.loop, hub_,
           publisher_, parser_,       flush_,          sessions_, memory_},
      http_api_(ctx_, http::apiIo()), lws_(std::make_unique<LwsParts>()) {
    ctx_.history = &history_;
    ctx_.fleet_calls = &fleet_calls_;
    ctx_.fleet = &fleet_;
    fleet_commands_.registerOn(fleet_);
    if (shared.channels.anyPresence()) {
        hub_.setPresence(&presence_, &shared.channels);
        ctx_.presence = &presence_;
    }
}

Worker::~Worker() {
    if (context_ != nullptr) lws_context_destroy(context_);
    publisher_.setBroker(nullptr);
    history_.setBroker(nullptr);
    presence_.setBroker(nullptr);
    broker_.reset();
    if (spare_fd_ >= 0) close(spare_fd_);
}

bool Worker::setUp(std::string& error) {
    log::setThreadName(thread_name_.c_str());
    const Config& cfg = shared_.config;
    struct ev_loop* loop = loop_.loop;
    if (loop == nullptr) {
        error = "cannot create an event loop";
        return false;
    }

    auto& protocols_ = lws_->protocols;
    protocols_[0] = {};
    // The name lws answers in Sec-WebSocket-Protocol when the client offered it (docs/auth.md).
    protocols_[0].name = kSubprotocol.data();
    protocols_[0].callback = edge::relayCallback;
    protocols_[0].per_session_data_size = sizeof(edge::ConnectionData);
    protocols_[0].rx_buffer_size = static_cast<size_t>(cfg.websocket.rx_buffer_bytes);
    protocols_[0].tx_packet_size = kTxPacketBytes;
    protocols_[1] = {};
    protocols_[1].name = "wsrelay-listener";
    protocols_[1].callback = edge::listenerCallback;
    protocols_[2] = {};

    void* foreign_loops[1] = {loop};
    lws_context_creation_info info{};
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols_.data();
    info.options = LWS_SERVER_OPTION_LIBEV;
    info.foreign_loops = foreign_loops;
    info.user = this;
    info.pcontext = &context_;
    info.vhost_name = "default";
    if (cfg.websocket.compression) {
        lws_->extensions[0] = {"permessage-deflate", lws_extension_callback_pm_deflate,
                               "permessage-deflate; client_no_context_takeover; "
                               "client_max_window_bits"};
        lws_->extensions[1] = {};
        info.extensions = lws_->extensions.data();
    }
    // Room for a token in Authorization or ?token= (docs/auth.md); lws's default is 4096.
    info.max_http_header_data = 8192;
    context_ = lws_create_context(&info);
    if (context_ == nullptr) {
        error = "cannot create the libwebsockets context (is libwebsockets-evlib-ev installed?)";
        return false;
    }
    lws_vhost* vhost = lws_get_vhost_by_name(context_, "default");
    ctx_.vhost = vhost;
    lws_->tick.context = context_;
    lws_sul_schedule(context_, 0, &lws_->tick.sul, LwsParts::onTick, kLwsTimerTickUs);

    listen_fd_ = openListener(cfg.listen.port, error);
    if (listen_fd_ < 0) return false;
    // Plain HTTP even with TLS on listen.port: it stays inside the pod network (docs/config.md).
    // Both listeners live until the loop stops, so a draining relay is still scraped.
    if (cfg.listen.internal_port != 0) {
        internal_fd_ = openListener(cfg.listen.internal_port, error);
        if (internal_fd_ < 0) return false;
    }
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (!cfg.hook.url.empty()) {
        HttpHookOptions options;
        options.url = cfg.hook.url;
        options.ca_file = cfg.hook.ca_file;
        options.timeout_ms = cfg.hook.timeout_ms;
        options.max_in_flight =
            static_cast<size_t>(std::max(1, cfg.hook.max_in_flight / std::max(1, shared_.workers)));
        options.max_connections = cfg.hook.max_connections;
        options.retries = cfg.hook.retries;
        options.secret = cfg.hook.secret;
        hook_ = std::make_unique<HttpHook>(loop, std::move(options));
        hook_bridge_ = std::make_unique<HookBridge>(ctx_, *hook_);
        ctx_.hook = hook_bridge_.get();
    }
    ev_timer_init(&hook_flush_, onHookFlush, 0., 0.);
    hook_flush_.data = this;

    if (cfg.auth.enabled) {
        auth_ = std::make_unique<Authenticator>(cfg, *shared_.keys);
        ctx_.authenticator = auth_.get();
    }
    gate_ = std::make_unique<UpgradeGate>(ctx_);
    if (shared_.certs != nullptr) {
        tls_ = std::make_unique<tls::TlsFront>(
            loop, *shared_.certs, metrics_, cfg.limits.socket_send_buffer_bytes,
            [this](int fd, const sockaddr_storage& peer) { gate_->accept(fd, peer); });
    }

    broker_ = shared_.brokers.create(index_, loop, *this);
    if (!broker_) {
        error = "cannot create the broker";
        return false;
    }
    publisher_.setBroker(broker_.get());
    history_.setBroker(broker_.get());
    fleet_calls_.setBroker(broker_.get());
    presence_.setBroker(broker_.get());
    presence_.start();
    // The fleet's control channel and this worker's inbox (docs/scaling.md "The fleet").
    for (const std::string& channel : fleet_.channels()) broker_->subscribe(channel);
    // A broker that starts disconnected (Redis not reachable yet) keeps /readyz at 503 until its
    // first Up.
    if (!broker_->usable()) {
        broker_up_ = false;
        hub_.setBrokerUp(false);
        shared_.brokers_down.fetch_add(1);
    } else {
        reached_broker_ = true;
    }
    // Probes are counted from the start, so one that never comes back shows as a growing age.
    if (cfg.broker.type == BrokerType::Redis && cfg.broker.redis.probe_interval_ms > 0) {
        metrics_.probe_last_ok_us.set(wallClockMicros());
    }

    if (hook_bridge_ &&
        (hook_bridge_->sends(HookEvent::Occupied) || hook_bridge_->sends(HookEvent::Vacated))) {
        setUpOccupancy(leasesNeeded(cfg));
    }
    if (leasesNeeded(cfg)) setUpLease();

    ev_async_init(&control_, onControl);
    control_.data = this;
    ev_async_start(loop, &control_);
    ev_prepare_init(&prepare_, onPrepare);
    prepare_.data = this;
    ev_prepare_start(loop, &prepare_);
    ev_timer_init(&drain_check_, onDrainCheck, 0., 0.);
    drain_check_.data = this;
    accepting_control_.store(true);
    // Counted here, before the server announces it is ready, not when run() starts: /readyz must
    // not say "starting" after the ready line.
    shared_.workers_running.fetch_add(1);
    return true;
}

void Worker::setUpOccupancy(bool leases) {
    ChannelOccupancy::Options options;
    options.holder = fleet::workerAddress(shared_.instance_id, index_);
    options.vacated_delay_ms = shared_.config.hook.vacated_delay_ms;
    options.send_occupied = hook_bridge_->sends(HookEvent::Occupied);
    options.send_vacated = hook_bridge_->sends(HookEvent::Vacated);
    occupancy_ = std::make_unique<ChannelOccupancy>(
        loop_.loop, fleet_calls_,
        [this](HookEvent event, std::string body, std::function<void(bool)> done) {
            return hook_bridge_ != nullptr &&
                   hook_bridge_->sendDetached(event, std::move(body), std::move(done));
        },
        std::move(options), leases ? &shared_.lease_generation : nullptr, metrics_);
    occupancy_->setBrokerUp(broker_->usable());
}

void Worker::setUpLease() {
    registry_ = std::make_unique<ConnectionRegistry>(
        fleet_calls_, shared_.instance_id, shared_.lease_generation,
        [this](uint64_t session, std::string& record) { return registryRecord(session, record); },
        metrics_);
    registry_->setBrokerUp(broker_->usable());
    ctx_.registry = registry_.get();
    if (index_ != 0) return;
    LostInstanceReaper::SendEvent send;
    if (hook_bridge_ && hook_bridge_->sends(HookEvent::Disconnect)) {
        send = [this](std::string body, std::function<void(bool)> done) {
            return hook_bridge_ != nullptr &&
                   hook_bridge_->sendDetached(HookEvent::Disconnect, std::move(body),
                                              std::move(done));
        };
    }
    reaper_ = std::make_unique<LostInstanceReaper>(fleet_calls_, shared_.instance_id,
                                                   std::move(send), kLostRecordsPerBatch, metrics_);
    const Config::Lease& cfg = shared_.config.lease;
    lease_ = std::make_unique<InstanceLease>(
        loop_.loop, fleet_calls_,
        InstanceLease::Options{shared_.instance_id, cfg.ttl_ms, cfg.renew_ms},
        shared_.lease_generation, *reaper_, metrics_);
    lease_->setBrokerUp(broker_->usable());
    // Every instance sweeps the fleet's due vacates and lost holds on its lease period, so none
    // waits for the relay that made it pending (it may be gone).
    if (occupancy_) lease_->onPeriod([this] { occupancy_->sweep(); });
    lease_->start();
}

bool Worker::registryRecord(uint64_t id, std::string& record) {
    Session* session = sessions_.find(id);
    if (session == nullptr) return false;
    record = "{\"user\":";
    if (session->userId().empty()) {
        record += "null";
    } else {
        appendJsonString(session->userId(), record);
    }
    record += ",\"meta\":";
    record += session->hookState().meta;
    record += ",\"channels\":[";
    bool first = true;
    for (const std::string& channel : hub_.channelsOf(session->membership())) {
        if (!first) record += ',';
        first = false;
        appendJsonString(channel, record);
    }
    record += "],\"presence\":[]}";
    return true;
}

int Worker::openListener(int port, std::string& error) {
    const int fd = openReusePortListener(shared_.config.listen.host, port, 4096, error);
    if (fd < 0) return -1;
    lws_sock_file_fd_type file{};
    file.filefd = fd;
    if (lws_adopt_descriptor_vhost(ctx_.vhost, LWS_ADOPT_RAW_FILE_DESC, file, "wsrelay-listener",
                                   nullptr) == nullptr) {
        close(fd);
        error = "cannot adopt the listening socket into libwebsockets";
        return -1;
    }
    return fd;
}

void Worker::run() {
    log::setThreadName(thread_name_.c_str());
    // A request that arrived while we were setting up must not be lost.
    if (drain_requested_.load() || stop_requested_.load()) ev_async_send(loop_.loop, &control_);
    ev_run(loop_.loop, 0);
    shared_.workers_running.fetch_sub(1);
}

void Worker::requestDrain() {
    drain_requested_.store(true);
    if (accepting_control_.load()) ev_async_send(loop_.loop, &control_);
}

void Worker::requestStop() {
    stop_requested_.store(true);
    if (accepting_control_.load()) ev_async_send(loop_.loop, &control_);
}

void Worker::onControl(struct ev_loop*, ev_async* w, int) {
    auto* self = static_cast<Worker*>(w->data);
    if (self->stop_requested_.load()) {
        self->stopLoop();
    } else if (self->drain_requested_.load() && !self->ctx_.draining) {
        self->beginDrain();
    }
}

void Worker::onPrepare(struct ev_loop*, ev_prepare* w, int) {
    // Runs once per loop turn, just before the loop sleeps: everything the broker batched during
    // this turn leaves in one go.
    auto* self = static_cast<Worker*>(w->data);
    if (self->registry_) self->registry_->flush();
    if (self->occupancy_) self->occupancy_->flush();
    if (self->broker_) self->broker_->flush();
    // After the broker's flush, which may have delivered this worker's own publishes.
    self->flush_.flushTurn();
    // After the writes: what is still queued could not be written. Nothing to do unless the
    // memory budget is full.
    self->shedder_.onTurn(ev_now(self->loop_.loop));
}

void Worker::onDrainCheck(struct ev_loop*, ev_timer* w, int) {
    static_cast<Worker*>(w->data)->stopLoop();
}

void Worker::beginDrain() {
    ctx_.draining = true;
    const int64_t window_us = int64_t{shared_.config.drain.window_ms} * 1000;
    std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(index_));
    std::uniform_int_distribution<int64_t> jitter(0, window_us > 0 ? window_us - 1 : 0);
    sessions_.forEach([&](Session& session) { session.scheduleDrain(jitter(rng)); });
    WSR_LOG(Info, "draining %zu connections over %d ms", sessions_.size(),
            shared_.config.drain.window_ms);
    // Whatever is still open after the window and a grace period is cut off.
    double deadline =
        sessions_.empty() ? 0. : static_cast<double>(window_us) / 1e6 + kDrainGraceSeconds;
    ev_timer_set(&drain_check_, deadline, 0.);
    ev_timer_start(loop_.loop, &drain_check_);
}

void Worker::stopLoop() {
    if (stopped_) return;
    stopped_ = true;
    ev_timer_stop(loop_.loop, &drain_check_);
    flush_.stop();
    // Sockets still being read, or parked for the connect hook, are closed from now on.
    gate_->shutDown();
    // lws first: closing the connections unsubscribes their channels through the broker.
    if (context_ != nullptr) lws_context_destroy(context_);
    context_ = nullptr;
    // After lws: what it wrote last (close frames) is still in the pairs.
    if (tls_) tls_->shutDown();
    ev_async_stop(loop_.loop, &control_);
    // The connections have closed: their records go (docs/scaling.md "Leases"), and the closed
    // channels' holds (their vacated events come from this worker's timer if it still runs, else
    // from a peer's sweep).
    if (registry_) registry_->flush();
    if (occupancy_) occupancy_->flush();
    shared_.workers_flushed.fetch_add(1, std::memory_order_acq_rel);
    // Worker 0 gives the lease up once every worker has flushed: a worker still draining keeps
    // the lease (and so its peers' watch over its connections) until it is done.
    const bool hook_idle = !hook_bridge_ || hook_bridge_->idle();
    if (hook_idle && leaseSettled()) return finishStop();
    double wait = kLeaseReleaseWaitSeconds;
    if (!hook_idle) {
        // Closing the connections queued their disconnect events behind what they had queued for
        // the app: give those the hook timeout. The broker stays (and prepare_ flushes it every
        // turn) for the publishes in the answers.
        wait = shared_.config.hook.timeout_ms / 1000.0 + 1.0;
        WSR_LOG(Info, "stopping: waiting up to %d ms for the hook's last events",
                shared_.config.hook.timeout_ms + 1000);
    }
    if (lease_ && !lease_->released()) {
        wait = std::max(wait, shared_.config.drain.window_ms / 1000.0 + kDrainGraceSeconds +
                                  kLeaseReleaseWaitSeconds);
    }
    hook_flush_deadline_ = ev_now(loop_.loop) + wait;
    ev_timer_set(&hook_flush_, 0.01, 0.01);
    ev_timer_start(loop_.loop, &hook_flush_);
}

bool Worker::leaseSettled() {
    if (!lease_) return true;
    if (!lease_->released()) {
        if (shared_.workers_flushed.load(std::memory_order_acquire) < shared_.workers) return false;
        lease_->release();
    }
    return !lease_->releasing();
}

void Worker::onHookFlush(struct ev_loop* loop, ev_timer* w, int) {
    auto* self = static_cast<Worker*>(w->data);
    const bool hook_idle = !self->hook_bridge_ || self->hook_bridge_->idle();
    if (self->leaseSettled() && hook_idle) {
        self->finishStop();
    } else if (ev_now(loop) >= self->hook_flush_deadline_) {
        if (!hook_idle) self->hook_bridge_->abandon();  // counted and logged
        if (self->lease_ && !self->lease_->released()) {
            WSR_LOG(Warn, "stopping: not every worker finished; the lease is left to expire");
        }
        self->finishStop();
    }
}

void Worker::finishStop() {
    ev_timer_stop(loop_.loop, &hook_flush_);
    ctx_.hook = nullptr;
    if (occupancy_) occupancy_->stop();
    hook_bridge_.reset();
    hook_.reset();
    tls_.reset();
    gate_.reset();
    if (broker_) broker_->flush();
    publisher_.setBroker(nullptr);
    history_.setBroker(nullptr);
    presence_.setBroker(nullptr);
    presence_.stop();
    broker_.reset();
    ev_prepare_stop(loop_.loop, &prepare_);
    ev_break(loop_.loop, EVBREAK_ALL);
}

edge::WebSocket* Worker::openSession(lws* wsi, bool origin_rejected, bool deflate) {
    using metrics::HandshakeResult;
    AddressSlot address_slot;
    std::unique_ptr<UpgradeGrant> grant = gate_->take(wsi, &address_slot);
    // Cannot happen: every upgrade passes UpgradeGate::confirm, which verifies the token.
    if (auth_ && !(grant && grant->identity)) return nullptr;
    const int open = shared_.connections.fetch_add(1) + 1;
    const uint64_t id =
        grant && grant->session_id != 0 ? grant->session_id : sessions_.allocateId();
    auto* socket = new edge::WebSocket(ctx_, wsi, id, grant ? std::move(grant->identity) : nullptr);
    socket->address_slot = std::move(address_slot);
    Session* session = &socket->session;
    if (deflate) session->useDeflate();
    if (grant) {
        socket->user_slot = std::move(grant->user_slot);
        if (grant->decided) session->markAnnounced();
        session->hookState().user = std::move(grant->hook_user);
        session->hookState().meta = std::move(grant->meta);
        session->hookState().info = std::move(grant->info);
    }
    sessions_.add(session->id(), session, session->userId());
    HandshakeResult result = HandshakeResult::Ok;
    if (origin_rejected) {
        result = HandshakeResult::Origin;
        session->closeAfterFlush(CloseCode::PolicyViolation);
    } else if (ctx_.draining) {
        result = HandshakeResult::Draining;
        session->scheduleDrain(0);
    } else if (open > shared_.max_connections) {
        result = HandshakeResult::Limit;
        session->closeAfterFlush(CloseCode::TryAgainLater);
    } else {
        session->start(grant ? grant->channels : std::vector<std::string>{});
        if (registry_) registry_->changed(session->id());
    }
    metrics_.handshakes[result].add();
    return socket;
}

void Worker::closeSession(edge::WebSocket* socket) {
    Session& session = socket->session;
    flush_.cancel(session);
    session.onClosed();
    sessions_.remove(session.id());
    if (registry_) registry_->changed(session.id());
    shared_.connections.fetch_sub(1);
    delete socket;
    if (ctx_.draining && sessions_.empty() && !stopped_) {
        // Not from inside an lws callback: stop on the next loop turn.
        ev_timer_stop(loop_.loop, &drain_check_);
        ev_timer_set(&drain_check_, 0., 0.);
        ev_timer_start(loop_.loop, &drain_check_);
    }
}

void Worker::onListenerReadable(int listener) {
    const http::Port port = listener == internal_fd_ ? http::Port::Internal : http::Port::Public;
    for (int i = 0; i < kAcceptsPerWakeup; ++i) {
        sockaddr_storage peer{};
        int fd = acceptOne(listener, shared_.config.limits.socket_send_buffer_bytes, peer);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
                // Out of descriptors: accept and close with the spare one, or the level-triggered
                // listener would wake us forever.
                close(spare_fd_);
                int refused = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
                if (refused >= 0) close(refused);
                spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
                metrics_.handshakes[metrics::HandshakeResult::Limit].add();
                WSR_LOG(Warn, "out of file descriptors: refused a connection");
            }
            return;
        }
        if (tls_ && port == http::Port::Public) {
            tls_->accept(fd, peer);
        } else {
            gate_->accept(fd, peer, port);
        }
    }
}

void Worker::onBrokerMessage(std::string_view channel, std::string_view data, int64_t entered_us,
                             uint64_t offset, std::string_view epoch) {
    if (fleet::isFleetChannel(channel)) {
        fleet_.onMessage(channel, data);
        return;
    }
    if (presence_.onBrokerMessage(channel, data, hub_)) return;
    metrics_.broker_messages.add();
    const Hub::Delivery delivery = hub_.deliver(channel, data, entered_us, {offset, epoch});
    if (delivery.too_large != 0) {
        // Published around the relay's entry checks (a backend's own PUBLISH into Redis): refused
        // here, once for this worker, and counted for every subscriber it did not reach.
        publisher_.refusedFromBroker(channel, data, delivery.too_large);
    }
}

void Worker::onSubscribed(std::string_view channel) { hub_.confirm(channel); }

void Worker::onHistory(uint64_t token, HistoryAnswer&& answer) {
    history_.onAnswer(token, std::move(answer));
}

void Worker::onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset,
                             std::string_view epoch) {
    const bool accepted = status == PublishStatus::Accepted;
    if (accepted && ticket.entered_us != 0) {
        metrics_.broker_publish_duration.observeMicros(wallClockMicros() - ticket.entered_us);
    }
    // Every failure counts, whoever hears of it, if anyone does.
    if (!accepted) metrics_.broker_publish_failures.add();
    if ((ticket.session_id & HttpApi::kTicketBit) != 0) {
        http_api_.onPublishResult(ticket, status, offset, epoch);
        return;
    }
    // Session 0: a publish from a hook answer, whose client (if any) was answered already.
    Session* session = ticket.session_id == 0 ? nullptr : sessions_.find(ticket.session_id);
    if (session == nullptr) {
        if (!accepted) {
            WSR_LOG(Warn, "a publish %s failed after it was handed to the broker (%s)",
                    ticket.session_id == 0 ? "from a hook answer" : "of a client that has gone",
                    status == PublishStatus::Unavailable ? "broker unavailable" : "rejected");
        }
        return;
    }
    std::optional<uint64_t> id;
    if (ticket.has_request_id) id = ticket.request_id;
    if (accepted) {
        if (id) session->reply(protocol::encodeAck(*id));
        return;
    }
    auto code = status == PublishStatus::Unavailable ? protocol::ErrorCode::BrokerUnavailable
                                                     : protocol::ErrorCode::Internal;
    metrics_.errors[metrics::errorCodeIndex(static_cast<int>(code))].add();
    session->reply(protocol::encodeError(id, code,
                                         status == PublishStatus::Unavailable
                                             ? "broker unavailable"
                                             : "publish rejected by the broker"));
}

void Worker::onBrokerState(BrokerState state, bool gap) {
    const bool up = state == BrokerState::Up;
    // While the broker is down a subscribe is acknowledged at once (the client hears of the
    // outage from {"op":"resubscribed"} at Up); at Up every channel is live again. Up with a gap:
    // every live subscription was re-established after an outage; channels with history recover
    // what their members missed, the others tell their members, so they can fetch it from the app.
    hub_.setBrokerUp(up, up && gap);
    if (registry_) registry_->setBrokerUp(up);
    if (occupancy_) occupancy_->setBrokerUp(up);
    if (lease_) lease_->setBrokerUp(up);
    if (up == broker_up_) return;
    const bool reconnected = up && reached_broker_;
    if (reconnected) metrics_.broker_reconnects.add();
    if (up) reached_broker_ = true;
    broker_up_ = up;
    shared_.brokers_down.fetch_add(up ? -1 : 1);
    if (up) {
        attempt_error_.clear();
        // Redis may have come back empty: the members are joined again now, not at the next
        // refresh.
        if (reconnected) presence_.refreshNow();
        WSR_LOG(Info, "broker up");
    } else {
        WSR_LOG(Warn, "broker down (%s): publishes fail and /readyz answers 503 until it is back",
                broker_ && !broker_->lastError().empty() ? broker_->lastError().c_str()
                                                         : "not connected yet");
    }
}

// Logged when the reason changes, so a relay that cannot reach its broker says why (a refusal, a
// wrong password, a timeout) once, not once per retry.
void Worker::onBrokerAttemptFailed(std::string_view reason) {
    if (reason == attempt_error_) return;
    attempt_error_.assign(reason);
    WSR_LOG(Warn, "broker not reached (%s): publishes fail and /readyz answers 503; retrying",
            attempt_error_.c_str());
}

void Worker::onBrokerProbe(double round_trip_s) {
    metrics_.broker_probe_duration.observe(round_trip_s);
    metrics_.probe_last_ok_us.set(wallClockMicros());
}

void Worker::onHistoryTrimmed(uint64_t messages) {
    metrics_.history_trimmed.add(static_cast<int64_t>(messages));
}

void Worker::onFleetReply(uint64_t token, FleetReply&& reply) {
    fleet_calls_.onReply(token, std::move(reply));
}

void Worker::onChannelOpened(std::string_view channel) {
    metrics_.channels.add();
    broker_->subscribe(channel);
    presence_.onChannelOpened(channel);
    if (occupancy_) occupancy_->opened(channel);
}

void Worker::onChannelClosed(std::string_view channel) {
    metrics_.channels.sub();
    broker_->unsubscribe(channel);
    presence_.onChannelClosed(channel);
    if (occupancy_) occupancy_->closed(channel);
}

}  // namespace wsrelay
