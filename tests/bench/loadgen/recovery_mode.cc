// recovery: subscribers on channels with history, spread over several relays; a publisher on the
// first relay publishes numbered messages on every channel at a steady rate; mid-run one relay
// (--drain-pid) gets SIGTERM and drains (docs/protocol.md, "Drain"): each of its subscribers
// reconnects to another relay and subscribes with "since" (recovery_thread.h). The report says
// whether every subscriber got every message exactly once, how long after the signal the last one
// had recovered, and, with --redis, the commands Redis ran meanwhile (its history reads).

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "modes.h"
#include "process_info.h"
#include "publisher.h"
#include "recovery_thread.h"
#include "redis_info.h"
#include "run_state.h"
#include "server_processes.h"

namespace wsrelay::loadgen {
namespace {

constexpr auto kCoordinatorTick = std::chrono::milliseconds(2);
constexpr uint64_t kExitGraceNs = 500'000'000;

bool parseEndpoints(const std::vector<std::string>& urls, const std::string& headers,
                    std::vector<Endpoint>& out) {
    for (const std::string& url : urls) {
        Endpoint ep;
        std::string error;
        if (!parseWsUrl(url, ep, error)) {
            std::fprintf(stderr, "wsrelay_loadgen: %s\n", error.c_str());
            return false;
        }
        ep.headers = headers;
        out.push_back(std::move(ep));
    }
    return true;
}

// INFO commandstats at one moment; `ok` false (and the error reported) when it could not be read.
struct Snapshot {
    bool ok = false;
    CommandCalls calls;
};

Snapshot snapshot(RunState& state) {
    Snapshot s;
    if (state.options.redis.empty()) return s;
    std::string error;
    s.ok = readCommandCalls(state.options.redis, s.calls, error);
    if (!s.ok) state.reportError(error);
    return s;
}

// ,"NAME":{"cmd":calls,...} with every command Redis ran between the two snapshots (INFO itself
// left out), or nothing when either is missing.
void appendCalls(std::string& json, const char* name, const Snapshot& a, const Snapshot& b) {
    if (!a.ok || !b.ok) return;
    json += ",\"";
    json += name;
    json += "\":{";
    bool first = true;
    for (const auto& [cmd, calls] : callsBetween(a.calls, b.calls)) {
        if (calls == 0 || cmd == "info") continue;
        if (!first) json += ',';
        first = false;
        appendJsonString(json, cmd);
        json += ':';
        json += std::to_string(calls);
    }
    json += '}';
}

uint64_t callsOf(const Snapshot& a, const Snapshot& b, const char* cmd) {
    if (!a.ok || !b.ok) return 0;
    const CommandCalls d = callsBetween(a.calls, b.calls);
    auto it = d.find(cmd);
    return it == d.end() ? 0 : it->second;
}

double secondsBetween(uint64_t from_ns, uint64_t to_ns) {
    return from_ns != 0 && to_ns >= from_ns ? double(to_ns - from_ns) / 1e9 : -1;
}

}  // namespace

int runRecovery(const Options& o) {
    RunState state(o);
    state.subscribers = o.subscribers;
    if (o.channels == 1) {
        state.channel_names.push_back(o.channel);
    } else {
        for (uint32_t c = 0; c < o.channels; ++c) {
            state.channel_names.push_back(o.channel + "-" + std::to_string(c));
        }
    }
    if (!parseEndpoints(o.urls, o.headers, state.endpoints)) return 2;
    std::vector<Endpoint> targets = state.endpoints;
    if (!parseEndpoints(o.spare_urls, o.headers, targets)) return 2;
    if (uint64_t(o.subscribers) + 1 + 32 > raiseFileLimit()) {
        std::fprintf(stderr, "wsrelay_loadgen: %u subscribers need more than the open-file limit\n",
                     o.subscribers);
        return 2;
    }
    RecoveryShared shared(std::move(targets));
    ServerProcesses server(o.server_pids);

    const uint64_t t0 = nowNs();
    const uint64_t deadline = t0 + uint64_t(o.timeout_s * 1e9);
    const Snapshot at_start = snapshot(state);
    std::vector<std::unique_ptr<RecoveryThread>> loops;
    for (int i = 0; i < o.threads; ++i) {
        loops.push_back(std::make_unique<RecoveryThread>(state, shared, i));
    }
    Publisher publisher(state, loops[0]->poller());
    if (!publisher.start()) state.setup_failed = true;
    std::vector<std::thread> threads;
    for (size_t i = 0; i < loops.size(); ++i) {
        RecoveryThread* loop = loops[i].get();
        Publisher* p = i == 0 ? &publisher : nullptr;
        threads.emplace_back([loop, p] { loop->run(p); });
    }

    // The phases: setup, the optional warm-up, then publishing, the drain signal at
    // --drain-after, and the end once everything published has arrived, the drained relay has
    // exited and no subscriber is still recovering.
    std::string outcome;
    uint64_t setup_ns = 0, warmup_start = 0, warmup_ns = 0, final_seen_ns = 0;
    uint64_t drain_ns = 0, exited_ns = 0, settled_ns = 0;
    double cpu_at_start = 0;
    Snapshot before_drain, after_recovery;
    while (outcome.empty()) {
        std::this_thread::sleep_for(kCoordinatorTick);
        const uint64_t now = nowNs();
        const Phase phase = state.phase.load();
        auto startMeasure = [&] {
            cpu_at_start = selfCpuSeconds();
            server.markCpu();
            state.measure_start_ns.store(now, std::memory_order_release);
            state.phase.store(Phase::Measure, std::memory_order_release);
        };
        if (signalled()) {
            outcome = "interrupted";
        } else if (state.setup_failed) {
            outcome = "failed";
        } else if (now > deadline) {
            outcome = "timeout";
        } else if (phase == Phase::Setup) {
            if (state.acked.load() == state.subscribers && state.publisher_ready) {
                setup_ns = now - t0;
                if (o.warmup) {
                    warmup_start = now;
                    state.phase.store(Phase::WarmUp, std::memory_order_release);
                } else {
                    startMeasure();
                }
            }
        } else if (phase == Phase::WarmUp) {
            if (state.warmed.load() == state.subscribers) {
                warmup_ns = now - warmup_start;
                startMeasure();
            } else if (now - warmup_start > uint64_t(o.warmup_timeout_s * 1e9)) {
                outcome = "failed";
                state.reportError("warm-up: not every subscriber received a warm-up message");
            }
        } else {
            if (drain_ns == 0 &&
                now - state.measure_start_ns.load() >= uint64_t(o.drain_after_s * 1e9)) {
                before_drain = snapshot(state);
                if (::kill(o.drain_pid, SIGTERM) != 0) {
                    state.reportError("kill " + std::to_string(o.drain_pid) + ": " +
                                      std::strerror(errno));
                    outcome = "failed";
                    continue;
                }
                drain_ns = nowNs();
            }
            if (drain_ns != 0 && exited_ns == 0 && !processRunning(o.drain_pid)) {
                exited_ns = now;
            }
            // The drained relay's last closes may still be on their way to the threads when
            // it has exited: they are counted once the threads read them, so wait a little.
            if (exited_ns != 0 && settled_ns == 0 && now - exited_ns >= kExitGraceNs &&
                shared.recovering.load() == 0) {
                settled_ns = now;
                after_recovery = snapshot(state);
            }
            if (state.final_sent.load() != UINT64_MAX) {
                if (final_seen_ns == 0) final_seen_ns = now;
                if (state.threads_done.load() == o.threads && settled_ns != 0) {
                    outcome = "complete";
                } else if (now - final_seen_ns > uint64_t(o.drain_timeout_s * 1e9)) {
                    outcome = "drain_timeout";
                }
            }
        }
    }
    state.stop = true;
    for (std::thread& t : threads) t.join();
    const double cpu_end = selfCpuSeconds();
    server.endCpu();
    if (drain_ns != 0 && settled_ns == 0) after_recovery = snapshot(state);

    RecoveryStats all;
    for (const auto& loop : loops) all.merge(loop->stats());
    const uint64_t sent = publisher.sent();
    uint64_t expected = 0;
    for (const auto& loop : loops) expected += loop->expectedTotal(sent);
    const uint64_t loss = expected > all.unique ? expected - all.unique : 0;
    const uint64_t start_ns = publisher.startNs();
    const double cpu_s = start_ns == 0 ? 0 : cpu_end - cpu_at_start;
    // Every history publish runs one XADD inside its FCALL, so the other FCALLs are history
    // reads; a read with nothing to return (since = the top) runs no XRANGE/XREVRANGE.
    const uint64_t fcalls = callsOf(before_drain, after_recovery, "fcall");
    const uint64_t xadds = callsOf(before_drain, after_recovery, "xadd");
    const uint64_t history_reads = fcalls > xadds ? fcalls - xadds : 0;
    const uint64_t stream_reads = callsOf(before_drain, after_recovery, "xrange") +
                                  callsOf(before_drain, after_recovery, "xrevrange");

    std::string json = "{\"mode\":\"recovery\",\"outcome\":";
    appendJsonString(json, outcome);
    appendCount(json, "subscribers", state.subscribers);
    appendCount(json, "channels", state.channel_names.size());
    appendCount(json, "urls", o.urls.size());
    appendCount(json, "spare_urls", o.spare_urls.size());
    appendCount(json, "threads", uint64_t(o.threads));
    appendNumber(json, "rate", o.rate);
    appendCount(json, "size", o.size);
    appendNumber(json, "drain_after_s", o.drain_after_s);
    appendNumber(json, "reconnect_jitter_ms", o.reconnect_jitter_ms);
    appendNumber(json, "setup_s", double(setup_ns) / 1e9, "%.3f");
    appendNumber(json, "warmup_s", double(warmup_ns) / 1e9, "%.3f");
    appendCount(json, "offered", sent);
    appendCount(json, "expected", expected);
    appendCount(json, "delivered", all.delivered);
    appendCount(json, "unique", all.unique);
    appendCount(json, "loss", loss);
    appendCount(json, "duplicates", all.duplicates);
    appendCount(json, "out_of_order", all.out_of_order);
    appendCount(json, "offset_errors", all.offset_errors);
    appendCount(json, "epoch_changes", all.epoch_changes);
    appendCount(json, "unexpected", all.unexpected);
    appendCount(json, "error_frames", all.error_frames + publisher.failures());
    appendCount(json, "no_position", all.no_position);
    appendCount(json, "reconnect_notices", all.reconnect_notices);
    appendCount(json, "drain_closes", all.drain_closes);
    appendCount(json, "disconnects", all.disconnects);
    appendCount(json, "reconnect_failures", all.reconnect_failures);
    appendCount(json, "recovered", all.recovered);
    appendCount(json, "not_recovered", all.not_recovered);
    appendCount(json, "ack_mismatches", all.ack_mismatches);
    appendCount(json, "recovered_messages", all.recovered_messages);
    appendNumber(json, "drain_to_first_close_s", secondsBetween(drain_ns, all.first_close_ns),
                 "%.3f");
    appendNumber(json, "drain_to_last_close_s", secondsBetween(drain_ns, all.last_close_ns),
                 "%.3f");
    appendNumber(json, "drain_to_exit_s", secondsBetween(drain_ns, exited_ns), "%.3f");
    appendNumber(json, "drain_to_last_recovered_s", secondsBetween(drain_ns, all.last_recovered_ns),
                 "%.3f");
    const Histogram& r = all.recovery_us;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  ",\"recovery_ms\":{\"count\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
                  static_cast<unsigned long long>(r.count()), double(r.quantile(0.5)) / 1e3,
                  double(r.quantile(0.99)) / 1e3, double(r.max()) / 1e3);
    json += buf;
    const Histogram& l = all.latency_us;
    std::snprintf(buf, sizeof buf, ",\"latency_us\":{\"p50\":%llu,\"p99\":%llu,\"max\":%llu}",
                  static_cast<unsigned long long>(l.quantile(0.5)),
                  static_cast<unsigned long long>(l.quantile(0.99)),
                  static_cast<unsigned long long>(l.max()));
    json += buf;
    appendCalls(json, "redis_calls_setup", at_start, before_drain);
    appendCalls(json, "redis_calls_recovery", before_drain, after_recovery);
    if (before_drain.ok && after_recovery.ok) {
        appendCount(json, "history_reads", history_reads);
        appendCount(json, "stream_reads", stream_reads);
    }
    appendNumber(json, "loadgen_cpu_s", cpu_s, "%.3f");
    if (start_ns != 0) server.appendCpu(json, "delivery", all.delivered);
    const std::string first_error = state.firstError();
    emitReport(json, first_error);

