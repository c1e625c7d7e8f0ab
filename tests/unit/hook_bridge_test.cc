// HookBridge against a FakeHook: the event bodies it sends, the answers' commands it carries out,
// each connection's queue (bounded, kept after the session closed) and the failures it reports.

#include "relay/hook/hook_bridge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using testing::FakeHook;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

Config hookConfig() {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    c.hook.url = "http://127.0.0.1:1/hook";
    c.hook.events = {"connect", "subscribe", "message", "disconnect"};
    c.hook.routes = {"rpc.*=hook", "both.*=both"};
    return c;
}

// A worker with a hook: the bridge is in its context, as the worker sets it up.
struct HookParts {
    explicit HookParts(Config cfg = hookConfig()) : w(std::move(cfg)), bridge(w.ctx, hook) {
        w.ctx.hook = &bridge;
    }
    // Answers request `i` of the fake hook.
    void answer(size_t i, HookOutcome outcome, std::string body, long status = 200) {
        HookResult r;
        r.outcome = outcome;
        r.status = status;
        r.body = std::move(body);
        HookDone done = std::move(hook.requests.at(i).done);
        done(std::move(r));
    }
    int64_t counted(HookEvent event, metrics::HookResult result) {
        return w.metrics.hook_requests[event][result].value();
    }

    WorkerParts w;
    FakeHook hook;
    HookBridge bridge;
};

std::vector<std::string> written(HookParts& h, TestSession& s) {
    h.w.flush.flushTurn();
    return s.wire.texts();
}

TEST(HookBridgeTest, AConnectAnswerGivesUserMetaAndChannels) {
    HookParts h;
    ConnectDecision decision;
    ASSERT_TRUE(h.bridge.connect(9, "", R"({"origin":"o"})",
                                 [&](ConnectDecision&& d) { decision = std::move(d); }));
    ASSERT_EQ(h.hook.requests.size(), 1u);
    EXPECT_EQ(h.hook.requests[0].event, HookEvent::Connect);
    EXPECT_EQ(h.hook.requests[0].body,
              R"({"event":"connect","connection":"unit0000.9","user":null,"meta":null,)"
              R"("headers":{"origin":"o"}})");
    EXPECT_FALSE(h.bridge.idle());
    EXPECT_EQ(h.w.metrics.hook_in_flight.value(), 1);

    h.answer(0, HookOutcome::Ok,
             R"({"user":"ann","meta":{ "room": 1 },"subscribe":["a","b"],)"
             R"("publish":[{"channel":"news","data":"joined"}]})");
    EXPECT_EQ(decision.kind, ConnectDecision::Kind::Allow);
    EXPECT_EQ(decision.user, "ann");
    EXPECT_EQ(decision.meta, R"({"room":1})");
    EXPECT_THAT(decision.channels, ElementsAre("a", "b"));
    ASSERT_EQ(h.w.broker.published.size(), 1u);
    EXPECT_EQ(h.w.broker.published[0].channel, "news");
    EXPECT_EQ(h.w.broker.published[0].data, R"("joined")");
    EXPECT_TRUE(h.bridge.idle());
    EXPECT_EQ(h.counted(HookEvent::Connect, metrics::HookResult::Ok), 1);
    EXPECT_EQ(h.w.metrics.hook_in_flight.value(), 0);
}

TEST(HookBridgeTest, AConnectDeniedOrFailedSaysWhy) {
    struct Case {
        HookOutcome outcome;
        std::string body;
        ConnectDecision::Kind kind;
        std::string message;
        metrics::HookResult counted;
    };
    const Case cases[] = {
        {HookOutcome::Ok, R"({"deny":{"message":"banned"}})", ConnectDecision::Kind::Deny, "banned",
         metrics::HookResult::Denied},
        {HookOutcome::Timeout, "", ConnectDecision::Kind::Fail, "hook timeout",
         metrics::HookResult::Timeout},
        {HookOutcome::Unavailable, "", ConnectDecision::Kind::Fail, "hook unavailable",
         metrics::HookResult::Unavailable},
        {HookOutcome::Error, "oops", ConnectDecision::Kind::Fail, "hook error",
         metrics::HookResult::Error},
        {HookOutcome::Ok, "not json", ConnectDecision::Kind::Fail, "hook error",
         metrics::HookResult::Error},
    };
    for (const Case& c : cases) {
        HookParts h;
        ConnectDecision decision;
        decision.kind = ConnectDecision::Kind::Allow;
        h.bridge.connect(1, "u", "{}", [&](ConnectDecision&& d) { decision = std::move(d); });
        h.answer(0, c.outcome, c.body);
        EXPECT_EQ(decision.kind, c.kind) << c.message;
        EXPECT_EQ(decision.message, c.message);
        EXPECT_EQ(h.counted(HookEvent::Connect, c.counted), 1) << c.message;
    }
}

