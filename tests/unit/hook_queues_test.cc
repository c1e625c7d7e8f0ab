#include "relay/hook/hook_queues.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace wsrelay {
namespace {

PendingHookEvent message(int n, size_t data_bytes = 1) {
    PendingHookEvent e;
    e.event = HookEvent::Message;
    e.channel = "chat:" + std::to_string(n);
    e.data = std::string(data_bytes, 'x');
    e.id = static_cast<uint64_t>(n);
    return e;
}

PendingHookEvent disconnect(int code) {
    PendingHookEvent e;
    e.event = HookEvent::Disconnect;
    e.code = code;
    return e;
}

HookQueues::Limits unbounded() {
    HookQueues::Limits limits;
    limits.events_per_connection = 1000;
    limits.bytes_per_connection = UINT64_MAX;
    limits.bytes = UINT64_MAX;
    return limits;
}

TEST(HookQueuesTest, OneCurrentEventPerConnectionAndTheRestInOrder) {
    HookQueues q(unbounded());
    EXPECT_EQ(HookQueues::Push::Current, q.push(1, message(1)));
    EXPECT_EQ(HookQueues::Push::Queued, q.push(1, message(2)));
    EXPECT_EQ(HookQueues::Push::Current, q.push(2, message(10)));  // another connection
    EXPECT_EQ(HookQueues::Push::Queued, q.push(1, message(3)));
    std::vector<uint64_t> order;
    while (q.current(1) != nullptr) {
        q.sent(1);
        order.push_back(*q.finish(1).id);
    }
    EXPECT_EQ((std::vector<uint64_t>{1, 2, 3}), order);
    EXPECT_FALSE(q.empty());  // connection 2's event
    EXPECT_EQ(10u, *q.finish(2).id);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(0u, q.bytes());
}

TEST(HookQueuesTest, ACountBoundRefusesAndKeepsNothing) {
    HookQueues::Limits limits = unbounded();
    limits.events_per_connection = 3;
    HookQueues q(limits);
    ASSERT_EQ(HookQueues::Push::Current, q.push(1, message(0)));
    for (int n = 1; n <= 3; ++n) ASSERT_EQ(HookQueues::Push::Queued, q.push(1, message(n)));
    const uint64_t bytes = q.bytes();
    EXPECT_EQ(HookQueues::Push::Full, q.push(1, message(4)));
    EXPECT_EQ(bytes, q.bytes());
    // The current event does not count: once it is done, one more fits.
    q.finish(1);
    EXPECT_EQ(HookQueues::Push::Queued, q.push(1, message(5)));
}

TEST(HookQueuesTest, BytesAreBoundedPerConnectionAndPerWorker) {
    const uint64_t one = message(0, 100).bytes();  // data, channel and the fixed share
    EXPECT_EQ(100u + 6u + PendingHookEvent::kOverheadBytes, one);
    const uint64_t small = message(0, 0).bytes();
    HookQueues::Limits limits = unbounded();
    limits.bytes_per_connection = 2 * one + small;
    limits.bytes = 3 * one;
    HookQueues q(limits);

    ASSERT_EQ(HookQueues::Push::Current, q.push(1, message(1, 100)));
    EXPECT_EQ(one, q.bytes());  // counted until it is handed to the hook
    q.sent(1);
    EXPECT_EQ(0u, q.bytes());
    EXPECT_EQ(HookQueues::Push::Queued, q.push(1, message(2, 100)));
    EXPECT_EQ(HookQueues::Push::Queued, q.push(1, message(3, 100)));
    EXPECT_EQ(HookQueues::Push::Full, q.push(1, message(4, 100)));  // the connection's bound
    EXPECT_EQ(2 * one, q.bytes());                                  // nothing kept
    EXPECT_EQ(HookQueues::Push::Queued, q.push(1, message(5, 0)));  // a smaller one fits
    EXPECT_EQ(2 * one + small, q.bytes());

    // Connection 2 is far from its own bound, but the worker's is reached.
    ASSERT_EQ(HookQueues::Push::Current, q.push(2, message(6, 100)));
    q.sent(2);
    EXPECT_EQ(HookQueues::Push::Full, q.push(2, message(7, 100)));

    // A disconnect is never refused; an idle connection's event goes at once whatever its size.
    EXPECT_FALSE(q.close(1, "", "null", disconnect(1000)));
    EXPECT_EQ(2 * one + small + PendingHookEvent::kOverheadBytes, q.bytes());
    EXPECT_EQ(HookQueues::Push::Current, q.push(3, message(9, 10 * one)));
    q.sent(3);

    // Handed to the hook, an event's bytes are given back.
    q.finish(1);  // message 1 (sent): message 2 becomes current
    q.sent(1);
    EXPECT_EQ(one + small + PendingHookEvent::kOverheadBytes, q.bytes());
    q.finish(1);  // message 2: message 3 becomes current
    q.sent(1);
    EXPECT_EQ(small + PendingHookEvent::kOverheadBytes, q.bytes());  // message 5, the disconnect
    EXPECT_EQ(HookQueues::Push::Queued, q.push(2, message(10, 100)));
    q.abandon([](const PendingHookEvent&, bool) {});
    EXPECT_EQ(0u, q.bytes());
}

TEST(HookQueuesTest, AClosedConnectionKeepsItsEventsAndTheDisconnectComesLast) {
    HookQueues q(unbounded());
    q.push(7, message(1));
    q.sent(7);
    q.push(7, message(2));
    q.push(7, message(3));
    EXPECT_EQ(nullptr, q.closed(7));
    EXPECT_FALSE(q.close(7, "ann", R"({"name":"ann"})", disconnect(1000)));
    ASSERT_NE(nullptr, q.closed(7));
    EXPECT_EQ("ann", q.closed(7)->user);
    EXPECT_EQ(R"({"name":"ann"})", q.closed(7)->meta);
    std::vector<std::pair<HookEvent, int>> seen;
    while (q.current(7) != nullptr) {
        PendingHookEvent e = q.finish(7);
        seen.emplace_back(e.event,
                          e.event == HookEvent::Disconnect ? e.code : static_cast<int>(*e.id));
    }
    EXPECT_EQ((std::vector<std::pair<HookEvent, int>>{{HookEvent::Message, 1},
                                                      {HookEvent::Message, 2},
                                                      {HookEvent::Message, 3},
                                                      {HookEvent::Disconnect, 1000}}),
              seen);
    EXPECT_TRUE(q.empty());
}

TEST(HookQueuesTest, ClosingAnIdleConnection) {
    HookQueues q(unbounded());
    // Nothing queued and no disconnect for the app: nothing to keep.
    EXPECT_FALSE(q.close(1, "", "null", std::nullopt));
    EXPECT_TRUE(q.empty());
    // Only the disconnect: it is current at once, and carries what the connection left behind.
    EXPECT_TRUE(q.close(2, "bob", "null", disconnect(1006)));
    ASSERT_NE(nullptr, q.current(2));
    EXPECT_EQ(HookEvent::Disconnect, q.current(2)->event);
    EXPECT_EQ("bob", q.closed(2)->user);
}

TEST(HookQueuesTest, ReadyConnectionsComeBackInTheOrderTheyBeganToWait) {
    HookQueues q(unbounded());
    EXPECT_FALSE(q.anyReady());
    q.wait(5);
    q.wait(3);
    ASSERT_TRUE(q.firstReady());
    EXPECT_EQ(5u, *q.firstReady());
    q.popReady();
    EXPECT_EQ(3u, *q.firstReady());
    q.popReady();
    EXPECT_FALSE(q.firstReady());
}

TEST(HookQueuesTest, ACurrentEventIsUndispatchedUntilSentOrWaiting) {
    HookQueues q(unbounded());
    EXPECT_FALSE(q.undispatched(1));
    q.push(1, message(1));
    EXPECT_TRUE(q.undispatched(1));
    q.sent(1);
    EXPECT_FALSE(q.undispatched(1));
    q.push(1, message(2));
    q.finish(1);  // the next one is current, and not dispatched yet
    EXPECT_TRUE(q.undispatched(1));
    q.wait(1);
    EXPECT_FALSE(q.undispatched(1));
    q.popReady();
    q.sent(1);
    q.finish(1);
    EXPECT_FALSE(q.undispatched(1));
    EXPECT_TRUE(q.empty());
    // A disconnect's event too: each is dispatched once.
    q.push(2, message(3));
    q.close(2, "", "null", disconnect(1000));
    q.sent(2);
    q.finish(2);
    EXPECT_TRUE(q.undispatched(2));
    EXPECT_EQ(HookEvent::Disconnect, q.current(2)->event);
}

TEST(HookQueuesTest, AbandonReportsEveryEventOnceAndWhichWereInFlight) {
    HookQueues q(unbounded());
    q.push(1, message(1));
    q.sent(1);
    q.push(1, message(2));
    q.close(1, "", "null", disconnect(1001));
    q.push(2, message(3));  // current, never sent
    q.wait(2);
    size_t in_flight = 0;
    size_t disconnects = 0;
    EXPECT_EQ(4u, q.abandon([&](const PendingHookEvent& e, bool sent) {
        in_flight += sent ? 1 : 0;
        disconnects += e.event == HookEvent::Disconnect ? 1 : 0;
    }));
    EXPECT_EQ(1u, in_flight);
    EXPECT_EQ(1u, disconnects);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.anyReady());
    EXPECT_EQ(0u, q.bytes());
}

}  // namespace
}  // namespace wsrelay
