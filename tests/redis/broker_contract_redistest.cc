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
#include "adapters/redis_functions.h"
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

// XLEN of the history stream of `channel` (docs/scaling.md "History"; no hash tag in the name) on
// the server `client` talks to; -1 if that failed.
long long historyLength(testing::RedisClient client, const std::string& channel) {
    testing::ReplyPtr r = client.command({"XLEN", "wsrelay:{" + channel + "}:s"});
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
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
    static constexpr RedisMode kMode = RedisMode::Standalone;
    void fail() { server_.kill(); }
    bool restore(std::string& error) { return server_.start(error); }
    // A client of the server the outage tests' channels live on.
    testing::RedisClient failingClient() { return server_.client(); }
    // FUNCTION FLUSH on every master.
    void flushFunctions() { server_.client().command({"FUNCTION", "FLUSH"}); }
    // XLEN of the history stream of `channel` (no hash tag in it); -1 if that failed.
    long long streamLength(const std::string& channel, int) {
        return historyLength(server_.client(), channel);
    }

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
    static constexpr RedisMode kMode = RedisMode::Cluster;
    void fail() { cluster_.server(kFailingShard).kill(); }
    testing::RedisClient failingClient() { return cluster_.server(kFailingShard).client(); }
    void flushFunctions() {
        for (int i = 0; i < RedisClusterProcesses::kNodes; ++i) {
            cluster_.server(i).client().command({"FUNCTION", "FLUSH"});
        }
    }
    long long streamLength(const std::string& channel, int shard) {
        return historyLength(cluster_.server(shard % RedisClusterProcesses::kNodes).client(),
                             channel);
    }
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

// ---- History (broker.h: StreamPosition, HistoryPolicy, readHistory).

constexpr HistoryPolicy kKeepTen{10, 60000};

std::vector<uint64_t> offsetsOf(const std::vector<StreamPosition>& positions) {
    std::vector<uint64_t> out;
    for (const StreamPosition& p : positions) out.push_back(p.offset);
    return out;
}
std::vector<uint64_t> offsetsOf(const HistoryAnswer& answer) {
    std::vector<uint64_t> out;
    for (const HistoryEntry& e : answer.entries) out.push_back(e.offset);
    return out;
}
std::vector<uint64_t> range(uint64_t first, uint64_t last) {
    std::vector<uint64_t> out;
    for (uint64_t o = first; o <= last; ++o) out.push_back(o);
    return out;
}

// Reads `channel` from `e` and waits for the answer.
const HistoryAnswer* readAndWait(BrokerRig& rig, Endpoint& e, const std::string& channel,
                                 HistoryRequest request) {
    static uint64_t next_token = 1000;
    request.token = ++next_token;
    e.readHistory(channel, request);
    if (!rig.pumpUntil([&] { return e.history(request.token) != nullptr; })) return nullptr;
    return e.history(request.token);
}

TYPED_TEST(BrokerContractTest, HistoryOffsetsAreContiguousAndInOrderOnEveryWorker) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    Endpoint& c = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-order:", 1);
    a.subscribe(ch);
    b.subscribe(ch);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));
    ASSERT_TRUE(this->rig_.confirmed(b, ch));

    // Two publishers, interleaved: the offsets are one sequence, and everyone sees it in order.
    constexpr uint64_t kEach = 60;
    for (uint64_t i = 0; i < kEach; ++i) {
        b.publish(ch, "\"b" + std::to_string(i) + "\"", i, kKeepTen);
        c.publish(ch, "\"c" + std::to_string(i) + "\"", i, kKeepTen);
    }
    ASSERT_TRUE(this->rig_.pumpUntil([&] {
        return a.dataOf(ch).size() == 2 * kEach && b.dataOf(ch).size() == 2 * kEach &&
               b.results.size() == kEach && c.results.size() == kEach;
    }));
    const std::string epoch = a.positionsOf(ch).front().epoch;
    EXPECT_FALSE(epoch.empty());
    for (Endpoint* e : {&a, &b}) {
        EXPECT_EQ(offsetsOf(e->positionsOf(ch)), range(1, 2 * kEach));
        for (const StreamPosition& p : e->positionsOf(ch)) EXPECT_EQ(p.epoch, epoch);
    }
    // Each publisher's results carry the positions its messages were delivered with.
    for (Endpoint* e : {&b, &c}) {
        uint64_t previous = 0;
        for (size_t i = 0; i < e->results.size(); ++i) {
            EXPECT_EQ(e->results[i].second, PublishStatus::Accepted);
            EXPECT_EQ(e->published_at[i].epoch, epoch);
            EXPECT_GT(e->published_at[i].offset, previous) << "in publish order";
            previous = e->published_at[i].offset;
        }
    }
    const std::vector<std::string> data = a.dataOf(ch);
    for (size_t i = 0; i < b.published_at.size(); ++i) {
        const uint64_t offset = b.published_at[i].offset;
        EXPECT_EQ(data[offset - 1], "\"b" + std::to_string(i) + "\"") << "offset " << offset;
    }
}

