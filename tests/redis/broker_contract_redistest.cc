// The Broker contract (adapters/broker.h) checked the same way against every implementation: the
// in-process broker, a standalone redis-server and a real three-master Redis Cluster. Each
// environment starts what it needs and says how to take it down; the tests only speak Broker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "adapters/memory_broker.h"
#include "adapters/redis_broker.h"
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
using testing::RedisClusterProcesses;
using testing::RedisServer;

constexpr auto kDeadline = std::chrono::seconds(20);

RedisBrokerOptions fastOptions() {
    RedisBrokerOptions o;
    o.reconnect_min_ms = 10;
    o.reconnect_max_ms = 100;
    o.probe_interval_ms = 0;
    o.probe_timeout_ms = 2000;
    return o;
}

// The in-process broker: it cannot go down.
class MemoryEnvironment {
public:
    bool start(std::string&) { return true; }
    BrokerFactory& factory() { return factory_; }
    // A channel name; `shard` picks a master where there are several.
    std::string channel(const std::string& base, int) { return base; }
    // Until no worker subscribes `channel` any more: an unsubscribe takes effect at the
    // unsubscribing worker's next flush, which every loop turn runs.
    bool unsubscribed(BrokerRig& rig, const std::string&) {
        rig.pumpFor(std::chrono::milliseconds(20));
        return true;
    }

private:
    MemoryBrokerFactory factory_{8};
};

class StandaloneRedisEnvironment {
public:
    bool start(std::string& error) {
        if (!server_.start(error)) return false;
        RedisBrokerOptions o = fastOptions();
        RedisUrlParse parsed = parseRedisUrl(server_.url());
        if (!parsed.error.empty()) {
            error = parsed.error;
            return false;
        }
        o.url = parsed.url;
        factory_ = std::make_unique<RedisBrokerFactory>(o);
        return true;
    }
    BrokerFactory& factory() { return *factory_; }
    std::string channel(const std::string& base, int) { return base; }
    bool unsubscribed(BrokerRig& rig, const std::string& channel) {
        testing::RedisClient client = server_.client();
        return rig.pumpUntil([&] { return client.numsub(channel) == 0; });
    }
    // The channel of outage tests is on the server that goes down (there is only one).
    static constexpr int kFailingShard = 0;
    void fail() { server_.kill(); }
    bool restore(std::string& error) { return server_.start(error); }

private:
    RedisServer server_;
    std::unique_ptr<RedisBrokerFactory> factory_;
};

class ClusterEnvironment {
public:
    bool start(std::string& error) {
        if (!cluster_.start(error)) return false;
        RedisBrokerOptions o = fastOptions();
        o.reconnect_max_ms = 200;
        o.cluster.push_back(ClusterNode{"127.0.0.1", cluster_.server(0).port()});
        o.cluster.push_back(ClusterNode{"127.0.0.1", cluster_.server(1).port()});
        factory_ = std::make_unique<RedisBrokerFactory>(o);
        return true;
    }
    BrokerFactory& factory() { return *factory_; }
    std::string channel(const std::string& base, int shard) {
        return cluster_.channelOn(shard % RedisClusterProcesses::kNodes, base);
    }
    bool unsubscribed(BrokerRig& rig, const std::string& channel) {
        return rig.pumpUntil([&] { return cluster_.shardNumsubEverywhere(channel) == 0; });
    }
    // The seeds (masters 0 and 1) stay up; the master of the outage tests' channels fails.
    static constexpr int kFailingShard = 2;
    void fail() { cluster_.server(kFailingShard).kill(); }
    bool restore(std::string& error) {
        if (!cluster_.server(kFailingShard).start(error)) return false;  // same port, nodes.conf
        if (!cluster_.waitOk(kDeadline)) {
            error = "the cluster did not come back to cluster_state:ok";
            return false;
        }
        return true;
    }

private:
    RedisClusterProcesses cluster_;
    std::unique_ptr<RedisBrokerFactory> factory_;
};

template <typename Environment>
class BrokerContractTest : public ::testing::Test {
protected:
    void SetUp() override {
        if constexpr (!std::is_same_v<Environment, MemoryEnvironment>) {
            if (!RedisClusterProcesses::available()) {
                GTEST_SKIP() << RedisServer::kBinary << " or redis-cli is missing";
            }
        }
        std::string error;
        ASSERT_TRUE(env_.start(error)) << error;
    }
    void TearDown() override { rig_.clear(); }

    Environment env_;
    BrokerRig rig_{kDeadline};
};

using Environments =
    ::testing::Types<MemoryEnvironment, StandaloneRedisEnvironment, ClusterEnvironment>;
class EnvironmentNames {
public:
    template <typename T>
    static std::string GetName(int) {
        if constexpr (std::is_same_v<T, MemoryEnvironment>) return "Memory";
        if constexpr (std::is_same_v<T, StandaloneRedisEnvironment>) return "Redis";
        return "Cluster";
    }
};
TYPED_TEST_SUITE(BrokerContractTest, Environments, EnvironmentNames);

TYPED_TEST(BrokerContractTest, OnePublisherArrivesInPublishOrder) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("order:", 1);
    a.subscribe(ch);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));

    constexpr int kCount = 300;
    std::vector<std::string> sent;
    for (int i = 0; i < kCount; ++i) {
        sent.push_back(std::to_string(i));
        b.publish(ch, sent.back(), static_cast<uint64_t>(i));
    }
    ASSERT_TRUE(this->rig_.syncedThrough(a, ch, sent.back()));
    EXPECT_EQ(a.dataOf(ch), sent);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return b.results.size() == kCount; }));
    std::vector<int> reported(kCount, 0);
    for (const auto& [id, status] : b.results) {
        EXPECT_EQ(status, PublishStatus::Accepted) << "publish " << id;
        ++reported[id];
    }
    EXPECT_THAT(reported, ::testing::Each(1)) << "one result per publish";
}