TEST(HookBridgeTest, AConnectAtTheInFlightBoundIsRefusedAndCounted) {
    HookParts h;
    h.hook.accepting = false;
    bool called = false;
    EXPECT_FALSE(h.bridge.connect(1, "", "{}", [&](ConnectDecision&&) { called = true; }));
    EXPECT_FALSE(called);
    EXPECT_EQ(h.counted(HookEvent::Connect, metrics::HookResult::Overflow), 1);
    EXPECT_TRUE(h.bridge.idle());
}

TEST(HookBridgeTest, ASubscribeTheAppDeniesIsAnsweredForbidden) {
    HookParts h;
    TestSession s(h.w, 3);
    const std::string cmd = R"({"op":"subscribe","channel":"room","id":1})";
    s->onReceive(cmd.data(), cmd.size(), {});
    ASSERT_EQ(h.hook.requests.size(), 1u);
    EXPECT_THAT(
        h.hook.requests[0].body,
        HasSubstr(R"("event":"subscribe","connection":"unit0000.3","user":null,"meta":null,)"
                  R"("channel":"room")"));
    h.answer(0, HookOutcome::Ok, R"({"deny":{"message":"members only"}})");
    EXPECT_THAT(h.w.broker.subscribed, IsEmpty());
    EXPECT_THAT(written(h, s),
                ElementsAre(R"({"op":"error","id":1,"code":403,"reason":"members only"})"));
    EXPECT_EQ(h.counted(HookEvent::Subscribe, metrics::HookResult::Denied), 1);
}

TEST(HookBridgeTest, ASubscribeWithSinceTheAppAllowsRecoversFromIt) {
    Config cfg = hookConfig();
    cfg.channels = {{"room", 100, 60000}};
    HookParts h(cfg);
    TestSession s(h.w, 3);
    const std::string cmd =
        R"({"op":"subscribe","channel":"room","since":{"offset":1,"epoch":"e1"},"id":1})";
    s->onReceive(cmd.data(), cmd.size(), {});
    ASSERT_EQ(h.hook.requests.size(), 1u);
    h.answer(0, HookOutcome::Ok, "{}");
    h.w.hub.confirm("room");
    ASSERT_EQ(h.w.broker.reads.size(), 1u);
    EXPECT_EQ(h.w.broker.reads[0].request.after, 0u);  // the window; the since shows below
    HistoryAnswer a;
    a.top = {2, "e1"};
    a.entries = {{1, "1"}, {2, "2"}};
    h.w.history.onAnswer(h.w.broker.reads[0].request.token, std::move(a));
    const auto out = written(h, s);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_THAT(out[0], HasSubstr(R"("offset":2)"));
    EXPECT_THAT(out[1], HasSubstr(R"("recovered":true)"));
}

TEST(HookBridgeTest, ARoutedPublishGoesToTheAppAndIsAcked) {
    HookParts h;
    TestSession s(h.w, 4);
    const std::string cmd = R"({"op":"publish","channel":"rpc.x","data":{"q":1},"id":5})";
    s->onReceive(cmd.data(), cmd.size(), {});
    ASSERT_EQ(h.hook.requests.size(), 1u);
    EXPECT_EQ(h.hook.requests[0].event, HookEvent::Message);
    EXPECT_THAT(h.hook.requests[0].body, HasSubstr(R"("channel":"rpc.x","data":{"q":1},"id":5})"));
    EXPECT_THAT(h.w.broker.published, IsEmpty());
    h.answer(0, HookOutcome::Ok, "");  // an empty 2xx carries no commands
    EXPECT_THAT(written(h, s), ElementsAre(R"({"op":"ack","id":5})"));
    EXPECT_THAT(h.w.broker.published, IsEmpty());
}

