// RedisBroker in sentinel mode against real processes: a master, its replica and three
// sentinels on loopback, started by each test and killed by PID.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapters/redis_broker.h"
#include "tests/redis/broker_endpoint.h"
#include "tests/redis/broker_rig.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::BrokerRig;
using ::testing::ElementsAre;
using testing::Endpoint;
using ::testing::Pair;
using testing::RedisClient;
using testing::RedisServer;
using testing::ReplyPtr;

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);
constexpr int kSentinels = 3;

class RedisSentinelTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisSentinelTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kBinary << " is missing";
        char dir[] = "/tmp/wsrelay-sentinel-XXXXXX";
        ASSERT_NE(mkdtemp(dir), nullptr);
        dir_ = dir;
        std::string error;
        ASSERT_TRUE(master_.start(error)) << error;
        replica_.setArgs({"--replicaof", "127.0.0.1", std::to_string(master_.port())});
        ASSERT_TRUE(replica_.start(error)) << error;
        for (int i = 0; i < kSentinels; ++i) {
            const std::string conf = dir_ + "/sentinel-" + std::to_string(i) + ".conf";
            std::ofstream(conf) << "sentinel monitor m 127.0.0.1 " << master_.port() << " 2\n"
                                << "sentinel down-after-milliseconds m 500\n"
                                << "sentinel failover-timeout m 2000\n";
            sentinels_[i].setConfigFile(conf);
            sentinels_[i].setArgs({"--sentinel"});
            ASSERT_TRUE(sentinels_[i].start(error)) << error;
        }
        // A failover needs the replica in sync and every sentinel aware of the others.
        ASSERT_TRUE(waitFor([&] {
            RedisClient c = replica_.client();
            ReplyPtr r = c.ok() ? c.command({"INFO", "replication"}) : nullptr;
            return r && r->type == REDIS_REPLY_STRING &&
                   std::string(r->str, r->len).find("master_link_status:up") != std::string::npos;
        })) << "the replica never synced";
        ASSERT_TRUE(waitFor([&] {
            for (RedisServer& s : sentinels_) {
                const auto fields = masterFields(s);
                if (fields.count("num-other-sentinels") == 0 ||
                    fields.at("num-other-sentinels") != "2" || fields.at("num-slaves") != "1") {
                    return false;
                }
            }
            return true;
        })) << "the sentinels never found each other and the replica";
    }

    void TearDown() override {
        clear();
        for (RedisServer& s : sentinels_) s.kill();
        master_.kill();
        replica_.kill();
        if (!dir_.empty()) {
            for (int i = 0; i < kSentinels; ++i) {
                unlink((dir_ + "/sentinel-" + std::to_string(i) + ".conf").c_str());
            }
            rmdir(dir_.c_str());
        }
    }

    static bool waitFor(const std::function<bool()>& done) {
        const auto deadline = Clock::now() + kDeadline;
        while (!done()) {
            if (Clock::now() > deadline) return false;
            const timespec pause{0, 20 * 1000 * 1000};  // between polls of another process
            nanosleep(&pause, nullptr);
        }
        return true;
    }

    static std::map<std::string, std::string> masterFields(RedisServer& sentinel) {
        std::map<std::string, std::string> out;
        RedisClient c = sentinel.client();
        ReplyPtr r = c.ok() ? c.command({"SENTINEL", "MASTER", "m"}) : nullptr;
        if (!r || r->type != REDIS_REPLY_ARRAY) return out;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            out[std::string(r->element[i]->str, r->element[i]->len)] =
                std::string(r->element[i + 1]->str, r->element[i + 1]->len);
        }
        return out;
    }

    RedisBrokerOptions options() const {
        RedisBrokerOptions o;
        o.url.host = "127.0.0.1";
        o.url.port = RedisServer::freePort();  // never used in sentinel mode
        o.sentinel_master = "m";
        for (const RedisServer& s : sentinels_) {
            o.sentinels.push_back(ClusterNode{"127.0.0.1", s.port()});
        }
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

    std::string dir_;
    RedisServer master_;
    RedisServer replica_;
    std::array<RedisServer, kSentinels> sentinels_;
    std::vector<std::unique_ptr<RedisBrokerFactory>> factories_;
};

