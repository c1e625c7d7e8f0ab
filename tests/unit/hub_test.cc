#include "relay/fanout/hub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class RecordingSink : public Sink {
public:
    void push(const FramePtr& frame) override { frames.push_back(frame); }
    std::vector<FramePtr> frames;
};

class RecordingListener : public HubListener {
public:
    void onChannelOpened(std::string_view channel) override {
        events.push_back("+" + std::string(channel));
    }
    void onChannelClosed(std::string_view channel) override {
        events.push_back("-" + std::string(channel));
    }
    std::vector<std::string> events;
};

struct Client {
    RecordingSink sink;
    Membership membership{sink};
};

// limits.send_queue_bytes' default: the largest frame the hub builds.
constexpr uint64_t kMaxFrame = 1 << 20;

class HubTest : public ::testing::Test {
protected:
    RecordingListener listener;
    Hub hub{listener, kMaxFrame};
};

TEST_F(HubTest, FirstSubscriberOpensTheChannelAndLastOneClosesIt) {
    Client a, b;
    EXPECT_EQ(hub.subscribe(a.membership, "chat", 10), Hub::SubscribeResult::Subscribed);
    EXPECT_EQ(hub.subscribe(b.membership, "chat", 10), Hub::SubscribeResult::Subscribed);
    EXPECT_THAT(listener.events, ElementsAre("+chat"));
    EXPECT_TRUE(hub.unsubscribe(a.membership, "chat"));
    EXPECT_THAT(listener.events, ElementsAre("+chat"));
    EXPECT_TRUE(hub.unsubscribe(b.membership, "chat"));
    EXPECT_THAT(listener.events, ElementsAre("+chat", "-chat"));
    EXPECT_EQ(hub.channelCount(), 0u);
    EXPECT_EQ(hub.subscriptionCount(), 0u);
}

TEST_F(HubTest, DoubleSubscribeAndStrayUnsubscribeAreRefused) {
    Client a;
    ASSERT_EQ(hub.subscribe(a.membership, "x", 10), Hub::SubscribeResult::Subscribed);
    EXPECT_EQ(hub.subscribe(a.membership, "x", 10), Hub::SubscribeResult::AlreadySubscribed);
    EXPECT_FALSE(hub.unsubscribe(a.membership, "y"));
    EXPECT_EQ(hub.subscriptionCount(), 1u);
}

TEST_F(HubTest, SubscriptionLimitIsPerConnection) {
    Client a, b;
    ASSERT_EQ(hub.subscribe(a.membership, "c1", 2), Hub::SubscribeResult::Subscribed);
    ASSERT_EQ(hub.subscribe(a.membership, "c2", 2), Hub::SubscribeResult::Subscribed);
    EXPECT_EQ(hub.subscribe(a.membership, "c3", 2), Hub::SubscribeResult::LimitReached);
    EXPECT_EQ(hub.subscribe(b.membership, "c3", 2), Hub::SubscribeResult::Subscribed);
}

TEST_F(HubTest, DeliverEncodesOnceAndSharesTheFrame) {
    Client a, b, c;
    hub.subscribe(a.membership, "news", 10);
    hub.subscribe(b.membership, "news", 10);
    hub.subscribe(c.membership, "other", 10);
    EXPECT_EQ(hub.deliver("news", R"({"n":1})").reached, 2u);
    ASSERT_EQ(a.sink.frames.size(), 1u);
    ASSERT_EQ(b.sink.frames.size(), 1u);
    EXPECT_THAT(c.sink.frames, IsEmpty());
    EXPECT_EQ(a.sink.frames[0].get(), b.sink.frames[0].get()) << "one buffer for all subscribers";
    std::string_view bytes = a.sink.frames[0]->bytes();
    EXPECT_NE(bytes.find(R"({"op":"message","channel":"news","data":{"n":1}})"),
              std::string_view::npos);
}

TEST_F(HubTest, DeliverToUnknownChannelReachesNobody) {
    const Hub::Delivery d = hub.deliver("nobody", "1");
    EXPECT_EQ(d.reached, 0u);
    EXPECT_EQ(d.too_large, 0u);
}

