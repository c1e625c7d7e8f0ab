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

}  // namespace
}  // namespace wsrelay
