// RedisClusterBroker against a real three-master Redis Cluster on loopback, created by each test
// with redis-cli --cluster create. Brokers run on their own libev loops, driven from the test
// thread one turn at a time, as in redis_broker_redistest.cc.
#include "adapters/redis_cluster.h"

#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/redis_broker.h"
#include "adapters/redis_cluster_broker.h"
#include "tests/redis/broker_endpoint.h"
#include "tests/redis/broker_rig.h"
#include "tests/redis/redis_cluster_processes.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::BrokerRig;
using ::testing::ElementsAre;
using testing::Endpoint;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::RedisClient;
using testing::RedisClusterProcesses;
using testing::RedisServer;
using testing::ReplyPtr;

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);
constexpr const char* kRedisCli = "/usr/bin/redis-cli";
constexpr int kNodes = RedisClusterProcesses::kNodes;

class RedisClusterTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisClusterTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisClusterProcesses::available()) {
            GTEST_SKIP() << RedisServer::kBinary << " or " << kRedisCli << " is missing";
        }
        std::string error;
        ASSERT_TRUE(cluster_.start(error)) << error;
    }

    void TearDown() override {
        clear();
        cluster_.stop();
    }

    bool waitClusterOk() { return cluster_.waitOk(kDeadline); }

    RedisBrokerOptions options(int seed = 0) {
        RedisBrokerOptions o;
        o.cluster.push_back(ClusterNode{"127.0.0.1", cluster_.server(seed).port()});
        o.reconnect_min_ms = 10;
        o.reconnect_max_ms = 200;
        o.probe_interval_ms = 0;
        o.probe_timeout_ms = 2000;
        return o;
    }

    Endpoint& endpoint(const RedisBrokerOptions& o) {
        factories_.push_back(std::make_unique<RedisBrokerFactory>(o));
        return add(*factories_.back());
    }

    std::vector<int> slotOwners() { return cluster_.slotOwners(); }
    std::string channelOn(int index, const std::string& base, const std::string& prefix = "") {
        return cluster_.channelOn(index, base, prefix);
    }
    long long shardNumsub(int index, const std::string& channel) {
        return cluster_.shardNumsub(index, channel);
    }
    std::string nodeId(int index) { return cluster_.nodeId(index); }
    std::string nameOf(int index) {
        return "127.0.0.1:" + std::to_string(cluster_.server(index).port());
    }
    // Assigns an empty slot to server `to` on every node: for an empty slot, the whole migration.
    void moveSlot(uint16_t slot, int to) {
        const std::string target = nodeId(to);
        for (int i = 0; i < kNodes; ++i) {
            RedisClient c = cluster_.server((to + i) % kNodes).client();  // the new owner first
            ReplyPtr r = c.command({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", target});
            ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
        }
    }

    RedisClusterProcesses cluster_;
    std::vector<std::unique_ptr<RedisBrokerFactory>> factories_;
};

TEST(ClusterKeySlotTest, MatchesRedisAndHonoursHashTags) {
    // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
    EXPECT_EQ(clusterKeySlot("123456789"), 0x31C3 & 16383);
    EXPECT_EQ(clusterKeySlot("foo"), 12182);
    EXPECT_EQ(clusterKeySlot("{user1000}.following"), clusterKeySlot("user1000"));
    EXPECT_EQ(clusterKeySlot("foo{}{bar}"), clusterKeySlot("foo{}{bar}"));
    EXPECT_NE(clusterKeySlot("foo{}{bar}"), clusterKeySlot("bar"));  // empty first tag: whole key
    EXPECT_EQ(clusterKeySlot("foo{{bar}}zap"), clusterKeySlot("{bar"));
    EXPECT_EQ(clusterKeySlot("foo{bar}{zap}"), clusterKeySlot("bar"));
}

TEST(ClusterHostPortTest, ParsesHostPortPairs) {
    ClusterNode node;
    std::string error;
    ASSERT_TRUE(parseHostPort("127.0.0.1:7000", node, error)) << error;
    EXPECT_EQ(node, (ClusterNode{"127.0.0.1", 7000}));
    ASSERT_TRUE(parseHostPort("[::1]:6379", node, error)) << error;
    EXPECT_EQ(node, (ClusterNode{"::1", 6379}));
    for (const char* bad : {"host", "host:", ":1", "host:0", "host:70000", "::1:6379", "h:1x"}) {
        EXPECT_FALSE(parseHostPort(bad, node, error)) << bad;
    }
}

TEST_F(RedisClusterTest, KeySlotAgreesWithTheServer) {
    RedisClient c = cluster_.server(0).client();
    for (const std::string key : {"chat", "room:1", "app:{tenant}:x", "{}x", "a{b}c", "\xC3\xA9"}) {
        ReplyPtr r = c.command({"CLUSTER", "KEYSLOT", key});
        ASSERT_TRUE(r && r->type == REDIS_REPLY_INTEGER);
        EXPECT_EQ(clusterKeySlot(key), r->integer) << key;
    }
}

TEST_F(RedisClusterTest, SubscribesEachChannelOnTheMasterOwningItsSlot) {
    RedisBrokerOptions o = options(1);  // one seed is enough to find the others
    o.prefix = "app:";
    Endpoint& a = endpoint(o);
    std::array<std::string, kNodes> channels;
    for (int i = 0; i < kNodes; ++i) {
        channels[i] = channelOn(i, "room:", "app:");
        a.broker->subscribe(channels[i]);
    }
    ASSERT_TRUE(allUp()) << a.as<RedisClusterBroker>().lastError();
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false)));
    for (int i = 0; i < kNodes; ++i) {
        for (int j = 0; j < kNodes; ++j) {
            EXPECT_EQ(shardNumsub(j, "app:" + channels[i]), i == j ? 1 : 0)
                << channels[i] << " on node " << j;
        }
    }
    // One probe channel per master, subscribed on that master.
    const auto probes = a.as<RedisClusterBroker>().probeChannels();
    ASSERT_EQ(probes.size(), size_t{kNodes});
    for (const auto& [node, channel] : probes) {
        ASSERT_FALSE(channel.empty()) << node;
        EXPECT_TRUE(channel.starts_with("app:__wsrelay_probe:")) << channel;
        for (int j = 0; j < kNodes; ++j) {
            const bool owner = node == "127.0.0.1:" + std::to_string(cluster_.server(j).port());
            EXPECT_EQ(shardNumsub(j, channel), owner ? 1 : 0) << channel << " on node " << j;
        }
    }
    a.broker->unsubscribe(channels[2]);
    ASSERT_TRUE(pumpUntil([&] { return shardNumsub(2, "app:" + channels[2]) == 0; }));
    EXPECT_EQ(shardNumsub(0, "app:" + channels[0]), 1);
}

