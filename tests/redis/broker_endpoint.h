#pragma once

// For tests of brokers against real Redis processes: one worker's worth of broker (its own libev
// loop, flushed once per turn by an ev_prepare watcher, as a worker does) with a handler that
// records everything it is told; and a bounded runner for redis-cli.
#include <ev.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "adapters/broker.h"

namespace wsrelay::testing {

class Endpoint final : public BrokerHandler {
public:
    Endpoint(BrokerFactory& factory, int index) {
        loop = ev_loop_new(EVFLAG_AUTO);
        broker = factory.create(index, loop, *this);
        ev_prepare_init(&prepare_, onPrepare);
        prepare_.data = this;
        ev_prepare_start(loop, &prepare_);
        ev_timer_init(&tick_, onTick, 0.005, 0.005);
        ev_timer_start(loop, &tick_);
    }
    ~Endpoint() override {
        destroyBroker();
        ev_prepare_stop(loop, &prepare_);
        ev_timer_stop(loop, &tick_);
        ev_loop_destroy(loop);
    }

    // From here on the handler must hear nothing more: every callback checks it.
    void destroyBroker() {
        broker.reset();
        destroyed_ = true;
    }

    template <typename B>
    B& as() {
        return static_cast<B&>(*broker);
    }
    bool up() const { return broker && broker->usable(); }
    int ups() const {
        int n = 0;
        for (const auto& s : states) n += s.first == BrokerState::Up;
        return n;
    }
    int downs() const { return static_cast<int>(states.size()) - ups(); }
    std::vector<std::string> dataOf(const std::string& channel) const {
        std::vector<std::string> out;
        for (const auto& [c, d] : messages) {
            if (c == channel) out.push_back(d);
        }
        return out;
    }

    void onBrokerMessage(std::string_view channel, std::string_view data, int64_t entered_us,
                         uint64_t offset, std::string_view epoch) override {
        EXPECT_FALSE(destroyed_) << "message after the broker was destroyed";
        messages.emplace_back(std::string(channel), std::string(data));
        stamps.push_back(entered_us);
        positions.push_back(StreamPosition{offset, std::string(epoch)});
    }
    void onSubscribed(std::string_view channel) override {
        EXPECT_FALSE(destroyed_) << "subscription confirmed after the broker was destroyed";
        EXPECT_FALSE(in_subscribe) << "subscription confirmed from inside subscribe()";
        subscribed.emplace_back(channel);
    }
    void onBrokerProbe(double round_trip_s) override {
        EXPECT_FALSE(destroyed_) << "probe after the broker was destroyed";
        EXPECT_GE(round_trip_s, 0.0);
        ++probes;
    }
    void onHistoryTrimmed(uint64_t messages) override {
        EXPECT_FALSE(destroyed_) << "trim reported after the broker was destroyed";
        EXPECT_FALSE(in_publish) << "trim reported from inside publish()";
        EXPECT_GT(messages, 0u);
        trimmed += messages;
    }
    void onBrokerAttemptFailed(std::string_view reason) override {
        EXPECT_FALSE(destroyed_) << "failed attempt reported after the broker was destroyed";
        attempt_failures.emplace_back(reason);
    }
    void onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset,
                         std::string_view epoch) override {
        EXPECT_FALSE(destroyed_) << "publish result after the broker was destroyed";
        EXPECT_FALSE(in_publish) << "publish result reported from inside publish()";
        results.emplace_back(ticket.request_id, status);
        published_at.push_back(StreamPosition{offset, std::string(epoch)});
    }
    void onHistory(uint64_t token, HistoryAnswer&& answer) override {
        EXPECT_FALSE(destroyed_) << "history after the broker was destroyed";
        EXPECT_FALSE(in_read) << "history answered from inside readHistory()";
        histories.emplace_back(token, std::move(answer));
    }
    void onFleetReply(uint64_t token, FleetReply&& reply) override {
        EXPECT_FALSE(destroyed_) << "fleet reply after the broker was destroyed";
        EXPECT_FALSE(in_fleet_call) << "fleet reply from inside fleetCall()";
        fleet_replies.emplace_back(token, std::move(reply));
    }
    void onBrokerState(BrokerState state, bool gap) override {
        EXPECT_FALSE(destroyed_) << "state change after the broker was destroyed";
        states.emplace_back(state, gap);
    }

