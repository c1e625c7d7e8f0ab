// The instance lease's pieces without sockets or Redis (docs/scaling.md "Leases"): the
// connection registry's batching, and the lost-instance reaper's reading, reporting and cleaning.
// The Lua side runs against a real Redis in tests/integration/test_instance_lost.py.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "adapters/broker.h"
#include "metrics/relay_metrics.h"
#include "relay/fleet/connection_registry.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/lost_instance_reaper.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

// The worker parts' fake broker, handing over the fleet calls it kept for the test to answer.
struct CallsBroker : testing::FakeBroker {
    std::vector<FleetCall> take() { return std::exchange(fleet_calls, {}); }
};

FleetReply integer(int64_t n) {
    FleetReply r;
    r.integer = n;
    return r;
}

FleetReply items(std::vector<std::string> list) {
    FleetReply r;
    r.items = std::move(list);
    return r;
}

using Args = std::vector<std::string>;

class RegistryTest : public ::testing::Test {
protected:
    CallsBroker broker;
    FleetCalls calls{&broker};
    metrics::Registry registry{1};
    std::atomic<uint64_t> generation{0};
    std::map<uint64_t, std::string> sessions;  // the open sessions' records
    ConnectionRegistry reg{calls, "inst0001", generation,
                           [this](uint64_t id, std::string& out) {
                               auto it = sessions.find(id);
                               if (it == sessions.end()) return false;
                               out = it->second;
                               return true;
                           },
                           registry.worker(0)};
};

TEST_F(RegistryTest, WritesNothingBeforeTheLeaseIsHeld) {
    sessions[1] = "{}";
    reg.changed(1);
    reg.flush();
    EXPECT_TRUE(broker.take().empty());
    generation = 1;
    reg.flush();
    const auto sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].function, "conn_put");
    EXPECT_EQ(sent[0].key, kFleetKey);
    EXPECT_EQ(sent[0].args, (Args{"inst0001", "inst0001.1", "{}"}));
}

TEST_F(RegistryTest, BatchesATurnAndDeletesOnlyWhatWasWritten) {
    generation = 1;
    sessions[1] = R"({"user":"a"})";
    sessions[2] = R"({"user":"b"})";
    reg.changed(1);
    reg.changed(2);
    reg.changed(1);
    reg.flush();
    auto sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].args.size(), 5u);  // the instance, then two records
    // 3 opens and closes within one turn: never written, never deleted.
    sessions.erase(1);
    reg.changed(1);
    reg.changed(3);
    reg.flush();
    sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].function, "conn_del");
    EXPECT_EQ(sent[0].args, (Args{"inst0001", "inst0001.1"}));
    reg.flush();
    EXPECT_TRUE(broker.take().empty());
}

TEST_F(RegistryTest, RefusedWithoutALeaseWaitsForTheNextGenerationThenRewritesAll) {
    generation = 1;
    sessions[1] = "{}";
    sessions[2] = "{}";
    reg.changed(1);
    reg.flush();
    calls.onReply(broker.take()[0].token, integer(1));
    reg.changed(2);
    reg.flush();
    calls.onReply(broker.take()[0].token, integer(-1));  // the lease was taken by a reaper
    reg.flush();
    EXPECT_TRUE(broker.take().empty()) << "no retry under the generation that was refused";
    generation = 2;  // the lease keeper took it again
    reg.flush();
    const auto sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].args.size(), 5u) << "both records, the one written before included";
}

TEST_F(RegistryTest, BrokerUpAfterDownRewritesEveryRecord) {
    generation = 1;
    sessions[1] = "{}";
    reg.changed(1);
    reg.flush();
    broker.take();
    reg.setBrokerUp(false);
    sessions[2] = "{}";
    reg.changed(2);
    reg.flush();
    EXPECT_TRUE(broker.take().empty());
    reg.setBrokerUp(true);
    reg.flush();
    const auto sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].args.size(), 5u);
}