TEST_F(RedisClusterTest, BurstOnChannelsOfEveryMasterArrivesOnceAndInOrder) {
    Endpoint& a = endpoint(options(0));
    Endpoint& b = endpoint(options(2));
    std::array<std::string, kNodes> channels;
    for (int i = 0; i < kNodes; ++i) {
        channels[i] = channelOn(i, "chat:");
        a.broker->subscribe(channels[i]);
    }
    ASSERT_TRUE(allUp()) << a.as<RedisClusterBroker>().lastError() << " / "
                         << b.as<RedisClusterBroker>().lastError();
    constexpr int kCount = 900;
    for (int n = 0; n < kCount; ++n) {
        b.publish(channels[n % kNodes], "{\"n\":" + std::to_string(n) + "}", n);
    }
    EXPECT_THAT(b.results, IsEmpty());
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == size_t{kCount}; }));
    for (int n = 0; n < kCount; ++n) {
        ASSERT_EQ(b.results[n].second, PublishStatus::Accepted) << n;
    }
    for (int i = 0; i < kNodes; ++i) {
        b.publish(channels[i], "\"end\"", kCount + i);
        ASSERT_TRUE(syncedThrough(a, channels[i], "\"end\"")) << channels[i];
    }
    for (int i = 0; i < kNodes; ++i) {
        const std::vector<std::string> got = a.dataOf(channels[i]);
        ASSERT_EQ(got.size(), size_t{kCount / kNodes + 1}) << channels[i];
        for (int k = 0; k < kCount / kNodes; ++k) {
            ASSERT_EQ(got[k], "{\"n\":" + std::to_string(k * kNodes + i) + "}");
        }
    }
    EXPECT_THAT(b.messages, IsEmpty()) << "b never subscribed";

    // A backend publishing through redis-cli in cluster mode, to a node that must redirect it.
    const std::string far = channels[1];
    ASSERT_EQ(testing::runTool({kRedisCli, "-c", "-p", std::to_string(cluster_.server(0).port()),
                                "SPUBLISH", far, "from cli"},
                               std::chrono::seconds(10)),
              0);
    ASSERT_TRUE(syncedThrough(a, far, "\"from cli\""));
}

