#include "relay/auth/subprotocol_token.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Result = SubprotocolLift::Result;

constexpr size_t kMax = 8192;

std::string request(const std::string& protocol_lines) {
    return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
           protocol_lines + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
}

TEST(SubprotocolTokenTest, LiftsTheBearerEntryAndKeepsTheRest) {
    const std::string token(600, 'a');
    std::string bytes =
        request("Sec-WebSocket-Protocol: wsrelay.v1, wsrelay.bearer." + token + "\r\n");
    const SubprotocolLift lift = liftSubprotocolToken(bytes, kMax);
    ASSERT_EQ(lift.result, Result::Ready);
    EXPECT_EQ(lift.token, token);
    EXPECT_THAT(bytes, HasSubstr("\r\nSec-WebSocket-Protocol: wsrelay.v1\r\n"));
    EXPECT_THAT(bytes, Not(HasSubstr("bearer")));
    EXPECT_THAT(bytes, HasSubstr("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
}

TEST(SubprotocolTokenTest, HeaderNameIsCaseInsensitiveAndOrderDoesNotMatter) {
    std::string bytes =
        request("sec-websocket-protocol: wsrelay.bearer.abc.def.ghi ,wsrelay.v1\r\n");
    const SubprotocolLift lift = liftSubprotocolToken(bytes, kMax);
    ASSERT_EQ(lift.result, Result::Ready);
    EXPECT_EQ(lift.token, "abc.def.ghi");
    EXPECT_THAT(bytes, HasSubstr("\r\nSec-WebSocket-Protocol: wsrelay.v1\r\n"));
}

TEST(SubprotocolTokenTest, BearerInItsOwnHeaderLineIsDroppedWholly) {
    std::string bytes = request(
        "Sec-WebSocket-Protocol: wsrelay.v1\r\nSec-WebSocket-Protocol: wsrelay.bearer.t0k\r\n");
    const SubprotocolLift lift = liftSubprotocolToken(bytes, kMax);
    ASSERT_EQ(lift.result, Result::Ready);
    EXPECT_EQ(lift.token, "t0k");
    EXPECT_THAT(bytes, HasSubstr("Sec-WebSocket-Protocol: wsrelay.v1\r\nSec-WebSocket-Key"));
}

TEST(SubprotocolTokenTest, WithoutABearerEntryTheBytesAreUntouched) {
    const std::string original = request("Sec-WebSocket-Protocol: chat, wsrelay.v1\r\n") + "tail";
    std::string bytes = original;
    const SubprotocolLift lift = liftSubprotocolToken(bytes, kMax);
    ASSERT_EQ(lift.result, Result::Ready);
    EXPECT_TRUE(lift.token.empty());
    EXPECT_EQ(bytes, original);
}

TEST(SubprotocolTokenTest, BytesAfterTheHeadAreKept) {
    std::string bytes =
        request("Sec-WebSocket-Protocol: wsrelay.v1, wsrelay.bearer.x\r\n") + "BODY";
    ASSERT_EQ(liftSubprotocolToken(bytes, kMax).result, Result::Ready);
    EXPECT_TRUE(bytes.ends_with("\r\n\r\nBODY"));
}

TEST(SubprotocolTokenTest, BearerWithoutTheRealSubprotocolIsABadRequest) {
    std::string bytes = request("Sec-WebSocket-Protocol: wsrelay.bearer.x\r\n");
    EXPECT_EQ(liftSubprotocolToken(bytes, kMax).result, Result::BadRequest);
}

TEST(SubprotocolTokenTest, IncompleteThenTooLarge) {
    std::string partial = "GET /ws HTTP/1.1\r\nHost: x\r\n";
    EXPECT_EQ(liftSubprotocolToken(partial, kMax).result, Result::Incomplete);
    std::string huge = "GET /ws HTTP/1.1\r\nX: " + std::string(kMax, 'a');
    EXPECT_EQ(liftSubprotocolToken(huge, kMax).result, Result::TooLarge);
    std::string complete_but_large =
        "GET /ws HTTP/1.1\r\nX: " + std::string(kMax, 'a') + "\r\n\r\n";
    EXPECT_EQ(liftSubprotocolToken(complete_but_large, kMax).result, Result::TooLarge);
}

}  // namespace
}  // namespace wsrelay
