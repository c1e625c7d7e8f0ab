#include "adapters/memory_broker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

class RecordingHandler : public BrokerHandler {
public:
    void onBrokerMessage(std::string_view channel, std::string_view data, int64_t entered_us,
                         uint64_t offset, std::string_view epoch) override {
        messages.emplace_back(std::string(channel), std::string(data));
        stamps.push_back(entered_us);
        positions.push_back(StreamPosition{offset, std::string(epoch)});
    }
    void onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset,
                         std::string_view epoch) override {
        results.emplace_back(ticket.request_id, status);
        published_at.push_back(StreamPosition{offset, std::string(epoch)});
    }
    void onHistory(uint64_t token, HistoryAnswer&& answer) override {
        histories.emplace_back(token, std::move(answer));
    }
    void onBrokerState(BrokerState, bool) override { ++state_changes; }
    void onSubscribed(std::string_view channel) override { confirmed.emplace_back(channel); }
    void onFleetReply(uint64_t token, FleetReply&& reply) override {
        fleet.emplace_back(token, std::move(reply));
    }

    std::vector<std::pair<std::string, std::string>> messages;
    std::vector<std::pair<uint64_t, PublishStatus>> results;
    std::vector<int64_t> stamps;
    std::vector<std::string> confirmed;
    std::vector<std::pair<uint64_t, HistoryAnswer>> histories;
    std::vector<StreamPosition> positions;
    std::vector<StreamPosition> published_at;
    std::vector<std::pair<uint64_t, FleetReply>> fleet;  // onFleetReply, in order
    int state_changes = 0;
};

// Two workers' loops driven by hand from the test thread: a cross-worker delivery is visible once
// the target loop has run its pending events.
class MemoryBrokerTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (int i = 0; i < 2; ++i) {
            loops[i] = ev_loop_new(EVFLAG_AUTO);
            brokers[i] = factory.create(i, loops[i], handlers[i]);
        }
    }
    void TearDown() override {
        for (int i = 0; i < 2; ++i) {
            brokers[i].reset();
            ev_loop_destroy(loops[i]);
        }
    }
    void turn(int i) { ev_run(loops[i], EVRUN_NOWAIT); }

    // Expired histories are swept at every chance.
    MemoryBrokerFactory factory{2, std::chrono::milliseconds(0)};
    struct ev_loop* loops[2] = {};
    RecordingHandler handlers[2];
    BrokerPtr brokers[2];
};

TEST_F(MemoryBrokerTest, DeliversToSubscribedWorkersOnlyAndAcksAfterFlush) {
    brokers[1]->subscribe("chat");
    brokers[0]->publish("chat", R"({"t":1})", PublishTicket{1, 7, true}, HistoryPolicy{});
    EXPECT_THAT(handlers[0].results, IsEmpty()) << "results come from flush, never from publish";
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].results, ElementsAre(Pair(7u, PublishStatus::Accepted)));
    EXPECT_THAT(handlers[0].messages, IsEmpty());
    turn(1);
    EXPECT_THAT(handlers[1].messages, ElementsAre(Pair("chat", R"({"t":1})")));
}

TEST_F(MemoryBrokerTest, CarriesTheEntryStampToEveryWorker) {
    brokers[0]->subscribe("c");
    brokers[1]->subscribe("c");
    PublishTicket stamped;
    stamped.entered_us = 1763800000123456;
    brokers[0]->publish("c", "1", stamped, HistoryPolicy{});
    brokers[0]->publish("c", "2", PublishTicket{}, HistoryPolicy{});
    brokers[0]->flush();
    turn(1);
    EXPECT_THAT(handlers[0].stamps, ElementsAre(1763800000123456, 0));
    EXPECT_THAT(handlers[1].stamps, ElementsAre(1763800000123456, 0));
}

TEST_F(MemoryBrokerTest, PublisherSubscribedToItsOwnChannelGetsItOnce) {
    brokers[0]->subscribe("c");
    brokers[1]->subscribe("c");
    brokers[0]->publish("c", "1", PublishTicket{}, HistoryPolicy{});
    brokers[0]->flush();
    turn(0);
    turn(1);
    EXPECT_THAT(handlers[0].messages, ElementsAre(Pair("c", "1")));
    EXPECT_THAT(handlers[1].messages, ElementsAre(Pair("c", "1")));
}

TEST_F(MemoryBrokerTest, BatchKeepsPublishOrder) {
    brokers[1]->subscribe("c");
    for (int i = 0; i < 100; ++i)
        brokers[0]->publish("c", std::to_string(i), PublishTicket{}, HistoryPolicy{});
    brokers[0]->flush();
    turn(1);
    ASSERT_EQ(handlers[1].messages.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(handlers[1].messages[i].second, std::to_string(i));
}

TEST_F(MemoryBrokerTest, UnsubscribeStopsDelivery) {
    brokers[1]->subscribe("c");
    brokers[1]->unsubscribe("c");
    brokers[0]->publish("c", "1", PublishTicket{0, 1, true}, HistoryPolicy{});
    brokers[0]->flush();
    turn(1);
    EXPECT_THAT(handlers[1].messages, IsEmpty());
    // Nobody listening is still a successful publish (at-most-once, like Redis PUBLISH).
    EXPECT_THAT(handlers[0].results, ElementsAre(Pair(1u, PublishStatus::Accepted)));
}

TEST_F(MemoryBrokerTest, StoppedWorkerIsSkipped) {
    brokers[1]->subscribe("c");
    brokers[1].reset();
    brokers[0]->publish("c", "1", PublishTicket{0, 3, true}, HistoryPolicy{});
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].results, ElementsAre(Pair(3u, PublishStatus::Accepted)));
    EXPECT_THAT(handlers[1].messages, IsEmpty());
}