// A publisher whose map is older than a slot move follows the MOVED replies: every message
// arrives, in order, and neither broker goes Down. The subscriber's channel is subscribed again on
// the new owner by itself; it hears Up with gap (the contract's only gap notice), without a Down.
TEST_F(RedisClusterTest, PublishFollowsAMovedSlotWithoutDownOrGap) {
    Endpoint& a = endpoint(options(0));
    Endpoint& b = endpoint(options(0));
    const std::string moving = channelOn(0, "moving:");
    a.broker->subscribe(moving);
    ASSERT_TRUE(allUp());
    ASSERT_EQ(shardNumsub(0, moving), 1);
    ASSERT_EQ(b.as<RedisClusterBroker>().routeOf(moving), nameOf(0));

    moveSlot(clusterKeySlot(moving), 1);
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; })) << a.as<RedisClusterBroker>().lastError();
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Up, true)));
    EXPECT_EQ(shardNumsub(1, moving), 1);
    EXPECT_EQ(shardNumsub(0, moving), 0);
    EXPECT_EQ(b.as<RedisClusterBroker>().routeOf(moving), nameOf(0)) << "b's map is old";

    constexpr int kCount = 300;
    for (int n = 0; n < kCount; ++n) b.publish(moving, std::to_string(n), n);
    ASSERT_TRUE(pumpUntil([&] { return a.dataOf(moving).size() == size_t{kCount}; }));
    const std::vector<std::string> got = a.dataOf(moving);
    for (int n = 0; n < kCount; ++n) ASSERT_EQ(got[n], std::to_string(n)) << n;
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == size_t{kCount}; }));
    for (int n = 0; n < kCount; ++n) {
        ASSERT_EQ(b.results[n], std::make_pair(uint64_t(n), PublishStatus::Accepted)) << n;
    }
    EXPECT_THAT(b.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Up, true)));
    // The MOVED reloaded b's map: later publishes go to the new owner first.
    ASSERT_TRUE(pumpUntil([&] { return b.as<RedisClusterBroker>().routeOf(moving) == nameOf(1); }));
}

// History publishes and reads are FCALLs that take the publishes' way: a MOVED one is sent again
// to the new owner, in order, and the read sees every publish queued before it.
TEST_F(RedisClusterTest, HistoryCallsFollowAMovedSlot) {
    Endpoint& a = endpoint(options(0));
    Endpoint& b = endpoint(options(0));
    const std::string moving = channelOn(0, "hist-moving:");
    a.broker->subscribe(moving);
    ASSERT_TRUE(allUp());
    moveSlot(clusterKeySlot(moving), 1);  // empty: the history is made after the move
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; })) << a.as<RedisClusterBroker>().lastError();
    ASSERT_EQ(b.as<RedisClusterBroker>().routeOf(moving), nameOf(0)) << "b's map is old";

    constexpr HistoryPolicy kKeep{10, 60000};
    constexpr int kCount = 50;
    for (int n = 1; n <= kCount; ++n) b.publish(moving, std::to_string(n), n, kKeep);
    b.readHistory(moving, HistoryRequest{77, kKeep, 0, 100, false});
    ASSERT_TRUE(pumpUntil([&] {
        return a.dataOf(moving).size() == size_t{kCount} && b.results.size() == size_t{kCount} &&
               b.history(77) != nullptr;
    }));
    const std::vector<StreamPosition> at = a.positionsOf(moving);
    for (int n = 1; n <= kCount; ++n) {
        ASSERT_EQ(at[n - 1].offset, uint64_t(n)) << n;
        ASSERT_EQ(b.published_at[n - 1], at[n - 1]) << n;
    }
    const HistoryAnswer& answer = *b.history(77);
    ASSERT_EQ(answer.status, HistoryStatus::Ok) << b.as<RedisClusterBroker>().lastError();
    EXPECT_EQ(answer.top, at.back());
    ASSERT_EQ(answer.entries.size(), 10u);
    EXPECT_EQ(answer.entries.front().offset, uint64_t(kCount - 9));
    EXPECT_EQ(answer.entries.back().data, std::to_string(kCount));
    EXPECT_THAT(b.states, ElementsAre(Pair(BrokerState::Up, false)));
}

