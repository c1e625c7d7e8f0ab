// ChannelPresence: a worker's members of presence channels kept in the fleet's presence
// (docs/scaling.md "Presence") through fleet calls, join/leave frames, reads, and the session's
// presence command on top of it. The broker is a fake that records the calls; the test answers.
#include "relay/fleet/channel_presence.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/fleet/fleet_calls.h"
#include "relay/session/session.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

Config presenceConfig() {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    Config::Channel room;
    room.pattern = "room:*";
    room.presence = true;
    room.join_leave = true;
    Config::Channel quiet;
    quiet.pattern = "quiet:*";
    quiet.presence = true;
    c.channels = {room, quiet};
    return c;
}

int receive(TestSession& s, std::string_view text) {
    return s->onReceive(text.data(), text.size(), {});
}

std::vector<std::string> written(WorkerParts& w, TestSession& s) {
    w.flush.flushTurn();
    std::vector<std::string> out = s.wire.texts();
    s.wire.bytes.clear();
    return out;
}

FleetReply items(std::vector<std::string> values) {
    FleetReply r;
    r.items = std::move(values);
    return r;
}

class ChannelPresenceTest : public ::testing::Test {
protected:
    ChannelPresenceTest()
        : calls(&parts.broker), presence(
                                    parts.loop, parts.channels, calls,
                                    [this](uint64_t session, std::string& user, std::string& info) {
                                        if (session != 7) return false;
                                        user = "al\"ice";
                                        info = R"({"n":1})";
                                        return true;
                                    },
                                    ChannelPresence::Options{"inst0001", 25000, 10000, 2}) {
        parts.hub.setPresence(&presence, &parts.channels);
        presence.setBroker(&parts.broker);
        parts.ctx.presence = &presence;
    }

    // Answers the fleet call `index` made so far.
    void answer(size_t index, FleetReply reply) {
        calls.onReply(parts.broker.fleet_calls.at(index).token, std::move(reply));
    }

    WorkerParts parts{presenceConfig()};
    FleetCalls calls;
    ChannelPresence presence;
};

TEST_F(ChannelPresenceTest, AMemberJoinsWithItsUserAndInfoAndLeaves) {
    TestSession s(parts, 7);
    s->subscribeAndAnswer("quiet:1", 1);
    ASSERT_EQ(parts.broker.fleet_calls.size(), 1u);
    const FleetCall& join = parts.broker.fleet_calls[0];
    EXPECT_EQ(join.function, "presence_join");
    EXPECT_EQ(join.key, "quiet:1");
    EXPECT_THAT(join.args,
                ElementsAre("25000", "inst0001.7",
                            R"({"user":"al\"ice","connection":"inst0001.7","info":{"n":1}})"));
    EXPECT_EQ(presence.localMembers("quiet:1"), 1u);
    s.close();
    ASSERT_EQ(parts.broker.fleet_calls.size(), 2u);
    EXPECT_EQ(parts.broker.fleet_calls[1].function, "presence_leave");
    EXPECT_THAT(parts.broker.fleet_calls[1].args, ElementsAre("inst0001.7"));
    EXPECT_EQ(presence.localMembers("quiet:1"), 0u);
}

TEST_F(ChannelPresenceTest, ChannelsWithoutPresenceCostNothing) {
    TestSession s(parts, 8);
    s->subscribeAndAnswer("plain", 1);
    EXPECT_THAT(parts.broker.fleet_calls, IsEmpty());
    EXPECT_THAT(parts.broker.subscribed, ElementsAre("plain"));
}

TEST_F(ChannelPresenceTest, JoinLeaveChannelsPublishFramesUnderTheCap) {
    TestSession s(parts, 8);
    s->subscribeAndAnswer("room:1", 1);
    // The worker holds the channel and, as it opens (the worker's HubListener), its join/leave
    // channel.
    presence.onChannelOpened("room:1");
    EXPECT_THAT(parts.broker.subscribed, ElementsAre("room:1", "wsrelay:pj:{room:1}"));
    answer(0, items({"1", "2"}));
    ASSERT_EQ(parts.broker.fleet_calls.size(), 2u);
    const FleetCall& frame = parts.broker.fleet_calls[1];
    EXPECT_EQ(frame.function, "publish");
    EXPECT_EQ(frame.key, "wsrelay:pj:{room:1}");
    EXPECT_THAT(frame.args, ElementsAre(R"({"op":"join","channel":"room:1","member":{"user":null,)"
                                        R"("connection":"inst0001.8","info":null}})"));
    // Over the cap (2): no frame for the next one.
    TestSession t(parts, 9);
    t->subscribeAndAnswer("room:1", 1);
    answer(2, items({"1", "3"}));
    EXPECT_EQ(parts.broker.fleet_calls.size(), 3u);
    // The count the worker heard last (3) decides the leave: none either.
    t.close();
    EXPECT_EQ(parts.broker.fleet_calls.back().function, "presence_leave");
}