TEST_F(MemoryBrokerTest, ConfirmsASubscriptionOnTheNextFlushNeverInsideSubscribe) {
    brokers[0]->subscribe("a");
    brokers[0]->subscribe("b");
    brokers[0]->subscribe("c");
    brokers[0]->unsubscribe("b");  // cancelled before it was confirmed: never confirmed
    EXPECT_THAT(handlers[0].confirmed, IsEmpty());
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].confirmed, ElementsAre("a", "c"));
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].confirmed, ElementsAre("a", "c"));
}

TEST_F(MemoryBrokerTest, TheConfirmationPrecedesTheChannelsMessages) {
    // Worker 1 subscribes and, in the same loop turn, gets a message for the channel from worker
    // 0's inbox hand-over: it hears of the subscription first.
    brokers[1]->subscribe("c");
    brokers[0]->publish("c", "1", PublishTicket{}, HistoryPolicy{});
    brokers[0]->flush();
    turn(1);
    ASSERT_THAT(handlers[1].confirmed, ElementsAre("c"));
    EXPECT_THAT(handlers[1].messages, ElementsAre(Pair("c", "1")));
}

TEST_F(MemoryBrokerTest, AlwaysUsable) {
    EXPECT_TRUE(brokers[0]->usable());
    EXPECT_EQ(handlers[0].state_changes, 0);
}

TEST_F(MemoryBrokerTest, HistoryPublishesGetOffsetsInDeliveryOrder) {
    const HistoryPolicy keep{3, 60000};
    brokers[1]->subscribe("h");
    brokers[0]->publish("h", "1", PublishTicket{1, 1, true}, keep);
    brokers[0]->publish("h", "plain", PublishTicket{1, 2, true}, HistoryPolicy{});
    brokers[0]->publish("h", "2", PublishTicket{1, 3, true}, keep);
    brokers[0]->flush();
    turn(1);
    ASSERT_EQ(handlers[1].positions.size(), 3u);
    const std::string epoch = handlers[1].positions[0].epoch;
    EXPECT_EQ(epoch.size(), 8u);
    EXPECT_THAT(handlers[1].positions, ElementsAre(StreamPosition{1, epoch}, StreamPosition{0, ""},
                                                   StreamPosition{2, epoch}));
    EXPECT_EQ(handlers[0].published_at, handlers[1].positions);
}

// Worker 1's message sits in worker 0's inbox when worker 0 publishes its own: the older one is
// delivered first.
TEST_F(MemoryBrokerTest, OwnHistoryMessagesWaitForOlderOnesInTheInbox) {
    const HistoryPolicy keep{3, 60000};
    brokers[0]->subscribe("h");
    brokers[1]->publish("h", "from 1", PublishTicket{}, keep);
    brokers[1]->flush();
    brokers[0]->publish("h", "from 0", PublishTicket{}, keep);
    brokers[0]->flush();
    turn(0);
    EXPECT_THAT(handlers[0].messages, ElementsAre(Pair("h", "from 1"), Pair("h", "from 0")));
    ASSERT_EQ(handlers[0].positions.size(), 2u);
    EXPECT_EQ(handlers[0].positions[0].offset, 1u);
    EXPECT_EQ(handlers[0].positions[1].offset, 2u);
}

TEST_F(MemoryBrokerTest, ReadsAreAnsweredOnTheNextLoopTurn) {
    const HistoryPolicy keep{3, 60000};
    for (int i = 1; i <= 5; ++i) {
        brokers[0]->publish("h", std::to_string(i), PublishTicket{}, keep);
    }
    brokers[0]->readHistory("h", HistoryRequest{9, keep, 0, 10, false});
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].histories, IsEmpty()) << "never from inside flush()";
    turn(0);
    ASSERT_EQ(handlers[0].histories.size(), 1u);
    const auto& [token, answer] = handlers[0].histories[0];
    EXPECT_EQ(token, 9u);
    EXPECT_EQ(answer.top.offset, 5u);
    EXPECT_THAT(answer.entries,
                ElementsAre(HistoryEntry{3, "3"}, HistoryEntry{4, "4"}, HistoryEntry{5, "5"}));
}

TEST_F(MemoryBrokerTest, ExpiredHistoriesAreSweptAway) {
    const HistoryPolicy brief{3, 1};
    brokers[0]->publish("gone", "1", PublishTicket{}, brief);
    brokers[0]->publish("kept", "1", PublishTicket{}, HistoryPolicy{3, 600000});
    brokers[0]->flush();
    EXPECT_EQ(factory.historyChannels(), 2u);
    // Nothing touches "gone" again: only the sweep (every flush here) can free it, 1 ms on.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (factory.historyChannels() > 1 && std::chrono::steady_clock::now() < deadline) {
        brokers[1]->flush();
    }
    EXPECT_EQ(factory.historyChannels(), 1u);
}

