#include "relay/request_head.h"

#include "gtest/gtest.h"

namespace wsrelay {
namespace {

constexpr std::string_view kHead =
    "GET /ws?room=1&token=a.b.c HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
    "Connection: Upgrade\r\nUser-Agent:  curl/8 \r\nX-Empty:\r\n\r\n";

TEST(RequestHeadTest, ParsesTheLineTheHeadersAndTheQuery) {
    RequestHead head;
    ASSERT_TRUE(parseRequestHead(kHead, head));
    EXPECT_EQ(head.method, "GET");
    EXPECT_EQ(head.path(), "/ws");
    EXPECT_EQ(head.query("token"), "a.b.c");
    EXPECT_EQ(head.query("room"), "1");
    EXPECT_EQ(head.query("missing"), "");
    EXPECT_EQ(head.header("user-agent"), "curl/8");
    EXPECT_EQ(head.header("USER-AGENT"), "curl/8");
    EXPECT_EQ(head.header("x-empty"), "");
    EXPECT_TRUE(head.isWebSocketUpgrade());
}

TEST(RequestHeadTest, APostIsNoUpgradeAndGarbageIsRefused) {
    RequestHead head;
    ASSERT_TRUE(parseRequestHead("POST /api/publish HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", head));
    EXPECT_FALSE(head.isWebSocketUpgrade());
    EXPECT_EQ(head.query("x"), "");
    EXPECT_FALSE(parseRequestHead("GARBAGE\r\n\r\n", head));
    EXPECT_FALSE(parseRequestHead("GET / HTTP/1.1\r\nno colon here\r\n\r\n", head));
    EXPECT_FALSE(parseRequestHead("GET / HTTP/1.1", head));
}

}  // namespace
}  // namespace wsrelay
