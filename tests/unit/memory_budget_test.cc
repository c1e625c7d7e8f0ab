// The memory budget: credit reserved in chunks, the full state and its hysteresis, and what a
// worker does when the budget is full (publishes refused with 503, the largest queues shed with
// 4001 first), on sessions with recording wires.

#include "relay/common/memory_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "relay/protocol/protocol.h"
#include "relay/session/memory_shedder.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::HasSubstr;
using testing::TestSession;
using testing::WorkerParts;

constexpr int64_t kMiB = 1024 * 1024;

TEST(MemoryBudgetTest, TheChunkIsSmallAgainstTheBudget) {
    EXPECT_EQ(MemoryBudget(0, 4).chunk(), MemoryBudget::kMaxChunkBytes);
    EXPECT_EQ(MemoryBudget(int64_t{1} << 40, 4).chunk(), MemoryBudget::kMaxChunkBytes);
    EXPECT_EQ(MemoryBudget(64 * kMiB, 4).chunk(), 256 * 1024);
    EXPECT_EQ(MemoryBudget(16 * kMiB, 2).chunk(), 128 * 1024);
    EXPECT_EQ(MemoryBudget(kMiB, 64).chunk(), MemoryBudget::kMinChunkBytes);
}

TEST(MemoryBudgetTest, CreditIsReservedAndGivenBackInChunks) {
    MemoryBudget budget(64 * kMiB, 1);
    const int64_t chunk = budget.chunk();
    MemoryCredit a(budget);
    MemoryCredit b(budget);

    a.add(1);
    EXPECT_EQ(a.used(), 1);
    EXPECT_EQ(budget.reserved(), chunk);
    for (int i = 0; i < 1000; ++i) a.add(100);  // within the chunk: the shared counter stays
    EXPECT_EQ(budget.reserved(), chunk);
    a.add(chunk);  // past it: whole chunks
    EXPECT_EQ(budget.reserved(), 2 * chunk);
    b.add(3 * chunk + 1);
    EXPECT_EQ(budget.reserved(), 6 * chunk);
    EXPECT_GE(budget.reserved(), a.used() + b.used());

    // Giving back waits for more than two unused chunks, then keeps one above what is used.
    b.sub(chunk);
    EXPECT_EQ(b.credit(), 4 * chunk);
    b.sub(chunk + 1);
    EXPECT_EQ(b.used(), chunk);
    EXPECT_EQ(b.credit(), 2 * chunk);
    b.sub(chunk);
    EXPECT_EQ(b.used(), 0);
    EXPECT_EQ(b.credit(), 2 * chunk);  // two unused chunks: kept
    EXPECT_EQ(budget.reserved(), a.credit() + b.credit());
}

TEST(MemoryBudgetTest, ACreditGoneGivesEverythingBack) {
    MemoryBudget budget(64 * kMiB, 1);
    {
        MemoryCredit a(budget);
        a.add(10 * kMiB);
        EXPECT_GE(budget.reserved(), 10 * kMiB);
    }
    EXPECT_EQ(budget.reserved(), 0);
}

TEST(MemoryBudgetTest, FullFromTheLimitUntilBackUnderTheLowMark) {
    MemoryBudget budget(10 * kMiB, 1);
    MemoryCredit credit(budget);
    EXPECT_FALSE(budget.full());
    credit.add(10 * kMiB - budget.chunk() - 1);
    EXPECT_FALSE(budget.full());
    credit.add(budget.chunk());
    EXPECT_TRUE(budget.full());
    credit.sub(kMiB / 2);  // 9.5 MiB: above the low mark, still full
    EXPECT_TRUE(budget.full());
    credit.sub(kMiB);  // 8.5 MiB used: the reserved credit is under 9 MiB again
    EXPECT_FALSE(budget.full());
    credit.add(kMiB);  // 9.5 MiB: not full again until the limit
    EXPECT_FALSE(budget.full());
}

TEST(MemoryBudgetTest, NoBudgetIsNeverFull) {
    MemoryBudget budget(0, 1);
    MemoryCredit credit(budget);
    credit.add(int64_t{1} << 40);
    EXPECT_FALSE(budget.full());
}

