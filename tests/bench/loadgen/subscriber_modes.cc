// fanout and idle: both open subscribers through SubscriberThread; fanout adds a publisher.

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "modes.h"
#include "process_info.h"
#include "publisher.h"
#include "run_state.h"
#include "subscriber_thread.h"

namespace wsrelay::loadgen {
namespace {

constexpr auto kCoordinatorTick = std::chrono::milliseconds(2);

bool prepare(RunState& state, uint64_t connections) {
    for (const std::string& url : state.options.urls) {
        Endpoint ep;
        std::string error;
        if (!parseWsUrl(url, ep, error)) {
            std::fprintf(stderr, "wsrelay_loadgen: %s\n", error.c_str());
            return false;
        }
        ep.headers = state.options.headers;
        state.endpoints.push_back(std::move(ep));
    }
    uint64_t limit = raiseFileLimit();
    if (connections + 32 > limit) {
        std::fprintf(stderr,
                     "wsrelay_loadgen: %llu connections need more than the open-file limit %llu\n",
                     static_cast<unsigned long long>(connections),
                     static_cast<unsigned long long>(limit));
        return false;
    }
    return true;
}

struct Threads {
    std::vector<std::unique_ptr<SubscriberThread>> loops;
    std::vector<std::thread> threads;

    Threads(RunState& state) {
        for (int i = 0; i < state.options.threads; ++i) {
            loops.push_back(std::make_unique<SubscriberThread>(state, i));
        }
    }
    void start(Publisher* publisher) {
        for (size_t i = 0; i < loops.size(); ++i) {
            SubscriberThread* loop = loops[i].get();
            Publisher* p = i == 0 ? publisher : nullptr;
            threads.emplace_back([loop, p] { loop->run(p); });
        }
    }
    void join() {
        for (std::thread& t : threads) t.join();
        threads.clear();
    }
    SubscriberStats merged() const {
        SubscriberStats all;
        for (const auto& loop : loops) all.merge(loop->stats());
        return all;
    }
};

void appendLatency(std::string& out, const Histogram& h) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu}",
                  static_cast<unsigned long long>(h.quantile(0.50)),
                  static_cast<unsigned long long>(h.quantile(0.99)),
                  static_cast<unsigned long long>(h.quantile(0.999)),
                  static_cast<unsigned long long>(h.max()));
    out += buf;
}

void appendField(std::string& out, const char* name, double v, const char* fmt = "%.6g") {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    out += ",\"";
    out += name;
    out += "\":";
    out += buf;
}

void appendField(std::string& out, const char* name, uint64_t v) {
    out += ",\"";
    out += name;
    out += "\":";
    out += std::to_string(v);
}

} // namespace

