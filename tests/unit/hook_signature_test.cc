#include "adapters/http_hook.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

// The expected MAC is Python's: hmac.new(b"s3cret", b'1700000000.{"event":"connect"}', sha256).
TEST(HookSignatureTest, IsHmacSha256OfTimestampDotBodyInLowerHex) {
    EXPECT_EQ(hookSignature("s3cret", 1700000000, R"({"event":"connect"})"),
              "t=1700000000,v1=292161a280cc0f625cf61592b53852dd239b9247e227f44695a708c2b1c8ca58");
}

}  // namespace
}  // namespace wsrelay
