// The hub's channels with history: positions, the cache of recent frames, coalesced reads, the
// merge of a read's answer with the live messages, and recovery after a broker gap. The broker is a
// fake that records reads; each test answers them as the worker's onHistory does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "metrics/relay_metrics.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/hub.h"
#include "worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using testing::FakeBroker;
using ::testing::IsEmpty;

// The payload of an unmasked server frame.
std::string payloadOf(const Frame& frame) {
    const std::string_view b = frame.bytes();
    size_t len = static_cast<unsigned char>(b[1]) & 0x7F;
    size_t at = 2;
    if (len == 126) {
        at = 4;
    } else if (len == 127) {
        at = 10;
    }
    return std::string(b.substr(at));
}

// A frame as a short line: "msg 4", "ack 1 @5/e1 recovered", "ack 1 @5/e1 not recovered",
// "subscribed @5/e1", "resubscribed @9/e1", "resubscribed".
std::string describe(const Frame& frame) {
    simdjson::dom::parser parser;
    const std::string text = payloadOf(frame);
    simdjson::dom::element doc = parser.parse(text);
    const std::string_view op = doc["op"].get_string().value();
    std::string out(op == "message" ? "msg" : op);
    uint64_t offset = 0;
    std::string_view epoch;
    const bool positioned = doc["offset"].get_uint64().get(offset) == simdjson::SUCCESS &&
                            doc["epoch"].get_string().get(epoch) == simdjson::SUCCESS;
    if (op == "message") return positioned ? out + " " + std::to_string(offset) : out + " -";
    uint64_t id = 0;
    if (doc["id"].get_uint64().get(id) == simdjson::SUCCESS) out += " " + std::to_string(id);
    if (positioned) out += " @" + std::to_string(offset) + "/" + std::string(epoch);
    bool recovered = false;
    if (doc["recovered"].get_bool().get(recovered) == simdjson::SUCCESS) {
        out += recovered ? " recovered" : " not recovered";
    }
    return out;
}

class RecordingSink : public Sink {
public:
    void push(const FramePtr& frame) override { frames.push_back(frame); }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        for (const FramePtr& f : frames) out.push_back(describe(*f.get()));
        return out;
    }
    // The lines since the last call.
    std::vector<std::string> take() {
        std::vector<std::string> out = lines();
        frames.clear();
        return out;
    }
    std::vector<FramePtr> frames;
};

class NullListener : public HubListener {
public:
    void onChannelOpened(std::string_view channel) override {
        events.push_back("+" + std::string(channel));
    }
    void onChannelClosed(std::string_view channel) override {
        events.push_back("-" + std::string(channel));
    }
    std::vector<std::string> events;
};

// Leaves the hub it joined when it goes, as a session does when it closes.
struct Client {
    ~Client() {
        if (hub != nullptr) hub->leaveAll(membership);
    }
    RecordingSink sink;
    Membership membership{sink};
    Hub* hub = nullptr;
};

constexpr uint64_t kMaxFrame = 1 << 20;
constexpr uint32_t kMaxRecover = 5;
constexpr std::string_view kChannel = "hist";

std::vector<Config::Channel> channelRules() { return {{"hist", 100, 60000}, {"small", 3, 60000}}; }

SubscribeAck ackWith(uint64_t id) { return {SubscribeAck::Kind::Ack, id}; }
std::optional<protocol::Position> since(uint64_t offset, std::string_view epoch = "e1") {
    return protocol::Position{offset, epoch};
}

class HubHistoryTest : public ::testing::Test {
protected:
    HubHistoryTest() { reads.setBroker(&broker); }

