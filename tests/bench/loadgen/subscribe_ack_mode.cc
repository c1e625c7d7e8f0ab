// subscribe-ack: N connections, each with one command in flight at a time, subscribe to a
// channel, time the relay's ack, unsubscribe (and wait for that ack), and start over, at --rate
// subscribes/s in total.
//
// --channels live: one keeper connection per URL first subscribes to every live channel and stays,
// so the relay holds each channel already and acks at once (docs/protocol.md, "Ack semantics").
// The relay's workers share the port (SO_REUSEPORT) and the kernel picks one per connection, so
// "held" means held by the keeper's worker: measure live acks against a relay with one worker.
// --channels fresh: every subscribe names a channel nobody used before, so the worker subscribes
// it in its broker first and acks on the broker's confirmation (with Redis, one round trip).
//
// The ack is an ordinary frame in the connection's send queue, so the relay's write coalescing
// (websocket.write_coalesce_ms, default 2) holds it back when the socket was written less than
// that long ago, e.g. the previous unsubscribe's ack: a connection rests --gap-ms (default 5)
// after its last answer before it subscribes again, so that the window measured is the ack's own.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "first_error.h"
#include "histogram.h"
#include "modes.h"
#include "poller.h"
#include "process_info.h"
#include "server_processes.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {
namespace {

constexpr uint64_t kAckTimeoutNs = 5'000'000'000;  // a command unanswered this long is counted

// What the coordinator and the loop threads share; the atomics change a few times per run.
struct AckRun {
    explicit AckRun(const Options& o) : options(o) {}

    const Options& options;
    std::vector<Endpoint> endpoints;
    std::vector<std::string> live_channels;
    std::string fresh_prefix;  // unique to this run: "BASE-fresh-PID.MS-"

    std::atomic<int> ready{0};          // threads whose connections are open (keepers acked)
    std::atomic<int> finished{0};       // threads with nothing left to send and nothing in flight
    std::atomic<bool> go{false};        // measure: subscribes may start
    std::atomic<bool> draining{false};  // the duration is over: no new subscribes
    std::atomic<bool> stop{false};
    std::atomic<bool> failed{false};  // a connection or a keeper could not be set up, or was lost

    void fail(const std::string& what) {
        failed = true;
        noteError(what);
    }
    void noteError(const std::string& what) { first_error_.note(what); }
    std::string firstError() { return first_error_.get(); }

private:
    FirstError first_error_;
};

struct AckStats {
    uint64_t subscribes = 0;    // subscribe commands sent in the measured phase
    uint64_t acks = 0;          // of those, acked (each one a latency sample)
    uint64_t unsubscribes = 0;  // unsubscribe acks
    uint64_t errors = 0;        // {"op":"error"} answers to our commands
    uint64_t unanswered = 0;    // commands without an answer after kAckTimeoutNs
    uint64_t disconnects = 0;   // connections lost after they opened
    Histogram latency_us;       // subscribe sent -> its ack

    void merge(const AckStats& o) {
        subscribes += o.subscribes;
        acks += o.acks;
        unsubscribes += o.unsubscribes;
        errors += o.errors;
        unanswered += o.unanswered;
        disconnects += o.disconnects;
        latency_us.merge(o.latency_us);
    }
};

// The "op" value and the "id" of a frame from the relay, which writes compact JSON.
struct Reply {
    std::string_view op;
    uint64_t id = 0;
    bool has_id = false;
};

Reply readReply(std::string_view frame) {
    Reply r;
    if (size_t p = frame.find("\"op\":\""); p != std::string_view::npos) {
        p += 6;
        const size_t end = frame.find('"', p);
        if (end != std::string_view::npos) r.op = frame.substr(p, end - p);
    }
    if (size_t p = frame.find("\"id\":"); p != std::string_view::npos) {
        p += 5;
        auto [ptr, ec] = std::from_chars(frame.data() + p, frame.data() + frame.size(), r.id);
        r.has_id = ec == std::errc() && ptr != frame.data() + p;
    }
    return r;
}

class AckThread : public ConnectionHandler {
public:
    // `first_global`, `stride`: this thread's connections are first_global + k × stride, the
    // numbering that picks their endpoint, source address and channel names. `rate`: this
    // thread's subscribes per second (0: back to back); `quota`: at most this many.
    AckThread(AckRun& run, uint32_t connections, uint64_t first_global, uint64_t stride,
              double rate, uint64_t quota)
        : run_(run), quota_(quota) {
        const Options& o = run.options;
        if (rate > 0) interval_ns_ = uint64_t(1e9 / rate);
        gap_ns_ = uint64_t(o.gap_ms * 1e6);
        for (uint32_t i = 0; i < connections; ++i) {
            Slot slot;
            slot.global = first_global + i * stride;
            slot.conn = std::make_unique<WsConnection>(poller_, *this, i);
            slots_.push_back(std::move(slot));
        }
        if (o.channel_policy == ChannelPolicy::Live) {
            for (size_t e = 0; e < run.endpoints.size(); ++e) {
                keepers_.push_back(
                    {std::make_unique<WsConnection>(poller_, *this, uint32_t(connections + e)), 0});
            }
        }
    }

