// Fleet calls (Broker::fleetCall) through the Redis brokers against real redis-server processes:
// "publish" answers how many workers it reached, an FCALL's reply arrives in every shape the
// contract names, calls keep their place among publishes, a Redis that is down answers
// Unavailable, and in a Cluster a call goes to the master owning its key's slot (the fleet's
// keys by their `{fleet}` tag). The replies' shapes come from a test library loaded beside the
// relay's own (Redis Functions share one namespace, so FCALL wsrelay_test_shapes finds it).
#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "adapters/redis_broker.h"
#include "adapters/redis_cluster.h"
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
using testing::RedisClient;
using testing::RedisClusterProcesses;
using testing::RedisServer;
using testing::ReplyPtr;

constexpr auto kDeadline = std::chrono::seconds(20);
constexpr const char* kPrefix = "app:";

// One function whose first argument picks the reply's shape.
constexpr const char* kTestLibrary = R"lua(#!lua name=wsrelaytest
redis.register_function('wsrelay_test_shapes', function(keys, args)
    local what = args[1]
    if what == 'int' then return 42 end
    if what == 'array' then return {'a', 7, false, '', -3} end
    if what == 'status' then return redis.status_reply('FINE') end
    if what == 'error' then return redis.error_reply('WSRELAY_TEST refused') end
    if what == 'nil' then return false end
    if what == 'nested' then return {'a', {'b'}} end
    if what == 'echo' then
        local out = {keys[1]}
        for i = 2, #args do out[#out + 1] = args[i] end
        return out
    end
    if what == 'incr' then return redis.call('INCR', keys[1]) end
    return redis.error_reply('WSRELAY_TEST unknown ' .. tostring(what))
end)
)lua";

bool loadTestLibrary(RedisClient& client) {
    ReplyPtr r = client.command({"FUNCTION", "LOAD", "REPLACE", kTestLibrary});
    return r && r->type == REDIS_REPLY_STRING;
}

class RedisFleetTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisFleetTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisServer::available()) {
            GTEST_SKIP() << RedisServer::kBinary << " is missing (tools/dev installs redis-server)";
        }
        std::string error;
        ASSERT_TRUE(server_.start(error)) << error;
        client_ = std::make_unique<RedisClient>(server_.client());
        ASSERT_TRUE(client_->ok());
        ASSERT_TRUE(loadTestLibrary(*client_));
    }
    void TearDown() override { clear(); }

    RedisBrokerOptions options() const {
        RedisBrokerOptions o;
        o.url = parseRedisUrl(server_.url()).url;
        o.prefix = kPrefix;
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
    // Makes a fleet call and waits for its reply (valid until the next reply arrives).
    const FleetReply* call(Endpoint& e, uint64_t token, const std::string& function,
                           const std::string& key, std::vector<std::string> args) {
        e.fleetCall(token, function, key, std::move(args));
        EXPECT_EQ(e.fleetReply(token), nullptr) << "never answered from inside fleetCall()";
        if (!pumpUntil([&] { return e.fleetReply(token) != nullptr; })) return nullptr;
        return e.fleetReply(token);
    }

    RedisServer server_;
    std::unique_ptr<RedisClient> client_;
    std::vector<std::unique_ptr<RedisBrokerFactory>> factories_;
};

