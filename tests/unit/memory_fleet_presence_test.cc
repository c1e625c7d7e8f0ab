#include "adapters/memory_fleet_presence.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using Clock = MemoryPresence::Clock;

FleetCall call(std::string function, std::string key, std::vector<std::string> args) {
    return FleetCall{1, std::move(function), std::move(key), std::move(args)};
}

std::string member(const char* user, const char* connection) {
    std::string u = user == nullptr ? "null" : std::string("\"") + user + "\"";
    return R"({"user":)" + u + R"(,"connection":")" + connection + R"(","info":null})";
}

class MemoryPresenceTest : public ::testing::Test {
protected:
    FleetReply run(std::string function, std::vector<std::string> args, std::string key = "chat") {
        std::optional<FleetReply> r = presence.call(call(std::move(function), key, args), now);
        EXPECT_TRUE(r.has_value());
        return r.value_or(FleetReply{});
    }
    MemoryPresence presence;
    Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
};

TEST_F(MemoryPresenceTest, JoinCountsNewMembersAndTotal) {
    FleetReply r =
        run("presence_join", {"1000", "a.1", member("u1", "a.1"), "a.2", member("u1", "a.2")});
    EXPECT_EQ(r.status, FleetStatus::Ok);
    EXPECT_THAT(r.items, ElementsAre("2", "2"));
    // A refresh adds nothing, and keeps the total.
    r = run("presence_join", {"1000", "a.1", member("u1", "a.1"), "b.3", member(nullptr, "b.3")});
    EXPECT_THAT(r.items, ElementsAre("1", "3"));
}

TEST_F(MemoryPresenceTest, StatsCountsDistinctUsers) {
    run("presence_join", {"1000", "a.1", member("u1", "a.1"), "a.2", member("u1", "a.2"), "b.3",
                          member(nullptr, "b.3"), "b.4", member("u2", "b.4")});
    EXPECT_THAT(run("presence_stats", {}).items, ElementsAre("4", "2"));
    EXPECT_THAT(run("presence_stats", {}, "other").items, ElementsAre("0", "0"));
}

TEST_F(MemoryPresenceTest, LeaveRemovesOnlyThoseGiven) {
    run("presence_join", {"1000", "a.1", member("u1", "a.1"), "a.2", member("u2", "a.2")});
    FleetReply r = run("presence_leave", {"a.2", "zz.9"});
    EXPECT_EQ(r.integer, 1);
    EXPECT_THAT(run("presence_get", {"10"}).items, ElementsAre("0", member("u1", "a.1")));
    EXPECT_EQ(run("presence_leave", {"a.1"}).integer, 1);
    EXPECT_EQ(presence.channelCount(), 0u);
    EXPECT_EQ(run("presence_leave", {"a.1"}, "nowhere").integer, 0);
}

TEST_F(MemoryPresenceTest, GetIsBoundedAndSaysWhenCut) {
    run("presence_join", {"1000", "a.1", member("u1", "a.1")});
    now += std::chrono::milliseconds(1);
    run("presence_join", {"1000", "a.2", member("u2", "a.2")});
    now += std::chrono::milliseconds(1);
    run("presence_join", {"1000", "a.3", member("u3", "a.3")});
    // Oldest expiry first, as ZRANGE on the expiries.
    EXPECT_THAT(run("presence_get", {"2"}).items,
                ElementsAre("1", member("u1", "a.1"), member("u2", "a.2")));
    EXPECT_THAT(run("presence_get", {"3"}).items.front(), "0");
    EXPECT_THAT(run("presence_get", {"3"}, "none").items, ElementsAre("0"));
}

TEST_F(MemoryPresenceTest, MembersNotRefreshedExpire) {
    run("presence_join", {"1000", "a.1", member("u1", "a.1"), "b.1", member("u2", "b.1")});
    now += std::chrono::milliseconds(600);
    run("presence_join", {"1000", "a.1", member("u1", "a.1")});  // a's relay refreshes
    now += std::chrono::milliseconds(400);                       // b.1 is at its expiry
    EXPECT_THAT(run("presence_get", {"10"}).items, ElementsAre("0", member("u1", "a.1")));
    EXPECT_THAT(run("presence_stats", {}).items, ElementsAre("1", "1"));
    now += std::chrono::milliseconds(600);
    EXPECT_THAT(run("presence_stats", {}).items, ElementsAre("0", "0"));
    EXPECT_EQ(presence.channelCount(), 0u);
}

TEST_F(MemoryPresenceTest, BadArgumentsAreErrors) {
    EXPECT_EQ(run("presence_join", {"1000", "a.1"}).status, FleetStatus::Error);
    EXPECT_EQ(run("presence_join", {"0", "a.1", "{}"}).status, FleetStatus::Error);
    EXPECT_EQ(run("presence_join", {"x", "a.1", "{}"}).status, FleetStatus::Error);
    EXPECT_EQ(run("presence_get", {}).status, FleetStatus::Error);
    EXPECT_EQ(run("presence_get", {"-1"}).status, FleetStatus::Error);
}

TEST_F(MemoryPresenceTest, OtherFunctionsAreNotPresences) {
    EXPECT_FALSE(presence.call(call("history", "chat", {}), now).has_value());
    EXPECT_FALSE(presence.call(call("publish", "chat", {"x"}), now).has_value());
}

}  // namespace
}  // namespace wsrelay
