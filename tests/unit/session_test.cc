// Session on a recording Wire: a message in, its command, the frames it pushes, their coalesced
// writes, the slow-consumer policies, keepalive, drain and close, with no socket. The edge's
// callbacks (onWriteable, onTimer, onPong) are called here as lws would call them.

#include "relay/session/session.h"

#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "relay/protocol/protocol.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using testing::FakeWire;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

// Every turn's frames leave at the end of that turn, unless a test wants the coalescing window.
Config config() {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    return c;
}

int64_t disconnects(WorkerParts& w, int code) {
    return w.metrics.disconnects[metrics::closeCodeIndex(code)].value();
}

int receive(TestSession& s, std::string_view text, Session::Piece piece = {}) {
    return s->onReceive(text.data(), text.size(), piece);
}

// Subscribed and confirmed, the ack written and forgotten.
void subscribe(WorkerParts& w, TestSession& s, std::string_view channel) {
    s->subscribeAndAnswer(channel, std::nullopt);
    w.hub.confirm(channel);
    w.flush.flushTurn();
    s.wire.bytes.clear();
    s.wire.write_calls = 0;
}

TEST(SessionTest, AMessageInRunsItsCommandAndTheAckIsWrittenAtTheEndOfTheTurn) {
    WorkerParts w(config());
    TestSession s(w, 1);
    EXPECT_EQ(receive(s, R"({"op":"subscribe","channel":"chat","id":1})"), 0);
    EXPECT_THAT(w.broker.subscribed, ElementsAre("chat"));
    EXPECT_EQ(w.metrics.messages_received.value(), 1);
    EXPECT_EQ(w.metrics.subscriptions.value(), 1);
    w.flush.flushTurn();
    EXPECT_EQ(s.wire.write_calls, 0);  // the ack waits for the broker
    w.hub.confirm("chat");
    w.flush.flushTurn();
    EXPECT_THAT(s.wire.texts(), ElementsAre(R"({"op":"ack","id":1})"));
    EXPECT_EQ(s.wire.write_calls, 1);
    EXPECT_EQ(w.metrics.socket_writes.value(), 1);
    EXPECT_EQ(w.metrics.messages_sent.value(), 1);
    EXPECT_EQ(w.metrics.send_queue_bytes.value(), 0);
}

TEST(SessionTest, APublishGoesToTheBrokerWithItsTicket) {
    WorkerParts w(config());
    TestSession s(w, 7);
    receive(s, R"({"op":"publish","channel":"chat","data":{"a":1},"id":4})");
    ASSERT_EQ(w.broker.published.size(), 1u);
    EXPECT_EQ(w.broker.published[0].channel, "chat");
    EXPECT_EQ(w.broker.published[0].data, R"({"a":1})");
    EXPECT_EQ(w.broker.published[0].ticket.session_id, 7u);
    EXPECT_EQ(w.broker.published[0].ticket.request_id, 4u);
    EXPECT_TRUE(w.broker.published[0].ticket.has_request_id);
}

TEST(SessionTest, APublishWhileTheBrokerIsDownIsAnsweredWithAnError) {
    WorkerParts w(config());
    TestSession s(w, 1);
    w.broker.up = false;
    receive(s, R"({"op":"publish","channel":"chat","data":1,"id":2})");
    EXPECT_THAT(w.broker.published, IsEmpty());
    w.flush.flushTurn();
    ASSERT_EQ(s.wire.texts().size(), 1u);
    EXPECT_THAT(s.wire.texts()[0], HasSubstr(R"("id":2,"code":503)"));
    EXPECT_EQ(w.metrics.broker_publish_failures.value(), 1);
}

TEST(SessionTest, APingCommandIsAnsweredWithAPong) {
    WorkerParts w(config());
    TestSession s(w, 1);
    receive(s, R"({"op":"ping","id":9})");
    w.flush.flushTurn();
    EXPECT_THAT(s.wire.texts(), ElementsAre(R"({"op":"pong","id":9})"));
}

TEST(SessionTest, AMessageInPiecesIsRunOnceWhole) {
    WorkerParts w(config());
    TestSession s(w, 1);
    const std::string text = R"({"op":"ping","id":3})";
    EXPECT_EQ(receive(s, text.substr(0, 5), {false, false, text.size() - 5}), 0);
    EXPECT_EQ(w.metrics.messages_received.value(), 0);
    EXPECT_EQ(receive(s, text.substr(5)), 0);
    EXPECT_EQ(w.metrics.messages_received.value(), 1);
    w.flush.flushTurn();
    EXPECT_THAT(s.wire.texts(), ElementsAre(R"({"op":"pong","id":3})"));
}