FleetCall fleetPublish(uint64_t token, std::string channel, std::string data) {
    return FleetCall{token, "publish", std::move(channel), {std::move(data)}};
}

TEST_F(MemoryBrokerTest, AFleetPublishReachesTheSubscribedWorkersAndAnswersTheirCount) {
    brokers[0]->subscribe("both");
    brokers[1]->subscribe("both");
    brokers[1]->subscribe("one");
    brokers[0]->fleetCall(fleetPublish(1, "both", R"({"n":2})"));
    brokers[0]->fleetCall(fleetPublish(2, "one", R"({"n":1})"));
    brokers[0]->fleetCall(fleetPublish(3, "none", R"({"n":0})"));
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].fleet, IsEmpty()) << "never from inside flush()";
    EXPECT_THAT(handlers[0].results, IsEmpty()) << "a fleet publish has no publish result";
    turn(0);
    turn(1);
    EXPECT_THAT(handlers[0].messages, ElementsAre(Pair("both", R"({"n":2})")));
    EXPECT_THAT(handlers[1].messages,
                ElementsAre(Pair("both", R"({"n":2})"), Pair("one", R"({"n":1})")));
    ASSERT_EQ(handlers[0].fleet.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        const auto& [token, reply] = handlers[0].fleet[i];
        EXPECT_EQ(token, i + 1);
        EXPECT_EQ(reply.status, FleetStatus::Ok);
        EXPECT_EQ(reply.integer, static_cast<int64_t>(2 - i));
        EXPECT_THAT(reply.items, IsEmpty());
    }
    EXPECT_THAT(handlers[1].fleet, IsEmpty());
}

TEST_F(MemoryBrokerTest, AnUnknownFleetFunctionAndAMalformedPublishAreErrors) {
    brokers[1]->subscribe("c");
    brokers[0]->fleetCall(FleetCall{7, "no_such", std::string(kFleetKey), {"a"}});
    brokers[0]->fleetCall(FleetCall{8, "publish", "c", {"a", "b"}});
    brokers[0]->fleetCall(FleetCall{9, "publish", "c", {}});
    brokers[0]->flush();
    turn(0);
    turn(1);
    EXPECT_THAT(handlers[1].messages, IsEmpty());
    ASSERT_EQ(handlers[0].fleet.size(), 3u);
    EXPECT_EQ(handlers[0].fleet[0].first, 7u);
    EXPECT_EQ(handlers[0].fleet[0].second.status, FleetStatus::Error);
    EXPECT_EQ(handlers[0].fleet[0].second.error, "unknown fleet function no_such");
    for (size_t i = 1; i < 3; ++i) {
        EXPECT_EQ(handlers[0].fleet[i].first, 7u + i);
        EXPECT_EQ(handlers[0].fleet[i].second.status, FleetStatus::Error);
        EXPECT_THAT(handlers[0].fleet[i].second.error, ::testing::StartsWith("publish takes one"));
    }
}

// A fleet publish goes out in order with the worker's publishes, and its reply follows their
// results; another worker's fleet call in between does not disturb either.
TEST_F(MemoryBrokerTest, FleetPublishesKeepTheirPlaceAmongPublishes) {
    brokers[1]->subscribe("c");
    brokers[0]->publish("c", "1", PublishTicket{1, 1, true}, HistoryPolicy{});
    brokers[0]->fleetCall(fleetPublish(10, "c", "2"));
    brokers[0]->publish("c", "3", PublishTicket{1, 3, true}, HistoryPolicy{3, 60000});
    brokers[0]->fleetCall(fleetPublish(11, "c", "4"));
    brokers[0]->publish("c", "5", PublishTicket{1, 5, true}, HistoryPolicy{});
    brokers[0]->flush();
    EXPECT_THAT(handlers[0].results,
                ElementsAre(Pair(1u, PublishStatus::Accepted), Pair(3u, PublishStatus::Accepted),
                            Pair(5u, PublishStatus::Accepted)));
    EXPECT_EQ(handlers[0].published_at[1].offset, 1u) << "the history publish keeps its position";
    EXPECT_THAT(handlers[0].fleet, IsEmpty());
    turn(1);
    EXPECT_THAT(handlers[1].messages, ElementsAre(Pair("c", "1"), Pair("c", "2"), Pair("c", "3"),
                                                  Pair("c", "4"), Pair("c", "5")));
    turn(0);
    ASSERT_EQ(handlers[0].fleet.size(), 2u);
    EXPECT_EQ(handlers[0].fleet[0].first, 10u);
    EXPECT_EQ(handlers[0].fleet[1].first, 11u);
    EXPECT_EQ(handlers[0].fleet[0].second.integer, 1);
    EXPECT_EQ(handlers[0].fleet[1].second.integer, 1);
}

}  // namespace
}  // namespace wsrelay