TEST(HubSizeTest, AFrameThatFitsNoSendQueueReachesNobodyAndCountsThem) {
    RecordingListener listener;
    const std::string fits(100, 'x');
    const std::string channel = "news";
    // The limit is exactly the frame of `fits`: one byte more does not fit.
    const uint64_t limit = protocol::messageFrameSize(channel, fits);
    Hub hub(listener, limit);
    Client a, b;
    hub.subscribe(a.membership, channel, 10);
    hub.subscribe(b.membership, channel, 10);

    EXPECT_TRUE(hub.fits(channel, fits, HistoryPolicy{}));
    Hub::Delivery d = hub.deliver(channel, fits);
    EXPECT_EQ(d.reached, 2u);
    EXPECT_EQ(d.too_large, 0u);
    ASSERT_EQ(a.sink.frames.size(), 1u);
    EXPECT_EQ(a.sink.frames[0]->size(), limit);

    const std::string over(101, 'x');
    EXPECT_FALSE(hub.fits(channel, over, HistoryPolicy{}));
    d = hub.deliver(channel, over);
    EXPECT_EQ(d.reached, 0u);
    EXPECT_EQ(d.too_large, 2u);
    EXPECT_EQ(a.sink.frames.size(), 1u) << "nothing pushed";
    EXPECT_EQ(b.sink.frames.size(), 1u);

    // The channel and its subscribers are untouched: the next message that fits is delivered.
    d = hub.deliver(channel, fits);
    EXPECT_EQ(d.reached, 2u);
    EXPECT_EQ(b.sink.frames.size(), 2u);
    hub.leaveAll(a.membership);
    hub.leaveAll(b.membership);
}

TEST(HubSizeTest, AChannelWithHistoryNeedsRoomForThePosition) {
    RecordingListener listener;
    const std::string data(100, 'x');
    const std::string channel = "chat:1";
    const HistoryPolicy history{10, 60000};
    const size_t frame = protocol::messageFrameSize(channel, data);
    EXPECT_EQ(Hub::frameBytes(channel, data, HistoryPolicy{}), frame);
    EXPECT_EQ(Hub::frameBytes(channel, data, history), frame + protocol::kMaxPositionBytes);

    Hub exact(listener, frame);
    EXPECT_TRUE(exact.fits(channel, data, HistoryPolicy{}));
    EXPECT_FALSE(exact.fits(channel, data, history));
    Hub roomy(listener, frame + protocol::kMaxPositionBytes);
    EXPECT_TRUE(roomy.fits(channel, data, history));
    EXPECT_FALSE(roomy.fits(channel, data + "x", history));
}

TEST_F(HubTest, RemovalKeepsEveryOtherMemberReachable) {
    // Swap-remove moves members around: after arbitrary removals every remaining member must still
    // get exactly one copy, and removed ones none.
    constexpr int kClients = 50;
    std::vector<Client> clients(kClients);
    for (auto& c : clients) {
        hub.subscribe(c.membership, "a", 10);
        hub.subscribe(c.membership, "b", 10);
        hub.subscribe(c.membership, "c", 10);
    }
    for (int i = 0; i < kClients; i += 3) hub.unsubscribe(clients[i].membership, "b");
    for (int i = 1; i < kClients; i += 4) hub.leaveAll(clients[i].membership);
    hub.deliver("b", "true");
    for (int i = 0; i < kClients; ++i) {
        bool left_b = i % 3 == 0 || i % 4 == 1;
        EXPECT_EQ(clients[i].sink.frames.size(), left_b ? 0u : 1u) << "client " << i;
    }
    hub.deliver("a", "1");
    for (int i = 0; i < kClients; ++i) {
        size_t expected = (i % 3 == 0 || i % 4 == 1 ? 0u : 1u) + (i % 4 == 1 ? 0u : 1u);
        EXPECT_EQ(clients[i].sink.frames.size(), expected) << "client " << i;
    }
    for (auto& c : clients) hub.leaveAll(c.membership);
    EXPECT_EQ(hub.channelCount(), 0u);
    EXPECT_EQ(hub.subscriptionCount(), 0u);
}

TEST_F(HubTest, IsSubscribedFollowsTheIndex) {
    Client a;
    EXPECT_FALSE(hub.isSubscribed(a.membership, "x"));
    hub.subscribe(a.membership, "x", 10);
    EXPECT_TRUE(hub.isSubscribed(a.membership, "x"));
    hub.leaveAll(a.membership);
    EXPECT_FALSE(hub.isSubscribed(a.membership, "x"));
}

}  // namespace
}  // namespace wsrelay

