// fanout, chat and idle: all open their connections through SubscriberThread; fanout adds a
// publisher, chat's clients publish themselves.

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "modes.h"
#include "process_info.h"
#include "publisher.h"
#include "run_state.h"
#include "server_processes.h"
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
        std::fprintf(
            stderr, "wsrelay_loadgen: %llu connections need more than the open-file limit %llu\n",
            static_cast<unsigned long long>(connections), static_cast<unsigned long long>(limit));
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

void appendField(std::string& out, const char* name, const char* v) {
    out += ",\"";
    out += name;
    out += "\":";
    appendJsonString(out, v);
}

// How a fanout or chat run went, as the coordinator saw it.
struct Measurement {
    std::string outcome;
    uint64_t setup_ns = 0;   // start → every subscription live (and the publisher connected)
    uint64_t warmup_ns = 0;  // warm-up start → every subscriber reached
    double cpu_at_start = 0;
    double cpu_end = 0;
};

// Drives the phases (setup, warm-up, measure, drain) from the main thread until an outcome.
Measurement coordinate(RunState& state, ServerProcesses& server, uint64_t t0) {
    const Options& o = state.options;
    const bool chat = o.mode == Mode::Chat;
    const uint64_t deadline = t0 + uint64_t(o.timeout_s * 1e9);
    Measurement m;
    uint64_t warmup_start = 0;
    uint64_t final_seen_ns = 0;
    auto startMeasure = [&] {
        m.cpu_at_start = selfCpuSeconds();
        server.markCpu();
        state.measure_start_ns.store(nowNs(), std::memory_order_release);
        state.phase.store(Phase::Measure, std::memory_order_release);
    };
    while (m.outcome.empty()) {
        std::this_thread::sleep_for(kCoordinatorTick);
        const uint64_t now = nowNs();
        const Phase phase = state.phase.load();
        if (signalled()) {
            m.outcome = "interrupted";
        } else if (state.setup_failed) {
            m.outcome = "failed";
        } else if (now > deadline) {
            m.outcome = "timeout";
        } else if (phase == Phase::Setup) {
            if (state.acked.load() == state.subscribers && (chat || state.publisher_ready)) {
                m.setup_ns = now - t0;
                if (o.warmup) {
                    warmup_start = now;
                    state.phase.store(Phase::WarmUp, std::memory_order_release);
                } else {
                    startMeasure();
                }
            }
        } else if (phase == Phase::WarmUp) {
            const uint32_t warmed = state.warmed.load();
            if (warmed == state.subscribers) {
                m.warmup_ns = now - warmup_start;
                startMeasure();
            } else if (now - warmup_start > uint64_t(o.warmup_timeout_s * 1e9)) {
                m.outcome = "failed";
                state.reportError("warm-up: " + std::to_string(state.subscribers - warmed) +
                                  " of " + std::to_string(state.subscribers) +
                                  " subscribers received no warm-up message within " +
                                  std::to_string(o.warmup_timeout_s) + " s");
            }
        } else if (state.final_sent.load() != UINT64_MAX) {
            if (final_seen_ns == 0) final_seen_ns = now;
            if (state.threads_done.load() == o.threads) {
                m.outcome = "complete";
            } else if (now - final_seen_ns > uint64_t(o.drain_timeout_s * 1e9)) {
                m.outcome = "drain_timeout";
            }
        }
    }
    state.stop = true;
    return m;
}

