#include "relay/hook/hook_answer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace wsrelay {
namespace {

class HookAnswerTest : public ::testing::Test {
protected:
    simdjson::dom::object parse(const std::string& json) {
        simdjson::dom::object answer;
        EXPECT_EQ(simdjson::SUCCESS, parser_.parse(json).get_object().get(answer)) << json;
        return answer;
    }
    simdjson::dom::parser parser_;
};

TEST_F(HookAnswerTest, NullOrFalseIsTheSameAsLeavingTheCommandOut) {
    simdjson::dom::element e;
    for (const char* json : {R"({})", R"({"deny":null,"disconnect":null,"error":null})",
                             R"({"deny":false,"disconnect":false,"error":false})"}) {
        SCOPED_TRACE(json);
        const simdjson::dom::object answer = parse(json);
        std::string message;
        int code = 0;
        EXPECT_FALSE(hook_answer::deny(answer, message));
        EXPECT_FALSE(hook_answer::error(answer, code, message));
        EXPECT_FALSE(hook_answer::command(answer, "disconnect", e));
    }
}

TEST_F(HookAnswerTest, DenyWithOrWithoutAMessage) {
    std::string message;
    EXPECT_TRUE(hook_answer::deny(parse(R"({"deny":{"code":403,"message":"banned"}})"), message));
    EXPECT_EQ("banned", message);
    // Anything else that is set denies: a malformed refusal must not let the command through.
    for (const char* json :
         {R"({"deny":{}})", R"({"deny":true})", R"({"deny":"no"})", R"({"deny":0})"}) {
        SCOPED_TRACE(json);
        EXPECT_TRUE(hook_answer::deny(parse(json), message));
        EXPECT_EQ("denied", message);
    }
}

TEST_F(HookAnswerTest, ErrorCodesOutside4xxBecome502) {
    int code = 0;
    std::string message;
    EXPECT_TRUE(
        hook_answer::error(parse(R"({"error":{"code":404,"message":"nope"}})"), code, message));
    EXPECT_EQ(404, code);
    EXPECT_EQ("nope", message);
    EXPECT_TRUE(hook_answer::error(parse(R"({"error":{"code":500}})"), code, message));
    EXPECT_EQ(502, code);
    EXPECT_EQ("hook error", message);
    EXPECT_TRUE(hook_answer::error(parse(R"({"error":"boom"})"), code, message));
    EXPECT_EQ(502, code);
    EXPECT_EQ("hook error", message);
}

TEST_F(HookAnswerTest, DisconnectIsACommandLikeTheOthers) {
    simdjson::dom::element e;
    EXPECT_TRUE(hook_answer::command(parse(R"({"disconnect":{"code":4001}})"), "disconnect", e));
    EXPECT_TRUE(e.is_object());
    EXPECT_TRUE(hook_answer::command(parse(R"({"disconnect":true})"), "disconnect", e));
    EXPECT_FALSE(hook_answer::command(parse(R"({"reply":null})"), "disconnect", e));
}

class ConnectAnswerTest : public ::testing::Test {
protected:
    ConnectDecision read(std::string_view body) {
        return hook_answer::connect(parser_, padded_, body, publish_);
    }
    simdjson::dom::parser parser_;
    std::string padded_;
    std::optional<simdjson::dom::element> publish_;
};

TEST_F(ConnectAnswerTest, AnAllowCarriesUserMetaChannelsAndPublish) {
    const ConnectDecision d =
        read(R"({"user":"42","meta":{ "name" : "ann" },"subscribe":["a",7,"b"],)"
             R"("publish":[{"channel":"c","data":1}]})");
    EXPECT_EQ(d.kind, ConnectDecision::Kind::Allow);
    EXPECT_EQ(d.user, "42");
    EXPECT_EQ(d.meta, R"({"name":"ann"})");
    EXPECT_THAT(d.channels, ::testing::ElementsAre("a", "b"));  // what is not a string is skipped
    ASSERT_TRUE(publish_.has_value());
    EXPECT_EQ(simdjson::minify(*publish_), R"([{"channel":"c","data":1}])");
}

TEST_F(ConnectAnswerTest, ABlankAnswerAllowsAsItIs) {
    for (std::string_view body : {"", " \r\n\t", "{}", R"({"user":7,"subscribe":"a"})"}) {
        SCOPED_TRACE(body);
        const ConnectDecision d = read(body);
        EXPECT_EQ(d.kind, ConnectDecision::Kind::Allow);
        EXPECT_EQ(d.user, "");
        EXPECT_EQ(d.meta, "null");
        EXPECT_TRUE(d.channels.empty());
        EXPECT_FALSE(publish_.has_value());
    }
}

TEST_F(ConnectAnswerTest, DenyAndErrorRefuse) {
    ConnectDecision d = read(R"({"deny":{"message":"banned"},"user":"42"})");
    EXPECT_EQ(d.kind, ConnectDecision::Kind::Deny);
    EXPECT_EQ(d.message, "banned");
    EXPECT_EQ(d.user, "");
    // An error wins over a deny; what is not a JSON object is an error too.
    for (std::string_view body :
         {R"({"deny":true,"error":{"code":404}})", "[]", "{\"user\":", "null", "\"text\""}) {
        SCOPED_TRACE(body);
        d = read(body);
        EXPECT_EQ(d.kind, ConnectDecision::Kind::Fail);
        EXPECT_EQ(d.message, "hook error");
        EXPECT_FALSE(publish_.has_value());
    }
}

}  // namespace
}  // namespace wsrelay
