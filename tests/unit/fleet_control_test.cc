// FleetControl and the fleet's names: commands out through the worker's fleet calls, replies
// counted against the publish's receiver count, handlers answered to the asker's inbox.
#include "relay/fleet/fleet_control.h"

#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "metrics/relay_metrics.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_id.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Destroyed last: FleetControl stops its timers on the loop when it goes.
struct OwnLoop {
    struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
    ~OwnLoop() { ev_loop_destroy(loop); }
};

struct ControlTest : ::testing::Test {
    ControlTest()
        : loop(own.loop), registry(1), metrics(registry.worker(0)), calls(&broker),
          control(loop, calls, FleetControl::Options{"abcd1234", 1, 0.05, 2}, &metrics) {}

    // Answers the publish call `index` with `receivers`.
    void answerPublish(size_t index, int64_t receivers) {
        FleetReply reply;
        reply.integer = receivers;
        calls.onReply(broker.fleet_calls.at(index).token, std::move(reply));
    }
    // The request id in the command of call `index`.
    std::string requestId(size_t index) {
        const std::string& data = broker.fleet_calls.at(index).args.at(0);
        const size_t start = data.find("\"q\":\"") + 5;
        return data.substr(start, data.find('"', start) - start);
    }
    void runUntil(const bool& flag) {
        for (int i = 0; i < 200 && !flag; ++i) ev_run(loop, EVRUN_ONCE);
    }

    OwnLoop own;
    struct ev_loop* loop;
    metrics::Registry registry;
    metrics::WorkerMetrics& metrics;
    testing::FakeBroker broker;  // keeps every fleet call for the test to answer
    FleetCalls calls;
    FleetControl control;
};

TEST(FleetId, ConnectionIdsRoundTrip) {
    const std::string instance = fleet::makeInstanceId();
    EXPECT_TRUE(fleet::validInstanceId(instance));
    EXPECT_NE(instance, fleet::makeInstanceId());
    const uint64_t session = (uint64_t{3} << 48) + 17;
    const std::string id = fleet::connectionId(instance, session);
    EXPECT_EQ(id, instance + ".844424930131985");
    auto ref = fleet::parseConnectionId(id);
    ASSERT_TRUE(ref.has_value());
    EXPECT_EQ(ref->instance, instance);
    EXPECT_EQ(ref->session, session);
    EXPECT_EQ(ref->worker, 3);
    EXPECT_EQ(fleet::workerAddress(instance, 3), instance + ".3");
    EXPECT_LE(id.size(), fleet::kMaxConnectionIdBytes);
}

TEST(FleetId, RefusesWhatIsNotAConnectionId) {
    for (const char* bad : {"", "abcd1234", "abcd1234.", "abcd1234.0", "abcd1234.01", "abcd1234.-1",
                            "abcd1234.1x", "ABCD1234.1", "abc.1", "abcd12345.1",
                            "abcd1234.99999999999999999999", "abcd1234 .1", "abcd1234.1.2"}) {
        EXPECT_FALSE(fleet::parseConnectionId(bad).has_value()) << bad;
    }
    EXPECT_TRUE(fleet::isFleetChannel("wsrelay:{fleet}:ctl"));
    EXPECT_FALSE(fleet::isFleetChannel("wsrelay:fleet:ctl"));
    EXPECT_EQ(fleet::inboxChannel("abcd1234.1"), "wsrelay:{fleet}:w:abcd1234.1");
}

TEST_F(ControlTest, SubscribesTheControlChannelAndItsInbox) {
    EXPECT_THAT(control.channels(),
                ElementsAre("wsrelay:{fleet}:ctl", "wsrelay:{fleet}:w:abcd1234.1"));
    EXPECT_EQ(control.address(), "abcd1234.1");
}

TEST_F(ControlTest, AskWaitsForEveryWorkerTheCommandReached) {
    std::optional<FleetControl::Answers> got;
    ASSERT_EQ(control.ask("", "disconnect", R"("user":"42")",
                          [&](FleetControl::Answers&& a) { got = std::move(a); }),
              FleetControl::Ask::Sent);
    ASSERT_EQ(broker.fleet_calls.size(), 1u);
    EXPECT_EQ(broker.fleet_calls[0].function, "publish");
    EXPECT_EQ(broker.fleet_calls[0].key, "wsrelay:{fleet}:ctl");
    EXPECT_EQ(broker.fleet_calls[0].args.at(0),
              R"({"q":"abcd1234.1:1","cmd":"disconnect","user":"42"})");
    const std::string q = requestId(0);
    // One reply overtakes the publish's own answer; the other follows it.
    control.onMessage("wsrelay:{fleet}:w:abcd1234.1", R"({"a":")" + q + R"(","r":{"affected":2}})");
    answerPublish(0, 2);
    EXPECT_FALSE(got.has_value());
    control.onMessage("wsrelay:{fleet}:w:abcd1234.1", R"({"a":")" + q + R"(","r":{"affected":1}})");
    ASSERT_TRUE(got.has_value());
    EXPECT_THAT(got->results, ElementsAre(R"({"affected":2})", R"({"affected":1})"));
    EXPECT_EQ(got->expected, 2u);
    EXPECT_EQ(got->unanswered(), 0u);
    EXPECT_FALSE(got->unavailable);
    EXPECT_EQ(control.pendingAsks(), 0u);
    EXPECT_EQ(metrics.fleet_asks[metrics::FleetAskResult::Complete].value(), 1);
    // A reply after the end is late, and changes nothing.
    control.onMessage("wsrelay:{fleet}:w:abcd1234.1", R"({"a":")" + q + R"(","r":{}})");
    EXPECT_EQ(metrics.fleet_messages[metrics::FleetMessageResult::Late].value(), 1);
}

