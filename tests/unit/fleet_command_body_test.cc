// The readers of the server API's fleet command bodies (relay/edge/http_api_body.h): what each
// accepts, every refusal and its reason, and the batch body.

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "relay/edge/http_api_body.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr size_t kMaxChannel = 16;

class FleetCommandBodyTest : public ::testing::Test {
protected:
    FleetCommandBody read(FleetMethod method, const std::string& body) {
        return parseFleetCommandBody(parser_, body, method, kMaxChannel);
    }
    std::string refusal(FleetMethod method, const std::string& body) {
        return read(method, body).error;
    }
    BatchBody batch(const std::string& body, size_t max = 3) {
        return parseBatchBody(parser_, body, max);
    }

    simdjson::dom::parser parser_;
};

TEST_F(FleetCommandBodyTest, MethodNamesRoundTrip) {
    for (auto m : {FleetMethod::Disconnect, FleetMethod::Subscribe, FleetMethod::Unsubscribe,
                   FleetMethod::Channels, FleetMethod::Channel}) {
        EXPECT_EQ(fleetMethod(methodName(m)), m);
    }
    EXPECT_FALSE(fleetMethod("publish"));
    EXPECT_FALSE(fleetMethod("Disconnect"));
}

TEST_F(FleetCommandBodyTest, DisconnectByUserWithDefaults) {
    const FleetCommandBody b = read(FleetMethod::Disconnect, R"({"user":"42","other":[1]})");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_EQ(b.user, "42");
    EXPECT_TRUE(b.connection.empty());
    EXPECT_EQ(b.code, 4000);
    EXPECT_TRUE(b.reason.empty());
}

TEST_F(FleetCommandBodyTest, DisconnectByConnectionWithCodeAndReason) {
    const FleetCommandBody b =
        read(FleetMethod::Disconnect,
             R"({"connection":"k3x9a0b2.281474976710657","code":4999,"reason":"banned"})");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_EQ(b.connection, "k3x9a0b2.281474976710657");
    EXPECT_EQ(b.code, 4999);
    EXPECT_EQ(b.reason, "banned");
}

TEST_F(FleetCommandBodyTest, DisconnectRefusals) {
    const auto d = FleetMethod::Disconnect;
    EXPECT_EQ(refusal(d, "[1]"), "body must be a JSON object");
    EXPECT_EQ(refusal(d, "{"), "body must be a JSON object");
    EXPECT_EQ(refusal(d, "{}"), "missing user or connection");
    EXPECT_EQ(refusal(d, R"({"user":"a","connection":"b.1"})"),
              "give user or connection, not both");
    EXPECT_EQ(refusal(d, R"({"user":"a","user":"b"})"), "duplicate field: user");
    EXPECT_THAT(refusal(d, R"({"user":""})"), HasSubstr("user must be a string"));
    EXPECT_THAT(refusal(d, R"({"user":42})"), HasSubstr("user must be a string"));
    EXPECT_THAT(refusal(d, R"({"user":")" + std::string(257, 'u') + R"("})"),
                HasSubstr("user must be a string"));
    EXPECT_TRUE(read(d, R"({"user":")" + std::string(256, 'u') + R"("})").ok());
    EXPECT_THAT(refusal(d, R"({"connection":"ABC.1"})"), HasSubstr("connection must be"));
    EXPECT_THAT(refusal(d, R"({"connection":""})"), HasSubstr("connection must be"));
    EXPECT_THAT(refusal(d, R"({"connection":")" + std::string(65, 'a') + R"("})"),
                HasSubstr("connection must be"));
    for (const char* code : {"3999", "5000", "4000.5", "\"4000\"", "-4000", "1e3", "null"}) {
        EXPECT_EQ(refusal(d, std::string(R"({"user":"a","code":)") + code + "}"),
                  "code must be an integer 4000..4999")
            << code;
    }
    EXPECT_EQ(refusal(d, R"({"user":"a","reason":7})"),
              "reason must be a string of at most 123 bytes");
    EXPECT_EQ(refusal(d, R"({"user":"a","reason":")" + std::string(124, 'r') + R"("})"),
              "reason must be a string of at most 123 bytes");
    EXPECT_TRUE(read(d, R"({"user":"a","reason":")" + std::string(123, 'r') + R"("})").ok());
    EXPECT_EQ(refusal(d, R"({"user":"a","code":4000,"code":4001})"), "duplicate field: code");
}

TEST_F(FleetCommandBodyTest, SubscribeTakesChannelOrChannels) {
    FleetCommandBody b = read(FleetMethod::Subscribe, R"({"user":"u","channel":"room"})");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_THAT(b.channels, ElementsAre("room"));
    b = read(FleetMethod::Unsubscribe, R"({"user":"u","channels":["a","b"]})");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_THAT(b.channels, ElementsAre("a", "b"));
    // The disconnect-only fields are other fields here: ignored.
    EXPECT_TRUE(read(FleetMethod::Subscribe, R"({"user":"u","channel":"a","code":1})").ok());
}

