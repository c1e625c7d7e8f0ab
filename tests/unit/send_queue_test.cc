#include "relay/fanout/send_queue.h"

#include <gtest/gtest.h>

#include <cstring>

namespace wsrelay {
namespace {

FramePtr frameOf(size_t n, char fill) {
    FramePtr f(Frame::allocate(n));
    std::memset(f->data(), fill, n);
    f->setSize(n);
    return f;
}

TEST(SendQueueTest, KeepsOrderAcrossGrowthAndWrapAround) {
    SendQueue q;
    for (int round = 0; round < 3; ++round) {
        for (char c = 'a'; c < 'a' + 20; ++c) q.push(frameOf(3, c));
        for (int i = 0; i < 7; ++i) q.pop();
        for (char c = 'A'; c < 'A' + 9; ++c) q.push(frameOf(3, c));
        ASSERT_EQ(q.size(), 22u);
        EXPECT_EQ(q.front()->data()[0], 'h');
        EXPECT_EQ(q.at(12)->data()[0], 't');
        EXPECT_EQ(q.at(13)->data()[0], 'A');
        q.clear();
        EXPECT_TRUE(q.empty());
        EXPECT_EQ(q.bytes(), 0u);
    }
}

TEST(SendQueueTest, CountsBytesAndChecksBothLimits) {
    SendQueue q;
    q.push(frameOf(100, 'x'));
    q.push(frameOf(50, 'y'));
    EXPECT_EQ(q.bytes(), 150u);
    EXPECT_TRUE(q.fits(50, 3, 200));
    EXPECT_FALSE(q.fits(51, 3, 200));  // bytes
    EXPECT_FALSE(q.fits(1, 2, 1000));  // count
    q.pop();
    EXPECT_EQ(q.bytes(), 50u);
}

TEST(SendQueueTest, SharedFramesAreReleasedWhenPopped) {
    FramePtr shared = frameOf(10, 's');
    {
        SendQueue a, b;
        a.push(shared);
        b.push(shared);
        a.pop();
    }
    // Both queues gone: only `shared` holds the frame; ASan would flag a double free or a leak.
    EXPECT_EQ(shared->size(), 10u);
}

}  // namespace
}  // namespace wsrelay
