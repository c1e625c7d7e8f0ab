#include "recovery_thread.h"

#include <charconv>

#include "message_format.h"
#include "process_info.h"
#include "publisher.h"

namespace wsrelay::loadgen {
namespace {

constexpr uint64_t kRetryNs = 100'000'000;  // after a reconnect that failed

// The "offset" and "epoch" of an ack (or of any frame whose first such fields are its own), and
// its "recovered".
struct AckFields {
    bool has_position = false;
    uint64_t offset = 0;
    std::string_view epoch;
    enum class Recovered { Absent, Yes, No } recovered = Recovered::Absent;
};

AckFields readAck(std::string_view frame) {
    AckFields a;
    constexpr std::string_view kOffset = R"("offset":)";
    constexpr std::string_view kEpoch = R"("epoch":")";
    const size_t o = frame.find(kOffset);
    const size_t e = frame.find(kEpoch);
    if (o != std::string_view::npos && e != std::string_view::npos) {
        const char* first = frame.data() + o + kOffset.size();
        auto [ptr, ec] = std::from_chars(first, frame.data() + frame.size(), a.offset);
        const size_t start = e + kEpoch.size();
        const size_t end = frame.find('"', start);
        if (ec == std::errc() && end != std::string_view::npos) {
            a.has_position = true;
            a.epoch = frame.substr(start, end - start);
        }
    }
    if (frame.find(R"("recovered":true)") != std::string_view::npos) {
        a.recovered = AckFields::Recovered::Yes;
    } else if (frame.find(R"("recovered":false)") != std::string_view::npos) {
        a.recovered = AckFields::Recovered::No;
    }
    return a;
}

}  // namespace

void RecoveryStats::merge(const RecoveryStats& o) {
    delivered += o.delivered;
    unique += o.unique;
    duplicates += o.duplicates;
    out_of_order += o.out_of_order;
    unexpected += o.unexpected;
    error_frames += o.error_frames;
    offset_errors += o.offset_errors;
    epoch_changes += o.epoch_changes;
    reconnect_notices += o.reconnect_notices;
    drain_closes += o.drain_closes;
    disconnects += o.disconnects;
    reconnect_failures += o.reconnect_failures;
    recovered += o.recovered;
    not_recovered += o.not_recovered;
    no_position += o.no_position;
    ack_mismatches += o.ack_mismatches;
    recovered_messages += o.recovered_messages;
    if (o.first_close_ns != 0 && (first_close_ns == 0 || o.first_close_ns < first_close_ns)) {
        first_close_ns = o.first_close_ns;
    }
    last_close_ns = std::max(last_close_ns, o.last_close_ns);
    last_recovered_ns = std::max(last_recovered_ns, o.last_recovered_ns);
    last_rx_ns = std::max(last_rx_ns, o.last_rx_ns);
    latency_us.merge(o.latency_us);
    recovery_us.merge(o.recovery_us);
}

RecoveryThread::RecoveryThread(RunState& state, RecoveryShared& shared, int thread_index)
    : state_(state), shared_(shared) {
    const int threads = state.options.threads;
    max_opening_ = std::max(1, state.options.connect_concurrency / threads);
    rng_ = uint32_t(nowNs()) ^ (uint32_t(thread_index) * 2654435761u) ^ 1u;
    const uint64_t urls = state.endpoints.size();
    for (uint64_t g = uint64_t(thread_index); g < state.subscribers; g += uint64_t(threads)) {
        Subscriber sub;
        sub.global = g;
        sub.channel = state.channelOf(g);
        sub.target = uint32_t(g % urls);
        tracker_.addStreams(1);
        sub.conn = std::make_unique<WsConnection>(poller_, *this, uint32_t(subs_.size()));
        subs_.push_back(std::move(sub));
    }
}

RecoveryThread::~RecoveryThread() = default;

uint64_t RecoveryThread::expectedTotal(uint64_t sent) const {
    uint64_t total = 0;
    for (const Subscriber& sub : subs_) total += state_.expectedFor(sub.channel, sent);
    return total;
}

void RecoveryThread::openMore() {
    while (opening_ < max_opening_ && next_to_open_ < subs_.size() && !state_.setup_failed) {
        Subscriber& sub = subs_[next_to_open_++];
        sub.step = Step::Opening;
        if (!sub.conn->start(shared_.targets[sub.target],
                             sourceAddress(sub.global, state_.options.sources))) {
            state_.reportError("subscriber " + std::to_string(sub.global) + ": " +
                               sub.conn->error());
            state_.setup_failed = true;
            return;
        }
        ++opening_;
    }
}

void RecoveryThread::run(Publisher* publisher) {
    while (!state_.stop.load(std::memory_order_relaxed)) {
        openMore();
        int timeout_ms = 5;
        if (publisher != nullptr) {
            publisher->tick();
            if (publisher->active()) timeout_ms = 1;
        }
        if (!waiting_.empty()) {
            retryDue(nowNs());
            timeout_ms = 1;
        }
        poller_.poll(timeout_ms);
        checkDone();
    }
}