// A worker with a 1 MiB budget (below what the config allows; the parts take it as given) whose
// sessions' writes are held back, so what is pushed stays queued.
Config tight() {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    c.limits.memory_budget_bytes = kMiB;
    c.limits.send_queue_bytes = 4 * kMiB;
    c.websocket.max_message_bytes = 2 * kMiB;
    return c;
}

// Pushes 16 KiB frames (each its own) until at least `bytes` are queued; returns how many.
int64_t fill(TestSession& s, int64_t bytes) {
    int64_t frames = 0;
    for (int64_t queued = 0; queued < bytes; ++frames) {
        const FramePtr frame = protocol::encodeMessage("c", std::string(16 * 1024 - 20, '1'));
        queued += static_cast<int64_t>(frame->size());
        s->push(frame);
    }
    return frames;
}

// Two looks kStallSeconds apart: what the shedder closes is what did not move in between.
size_t twoLooks(MemoryShedder& shedder, ev_tstamp at = 1.0) {
    const size_t first = shedder.onTurn(at);
    EXPECT_EQ(first, 0u);  // the first look only notes each queue's head
    EXPECT_EQ(shedder.onTurn(at + MemoryShedder::kStallSeconds / 2), 0u);  // too soon
    return shedder.onTurn(at + MemoryShedder::kStallSeconds);
}

TEST(MemoryShedderTest, TheLargestQueuesAreShedFirstWith4001) {
    WorkerParts w(tight());
    MemoryShedder shedder(w.memory, w.sessions, w.metrics);
    TestSession big(w, 1), middle(w, 2), small(w, 3), idle(w, 4);
    for (TestSession* s : {&big, &middle, &small, &idle}) s->wire.next = Wire::Write::Held;
    fill(small, 100 * 1024);
    fill(middle, 300 * 1024);
    EXPECT_EQ(shedder.onTurn(0), 0u);  // under the budget: nothing
    EXPECT_EQ(w.metrics.queued_bytes.value(), w.memory.used());
    const int64_t big_frames = fill(big, 640 * 1024);
    ASSERT_TRUE(w.shared.memory.full());

    EXPECT_EQ(twoLooks(shedder), 1u);  // the largest alone brings it under the low mark
    EXPECT_TRUE(big->closing());
    EXPECT_FALSE(middle->closing());
    EXPECT_FALSE(small->closing());
    EXPECT_FALSE(idle->closing());
    EXPECT_EQ(w.metrics.memory_shed.value(), 1);
    EXPECT_EQ(w.metrics.dropped[metrics::DropReason::MemoryBudget].value(), big_frames);
    EXPECT_FALSE(w.shared.memory.full());
    EXPECT_EQ(w.metrics.queued_bytes.value(), w.memory.used());
    EXPECT_EQ(big->onWriteable(), -1);
    EXPECT_EQ(big.wire.close_code, 4001);
    EXPECT_EQ(big.wire.close_reason, "memory budget");

    EXPECT_EQ(shedder.onTurn(5), 0u);  // not full: nothing more
    big.close();
    EXPECT_EQ(w.metrics.disconnects[metrics::closeCodeIndex(4001)].value(), 1);
}

TEST(MemoryShedderTest, ItShedsUntilItsShareOfTheExcessIsFreed) {
    WorkerParts w(tight());
    MemoryShedder shedder(w.memory, w.sessions, w.metrics);
    std::vector<std::unique_ptr<TestSession>> sessions;
    for (uint64_t id = 1; id <= 8; ++id) {
        sessions.push_back(std::make_unique<TestSession>(w, id));
        sessions.back()->wire.next = Wire::Write::Held;
        fill(*sessions.back(), 136 * 1024);  // 8 x 144 KiB: 1.13 MiB
    }
    ASSERT_TRUE(w.shared.memory.full());
    // Down to 0.9 MiB needs two of the eight.
    EXPECT_EQ(twoLooks(shedder), 2u);
    EXPECT_EQ(w.metrics.memory_shed.value(), 2);
    EXPECT_FALSE(w.shared.memory.full());
}

