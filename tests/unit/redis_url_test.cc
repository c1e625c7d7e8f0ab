#include "adapters/redis_url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wsrelay {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

RedisUrl good(std::string_view text) {
    RedisUrlParse parsed = parseRedisUrl(text);
    EXPECT_THAT(parsed.error, IsEmpty()) << text;
    return parsed.url;
}

std::string bad(std::string_view text) {
    RedisUrlParse parsed = parseRedisUrl(text);
    EXPECT_THAT(parsed.error, Not(IsEmpty())) << text << " was accepted";
    return parsed.error;
}

TEST(RedisUrlTest, HostPortAndDatabase) {
    RedisUrl url = good("redis://cache.internal:6380/3");
    EXPECT_EQ(url.host, "cache.internal");
    EXPECT_EQ(url.port, 6380);
    EXPECT_EQ(url.db, 3);
    EXPECT_THAT(url.user, IsEmpty());
    EXPECT_THAT(url.password, IsEmpty());
}

TEST(RedisUrlTest, DefaultsArePort6379AndDatabase0) {
    for (const char* text : {"redis://10.0.0.7", "redis://10.0.0.7/", "REDIS://10.0.0.7"}) {
        RedisUrl url = good(text);
        EXPECT_EQ(url.host, "10.0.0.7") << text;
        EXPECT_EQ(url.port, 6379) << text;
        EXPECT_EQ(url.db, 0) << text;
    }
    EXPECT_EQ(good("redis://127.0.0.1:6379/0").port, 6379);
}

TEST(RedisUrlTest, UserAndPassword) {
    RedisUrl url = good("redis://relay:s3cret@redis:6379/1");
    EXPECT_EQ(url.user, "relay");
    EXPECT_EQ(url.password, "s3cret");
    EXPECT_EQ(url.host, "redis");
    EXPECT_EQ(url.db, 1);
}

TEST(RedisUrlTest, PasswordOnlyMeansTheDefaultUser) {
    RedisUrl url = good("redis://:hunter2@redis");
    EXPECT_THAT(url.user, IsEmpty());
    EXPECT_EQ(url.password, "hunter2");
}

TEST(RedisUrlTest, CredentialsArePercentDecoded) {
    RedisUrl url = good("redis://us%65r%3A1:p%40ss%2Fw%3a%25rd@redis:7000");
    EXPECT_EQ(url.user, "user:1");
    EXPECT_EQ(url.password, "p@ss/w:%rd");
    EXPECT_EQ(url.port, 7000);
}

TEST(RedisUrlTest, UnencodedAtInThePasswordStillParses) {
    RedisUrl url = good("redis://:p@ss@redis");
    EXPECT_EQ(url.password, "p@ss");
    EXPECT_EQ(url.host, "redis");
}

TEST(RedisUrlTest, BracketedIpv6Host) {
    RedisUrl url = good("redis://[::1]:6390/2");
    EXPECT_EQ(url.host, "::1");
    EXPECT_EQ(url.port, 6390);
    EXPECT_EQ(url.db, 2);
    EXPECT_EQ(describeRedisUrl(url), "[::1]:6390/2");
}

TEST(RedisUrlTest, RedissMeansTls) {
    RedisUrl url = good("rediss://redis:6380/2");
    EXPECT_TRUE(url.tls);
    EXPECT_EQ(url.host, "redis");
    EXPECT_EQ(url.port, 6380);
    EXPECT_EQ(url.db, 2);
    url = good("REDISS://:pw@redis");
    EXPECT_TRUE(url.tls);
    EXPECT_EQ(url.password, "pw");
    EXPECT_EQ(url.port, 6379);
    EXPECT_FALSE(good("redis://redis").tls);
    EXPECT_THAT(bad("redisss://redis"), HasSubstr("rediss:// for TLS"));
}

TEST(RedisUrlTest, MissingParts) {
    EXPECT_THAT(bad("redis://"), HasSubstr("host is missing"));
    EXPECT_THAT(bad("redis://:6379"), HasSubstr("host is missing"));
    EXPECT_THAT(bad("redis://:pw@/0"), HasSubstr("host is missing"));
    EXPECT_THAT(bad("redis://redis:"), HasSubstr("port is empty"));
    EXPECT_THAT(bad("redis://[::1]:"), HasSubstr("port is empty"));
    EXPECT_THAT(bad("redis://user@redis"), HasSubstr("need a password"));
    EXPECT_THAT(bad("redis://user:@redis"), HasSubstr("password is empty"));
}

TEST(RedisUrlTest, BadNumbers) {
    EXPECT_THAT(bad("redis://redis:0"), HasSubstr("1..65535"));
    EXPECT_THAT(bad("redis://redis:65536"), HasSubstr("1..65535"));
    EXPECT_THAT(bad("redis://redis:-1"), HasSubstr("1..65535"));
    EXPECT_THAT(bad("redis://redis:http"), HasSubstr("1..65535"));
    EXPECT_THAT(bad("redis://redis:99999999999999999999"), HasSubstr("1..65535"));
    EXPECT_THAT(bad("redis://redis/x"), HasSubstr("database 'x'"));
    EXPECT_THAT(bad("redis://redis/-1"), HasSubstr("database"));
    EXPECT_THAT(bad("redis://redis/1/2"), HasSubstr("database"));
}

TEST(RedisUrlTest, Garbage) {
    EXPECT_THAT(bad(""), HasSubstr("expected redis://"));
    EXPECT_THAT(bad("redis"), HasSubstr("expected redis://"));
    EXPECT_THAT(bad("127.0.0.1:6379"), HasSubstr("expected redis://"));
    EXPECT_THAT(bad("http://redis:6379"), HasSubstr("expected redis://"));
    EXPECT_THAT(bad("redis:/redis"), HasSubstr("expected redis://"));
    EXPECT_THAT(bad("redis://redis?db=1"), HasSubstr("not supported"));
    EXPECT_THAT(bad("redis://red is:6379"), HasSubstr("not a host name"));
    EXPECT_THAT(bad("redis://[::1"), HasSubstr("unterminated"));
    EXPECT_THAT(bad("redis://[::1]x"), HasSubstr("after the [IPv6] host"));
    EXPECT_THAT(bad("redis://:p%4@redis"), HasSubstr("percent-escape"));
    EXPECT_THAT(bad("redis://:p%zz@redis"), HasSubstr("percent-escape"));
    EXPECT_THAT(bad("redis://u%:pw@redis"), HasSubstr("percent-escape"));
}

TEST(RedisUrlTest, ErrorsNeverEchoThePassword) {
    EXPECT_THAT(bad("redis://:topsecret@redis:bad"), Not(HasSubstr("topsecret")));
    EXPECT_THAT(bad("redis://:topsecret@redis/x"), Not(HasSubstr("topsecret")));
    EXPECT_EQ(describeRedisUrl(good("redis://u:topsecret@redis:1/2")), "redis:1/2");
}

}  // namespace
}  // namespace wsrelay