TEST_F(RedisSentinelTest, FindsTheMasterAndFollowsAFailoverAfterItIsKilled) {
    // The first sentinel listed is not running: the next one answers.
    RedisBrokerOptions o = options();
    o.sentinels.insert(o.sentinels.begin(), ClusterNode{"127.0.0.1", RedisServer::freePort()});
    Endpoint& a = endpoint(o);
    Endpoint& b = endpoint(o);
    a.broker->subscribe("chat");
    ASSERT_TRUE(pumpUntil([&] { return a.up() && b.up(); })) << a.as<RedisBroker>().lastError();
    RedisClient on_master = master_.client();
    EXPECT_EQ(on_master.numsub("chat"), 1);
    b.publish("chat", "\"before\"", 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"before\""));

    master_.kill();
    // down-after-milliseconds 500 and an election: a few seconds, bounded by kDeadline.
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2 && b.ups() == 2; }))
        << a.as<RedisBroker>().lastError();
    EXPECT_THAT(a.states, ElementsAre(Pair(BrokerState::Up, false), Pair(BrokerState::Down, false),
                                      Pair(BrokerState::Up, true)));
    RedisClient on_replica = replica_.client();
    ReplyPtr role = on_replica.command({"ROLE"});
    ASSERT_TRUE(role && role->type == REDIS_REPLY_ARRAY);
    EXPECT_EQ(std::string(role->element[0]->str), "master") << "the replica was promoted";
    EXPECT_EQ(on_replica.numsub("chat"), 1);
    b.publish("chat", "\"after\"", 2);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"after\""));
    ASSERT_TRUE(pumpUntil([&] { return b.results.size() == 2; }));
    EXPECT_EQ(b.results.back(), std::make_pair(uint64_t{2}, PublishStatus::Accepted));

    // Fleet calls go to the new master too: a publish reaching a's worker, and an FCALL of the
    // library loaded there before Up.
    b.fleetCall(1, "publish", "chat", {"\"fleet\""});
    b.fleetCall(2, "history", "h", {"0", "0", "0", "10", "60000"});
    ASSERT_TRUE(pumpUntil([&] { return b.fleet_replies.size() == 2; }));
    EXPECT_EQ(b.fleetReply(1)->status, FleetStatus::Ok) << b.fleetReply(1)->error;
    EXPECT_EQ(b.fleetReply(1)->integer, 1);
    EXPECT_EQ(b.fleetReply(2)->status, FleetStatus::Ok) << b.fleetReply(2)->error;
    EXPECT_EQ(b.fleetReply(2)->items.size(), 2u) << "{top offset, epoch}";
    ASSERT_TRUE(syncedThrough(a, "chat", "\"fleet\""));
}

TEST_F(RedisSentinelTest, FollowsSwitchMasterWhenTheOldMasterStaysUp) {
    Endpoint& a = endpoint(options());
    a.broker->subscribe("chat");
    ASSERT_TRUE(pumpUntil([&] { return a.up(); })) << a.as<RedisBroker>().lastError();
    RedisClient admin = sentinels_[0].client();
    ReplyPtr r = admin.command({"SENTINEL", "FAILOVER", "m"});
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
    // Nothing fails on the old master: only +switch-master tells the broker to move.
    ASSERT_TRUE(pumpUntil([&] { return a.ups() == 2; })) << a.as<RedisBroker>().lastError();
    EXPECT_THAT(a.as<RedisBroker>().lastError(), ::testing::HasSubstr("switched"));
    RedisClient on_replica = replica_.client();
    EXPECT_EQ(on_replica.numsub("chat"), 1);
    EXPECT_EQ(on_replica.publish("chat", "\"on new master\""), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"on new master\""));
}

TEST_F(RedisSentinelTest, UnknownMasterNameIsReportedAndRetried) {
    RedisBrokerOptions o = options();
    o.sentinel_master = "nope";
    Endpoint& a = endpoint(o);
    ASSERT_TRUE(pumpUntil([&] { return !a.as<RedisBroker>().lastError().empty(); }));
    EXPECT_THAT(a.as<RedisBroker>().lastError(), ::testing::HasSubstr("nope"));
    EXPECT_FALSE(a.up());
}

TEST_F(RedisSentinelTest, AuthenticatesToPasswordProtectedSentinels) {
    // What requirepass in a sentinel's configuration does, set at run time: the default user
    // needs a password, and an ACL user exists besides it.
    for (RedisServer& s : sentinels_) {
        RedisClient c = s.client();
        ReplyPtr user = c.command({"ACL", "SETUSER", "relay", "on", ">s3cret", "+@all"});
        ASSERT_TRUE(user && user->type == REDIS_REPLY_STATUS) << (user ? user->str : "no reply");
        ReplyPtr r = c.command({"ACL", "SETUSER", "default", "resetpass", ">sentinel-pw"});
        ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
    }
    RedisBrokerOptions without = options();
    Endpoint& refused = endpoint(without);
    RedisBrokerOptions by_password = options();
    by_password.sentinel_password = "sentinel-pw";
    Endpoint& a = endpoint(by_password);
    RedisBrokerOptions by_user = options();
    by_user.sentinel_user = "relay";
    by_user.sentinel_password = "s3cret";
    Endpoint& b = endpoint(by_user);
    a.broker->subscribe("chat");
    ASSERT_TRUE(pumpUntil([&] { return a.up() && b.up(); })) << a.as<RedisBroker>().lastError();
    b.publish("chat", "\"through the master\"", 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"through the master\""));
    ASSERT_TRUE(pumpUntil([&] { return !refused.as<RedisBroker>().lastError().empty(); }));
    EXPECT_THAT(refused.as<RedisBroker>().lastError(), ::testing::HasSubstr("NOAUTH"));
    EXPECT_FALSE(refused.up());
}

}  // namespace
}  // namespace wsrelay