TEST(MemoryShedderTest, AReaderThatKeepsUpIsNotShedHoweverMuchItHolds) {
    WorkerParts w(tight());
    MemoryShedder shedder(w.memory, w.sessions, w.metrics);
    TestSession moving(w, 1), stuck(w, 2);
    stuck.wire.next = Wire::Write::Held;
    fill(moving, 700 * 1024);
    fill(stuck, 400 * 1024);
    ASSERT_TRUE(w.shared.memory.full());
    EXPECT_EQ(shedder.onTurn(1.0), 0u);
    w.flush.flushTurn();  // the moving one writes a batch; the stuck one cannot
    EXPECT_GT(moving->queuedBytes(), stuck->queuedBytes());
    EXPECT_EQ(shedder.onTurn(2.0), 1u);
    EXPECT_TRUE(stuck->closing());
    EXPECT_FALSE(moving->closing());
}

TEST(MemoryShedderTest, APartialMessageCountsButIsNotShed) {
    WorkerParts w(tight());
    MemoryShedder shedder(w.memory, w.sessions, w.metrics);
    TestSession sender(w, 1);
    const std::string piece(64 * 1024, ' ');
    Session::Piece more;
    more.final = false;
    more.remaining = 1;
    for (int i = 0; i < 17; ++i) sender->onReceive(piece.data(), piece.size(), more);
    EXPECT_EQ(sender->queuedBytes(), 17u * 64 * 1024);
    EXPECT_EQ(w.memory.used(), 17 * 64 * 1024);
    ASSERT_TRUE(w.shared.memory.full());
    EXPECT_EQ(twoLooks(shedder), 0u);
    EXPECT_FALSE(sender->closing());
    // Its bound is websocket.max_message_bytes; once the message is whole it is uncounted.
    const std::string last = "{}";
    Session::Piece end;
    sender->onReceive(last.data(), last.size(), end);
    EXPECT_EQ(w.memory.used(), static_cast<int64_t>(sender->queuedBytes()));  // its error reply
    EXPECT_LT(w.memory.used(), 1024);
}

TEST(MemoryShedderTest, APublishIntoAFullBudgetIsRefusedWith503AndCounted) {
    WorkerParts w(tight());
    MemoryShedder shedder(w.memory, w.sessions, w.metrics);
    TestSession slow(w, 1), publisher(w, 2);
    slow.wire.next = Wire::Write::Held;
    fill(slow, kMiB);
    ASSERT_TRUE(w.shared.memory.full());

    const std::string command = R"({"op":"publish","channel":"chat","data":1,"id":5})";
    publisher->onReceive(command.data(), command.size(), {});
    EXPECT_TRUE(w.broker.published.empty());
    EXPECT_EQ(w.metrics.memory_refused[metrics::PublishEntry::Client].value(), 1);
    w.flush.flushTurn();
    ASSERT_EQ(publisher.wire.texts().size(), 1u);
    EXPECT_THAT(publisher.wire.texts()[0], HasSubstr(R"("id":5,"code":503)"));
    EXPECT_THAT(publisher.wire.texts()[0], HasSubstr("memory budget full"));

    twoLooks(shedder);  // the slow one goes: publishes are taken again
    publisher->onReceive(command.data(), command.size(), {});
    EXPECT_EQ(w.broker.published.size(), 1u);
}

TEST(MemoryShedderTest, EveryQueuedByteIsGivenBackWhenSessionsClose) {
    WorkerParts w(tight());
    {
        TestSession s(w, 1);
        s.wire.next = Wire::Write::Held;
        fill(s, 200 * 1024);
        const std::string piece(1000, ' ');
        Session::Piece more;
        more.final = false;
        more.remaining = 1;
        s->onReceive(piece.data(), piece.size(), more);
        EXPECT_GT(w.memory.used(), 200 * 1024);
    }
    EXPECT_EQ(w.memory.used(), 0);
    EXPECT_EQ(w.metrics.send_queue_bytes.value(), 0);
}

}  // namespace
}  // namespace wsrelay