    void run() {
        if (keepers_.empty()) {
            startSlots();
        } else {
            for (size_t e = 0; e < keepers_.size(); ++e) {
                if (!keepers_[e].conn->start(run_.endpoints[e], sourceAddress(e, sourceCount()))) {
                    run_.fail("keeper: " + keepers_[e].conn->error());
                }
            }
        }
        uint64_t last_scan = nowNs();
        while (!run_.stop.load(std::memory_order_relaxed)) {
            int timeout_ms = 5;
            if (run_.go.load(std::memory_order_acquire)) timeout_ms = issue();
            poller_.poll(timeout_ms);
            const uint64_t now = nowNs();
            if (now - last_scan > 100'000'000) {
                last_scan = now;
                scanUnanswered(now);
            }
            checkFinished();
        }
        for (Slot& slot : slots_) slot.conn->abort();
        for (Keeper& keeper : keepers_) keeper.conn->abort();
    }

    const AckStats& stats() const { return stats_; }

    // ConnectionHandler
    void onOpen(WsConnection& conn) override {
        if (conn.index() >= slots_.size()) {
            // The keeper: subscribes to every live channel at once, ids 1..K.
            for (size_t c = 0; c < run_.live_channels.size(); ++c) {
                conn.sendText(command("subscribe", run_.live_channels[c], c + 1));
            }
            return;
        }
        slots_[conn.index()].state = State::Ready;
        if (++open_ == slots_.size()) run_.ready.fetch_add(1, std::memory_order_release);
    }

    void onText(WsConnection& conn, std::string_view message) override {
        const Reply reply = readReply(message);
        if (conn.index() >= slots_.size()) {
            Keeper& keeper = keepers_[conn.index() - slots_.size()];
            if (reply.op == "ack") {
                if (++keeper.acked == run_.live_channels.size() &&
                    ++keepers_acked_ == keepers_.size()) {
                    startSlots();
                }
            } else if (reply.op == "error") {
                run_.fail("keeper: " + std::string(message.substr(0, 200)));
            }
            return;
        }
        Slot& slot = slots_[conn.index()];
        const bool ours = reply.has_id && reply.id == slot.pending_id &&
                          (slot.state == State::Subscribing || slot.state == State::Unsubscribing);
        if (!ours) return;  // a message, a notice, or an op this client does not know
        if (reply.op == "ack") {
            if (slot.state == State::Subscribing) {
                const uint64_t now = nowNs();
                ++stats_.acks;
                stats_.latency_us.record((now - slot.sent_ns) / 1000);
                send(slot, State::Unsubscribing);
            } else {
                ++stats_.unsubscribes;
                slot.state = State::Ready;
                slot.free_ns = nowNs() + gap_ns_;
            }
        } else if (reply.op == "error") {
            ++stats_.errors;
            run_.noteError(std::string(message.substr(0, 200)));
            slot.state = State::Ready;
            slot.free_ns = nowNs() + gap_ns_;
        }
    }

    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override {
        const std::string what = " closed (" + std::to_string(close_code) + ")" +
                                 (error.empty() ? "" : ": " + std::string(error));
        if (conn.index() >= slots_.size()) {
            run_.fail("keeper" + what);  // the live channels may no longer be held
            return;
        }
        Slot& slot = slots_[conn.index()];
        if (slot.state == State::Connecting) {
            run_.fail("connection " + std::to_string(slot.global) + what);
        } else {
            ++stats_.disconnects;
            run_.noteError("connection " + std::to_string(slot.global) + what);
        }
        slot.state = State::Dead;
    }

private:
    enum class State { Idle, Connecting, Ready, Subscribing, Unsubscribing, Dead };