// While a slot is MIGRATING from one master and IMPORTING on another, publishes keep arriving in
// order without Down (Redis 7.0 serves SPUBLISH from the source until the slot is assigned; a
// client that asked the importing node without ASKING is sent back with MOVED); once the slot is
// assigned, the publisher follows it.
TEST_F(RedisClusterTest, PublishesThroughAMigratingSlotWithoutDown) {
    Endpoint& a = endpoint(options(0));
    Endpoint& b = endpoint(options(0));
    const std::string moving = channelOn(0, "migrating:");
    const std::string slot = std::to_string(clusterKeySlot(moving));
    a.broker->subscribe(moving);
    ASSERT_TRUE(allUp());
    {
        RedisClient c1 = cluster_.server(1).client();
        ReplyPtr r = c1.command({"CLUSTER", "SETSLOT", slot, "IMPORTING", nodeId(0)});
        ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
        RedisClient c0 = cluster_.server(0).client();
        r = c0.command({"CLUSTER", "SETSLOT", slot, "MIGRATING", nodeId(1)});
        ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
    }
    int sent = 0;
    for (; sent < 100; ++sent) b.publish(moving, std::to_string(sent), sent);
    ASSERT_TRUE(pumpUntil([&] { return a.dataOf(moving).size() == size_t(sent); }));

    moveSlot(clusterKeySlot(moving), 1);
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2 && shardNumsub(1, moving) == 1; }));
    for (; sent < 200; ++sent) b.publish(moving, std::to_string(sent), sent);
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == size_t(sent); }));
    for (int n = 0; n < sent; ++n) {
        ASSERT_EQ(b.results[n], std::make_pair(uint64_t(n), PublishStatus::Accepted)) << n;
    }
    ASSERT_TRUE(pumpUntil([&] { return a.dataOf(moving).size() == size_t(sent); }));
    const std::vector<std::string> got = a.dataOf(moving);
    for (int n = 0; n < sent; ++n) ASSERT_EQ(got[n], std::to_string(n)) << n;
    EXPECT_THAT(b.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_EQ(a.downs(), 0);
}

// The periodic reload notices moved slots by itself: routes follow without any publish, and a
// subscribed channel is live on its new owner with no client action.
TEST_F(RedisClusterTest, PeriodicRefreshFollowsMovedSlots) {
    RedisBrokerOptions o = options(0);
    o.cluster_refresh_ms = 100;
    Endpoint& a = endpoint(o);
    Endpoint& b = endpoint(options(2));
    const std::string subscribed = channelOn(0, "sub:");
    std::string quiet = channelOn(0, "quiet:");
    for (int n = 0; clusterKeySlot(quiet) == clusterKeySlot(subscribed); ++n) {
        quiet = channelOn(0, "quiet" + std::to_string(n) + ":");
    }
    a.broker->subscribe(subscribed);
    ASSERT_TRUE(allUp());

    moveSlot(clusterKeySlot(quiet), 2);  // nobody uses it: only the reload can tell a
    ASSERT_TRUE(pumpUntil([&] { return a.as<RedisClusterBroker>().routeOf(quiet) == nameOf(2); }));
    moveSlot(clusterKeySlot(subscribed), 1);
    ASSERT_TRUE(pumpUntil([&] { return shardNumsub(1, subscribed) == 1 && a.ups() == 2; }));
    EXPECT_EQ(a.as<RedisClusterBroker>().routeOf(subscribed), nameOf(1));
    EXPECT_EQ(shardNumsub(0, subscribed), 0);
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Up, true)));
    b.publish(subscribed, "\"after\"", 1);
    ASSERT_TRUE(syncedThrough(a, subscribed, "\"after\""));
    // Every master still has a probe on one of its own slots.
    for (const auto& [node, channel] : a.as<RedisClusterBroker>().probeChannels()) {
        EXPECT_EQ(a.as<RedisClusterBroker>().routeOf(channel), node) << channel;
    }
}

// Two masters that each say the other owns a slot: a publish follows kMaxRedirects redirects,
// then is reported Unavailable with the reason in lastError(), and the broker stays up.
TEST_F(RedisClusterTest, RedirectsAreBounded) {
    Endpoint& b = endpoint(options(0));
    const std::string looping = channelOn(0, "loop:");
    ASSERT_TRUE(allUp());
    RedisClient c0 = cluster_.server(0).client();
    ReplyPtr r = c0.command(
        {"CLUSTER", "SETSLOT", std::to_string(clusterKeySlot(looping)), "NODE", nodeId(1)});
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");

    b.publish(looping, "1", 1);
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == 1; }));
    EXPECT_THAT(b.results, ElementsAre(Pair(1u, PublishStatus::Unavailable)));
    EXPECT_THAT(b.as<RedisClusterBroker>().lastError(), ::testing::HasSubstr("MOVED"));
    EXPECT_THAT(b.as<RedisClusterBroker>().lastError(), ::testing::HasSubstr("redirects"));
    EXPECT_THAT(b.states, ElementsAre(Pair(BrokerState::Up, false)));
    EXPECT_TRUE(b.up());
}

