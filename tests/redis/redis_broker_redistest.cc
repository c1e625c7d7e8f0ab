// RedisBroker against a real redis-server (tests/redis/redis_server.h). Each broker runs on its
// own libev loop, driven from the test thread one turn at a time until a condition holds or a
// deadline passes; like a worker, an ev_prepare watcher flushes the broker once per turn.
#include "adapters/redis_broker.h"

#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/redis/broker_endpoint.h"
#include "tests/redis/broker_rig.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::BrokerRig;
using ::testing::Each;
using ::testing::ElementsAre;
using testing::Endpoint;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::RedisClient;
using testing::RedisServer;
using testing::ReplyPtr;

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

class RedisBrokerTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisBrokerTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisServer::available()) {
            GTEST_SKIP() << RedisServer::kBinary << " is missing (tools/dev installs redis-server)";
        }
        std::string error;
        ASSERT_TRUE(server_.start(error)) << error;
        client_ = std::make_unique<RedisClient>(server_.client());
        ASSERT_TRUE(client_->ok());
    }
    void TearDown() override { clear(); }

    RedisBrokerOptions options() const {
        RedisBrokerOptions o;
        RedisUrlParse parsed = parseRedisUrl(server_.url());
        EXPECT_THAT(parsed.error, IsEmpty());
        o.url = parsed.url;
        o.reconnect_min_ms = 10;
        o.reconnect_max_ms = 100;
        o.probe_interval_ms = 0;
        o.probe_timeout_ms = 2000;
        return o;
    }

    Endpoint& endpoint(const RedisBrokerOptions& o) {
        factories_.push_back(std::make_unique<RedisBrokerFactory>(o));
        return add(*factories_.back());
    }

    RedisServer server_;
    std::unique_ptr<RedisClient> client_;
    std::vector<std::unique_ptr<RedisBrokerFactory>> factories_;
};

TEST_F(RedisBrokerTest, StartsDownThenUpWithoutGap) {
    Endpoint& a = endpoint(options());
    EXPECT_FALSE(a.broker->usable());
    ASSERT_TRUE(allUp());
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_EQ(client_->numsub(a.as<RedisBroker>().probeChannel()), 1);
}

TEST_F(RedisBrokerTest, BurstFromAnotherBrokerArrivesOnceAndInOrder) {
    Endpoint& a = endpoint(options());
    Endpoint& b = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    constexpr int kCount = 1000;
    for (int i = 0; i < kCount; ++i) {
        b.publish("chat", "{\"n\":" + std::to_string(i) + "}", static_cast<uint64_t>(i));
    }
    EXPECT_THAT(b.results, IsEmpty());
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == kCount; }));
    b.publish("chat", "\"end\"", kCount);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"end\""));

    ASSERT_EQ(a.messages.size(), size_t{kCount + 1});
    for (int i = 0; i < kCount; ++i) {
        ASSERT_EQ(a.messages[static_cast<size_t>(i)],
                  std::make_pair(std::string("chat"), "{\"n\":" + std::to_string(i) + "}"));
    }
    for (int i = 0; i < kCount; ++i) {
        ASSERT_EQ(b.results[static_cast<size_t>(i)],
                  std::make_pair(static_cast<uint64_t>(i), PublishStatus::Accepted));
    }
    EXPECT_THAT(b.messages, IsEmpty()) << "b never subscribed";
}

TEST_F(RedisBrokerTest, PrefixMapsClientChannelsToRedisChannels) {
    RedisBrokerOptions o = options();
    o.prefix = "app:";
    Endpoint& a = endpoint(o);
    Endpoint& b = endpoint(o);
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    EXPECT_EQ(client_->numsub("app:chat"), 1);
    EXPECT_EQ(client_->numsub("chat"), 0);

    EXPECT_EQ(client_->publish("chat", "{\"unprefixed\":true}"), 0);
    EXPECT_EQ(client_->publish("app:chat", "{\"from\":\"backend\"}"), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "{\"from\":\"backend\"}"));
    EXPECT_THAT(a.messages, ElementsAre(Pair("chat", "{\"from\":\"backend\"}")));

    // And a broker's own publish goes to the prefixed channel.
    RedisClient watcher = server_.client();
    ASSERT_TRUE(watcher.command({"SUBSCRIBE", "app:news"}));
    b.publish("news", "1", 1);
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == 1; }));
    EXPECT_THAT(b.results, ElementsAre(Pair(1u, PublishStatus::Accepted)));
    ReplyPtr message = watcher.next();
    ASSERT_TRUE(message);
    ASSERT_EQ(message->type, REDIS_REPLY_ARRAY);
    ASSERT_EQ(message->elements, 3u);
    EXPECT_EQ(std::string(message->element[1]->str), "app:news");
    EXPECT_EQ(std::string(message->element[2]->str), "1");
}

