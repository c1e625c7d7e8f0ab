// A backend publishing into a history straight through Redis, as docs/scaling.md "History" tells
// it to: Debian's python3-redis calls the function library the relay loaded, and a relay worker's
// broker receives the message with its position. The script checks the replies it gets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "adapters/redis_broker.h"
#include "tests/redis/broker_endpoint.h"
#include "tests/redis/broker_rig.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::BrokerRig;
using testing::Endpoint;
using testing::RedisServer;

constexpr const char* kPython = "/usr/bin/python3";

// argv: port channel. Two publishes, then a read of both; exits 1 on any unexpected reply.
constexpr const char* kBackend = R"py(
import sys
import redis

port, channel = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
first = r.fcall("wsrelay_publish", 1, channel, '{"n":1}', 100, 60000)
second = r.fcall("wsrelay_publish", 1, channel, "plain text", 100, 60000)
if first[0] != 1 or second[0] != 2 or not first[1] or first[1] != second[1]:
    sys.exit("publish replies: %r %r" % (first, second))
history = r.fcall("wsrelay_history", 1, channel, 0, 10, 0, 100, 60000)
if history != [2, first[1], 1, '{"n":1}', 2, "plain text"]:
    sys.exit("history reply: %r" % (history,))
)py";

TEST(BackendFcallTest, PythonPublishesThroughTheFunctionLibraryAndTheRelayGetsThePosition) {
    if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kBinary << " is missing";
    if (testing::runTool({kPython, "-c", "import redis"}, std::chrono::seconds(20)) != 0) {
        GTEST_SKIP() << "python3-redis is missing (tools/dev installs it)";
    }
    RedisServer server;
    std::string error;
    ASSERT_TRUE(server.start(error)) << error;
    RedisBrokerOptions options;
    options.url = parseRedisUrl(server.url()).url;
    options.probe_interval_ms = 0;
    options.reconnect_min_ms = 10;
    options.reconnect_max_ms = 100;
    RedisBrokerFactory factory(options);
    BrokerRig rig(std::chrono::seconds(20));
    Endpoint& relay = rig.add(factory);
    ASSERT_TRUE(rig.allUp()) << relay.broker->lastError();  // the library is loaded by now
    const std::string channel = "orders:42";
    relay.subscribe(channel);
    ASSERT_TRUE(rig.confirmed(relay, channel));

    // The backend runs as a child process; the loop is turned again once it is done.
    ASSERT_EQ(testing::runTool({kPython, "-c", kBackend, std::to_string(server.port()), channel},
                               std::chrono::seconds(30)),
              0);
    ASSERT_TRUE(rig.pumpUntil([&] { return relay.dataOf(channel).size() == 2; }));
    EXPECT_THAT(relay.dataOf(channel), ::testing::ElementsAre(R"({"n":1})", R"("plain text")"));
    const auto positions = relay.positionsOf(channel);
    EXPECT_EQ(positions[0].offset, 1u);
    EXPECT_EQ(positions[1].offset, 2u);
    EXPECT_FALSE(positions[0].epoch.empty());
    EXPECT_EQ(positions[0].epoch, positions[1].epoch);
}

}  // namespace
}  // namespace wsrelay