TEST_F(ControlTest, NobodyReachedIsAnAnswerAtOnce) {
    std::optional<FleetControl::Answers> got;
    control.ask("zzzz0000.0", "disconnect", R"("connection":"zzzz0000.1")",
                [&](FleetControl::Answers&& a) { got = std::move(a); });
    EXPECT_EQ(broker.fleet_calls.at(0).key, "wsrelay:{fleet}:w:zzzz0000.0");
    answerPublish(0, 0);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->expected, 0u);
    EXPECT_TRUE(got->results.empty());
}

TEST_F(ControlTest, WorkersThatDoNotAnswerInTimeAreCounted) {
    std::optional<FleetControl::Answers> got;
    bool done = false;
    control.ask("", "channels", "", [&](FleetControl::Answers&& a) {
        got = std::move(a);
        done = true;
    });
    answerPublish(0, 3);
    control.onMessage("wsrelay:{fleet}:w:abcd1234.1", R"({"a":")" + requestId(0) + R"(","r":[]})");
    runUntil(done);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->expected, 3u);
    EXPECT_EQ(got->unanswered(), 2u);
    EXPECT_EQ(metrics.fleet_asks[metrics::FleetAskResult::Timeout].value(), 1);
}

TEST_F(ControlTest, ABrokerThatCannotSendIsUnavailable) {
    std::optional<FleetControl::Answers> got;
    control.ask("", "channels", "", [&](FleetControl::Answers&& a) { got = std::move(a); });
    FleetReply reply;
    reply.status = FleetStatus::Unavailable;
    calls.onReply(broker.fleet_calls.at(0).token, std::move(reply));
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(got->unavailable);
    EXPECT_EQ(metrics.fleet_asks[metrics::FleetAskResult::Unavailable].value(), 1);
}

TEST_F(ControlTest, AsksAreBounded) {
    auto ignore = [](FleetControl::Answers&&) {};
    EXPECT_EQ(control.ask("", "a", "", ignore), FleetControl::Ask::Sent);
    EXPECT_EQ(control.ask("", "b", "", ignore), FleetControl::Ask::Sent);
    EXPECT_EQ(control.ask("", "c", "", ignore), FleetControl::Ask::Busy);
    EXPECT_EQ(broker.fleet_calls.size(), 2u);
    EXPECT_EQ(metrics.fleet_asks[metrics::FleetAskResult::Busy].value(), 1);
}

TEST_F(ControlTest, ACommandRunsItsHandlerAndAnswersTheAskersInbox) {
    std::string seen_user;
    control.on("disconnect", [&](const simdjson::dom::object& command) {
        std::string_view user;
        if (command["user"].get_string().get(user) == simdjson::SUCCESS) seen_user = user;
        return std::string(R"({"affected":3})");
    });
    control.onMessage("wsrelay:{fleet}:ctl",
                      R"({"q":"qqqq0000.0:7","cmd":"disconnect","user":"42"})");
    EXPECT_EQ(seen_user, "42");
    ASSERT_EQ(broker.fleet_calls.size(), 1u);
    EXPECT_EQ(broker.fleet_calls[0].function, "publish");
    EXPECT_EQ(broker.fleet_calls[0].key, "wsrelay:{fleet}:w:qqqq0000.0");
    EXPECT_EQ(broker.fleet_calls[0].args.at(0), R"({"a":"qqqq0000.0:7","r":{"affected":3}})");
    EXPECT_EQ(metrics.fleet_messages[metrics::FleetMessageResult::Handled].value(), 1);

    // One-way: no reply.
    control.onMessage("wsrelay:{fleet}:ctl", R"({"cmd":"disconnect","user":"42"})");
    EXPECT_EQ(broker.fleet_calls.size(), 1u);
}

TEST_F(ControlTest, UnknownCommandsAreAnsweredAndMalformedOnesCounted) {
    control.onMessage("wsrelay:{fleet}:ctl", R"({"q":"qqqq0000.0:1","cmd":"future"})");
    ASSERT_EQ(broker.fleet_calls.size(), 1u);
    EXPECT_THAT(broker.fleet_calls[0].args.at(0), HasSubstr(R"("r":{"error":"unknown command"})"));
    EXPECT_EQ(metrics.fleet_messages[metrics::FleetMessageResult::Unknown].value(), 1);
    for (const char* bad : {"not json", "[1,2]", R"({"x":1})", R"({"a":"nocolon","r":1})",
                            R"({"a":"abcd1234.1:xyz","r":1})"}) {
        control.onMessage("wsrelay:{fleet}:ctl", bad);
    }
    EXPECT_EQ(metrics.fleet_messages[metrics::FleetMessageResult::Malformed].value(), 5);
    EXPECT_EQ(broker.fleet_calls.size(), 1u);
}

}  // namespace
}  // namespace wsrelay