TEST_F(RedisFleetTest, PublishAnswersHowManyWorkersItReached) {
    Endpoint& caller = endpoint(options());
    Endpoint& a = endpoint(options());
    Endpoint& b = endpoint(options());
    a.subscribe("two");
    b.subscribe("two");
    b.subscribe("one");
    ASSERT_TRUE(allUp());
    ASSERT_TRUE(confirmed(a, "two") && confirmed(b, "two") && confirmed(b, "one"));
    ASSERT_EQ(client_->numsub(std::string(kPrefix) + "two"), 2) << "the key is prefixed";

    int64_t expected = 0;
    for (const char* channel : {"none", "one", "two"}) {
        const FleetReply* reply =
            call(caller, static_cast<uint64_t>(expected), "publish", channel, {R"({"cmd":"x"})"});
        ASSERT_NE(reply, nullptr) << channel;
        EXPECT_EQ(reply->status, FleetStatus::Ok) << reply->error;
        EXPECT_EQ(reply->integer, expected) << channel;
        EXPECT_THAT(reply->items, IsEmpty());
        ++expected;
    }
    ASSERT_TRUE(pumpUntil([&] { return a.messages.size() == 1 && b.messages.size() == 2; }));
    EXPECT_THAT(a.dataOf("two"), ElementsAre(R"({"cmd":"x"})"));
    EXPECT_THAT(b.dataOf("one"), ElementsAre(R"({"cmd":"x"})"));
    EXPECT_THAT(b.stamps, ::testing::Each(0)) << "a fleet publish carries no entry stamp";
    EXPECT_THAT(caller.results, IsEmpty()) << "no publish result for a fleet publish";
}

TEST_F(RedisFleetTest, FcallRepliesArriveInEveryShape) {
    Endpoint& e = endpoint(options());
    ASSERT_TRUE(allUp());
    const std::string key(kFleetKey);

    const FleetReply* integer = call(e, 1, "test_shapes", key, {"int"});
    ASSERT_NE(integer, nullptr);
    EXPECT_EQ(integer->status, FleetStatus::Ok);
    EXPECT_EQ(integer->integer, 42);

    const FleetReply* array = call(e, 2, "test_shapes", key, {"array"});
    ASSERT_NE(array, nullptr);
    EXPECT_EQ(array->status, FleetStatus::Ok);
    EXPECT_THAT(array->items, ElementsAre("a", "7", "", "", "-3"));

    const FleetReply* echo = call(e, 3, "test_shapes", key, {"echo", "x", "", "z\x01y"});
    ASSERT_NE(echo, nullptr);
    EXPECT_THAT(echo->items, ElementsAre(std::string(kPrefix) + key, "x", "", "z\x01y"));

    const FleetReply* status = call(e, 4, "test_shapes", key, {"status"});
    ASSERT_NE(status, nullptr);
    EXPECT_EQ(status->status, FleetStatus::Ok);
    EXPECT_THAT(status->items, ElementsAre("FINE"));

    const FleetReply* nil = call(e, 5, "test_shapes", key, {"nil"});
    ASSERT_NE(nil, nullptr);
    EXPECT_EQ(nil->status, FleetStatus::Ok);
    EXPECT_THAT(nil->items, IsEmpty());
    EXPECT_EQ(nil->integer, 0);

    const FleetReply* error = call(e, 6, "test_shapes", key, {"error"});
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(error->status, FleetStatus::Error);
    EXPECT_EQ(error->error, "WSRELAY_TEST refused");

    const FleetReply* nested = call(e, 7, "test_shapes", key, {"nested"});
    ASSERT_NE(nested, nullptr);
    EXPECT_EQ(nested->status, FleetStatus::Error);
    EXPECT_EQ(e.as<RedisBroker>().malformedReplies(), 1u);

    // A publish with the wrong number of arguments: Redis says why.
    const FleetReply* bad = call(e, 8, "publish", "c", {"a", "b"});
    ASSERT_NE(bad, nullptr);
    EXPECT_EQ(bad->status, FleetStatus::Error);
    EXPECT_THAT(bad->error, ::testing::HasSubstr("wrong number of arguments"));
    EXPECT_THAT(e.states, ElementsAre(::testing::Pair(BrokerState::Up, false)));
}