TEST_F(RedisBrokerTest, PayloadThatIsNotJsonArrivesAsAJsonString) {
    Endpoint& a = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"hello", "\"hello\""},
        {"say \"hi\"\\\n\t\x01", "\"say \\\"hi\\\"\\\\\\u000a\\u0009\\u0001\""},
        {"caf\xC3\xA9 \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xF0\x9F\x98\x80\""},
        {"bad \xFF byte", "\"bad \xEF\xBF\xBD byte\""},
        {"", "\"\""},
        {"{\"unterminated\":", "\"{\\\"unterminated\\\":\""},
        {" [1, 2.5, null] ", " [1, 2.5, null] "},
        {"42", "42"},
        {"\"already a string\"", "\"already a string\""},
    };
    for (const auto& c : cases) EXPECT_EQ(client_->publish("chat", c.first), 1);
    ASSERT_TRUE(client_->publish("chat", "\"end\"") == 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"end\""));
    const std::vector<std::string> got = a.dataOf("chat");
    ASSERT_EQ(got.size(), cases.size() + 1);
    for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(got[i], cases[i].second) << i;
}

TEST_F(RedisBrokerTest, EntryStampsCrossRedisAndAreStrippedBeforeDelivery) {
    Endpoint& a = endpoint(options());
    Endpoint& b = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    RedisClient watcher = server_.client();
    ASSERT_TRUE(watcher.command({"SUBSCRIBE", "chat"}));

    b.publish("chat", R"({"n":1})", 1, 1763800000123456);
    ASSERT_TRUE(syncedThrough(a, "chat", R"({"n":1})"));
    ReplyPtr seen = watcher.next();
    ASSERT_TRUE(seen);
    ASSERT_EQ(seen->elements, 3u);
    EXPECT_EQ(std::string(seen->element[2]->str, seen->element[2]->len), "\x1e"
                                                                         "1763800000123456"
                                                                         "\x1e"
                                                                         R"({"n":1})")
        << "what other Redis readers see";

    // A backend may stamp its own publishes; unstamped ones arrive with 0.
    EXPECT_EQ(client_->publish("chat", "\x1e"
                                       "77"
                                       "\x1e"
                                       R"({"n":2})"),
              2);
    EXPECT_EQ(client_->publish("chat", R"({"n":3})"), 2);
    ASSERT_TRUE(syncedThrough(a, "chat", R"({"n":3})"));
    EXPECT_THAT(a.messages, ElementsAre(Pair("chat", R"({"n":1})"), Pair("chat", R"({"n":2})"),
                                        Pair("chat", R"({"n":3})")));
    EXPECT_THAT(a.stamps, ElementsAre(1763800000123456, 77, 0));
}

TEST_F(RedisBrokerTest, WithoutTimestampsPublishesArePlainPayloads) {
    RedisBrokerOptions o = options();
    o.timestamps = false;
    Endpoint& a = endpoint(o);
    ASSERT_TRUE(allUp());
    RedisClient watcher = server_.client();
    ASSERT_TRUE(watcher.command({"SUBSCRIBE", "news"}));
    a.publish("news", R"({"n":1})", 1, 1763800000123456);
    ASSERT_TRUE(pumpUntil([&] { return a.results.size() == 1; }));
    ReplyPtr seen = watcher.next();
    ASSERT_TRUE(seen);
    ASSERT_EQ(seen->elements, 3u);
    EXPECT_EQ(std::string(seen->element[2]->str, seen->element[2]->len), R"({"n":1})");
}

