// A session's history commands and subscribes with since: the refusals (grant, no history, limit,
// one read at a time, broker down), the read each sends and the frame its answer becomes. The
// broker is a fake recording reads; the test answers them as the worker's onHistory does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "relay/session/session.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

Config config() {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    c.channels = {{"room:*", 100, 60000}};
    c.history.max_limit = 10;
    c.history.max_recover = 5;
    return c;
}

int receive(TestSession& s, std::string_view text) {
    return s->onReceive(text.data(), text.size(), {});
}

std::vector<std::string> written(WorkerParts& w, TestSession& s) {
    w.flush.flushTurn();
    std::vector<std::string> out = s.wire.texts();
    s.wire.bytes.clear();
    return out;
}

void answer(WorkerParts& w, size_t i, uint64_t top, uint64_t first, std::string epoch = "e1") {
    HistoryAnswer a;
    a.top = {top, std::move(epoch)};
    for (uint64_t o = first; o != 0 && o <= top; ++o) {
        a.entries.push_back({o, R"({"n":)" + std::to_string(o) + "}"});
    }
    w.history.onAnswer(w.broker.reads.at(i).request.token, std::move(a));
}

int64_t errors(WorkerParts& w, int code) {
    return w.metrics.errors[metrics::errorCodeIndex(code)].value();
}

TEST(SessionHistoryTest, ASubscribeWithSinceOnAChannelWithoutHistoryIsRefusedWith405) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"subscribe","channel":"chat","since":{"offset":3,"epoch":"e1"},"id":4})");
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":4,"code":405)"));
    EXPECT_FALSE(w.hub.isSubscribed(s->membership(), "chat"));
    EXPECT_THAT(w.broker.subscribed, IsEmpty());
    EXPECT_EQ(errors(w, 405), 1);
    EXPECT_FALSE(s->closing());
    // Without since, as always.
    receive(s, R"({"op":"subscribe","channel":"chat","id":5})");
    w.hub.confirm("chat");
    EXPECT_THAT(written(w, s), ElementsAre(R"({"op":"ack","id":5})"));
}

TEST(SessionHistoryTest, ASubscribeWithSinceWhileTheBrokerIsDownIsRefusedWith503) {
    WorkerParts w(config());
    TestSession s(w, 1);
    w.broker.up = false;
    receive(s, R"({"op":"subscribe","channel":"room:1","since":{"offset":3,"epoch":"e1"},"id":4})");
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":4,"code":503)"));
    EXPECT_FALSE(w.hub.isSubscribed(s->membership(), "room:1"));
}

TEST(SessionHistoryTest, ASubscribeWithSinceGetsTheMessagesAfterItThenTheAck) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"subscribe","channel":"room:1","since":{"offset":2,"epoch":"e1"},"id":4})");
    w.hub.confirm("room:1");
    ASSERT_EQ(w.broker.reads.size(), 1u);
    EXPECT_EQ(w.broker.reads[0].channel, "room:1");
    EXPECT_EQ(w.broker.reads[0].request.after, 0u);  // the whole window the hub may recover from
    EXPECT_EQ(w.broker.reads[0].request.policy.size, 100);
    EXPECT_THAT(written(w, s), IsEmpty());
    answer(w, 0, 4, 1);
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_THAT(out[0], HasSubstr(R"("offset":3)"));
    EXPECT_THAT(out[1], HasSubstr(R"("offset":4)"));
    EXPECT_THAT(out[2], HasSubstr(R"("op":"ack")"));
    EXPECT_THAT(out[2], HasSubstr(R"("recovered":true)"));
    EXPECT_EQ(w.metrics.recoveries[metrics::RecoveryResult::Recovered].value(), 1);
}

TEST(SessionHistoryTest, HistoryOnAChannelWithoutHistoryIsRefusedWith405) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"chat","id":1})");
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":1,"code":405)"));
    EXPECT_THAT(w.broker.reads, IsEmpty());
}

TEST(SessionHistoryTest, ALimitOverMaxLimitIsRefusedWith413) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"room:1","limit":11,"id":1})");
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":1,"code":413)"));
    EXPECT_THAT(w.broker.reads, IsEmpty());
}

TEST(SessionHistoryTest, WhileTheBrokerIsDownHistoryIsRefusedWith503) {
    WorkerParts w(config());
    TestSession s(w, 1);
    w.broker.up = false;
    receive(s, R"({"op":"history","channel":"room:1","id":1})");
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":1,"code":503)"));
}