TEST(LostInstanceEvent, CarriesTheRecordAndTheReason) {
    simdjson::dom::parser parser;
    std::string padded, body;
    ASSERT_TRUE(LostInstanceReaper::eventBody(
        "k3x9a0b2.7", R"({"user":"42","meta":{"n":1},"channels":["a","b"],"presence":[]})", parser,
        padded, body));
    EXPECT_EQ(body, R"({"event":"disconnect","connection":"k3x9a0b2.7","user":"42","meta":{"n":1},)"
                    R"("code":1006,"reason":"instance_lost","channels":["a","b"]})");
    ASSERT_TRUE(LostInstanceReaper::eventBody("x.1", "{}", parser, padded, body));
    EXPECT_EQ(body, R"({"event":"disconnect","connection":"x.1","user":null,"meta":null,)"
                    R"("code":1006,"reason":"instance_lost","channels":[]})");
    EXPECT_FALSE(LostInstanceReaper::eventBody("x.1", "[1]", parser, padded, body));
}

class ReaperTest : public ::testing::Test {
protected:
    struct Sent {
        std::string body;
        std::function<void(bool)> done;
    };
    CallsBroker broker;
    FleetCalls calls{&broker};
    metrics::Registry registry{1};
    std::vector<Sent> events;
    bool hook_free = true;
    LostInstanceReaper reaper{calls, "claimer1",
                              [this](std::string body, std::function<void(bool)> done) {
                                  if (!hook_free) return false;
                                  events.push_back({std::move(body), std::move(done)});
                                  return true;
                              },
                              2, registry.worker(0)};

    std::map<std::string, std::vector<FleetCall>> byFunction() {
        std::map<std::string, std::vector<FleetCall>> out;
        for (FleetCall& c : broker.take()) out[c.function].push_back(std::move(c));
        return out;
    }
};

TEST_F(ReaperTest, ReportsEachRecordThenRemovesAndCleansIt) {
    reaper.claimed({"lost0001"});
    auto sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].function, "lease_records");
    EXPECT_EQ(sent[0].args, (Args{"claimer1", "lost0001", "2"}));
    calls.onReply(sent[0].token,
                  items({"1", "lost0001.1",
                         R"({"user":"u","meta":null,"channels":["a","b"],"presence":["a"]})",
                         "lost0001.2", R"({"user":"u","meta":null,"channels":["b"]})"}));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_TRUE(broker.take().empty()) << "nothing removed before the app answered";
    events[0].done(true);
    events[1].done(true);
    auto calls_by = byFunction();
    ASSERT_EQ(calls_by["lease_done"].size(), 1u);
    EXPECT_EQ(calls_by["lease_done"][0].args, (Args{"lost0001", "lost0001.1", "lost0001.2"}));
    ASSERT_EQ(calls_by["presence_leave"].size(), 1u);
    EXPECT_EQ(calls_by["presence_leave"][0].key, "a");
    EXPECT_EQ(calls_by["presence_leave"][0].args, (Args{"lost0001.1"}));
    EXPECT_TRUE(calls_by["occupancy_drop"].empty()) << "holds are dropped by the sweep";
    ASSERT_EQ(calls_by["user_leave"].size(), 1u);
    EXPECT_EQ(calls_by["user_leave"][0].args, (Args{"u", "lost0001.1", "lost0001.2"}));
    ASSERT_EQ(calls_by["lease_records"].size(), 1u) << "the next batch";
    calls.onReply(calls_by["lease_records"][0].token, items({"1"}));  // none left
    EXPECT_FALSE(reaper.busy());
    EXPECT_EQ(registry.worker(0).fleet_instance_lost_events.value(), 2);
}

TEST_F(ReaperTest, AnUnansweredEventKeepsItsRecordForTheNextPeriod) {
    reaper.claimed({"lost0001"});
    calls.onReply(broker.take()[0].token, items({"1", "lost0001.1", "{}", "lost0001.2", "{}"}));
    events[0].done(true);
    events[1].done(false);  // timed out
    auto calls_by = byFunction();
    ASSERT_EQ(calls_by["lease_done"].size(), 1u);
    EXPECT_EQ(calls_by["lease_done"][0].args, (Args{"lost0001", "lost0001.1"}));
    EXPECT_TRUE(calls_by["lease_records"].empty()) << "no retry before the next period";
    EXPECT_TRUE(reaper.busy());
    reaper.claimed({"lost0001"});  // the next period's lease_reap
    auto again = broker.take();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].function, "lease_records");
}

TEST_F(ReaperTest, AClaimTakenOverByAnotherInstanceIsDropped) {
    reaper.claimed({"lost0001", "lost0002"});
    calls.onReply(broker.take()[0].token, items({"0"}));
    auto sent = broker.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].args[1], "lost0002");
}

}  // namespace
}  // namespace wsrelay
