// FleetCommands, the server API's commands as one worker runs them (relay/fleet/fleet_commands.h):
// real Sessions on fake wires in a WorkerContext of fakes; each handler is given the command
// object as FleetControl would, and its result and what the clients were sent are checked.

#include "relay/fleet/fleet_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "relay/fleet/fleet_id.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

constexpr std::string_view kInstance = "k3x9a0b2";

class FleetCommandsTest : public ::testing::Test {
protected:
    FleetCommandsTest() : commands(w.sessions, w.hub, std::string(kInstance)) {}

    // A session of `user` (empty: none), in the table's index as the worker puts it there.
    TestSession& open(const std::string& user) {
        const uint64_t id = next_id++;
        sessions.push_back(std::make_unique<TestSession>(w, id));
        TestSession& s = *sessions.back();
        s->hookState().user = user;
        w.sessions.remove(id);
        w.sessions.add(id, s.session.get(), user);
        s->start({});
        return s;
    }
    // Runs `handler` on `json` as the command object.
    template <class Handler>
    std::string run(Handler handler, const std::string& json) {
        simdjson::dom::object object;
        EXPECT_EQ(parser.parse(json).get(object), simdjson::SUCCESS) << json;
        return (commands.*handler)(object);
    }
    void flushWrites() { w.flush.flushTurn(); }

    WorkerParts w;
    FleetCommands commands;
    simdjson::dom::parser parser;
    std::vector<std::unique_ptr<TestSession>> sessions;
    uint64_t next_id = 1;
};

TEST_F(FleetCommandsTest, DisconnectClosesEveryOpenSessionOfTheUser) {
    TestSession& a1 = open("alice");
    TestSession& a2 = open("alice");
    TestSession& b = open("bob");
    EXPECT_EQ(run(&FleetCommands::disconnect,
                  R"({"cmd":"disconnect","user":"alice","code":4321,"reason":"bye"})"),
              R"({"affected":2})");
    EXPECT_TRUE(a1->closing());
    EXPECT_TRUE(a2->closing());
    EXPECT_FALSE(b->closing());
    // Closing already: not counted again.
    EXPECT_EQ(run(&FleetCommands::disconnect, R"({"user":"alice"})"), R"({"affected":0})");
    EXPECT_EQ(run(&FleetCommands::disconnect, R"({"user":"nobody"})"), R"({"affected":0})");
}

TEST_F(FleetCommandsTest, DisconnectByConnectionIdOfThisInstanceOnly) {
    TestSession& a = open("alice");
    TestSession& b = open("");
    const std::string id = fleet::connectionId(kInstance, b->id());
    EXPECT_EQ(run(&FleetCommands::disconnect,
                  R"({"connection":"zzzzzzzz.)" + std::to_string(b->id()) + R"("})"),
              R"({"affected":0})");
    EXPECT_FALSE(b->closing());
    EXPECT_EQ(run(&FleetCommands::disconnect, R"({"connection":")" + id + R"("})"),
              R"({"affected":1})");
    EXPECT_TRUE(b->closing());
    EXPECT_FALSE(a->closing());
    EXPECT_EQ(run(&FleetCommands::disconnect, R"({"connection":"garbage"})"), R"({"affected":0})");
}

TEST_F(FleetCommandsTest, SubscribeAndUnsubscribeTellTheClient) {
    TestSession& a = open("alice");
    TestSession& b = open("bob");
    EXPECT_EQ(run(&FleetCommands::subscribe, R"({"user":"alice","channels":["r1","r2"]})"),
              R"({"affected":1})");
    EXPECT_TRUE(w.hub.isSubscribed(a->membership(), "r1"));
    EXPECT_TRUE(w.hub.isSubscribed(a->membership(), "r2"));
    EXPECT_FALSE(w.hub.isSubscribed(b->membership(), "r1"));
    EXPECT_EQ(run(&FleetCommands::channel, R"({"channel":"r1"})"), R"({"subscribers":1})");
    w.hub.confirm("r1");
    w.hub.confirm("r2");
    EXPECT_EQ(run(&FleetCommands::unsubscribe, R"({"user":"alice","channels":["r2","none"]})"),
              R"({"affected":1})");
    flushWrites();
    EXPECT_THAT(a.wire.texts(),
                ElementsAre(R"({"op":"subscribed","channel":"r1"})",
                            R"({"op":"subscribed","channel":"r2"})",
                            R"({"op":"unsubscribed","channel":"r2","reason":"server"})"));
    EXPECT_THAT(b.wire.texts(), IsEmpty());
    EXPECT_EQ(run(&FleetCommands::channel, R"({"channel":"r2"})"), R"({"subscribers":0})");
}

TEST_F(FleetCommandsTest, ChannelsListsTheFirstNamesThatMatch) {
    TestSession& a = open("alice");
    TestSession& b = open("bob");
    for (const char* c : {"room:2", "room:1", "lobby", "room:3"}) {
        w.hub.subscribe(a->membership(), c, 100);
    }
    w.hub.subscribe(b->membership(), "room:1", 100);
    EXPECT_EQ(run(&FleetCommands::channels, R"({"pattern":"room:*","limit":2})"),
              R"({"channels":[["room:1",2],["room:2",1]],"truncated":true})");
    EXPECT_EQ(run(&FleetCommands::channels, R"({"limit":10})"),
              R"({"channels":[["lobby",1],["room:1",2],["room:2",1],["room:3",1]],)"
              R"("truncated":false})");
    EXPECT_EQ(run(&FleetCommands::channels, R"({"pattern":"x*"})"),
              R"({"channels":[],"truncated":false})");
}

}  // namespace
}  // namespace wsrelay