    Hub::SubscribeResult join(Client& c, SubscribeAck ack,
                              std::optional<protocol::Position> from = std::nullopt,
                              std::string_view channel = kChannel) {
        c.hub = &hub;
        return hub.subscribe(c.membership, channel, 100, ack, from);
    }
    Hub::Delivery live(uint64_t offset, std::string_view epoch = "e1",
                       std::string_view channel = kChannel) {
        return hub.deliver(channel, std::to_string(offset), 0, {offset, epoch});
    }
    // Answers read `i` (in the order the broker got them) with entries first..top.
    void answer(size_t i, uint64_t top, uint64_t first, std::string_view epoch = "e1") {
        HistoryAnswer a;
        a.top = {top, std::string(epoch)};
        for (uint64_t o = first; o != 0 && o <= top; ++o)
            a.entries.push_back({o, std::to_string(o)});
        reads.onAnswer(broker.reads.at(i).request.token, std::move(a));
    }
    void unavailable(size_t i) {
        HistoryAnswer a;
        a.status = HistoryStatus::Unavailable;
        reads.onAnswer(broker.reads.at(i).request.token, std::move(a));
    }
    // A channel whose position the hub knows: `c` subscribed and the read said `top`.
    void known(Client& c, uint64_t top) {
        join(c, ackWith(1));
        hub.confirm(kChannel);
        answer(broker.reads.size() - 1, top, top > kMaxRecover ? top - kMaxRecover + 1 : 1);
        c.sink.frames.clear();
    }
    int64_t recoveries(metrics::RecoveryResult r) { return metrics.recoveries[r].value(); }

    NullListener listener;
    FakeBroker broker;
    metrics::Registry registry{1};
    metrics::WorkerMetrics& metrics = registry.worker(0);
    ChannelRules rules{channelRules()};
    HistoryReads reads{metrics, 32};
    Hub hub{listener, kMaxFrame, HubHistory{&rules, &reads, kMaxRecover, &metrics}};
};

TEST_F(HubHistoryTest, TheAckWaitsForTheChannelsPositionAndCarriesIt) {
    Client a;
    ASSERT_EQ(join(a, ackWith(1)), Hub::SubscribeResult::Subscribed);
    EXPECT_THAT(broker.reads, IsEmpty()) << "nothing is read before the subscription is live";
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 1u);
    const HistoryRequest& r = broker.reads[0].request;
    EXPECT_EQ(broker.reads[0].channel, kChannel);
    EXPECT_EQ(r.after, 0u);
    EXPECT_EQ(r.limit, kMaxRecover);
    EXPECT_TRUE(r.newest);
    EXPECT_EQ(r.policy.size, 100);
    EXPECT_THAT(a.sink.lines(), IsEmpty());
    answer(0, 3, 1);
    EXPECT_THAT(a.sink.take(), ElementsAre("ack 1 @3/e1"));
    live(4);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 4"));
}

TEST_F(HubHistoryTest, AKnownPositionServesSinceFromTheCacheWithoutARead) {
    Client a, b;
    known(a, 3);
    live(4);
    live(5);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 4", "msg 5"));
    join(b, ackWith(7), since(3));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 4", "msg 5", "ack 7 @5/e1 recovered"));
    EXPECT_EQ(broker.reads.size(), 1u) << "only the first subscriber's read";
    EXPECT_EQ(recoveries(metrics::RecoveryResult::Recovered), 1);
    EXPECT_EQ(metrics.recovered_from[metrics::RecoverySource::Cache].value(), 1);
    // A subscribe without since is answered at once too, with the position.
    Client c;
    join(c, ackWith(8));
    EXPECT_THAT(c.sink.take(), ElementsAre("ack 8 @5/e1"));
    live(6);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 6"));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 6"));
    EXPECT_THAT(c.sink.take(), ElementsAre("msg 6"));
}

TEST_F(HubHistoryTest, WaitersPresentWhenTheReadGoesShareOneRead) {
    Client a, b, c;
    join(a, ackWith(1), since(4));
    join(b, ackWith(2), since(2));
    join(c, ackWith(3));
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 1u);
    EXPECT_EQ(broker.reads[0].request.after, 0u) << "the whole window";
    EXPECT_EQ(broker.reads[0].request.limit, kMaxRecover);
    EXPECT_TRUE(broker.reads[0].request.newest);
    answer(0, 6, 3);
    EXPECT_EQ(broker.reads.size(), 1u);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 5", "msg 6", "ack 1 @6/e1 recovered"));
    EXPECT_THAT(b.sink.take(),
                ElementsAre("msg 3", "msg 4", "msg 5", "msg 6", "ack 2 @6/e1 recovered"));
    EXPECT_THAT(c.sink.take(), ElementsAre("ack 3 @6/e1"));
    EXPECT_EQ(metrics.recovered_from[metrics::RecoverySource::Read].value(), 2);
}