int runFanout(const Options& o) {
    RunState state(o);
    state.subscribers = o.subscribers;
    if (o.channels == 1) {
        state.channel_names.push_back(o.channel);
    } else {
        for (uint32_t c = 0; c < o.channels; ++c) {
            state.channel_names.push_back(o.channel + "-" + std::to_string(c));
        }
    }
    if (!prepare(state, uint64_t(o.subscribers) + 1)) return 2;

    const uint64_t t0 = nowNs();
    const uint64_t deadline = t0 + uint64_t(o.timeout_s * 1e9);
    Threads threads(state);
    Publisher publisher(state, threads.loops[0]->poller());
    if (!publisher.start()) state.setup_failed = true;
    threads.start(&publisher);

    std::string outcome;
    uint64_t final_seen_ns = 0;
    uint64_t setup_ns = 0;
    while (outcome.empty()) {
        std::this_thread::sleep_for(kCoordinatorTick);
        uint64_t now = nowNs();
        if (setup_ns == 0 && state.publish_start_ns.load() != 0) {
            setup_ns = state.publish_start_ns.load() - t0;
        }
        if (signalled()) {
            outcome = "interrupted";
        } else if (state.setup_failed) {
            outcome = "failed";
        } else if (now > deadline) {
            outcome = "timeout";
        } else if (state.final_sent.load() != UINT64_MAX) {
            if (final_seen_ns == 0) final_seen_ns = now;
            if (state.threads_done.load() == o.threads) {
                outcome = "complete";
            } else if (now - final_seen_ns > uint64_t(o.drain_timeout_s * 1e9)) {
                outcome = "drain_timeout";
            }
        }
    }
    state.stop = true;
    threads.join();
    const double cpu_end = selfCpuSeconds();
    const double relay_cpu_end = o.relay_pid > 0 ? processCpuSeconds(o.relay_pid) : -1;

    SubscriberStats all = threads.merged();
    const uint64_t sent = publisher.sent();
    uint64_t expected = 0;
    for (const auto& loop : threads.loops) expected += loop->expectedTotal(sent);
    const uint64_t loss = expected > all.unique ? expected - all.unique : 0;
    const uint64_t start = publisher.startNs();
    const uint64_t end = std::max(all.last_rx_ns, start);
    const double elapsed_s = start == 0 ? 0 : double(end - start) / 1e9;
    const double per_s = elapsed_s > 0 ? double(all.delivered) / elapsed_s : 0;
    const double cpu_s = start == 0 ? 0 : cpu_end - publisher.cpuAtStart();
    const double relay_cpu_s = (publisher.relayCpuAtStart() >= 0 && relay_cpu_end >= 0)
                                   ? relay_cpu_end - publisher.relayCpuAtStart()
                                   : -1;

    std::string json = "{\"mode\":\"fanout\",\"outcome\":";
    appendJsonString(json, outcome);
    appendField(json, "subscribers", uint64_t(o.subscribers));
    appendField(json, "channels", uint64_t(state.channel_names.size()));
    appendField(json, "urls", uint64_t(o.urls.size()));
    appendField(json, "threads", uint64_t(o.threads));
    appendField(json, "rate", o.rate);
    appendField(json, "size", uint64_t(o.size));
    appendField(json, "setup_s", double(setup_ns) / 1e9, "%.3f");
    appendField(json, "offered", sent);
    appendField(json, "expected", expected);
    appendField(json, "delivered", all.delivered);
    appendField(json, "unique", all.unique);
    appendField(json, "loss", loss);
    appendField(json, "duplicates", all.duplicates);
    appendField(json, "out_of_order", all.out_of_order);
    appendField(json, "unexpected", all.unexpected);
    appendField(json, "error_frames", all.error_frames + publisher.errorFrames());
    appendField(json, "disconnects", all.disconnects);
    appendField(json, "elapsed_s", elapsed_s, "%.3f");
    appendField(json, "delivered_per_s", per_s, "%.1f");
    json += ",\"latency_us\":";
    appendLatency(json, all.latency_us);
    appendField(json, "loadgen_cpu_s", cpu_s, "%.3f");
    appendField(json, "loadgen_cpu_total_s", cpu_end, "%.3f");
    appendField(json, "loadgen_cpu_us_per_delivery",
                all.delivered ? cpu_s * 1e6 / double(all.delivered) : 0, "%.3f");
    if (relay_cpu_s >= 0) {
        appendField(json, "relay_cpu_s", relay_cpu_s, "%.3f");
        appendField(json, "relay_cpu_us_per_delivery",
                    all.delivered ? relay_cpu_s * 1e6 / double(all.delivered) : 0, "%.3f");
    }
    std::string first_error = state.firstError();
    emitReport(json, first_error);

    std::fprintf(stderr,
                 "fanout %s: %u subscribers, %llu offered, %llu delivered (%.0f/s), loss %llu, "
                 "dup %llu, ooo %llu, p50 %llu us, p99 %llu us, p999 %llu us, max %llu us, "
                 "loadgen CPU %.2f s%s%s\n",
                 outcome.c_str(), o.subscribers, static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(all.delivered), per_s,
                 static_cast<unsigned long long>(loss),
                 static_cast<unsigned long long>(all.duplicates),
                 static_cast<unsigned long long>(all.out_of_order),
                 static_cast<unsigned long long>(all.latency_us.quantile(0.5)),
                 static_cast<unsigned long long>(all.latency_us.quantile(0.99)),
                 static_cast<unsigned long long>(all.latency_us.quantile(0.999)),
                 static_cast<unsigned long long>(all.latency_us.max()), cpu_s,
                 first_error.empty() ? "" : "; first error: ", first_error.c_str());

    const bool finished = outcome == "complete" || outcome == "drain_timeout";
    if (!finished) return 1;
    if (o.allow_loss) return 0;
    return loss == 0 && all.duplicates == 0 ? 0 : 1;
}