TEST(JsonStringTest, EscapesAndRepairsUtf8) {
    auto wrap = [](std::string_view in) {
        std::string out;
        appendJsonString(in, out);
        return out;
    };
    EXPECT_EQ(wrap("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
    EXPECT_EQ(wrap(std::string("\0\x1f\x7f", 3)), "\"\\u0000\\u001f\x7f\"");
    EXPECT_EQ(wrap("\xE2\x82\xAC"), "\"\xE2\x82\xAC\"");          // euro sign kept
    EXPECT_EQ(wrap("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong
    EXPECT_EQ(wrap("\xED\xA0\x80"),                               // surrogate
              "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    EXPECT_EQ(wrap("\xE2\x82"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // truncated
    EXPECT_EQ(wrap("\xF4\x90\x80\x80x"),                          // above U+10FFFF
              "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx\"");
}

TEST_F(RedisBrokerTest, UnsubscribeLeavesNoSubscriberInRedis) {
    Endpoint& a = endpoint(options());
    a.broker->subscribe("chat");
    a.broker->subscribe("ctl");
    ASSERT_TRUE(allUp());
    EXPECT_EQ(client_->numsub("chat"), 1);
    a.broker->unsubscribe("chat");
    ASSERT_TRUE(pumpUntil([&] { return client_->numsub("chat") == 0; }));
    EXPECT_EQ(client_->numsub("ctl"), 1);
    // Whatever Redis would still deliver is not passed on once unsubscribed.
    client_->publish("chat", "\"late\"");
    client_->publish("ctl", "\"end\"");
    ASSERT_TRUE(syncedThrough(a, "ctl", "\"end\""));
    EXPECT_THAT(a.dataOf("chat"), IsEmpty());
}

TEST_F(RedisBrokerTest, SubscribeAndUnsubscribeInOneTurnSendsNothing) {
    Endpoint& a = endpoint(options());
    ASSERT_TRUE(allUp());
    ASSERT_TRUE(client_->command({"CONFIG", "RESETSTAT"}));
    a.broker->subscribe("flicker");
    a.broker->unsubscribe("flicker");
    a.broker->subscribe("ctl");
    ASSERT_TRUE(pumpUntil([&] { return client_->numsub("ctl") == 1; }));
    EXPECT_EQ(client_->commandCalls("subscribe"), 1);
    EXPECT_EQ(client_->commandCalls("unsubscribe"), 0);
    EXPECT_EQ(client_->numsub("flicker"), 0);
    // Unsubscribe and subscribe again before Redis confirmed: the channel ends up subscribed.
    a.broker->unsubscribe("ctl");
    a.broker->flush();
    a.broker->subscribe("ctl");
    ASSERT_TRUE(pumpUntil([&] { return client_->commandCalls("unsubscribe") == 1; }));
    ASSERT_TRUE(pumpUntil([&] { return client_->numsub("ctl") == 1; }));
    EXPECT_EQ(client_->publish("ctl", "\"end\""), 1);
    ASSERT_TRUE(syncedThrough(a, "ctl", "\"end\""));
}

TEST_F(RedisBrokerTest, SubscribesAThousandChannelsInBatches) {
    Endpoint& a = endpoint(options());
    auto names = [](const std::string& prefix) {
        std::vector<std::string> out;
        for (int i = 0; i < 1000; ++i) out.push_back(prefix + std::to_string(i));
        return out;
    };
    const std::vector<std::string> early = names("early:");
    for (const std::string& c : early) a.broker->subscribe(c);
    ASSERT_TRUE(allUp());
    EXPECT_THAT(client_->numsub(early), Each(1)) << "Up waits for every SUBSCRIBE to be confirmed";

    ASSERT_TRUE(client_->command({"CONFIG", "RESETSTAT"}));
    const std::vector<std::string> rooms = names("room:");
    for (const std::string& c : rooms) a.broker->subscribe(c);
    ASSERT_TRUE(pumpUntil([&] { return client_->numsub("room:999") == 1; }));
    EXPECT_THAT(client_->numsub(rooms), Each(1));
    // One turn's 1000 channels, at most 512 names per command.
    EXPECT_EQ(client_->commandCalls("subscribe"), 2);
    EXPECT_EQ(client_->publish("room:999", "\"last\""), 1);
    ASSERT_TRUE(syncedThrough(a, "room:999", "\"last\""));
}

TEST_F(RedisBrokerTest, PublishWithoutRedisIsUnavailable) {
    RedisBrokerOptions o = options();
    o.url.port = RedisServer::freePort();
    Endpoint& a = endpoint(o);
    a.broker->subscribe("chat");
    a.publish("chat", "1", 7);
    EXPECT_THAT(a.results, IsEmpty());
    ASSERT_TRUE(pumpUntil([&] { return a.results.size() == 1; }));
    EXPECT_THAT(a.results, ElementsAre(Pair(7u, PublishStatus::Unavailable)));
    // It keeps retrying in the background and never claims to be up.
    ASSERT_TRUE(pumpUntil([&] { return !a.as<RedisBroker>().lastError().empty(); }));
    pumpFor(std::chrono::milliseconds(200));
    EXPECT_FALSE(a.up());
    EXPECT_THAT(a.states, IsEmpty());
}

TEST_F(RedisBrokerTest, KilledRedisIsDownAndPublishesFailThenRestartIsUpWithGap) {
    Endpoint& a = endpoint(options());
    Endpoint& b = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());

    server_.kill();
    ASSERT_TRUE(pumpUntil([&] { return a.downs() == 1 && b.downs() == 1; }));
    EXPECT_THAT(a.states,
                ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false)));
    EXPECT_FALSE(b.up());
    b.publish("chat", "1", 1);
    EXPECT_THAT(b.results, IsEmpty());
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == 1; }));
    EXPECT_THAT(b.results, ElementsAre(Pair(1u, PublishStatus::Unavailable)));

    std::string error;
    ASSERT_TRUE(server_.start(error)) << error;
    client_ = std::make_unique<RedisClient>(server_.client());
    ASSERT_TRUE(allUp());
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
    EXPECT_EQ(client_->numsub("chat"), 1) << "resubscribed after the restart";
    b.publish("chat", "\"after\"", 2);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"after\""));
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == 2; }));
    EXPECT_EQ(b.results[1], std::make_pair(uint64_t{2}, PublishStatus::Accepted));
}