// A reconnect storm: the read is of the whole window, so a member arriving after it with an
// older since than any member it was made for is served from the cache it filled.
TEST_F(HubHistoryTest, ALaterMemberWithAnOlderSinceIsServedFromTheWindowTheReadFilled) {
    Client a, b;
    join(a, ackWith(1), since(5));
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 1u);
    answer(0, 6, 2);  // the newest kMaxRecover: 2..6
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 6", "ack 1 @6/e1 recovered"));
    join(b, ackWith(2), since(2));
    EXPECT_THAT(b.sink.take(),
                ElementsAre("msg 3", "msg 4", "msg 5", "msg 6", "ack 2 @6/e1 recovered"));
    EXPECT_EQ(broker.reads.size(), 1u);
    EXPECT_EQ(metrics.recovered_from[metrics::RecoverySource::Cache].value(), 1);
}

TEST_F(HubHistoryTest, AMemberJoiningWhileAReadIsUnderWayWaitsForTheNextOne) {
    Client a, b;
    join(a, ackWith(1), since(1));
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 1u);
    join(b, ackWith(2), since(0, "e0"));
    EXPECT_EQ(broker.reads.size(), 1u) << "one read per channel at a time";
    answer(0, 2, 1);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 2", "ack 1 @2/e1 recovered"));
    // b's since is of another epoch: no read brings that back.
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2 @2/e1 not recovered"));
    EXPECT_EQ(broker.reads.size(), 1u);
    // Known now: a later subscriber is served from the cache (1..2).
    Client d;
    join(d, ackWith(4), since(0));
    EXPECT_THAT(d.sink.take(), ElementsAre("msg 1", "msg 2", "ack 4 @2/e1 recovered"));
    EXPECT_EQ(broker.reads.size(), 1u);
}

TEST_F(HubHistoryTest, LiveMessagesDuringAReadAreNeitherLostNorDuplicated) {
    Client a, b;
    known(a, 4);
    // b needs more than the cache holds (1..4 minus nothing: since 0 holds; use a larger gap).
    for (uint64_t o = 5; o <= 9; ++o) live(o);  // the cache keeps 5..9
    a.sink.frames.clear();
    join(b, ackWith(2), since(3));
    ASSERT_EQ(broker.reads.size(), 2u);
    EXPECT_EQ(broker.reads[1].request.after, 0u);
    // Published while the read is under way: 10 before Redis read (in the answer), 11 after.
    live(10);
    live(11);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 10", "msg 11"));
    EXPECT_THAT(b.sink.lines(), IsEmpty()) << "a waiting member gets nothing live";
    answer(1, 10, 6);  // newest 5: 6..10
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2 @11/e1 not recovered"))
        << "4 and 5 are no longer in the answer";

    Client c;
    join(c, ackWith(3), since(6));
    EXPECT_THAT(c.sink.take(), ElementsAre("msg 7", "msg 8", "msg 9", "msg 10", "msg 11",
                                           "ack 3 @11/e1 recovered"));
    live(12);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 12"));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 12"));
    EXPECT_THAT(c.sink.take(), ElementsAre("msg 12"));
}

TEST_F(HubHistoryTest, AReadsAnswerMergesWithWhatCameLive) {
    Client a, b;
    // a joins without an ack (auto_subscribe): it gets every live message from the start.
    join(a, {});
    join(b, ackWith(2), since(1));
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 1u);
    live(3);  // the read ran before 3 was published
    live(4);
    answer(0, 3, 1);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 3", "msg 4"));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 2", "msg 3", "msg 4", "ack 2 @4/e1 recovered"));
    live(5);
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 5"));
}

TEST_F(HubHistoryTest, AMessageArrivingLiveAfterTheAnswerThatHeldItIsNotDuplicated) {
    Client a, b;
    join(a, {});
    join(b, ackWith(2), since(2));
    hub.confirm(kChannel);
    // Redis answered the read (top 5) before pub/sub delivered 4 and 5 to this worker.
    answer(0, 5, 1);
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 3", "msg 4", "msg 5", "ack 2 @5/e1 recovered"));
    live(4);
    live(5);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 4", "msg 5")) << "a had not got them";
    EXPECT_THAT(b.sink.take(), IsEmpty()) << "b had";
    live(6);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 6"));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 6"));

    // A member served from the cache is at the live position: nothing to skip.
    Client d;
    join(d, ackWith(4), since(6));
    EXPECT_THAT(d.sink.take(), ElementsAre("ack 4 @6/e1 recovered"));
    live(7);
    EXPECT_THAT(d.sink.take(), ElementsAre("msg 7"));
}

