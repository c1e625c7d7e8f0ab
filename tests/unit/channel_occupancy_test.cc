// Channel occupancy without sockets or Redis (docs/scaling.md "Channel occupancy"): the memory
// broker's functions, and a worker's batching, events and resync. The Lua side runs against a
// real Redis in tests/integration/test_occupancy.py.
#include "relay/fleet/channel_occupancy.h"

#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "adapters/memory_fleet_occupancy.h"
#include "conf/redis_functions_needed.h"
#include "metrics/relay_metrics.h"
#include "relay/fleet/fleet_calls.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using Args = std::vector<std::string>;
using Clock = MemoryOccupancy::Clock;

class MemoryOccupancyTest : public ::testing::Test {
protected:
    FleetReply run(std::string function, Args args) {
        std::optional<FleetReply> r =
            occupancy.call(FleetCall{1, std::move(function), std::string(kFleetKey), args}, now);
        EXPECT_TRUE(r.has_value());
        return r.value_or(FleetReply{});
    }
    FleetReply update(const char* holder, Args ops) {
        ops.insert(ops.begin(), {holder, "1000"});
        return run("occupancy_update", std::move(ops));
    }
    FleetReply due() { return run("occupancy_due", {"1000", "256"}); }

    MemoryOccupancy occupancy;
    Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
};

TEST_F(MemoryOccupancyTest, FirstHolderOccupiesLastOneVacatesAfterTheDelay) {
    FleetReply occupied = update("a.0", {"+room"});
    ASSERT_THAT(occupied.items, ElementsAre("0", "room", _));
    EXPECT_THAT(update("b.1", {"+room"}).items, ElementsAre("0")) << "held already";
    EXPECT_THAT(update("a.0", {"-room"}).items, ElementsAre("0")) << "b.1 still holds it";
    EXPECT_THAT(update("b.1", {"-room"}).items, ElementsAre("1")) << "pending";
    now += std::chrono::milliseconds(999);
    EXPECT_THAT(due().items, ElementsAre("0")) << "not before the delay";
    now += std::chrono::milliseconds(1);
    FleetReply vacated = due();
    ASSERT_THAT(vacated.items, ElementsAre("0", "room", _));
    EXPECT_GT(std::stoll(vacated.items[2]), std::stoll(occupied.items[2]));
    EXPECT_THAT(due().items, ElementsAre("0")) << "once";
    EXPECT_EQ(occupancy.held(), 0u);
}

TEST_F(MemoryOccupancyTest, HeldAgainWithinTheDelayIsNeitherEvent) {
    update("a.0", {"+room"});
    EXPECT_THAT(update("a.0", {"-room", "+room"}).items, ElementsAre("1"));
    EXPECT_THAT(update("b.0", {"+other", "-other", "+other"}).items, ElementsAre("1", "other", _));
    now += std::chrono::seconds(5);
    EXPECT_THAT(due().items, ElementsAre("0"));
    EXPECT_THAT(update("a.0", {"+room"}).items, ElementsAre("0")) << "a.0 holds it already";
}

TEST_F(MemoryOccupancyTest, StarReleasesEveryHoldOfTheHolderOnly) {
    update("a.0", {"+x", "+y"});
    update("b.0", {"+y"});
    // A resync: everything released, then what is still held taken again.
    EXPECT_THAT(update("a.0", {"*", "+x"}).items, ElementsAre("1"));
    now += std::chrono::seconds(1);
    EXPECT_THAT(due().items, ElementsAre("0")) << "x was held again, y is held by b.0";
    EXPECT_EQ(occupancy.held(), 2u);
}

TEST_F(MemoryOccupancyTest, BadArgumentsAreErrors) {
    EXPECT_EQ(run("occupancy_update", {"a.0"}).status, FleetStatus::Error);
    EXPECT_EQ(run("occupancy_update", {"a.0", "x", "+room"}).status, FleetStatus::Error);
    EXPECT_EQ(update("a.0", {"room"}).status, FleetStatus::Error);
    EXPECT_EQ(run("occupancy_due", {"10"}).status, FleetStatus::Error);
    EXPECT_FALSE(occupancy.call(FleetCall{1, "presence_get", "x", {}}, now).has_value());
}

// The worker parts' fake broker, handing over the fleet calls it kept for the test to answer.
struct CallsBroker : testing::FakeBroker {
    std::vector<FleetCall> take() { return std::exchange(fleet_calls, {}); }
};

FleetReply items(Args list) {
    FleetReply r;
    r.items = std::move(list);
    return r;
}

class ChannelOccupancyTest : public ::testing::Test {
protected:
    struct Sent {
        HookEvent event;
        std::string body;
    };
    // Destroyed last: the occupancy stops its timers on it.
    struct Loop {
        struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
        ~Loop() { ev_loop_destroy(loop); }
    } owner;
    struct ev_loop* loop = owner.loop;
    CallsBroker broker;
    FleetCalls calls{&broker};
    metrics::Registry registry{1};
    std::atomic<uint64_t> generation{1};
    std::vector<Sent> sent;
    bool hook_free = true;
    ChannelOccupancy occupancy{loop,
                               calls,
                               [this](HookEvent e, std::string body, std::function<void(bool)>) {
                                   if (!hook_free) return false;
                                   sent.push_back({e, std::move(body)});
                                   return true;
                               },
                               ChannelOccupancy::Options{"inst0001.0", 300, true, true},
                               &generation,
                               registry.worker(0)};
};

