// The per-user connection sets (docs/scaling.md "Per-user limit"): wsrelay_user_admit and
// wsrelay_user_leave of the function library, run on a real redis-server, must answer every call
// exactly as the memory broker's MemoryUserSets does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/memory_fleet_user.h"
#include "adapters/redis_functions.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::RedisServer;

struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

class UserLimitRedisTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kBinary << " is missing";
        std::string error;
        ASSERT_TRUE(server_.start(error)) << error;
        redis_.reset(redisConnect("127.0.0.1", server_.port()));
        ASSERT_TRUE(redis_ && redis_->err == 0);
        const std::string library = redisFunctionLibrary(RedisMode::Standalone);
        ReplyPtr loaded = command({"FUNCTION", "LOAD", "REPLACE", library});
        ASSERT_EQ(loaded->type, REDIS_REPLY_STRING) << loaded->str;
    }

    ReplyPtr command(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<size_t> lengths;
        for (const std::string& a : args) {
            argv.push_back(a.data());
            lengths.push_back(a.size());
        }
        return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(
            redis_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    }

    // FCALL wsrelay_<function> 1 <prefix>wsrelay:{fleet> <args>, as a FleetReply (flat items).
    FleetReply fcall(const std::string& function, std::vector<std::string> args) {
        std::vector<std::string> argv = {"FCALL", "wsrelay_" + function, "1",
                                         "app:" + std::string(kFleetKey)};
        argv.insert(argv.end(), args.begin(), args.end());
        ReplyPtr r = command(argv);
        FleetReply reply;
        if (r->type == REDIS_REPLY_ERROR) {
            reply.status = FleetStatus::Error;
            reply.error.assign(r->str, r->len);
        } else if (r->type == REDIS_REPLY_INTEGER) {
            reply.integer = r->integer;
        } else if (r->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < r->elements; ++i) {
                const redisReply& e = *r->element[i];
                reply.items.push_back(e.type == REDIS_REPLY_INTEGER ? std::to_string(e.integer)
                                                                    : std::string(e.str, e.len));
            }
        }
        return reply;
    }

    // The same call on both; the replies must agree (an error's text aside).
    FleetReply both(const std::string& function, std::vector<std::string> args) {
        FleetReply redis = fcall(function, args);
        FleetReply memory;
        EXPECT_TRUE(memory_.call(FleetCall{0, function, std::string(kFleetKey), args}, memory));
        EXPECT_EQ(redis.status, memory.status) << function << ": " << redis.error;
        EXPECT_EQ(redis.integer, memory.integer) << function;
        EXPECT_EQ(redis.items, memory.items) << function;
        return redis;
    }

    FleetReply admit(const std::string& user, const std::string& connection, int limit,
                     const std::string& policy) {
        return both("user_admit", {user, connection, std::to_string(limit), policy, "60000"});
    }

    RedisServer server_;
    std::unique_ptr<redisContext, ContextFree> redis_;
    MemoryUserSets memory_;
};

using ::testing::ElementsAre;

TEST_F(UserLimitRedisTest, RefuseAtTheLimitUntilAConnectionLeaves) {
    EXPECT_THAT(admit("ann", "aaaaaaaa.1", 2, "refuse").items, ElementsAre("admit"));
    EXPECT_THAT(admit("ann", "bbbbbbbb.1", 2, "refuse").items, ElementsAre("admit"));
    EXPECT_THAT(admit("ann", "cccccccc.1", 2, "refuse").items, ElementsAre("refuse", "2"));
    // Another user is not affected; a retried admission of a member is admitted again.
    EXPECT_THAT(admit("bob", "cccccccc.2", 2, "refuse").items, ElementsAre("admit"));
    EXPECT_THAT(admit("ann", "aaaaaaaa.1", 2, "refuse").items, ElementsAre("admit"));
    EXPECT_EQ(both("user_leave", {"ann", "aaaaaaaa.1", "zzzzzzzz.9"}).integer, 1);
    EXPECT_THAT(admit("ann", "cccccccc.1", 2, "refuse").items, ElementsAre("admit"));
    // The set's key, in the fleet's slot, expires.
    ReplyPtr ttl = command({"PTTL", "app:wsrelay:{fleet}:u:ann"});
    EXPECT_GT(ttl->integer, 0);
    EXPECT_LE(ttl->integer, 60000);
}

TEST_F(UserLimitRedisTest, EvictOldestNamesTheOldestInAdmissionOrder) {
    admit("ann", "aaaaaaaa.1", 2, "evict_oldest");
    admit("ann", "bbbbbbbb.1", 2, "evict_oldest");
    EXPECT_THAT(admit("ann", "cccccccc.1", 2, "evict_oldest").items,
                ElementsAre("evict", "aaaaaaaa.1"));
    EXPECT_THAT(admit("ann", "dddddddd.1", 2, "evict_oldest").items,
                ElementsAre("evict", "bbbbbbbb.1"));
    // A limit lowered by a rolling update evicts down to it.
    EXPECT_THAT(admit("ann", "eeeeeeee.1", 1, "evict_oldest").items,
                ElementsAre("evict", "cccccccc.1", "dddddddd.1"));
    // The evicted are gone from the set: leaving them removes nothing.
    EXPECT_EQ(both("user_leave", {"ann", "aaaaaaaa.1", "cccccccc.1"}).integer, 0);
}

TEST_F(UserLimitRedisTest, TheLastLeaveLeavesNothingBehind) {
    admit("ann", "aaaaaaaa.1", 3, "refuse");
    admit("ann", "aaaaaaaa.2", 3, "refuse");
    EXPECT_EQ(both("user_leave", {"ann", "aaaaaaaa.1", "aaaaaaaa.2"}).integer, 2);
    EXPECT_EQ(command({"EXISTS", "app:wsrelay:{fleet}:u:ann"})->integer, 0);
    EXPECT_EQ(memory_.users(), 0u);
    EXPECT_EQ(both("user_leave", {"nobody", "aaaaaaaa.3"}).integer, 0);
}

TEST_F(UserLimitRedisTest, BadArgumentsAreErrors) {
    both("user_admit", {"ann", "aaaaaaaa.1", "2", "sometimes", "0"});
    both("user_admit", {"ann", "aaaaaaaa.1", "0", "refuse", "0"});
    both("user_admit", {"ann", "aaaaaaaa.1", "two", "refuse", "0"});
    both("user_leave", {"ann"});
}

}  // namespace
}  // namespace wsrelay