// Fanout's and chat's report: one JSON line on stdout and a summary on stderr; returns the exit
// status.
int report(RunState& state, Threads& threads, const ServerProcesses& server, const Measurement& m,
           uint64_t sent, uint64_t start_ns, uint64_t publish_failures) {
    const Options& o = state.options;
    const bool chat = o.mode == Mode::Chat;
    SubscriberStats all = threads.merged();
    uint64_t expected = 0;
    for (const auto& loop : threads.loops) expected += loop->expectedTotal(sent);
    const uint64_t loss = expected > all.unique ? expected - all.unique : 0;
    const uint64_t end = std::max(all.last_rx_ns, start_ns);
    const double elapsed_s = start_ns == 0 ? 0 : double(end - start_ns) / 1e9;
    const double per_s = elapsed_s > 0 ? double(all.delivered) / elapsed_s : 0;
    const double cpu_s = start_ns == 0 ? 0 : m.cpu_end - m.cpu_at_start;

    std::string json = chat ? "{\"mode\":\"chat\"" : "{\"mode\":\"fanout\"";
    appendField(json, "outcome", m.outcome.c_str());
    appendField(json, "protocol", protocolName(o.protocol));
    appendField(json, "publish_via", publishViaName(o.publish_via));
    appendField(json, chat ? "clients" : "subscribers", uint64_t(state.subscribers));
    appendField(json, "channels", uint64_t(state.channel_names.size()));
    appendField(json, "urls", uint64_t(o.urls.size()));
    appendField(json, "threads", uint64_t(o.threads));
    appendField(json, "rate", o.rate);
    appendField(json, "size", uint64_t(o.size));
    json += o.warmup ? ",\"warmup\":true" : ",\"warmup\":false";
    json += o.deflate ? ",\"deflate\":true" : ",\"deflate\":false";
    json += o.words ? ",\"padding\":\"words\"" : ",\"padding\":\"x\"";
    appendField(json, "setup_s", double(m.setup_ns) / 1e9, "%.3f");
    appendField(json, "warmup_s", double(m.warmup_ns) / 1e9, "%.3f");
    appendField(json, "offered", sent);
    appendField(json, "expected", expected);
    appendField(json, "delivered", all.delivered);
    appendField(json, "unique", all.unique);
    appendField(json, "loss", loss);
    appendField(json, "duplicates", all.duplicates);
    appendField(json, "out_of_order", all.out_of_order);
    appendField(json, "unexpected", all.unexpected);
    appendField(json, "error_frames",
                all.error_frames + (o.publish_via == PublishVia::Client ? publish_failures : 0));
    appendField(json, "disconnects", all.disconnects);
    if (chat) {
        appendField(json, "unsent", all.unsent);
    } else {
        appendField(json, "publish_failures", publish_failures);
    }
    appendField(json, "elapsed_s", elapsed_s, "%.3f");
    appendField(json, "delivered_per_s", per_s, "%.1f");
    json += ",\"latency_us\":";
    appendLatency(json, all.latency_us);
    appendField(json, "loadgen_cpu_s", cpu_s, "%.3f");
    appendField(json, "loadgen_cpu_total_s", m.cpu_end, "%.3f");
    appendField(json, "loadgen_cpu_us_per_delivery",
                all.delivered ? cpu_s * 1e6 / double(all.delivered) : 0, "%.3f");
    if (start_ns != 0) server.appendCpu(json, "delivery", all.delivered);
    std::string first_error = state.firstError();
    emitReport(json, first_error);

    const double server_cpu_s = start_ns != 0 ? server.cpuSeconds() : -1;
    std::fprintf(stderr,
                 "%s %s: %u %s, %llu offered, %llu delivered (%.0f/s), loss %llu, "
                 "dup %llu, ooo %llu, p50 %llu us, p99 %llu us, p999 %llu us, max %llu us, "
                 "loadgen CPU %.2f s",
                 chat ? "chat" : "fanout", m.outcome.c_str(), state.subscribers,
                 chat ? "clients" : "subscribers", static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(all.delivered), per_s,
                 static_cast<unsigned long long>(loss),
                 static_cast<unsigned long long>(all.duplicates),
                 static_cast<unsigned long long>(all.out_of_order),
                 static_cast<unsigned long long>(all.latency_us.quantile(0.5)),
                 static_cast<unsigned long long>(all.latency_us.quantile(0.99)),
                 static_cast<unsigned long long>(all.latency_us.quantile(0.999)),
                 static_cast<unsigned long long>(all.latency_us.max()), cpu_s);
    if (server_cpu_s >= 0) std::fprintf(stderr, ", server CPU %.2f s", server_cpu_s);
    std::fprintf(stderr, "%s%s\n",
                 first_error.empty() ? "" : "; first error: ", first_error.c_str());

    const bool finished = m.outcome == "complete" || m.outcome == "drain_timeout";
    if (!finished) return 1;
    if (o.allow_loss) return 0;
    return loss == 0 && all.duplicates == 0 && publish_failures == 0 ? 0 : 1;
}

}  // namespace

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
    const uint64_t publisher_sockets =
        o.publish_via == PublishVia::Http ? uint64_t(o.http_connections) : o.channels;
    if (!prepare(state, uint64_t(o.subscribers) + publisher_sockets)) return 2;
    ServerProcesses server(o.server_pids);

    const uint64_t t0 = nowNs();
    Threads threads(state);
    Publisher publisher(state, threads.loops[0]->poller());
    if (!publisher.start()) state.setup_failed = true;
    threads.start(&publisher);
    Measurement m = coordinate(state, server, t0);
    threads.join();
    m.cpu_end = selfCpuSeconds();
    server.endCpu();
    return report(state, threads, server, m, publisher.sent(), publisher.startNs(),
                  publisher.failures());
}

int runChat(const Options& o) {
    RunState state(o);
    state.subscribers = o.subscribers;
    for (uint32_t c = 0; c < o.channels; ++c) {
        state.channel_names.push_back(o.channel + "-" + std::to_string(c));
    }
    if (!prepare(state, o.subscribers)) return 2;
    ServerProcesses server(o.server_pids);

    const uint64_t t0 = nowNs();
    Threads threads(state);
    threads.start(nullptr);
    Measurement m = coordinate(state, server, t0);
    threads.join();
    m.cpu_end = selfCpuSeconds();
    server.endCpu();
    // Unless every thread finished, count only the messages every thread got through.
    uint64_t sent = state.final_sent.load();
    if (sent == UINT64_MAX) {
        sent = o.count;
        for (const auto& loop : threads.loops) sent = std::min(sent, loop->chatProgress());
    }
    return report(state, threads, server, m, sent, state.measure_start_ns.load(), 0);
}

int runIdle(const Options& o) {
    RunState state(o);
    state.subscribers = o.connections;
    for (uint32_t i = 0; i < o.connections; ++i) {
        state.channel_names.push_back("idle-" + std::to_string(i));
    }
    if (!prepare(state, o.connections)) return 2;
    ServerProcesses server(o.server_pids);
    const long rss_before = server.rssKib();

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
            const long rss_after = server.rssKib();
            std::string json = "{\"mode\":\"idle\",\"ready\":true";
            appendField(json, "protocol", protocolName(o.protocol));
            appendField(json, "connections", uint64_t(o.connections));
            appendField(json, "setup_s", double(now - t0) / 1e9, "%.3f");
            appendField(json, "connections_per_s", double(o.connections) * 1e9 / double(now - t0),
                        "%.1f");
            server.appendRss(json, rss_before, rss_after, o.connections);
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

}  // namespace wsrelay::loadgen
