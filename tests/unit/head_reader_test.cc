#include "relay/admission/head_reader.h"

#include <string>

#include "gtest/gtest.h"

namespace wsrelay {
namespace {

using Outcome = HeadRead::Outcome;

TEST(HeadReaderTest, AnIncompleteHeadWaitsAnOversizedOneIsRefused) {
    EXPECT_EQ(Outcome::Incomplete, readHead("GET /ws HTTP/1.1\r\nHost: x\r\n").outcome);
    const std::string big = "GET /ws HTTP/1.1\r\nX: " + std::string(HeadReader::kMaxHeadBytes, 'a');
    EXPECT_EQ(Outcome::TooLarge, readHead(big).outcome);
    EXPECT_EQ(Outcome::TooLarge, readHead(big + "\r\n\r\n").outcome);
}

TEST(HeadReaderTest, TheBearerSubprotocolIsLiftedOutAndOnlyTheHeadConsumed) {
    const std::string head =
        "GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: wsrelay.v1, wsrelay.bearer.t0k\r\n"
        "\r\n";
    const HeadRead read = readHead(head + "body bytes");
    ASSERT_EQ(Outcome::Ready, read.outcome);
    EXPECT_EQ(head, read.head);
    EXPECT_EQ("t0k", read.token);
    EXPECT_EQ("GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: wsrelay.v1\r\n\r\n",
              read.consumed);
}

TEST(HeadReaderTest, WithoutABearerEntryNothingIsConsumed) {
    const HeadRead read = readHead("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(Outcome::Ready, read.outcome);
    EXPECT_TRUE(read.consumed.empty());
    EXPECT_TRUE(read.token.empty());
    EXPECT_EQ(
        Outcome::BadSubprotocol,
        readHead("GET /ws HTTP/1.1\r\nSec-WebSocket-Protocol: wsrelay.bearer.t\r\n\r\n").outcome);
}

}  // namespace
}  // namespace wsrelay
