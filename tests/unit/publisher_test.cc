// The Publisher with the `channels` configuration: every publish path (a client's publish, the
// HTTP API, a hook answer) hands the broker the channel's history policy, and the size check
// before it leaves room for the position a message of a channel with history carries.

#include "relay/fanout/publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

#include "conf/config_loader.h"
#include "relay/edge/http_api.h"
#include "relay/hook/hook_bridge.h"
#include "relay/protocol/protocol.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::IsEmpty;
using testing::TestSession;
using testing::WorkerParts;

constexpr HistoryPolicy kChat{100, 60000};
constexpr HistoryPolicy kLobby{5, 1000};

Config withChannels() {
    Config c = WorkerParts::defaultConfig();
    c.channels = {{"chat:lobby", kLobby.size, kLobby.ttl_ms},
                  {"chat:*", kChat.size, kChat.ttl_ms},
                  {"quiet", 0, 600000}};
    return c;
}

TEST(PublisherTest, EachPublishCarriesItsChannelsHistoryPolicy) {
    WorkerParts w(withChannels());
    w.publisher.publish("chat:lobby", "1", PublishTicket{});
    w.publisher.publish("chat:room7", "2", PublishTicket{});
    w.publisher.publish("quiet", "3", PublishTicket{});
    w.publisher.publish("news", "4", PublishTicket{});
    ASSERT_EQ(w.broker.published.size(), 4u);
    EXPECT_EQ(w.broker.published[0].history, kLobby);
    EXPECT_EQ(w.broker.published[1].history, kChat);
    EXPECT_FALSE(w.broker.published[2].history.enabled());
    EXPECT_EQ(w.broker.published[3].history, HistoryPolicy{});
    EXPECT_EQ(w.metrics.broker_publishes.value(), 4);
}

TEST(PublisherTest, WithoutChannelsEveryPublishIsPlain) {
    WorkerParts w;
    w.publisher.publish("chat:lobby", "1", PublishTicket{});
    ASSERT_EQ(w.broker.published.size(), 1u);
    EXPECT_EQ(w.broker.published[0].history, HistoryPolicy{});
}

// A send queue exactly as large as the frame of `data` on a channel: a channel without history
// takes it, one with history needs kMaxPositionBytes more.
class PublisherSizeTest : public ::testing::Test {
protected:
    static constexpr std::string_view kData = R"("0123456789012345678901234567890123456789")";
    static Config sized(size_t extra) {
        Config c = withChannels();
        c.limits.send_queue_bytes =
            static_cast<int64_t>(protocol::messageFrameSize("chat:room7", kData) + extra);
        return c;
    }
};

TEST_F(PublisherSizeTest, AChannelWithHistoryNeedsRoomForThePosition) {
    WorkerParts tight(sized(0));
    EXPECT_TRUE(tight.publisher.admit("other:room", kData, metrics::MessageSource::Client));
    EXPECT_FALSE(tight.publisher.admit("chat:room7", kData, metrics::MessageSource::Client));
    EXPECT_EQ(tight.metrics.too_large[metrics::MessageSource::Client].value(), 1);

    WorkerParts roomy(sized(protocol::kMaxPositionBytes));
    EXPECT_TRUE(roomy.publisher.admit("chat:room7", kData, metrics::MessageSource::Client));
    EXPECT_EQ(roomy.metrics.too_large[metrics::MessageSource::Client].value(), 0);
    WorkerParts short_by_one(sized(protocol::kMaxPositionBytes - 1));
    EXPECT_FALSE(short_by_one.publisher.admit("chat:room7", kData, metrics::MessageSource::Api));
    EXPECT_EQ(short_by_one.metrics.too_large[metrics::MessageSource::Api].value(), 1);
}

TEST_F(PublisherSizeTest, AClientPublishOnAChannelWithHistoryIsRefusedWithoutRoom) {
    WorkerParts w(sized(0));
    TestSession session(w, 1);
    session->publishNow("chat:room7", kData, 3);
    EXPECT_THAT(w.broker.published, IsEmpty());
    EXPECT_EQ(w.metrics.too_large[metrics::MessageSource::Client].value(), 1);
    session->publishNow("other:room", kData, 4);
    ASSERT_EQ(w.broker.published.size(), 1u);
    EXPECT_EQ(w.broker.published[0].history, HistoryPolicy{});
}

