#include "adapters/redis_payload.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace wsrelay {
namespace {

TEST(EntryStampTest, RoundTripsAndLeavesThePayload) {
    std::string wire;
    appendStamp(1763800000123456, wire);
    wire += R"({"text":"hi"})";
    EXPECT_EQ(wire, "\x1e"
                    "1763800000123456"
                    "\x1e"
                    R"({"text":"hi"})");
    std::string_view payload = wire;
    EXPECT_EQ(takeStamp(payload), 1763800000123456);
    EXPECT_EQ(payload, R"({"text":"hi"})");
}

TEST(EntryStampTest, AnEmptyPayloadKeepsItsStamp) {
    std::string wire;
    appendStamp(42, wire);
    std::string_view payload = wire;
    EXPECT_EQ(takeStamp(payload), 42);
    EXPECT_EQ(payload, "");
}

TEST(EntryStampTest, PayloadsWithoutAWellFormedStampAreUntouched) {
    for (std::string_view raw :
         {std::string_view(R"({"a":1})"), std::string_view("hello"), std::string_view(""),
          std::string_view("\x1e"), std::string_view("\x1e\x1e"),
          std::string_view("\x1e"
                           "12"),
          std::string_view("\x1e"
                           "12x\x1e"
                           "data"),
          std::string_view("\x1e"
                           "-5\x1e"
                           "data"),
          std::string_view("\x1e"
                           "0\x1e"
                           "data"),
          std::string_view("\x1e"
                           "12345678901234567890\x1e"
                           "x"),  // 20 digits: too long
          std::string_view("\x1e"
                           "99999999999999999999\x1e")}) {
        std::string_view payload = raw;
        EXPECT_EQ(takeStamp(payload), 0) << raw;
        EXPECT_EQ(payload, raw);
    }
}

TEST(PositionEnvelopeTest, RoundTripsInFrontOfAStampedPayload) {
    std::string wire;
    appendPosition(42, "18f2a3b4c5d6e", wire);
    appendStamp(1763800000123456, wire);
    wire += R"({"text":"hi"})";
    EXPECT_EQ(wire, "\x1f"
                    "42\x1f"
                    "18f2a3b4c5d6e\x1f"
                    "\x1e"
                    "1763800000123456\x1e"
                    R"({"text":"hi"})");
    std::string_view payload = wire;
    std::string_view epoch;
    EXPECT_EQ(takePosition(payload, epoch), 42u);
    EXPECT_EQ(epoch, "18f2a3b4c5d6e");
    // The stamp follows the envelope, and is taken after it.
    EXPECT_EQ(takeStamp(payload), 1763800000123456);
    EXPECT_EQ(payload, R"({"text":"hi"})");
}

TEST(PositionEnvelopeTest, TakesTheLargestOffsetAndTheLongestEpoch) {
    const std::string epoch32(32, 'Z');
    std::string wire;
    appendPosition(9007199254740991, epoch32, wire);
    std::string_view payload = wire;
    std::string_view epoch;
    EXPECT_EQ(takePosition(payload, epoch), 9007199254740991u);
    EXPECT_EQ(epoch, epoch32);
    EXPECT_EQ(payload, "");
}

TEST(PositionEnvelopeTest, PayloadsWithoutAWellFormedEnvelopeAreUntouched) {
    const std::string long_epoch = "\x1f"
                                   "1\x1f" +
                                   std::string(33, 'a') +
                                   "\x1f"
                                   "x";
    for (std::string_view raw : {std::string_view(R"({"a":1})"), std::string_view(""),
                                 std::string_view("\x1f"), std::string_view("\x1f\x1f\x1f"),
                                 std::string_view("\x1f"
                                                  "1\x1f"
                                                  "e"),
                                 std::string_view("\x1f"
                                                  "0\x1f"
                                                  "e\x1f"
                                                  "data"),
                                 std::string_view("\x1f"
                                                  "-1\x1f"
                                                  "e\x1f"
                                                  "data"),
                                 std::string_view("\x1f"
                                                  "1x\x1f"
                                                  "e\x1f"
                                                  "data"),
                                 std::string_view("\x1f"
                                                  "9007199254740992\x1f"
                                                  "e\x1f"),  // 2^53
                                 std::string_view("\x1f"
                                                  "12345678901234567\x1f"
                                                  "e\x1f"),  // 17 digits
                                 std::string_view("\x1f"
                                                  "1\x1f\x1f"
                                                  "data"),  // empty epoch
                                 std::string_view("\x1f"
                                                  "1\x1f"
                                                  "a-b\x1f"
                                                  "data"),  // not [A-Za-z0-9]
                                 std::string_view(long_epoch),
                                 std::string_view("\x1e"
                                                  "5\x1e"
                                                  "\x1f"
                                                  "1\x1f"
                                                  "e\x1f")}) {  // stamp first
        std::string_view payload = raw;
        std::string_view epoch = "kept";
        EXPECT_EQ(takePosition(payload, epoch), 0u) << raw;
        EXPECT_EQ(payload, raw);
        EXPECT_EQ(epoch, "kept");
    }
}

TEST(PositionEnvelopeTest, EpochShape) {
    EXPECT_TRUE(isEpoch("a"));
    EXPECT_TRUE(isEpoch("18f2a3b4c5d6e"));
    EXPECT_TRUE(isEpoch(std::string(32, '9')));
    EXPECT_FALSE(isEpoch(""));
    EXPECT_FALSE(isEpoch(std::string(33, '9')));
    EXPECT_FALSE(isEpoch("ab_c"));
    EXPECT_FALSE(isEpoch("\xc3\xa9"));
}

}  // namespace
}  // namespace wsrelay