TEST(HookBridgeTest, ABothRoutePublishesWhatTheAppReturns) {
    HookParts h;
    TestSession s(h.w, 4);
    h.bridge.message(*s, "both.x", R"("raw")", 6, PublishRoute::Both);
    h.answer(0, HookOutcome::Ok, R"({"data":{"clean":true}})");
    ASSERT_EQ(h.w.broker.published.size(), 1u);
    EXPECT_EQ(h.w.broker.published[0].channel, "both.x");
    EXPECT_EQ(h.w.broker.published[0].data, R"({"clean":true})");
    EXPECT_EQ(h.w.broker.published[0].ticket.request_id, 6u);  // the broker's result acks it
}

TEST(HookBridgeTest, ASendGetsTheAppsReplyAndItsCommands) {
    HookParts h;
    TestSession s(h.w, 8);
    s->join("old");
    h.bridge.send(*s, R"({"ask":1})", 2);
    ASSERT_EQ(h.hook.requests.size(), 1u);
    EXPECT_THAT(h.hook.requests[0].body, HasSubstr(R"("rpc":true,"data":{"ask":1},"id":2})"));
    h.answer(0, HookOutcome::Ok,
             R"({"reply":{"answer":42},"meta":{"m":2},"subscribe":["new"],)"
             R"("unsubscribe":["old"]})");
    EXPECT_EQ(s->hookState().meta, R"({"m":2})");
    EXPECT_FALSE(h.w.hub.isSubscribed(s->membership(), "old"));
    EXPECT_TRUE(h.w.hub.isSubscribed(s->membership(), "new"));
    const auto frames = written(h, s);
    EXPECT_THAT(frames, ::testing::Contains(R"({"op":"reply","id":2,"data":{"answer":42}})"));
    EXPECT_THAT(frames,
                ::testing::Contains(R"({"op":"unsubscribed","channel":"old","reason":"hook"})"));

    // The next event carries the new metadata.
    h.bridge.send(*s, "1", std::nullopt);
    EXPECT_THAT(h.hook.requests[1].body, HasSubstr(R"("meta":{"m":2})"));
}

TEST(HookBridgeTest, AnAnswersDisconnectClosesWithItsCode) {
    HookParts h;
    TestSession s(h.w, 8);
    h.bridge.send(*s, "1", std::nullopt);
    h.answer(0, HookOutcome::Ok, R"({"disconnect":{"code":4100,"reason":"kicked"}})");
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.close_code, 4100);
    EXPECT_EQ(s.wire.close_reason, "kicked");
}

TEST(HookBridgeTest, FailuresReachTheClientWithTheirCode) {
    struct Case {
        HookOutcome outcome;
        std::string body;
        std::string frame;
        metrics::HookResult counted;
    };
    const Case cases[] = {
        {HookOutcome::Timeout, "", R"({"op":"error","id":1,"code":502,"reason":"hook timeout"})",
         metrics::HookResult::Timeout},
        {HookOutcome::Unavailable, "",
         R"({"op":"error","id":1,"code":502,"reason":"hook unavailable"})",
         metrics::HookResult::Unavailable},
        {HookOutcome::Error, "", R"({"op":"error","id":1,"code":502,"reason":"hook error"})",
         metrics::HookResult::Error},
        {HookOutcome::Ok, R"({"error":{"code":429,"message":"slow down"}})",
         R"({"op":"error","id":1,"code":429,"reason":"slow down"})", metrics::HookResult::Error},
    };
    for (const Case& c : cases) {
        HookParts h;
        TestSession s(h.w, 2);
        h.bridge.send(*s, "1", 1);
        h.answer(0, c.outcome, c.body, c.outcome == HookOutcome::Error ? 500 : 200);
        EXPECT_THAT(written(h, s), ElementsAre(c.frame));
        EXPECT_EQ(h.counted(HookEvent::Message, c.counted), 1) << c.frame;
    }
}

TEST(HookBridgeTest, AConnectionsEventsGoOneAtATimeInOrder) {
    HookParts h;
    TestSession s(h.w, 2);
    h.bridge.send(*s, "1", std::nullopt);
    h.bridge.send(*s, "2", std::nullopt);
    h.bridge.send(*s, "3", std::nullopt);
    ASSERT_EQ(h.hook.requests.size(), 1u);
    EXPECT_GT(h.w.metrics.hook_queued_bytes.value(), 0);
    h.answer(0, HookOutcome::Ok, "{}");
    ASSERT_EQ(h.hook.requests.size(), 2u);
    EXPECT_THAT(h.hook.requests[1].body, HasSubstr(R"("data":2)"));
    h.answer(1, HookOutcome::Ok, "{}");
    h.answer(2, HookOutcome::Ok, "{}");
    EXPECT_THAT(h.hook.requests[2].body, HasSubstr(R"("data":3)"));
    EXPECT_TRUE(h.bridge.idle());
    EXPECT_EQ(h.w.metrics.hook_queued_bytes.value(), 0);
}