TEST_F(HubHistoryTest, ASinceOlderThanTheHistoryIsNotRecovered) {
    Client a;
    join(a, ackWith(1), since(2));
    hub.confirm(kChannel);
    answer(0, 20, 16);  // the newest max_recover
    EXPECT_THAT(a.sink.take(), ElementsAre("ack 1 @20/e1 not recovered"));
    EXPECT_EQ(recoveries(metrics::RecoveryResult::NotRecovered), 1);
    // A since at the top needs nothing.
    Client b;
    join(b, ackWith(2), since(20));
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2 @20/e1 recovered"));
}

TEST_F(HubHistoryTest, ASinceOfAnotherEpochIsNotRecovered) {
    Client a, b;
    join(a, ackWith(1), since(3, "old"));
    hub.confirm(kChannel);
    answer(0, 5, 1, "new");
    EXPECT_THAT(a.sink.take(), ElementsAre("ack 1 @5/new not recovered"));
    join(b, ackWith(2), since(3, "old"));
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2 @5/new not recovered"));
    EXPECT_EQ(broker.reads.size(), 1u) << "known, so another epoch needs no read";
}

TEST_F(HubHistoryTest, MoreLiveMessagesThanTheListHoldsDuringAReadMeansNotRecovered) {
    Client a, b;
    join(a, {});
    join(b, ackWith(2), since(3));
    hub.confirm(kChannel);
    // The answer (top 5) comes after 7 live messages: the list keeps the newest 5 (8..12).
    for (uint64_t o = 6; o <= 12; ++o) live(o);
    answer(0, 5, 1);
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2 @12/e1 not recovered"));
    EXPECT_EQ(a.sink.take().size(), 7u);
    live(13);
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 13"));
    // The run after the gap is the cache: a since inside it recovers.
    Client c;
    join(c, ackWith(3), since(10));
    EXPECT_THAT(c.sink.take(), ElementsAre("msg 11", "msg 12", "msg 13", "ack 3 @13/e1 recovered"));
}

TEST_F(HubHistoryTest, AGapAmongLiveMessagesDropsTheCache) {
    Client a, b;
    known(a, 3);
    live(5);  // 4 never came
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 5"));
    join(b, ackWith(2), since(3));
    ASSERT_EQ(broker.reads.size(), 2u) << "unknown again: a read";
    answer(1, 5, 1);
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 4", "msg 5", "ack 2 @5/e1 recovered"));
}

TEST_F(HubHistoryTest, AMessageWithoutAPositionReachesTheMembersUncached) {
    Client a;
    known(a, 3);
    hub.deliver(kChannel, R"("plain")", 0, {});
    live(4);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg -", "msg 4"));
    Client b;
    join(b, ackWith(2), since(3));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 4", "ack 2 @4/e1 recovered"));
}

TEST_F(HubHistoryTest, AnAppGrantIsToldWithThePosition) {
    Client a;
    join(a, {SubscribeAck::Kind::Subscribed, 0});
    hub.confirm(kChannel);
    answer(0, 9, 5);
    EXPECT_THAT(a.sink.take(), ElementsAre("subscribed @9/e1"));
}

TEST_F(HubHistoryTest, ASubscribeWithoutAnAckStillRecoversItsMessages) {
    // The app answered the subscribe hook with a reply: the client gets no ack.
    Client a, b;
    join(a, {}, since(1));
    hub.confirm(kChannel);
    answer(0, 3, 1);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 2", "msg 3"));
    join(b, {}, since(2, "other"));
    EXPECT_THAT(b.sink.take(), IsEmpty());
    live(4);
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 4"));
    // Without a position either.
    Client c;
    join(c, {}, since(1), "small");
    hub.confirm("small");
    unavailable(1);
    EXPECT_THAT(c.sink.take(), IsEmpty());
}

TEST_F(HubHistoryTest, AMemberLeavingWhileHeldIsToldNothing) {
    Client a, b;
    join(a, ackWith(1), since(1));
    join(b, ackWith(2), since(1));
    hub.confirm(kChannel);
    hub.unsubscribe(a.membership, kChannel);
    answer(0, 3, 1);
    EXPECT_THAT(a.sink.lines(), IsEmpty());
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 2", "msg 3", "ack 2 @3/e1 recovered"));
}

