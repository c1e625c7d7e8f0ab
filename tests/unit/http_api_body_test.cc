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
    ApiHistoryBody history(const std::string& body) {
        return parseHistoryBody(parser_, body, kMaxChannel);
    }
    // Why a history body whose "since" is `since` is refused.
    std::string sinceRefusal(const std::string& since) {
        return history(R"({"channel":"c","since":)" + since + "}").error;
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

TEST_F(HttpApiBodyTest, HistoryReadsChannelLimitAndSince) {
    ApiHistoryBody body =
        history(R"({ "since" : {"epoch":"Ab9","offset":41}, "limit" : 20, "channel" : "news" })");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_EQ(body.channel, "news");
    EXPECT_EQ(body.limit, 20u);
    ASSERT_TRUE(body.since.has_value());
    EXPECT_EQ(body.since->offset, 41u);
    EXPECT_EQ(body.since->epoch, "Ab9");

    body = history(R"({"channel":"news"})");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_FALSE(body.limit.has_value());
    EXPECT_FALSE(body.since.has_value());

    body = history(R"({"channel":"c","limit":9007199254740991,"since":{"offset":0,"epoch":")" +
                   std::string(protocol::kMaxEpochBytes, 'e') + R"("}})");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_EQ(body.limit, protocol::kMaxSafeInteger);
    EXPECT_EQ(body.since->offset, 0u);
    body = history(R"({"channel":"c","since":{"offset":9007199254740991,"epoch":"e"}})");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_EQ(body.since->offset, protocol::kMaxSafeInteger);
}

TEST_F(HttpApiBodyTest, HistoryIgnoresOtherFields) {
    const ApiHistoryBody body =
        history(R"({"channel":"c","data":1,"data":2,"channels":["x"],"offset":-1})");
    ASSERT_TRUE(body.ok()) << body.error;
    EXPECT_EQ(body.channel, "c");
}

TEST_F(HttpApiBodyTest, HistoryRefusalsSayWhy) {
    EXPECT_EQ(history("").error, "body must be a JSON object");
    EXPECT_EQ(history(R"(["channel"])").error, "body must be a JSON object");
    EXPECT_EQ(history(R"({"channel":"c","limit":)").error, "body must be a JSON object");
    EXPECT_EQ(history(R"({"limit":1})").error, "missing or invalid channel");
    EXPECT_EQ(history(R"({"channel":"a b"})").error, "missing or invalid channel");
    EXPECT_EQ(history(R"({"channel":"seventeen-bytes-x"})").error, "missing or invalid channel");
    EXPECT_EQ(history(R"({"channel":7})").error, "missing or invalid channel");
    // The channel first, then since, then limit.
    EXPECT_EQ(history(R"({"channel":"a b","since":1,"limit":0})").error,
              "missing or invalid channel");
    EXPECT_EQ(history(R"({"channel":"c","limit":0,"since":1})").error, "invalid since");
}

TEST_F(HttpApiBodyTest, HistoryLimitBounds) {
    for (const char* limit : {"0", "-1", "1.0", "2.5", "1e2", "9007199254740992",
                              "18446744073709551615", R"("10")", "null", "true", "[1]", "{}"}) {
        EXPECT_EQ(history(R"({"channel":"c","limit":)" + std::string(limit) + "}").error,
                  "invalid limit")
            << limit;
    }
}

TEST_F(HttpApiBodyTest, HistorySinceIsExactlyAnOffsetAndAnEpoch) {
    for (const char* since : {"5", R"("1:e")", "null", "[]", "{}", R"({"offset":1})",
                              R"({"epoch":"e"})", R"({"offset":1,"epoch":"e","x":1})"}) {
        EXPECT_EQ(sinceRefusal(since), "invalid since") << since;
    }
    for (const char* offset : {"-1", "1.0", "1e3", "9007199254740992", "18446744073709551615",
                               R"("5")", "null", "[1]"}) {
        EXPECT_EQ(sinceRefusal(R"({"epoch":"e","offset":)" + std::string(offset) + "}"),
                  "invalid since offset")
            << offset;
    }
    for (const char* epoch : {R"("")", R"("a-b")", R"("a b")", "\"caf\xc3\xa9\"",
                              R"("123456789012345678901234567890123")", "5", "null", R"(["e"])"}) {
        EXPECT_EQ(sinceRefusal(R"({"offset":1,"epoch":)" + std::string(epoch) + "}"),
                  "invalid since epoch")
            << epoch;
    }
}

TEST_F(HttpApiBodyTest, HistoryDuplicateFieldsAreRefused) {
    EXPECT_EQ(history(R"({"channel":"c","channel":"c"})").error, "duplicate field: channel");
    EXPECT_EQ(history(R"({"channel":"c","limit":1,"limit":1})").error, "duplicate field: limit");
    EXPECT_EQ(history(R"({"channel":"c","\u006cimit":1,"limit":2})").error,
              "duplicate field: limit");
    EXPECT_EQ(history(R"({"since":{"offset":1,"epoch":"e"},"channel":"c","since":{}})").error,
              "duplicate field: since");
    EXPECT_EQ(sinceRefusal(R"({"offset":1,"epoch":"e","offset":2})"),
              "duplicate field: since.offset");
    EXPECT_EQ(sinceRefusal(R"({"epoch":"e","offset":1,"epoch":"e"})"),
              "duplicate field: since.epoch");
}

}  // namespace
}  // namespace wsrelay