TEST_F(RedisBrokerTest, KilledSubscriberConnectionIsDownThenUpWithGap) {
    Endpoint& a = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    // What Redis does to a subscriber over client-output-buffer-limit.
    ReplyPtr killed = client_->command({"CLIENT", "KILL", "TYPE", "pubsub"});
    ASSERT_TRUE(killed);
    EXPECT_EQ(killed->integer, 1);
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; }));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
    EXPECT_EQ(client_->publish("chat", "\"after\""), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"after\""));
}

TEST_F(RedisBrokerTest, ProbesRunWithoutSpuriousDown) {
    RedisBrokerOptions o = options();
    o.probe_interval_ms = 100;
    o.probe_timeout_ms = 1000;
    Endpoint& a = endpoint(o);
    Endpoint& b = endpoint(o);
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    ASSERT_TRUE(client_->command({"CONFIG", "RESETSTAT"}));
    int sent = 0;
    auto last = Clock::now();
    pumpFor(std::chrono::milliseconds(1100), [&] {
        if (Clock::now() - last < std::chrono::milliseconds(20)) return;
        last = Clock::now();
        b.publish("chat", std::to_string(sent), static_cast<uint64_t>(sent));
        ++sent;
    });
    b.publish("chat", "\"end\"", 999999);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"end\""));
    EXPECT_EQ(a.dataOf("chat").size(), static_cast<size_t>(sent + 1));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_THAT(b.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_GE(a.probes, 5) << "each probe that came back is reported with its round trip";
    EXPECT_GE(b.probes, 5);
    // Both brokers probed about ten times each besides b's own publishes.
    EXPECT_GE(client_->commandCalls("publish"), sent + 1 + 2 * 8);
    EXPECT_EQ(client_->numsub(a.as<RedisBroker>().probeChannel()), 1);
    EXPECT_NE(a.as<RedisBroker>().probeChannel(), b.as<RedisBroker>().probeChannel());
}

TEST_F(RedisBrokerTest, ProbeDetectsAWedgedSubscription) {
    RedisBrokerOptions o = options();
    o.probe_interval_ms = 50;
    o.probe_timeout_ms = 300;
    Endpoint& a = endpoint(o);
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    // Connections stay open but no command runs: PUBLISH (the probe) never comes back.
    ASSERT_TRUE(client_->command({"CLIENT", "PAUSE", "1000", "ALL"}));
    ASSERT_TRUE(pumpUntil([&] { return a.downs() == 1; }));
    EXPECT_THAT(a.as<RedisBroker>().lastError(), ::testing::HasSubstr("probe"));
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; }));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
}

// A server that takes SUBSCRIBE but holds PUBLISH (CLIENT PAUSE WRITE): each new attempt
// subscribes, but its first probe does not come back, so the broker stays Down until the pause ends
// instead of reporting Up (and clients a gap) at every attempt.
TEST_F(RedisBrokerTest, HeldPublishesKeepTheBrokerDownUntilAProbeComesBack) {
    RedisBrokerOptions o = options();
    o.probe_interval_ms = 50;
    o.probe_timeout_ms = 200;
    o.functions = false;  // FUNCTION LOAD is a write: it would hold every attempt by itself
    Endpoint& a = endpoint(o);
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    const auto paused_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(client_->command({"CLIENT", "PAUSE", "1200", "WRITE"}));
    ASSERT_TRUE(pumpUntil([&] { return a.downs() == 1; }));
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; }));
    // Several attempts fit in the pause (200 ms each plus backoff); none of them was Up.
    EXPECT_GE(std::chrono::steady_clock::now() - paused_at, std::chrono::milliseconds(1100));
    // What the attempts failed on: their probe, not the connection.
    EXPECT_THAT(a.as<RedisBroker>().lastError(), ::testing::HasSubstr("delivery probe"));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
}

