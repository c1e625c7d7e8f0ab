// needsRedisFunctions: the one place that decides whether the Redis brokers load the function
// library (RedisBrokerOptions::functions).
#include "conf/redis_functions_needed.h"

#include <gtest/gtest.h>

namespace wsrelay {
namespace {

TEST(RedisFunctionsNeededTest, OnlyWhenSomeChannelKeepsHistory) {
    Config config;
    EXPECT_FALSE(needsRedisFunctions(config)) << "the defaults call no function";
    config.channels.push_back(Config::Channel{"plain:*", 0, 600000});
    EXPECT_FALSE(needsRedisFunctions(config));
    config.channels.push_back(Config::Channel{"chat:*", 100, 600000});
    EXPECT_TRUE(needsRedisFunctions(config));
}

}  // namespace
}  // namespace wsrelay
