// Presence's pieces below the worker (docs/scaling.md "Presence"): which channels keep it
// (ChannelRules), the hub telling of members joining and leaving and handing join/leave frames
// to acknowledged members, the presence command and its answer (protocol), and the API body.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "relay/edge/http_api_presence.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/hub.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Config::Channel entry(std::string pattern, bool presence, bool join_leave = false) {
    Config::Channel c;
    c.pattern = std::move(pattern);
    c.presence = presence;
    c.join_leave = join_leave;
    return c;
}

std::string payloadOf(const FramePtr& frame) {
    const std::string_view bytes(frame->data(), frame->size());
    const int length = bytes[1] & 0x7f;
    const size_t header = length < 126 ? 2 : (length == 126 ? 4 : 10);
    return std::string(bytes.substr(header));
}

TEST(PresenceRulesTest, FirstMatchDecidesAndJoinLeaveNeedsPresence) {
    const ChannelRules rules(
        {entry("room:quiet", true), entry("room:*", true, true), entry("chat:*", false, true)});
    EXPECT_TRUE(rules.anyPresence());
    EXPECT_EQ(rules.presence("room:quiet"), (PresencePolicy{true, false}));
    EXPECT_EQ(rules.presence("room:1"), (PresencePolicy{true, true}));
    EXPECT_EQ(rules.presence("chat:1"), PresencePolicy{});  // the loader refuses this entry
    EXPECT_EQ(rules.presence("other"), PresencePolicy{});
    EXPECT_FALSE(ChannelRules({entry("a", false)}).anyPresence());
}

class RecordingSink : public Sink {
public:
    void push(const FramePtr& frame) override { frames.push_back(payloadOf(frame)); }
    std::vector<std::string> frames;
};

class NullListener : public HubListener {
public:
    void onChannelOpened(std::string_view) override {}
    void onChannelClosed(std::string_view) override {}
};

class RecordingPresence : public HubPresence {
public:
    void onPresenceJoin(const Membership& m, std::string_view channel) override {
        events.push_back("+" + std::to_string(m.id()) + " " + std::string(channel));
    }
    void onPresenceLeave(const Membership& m, std::string_view channel) override {
        events.push_back("-" + std::to_string(m.id()) + " " + std::string(channel));
    }
    std::vector<std::string> events;
};

struct Client {
    explicit Client(uint64_t id) : membership(sink, id) {}
    RecordingSink sink;
    Membership membership;
};

TEST(HubPresenceTest, MembersOfPresenceChannelsJoinAndLeave) {
    const ChannelRules rules({entry("room:*", true)});
    NullListener listener;
    RecordingPresence presence;
    Hub hub(listener, 1 << 20);
    hub.setPresence(&presence, &rules);
    Client a(1), b(2);
    hub.subscribe(a.membership, "room:1", 10);
    hub.subscribe(a.membership, "plain", 10);
    hub.subscribe(b.membership, "room:1", 10);
    hub.subscribe(b.membership, "room:2", 10);
    hub.subscribe(b.membership, "room:2", 10);  // already subscribed: nothing
    EXPECT_THAT(presence.events, ElementsAre("+1 room:1", "+2 room:1", "+2 room:2"));
    presence.events.clear();
    hub.unsubscribe(a.membership, "room:1");
    hub.unsubscribe(a.membership, "plain");
    hub.leaveAll(b.membership);
    EXPECT_THAT(presence.events, ElementsAre("-1 room:1", "-2 room:2", "-2 room:1"));
}

TEST(HubPresenceTest, NotifyReachesAcknowledgedMembersOnly) {
    NullListener listener;
    Hub hub(listener, 1 << 20);
    Client live(1), waiting(2);
    hub.subscribe(live.membership, "room:1", 10, {SubscribeAck::Kind::Ack, 1});
    hub.confirm("room:1");
    ASSERT_THAT(live.sink.frames, ElementsAre(R"({"op":"ack","id":1})"));
    hub.subscribe(waiting.membership, "room:2", 10, {SubscribeAck::Kind::Ack, 2});
    hub.subscribe(live.membership, "room:2", 10);
    const FramePtr frame = protocol::encodeControl(0x1, R"({"op":"join"})");
    EXPECT_TRUE(hub.notify("room:2", frame));
    EXPECT_THAT(waiting.sink.frames, IsEmpty());
    EXPECT_EQ(live.sink.frames.back(), R"({"op":"join"})");
    EXPECT_FALSE(hub.notify("nobody", frame));
}

TEST(PresenceProtocolTest, ThePresenceCommandNeedsAChannel) {
    protocol::Parser parser(65536, 255);
    protocol::ParseResult r = parser.parse(R"({"op":"presence","channel":"room:1","id":4})");
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.command.op, protocol::Op::Presence);
    EXPECT_EQ(r.command.channel, "room:1");
    EXPECT_EQ(r.command.id, 4u);
    r = parser.parse(R"({"op":"presence"})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reason, "missing channel");
    r = parser.parse(R"({"op":"presence","channel":"a b"})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, protocol::ErrorCode::InvalidChannel);
}

TEST(PresenceProtocolTest, TheAnswerListsTheMembersAndSaysWhenCut) {
    const std::vector<std::string> members = {R"({"user":"a","connection":"x.1","info":null})",
                                              R"({"user":null,"connection":"y.2","info":[1]})"};
    EXPECT_EQ(payloadOf(protocol::encodePresence(7, "room:1", members, false)),
              R"({"op":"presence","id":7,"channel":"room:1","members":[)" + members[0] + "," +
                  members[1] + "]}");
    EXPECT_EQ(payloadOf(protocol::encodePresence(std::nullopt, "r", {}, true)),
              R"({"op":"presence","channel":"r","members":[],"truncated":true})");
    std::string body;
    protocol::appendPresenceBody("r", members, false, body);
    EXPECT_EQ(body, R"({"channel":"r","members":[)" + members[0] + "," + members[1] + "]}");
    // Every answer is JSON, whatever its size (the frame header grows with it).
    std::vector<std::string> many(500, members[0]);
    const std::string big = payloadOf(protocol::encodePresence(1, "r", many, true));
    simdjson::dom::parser json;
    simdjson::dom::element root;
    EXPECT_EQ(json.parse(big).get(root), simdjson::SUCCESS);
    EXPECT_EQ(root["members"].get_array().size(), 500u);
}

TEST(PresenceApiBodyTest, ReadsOneValidChannel) {
    simdjson::dom::parser parser;
    EXPECT_EQ(presencePath("/api/presence"), PresencePath::Members);
    EXPECT_EQ(presencePath("/api/presence_stats"), PresencePath::Stats);
    EXPECT_EQ(presencePath("/api/presences"), PresencePath::None);
    ApiPresenceBody body = parsePresenceBody(parser, R"({"channel":"room:1","x":[1]})", 255);
    EXPECT_TRUE(body.ok());
    EXPECT_EQ(body.channel, "room:1");
    for (const char* bad : {"", "[]", "{", R"({"channel":1})", R"({"channel":"a b"})", "{}"}) {
        body = parsePresenceBody(parser, bad, 255);
        EXPECT_FALSE(body.ok()) << bad;
    }
    body = parsePresenceBody(parser, R"({"channel":"a","channel":"b"})", 255);
    EXPECT_EQ(body.error, "duplicate field: channel");
}

}  // namespace
}  // namespace wsrelay