TEST(SessionTest, BadInputClosesWithItsCode) {
    struct Case {
        std::string text;
        Session::Piece piece;
        int code;
    };
    Config cfg = config();
    cfg.websocket.max_message_bytes = 64;
    const Case cases[] = {
        {"{}", {true, true, 0}, 1003},                     // binary
        {"\"\xC3\x28\"", {}, 1007},                        // invalid UTF-8
        {std::string(40, ' '), {false, false, 40}, 1009},  // 80 bytes announced
    };
    for (const Case& c : cases) {
        WorkerParts w(cfg);
        TestSession s(w, 1);
        EXPECT_EQ(receive(s, c.text, c.piece), -1) << c.code;
        EXPECT_EQ(s.wire.close_code, c.code);
        EXPECT_EQ(s.wire.close_reason, closeInfo(static_cast<CloseCode>(c.code)).reason);
        s.close();
        EXPECT_EQ(disconnects(w, c.code), 1);
    }
}

TEST(SessionTest, TooManyBadCommandsCloseAfterTheirErrorsAreWritten) {
    Config cfg = config();
    cfg.limits.max_bad_commands = 2;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(receive(s, R"({"op":"nope"})"), 0);
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(s.wire.close_within_s, 3);
    // The close waits for WRITEABLE: the three errors go first, then the close.
    w.flush.flushTurn();
    EXPECT_EQ(s.wire.write_calls, 0);
    EXPECT_EQ(s->onWriteable(), 0);
    EXPECT_EQ(s.wire.texts().size(), 3u);
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.close_code, 4500);
    s.close();
    EXPECT_EQ(disconnects(w, 4500), 1);
}

TEST(SessionTest, QueuedFramesCoalesceIntoOneWrite) {
    WorkerParts w(config());
    TestSession s(w, 1);
    subscribe(w, s, "chat");
    for (int i = 0; i < 5; ++i) w.hub.deliver("chat", std::to_string(i));
    w.flush.flushTurn();
    EXPECT_EQ(s.wire.write_calls, 1);
    EXPECT_EQ(s.wire.texts().size(), 5u);
    EXPECT_EQ(s.wire.texts()[4], R"({"op":"message","channel":"chat","data":4})");
    EXPECT_EQ(w.metrics.messages_sent.value(), 5);
}

TEST(SessionTest, ASocketWrittenWithinTheWindowWaitsForTheCoalescingTimer) {
    Config cfg = config();
    cfg.websocket.write_coalesce_ms = 1;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    subscribe(w, s, "chat");
    s->reply(protocol::encodePong(std::nullopt));
    w.flush.flushTurn();  // written at the loop's current time
    s.wire.bytes.clear();
    s.wire.write_calls = 0;
    w.hub.deliver("chat", "1");
    w.hub.deliver("chat", "2");
    w.flush.flushTurn();
    EXPECT_EQ(s.wire.write_calls, 0);
    EXPECT_EQ(w.flush.deferredCount(), 1u);
    ev_run(w.loop, EVRUN_ONCE);  // the coalescing timer
    EXPECT_EQ(s.wire.write_calls, 1);
    EXPECT_EQ(s.wire.texts().size(), 2u);
}

TEST(SessionTest, AWireHoldingAnEarlierWriteKeepsTheQueueUntilWriteable) {
    WorkerParts w(config());
    TestSession s(w, 1);
    subscribe(w, s, "chat");
    s.wire.next = Wire::Write::Held;
    w.hub.deliver("chat", "1");
    w.flush.flushTurn();
    EXPECT_EQ(s.wire.writable_asks, 1);
    EXPECT_GT(w.metrics.send_queue_bytes.value(), 0);
    s.wire.next = Wire::Write::Taken;
    EXPECT_EQ(s->onWriteable(), 0);
    EXPECT_THAT(s.wire.texts(), ElementsAre(R"({"op":"message","channel":"chat","data":1})"));
    EXPECT_EQ(w.metrics.send_queue_bytes.value(), 0);
}

TEST(SessionTest, AFailedWriteClosesAs1006) {
    WorkerParts w(config());
    TestSession s(w, 1);
    s.wire.next = Wire::Write::Gone;
    receive(s, R"({"op":"ping"})");
    w.flush.flushTurn();
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(s->onWriteable(), -1);
    s.close();
    EXPECT_EQ(disconnects(w, 1006), 1);
}