    struct Slot {
        uint64_t global = 0;
        State state = State::Idle;
        uint64_t next_id = 1;
        uint64_t pending_id = 0;
        uint64_t sent_ns = 0;
        uint64_t free_ns = 0;  // Ready, but no subscribe before this (--gap-ms)
        uint64_t iteration = 0;
        std::string channel;
        std::unique_ptr<WsConnection> conn;
    };
    struct Keeper {
        std::unique_ptr<WsConnection> conn;
        size_t acked;
    };

    int sourceCount() const { return run_.options.sources; }

    void startSlots() {
        for (Slot& slot : slots_) {
            const Endpoint& ep = run_.endpoints[slot.global % run_.endpoints.size()];
            slot.state = State::Connecting;
            if (!slot.conn->start(ep, sourceAddress(slot.global, sourceCount()))) {
                run_.fail("connection " + std::to_string(slot.global) + ": " + slot.conn->error());
                slot.state = State::Dead;
            }
        }
    }

    static std::string command(const char* op, const std::string& channel, uint64_t id) {
        std::string cmd = "{\"op\":\"";
        cmd += op;
        cmd += "\",\"channel\":\"";
        cmd += channel;
        cmd += "\",\"id\":";
        cmd += std::to_string(id);
        cmd += '}';
        return cmd;
    }

    // Sends `{"op":"subscribe"|"unsubscribe","channel":slot.channel,"id":next}`; the clock
    // starts right before the frame is handed to the socket.
    void send(Slot& slot, State state) {
        slot.pending_id = slot.next_id++;
        slot.state = state;
        const std::string cmd = command(state == State::Subscribing ? "subscribe" : "unsubscribe",
                                        slot.channel, slot.pending_id);
        slot.sent_ns = nowNs();
        slot.conn->sendText(cmd);
    }

    // Sends the subscribes that are due, on the connections that are free, in turn; returns how
    // long the loop may wait (an answer wakes it sooner).
    int issue() {
        const Options& o = run_.options;
        uint64_t soonest = UINT64_MAX;  // when the next resting connection is free
        for (size_t n = 0; n < slots_.size(); ++n) {
            if (run_.draining.load(std::memory_order_relaxed) || stats_.subscribes >= quota_) {
                break;
            }
            const uint64_t now = nowNs();
            if (interval_ns_ != 0 && now < next_due_ns_) return waitMs(next_due_ns_, now);
            Slot& slot = slots_[cursor_];
            cursor_ = (cursor_ + 1) % slots_.size();
            if (slot.state != State::Ready) continue;
            if (now < slot.free_ns) {
                soonest = std::min(soonest, slot.free_ns);
                continue;
            }
            if (o.channel_policy == ChannelPolicy::Live) {
                const size_t k = run_.live_channels.size();
                slot.channel = run_.live_channels[(slot.global + slot.iteration) % k];
            } else {
                slot.channel = run_.fresh_prefix + std::to_string(slot.global) + "-" +
                               std::to_string(slot.iteration);
            }
            ++slot.iteration;
            ++stats_.subscribes;
            send(slot, State::Subscribing);
            // Paced, without a burst to catch up after every connection was busy.
            if (interval_ns_ != 0) {
                next_due_ns_ = std::max(next_due_ns_ + interval_ns_, now);
            }
        }
        return soonest == UINT64_MAX ? 5 : std::min(5, waitMs(soonest, nowNs()));
    }