    void subscribe(const std::string& channel) {
        in_subscribe = true;
        broker->subscribe(channel);
        in_subscribe = false;
    }
    int confirmations(const std::string& channel) const {
        int n = 0;
        for (const std::string& c : subscribed) n += c == channel;
        return n;
    }

    void publish(const std::string& channel, const std::string& data, uint64_t id,
                 int64_t entered_us = 0) {
        in_publish = true;
        broker->publish(channel, data, PublishTicket{1, id, true, entered_us}, HistoryPolicy{});
        in_publish = false;
    }

    void publish(const std::string& channel, const std::string& data, uint64_t id,
                 const HistoryPolicy& history, int64_t entered_us = 0) {
        in_publish = true;
        broker->publish(channel, data, PublishTicket{1, id, true, entered_us}, history);
        in_publish = false;
    }
    void readHistory(const std::string& channel, const HistoryRequest& request) {
        in_read = true;
        broker->readHistory(channel, request);
        in_read = false;
    }
    void fleetCall(uint64_t token, std::string function, std::string key,
                   std::vector<std::string> args) {
        in_fleet_call = true;
        broker->fleetCall(FleetCall{token, std::move(function), std::move(key), std::move(args)});
        in_fleet_call = false;
    }
    // The reply to the fleet call with `token`; null until it came.
    const FleetReply* fleetReply(uint64_t token) const {
        for (const auto& [t, reply] : fleet_replies) {
            if (t == token) return &reply;
        }
        return nullptr;
    }
    // The answer to the read with `token`; null until it came.
    const HistoryAnswer* history(uint64_t token) const {
        for (const auto& [t, answer] : histories) {
            if (t == token) return &answer;
        }
        return nullptr;
    }
    // The positions of the messages on `channel`, in order.
    std::vector<StreamPosition> positionsOf(const std::string& channel) const {
        std::vector<StreamPosition> out;
        for (size_t i = 0; i < messages.size(); ++i) {
            if (messages[i].first == channel) out.push_back(positions[i]);
        }
        return out;
    }

    struct ev_loop* loop = nullptr;
    BrokerPtr broker;
    std::vector<std::pair<std::string, std::string>> messages;
    std::vector<std::string> subscribed;  // onSubscribed, in order
    std::vector<std::pair<uint64_t, PublishStatus>> results;
    std::vector<std::pair<BrokerState, bool>> states;
    std::vector<std::string> attempt_failures;  // onBrokerAttemptFailed, in order
    std::vector<int64_t> stamps;                // entered_us of each message, in order
    std::vector<StreamPosition> positions;      // offset and epoch of each message, in order
    std::vector<StreamPosition> published_at;   // of each publish result, in order
    std::vector<std::pair<uint64_t, HistoryAnswer>> histories;   // onHistory, in order
    std::vector<std::pair<uint64_t, FleetReply>> fleet_replies;  // onFleetReply, in order
    int probes = 0;
    uint64_t trimmed = 0;  // the sum of onHistoryTrimmed
    bool in_publish = false;
    bool in_read = false;
    bool in_subscribe = false;
    bool in_fleet_call = false;

private:
    static void onPrepare(struct ev_loop*, ev_prepare* w, int) {
        auto* self = static_cast<Endpoint*>(w->data);
        if (self->broker) self->broker->flush();
    }
    static void onTick(struct ev_loop*, ev_timer*, int) {}

    ev_prepare prepare_{};
    ev_timer tick_{};
    bool destroyed_ = false;
};

// Runs a tool to completion within `limit`; its exit status, or -1 (killed on timeout).
inline int runTool(std::vector<std::string> args, std::chrono::seconds limit) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        const int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv.data());
        _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        const timespec pause{0, 10 * 1000 * 1000};  // between polls of a child process
        nanosleep(&pause, nullptr);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
}

}  // namespace wsrelay::testing
