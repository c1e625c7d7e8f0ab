// broker.redis.cluster and broker.redis.sentinel.*: what the loader accepts and refuses, and that
// the Redis broker (relay/edge/server.cc) builds from what it accepts. No Redis is contacted:
// workers never start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "conf/config_loader.h"
#include "relay/edge/server.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RedisTopologyConfigTest, ListsComeFromTheEnvironment) {
    const ConfigLoad cluster = loadDefaultConfig({
        {"WSRELAY_BROKER_REDIS_CLUSTER", "10.0.0.1:7000, redis-1:7001,[::1]:7002"},
    });
    ASSERT_TRUE(cluster.ok()) << cluster.errors[0].toString();
    EXPECT_THAT(cluster.config.broker.redis.cluster,
                ElementsAre("10.0.0.1:7000", "redis-1:7001", "[::1]:7002"));
    const ConfigLoad sentinel = loadDefaultConfig({
        {"WSRELAY_BROKER_REDIS_SENTINEL_MASTER", "mymaster"},
        {"WSRELAY_BROKER_REDIS_SENTINEL_ADDRS", "10.0.0.5:26379"},
    });
    ASSERT_TRUE(sentinel.ok()) << sentinel.errors[0].toString();
    EXPECT_EQ(sentinel.config.broker.redis.sentinel.master, "mymaster");
    EXPECT_THAT(sentinel.config.broker.redis.sentinel.addrs, ElementsAre("10.0.0.5:26379"));
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

TEST(RedisTopologyConfigTest, ValidTopologiesBuildABroker) {
    Config cluster = redisConfig();
    cluster.broker.redis.cluster = {"127.0.0.1:7000", "[::1]:7001"};
    EXPECT_EQ(buildError(cluster), "");

    Config sentinel = redisConfig();
    sentinel.broker.redis.sentinel.master = "m";
    sentinel.broker.redis.sentinel.addrs = {"127.0.0.1:26379"};
    EXPECT_EQ(buildError(sentinel), "");
}

// The combinations are rules of conf/, so `--check-config` refuses them as startup does.
TEST(RedisTopologyConfigTest, TheLoaderRefusesTheCombinations) {
    auto errors = [](const Environment& env) {
        std::string out;
        for (const ConfigError& e : loadDefaultConfig(env).errors) out += e.toString() + "\n";
        return out;
    };
    const Environment cluster = {{"WSRELAY_BROKER_REDIS_CLUSTER", "127.0.0.1:7000"}};
    Environment both = cluster;
    both["WSRELAY_BROKER_REDIS_SENTINEL_MASTER"] = "m";
    both["WSRELAY_BROKER_REDIS_SENTINEL_ADDRS"] = "127.0.0.1:26379";
    EXPECT_THAT(errors(both), HasSubstr("exclude each other"));
    EXPECT_THAT(errors({{"WSRELAY_BROKER_REDIS_SENTINEL_MASTER", "m"}}),
                HasSubstr("needs broker.redis.sentinel.addrs"));
    Environment cluster_db = cluster;
    cluster_db["WSRELAY_BROKER_REDIS_URL"] = "redis://127.0.0.1:6379/2";
    EXPECT_THAT(errors(cluster_db), HasSubstr("has only database 0"));
    EXPECT_EQ(errors(cluster), "");
}

}  // namespace
}  // namespace wsrelay