void RecoveryThread::checkDone() {
    if (done_) return;
    const uint64_t sent = state_.final_sent.load(std::memory_order_acquire);
    if (sent == UINT64_MAX || !waiting_.empty()) return;
    for (const Subscriber& sub : subs_) {
        if (sub.step != Step::Live) return;
    }
    if (stats_.unique >= expectedTotal(sent)) {
        done_ = true;
        state_.threads_done.fetch_add(1);
    }
}

void RecoveryThread::retryDue(uint64_t now) {
    for (size_t i = 0; i < waiting_.size();) {
        Subscriber& sub = subs_[waiting_[i]];
        if (sub.retry_ns > now) {
            ++i;
            continue;
        }
        waiting_[i] = waiting_.back();
        waiting_.pop_back();
        reconnect(sub);
    }
}

void RecoveryThread::reconnect(Subscriber& sub) {
    // Any relay but the one just left and those seen draining, spread evenly.
    std::vector<uint32_t> candidates;
    for (uint32_t t = 0; t < shared_.targets.size(); ++t) {
        if (t != sub.target && !shared_.draining[t].load(std::memory_order_relaxed)) {
            candidates.push_back(t);
        }
    }
    if (candidates.empty()) {
        state_.reportError("subscriber " + std::to_string(sub.global) +
                           ": every other relay is draining");
        sub.retry_ns = nowNs() + kRetryNs;
        waiting_.push_back(uint32_t(&sub - subs_.data()));
        return;
    }
    // By the subscriber's rank on its first relay: every subscriber a relay had shares g % U.
    const uint64_t rank = sub.global / state_.endpoints.size();
    sub.target = candidates[(rank + sub.attempts++) % candidates.size()];
    sub.step = Step::Recovering;
    if (!sub.conn->start(shared_.targets[sub.target],
                         sourceAddress(sub.global, state_.options.sources))) {
        ++stats_.reconnect_failures;
        state_.reportError("subscriber " + std::to_string(sub.global) +
                           " reconnecting: " + sub.conn->error());
        sub.step = Step::Waiting;
        sub.retry_ns = nowNs() + kRetryNs;
        waiting_.push_back(uint32_t(&sub - subs_.data()));
    }
}

void RecoveryThread::onOpen(WsConnection& conn) {
    Subscriber& sub = subs_[conn.index()];
    std::string cmd = "{\"op\":\"subscribe\",\"channel\":\"";
    cmd += state_.channel_names[sub.channel];
    cmd += '"';
    if (sub.step == Step::Recovering && sub.has_position) {
        cmd += ",\"since\":{\"offset\":";
        cmd += std::to_string(sub.offset);
        cmd += ",\"epoch\":\"";
        cmd += sub.epoch;
        cmd += "\"}";
    }
    cmd += ",\"id\":";
    cmd += std::to_string(sub.next_id++);
    cmd += '}';
    conn.sendText(cmd);
}

void RecoveryThread::onText(WsConnection& conn, std::string_view message) {
    Subscriber& sub = subs_[conn.index()];
    if (message.find("\"op\":\"message\"") != std::string_view::npos) {
        onMessage(sub, message);
    } else if (message.find("\"op\":\"ack\"") != std::string_view::npos) {
        onAck(sub, message);
    } else if (message.find("\"op\":\"reconnect\"") != std::string_view::npos) {
        ++stats_.reconnect_notices;
    } else if (message.find("\"op\":\"error\"") != std::string_view::npos) {
        ++stats_.error_frames;
        state_.reportError("subscriber " + std::to_string(sub.global) +
                           " got: " + std::string(message.substr(0, 200)));
        if (sub.step == Step::Opening) {
            state_.setup_failed = true;
        } else if (sub.step == Step::Recovering) {
            // The subscribe was refused: nothing more arrives; the loss shows in the report.
            ++stats_.not_recovered;
            shared_.recovering.fetch_sub(1, std::memory_order_relaxed);
            sub.step = Step::Live;
        }
    }
}

void RecoveryThread::onAck(Subscriber& sub, std::string_view message) {
    const AckFields ack = readAck(message);
    const uint64_t now = nowNs();
    if (sub.step == Step::Opening) {
        if (!ack.has_position) {
            ++stats_.no_position;
        } else if (!sub.has_position) {
            sub.has_position = true;
            sub.offset = ack.offset;
            sub.epoch.assign(ack.epoch);
        }
        sub.step = Step::Live;
        --opening_;
        state_.acked.fetch_add(1, std::memory_order_release);
        return;
    }
    if (sub.step != Step::Recovering) return;
    if (ack.recovered == AckFields::Recovered::Yes) {
        ++stats_.recovered;
        if (!ack.has_position || ack.offset != sub.offset || ack.epoch != sub.epoch) {
            ++stats_.ack_mismatches;
            state_.reportError("subscriber " + std::to_string(sub.global) + " at offset " +
                               std::to_string(sub.offset) + " epoch " + sub.epoch +
                               " got the recovered ack " + std::string(message.substr(0, 200)));
        }
    } else {
        ++stats_.not_recovered;
        if (ack.has_position) {
            // Where the client would reload from; what it missed shows as loss.
            sub.has_position = true;
            sub.offset = ack.offset;
            sub.epoch.assign(ack.epoch);
        }
    }
    stats_.recovery_us.record((now - sub.lost_ns) / 1000);
    stats_.last_recovered_ns = std::max(stats_.last_recovered_ns, now);
    shared_.recovering.fetch_sub(1, std::memory_order_relaxed);
    sub.step = Step::Live;
    sub.attempts = 0;
}

