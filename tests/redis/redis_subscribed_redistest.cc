// BrokerHandler::onSubscribed from the standalone Redis broker against a real redis-server: called
// when Redis confirmed the subscription, once per subscribe() not cancelled, and again after a
// reconnect.
#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapters/redis_broker.h"
#include "tests/redis/broker_endpoint.h"
#include "tests/redis/broker_rig.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::BrokerRig;
using ::testing::ElementsAre;
using testing::Endpoint;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::RedisClient;
using testing::RedisServer;
using testing::ReplyPtr;

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

class RedisSubscribedTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisSubscribedTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kBinary << " is missing";
        std::string error;
        ASSERT_TRUE(server_.start(error)) << error;
        RedisBrokerOptions o;
        o.url.host = "127.0.0.1";
        o.url.port = server_.port();
        o.reconnect_min_ms = 10;
        o.reconnect_max_ms = 100;
        o.probe_interval_ms = 0;
        o.probe_timeout_ms = 2000;
        factory_ = std::make_unique<RedisBrokerFactory>(o);
        endpoint_ = &add(*factory_);
    }
    void TearDown() override {
        clear();
        endpoint_ = nullptr;
    }

    RedisServer server_;
    std::unique_ptr<RedisBrokerFactory> factory_;
    Endpoint* endpoint_ = nullptr;
};

TEST_F(RedisSubscribedTest, ConfirmedAfterUpThenPerSubscribeOnceRedisAnswered) {
    Endpoint& a = *endpoint_;
    a.broker->subscribe("first");
    EXPECT_THAT(a.subscribed, IsEmpty()) << "never from inside subscribe()";
    ASSERT_TRUE(pumpUntil([&] { return a.subscribed.size() == 1; }));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_THAT(a.subscribed, ElementsAre("first"));
    // Confirmed means live: a message published now arrives.
    RedisClient c = server_.client();
    EXPECT_EQ(c.numsub("first"), 1);

    a.broker->subscribe("second");
    a.broker->flush();
    EXPECT_THAT(a.subscribed, ElementsAre("first")) << "sent, not yet confirmed";
    ASSERT_TRUE(pumpUntil([&] { return a.subscribed.size() == 2; }));
    EXPECT_EQ(a.subscribed.back(), "second");
    EXPECT_EQ(c.numsub("second"), 1);
}

TEST_F(RedisSubscribedTest, CancelledSubscribeIsNotConfirmedAndResubscribeIsConfirmedOnce) {
    Endpoint& a = *endpoint_;
    a.broker->subscribe("ctl");
    ASSERT_TRUE(pumpUntil([&] { return a.subscribed.size() == 1; }));
    a.broker->subscribe("gone");
    a.broker->unsubscribe("gone");
    // Unsubscribed and subscribed again in one turn: nothing goes to Redis, yet the new
    // subscribe() is confirmed (it never stopped being live).
    a.broker->unsubscribe("ctl");
    a.broker->subscribe("ctl");
    a.broker->subscribe("marker");
    ASSERT_TRUE(pumpUntil([&] { return a.subscribed.size() == 3; }));
    EXPECT_THAT(a.subscribed, ElementsAre("ctl", "ctl", "marker"));
}

TEST_F(RedisSubscribedTest, ConfirmedAgainAfterAReconnect) {
    Endpoint& a = *endpoint_;
    a.broker->subscribe("chat");
    ASSERT_TRUE(pumpUntil([&] { return a.subscribed.size() == 1; }));
    RedisClient c = server_.client();
    ReplyPtr killed = c.command({"CLIENT", "KILL", "TYPE", "pubsub"});
    ASSERT_TRUE(killed);
    ASSERT_TRUE(pumpUntil([&] { return a.subscribed.size() == 2; }));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
    EXPECT_THAT(a.subscribed, ElementsAre("chat", "chat"));
}

}  // namespace
}  // namespace wsrelay