TEST_F(RedisClusterTest, KilledMasterIsDownThenRestartIsUpWithGap) {
    RedisBrokerOptions o = options(0);
    o.cluster.push_back(ClusterNode{"127.0.0.1", cluster_.server(1).port()});
    Endpoint& a = endpoint(o);
    Endpoint& b = endpoint(o);
    const std::string chat = channelOn(2, "chat:");
    a.broker->subscribe(chat);
    ASSERT_TRUE(allUp());

    cluster_.server(2).kill();
    ASSERT_TRUE(pumpUntil([&] { return a.downs() == 1 && b.downs() == 1; }));
    b.publish(chat, "1", 1);
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == 1; }));
    EXPECT_THAT(b.results, ElementsAre(Pair(1u, PublishStatus::Unavailable)));
    EXPECT_THAT(a.as<RedisClusterBroker>().lastError(),
                ::testing::HasSubstr(std::to_string(cluster_.server(2).port())));

    std::string error;
    ASSERT_TRUE(cluster_.server(2).start(error)) << error;  // same port, same nodes.conf
    ASSERT_TRUE(waitClusterOk());
    ASSERT_TRUE(allUp()) << a.as<RedisClusterBroker>().lastError();
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
    EXPECT_EQ(shardNumsub(2, chat), 1) << "resubscribed after the restart";
    b.publish(chat, "\"after\"", 2);
    ASSERT_TRUE(syncedThrough(a, chat, "\"after\""));
}

TEST_F(RedisClusterTest, ProbesEveryMasterWithoutSpuriousDown) {
    RedisBrokerOptions o = options(0);
    o.probe_interval_ms = 50;
    o.probe_timeout_ms = 1000;
    Endpoint& a = endpoint(o);
    ASSERT_TRUE(allUp());
    RedisClient c0 = cluster_.server(0).client();
    pumpFor(std::chrono::milliseconds(600));
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false)));
    for (int i = 0; i < kNodes; ++i) {
        RedisClient c = cluster_.server(i).client();
        EXPECT_GE(c.commandCalls("spublish"), 5) << "node " << i;
    }
    // A paused master never answers its probe: the broker notices and comes back afterwards.
    RedisClient c1 = cluster_.server(1).client();
    ASSERT_TRUE(c1.command({"CLIENT", "PAUSE", "1500", "ALL"}));
    ASSERT_TRUE(pumpUntil([&] { return a.downs() == 1; }));
    EXPECT_THAT(a.as<RedisClusterBroker>().lastError(), ::testing::HasSubstr("probe"));
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; }));
}

TEST_F(RedisClusterTest, NoReachableSeedKeepsRetryingAndPublishesFail) {
    RedisBrokerOptions o;
    o.cluster.push_back(ClusterNode{"127.0.0.1", RedisServer::freePort()});
    o.reconnect_min_ms = 10;
    o.reconnect_max_ms = 50;
    o.probe_interval_ms = 0;
    Endpoint& a = endpoint(o);
    a.broker->subscribe("chat");
    a.publish("chat", "1", 7);
    ASSERT_TRUE(pumpUntil([&] { return a.results.size() == 1; }));
    EXPECT_THAT(a.results, ElementsAre(Pair(7u, PublishStatus::Unavailable)));
    ASSERT_TRUE(pumpUntil([&] { return !a.as<RedisClusterBroker>().lastError().empty(); }));
    EXPECT_THAT(a.as<RedisClusterBroker>().lastError(), ::testing::HasSubstr("CLUSTER SLOTS"));
    pumpFor(std::chrono::milliseconds(100));
    EXPECT_FALSE(a.up());
    EXPECT_THAT(a.states, IsEmpty());
}

TEST_F(RedisClusterTest, DestroyedWithWorkInFlightCallsNothing) {
    Endpoint& a = endpoint(options(0));
    a.broker->subscribe(channelOn(1, "x:"));
    ASSERT_TRUE(allUp());
    for (int i = 0; i < 100; ++i) a.publish(channelOn(i % kNodes, "y:"), "1", i);
    a.broker->flush();
    a.broker.reset();
    pumpFor(std::chrono::milliseconds(50));
    EXPECT_THAT(a.results, IsEmpty());
}

}  // namespace
}  // namespace wsrelay