TEST(SessionTest, SlowConsumerCloseDropsTheQueueAndClosesWith4001) {
    Config cfg = config();
    cfg.limits.send_queue_messages = 2;
    cfg.limits.slow_consumer = SlowConsumerPolicy::Close;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    subscribe(w, s, "chat");
    for (int i = 0; i < 3; ++i) w.hub.deliver("chat", std::to_string(i));
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(w.metrics.dropped[metrics::DropReason::SlowConsumerClose].value(), 3);
    EXPECT_EQ(w.metrics.send_queue_bytes.value(), 0);
    w.hub.deliver("chat", "late");
    EXPECT_EQ(w.metrics.dropped[metrics::DropReason::ClientGone].value(), 1);
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.write_calls, 0);
    EXPECT_EQ(s.wire.close_code, 4001);
    EXPECT_EQ(s.wire.close_reason, "slow consumer");
    s.close();
    EXPECT_EQ(disconnects(w, 4001), 1);
}

TEST(SessionTest, SlowConsumerDropOldestKeepsTheNewestFrames) {
    Config cfg = config();
    cfg.limits.send_queue_messages = 2;
    cfg.limits.slow_consumer = SlowConsumerPolicy::DropOldest;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    subscribe(w, s, "chat");
    for (int i = 0; i < 4; ++i) w.hub.deliver("chat", std::to_string(i));
    EXPECT_FALSE(s->closing());
    EXPECT_EQ(w.metrics.dropped[metrics::DropReason::SlowConsumerDropOldest].value(), 2);
    w.flush.flushTurn();
    EXPECT_THAT(s.wire.texts(), ElementsAre(R"({"op":"message","channel":"chat","data":2})",
                                            R"({"op":"message","channel":"chat","data":3})"));
}

TEST(SessionTest, DropOldestDropsAFrameLargerThanTheWholeQueue) {
    Config cfg = config();
    cfg.limits.send_queue_bytes = 64;
    cfg.limits.slow_consumer = SlowConsumerPolicy::DropOldest;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    s->reply(protocol::encodePong(1));
    s->reply(protocol::encodeMessage("c", std::string(80, '1')));
    EXPECT_EQ(w.metrics.dropped[metrics::DropReason::SlowConsumerDropOldest].value(), 2);
    w.flush.flushTurn();
    EXPECT_THAT(s.wire.texts(), IsEmpty());
    EXPECT_EQ(w.metrics.send_queue_bytes.value(), 0);
}

TEST(SessionTest, KeepalivePingsAfterTheIntervalAndClosesWhenNoPongComes) {
    Config cfg = config();
    cfg.websocket.ping_interval_ms = 50;
    cfg.websocket.pong_timeout_ms = 20;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    s->start({});
    EXPECT_EQ(s.wire.timer_usecs, 50'000);

    EXPECT_EQ(s->onTimer(), 0);  // the interval passed: a ping is due
    EXPECT_EQ(s.wire.writable_asks, 1);
    EXPECT_EQ(s->onWriteable(), 0);
    ASSERT_EQ(s.wire.frames().size(), 1u);
    EXPECT_EQ(s.wire.frames()[0].opcode, 0x9);
    EXPECT_EQ(s.wire.frames()[0].payload, "ka");
    EXPECT_EQ(s.wire.timer_usecs, 20'000);  // now the pong timeout

    s->onPong();
    EXPECT_EQ(s.wire.timer_usecs, 50'000);
    s->onTimer();
    s->onWriteable();
    EXPECT_EQ(s.wire.frames().size(), 2u);
    EXPECT_EQ(s->onTimer(), 0);  // no pong within the timeout
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.close_code, 4002);
    s.close();
    EXPECT_EQ(disconnects(w, 4002), 1);
}

TEST(SessionTest, ADuePingRidesInTheNextBatch) {
    Config cfg = config();
    cfg.websocket.ping_interval_ms = 50;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    s->start({});
    s->onTimer();
    s->reply(protocol::encodePong(std::nullopt));
    w.flush.flushTurn();
    EXPECT_EQ(s.wire.write_calls, 1);
    const auto frames = s.wire.frames();
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].opcode, 0x9);
    EXPECT_EQ(frames[1].payload, R"({"op":"pong"})");
}