TYPED_TEST(BrokerContractTest, HistoryReadsPageForwardOrTakeTheNewest) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-read:", 0);
    for (uint64_t i = 1; i <= 10; ++i) {
        // Stamped, as the relay publishes: the history hands out the data without the stamp.
        a.publish(ch, R"({"n":)" + std::to_string(i) + "}", i, kKeepTen, 1700000000000000 + i);
    }
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 10; }));
    const std::string epoch = a.published_at.back().epoch;
    ASSERT_EQ(a.published_at.back().offset, 10u);

    auto read = [&](uint64_t after, uint32_t limit, bool newest) {
        const HistoryAnswer* answer =
            readAndWait(this->rig_, a, ch, HistoryRequest{0, kKeepTen, after, limit, newest});
        EXPECT_NE(answer, nullptr);
        if (answer == nullptr) return HistoryAnswer{HistoryStatus::Unavailable, {}, {}};
        EXPECT_EQ(answer->status, HistoryStatus::Ok);
        EXPECT_EQ(answer->top, (StreamPosition{10, epoch}));
        return *answer;
    };
    EXPECT_EQ(offsetsOf(read(0, 4, false)), range(1, 4));
    EXPECT_EQ(offsetsOf(read(4, 4, false)), range(5, 8));
    EXPECT_EQ(offsetsOf(read(8, 4, false)), range(9, 10));
    EXPECT_EQ(offsetsOf(read(10, 4, false)), range(1, 0));
    EXPECT_EQ(offsetsOf(read(0, 3, true)), range(8, 10));
    EXPECT_EQ(offsetsOf(read(8, 5, true)), range(9, 10));
    EXPECT_EQ(offsetsOf(read(0, 0, true)), range(1, 0)) << "limit 0: the position only";
    const HistoryAnswer all = read(0, 100, false);
    ASSERT_EQ(all.entries.size(), 10u);
    for (uint64_t i = 1; i <= 10; ++i) {
        EXPECT_EQ(all.entries[i - 1].data, R"({"n":)" + std::to_string(i) + "}");
    }
}

TYPED_TEST(BrokerContractTest, HistoryKeepsTheLastHistorySizeMessages) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-trim:", 2);
    constexpr HistoryPolicy kKeepFive{5, 60000};
    for (uint64_t i = 1; i <= 250; ++i) a.publish(ch, std::to_string(i), i, kKeepFive);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 250; }));
    const HistoryAnswer* answer =
        readAndWait(this->rig_, a, ch, HistoryRequest{0, kKeepFive, 0, 1000, false});
    ASSERT_NE(answer, nullptr);
    EXPECT_EQ(answer->top.offset, 250u);
    EXPECT_EQ(offsetsOf(*answer), range(246, 250));
    EXPECT_EQ(answer->entries.back().data, "250");
}

// What a publisher's history_size pushes out is reported to it: with what the history still holds,
// every message published. The memory broker keeps exactly history_size; Redis trims whole stream
// nodes (MAXLEN ~), so it may keep more than it hands out, and trims only once a node is full.
TYPED_TEST(BrokerContractTest, TrimmedMessagesAreReportedToThePublisher) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    constexpr int kShard = 1;
    const std::string ch = this->env_.channel("hist-trimmed:", kShard);
    constexpr uint64_t kPublished = 250;
    for (uint64_t i = 1; i <= kPublished; ++i) a.publish(ch, std::to_string(i), i, kKeepTen);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == kPublished; }));
    const HistoryAnswer* answer =
        readAndWait(this->rig_, b, ch, HistoryRequest{0, kKeepTen, 0, 1000, false});
    ASSERT_NE(answer, nullptr);
    EXPECT_EQ(offsetsOf(*answer), range(kPublished - 9, kPublished));
    EXPECT_EQ(b.trimmed, 0u) << "a read trims nothing";
    if constexpr (std::is_same_v<TypeParam, MemoryEnvironment>) {
        EXPECT_EQ(a.trimmed, kPublished - 10);
    } else {
        EXPECT_GT(a.trimmed, 0u);
        const long long kept = this->env_.streamLength(ch, kShard);
        ASSERT_GE(kept, 10);
        EXPECT_EQ(a.trimmed + static_cast<uint64_t>(kept), kPublished);
    }
}

