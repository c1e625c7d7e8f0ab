// The per-connection classes built from a WorkerContext of fakes: no socket, no lws context, no
// worker thread. Each test shows one class constructed and doing one thing through the context.

#include "relay/session/worker_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "relay/admission/upgrade_gate.h"
#include "relay/edge/http_api.h"
#include "relay/hook/hook_bridge.h"
#include "relay/session/session.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::WorkerParts;

using testing::TestSession;

TEST(SessionTest, SubscribesThroughTheHubAndPublishesThroughThePublisher) {
    WorkerParts w;
    TestSession session(w, 1);
    session->subscribeAndAnswer("chat", 7);
    EXPECT_THAT(w.broker.subscribed, ElementsAre("chat"));
    EXPECT_TRUE(w.hub.isSubscribed(session->membership(), "chat"));
    EXPECT_EQ(w.metrics.subscriptions.value(), 1);
    // The ack waits for the broker's confirmation (BrokerHandler::onSubscribed).
    EXPECT_EQ(w.flush.listedThisTurn(), 0u);
    w.hub.confirm("chat");
    EXPECT_EQ(w.flush.listedThisTurn(), 1u);
    EXPECT_GT(w.metrics.send_queue_bytes.value(), 0);

    session->publishNow("chat", "\"hi\"", 8);
    ASSERT_EQ(w.broker.published.size(), 1u);
    EXPECT_EQ(w.broker.published[0].data, "\"hi\"");
    EXPECT_EQ(w.broker.published[0].ticket.session_id, 1u);
    EXPECT_EQ(w.broker.published[0].ticket.request_id, 8u);

    session.close();
    EXPECT_THAT(w.broker.unsubscribed, ElementsAre("chat"));
    EXPECT_EQ(w.metrics.subscriptions.value(), 0);
}

TEST(FlushSchedulerTest, ListsASessionOnceAndForgetsACancelledOne) {
    WorkerParts w;
    TestSession a(w, 1);
    TestSession b(w, 2);
    w.flush.schedule(*a);
    w.flush.schedule(*a);
    w.flush.schedule(*b);
    EXPECT_EQ(w.flush.listedThisTurn(), 2u);
    w.flush.cancel(*b);
    EXPECT_EQ(b->flushSlot().turn, FlushSlot::kNotListed);
    w.flush.flushTurn();  // `a` has nothing queued: nothing is written
    EXPECT_EQ(w.flush.listedThisTurn(), 0u);
    EXPECT_EQ(a->flushSlot().turn, FlushSlot::kNotListed);
    a.close();
    b.close();
}

TEST(HookBridgeTest, ASubscribeTheAppAllowsJoinsTheChannel) {
    WorkerParts w;
    w.config.hook.events = {"subscribe"};
    testing::FakeHook hook;
    HookBridge bridge(w.ctx, hook);
    w.ctx.hook = &bridge;
    TestSession session(w, 5);

    bridge.subscribe(*session, "room", 3);
    ASSERT_EQ(hook.requests.size(), 1u);
    EXPECT_EQ(hook.requests[0].event, HookEvent::Subscribe);
    EXPECT_THAT(hook.requests[0].body,
                HasSubstr(R"("event":"subscribe","connection":"unit0000.5")"));
    EXPECT_THAT(hook.requests[0].body, HasSubstr(R"("channel":"room")"));
    EXPECT_THAT(w.broker.subscribed, IsEmpty());

    HookResult answer;
    answer.outcome = HookOutcome::Ok;
    answer.status = 200;
    answer.body = "{}";
    hook.requests[0].done(std::move(answer));
    EXPECT_THAT(w.broker.subscribed, ElementsAre("room"));
    EXPECT_TRUE(bridge.idle());

    session.close();
}

TEST(UpgradeGateTest, BuildsWithoutLwsAndShutsDown) {
    WorkerParts w;
    UpgradeGate gate(w.ctx);
    EXPECT_EQ(gate.take(nullptr), nullptr);  // no connection is pending
    gate.shutDown();
    EXPECT_EQ(w.metrics.pending_connections.value(), 0);
}

TEST(HttpApiTest, AResultForARequestThatWentAwayIsDropped) {
    WorkerParts w;
    HttpApi api(w.ctx, {});  // answers nothing: no request is in flight
    api.onPublishResult(PublishTicket{HttpApi::kTicketBit | 42, 0, false}, PublishStatus::Accepted);
    EXPECT_TRUE(HttpApi::handles("/api/publish"));
    EXPECT_FALSE(HttpApi::handles("/api/other"));
}

}  // namespace
}  // namespace wsrelay
