// limits.rate in a session: a command over its kind's bucket is answered with 429 and not run,
// unsubscribe and ping never are, dry_run only counts, and refusals in a row close with 4429.
// The loop never runs here, so its clock stands still: every command comes at the same instant.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "relay/session/session.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using metrics::RateKind;
using metrics::RateResult;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

// One publish a second and nothing more at once; every other kind as generous as the default.
Config config(int max_refusals = 100) {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    c.limits.rate.publish_per_second = 1;
    c.limits.rate.burst_seconds = 1;
    c.limits.rate.max_refusals = max_refusals;
    return c;
}

int receive(TestSession& s, std::string_view text) {
    return s->onReceive(text.data(), text.size(), {});
}

std::string publish(int id) {
    return R"({"op":"publish","channel":"chat","data":1,"id":)" + std::to_string(id) + "}";
}

// The retry_after_ms of an error frame; -1 when it has none.
long retryAfter(const std::string& frame) {
    const std::string key = R"("retry_after_ms":)";
    const size_t at = frame.find(key);
    return at == std::string::npos ? -1 : std::stol(frame.substr(at + key.size()));
}

TEST(SessionRateTest, ACommandOverItsRateIsNotRunAndGets429WithItsIdAndWhenToRetry) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, publish(1));
    receive(s, publish(2));
    ASSERT_EQ(w.broker.published.size(), 1u);
    EXPECT_EQ(w.broker.published[0].ticket.request_id, 1u);
    w.flush.flushTurn();
    ASSERT_EQ(s.wire.texts().size(), 1u);
    const std::string error = s.wire.texts()[0];
    EXPECT_THAT(error,
                HasSubstr(R"({"op":"error","id":2,"code":429,"reason":"rate limit exceeded",)"
                          R"("retry_after_ms":)"));
    EXPECT_EQ(retryAfter(error), 1000);  // the clock stands still: a whole interval
    EXPECT_EQ(w.metrics.rate_limited[RateKind::Publish][RateResult::Refused].value(), 1);
    EXPECT_EQ(w.metrics.errors[metrics::errorCodeIndex(429)].value(), 1);
    EXPECT_FALSE(s->closing());
}

TEST(SessionRateTest, ACommandWithoutAnIdIsRefusedWithoutOne) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"publish","channel":"chat","data":1})");
    receive(s, R"({"op":"publish","channel":"chat","data":2})");
    w.flush.flushTurn();
    ASSERT_EQ(s.wire.texts().size(), 1u);
    EXPECT_THAT(s.wire.texts()[0], HasSubstr(R"({"op":"error","code":429,)"));
    EXPECT_EQ(w.broker.published.size(), 1u);
}

TEST(SessionRateTest, EachKindHasItsOwnBucket) {
    Config cfg = config();
    cfg.limits.rate.subscribe_per_second = 2;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    receive(s, publish(1));
    receive(s, publish(2));  // refused
    receive(s, R"({"op":"subscribe","channel":"a","id":3})");
    receive(s, R"({"op":"subscribe","channel":"b","id":4})");
    receive(s, R"({"op":"subscribe","channel":"c","id":5})");  // refused
    EXPECT_THAT(w.broker.subscribed, ElementsAre("a", "b"));
    EXPECT_EQ(w.metrics.rate_limited[RateKind::Publish][RateResult::Refused].value(), 1);
    EXPECT_EQ(w.metrics.rate_limited[RateKind::Subscribe][RateResult::Refused].value(), 1);
    w.flush.flushTurn();
    ASSERT_EQ(s.wire.texts().size(), 2u);  // the acks wait for the broker
    EXPECT_THAT(s.wire.texts()[0], HasSubstr(R"("id":2,"code":429)"));
    EXPECT_THAT(s.wire.texts()[1],
                AllOf(HasSubstr(R"("id":5,"code":429)"), HasSubstr(R"("retry_after_ms":500})")));
}