TYPED_TEST(BrokerContractTest, AnExpiredHistoryStartsOverInANewEpoch) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-ttl:", 1);
    constexpr HistoryPolicy kShort{10, 300};
    for (uint64_t i = 1; i <= 3; ++i) a.publish(ch, std::to_string(i), i, kShort);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 3; }));
    const StreamPosition before = a.published_at.back();
    ASSERT_EQ(before.offset, 3u);

    // Reads do not keep a history alive: polled until it is gone.
    StreamPosition after;
    ASSERT_TRUE(this->rig_.pumpUntil(
        [&] {
            const HistoryAnswer* answer =
                readAndWait(this->rig_, a, ch, HistoryRequest{0, kShort, 0, 10, false});
            if (answer == nullptr || answer->status != HistoryStatus::Ok) return false;
            after = answer->top;
            return after.epoch != before.epoch;
        },
        std::chrono::seconds(10)));
    EXPECT_EQ(after.offset, 0u);
    a.publish(ch, "\"again\"", 4, kShort);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 4; }));
    EXPECT_EQ(a.published_at.back(), (StreamPosition{1, after.epoch}));
}

TYPED_TEST(BrokerContractTest, AReadMakesTheEpochTheNextPublishKeeps) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-new:", 0);
    const HistoryAnswer* answer =
        readAndWait(this->rig_, a, ch, HistoryRequest{0, kKeepTen, 0, 10, true});
    ASSERT_NE(answer, nullptr);
    ASSERT_EQ(answer->status, HistoryStatus::Ok);
    EXPECT_EQ(answer->top.offset, 0u);
    EXPECT_THAT(answer->entries, IsEmpty());
    ASSERT_FALSE(answer->top.epoch.empty());
    const std::string epoch = answer->top.epoch;
    b.publish(ch, "\"first\"", 1, kKeepTen);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return b.results.size() == 1; }));
    EXPECT_EQ(b.published_at.back(), (StreamPosition{1, epoch}));
}

TYPED_TEST(BrokerContractTest, APlainPublishOnAHistoryChannelCarriesNoPosition) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-plain:", 1);
    a.subscribe(ch);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));
    b.publish(ch, "\"one\"", 1, kKeepTen);
    b.publish(ch, "\"plain\"", 2);  // history off: today's publish
    b.publish(ch, "\"two\"", 3, kKeepTen);
    ASSERT_TRUE(this->rig_.syncedThrough(a, ch, "\"two\""));
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return b.results.size() == 3; }));
    EXPECT_THAT(a.dataOf(ch), ElementsAre("\"one\"", "\"plain\"", "\"two\""));
    const std::vector<StreamPosition> at = a.positionsOf(ch);
    const std::string epoch = at[0].epoch;
    EXPECT_EQ(at, (std::vector<StreamPosition>{{1, epoch}, {0, ""}, {2, epoch}}));
    EXPECT_EQ(b.published_at, (std::vector<StreamPosition>{{1, epoch}, {0, ""}, {2, epoch}}));
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

// A restart without persistence loses the history and the function library: the next attempt loads
// the library again, and the history starts over in a new epoch.
TYPED_TEST(BrokerOutageTest, AfterARestartTheHistoryStartsOverInANewEpoch) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    Endpoint& b = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-restart:", TypeParam::kFailingShard);
    a.subscribe(ch);
    ASSERT_TRUE(this->rig_.confirmed(a, ch));
    b.publish(ch, "1", 1, kKeepTen);
    b.publish(ch, "2", 2, kKeepTen);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return b.results.size() == 2; }));
    const std::string epoch = b.published_at.back().epoch;

    this->env_.fail();
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.downs() == 1 && b.downs() == 1; }));
    const HistoryAnswer* down =
        readAndWait(this->rig_, b, ch, HistoryRequest{0, kKeepTen, 0, 10, false});
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->status, HistoryStatus::Unavailable) << "a read while down";
    std::string error;
    ASSERT_TRUE(this->env_.restore(error)) << error;
    ASSERT_TRUE(this->rig_.allUp()) << b.broker->lastError();
    ASSERT_TRUE(this->rig_.confirmed(a, ch, 2));

    b.publish(ch, "3", 3, kKeepTen);
    ASSERT_TRUE(this->rig_.syncedThrough(a, ch, "3"));
    ASSERT_EQ(b.results.size(), 3u);
    EXPECT_EQ(b.results.back().second, PublishStatus::Accepted) << b.broker->lastError();
    EXPECT_EQ(b.published_at.back().offset, 1u);
    EXPECT_NE(b.published_at.back().epoch, epoch);
    EXPECT_EQ(a.positionsOf(ch).back(), b.published_at.back());
}