TEST_F(HubHistoryTest, AChannelClosedDuringItsReadIgnoresTheAnswerAndReadsAgainWhenReopened) {
    Client a;
    join(a, ackWith(1), since(1));
    hub.confirm(kChannel);
    ASSERT_EQ(reads.inFlight(), 1u);
    hub.leaveAll(a.membership);
    EXPECT_THAT(listener.events, ElementsAre("+hist", "-hist"));
    Client b;
    join(b, ackWith(2), since(1));
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 2u);
    answer(0, 3, 1);  // the closed channel's: answered to nobody
    EXPECT_THAT(b.sink.lines(), IsEmpty());
    answer(1, 4, 1);
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 2", "msg 3", "msg 4", "ack 2 @4/e1 recovered"));
    EXPECT_EQ(reads.inFlight(), 0u);
}

TEST_F(HubHistoryTest, AnUnreadableHistoryAcksWithoutAPosition) {
    Client a, b;
    join(a, ackWith(1), since(1));
    join(b, ackWith(2));
    hub.confirm(kChannel);
    unavailable(0);
    EXPECT_THAT(a.sink.take(), ElementsAre("ack 1"));
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2"));
    EXPECT_EQ(recoveries(metrics::RecoveryResult::NotRecovered), 1);
    live(7);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 7"));
}

TEST_F(HubHistoryTest, WhileTheBrokerIsDownTheAckGoesAtOnceWithThePositionTheMembersHave) {
    Client a, b, c;
    known(a, 4);
    hub.setBrokerUp(false);
    join(b, ackWith(2));
    EXPECT_THAT(b.sink.take(), ElementsAre("ack 2 @4/e1"));
    // A channel opened during the outage has no position yet.
    join(c, ackWith(3), std::nullopt, "small");
    EXPECT_THAT(c.sink.take(), ElementsAre("ack 3"));
}

TEST_F(HubHistoryTest, WaitersAreAnsweredWhenTheBrokerGoesDown) {
    Client a;
    join(a, ackWith(1));
    hub.confirm(kChannel);
    ASSERT_EQ(broker.reads.size(), 1u);
    hub.setBrokerUp(false);
    EXPECT_THAT(a.sink.take(), ElementsAre("ack 1"));
    answer(0, 3, 1);  // stale: says nothing of what the outage lost
    EXPECT_THAT(a.sink.lines(), IsEmpty());
    live(4);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 4"));
}

TEST_F(HubHistoryTest, AfterAGapTheMembersGetWhatTheyMissedWithoutANotice) {
    Client a, b;
    known(a, 5);
    join(b, ackWith(2));
    b.sink.frames.clear();
    hub.setBrokerUp(false);
    hub.setBrokerUp(true, true);
    ASSERT_EQ(broker.reads.size(), 2u);
    EXPECT_EQ(broker.reads[1].request.after, 5u);
    live(8);  // held until the answer
    EXPECT_THAT(a.sink.lines(), IsEmpty());
    answer(1, 7, 6);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 6", "msg 7", "msg 8"));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 6", "msg 7", "msg 8"));
    EXPECT_EQ(metrics.channel_recoveries[metrics::RecoveryResult::Recovered].value(), 1);
    live(9);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 9"));
}

TEST_F(HubHistoryTest, AfterAGapLargerThanMaxRecoverTheMembersAreToldWithThePosition) {
    Client a;
    known(a, 5);
    hub.setBrokerUp(false);
    hub.setBrokerUp(true, true);
    live(21);
    answer(1, 20, 16);
    EXPECT_THAT(a.sink.take(), ElementsAre("resubscribed @20/e1", "msg 21"));
    EXPECT_EQ(metrics.channel_recoveries[metrics::RecoveryResult::NotRecovered].value(), 1);
    // The cache after it: 17..21.
    Client b;
    join(b, ackWith(2), since(18));
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 19", "msg 20", "msg 21", "ack 2 @21/e1 recovered"));
}

TEST_F(HubHistoryTest, AfterAGapInAnotherEpochTheMembersAreToldWithThePosition) {
    Client a;
    known(a, 5);
    hub.setBrokerUp(false);
    hub.setBrokerUp(true, true);
    answer(1, 2, 1, "e2");
    EXPECT_THAT(a.sink.take(), ElementsAre("resubscribed @2/e2"));
}