// A fleet publish keeps its place among the worker's publishes, and every reply comes in order.
TEST_F(RedisFleetTest, CallsKeepTheirPlaceAmongPublishes) {
    Endpoint& sender = endpoint(options());
    Endpoint& receiver = endpoint(options());
    receiver.subscribe("c");
    ASSERT_TRUE(allUp());
    ASSERT_TRUE(confirmed(receiver, "c"));
    constexpr int kCount = 200;
    for (int n = 0; n < kCount; ++n) {
        if (n % 3 == 1) {
            sender.fleetCall(static_cast<uint64_t>(n), "publish", "c", {std::to_string(n)});
        } else if (n % 3 == 2) {
            sender.fleetCall(static_cast<uint64_t>(n), "test_shapes", "c", {"incr"});
        } else {
            sender.publish("c", std::to_string(n), static_cast<uint64_t>(n));
        }
    }
    ASSERT_TRUE(pumpUntil([&] {
        return sender.fleet_replies.size() == size_t{2 * kCount / 3} &&
               receiver.messages.size() == size_t{2 * kCount / 3 + 1};
    }));
    std::vector<std::string> expected;
    for (int n = 0; n < kCount; ++n) {
        if (n % 3 != 2) expected.push_back(std::to_string(n));
    }
    EXPECT_EQ(receiver.dataOf("c"), expected);
    int64_t incremented = 0;
    for (size_t i = 0; i < sender.fleet_replies.size(); ++i) {
        const auto& [token, reply] = sender.fleet_replies[i];
        ASSERT_EQ(token, i / 2 * 3 + 1 + i % 2) << i;
        ASSERT_EQ(reply.status, FleetStatus::Ok) << reply.error;
        if (token % 3 == 1) {
            EXPECT_EQ(reply.integer, 1) << i;
        } else {
            EXPECT_EQ(reply.integer, ++incremented) << "the calls ran in order";
        }
    }
}

// The library flushed behind the relay's back: the call that finds it missing is Unavailable (as
// a history read is), the library is loaded again, and the next call finds it.
TEST_F(RedisFleetTest, AMissingLibraryIsLoadedAgainAndTheCallIsUnavailable) {
    Endpoint& e = endpoint(options());
    ASSERT_TRUE(allUp());
    // wsrelay_history of the relay's own library: {top offset, epoch}.
    const std::vector<std::string> read = {"0", "0", "0", "10", "60000"};
    const FleetReply* first = call(e, 1, "history", "h", read);
    ASSERT_NE(first, nullptr);
    ASSERT_EQ(first->status, FleetStatus::Ok) << first->error;
    ASSERT_EQ(first->items.size(), 2u);
    EXPECT_EQ(first->items[0], "0");
    const std::vector<std::string> position = first->items;  // `first` moves with later replies

    ASSERT_TRUE(client_->command({"FUNCTION", "FLUSH"}));
    const FleetReply* missing = call(e, 2, "history", "h", read);
    ASSERT_NE(missing, nullptr);
    EXPECT_EQ(missing->status, FleetStatus::Unavailable);
    EXPECT_EQ(e.as<RedisBroker>().functionReloads(), 1u);
    const FleetReply* again = call(e, 3, "history", "h", read);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->status, FleetStatus::Ok) << again->error;
    EXPECT_EQ(again->items, position) << "the same epoch";
    EXPECT_THAT(e.states, ElementsAre(::testing::Pair(BrokerState::Up, false)));
}

TEST_F(RedisFleetTest, DownAnswersUnavailable) {
    RedisBrokerOptions unreachable = options();
    unreachable.url.port = RedisServer::freePort();
    Endpoint& never = endpoint(unreachable);
    Endpoint& e = endpoint(options());
    ASSERT_TRUE(pumpUntil([&] { return e.up(); }));

    const FleetReply* reply = call(never, 1, "publish", "c", {"1"});
    ASSERT_NE(reply, nullptr);
    EXPECT_EQ(reply->status, FleetStatus::Unavailable);

    server_.kill();
    ASSERT_TRUE(pumpUntil([&] { return e.downs() == 1; }));
    const FleetReply* down = call(e, 2, "test_shapes", std::string(kFleetKey), {"int"});
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->status, FleetStatus::Unavailable);
}