TEST(SessionTest, DrainAdvisesReconnectThenClosesWith1001) {
    Config cfg = config();
    cfg.websocket.ping_interval_ms = 50;
    WorkerParts w(cfg);
    TestSession s(w, 1);
    s->start({});
    s->scheduleDrain(7'000);
    EXPECT_EQ(s.wire.timer_usecs, 7'000);  // replaces the ping
    EXPECT_EQ(s->onTimer(), 0);
    EXPECT_TRUE(s->closing());
    EXPECT_EQ(s->onWriteable(), 0);
    EXPECT_THAT(s.wire.texts(), ElementsAre(R"({"op":"reconnect"})"));
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.close_code, 1001);
    EXPECT_EQ(s.wire.close_reason, "server shutting down");
}

TEST(SessionTest, AnAppCloseCutsItsReasonOnACharacterBoundary) {
    WorkerParts w(config());
    TestSession s(w, 1);
    std::string reason(122, 'a');
    reason += "\xC3\xA9";  // 'é' straddles the 123-byte limit
    s->closeWith(4321, reason);
    EXPECT_EQ(s->onWriteable(), -1);
    EXPECT_EQ(s.wire.close_code, 4321);
    EXPECT_EQ(s.wire.close_reason, std::string(122, 'a'));
}

TEST(SessionTest, APeerCloseIsCountedByItsCodeAndTheSessionLeavesItsChannels) {
    WorkerParts w(config());
    TestSession s(w, 1);
    subscribe(w, s, "chat");
    const unsigned char payload[] = {0x03, 0xE8};  // 1000
    s->onPeerClose(payload, sizeof payload);
    s.close();
    EXPECT_EQ(disconnects(w, 1000), 1);
    EXPECT_THAT(w.broker.unsubscribed, ElementsAre("chat"));
    EXPECT_EQ(w.metrics.subscriptions.value(), 0);
    EXPECT_EQ(w.metrics.connections.value(), 0);
}

// permessage-deflate: lws hands over inflated pieces while `remaining` counts compressed bytes.
TEST(SessionTest, WithDeflateOnlyInflatedBytesCountAgainstTheMessageLimit) {
    Config cfg = config();
    cfg.websocket.max_message_bytes = 64;
    {
        // 100 compressed bytes still to come do not refuse a message that inflates to less.
        WorkerParts w(cfg);
        TestSession s(w, 1);
        s->useDeflate();
        const std::string text = R"({"op":"ping","id":3})";
        EXPECT_EQ(receive(s, text.substr(0, 5), {false, false, 100}), 0);
        EXPECT_EQ(receive(s, text.substr(5)), 0);
        EXPECT_EQ(w.metrics.messages_received.value(), 1);
        EXPECT_EQ(w.metrics.deflate_connections.value(), 1);
        s.close();
        EXPECT_EQ(w.metrics.deflate_connections.value(), 0);
    }
    {
        // A few compressed bytes that inflate past the limit: refused once the pieces pass it.
        WorkerParts w(cfg);
        TestSession s(w, 1);
        s->useDeflate();
        EXPECT_EQ(receive(s, std::string(40, ' '), {false, false, 3}), 0);
        EXPECT_EQ(receive(s, std::string(40, ' '), {false, false, 2}), -1);
        EXPECT_EQ(s.wire.close_code, 1009);
        // lws may ignore that -1 (its inflater's drain): WRITEABLE is asked for, and answers it.
        EXPECT_GE(s.wire.writable_asks, 1);
        // lws goes on inflating the piece and keeps only the last answer: every one says -1.
        EXPECT_EQ(receive(s, std::string(40, ' '), {false, false, 1}), -1);
        EXPECT_EQ(receive(s, "\"", {}), -1);
        EXPECT_EQ(w.metrics.messages_received.value(), 0);
        EXPECT_EQ(s->onWriteable(), -1);
        EXPECT_EQ(s.wire.close_code, 1009);
    }
}

TEST(SessionTest, AClientWithDeflateGetsTheCompressedVariantAndOthersThePlainFrame) {
    WorkerParts w(config());
    TestSession zipped(w, 1);
    zipped->useDeflate();
    TestSession plain(w, 2);
    FramePtr frame = protocol::encodeMessage("c", "[1,2,3]");
    frame->setDeflated(protocol::encodeControl(0x1, "compressed"));  // stands in for the variant
    zipped->push(frame);
    plain->push(frame);
    w.flush.flushTurn();
    EXPECT_THAT(zipped.wire.texts(), ElementsAre("compressed"));
    EXPECT_THAT(plain.wire.texts(),
                ElementsAre(R"({"op":"message","channel":"c","data":[1,2,3]})"));
    EXPECT_EQ(w.metrics.send_queue_bytes.value(), 0);
}

}  // namespace
}  // namespace wsrelay