void RecoveryThread::onMessage(Subscriber& sub, std::string_view message) {
    const Delivery d =
        classifyFrame(message, Protocol::Wsrelay, state_.channel_names[sub.channel], false);
    if (d.kind != Delivery::Kind::Measured && d.kind != Delivery::Kind::Warmup) {
        ++stats_.unexpected;
        return;
    }
    if (d.offset != 0) {
        if (sub.has_position && d.epoch == sub.epoch) {
            if (d.offset != sub.offset + 1) {
                ++stats_.offset_errors;
                state_.reportError("subscriber " + std::to_string(sub.global) + " at offset " +
                                   std::to_string(sub.offset) + " got offset " +
                                   std::to_string(d.offset));
            }
        } else {
            if (sub.has_position) ++stats_.epoch_changes;
            sub.epoch.assign(d.epoch);
            sub.has_position = true;
        }
        sub.offset = d.offset;
    }
    if (sub.step == Step::Recovering) ++stats_.recovered_messages;
    if (d.kind == Delivery::Kind::Warmup) {
        if (!sub.warmed) {
            sub.warmed = true;
            state_.warmed.fetch_add(1, std::memory_order_release);
        }
        return;
    }
    const SequenceTracker::Result result = tracker_.record(size_t(&sub - subs_.data()), d.seq);
    if (result == SequenceTracker::Result::OutOfRange) {
        ++stats_.unexpected;
        return;
    }
    const uint64_t now = nowNs();
    ++stats_.delivered;
    stats_.last_rx_ns = now;
    stats_.latency_us.record(now > d.sent_ns ? (now - d.sent_ns) / 1000 : 0);
    switch (result) {
        case SequenceTracker::Result::InOrder: ++stats_.unique; break;
        case SequenceTracker::Result::Late:
            ++stats_.unique;
            ++stats_.out_of_order;
            break;
        case SequenceTracker::Result::Duplicate: ++stats_.duplicates; break;
        case SequenceTracker::Result::OutOfRange: break;
    }
}

void RecoveryThread::onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) {
    Subscriber& sub = subs_[conn.index()];
    const std::string what = "subscriber " + std::to_string(sub.global) + " closed (" +
                             std::to_string(close_code) + ")" +
                             (error.empty() ? "" : ": " + std::string(error));
    switch (sub.step) {
        case Step::Opening:
            --opening_;
            state_.setup_failed = true;
            state_.reportError(what);
            return;
        case Step::Live: lost(sub, close_code, error); return;
        case Step::Recovering:
            // The reconnect did not reach its ack (a relay that drains closes new connections
            // with 1001 at once): try another.
            ++stats_.reconnect_failures;
            if (close_code == 1001) shared_.draining[sub.target] = true;
            sub.step = Step::Waiting;
            sub.retry_ns = nowNs() + kRetryNs;
            waiting_.push_back(conn.index());
            return;
        case Step::Idle:
        case Step::Waiting: return;
    }
}

void RecoveryThread::lost(Subscriber& sub, uint16_t close_code, std::string_view error) {
    const uint64_t now = nowNs();
    if (close_code == 1001) {
        ++stats_.drain_closes;
        if (stats_.first_close_ns == 0) stats_.first_close_ns = now;
        stats_.last_close_ns = now;
        shared_.draining[sub.target] = true;
    } else {
        ++stats_.disconnects;
        state_.reportError("subscriber " + std::to_string(sub.global) + " lost (" +
                           std::to_string(close_code) + ")" +
                           (error.empty() ? "" : ": " + std::string(error)));
    }
    shared_.recovering.fetch_add(1, std::memory_order_relaxed);
    sub.lost_ns = now;
    sub.step = Step::Waiting;
    uint64_t delay_ns = 0;
    const double jitter_ms = state_.options.reconnect_jitter_ms;
    if (jitter_ms > 0) {
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 17;
        rng_ ^= rng_ << 5;
        delay_ns = uint64_t(double(rng_) / 4294967296.0 * jitter_ms * 1e6);
    }
    sub.retry_ns = now + delay_ns;
    waiting_.push_back(uint32_t(&sub - subs_.data()));
}

}  // namespace wsrelay::loadgen