TEST(SessionRateTest, UnsubscribeAndPingAreNeverRefused) {
    Config cfg = config(/*max_refusals=*/1);
    cfg.limits.rate.subscribe_per_second = 1;
    cfg.limits.rate.other_per_second = 1;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    receive(s, R"({"op":"subscribe","channel":"a"})");
    w.hub.confirm("a");
    for (int i = 0; i < 500; ++i) {
        receive(s, R"({"op":"ping","id":1})");
        receive(s, R"({"op":"unsubscribe","channel":"a","id":2})");
    }
    EXPECT_FALSE(s->closing());
    EXPECT_EQ(w.metrics.errors[metrics::errorCodeIndex(429)].value(), 0);
    w.flush.flushTurn();
    // 500 pongs, the ack of the unsubscribe that found the subscription, 499 that did not (409).
    EXPECT_EQ(s.wire.texts().size(), 1000u);
    EXPECT_EQ(w.metrics.errors[metrics::errorCodeIndex(409)].value(), 499);
}

TEST(SessionRateTest, DryRunCountsWhatWouldBeRefusedAndRunsIt) {
    Config cfg = config(/*max_refusals=*/1);
    cfg.limits.rate.dry_run = true;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    for (int i = 1; i <= 5; ++i) receive(s, publish(i));
    EXPECT_EQ(w.broker.published.size(), 5u);
    EXPECT_EQ(w.metrics.rate_limited[RateKind::Publish][RateResult::DryRun].value(), 4);
    EXPECT_EQ(w.metrics.rate_limited[RateKind::Publish][RateResult::Refused].value(), 0);
    EXPECT_EQ(w.metrics.errors[metrics::errorCodeIndex(429)].value(), 0);
    EXPECT_FALSE(s->closing());
}

TEST(SessionRateTest, RefusalsInARowCloseWith4429AfterTheirErrorsAreWritten) {
    WorkerParts w(config(/*max_refusals=*/3));
    TestSession s(w, 1);
    receive(s, publish(1));
    receive(s, publish(2));
    receive(s, publish(3));
    EXPECT_FALSE(s->closing());
    receive(s, publish(4));
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(w.metrics.rate_limit_closes.value(), 1);
    receive(s, publish(5));  // closing: no longer read
    EXPECT_EQ(w.metrics.rate_limited[RateKind::Publish][RateResult::Refused].value(), 3);
    EXPECT_EQ(s->onWriteable(), 0);
    EXPECT_EQ(s.wire.texts().size(), 3u);
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.close_code, 4429);
    EXPECT_EQ(s.wire.close_reason, "rate limited");
    s.close();
    EXPECT_EQ(w.metrics.disconnects[metrics::closeCodeIndex(4429)].value(), 1);
}

TEST(SessionRateTest, AnAdmittedCommandStartsTheCountOfRefusalsAgain) {
    WorkerParts w(config(/*max_refusals=*/2));
    TestSession s(w, 1);
    receive(s, publish(1));
    receive(s, publish(2));  // refused: 1 in a row
    receive(s, R"({"op":"subscribe","channel":"a"})");
    receive(s, publish(3));  // refused: 1 in a row again
    EXPECT_FALSE(s->closing());
    receive(s, R"({"op":"ping"})");  // never refused, and resets nothing either
    receive(s, publish(4));
    EXPECT_TRUE(s->closing());
}

TEST(SessionRateTest, ZeroTurnsAKindOffAndMaxRefusalsZeroNeverCloses) {
    Config cfg = config(/*max_refusals=*/0);
    cfg.limits.rate.subscribe_per_second = 0;
    cfg.limits.rate.history_per_second = 1;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    for (int i = 0; i < 120; ++i) {
        receive(s, R"({"op":"subscribe","channel":"c)" + std::to_string(i) + R"("})");
    }
    EXPECT_EQ(w.broker.subscribed.size(), 120u);
    for (int i = 0; i < 1000; ++i) receive(s, publish(i));
    EXPECT_FALSE(s->closing());
    EXPECT_EQ(w.broker.published.size(), 1u);
}

TEST(SessionRateTest, TheDefaultsLetAPageSubscribeToEveryChannelItMayAtOnce) {
    Config cfg = WorkerParts::defaultConfig();
    WorkerParts w(cfg);
    TestSession s(w, 1);
    for (int i = 0; i < cfg.limits.max_subscriptions; ++i) {
        receive(s, R"({"op":"subscribe","channel":"c)" + std::to_string(i) + R"("})");
    }
    EXPECT_EQ(w.broker.subscribed.size(), static_cast<size_t>(cfg.limits.max_subscriptions));
    EXPECT_THAT(w.broker.published, IsEmpty());
    EXPECT_EQ(w.metrics.errors[metrics::errorCodeIndex(429)].value(), 0);
}

}  // namespace
}  // namespace wsrelay