TEST_F(HubHistoryTest, AMessageTheRecoveryHeldThatComesLiveAgainIsNotDuplicated) {
    Client a;
    known(a, 5);
    hub.setBrokerUp(true, true);  // a gap without an outage (a Cluster slot moved)
    answer(1, 7, 6);              // 6 and 7 are still on their way live
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 6", "msg 7"));
    live(6);
    live(7);
    EXPECT_THAT(a.sink.take(), IsEmpty());
    live(8);
    EXPECT_THAT(a.sink.take(), ElementsAre("msg 8"));
}

TEST_F(HubHistoryTest, AGapDuringAMembersReadMakesItWaitForTheChannelsRecovery) {
    Client a, b;
    known(a, 3);
    live(5);  // 4 never came: the position is unknown again
    a.sink.frames.clear();
    join(b, ackWith(2), since(3));
    ASSERT_EQ(broker.reads.size(), 2u);
    hub.setBrokerUp(true, true);
    EXPECT_EQ(broker.reads.size(), 2u) << "one read at a time";
    answer(1, 5, 1);  // stale: serves nobody
    EXPECT_THAT(b.sink.lines(), IsEmpty());
    ASSERT_EQ(broker.reads.size(), 3u);
    EXPECT_EQ(broker.reads[2].request.after, 0u) << "the members have no position to recover from";
    answer(2, 6, 2);
    EXPECT_THAT(a.sink.take(), ElementsAre("resubscribed @6/e1"));
    // b waited through it, and the channel's read filled the cache it is served from.
    EXPECT_THAT(b.sink.take(), ElementsAre("msg 4", "msg 5", "msg 6", "ack 2 @6/e1 recovered"));
    EXPECT_EQ(broker.reads.size(), 3u);
}

TEST_F(HubHistoryTest, ChannelsWithoutHistoryKeepTodaysBehaviour) {
    Client a;
    join(a, ackWith(1), std::nullopt, "plain");
    hub.confirm("plain");
    EXPECT_THAT(a.sink.take(), ElementsAre("ack 1"));
    hub.deliver("plain", "1", 0, {3, "e1"});
    EXPECT_THAT(a.sink.take(), ElementsAre("msg -")) << "no position on a channel without history";
    hub.setBrokerUp(false);
    hub.setBrokerUp(true, true);
    EXPECT_THAT(a.sink.take(), ElementsAre("resubscribed"));
    EXPECT_THAT(broker.reads, IsEmpty());
}

TEST(HistoryReadsTest, ReadsBeyondTheBoundWaitInOrderAndCancelledOnesAreDropped) {
    FakeBroker broker;
    metrics::Registry registry(1);
    HistoryReads reads(registry.worker(0), 2);
    reads.setBroker(&broker);
    std::vector<std::string> answered;
    auto done = [&](std::string name) {
        return [&answered, name](uint64_t, HistoryAnswer&&) { answered.push_back(name); };
    };
    reads.read("a", {}, done("a"));
    const uint64_t b = reads.read("b", {}, done("b"));
    reads.read("c", {}, done("c"), 7);
    reads.read("d", {}, done("d"), 8);
    reads.read("e", {}, done("e"));
    EXPECT_EQ(broker.reads.size(), 2u);
    EXPECT_EQ(reads.waiting(), 3u);
    EXPECT_EQ(registry.worker(0).history_reads_in_flight.value(), 2);
    reads.cancelOwner(8);  // waiting: dropped
    reads.cancel(b);       // under way: answered to nobody
    reads.onAnswer(broker.reads[1].request.token, {});
    ASSERT_EQ(broker.reads.size(), 3u);
    EXPECT_EQ(broker.reads[2].channel, "c");
    reads.onAnswer(broker.reads[0].request.token, {});
    ASSERT_EQ(broker.reads.size(), 4u);
    EXPECT_EQ(broker.reads[3].channel, "e");
    reads.onAnswer(broker.reads[2].request.token, {});
    reads.onAnswer(broker.reads[3].request.token, {HistoryStatus::Unavailable, {}, {}});
    EXPECT_THAT(answered, ElementsAre("a", "c", "e"));
    EXPECT_EQ(reads.inFlight(), 0u);
    EXPECT_EQ(registry.worker(0).history_reads_in_flight.value(), 0);
    EXPECT_EQ(registry.worker(0).history_reads[metrics::HistoryReadResult::Ok].value(), 3);
    EXPECT_EQ(registry.worker(0).history_reads[metrics::HistoryReadResult::Unavailable].value(), 1);
}

}  // namespace
}  // namespace wsrelay
