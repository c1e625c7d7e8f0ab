// The per-connection token bucket of limits.rate, on a clock the test sets.

#include "relay/session/rate_limiter.h"

#include <gtest/gtest.h>

namespace wsrelay {
namespace {

constexpr int64_t kSecond = 1000000;
// Any instant: the bucket must not care where the clock starts.
constexpr int64_t kStart = int64_t{1700000000} * kSecond + 123457;

TEST(RateLimiterTest, AFreshBucketAdmitsItsBurstAtOnceThenRefuses) {
    const RateRule rule = RateRule::of(/*per_second=*/3, /*burst_seconds=*/2);  // 6 tokens
    TokenBucket bucket;
    for (int i = 0; i < 6; ++i) EXPECT_EQ(bucket.take(rule, kStart), 0u) << i;
    EXPECT_GT(bucket.take(rule, kStart), 0u);
}

TEST(RateLimiterTest, TheRefusalSaysWhenATokenIsBackAndThenItIs) {
    const RateRule rule = RateRule::of(4, 1);  // 4 tokens, one every 250 ms
    TokenBucket bucket;
    for (int i = 0; i < 4; ++i) ASSERT_EQ(bucket.take(rule, kStart), 0u);
    EXPECT_EQ(bucket.take(rule, kStart), 250u);
    EXPECT_EQ(bucket.take(rule, kStart + 100000), 150u);  // 100 ms later
    EXPECT_EQ(bucket.take(rule, kStart + 249999), 1u);    // rounded up, never 0
    EXPECT_EQ(bucket.take(rule, kStart + 250000), 0u);
    EXPECT_EQ(bucket.take(rule, kStart + 250000), 250u);  // only the one came back
}

TEST(RateLimiterTest, RefusedCommandsTakeNothing) {
    const RateRule rule = RateRule::of(1, 1);
    TokenBucket bucket;
    ASSERT_EQ(bucket.take(rule, kStart), 0u);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(bucket.take(rule, kStart), 1000u);
    EXPECT_EQ(bucket.take(rule, kStart + kSecond), 0u);
}

TEST(RateLimiterTest, TheSteadyRateIsAdmittedForever) {
    const RateRule rule = RateRule::of(50, 2);
    TokenBucket bucket;
    int64_t now = kStart;
    for (int i = 0; i < 100000; ++i, now += kSecond / 50) ASSERT_EQ(bucket.take(rule, now), 0u);
}

TEST(RateLimiterTest, AQuietBucketRefillsOnlyUpToItsSize) {
    const RateRule rule = RateRule::of(10, 1);
    TokenBucket bucket;
    for (int i = 0; i < 10; ++i) ASSERT_EQ(bucket.take(rule, kStart), 0u);
    const int64_t later = kStart + 3600 * kSecond;
    for (int i = 0; i < 10; ++i) EXPECT_EQ(bucket.take(rule, later), 0u) << i;
    EXPECT_EQ(bucket.take(rule, later), 100u);
}

TEST(RateLimiterTest, ZeroTurnsTheKindOff) {
    const RateRule rule = RateRule::of(0, 2);
    TokenBucket bucket;
    for (int i = 0; i < 100000; ++i) ASSERT_EQ(bucket.take(rule, kStart), 0u);
}

TEST(RateLimiterTest, AClockSteppedBackMakesAClientWaitOneIntervalAtMost) {
    const RateRule rule = RateRule::of(2, 1);  // 2 tokens, one every 500 ms
    TokenBucket bucket;
    ASSERT_EQ(bucket.take(rule, kStart), 0u);
    ASSERT_EQ(bucket.take(rule, kStart), 0u);
    EXPECT_EQ(bucket.take(rule, kStart - 3600 * kSecond), 500u);
    EXPECT_EQ(bucket.take(rule, kStart - 3600 * kSecond + 500000), 0u);
}

TEST(RateLimiterTest, EachCommandHasItsKindAndUnsubscribeAndPingHaveNone) {
    using protocol::Op;
    EXPECT_EQ(rateKindOf(Op::Publish), RateKind::Publish);
    EXPECT_EQ(rateKindOf(Op::Subscribe), RateKind::Subscribe);
    EXPECT_EQ(rateKindOf(Op::Send), RateKind::Send);
    EXPECT_EQ(rateKindOf(Op::History), RateKind::History);
    EXPECT_EQ(rateKindOf(Op::Refresh), RateKind::Other);
    EXPECT_EQ(rateKindOf(Op::Unsubscribe), std::nullopt);
    EXPECT_EQ(rateKindOf(Op::Ping), std::nullopt);
}

TEST(RateLimiterTest, EachKindReadsItsOwnKey) {
    Config::Limits::Rate rate;
    rate.publish_per_second = 1;
    rate.subscribe_per_second = 2;
    rate.send_per_second = 4;
    rate.history_per_second = 5;
    rate.other_per_second = 8;
    rate.burst_seconds = 3;
    EXPECT_EQ(RateRule::of(rate, RateKind::Publish).interval_us, 1000000);
    EXPECT_EQ(RateRule::of(rate, RateKind::Subscribe).interval_us, 500000);
    EXPECT_EQ(RateRule::of(rate, RateKind::Send).interval_us, 250000);
    EXPECT_EQ(RateRule::of(rate, RateKind::History).interval_us, 200000);
    EXPECT_EQ(RateRule::of(rate, RateKind::Other).interval_us, 125000);
    EXPECT_EQ(RateRule::of(rate, RateKind::Other).tolerance_us, 23 * 125000);  // 24 tokens
}

}  // namespace
}  // namespace wsrelay