TYPED_TEST(BrokerOutageTest, AReadInFlightWhenTheConnectionDropsIsUnavailable) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-drop:", TypeParam::kFailingShard);
    // The server holds every command, so the read is still in flight when it goes.
    testing::RedisClient client = this->env_.failingClient();
    testing::ReplyPtr paused = client.command({"CLIENT", "PAUSE", "10000", "ALL"});
    ASSERT_TRUE(paused && paused->type == REDIS_REPLY_STATUS);
    a.readHistory(ch, HistoryRequest{7, kKeepTen, 0, 10, false});
    a.publish(ch, "1", 1, kKeepTen);
    this->rig_.pumpFor(std::chrono::milliseconds(50));
    EXPECT_TRUE(a.histories.empty());
    this->env_.fail();
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.histories.size() == 1; }));
    EXPECT_EQ(a.histories[0].first, 7u);
    EXPECT_EQ(a.histories[0].second.status, HistoryStatus::Unavailable);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 1; }));
    EXPECT_EQ(a.results[0].second, PublishStatus::Unavailable);
}

// The library flushed under a live connection: the call that finds it missing is refused, the
// library is loaded again on that connection, and the broker stays up.
TYPED_TEST(BrokerOutageTest, AFlushedFunctionLibraryIsLoadedAgain) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-flush:", TypeParam::kFailingShard);
    this->env_.flushFunctions();
    a.publish(ch, "1", 1, kKeepTen);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 1; }));
    EXPECT_EQ(a.results[0].second, PublishStatus::Rejected);
    EXPECT_EQ(a.as<RedisBrokerCore>().functionReloads(), 1u);
    EXPECT_THAT(a.broker->lastError(), ::testing::HasSubstr("loading it again"));
    a.publish(ch, "2", 2, kKeepTen);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == 2; }));
    EXPECT_EQ(a.results[1].second, PublishStatus::Accepted) << a.broker->lastError();
    EXPECT_EQ(a.published_at[1].offset, 1u);
    EXPECT_TRUE(a.up());
    EXPECT_EQ(a.downs(), 0);
}

// During a rolling update a relay from before the trimmed count may load the library last: its
// publish answers {offset, epoch}, which still gives positions and counts no trim (250 publishes
// over a history of 10: this relay's own library would have reported some).
TYPED_TEST(BrokerOutageTest, APublishReplyWithoutTheTrimmedCountStillGivesPositions) {
    Endpoint& a = this->rig_.add(this->env_.factory());
    ASSERT_TRUE(this->rig_.allUp());
    const std::string ch = this->env_.channel("hist-older:", TypeParam::kFailingShard);
    std::string older = redisFunctionLibrary(TypeParam::kMode);
    const std::string reply = "return {offset, epoch, trimmed}";
    const size_t at = older.find(reply);
    ASSERT_NE(at, std::string::npos);
    older.replace(at, reply.size(), "return {offset, epoch}");
    testing::ReplyPtr loaded =
        this->env_.failingClient().command({"FUNCTION", "LOAD", "REPLACE", older});
    ASSERT_TRUE(loaded && loaded->type == REDIS_REPLY_STRING);
    constexpr uint64_t kPublished = 250;
    for (uint64_t i = 1; i <= kPublished; ++i) a.publish(ch, std::to_string(i), i, kKeepTen);
    ASSERT_TRUE(this->rig_.pumpUntil([&] { return a.results.size() == kPublished; }));
    EXPECT_EQ(a.published_at.back().offset, kPublished);
    EXPECT_EQ(a.as<RedisBrokerCore>().malformedReplies(), 0u);
    EXPECT_EQ(a.trimmed, 0u);
}

}  // namespace
}  // namespace wsrelay