// A confirmed subscription is live: a publish made right after the confirmation arrives. This is
// what lets the relay acknowledge a client's subscribe only then (docs/scaling.md).
TYPED_TEST(BrokerContractTest, ConfirmedSubscriptionReceivesTheNextPublish) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    for (int k = 0; k < 12; ++k) {
        const std::string ch = this->env_.channel("live:" + std::to_string(k) + ":", k);
        a.subscribe(ch);
        ASSERT_TRUE(this->rig_.confirmed(a, ch)) << ch;
        const std::string data = "\"" + std::to_string(k) + "\"";
        b.publish(ch, data, static_cast<uint64_t>(k));
        ASSERT_TRUE(this->rig_.syncedThrough(a, ch, data)) << ch;
    }
    this->rig_.pumpFor(std::chrono::milliseconds(50));
    for (int k = 0; k < 12; ++k) {
        const std::string ch = this->env_.channel("live:" + std::to_string(k) + ":", k);
        EXPECT_EQ(a.confirmations(ch), 1) << "confirmed once: " << ch;
    }
}

TYPED_TEST(BrokerContractTest, UnsubscribedChannelDeliversNothing) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    // Both on one master: one connection carries both, in the order Redis sent them.
    const std::string ch = this->env_.channel("gone:", 1);
    const std::string sync = this->env_.channel("sync:", 1);
    a.subscribe(ch);
    a.subscribe(sync);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));
    ASSERT_TRUE(this->rig_.confirmed(a, sync));

    a.broker->unsubscribe(ch);
    ASSERT_TRUE(this->env_.unsubscribed(this->rig_, ch));
    b.publish(ch, "\"late\"", 1);
    b.publish(sync, "\"end\"", 2);
    ASSERT_TRUE(this->rig_.syncedThrough(a, sync, "\"end\""));
    EXPECT_THAT(a.dataOf(ch), IsEmpty());
}

TYPED_TEST(BrokerContractTest, NothingIsCalledBackAfterDestruction) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string to_a = this->env_.channel("to-a:", 0);
    const std::string to_b = this->env_.channel("to-b:", 2);
    a.subscribe(to_a);
    b.subscribe(to_b);
    ASSERT_TRUE(this->rig_.confirmed(a, to_a));
    ASSERT_TRUE(this->rig_.confirmed(b, to_b));

    // In flight when a goes: its own publishes (results owed), messages for it, a subscribe.
    for (uint64_t i = 0; i < 50; ++i) {
        a.publish(to_b, std::to_string(i), i);
        b.publish(to_a, std::to_string(i), i);
    }
    a.subscribe(this->env_.channel("late-subscribe:", 1));
    a.destroyBroker();  // the endpoint fails the test if a callback comes after this
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return b.results.size() == 50; }));
    this->rig_.pumpFor(std::chrono::milliseconds(100));
    EXPECT_TRUE(b.up());
}

// Outages: only brokers that talk to something outside the process can have them.
template <typename Environment>
class BrokerOutageTest : public BrokerContractTest<Environment> {};
using FailingEnvironments = ::testing::Types<StandaloneRedisEnvironment, ClusterEnvironment>;
TYPED_TEST_SUITE(BrokerOutageTest, FailingEnvironments, EnvironmentNames);

TYPED_TEST(BrokerOutageTest, DownThenUpWithGapResubscribesAndConfirmsAgain) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const int shard = TypeParam::kFailingShard;
    const std::string ch = this->env_.channel("outage:", shard);
    const std::string later = this->env_.channel("later:", shard);
    a.subscribe(ch);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));

    this->env_.fail();
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.downs() == 1 && b.downs() == 1; }));
    b.publish(ch, "\"lost\"", 1);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return b.results.size() == 1; }));
    EXPECT_THAT(b.results, ElementsAre(Pair(1u, PublishStatus::Unavailable)));
    a.subscribe(later);  // wanted while down: confirmed once it is live

    std::string error;
    ASSERT_TRUE(this->env_.restore(error)) << error;
    ASSERT_TRUE(this->rig_.allUp()) << a.broker->lastError();
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
    ASSERT_TRUE(this->rig_.confirmed(a, ch, 2)) << "confirmed again after the outage";
    ASSERT_TRUE(this->rig_.confirmed(a, later));
    b.publish(ch, "\"after\"", 2);
    b.publish(later, "\"later\"", 3);
    ASSERT_TRUE(this->rig_.syncedThrough(a, ch, "\"after\""));
    ASSERT_TRUE(this->rig_.syncedThrough(a, later, "\"later\""));
    EXPECT_THAT(a.dataOf(ch), ElementsAre("\"after\""));
    EXPECT_EQ(a.confirmations(later), 1);
}

TYPED_TEST(BrokerOutageTest, NothingIsCalledBackAfterDestructionDuringAnOutage) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("outage:", TypeParam::kFailingShard);
    a.subscribe(ch);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));
    this->env_.fail();
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.downs() == 1; }));
    a.publish(ch, "1", 1);  // its Unavailable is owed on a later turn
    a.destroyBroker();
    std::string error;
    ASSERT_TRUE(this->env_.restore(error)) << error;
    this->rig_.pumpFor(std::chrono::milliseconds(200));
}

}  // namespace
}  // namespace wsrelay