TEST_F(FleetCommandBodyTest, SubscribeRefusals) {
    const auto s = FleetMethod::Subscribe;
    EXPECT_EQ(refusal(s, R"({"channel":"a"})"), "missing user or connection");
    EXPECT_EQ(refusal(s, R"({"user":"u","channel":"a","channels":["b"]})"),
              "give channel or channels, not both");
    EXPECT_THAT(refusal(s, R"({"user":"u"})"), HasSubstr("channels: an array of 1..100"));
    EXPECT_THAT(refusal(s, R"({"user":"u","channels":[]})"), HasSubstr("an array of 1..100"));
    EXPECT_THAT(refusal(s, R"({"user":"u","channels":"a"})"), HasSubstr("an array of 1..100"));
    EXPECT_EQ(refusal(s, R"({"user":"u","channel":"a b"})"), "invalid channel name");
    EXPECT_EQ(refusal(s, R"({"user":"u","channel":"wsrelay:{fleet}:ctl"})"),
              "invalid channel name");
    EXPECT_EQ(refusal(s, R"({"user":"u","channels":["ok",1]})"), "invalid channel name");
    EXPECT_EQ(refusal(s, R"({"user":"u","channel":")" + std::string(17, 'c') + R"("})"),
              "invalid channel name");
    std::string many = R"({"user":"u","channels":[)";
    for (int i = 0; i < 101; ++i) many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
    EXPECT_THAT(refusal(s, many + "]}"), HasSubstr("an array of 1..100"));
}

TEST_F(FleetCommandBodyTest, ChannelsListing) {
    FleetCommandBody b = read(FleetMethod::Channels, "{}");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_TRUE(b.pattern.empty());
    EXPECT_EQ(b.limit, kDefaultChannelsLimit);
    b = read(FleetMethod::Channels, R"({"pattern":"chat:*","limit":1000,"user":"ignored"})");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_EQ(b.pattern, "chat:*");
    EXPECT_EQ(b.limit, 1000u);
    EXPECT_EQ(refusal(FleetMethod::Channels, R"({"limit":0})"), "limit must be an integer 1..1000");
    EXPECT_EQ(refusal(FleetMethod::Channels, R"({"limit":1001})"),
              "limit must be an integer 1..1000");
    EXPECT_EQ(refusal(FleetMethod::Channels, R"({"pattern":"a b*"})"),
              "pattern must be channel-name characters and *");
    EXPECT_EQ(refusal(FleetMethod::Channels, R"({"pattern":5})"),
              "pattern must be channel-name characters and *");
}

TEST_F(FleetCommandBodyTest, ChannelCount) {
    const FleetCommandBody b = read(FleetMethod::Channel, R"({"channel":"news"})");
    ASSERT_TRUE(b.ok()) << b.error;
    EXPECT_EQ(b.channel, "news");
    EXPECT_EQ(refusal(FleetMethod::Channel, "{}"), "missing or invalid channel");
    EXPECT_EQ(refusal(FleetMethod::Channel, R"({"channel":"*"})"), "missing or invalid channel");
}

TEST_F(FleetCommandBodyTest, GlobMatching) {
    EXPECT_TRUE(channelMatches("*", ""));
    EXPECT_TRUE(channelMatches("*", "anything"));
    EXPECT_TRUE(channelMatches("chat:*", "chat:1"));
    EXPECT_TRUE(channelMatches("chat:*", "chat:"));
    EXPECT_FALSE(channelMatches("chat:*", "chat"));
    EXPECT_TRUE(channelMatches("*:42", "user:42"));
    EXPECT_FALSE(channelMatches("*:42", "user:421"));
    EXPECT_TRUE(channelMatches("a*b*c", "aXXbYYc"));
    EXPECT_TRUE(channelMatches("a*b*c", "abbbc"));
    EXPECT_FALSE(channelMatches("a*b*c", "acb"));
    EXPECT_TRUE(channelMatches("news", "news"));
    EXPECT_FALSE(channelMatches("news", "news2"));
    EXPECT_TRUE(channelMatches("**x", "x"));
}

TEST_F(FleetCommandBodyTest, BatchReadsEachCommand) {
    const BatchBody b = batch(
        R"({"commands":[{"method":"disconnect","params":{"user":"1"}},{"method":"channels"}]})");
    ASSERT_TRUE(b.ok()) << b.error;
    ASSERT_EQ(b.commands.size(), 2u);
    EXPECT_EQ(b.commands[0].method, FleetMethod::Disconnect);
    EXPECT_EQ(b.commands[0].params, R"({"user":"1"})");
    EXPECT_EQ(b.commands[1].method, FleetMethod::Channels);
    EXPECT_EQ(b.commands[1].params, "{}");
}

TEST_F(FleetCommandBodyTest, BatchRefusedWhole) {
    EXPECT_EQ(batch("[]").error, "body must be a JSON object");
    EXPECT_EQ(batch("{}").error, "commands must be an array of 1..3 commands");
    EXPECT_EQ(batch(R"({"commands":[]})").error, "commands must be an array of 1..3 commands");
    EXPECT_EQ(batch(R"({"commands":[{},{},{},{}]})").error,
              "commands must be an array of 1..3 commands");
    EXPECT_EQ(batch(R"({"commands":[],"commands":[]})").error, "duplicate field: commands");
    EXPECT_EQ(batch(R"({"commands":[{"method":"channel"},1]})").error,
              "commands[1]: not an object");
    EXPECT_THAT(batch(R"({"commands":[{"method":"publish"}]})").error,
                HasSubstr("commands[0]: method must be one of"));
    EXPECT_EQ(batch(R"({"commands":[{"method":"channel","params":[]}]})").error,
              "commands[0]: params must be an object");
    EXPECT_EQ(batch(R"({"commands":[{"method":"channel","method":"channel"}]})").error,
              "commands[0]: duplicate field: method");
}

}  // namespace
}  // namespace wsrelay