TEST(SessionHistoryTest, OutsideTheSubscribeGrantHistoryIsRefusedWith403) {
    WorkerParts w(config());
    auto identity = std::make_unique<Identity>();
    identity->permissions.subscribe.add("room:2");
    TestSession s(w, 1, std::move(identity));
    receive(s, R"({"op":"history","channel":"room:1","id":1})");
    receive(s, R"({"op":"subscribe","channel":"room:1","since":{"offset":1,"epoch":"e1"},"id":2})");
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":1,"code":403)"));
    EXPECT_THAT(out[1], HasSubstr(R"("id":2,"code":403)"));
    receive(s, R"({"op":"history","channel":"room:2","id":3})");
    EXPECT_EQ(w.broker.reads.size(), 1u);
}

TEST(SessionHistoryTest, TheNewestMessagesWithoutSince) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"room:1","limit":2,"id":7})");
    ASSERT_EQ(w.broker.reads.size(), 1u);
    const HistoryRequest& r = w.broker.reads[0].request;
    EXPECT_EQ(r.after, 0u);
    EXPECT_EQ(r.limit, 2u);
    EXPECT_TRUE(r.newest);
    EXPECT_THAT(written(w, s), IsEmpty());
    answer(w, 0, 9, 8);
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("op":"history")"));
    EXPECT_THAT(out[0], HasSubstr(R"("id":7)"));
    EXPECT_THAT(out[0], HasSubstr(R"({"offset":8,"data":{"n":8}},{"offset":9,"data":{"n":9}}])"));
    EXPECT_THAT(out[0], HasSubstr(R"("offset":9,"epoch":"e1")"));
}

TEST(SessionHistoryTest, WithSinceTheOldestAfterItAndNoneOfAnotherEpoch) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"room:1","since":{"offset":3,"epoch":"e1"},"id":1})");
    ASSERT_EQ(w.broker.reads.size(), 1u);
    EXPECT_EQ(w.broker.reads[0].request.after, 3u);
    EXPECT_EQ(w.broker.reads[0].request.limit, 10u) << "history.max_limit without a limit";
    EXPECT_FALSE(w.broker.reads[0].request.newest);
    answer(w, 0, 5, 4);
    auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("offset":4,"data")"));

    receive(s, R"({"op":"history","channel":"room:1","since":{"offset":3,"epoch":"e0"},"id":2})");
    answer(w, 1, 5, 4);
    out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("messages":[])"));
    EXPECT_THAT(out[0], HasSubstr(R"("offset":5,"epoch":"e1")"));
}

TEST(SessionHistoryTest, ASecondHistoryWhileOneIsUnderWayIsRefusedWith429) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"room:1","id":1})");
    receive(s, R"({"op":"history","channel":"room:2","id":2})");
    EXPECT_EQ(w.broker.reads.size(), 1u);
    auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":2,"code":429)"));
    answer(w, 0, 1, 1);
    receive(s, R"({"op":"history","channel":"room:2","id":3})");
    EXPECT_EQ(w.broker.reads.size(), 2u) << "the next one goes once the first was answered";
}

TEST(SessionHistoryTest, AnUnreadableHistoryIsAnswered503) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"room:1","id":1})");
    ASSERT_EQ(w.broker.reads.size(), 1u);
    w.history.onAnswer(w.broker.reads[0].request.token, {HistoryStatus::Unavailable, {}, {}});
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":1,"code":503)"));
}

TEST(SessionHistoryTest, AnAnswerNoSendQueueHoldsIsRefusedWith413) {
    Config cfg = config();
    cfg.limits.send_queue_bytes = 200;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    receive(s, R"({"op":"history","channel":"room:1","id":1})");
    ASSERT_EQ(w.broker.reads.size(), 1u);
    answer(w, 0, 10, 1);
    const auto out = written(w, s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("id":1,"code":413)"));
    EXPECT_FALSE(s->closing());
}

TEST(SessionHistoryTest, ASessionThatClosesCancelsItsRead) {
    Config cfg = config();
    cfg.history.max_reads_in_flight = 1;
    WorkerParts w(cfg);
    TestSession a(w, 1);
    TestSession b(w, 2);
    TestSession c(w, 3);
    receive(a, R"({"op":"history","channel":"room:1","id":1})");
    receive(b, R"({"op":"history","channel":"room:1","id":1})");
    receive(c, R"({"op":"history","channel":"room:1","id":1})");
    ASSERT_EQ(w.broker.reads.size(), 1u);
    EXPECT_EQ(w.history.waiting(), 2u);
    b.close();  // its read was waiting: dropped
    EXPECT_EQ(w.history.waiting(), 1u);
    a.close();  // its read is under way: answered to nobody
    answer(w, 0, 1, 1);
    ASSERT_EQ(w.broker.reads.size(), 2u);
    answer(w, 1, 1, 1);
    const auto out = written(w, c);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_THAT(out[0], HasSubstr(R"("op":"history")"));
}

}  // namespace
}  // namespace wsrelay