TEST(PublisherPathsTest, AClientPublishCarriesThePolicy) {
    WorkerParts w(withChannels());
    TestSession session(w, 1);
    session->publishNow("chat:room7", "\"hi\"", 8);
    ASSERT_EQ(w.broker.published.size(), 1u);
    EXPECT_EQ(w.broker.published[0].history, kChat);
    EXPECT_EQ(w.broker.published[0].ticket.request_id, 8u);
}

TEST(PublisherPathsTest, AnApiPublishCarriesThePolicy) {
    Config c = withChannels();
    c.api.key = "k";
    WorkerParts w(std::move(c));
    HttpApi api(w.ctx, {[](lws*) {}, [](lws*, unsigned, std::string_view, std::string_view,
                                        unsigned) { return -1; }});
    const std::string body = R"({"channels":["chat:lobby","news"],"data":1})";
    const std::string length = std::to_string(body.size());
    char conn_byte = 0;
    lws* const conn = reinterpret_cast<lws*>(&conn_byte);
    HttpApi::Request* request = nullptr;
    ASSERT_EQ(api.onRequest(conn, {"/api/broadcast", "k", length, false}, request), 0);
    ASSERT_NE(request, nullptr);
    EXPECT_EQ(api.onBody(*request, body.data(), body.size()), 0);
    EXPECT_EQ(api.onBodyComplete(conn, *request), 0);
    ASSERT_EQ(w.broker.published.size(), 2u);
    EXPECT_EQ(w.broker.published[0].channel, "chat:lobby");
    EXPECT_EQ(w.broker.published[0].history, kLobby);
    EXPECT_EQ(w.broker.published[1].history, HistoryPolicy{});
    api.onClosed(request);
}

TEST(PublisherPathsTest, AHookAnswersPublishCarriesThePolicy) {
    Config c = withChannels();
    c.hook.url = "http://127.0.0.1:1/hook";
    c.hook.events = {"connect"};
    WorkerParts w(std::move(c));
    testing::FakeHook hook;
    HookBridge bridge(w.ctx, hook);
    w.ctx.hook = &bridge;
    ASSERT_TRUE(bridge.connect(9, "", "{}", [](ConnectDecision&&) {}));
    ASSERT_EQ(hook.requests.size(), 1u);
    HookResult answer;
    answer.outcome = HookOutcome::Ok;
    answer.status = 200;
    answer.body = R"({"publish":[{"channel":"chat:x","data":1},{"channel":"news","data":2}]})";
    HookDone done = std::move(hook.requests[0].done);
    done(std::move(answer));
    ASSERT_EQ(w.broker.published.size(), 2u);
    EXPECT_EQ(w.broker.published[0].history, kChat);
    EXPECT_EQ(w.broker.published[1].history, HistoryPolicy{});
    EXPECT_TRUE(bridge.idle());
}

// conf/ states the room a position takes in its rule on websocket.max_message_bytes: the same
// number as the protocol's.
TEST(PublisherConfigTest, TheMessageRuleLeavesTheRoomThePublisherNeeds) {
    const auto load = [](int64_t max_message) {
        return loadDefaultConfig({
            {"WSRELAY_CHANNELS", "[{pattern: \"chat:*\", history_size: 10}]"},
            {"WSRELAY_LIMITS_SEND_QUEUE_BYTES", "65536"},
            {"WSRELAY_WEBSOCKET_MAX_MESSAGE_BYTES", std::to_string(max_message)},
        });
    };
    const int64_t largest = 65536 - 10 - static_cast<int64_t>(protocol::kMaxPositionBytes);
    EXPECT_TRUE(load(largest).ok());
    const ConfigLoad over = load(largest + 1);
    ASSERT_EQ(over.errors.size(), 1u);
    EXPECT_THAT(over.errors[0].message,
                ::testing::HasSubstr("and a " + std::to_string(protocol::kMaxPositionBytes) +
                                     "-byte position"));
}

}  // namespace
}  // namespace wsrelay