TEST(HookBridgeTest, AConnectionsQueueIsBoundedAndRefusesWithHookBusy) {
    Config cfg = hookConfig();
    cfg.hook.max_queued_bytes_per_connection = 2 * PendingHookEvent::kOverheadBytes + 10;
    HookParts h(cfg);
    TestSession s(h.w, 2);
    for (int i = 0; i < 4; ++i) h.bridge.send(*s, "1", i);  // one sent, two wait, one refused
    EXPECT_EQ(h.hook.requests.size(), 1u);
    EXPECT_THAT(written(h, s),
                ElementsAre(R"({"op":"error","id":3,"code":503,"reason":"hook busy"})"));
    EXPECT_EQ(h.counted(HookEvent::Message, metrics::HookResult::Overflow), 1);
}

TEST(HookBridgeTest, AnEventTheHookCannotTakeIsRefusedAtOnce) {
    HookParts h;
    TestSession s(h.w, 2);
    h.hook.accepting = false;
    h.bridge.send(*s, "1", 1);
    EXPECT_THAT(written(h, s),
                ElementsAre(R"({"op":"error","id":1,"code":503,"reason":"hook busy"})"));
    EXPECT_TRUE(h.bridge.idle());
}

TEST(HookBridgeTest, TheQueueOutlivesItsSessionAndEndsWithTheDisconnect) {
    HookParts h;
    TestSession s(h.w, 6);
    s->hookState().user = "bo";
    s->hookState().meta = R"({"k":1})";
    s->start({});  // announced: the app hears of its close
    h.bridge.message(*s, "rpc.a", "1", std::nullopt, PublishRoute::Hook);
    h.bridge.message(*s, "rpc.a", "2", std::nullopt, PublishRoute::Hook);
    const unsigned char bye[] = {0x03, 0xE8};
    s->onPeerClose(bye, sizeof bye);
    s.close();
    ASSERT_EQ(h.hook.requests.size(), 1u);
    h.answer(0, HookOutcome::Ok, R"({"reply":1,"publish":[{"channel":"log","data":1}]})");
    EXPECT_EQ(h.w.broker.published.size(), 1u);  // publishes run for a closed connection too
    ASSERT_EQ(h.hook.requests.size(), 2u);
    EXPECT_THAT(
        h.hook.requests[1].body,
        HasSubstr(
            R"("connection":"unit0000.6","user":"bo","meta":{"k":1},"channel":"rpc.a","data":2)"));
    h.answer(1, HookOutcome::Ok, "{}");
    ASSERT_EQ(h.hook.requests.size(), 3u);
    EXPECT_EQ(h.hook.requests[2].event, HookEvent::Disconnect);
    EXPECT_THAT(h.hook.requests[2].body,
                HasSubstr(R"("event":"disconnect","connection":"unit0000.6")"));
    EXPECT_THAT(h.hook.requests[2].body, HasSubstr(R"("code":1000})"));
    h.answer(2, HookOutcome::Ok, "");
    EXPECT_TRUE(h.bridge.idle());
}

TEST(HookBridgeTest, AbandonCountsWhatWasNeverAnswered) {
    HookParts h;
    TestSession s(h.w, 2);
    h.bridge.send(*s, "1", std::nullopt);
    h.bridge.send(*s, "2", std::nullopt);
    h.bridge.connect(3, "", "{}", [](ConnectDecision&&) {});
    EXPECT_EQ(h.bridge.abandon(), 3u);
    EXPECT_EQ(h.counted(HookEvent::Message, metrics::HookResult::Abandoned), 2);
    EXPECT_EQ(h.counted(HookEvent::Connect, metrics::HookResult::Abandoned), 1);
    EXPECT_EQ(h.w.metrics.hook_in_flight.value(), 0);
    EXPECT_TRUE(h.bridge.idle());
    h.hook.requests.clear();  // their answers never come
}

}  // namespace
}  // namespace wsrelay