namespace wsrelay {
namespace {

TEST(HubNotifyTest, OneFramePerChannelReachesEveryMemberOnce) {
    RecordingListener listener;
    Hub hub(listener, kMaxFrame);
    Client a, b;
    hub.subscribe(a.membership, "x", 10);
    hub.subscribe(a.membership, "y", 10);
    hub.subscribe(b.membership, "y", 10);
    std::vector<std::string> made;
    hub.notifyEveryChannel([&](std::string_view channel) {
        made.emplace_back(channel);
        return protocol::encodeResubscribed(channel);
    });
    EXPECT_EQ(made.size(), 2u);
    ASSERT_EQ(a.sink.frames.size(), 2u);
    ASSERT_EQ(b.sink.frames.size(), 1u);
    EXPECT_NE(b.sink.frames[0]->bytes().find(R"({"op":"resubscribed","channel":"y","gap":true})"),
              std::string_view::npos);
}

// The acks of subscribes wait until the broker confirmed the channel (Hub::confirm).
class HubAckTest : public ::testing::Test {
protected:
    static SubscribeAck ack(uint64_t id) { return {SubscribeAck::Kind::Ack, id}; }
    static bool holds(const RecordingSink& sink, std::string_view json) {
        for (const FramePtr& f : sink.frames) {
            if (f->bytes().find(json) != std::string_view::npos) return true;
        }
        return false;
    }
    RecordingListener listener;
    Hub hub{listener, kMaxFrame};
};

TEST_F(HubAckTest, AcksGoOnceTheChannelIsConfirmedAndAtOnceAfterThat) {
    Client a, b, c;
    hub.subscribe(a.membership, "chat", 10, ack(1));
    hub.subscribe(b.membership, "chat", 10, ack(2));
    EXPECT_THAT(a.sink.frames, IsEmpty());
    EXPECT_THAT(b.sink.frames, IsEmpty());
    EXPECT_FALSE(hub.isLive("chat"));
    hub.confirm("chat");
    EXPECT_TRUE(hub.isLive("chat"));
    ASSERT_EQ(a.sink.frames.size(), 1u);
    EXPECT_TRUE(holds(a.sink, R"({"op":"ack","id":1})"));
    ASSERT_EQ(b.sink.frames.size(), 1u);
    EXPECT_TRUE(holds(b.sink, R"({"op":"ack","id":2})"));
    hub.subscribe(c.membership, "chat", 10, ack(3));  // live: no round trip
    EXPECT_TRUE(holds(c.sink, R"({"op":"ack","id":3})"));
    hub.confirm("chat");  // a repeated confirmation sends nothing more
    EXPECT_EQ(a.sink.frames.size(), 1u);
}

TEST_F(HubAckTest, AMemberThatLeavesFirstGetsNothingAndTheOthersStillDo) {
    Client a, b, c, d;
    hub.subscribe(a.membership, "chat", 10, ack(1));
    hub.subscribe(b.membership, "chat", 10, ack(2));
    hub.subscribe(c.membership, "chat", 10);  // no ack asked for
    hub.subscribe(d.membership, "chat", 10, ack(4));
    hub.subscribe(d.membership, "other", 10, ack(5));
    EXPECT_TRUE(hub.unsubscribe(b.membership, "chat"));  // from the middle of both lists
    hub.leaveAll(d.membership);
    hub.confirm("chat");
    hub.confirm("other");  // closed with d's leaving: ignored
    EXPECT_TRUE(holds(a.sink, R"({"op":"ack","id":1})"));
    EXPECT_THAT(b.sink.frames, IsEmpty());
    EXPECT_THAT(c.sink.frames, IsEmpty());
    EXPECT_THAT(d.sink.frames, IsEmpty());
}

TEST_F(HubAckTest, AGrantIsToldWithSubscribed) {
    Client a;
    hub.subscribe(a.membership, "room", 10, {SubscribeAck::Kind::Subscribed, 0});
    hub.confirm("room");
    EXPECT_TRUE(holds(a.sink, R"({"op":"subscribed","channel":"room"})"));
}

TEST_F(HubAckTest, WhileTheBrokerIsDownAcksGoAtOnce) {
    Client a, b;
    hub.subscribe(a.membership, "chat", 10, ack(1));
    hub.setBrokerUp(false);  // the waiting ack goes now: the client hears of the gap at Up
    EXPECT_TRUE(holds(a.sink, R"({"op":"ack","id":1})"));
    hub.subscribe(b.membership, "new", 10, ack(2));
    EXPECT_TRUE(holds(b.sink, R"({"op":"ack","id":2})"));
    EXPECT_FALSE(hub.isLive("new"));
    hub.setBrokerUp(true);  // the broker subscribed every channel again before it said Up
    EXPECT_TRUE(hub.isLive("chat"));
    EXPECT_TRUE(hub.isLive("new"));
}

}  // namespace
}  // namespace wsrelay