    std::fprintf(stderr,
                 "recovery %s: %u subscribers, %llu offered, %llu delivered, loss %llu, dup %llu, "
                 "offset errors %llu; %llu closed by the drain, %llu recovered, %llu not "
                 "recovered (%llu messages recovered); last recovered %.3f s after the signal "
                 "(recovery p50 %.1f ms, max %.1f ms)",
                 outcome.c_str(), state.subscribers, static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(all.delivered),
                 static_cast<unsigned long long>(loss),
                 static_cast<unsigned long long>(all.duplicates),
                 static_cast<unsigned long long>(all.offset_errors),
                 static_cast<unsigned long long>(all.drain_closes),
                 static_cast<unsigned long long>(all.recovered),
                 static_cast<unsigned long long>(all.not_recovered),
                 static_cast<unsigned long long>(all.recovered_messages),
                 secondsBetween(drain_ns, all.last_recovered_ns), double(r.quantile(0.5)) / 1e3,
                 double(r.max()) / 1e3);
    if (before_drain.ok && after_recovery.ok) {
        std::fprintf(stderr, "; Redis history reads %llu (XRANGE+XREVRANGE %llu)",
                     static_cast<unsigned long long>(history_reads),
                     static_cast<unsigned long long>(stream_reads));
    }
    std::fprintf(stderr, "%s%s\n",
                 first_error.empty() ? "" : "; first error: ", first_error.c_str());

    if (outcome != "complete" && outcome != "drain_timeout") return 1;
    if (o.allow_loss) return 0;
    const bool clean = loss == 0 && all.duplicates == 0 && all.offset_errors == 0 &&
                       all.not_recovered == 0 && all.ack_mismatches == 0 && all.no_position == 0 &&
                       all.disconnects == 0 && all.error_frames == 0 && publisher.failures() == 0 &&
                       all.drain_closes > 0;
    return clean ? 0 : 1;
}

}  // namespace wsrelay::loadgen