    static int waitMs(uint64_t until_ns, uint64_t now) {
        return until_ns > now ? int((until_ns - now + 999'999) / 1'000'000) : 0;
    }

    void scanUnanswered(uint64_t now) {
        for (Slot& slot : slots_) {
            if ((slot.state == State::Subscribing || slot.state == State::Unsubscribing) &&
                now - slot.sent_ns > kAckTimeoutNs) {
                ++stats_.unanswered;
                run_.noteError("connection " + std::to_string(slot.global) + ": no answer to " +
                               (slot.state == State::Subscribing ? "subscribe" : "unsubscribe") +
                               " on " + slot.channel + " within 5 s");
                slot.conn->abort();
                slot.state = State::Dead;
            }
        }
    }

    void checkFinished() {
        if (finished_ || !run_.go.load(std::memory_order_relaxed)) return;
        const bool more =
            !run_.draining.load(std::memory_order_relaxed) && stats_.subscribes < quota_;
        bool in_flight = false, alive = false;
        for (const Slot& slot : slots_) {
            in_flight |= slot.state == State::Subscribing || slot.state == State::Unsubscribing;
            alive |= slot.state != State::Dead;
        }
        if (!in_flight && (!more || !alive)) {
            finished_ = true;
            run_.finished.fetch_add(1, std::memory_order_release);
        }
    }

    AckRun& run_;
    const uint64_t quota_;
    Poller poller_;
    std::vector<Slot> slots_;
    std::vector<Keeper> keepers_;
    size_t keepers_acked_ = 0;
    size_t open_ = 0;
    size_t cursor_ = 0;
    uint64_t interval_ns_ = 0;  // 0: back to back
    uint64_t next_due_ns_ = 0;
    uint64_t gap_ns_ = 0;
    bool finished_ = false;
    AckStats stats_;
};

}  // namespace

int runSubscribeAck(const Options& o) {
    AckRun run(o);
    for (const std::string& url : o.urls) {
        Endpoint ep;
        std::string error;
        if (!parseWsUrl(url, ep, error)) {
            std::fprintf(stderr, "wsrelay_loadgen: %s\n", error.c_str());
            return 2;
        }
        ep.headers = o.headers;
        run.endpoints.push_back(std::move(ep));
    }
    const uint64_t keepers =
        o.channel_policy == ChannelPolicy::Live ? uint64_t(o.threads) * run.endpoints.size() : 0;
    if (uint64_t(o.connections) + keepers + 32 > raiseFileLimit()) {
        std::fprintf(stderr, "wsrelay_loadgen: --connections is above the open-file limit\n");
        return 2;
    }
    if (o.channel_policy == ChannelPolicy::Live) {
        for (uint32_t c = 0; c < o.live_channels; ++c) {
            run.live_channels.push_back(o.channel + "-live-" + std::to_string(c));
        }
    }
    run.fresh_prefix = o.channel + "-fresh-" + std::to_string(getpid()) + "." +
                       std::to_string(nowNs() / 1'000'000) + "-";

    // Every thread gets at least one connection.
    const uint32_t threads = std::min(uint32_t(o.threads), o.connections);
    std::vector<std::unique_ptr<AckThread>> loops;
    for (uint32_t i = 0; i < threads; ++i) {
        const uint32_t n = o.connections / threads + (i < o.connections % threads ? 1 : 0);
        const uint64_t quota =
            o.count == 0 ? UINT64_MAX : o.count / threads + (i < o.count % threads ? 1 : 0);
        loops.push_back(
            std::make_unique<AckThread>(run, n, i, threads, o.rate / double(threads), quota));
    }
    ServerProcesses server(o.server_pids);
    const uint64_t t0 = nowNs();
    const uint64_t deadline = t0 + uint64_t(o.timeout_s * 1e9);
    std::vector<std::thread> workers;
    for (auto& loop : loops) workers.emplace_back([l = loop.get()] { l->run(); });

    std::string outcome;
    uint64_t start_ns = 0;
    double cpu_start = 0;
    while (outcome.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        const uint64_t now = nowNs();
        if (signalled()) {
            outcome = "interrupted";
        } else if (run.failed) {
            outcome = "failed";
        } else if (now > deadline) {
            outcome = "timeout";
        } else if (start_ns == 0) {
            if (run.ready.load(std::memory_order_acquire) == int(threads)) {
                start_ns = now;
                cpu_start = selfCpuSeconds();
                server.markCpu();
                run.go.store(true, std::memory_order_release);
            }
        } else if (run.finished.load(std::memory_order_acquire) == int(threads)) {
            outcome = "complete";
        } else if (o.duration_s > 0 && now - start_ns >= uint64_t(o.duration_s * 1e9)) {
            run.draining = true;  // the threads finish once their last answers are in
        }
    }
    run.stop = true;
    for (std::thread& t : workers) t.join();
    const uint64_t end_ns = nowNs();
    const double cpu_s = start_ns ? selfCpuSeconds() - cpu_start : 0;
    if (start_ns) server.endCpu();

    AckStats all;
    for (const auto& loop : loops) all.merge(loop->stats());
    const Histogram& h = all.latency_us;
    const double elapsed_s = start_ns ? double(end_ns - start_ns) / 1e9 : 0;
    const double per_s = elapsed_s > 0 ? double(all.acks) / elapsed_s : 0;
    const std::string first_error = run.firstError();

    std::string json = "{\"mode\":\"subscribe-ack\",\"outcome\":";
    appendJsonString(json, outcome);
    json += ",\"protocol\":\"wsrelay\",\"channels\":";
    appendJsonString(json, channelPolicyName(o.channel_policy));
    appendCount(json, "live_channels", run.live_channels.size());
    appendCount(json, "connections", o.connections);
    appendCount(json, "urls", o.urls.size());
    appendCount(json, "threads", threads);
    appendNumber(json, "rate", o.rate, "%.6g");
    appendNumber(json, "gap_ms", o.gap_ms, "%.6g");
    appendNumber(json, "setup_s", start_ns ? double(start_ns - t0) / 1e9 : 0, "%.3f");
    appendNumber(json, "elapsed_s", elapsed_s, "%.3f");
    appendCount(json, "subscribes", all.subscribes);
    appendCount(json, "acks", all.acks);
    appendNumber(json, "acks_per_s", per_s, "%.1f");
    appendCount(json, "unsubscribes", all.unsubscribes);
    appendCount(json, "errors", all.errors);
    appendCount(json, "unanswered", all.unanswered);
    appendCount(json, "disconnects", all.disconnects);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  ",\"latency_us\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
                  "\"p999\":%llu,\"max\":%llu}",
                  static_cast<unsigned long long>(h.count()),
                  static_cast<unsigned long long>(h.quantile(0.50)),
                  static_cast<unsigned long long>(h.quantile(0.90)),
                  static_cast<unsigned long long>(h.quantile(0.99)),
                  static_cast<unsigned long long>(h.quantile(0.999)),
                  static_cast<unsigned long long>(h.max()));
    json += buf;
    appendNumber(json, "loadgen_cpu_s", cpu_s, "%.3f");
    if (start_ns) server.appendCpu(json, "subscribe", all.subscribes);
    emitReport(json, first_error);

    std::fprintf(stderr,
                 "subscribe-ack %s, channels %s: %llu acks in %.2f s (%.0f/s), p50 %llu us, "
                 "p90 %llu us, p99 %llu us, max %llu us; %llu errors, %llu unanswered, "
                 "%llu disconnects%s%s\n",
                 outcome.c_str(), channelPolicyName(o.channel_policy),
                 static_cast<unsigned long long>(all.acks), elapsed_s, per_s,
                 static_cast<unsigned long long>(h.quantile(0.50)),
                 static_cast<unsigned long long>(h.quantile(0.90)),
                 static_cast<unsigned long long>(h.quantile(0.99)),
                 static_cast<unsigned long long>(h.max()),
                 static_cast<unsigned long long>(all.errors),
                 static_cast<unsigned long long>(all.unanswered),
                 static_cast<unsigned long long>(all.disconnects),
                 first_error.empty() ? "" : "; first error: ", first_error.c_str());
    const bool clean = all.errors == 0 && all.unanswered == 0 && all.disconnects == 0;
    return outcome == "complete" && clean && all.acks > 0 ? 0 : 1;
}

}  // namespace wsrelay::loadgen
