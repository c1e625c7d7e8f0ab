// broker.redis.cluster and broker.redis.sentinel.*: what the loader accepts, and what building the
// Redis broker (relay/server.cc) refuses. No Redis is contacted: workers never start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "conf/config_loader.h"
#include "relay/server.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RedisTopologyConfigTest, ListsComeFromTheEnvironment) {
    const ConfigLoad load = loadDefaultConfig({
        {"WSRELAY_BROKER_REDIS_CLUSTER", "10.0.0.1:7000, redis-1:7001,[::1]:7002"},
        {"WSRELAY_BROKER_REDIS_SENTINEL_MASTER", "mymaster"},
        {"WSRELAY_BROKER_REDIS_SENTINEL_ADDRS", "10.0.0.5:26379"},
    });
    ASSERT_TRUE(load.ok()) << load.errors[0].toString();
    EXPECT_THAT(load.config.broker.redis.cluster,
                ElementsAre("10.0.0.1:7000", "redis-1:7001", "[::1]:7002"));
    EXPECT_EQ(load.config.broker.redis.sentinel.master, "mymaster");
    EXPECT_THAT(load.config.broker.redis.sentinel.addrs, ElementsAre("10.0.0.5:26379"));
}

TEST(RedisTopologyConfigTest, AddressesWithoutAPortAreRefused) {
    for (const char* bad : {"redis-1", "redis-1:0", "redis-1:65536", ":7000", "a b:1"}) {
        const ConfigLoad load = loadDefaultConfig({{"WSRELAY_BROKER_REDIS_CLUSTER", bad}});
        ASSERT_EQ(load.errors.size(), 1u) << bad;
        EXPECT_THAT(load.errors[0].toString(), HasSubstr("WSRELAY_BROKER_REDIS_CLUSTER")) << bad;
    }
    const ConfigLoad load = loadDefaultConfig({{"WSRELAY_BROKER_REDIS_SENTINEL_ADDRS", "s1"}});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_THAT(load.errors[0].toString(), HasSubstr("is not host:port"));
}

Config redisConfig() {
    Config c;
    c.workers = 1;
    c.broker.type = BrokerType::Redis;
    return c;
}

std::string buildError(const Config& config) {
    try {
        Server server(config);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST(RedisTopologyConfigTest, BrokerBuildChecksTheCombination) {
    Config cluster = redisConfig();
    cluster.broker.redis.cluster = {"127.0.0.1:7000", "[::1]:7001"};
    EXPECT_EQ(buildError(cluster), "");

    Config sentinel = redisConfig();
    sentinel.broker.redis.sentinel.master = "m";
    sentinel.broker.redis.sentinel.addrs = {"127.0.0.1:26379"};
    EXPECT_EQ(buildError(sentinel), "");

    Config both = cluster;
    both.broker.redis.sentinel = sentinel.broker.redis.sentinel;
    EXPECT_THAT(buildError(both), HasSubstr("exclude each other"));

    Config no_sentinels = redisConfig();
    no_sentinels.broker.redis.sentinel.master = "m";
    EXPECT_THAT(buildError(no_sentinels), HasSubstr("broker.redis.sentinel.addrs"));

    Config cluster_db = cluster;
    cluster_db.broker.redis.url = "redis://127.0.0.1:6379/2";
    EXPECT_THAT(buildError(cluster_db), HasSubstr("database 0"));
}

}  // namespace
}  // namespace wsrelay
