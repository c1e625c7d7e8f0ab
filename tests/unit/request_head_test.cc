#include "relay/http/request_head.h"

#include <string>
#include <utility>
#include <vector>

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

TEST(RequestHeadTest, PathsAreNormalizedTheWayLibwebsocketsReadsThem) {
    std::string path;
    for (const char* spelling :
         {"/ws", "//ws", "/./ws", "/%77s", "/%77%73", "/x/../ws", "/ws/../ws", "//./x/..//ws",
          "/ws?a=/../x", "/../ws", "/%2e%2e/ws"}) {
        ASSERT_TRUE(normalizedPath(spelling, path)) << spelling;
        EXPECT_EQ("/ws", path) << spelling;
    }
    for (const auto& [spelling, expected] :
         std::vector<std::pair<const char*, const char*>>{{"/ws/", "/ws/"},
                                                          {"/ws/.", "/ws/"},
                                                          {"/", "/"},
                                                          {"/a/b/..", "/a/"},
                                                          {"/%2577s", "/%77s"},
                                                          {"/w%3Fs?x", "/w?s"},
                                                          {"/ws%2F", "/ws/"}}) {
        ASSERT_TRUE(normalizedPath(spelling, path)) << spelling;
        EXPECT_EQ(expected, path) << spelling;
    }
    for (const char* bad : {"ws", "", "/%", "/%7", "/%zz", "/a%00b", "*"}) {
        EXPECT_FALSE(normalizedPath(bad, path)) << bad;
    }
}

TEST(RequestHeadTest, QueryValuesAreDecodedAndListsSplit) {
    std::string out;
    ASSERT_TRUE(urlDecode("a.b%2Ec+d", out));
    EXPECT_EQ("a.b.c d", out);
    EXPECT_FALSE(urlDecode("a%0", out));
    EXPECT_FALSE(urlDecode("%00", out));
    EXPECT_TRUE(listHasToken("keep-alive, Upgrade", "upgrade"));
    EXPECT_TRUE(listHasToken("Upgrade", "upgrade"));
    EXPECT_FALSE(listHasToken("keep-alive", "upgrade"));
    EXPECT_FALSE(listHasToken("upgrades, x", "upgrade"));
    RequestHead head;
    ASSERT_TRUE(parseRequestHead("GET / HTTP/1.1\r\nA: 1\r\na: 2\r\nB: 3\r\n\r\n", head));
    EXPECT_EQ(2u, head.headerCount("A"));
    EXPECT_EQ(0u, head.headerCount("C"));
}

}  // namespace
}  // namespace wsrelay
