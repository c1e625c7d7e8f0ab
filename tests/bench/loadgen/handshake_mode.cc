// handshake: C connections in flight, each opening, completing the WebSocket handshake, then
// closing cleanly (close frame, wait for the relay's close and FIN) and starting over.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "histogram.h"
#include "modes.h"
#include "poller.h"
#include "process_info.h"
#include "server_processes.h"
#include "ws_connection.h"

namespace wsrelay::loadgen {
namespace {

constexpr uint64_t kStuckNs = 5'000'000'000;  // a connection this old is abandoned and counted

class HandshakeThread : public ConnectionHandler {
public:
    HandshakeThread(const Options& o, const std::vector<Endpoint>& endpoints,
                    std::atomic<bool>& stop, uint32_t slots, uint64_t first_id)
        : options_(o), endpoints_(endpoints), stop_(stop), next_id_(first_id) {
        for (uint32_t i = 0; i < slots; ++i) {
            slots_.push_back({std::make_unique<WsConnection>(poller_, *this, i), 0, true});
        }
    }

    void run() {
        uint64_t last_scan = nowNs();
        while (!stop_.load(std::memory_order_relaxed)) {
            for (Slot& slot : slots_) {
                if (slot.idle) launch(slot);
            }
            poller_.poll(5);
            uint64_t now = nowNs();
            if (now - last_scan > 100'000'000) {
                last_scan = now;
                for (Slot& slot : slots_) {
                    if (!slot.idle && now - slot.started_ns > kStuckNs) {
                        slot.conn->abort();
                        noteError("connection stuck for 5 s");
                        slot.idle = true;
                    }
                }
            }
        }
        for (Slot& slot : slots_) slot.conn->abort();
    }

    void onOpen(WsConnection& conn) override {
        Slot& slot = slots_[conn.index()];
        ++handshakes_;
        latency_us_.record((nowNs() - slot.started_ns) / 1000);
        conn.close(1000);
    }

    void onText(WsConnection&, std::string_view) override {}

    void onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) override {
        Slot& slot = slots_[conn.index()];
        if (error.empty()) {
            ++closes_;
        } else {
            noteError(std::string(error) + " (" + std::to_string(close_code) + ")");
        }
        slot.idle = true;  // relaunched from the loop, not from inside the connection's callback
    }

    uint64_t handshakes() const { return handshakes_; }
    uint64_t closes() const { return closes_; }
    uint64_t errors() const { return errors_; }
    const std::string& firstError() const { return first_error_; }
    const Histogram& latency() const { return latency_us_; }

private:
    struct Slot {
        std::unique_ptr<WsConnection> conn;
        uint64_t started_ns;
        bool idle;
    };

    void launch(Slot& slot) {
        uint64_t id = next_id_++;
        slot.started_ns = nowNs();
        slot.idle = false;
        if (!slot.conn->start(endpoints_[id % endpoints_.size()],
                              sourceAddress(id, options_.sources))) {
            noteError(slot.conn->error());
            slot.idle = true;
        }
    }

    void noteError(const std::string& what) {
        ++errors_;
        if (first_error_.empty()) first_error_ = what;
    }

    const Options& options_;
    const std::vector<Endpoint>& endpoints_;
    std::atomic<bool>& stop_;
    Poller poller_;
    std::vector<Slot> slots_;
    uint64_t next_id_;
    uint64_t handshakes_ = 0;
    uint64_t closes_ = 0;
    uint64_t errors_ = 0;
    std::string first_error_;
    Histogram latency_us_;
};

}  // namespace

int runHandshake(const Options& o) {
    std::vector<Endpoint> endpoints;
    for (const std::string& url : o.urls) {
        Endpoint ep;
        std::string error;
        if (!parseWsUrl(url, ep, error)) {
            std::fprintf(stderr, "wsrelay_loadgen: %s\n", error.c_str());
            return 2;
        }
        ep.headers = o.headers;
        if (o.protocol == Protocol::Raw) {
            ep.path += ep.path.find('?') == std::string::npos ? "?channel=hs" : "&channel=hs";
        }
        endpoints.push_back(std::move(ep));
    }
    if (uint64_t(o.concurrency) + 32 > raiseFileLimit()) {
        std::fprintf(stderr, "wsrelay_loadgen: --concurrency is above the open-file limit\n");
        return 2;
    }
    std::atomic<bool> stop{false};
    std::vector<std::unique_ptr<HandshakeThread>> loops;
    for (int i = 0; i < o.threads; ++i) {
        uint32_t slots = o.concurrency / uint32_t(o.threads) +
                         (uint32_t(i) < o.concurrency % uint32_t(o.threads) ? 1 : 0);
        loops.push_back(
            std::make_unique<HandshakeThread>(o, endpoints, stop, slots, uint64_t(i) << 40));
    }
    ServerProcesses server(o.server_pids);
    const double cpu_start = selfCpuSeconds();
    server.markCpu();
    const uint64_t t0 = nowNs();
    std::vector<std::thread> threads;
    for (auto& loop : loops) threads.emplace_back([l = loop.get()] { l->run(); });

    std::string outcome;
    const uint64_t end = t0 + uint64_t(std::min(o.duration_s, o.timeout_s) * 1e9);
    while (outcome.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (signalled()) {
            outcome = "interrupted";
        } else if (nowNs() >= end) {
            outcome = o.duration_s <= o.timeout_s ? "complete" : "timeout";
        }
    }
    stop = true;
    for (std::thread& t : threads) t.join();
    const double elapsed_s = double(nowNs() - t0) / 1e9;
    const double cpu_s = selfCpuSeconds() - cpu_start;
    server.endCpu();

    uint64_t handshakes = 0, closes = 0, errors = 0;
    Histogram latency;
    std::string first_error;
    for (const auto& loop : loops) {
        handshakes += loop->handshakes();
        closes += loop->closes();
        errors += loop->errors();
        latency.merge(loop->latency());
        if (first_error.empty()) first_error = loop->firstError();
    }
    const double rate = double(handshakes) / elapsed_s;
    char buf[768];
    std::snprintf(buf, sizeof buf,
                  "{\"mode\":\"handshake\",\"outcome\":\"%s\",\"protocol\":\"%s\","
                  "\"concurrency\":%u,\"threads\":%d,"
                  "\"elapsed_s\":%.3f,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,"
                  "\"closes\":%llu,\"errors\":%llu,"
                  "\"latency_us\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu},"
                  "\"loadgen_cpu_s\":%.3f",
                  outcome.c_str(), protocolName(o.protocol), o.concurrency, o.threads, elapsed_s,
                  static_cast<unsigned long long>(handshakes), rate,
                  static_cast<unsigned long long>(closes), static_cast<unsigned long long>(errors),
                  static_cast<unsigned long long>(latency.quantile(0.5)),
                  static_cast<unsigned long long>(latency.quantile(0.99)),
                  static_cast<unsigned long long>(latency.quantile(0.999)),
                  static_cast<unsigned long long>(latency.max()), cpu_s);
    std::string json = buf;
    server.appendCpu(json, "handshake", handshakes);
    emitReport(json, first_error);
    std::fprintf(stderr, "handshake %s: %llu in %.2f s = %.0f/s, %llu errors%s%s\n",
                 outcome.c_str(), static_cast<unsigned long long>(handshakes), elapsed_s, rate,
                 static_cast<unsigned long long>(errors),
                 first_error.empty() ? "" : "; first: ", first_error.c_str());
    return outcome == "complete" && errors == 0 ? 0 : 1;
}

}  // namespace wsrelay::loadgen
