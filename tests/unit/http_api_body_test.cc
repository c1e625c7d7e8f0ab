#include "relay/edge/http_api_body.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;

constexpr size_t kMaxChannel = 16;

class HttpApiBodyTest : public ::testing::Test {
protected:
    ApiBody publish(const std::string& body) {
        return parseApiBody(parser_, body, false, kMaxChannel);
    }
    ApiBody broadcast(const std::string& body) {
        return parseApiBody(parser_, body, true, kMaxChannel);
    }

    simdjson::dom::parser parser_;
};

TEST_F(HttpApiBodyTest, PublishReadsTheChannelAndMinifiesTheData) {
    const ApiBody body = publish(R"({ "data" : { "a" : [1, true, null] }, "channel" : "news" })");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_THAT(body.channels, ElementsAre("news"));
    EXPECT_EQ(body.payload, R"({"a":[1,true,null]})");
}

TEST_F(HttpApiBodyTest, BroadcastReadsEveryChannel) {
    const ApiBody body = broadcast(R"({"channels":["a","b:1"],"data":"text"})");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_THAT(body.channels, ElementsAre("a", "b:1"));
    EXPECT_EQ(body.payload, R"("text")");
}

TEST_F(HttpApiBodyTest, OtherFieldsAreIgnored) {
    // "channels" is not a field of a publish, nor "channel" of a broadcast.
    EXPECT_TRUE(publish(R"({"channel":"c","data":1,"channels":7,"x":{}})").ok());
    EXPECT_TRUE(broadcast(R"({"channels":["c"],"data":1,"channel":7,"channel":8})").ok());
}

TEST_F(HttpApiBodyTest, RefusalsSayWhy) {
    EXPECT_EQ(publish("").error, "body must be a JSON object");
    EXPECT_EQ(publish(R"(["channel","data"])").error, "body must be a JSON object");
    EXPECT_EQ(publish(R"({"channel":"c","data":)").error, "body must be a JSON object");
    EXPECT_EQ(publish(R"({"channel":"c","data":1,"data":2})").error, "duplicate field: data");
    EXPECT_EQ(publish(R"({"channel":"c","channel":"c","data":1})").error,
              "duplicate field: channel");
    EXPECT_EQ(broadcast(R"({"channels":["c"],"channels":["c"],"data":1})").error,
              "duplicate field: channels");
    EXPECT_EQ(publish(R"({"channel":"c"})").error, "missing data");
    EXPECT_EQ(publish(R"({"data":1})").error, "missing or invalid channel");
    EXPECT_EQ(publish(R"({"channel":"two words","data":1})").error, "missing or invalid channel");
    EXPECT_EQ(publish(R"({"channel":"seventeen-bytes-x","data":1})").error,
              "missing or invalid channel");
    EXPECT_EQ(publish(R"({"channel":["c"],"data":1})").error, "missing or invalid channel");
    EXPECT_EQ(broadcast(R"({"channels":[],"data":1})").error,
              "channels must be an array of 1..1000 channel names");
    EXPECT_EQ(broadcast(R"({"channels":"c","data":1})").error,
              "channels must be an array of 1..1000 channel names");
    EXPECT_EQ(broadcast(R"({"channels":["c",1],"data":1})").error, "invalid channel name");
    EXPECT_EQ(broadcast(R"({"channels":["c","d e"],"data":1})").error, "invalid channel name");
}

TEST_F(HttpApiBodyTest, BroadcastTakesUpToTheLimitOfChannels) {
    std::string list;
    for (size_t i = 0; i < kMaxApiBroadcastChannels; ++i) list += i == 0 ? "\"c\"" : ",\"c\"";
    EXPECT_EQ(broadcast(R"({"channels":[)" + list + R"(],"data":0})").channels.size(),
              kMaxApiBroadcastChannels);
    EXPECT_EQ(broadcast(R"({"channels":[)" + list + R"(,"c"],"data":0})").error,
              "channels must be an array of 1..1000 channel names");
}

}  // namespace
}  // namespace wsrelay
