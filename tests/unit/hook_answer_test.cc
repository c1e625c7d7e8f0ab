#include "relay/hook/hook_answer.h"

#include <gtest/gtest.h>

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
    for (const char* json : {R"({"deny":{}})", R"({"deny":true})", R"({"deny":"no"})",
                             R"({"deny":0})"}) {
        SCOPED_TRACE(json);
        EXPECT_TRUE(hook_answer::deny(parse(json), message));
        EXPECT_EQ("denied", message);
    }
}

TEST_F(HookAnswerTest, ErrorCodesOutside4xxBecome502) {
    int code = 0;
    std::string message;
    EXPECT_TRUE(hook_answer::error(parse(R"({"error":{"code":404,"message":"nope"}})"), code,
                                   message));
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

}  // namespace
}  // namespace wsrelay