// Calls sent when the connection is lost are answered Unavailable, each once.
TEST_F(RedisFleetTest, CallsInFlightWhenTheConnectionIsLostAreUnavailable) {
    Endpoint& e = endpoint(options());
    ASSERT_TRUE(allUp());
    for (uint64_t token = 1; token <= 10; ++token) {
        e.fleetCall(token, "test_shapes", std::string(kFleetKey), {"int"});
    }
    e.broker->flush();  // sent: written on the loop's next turn, to a server gone by then
    server_.kill();
    ASSERT_TRUE(pumpUntil([&] { return e.fleet_replies.size() == 10; }));
    for (uint64_t token = 1; token <= 10; ++token) {
        ASSERT_NE(e.fleetReply(token), nullptr);
        EXPECT_EQ(e.fleetReply(token)->status, FleetStatus::Unavailable);
    }
    EXPECT_EQ(e.downs(), 1);
    pumpFor(std::chrono::milliseconds(50));
    EXPECT_EQ(e.fleet_replies.size(), 10u) << "each call answered once";
}

class RedisClusterFleetTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisClusterFleetTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisClusterProcesses::available()) {
            GTEST_SKIP() << RedisServer::kBinary << " or redis-cli is missing";
        }
        std::string error;
        ASSERT_TRUE(cluster_.start(error)) << error;
        for (int i = 0; i < RedisClusterProcesses::kNodes; ++i) {
            RedisClient client = cluster_.server(i).client();
            ASSERT_TRUE(loadTestLibrary(client)) << "node " << i;
        }
    }
    void TearDown() override {
        clear();
        cluster_.stop();
    }

    Endpoint& endpoint() {
        RedisBrokerOptions o;
        o.cluster.push_back(ClusterNode{"127.0.0.1", cluster_.server(0).port()});
        o.prefix = kPrefix;
        o.reconnect_min_ms = 10;
        o.reconnect_max_ms = 200;
        o.probe_interval_ms = 0;
        o.probe_timeout_ms = 2000;
        factories_.push_back(std::make_unique<RedisBrokerFactory>(o));
        return add(*factories_.back());
    }
    const FleetReply* call(Endpoint& e, uint64_t token, const std::string& function,
                           const std::string& key, std::vector<std::string> args) {
        e.fleetCall(token, function, key, std::move(args));
        if (!pumpUntil([&] { return e.fleetReply(token) != nullptr; })) return nullptr;
        return e.fleetReply(token);
    }
    // The value of `key` on server `index` ("" when it is not there).
    std::string valueOn(int index, const std::string& key) {
        RedisClient client = cluster_.server(index).client();
        ReplyPtr r = client.command({"GET", key});
        return r && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    }

    // Assigns an empty slot to server `to` on every node: for an empty slot, the whole migration.
    void moveSlot(uint16_t slot, int to) {
        const std::string target = cluster_.nodeId(to);
        for (int i = 0; i < RedisClusterProcesses::kNodes; ++i) {
            RedisClient c = cluster_.server((to + i) % RedisClusterProcesses::kNodes).client();
            ReplyPtr r = c.command({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", target});
            ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << (r ? r->str : "no reply");
        }
    }

    RedisClusterProcesses cluster_;
    std::vector<std::unique_ptr<RedisBrokerFactory>> factories_;
};

// The fleet key's slot is its tag's, whatever the prefix; the call runs on that slot's master,
// and a channel-key call on the channel's.
TEST_F(RedisClusterFleetTest, CallsGoToTheMasterOwningTheirKeysSlot) {
    const std::string fleet_key = std::string(kPrefix) + std::string(kFleetKey);
    EXPECT_EQ(clusterKeySlot(fleet_key), clusterKeySlot("fleet"));
    EXPECT_EQ(clusterKeySlot(fleet_key + ":ctl"), clusterKeySlot("fleet"));
    Endpoint& e = endpoint();
    ASSERT_TRUE(allUp()) << e.broker->lastError();
    const std::vector<int> owners = cluster_.slotOwners();

    const FleetReply* fleet = call(e, 1, "test_shapes", std::string(kFleetKey), {"incr"});
    ASSERT_NE(fleet, nullptr);
    ASSERT_EQ(fleet->status, FleetStatus::Ok) << fleet->error;
    EXPECT_EQ(fleet->integer, 1);
    EXPECT_EQ(valueOn(owners[clusterKeySlot(fleet_key)], fleet_key), "1");

    for (int index = 0; index < RedisClusterProcesses::kNodes; ++index) {
        const std::string channel = cluster_.channelOn(index, "room:", kPrefix);
        const FleetReply* reply =
            call(e, 10 + static_cast<uint64_t>(index), "test_shapes", channel, {"incr"});
        ASSERT_NE(reply, nullptr);
        ASSERT_EQ(reply->status, FleetStatus::Ok) << reply->error;
        EXPECT_EQ(valueOn(index, kPrefix + channel), "1") << "on its own master " << index;
    }
}

TEST_F(RedisClusterFleetTest, PublishReachesTheShardSubscribers) {
    Endpoint& caller = endpoint();
    Endpoint& a = endpoint();
    Endpoint& b = endpoint();
    const std::string channel = "wsrelay:{fleet}:ctl";  // the control channel's shape
    a.subscribe(channel);
    b.subscribe(channel);
    ASSERT_TRUE(allUp());
    ASSERT_TRUE(confirmed(a, channel) && confirmed(b, channel));
    const FleetReply* reply = call(caller, 1, "publish", channel, {R"({"cmd":"x"})"});
    ASSERT_NE(reply, nullptr);
    ASSERT_EQ(reply->status, FleetStatus::Ok) << reply->error;
    EXPECT_EQ(reply->integer, 2);
    ASSERT_TRUE(pumpUntil([&] { return a.messages.size() == 1 && b.messages.size() == 1; }));
    EXPECT_THAT(a.dataOf(channel), ElementsAre(R"({"cmd":"x"})"));
    const FleetReply* none = call(caller, 2, "publish", "nobody", {"1"});
    ASSERT_NE(none, nullptr);
    EXPECT_EQ(none->integer, 0);
}

// The fleet's slot moved behind the caller's map: its calls follow the MOVED to the new owner, in
// order, without Down.
TEST_F(RedisClusterFleetTest, CallsFollowAMovedSlot) {
    Endpoint& e = endpoint();
    ASSERT_TRUE(allUp()) << e.broker->lastError();
    const std::string fleet_key = std::string(kPrefix) + std::string(kFleetKey);
    const uint16_t slot = clusterKeySlot(fleet_key);
    const int from = cluster_.slotOwners()[slot];
    const int to = (from + 1) % RedisClusterProcesses::kNodes;
    moveSlot(slot, to);
    constexpr int kCount = 20;
    for (int n = 1; n <= kCount; ++n) {
        e.fleetCall(static_cast<uint64_t>(n), "test_shapes", std::string(kFleetKey), {"incr"});
    }
    ASSERT_TRUE(pumpUntil([&] { return e.fleet_replies.size() == size_t{kCount}; }));
    for (int n = 1; n <= kCount; ++n) {
        const auto& [token, reply] = e.fleet_replies[static_cast<size_t>(n - 1)];
        EXPECT_EQ(token, static_cast<uint64_t>(n));
        ASSERT_EQ(reply.status, FleetStatus::Ok) << reply.error;
        EXPECT_EQ(reply.integer, n) << "in order";
    }
    EXPECT_EQ(valueOn(to, fleet_key), std::to_string(kCount));
    EXPECT_THAT(e.states, ElementsAre(::testing::Pair(BrokerState::Up, false)));
    // The MOVED reloaded the map: later calls go to the new owner first.
    const std::string owner = "127.0.0.1:" + std::to_string(cluster_.server(to).port());
    ASSERT_TRUE(pumpUntil([&] { return e.as<RedisClusterBroker>().routeOf(kFleetKey) == owner; }));
}

}  // namespace
}  // namespace wsrelay