TEST_F(ChannelOccupancyTest, ATurnsChangesLeaveInOneCallAndItsEventsGoToTheHook) {
    occupancy.opened("a");
    occupancy.opened("b");
    occupancy.closed("a");
    occupancy.flush();
    auto calls_made = broker.take();
    ASSERT_EQ(calls_made.size(), 1u);
    EXPECT_EQ(calls_made[0].function, "occupancy_update");
    EXPECT_EQ(calls_made[0].key, kFleetKey);
    EXPECT_EQ(calls_made[0].args, (Args{"inst0001.0", "300", "+a", "+b", "-a"}));
    calls.onReply(calls_made[0].token, items({"0", "b", "7"}));
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].event, HookEvent::Occupied);
    EXPECT_EQ(sent[0].body, R"({"event":"occupied","channel":"b","seq":7})");
    EXPECT_EQ(registry.worker(0).occupancy_events[metrics::OccupancyEvent::Occupied].value(), 1);
    occupancy.flush();
    EXPECT_TRUE(broker.take().empty()) << "nothing new";
}

TEST_F(ChannelOccupancyTest, ASweepHandsOverVacatedEventsAndAsksAgainWhenMoreAreDue) {
    occupancy.sweep();
    occupancy.sweep();  // one call at a time: this one follows it
    auto calls_made = broker.take();
    ASSERT_EQ(calls_made.size(), 1u);
    EXPECT_EQ(calls_made[0].function, "occupancy_due");
    EXPECT_EQ(calls_made[0].args, (Args{"300", "256"}));
    calls.onReply(calls_made[0].token, items({"1", "x", "9", "y", "10"}));
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[1].body, R"({"event":"vacated","channel":"y","seq":10})");
    calls_made = broker.take();
    ASSERT_EQ(calls_made.size(), 1u) << "more were due";
    calls.onReply(calls_made[0].token, items({"0"}));
    EXPECT_TRUE(broker.take().empty()) << "the second sweep was folded into the first's follow-up";
}

TEST_F(ChannelOccupancyTest, EventsWaitInOrderForABusyHookUpToTheBound) {
    hook_free = false;
    occupancy.sweep();
    Args reply{"0"};
    for (size_t i = 0; i < ChannelOccupancy::kMaxUnsent + 1; ++i) {
        reply.push_back("c" + std::to_string(i));
        reply.push_back(std::to_string(i + 1));
    }
    calls.onReply(broker.take()[0].token, items(reply));
    EXPECT_TRUE(sent.empty());
    EXPECT_EQ(
        registry.worker(0).hook_requests[HookEvent::Vacated][metrics::HookResult::Overflow].value(),
        1);
    hook_free = true;
    ev_run(loop, EVRUN_ONCE);  // the retry timer
    ASSERT_EQ(sent.size(), ChannelOccupancy::kMaxUnsent);
    EXPECT_EQ(sent[0].body, R"({"event":"vacated","channel":"c0","seq":1})");
}

TEST_F(ChannelOccupancyTest, AfterAnOutageTheHoldsAreSetAgain) {
    occupancy.opened("a");
    occupancy.flush();
    calls.onReply(broker.take()[0].token, items({"0"}));
    occupancy.setBrokerUp(false);
    occupancy.opened("b");
    occupancy.closed("a");
    occupancy.flush();
    EXPECT_TRUE(broker.take().empty()) << "nothing while down";
    occupancy.setBrokerUp(true);
    occupancy.flush();
    auto calls_made = broker.take();
    ASSERT_EQ(calls_made.size(), 1u);
    EXPECT_EQ(calls_made[0].args, (Args{"inst0001.0", "300", "*", "+b"}));
    // A call lost with the connection sets them again too.
    FleetReply lost;
    lost.status = FleetStatus::Unavailable;
    calls.onReply(calls_made[0].token, std::move(lost));
    occupancy.flush();
    calls_made = broker.take();
    ASSERT_EQ(calls_made.size(), 1u);
    EXPECT_EQ(calls_made[0].args, (Args{"inst0001.0", "300", "*", "+b"}));
}

TEST_F(ChannelOccupancyTest, NothingBeforeTheLeaseAndAllAgainWhenItWasRetaken) {
    generation = 0;
    occupancy.opened("a");
    occupancy.flush();
    EXPECT_TRUE(broker.take().empty());
    generation = 1;
    occupancy.flush();
    EXPECT_EQ(broker.take().at(0).args, (Args{"inst0001.0", "300", "+a"}));
    generation = 2;  // reaped while alive: the holds were dropped
    occupancy.flush();
    EXPECT_EQ(broker.take().at(0).args, (Args{"inst0001.0", "300", "*", "+a"}));
}

TEST(OccupancyLeasesTest, OccupancyEventsKeepALeaseWithARedisBroker) {
    Config config;
    config.broker.type = BrokerType::Redis;
    config.hook.url = "http://127.0.0.1:9/hook";
    config.hook.events = {"connect", "vacated"};
    EXPECT_TRUE(leasesNeeded(config));
    EXPECT_TRUE(needsRedisFunctions(config));
    config.hook.events = {"connect"};
    EXPECT_FALSE(leasesNeeded(config));
    config.hook.events = {"occupied"};
    config.broker.type = BrokerType::Memory;
    EXPECT_FALSE(leasesNeeded(config)) << "one instance: nobody else to notice it gone";
}

}  // namespace
}  // namespace wsrelay