int runIdle(const Options& o) {
    RunState state(o);
    state.subscribers = o.connections;
    for (uint32_t i = 0; i < o.connections; ++i) {
        state.channel_names.push_back("idle-" + std::to_string(i));
    }
    if (!prepare(state, o.connections)) return 2;
    const long rss_before = o.relay_pid > 0 ? processRssKib(o.relay_pid) : -1;

    const uint64_t t0 = nowNs();
    const uint64_t deadline = t0 + uint64_t(o.timeout_s * 1e9);
    Threads threads(state);
    threads.start(nullptr);

    std::string outcome;
    uint64_t ready_ns = 0;
    while (outcome.empty()) {
        std::this_thread::sleep_for(kCoordinatorTick);
        uint64_t now = nowNs();
        if (ready_ns == 0 && state.acked.load() == o.connections) {
            ready_ns = now;
            const long rss_after = o.relay_pid > 0 ? processRssKib(o.relay_pid) : -1;
            std::string json = "{\"mode\":\"idle\",\"ready\":true";
            appendField(json, "connections", uint64_t(o.connections));
            appendField(json, "setup_s", double(now - t0) / 1e9, "%.3f");
            appendField(json, "connections_per_s", double(o.connections) * 1e9 / double(now - t0),
                        "%.1f");
            if (rss_before >= 0 && rss_after >= 0) {
                appendField(json, "relay_rss_before_kib", uint64_t(rss_before));
                appendField(json, "relay_rss_after_kib", uint64_t(rss_after));
                appendField(json, "relay_rss_per_connection_bytes",
                            double(rss_after - rss_before) * 1024.0 / double(o.connections),
                            "%.0f");
            }
            json += "}\n";
            std::fputs(json.c_str(), stdout);
            std::fflush(stdout);
            std::fprintf(stderr, "idle: %u connections up in %.2f s; holding\n", o.connections,
                         double(now - t0) / 1e9);
        }
        if (signalled()) {
            outcome = ready_ns ? "complete" : "interrupted";
        } else if (state.setup_failed) {
            outcome = "failed";
        } else if (now > deadline) {
            outcome = "timeout";
        } else if (ready_ns && o.hold_s >= 0 && now - ready_ns >= uint64_t(o.hold_s * 1e9)) {
            outcome = "complete";
        }
    }
    state.stop = true;
    threads.join();
    SubscriberStats all = threads.merged();
    std::string first_error = state.firstError();
    if (ready_ns == 0) {
        std::string json = "{\"mode\":\"idle\",\"ready\":false,\"outcome\":";
        appendJsonString(json, outcome);
        appendField(json, "connections", uint64_t(o.connections));
        appendField(json, "acked", uint64_t(state.acked.load()));
        emitReport(json, first_error);
    }
    std::fprintf(stderr, "idle %s: %u of %u acked, %llu disconnects%s%s\n", outcome.c_str(),
                 state.acked.load(), o.connections,
                 static_cast<unsigned long long>(all.disconnects),
                 first_error.empty() ? "" : "; first error: ", first_error.c_str());
    return outcome == "complete" && all.disconnects == 0 ? 0 : 1;
}

} // namespace wsrelay::loadgen