TEST_F(ChannelPresenceTest, FramesHeardOnTheJoinLeaveChannelGoToTheMembers) {
    TestSession s(parts, 8);
    s->subscribeAndAnswer("room:1", std::nullopt);
    const std::string join = R"({"op":"join","channel":"room:1","member":{}})";
    written(parts, s);
    EXPECT_TRUE(presence.onBrokerMessage("wsrelay:pj:{room:1}", join, parts.hub));
    EXPECT_TRUE(presence.onBrokerMessage("wsrelay:pj:{room:1}", "\"junk\"", parts.hub));
    EXPECT_FALSE(presence.onBrokerMessage("room:1", join, parts.hub));
    EXPECT_THAT(written(parts, s), ElementsAre(join));
}

TEST_F(ChannelPresenceTest, RefreshJoinsEveryLocalMemberInSlices) {
    std::vector<std::unique_ptr<TestSession>> sessions;
    for (uint64_t id = 100; id < 100 + ChannelPresence::kRefreshSlice + 1; ++id) {
        sessions.push_back(std::make_unique<TestSession>(parts, id));
        (*sessions.back())->subscribeAndAnswer("quiet:big", std::nullopt);
    }
    parts.broker.fleet_calls.clear();
    presence.refreshNow();
    ASSERT_EQ(parts.broker.fleet_calls.size(), 2u);
    EXPECT_EQ(parts.broker.fleet_calls[0].args.size(), 1 + 2 * ChannelPresence::kRefreshSlice);
    EXPECT_EQ(parts.broker.fleet_calls[1].args.size(), 3u);
    EXPECT_EQ(parts.broker.fleet_calls[1].args[0], "25000");
}

TEST_F(ChannelPresenceTest, TheCommandAnswersWithTheMembers) {
    TestSession s(parts, 8);
    receive(s, R"({"op":"presence","channel":"quiet:1","id":3})");
    ASSERT_EQ(parts.broker.fleet_calls.size(), 1u);
    EXPECT_EQ(parts.broker.fleet_calls[0].function, "presence_get");
    EXPECT_THAT(parts.broker.fleet_calls[0].args, ElementsAre("1000"));
    // A second one while the first is under way is refused.
    receive(s, R"({"op":"presence","channel":"quiet:1","id":4})");
    answer(0, items({"1", R"({"user":null,"connection":"x.1","info":null})"}));
    receive(s, R"({"op":"presence","channel":"plain","id":5})");
    EXPECT_THAT(
        written(parts, s),
        ElementsAre(R"({"op":"error","id":4,"code":429,"reason":"a presence read is in flight"})",
                    R"({"op":"presence","id":3,"channel":"quiet:1","members":[{"user":null,)"
                    R"("connection":"x.1","info":null}],"truncated":true})",
                    R"({"op":"error","id":5,"code":405,"reason":"no presence on this channel"})"));
}

TEST_F(ChannelPresenceTest, AFailedReadIsUnavailable) {
    TestSession s(parts, 8);
    receive(s, R"({"op":"presence","channel":"quiet:1","id":3})");
    FleetReply down;
    down.status = FleetStatus::Unavailable;
    answer(0, std::move(down));
    EXPECT_THAT(written(parts, s),
                ElementsAre(R"({"op":"error","id":3,"code":503,"reason":"presence unavailable"})"));
}

TEST_F(ChannelPresenceTest, StatsReadBothCounts) {
    ChannelPresence::Stats got;
    presence.stats("quiet:1", [&](ChannelPresence::Stats&& s) { got = s; });
    EXPECT_EQ(parts.broker.fleet_calls[0].function, "presence_stats");
    answer(0, items({"5", "3"}));
    EXPECT_EQ(got.clients, 5);
    EXPECT_EQ(got.users, 3);
}

}  // namespace
}  // namespace wsrelay