// Its own server: one that wants a password, with an ACL user besides the default one.
TEST(RedisBrokerAuthTest, AuthenticatesAndSelectsTheDatabaseOnBothConnections) {
    if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kBinary << " is missing";
    RedisServer server;
    server.setArgs(
        {"--requirepass", "p@ss:w", "--user", "relay", "on", ">s3cret", "~*", "&*", "+@all"});
    std::string error;
    ASSERT_TRUE(server.start(error)) << error;
    RedisClient admin = server.client();
    ASSERT_TRUE(admin.command({"AUTH", "p@ss:w"}));

    std::vector<std::unique_ptr<RedisBrokerFactory>> factories;
    BrokerRig rig(kDeadline);
    auto addUrl = [&](const std::string& url) -> Endpoint& {
        RedisBrokerOptions o;
        RedisUrlParse parsed = parseRedisUrl(url);
        EXPECT_THAT(parsed.error, IsEmpty());
        o.url = parsed.url;
        o.reconnect_min_ms = 10;
        o.reconnect_max_ms = 50;
        o.probe_interval_ms = 0;
        factories.push_back(std::make_unique<RedisBrokerFactory>(o));
        return rig.add(*factories.back());
    };
    const std::string host = "@127.0.0.1:" + std::to_string(server.port());
    Endpoint& by_password = addUrl("redis://:p%40ss%3Aw" + host + "/3");
    Endpoint& by_user = addUrl("redis://relay:s3cret" + host + "/5");
    Endpoint& wrong = addUrl("redis://relay:nope" + host);
    by_password.broker->subscribe("chat");
    ASSERT_TRUE(rig.pumpUntil([&] { return by_password.up() && by_user.up(); }));
    by_user.publish("chat", "\"hi\"", 1);
    ASSERT_TRUE(rig.pumpUntil([&] { return !by_password.messages.empty(); }));
    EXPECT_THAT(by_password.messages, ElementsAre(Pair("chat", "\"hi\"")));
    EXPECT_THAT(by_user.results, ElementsAre(Pair(1u, PublishStatus::Accepted)));

    ReplyPtr clients = admin.command({"CLIENT", "LIST"});
    ASSERT_TRUE(clients && clients->type == REDIS_REPLY_STRING);
    const std::string list(clients->str, clients->len);
    for (const char* want : {" db=3 sub=2 ", " db=3 sub=0 ", " db=5 sub=1 ", " db=5 sub=0 "}) {
        EXPECT_THAT(list, ::testing::HasSubstr(want)) << list;
    }
    ASSERT_TRUE(rig.pumpUntil([&] { return !wrong.as<RedisBroker>().lastError().empty(); }));
    EXPECT_THAT(wrong.as<RedisBroker>().lastError(), ::testing::HasSubstr("AUTH"));
    EXPECT_FALSE(wrong.up());
    // Never up, so never Down: the handler hears of each failed attempt and why (the worker logs
    // it), not silence until the first success.
    EXPECT_THAT(wrong.states, IsEmpty());
    ASSERT_THAT(wrong.attempt_failures, ::testing::Not(IsEmpty()));
    EXPECT_THAT(wrong.attempt_failures.front(), ::testing::HasSubstr("AUTH"));
    EXPECT_THAT(by_password.attempt_failures, IsEmpty());
}

TEST_F(RedisBrokerTest, DestroyedWithWorkInFlightCallsNothing) {
    Endpoint& a = endpoint(options());
    Endpoint& b = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(allUp());
    for (int i = 0; i < 100; ++i) b.publish("chat", "1", static_cast<uint64_t>(i));
    b.broker->flush();
    b.destroyBroker();  // replies pending; the handler must hear nothing more
    a.broker->subscribe("other");
    a.publish("chat", "2", 1);
    a.broker->flush();
    a.destroyBroker();
    pumpFor(std::chrono::milliseconds(50));
    EXPECT_THAT(b.results, IsEmpty());
}

}  // namespace
}  // namespace wsrelay
